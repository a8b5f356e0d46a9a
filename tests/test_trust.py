"""Never silently wrong (issue 14): each case seen on real logs, as a regression test.

Real fixtures throughout; where a case is a paste shape the fixtures do not have (a console
that lost its redraws, a trainer_log.jsonl with a user's `...`), the test builds it from real
lines of a fixture and says it is synthetic.
"""
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA, collapsed

from logreport import headline, present, wording
from logreport.analysis import (
    anomalies,
    best,
    lineage_starts,
    lower_is_better,
    summarize,
    wall_seconds,
)
from logreport.cli import main
from logreport.model import iso_time, json_number
from logreport.pipeline import SNIFF_LINES
from logreport.reader import load, load_all
from logreport.report import build, unpack

PPDET = DATA / "ppdet"
LF = DATA / "llamafactory"
LONG80 = PPDET / "picodet_s_320_coco_long80e.log"
NAN_CRASH = PPDET / "picodet_s_320_coco_nan_crash.log"
LIGHTNING = sorted((DATA / "negative").glob("N[2345]_*.log"))


def summaries(*args):
    result = CliRunner().invoke(main, ["summary", "--json", *map(str, args)])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["runs"], result.stderr


def train_rows(run, phase="train"):
    """(step, estimated, metric values) of every record, in order (NaN compares equal)."""
    out = []
    for _, table in run.tables(phase):
        steps, flags = np.asarray(table.step), np.asarray(table.estimated)
        values = {name: dict(zip(series.rec.tolist(), np.asarray(series.value).tolist()))
                  for name, series in table.series.items()}
        for i in range(len(table)):
            out.append((float(steps[i]), bool(flags[i]),
                        {k: json_number(v[i]) for k, v in values.items() if i in v}))
    return out


# --- 1. one run per log --------------------------------------------------------------------
def test_a_folder_of_logs_is_one_run_per_log(tmp_path):
    logs = sorted([*PPDET.glob("yolov3_*.log"), NAN_CRASH], key=lambda p: p.name)
    for log in logs:
        shutil.copy(log, tmp_path)
    alone = [summaries(log)[0][0] for log in logs]
    for given in ([tmp_path], [f"{tmp_path}/*.log"], sorted(tmp_path.glob("*.log"))):
        runs, err = summaries(*given)
        assert len(runs) == len(logs)
        for got, want in zip(runs, alone):
            assert os.path.basename(got["source"]) == os.path.basename(want["source"])
            for key in ("train_records", "last_step", "final", "best", "wall_seconds", "status"):
                assert got[key] == want[key], key
            assert [a["kind"] for a in got["anomalies"]] == [a["kind"] for a in want["anomalies"]]
        if given[0] == tmp_path:
            assert err == f"logreport: {tmp_path}: 5 logs of separate runs, one run each " \
                          "(give a file to read one)\n"
    crash = next(r for r in runs if r["source"].endswith(NAN_CRASH.name))
    assert all(a["file"] == crash["source"] for a in crash["anomalies"])
    assert all(r["wall_seconds"] is None or r["wall_seconds"] >= 0 for r in runs)


def test_an_output_folder_stays_one_run_and_other_files_are_skipped_said(tmp_path):
    (tmp_path / "runs").mkdir()
    shutil.copytree(LF / "sft_lora", tmp_path / "runs" / "sft_lora")
    shutil.copy(PPDET / "picodet_s_320_coco_train.log", tmp_path / "runs")
    (tmp_path / "runs" / "notes.txt").write_text("lr sweep, second try\n")
    runs, err = summaries(tmp_path / "runs")
    assert [os.path.basename(r["source"]) for r in runs] == ["picodet_s_320_coco_train.log",
                                                              "sft_lora"]
    assert runs[1]["train_records"] == 60
    assert "skipped 1 file with no training records: notes.txt" in err


def test_an_output_folders_files_of_another_run_are_left_out_and_said(tmp_path):
    """A finished 60-step SFT's output folder holding a PaddleDetection log, the console of an
    earlier attempt of another length (200 steps, Ctrl-C at step 12) and a copy of another
    run's console: the detector's loss, AP and clock were the run's (loss 4.05 -> 7.52, 61
    records, 11m 22s), the attempt's Ctrl-C made it `failed`, and the copy, which gave
    nothing new, stretched its 91 s to 12m 36s."""
    folder = tmp_path / "sft_lora"
    shutil.copytree(LF / "sft_lora", folder)
    (alone,), _ = summaries(folder)
    shutil.copy(PPDET / "picodet_s_320_coco_train.log", folder / "det_train.log")
    shutil.copy(LF / "sft_lora_interrupted" / "console.log", folder / "attempt1.log")
    shutil.copy(LF / "tf4_sft_lora" / "console.log", folder / "tf4_console.log")
    (run,), err = summaries(folder)
    for key in ("status", "train_records", "eval_records", "wall_seconds", "final", "best",
                "last_step", "anomalies"):
        assert run[key] == alone[key], key
    assert run["status"] == "finished" and run["wall_seconds"] == 91
    assert f"{folder}/det_train.log: left out: a PaddleDetection log, another tool's than " \
        "this run's (transformers); give it alone to read it" in err
    assert f"{folder}/attempt1.log: left out: another training's: 200 steps in all, " \
        "trainer_log.jsonl 60" in err
    assert not any(name.endswith(("det_train.log", "attempt1.log")) for name in run["files"])
    # a console of another training of the same length: its losses at the run's steps differ
    diverge = tmp_path / "sft_full_diverge"
    shutil.copytree(LF / "sft_full_diverge", diverge)
    (before,), _ = summaries(diverge)
    shutil.copy(LF / "dpo_lora" / "console.log", diverge / "dpo_console.log")
    (after,), err = summaries(diverge)
    assert after == before
    assert f"{diverge}/dpo_console.log: left out: another run's: 12 of its 12 training losses " \
        "at the steps trainer_log.jsonl states differ" in err


def test_an_output_folders_console_gives_where_its_bar_ended():
    """An output folder's console gave the facts it stated first: the training bar's count
    was its first frame's (`step the training bar shows: 0` for runs that ended at 60/60,
    20/20, 12/12), where the console read alone says 60."""
    assert load(str(LF / "sft_lora")).info["bar_step"] == 60 == \
        load(str(LF / "sft_lora" / "console.log")).info["bar_step"]


def test_files_not_named_like_a_log_are_said_not_read(tmp_path):
    """A console saved with no extension (`> train`) or rotated (`run.log.1`, an earlier part
    of a run) is not read by a folder walk, and the user is told which."""
    shutil.copy(PPDET / "picodet_s_320_coco_train.log", tmp_path / "train")
    (tmp_path / "old").mkdir()
    shutil.copy(PPDET / "yolov3_mobilenet_v1_voc_train.log", tmp_path / "old" / "run.log.1")
    got = subprocess.run([sys.executable, "-m", "logreport", "summary", str(tmp_path)],
                         capture_output=True, text=True)
    assert got.returncode == 1 and got.stderr == (
        f"logreport: {tmp_path}: no log files in this folder (hint: not named like a log: "
        f"{tmp_path}/train; give the file itself)\n")
    shutil.copy(PPDET / "picodet_s_320_coco_train.log", tmp_path / "a.log")
    runs, err = summaries(tmp_path)
    assert [os.path.basename(r["source"]) for r in runs] == ["a.log"]
    assert err == (f"logreport: {tmp_path}: not read, not named like a log (*.log, *.txt, "
                   f"*.out): {tmp_path}/old/run.log.1, {tmp_path}/train; give such a file to "
                   "read it\n")


def test_a_results_json_beside_logs_of_separate_runs_merges_none_of_them(tmp_path):
    """`*_results.json` names a file of an HF output folder, but alone it marks none: a
    detector's `predict_results.json` beside two PaddleDetection logs made the folder one run
    (their steps overlapping, records dropped)."""
    logs = ["picodet_s_320_coco_train.log", "yolov3_mobilenet_v1_voc_train.log"]
    for name in logs:
        shutil.copy(PPDET / name, tmp_path)
    shutil.copy(LF / "09_predict_results_v0.4.json", tmp_path / "predict_results.json")
    runs, err = summaries(tmp_path)
    assert [os.path.basename(r["source"]) for r in runs] == logs
    assert [r["train_records"] for r in runs] == [summaries(PPDET / n)[0][0]["train_records"]
                                                  for n in logs]
    assert "2 logs of separate runs" in err


def test_every_command_names_runs_alike(tmp_path):
    """`summary` named a run `train.log` by its folder (`D/train.log`) where `export` and
    `report` named it `train.log`; runs alike by name are told apart alike in each."""
    shutil.copy(PPDET / "picodet_s_320_coco_train.log", tmp_path / "train.log.1")
    shutil.copy(PPDET / "ppyoloe_crn_s_coco_train.log", tmp_path / "train.log")
    for a in ("exp1", "exp2"):
        (tmp_path / a).mkdir()
        shutil.copy(PPDET / "picodet_s_320_coco_train.log", tmp_path / a / "train.log")
    for logs, names in ((["train.log.1", "train.log"], ["train.log.1", "train.log"]),
                        (["exp1/train.log", "exp2/train.log"], ["exp1/train.log", "exp2/train.log"])):
        paths = [str(tmp_path / n) for n in logs]
        table = CliRunner().invoke(main, ["summary", *paths], env={"COLUMNS": "200"}).stdout
        header = table.splitlines()[1]
        assert [cell.strip() for cell in header.split("┃")[2:-1]] == names
        out = tmp_path / "x.csv"
        CliRunner().invoke(main, ["export", *paths, "-o", str(out)])
        assert list(dict.fromkeys(line.split(",")[0] for line in out.read_text().splitlines()[1:])) \
            == names


def test_a_run_named_twice_is_read_once(tmp_path):
    """A folder and a log in it (or one log twice): one run, not its rows twice under one
    name in an export."""
    (tmp_path / "r1").mkdir()
    shutil.copy(PPDET / "picodet_s_320_coco_train.log", tmp_path / "r1" / "train.log")
    shutil.copy(PPDET / "yolov3_mobilenet_v1_voc_train.log", tmp_path / "b.log")
    alone = CliRunner().invoke(main, ["export", str(tmp_path), "-o", str(tmp_path / "a.csv")])
    twice = CliRunner().invoke(main, ["export", str(tmp_path), str(tmp_path / "r1/train.log"),
                                      "-o", str(tmp_path / "t.csv")])
    assert alone.exit_code == twice.exit_code == 0
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "t.csv").read_text()
    assert f"logreport: {tmp_path}/r1/train.log: named twice, read once\n" in twice.stderr
    runs, err = summaries(tmp_path / "b.log", tmp_path / "b.log")
    assert len(runs) == 1 and err == f"logreport: {tmp_path}/b.log: named twice, read once\n"


def test_a_launch_folder_is_one_run(tmp_path):
    """workerlog.N are the ranks of one run (rank 0's log copied as two ranks: synthetic)."""
    for rank in (0, 1):
        shutil.copy(PPDET / "picodet_s_320_coco_train.log", tmp_path / f"workerlog.{rank}")
    runs, _ = summaries(tmp_path)
    assert len(runs) == 1 and runs[0]["train_records"] == 24
    assert load(str(tmp_path)).info["world_size"] == 2


def test_a_launch_folder_holds_only_its_ranks_other_launches_are_runs_of_their_own():
    """Paddle's `log/` kept nine launches: `workerlog.0/1` of one, `default.<pod>.0.log` of
    eight more (three of them complete 72-epoch runs). They were read as one run, the records
    of other launches at the same steps dropped as ranks' repeats; now every launch is a run
    and gives what its file alone gives."""
    folder = PPDET / "public_42_launch_logdir_nine_launches"
    runs, err = summaries(folder)
    by_name = {os.path.basename(r["source"]): r for r in runs}
    assert "separate runs" in err and by_name[folder.name]["files"] == [f"{folder}/workerlog.0"]
    for name in ("default.lwmmle.0.log", "default.tsztjx.0.log", "default.vvwvph.0.log"):
        assert by_name[name]["train_records"] == 216 and by_name[name]["eval_records"] == 72
    def figures(summary):           # (the evidence says how long ago the file changed)
        return {k: v for k, v in summary.items() if k != "status_evidence"}

    for name, run in by_name.items():
        if name != folder.name:
            assert figures(run) == figures(summaries(folder / name)[0][0])
    # `watch` follows one run: the hint names one to watch (it named the folder again)
    watched = CliRunner().invoke(main, ["watch", str(folder), "--no-tui"])
    assert watched.exit_code == 2 and f"logreport watch {folder}/workerlog.0" in watched.stderr


def test_a_launch_folder_keeps_the_restarts_of_rank_0():
    """A 4-GPU launch folder whose `workerlog.0` holds thirteen processes: the folder gave four
    segments (the merge put rank 0's new-process markers after all its records), the file
    alone twelve (one process, line 1608, printed no start-up line before its one record:
    Paddle's first use of a GPU says it began); the folder now gives the file's segments and
    records."""
    folder = PPDET / "public_43_launch_logdir_restarts_4gpu"
    alone = load(str(folder / "workerlog.0"))
    merged = load(str(folder))
    assert len(merged.segments) == len(alone.segments) == 13
    assert [s.label for s in merged.segments] == [s.label for s in alone.segments]
    assert train_rows(merged) == train_rows(alone)


def test_dicts_a_buffered_stdout_printed_in_bursts_get_no_bar_step():
    """Under nohup the Trainer's dicts (stdout, block-buffered) come out in bursts after
    tqdm's bar (stderr) moved on: the step-10 dict glued after the 50/160 frame, the step-50
    evaluation after 100/160. They took those bars' steps as stated (an evaluation a whole
    eval interval late, the run split in two segments); now no bar gives them a step: each is
    estimated and marked, an evaluation takes the step of the record before it, and the
    run says why (trainer_state.json's log_history gives the true steps)."""
    path = LF / "63_nonLF_trl_dpo_nohup_stdout_buffered.log"
    run = load(str(path))
    truth = json.loads((LF / "63_truth_trainer_state.json").read_text())["log_history"]
    train, evals = train_rows(run), train_rows(run, "eval")
    assert len(train) == sum("loss" in h for h in truth) == 16 and len(run.segments) == 1
    assert all(est for _, est, _ in train + evals)
    steps = [s for s, _, _ in train]
    assert steps == sorted(set(steps))
    # each evaluation comes after the 5th, 10th and 15th training dict (steps 50, 100, 150)
    assert [s for s, _, _ in evals] == [steps[4], steps[9], steps[14]]
    assert "buffered" in run.info["dict_steps"]
    runs, _ = summaries(path)
    assert runs[0]["status"] == "finished" and runs[0]["progress"]["percent"] == 100.0


def test_a_log_of_several_trainings_is_judged_by_its_last():
    """Four PaddleSeg processes appended to one workerlog.0: BiSeNetV2 on OpticDiscSeg, then
    EncNet on Cityscapes started afresh (iter 10) twice, the last resumed from iter 10000. The
    best mIoU was the other model's 0.8587 and its eval_regression said EncNet fell below it;
    the loss change began at BiSeNet's first loss. The last training (from its fresh start,
    its resume included) is the run: best 0.3344 at iter 13500, as the log states it."""
    path = DATA / "paddleseg" / "11_four_runs_appended_finished_then_resumed_workerlog0.log"
    run = load(str(path))
    summary = summarize(run)
    assert (summary["best"]["value"], summary["best"]["step"]) == (0.3344, 13500)
    assert summary["best"]["value"] == run.info["best_mIoU"]
    assert summary["best"]["last_training"]     # it says the other model's were left out
    assert "last_training" not in summarize(load(str(LONG80)))["best"]
    assert [a for a in summary["anomalies"] if a["kind"] == "eval_regression"] == []
    from logreport.headline import loss_change
    start = lineage_starts(run)[-1]
    assert start > 0 and loss_change(run)["first"] == float(run.segments[start].train.series[
        "loss"].value[0])
    # the report's evaluation table and chart stars agree: the best of the last training
    data = build([run])["runs"][0]
    rows, best_rows = data["evals"]["rows"], data["evals"]["best"]
    assert all(len(b) == 1 and rows[b[0]]["step"] == 13500 for b in best_rows)
    stars = data["series"]["eval"]["mIoU"]["best"]
    steps = unpack(data["series"]["eval"]["mIoU"]["x"])
    assert steps[stars[-1]] == 13500 and any(steps[i] > 10000 for i in stars[:3])
    # the other model's short process set the DRRG run's best loss level: a divergence of 23.8x
    ocr = load(str(DATA / "paddleocr" /
                   "14_drrg_after_another_models_process_esfcenet_workerlog0_lines4000-9000.log.gz"))
    assert len(lineage_starts(ocr)) > 2        # each process began afresh at step 2 or 5
    assert [a for a in anomalies(ocr) if a["kind"] == "divergence"] == []


def test_a_training_dict_after_the_final_one_begins_the_next_training():
    """A script that launched `deepspeed` (a Seq2SeqTrainer) again and again, transformers
    at warning level (no `Running training` banner): three trainings of 875, 313 and 625 steps
    in one log, each ending in its train_runtime dict. They were one segment: the second and
    third trainings' dicts got steps 880-1800 invented past the first's total (their own bars,
    `10/313`, unread), and their first losses were a divergence and spikes against the first
    training's converged loss. A training dict after the final one now begins a new segment,
    whose bar (of its own total) gives its steps."""
    run = load(str(LF / "64_nonLF_deepspeed_script_three_trainings_no_banner.log"))
    assert len(run.segments) == 4       # and a fourth launch's, which failed before it trained
    assert not len(run.segments[3].train)
    for seg, total in zip(run.segments, (875, 313, 625)):
        steps = np.asarray(seg.train.step)
        assert steps[0] == 10 and steps[-1] <= total and (np.diff(steps) > 0).all()
        assert not np.asarray(seg.train.estimated).any()
    summary = summarize(run)
    # its last loss at step 620, its train_runtime dict at 625 (where the training ended)
    assert summary["total_steps"] == 625 and summary["last_step"] == 625
    assert [a["kind"] for a in summary["anomalies"]] == ["traceback", "traceback"]
    # without bars: four trainings, four segments, no divergence across them
    bare = load(str(LF / "65_nonLF_deepspeed_script_four_trainings_no_bars.log"))
    assert len(bare.segments) == 4 and anomalies(bare) == []


