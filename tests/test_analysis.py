"""Anomalies, status, timing and `logreport check` on the real fixtures of tests/data."""
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import first_lines

from logreport.analysis import Thresholds, anomalies, stall, status, summarize
from logreport.cli import main
from logreport.reader import load

DATA = Path(__file__).parent / "data"
PPDET = DATA / "ppdet"
LF = DATA / "llamafactory"


def test_nan_gives_first_step_and_count():
    [nan] = anomalies(load(str(PPDET / "public_07_ppyolo_nan_paddle33911.log")))
    assert (nan["kind"], nan["step"], nan["metric"], nan["line"]) == ("nan", 0, "loss", 2)
    assert "3 records" in nan["detail"]          # steps 0 and 20, then 20 again after a restart


def test_traceback_detail_is_the_exception_line():
    found = anomalies(load(str(PPDET / "picodet_s_320_coco_nan_crash.log")))
    path = str(PPDET / "picodet_s_320_coco_nan_crash.log")
    assert [a for a in found if a["kind"] == "traceback"] == [
        {"kind": "traceback", "step": 3, "metric": None, "line": 51, "file": path,
         "detail": "ValueError: (InvalidArgument) Illegal input, input must be "
                   "greater than  or equal to 0", "step_estimated": False}]


def test_divergence_names_the_step_the_loss_left_its_level():
    found = anomalies(load(str(PPDET / "ppyoloe_crn_s_coco_diverge_lr1000.log")))
    div = next(a for a in found if a["kind"] == "divergence")
    assert (div["step"], div["line"]) == (3, 16)        # loss 5.13, 4.62, 3590, 22500, ...


def test_each_training_of_a_log_of_many_processes_is_read_once(tmp_path, monkeypatch):
    """Divergence judges each training of a log on its own (lineage_starts): with a real log
    appended 30 times (30 processes, 30 trainings) each training's records are read, not every
    record of the log once per training (a log of 661 launches took 12 s to judge so)."""
    from logreport import model

    path = tmp_path / "relaunched.log"
    path.write_bytes((PPDET / "rtdetr_r18vd_coco_train.log").read_bytes() * 30)
    run = load(str(path))
    assert len(run.segments) == 30
    slices, read = model._slices, []

    def counted(*args, **kwargs):
        for part in slices(*args, **kwargs):
            read.append(part)
            yield part

    monkeypatch.setattr(model, "_slices", counted)
    assert anomalies(run, kinds=["divergence"]) == []
    assert 0 < len(read) <= 3 * len(run.segments)


def _first_lines(path: Path, tmp_path: Path, count: int) -> str:
    """The log as a watch sees it after its first `count` lines."""
    out = tmp_path / f"{count}_{path.name}"
    out.write_bytes(first_lines(path, count))
    return str(out)


def test_a_spike_of_a_loss_near_zero_must_rise_a_share_of_the_training_drop():
    """PaddleNLP's FewCLUE tasks memorise their few-shot sets: the loss falls from ~1.8 to
    ~1e-7 and wobbles there. 5.13e-06 after a median of 2.45e-07 is 21x, and was a spike; a
    rise of 0.0003 % of the training's drop is noise (as for divergence). A jump to 0.358 is
    still one."""
    run = load(str(DATA / "paddlenlp"
                   / "11_trainer_2022_08_fewclue_ten_tasks_one_file_near_zero_loss_oom.log.gz"))
    lines = [a["line"] for a in anomalies(run) if a["kind"] == "spike"]
    assert 1263 not in lines and 275 not in lines and 1250 in lines and 210 in lines
    assert len(lines) == 17
    assert 1263 in [a["line"] for a in anomalies(run, Thresholds(spike_min_rise=0))
                    if a["kind"] == "spike"]


