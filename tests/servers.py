"""Real servers on loopback for the remote-logs tests: an S3 endpoint (moto in server mode) and
an OpenSSH server with a throwaway host key, user key and ~/.ssh/config, each started by the
test and stopped after it."""
from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import closing, contextmanager
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(argv: list[str], log: Path) -> subprocess.Popen:
    """A server process; its output goes to a file (a pipe nobody reads would stop it)."""
    with open(log, "wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def _wait_port(port: int, process: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{argv0(process)} exited: {log.read_text(errors='replace')}")
        with closing(socket.socket()) as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{argv0(process)} did not listen on port {port}")


def argv0(process: subprocess.Popen) -> str:
    return str(process.args[0])


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def moto_s3(folder: Path):
    """An S3 endpoint on 127.0.0.1 (moto's server); yields the environment that points AWS
    clients and fsspec at it (fake credentials: moto accepts any)."""
    port = free_port()
    log = folder / "moto.log"
    process = _start([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], log)
    try:
        _wait_port(port, process, log)
        url = f"http://127.0.0.1:{port}"
        urllib.request.urlopen(url, timeout=10).close()
        yield {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": url,
               "FSSPEC_S3_ENDPOINT_URL": url}
    finally:
        _stop(process)


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@contextmanager
def openssh(folder: Path):
    """An OpenSSH server on 127.0.0.1 that lets this user in with a key made here; yields
    (HOME, the sshd process) where HOME/.ssh/config names it `testbox` (and `badkey`: the same
    server with a key it does not accept). OpenSSH's client reads ~/.ssh of the passwd entry,
    not $HOME, so `ssh -F HOME/.ssh/config` reads this one (the LOGREPORT_SSH variable)."""
    home = folder / "home"
    ssh = home / ".ssh"
    ssh.mkdir(parents=True)
    _keygen(folder / "host_key")
    _keygen(ssh / "id_test")
    _keygen(ssh / "id_other")
    (folder / "authorized_keys").write_bytes((ssh / "id_test.pub").read_bytes())
    port = free_port()
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder}/host_key\n"
        f"AuthorizedKeysFile {folder}/authorized_keys\nPidFile {folder}/sshd.pid\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n")
    host_key = (folder / "host_key.pub").read_text().strip()
    (ssh / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key}\n")
    user = getpass.getuser()
    entry = ("  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {key}\n"
             "  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n  StrictHostKeyChecking yes\n")
    (ssh / "config").write_text("".join(
        f"Host {name}\n" + entry.format(port=port, user=user, key=ssh / key, known=ssh / "known_hosts")
        for name, key in (("testbox", "id_test"), ("badkey", "id_other"))))
    if not os.path.isdir("/run/sshd") and os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755)     # sshd's privilege separation folder
    log = folder / "sshd.log"
    process = _start([SSHD, "-D", "-e", "-f", str(folder / "sshd_config")], log)
    try:
        _wait_port(port, process, log)
        yield home, process
    finally:
        _stop(process)


def ssh_environment(home: Path) -> dict:
    return {"HOME": str(home), "LOGREPORT_SSH": f"ssh -F {home}/.ssh/config"}


def connections(sshd: subprocess.Popen) -> list[int]:
    """The sshd processes serving a connection (children of the listening one)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == sshd.pid:
                out.append(int(entry))
    return out
