"""The report's words and tables, from real logs: the headline sentence and cards, sections, the
evaluation table, per-category tables over evaluations, x axes, paths, languages."""
from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from logreport import headline, present
from logreport.analysis import summarize
from logreport.cli import main
from logreport.labels import LABELS
from logreport.reader import load
from logreport.report import build, unpack
from tests.test_report import page_data

DATA = Path(__file__).parent / "data"
PPDET = DATA / "ppdet"
LONG80 = PPDET / "picodet_s_320_coco_long80e.log"
CRASH = PPDET / "picodet_s_320_coco_nan_crash.log"
SHORT = PPDET / "picodet_s_320_coco_train.log"
SFT = DATA / "llamafactory" / "sft_lora"
SEG = DATA / "paddleseg" / "06_v2.1_kappa_nan_progbar_class_acc_best_paddle34282.log"


def test_finished_run_in_words():
    run = load(str(LONG80))
    s = summarize(run)
    text = headline.sentence(s, headline.loss_change(run))
    # 80 records of `Epoch: [0]` .. `[79]`, 443 s from the first to the last stamp
    assert text.startswith("Finished 80 epochs in 7m 23s. Best bbox/AP 0.096 at epoch 59; loss ")
    first = run.arrays("train", "loss")["value"][0]
    assert f"loss {present.number(first)} → {present.number(s['final']['loss'])}." in text
    cards = {c["key"]: c for c in headline.cards(s, headline.loss_change(run))}
    assert [cards["best"]["text"], cards["best"]["sub"]] == ["0.096", "epoch 59"]
    assert cards["duration"]["text"] == "7m 23s" and cards["status"]["text"] == "finished"
    assert cards["throughput"]["text"] == f"{present.number(s['throughput']['median'])} images/s"
    assert "progress" not in cards


def test_failed_run_says_what_went_wrong_first_and_what_ended_it():
    run = load(str(CRASH))
    s = summarize(run)
    text = headline.sentence(s, headline.loss_change(run))
    assert text.startswith("Failed at step 3 (epoch 0): divergence, loss 1808.51 at step 1 ")
    assert "traceback at line 51: ValueError: (InvalidArgument) Illegal input" in text
    cards = {c["key"]: c for c in headline.cards(s, headline.loss_change(run))}
    assert cards["status"]["sub"] == "divergence, traceback"
    assert cards["loss"]["sub"] == "from 4.201344 (×999)"        # 4196.423828 / 4.201344