def test_one_high_loss_that_falls_back_is_no_divergence(tmp_path):
    """A real clean run: faster_rcnn's loss goes 71.2 at step 0, 16169 at step 1 (227x), then
    2.1 and down. Read as far as step 1 (what a live watch may have read), it is no divergence
    (before: `watch --stop-on divergence` could stop this healthy run); a blowup that stays high
    (picodet's 4.2, 1808, 93280) still is, at the step it started."""
    clean = PPDET / "faster_rcnn_r50_fpn_coco_train.log"
    for count in (13, 14):                      # up to the 16169 record, and the 2.1 after it
        assert not anomalies(load(_first_lines(clean, tmp_path, count)))
    crash = PPDET / "picodet_s_320_coco_nan_crash.log"
    assert not anomalies(load(_first_lines(crash, tmp_path, 14)))   # 4.2 then 1808 so far
    [div] = anomalies(load(_first_lines(crash, tmp_path, 15)))      # then 93280
    assert (div["kind"], div["step"]) == ("divergence", 1) and "93279.8 after it" in div["detail"]


def test_thresholds_are_options_eval_regression_and_throughput_drop():
    long80 = load(str(PPDET / "picodet_s_320_coco_long80e.log"))
    # AP 0.096 at epoch 59, then 0.052 and 0.018: two evals below the best
    assert not anomalies(long80)
    [reg] = anomalies(long80, Thresholds(eval_regression_evals=2))
    assert (reg["kind"], reg["metric"], reg["step"]) == ("eval_regression", "bbox/AP", 959)
    rtdetr = load(str(PPDET / "rtdetr_r18vd_coco_train.log"))
    [drop] = anomalies(rtdetr, Thresholds(throughput_drop=0.1, throughput_records=3))
    # ips 0.1573, 0.1541, 0.1615 at lines 23, 65, 66: under 0.9 x the median 0.1828
    assert (drop["kind"], drop["step"], drop["line"]) == ("throughput_drop", 11, 23)


def test_stall_is_relative_to_the_runs_own_pace():
    run = load(str(PPDET / "ppyoloe_crn_s_coco_train.log"))   # ~2-5 s between records
    assert stall(run, 60) is None                               # under the 5 min floor
    found = stall(run, 3600)
    assert found["kind"] == "stall" and found["step"] == 35 and "1h 00m" in found["detail"]
    assert stall(run, 90, minutes=1)["kind"] == "stall"
    assert stall(run, 3600, th=Thresholds(stall_min_seconds=7200)) is None


def _copy(src: Path, dst: Path, lines: int | None = None) -> str:
    if lines is None:
        shutil.copy(src, dst)
    else:
        dst.write_text("".join(src.read_text(encoding="utf-8").splitlines(True)[:lines]),
                       encoding="utf-8")
    return str(dst)


def test_status_of_a_fresh_copy_is_not_running(tmp_path):
    """A log cut mid-run and just copied: new mtime, old lines -> unknown, not running."""
    path = _copy(PPDET / "ppyoloe_crn_s_coco_train.log", tmp_path / "mid.log", 20)
    run = load(path)
    state, evidence = status(run)
    assert state == "unknown" and "older than the file's last change" in evidence
    assert status(run, live=True)[0] == "running"
    # written as the run went: the file changed right after its last line (16:45:58 local)
    stamp = run.last_time + (os.path.getmtime(path) - _local(os.path.getmtime(path)))
    os.utime(path, (stamp + 5, stamp + 5))
    run = load(path)                     # status reads no file: the mtime comes with the run
    assert run.modified == stamp + 5
    assert status(run, now=stamp + 60)[0] == "running"
    assert status(run, now=stamp + 3600)[0] == "unknown"


def _local(t):
    from logreport.analysis.status import local_clock as _local_clock
    return _local_clock(t)


@pytest.mark.parametrize("name,state", [
    ("ppyoloe_crn_s_coco_train.log", "finished"),            # ppdet's ETA ran out
    ("yolov3_mobilenet_v1_voc_nan_crash.log", "failed"),     # traceback after the last step
    ("public_35_yolov5_fork_multi_epoch_notebook.log", "failed"),   # ^C
    ("ppyoloe_crn_s_coco_evalonly_nodets.log", "unknown"),
])
def test_status(tmp_path, name, state):
    assert status(load(_copy(PPDET / name, tmp_path / name)))[0] == state