def test_an_epoch_that_names_no_whole_step_is_estimated_at_the_nearest():
    """A blog's LLaMA-Factory console whose bars were cut: five dicts at epochs 0.58 ... 2.92,
    1,091 examples in batches of 64 (17.05 steps an epoch, 17 whole). No step prints as epoch
    0.58 at that rate (9.80-9.97), and the estimate was clamped to the span's top, 9, then 19,
    29, 39; the learning rates (cosine after 6 warm-up steps) pin them at 10, 20, 30, 40, 50."""
    run = load(str(LF / "66_lf_8gpu_dcu_lora_sft_blog_frames_lost.log"))
    assert [(s, est) for s, est, _ in train_rows(run)] == [(10, True), (20, True), (30, True),
                                                           (40, True), (50, True)]


def test_deepspeed_launcher_lines_are_no_paddle_lines():
    """A DeepSpeed DPO console (CqGao112/CN-Mini-Phi3 dpo.log) was read as PaddleDetection's:
    DeepSpeed's launcher logs from `launch.py` too, and 22 such lines outscored its one
    training dict. Lines copied from it, and from Paddle's legacy launcher (public_22), which
    count where a line names PaddleDetection (public_29's config)."""
    from logreport.formats import ppdet

    deepspeed = [
        "[2025-02-20 20:25:08,345] [INFO] [launch.py:146:main] WORLD INFO DICT: {'localhost': "
        "[1, 2, 4, 5, 6, 7]}",
        "[2025-02-20 20:27:13,107] [INFO] [launch.py:319:sigkill_handler] Killing subprocess "
        "2606346"]
    paddle = (PPDET / "public_22_legacy_launch_header_paddledocs.log").read_text().splitlines()
    named = [line for line in (PPDET / "public_29_launch_legacy_waring_deprecation_pd3562.log")
             .read_text().splitlines() if line.startswith("training_script_args")]
    assert ppdet.sniff(deepspeed) == ppdet.sniff(named + deepspeed[:1]) == 0
    assert ppdet.sniff(named + paddle[:1]) > 0


def test_paddleclas_ranks_by_the_metric_its_stated_best_names():
    """AdaFace on the PaddleClas engine prints no top1: its evaluations list per-benchmark
    accuracies and `all_test_acc`, and its `[best metric: x]` always equals `all_test_acc`. The
    best was the first accuracy's (agedb_30_test_acc 0.92067 at epoch 22); it is the log's
    own: all_test_acc 0.91384 at epoch 25."""
    run = load(str(DATA / "paddleclas" / "14_adaface_engine_best_metric_is_all_test_acc.log.gz"))
    summary = summarize(run)
    assert (summary["best"]["metric"], summary["best"]["value"], summary["best"]["epoch"]) == \
        ("all_test_acc", 0.91384, 25)
    assert abs(summary["best"]["value"] - run.info["best_metric"]) < 5e-6


def test_launches_that_failed_one_after_another_name_the_failure_that_ended_the_log(tmp_path):
    """A workerlog every launch appends to, read after its second launch failed (paddleocr/17's
    first 322 lines): its status named the first launch's traceback (line 161, another
    path). It names the one that ended the log, and says an earlier launch failed too. With a
    training before them (paddleocr/26), the later launch named was the first of three; the
    third ended the log. The whole 17: a later launch's OOM is its own anomaly, not the one
    before's."""
    with gzip.open(DATA / "paddleocr" / "17_ppocrv5_det_windows_many_launches_gpu_oom_"
                   "workerlog0.log.gz", "rt", encoding="utf-8") as f:
        lines = f.readlines()
    (tmp_path / "workerlog.0").write_text("".join(lines[:322]), encoding="utf-8")
    (run,), _ = summaries(tmp_path / "workerlog.0")
    assert (run["format"], run["status"], run["train_records"]) == ("paddleocr", "failed", 0)
    assert run["status_evidence"] == (
        "traceback at line 322: AssertionError: The ./pretrain_models/PP-OCRv5_mobile_det_"
        "pretrained.pdparams does not exists!; 1 earlier launch failed too (at line 161)")
    (run,), _ = summaries(DATA / "paddleocr" / "26_v2.0_rec_launches_16925_dataloader_errors_"
                          "then_training_from_line_34332_workerlog0.log.gz")
    assert run["status_evidence"].endswith(
        "; 3 later launches failed before they trained, the last (traceback at line 35465: "
        "AssertionError: Given dir /pretrain_model/rec_mv3_none_bilstm_ctc_v2.0_train/"
        "best_accuracy.pdparams not exist.)")
    (run,), _ = summaries(DATA / "paddleocr" / "17_ppocrv5_det_windows_many_launches_gpu_oom_"
                          "workerlog0.log.gz")
    assert {a["line"] for a in run["anomalies"] if a["kind"] == "oom"} == {10446, 10456, 10647,
                                                                           10657}


def test_a_paddleocr_evalpy_run_after_training_has_no_step_of_it():
    """A training that never evaluated, then tools/eval.py on another checkpoint (PaddleOCR's
    released model) two days later: its evaluation was put at the training's last step and
    epoch (1223, 72). It is another process's: a new segment, no step, no epoch."""
    run = load(str(DATA / "paddleocr" / "15_v2.0_rec_training_then_evalpy_of_another_checkpoint"
                                        "_workerlog0_lines34300-35583.log"))
    evals = run.arrays("eval", "acc")
    assert len(evals["value"]) == 3 and np.isnan(evals["step"]).all()
    assert np.isnan(evals["epoch"]).all()
    trained = [seg.index for seg in run.segments if len(seg.train)]
    assert all(seg not in trained for seg in evals["segment"].tolist())
    # three eval.py launches failed at start-up (a wrong path), the fourth ran: the training
    # before them, which stopped at epoch 1 with no error, was `failed` by their failures (and
    # the evidence said "a later launch failed", the first of the three)
    summary = summarize(run)
    assert summary["status"] == "unknown"
    assert summary["status_evidence"].startswith("no end of training and no error ended it; ")
    assert summary["status_evidence"].endswith(
        "3 later launches failed before they trained, the last (traceback at line 1166: "
        "AssertionError: Given dir /pretrain_model/rec_mv3_none_bilstm_ctc_v2.0_train/"
        "best_accuracy.pdparams not exist.)")


def test_a_forced_format_reads_a_launch_folder(tmp_path):
    """`--format paddleocr` on a launch folder read its workerlog.0 as PaddleOCR's, then left
    it out of the run as if no format had claimed it ("no training records recognised (read
    as paddleocr, …)"): the folder now gives what the file gives."""
    log = DATA / "paddleocr" / ("15_v2.0_rec_training_then_evalpy_of_another_checkpoint"
                                "_workerlog0_lines34300-35583.log")
    shutil.copy(log, tmp_path / "workerlog.0")
    folder, _ = summaries(tmp_path, "--format", "paddleocr")
    alone, _ = summaries(log, "--format", "paddleocr")
    assert folder[0]["train_records"] == alone[0]["train_records"] == 275
    assert folder[0]["eval_records"] == alone[0]["eval_records"] == 3


def test_an_epoch_printed_with_its_trailing_zero_dropped_keeps_two_decimals():
    """The Trainer rounds the epoch to 2 decimals: 0.20 prints as `0.2`. Read as +-0.05 of an
    epoch, such records' estimates fell back to the step before + 1 (82, 442, 1342 of 1350);
    the learning rate (warm-up over 135 steps: 6.667e-05 at step 90) says 90, 450, 1350."""
    run = load(str(LF / "67_lf_qwen2.5_1350steps_epochs_printed_0.2_readme.log"))
    by_line = {int(line): (step, bool(est)) for _, table in run.tables("train")
               for line, step, est in zip(np.asarray(table.line), np.asarray(table.step),
                                          np.asarray(table.estimated))}
    assert [by_line[n] for n in (362, 398, 584)] == [(90, True), (450, True), (1350, True)]


def test_a_training_dict_after_a_final_dict_still_waiting_begins_the_next_training():
    """A pre-training's five dicts and its train_runtime dict, then (after Chinese prose) an
    SFT's twenty dicts, no bars: the final dict still waited for a bar when the SFT's first
    dict came, and that dict joined the pre-training (six records, the SFT's first loss
    2.4956 instead of 2.796)."""
    run = load(str(LF / "68_nonLF_pretrain_then_sft_two_trainings_zh_blog.log"))
    assert len(run.segments) == 2
    first, second = (seg.train.series["loss"] for seg in run.segments)
    assert len(first) == 5 and len(second) == 20 and second.value[0] == 2.796


def test_the_wall_time_is_at_least_the_bars_elapsed_time():
    """A Trainer console stamps its start-up lines, not its dicts: the wall time was their
    span (2 s for a run whose bar says 00:51, 0 s for a paste whose bar says 150:33:44); it
    is at least the elapsed time the bar printed."""
    interrupted = load(str(LF / "sft_lora_interrupted"))
    assert interrupted.info["elapsed_seconds"] == 51.0 and wall_seconds(interrupted) == 51.0
    paste = load(str(LF / "50_nonLF_hf_tqdm_glued_eval_header_md_quoted.log"))
    assert wall_seconds(paste) == paste.info["elapsed_seconds"] == 150 * 3600 + 33 * 60 + 44


def test_one_stamp_measures_no_wall_time():
    """A PaddleClas README excerpt whose first line lost the `[` of its stamp: one stamp read,
    the first and the last, gave a wall time of 0 s (`wall time 0s`) for two records 93 s
    apart; it is unknown. Two records stamped alike still measure 0 s."""
    (run,), _ = summaries(DATA / "paddleclas" / "18_peleenet_readme_first_line_lost_its_bracket.log")
    assert run["train_records"] == 2 and run["wall_seconds"] is None
    result = CliRunner().invoke(main, ["summary", str(DATA / "paddleclas" /
                                                    "18_peleenet_readme_first_line_lost_its_bracket.log")])
    assert re.search(r"wall time\s+│\s+–", result.stdout), result.stdout
    both = load(str(PPDET / "public_42_launch_logdir_nine_launches" / "default.zazjtq.0.log"))
    assert wall_seconds(both) == 4.0           # its stamped lines' span (one record stamped)


# --- 2. no record dropped when steps are estimated -------------------------------------------
def test_dicts_without_bars_keep_every_record_with_monotone_estimates():
    run = load(str(LF / "50_nonLF_hf_tqdm_glued_eval_header_md_quoted.log"))
    rows = train_rows(run)
    text = (LF / "50_nonLF_hf_tqdm_glued_eval_header_md_quoted.log").read_text()
    assert len(rows) == text.count("{'loss'")
    steps = [s for s, _, _ in rows]
    assert steps == sorted(set(steps))
    # ordinals while no bar is seen, then the first bar the paste shows, 136/202: it may be
    # the next step's (drawn before the evaluation at 136; the dict's learning rate is the
    # cosine schedule's at step 135 to every digit), so it is kept only as an estimate
    assert [est for _, est, _ in rows] == [True] * 11 and steps[-1] == 136


def test_a_run_appended_to_its_log_is_a_new_segment(tmp_path):
    """Synthetic: the real sft_lora console as stdout keeps it (no bars: every step is an
    estimate), run twice into one file (`>>`): the second `***** Running training *****`
    starts a new segment whose steps start afresh, each run's rows as alone."""
    console = (LF / "sft_lora" / "console.log").read_bytes()
    stdout = b"\n".join(piece for line in console.split(b"\n") for piece in line.split(b"\r")
                        if b"%|" not in piece and piece.strip()) + b"\n"
    once, twice = tmp_path / "once.log", tmp_path / "twice.log"
    once.write_bytes(stdout)
    twice.write_bytes(stdout + stdout)
    run = load(str(twice))
    assert [seg.label for seg in run.segments] == ["segment 0", "new run"]
    alone = [(s, v) for s, _, v in train_rows(load(str(once)))]
    assert [(s, v) for s, _, v in train_rows(run)] == alone + alone


def test_a_resume_at_a_global_step_goes_on_from_it():
    """`Continuing training from global step N` (transformers' resume line): the estimated
    steps of bare dicts after it go on from N; the dict before it keeps its own."""
    from logreport.formats import hf_trainer

    lines = (LF / "sft_lora" / "console.log").read_text(encoding="utf-8").split("\n")
    head = next(line for line in lines if line.endswith(">>   Total optimization steps = 60"))
    resume = head.replace("Total optimization steps = 60", "Continuing training from global step 200")
    dicts = [piece for line in lines for piece in line.split("\r") if piece.startswith("{'loss'")][:4]
    parser = hf_trainer.Parser()
    events = [e for n, line in enumerate([dicts[0], dicts[1], resume, dicts[2], dicts[3]], 1)
              for e in parser.feed(line, n) or []] + parser.finish()
    steps = [(e.step, e.estimated) for e in events if getattr(e, "phase", None) == "train"]
    assert steps == [(1, True), (2, True), (201, True), (202, True)]
    assert [e.kind for e in events if getattr(e, "kind", None)] == ["resume"]


def test_a_dict_that_states_its_step_takes_it():
    """TFTrainer prints `'step': N` in each dict (no bar): the steps are stated, not estimated,
    by the line parser and through every block path alike."""
    log = LF / "51_nonLF_tftrainer_dicts_state_step_pr6998.log"
    rows = train_rows(load(str(log)))
    assert [(s, est) for s, est, _ in rows] == [(10.0 * k, False) for k in range(1, 12)]
    assert rows[0][2] == {"loss": 18.6387, "learning_rate": 4.9113474e-05}


def test_a_frame_cut_before_its_bracket_still_gives_the_step(tmp_path):
    """Synthetic paste shape from real sft_lora lines: the bar lost its `]`, a dict follows
    on the same line; then dicts with no bar (one with the NaN). The frame is read (its clock,
    00:08); the dicts that follow it with no bar between are a burst, as a buffered stdout
    prints them (test_dicts_a_buffered_stdout_printed_in_bursts_get_no_bar_step), so no bar
    gives their steps: each is estimated, in order."""
    lines = (LF / "sft_lora" / "console.log").read_bytes().split(b"\n")
    head = [ln for ln in lines if b"Total optimization steps" in ln or b"Num examples" in ln]
    paste = head + [
        b"  3%|\xe2\x96\x8e         | 2/60 [00:08<04:03,  4.19s/it{'loss': '7.63', "
        b"'grad_norm': '0.1888', 'learning_rate': '0.0008333', 'epoch': '0.01778'}",
        b"{'loss': 'nan', 'grad_norm': 'nan', 'learning_rate': '0.001667', 'epoch': '0.02667'}",
        b"{'loss': '7.625', 'grad_norm': '0.1904', 'learning_rate': '0.0025', 'epoch': '0.03556'}",
    ]
    log = tmp_path / "paste.log"
    log.write_bytes(b"\n".join(paste) + b"\n")
    run = load(str(log))
    rows = train_rows(run)
    assert [(s, e) for s, e, _ in rows] == [(1, True), (2, True), (3, True)]
    assert run.info["elapsed_seconds"] == 8.0 and run.info["remaining_seconds"] == 243.0
    assert [a["kind"] for a in anomalies(run)] == ["nan"]


def test_an_ordinal_never_sends_a_step_back(tmp_path):
    """Synthetic: steps read from bars, then dicts with no bar and no epoch facts."""
    text = (LF / "sft_lora" / "console.log").read_text(encoding="utf-8")
    cut = text.index("{'loss': '7.519'")      # the last training dict
    tail = ("{'loss': '7.5', 'grad_norm': '0.1', 'learning_rate': '1e-06', 'epoch': '0.54'}\n"
            "{'loss': '7.4', 'grad_norm': '0.1', 'learning_rate': '1e-06', 'epoch': '0.55'}\n")
    log = tmp_path / "mixed.log"
    log.write_text(text[:text.index("\n", cut) + 1] + tail, encoding="utf-8")
    run = load(str(log))
    steps = [s for s, _, _ in train_rows(run)]
    assert len(run.segments) == 1 and steps == sorted(steps) and len(set(steps)) == len(steps)


def test_collapsed_console_steps_come_from_the_bar_glued_before_the_echo(tmp_path):
    """Synthetic: the real LlamaBoard console with each line cut to its last \\r frame (what a
    UI that collapsed the redraws shows); every record keeps its trainer_state step."""
    folder = LF / "sft_lora_llamaboard"
    log = tmp_path / "collapsed.log"
    log.write_bytes(collapsed((folder / "console.log").read_bytes()))
    want = {h["step"]: h["loss"] for h in json.loads((folder / "trainer_state.json").read_text())
            ["log_history"] if "loss" in h}
    rows = train_rows(load(str(log)))
    assert len(rows) == len(want)
    assert all(abs(v["loss"] - want[int(s)]) < 1e-3 and not est for s, est, v in rows)


def test_a_collapsed_paste_marks_every_step_its_bars_cannot_tell(tmp_path):
    """Synthetic: the collapsed console above, pasted from its third echo on, the bar before
    that echo not selected: no epoch facts decide a step. The first dict's only bar is the
    next logging step's; elsewhere the bar glued before an echo may be drawn late (tqdm
    redraws at most every 0.1 s) and the one after is the next step's. Such steps are kept,
    marked as estimates: no step the run states is wrong."""
    folder = LF / "sft_lora_llamaboard"
    log = tmp_path / "paste.log"
    log.write_bytes(collapsed((folder / "console.log").read_bytes(), from_echo=2))
    want = {h["step"]: h["loss"] for h in json.loads((folder / "trainer_state.json").read_text())
            ["log_history"] if "loss" in h}
    rows = train_rows(load(str(log)))
    assert len(rows) == len(want) - 2 and rows[0][1]
    stated = [(s, v) for s, est, v in rows if not est]
    assert len(stated) >= 10 and all(abs(v["loss"] - want[int(s)]) < 1e-3 for s, v in stated)


