"""Follow a log on another machine through the user's own `ssh` (so ~/.ssh/config, jump hosts,
the agent and keys all work): one `ssh HOST tail -c +OFFSET -F PATH`, whose output is the log's
bytes from OFFSET on. When the connection drops, it is made again from the byte after the last
one received: nothing is lost or read twice. `LOGREPORT_SSH` names another ssh command line
(e.g. `ssh -F other_config`)."""
from __future__ import annotations

import os
import queue
import shlex
import subprocess
import threading
import time
from urllib.parse import urlsplit

from ..errors import InputError
from ..events import NEW_RUN, Marker
from .follow import MAX_POLL
from .text import LineSplitter, check_text

CONNECTED = "logreport-connected"     # said on stderr by the remote shell once logged in
RETRY = (1.0, 30.0)                  # seconds before reconnecting: first, at most
QUEUED = 256                         # reads of up to 64 KiB held before ssh has to wait
OPTIONS = ["-o", "BatchMode=yes", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3",
           "-o", "ConnectTimeout=20"]


def command(url: str, offset: int, from_end: bool) -> list[str]:
    """The ssh command line that prints the log from byte `offset` (or from its end) on and
    follows it, first saying CONNECTED (with the size, from its end) on stderr."""
    parts = urlsplit(url)
    if not parts.hostname or not parts.path.strip("/"):
        raise InputError("an ssh:// URL names a host and a file", "e.g. ssh://gpu-node/runs/train.log",
                         url)
    target = f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname
    port = ["-p", str(parts.port)] if parts.port else []
    path = parts.path[1:] if parts.path.startswith("/~/") else parts.path
    quoted = "~/" + shlex.quote(path[2:]) if path.startswith("~/") else shlex.quote(path)
    if from_end:
        script = (f"n=$(wc -c < {quoted} 2>/dev/null || echo 0); echo {CONNECTED} $n >&2; "
                  f"exec tail -c +$((n + 1)) -F -- {quoted}")
    else:
        script = f"echo {CONNECTED} >&2; exec tail -c +{offset + 1} -F -- {quoted}"
    ssh = shlex.split(os.environ.get("LOGREPORT_SSH") or "ssh")
    return ssh + OPTIONS + port + [target, "--", script]


class SshFollower:
    """Follows one ssh://host/path as `follow.Follower` follows a local file; the backlog
    comes through the same stream (`streams_backlog`)."""

    streams_backlog = True

    def __init__(self, url: str, from_end: bool = False):
        self.path = url
        self.from_end = from_end
        self.offset = 0
        self.splitter = LineSplitter()
        self.opened = False          # logged in at least once
        self.judged = False
        self.said: list[str] = []
        self.items: queue.Queue = queue.Queue(QUEUED)   # bounded: ssh waits while we parse
        self.process: subprocess.Popen | None = None
        self.errors: list[str] = []  # ssh's and tail's stderr lines of this connection
        self.retry_at = 0.0
        self.wait = RETRY[0]
        self.lost = False            # the connection dropped and is not made again yet

    def poll(self, limit: int = MAX_POLL) -> list:
        if self.process is None and time.monotonic() >= self.retry_at:
            self._connect()
        out: list = []
        got = 0
        while got < limit:
            try:
                item = self.items.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, tuple):            # (stream, what): a line of stderr, an end
                out += self._event(*item)
                continue
            if not self.judged:
                self.judged = check_text(item, self.path)
            self.offset += len(item)
            got += len(item)
            out += self.splitter.feed(item)
        return out

    def skip(self, offset: int, number: int) -> None:
        self.offset, self.splitter.number = offset, number

    def flush(self) -> list:
        return self.splitter.flush()

    def close(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()             # the remote tail ends with the connection
            process.wait()

    # --- internals ------------------------------------------------------------------------
    def _connect(self) -> None:
        argv = command(self.path, self.offset, self.from_end and not self.opened)
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, start_new_session=True)
        except OSError as e:
            raise InputError(f"cannot run ssh: {e.strerror or e}",
                             "install the OpenSSH client, or set LOGREPORT_SSH", self.path) from None
        self.process, self.errors = process, []
        err = threading.Thread(target=self._lines, args=(process, process.stderr), daemon=True)
        err.start()
        threading.Thread(target=self._pump, args=(process, err), daemon=True).start()

    def _pump(self, process, err: threading.Thread) -> None:
        """The log's bytes as they come (a thread), then ("end", process) when ssh is gone
        and all it said on stderr is queued."""
        fd = process.stdout.fileno()
        while data := os.read(fd, 1 << 16):
            self.items.put(data)
        process.stdout.close()
        process.wait()
        err.join(5)
        self.items.put(("end", process))

    def _lines(self, process, stream) -> None:
        with stream:
            for raw in stream:
                self.items.put(("err", (process, raw.decode("utf-8", "replace").strip())))

    def _event(self, kind: str, what) -> list:
        """What a line of stderr or the end of the connection means."""
        if kind == "err":
            process, line = what
            if process is not self.process:
                return []
            if line.startswith(CONNECTED):
                self.opened, self.wait = True, RETRY[0]
                size = line[len(CONNECTED):].strip()
                if size.isdigit():
                    self.offset = int(size)
                if self.lost:
                    self.lost = False
                    self.said.append(f"logreport: {self.path}: connection made again; reading on "
                                     f"from byte {self.offset}")
                return []
            if "truncated" in line or "has been replaced" in line:
                out = self.splitter.flush()
                self.offset, self.judged = 0, False
                reason = "log truncated" if "truncated" in line else "log replaced by a new file"
                return out + [Marker(NEW_RUN, reason, line=self.splitter.number)]
            if line:
                self.errors.append(line)
            return []
        if what is not self.process:
            return []
        self.process = None
        why = next((e for e in reversed(self.errors) if not e.startswith("tail:")),
                   self.errors[-1] if self.errors else f"ssh exited with code {what.returncode}")
        if not self.opened:              # never logged in: a wrong host, key or command
            raise InputError(f"ssh failed: {why}", "check that `ssh HOST` works without a "
                             "password prompt (keys, agent, ~/.ssh/config)", self.path)
        if not self.lost:
            self.lost = True
            self.said.append(f"logreport: {self.path}: connection lost ({why}); reconnecting")
        self.retry_at = time.monotonic() + self.wait
        self.wait = min(self.wait * 2, RETRY[1])
        return []
