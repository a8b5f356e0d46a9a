"""Logs on another machine over SSH: a real OpenSSH server on 127.0.0.1 with a throwaway host
key and user key, reached through the user's own `ssh` (its config names the host). `watch
ssh://` follows a log being appended, through a connection killed mid-run, into what reading
the whole log gives; a wrong host or key is one clear line and exit 1; `summary sftp://` reads
through fsspec (sshfs)."""
from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from logreport.export import write as export
from logreport.reader import load
from logreport.watch import Options, Watch
from tests.servers import SSHD, connections, openssh, ssh_environment

DATA = Path(__file__).parent / "data"
LONG = DATA / "ppdet" / "picodet_s_320_coco_long80e.log"

pytestmark = pytest.mark.skipif(
    not (os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("ssh-keygen"))
    or not (os.path.isdir("/run/sshd") or os.geteuid() == 0),
    reason="needs OpenSSH (Debian openssh-server) and /run/sshd")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    with openssh(tmp_path_factory.mktemp("ssh")) as server:
        yield server


@pytest.fixture
def env(sshd, monkeypatch):
    home, _ = sshd
    for name, value in ssh_environment(home).items():
        monkeypatch.setenv(name, value)
    return ssh_environment(home)


def cli(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "logreport", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=timeout)


class Said:
    """A view that keeps what the watch tells the user."""

    def __init__(self):
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)

    def update(self, *args, **kwargs) -> None:
        """The figures: not looked at here."""

    def tick(self, *args) -> None:
        """The clock of the view: not looked at here."""


def rows(run, path: Path) -> str:
    export([run], str(path))
    return path.read_text(encoding="utf-8")


def pieces(text: bytes, n: int) -> list[bytes]:
    """text in n pieces cut inside lines (a writer's flushes need not end lines)."""
    cuts = [len(text) * i // n + 7 for i in range(1, n)]
    return [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]


@pytest.mark.timeout(120)
def test_watch_over_ssh_survives_a_killed_connection(sshd, env, tmp_path):
    """The log is appended in pieces; half-way the sshd process serving the connection is
    killed: the follower connects again from the byte after the last one it got, and the
    run equals a read of the whole file."""
    _, server = sshd
    log = tmp_path / "train.log"
    text = LONG.read_bytes()
    parts = pieces(text, 8)
    log.write_bytes(parts[0])
    view = Said()
    watch = Watch(f"ssh://testbox{log}", Options(output=str(tmp_path / "r.html")), view)
    follower = None
    killed = []
    try:
        watch.start()
        for i, part in enumerate(parts[1:], 1):
            with open(log, "ab") as f:
                f.write(part)
            written = log.stat().st_size
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                watch.step()
                follower = watch.reader.followers[f"ssh://testbox{log}"]
                if follower.offset == written:
                    break
                time.sleep(0.05)
            if i == 4:
                killed = connections(server)
                for pid in killed:
                    os.kill(pid, signal.SIGKILL)
        watch.reader.finish()
        run = watch.reader.run()
    finally:
        watch.reader.close()
    assert killed, "no sshd connection process found to kill"
    assert follower.offset == len(text)
    assert any("connection lost" in s for s in view.lines), view.lines
    assert any("made again" in s for s in view.lines), view.lines
    assert rows(run, tmp_path / "watched.csv") == rows(load(str(log)), tmp_path / "read.csv")


@pytest.mark.timeout(120)
def test_watch_command_over_ssh_ends_with_the_run(sshd, env, tmp_path):
    log = tmp_path / "train.log"
    shutil.copy(LONG, log)
    done = cli(env, "watch", f"ssh://testbox{log}", "--no-tui", "--exit-when-done",
               "-o", str(tmp_path / "r.html"))
    assert done.returncode == 0, done.stderr
    want = json.loads(cli(env, "summary", "--json", str(log)).stdout)["runs"][0]["train_records"]
    assert f'"train_records":{want}' in (tmp_path / "r.html").read_text(encoding="utf-8")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("host, says", [("nohost.invalid", "Could not resolve hostname"),
                                        ("badkey", "Permission denied")])
def test_a_wrong_host_or_key_is_one_line_and_exit_1(sshd, env, tmp_path, host, says):
    done = cli(env, "watch", f"ssh://{host}/tmp/train.log", "--no-tui", "-o", str(tmp_path / "r.html"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"logreport: ssh://{host}/tmp/train.log: ssh "
                                                   "failed:"), done.stderr
    assert says in lines[0]


@pytest.mark.timeout(120)
def test_summary_over_sftp_equals_the_local_file(sshd, env, tmp_path):
    pytest.importorskip("sshfs")
    log = tmp_path / "train.log"
    shutil.copy(LONG, log)
    remote = cli(env, "summary", "--json", f"sftp://testbox{log}")
    local = cli(env, "summary", "--json", str(log))
    assert remote.returncode == 0, remote.stderr
    got = json.loads(remote.stdout.replace(f"sftp://testbox{log}", str(log)))["runs"][0]
    want = json.loads(local.stdout)["runs"][0]
    got.pop("status_evidence")           # says how long ago the file changed: the clock
    want.pop("status_evidence")
    assert got == want and got["train_records"] > 0


@pytest.mark.timeout(120)
def test_a_password_in_a_url_is_never_shown(sshd, env, tmp_path):
    pytest.importorskip("sshfs")
    log = tmp_path / "train.log"
    shutil.copy(LONG, log)
    user = getpass.getuser()
    read = cli(env, "summary", "--json", f"sftp://{user}:hunter2@testbox{log}")
    assert read.returncode == 0, read.stderr
    assert "hunter2" not in read.stdout + read.stderr
    assert json.loads(read.stdout)["runs"][0]["source"] == f"sftp://{user}@testbox{log}"
    failed = cli(env, "summary", f"sftp://{user}:hunter2@nohost.invalid/{log}")
    assert failed.returncode == 1 and "hunter2" not in failed.stdout + failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
