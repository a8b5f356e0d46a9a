"""`--stop-on`: which anomaly stops a run, the signals (real processes), and `run` / `watch --pid`
end to end on real logs printed by a stand-in trainer (tests/replay_trainer.py)."""
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import DATA, first_lines

from logreport.analysis import summarize
from logreport.errors import UnknownFormat, UsageError
from logreport.mail import facts
from logreport.procgroup import Escalation, Training
from logreport.reader import load
from logreport.stop import STOPPED_EXIT, StopOn, trigger

ROOT = Path(__file__).resolve().parent.parent
TRAINER = Path(__file__).with_name("replay_trainer.py")
NAN_LOG = DATA / "ppdet" / "faster_rcnn_r50_fpn_coco_nan_lr1e8.log"       # loss nan at step 1
HF_NAN = DATA / "llamafactory" / "sft_full_diverge_nofilter" / "console.log"
DIVERGE_LOG = DATA / "ppdet" / "ppyoloe_crn_s_coco_diverge_lr1000.log"
LONG = DATA / "ppdet" / "picodet_s_320_coco_long80e.log"
# The clean real runs (fixtures/realrun): no anomaly when read whole.
CLEAN = [DATA / "ppdet" / name for name in (
    "picodet_s_320_coco_long80e.log", "picodet_s_320_coco_train.log",
    "picodet_s_320_coco_train-ppdet2.6-paddle2.6.2.log", "picodet_s_320_coco_train-ppdet2.7.1.log",
    "ppyoloe_crn_s_coco_train.log", "ppyoloe_crn_s_coco_train-ppdet2.7.1.log",
    "ppyoloe_crn_s_coco_resume.log", "ppyoloe_crn_s_coco_noeval.log",
    "ppyoloe_crn_s_coco_evalonly_classwise.log", "rtdetr_r18vd_coco_train.log",
    "faster_rcnn_r50_fpn_coco_train.log", "yolov3_mobilenet_v1_voc_train.log",
    "yolov3_mobilenet_v1_voc_train-ppdet2.6-paddle2.6.2.log",
    "yolov3_mobilenet_v1_voc_train-ppdet2.7.1.log")] + [
    DATA / "llamafactory" / name / "console.log" for name in (
        "sft_lora", "sft_full", "dpo_lora", "pt_full", "tf4_sft_lora", "tf4_dpo_lora",
        "sft_lora_llamaboard", "sft_lora_interrupted", "sft_lora_killed_sigterm")]
STOP_ALL = "nan,divergence,stall,eval_regression,spike,zero_loss,throughput_drop"


def payload(report: Path) -> dict:
    html = report.read_text(encoding="utf-8")
    return json.loads(re.search(r'id="report-data">(.*?)</script>', html, re.S).group(1))


def signals_got(path: Path) -> list[str]:
    return [line.split()[0] for line in path.read_text().splitlines()] if path.exists() else []


# --- which anomaly stops ---------------------------------------------------------------
def test_stop_on_parses_kinds_and_patience():
    assert StopOn.parse("nan, divergence,nan") == StopOn(("nan", "divergence"))
    assert StopOn.parse("eval_regression:5,stall") == StopOn(("eval_regression", "stall"), 5)
    for bad in ("traceback", "oom", "nan:3", "eval_regression:0", "eval_regression:x", " , "):
        with pytest.raises(UsageError):
            StopOn.parse(bad)


@pytest.mark.parametrize("log, kind, step", [(NAN_LOG, "nan", 1), (DIVERGE_LOG, "divergence", 3),
                                             (HF_NAN, "nan", 2)])
def test_trigger_is_the_first_named_anomaly_at_a_record(log, kind, step):
    run = load(str(log))
    found = trigger(StopOn.parse(STOP_ALL), run, summarize(run))
    assert (found["kind"], found["step"]) == (kind, step)
    assert trigger(StopOn.parse("stall,eval_regression"), run, summarize(run)) is None


def test_eval_regression_patience_counts_evaluations_without_improvement():
    run = load(str(LONG))
    summary = summarize(run)
    assert trigger(StopOn.parse("eval_regression"), run, summary) is None   # never 3 in a row
    found = trigger(StopOn.parse("eval_regression:2"), run, summary)
    assert found["kind"] == "eval_regression" and "for 2 evals in a row" in found["detail"]
    evals = [a for a in summary["anomalies"] if a["kind"] == "eval_regression"]
    assert evals == []                    # the summary keeps the default (3) of `check`


