"""A training's process group: started by `run`, or found from `watch --pid`, and ended in
steps: SIGINT (the trainer may save and exit), SIGTERM after a grace period, SIGKILL after
another. POSIX only."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

KILL_AFTER = 30.0          # seconds between SIGTERM and SIGKILL
POLL = 0.1                 # seconds between two looks at a process that is not our child


class Training:
    """The process to stop (ours or another's) and the group its signals go to."""

    def __init__(self, pid: int, popen: subprocess.Popen | None = None):
        self.pid, self.popen = pid, popen
        group = os.getpgid(pid)
        # a process in logreport's own group (`train & logreport watch --pid $!` in a script)
        # gets the signals alone: the group would be logreport and the shell too
        self.group = None if group == os.getpgrp() else group

    @classmethod
    def start(cls, command: list[str], env: dict) -> Training:
        """Start command in its own process group, its output (stdout and stderr) on a pipe.
        Its stdin is logreport's, except a terminal (a background group reading it would stop)."""
        extra = {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
        stdin = subprocess.DEVNULL if sys.stdin is not None and sys.stdin.isatty() else None
        popen = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, env=env, **extra)
        return cls(popen.pid, popen)

    @classmethod
    def attach(cls, pid: int) -> Training:
        """Another's process; OSError (ProcessLookupError, PermissionError) when it cannot be
        signalled."""
        os.kill(pid, 0)
        return cls(pid)

    @property
    def target(self) -> str:
        return f"process group {self.group}" if self.group is not None else f"process {self.pid}"

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return _alive(self.pid)

    def wait(self, timeout: float) -> bool:
        """True when the process ended within timeout seconds."""
        if self.popen is not None:
            try:
                self.popen.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        end = time.monotonic() + timeout
        while _alive(self.pid):
            if time.monotonic() >= end:
                return False
            time.sleep(min(POLL, max(0.0, end - time.monotonic())))
        return True

    def send(self, sig: int) -> bool:
        """Send sig to the group (or the process); False when nothing was left to receive it."""
        try:
            if self.group is not None:
                os.killpg(self.group, sig)
            else:
                os.kill(self.pid, sig)
            return True
        except ProcessLookupError:
            return False


def _alive(pid: int) -> bool:
    """pid exists and is not a zombie (an ended process its parent has not reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):
        return True                         # no /proc: a zombie counts as running


class Escalation(threading.Thread):
    """Ends a Training in the background: SIGINT; SIGTERM after `grace` s; SIGKILL after
    `kill_after` s more. `sent` lists (signal name, seconds since start); `ended_by` is the last
    signal sent before the process ended (None: it had ended before the first). `on_signal`
    is called (with the Escalation) after each signal, `say` with a line for the user."""

    def __init__(self, training: Training, grace: float, kill_after: float = KILL_AFTER,
                 say=None, on_signal=None):
        super().__init__(name="logreport-stop", daemon=True)
        self.training, self.grace, self.kill_after = training, grace, kill_after
        self.say = say or (lambda text: None)
        self.on_signal = on_signal or (lambda escalation: None)
        self.sent: list[tuple[str, float]] = []
        self.ended_by: str | None = None
        self.done = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        try:
            for sig, wait in ((signal.SIGINT, self.grace), (signal.SIGTERM, self.kill_after),
                              (signal.SIGKILL, None)):
                if not self.training.alive() or not self.training.send(sig):
                    break
                self.sent.append((sig.name, round(time.monotonic() - started, 3)))
                self.ended_by = sig.name
                self.on_signal(self)
                self.say(f"sent {sig.name} to the {self.training.target}")
                if wait is None or self.training.wait(wait):
                    break
            if self.sent and sig == signal.SIGKILL:
                self.training.wait(KILL_AFTER)
        finally:
            self.done.set()
