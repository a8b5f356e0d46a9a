"""Bad input gets one clear line: every command over every bad input of issue 8.

Inputs that are odd but readable (NUL bytes, a 5 MB line, invalid UTF-8, GBK/GB18030, CRLF,
ANSI colours) must give exactly the records of the clean real log; inputs that cannot be
read give one line on stderr naming the problem with a hint, exit 1 (bad data) or 2 (bad
usage), and never a traceback.
"""
from __future__ import annotations

import gzip
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_report import page_data

from logreport import formats
from logreport.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
PPDET = DATA / "ppdet" / "ppyoloe_crn_s_coco_train.log"
HF = DATA / "llamafactory" / "02_pt_lora_v0.7_step_dicts.log"
NEGATIVE = DATA / "negative" / "N1_rtdetr_pytorch_not_ppdet.log"
CHINESE = "训练开始：加载数据集，共 118287 张图片"
COMMANDS = ("summary", "report", "export", "check", "email")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def argv(command: str, path: str, out: Path) -> list[str]:
    """The command line of one command over one input, writing under out."""
    if command == "summary":
        return ["summary", path, "--json"]
    if command == "report":
        return ["report", path, "-o", str(out / "r.html")]
    if command == "export":
        return ["export", path, "-o", str(out / "rows.jsonl")]
    if command == "check":
        return ["check", path, "--json", "--fail-on", "oom"]
    return ["email", path, "--to", "a@example.com", "--smtp-host", "127.0.0.1",
            "--smtp-port", str(closed_port()), "--tls", "none", "-o", str(out / "mail.html")]


ENV = {"LOGREPORT_SMTP_PASSWORD": "", "LOGREPORT_SMTP_USER": "", "LOGREPORT_SMTP_HOST": ""}


def one_line_error(result, code: int) -> str:
    """Assert the shape of a failure: exit code, one stderr line with a hint, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("logreport: "), result.stderr
    assert "(hint: " in lines[0]
    return lines[0]


# --- unreadable inputs ---------------------------------------------------------------------
def bad_inputs(tmp: Path) -> dict[str, tuple[str, int, list[str]]]:
    """name -> (path, exit code, words the message must hold)."""
    (tmp / "empty.log").write_bytes(b"")
    (tmp / "binary.log").write_bytes(bytes(range(256)) * 400)
    (tmp / "nul_only.log").write_bytes(b"\0" * 50_000)
    (tmp / "no_logs").mkdir()
    (tmp / "no_logs" / "notes.md").write_text("not a log")
    (tmp / "unknown.log").write_bytes(NEGATIVE.read_bytes())
    with open(tmp / "sparse.log", "wb") as f:         # a 2 GB hole and nothing else
        f.truncate(2 << 30)
    with gzip.open(tmp / "bomb.log.gz", "wb", compresslevel=1) as f:   # 64 MB of zeros
        for _ in range(64):
            f.write(bytes(1 << 20))
    (tmp / "loop.log").symlink_to(tmp / "loop.log")
    first = NEGATIVE.read_text(encoding="utf-8").splitlines()[0][:40]
    return {
        "missing": (str(tmp / "nope.log"), 2, ["no such file", "check the path"]),
        "missing_glob": (str(tmp / "nope*.log"), 1, ["no file matches"]),
        "folder_without_logs": (str(tmp / "no_logs"), 1, ["no log files in this folder"]),
        "empty": (str(tmp / "empty.log"), 1, ["the log is empty"]),
        "binary": (str(tmp / "binary.log"), 1, ["binary file"]),
        "nul_bytes_only": (str(tmp / "nul_only.log"), 1, ["the log is empty"]),
        "unknown_format": (str(tmp / "unknown.log"), 1,
                           ["no training records recognised", "no known format is close", first,
                            "logreport formats",
                            *formats.names()]),
        "sparse_2gb": (str(tmp / "sparse.log"), 1, ["the log is empty"]),
        "gzip_bomb": (str(tmp / "bomb.log.gz"), 1, ["the log is empty"]),
        "symlink_loop": (str(tmp / "loop.log"), 1, ["symbolic link that leads nowhere"]),
        "device": ("/dev/zero", 1, ["this is a character device"]),
    }


BAD = ("missing", "missing_glob", "folder_without_logs", "empty", "binary", "nul_bytes_only",
       "unknown_format", "sparse_2gb", "gzip_bomb", "symlink_loop", "device")


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", BAD)
def test_unreadable_input_is_one_line_with_a_hint(runner, tmp_path, command, case):
    path, code, words = bad_inputs(tmp_path)[case]
    result = runner.invoke(main, argv(command, path, tmp_path), env=ENV)
    line = one_line_error(result, code)
    assert path in line
    for word in words:
        assert word in line, (word, line)
    assert result.stdout == ""
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "mail.html").exists()


def test_debug_shows_the_traceback(runner, tmp_path):
    (tmp_path / "empty.log").write_bytes(b"")
    result = runner.invoke(main, ["--debug", "summary", str(tmp_path / "empty.log")])
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("logreport: ")


def test_an_internal_error_is_one_line_unless_debug(runner, monkeypatch):
    import logreport.analysis

    def broken(run, *a, **k):
        raise KeyError("boom")

    monkeypatch.setattr(logreport.analysis, "summarize", broken)
    result = runner.invoke(main, ["summary", str(PPDET)])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "internal error: KeyError" in result.stderr and "--debug" in result.stderr
    result = runner.invoke(main, ["--debug", "summary", str(PPDET)])
    assert isinstance(result.exception, KeyError)


# --- odd but readable inputs: exactly the clean log's records -------------------------------
def colour(text: str) -> str:
    return "".join(f"\x1b[1;32m{line}\x1b[0m\n" for line in text.splitlines())


def variants(text: str) -> dict[str, tuple[bytes, int]]:
    """name -> (file bytes, unparsed lines it adds), from a real log's text."""
    lines = text.splitlines(True)
    mid = len(lines) // 2
    head, tail = "".join(lines[:mid]), "".join(lines[mid:])
    out = {
        # logrotate's copytruncate leaves a hole of NULs where the file began
        "nul_bytes": (b"\0" * 65536 + text.replace("loss", "lo\0ss").encode(), 0),
        "line_of_5MB": (b"x" * 5_000_000 + b"\n" + text.encode(), 1),
        "invalid_utf8": (head.encode() + b"\xff\xfe\xc3(\x80 broken \xed\xa0\x80\n"
                         + tail.encode(), 1),
        "crlf": (text.replace("\n", "\r\n").encode(), 0),
        "ansi_colours": (colour(text).encode(), 0),
        "gb18030_chinese": ((CHINESE + "\n" + text).encode("gb18030"), 1),
    }
    try:
        out["gbk_chinese"] = ((CHINESE + "\n" + text).encode("gbk"), 1)
    except UnicodeEncodeError:      # the log has characters GBK lacks; GB18030 covers it
        pass
    return out