def test_eval_regression_stops_on_any_dip_as_early_stopping_does(tmp_path):
    """`check` ignores a streak below the best until its latest is 1 % below; `--stop-on
    eval_regression` keeps the frameworks' patience, where any evaluation below the best
    counts. The first 4300 lines of a real AdaFace (PaddleClas) log: in its last training
    segment three evaluations dip 0.08 % under the best (all_test_acc 0.9131 < 0.91384), no
    regression for `check`, and the stop's trigger."""
    lines = gzip.open(DATA / "paddleclas/14_adaface_engine_best_metric_is_all_test_acc.log.gz",
                      "rt", encoding="utf-8").read().split("\n")[:4300]
    log = tmp_path / "adaface.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = load(str(log))
    summary = summarize(run)
    assert [a["line"] for a in summary["anomalies"] if a["kind"] == "eval_regression"] == [1368]
    found = trigger(StopOn.parse("eval_regression"), run, summary)
    assert found["line"] == 4287 and "0.9131 is worse than its best 0.91384" in found["detail"]


def test_an_anomaly_of_an_earlier_segment_does_not_stop_the_run_after_it(tmp_path):
    """Synthetic order of two real logs: the NaN run, then a clean run appended to the file."""
    log = tmp_path / "run.log"
    log.write_bytes(NAN_LOG.read_bytes() + CLEAN[1].read_bytes())
    run = load(str(log))
    summary = summarize(run)
    assert [a["kind"] for a in summary["anomalies"]][:1] == ["nan"] and len(run.segments) > 1
    assert trigger(StopOn.parse("nan"), run, summary) is None


# --- signals to real processes -------------------------------------------------------------
def _sleeper(tmp_path, ignore=""):
    """A process in its own group that notes the signals it gets and ignores `ignore`."""
    flag = tmp_path / "signals"
    code = (f"import signal, time\n"
            f"def note(n, f):\n"
            f"    open({str(flag)!r}, 'a').write(signal.Signals(n).name + '\\n')\n"
            f"    if signal.Signals(n).name not in {ignore!r}.split(','): raise SystemExit(1)\n"
            f"for s in (signal.SIGINT, signal.SIGTERM): signal.signal(s, note)\n"
            f"open({str(flag)!r}, 'a').close()\n"
            f"while True: time.sleep(1)\n")
    training = Training.start([sys.executable, "-c", code], dict(os.environ))
    while not flag.exists():                 # its handlers are set
        time.sleep(0.01)
    return training, flag


@pytest.mark.parametrize("ignore, ended_by", [("", "SIGINT"), ("SIGINT", "SIGTERM"),
                                              ("SIGINT,SIGTERM", "SIGKILL")])
def test_escalation_sigint_then_sigterm_then_sigkill(tmp_path, ignore, ended_by):
    training, flag = _sleeper(tmp_path, ignore)
    assert training.group == training.pid and training.target == f"process group {training.pid}"
    said = []
    escalation = Escalation(training, grace=0.3, kill_after=0.3, say=said.append)
    escalation.start()
    escalation.join(30)
    assert escalation.ended_by == ended_by and not training.alive()
    names = ["SIGINT", "SIGTERM", "SIGKILL"]
    assert [name for name, _ in escalation.sent] == names[:names.index(ended_by) + 1]
    assert signals_got(flag) == [n for n in names[:names.index(ended_by) + 1] if n != "SIGKILL"]
    assert said[0] == f"sent SIGINT to the process group {training.pid}"
    training.popen.stdout.close()


def test_a_process_that_already_ended_gets_no_signal(tmp_path):
    training, _ = _sleeper(tmp_path)
    training.popen.kill()
    training.popen.wait()
    escalation = Escalation(training, grace=0.3)
    escalation.run()
    assert escalation.sent == [] and escalation.ended_by is None
    training.popen.stdout.close()


def test_another_process_is_followed_until_it_ends_even_unreaped(tmp_path):
    """`watch --pid`: not our child; an ended process its parent did not reap yet is gone."""
    dummy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                             start_new_session=True)
    training = Training.attach(dummy.pid)
    assert training.popen is None and training.alive()
    assert not training.wait(0.2)
    os.kill(dummy.pid, signal.SIGKILL)
    assert training.wait(30) and not training.alive()      # a zombie until dummy.wait()
    dummy.wait()