def test_timing_per_epoch_excludes_each_epochs_first_record():
    s = summarize(load(str(PPDET / "ppyoloe_crn_s_coco_train.log")))
    t = s["timing"]
    # epoch 0: mean batch_cost of iterations 1..11 (log lines 14-24) x 12 iterations
    assert t["first_record_of_epoch_excluded"] is True
    assert t["epoch_seconds"]["epochs"] == 3
    assert t["epoch_seconds"]["fastest"]["epoch"] == 0
    assert t["epoch_seconds"]["fastest"]["seconds"] == pytest.approx(30.3267, abs=1e-3)
    assert t["epoch_seconds"]["slowest"]["epoch"] == 2
    # last train line -> "Total sample number": 16:46:19 -> :24, 16:46:59 -> 16:47:04,
    # 16:47:36 -> :40 (each after iteration 11 of 12: no training left to subtract)
    assert t["eval"]["measured"] == 3 and t["eval"]["mean_seconds"] == pytest.approx(14 / 3)
    assert t["images_per_second"] == {"per_gpu": 0.813, "gpus": None, "total": None}
    assert s["progress"]["percent"] == 100.0 and s["progress"]["total_steps"] == 36


def test_eta_adds_the_evaluations_still_to_come(tmp_path):
    """PicoDet 80 epochs, eval every 10: cut after epoch 40 four evals remain (49..79)."""
    src = PPDET / "picodet_s_320_coco_long80e.log"
    cut = next(i for i, line in enumerate(src.read_text(encoding="utf-8").splitlines(), 1)
               if "Epoch: [41]" in line)
    run = load(_copy(src, tmp_path / "cut.log", cut))
    s = summarize(run)
    ev = s["timing"]["eval"]
    assert ev["remaining_evals"] == 4 and ev["measured"] == 4
    own = run.segments[-1].train.series["eta_seconds"].value[-1]
    assert s["eta_seconds"] == pytest.approx(own + 4 * ev["mean_seconds"])
    assert s["progress"]["percent"] == pytest.approx(100 * (41 * 12 + 1) / 960, abs=0.01)


def test_llamafactory_nan_filter_gives_zero_loss_and_nan_grad_norm():
    """LLaMA-Factory's NaN filter logs loss 0.0 with grad_norm nan from step 2 to 12."""
    found = anomalies(load(str(LF / "sft_full_diverge")))
    assert [(a["kind"], a["step"], a["metric"]) for a in found] == [
        ("nan", 2, "grad_norm"), ("zero_loss", 2, "loss")]
    assert "11 records" in found[0]["detail"] and "for 11 records" in found[1]["detail"]


def test_llamafactory_progress():
    done = summarize(load(str(LF / "sft_lora")))
    assert done["progress"]["percent"] == 100.0
    assert done["progress"]["best_eval_loss"]["value"] == 7.5584940910339355   # step 60 of 60
    assert done["progress"]["best_eval_loss"]["step"] == 60
    killed = summarize(load(str(LF / "sft_lora_killed_sigterm")))
    # trainer_log.jsonl ends at step 127 of 200, "remaining_time": "0:05:44"
    assert killed["status"] == "unknown" and killed["progress"]["percent"] == 63.5
    assert killed["progress"]["remaining_seconds"] == 344.0
    assert killed["progress"]["best_eval_loss"]["step"] == 120
    interrupted = summarize(load(str(LF / "sft_lora_interrupted")))
    assert interrupted["status"] == "failed"
    assert interrupted["anomalies"][0]["detail"] == "KeyboardInterrupt"