def summary_of(runner, path) -> dict:
    result = runner.invoke(main, ["summary", str(path), "--json", "--show-unparsed"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["runs"][0]


def export_rows(runner, path, out: Path) -> list[dict]:
    result = runner.invoke(main, ["export", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        row.pop("run")
    return rows


ODD = [(log, name) for log in (PPDET, HF) for name in variants(log.read_text("utf-8"))]


@pytest.mark.parametrize("log,case", ODD, ids=[f"{p.parent.name}-{n}" for p, n in ODD])
def test_odd_input_gives_the_clean_logs_records(runner, tmp_path, log, case):
    raw, extra_unparsed = variants(log.read_text("utf-8"))[case]
    odd = tmp_path / f"{case}.log"
    odd.write_bytes(raw)
    clean, got = summary_of(runner, log), summary_of(runner, odd)
    for key in ("format", "train_records", "last_step", "last_epoch", "total_steps", "final",
                "best", "throughput", "status"):
        assert got[key] == clean[key], key
    assert got["unparsed_lines"] == clean["unparsed_lines"] + extra_unparsed
    if "chinese" in case:
        assert got["unparsed_samples"][0] == {"file": str(odd), "line": 1, "text": CHINESE}
    # nothing parsed is lost or changed: every exported row and every report series
    assert export_rows(runner, odd, tmp_path / "odd.jsonl") == \
        export_rows(runner, log, tmp_path / "clean.jsonl")
    for path, html in ((odd, tmp_path / "odd.html"), (log, tmp_path / "clean.html")):
        result = runner.invoke(main, ["report", str(path), "-o", str(html)])
        assert result.exit_code == 0, result.stderr
    series = [page_data(p.read_text("utf-8"))["runs"][0]["series"]
              for p in (tmp_path / "odd.html", tmp_path / "clean.html")]
    assert series[0] == series[1]
    checks = [json.loads(runner.invoke(main, ["check", str(p), "--json", "--fail-on", "oom"])
                         .stdout)["runs"][0]["anomalies"] for p in (odd, log)]
    assert [(a["kind"], a["step"]) for a in checks[0]] == [(a["kind"], a["step"]) for a in checks[1]]


def test_show_unparsed_prints_numbered_lines_without_control_characters(runner, tmp_path):
    log = tmp_path / "odd.log"
    text = PPDET.read_text("utf-8")
    log.write_bytes(b"\x1b]0;pwned\x07 title change\n" + text.encode())
    result = runner.invoke(main, ["summary", str(log), "--show-unparsed"])
    assert result.exit_code == 0
    listing = result.stdout[result.stdout.index(f"{log}: "):].splitlines()
    clean = summary_of(runner, PPDET)["unparsed_lines"]
    assert listing[0] == f"{log}: {clean + 1} unparsed lines, the first {min(clean + 1, 50)}:"
    assert listing[1].split(None, 1)[0] == "1" and "\x1b" not in result.stdout
    assert "\x07" not in result.stdout and "title change" in listing[1]
    second = text.splitlines()[0]
    assert listing[2].split(None, 1) == ["2", second]


# --- permissions: the kernel really refuses (root's override dropped) -----------------------
def unprivileged() -> list[str]:
    """A prefix that runs a command without the power to ignore file permissions."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root and setpriv is missing: root ignores chmod 000")
    # root keeps its uid (Python lives under /root) but loses the capabilities that bypass
    # file modes, so open() gets EACCES from the kernel exactly as a user would
    return ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]


def run_cli(args: list[str], prefix: list[str] = (), **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, **ENV, PYTHONDONTWRITEBYTECODE="1")
    if prefix or "preexec_fn" in kw:    # a command in a jail (no capabilities, a file size
        env.pop("COVERAGE_PROCESS_CONFIG", None)    # limit): `pytest --cov` cannot save there
    return subprocess.run([*prefix, sys.executable, "-m", "logreport", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120, check=False, **kw)


def assert_one_line(proc: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "(hint: " in lines[0], proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture
def locked(tmp_path):
    """A readable folder holding a chmod 000 log, a chmod 000 folder and a read-only folder."""
    base = Path(tempfile.mkdtemp(prefix="logreport-perm-"))
    base.chmod(0o755)
    log = base / "locked.log"
    shutil.copy(PPDET, log)
    log.chmod(0)
    folder = base / "locked_dir"
    folder.mkdir()
    shutil.copy(PPDET, folder / "train.log")
    folder.chmod(0)
    readonly = base / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    yield base
    for p in (folder, readonly):
        p.chmod(0o755)
    shutil.rmtree(base)


@pytest.mark.parametrize("command", COMMANDS)
def test_permission_denied_on_read(locked, command):
    prefix = unprivileged()
    for target in ("locked.log", "locked_dir"):
        path = str(locked / target)
        proc = run_cli(argv(command, path, locked), prefix)
        assert_one_line(proc, 1, path, "permission denied")


@pytest.mark.parametrize("command", ["report", "export", "email"])
def test_permission_denied_on_write(locked, command):
    proc = run_cli(argv(command, str(PPDET), locked / "readonly"), unprivileged())
    assert_one_line(proc, 1, str(locked / "readonly"), "cannot write here: Permission denied")
    assert os.listdir(locked / "readonly") == []


# --- disk full: the previous output survives -------------------------------------------------
OUTPUTS = [("report", "r.html"), ("export", "rows.jsonl"), ("export", "rows.csv"),
           ("export", "rows.parquet"), ("email", "mail.html")]
BIG = DATA / "ppdet" / "picodet_s_320_coco_long80e.log"     # its outputs all pass 8 KiB


def write_args(command: str, out: Path) -> list[str]:
    if command == "email":
        return argv("email", str(BIG), out.parent)
    return [command, str(BIG), "-o", str(out)]


@pytest.fixture
def full_disk(tmp_path):
    """An 8 KiB tmpfs: the real ENOSPC of a full disk."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); "
                    "test_file_size_limit_keeps_the_old_output covers the write error")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize("command,name", OUTPUTS)
def test_disk_full_keeps_the_old_output(runner, full_disk, command, name):
    old = full_disk / name
    old.write_bytes(b"the previous output\n")
    result = runner.invoke(main, write_args(command, old), env=ENV)
    line = one_line_error(result, 1)
    assert "No space left on device" in line and "previous file was kept" in line
    assert old.read_bytes() == b"the previous output\n"
    assert sorted(os.listdir(full_disk)) == [name]          # no temporary file left behind


@pytest.mark.parametrize("command,name", OUTPUTS)
def test_file_size_limit_keeps_the_old_output(tmp_path, command, name):
    """RLIMIT_FSIZE makes writes fail (EFBIG) without root: the same path as a full disk."""
    old = tmp_path / name
    old.write_bytes(b"the previous output\n")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (8 * 1024, 8 * 1024))

    proc = run_cli(write_args(command, old), preexec_fn=limit)
    assert_one_line(proc, 1, str(old), "File too large", "previous file was kept")
    assert old.read_bytes() == b"the previous output\n"
    assert sorted(os.listdir(tmp_path)) == [name]


def test_outputs_get_the_umask_mode_not_mkstemp_0600(runner, tmp_path):
    out = tmp_path / "r.csv"
    old = os.umask(0o022)
    try:
        assert runner.invoke(main, ["export", str(PPDET), "-o", str(out)]).exit_code == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644


# --- FIFOs and unreadable files inside a folder: skipped, the rest is read -----------------
@pytest.mark.parametrize("command", ["summary", "report", "export", "check"])
def test_fifos_in_a_folder_are_not_waited_on(tmp_path, command):
    """`train.log` beside FIFOs named like logs (even trainer_log.jsonl): read as if alone."""
    folder = tmp_path / "out"
    folder.mkdir()
    shutil.copy(PPDET, folder / "train.log")
    for name in ("train.fifo.log", "trainer_log.jsonl"):
        os.mkfifo(folder / name)
    proc = run_cli(argv(command, str(folder), tmp_path))      # before: blocked in open()
    assert proc.returncode == 0, proc.stderr
    if command == "summary":
        alone = run_cli(argv("summary", str(PPDET), tmp_path))
        assert json.loads(proc.stdout)["runs"][0]["train_records"] == \
            json.loads(alone.stdout)["runs"][0]["train_records"]


@pytest.mark.parametrize("layout", ["logs", "run_folder"])
@pytest.mark.parametrize("command", COMMANDS)
def test_an_unreadable_file_in_a_folder_is_one_warning_and_skipped(locked, command, layout):
    """A folder of logs (one run each) or one run's output folder (paddle's workerlog.N):
    a log that cannot be read is said in one line and left out; the rest is read."""
    folder = locked / "out"
    folder.mkdir()
    names = ("train.log", "worker.log") if layout == "logs" else ("workerlog.0", "workerlog.1")
    for name in names:
        shutil.copy(PPDET, folder / name)
    (folder / names[1]).chmod(0)
    proc = run_cli(argv(command, str(folder), locked), unprivileged())
    if command == "email":                  # nobody listens: that is the error, after it read
        assert proc.returncode == 1 and "connection refused" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
    warning = f"logreport: warning: {folder / names[1]}: permission denied (hint: check the " \
              "file's read permission); skipped"
    assert warning in proc.stderr.splitlines()
    if command == "summary":
        (run,) = json.loads(proc.stdout)["runs"]
        assert run["train_records"] == summary_of(CliRunner(), PPDET)["train_records"]


def test_an_unreadable_file_appearing_mid_watch_is_one_warning(locked):
    """watch DIR goes on (before: exit 1, no final report): one line for the file, the other
    log still read to the end; Ctrl-C writes the report and exits 0."""
    folder = locked / "out"
    folder.mkdir()
    text = PPDET.read_bytes()
    half = text.rfind(b"\n", 0, len(text) // 2) + 1
    (folder / "train.log").write_bytes(text[:half])
    report = locked / "r.html"
    proc = subprocess.Popen([*unprivileged(), sys.executable, "-m", "logreport", "watch",
                             str(folder), "--no-tui", "--poll", "0.1", "-o", str(report)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)
    reader.start()
    wait_for(lambda: any("step" in line for line in out), proc)
    secret = folder / "worker.log"
    secret.write_bytes(text)
    secret.chmod(0)
    wait_for(lambda: any("skipped" in line for line in out), proc)
    with open(folder / "train.log", "ab") as f:
        f.write(text[half:])
    wait_for(lambda: report.exists(), proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    reader.join(10)
    assert proc.returncode == 0, err
    assert [line for line in out if "skipped" in line] == [
        f"logreport: warning: {secret}: permission denied (hint: check the file's read "
        "permission); skipped\n"]
    got = page_data(report.read_text("utf-8"))["runs"][0]["summary"]
    assert got["train_records"] == summary_of(CliRunner(), PPDET)["train_records"]


def wait_for(condition, proc, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
        time.sleep(0.05)
