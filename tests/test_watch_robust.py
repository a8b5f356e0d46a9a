"""`watch` over bad input, as a user runs it (`python -m logreport watch ... --no-tui`), ended by
itself, SIGINT or SIGTERM: one clear line at most, never a traceback.

Decided: a binary file ends watch at once (exit 1, one line); a folder that never gets a log waits
like a file that does not exist yet (Ctrl-C: exit 0, no report); lines of no known format are
said once ("still watching") and watch goes on waiting for lines it knows; at the end, exit 1 with
the one-line unknown-format error. Odd lines appended live (invalid UTF-8, GBK, a 5 MB line)
change no record.
"""
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import DATA, until
from test_report import page_data

from logreport.analysis import summarize
from logreport.reader import load

ROOT = Path(__file__).resolve().parent.parent
LOG = DATA / "ppdet" / "picodet_s_320_coco_train.log"          # a finished run
UNKNOWN = DATA / "negative" / "N1_rtdetr_pytorch_not_ppdet.log"


class Watching:
    """`logreport watch PATH --no-tui --poll 0.1` in a subprocess, its stderr read as it comes."""

    def __init__(self, path, tmp_path, *extra):
        self.report = tmp_path / "r.html"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "logreport", "watch", str(path), "--no-tui", "--poll", "0.1",
             "-o", str(self.report), *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out: list[str] = []                 # the plain view's lines
        self.err: list[str] = []
        self.readers = [threading.Thread(target=self._read, args=(stream, into), daemon=True)
                        for stream, into in ((self.proc.stdout, self.out),
                                             (self.proc.stderr, self.err))]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, into):
        for line in stream:
            into.append(line)
        stream.close()

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.out):
            assert time.monotonic() < deadline and self.proc.poll() is None, (self.out, self.err)
            time.sleep(0.05)

    def end(self, sig=None, timeout: float = 60) -> tuple[int, str]:
        if sig is not None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=timeout)
        for reader in self.readers:
            reader.join(10)
        err = "".join(self.err)
        assert "Traceback" not in err + "".join(self.out), err
        return self.proc.returncode, err


def waits_in_its_loop(pid: int) -> bool:
    """watch has set SIGTERM to end it like Ctrl-C (right before its loop) and its main thread
    sleeps (the loop's wait between two polls): Linux's /proc tells both."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.M).group(1), 16)
    state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    return bool(caught >> (signal.SIGTERM - 1) & 1) and state == "S"


def test_a_binary_file_ends_watch_with_one_line(tmp_path):
    log = tmp_path / "run.log"
    log.write_bytes(bytes(range(256)) * 400)
    code, err = Watching(log, tmp_path).end()
    assert code == 1
    assert err.splitlines() == [f"logreport: {log}: this is a binary file, not a text log "
                                "(hint: give the training log (the captured console output))"]


def test_binary_bytes_written_after_watch_started_end_it_too(tmp_path):
    log = tmp_path / "run.log"
    log.write_bytes(b"")
    w = Watching(log, tmp_path)
    with open(log, "ab") as f:
        f.write(bytes(range(256)) * 400)
    code, err = w.end()
    assert code == 1 and len(err.splitlines()) == 1 and "binary file" in err


def test_a_folder_that_never_gets_logs_waits_like_a_missing_file(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "notes.md").write_text("not a log\n")
    w = Watching(folder, tmp_path, "--serve", "--port", "0")
    until(lambda: w.proc.poll() is not None or (any("live page: " in line for line in w.err)
                                                and waits_in_its_loop(w.proc.pid)),
          "watch polls the folder and waits")   # (it sleeps before too: its server starting)
    assert w.proc.poll() is None                      # still waiting
    code, err = w.end(signal.SIGTERM)
    assert code == 0 and err.startswith("live page: ") and len(err.splitlines()) == 1, err
    assert w.out == []
    assert not w.report.exists()


def test_an_unknown_format_is_said_once_and_watch_goes_on(tmp_path):
    log = tmp_path / "run.log"
    w = Watching(log, tmp_path)
    with open(log, "wb") as f:                        # a log of another tool (RT-DETR PyTorch)
        for _ in range(450):
            f.write(UNKNOWN.read_bytes())
            f.flush()
    w.wait_for("still watching")
    assert w.proc.poll() is None
    code, err = w.end(signal.SIGINT)
    (said,) = [line for line in w.out if "no training records recognised yet" in line]
    assert said.startswith(f"logreport: {log}: no training records recognised yet (")
    assert "lines read; no known format is close" in said
    assert "; still watching (hint: known formats: ppdet" in said
    (line,) = err.splitlines()
    assert code == 1 and line.startswith(f"logreport: {log}: no training records recognised "
                                         "(no known format is close")
    assert line.endswith("or pass --format)")


@pytest.mark.parametrize("cut", [0, 1])          # 0 bytes; its first line, blank
@pytest.mark.parametrize("extra", [(), ("--format", "hf_trainer")])
def test_a_log_that_stays_empty_ends_watch_as_summary_refuses_it(tmp_path, cut, extra):
    """A log that stays empty: the watch waits for lines (--exit-when-done too) until stopped,
    then ended with exit 0, silent, or, with --format, reported an `unknown` run of 0 records;
    summary of the same bytes refuses it (exit 1, `the log is empty`). It ends so too now."""
    log = tmp_path / "run.log"
    source = DATA / "llamafactory" / ("114_nonLF_autotrain_wandb_output_bar_a_step_behind_"
                                      "each_logged_dict.log")
    log.write_bytes(b"".join(source.read_bytes().splitlines(keepends=True)[:cut]))
    summary = subprocess.run([sys.executable, "-m", "logreport", "summary", str(log), *extra],
                             cwd=ROOT, capture_output=True, text=True)
    w = Watching(log, tmp_path, "--exit-when-done", *extra)
    until(lambda: w.proc.poll() is not None or waits_in_its_loop(w.proc.pid), "watch waits")
    time.sleep(0.5)                                   # (polls of a log that stays empty)
    assert w.proc.poll() is None                      # still waiting
    code, err = w.end(signal.SIGINT)
    assert (code, err) == (summary.returncode, summary.stderr) == (
        1, f"logreport: {log}: the log is empty (hint: give a log that has training output)\n")
    assert not w.report.exists()


@pytest.mark.timeout(120)      # a 5 MB line, then the quiet time of --exit-when-done
def test_odd_lines_appended_live_change_no_record_and_exit_when_done_exits_0(tmp_path):
    text = LOG.read_bytes()
    lines = text.splitlines(keepends=True)
    mid = len(lines) // 2
    log = tmp_path / "run.log"
    log.write_bytes(b"".join(lines[:mid]))
    w = Watching(log, tmp_path, "--exit-when-done")
    w.wait_for("step")                                # it has read the first half
    with open(log, "ab") as f:
        for odd in (b"\xff\xfe\xc3( broken \xed\xa0\x80\n", "训练开始：加载数据集".encode("gbk") + b"\n",
                    b"x" * 5_000_000 + b"\n"):
            f.write(odd)
            f.flush()
        f.write(b"".join(lines[mid:]))
    code, err = w.end(timeout=90)
    assert code == 0, err
    assert "[finished]" in "".join(w.out) and f"report: {w.report}" in err
    got = page_data(w.report.read_text("utf-8"))["runs"][0]["summary"]
    want = summarize(load(str(LOG)))
    for key in ("train_records", "last_step", "final", "best", "status"):
        assert got[key] == want[key], key
    assert got["unparsed_lines"] == want["unparsed_lines"] + 3