def test_check_exit_codes_and_json(runner):
    clean = str(PPDET / "picodet_s_320_coco_long80e.log")
    crash = str(PPDET / "yolov3_mobilenet_v1_voc_nan_crash.log")
    result = runner.invoke(main, ["check", clean])
    assert result.exit_code == 0 and "0 anomalies" in result.stdout
    result = runner.invoke(main, ["check", clean, crash])
    assert result.exit_code == 1
    assert "traceback" in result.stdout and "found divergence, traceback" in result.stderr
    result = runner.invoke(main, ["check", crash, "--fail-on", "oom,nan", "--json"])
    data = json.loads(result.stdout)     # none of those kinds, but the run failed: exit 1
    assert result.exit_code == 1 and data["failed"] is True
    assert data["runs"][0]["status"] == "failed"
    assert f"{crash} failed (" in result.stderr and "found" not in result.stderr
    assert [a["kind"] for a in data["runs"][0]["anomalies"]] == ["divergence", "spike",
                                                                 "traceback"]
    result = runner.invoke(main, ["check", clean, "--fail-on", "oom,nan", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["failed"] is False
    result = runner.invoke(main, ["check", clean, "--eval-regression-evals", "2",
                                  "--fail-on", "eval_regression"])
    assert result.exit_code == 1


def test_check_fails_a_run_that_failed_whatever_its_kinds(runner):
    """A real static-graph Cascade R-CNN paste that ran out of GPU memory: its status is
    `failed` (oom), and `check` exits 1 with the default --fail-on (which has no `oom`), as
    `watch --exit-when-done` does; it used to print `failed (oom ...)` and exit 0."""
    log = str(PPDET / "public_33_static_cascade_rcnn_oom_pd3679.log")
    result = runner.invoke(main, ["check", log])
    assert result.exit_code == 1
    assert "failed (oom at line 6: " in result.stdout
    assert result.stderr.startswith(f"logreport: {log} failed (oom at line 6: ")


def test_check_rejects_an_unknown_kind(runner):
    result = runner.invoke(main, ["check", str(PPDET / "ppyoloe_crn_s_coco_train.log"),
                                  "--fail-on", "nan,bogus"])
    assert result.exit_code == 2 and "unknown kind 'bogus'" in result.stderr


def test_ppdet_run_is_not_finished_before_the_eval_after_its_last_epoch(data, tmp_path):
    """ppdet evaluates after the last epoch: a log cut right after the last training line
    (as a live watch sees it) is still running; the whole log is finished."""
    src = data / "ppdet/ppyoloe_crn_s_coco_train.log"
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    last_train = max(i for i, line in enumerate(lines) if "Epoch: [" in line)
    cut = tmp_path / "run.log"
    cut.write_text("".join(lines[: last_train + 1]), encoding="utf-8")
    assert status(load(str(cut)), live=True)[0] == "running"
    assert status(load(str(src)))[0] == "finished"


def test_rolling_medians_and_minimums_equal_numpys_for_every_width():
    """The min/max network of narrow windows gives numpy's median exactly (odd and even
    widths, ties, zeros, heavy tails; wide windows are numpy's own), and the shifted-copy
    rolling minimum gives a window view's minimum (fewer values at the start)."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    from logreport.analysis.rolling import _medians, _rolling_min

    rng = np.random.default_rng(1)
    for width in range(1, 25):
        vals = np.round(rng.standard_cauchy(500), int(rng.integers(0, 3)))
        vals[rng.random(500) < 0.1] = 0
        windows = sliding_window_view(vals, width)
        assert np.array_equal(_medians(windows), np.median(windows, axis=1))
        padded = np.concatenate([np.full(width - 1, np.inf), vals])
        assert np.array_equal(_rolling_min(vals, width),
                              sliding_window_view(padded, width).min(axis=1))



def test_median_of_is_numpys_median_without_numpy_ma():
    """median_of gives np.median's values and types (odd and even lengths, NaN and inf among
    them, integers, rows of a 2-d array), and a summary no longer imports numpy.ma (np.median
    does on its first call: 8 ms)."""
    import subprocess
    import sys

    import numpy as np

    from logreport.analysis.rolling import median_of

    rng = np.random.default_rng(2)
    for n in range(1, 40):
        vals = np.round(rng.standard_cauchy(n), int(rng.integers(0, 4)))
        if n % 3 == 0:
            vals[rng.integers(n)] = np.nan
        if n % 4 == 0:
            vals[rng.integers(n)] = np.inf
        ints = rng.integers(0, 9, n)
        rows = np.round(rng.standard_cauchy((6, n)), 2)
        rows[rng.integers(6), rng.integers(n)] = np.nan
        for got, want in [(median_of(vals), np.median(vals)), (median_of(ints), np.median(ints)),
                          (median_of(rows, axis=1), np.median(rows, axis=1))]:
            assert np.array_equal(got, want, equal_nan=True) and type(got) is type(want)
    log = DATA / "llamafactory" / "sft_lora" / "console.log"
    code = ("import sys; from logreport.cli import main\n"
            "try: main(['summary', '--json', sys.argv[1]])\n"
            "except SystemExit: pass\n"
            "print('numpy.ma' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, str(log)], capture_output=True, text=True)
    assert '"runs"' in done.stdout and done.stderr.strip() == "False"

def test_median_before_matches_the_plain_rolling_median_where_it_matters():
    """The spike test's shortcut (medians only where the window minimum allows a hit) gives the
    plain rolling median wherever a spike is possible, on random heavy-tailed series with zeros."""
    import numpy as np

    from logreport.analysis.rolling import median_before, rolling_median

    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 80))
        vals = np.abs(rng.standard_cauchy(n))
        vals[rng.random(n) < 0.2] = 0
        width, factor = int(rng.integers(1, 25)), float(rng.choice([1.5, 3, 10]))
        plain = np.full(n, np.nan)
        plain[1:] = rolling_median(vals, width)[:-1]
        got = median_before(vals, width, factor)
        known = np.isfinite(got)
        assert np.allclose(got[known], plain[known])
        possible = (np.arange(n) > 0) & (plain > 0) & (vals > factor * plain)
        assert not (possible & ~known).any()


def test_throughput_is_judged_within_each_training(tmp_path):
    """Two real runs appended to one log (a file every launch appends to): PP-YOLOE (about
    0.8 images/s) then PicoDet (faster). Each alone has no anomaly; together the run's median
    (mostly PicoDet's) made PP-YOLOE's whole training a `throughput_drop`. Each training is
    judged by its own median: with looser thresholds, PicoDet then RT-DETR give the drops each
    gives alone (PicoDet's first records, RT-DETR's at step 11)."""
    ppyoloe, picodet = (PPDET / "ppyoloe_crn_s_coco_train.log").read_text(), \
        (PPDET / "picodet_s_320_coco_train.log").read_text()
    appended = tmp_path / "appended.log"
    appended.write_text(ppyoloe + picodet)
    assert not [a for a in anomalies(load(str(appended))) if a["kind"] == "throughput_drop"]
    rtdetr = tmp_path / "then_rtdetr.log"
    rtdetr.write_text(picodet + (PPDET / "rtdetr_r18vd_coco_train.log").read_text())
    drops = [a for a in anomalies(load(str(rtdetr)), Thresholds(throughput_drop=0.1,
                                                              throughput_records=3))
             if a["kind"] == "throughput_drop"]
    assert [a["step"] for a in drops] == [0, 11]
    assert all("its training's median" in a["detail"] for a in drops)
    assert "median 5.149" in drops[0]["detail"] and "median 0.1828" in drops[1]["detail"]


def test_no_evaluation_is_timed_across_training_the_log_does_not_hold():
    """public_52: 4 training lines of epoch 0 (iter 60 of 1929), then tools/eval.py's table 3 h
    later. That time was an evaluation's (8272 s, x 49 still due: ETA 6.5 days for the log's
    1 d 19 h). The 1868 iterations between are not in the log: the evaluation is not timed."""
    s = summarize(load(str(PPDET / "public_52_picodet_layout_readme_train_excerpt_then"
                                   "_evalpy_result_hours_later.log")))
    assert s["timing"]["eval"] is None
    assert s["eta_seconds"] == 154889.0 == s["progress"]["remaining_seconds"]