def _stdout_only(tmp_path):
    """The real sft_lora console without tqdm's frames (what `| tee` of stdout keeps)."""
    console = (LF / "sft_lora" / "console.log").read_bytes()
    log = tmp_path / "stdout.log"
    log.write_bytes(b"\n".join(piece for line in console.split(b"\n") for piece in line.split(b"\r")
                               if b"%|" not in piece and piece.strip()))
    return log


def test_an_eval_at_an_estimated_step_is_marked_estimated(tmp_path):
    """Synthetic: the real sft_lora console without tqdm's frames (what `| tee` of stdout
    keeps): the training steps are estimates, and so are the steps the evaluations and the
    final metrics take from them; in the whole console none is."""
    for path, estimated in ((_stdout_only(tmp_path), True), (LF / "sft_lora" / "console.log", False)):
        run = load(str(path))
        for phase in ("train", "eval", "final"):
            flags = [est for _, est, _ in train_rows(run, phase)]
            assert flags and set(flags) == {estimated}, (path, phase)


def test_a_best_at_an_estimated_step_says_so(tmp_path, runner):
    """The best evaluation of the stdout-only console sits at an estimated step: `summary`
    says so (`step_estimated`) and shows the step as '~N'; in the whole console it is stated."""
    for path, estimated in ((_stdout_only(tmp_path), True), (LF / "sft_lora" / "console.log", False)):
        best = json.loads(runner.invoke(main, ["summary", str(path), "--json"]).output)[
            "runs"][0]["best"]
        assert best["metric"] == "eval_loss" and best["step_estimated"] is estimated
        text = runner.invoke(main, ["summary", str(path)]).output
        assert (f"step ~{best['step']}" in text) is estimated, text


def test_the_real_console_steps_equal_trainer_state():
    folder = LF / "sft_lora_llamaboard"
    want = {h["step"]: h["loss"] for h in json.loads((folder / "trainer_state.json").read_text())
            ["log_history"] if "loss" in h}
    for name in ("console.log", "running_log.txt"):
        rows = train_rows(load(str(folder / name)))
        assert sorted(int(s) for s, _, _ in rows) == sorted(want)
        assert all(abs(v["loss"] - want[int(s)]) < 1e-3 for s, _, v in rows)


# --- 4. JSON that is not all JSON ------------------------------------------------------------
def test_a_jsonl_line_that_is_not_json_is_counted_and_reading_goes_on(tmp_path):
    """Synthetic paste: a user's `...` inside a real trainer_log.jsonl, and a half-written
    last line."""
    lines = (LF / "sft_lora" / "trainer_log.jsonl").read_text().splitlines()
    log = tmp_path / "trainer_log.jsonl"
    log.write_text("\n".join(lines[:10] + ["..."] + lines[10:] + [lines[5][:40]]) + "\n")
    clean, odd = load(str(LF / "sft_lora" / "trainer_log.jsonl")), load(str(log))
    assert train_rows(odd) == train_rows(clean) and train_rows(odd, "eval") == \
        train_rows(clean, "eval")
    assert odd.unparsed == clean.unparsed + 2
    assert [t for _, _, t in odd.unparsed_samples] == ["...", lines[5][:40].rstrip()]


def test_log_history_pasted_without_its_braces_gives_its_records(tmp_path):
    """Synthetic paste: the entries of a real trainer_state.json's log_history, cut out."""
    state = (LF / "sft_lora" / "trainer_state.json").read_text()
    body = state[state.index('"log_history": [') + len('"log_history": ['):]
    body = body[:body.index("\n  ],")]
    log = tmp_path / "history.txt"
    log.write_text(body + "\n")
    history = json.loads(state)["log_history"]
    run = load(str(log))
    rows = train_rows(run)
    assert [(int(s), v["loss"]) for s, _, v in rows] == \
        [(h["step"], h["loss"]) for h in history if "loss" in h]
    assert run.count("eval") == sum("eval_loss" in h for h in history)


# --- 5. COCO's -1 ------------------------------------------------------------------------------
def test_coco_minus_one_is_not_drawn_best_nor_compared():
    run = load(str(LONG80))
    apl = run.arrays("eval", "bbox/APl")["value"]
    assert len(apl) and (apl == -1).all()                  # kept as printed ...
    assert best(run, "bbox/APl") is None                    # ... but never the best
    data = build([run, load(str(PPDET / "picodet_s_320_coco_train.log"))])
    for r in data["runs"]:
        for name, trace in r["series"].get("eval", {}).items():
            assert not (unpack(trace["y"]) == -1).any(), name
    assert data["runs"][0]["series"]["eval"]["bbox/APl"]["nna"] == len(apl)


def test_export_writes_minus_one_as_no_value(tmp_path):
    """As the report: its row kept (the log printed it), its value none (was -1)."""
    out = tmp_path / "x.jsonl"
    assert CliRunner().invoke(main, ["export", str(LONG80), "-o", str(out)]).exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    apl = [r["value"] for r in rows if r["metric"] == "bbox/APl"]
    assert apl and apl == [None] * len(apl)
    assert not any(r["value"] == -1 for r in rows)


# --- 6. an unread log never passes -------------------------------------------------------------
@pytest.mark.parametrize("log", LIGHTNING, ids=[p.name for p in LIGHTNING])
@pytest.mark.parametrize("command", ["summary", "report", "export", "check"])
def test_a_log_of_another_tool_exits_1(log, command, tmp_path):
    extra = ["-o", str(tmp_path / ("x.html" if command == "report" else "x.csv"))] \
        if command in ("report", "export") else []
    result = CliRunner().invoke(main, [command, str(log), *extra])
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"logreport: {log}: no training records recognised") and \
        "logreport formats" in line