def test_running_run_says_progress_and_eta(tmp_path):
    """The first half of the 80-epoch log, as `watch` sees it while it is written."""
    lines = LONG80.read_text(encoding="utf-8").splitlines(True)
    half = tmp_path / "half.log"
    half.write_text("".join(lines[: len(lines) // 2]), encoding="utf-8")
    run = load(str(half))
    s = summarize(run, live=True)
    assert s["status"] == "running"
    text = headline.sentence(s, headline.loss_change(run))
    p = s["progress"]
    assert text.startswith(f"Running: {present.percent(p['percent'])} (step {p['step']}/"
                           f"{p['total_steps']}), ETA {present.duration(s['eta_seconds'])}.")
    progress = [c for c in headline.cards(s) if c["key"] == "progress"]
    assert progress and progress[0]["text"] == present.percent(p["percent"])


def test_llm_run_counts_steps_and_the_chinese_sentence():
    run = load(str(SFT))
    s = summarize(run)
    loss = headline.loss_change(run)
    assert headline.sentence(s, loss).startswith(
        "Finished 60 steps (epoch 0.533333) in 1m 31s. Best eval_loss 7.55849 at step 60; ")
    zh = headline.sentence(s, loss, "zh")
    assert zh.startswith("已完成 60 步（第 0.533333 轮），用时 1分31秒。最佳 eval_loss 7.55849（第 60 步）")


def test_comparison_marks_the_best_run_per_card():
    runs = [load(str(p)) for p in (LONG80, SHORT, CRASH)]
    data = build(runs)
    cards = [{c["key"]: c for c in r["headline"]["cards"]} for r in data["runs"]]
    assert cards[0]["best"].get("best") and not cards[1]["best"].get("best")   # 0.096 > 0
    assert cards[0]["loss"].get("best")                                        # lowest final loss
    speeds = [c["throughput"]["value"] for c in cards]
    assert [bool(c["throughput"].get("best")) for c in cards] == [v == max(speeds) for v in speeds]
    assert not any(c["duration"].get("best") for c in cards)          # no better duration
    # PaddleOCR's ips against PaddleDetection's: another tool's images a second, no best
    ocr = load(str(DATA / "paddleocr" / "20_rec_last_epoch_then_best_acc0_no_cur_metric_ocr3681.log"))
    mixed = build([load(str(LONG80)), ocr])
    assert not any(c.get("best") for r in mixed["runs"] for c in r["headline"]["cards"]
                   if c["key"] == "throughput")
    assert [r["best"] for r in mixed["compare"] if r["key"] == "median_throughput"] == [[]]


def test_estimated_steps_are_marked_in_the_sentence_cards_and_evaluation_table():
    """Runs whose steps are estimates: the page said "Stopped at step 136" and listed
    evaluations at "5", as if the log stated them."""
    run = load(str(DATA / "llamafactory" / "63_nonLF_trl_dpo_nohup_stdout_buffered.log"))
    rows = build([run])["runs"][0]["evals"]["rows"]
    # its bursts now lie at the logging steps: the evaluations at 50, 100, 150 (as the run's
    # trainer_state.json states), still marked as estimates
    assert [r["step_text"] for r in rows] == ["~50", "~100", "~150"]
    assert present.step_of(16, 160, True) == "~16/160"
    paste = load(str(DATA / "llamafactory" / "50_nonLF_hf_tqdm_glued_eval_header_md_quoted.log"))
    s = summarize(paste)
    assert s["last_step_estimated"] and s["last_step"] == 136
    assert "at step ~136 (epoch 0.67)" in headline.sentence(s, headline.loss_change(paste))


def test_a_loss_that_ended_in_nan_is_the_final_card_and_no_broken_run_is_the_best():
    """The final-loss card showed the last finite value (14.7399, "+0 %") of a run whose loss
    ended in nan; a comparison starred the run whose loss broke down to exactly 0 (zero_loss)
    as the best final loss, and a detection loss against an LLM's."""
    run = load(str(PPDET / "faster_rcnn_r50_fpn_coco_nan_lr1e8.log"))
    s = summarize(run)
    cards = {c["key"]: c for c in headline.cards(s, headline.loss_change(run))}
    assert cards["loss"]["text"] == "nan" and cards["loss"]["sub"] == "broke down: nan"
    assert headline.sentence(s, headline.loss_change(run)).endswith("→ nan.")
    lf = DATA / "llamafactory"
    data = build([load(str(lf / "sft_full")), load(str(lf / "sft_full_diverge"))])
    loss = [{c["key"]: c for c in r["headline"]["cards"]}["loss"] for r in data["runs"]]
    assert loss[1]["text"] == "0" and not loss[1].get("best") and not loss[0].get("best")
    # a loss collapsed to 0 (grad_norm nan from step 2) read "0 from 7.613 (-100 %)" under a
    # green "finished": it says it broke down, and the status card is not all green
    assert loss[1]["sub"] == "broke down: zero_loss"
    status = [{c["key"]: c for c in r["headline"]["cards"]}["status"] for r in data["runs"]]
    assert [s["warn"] for s in status] == [False, True]
    final = [r for r in data["compare"] if r["key"] == "final" and r["metric"] == "loss"][0]
    assert final["best"] == []
    mixed = build([load(str(LONG80)), load(str(SFT))])
    assert not any(c.get("best") for r in mixed["runs"] for c in r["headline"]["cards"]
                   if c["key"] == "loss")
    assert [r for r in mixed["compare"] if r["key"] == "final" and r["metric"] == "loss"][0][
        "best"] == []


def test_a_run_that_finished_its_total_after_its_last_record_says_the_total():
    """sbert's example logged every 500 steps and finished at 2628/2628 (epoch 4.0, its final
    dict's): the sentence said "Finished 2500 steps (epoch 3.81)", its last record's."""
    run = load(str(DATA / "llamafactory" / "58_nonLF_sbert_eval_after_one_frame_bars_commented.log"))
    s = summarize(run)
    assert s["total_steps"] == 2628 and s["last_step"] == 2628      # its final record's
    assert headline.sentence(s, headline.loss_change(run)).startswith("Finished 4 epochs in ")
    lora = load(str(SFT))                  # its last record is at its total: as before
    assert headline.sentence(summarize(lora), headline.loss_change(lora)).startswith(
        "Finished 60 steps (epoch 0.533333) in ")


def test_sections_in_order_and_coco_family_split():
    data = build([load(str(LONG80))])
    charts = {c["id"]: c for c in data["charts"]}
    assert [s["key"] for s in data["sections"]] == ["evaluation", "losses", "optimisation",
                                                   "speed"]
    first = charts[data["sections"][0]["charts"][0]]
    assert first["metrics"] == ["bbox/AP", "bbox/AP50", "bbox/AP75"] and first["main"] == "bbox/AP"
    by_title = {c["title"]: c["metrics"] for c in data["charts"]}
    assert by_title["bbox AP by area"] == ["bbox/APs", "bbox/APm", "bbox/APl"]
    assert by_title["bbox AR by area"] == ["bbox/ARs", "bbox/ARm", "bbox/ARl"]
    losses = [charts[i]["title"] for i in data["sections"][1]["charts"]]
    assert losses[0] == "loss" and set(losses[1:]) == {"loss_vfl", "loss_bbox", "loss_dfl"}
    assert {c["section"] for c in data["charts"] if c["title"] == "learning rate"} == \
        {"optimisation"}


def test_dpo_rewards_sit_with_the_losses_and_logps_under_more():
    data = build([load(str(DATA / "llamafactory" / "dpo_lora"))])
    section = {c["title"]: c["section"] for c in data["charts"]}
    assert section["rewards/*"] == "losses" and section["accuracy"] == "losses"
    assert section["logps/*"] == "more" and section["eval_rewards/*"] == "evaluation"
    assert section["grad_norm"] == "optimisation"
    assert [s["key"] for s in data["sections"]][-1] == "more"
    assert [s["open"] for s in data["sections"]][-1] is False


def test_evaluation_table_rows_best_and_not_applicable():
    run = load(str(LONG80))
    table = build([run])["runs"][0]["evals"]
    assert table["columns"] == ["bbox/AP", "bbox/AP50", "bbox/AP75", "bbox/APs", "bbox/APm"]
    assert table["unused"] == ["bbox/APl"]                        # -1.000 at every evaluation
    assert len(table["rows"]) == table["total"] == 8
    steps = run.arrays("eval", "bbox/AP")["step"]
    assert [r["step"] for r in table["rows"]] == [int(s) for s in steps]
    [best] = table["best"][0]
    assert table["rows"][best]["text"][0] == "0.096" and table["rows"][best]["epoch"] == 59
    assert table["rows"][-1]["elapsed"] == "7m 23s"


def test_per_category_tables_over_evaluations():
    """PaddleSeg prints Class IoU and Class Acc at each of its two evaluations."""
    heat = build([load(str(SEG))])["runs"][0]["heat"]
    assert [(h["title"], h["column"]) for h in heat] == [("Class IoU, Acc", "IoU"),
                                                          ("Class IoU, Acc", "Acc")]
    assert heat[0]["evals"] == ["eval 1", "step 1400"]
    assert [r["name"] for r in heat[0]["rows"]] == ["0", "1"]
    assert heat[0]["rows"][0]["cells"] == ["1.", "1."]           # as the log printed them
    assert heat[0]["rows"][0]["values"] == [1.0, 1.0] and heat[0]["rows"][0]["change"] == "0"
    assert build([load(str(PPDET / "ppyoloe_crn_s_coco_evalonly_classwise.log"))]
                 )["runs"][0]["heat"] == []                        # one evaluation: no table


def test_tokens_and_samples_seen_axes():
    run = load(str(DATA / "llamafactory" / "sft_full_diverge"))
    data = build([run])
    assert data["x_axes"] == ["step", "epoch", "tokens", "samples"]   # its records have no clock
    [knots] = data["runs"][0]["axes"]["train"]
    seen = run.arrays("train", "num_input_tokens_seen")
    assert list(unpack(knots["tokens"])) == list(seen["value"])      # one knot per record here
    assert list(unpack(knots["samples"])) == list(unpack(knots["step"]) * 4)  # batch size 4
    assert build([load(str(LONG80))])["x_axes"] == ["step", "epoch", "hours"]


def test_paths_as_typed_unless_full_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(PPDET)
    runner = CliRunner()
    out = tmp_path / "r.html"
    assert runner.invoke(main, ["report", CRASH.name, "-o", str(out)]).exit_code == 0
    text = json.dumps(page_data(out.read_text(encoding="utf-8")), ensure_ascii=False)
    assert str(PPDET) not in text and f'"{CRASH.name}"' in text
    assert runner.invoke(main, ["report", CRASH.name, "-o", str(out), "--full-paths"]
                         ).exit_code == 0
    data = page_data(out.read_text(encoding="utf-8"))
    assert data["runs"][0]["summary"]["files"] == [str(CRASH)]
    assert {a["file"] for a in data["runs"][0]["summary"]["anomalies"]} == {str(CRASH)}
    assert os.path.isabs(data["runs"][0]["facts"]["files"][0])


def test_every_label_has_a_chinese_one():
    assert set(LABELS["en"]) == set(LABELS["zh"])
    assert set(headline.WORDS["en"]) == set(headline.WORDS["zh"])
    data = build([load(str(LONG80))], lang="zh")
    assert data["labels"]["evaluation"] == "评估"
    assert re.match(r"已完成 80 轮，用时 7分23秒。", data["runs"][0]["headline"]["sentence"])
    assert data["runs"][0]["headline"]["cards"][1]["sub"] == "第 59 轮"


@pytest.mark.parametrize("key", ["ap_iou", "ap_area", "ar_all", "ar_area", "evaluation",
                                 "losses", "optimisation", "speed", "more"])
def test_section_and_family_titles_are_labelled(key):
    assert LABELS["en"][key] and LABELS["zh"][key] != LABELS["en"][key]


def test_a_run_stopped_by_logreport_says_so():
    """The summary of a real run with the entry `run --stop-on` adds (synthetic: its fields
    as logreport/stop.py writes them)."""
    run = load(str(DATA / "llamafactory" / "sft_full_diverge"))
    s = summarize(run)
    nan = next(a for a in s["anomalies"] if a["kind"] == "nan")
    s["stopped"] = {"by": "logreport", "reason": "nan", "step": nan["step"],
                    "last_step": s["last_step"], "detail": nan["detail"], "text": ""}
    text = headline.sentence(s)
    assert text == (f"Stopped by logreport at step {s['last_step']}: nan at step {nan['step']} "
                    f"({nan['detail']}).")
    assert headline.sentence(s, lang="zh").startswith(
        f"logreport 在第 {s['last_step']} 步停止了训练：第 {nan['step']} 步出现 nan")


def test_an_evaluation_sits_on_the_epoch_axis_where_its_training_step_does():
    """PaddleDetection states whole epochs (`Epoch: [0]`) and evaluates after an epoch's
    last iteration: its evaluation at step 11 was drawn at epoch 0, before any training, while
    the training at step 11 is at 11/12 of an epoch."""
    run = load(str(PPDET / "ppyoloe_crn_s_coco_train.log"))
    axes = build([run])["runs"][0]["axes"]
    train = {s: e for k in axes["train"] for s, e in zip(unpack(k["step"]), unpack(k["epoch"]))}
    evals = [(s, e) for k in axes["eval"] for s, e in zip(unpack(k["step"]), unpack(k["epoch"]))]
    assert [s for s, _ in evals] == [11, 23, 35]
    assert all(e == pytest.approx(train[s]) for s, e in evals)
    assert [round(float(e), 4) for _, e in evals] == [0.9167, 1.9167, 2.9167]


def test_run_facts_give_the_log_s_first_and_last_time_stamps():
    """A console stamps its start-up and save lines, not its records: the facts said 16:47:03
    to 16:47:18 (its markers) for a run of 1m 31s from 16:45:49."""
    facts = build([load(str(SFT))])["runs"][0]["facts"]
    assert (facts["first_time"], facts["last_time"]) == ("2026-11-25T16:45:49",
                                                          "2026-11-25T16:47:20")



def test_the_duration_of_a_log_of_several_trainings_is_said_to_be_the_log_s():
    """Ten FewCLUE tasks in one file: "Finished 50 epochs in 1h 07m" counted from the first
    task's start, while the 50 epochs are the last one's (14 min)."""
    run = load(str(DATA / "paddlenlp"
                   / "11_trainer_2022_08_fewclue_ten_tasks_one_file_near_zero_loss_oom.log.gz"))
    s = summarize(run)
    assert s["trainings"] == 9
    assert headline.sentence(s).startswith("Finished 50 epochs; the log, of 9 trainings, spans 1h 07m")
    assert headline.sentence(s, lang="zh").startswith("已完成 50 轮；日志共 9 次训练，历时 1小时07分")
    assert summarize(load(str(LONG80)))["trainings"] == 1


def test_a_year_the_stamps_do_not_print_is_said_to_be_assumed():
    """PaddleDetection stamps print no year: a 2021 log read today showed 2026 as fact."""
    facts = build([load(str(LONG80))], lang="zh")
    assert facts["runs"][0]["facts"]["year_assumed"] == int(facts["runs"][0]["facts"]["first_time"][:4])
    assert facts["labels"]["year_assumed"].startswith("年份（推测")
    assert "year_assumed" not in build([load(str(SFT))])["runs"][0]["facts"]   # stamps with years


def test_an_assumed_year_never_dates_the_log_after_its_file_s_last_write(tmp_path):
    """public_51's stamps are `[12/08 17:58:43]`: a checkout at 01:04 UTC on 8 December 2026
    dated them 2026-12-08T17:58, 17 hours after the file's last write (no clock is that far
    ahead of UTC), and the evidence said "0s older than the file's last change"."""
    log = tmp_path / "eval.log"
    log.write_bytes((PPDET / "public_51_evalpy_coco_small_area_minus1_not_applicable_pcb_windows"
                              "_notes.log").read_bytes())
    written = datetime(2026, 12, 8, 1, 4, 31, tzinfo=timezone.utc).timestamp()
    os.utime(log, (written, written))
    run = load(str(log))
    facts = build([run])["runs"][0]["facts"]
    assert (facts["first_time"], facts["year_assumed"]) == ("2025-12-08T17:58:43", 2025)
    assert summarize(run)["status_evidence"].endswith("(its stamps print no year: 2025 assumed)")
    written = datetime(2026, 12, 9, 1, 4, 31, tzinfo=timezone.utc).timestamp()   # a day later
    os.utime(log, (written, written))
    assert build([load(str(log))])["runs"][0]["facts"]["year_assumed"] == 2026


def test_an_evaluation_with_no_result_is_counted_in_the_run_facts():
    """PP-YOLOE's third evaluation found no box (`WARNING: Evaluation results empty`): the
    summary counted 3 evaluations, the table showed 2, and the page said nothing of it."""
    run = load(str(PPDET / "ppyoloe_crn_s_coco_train.log"))
    facts = build([run])["runs"][0]["facts"]
    assert facts["empty_evaluations"] == 1 and summarize(run)["eval_records"] == 3
    assert build([run], lang="zh")["labels"]["empty_evaluations"].startswith("无结果的评估")


def test_a_run_that_states_neither_step_nor_epoch_leaves_them_out_of_the_sentence():
    """A stopped run whose records state no step nor epoch read "Stopped at ?"."""
    s = dict(summarize(load(str(LONG80))), status="unknown", last_step=None, last_epoch=None)
    assert headline.sentence(s).startswith("Stopped after 7m 23s; no end was logged.")
    assert headline.sentence(s, lang="zh").startswith("已停止，已用 7分23秒，日志中没有结束记录。")



def test_a_best_only_the_log_states_says_so():
    """PaddleDetection's `Best test bbox ap is 0.915.` above the excerpt's one evaluation
    (90.83): the best, 91.5, has no step. The sentence said "Best bbox/mAP 91.5." and its card
    nothing, beside a chart whose star is the 90.83 read."""
    summary = summarize(load(str(PPDET / "public_50_yolov3_voc_last_two_epochs_best_stated_above"
                                         "_the_eval_read_mouse_todo.log")))
    assert headline.sentence(summary).endswith("Best bbox/mAP 91.5, as the log states.")
    assert headline.sentence(summary, lang="zh").endswith("最佳 bbox/mAP 91.5（日志所载）。")
    best = next(c for c in headline.cards(summary) if c["key"] == "best")
    assert (best["text"], best["sub"]) == ("91.5", "as the log states")


def test_a_chinese_page_names_anomaly_kinds_in_chinese():
    """A `--lang zh` page left the kinds English (有异常：divergence, spike; the status card,
    the anomaly lines and table); they read in Chinese, the kind kept beside (what --fail-on
    takes). The terminal and JSON keep the kind alone."""
    summary = summarize(load(str(DATA / "llamafactory" / "99_nonLF_trl_skypilot_readme_bar_then_"
                                                         "dict_loss_spikes_120b.log")))
    assert headline.sentence(summary, lang="zh").endswith("有异常：发散（divergence）、突增（spike）。")
    assert headline.cards(summary, lang="zh")[0]["sub"] == "发散（divergence）、突增（spike）"
    assert summary["anomalies"][0]["step_estimated"]        # (a guess between two bars)
    assert headline.anomaly_line(summary["anomalies"][0], "zh").startswith("发散（divergence）（第 ~3 步")
    assert headline.sentence(summary).endswith("with anomalies: divergence, spike.")
    assert present.kinds(summary["anomalies"]) == "divergence, spike"
    data = build([load(str(DATA / "llamafactory" / "99_nonLF_trl_skypilot_readme_bar_then_dict_"
                                                   "loss_spikes_120b.log"))], lang="zh")
    assert [a["label"] for a in data["runs"][0]["summary"]["anomalies"]] == [
        "发散（divergence）", "突增（spike）"]


def test_a_best_of_an_evalpy_run_is_not_called_the_last_trainings():
    """A PaddleOCR log: a training, then `tools/eval.py` of PaddleOCR's released checkpoint
    (`resume from pretrain_models/rec_mv3_none_bilstm_ctc_v2.0_train/best_accuracy`). The
    headline said "Best acc 0.239287 of the log's last training"; the evaluation has no step or
    epoch of any training, and says so."""
    run = load(str(DATA / "paddleocr" / "15_v2.0_rec_training_then_evalpy_of_another_"
                   "checkpoint_workerlog0_lines34300-35583.log"))
    summary = summarize(run)
    line = headline.sentence(summary, headline.loss_change(run))
    assert "Best acc 0.239287 of an evaluation apart from the training" in line
    assert "last training" not in line
    assert "来自训练之外的单独评估" in headline.sentence(summary, None, "zh")


def test_the_best_of_separate_evalpy_launches_is_said_to_be_the_last_ones():
    """Six tools/eval.py launches on different test sets (fixture 16): the sentence said "Best
    acc 0.890842", the highest over the test sets. It is the last launch's, and says so."""
    run = load(str(DATA / "paddleocr" / "16_failed_start_then_six_evalpy_runs_on_other_test_sets"
                   "_logdir"))
    summary = summarize(run)
    line = headline.sentence(summary)
    assert "Best acc 0.885014, the last of 6 separate evaluation runs (each its own process" in line
    assert "6 次单独评估中的最后一次" in headline.sentence(summary, None, "zh")
    card = next(c for c in headline.cards(summary) if c["key"] == "best")
    assert card["sub"] == "last of 6 evaluation runs"


def test_the_anomalies_of_a_run_with_no_training_record_are_not_said_of_records():
    """An evaluation-only log with a traceback read "6 evaluations, no training records with
    anomalies: traceback", as if the records it has none of had them."""
    summary = summarize(load(str(DATA / "paddleocr" / "16_failed_start_then_six_evalpy_runs_on_"
                                 "other_test_sets_logdir")))
    assert headline.sentence(summary).startswith(
        "6 evaluations, no training records; anomalies: traceback. ")
    assert headline.sentence(summary, None, "zh").startswith("6 次评估，没有训练记录；异常：")


def test_a_resumed_run_is_said_to_have_trained_what_its_log_holds():
    """PP-YOLOE resumed from its epoch-1 checkpoint trains epochs 2-4 in 1m 51s; the sentence
    said "Finished 5 epochs in 1m 51s". A TRL console resumed at global step 1250 of 2500 said
    "Finished 2 epochs in 2h 05m" for its last 1250 steps."""
    run = load(str(PPDET / "ppyoloe_crn_s_coco_resume.log"))
    s = summarize(run)
    assert s["began"] == {"step": 24, "epoch": 2, "resumed": True}
    assert headline.sentence(s).startswith("Finished epochs 2–4 (resumed after epoch 1) in 1m 51s.")
    assert headline.sentence(s, lang="zh").startswith(
        "已完成 第 2–4 轮（从第 1 轮后恢复训练），用时 1分51秒。")
    run = load(str(DATA / "llamafactory" / "113_nonLF_trl_orpo_lora_resumed_from_global_step_1250"
                                           ".log.gz"))
    s = summarize(run)
    assert (s["began"], s["last_step"]) == ({"step": 1260, "epoch": 1.01, "resumed": True}, 2500)
    assert headline.sentence(s).startswith("Finished steps 1260–2500 (resumed) in 2h 05m.")


def test_an_excerpt_of_a_run_s_last_epochs_says_the_log_begins_midway():
    """The last two epochs (148, 149) of a 150-epoch YOLOv3 run, 1h of stamps: not "Finished
    150 epochs in 1h 00m". A log that begins at its training's start says nothing of it."""
    s = summarize(load(str(PPDET / "public_50_yolov3_voc_last_two_epochs_best_stated_above"
                                   "_the_eval_read_mouse_todo.log")))
    assert headline.sentence(s).startswith("Finished epochs 148–149 (the log begins midway) in 1h 00m.")
    assert headline.sentence(s, lang="zh").startswith(
        "已完成 第 148–149 轮（日志从中途开始），用时 1小时00分。")
    assert summarize(load(str(LONG80)))["began"] is None
