"""`logreport run --stop-on nan` on a real Hugging Face Trainer run whose loss goes NaN
(tests/hf_nan_train.py). Slow: CPU torch and transformers go into their own venv
(LOGREPORT_HF_VENV, default ~/.cache/logreport/hf-venv), made once; the run itself takes
about 20 s on 2 cores."""
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from venvs import CACHE, stamped

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).with_name("hf_nan_train.py")
VENV = Path(os.environ.get("LOGREPORT_HF_VENV", CACHE / "hf-venv"))
REQUIREMENTS = ["torch==2.13.0", "transformers==5.25.0", "accelerate==1.16.0"]


def _make(venv: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *REQUIREMENTS], check=True)


@pytest.fixture(scope="module")
def venv():
    return stamped(VENV, " ".join(REQUIREMENTS).encode(), _make)


def report_summary(report: Path) -> dict:
    from test_stop import payload

    return payload(report)["runs"][0]["summary"]


@pytest.mark.slow
@pytest.mark.timeout(1200)     # installs torch and transformers (the first time), then trains
def test_run_stop_on_nan_stops_a_real_hf_trainer_with_sigint(venv, tmp_path):
    log, report, notes = tmp_path / "run.log", tmp_path / "r.html", tmp_path / "notes"
    ran = subprocess.run(
        [sys.executable, "-m", "logreport", "run", "-o", str(log), "--report", str(report),
         "--stop-on", "nan,divergence", "--", str(venv / "bin" / "python"), str(SCRIPT),
         str(tmp_path / "out"), str(notes)],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert ran.returncode == 3, ran.stderr[-3000:]
    said = dict(line.split(" ", 1) for line in notes.read_text().splitlines())
    nan_step, nan_time = (float(v) for v in said["nan"].split())
    assert "SIGINT" in said                                  # the trainer got SIGINT ...
    assert "KeyboardInterrupt" in log.read_text(encoding="utf-8")   # ... and ended on it
    stopped = report_summary(report)["stopped"]
    assert (stopped["reason"], stopped["signal"]) == ("nan", "SIGINT")
    assert stopped["step"] == nan_step                       # the step Trainer logged NaN at
    offline = json.loads(subprocess.run(
        [sys.executable, "-m", "logreport", "summary", str(log), "--json"], cwd=ROOT,
        capture_output=True, text=True, check=True).stdout)["runs"][0]
    assert [a["step"] for a in offline["anomalies"] if a["kind"] == "nan"] == [nan_step]
    detected = datetime.fromisoformat(stopped["at"]).timestamp()
    print(f"\nHF Trainer: loss NaN at step {nan_step:g}; SIGINT received "
          f"{float(said['SIGINT']) - nan_time:.2f} s after Trainer logged it (detected after "
          f"{detected - nan_time:.2f} s); the trainer ended at step "
          f"{report_summary(report)['last_step']}")