def test_a_log_whose_training_lines_come_late_is_read(tmp_path):
    """A PaddleOCR 2.0 workerlog.0: launches that failed, a config dump and 16,925 of the data
    loader's `root ERROR: When parsing line …` messages, then, from line 34332, a training and
    tools/eval.py runs (fixture paddleocr/15 is its last 1284 lines). Every command exited 1,
    'no training records recognised (closest format: ppdet, 0% of lines)': the read gave up
    after 20,000 lines of no known format. Newest lines mostly one format's now decide it, and
    every line is read; the records are those of its last lines read alone."""
    from logreport.pipeline import GIVE_UP_LINES

    log = DATA / "paddleocr" / ("26_v2.0_rec_launches_16925_dataloader_errors_then_training_"
                                "from_line_34332_workerlog0.log.gz")
    run = load(str(log))
    assert run.format == "paddleocr"
    tail = load(str(DATA / "paddleocr" / ("15_v2.0_rec_training_then_evalpy_of_another_"
                                          "checkpoint_workerlog0_lines34300-35583.log")))
    assert (run.count("train"), run.count("eval")) == (tail.count("train"), tail.count("eval"))
    assert run.count("train") == 275
    assert int(run.arrays("train", "loss")["line"][0]) == 34332
    # lines of no known format as many, then no line of any: refused, as before
    lines = (DATA / "negative" / "N2_lightning_tqdm_pl4225.log").read_text().splitlines()
    junk = tmp_path / "junk.log"
    junk.write_text("\n".join(lines * (2 * GIVE_UP_LINES // len(lines) + 1)) + "\n")
    result = CliRunner().invoke(main, ["summary", str(junk)])
    assert result.exit_code == 1 and "no training records recognised" in result.stderr


def test_a_paddleseg_variant_it_does_not_read_is_said_to_be_read_as_paddleseg():
    """MedicalSeg (PaddleSeg's contrib) prints PaddleSeg's prefix and tags with its own fields:
    refused, and the refusal named PaddleDetection as what it was read as."""
    log = DATA / "negative" / "N4_paddleseg_medicalseg_dsc_dice_unread.log"
    result = CliRunner().invoke(main, ["summary", str(log)])
    assert result.exit_code == 1 and "(read as paddleseg, 33 lines)" in result.stderr


def test_a_crash_paste_no_format_claims_is_refused_naming_its_error():
    """The end of a traceback pasted alone (an OOM at step 0): refused, as no format claims it,
    and the refusal said nothing of the out-of-memory error it ends in."""
    log = DATA / "negative" / "N5_lf_oom_traceback_paste_no_record_lf4263.log"
    result = CliRunner().invoke(main, ["check", str(log)])
    assert result.exit_code == 1 and "; it ends in an error: torch.cuda.OutOfMemoryError: CUDA " \
        "out of memory. Tried to allocate 112.00 MiB. GPU (hint:" in result.stderr
    # a first launch that failed, then six more, the last to its end: it ends in no error
    rerun = DATA / "negative" / ("N6_paddlevideo_agcn_first_launch_error_then_six_launches_to_the"
                                 "_end_workerlog0.log.gz")
    result = CliRunner().invoke(main, ["check", str(rerun)])
    assert result.exit_code == 1 and "no training records recognised" in result.stderr
    assert "ends in an error" not in result.stderr and "FileNotFoundError" not in result.stderr


def test_paddle_lines_that_name_no_paddledetection_are_not_read_as_it(tmp_path):
    """Paddle's own lines (its frames, its launchers) are every Paddle tool's: a log of them
    alone was read as PaddleDetection's. A rank's log of a launch (start-up, a C++ traceback,
    twice: public_43's workerlog.1) is refused, naming the error it ends in; PaddleNLP's
    start-up and traceback (paddlenlp/12's first 23 lines) is PaddleNLP's, failed at line 23;
    a traceback through PaddleDetection's tools/train.py (public_19's frames, less those in
    ppdet/) is still PaddleDetection's."""
    rank = PPDET / "public_43_launch_logdir_restarts_4gpu" / "workerlog.1"
    result = CliRunner().invoke(main, ["check", str(rank)])
    assert result.exit_code == 1 and "(no known format is close)" in result.stderr
    assert "; it ends in an error: FatalError: `Termination signal` is detected" in result.stderr
    with gzip.open(DATA / "paddlenlp" / "12_trainer_2023_11_progress_bar_on_records_without_"
                   "prefix_workerlog0.log.gz", "rt", encoding="utf-8") as f:
        start = [next(f) for _ in range(23)]
    (tmp_path / "nlp.log").write_text("".join(start))
    (run,), _ = summaries(tmp_path / "nlp.log")
    assert (run["format"], run["status"]) == ("paddlenlp", "failed")
    assert run["status_evidence"].startswith("traceback at line 23: RuntimeError: (Precondition")
    frames = (PPDET / "public_19_fairmot_eval_traceback_pd3385.log").read_text().splitlines()
    (tmp_path / "ppdet.log").write_text("\n".join(frames[:7] + frames[11:13]) + "\n")
    assert not any("ppdet" in line or "Detection" in line for line in frames[:7] + frames[11:13])
    (run,), _ = summaries(tmp_path / "ppdet.log")
    assert (run["format"], run["status"]) == ("ppdet", "failed")


def test_a_text_that_quotes_a_few_log_lines_says_most_are_not_understood():
    """A format spec quoting real PaddleDetection lines is read as ppdet (its records are
    real lines), but the user is told that most of its lines are not understood; a real log
    is not."""
    spec = DATA / "negative" / "spec_ppdet_format.md"
    for command in (["summary", "--json"], ["check"]):      # (check: it quotes a traceback)
        result = CliRunner().invoke(main, [*command, str(spec)])
        assert result.exit_code == (command == ["check"])
        line = result.stderr.splitlines()[0]
        assert re.fullmatch(rf"logreport: warning: {re.escape(str(spec))}: \d+ of \d+ lines not "
                            r"understood as ppdet output, .*--format.*", line), line
    assert summaries(LONG80)[1] == ""


@pytest.mark.parametrize("written, year", [((2026, 11, 25, 17), 2026), ((2026, 11, 26, 9), 2026),
                                           ((2027, 3, 1, 12), 2026), ((2026, 11, 20, 12), 2025)])
def test_a_stamp_without_a_year_is_never_after_the_log_was_written(tmp_path, written, year):
    """PaddleDetection stamps print no year: it is the year the file was last written in,
    the one before where that would put its first line after the file was written."""
    log = tmp_path / "train.log"
    shutil.copy(PPDET / "picodet_s_320_coco_train.log", log)       # stamps of 11/25
    when = time.mktime((*written, 0, 0, 0, 0, -1))
    os.utime(log, (when, when))
    out = tmp_path / "rows.csv"
    assert CliRunner().invoke(main, ["export", str(log), "-o", str(out)]).exit_code == 0
    stamps = {row.split(",")[6] for row in out.read_text().splitlines()[1:]} - {""}
    assert stamps and {s[:10] for s in stamps} == {f"{year}-11-25"}


def test_a_total_inferred_from_the_eta_says_so():
    """PaddleDetection prints no total (it is inferred from its ETA); a Trainer states one, in
    a line or (a console of the Trainer's default log level: no such line) in its bar."""
    runs, _ = summaries(LONG80, LF / "sft_lora" / "console.log",
                        DATA / "gpu_run" / "hf_trainer_gpt2_h100.log")
    assert [(r["total_steps"], r["total_steps_estimated"]) for r in runs] == [
        (960, True), (60, False), (8000, False)]


def test_an_eval_of_runtimes_alone_has_no_best(tmp_path):
    """Synthetic: the real sft_lora console with `eval_loss` taken out of its eval dicts (an
    evaluation that computes no metric prints only how fast it ran): no best, not the fastest
    runtime; with it, eval_loss is the best."""
    console = (LF / "sft_lora" / "console.log").read_text(encoding="utf-8")
    log = tmp_path / "runtimes.log"
    log.write_text(re.sub(r"'eval_loss': '[^']*', |  eval_loss +=.*\n", "", console),
                   encoding="utf-8")
    (bare, whole), _ = summaries(log, LF / "sft_lora" / "console.log")
    assert bare["eval_records"] > 0
    assert bare["best"] is None and whole["best"]["metric"] == "eval_loss"


# --- 7, 11, 12. watch -------------------------------------------------------------------------
def watch(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "logreport", "watch", *map(str, args),
                           "--no-tui"], capture_output=True, text=True, timeout=timeout)


def test_watch_on_a_missing_path_says_it_waits(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "logreport", "watch",
                             str(tmp_path / "typo.log"), "--no-tui"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert line == f"logreport: waiting for {tmp_path / 'typo.log'} to appear\n"


def test_watch_on_a_finished_folder_says_one_thing(tmp_path):
    shutil.copytree(LF / "sft_lora", tmp_path / "sft_lora")
    got = watch(tmp_path / "sft_lora", "--exit-when-done", "-o", tmp_path / "r.html")
    assert got.returncode == 0
    status = [line for line in got.stdout.splitlines() if line.startswith("[")]
    assert len(status) == 1 and status[0].startswith("[finished] epoch 0.533333 · step 60/60")
    assert re.search(r"\d{8}", status[0]) is None          # no 0.5333333333333333


def test_watch_exits_as_check_does_and_says_anomalies(tmp_path):
    shutil.copytree(LF / "sft_full_diverge", tmp_path / "run")
    got = watch(tmp_path / "run", "--exit-when-done", "-o", tmp_path / "r.html")
    check = CliRunner().invoke(main, ["check", str(tmp_path / "run")])
    assert got.returncode == check.exit_code == 1
    assert got.stdout.startswith("[finished with anomalies (nan, zero_loss)]")


def test_watch_refuses_a_folder_of_separate_runs(tmp_path):
    for log in sorted(PPDET.glob("yolov3_*.log"))[:2]:
        shutil.copy(log, tmp_path)
    got = watch(tmp_path)
    assert got.returncode == 2 and "2 logs of separate runs here" in got.stderr


def test_the_demo_total_never_changes_once_known():
    from logreport.analysis import total_steps
    from logreport.model import Run
    from logreport.pipeline import Ingest
    from logreport.sources import Input

    lines = list(Input(str(LONG80)).lines())
    run, seen = Run("demo"), set()
    ingest = Ingest(run, "demo")
    for i in range(0, len(lines), 5):
        ingest.feed(lines[i:i + 5])
        ingest.settle()
        seen.add(total_steps(run))
    assert seen - {None} == {960}


def test_terminal_words_are_plural_aware_and_durations_humanized():
    one = CliRunner().invoke(main, ["check", str(PPDET / "ppyoloe_crn_s_coco_diverge_lr1000.log"),
                                    "--fail-on", "oom"])
    assert "; 2 anomalies" in one.stdout
    single = CliRunner().invoke(main, ["check", str(PPDET / "public_07_ppyolo_nan_paddle33911.log"),
                                       "--fail-on", "oom"])
    assert "; 1 anomaly\n" in single.stdout
    table = CliRunner().invoke(main, ["summary", str(LONG80)]).stdout
    assert "wall time      │ 7m 23s" in table and "443" not in table


# --- 8. wall time ---------------------------------------------------------------------------
@pytest.mark.parametrize("case,want", [
    ("sft_lora", 91.0),                 # console 16:45:49 .. 16:47:20 (train_runtime 87.08)
    ("sft_full_diverge", None),         # checked below against its console
    ("43_trainer_log_tiny_9steps_full.jsonl", None),
])
def test_wall_time_spans_the_runs_clock(case, want):
    run = load(str(LF / case))
    if case == "sft_full_diverge":
        stamps = re.findall(r"\d{4}-\d{2}-\d{2} (\d{2}):(\d{2}):(\d{2})",
                            (LF / case / "console.log").read_text())
        secs = [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in stamps]
        want = float(max(secs) - min(secs))
    if case.endswith(".jsonl"):          # no time stamps: the elapsed time it printed
        last = json.loads((LF / case).read_text().splitlines()[-1])
        h, m, s = map(int, last["elapsed_time"].split(":"))
        want = float(h * 3600 + m * 60 + s)
    assert wall_seconds(run) == want
    assert summarize(run)["wall_seconds"] == want


def test_a_run_with_no_clock_says_null():
    run = load(str(LF / "02_pt_lora_v0.7_step_dicts.log"))
    assert run.first_time is None and summarize(run)["wall_seconds"] is None


# --- 9. a short blow-up ------------------------------------------------------------------------
def test_a_short_blow_up_before_a_crash_is_divergence():
    found = anomalies(load(str(NAN_CRASH)))
    assert [a["kind"] for a in found] == ["divergence", "traceback"]
    assert found[0]["step"] == 1 and "430x" in found[0]["detail"]


# --- 10. no task is guessed --------------------------------------------------------------------
def coco_rows(lines_from: str) -> list[str]:
    return [ln for ln in (PPDET / lines_from).read_text().splitlines() if "Average " in ln][:12]


def test_a_table_pasted_without_its_header_has_no_task(tmp_path):
    """Synthetic paste: a real training line, then a real COCO table without the line before
    it that names its task."""
    text = (PPDET / "picodet_s_320_coco_train.log").read_text().splitlines()
    train = next(ln for ln in text if "Epoch: [" in ln)
    log = tmp_path / "paste.log"
    log.write_text("\n".join([train, *coco_rows("picodet_s_320_coco_train.log")]) + "\n")
    names = load(str(log)).metric_names("eval")
    assert names[:3] == ["AP", "AP50", "AP75"] and not any("/" in n for n in names)


def test_evidence_after_the_table_names_its_task(tmp_path):
    """Synthetic paste: the same real table followed by the per-category line of segm (as
    Mask R-CNN prints), and keypoint rows (the format pycocotools prints, maxDets= 20, as in
    shared/formats/ppdet.md §3.5)."""
    text = (PPDET / "ppyoloe_crn_s_coco_evalonly_classwise.log").read_text().splitlines()
    per_category = next(ln for ln in text if "Per-category of bbox AP" in ln)
    log = tmp_path / "segm.log"
    log.write_text("\n".join([next(ln for ln in text if "ppdet" in ln),
                              *coco_rows("ppyoloe_crn_s_coco_evalonly_classwise.log"),
                              per_category.replace("bbox", "segm")]) + "\n")
    assert load(str(log)).metric_names("eval")[0] == "segm/AP"
    rows = [" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets= 20 ] = 0.607",
            " Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets= 20 ] = 0.842",
            " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 20 ] = 0.644"]
    log = tmp_path / "keypoint.log"
    log.write_text("\n".join([next(ln for ln in text if "ppdet" in ln), *rows]) + "\n")
    assert load(str(log)).metric_names("eval") == ["keypoint/AP", "keypoint/AP50", "keypoint/AR"]


# --- properties -------------------------------------------------------------------------------
def test_property_fixtures_as_folder_glob_and_list_give_each_run(tmp_path):
    from hypothesis import given
    from hypothesis import strategies as st

    pool = sorted(PPDET.glob("*.log"))[:20] + [LF / "sft_lora" / "console.log"]
    alone = {p: summarize(load(str(p))) for p in pool}

    @given(st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique=True))
    def check(picked):
        folder = tmp_path / f"f{time.monotonic_ns()}"
        folder.mkdir()
        for i, p in enumerate(picked):
            shutil.copy(p, folder / f"{i:02d}_{p.name}")
        for given_paths in ([str(folder)], [f"{folder}/*.log"],
                            [str(f) for f in sorted(folder.glob("*.log"))]):
            runs = load_all(given_paths)
            assert len(runs) == len(picked)
            for run, p in zip(runs, picked):
                got, want = summarize(run), alone[p]
                for key in ("train_records", "eval_records", "last_step", "final", "best",
                            "wall_seconds", "status", "total_steps"):
                    assert got[key] == want[key], (p.name, key)

    check()


JUNK = ["...", "{'loss': 1.23, 'learning_rate': 0.0001, 'ep",
        "Map:  45%|████▌     | 45/100 [00:01<00:01, 40.1 examples/s",
        "[2026-11-25 17:00:00] some other tool: loss 0.5",
        "(truncated)", "Epoch 3 loss 0.25 acc 0.9"]
# A bar of another total, cut before its `]`: junk only where the log states the training
# total (in a paste without it, the first bar drawn after a dict is taken as the training one,
# its total the run's).
OTHER_BAR = " 30%|███       | 3/10 [00:01<00:02,  3.1it/s"
JUNK_LOGS = [PPDET / "picodet_s_320_coco_train.log", PPDET / "ppyoloe_crn_s_coco_resume.log",
             PPDET / "public_07_ppyolo_nan_paddle33911.log", LF / "sft_lora" / "console.log",
             LF / "tf4_dpo_lora" / "console.log", LF / "sft_lora" / "trainer_log.jsonl",
             LF / "50_nonLF_hf_tqdm_glued_eval_header_md_quoted.log"]


@pytest.mark.parametrize("log", JUNK_LOGS, ids=[f"{p.parent.name}/{p.name}" for p in JUNK_LOGS])
def test_property_junk_between_records_changes_no_record(log, tmp_path):
    """Junk lines (a user's `...`, half dicts, frames without `]` of other bars, other text)
    inserted before record lines never change or drop a real record."""
    from hypothesis import given
    from hypothesis import strategies as st

    clean = load(str(log))
    want = train_rows(clean), train_rows(clean, "eval")
    record_lines = sorted({int(ln) for _, t in clean.tables("train") for ln in np.asarray(t.line)})
    lines = log.read_bytes().split(b"\n")

    states_total = clean.info.get("total_steps") and (
        clean.format != "hf_trainer" or b"Total optimization steps" in log.read_bytes())
    junk = JUNK + ([OTHER_BAR] if states_total else [])

    @given(st.lists(st.tuples(st.sampled_from(record_lines), st.sampled_from(junk)),
                    min_size=1, max_size=6))
    def check(insertions):
        out = list(lines)
        for number, junk in sorted(insertions, reverse=True):
            out.insert(number - 1, junk.encode())
        odd = tmp_path / log.name
        odd.write_bytes(b"\n".join(out))
        got = load(str(odd))
        assert [(s, e, v) for s, e, v in train_rows(got)] == want[0]
        assert train_rows(got, "eval") == want[1]

    check()


def test_a_static_graph_evaluation_is_read():
    """PaddleDetection 0.x (static graph) prints its eval with its own logger prefix and no
    `%` after the VOC mAP: the mAP is read as printed, the save is a checkpoint, no line is
    left unread; the eval has no step (no training line before it in this paste)."""
    run = load(str(PPDET / "public_40_static_yolov3_voc_map11_no_percent_pd548.log"))
    ((step, estimated, values),) = train_rows(run, "eval")
    assert np.isnan(step) and not estimated and values == {"bbox/mAP": 0.07}
    assert run.unparsed == 0 and run.count("train") == 8
    assert [m.detail for m in run.markers if m.kind == "checkpoint"] == \
        ["output/yolov3_darknet_voc/4500"]



def test_an_indented_static_graph_log_keeps_each_evaluation_and_its_ctrl_c():
    """A notebook export indents every line of a 0.x run: each evaluation is read at the
    iteration it ran (two COCO tables; the second overwrote the first, at the last training
    step), and the reader's `KeyboardInterrupt: main proc … exit` line is the run's end."""
    run = load(str(PPDET / "public_49_static_notebook_indented_two_evals_then_ctrl_c.log"))
    evals = [(step, values["bbox/AP"]) for step, _, values in train_rows(run, "eval")]
    assert evals == [(30000.0, 0.211), (60000.0, 0.214)]
    assert run.count("train") == 312
    saved = [m.detail.rsplit("/", 1)[1] for m in run.markers if m.kind == "checkpoint"]
    assert saved == ["30000", "best_model", "60000", "best_model"]
    (killed,) = [m for m in run.markers if m.kind == "killed"]
    assert (killed.line, killed.step) == (425, 62200)
    assert summarize(run)["status"] == "failed"

# --- evaluations of a Trainer console: each kept, at the step it ran ---------------------------
SEQ_LABEL = LF / "57_nonLF_tokcls_two_evals_glued_warning_log_history.log"
SBERT = LF / "58_nonLF_sbert_eval_after_one_frame_bars_commented.log"


def _log_history(path) -> list[dict]:
    """The `trainer.state.log_history` a log prints at its end (its true steps)."""
    import ast

    line = next(x for x in path.read_text().splitlines() if x.startswith("[{'"))
    return ast.literal_eval(line)


def test_two_evaluations_with_the_same_keys_are_two_records():
    """A console logging and evaluating once per epoch: both evaluations are kept (the
    second one, at a step whose keys were given already, was dropped as a repeat), each at
    the step its printed log_history states, the first marked as an estimate (no bar tells
    it); so the best is the epoch-2 one."""
    want = [(h["step"], h["eval_accuracy"]) for h in _log_history(SEQ_LABEL) if "eval_loss" in h]
    run = load(str(SEQ_LABEL))
    got = [(step, est, v["eval_accuracy"]) for step, est, v in train_rows(run, "eval")
           if "eval_accuracy" in v]
    assert [(s, a) for s, _, a in got] == want == [(268, 0.9862039316840583),
                                                    (536, 0.9863211787235706)]
    assert [est for _, est, _ in got] == [True, False]
    assert best(run) == {"metric": "eval_accuracy", "value": 0.9863211787235706, "step": 536,
                         "step_estimated": False, "epoch": 2.0}


def test_a_restatement_is_one_record_a_second_evaluation_is_two():
    """`TrainOutput(... metrics={...})` restates the final dict with more digits: one final
    record. The gpt2 run's own `trainer.evaluate()` after training (eval_runtime 0.6205, not
    the last dict's 0.745) is a second evaluation at step 8000: kept."""
    final = train_rows(load(str(DATA / "events" / "hf_tensorboard" / "console.log")), "final")
    assert len(final) == 1 and final[0][2]["train_runtime"] == 4.262
    evals = train_rows(load(str(DATA / "gpu_run" / "hf_trainer_gpt2_h100.log")), "eval")
    assert [(s, v["eval_runtime"]) for s, _, v in evals[-2:]] == [(8000, 0.745), (8000, 0.6205)]


def test_an_eval_takes_its_own_bar_not_the_next_logging_steps(tmp_path):
    """One frame a line (no redraws), a frame every 500 steps, evaluation_steps=1000: the
    first evaluation follows the step-1000 record and is flushed by the step-1500 bar (the
    next logging step's): it takes 1000, marked as an estimate; the second is glued after a
    `2000/2628` bar: 2000, stated. Before, 1500 and 2500, both shown as stated. With or
    without the paste's `# ` prefixes."""
    bare = tmp_path / "bare.log"
    bare.write_text("".join(line[2:] for line in SBERT.read_text().splitlines(keepends=True)))
    for path in (SBERT, bare):
        evals = [(s, est) for s, est, _ in train_rows(load(str(path)), "eval")]
        assert evals == [(1000, True), (2000, False)], path


def test_a_printed_log_history_is_no_record():
    """`[{'loss': 0.08, ..., 'step': 268}, ...]` is the Trainer's history printed by the
    script, not a record it logged: no second segment at step 268, the final loss is the last
    record's (0.0351); the line is counted as not understood."""
    summary = summarize(load(str(SEQ_LABEL)))
    assert summary["segments"] == 1 and summary["final"]["loss"] == 0.0351
    assert summary["unparsed_lines"] >= 1


def test_a_bar_with_a_warning_glued_to_its_rate_is_a_bar():
    """`268/536 [01:10<01:00,  4.45it/s/cluster/work/.../v1.py:57: UndefinedMetricWarning`:
    the rate is `it/s`, the warning follows; so the training bar is known (total 536) and the
    epoch-1 record takes step 268, as log_history states."""
    run = load(str(SEQ_LABEL))
    assert run.info.get("total_steps") == 536
    assert train_rows(run)[0][:1] == (268,)


def test_a_wrapped_dict_that_lost_its_space_keeps_every_value():
    """A terminal copy hard-wrapped right after `'logps/rejected':` (the space lost at the
    wrap): the value on the next line is kept, so every record has every key."""
    rows = train_rows(load(str(LF / "54_nonLF_kto_hardwrapped_terminal_copy.log")))
    assert rows and all("logps/rejected" in v and "loss" in v for _, _, v in rows)


def test_an_evaluation_a_later_process_ran_has_no_epoch_of_the_training_before():
    """A training run, then `tools/eval.py` of its checkpoint three days later, in one file:
    the evaluation is a new segment with no epoch or step (it took the training run's epoch 0
    and step 86), is not timed from the training record of the other process (which made a
    3-day evaluation and an ETA of 117 days), and the ETA is the log's own 18:53:12."""
    run = load(str(PPDET / "public_41_train_then_evalpy_same_file_roadsign.log"))
    summary = summarize(run)
    ((step, _, values),) = train_rows(run, "eval")
    assert np.isnan(step) and values["bbox/mAP"] == 66.21 and summary["segments"] == 2
    assert summary["best"]["step"] is None and summary["best"]["epoch"] is None
    assert summary["timing"] is None or summary["timing"].get("eval") is None
    assert summary["eta_seconds"] == 18 * 3600 + 53 * 60 + 12


def test_steps_estimated_from_the_epoch_count_an_epochs_partial_last_batch():
    """A stdout-only console of 180 examples in batches of 16 over 20 epochs (240 steps, as
    stated): each epoch takes 12 steps, the printed epoch counts batches. The estimated steps
    are those trainer_state.json's log_history states (5, 10, 15, …; they were 5, 10, 14, 19,
    …, 225 at 11.25 steps an epoch), still marked as estimates."""
    folder = LF / "59_agosalvez_tfm_results"
    want = [h["step"] for h in json.loads((folder / "trainer_state.json").read_text())
            ["log_history"] if "loss" in h]
    rows = train_rows(load(str(folder / "training_v3.log")))
    assert [int(s) for s, _, _ in rows] == want and want[-1] == 240
    assert all(est for _, est, _ in rows)


def test_an_evaluation_after_training_in_an_older_trainer_log_keeps_the_training_counters():
    """Older LLaMA-Factory versions write the evaluation after training with the eval loop's
    counters (`"current_steps": 300, "total_steps": 300` after 1011 steps): it is at the step
    training ended (marked as an estimate), the run's total stays 1011, and the evaluations
    during training are those log_history states (it sat at step 300 beside the real one and
    set off a false eval_regression)."""
    folder = LF / "60_heymimihere_my_work_sft"
    want = [(h["step"], h["eval_loss"]) for h in json.loads((folder / "trainer_state.json")
                                                            .read_text())["log_history"] if "eval_loss" in h]
    run = load(str(folder / "trainer_log.jsonl"))
    evals = [(int(s), est, v["eval_loss"]) for s, est, v in train_rows(run, "eval")]
    assert [(s, v) for s, est, v in evals if not est] == want
    assert evals[-1] == (1011, True, 1.044925332069397)
    summary = summarize(run)
    assert summary["total_steps"] == 1011 and summary["anomalies"] == []


def test_a_run_that_finished_before_the_last_one_began_does_not_finish_the_file():
    """Four PaddleSeg runs appended to one workerlog.0: the first finishes (1000/1000), the last
    (a resume) stops at 13730/50000 with 15 h to go. The file's run is not finished (it was, from
    the first run's end) and its progress is the last run's."""
    summary = summarize(load(str(DATA / "paddleseg" /
                                 "11_four_runs_appended_finished_then_resumed_workerlog0.log")))
    assert summary["status"] != "finished"
    assert summary["progress"]["percent"] < 30 and summary["eta_seconds"] > 15 * 3600


def test_a_new_process_loss_is_no_spike_against_the_one_before():
    """Four runs appended to one workerlog.0: each new run starts at a loss far above where the
    run before ended; the spike test compares a record with the records of its own segment
    only (it found five spikes at steps 10-50, all first records of a fresh run)."""
    run = load(str(DATA / "paddleseg" / "11_four_runs_appended_finished_then_resumed_workerlog0.log"))
    # four processes: the last resumed from iter 10000, a segment of its own from its
    # start-up banner although its iterations go on (they went unsplit: three segments)
    assert len(run.segments) == 4
    assert [a for a in anomalies(run) if a["kind"] == "spike"] == []


def test_a_short_log_a_watch_finds_written_is_read_once_it_stays_quiet():
    """A watch decides a live log's format at a pause only on lines mostly of one format; a
    short log already written (a launch folder's workerlog.0: 283 lines, most of them start-up
    output) was never read: no format, no record, no end. Once its lines have stayed as they
    are for a few pauses, it is decided as `summary` decides a whole log."""
    from logreport.model import Run
    from logreport.pipeline import QUIET_SETTLES, Ingest
    from logreport.sources import Input

    path = PPDET / "public_42_launch_logdir_nine_launches" / "workerlog.0"
    run = Run("live")
    ingest = Ingest(run, str(path), give_up=False)
    ingest.feed(list(Input(str(path)).lines()))
    assert ingest.settle() == 0 and ingest.parser is None       # a first pause: not yet
    for _ in range(QUIET_SETTLES):
        ingest.settle()
    ingest.finish(strict=False)
    alone = load(str(path))
    assert run.format == alone.format == "ppdet"
    assert train_rows(run) == train_rows(alone) and len(train_rows(run)) == 10


@pytest.mark.parametrize("case, cut", [
    ("paddleseg/11_four_runs_appended_finished_then_resumed_workerlog0.log", 2128),
    ("paddleocr/15_v2.0_rec_training_then_evalpy_of_another_checkpoint_workerlog0"
     "_lines34300-35583.log", 2559)])
def test_a_watch_quiet_through_start_up_waits_for_lines_that_read(case, cut, tmp_path):
    """A training quiet for a few seconds after its start-up (loading the model, warming the
    data loader) had its format decided on the start-up lines alone, "as a whole log's": a
    PaddleSeg and a PaddleOCR start-up scored as PaddleDetection's, and the watch read the
    whole run so (0 records, `running` to the end). Decided so, a format must read a record
    or a failure in the lines; else the watch waits for more."""
    from logreport.model import Run
    from logreport.pipeline import QUIET_SETTLES, Ingest
    from logreport.sources import Input

    path = DATA / case
    (tmp_path / "head.log").write_bytes(path.read_bytes()[:cut])
    head = list(Input(str(tmp_path / "head.log")).lines())
    lines = list(Input(str(path)).lines())
    assert lines[:len(head)] == head
    run = Run("live")
    ingest = Ingest(run, "live", give_up=False)
    ingest.feed(head)
    for _ in range(QUIET_SETTLES + 2):
        ingest.settle()
    assert ingest.parser is None
    ingest.feed(lines[len(head):])
    ingest.settle()
    ingest.finish()
    want = load(str(path))
    assert run.format == want.format and train_rows(run) == train_rows(want)


@pytest.mark.parametrize("case, first", [
    ("paddlenlp/05_trainer_utc_cpu_hardwrapped_tabs_eval_f1_codeid22671860482.log", 3),
    ("paddlenlp/05_trainer_utc_cpu_hardwrapped_tabs_eval_f1_codeid22671860482.log", 5),
    ("paddleseg/12_valpy_eval_only_indented_aistudio_codeid46745137771.log", 4)])
def test_a_live_log_paused_after_a_few_lines_keeps_every_record(case, first):
    """`watch` decides the format at a pause in the writing. After PaddleNLP's Trainer banner
    (which transformers prints alike), or after lines that only name a "paddle" path, it chose
    hf_trainer / ppdet and read no record of the whole log; it now waits for lines that tell,
    and reads what `summary` reads."""
    from logreport.model import Run
    from logreport.pipeline import Ingest
    from logreport.sources import Input

    path = DATA / case
    lines = list(Input(str(path)).lines())
    run = Run("live")
    ingest = Ingest(run, "live", give_up=False)
    ingest.feed(lines[:first])
    ingest.settle()
    ingest.feed(lines[first:])
    ingest.settle()
    ingest.finish()
    want = load(str(path))
    assert run.format == want.format
    assert (run.count("train"), run.count("eval")) == (want.count("train"), want.count("eval"))


def test_a_total_from_the_eta_is_the_last_runs():
    """Two runs in one paste: 200 iterations an epoch (ETA 25 days), then a restart with 800
    (`[0/800] … eta: 8 days, 16:04:24 batch_cost: 2.5653`: 749064 s / 2.5653 s = 292000 steps,
    365 epochs). The total, and so progress and what is left, is the last run's (it was the
    first run's 129600)."""
    summary = summarize(load(str(PPDET / "public_07_ppyolo_nan_paddle33911.log")))
    assert summary["segments"] == 2
    assert (summary["total_steps"], summary["total_steps_estimated"]) == (292000, True)


def test_a_run_stopped_well_short_of_its_total_is_not_100_percent_done():
    """LlamaBoard's running log of a run stopped at about step 2100 of 17,000 (`Training
    completed.` all the same): finished, at 12 % (it said 100 %); a finished run whose last
    record comes a logging interval before its total stays at 100 % (the fixtures above)."""
    summary = summarize(load(str(LF / "61_running_log_stopped_at_12_percent_finetune_LLM.txt")))
    assert summary["status"] == "finished" and summary["total_steps"] == 17000
    assert 12 <= summary["progress"]["percent"] < 13
    long80 = summarize(load(str(LONG80)))
    assert long80["status"] == "finished" and long80["progress"]["percent"] == 100.0


def test_results_files_that_repeat_one_another_are_one_record():
    """A prediction-only output folder: all_results.json and predict_results.json hold the same
    metrics (no step): one record, each metric once (they were two, every row exported twice);
    the report's facts say what was left out (`files_used`)."""
    folder = LF / "62_law_LLM_lora_eval"
    run = load(str(folder))
    assert run.count("eval") == 1
    assert [v for _, _, v in train_rows(run, "eval")][0]["predict_bleu-4"] == 1.9650988095238098
    assert run.info["files_used"]["predict_results.json"] == "1 records equal to ones before left out"


def test_a_pause_after_a_partial_refresh_brings_every_live_figure_up_to_date(tmp_path):
    """`watch` follows new records with the figures that cost little (counts, last step) and
    redoes the whole-run ones at most a share of the time; when the log then pauses, those are
    redone as soon as they may be (they waited up to 30 s: `progress.step` 1 beside
    `last_step` 3, the nan anomaly counting 1 record of 3)."""
    import time as clock

    from logreport.watch import Options, Watch

    lines = (LF / "sft_lora" / "trainer_log.jsonl").read_bytes().split(b"\n")
    log = tmp_path / "trainer_log.jsonl"
    log.write_bytes(b"\n".join(lines[:10]) + b"\n")
    w = Watch(str(log), Options(poll=0.01, output=str(tmp_path / "r.html")))
    w.start()
    w.step()
    w.publish(whole=True)
    w.next_whole = clock.monotonic() + 60           # whole-run figures were just redone
    with open(log, "ab") as f:
        f.write(b"\n".join(lines[10:]))
    w.step()
    w.publish()                                     # new records: the cheap figures only
    assert w.whole_due and w.summary["progress"]["step"] != w.summary["last_step"]
    w.next_whole = clock.monotonic()                # the share of time has passed; no new line
    w._refresh_due(clock.monotonic(), got=0)
    assert w.dirty
    w.publish()
    assert not w.whole_due and w.summary["progress"]["step"] == w.summary["last_step"] == 60
    w.finish()


def test_ms_swift_dicts_state_their_step_and_the_total():
    """ms-swift (a Trainer underneath) writes each dict's step and the total into it:
    `'global_step/max_steps': '5/94'`. It was ignored, and the records were numbered 1, 2, 3 ...
    (marked estimated) against a log that states 1, 5, 10 ...; an evaluation's dict restates
    the training's memory and speed, which became metrics of the evaluation (`train_speed(s/it)`
    ranked higher-is-better). The stated steps are read now, in the console and in
    logging.jsonl, and an evaluation keeps only its own metrics."""
    cases = {"69_nonLF_msswift_console_string_values_glued_to_bars.log":
             ([1, *range(5, 61, 5)], [60], 60),
             "70_nonLF_msswift_console_docs_metax.log": ([1, *range(5, 91, 5)], [], 94),
             "71_nonLF_msswift_logging.jsonl": ([1, *range(10, 431, 10)],
                                                [100, 200, 300, 400, 438], 438)}
    for name, (steps, evals, total) in cases.items():
        run = load(str(LF / name))
        assert [(s, est) for s, est, _ in train_rows(run)] == [(s, False) for s in steps], name
        rows = train_rows(run, "eval")
        assert [(s, est) for s, est, _ in rows] == [(s, False) for s in evals], name
        assert all(not k.startswith(("memory", "train_speed")) for _, _, m in rows for k in m)
        summary = summarize(run)
        assert summary["total_steps"] == total and summary["progress"]["percent"] == 100, name


def test_a_semi_supervised_run_keeps_teacher_and_student_evaluations_apart():
    """PaddleDetection's semi-supervised trainer evaluates the teacher, then the student, each
    with a COCO table. Both were one `bbox/AP` series (two values a step), and the student's
    lower values made a false eval_regression ("0.389 worse than its best 0.409 for 3 evals in
    a row": the teacher had one eval below its best). The student's metrics are named apart."""
    run = load(str(PPDET / "public_44_semi_detr_teacher_then_student_evaluations_workerlog0.log.gz"))
    rows = [(step, m) for step, _, m in train_rows(run, "eval")]
    teacher = [(s, m["bbox/AP"]) for s, m in rows if "bbox/AP" in m]
    student = [(s, m["student/bbox/AP"]) for s, m in rows if "student/bbox/AP" in m]
    assert len(student) == 21 and student[:2] == [(3634, 0.371), (3629, 0.377)]
    assert teacher[:3] == [(3634, 0.393), (3629, 0.398), (7259, 0.4)]
    regressions = [a for a in anomalies(run) if a["kind"] == "eval_regression"]
    # the teacher's own fall after its best 0.409 (line 2653): 0.408, 0.405, 0.399
    assert (regressions[0]["line"], regressions[0]["detail"]) == \
        (3221, "bbox/AP 0.399 is worse than its best 0.409 for 3 evals in a row")


def test_a_log_of_evaluations_after_a_failed_start_is_not_failed_nor_regressing():
    """A launch folder whose one training start failed (a traceback, line 117), then six
    `tools/eval.py` runs weeks later, each on another test set: the status was `failed` (the
    traceback came after the last training record: there was none) and the six accuracies,
    at no step of any training, made an eval_regression. A failure before the last evaluation
    of a log of evaluations is over, and evaluations at no step are no series to regress."""
    folder = DATA / "paddleocr" / "16_failed_start_then_six_evalpy_runs_on_other_test_sets_logdir"
    run = load(str(folder))
    evals = train_rows(run, "eval")
    assert len(evals) == 6 and all(np.isnan(step) for step, _, _ in evals)
    summary = summarize(run)
    assert summary["status"] != "failed"
    assert [a["kind"] for a in anomalies(run)] == ["traceback"]


def test_each_paddleocr_evalpy_launch_is_a_segment_its_best_never_taken_over_the_others():
    """Six `tools/eval.py` launches of one checkpoint on CUTE80, SVTP, IC15_2077, … (each its
    start-up, config dump, `metric in ckpt`, `metric eval`) were one segment of six
    evaluations, and the best "acc 0.8908" the highest of accuracies on different test sets.
    Each launch is a segment of its own; the best is the last launch's, and says so."""
    folder = DATA / "paddleocr" / "16_failed_start_then_six_evalpy_runs_on_other_test_sets_logdir"
    run = load(str(folder))
    evals = run.arrays("eval", "acc")
    assert evals["value"].tolist() == [0.8908419336551633] * 3 + [
        0.8167689180606863, 0.7721576242015297, 0.8850143379291362]       # all six kept
    assert len(set(evals["segment"].tolist())) == 6
    got = best(run)
    assert got["value"] == 0.8850143379291362 and got["separate_evaluations"] == 6
    assert "(the last of 6 separate evaluation runs, not compared)" in present.best(got)
    table = build([run])["runs"][0]["evals"]
    assert table["best"][table["columns"].index("acc")] == []      # (was rows 0-2: CUTE80's)


def test_evalpy_launched_twice_on_the_same_set_is_two_segments():
    """smilelite/spin_paddle's workerlog.0: tools/eval.py launched twice on the same checkpoint
    and SVTP set (acc 0.8531, then 0.8540), read as one process's two evaluations. Two
    launches, two segments; the checkpoint's stored acc (0.9059) a fact, no evaluation."""
    run = load(str(DATA / "paddleocr" / "28_eval_py_launched_twice_same_checkpoint_same_svtp_set"
                                        "_workerlog0.log"))
    evals = run.arrays("eval", "acc")
    assert evals["value"].tolist() == [0.8531249866699221, 0.8540372538192973]
    assert evals["segment"].tolist() == [0, 1] and np.isnan(evals["step"]).all()
    assert run.info["ckpt_acc"] == 0.90589541082154
    summary = summarize(run)
    assert summary["segments"] == 2 and summary["train_records"] == 0
    assert summary["best"]["value"] == 0.8540372538192973
    assert summary["best"]["separate_evaluations"] == 2


def test_evalpy_launches_between_trainings_are_a_segment_each():
    """Fixture 15: two eval.py launches (a wrong path, then the released model) between a
    training and the next were one segment; then a third after the short training. Three
    segments of their own; the best is the last one's, the others not compared."""
    run = load(str(DATA / "paddleocr" / "15_v2.0_rec_training_then_evalpy_of_another_checkpoint"
                                        "_workerlog0_lines34300-35583.log"))
    segments = run.arrays("eval", "acc")["segment"].tolist()
    assert len(segments) == 3 == len(set(segments))
    assert summarize(run)["segments"] == 5
    assert best(run)["separate_evaluations"] == 3 and "last_training" not in best(run)


def test_a_test_of_each_task_in_a_process_of_its_own_is_not_compared():
    """PaddleNLP fixture 17: eprstmt tested (accuracy 0.5), then csldcp (0.0135), one process
    each: the best was 0.5, the other task's. It is the last process's, said to be one of 2."""
    run = load(str(DATA / "paddlenlp" / "17_trainer_2022_fewclue_two_tasks_tested_one_process"
                                        "_each.log"))
    got = best(run)
    assert (got["metric"], got["value"], got["separate_evaluations"]) == ("test_accuracy", 0.0135, 2)


def test_ppdet_evalpy_launches_appended_to_one_log_are_a_segment_each(tmp_path):
    """Two PaddleDetection tools/eval.py launches in one log (model_final, then best_model,
    10 min apart): one segment, as if one process evaluated twice. A start-up after a process
    that evaluated begins a segment, as after one that trained."""
    log = tmp_path / "two_evals.log"
    log.write_bytes((PPDET / "ppyoloe_crn_s_coco_evalonly_nodets.log").read_bytes()
                    + (PPDET / "ppyoloe_crn_s_coco_evalonly_classwise.log").read_bytes())
    run = load(str(log))
    assert [len(seg.eval) for seg in run.segments] == [1, 1]


def test_a_launch_that_failed_before_it_trained_leaves_the_finished_run_finished():
    """A PicoDet run finished (its last eval, the best checkpoint, the launcher's shutdown);
    11 h later a new launch, appended to the same workerlog.0, was killed before it trained.
    The run read as `failed` at 96 % ("Failed at step 520"), in 11 h 28 min. The failure is still
    listed, and said in the evidence, but the training it did not touch stays finished, its
    wall time its own."""
    name = "public_45_picodet_finished_then_a_relaunch_killed_before_training_workerlog0.log"
    run = load(str(PPDET / name))
    summary = summarize(run)
    assert summary["status"] == "finished" and summary["progress"]["percent"] == 100
    assert "a later launch failed before it trained (traceback at line 88" in summary["status_evidence"]
    assert summary["wall_seconds"] == 203       # not to the later launch, 11 h on (41309 s)
    assert [(a["kind"], a["line"]) for a in anomalies(run)] == [("traceback", 88)]


def test_a_deepspeed_relaunch_that_failed_before_it_trained_leaves_the_training_finished():
    """A script's DeepSpeed launches in one console (`[runner.py:…] cmd = …` each): the third
    training finished (its train metrics, predict metrics, `exits successfully`); the fourth
    launch failed loading its adapter before a step. The log read as `failed` at step 625 of
    the finished training, as for PaddleDetection's relaunch above it is finished, the failure
    listed at no step."""
    run = load(str(LF / "64_nonLF_deepspeed_script_three_trainings_no_banner.log"))
    summary = summarize(run)
    assert summary["status"] == "finished"
    assert summary["status_evidence"].endswith(
        "a later launch failed before it trained (traceback at line 615: NotImplementedError)")
    assert [(a["kind"], a["line"], a["step"]) for a in anomalies(run)] == \
        [("traceback", 615, None), ("traceback", 631, None)]
    assert summary["segments"] == 3 and summary["train_records"] == 180


def test_a_later_launchs_failure_has_no_step_of_the_run_before():
    """Launches appended to one workerlog.0 that fail before they train (a dataset error, then
    a missing config): their tracebacks were pinned to step 200 of the run before, and the
    second, at the same step, was folded into the first (one failure per kind and step)."""
    run = load(str(PPDET / "public_46_rtdetr_kpts_launches_that_fail_before_training_workerlog0.log.gz"))
    failures = {a["line"]: a for a in anomalies(run) if a["kind"] == "traceback"}
    assert failures[91]["step"] is None and failures[91]["detail"].startswith("ValueError: Dataset")
    assert failures[102]["step"] is None and failures[102]["detail"].startswith("FileNotFoundError")


def test_paddles_gpu_out_of_memory_and_cpp_tracebacks_are_read():
    """Paddle ends a crash with its C++ traceback: separators, `Error Message Summary:`, then the
    error (`ResourceExhaustedError: … Out of memory error on GPU 0`, or `FatalError: Termination
    signal`). A separator closed the traceback as "cut off before the exception line", so a GPU
    out of memory was no `oom` (`check --fail-on oom` passed) and a kill said nothing of itself."""
    ocr = load(str(DATA / "paddleocr" / "17_ppocrv5_det_windows_many_launches_gpu_oom_workerlog0.log.gz"))
    ooms = [(a["line"], a["detail"]) for a in anomalies(ocr) if a["kind"] == "oom"]
    # the error's message comes after a blank line, where Paddle prints one (a separator
    # follows MemoryError: it has none): it was left out ("ResourceExhaustedError:")
    gpu = ("ResourceExhaustedError: Out of memory error on GPU 0. Cannot allocate 46.875000MB "
           "memory on GPU 0, 3.999512GB memory has been allocated and available memory is only "
           "0.000000B.")
    # (the next launch's, at line 10647, is its own: it was folded into this one)
    assert ooms == [(10446, "MemoryError:"), (10456, gpu), (10647, "MemoryError:"), (10657, gpu)]
    name = "13_ocrnet_sigterm_cpp_traceback_then_a_run_to_the_end_workerlog0.log.gz"
    seg = load(str(DATA / "paddleseg" / name))
    kills = [(a["line"], a["detail"]) for a in anomalies(seg) if a["kind"] == "traceback"]
    assert kills == [(142, "FatalError: `Termination signal` is detected by the operating system.")]
    result = CliRunner().invoke(main, ["check", "--fail-on", "oom", str(
        DATA / "paddleocr" / "17_ppocrv5_det_windows_many_launches_gpu_oom_workerlog0.log.gz")])
    assert result.exit_code == 1


def test_an_error_rate_is_better_lower():
    """An ASR fine-tune evaluates its word error rate (`eval_wer`: 20.64, 20.84, 21.07, 21.03):
    it was ranked higher-is-better, and the report's table marked 21.07, the worst, as best.
    Error rates named by their abbreviation (WER, CER, MSE, ...) are better lower."""
    run = load(str(LF / "72_nonLF_whisper_asr_eval_wer_stdout.log"))
    found = best(run, "eval_wer")
    assert round(found["value"], 4) == 20.6352
    assert [lower_is_better(m) for m in ("eval_wer", "eval_cer", "test_rmse", "eval_answer",
                                         "norm_edit_dis")] == [True, True, True, False, False]


def test_a_loss_near_zero_that_grows_tenfold_is_no_divergence():
    """Ten few-shot tasks trained one after another; one sits near 0 loss (1e-08 ... 1e-06).
    Its level rising from 1.3e-07 to 1.6e-06 was a `divergence` ("12.2x its best level"), which
    fails `check`: a rise of a millionth of the fall before it is noise."""
    name = "11_trainer_2022_08_fewclue_ten_tasks_one_file_near_zero_loss_oom.log.gz"
    run = load(str(DATA / "paddlenlp" / name))
    assert "divergence" not in [a["kind"] for a in anomalies(run)]
    assert "oom" in [a["kind"] for a in anomalies(run)]


def test_a_metrics_block_with_other_values_is_another_evaluation():
    """A `***** eval metrics *****` block was taken for a restatement of any record with its
    keys at its step, whatever its values: the evaluation of the best model after training
    (`eval_wer = 20.6352`, after the last in-loop 21.03) and the blocks of a second and a third
    run pasted in one file were dropped. A block restates only what it prints alike."""
    whisper = train_rows(load(str(LF / "72_nonLF_whisper_asr_eval_wer_stdout.log")), "eval")
    assert len(whisper) == 6 and round(whisper[-1][2]["eval_wer"], 4) == 20.6352
    runs = load(str(LF / "73_nonLF_ner_three_runs_pasted_metrics_blocks_md.log"))
    assert [m["eval_f1"] for _, _, m in train_rows(runs, "eval") if "eval_f1" in m] == \
        [0.959, 0.9576, 0.9578]
    assert [m["train_loss"] for _, _, m in train_rows(runs, "final")] == [0.0549, 0.0538, 0.0621]


def test_an_evaluation_whose_epoch_belies_its_bar_step_shows_a_buffered_stdout():
    """`> file`: stdout is block-buffered apart from tqdm's stderr, so each dict comes out after
    the bar has moved on. No dicts came in a burst (one evaluation every 200 steps, a loss every
    500), so nothing said so: the step-200 evaluation (epoch 5.13 at 2,490 examples in batches
    of 64), printed after the frames up to 400/5000, was put at 400, marked exact, and every
    evaluation one interval late. An evaluation whose epoch names a step that far from its bar
    shows the stdout buffered: its step and the training records' after it are estimates."""
    run = load(str(LF / "74_nonLF_t5_rte_redirected_stdout_evals_after_the_bar.log.gz"))
    evals = [(step, est) for step, est, _ in train_rows(run, "eval")]
    assert evals[:3] == [(200, True), (400, True), (600, True)]     # where their bars began
    assert all(est for _, est, _ in train_rows(run))
    assert "dict_steps" in run.info


def test_an_evaluations_example_count_is_not_the_trainings():
    """A job log whose lines were reordered within a second: the evaluation's `Num examples =
    55` before its `Running Evaluation` banner replaced the training's 504, and the estimated
    steps (and the progress: 6.8 % at the last dict, epoch 39.68, truly 62.5 %) were read at
    55 / 32 examples a step."""
    run = load(str(LF / "75_nonLF_whisper_job_log_eval_count_before_its_banner.log.gz"))
    summary = summarize(run)
    assert run.info["num_examples"] == 504
    assert summary["last_step"] == 625 and summary["progress"]["percent"] == 62.5


def test_paddlenlp_records_written_through_the_progress_bar_are_read():
    """PaddleNLP's Trainer with its progress bar on writes each record through the bar, with no
    logger prefix: the log (a run of 3108 steps to the end among crashed launches) was read as
    hf_trainer with 0 records and `failed`. Its records are read; each launch that trains or
    evaluates is a segment; an evaluation between logging steps takes the step its epoch names (an estimate),
    one before the launch's first record none (it had the step of the launch before)."""
    name = "12_trainer_2023_11_progress_bar_on_records_without_prefix_workerlog0.log.gz"
    run = load(str(DATA / "paddlenlp" / name))
    assert run.format == "paddlenlp" and len(run.segments) == 5     # (two launches evaluated only)
    first = run.segments[0]
    assert np.asarray(first.train.step).tolist() == [500, 1000, 1500, 2000, 2500, 3000, 3108]
    evals = [(step, est, m["eval_anls"]) for step, est, m in train_rows(run, "eval")]
    assert evals[:2] == [(1000, False, 61.12011982881637), (2000, False, 60.26329338104196)]
    assert (600, True, 59.82550958325837) in evals
    assert all(not np.isnan(step) or not est for step, est, _ in evals)
    # the last launch's `Total optimization steps = 2,332` (a thousands separator: was unread)
    assert summarize(run)["total_steps"] == 2332


def test_a_run_is_ranked_by_the_metric_its_trainer_keeps_its_best_by():
    """The Trainer's arguments dump states the metric it keeps its best checkpoint by
    (`metric_for_best_model=wer,`; PaddleNLP's `metric_for_best_model :macro_f1`): the runs were
    ranked by the format's first metric instead (eval_loss; eval_micro_f1)."""
    whisper = load(str(LF / "72_nonLF_whisper_asr_eval_wer_stdout.log"))
    assert whisper.info["metric_for_best_model"] == "wer"
    assert best(whisper)["metric"] == "eval_wer" and round(best(whisper)["value"], 4) == 20.6352
    name = "13_trainer_2023_04_utc_metric_for_best_model_macro_f1_workerlog0.log"
    utc = load(str(DATA / "paddlenlp" / name))
    assert best(utc)["metric"] == "eval_macro_f1"


def test_one_fp16_overflow_of_the_grad_norm_is_no_nan():
    """An fp16 run logs `'grad_norm': inf` once (the loss scaler's overflow: the step is
    skipped), its loss finite, the next grad_norm finite: it was a `nan` anomaly, which fails
    `check` and stops `watch --stop-on nan`. A grad_norm non-finite in two records in a row still
    is one (the last alone not yet: a live run's next record may show it was an overflow)."""
    run = load(str(LF / "76_nonLF_speech_fp16_one_grad_norm_inf_overflow_skipped.log.gz"))
    assert "nan" not in [a["kind"] for a in anomalies(run)]
    diverged = load(str(LF / "sft_full_diverge"))
    assert [a["detail"] for a in anomalies(diverged) if a["kind"] == "nan"][0].startswith(
        "grad_norm is nan at step 2")


def test_final_values_are_the_last_trainings():
    """`final` took each metric's last value in the whole log: a DRRG run's summary showed the
    `dice_loss` and `smooth_l1_loss` of another model, trained in an earlier process of the
    same workerlog. It holds the metrics of the log's last training."""
    name = "14_drrg_after_another_models_process_esfcenet_workerlog0_lines4000-9000.log.gz"
    final = summarize(load(str(DATA / "paddleocr" / name)))["final"]
    assert "loss" in final and "dice_loss" not in final and "smooth_l1_loss" not in final


def test_a_paddleocr_evaluation_takes_the_step_the_run_evaluates_at():
    """PaddleOCR prints a record every 10 steps and evaluates every 19 (`an evaluation is run
    every 19 iterations`): its evaluations, at steps 19 and 38, were put at the last printed
    steps, 10 and 30, marked exact. They take the step the run evaluates at, marked derived."""
    run = load(str(DATA / "paddleocr" / "18_kie_re_eval_every_19_printed_every_10_workerlog0.log"))
    assert [(step, est) for step, est, _ in train_rows(run, "eval")][:2] == [(19, True), (38, True)]
    # an evaluation at a printed step stays exact (PaddleOCR 2.0: every 2000, printed every 10)
    other = load(str(DATA / "paddleocr" / "13_v2.0_root_cur_best_metirc_typo_twstreet.log"))
    assert [(step, est) for step, est, _ in train_rows(other, "eval")] == [(2000, False),
                                                                           (4000, False)]


def test_a_log_whose_first_lines_tell_another_format_is_read_in_its_own():
    """A PaddleSeg run on a hosted job: 520 lines of the job's set-up come first, the format
    was decided on the first 400 (as ppdet) and the whole run refused ("no training records
    recognised"). A log that gave nothing in the format its first lines named is read again in
    the one its whole text is in."""
    run = load(str(DATA / "paddleseg" / "14_full_run_after_520_lines_of_job_setup_trainer0.log.gz"))
    assert run.format == "paddleseg"
    summary = summarize(run)
    assert summary["train_records"] == 2400 and summary["last_step"] == 120000


def test_estimated_steps_follow_the_logging_steps_the_arguments_state():
    """A console of stdout only (no bars: every step an estimate) whose arguments' dump states
    `logging_steps=25`: its records were numbered 1, 2, 3 ... (the truth 25, 50, 75 ...: the run
    evaluated at 1000 and printed 200 records over 5000 steps). Until records state a gap, the
    estimates follow the stated one."""
    run = load(str(LF / "72_nonLF_whisper_asr_eval_wer_stdout.log"))
    assert run.info["logging_steps"] == 25
    rows = train_rows(run)
    assert [(step, est) for step, est, _ in rows[:4]] == [(25, True), (50, True), (75, True),
                                                          (100, True)]
    assert rows[-1][0] == 5000


def test_a_question_answering_run_is_ranked_by_its_overall_f1():
    """A SQuAD v2 run's evaluation has no loss and many scores (`eval_HasAns_exact`,
    `eval_HasAns_f1`, `eval_NoAns_*`, `eval_exact`, `eval_f1`, ...): it was ranked by
    `eval_HasAns_exact`, a subset's, the first name. The overall F1 ranks it."""
    assert best(load(str(LF / "77_nonLF_qa_squad_v2_metrics_blocks_readme.log")))["metric"] == "eval_f1"


def test_a_paddleocr_run_whose_eta_ran_out_is_finished():
    """PaddleOCR prints no end line: the end of a run (`epoch: [100/100], …, eta: 0:00:00`,
    its last evaluation, the closing best metric) read `unknown`, no progress. As for
    PaddleDetection, a run whose own ETA ran out, its last evaluation printed, is finished."""
    name = "19_paddlex_seal_det_last_epoch_eta_zero_then_best_metric_blog.log"
    summary = summarize(load(str(DATA / "paddleocr" / name)))
    assert summary["status"] == "finished" and summary["progress"]["percent"] == 100


def test_a_paddlenlp_metrics_block_restating_its_record_is_no_second_record():
    """PaddleNLP logs the final metrics (`train_runtime: 17.6188, …, train_loss: 1.1126…`), then
    prints them again rounded as `***** train metrics *****`: two final records (17.6188 and
    17.61, 1.11266… and 1.1127). The block restates the record before it: one record."""
    name = "13_trainer_2023_04_utc_metric_for_best_model_macro_f1_workerlog0.log"
    run = load(str(DATA / "paddlenlp" / name))
    finals = train_rows(run, "final")
    assert len(finals) == 1 and finals[0][2]["train_runtime"] == 17.6188
    assert len(train_rows(run, "eval")) == 2


def test_trainer_state_best_metric_names_the_metric_that_ranks():
    """A Whisper run's output folder: trainer_state.json states `best_metric` 0.74315…, the
    step-3000 eval_wer (its `best_model_checkpoint` is checkpoint-3000). That metric ranks the
    run (lower is better), not eval_loss, whose best is at step 1000 and whose later rise is
    then no eval_regression of the run's own metric."""
    run = load(str(LF / "78_nonLF_whisper_output_folder_best_by_wer"))
    top = best(run)
    assert (top["metric"], top["value"], top["step"]) == ("eval_wer", 0.7431560204762965, 3000)
    assert not [a for a in anomalies(run) if a["kind"] == "eval_regression"]


def test_runs_named_alike_are_told_apart_by_their_paths(tmp_path):
    """A LLaMA-Factory saves/ tree holds full/sft, lora/sft and three */eval runs: each run is
    named by as much of its path as tells it apart, in the export and the report (two `sft`
    runs' step-10 losses were one run's rows)."""
    tree = LF / "79_law_LLM_saves_tree_runs_named_alike"
    out = tmp_path / "x.csv"
    result = CliRunner().invoke(main, ["export", str(tree), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    rows = out.read_text().splitlines()[1:]
    assert sorted({row.split(",")[0] for row in rows}) == [
        "base/eval", "full/eval", "full/sft", "lora/eval", "lora/sft"]
    losses = {row.split(",")[0] for row in rows if ",train,10," in row and ",loss," in row}
    assert losses == {"full/sft", "lora/sft"}
    result = CliRunner().invoke(main, ["export", str(tree / "full" / "sft"),
                                       str(tree / "lora" / "sft"), "-o", str(out)])
    assert {row.split(",")[0] for row in out.read_text().splitlines()[1:]} == {"full/sft",
                                                                              "lora/sft"}
    page = tmp_path / "r.html"
    assert CliRunner().invoke(main, ["report", str(tree), "-o", str(page)]).exit_code == 0
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>',
                     page.read_text(encoding="utf-8"), re.S).group(1)
    assert sorted(run["name"] for run in json.loads(data)["runs"]) == [
        "base/eval", "full/eval", "full/sft", "lora/eval", "lora/sft"]


def test_a_loss_of_either_sign_is_judged_by_no_ratio():
    """GRPO's loss (a policy-gradient surrogate: 1.268e-05, -0.0007894, 0.005818, ...) sits
    around 0 with either sign: 0.0001877 is no spike at "14.8x the median 1.268e-05", nor is
    any later value; spikes and divergence, judged by ratios, judge no loss that goes
    negative (its non-finite values and zeros are still told)."""
    run = load(str(LF / "80_nonLF_grpo_loss_of_either_sign_excerpt.log"))
    assert len(train_rows(run)) == 29
    assert anomalies(run) == []


def test_a_log_refused_for_too_few_lines_says_what_its_closest_format_reads():
    """A DeepSpeed DPO run killed after its first record: 318 lines of launcher output and
    config, one DPO dict, the launcher's kill. Refused (2% of its lines are the Trainer's), the
    message says the closest format reads a training record in them and how to read it; read
    so, the launcher's `Main process received SIGINT, exiting` after the record fails it."""
    log = LF / "81_nonLF_dpo_deepspeed_launcher_sigint_one_dict.log"
    result = CliRunner().invoke(main, ["summary", str(log)])
    assert result.exit_code == 1
    assert "closest format: hf_trainer, 2% of lines: 1 training record in them" in result.stderr
    assert "--format hf_trainer reads it so" in result.stderr
    (run,), _ = summaries("--format", "hf_trainer", log)
    assert run["status"] == "failed" and run["train_records"] == 1
    assert "Main process received SIGINT, exiting" in run["status_evidence"]
    # cut before the launcher's lines, the dict is left waiting at the end: it counts too
    from logreport.pipeline import unknown_format
    head = log.read_text(encoding="utf-8").splitlines()[:318]
    assert "1 training record in them" in str(unknown_format(str(log), head))


def test_the_deepspeed_launchers_exit_code_is_a_failure():
    """The DeepSpeed launcher's last lines when a rank failed (LLaMA-Factory's train_bash.py):
    its `Killing subprocess` lines say nothing, `[...] exits with return code = 1` is a
    failure at the step reached (a negative code, a signal, is a kill)."""
    from logreport.events import KILLED, TRACEBACK, Marker
    from logreport.formats.hf_trainer import Parser

    lines = (LF / "82_deepspeed_launcher_exit_code_issue5302_excerpt.txt").read_text().splitlines()
    parser, out = Parser(), []
    for number, text in enumerate(lines, 1):
        out += parser.feed(text, number) or []
    assert [(m.kind, m.detail, m.line) for m in out if isinstance(m, Marker)] == [
        (TRACEBACK, "a process of the DeepSpeed launcher exits with return code = 1", 3)]
    parser = Parser()
    signalled = lines[2].replace("return code = 1", "return code = -9")
    assert [m.kind for m in parser.feed(signalled, 1)] == [KILLED]


def test_each_paddle_process_begins_a_run_segment_even_at_the_same_step():
    """A PP-OCRv5 workerlog.0 that 22 launches appended to (16 trained, each from step 10,
    with batch sizes 10, 6, 4, ...): each launch's `train with paddle` line (and Paddle's first
    use of a GPU) after records begins a segment, so no segment holds step 10 three times with
    three losses; a launch 8 days later that fails before it trains (FileNotFoundError) is at
    no step of the run before."""
    run = load(str(DATA / "paddleocr" / "17_ppocrv5_det_windows_many_launches_gpu_oom_workerlog0.log.gz"))
    assert len(run.segments) == 16 and len(train_rows(run)) == 509
    for _, table in run.tables("train"):
        steps = np.asarray(table.step)
        assert (np.diff(steps) > 0).all(), steps[:5]
    (missing,) = [a for a in anomalies(run) if "FileNotFoundError" in a["detail"]]
    assert missing["line"] == 10263 and missing["step"] is None
    # PaddleNLP's ten FewCLUE tasks, each its own process, four of them OOM at step 100: one
    # failure each (they were one anomaly: the same kind, step and detail)
    tasks = load(str(DATA / "paddlenlp"
                     / "11_trainer_2022_08_fewclue_ten_tasks_one_file_near_zero_loss_oom.log.gz"))
    assert [a["line"] for a in anomalies(tasks) if a["kind"] == "oom" and a["step"] == 100] == [
        506, 962, 1800, 1976]


def _phase_rows(path, tmp_path) -> list[list[str]]:
    out = tmp_path / "x.csv"
    result = CliRunner().invoke(main, ["export", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    return [row.split(",") for row in out.read_text().splitlines()[1:]]


def test_results_files_take_the_step_the_training_ended_at(tmp_path):
    """Output folders whose logging ended before the training's last step: a LLaMA-Factory
    SFT (last loss at step 330, trainer_state.json's final entry at 336) and a BART run (one
    loss record, at 500; the final entry at 693). train_results / all_results / eval_results
    state no step: their final metrics are the final entry's (once each, not again at the last
    loss step) and the evaluation after training is at the step it ran at; the run got to the
    final entry's step (693 of 693, not "500 steps, 72 %")."""
    lf = _phase_rows(LF / "84_lf_sft_output_folder_eval_after_training", tmp_path)
    finals = [row for row in lf if row[2] == "final"]
    assert {row[3] for row in finals} == {"336"}
    assert len(finals) == len({row[7] for row in finals})        # each metric once
    assert [row[3] for row in lf if row[7] == "eval_loss"] == ["336"]
    bart = _phase_rows(LF / "83_nonLF_bart_samsum_output_folder_one_loss_record", tmp_path)
    assert [row[3] for row in bart if row[7] == "train_runtime"] == ["693"]
    assert [row[3] for row in bart if row[7] == "eval_loss"] == ["693"]
    (run,), _ = summaries(LF / "83_nonLF_bart_samsum_output_folder_one_loss_record")
    assert (run["last_step"], run["last_epoch"], run["progress"]["percent"]) == (693, 3, 100.0)


def test_a_buffered_stdouts_bursts_lie_evenly_up_to_the_bar_they_came_at():
    """`nohup` consoles whose stdout was block-buffered apart from the bar: each flush writes
    the dicts printed since the one before, the last as the bar stood (the bar's count just
    before the burst). A GRPO run (no banner, 1875 steps, logging every 20): three bursts of
    31 dicts after frames 620, 1240 and 1860 were numbered 1-30, 620, 621-682; an SFT run
    (2115 steps, logging every 10, an evaluation every 100) had its evaluations and best at a
    tenth of their steps; a TRL SFT's evaluation at step 100 (epoch 0.55) was at 10."""
    grpo = load(str(LF / "85_nonLF_grpo_nohup_stdout_bursts_no_banner.log"))
    rows = train_rows(grpo)
    assert [step for step, _, _ in rows] == [20.0 * k for k in range(1, 94)]
    assert all(estimated for _, estimated, _ in rows)
    assert [(step, est) for step, est, _ in train_rows(grpo, "final")] == [(1875, False)]
    sft = load(str(LF / "86_nonLF_sft_lora_nohup_bursts_with_evals.log.gz"))
    assert [step for step, _, _ in train_rows(sft, "eval")] == [100.0 * k for k in range(1, 22)]
    assert (best(sft)["step"], best(sft)["step_estimated"]) == (1400, True)
    trl = load(str(LF / "87_nonLF_trl_sft_nohup_one_eval.log"))
    assert [step for step, _, _ in train_rows(trl, "eval")] == [100.0]
    assert [step for step, _, _ in train_rows(trl)][:3] == [10.0, 20.0, 30.0]


def test_a_burst_keeps_the_stated_gap_and_reads_rounded_epochs_to_their_decimals():
    """Bursts of a buffered stdout on three real consoles. A TRL QLoRA run (no banner, 1755
    steps, logging every 10): 20 dicts came after frame 200, their epochs printed to two
    decimals (0.33 at step 190: 0.3248 by the last epoch's 0.34, 0.325 by the true rate); the
    check took the rate from the last epoch alone and numbered the 175 records 1-175, the 8
    evaluations 20-160 (best at 160, not 1600). A Gemma run stated its gap (records at 10 ...
    200), then four dicts came out at Ctrl-C, the bar at 244: they were spread 211-244, not
    210-240. A torchrun SFT (no gap stated, flushes at epoch-end saves, bar 509 and 1018) was
    numbered 1-30 under a bar at 1524: now spread within each burst's bar."""
    qlora = load(str(LF / "103_nonLF_trl_qlora_nohup_bursts_epoch_printed_rounded_no_banner.log.gz"))
    rows = train_rows(qlora)
    assert [step for step, _, _ in rows] == [10.0 * k for k in range(1, 176)]
    assert all(estimated for _, estimated, _ in rows)
    assert [step for step, _, _ in train_rows(qlora, "eval")] == [200.0 * k for k in range(1, 9)]
    assert (best(qlora)["step"], best(qlora)["step_estimated"]) == (1600, True)
    gemma = load(str(LF / "105_nonLF_gemma_bursts_logging_steps_stated_then_ctrl_c.log.gz"))
    assert [step for step, _, _ in train_rows(gemma)] == [10.0 * k for k in range(1, 25)]
    sft = load(str(LF / "104_nonLF_trl_sft_torchrun_bursts_at_epoch_end_saves.log"))
    steps = [step for step, _, _ in train_rows(sft)]
    assert len(steps) == 30 and all(b > a for a, b in zip(steps, steps[1:]))
    assert (steps[0], steps[9], steps[19], steps[29]) == (50, 509, 1018, 1524)
    assert all(estimated for _, estimated, _ in train_rows(sft))


def test_a_bar_right_before_the_summary_of_a_run_with_no_step_dict_is_the_trainings():
    """A TRL GRPO test of 6 steps logged no step dict (its logging steps past its last): the
    bar to 6/6, then the summary dict. The bar was never taken for the training's, so the run
    had no last step, no total and no progress, its summary at no step."""
    log = LF / "106_nonLF_trl_grpo_6_steps_no_step_dict_only_the_summary.log"
    (run,), _ = summaries(log)
    assert (run["status"], run["train_records"]) == ("finished", 0)
    assert (run["last_step"], run["total_steps"], run["last_epoch"]) == (6, 6, 1.64)
    assert run["progress"]["percent"] == 100.0 and not run["last_step_estimated"]
    assert [(step, est) for step, est, _ in train_rows(load(str(log)), "final")] == [(6, False)]


def test_unsloths_banner_states_the_training_it_begins():
    """Unsloth's trainer prints its own banner in place of `Running training`, several facts a
    line after its sloth art (`Num examples = 11,015 | Num Epochs = 1 | Total steps = 300`).
    Unread, two buffered Unsloth SFT consoles took the eval bar for the training's: `last step
    75/75` (not marked), `100/13`; their records numbered 1-60 and 1-100, the best at ~12 and
    ~48 (60 and 240)."""
    sft = load(str(LF / "107_nonLF_unsloth_sft_banner_buffered_then_grpo_fails.log"))
    assert (sft.info["total_steps"], sft.info["num_examples"]) == (300, 11015)
    assert sft.info["total_train_batch_size"] == 8
    assert [step for step, _, _ in train_rows(sft)] == [5.0 * k for k in range(1, 61)]
    assert [step for step, _, _ in train_rows(sft, "eval")] == [30.0 * k for k in range(1, 11)]
    (run,), _ = summaries(LF / "107_nonLF_unsloth_sft_banner_buffered_then_grpo_fails.log")
    assert (run["last_step"], run["total_steps"], run["best"]["step"]) == (300, 300, 60)
    assert run["status"] == "failed"
    (zh,), _ = summaries(LF / "108_nonLF_unsloth_sft_banner_buffered_zh.log")
    assert (zh["last_step"], zh["total_steps"], zh["best"]["step"]) == (500, 500, 240)
    assert zh["train_records"] == 100 and zh["best"]["step_estimated"]


def test_a_dict_written_after_its_bars_redraw_is_at_the_bars_count():
    """tqdm.write clears the bar, writes the dict, redraws the bar at the same count; in two
    Unsloth GRPO consoles stdout came later: the bar reached 5, was redrawn as it was (its
    clear a blank frame), then came the reward printouts, the dict, and only then the bar at 6.
    The records were put one step late (6, 11, … 46, marked exact) and, in a console whose SFT
    before had been buffered, at estimates (1, 2, 3, 5, … 87 for 5 … 345)."""
    grpo = load(str(LF / "111_nonLF_unsloth_grpo_dicts_after_the_bars_redraw_stdout_late.log"))
    assert [(step, est) for step, est, _ in train_rows(grpo)] == \
        [(5.0 * k, False) for k in range(1, 11)]
    (run,), _ = summaries(LF / "111_nonLF_unsloth_grpo_dicts_after_the_bars_redraw_stdout_late.log")
    assert (run["last_step"], run["last_step_estimated"], run["total_steps"]) == (50, False, 17817)
    both = load(str(LF / "112_nonLF_unsloth_sft_buffered_then_grpo_dicts_after_the_bars_redraw.log.gz"))
    rows = train_rows(both)
    assert [step for step, _, _ in rows[:40]] == [5.0 * k for k in range(1, 41)]     # the SFT
    assert [(step, est) for step, est, _ in rows[40:]] == [(5.0 * k, False) for k in range(1, 70)]
    assert rows[40][2]["loss"] == 0.0039


def test_a_last_dict_after_a_bar_a_line_before_it_is_no_exact_step():
    """wandb's copy of an AutoTrain console keeps one frame a line: each logged dict comes
    after the bar as tqdm last drew it, a step behind (24, 49, 74, 99 where the epochs, 1163
    steps an epoch, name 25, 50, 75, 100). A dict whose next bar differs was marked an estimate;
    the log's last one, with no bar after it, was given the bar before as exact (step 99). With
    no bar after to weigh it against, it is a guess too."""
    log = LF / "114_nonLF_autotrain_wandb_output_bar_a_step_behind_each_logged_dict.log"
    assert [(step, est) for step, est, _ in train_rows(load(str(log)))] == \
        [(24.0, True), (49.0, True), (74.0, True), (99.0, True)]
    (run,), _ = summaries(log)
    assert (run["last_step"], run["last_step_estimated"]) == (99, True)


def test_an_epoch_that_goes_back_begins_a_training_where_records_have_no_step():
    """A Markdown report of four PaddleClas trainings, each pasted as its `[Avg]` lines
    (epochs 1, 2, 10 of 10): no record states a step, and a restart was only told by a step
    that goes back: one run, "Finished 10 epochs in 1d 11h", its loss change from the first
    model's first value to the last model's last. The epoch going back (10 to 1) begins one."""
    run = load(str(DATA / "paddleclas" / "19_markdown_report_four_trainings_avg_lines_only_"
                                         "epoch_going_back.md"))
    assert [[float(e) for e in np.asarray(t.epoch)] for _, t in run.tables("train")] == \
        [[1.0, 2.0, 10.0]] * 4
    assert [seg.label for seg in run.segments[1:]] == [
        "restart at epoch 1 (line 18)", "restart at epoch 1 (line 28)", "restart at epoch 1 (line 38)"]
    summary = summarize(run)
    assert (summary["segments"], summary["trainings"], summary["train_records"]) == (4, 4, 12)
    assert headline.sentence(summary).startswith("Finished 10 epochs; the log, of 4 trainings, spans")


def test_a_traceback_parted_by_another_streams_records_still_ends_the_run():
    """wandb's copy of a console stopped with Ctrl-C: the traceback's header after the bar,
    then the training dicts (stdout, copied in between), then its frames and
    `KeyboardInterrupt`. The first dict closed the traceback; its frames and last line were
    unparsed: `unknown`, "no error ended it", and `check` passed. Frames soon after go on with it."""
    log = LF / "115_nonLF_wandb_output_ctrl_c_traceback_parted_by_the_dicts.log"
    (run,), _ = summaries(log)
    assert run["status"] == "failed" and run["status_evidence"].startswith("killed at line 62")
    assert run["train_records"] == 27 and run["unparsed_lines"] < 5
    assert CliRunner().invoke(main, ["check", str(log)]).exit_code == 1


def test_loguru_lines_give_the_log_its_clock():
    """AutoTrain logs through loguru (`INFO     | 2024-04-30 10:46:50 | autotrain.trainers.
    common:on_log:226 - {'loss': …}`): its stamps were not read, and the status said the
    lines have no timestamps. They give the clock (10:42:18 to 11:00:33), and a run whose
    records carry no time is judged by it."""
    log = LF / "114_nonLF_autotrain_wandb_output_bar_a_step_behind_each_logged_dict.log"
    run = load(str(log))
    assert [iso_time(t) for t in run.clock] == ["2024-04-30T10:42:18", "2024-04-30T11:00:33"]
    (summary,), _ = summaries(log)
    assert "its last timestamped line is" in summary["status_evidence"]
    assert summary["wall_seconds"] == 1095


def test_a_failure_after_the_trainings_end_says_so():
    """A reward model's training ended (its summary dict, the bar at 760/760); then the
    script's next stage died reading its config. The job failed, and `failed` stays (a crash
    after training may lose the model), but the evidence read as a training that crashed at
    step ~760: it now says the failure came after the training's end (zh too)."""
    log = LF / "116_nonLF_wandb_output_training_ended_then_the_next_stage_crashed.log"
    (run,), _ = summaries(log)
    assert run["status"] == "failed"
    assert run["status_evidence"] == ("traceback at line 39: omegaconf.errors.ConfigAttributeError: "
                                      "Key 'I' is not in struct; after the training's end at line 29")
    assert wording.evidence(run["status_evidence"], "zh").endswith("；在训练于第 29 行结束之后")


def test_a_buffered_evaluation_is_where_its_bar_began():
    """A buffered console's evaluation dict comes out after the bar has moved on, but its own
    bar (stderr, unbuffered) begins where it runs. Evaluations at each epoch's end (1677 steps,
    3 epochs, logging every 10) were put at the training record before them (550, 1110, 1670;
    the best at 1110), and a T5 run's evaluations every 200 steps at what their epochs named
    at 2,490 / 64 examples a step (399, 598, …)."""
    sft = load(str(LF / "109_nonLF_trl_sft_v5_buffered_evals_at_epoch_ends.log.gz"))
    assert [(step, est) for step, est, _ in train_rows(sft, "eval")] == \
        [(559, True), (1118, True), (1677, True)]
    assert [step for step, _, _ in train_rows(sft)][-2:] == [1660, 1670]
    assert best(sft)["step"] == 1118
    t5 = load(str(LF / "74_nonLF_t5_rte_redirected_stdout_evals_after_the_bar.log.gz"))
    assert [step for step, _, _ in train_rows(t5, "eval")][:25] == [200.0 * k for k in range(1, 26)]


def test_bashs_report_of_a_killed_job_is_a_kill():
    """A PaddleNLP run stopped at step 3750 of 5300 ends in bash's report of the job it ran,
    `run.sh: line 67: 57133 Killed    CUDA_VISIBLE_DEVICES=$device python train_single.py …`:
    only a line that is `Killed` or ends in it was a kill, so the run was `unknown` with no
    anomaly and `check` passed."""
    log = DATA / "paddlenlp" / "14_trainer_2022_fewclue_chid_killed_by_bash_job_report.log"
    (run,), _ = summaries(log)
    assert run["status"] == "failed"
    assert run["status_evidence"].startswith("killed at line 677: run.sh: line 67: 57133 Killed")
    assert run["status_evidence"].endswith("python train_single.py …")
    assert [(a["kind"], a["step"]) for a in run["anomalies"]] == [("traceback", 3750)]
    assert CliRunner().invoke(main, ["check", str(log)]).exit_code == 1


def test_a_hole_of_nuls_mid_file_is_no_binary_file():
    """A PaddleNLP log whose line 21 is 38,667 NUL bytes (normal output around it) was refused
    as a binary file: only NULs at its start were skipped when judging."""
    (run,), _ = summaries(DATA / "paddlenlp" / "15_trainer_2022_fewclue_tnews_a_hole_of_nuls_mid_file.log")
    assert (run["status"], run["train_records"], run["eval_records"]) == ("finished", 60, 5)


def test_a_metrics_block_whose_header_follows_a_bars_frames_is_read():
    """PaddleNLP's test progress frames (`64it [00:28,  1.28it/s]` ...) end a line with
    `***** test metrics *****`, its rows after it with no logger prefix: the test metrics
    were lost without a word."""
    run = load(str(DATA / "paddlenlp" /
                   "16_trainer_2022_fewclue_chid_test_metrics_header_after_bar_frames.log"))
    tests = [(step, m) for step, _, m in train_rows(run, "eval") if "test_accuracy" in m]
    assert [(step, m["test_accuracy"], m["test_loss"]) for step, m in tests] == [(230, 0.1444, 2.0175)]


def test_each_process_of_a_script_that_only_tests_is_a_segment():
    """A FewCLUE script tests two tasks, one process each (its arguments dump, `Running
    Prediction`, its `test metrics` block), no training: a PaddleNLP process began only at
    `Running training`, so both tests were one run's segment."""
    run = load(str(DATA / "paddlenlp" /
                   "17_trainer_2022_fewclue_two_tasks_tested_one_process_each.log"))
    assert [(seg.index, np.asarray(table.series["test_accuracy"].value).tolist())
            for seg, table in run.tables("eval")] == [(0, [0.5]), (1, [0.0135])]


def test_an_example_scripts_own_lines_printed_with_no_prefix_are_read():
    """A PaddleNLP example script prints its own loop's lines with no logger prefix (`global
    step 10, epoch: 1, batch: 10, loss: 0.73857, micro f1: ...`, `eval loss: 0.18166, micro f1:
    0.00063`): the log was refused, even with `--format paddlenlp`."""
    log = DATA / "paddlenlp" / \
        "18_example_script_2022_cblue_global_step_lines_printed_no_prefix_workerlog0.log"
    (run,), _ = summaries(log)
    assert (run["format"], run["train_records"], run["eval_records"], run["last_step"]) == \
        ("paddlenlp", 998, 99, 9980)
    evals = train_rows(load(str(log)), "eval")
    assert evals[0] == (100.0, False, {"loss": 0.18166, "micro_f1": 0.00063})


def test_a_kill_report_glued_to_the_record_it_cut_is_a_kill_and_the_record_is_kept():
    """bash's report of a killed job glued to the PaddleNLP record the kill cut short (`…
    global_step: 20, interval_runtime: 13.6116, interval_samples_per_secondrun.sh: line 65:
    51473 Killed …`): the record was dropped and the kill missed."""
    log = DATA / "paddlenlp" / "19_trainer_2022_fewclue_kill_report_glued_to_the_record_it_cut.log.gz"
    run = load(str(log))
    first = run.segments[0].train
    assert np.asarray(first.step).tolist() == [10, 20]
    assert first.series["loss"].value[-1] == 0.53025222 and run.info["values_cut"] == 1
    kills = [(m.line, m.step) for m in run.markers if m.kind == "killed"]
    assert kills[0] == (137, 20)


def test_a_training_begun_that_logged_no_record_yet_is_a_run_to_show():
    """A LLaMA-Factory console of 8 ranks cut at the training bar's first step (`1/28`), no
    record logged yet, was refused ("no training records recognised"; `check` exit 1: a
    monitor's alarm for a healthy start)."""
    log = LF / "110_lf_8_ranks_cut_at_the_bars_first_step_no_record_yet.log"
    (run,), _ = summaries(log)
    assert (run["status"], run["train_records"], run["total_steps"]) == ("unknown", 0, 28)
    assert (run["progress"]["step"], run["progress"]["percent"]) == (1, 3.57)
    assert CliRunner().invoke(main, ["check", str(log)]).exit_code == 0
    from logreport import headline
    assert headline.sentence(summarize(load(str(log)))) == \
        "Training begun, no record logged yet: the bar at step 1 of 28."


def test_a_page_marks_every_estimated_step_it_shows():
    """The headline and evaluation table said `~1118` and `~240`, but the page's summary table
    said `best at step 1118` and `last step 240`, and its banner `traceback at step 240`: a
    failure marked at the step of the record before it, an estimate there, was exact."""
    sft = build([load(str(LF / "109_nonLF_trl_sft_v5_buffered_evals_at_epoch_ends.log.gz"))])
    rows = {row["key"]: row["text"][0] for row in sft["compare"]}
    assert rows["best_step"] == "~1118" and rows["last_step"] == "1677"      # (the final's)
    killed = load(str(LF / "105_nonLF_gemma_bursts_logging_steps_stated_then_ctrl_c.log.gz"))
    page = build([killed])
    assert {row["key"]: row["text"][0] for row in page["compare"]}["last_step"] == "~240"
    assert [b["text"] for b in page["runs"][0]["banner"]] == [
        "traceback at step ~240: KeyboardInterrupt"]
    (run,), _ = summaries(LF / "105_nonLF_gemma_bursts_logging_steps_stated_then_ctrl_c.log.gz")
    assert [(a["step"], a["step_estimated"]) for a in run["anomalies"]] == [(240, True)]


def test_a_resume_past_all_the_log_reached_is_a_training_of_its_own():
    """A PaddleSeg workerlog of four runs: a 1000-iteration run, two of 50, then `Resume model
    from output/iter_10000` of a 50000-iteration training whose first 10000 iterations this
    log does not hold. The resume was taken as the last 50-iteration run's, so the headline's
    loss change spanned both: 4.2893 (iteration 10 of 50) -> 0.9372, -78 %, where the resumed
    run's own is 1.0093 -> 0.9372."""
    from logreport.headline import loss_change
    run = load(str(DATA / "paddleseg" / "11_four_runs_appended_finished_then_resumed_workerlog0.log"))
    assert summarize(run)["trainings"] == 4
    change = loss_change(run)
    assert (change["first"], change["last"]) == (1.0093, 0.9372)


def test_a_launch_that_never_trained_states_no_total_of_the_run():
    """A PaddleNLP log of ten tasks, the last launch out of memory before its first step: its
    banner's `Total optimization steps = 612200` was the run's, beside the training that
    finished at 1000 of the 1000 it stated (0.16 %, `finished`)."""
    name = "11_trainer_2022_08_fewclue_ten_tasks_one_file_near_zero_loss_oom.log.gz"
    (run,), _ = summaries(DATA / "paddlenlp" / name)
    assert (run["status"], run["last_step"], run["total_steps"]) == ("finished", 1000, 1000)
    assert run["progress"]["percent"] == 100.0


def test_an_anomaly_at_an_estimated_step_says_so():
    """The buffered SFT console's eval regressions are at steps its bursts gave (estimates):
    `check` prints `step ~1000`, the JSON says `step_estimated`; one at a stated step does not."""
    log = LF / "86_nonLF_sft_lora_nohup_bursts_with_evals.log.gz"
    result = CliRunner().invoke(main, ["check", str(log)])
    assert "eval_regression  line 1005, step ~1000: eval_loss 0.239772" in result.stdout
    (run,), _ = summaries(log)
    assert [(a["step"], a["step_estimated"]) for a in run["anomalies"]] == [(1000, True),
                                                                            (1700, True)]
    (stated,), _ = summaries(NAN_CRASH)
    assert stated["anomalies"] and not any(a["step_estimated"] for a in stated["anomalies"])


def test_each_nodes_copy_of_a_dict_is_one_record():
    """A real four-node LLaMA-Factory paste: every node prints every dict, its lines prefixed
    with the node (`10.96.202.17: {'loss': 1.8673, ...}`), no bar. A copy from another node
    takes the step of the dict it copies and is kept once (a repeat), as copies at a stated
    step are: 4 records at steps 1-4, not 16."""
    log = LF / "89_lf_multinode_each_node_prints_each_dict.log"
    rows = train_rows(load(str(log)))
    assert [(step, m["loss"]) for step, _, m in rows] == [(1, 1.8673), (2, 0.7744), (3, 0.6309),
                                                           (4, 0.5621)]
    (summary,), _ = summaries(log)
    assert summary["repeated_records"] == 12 and summary["unparsed_lines"] == 1   # (cut: `{'l`)


def test_a_nan_evaluation_loss_is_a_nan_anomaly():
    """A real llm2vec paste (HF Trainer) whose evaluation printed `'eval_loss': nan`: a `nan`
    anomaly, and `check` fails on it by default (it found none: nan looked at training losses
    and grad_norm only)."""
    log = LF / "91_nonLF_llm2vec_eval_loss_nan.log"
    (summary,), _ = summaries(log)
    (found,) = summary["anomalies"]
    assert (found["kind"], found["metric"], found["line"]) == ("nan", "eval_loss", 9)
    assert found["detail"].startswith("eval_loss is nan; 1 record with a non-finite loss")
    result = CliRunner().invoke(main, ["check", str(log)])
    assert result.exit_code == 1 and "found nan" in result.stderr


def test_a_web_ui_session_that_finished_then_was_stopped():
    """A real LLaMA-Factory 0.5 web UI session: after `Training completed`, the echo of the
    final metrics prints None as 0 (`{'loss': 0.0000, 'learning_rate': 0.0000e+00, 'epoch':
    3.00}`), and much later the web server is stopped with Ctrl-C. The zero echo is no record
    (it was step 470 of 468 with loss 0.0), and the kill after the training ended is no
    failure of it (it was `failed`, a traceback anomaly, `check` exit 1)."""
    log = LF / "92_lf_v05_webui_session_zero_echo_then_ctrl_c.log"
    (summary,), _ = summaries(log)
    assert (summary["last_step"], summary["total_steps"], summary["train_records"]) == (465, 468, 93)
    assert summary["final"]["loss"] == 0.8264
    assert summary["status"] == "finished" and summary["anomalies"] == []
    assert "then stopped (KeyboardInterrupt at line " in summary["status_evidence"]
    assert CliRunner().invoke(main, ["check", str(log)]).exit_code == 0


def test_an_eta_before_any_time_was_measured_is_none():
    """A real static-graph PaddleDetection paste: `iter: 0, ..., time: 0.000, eta: 0:00:00`
    (steps left x a median time not measured yet), then a line cut before its ETA. It was
    `finished`, 100 %: that ETA said nothing was left, and it was taken for the last
    record's. Now the iter-0 line has no ETA and only the last record's ETA judges."""
    log = PPDET / "public_48_static_resumed_iter0_eta_zero_last_line_cut_pd500.log"
    rows = train_rows(load(str(log)))
    assert [(step, "eta_seconds" in m) for step, _, m in rows] == [(0, False), (20, False)]
    (summary,), _ = summaries(log)
    assert summary["status"] == "unknown" and summary["progress"]["percent"] is None
    assert summary["eta_seconds"] is None


def test_a_memory_value_cut_with_its_unit_is_no_value():
    """A PaddleX paste whose last line was cut mid-number: `max_mem_allocated: 3149` where the
    lines before print `31490 MB` (and this line its reserved memory in MB). The record is
    kept; that value, which lost its digits with its unit, is not read."""
    run = load(str(PPDET / "public_47_paddlex_issue_paste_last_line_cut_mid_number.log"))
    rows = train_rows(run)
    assert [step for step, _, _ in rows] == [2087, 2088, 2089, 2090]
    assert [m.get("max_mem_allocated") for _, _, m in rows] == [31490, 31490, 31490, None]
    assert rows[-1][2]["loss"] == 4.441298 and rows[-1][2]["max_mem_reserved"] == 42653


@pytest.mark.parametrize("name,cut,kept", [
    ("public_03_ppyolo_pd6332.log", "loss_obj", "loss_iou_aware"),          # `loss_obj: 71`
    ("public_28_ppyolo_jetson_pd4120.log", "loss_iou_aware", "loss_iou"),   # `...aware: 1.33`
    ("public_18_fairmot_startup_pd5821.log", "size_loss", "heatmap_loss"),  # `size_loss: 2`
])
def test_a_value_a_cut_line_ends_in_is_no_value(name, cut, kept):
    """Real pastes whose last line was cut in a value PaddleDetection prints with 6 decimals:
    the value may have lost digits (`loss_obj: 71` after lines of `73.731422`), so it is not
    read and `values_cut` counts it; the record keeps its other values."""
    run = load(str(PPDET / name))
    *before, (_, _, last) = train_rows(run)
    assert cut not in last and kept in last
    (summary,), _ = summaries(PPDET / name)
    assert summary["values_cut"] == 1          # `final`: each metric's last value, read whole
    assert summary["final"].get(cut) == (before[-1][2][cut] if before else None)


@pytest.mark.parametrize("name,last", [
    ("public_09_ppyoloe_epoch11_pd6597.log", ("loss_cls", 0.677379)),     # its 6 decimals
    ("public_01_yolov3_paddle34297.log", ("data_cost", 6.3141)),          # its 4 (.4f)
    ("public_27_paddleyolo_yolox_mem_bytes_pr202.log", ("max_mem_allocated", 10151881472)),
])
def test_a_whole_value_before_a_cut_stays(name, last):
    """A line cut right after a value printed whole, or ending as its layout ends (memory in
    bytes), keeps that value; nothing is counted as cut."""
    *_, (_, _, values) = train_rows(load(str(PPDET / name)))
    assert values[last[0]] == last[1]
    (summary,), _ = summaries(PPDET / name)
    assert summary["values_cut"] == 0


def test_lines_alike_cut_in_the_same_value_read_so_in_blocks(tmp_path):
    """Lines alike but for their numbers, each cut in its last value (a paste cut at one
    width), go through the column-wise block path: it drops the same value and counts every
    line, as the line parser does. Built from the real cut line of public_03."""
    cut_line = (PPDET / "public_03_ppyolo_pd6332.log").read_text().splitlines()[-1]
    assert cut_line.endswith("loss_obj: 71")
    n = SNIFF_LINES + 100                   # (the format is told from the first, one by one)
    lines = [cut_line.replace("[0] [145/526]", f"[{i // 526}] [{i % 526}/526]") for i in range(n)]
    log = tmp_path / "cut.log"
    log.write_text("\n".join(lines) + "\n")
    rows = train_rows(load(str(log)))
    assert len(rows) == n and all("loss_obj" not in m and "loss_iou_aware" in m for _, _, m in rows)
    (summary,), _ = summaries(log)
    assert summary["values_cut"] == n


def test_a_gzipped_nohup_out_in_a_folder_is_a_log(tmp_path):
    """`nohup … &` writes nohup.out; gzipped it was not named like a log and was left out."""
    import gzip

    log = PPDET / "picodet_s_320_coco_train.log"
    (tmp_path / "nohup.out.gz").write_bytes(gzip.compress(log.read_bytes()))
    runs, _ = summaries(tmp_path)
    assert [os.path.basename(r["source"]) for r in runs] == ["nohup.out.gz"]
    assert runs[0]["train_records"] == summaries(log)[0][0]["train_records"]


def test_an_evaluation_at_a_step_its_rounded_epoch_prints_for_keeps_the_bars_step():
    """The bar at 200/200 glued to `***** Running Evaluation *****`, then the evaluation's dict
    at `'epoch': 0.03` (6250 steps an epoch: 0.03 prints for steps 157-218). 200 was taken as
    far past the 187.5 that 0.03 names, so stdout was called buffered and the evaluation (the
    best eval_loss) put at ~188: it is at 200, exact."""
    log = LF / "119_nonLF_wav2vec2_docstring_initial_eval_block_eval_after_bar_200_epoch_rounded.log"
    (run,), _ = summaries(log)
    assert run["best"]["step"] == 200 and run["best"]["step_estimated"] is False
    assert run["best"]["value"] == 3.1090574264526367
    assert "dict_steps" not in load(str(log)).info


def test_a_log_of_typographic_quote_dicts_alone_is_detected():
    """Twelve `{‘loss’: …}` dicts and nothing else (a paste through a word processor): the
    parser reads typographic quotes, but detection did not, so the log was refused."""
    (run,), _ = summaries(LF / "120_nonLF_typographic_quotes_dicts_alone_tf33336.log")
    assert (run["format"], run["train_records"], run["last_epoch"]) == ("hf_trainer", 12, 2.27)


def test_estimated_steps_follow_the_first_step_each_printed_epoch_begins_at():
    """ChatGLM3's console: 114,599 examples in batches of 4 (28,650 steps an epoch), a dict
    every 10 steps with the epoch to 2 decimals (0.0 for 14 dicts, 0.01 for 28, 0.02 ...) and
    no bar until `500/3000`. Where the printed epoch changed, the estimate jumped to the middle
    of its steps (286, then 573): past the bar still to come, whose exact 500 then read as a
    restart (a second segment) and the dicts after it as 501-503. The first dict to print an
    epoch lies at its first step, within a gap; the 28 dicts between 0.01's first step (144)
    and 0.02's (430) leave one whole gap, 10: 430, 440 ... 500, as the bar says, then 510."""
    log = LF / "121_nonLF_chatglm3_dicts_alone_many_a_printed_epoch_then_the_bar_at_500.log"
    run = load(str(log))
    steps = run.arrays("train", "loss")["step"].tolist()
    (summary,), _ = summaries(log)
    assert summary["segments"] == 1 and summary["train_records"] == 53
    assert steps[14] == 144 and steps[42:] == [430, 440, 450, 460, 470, 480, 490, 500, 510, 520, 530]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert summary["last_step"] == 530 and summary["last_step_estimated"] is True


def test_the_first_estimated_record_is_at_the_stated_logging_gap():
    """`logging_steps=500` stated, no bar, a dict at `'epoch': 12.82` (39 steps an epoch): its
    step was 499 (the epoch's), every later one a step short (999 ... 4999 of 5000); a run's
    first log is at its logging gap: 500, 1000 ... 5000."""
    run = load(str(LF / "74_nonLF_t5_rte_redirected_stdout_evals_after_the_bar.log.gz"))
    assert run.arrays("train", "loss")["step"].tolist() == list(range(500, 5001, 500))


@pytest.mark.parametrize("name, steps, total", [
    ("122_nonLF_kubectl_logs_dicts_summary_then_the_bar_left_at_500_of_500.log", 2, 500),
    ("123_nonLF_flower_readme_elided_padded_dicts_summary_then_the_bar_128_of_128.log", 4, 128)])
def test_the_bar_left_below_the_final_dict_gives_the_trainings_end(name, steps, total):
    """A terminal's copy of a console: tqdm leaves its bar's last frame below the dicts it
    wrote, so the training bar, at `N/N`, comes right after the Trainer's summary dict. It was
    taken for no training's bar: last step 2 or 4 (the dicts' ordinals, estimated), no total.
    It gives the summary its step, exact, and the total; the dicts stay estimates."""
    (run,), _ = summaries(LF / name)
    assert (run["last_step"], run["total_steps"], run["last_step_estimated"]) == (total, total, False)
    assert (run["status"], run["progress"]["percent"]) == ("finished", 100.0)
    assert (run["train_records"], run["estimated_steps"]) == (steps, steps)


def test_an_nccl_watchdog_timeout_ends_the_run():
    """A rank's `Watchdog caught collective operation timeout` (glued to the bars, no Python
    traceback after it) was no error to the parser: `unknown`, "no error ended it", and `check`
    passed. The watchdog takes the process down (torch >= 2.2) or it hangs in the collective:
    `failed`, said as the rank printed it (the block path hands such a line to the parser)."""
    log = LF / "124_lf_nccl_watchdog_timeout_glued_to_the_bars_quoted_reply_lf2902.log"
    (run,), _ = summaries(log)
    assert run["status"] == "failed"
    assert run["status_evidence"].startswith(
        "traceback at line 5: [Rank 0] Watchdog caught collective operation timeout: WorkNCCL(")
    assert CliRunner().invoke(main, ["check", str(log)]).exit_code == 1
