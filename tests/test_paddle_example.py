"""A real PaddleDetection training (examples/paddledetection) watched live; no Paddle in logreport.

The end-to-end test is slow: it installs Paddle into its own venv (about 45 s the first time),
then trains for about 15 s on the CPU. The default pytest run skips it; `pytest -m slow` runs
it (so does .ci/run). The venv is kept in LOGREPORT_PADDLE_VENV (default
~/.cache/logreport/paddle-venv); install.sh runs again only when it or requirements.txt changes.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
from venvs import CACHE, stamped

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "paddledetection"
VENV = Path(os.environ.get("LOGREPORT_PADDLE_VENV", CACHE / "paddle-venv"))
TRAIN_LINE = re.compile(r"Epoch: \[\d+\] \[\s*\d+/\d+\] ")
COCO_AP = re.compile(r"Average Precision\s+\(AP\) @\[ IoU=0\.50:0\.95 \| area=\s*all .*= (\S+)")


@pytest.fixture(scope="module")
def venv():
    """The example's venv, made by install.sh once per version of its inputs."""
    inputs = b"".join((EXAMPLE / name).read_bytes() for name in ("install.sh", "requirements.txt"))
    return stamped(VENV, inputs, lambda v: subprocess.run([str(EXAMPLE / "install.sh"), str(v)],
                                                          check=True))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api_summary(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/summary", timeout=2) as r:
            runs = json.load(r)["runs"]
    except (OSError, ValueError, KeyError):
        return None
    return runs[0] if runs else None


def _log_counts(log: Path) -> tuple[int, list[float]]:
    """Training lines and COCO AP values in the log as it is now."""
    text = log.read_text(encoding="utf-8", errors="replace")
    return len(TRAIN_LINE.findall(text)), [float(v) for v in COCO_AP.findall(text)]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_logreport_never_imports_paddle():
    """Every logreport module imports in a Python where Paddle could not be found."""
    code = ("import importlib, pkgutil, sys, logreport\n"
            "for m in pkgutil.walk_packages(logreport.__path__, 'logreport.'):\n"
            "    if not m.name.endswith('__main__'):\n"
            "        importlib.import_module(m.name)\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] in ('paddle', 'ppdet')))")
    ran = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert ran.stdout.strip() == "[]"


@pytest.mark.slow
@pytest.mark.timeout(1200)     # installs Paddle (the first time), then trains
def test_watch_follows_a_real_paddledetection_training(venv, tmp_path):
    py = str(venv / "bin" / "python")
    subprocess.run([py, str(EXAMPLE / "make_dataset.py"), str(tmp_path / "data")], check=True,
                   capture_output=True)
    log, report = tmp_path / "run.log", tmp_path / "report.html"
    log.write_text("")
    port = _free_port()
    with open(tmp_path / "watch.out", "w", encoding="utf-8") as watch_out:
        watch = subprocess.Popen(
            [sys.executable, "-m", "logreport", "watch", str(log), "--serve", "--port",
             str(port), "--no-tui", "-o", str(report)],
            cwd=ROOT, stdout=watch_out, stderr=subprocess.STDOUT, start_new_session=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", LD_PRELOAD="libz.so.1")
    with open(log, "w", encoding="utf-8") as out:
        train = subprocess.Popen(
            [py, str(EXAMPLE / "train.py"), "--data", str(tmp_path / "data"), "--epochs", "2",
             "--device", "cpu", "--out", str(tmp_path / "output")],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    seen = []            # (train lines in the file, summary) while training runs
    try:
        while train.poll() is None:
            in_file, _ = _log_counts(log)
            summary = _api_summary(port)
            if summary is not None:
                seen.append((in_file, summary))
            time.sleep(0.25)
        assert train.returncode == 0, log.read_text()[-3000:]
        lines, aps = _log_counts(log)
        deadline = time.monotonic() + 60         # let the watcher read the last lines
        final = _api_summary(port)
        while (final is None or final["eval_records"] < len(aps)) and time.monotonic() < deadline:
            time.sleep(0.25)
            final = _api_summary(port)
    finally:
        _stop(train)
        _stop(watch)

    assert lines == 12 and len(aps) == 2          # 24 images / batch 4 = 6 steps, 2 epochs
    # The served summary grew with the log and never ran ahead of it ...
    counts = [s["train_records"] for _, s in seen]
    assert counts == sorted(counts)
    assert all(s["train_records"] <= n for n, s in seen)
    assert any(0 < c <= 6 for c in counts) and any(6 < c < lines for c in counts), counts
    # ... it showed the first epoch's AP while the second epoch was still training ...
    early = [s for _, s in seen if s["eval_records"] >= 1 and s["train_records"] < lines]
    assert early and early[0]["best"]["metric"] == "bbox/AP"
    assert early[0]["best"]["value"] == pytest.approx(aps[0])
    # ... and in the end it saw every training record and both evals, as `summary --json` does.
    assert final["train_records"] == lines and final["eval_records"] == 2
    assert final["best"]["metric"] == "bbox/AP"
    assert final["best"]["value"] == pytest.approx(max(aps))
    ran = subprocess.run([sys.executable, "-m", "logreport", "summary", str(log), "--json"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    offline = json.loads(ran.stdout)["runs"][0]
    for key in ("train_records", "eval_records", "last_step", "last_epoch", "best", "final"):
        assert final[key] == offline[key], key
    assert report.exists()


@pytest.mark.slow
@pytest.mark.timeout(1200)     # installs Paddle (the first time), then trains until stopped
def test_run_stop_on_divergence_stops_a_real_paddledetection_training(venv, tmp_path):
    """A learning rate of 3000 (the example's is 0.04): the loss blows up at step 1 and the
    weights go NaN a few steps later (ppdet then dies in its BCE loss, as in the realrun
    NaN-crash fixtures). `run --stop-on` stops it first, on divergence, with SIGINT. Seeded:
    unseeded, the loss at step 1 was 99x to 560x that of step 0, and a 99x run went on to the
    crash with nothing to stop it for (divergence asks 100x a short run's best)."""
    from test_stop import payload

    py = str(venv / "bin" / "python")
    subprocess.run([py, str(EXAMPLE / "make_dataset.py"), str(tmp_path / "data")], check=True,
                   capture_output=True)
    log, report = tmp_path / "run.log", tmp_path / "report.html"
    grown: list[tuple[float, int]] = []           # (time, lines in the log) while it runs
    done = threading.Event()

    def measure():
        while not done.is_set():
            if log.exists():
                grown.append((time.time(), log.read_bytes().count(b"\n")))
            time.sleep(0.02)

    threading.Thread(target=measure, daemon=True).start()
    env = dict(os.environ, LD_PRELOAD="libz.so.1")
    try:
        ran = subprocess.run(
            [sys.executable, "-m", "logreport", "run", "-o", str(log), "--report", str(report),
             "--stop-on", "nan,divergence", "--", py, str(EXAMPLE / "train.py"), "--data",
             str(tmp_path / "data"), "--epochs", "20", "--device", "cpu", "--out",
             str(tmp_path / "output"), "--base-lr", "3000", "--seed", "1"],
            cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    finally:
        done.set()
    text = log.read_text(encoding="utf-8", errors="replace")
    assert ran.returncode == 3, ran.stderr[-3000:]
    assert "KeyboardInterrupt" in text and "Illegal input" not in text     # SIGINT, not the crash
    summary = payload(report)["runs"][0]["summary"]
    stopped = summary["stopped"]
    assert (stopped["reason"], stopped["signal"]) == ("divergence", "SIGINT")
    assert stopped["text"] in ran.stderr
    # the line that made it a divergence: the training record of the step it was told at
    lines = text.splitlines()
    told = [i + 1 for i, line in enumerate(lines) if TRAIN_LINE.search(line)][stopped["last_step"]]
    seen = next(t for t, n in grown if n >= told)
    signalled = datetime.fromisoformat(stopped["at"]).timestamp() + stopped["signals"][0][1]
    print(f"\nPaddleDetection: divergence since step {stopped['step']}, told by the record of "
          f"step {stopped['last_step']} (log line {told}); SIGINT {signalled - seen:.2f} s after "
          f"that line was in the log; {len(TRAIN_LINE.findall(text))} training lines in all")