def test_a_process_in_logreports_own_group_is_signalled_alone():
    dummy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        training = Training.attach(dummy.pid)
        assert training.group is None and training.target == f"process {dummy.pid}"
        assert training.send(signal.SIGTERM)
        dummy.wait(30)
    finally:
        dummy.kill()


# --- end to end ---------------------------------------------------------------------------
def logreport(*args, **kw):
    return subprocess.run([sys.executable, "-m", "logreport", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, **kw)


@pytest.mark.parametrize("log, step", [(NAN_LOG, 1), (HF_NAN, 2)])
def test_run_stop_on_nan_stops_the_trainer_with_sigint(tmp_path, log, step):
    flag, out, report = tmp_path / "signals", tmp_path / "run.log", tmp_path / "r.html"
    ran = logreport("run", "-o", out, "--report", report, "--stop-on", "nan,divergence",
                    "--", sys.executable, TRAINER, log, flag)
    assert ran.returncode == STOPPED_EXIT, ran.stderr
    assert signals_got(flag) == ["SIGINT"]
    assert "KeyboardInterrupt" in out.read_text()           # the trainer's own last words
    assert "stopping the process group" in ran.stderr and f"nan at step {step}" in ran.stderr
    stopped = payload(report)["runs"][0]["summary"]["stopped"]
    assert (stopped["reason"], stopped["step"], stopped["signal"]) == ("nan", step, "SIGINT")
    assert stopped["text"].startswith(f"stopped by logreport at step {stopped['last_step']}: nan "
                                      f"at step {step} (")
    assert stopped["last_step"] >= step
    assert stopped["text"].endswith("SIGINT ended it")
    rows = {r["key"]: r["values"] for r in payload(report)["compare"]}
    assert rows["stopped"] == [stopped["text"]]                # the report's summary table
    assert ("stopped", stopped["text"]) in facts(payload(report)["runs"][0]["summary"])  # mail
    assert ran.stderr.rstrip().splitlines()[-1] == \
        f"logreport: {stopped['text']}; exit code {STOPPED_EXIT}"


def test_a_trainer_that_ignores_sigint_gets_sigterm_after_the_grace(tmp_path):
    flag, out, report = tmp_path / "signals", tmp_path / "run.log", tmp_path / "r.html"
    ran = logreport("run", "-o", out, "--report", report, "--stop-on", "nan", "--grace", "0.5",
                    "--", sys.executable, TRAINER, NAN_LOG, flag, "--ignore", "SIGINT")
    assert ran.returncode == STOPPED_EXIT, ran.stderr
    assert signals_got(flag) == ["SIGINT", "SIGTERM"]
    stopped = payload(report)["runs"][0]["summary"]["stopped"]
    assert stopped["signal"] == "SIGTERM" and [s[0] for s in stopped["signals"]] == \
        ["SIGINT", "SIGTERM"]


def test_dry_run_stop_only_says_what_it_would_do(tmp_path):
    flag, out, report = tmp_path / "signals", tmp_path / "run.log", tmp_path / "r.html"
    ran = logreport("run", "-o", out, "--report", report, "--stop-on", "nan", "--dry-run-stop",
                    "--", sys.executable, TRAINER, NAN_LOG, flag, "--exit")
    assert ran.returncode == 0, ran.stderr
    assert signals_got(flag) == []
    said = [line for line in ran.stderr.splitlines() if line.startswith("--dry-run-stop")]
    assert len(said) == 1 and "would stop the process group" in said[0] and \
        "nan at step 1" in said[0] and "SIGTERM 60 s later" in said[0]
    assert "stopped" not in payload(report)["runs"][0]["summary"]


def _replay(lines: list[bytes], log: Path, chunk: int = 3, pause: float = 0.02) -> None:
    with open(log, "ab") as f:
        for i in range(0, len(lines), chunk):
            f.writelines(lines[i:i + chunk])
            f.flush()
            time.sleep(pause)


def _watch_pid(log: Path, report: Path, pid: int, *extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "logreport", "watch", str(log), "--no-tui",
                             "-o", str(report), "--pid", str(pid), *map(str, extra)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _dummy(flag: Path, exit_on: str = "") -> subprocess.Popen:
    """A sleeping process that notes SIGINT and SIGTERM and ignores them (except exit_on)."""
    code = (f"import signal, time\n"
            f"def note(n, f):\n"
            f"    open({str(flag)!r}, 'a').write(signal.Signals(n).name + '\\n')\n"
            f"    if signal.Signals(n).name == {exit_on!r}: raise SystemExit(0)\n"
            f"for s in (signal.SIGINT, signal.SIGTERM): signal.signal(s, note)\n"
            f"open({str(flag)!r}, 'a').close()\n"
            f"while True: time.sleep(1)\n")
    dummy = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    while not flag.exists():
        time.sleep(0.01)
    return dummy


def test_watch_pid_stops_a_run_started_elsewhere(tmp_path):
    flag, log, report = tmp_path / "signals", tmp_path / "run.log", tmp_path / "r.html"
    log.write_bytes(b"")
    dummy = _dummy(flag, exit_on="SIGTERM")
    watch = _watch_pid(log, report, dummy.pid, "--stop-on", "nan", "--grace", "0.5")
    try:
        _replay(NAN_LOG.read_bytes().splitlines(keepends=True), log)
        out, err = watch.communicate(timeout=120)
    finally:
        watch.kill()
        dummy.kill()
        dummy.wait()
    assert watch.returncode == STOPPED_EXIT, err
    assert signals_got(flag) == ["SIGINT", "SIGTERM"]
    stopped = payload(report)["runs"][0]["summary"]["stopped"]
    assert (stopped["reason"], stopped["step"], stopped["signal"]) == ("nan", 1, "SIGTERM")


def _replay_clean(tmp_path, fixtures) -> None:
    """Each log appended a few lines at a time while `watch --stop-on <every kind> --pid <a
    sleeping dummy>` follows it: no stop, no signal, exit 0 when the dummy ends."""
    runs = []
    for i, fixture in enumerate(fixtures):
        folder = tmp_path / str(i)
        folder.mkdir()
        flag, log, report = folder / "signals", folder / "run.log", folder / "r.html"
        log.write_bytes(b"")
        dummy = _dummy(flag)
        runs.append((fixture, flag, dummy, _watch_pid(log, report, dummy.pid, "--stop-on", STOP_ALL),
                     report))
    writers = [threading.Thread(target=_replay, args=(fixture.read_bytes().splitlines(
        keepends=True), tmp_path / str(i) / "run.log")) for i, fixture in enumerate(fixtures)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    try:
        for fixture, flag, dummy, watch, report in runs:
            want = summarize(load(str(fixture)))["train_records"]
            deadline = time.monotonic() + 60     # until the watch has read the whole log
            while time.monotonic() < deadline and not (
                    report.exists() and payload(report)["runs"][0]["summary"]["train_records"] == want):
                time.sleep(0.2)
            dummy.kill()
            dummy.wait()
            _, err = watch.communicate(timeout=60)
            assert watch.returncode == 0, (fixture.name, err)
            assert "stopping" not in err and "would stop" not in err, (fixture.name, err)
            assert signals_got(flag) == [], fixture.name
            summary = payload(report)["runs"][0]["summary"]
            assert summary["train_records"] == want and "stopped" not in summary, fixture.name
    finally:
        for _, _, dummy, watch, _ in runs:
            dummy.kill()
            watch.kill()


@pytest.mark.timeout(120)      # two watches follow two real logs as they are written
def test_stop_on_never_fires_on_two_clean_real_runs_replayed_live(tmp_path):
    _replay_clean(tmp_path, [LONG, DATA / "llamafactory" / "sft_lora" / "console.log"])


@pytest.mark.slow
@pytest.mark.timeout(600)      # 23 watches at once on 2 cores
def test_stop_on_never_fires_on_any_clean_real_run_replayed_live(tmp_path):
    _replay_clean(tmp_path, CLEAN)


@pytest.mark.parametrize("args, words", [
    (["watch", "x.log", "--stop-on", "nan"], "watch --stop-on needs --pid PID"),
    (["watch", "x.log", "--pid", str(os.getpid()), "--stop-on", "traceback"],
     "--stop-on cannot use 'traceback'"),
    (["watch", "x.log", "--pid", "999999999"], "no process 999999999"),
    (["watch", "x.log", "--dry-run-stop"], "--dry-run-stop needs --stop-on"),
])
def test_bad_stop_options_are_one_line_and_exit_2(runner, args, words):
    from logreport.cli import main

    result = runner.invoke(main, args)
    assert result.exit_code == 2 and words in result.stderr, result.output
    assert "Traceback" not in result.output


def test_run_with_a_bad_stop_on_never_starts_the_command(tmp_path):
    marker = tmp_path / "started"
    ran = logreport("run", "-o", tmp_path / "run.log", "--stop-on", "nan:2", "--",
                    sys.executable, "-c", f"open({str(marker)!r}, 'w')")
    assert ran.returncode == 2 and "only eval_regression takes a number" in ran.stderr
    assert not marker.exists()


def test_a_stall_stops_the_training_in_process(tmp_path):
    """The Stopper inside a Watch: a real unfinished log, then a minute without a line."""
    from logreport.stop import Stopper
    from logreport.watch import Options, Watch

    log = tmp_path / "run.log"
    log.write_bytes(first_lines(LONG, 120))
    training, flag = _sleeper(tmp_path)
    stopper = Stopper(StopOn.parse("stall"), training, grace=0.3)
    w = Watch(str(log), Options(poll=1.0, output=str(tmp_path / "r.html"), stall_minutes=1,
                                stopper=stopper))
    w.step()
    w.step()
    w.publish()
    stopper.update(w)
    assert not stopper.stopped
    w.last_line -= 61                                        # a minute without a new line
    w.publish()
    stopper.update(w)
    assert stopper.stopped and stopper.entry["reason"] == "stall"
    stopper.escalation.join(30)
    w.finish()
    assert signals_got(flag) == ["SIGINT"] and not training.alive()
    stopped = payload(tmp_path / "r.html")["runs"][0]["summary"]["stopped"]
    assert stopped["signal"] == "SIGINT" and stopped["detail"].startswith("no new line for 1m")
    assert stopped["ended"] and stopped["text"].endswith("; SIGINT ended it")
    training.popen.stdout.close()


def test_a_watched_output_folder_keeps_the_stopped_entry(tmp_path):
    """A LLaMA-Factory output folder is merged anew at each refresh: `stopped` stays."""
    import shutil

    from logreport.stop import Stopper
    from logreport.watch import Options, Watch

    folder = tmp_path / "out"
    shutil.copytree(HF_NAN.parent, folder)
    training, flag = _sleeper(tmp_path)
    stopper = Stopper(StopOn.parse("nan"), training, grace=5)
    w = Watch(str(folder), Options(poll=1.0, output=str(tmp_path / "r.html"), stopper=stopper))
    w.step()
    w.step()
    w.publish()
    stopper.update(w)
    assert stopper.stopped and (stopper.entry["reason"], stopper.entry["step"]) == ("nan", 2)
    stopper.escalation.join(30)
    w.publish(whole=True)
    w.finish()
    assert w.summary["stopped"]["signal"] == "SIGINT" and signals_got(flag) == ["SIGINT"]
    training.popen.stdout.close()


@pytest.mark.parametrize("fixture", CLEAN, ids=lambda p: p.parent.name if p.name == "console.log" else p.stem)
def test_no_stop_on_any_early_prefix_of_a_clean_real_run(fixture, tmp_path):
    """What a live watch may have read of a clean real run, at any of its first 40 lines with
    a record and at 20 points after: no anomaly that --stop-on names (the slow test replaying
    these runs live found faster_rcnn's one 227x loss at step 1 taken for divergence, only
    when the watch read exactly that far)."""
    lines = fixture.read_bytes().splitlines(keepends=True)
    ends = [i + 1 for i, line in enumerate(lines) if b"loss" in line][:40]
    ends += range(ends[-1] if ends else 1, len(lines) + 1, max(1, len(lines) // 20))
    log = tmp_path / fixture.name
    for end in sorted(set(ends)):
        log.write_bytes(first_lines(fixture, end))
        try:
            run = load(str(log))
        except UnknownFormat:           # too few lines yet to tell the format
            continue
        if run.count("train"):
            found = trigger(StopOn.parse(STOP_ALL), run, summarize(run))
            assert found is None, (end, found)
