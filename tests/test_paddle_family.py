"""PaddleOCR, PaddleClas, PaddleSeg and PaddleNLP logs: samples are real, each format's own main
eval metric, loss, throughput and hidden keys drive the analysis and the report."""
import json
import re

import pytest
from conftest import DATA
from test_samples import parse

from logreport import analysis, formats, report, wording
from logreport.cli import main
from logreport.events import EVAL, TABLE, Record
from logreport.model import Run
from logreport.reader import load

FAMILY = ("paddleocr", "paddleclas", "paddleseg", "paddlenlp")


@pytest.mark.parametrize("name", FAMILY)
def test_every_sample_line_is_part_of_a_real_line(name, data):
    real = [line for path in (data / name).glob("*.log")
            for line in path.read_bytes().decode("utf-8", "replace").split("\n")]  # (GBK paths)
    for text, _ in formats.get(name).SAMPLES:
        for line in text.split("\n"):
            assert any(line in r for r in real), line


@pytest.mark.parametrize("case,metric,value", [
    ("paddleocr/05_det_eval_py_metric_in_ckpt_tqdm_ocr5666.log", "hmean", 0.8060606060606061),
    ("paddleclas/07_engine_v2.4_lcnet_eval_avg_best_save_dots_clas2186.log", "top1", 0.23302),
    ("paddleclas/09_engine_v2.4_retrieval_recall_map_nan_gallery_clas2238.log", "recall1", 0.05172),
    ("paddleseg/07_v2.3_kappa_negative_tab_as_spaces_seg1537.log", "mIoU", 0.4906),
    ("paddlenlp/05_trainer_utc_cpu_hardwrapped_tabs_eval_f1_codeid22671860482.log", "eval_micro_f1", 1.0),
    ("paddlenlp/03_uie_finetune_script_global_step_speed_eval_prf_nlp4084.log", "F1", 0.0),
])
def test_the_format_names_the_main_eval_metric(data, case, metric, value):
    """Without the format's MAIN_EVAL these would be precision, CELoss, eval_loss …"""
    best = analysis.best(load(str(data / case)))
    assert (best["metric"], best["value"]) == (metric, value)


@pytest.mark.parametrize("case,want", [
    ("paddleocr/20_rec_last_epoch_then_best_acc0_no_cur_metric_ocr3681.log",
     {"metric": "acc", "value": 0.0, "step": None, "epoch": None}),          # no evaluation read
    ("paddleocr/22_v1x_static_det_test_iter_metrics_best_hmean_ocr511.log",
     {"metric": "hmean", "value": 0.664705, "step": 68000, "epoch": 23}),    # 1.x `Test iter:`
    # ppdet's `Best test bbox ap is 0.915.` (a fraction) above the excerpt's `mAP = 90.83%`
    ("ppdet/public_50_yolov3_voc_last_two_epochs_best_stated_above_the_eval_read_mouse_todo.log",
     {"metric": "bbox/mAP", "value": 91.5, "step": None, "epoch": None}),
    ("ppdet/public_37_yolov3_voc_release26_average_fps_doc.log",            # 0.939 over 93.63 %
     {"metric": "bbox/mAP", "value": 93.9, "step": None, "epoch": None}),
])
def test_the_best_the_log_states_is_the_best(data, case, want):
    """An excerpt's stated best (`best metric, acc: 0`; 1.x's `best_hmean:…, best_epoch:23,
    best_batch_id:68000`) is its best where no evaluation read is better, even where none was
    read: it was `null` without an evaluation."""
    found = analysis.best(load(str(data / case)))
    assert found["stated"] is True
    assert {k: found[k] for k in want} == want


@pytest.mark.parametrize("case,want", [
    ("ppdet/yolov3_mobilenet_v1_voc_train.log", (0.0, 11)),           # VOC: 0.000 = 0.00 %
    ("ppdet/rtdetr_r18vd_coco_train.log", None),                      # COCO: 0.130 = AP 0.130
    ("ppdet/public_43_launch_logdir_restarts_4gpu", None),
])
def test_a_stated_best_that_an_evaluation_read_rounds_to_is_that_evaluation(data, case, want):
    """ppdet prints its best to 3 decimals (`Best test bbox ap is 0.724.`): where an evaluation
    of the same process read rounds to it, the best is that evaluation (its exact value, its
    step), not the rounded statement."""
    run = load(str(data / case))
    found = analysis.best(run)
    assert "stated" not in found and found["step"] is not None
    if want is not None:
        assert (found["value"], found["step"]) == want
    assert run.info[f"best_{found['metric']}"] <= found["value"]


def test_eval_regression_follows_the_main_metric():
    """Synthetic records (not a log): top1 falls while the eval loss falls too."""
    run = Run("synthetic", fmt="paddleclas")
    for i, (loss, top1) in enumerate([(3.0, 0.5), (2.5, 0.4), (2.0, 0.3), (1.5, 0.2)]):
        run.add(Record(EVAL, {"CELoss": loss, "loss": loss, "top1": top1}, step=i, line=i + 1))
    found = [a for a in analysis.anomalies(run) if a["kind"] == "eval_regression"]
    assert [(a["metric"], a["step"]) for a in found] == [("top1", 3)]


@pytest.mark.parametrize("case,loss,speed", [
    ("paddleocr/01_det_v1_static_dictkeys_traceback_ocr57.log", "total_loss", None),
    ("paddleseg/01_legacy_pdseg_train_step_per_sec_seg303.log", "loss", "step/sec"),
    ("paddlenlp/02_trainer_2022_08_fewshot_train_eval_checkpoints_codeid31615391739.log", "loss",
     "interval_samples_per_second"),
])
def test_main_loss_and_throughput(data, case, loss, speed):
    run = load(str(data / case))
    assert analysis.main_loss(run) == loss
    assert (analysis.throughput(run) or {}).get("metric") == speed


def test_bookkeeping_keys_are_kept_but_not_charted(data):
    run = load(str(data / "paddlenlp/08_paddleformers_erniekit_ocrvl_sft_lossnan_traceback_ernie1429.log"))
    charted = {m for chart in report.charts([run]) for m in chart["metrics"]}
    assert {"loss", "learning_rate", "loss_scale"} <= charted
    assert not charted & {"timestamp", "data_id", "src_id", "data_type", "tokens_trained_current_step"}
    assert "timestamp" in run.metric_names("train")
    rows = report.compare_rows([analysis.summarize(run)])
    assert "data_id" not in {r.get("metric") for r in rows if r["key"] == "final"}


def test_per_class_arrays_wrapped_over_lines_make_one_table(data):
    run = load(str(data / "paddleseg/08_v2.5_val_dice_precision_recall_wrapped_arrays_seg2103.log"))
    [table] = [m.detail for m in run.markers if m.kind == TABLE]
    assert table["header"] == ["class", "IoU", "Precision", "Recall"]
    assert len(table["rows"]) == 19
    assert table["rows"][9] == ["9", "0.", "0.0177", "0."]
    assert table["rows"][10] == ["10", "0.0312", "0.0331", "0.3444"]
    assert report.build([run])["runs"][0]["tables"] == [table]


def test_paddleseg_last_iteration_finishes_the_run():
    """Synthetic: a real PaddleSeg line (seg/10) with its iteration set to the last one."""
    line = ("2023-11-20 18:50:16 [INFO]      [TRAIN] epoch: 1, iter: 400/400, loss: 2.0438, "
            "lr: 0.000156, batch_cost: 0.3238, reader_cost: 0.00205, ips: 12.3544 samples/sec | "
            "ETA 00:00:00")
    assert [e.kind for e in parse(formats.get("paddleseg"), line) if hasattr(e, "kind")] \
        == ["finished"]


def test_paddleseg_early_stop_finishes_the_run():
    """Synthetic: the early-stop message as PaddleSeg 2.9.1 words it (spec), after a real line."""
    lines = ("2022-11-02 16:46:28 [INFO]\t[TRAIN] epoch: 12, iter: 71810/100000, loss: 0.8090, "
             "lr: 0.000040, batch_cost: 0.1137, reader_cost: 0.00044, ips: 35.1948 samples/sec | "
             "ETA 00:53:23\n"
             "2022-11-02 16:46:29 [INFO]\tEarly stopping at iter 71810. The best mean IoU is 0.7132.")
    events = parse(formats.get("paddleseg"), lines)
    assert [(e.kind, e.step) for e in events if hasattr(e, "kind")] == [("finished", 71810)]
    assert events[-2].facts == {"early_stop_iter": 71810, "best_mIoU": 0.7132}


def test_paddleclas_last_epoch_average_finishes_the_run():
    """Synthetic: a real PaddleClas line (clas/09) with its epoch set to the last one."""
    line = ("[2022/08/29 22:14:46] ppcls INFO: [Train][Epoch 200/200][Avg]CELoss: 35.17182, "
            "PairwiseCosface: 26.52682, loss: 61.69864")
    assert [e.kind for e in parse(formats.get("paddleclas"), line) if hasattr(e, "kind")] \
        == ["finished"]


def test_a_cut_line_is_counted_and_keeps_what_it_ended(data):
    """seg/06 ends in a cut best-model line: counted unparsed, the second eval's table kept."""
    run = load(str(data / "paddleseg/06_v2.1_kappa_nan_progbar_class_acc_best_paddle34282.log"))
    assert run.unparsed == 1
    assert [m.line for m in run.markers if m.kind == TABLE] == [4, 14]


def test_best_metric_lines_are_facts_not_evaluations(data):
    """ocr/04: `cur metric, … hmean: 0` then `best metric, hmean: 0.849…` (an evaluation before
    the lines the paste kept): one evaluation, and the run's best is the one the log states,
    marked `stated` (it was 0, the only evaluation read)."""
    run = load(str(data / "paddleocr/04_det_east_root_cur_best_metric_ocr2196.log"))
    assert run.count("eval") == 1
    assert run.info["best_hmean"] == 0.8490329063049485
    assert analysis.best(run) == {"metric": "hmean", "value": 0.8490329063049485, "step": None,
                                  "step_estimated": False, "epoch": None, "stated": True}


def test_a_checkpoints_stored_metric_is_not_the_best(data):
    """tools/eval.py (ocr/05) prints the checkpoint's stored metric (`metric in ckpt`, hmean
    0.852) before evaluating it (0.806): the stored one becomes `ckpt_` facts, and the best
    is the evaluation's."""
    run = load(str(data / "paddleocr/05_det_eval_py_metric_in_ckpt_tqdm_ocr5666.log"))
    assert run.info["ckpt_hmean"] == 0.8520302821748106 and run.info["ckpt_best_epoch"] == 24
    assert "best_hmean" not in run.info
    best = analysis.best(run)
    assert best["value"] == 0.8060606060606061 and "stated" not in best


@pytest.mark.parametrize("case, seconds", [
    ("paddleocr/05_det_eval_py_metric_in_ckpt_tqdm_ocr5666.log", 3.0),       # 09:29:05-09:29:08
    ("paddleseg/04_v2.0_eval_equals_progbar_class_acc_seg1316.log", 2.0)])   # 16:41:29-16:41:31
def test_a_log_whose_records_carry_no_stamp_spans_its_stamped_lines(data, case, seconds):
    """Evaluation-only logs (their records carry no time stamp): the wall time runs from the
    first stamped line to the last, not 0 s (the clock began at the end of the first block)."""
    assert analysis.wall_seconds(load(str(data / case))) == seconds


def test_formats_command_lists_the_family(runner):
    out = runner.invoke(main, ["formats"]).output
    for name in FAMILY:
        assert f"\n{name}: " in out


def test_summary_json_of_a_paddleseg_log(runner, data):
    path = data / "paddleseg/06_v2.1_kappa_nan_progbar_class_acc_best_paddle34282.log"
    result = runner.invoke(main, ["summary", str(path), "--json"])
    assert result.exit_code == 0, result.output
    [run] = json.loads(result.output)["runs"]
    assert (run["format"], run["best"]["metric"], run["total_steps"]) == ("paddleseg", "mIoU", 90000)
    assert run["throughput"]["metric"] == "ips"


FAMILY_LOGS = sorted(p for fmt in ("paddleocr", "paddleclas", "paddleseg", "paddlenlp")
                     for p in (DATA / fmt).glob("*.log"))


@pytest.mark.parametrize("path", FAMILY_LOGS, ids=[p.name for p in FAMILY_LOGS])
def test_lines_a_paste_glued_together_keep_every_record(path):
    """Synthetic, from every real Paddle-family log: each two lines that start with the logger's
    prefix glued into one (a paste that lost its line ends): the same records."""
    fmt = formats.get(path.parent.name)
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    starts = [any(prefix.match(line) for prefix in fmt.Parser.PREFIXES) for line in lines]
    glued, i = [], 0
    while i < len(lines):
        if i + 1 < len(lines) and starts[i] and starts[i + 1]:
            glued.append(lines[i] + " " + lines[i + 1])
            i += 2
        else:
            glued.append(lines[i])
            i += 1

    def records(text):           # (repr: NaN equals NaN)
        return [repr((e.phase, e.step, e.epoch, e.metrics)) for e in parse(fmt, text)
                if isinstance(e, Record)]

    if len(glued) == len(lines):
        pytest.skip("no two lines with the prefix follow each other")
    assert records("\n".join(glued)) == records("\n".join(lines))


def test_a_task_scripts_global_step_lines_give_their_records(data):
    """PaddleNLP task scripts print `global step N, key: value [unit], …` themselves: UIE's
    (epoch, loss, speed) and ERNIE-1.0 pretraining's (losses, speed, ips, learning rate)."""
    uie = load(str(data / "paddlenlp/03_uie_finetune_script_global_step_speed_eval_prf_nlp4084.log"))
    assert set(uie.metric_names("train")) == {"loss", "speed"} and uie.count("train") == 12
    ernie = load(str(data / "paddlenlp/09_ernie1_pretrain_script_global_step_lm_sop_loss_nlp5119.log"))
    assert ernie.count("train") == 5 and ernie.unparsed == 0
    assert set(ernie.metric_names("train")) == {"loss", "lm_loss", "sop_loss", "speed", "ips",
                                           "learning_rate", "loss_scaling", "incr_count",
                                           "decr_count"}
    assert [float(s) for s in ernie.arrays("train", "loss")["step"]] == [1, 2, 3, 4, 5]
    fleetx = load(str(data / "paddlenlp/10_fleetx_gpt_script_global_step_sec_units_codeid43598915233.log"))
    assert fleetx.count("train") == 9 and fleetx.unparsed == 0     # costs in `sec`: were unread
    first = fleetx.arrays("train", "avg_reader_cost")
    assert (float(first["step"][0]), float(first["value"][0])) == (1, 0.0571)


def test_a_pretraining_scripts_valid_step_lines_are_its_evaluations(data):
    """ERNIE-1.0 pretraining evaluates through `run_evaluate`, which logs `<task> step <global
    step>, batch: …, loss: …` (paddlenlp/20, issue 3867): the three validations were swallowed
    with no count (0 eval records, 0 unparsed). Each is an evaluation at the step it names; the
    best is the lowest validation loss; a test set's own metrics stay apart (`test_*`)."""
    run = load(str(data / "paddlenlp/20_ernie1_pretrain_script_valid_step_lines_each_an_eval_nlp3867.log"))
    loss = run.arrays("eval", "loss")
    assert [int(s) for s in loss["step"]] == [2000, 3000, 4000] and run.unparsed == 0
    assert [float(v) for v in loss["value"]] == [7.44831, 7.004147, 6.875438]
    best = analysis.best(run)
    assert (best["metric"], best["value"], best["step"]) == ("loss", 6.875438, 4000)
    test = parse(formats.get("paddlenlp"), "[2022-11-23 10:04:00,000] [    INFO] - test step 5000, "
                 "batch: 10, loss: 6.9, lm_loss: 6.2, sop_loss: 0.69, ips: 170 seqs/s")
    assert [(r.phase, r.step, sorted(r.metrics)) for r in test] == [
        (EVAL, 5000, ["test_batch", "test_ips", "test_lm_loss", "test_loss", "test_sop_loss"])]


def test_engine_training_lines_without_an_eta_are_records(data):
    """A CvT reproduction on PaddleClas's engine prints no `eta` after `ips`: its 11 complete
    training lines were all counted unparsed; now each is a record at (epoch - 1) × 1669 +
    iteration, with no eta_seconds."""
    run = load(str(data / "paddleclas/13_engine_fork_cvt_no_eta_avg_eval.log"))
    assert run.unparsed == 0
    steps = [int(s) for _, t in run.tables("train") for s in t.step]
    assert steps[:2] == [197 * 1669 + 1560, 197 * 1669 + 1570] and len(steps) == 12
    assert "eta_seconds" not in run.metric_names("train")


def test_paddleocr_20s_metirc_lines_are_evaluations(data):
    """PaddleOCR 2.0 printed `cur metirc, …` and `best metirc, …` (sic): each is read as its
    correct spelling is (the evaluations were lost without a word)."""
    run = load(str(data / "paddleocr/13_v2.0_root_cur_best_metirc_typo_twstreet.log"))
    assert run.arrays("eval", "acc")["value"].tolist() == [0.002387366058816742,
                                                           0.07832152250291458]
    assert run.info["best_acc"] == 0.07832152250291458


def test_dips_during_a_noisy_climb_are_no_eval_regression(data):
    """A real 400-epoch PaddleClas run, an evaluation each epoch, top1 climbing noisily to its
    best at epoch 376: three evaluations below the best by 0.06-0.9 % gave an eval_regression
    each time (20, the cap). A streak counts once its latest is more than 1 % below the best."""
    run = load(str(data / "paddleclas/16_cait_400_epochs_an_eval_each_climbing_noisily.log.gz"))
    found = [a for a in analysis.anomalies(run) if a["kind"] == "eval_regression"]
    assert [a["line"] for a in found] == [6100, 6192, 7601, 8041, 8458, 9095]
    for a in found:
        value, best = map(float, re.findall(r"top1 ([\d.]+) is worse than its best ([\d.]+)",
                                            a["detail"])[0])
        assert best - value > 0.01 * best
    assert analysis.best(run)["value"] == 0.36584
    # 8.6 h after epoch 400 a 21st launch (a resume from epoch_237) printed its config, then
    # nothing: the run stays finished, and the evidence says so (it was not said)
    summary = analysis.summarize(run)
    assert summary["status"] == "finished" and summary["status_evidence"].endswith(
        "; a later launch (line 10686) logged no training record")


def test_errors_the_program_logged_and_went_on_from_are_no_failures(data):
    """A real PaddleOCR evaluation whose test images were missing: the dataset logged each
    (`When parsing line …, error happened with msg: Traceback …` … `Exception: … does not
    exist!`) and went on; then a DataLoader thread and worker crashed. The logged errors were
    read as tracebacks (a bare `Exception:` line was not taken for an exception line: `cut
    off`), and 20 of them would fill the anomaly cap and hide the crash. Each logged error is
    counted in the run facts."""
    run = load(str(data / "paddleocr"
                   / "23_rec_eval_missing_images_logged_then_a_worker_crash_workerlog0.log.gz"))
    found = [(a["kind"], a["line"], a["detail"][:40]) for a in analysis.anomalies(run)]
    assert found == [("traceback", 11451, "Traceback (cut off before the exception "),
                     ("traceback", 11605, "Exception: /kaggle/working/PaddleOCR/dat"),
                     ("traceback", 11643, "RecursionError: maximum recursion depth ")]
    assert run.info["logged_errors"] == 1909          # each is counted, in the run facts
    assert run.info["last_logged_error"] == \
        "Exception: /kaggle/working/PaddleOCR/dataset/test/word_57.jpg does not exist!"


def test_a_dict_of_an_evaluation_stating_its_global_step_is_an_evaluation(data):
    """ms-swift 1.x prints HF-style dicts with `'global_step'`, as PaddleNLP's Trainer did; an
    evaluation's dict states it too: it was read as a training record."""
    run = load(str(data / "llamafactory" / "93_nonLF_msswift_v1_global_step_dicts_two_evals_docs.log"))
    assert run.count("train") == 19 and run.unparsed == 2      # its `[INFO:swift]` saves
    evals = [(float(a["step"][i]), float(a["value"][i])) for a in [run.arrays("eval", "eval_loss")]
             for i in range(len(a["step"]))]
    assert evals == [(50.0, 1.54409802), (92.0, 1.53501475)]
    assert "eval_loss" not in run.metric_names("train")
    assert analysis.best(run)["value"] == 1.53501475 and analysis.best(run)["step"] == 92



def test_a_best_metric_line_after_the_epoch_loop_ends_the_training(data):
    """PaddleOCR prints `best metric, …` after each evaluation's `cur metric`, and once more
    after its epoch loop: that one is the end of training (epoch 500/500, `save model`, then
    `best metric, acc: 0`), which read as `unknown`. One right after an evaluation is not."""
    ended = load(str(data / "paddleocr" / "20_rec_last_epoch_then_best_acc0_no_cur_metric_ocr3681.log"))
    assert [(m.kind, m.line) for m in ended.markers if m.kind == "finished"] == [("finished", 3)]
    assert analysis.summarize(ended)["status"] == "finished"
    for log in (data / "paddleocr").glob("*.log*"):
        run = load(str(log))
        lines = run.arrays("eval", run.metric_names("eval")[0])["line"] \
            if run.metric_names("eval") else []
        for m in run.markers:         # an evaluation's best metric line is never the end
            assert m.kind != "finished" or m.line - 1 not in set(lines) and \
                m.line - 2 not in set(lines), (log.name, m.line)


def test_one_evaluation_in_an_excerpt_from_mid_run_tells_no_cadence(data):
    """A README's excerpt of epoch 198 of 300 and its evaluation: the remaining evaluations
    were 1 (the cadence taken as every 199 epochs, the first evaluation's epoch + 1, which holds
    only where the log starts with the training). They are unknown."""
    run = load(str(data / "paddleclas" / "17_cvt_readme_excerpt_epoch198_of_300_one_eval.log"))
    timing = analysis.summarize(run)["timing"]["eval"]
    assert timing == {"mean_seconds": 56.0, "measured": 1, "remaining_evals": None,
                      "remaining_seconds": None}
    long80 = analysis.summarize(load(str(data / "ppdet" / "picodet_s_320_coco_long80e.log")))
    assert long80["timing"]["eval"]["remaining_evals"] == 0      # a whole log: its cadence


def test_a_value_a_paste_wrapped_onto_the_next_line_is_read_with_it(data):
    """`… ips: 11` then `.50463` on the next line (a Windows console paste): ips was 11.0 and
    16.0, its median 13.5 (truly 13.77); then dropped and counted. The rest on the next line
    is read with its line: ips 11.50463 and 16.04399, nothing cut, no line unparsed."""
    run = load(str(data / "paddleocr" / "24_det_win10_paste_ips_wrapped_onto_the_next_line_ocr2590.log"))
    assert run.arrays("train", "ips")["value"].tolist() == [11.50463, 16.04399]
    assert run.arrays("train", "ips")["line"].tolist() == [1, 3]
    assert "values_cut" not in run.info and run.unparsed == 0
    assert run.arrays("train", "loss")["value"].tolist() == [2.760931, 3.015381]


def test_a_training_line_whose_end_another_print_overwrote_keeps_its_whole_values(data):
    """A Windows FCENet workerlog: another process's `lanms has been installed.` overwrote the
    end of a training line (`… avg_batch_cost: 2.29791 s, avg_samplanms has been installed.`);
    the record of step 295 was dropped, counted only among the 96 unparsed `lanms` lines. Its
    values a `, ` follows are whole: the record keeps them, the line is counted cut."""
    run = load(str(data / "paddleocr" / "25_fcenet_windows_training_line_end_overwritten_by_"
                                        "another_print_workerlog0_lines1650-1750.log"))
    assert run.count("train") == 5 and run.unparsed == 96 and run.info["values_cut"] == 1
    steps = run.arrays("train", "loss")
    assert steps["step"].tolist() == [285, 290, 295, 60, 65] and steps["line"][2] == 50
    assert run.arrays("train", "loss_gcn")["value"][2] == 0.359491
    assert run.arrays("train", "avg_batch_cost")["value"][2] == 2.29791
    assert 50 not in run.arrays("train", "ips")["line"].tolist()      # its cut values: none
    assert analysis.summarize(run)["values_cut"] == 1
    # a line whose every part reads (cut after a value, or of a layout of no known order) is
    # read as ppdet reads a cut line: its last value only if printed whole (6 decimals)
    for last, kept in (("2", {}), ("2.000000", {"some_new_field": 2.0})):
        parser = formats.get("paddleocr").Parser()
        events = parser.feed("[2024/03/09 15:26:01] ppocr INFO: epoch: [2/1200], global_step: 295, "
                             f"lr: 0.027976, loss: 3.431514, some_new_field: {last}", 1)
        (record,) = [e for e in events + parser.finish() if isinstance(e, Record)]
        assert record.metrics == {"learning_rate": 0.027976, "loss": 3.431514, **kept}
        assert parser.facts.get("values_cut") == (None if kept else 1)


def test_a_paddle_run_s_end_is_said_as_the_tool_logged_it():
    """PaddleOCR prints no final metrics: its end is the `best metric` line after the epoch
    loop (line 15). The evidence said "final training metrics were logged"."""
    run = load(str(DATA / "paddleocr" / "19_paddlex_seal_det_last_epoch_eta_zero_then_best_metric_"
                                        "blog.log"))
    assert analysis.status(run) == ("finished", "the tool logged the end of training at line 15")
    assert wording.evidence(analysis.status(run)[1], "zh") == "训练工具在第 15 行记录了训练结束"


WRAPPED = DATA / "paddleocr" / "27_rec_v4_windows_md_hardwrapped_mid_number_notes.log"


def test_training_lines_hard_wrapped_mid_number_are_read_joined():
    """Markdown notes of a PaddleOCR v4 rec run on Windows: each of its 19 training lines
    hard-wrapped mid-number by the paste (`… norm_edit_dis: 1.0` / `00000, CTCLoss: …`). None
    was read (0 records, 45 lines unparsed, `check`: 0 anomalies). Each line is read with its
    rest, at its first line, with its exact values; only the markdown lines stay unparsed."""
    run = load(str(WRAPPED))
    assert run.count("train") == 19 and run.count("eval") == 2
    assert run.unparsed == 7 and "values_cut" not in run.info       # (```, a heading)
    steps = run.arrays("train", "norm_edit_dis")
    assert steps["step"].tolist() == list(range(300, 490, 10)) and steps["line"][0] == 28
    assert steps["value"].tolist()[:3] == [1.0, 1.0, 0.999132]      # `0.9` / `99132`
    assert _records(run)[0]["values"] == {
        "learning_rate": 5.8e-05, "acc": 1.0, "norm_edit_dis": 1.0, "CTCLoss": 0.049039,
        "NRTRLoss": 0.620189, "loss": 0.669288, "avg_reader_cost": 0.06627,
        "avg_batch_cost": 8.51739, "avg_samples": 70.4, "ips": 8.26544, "eta_seconds": 2369.0,
        "max_mem_reserved": 12193.0, "max_mem_allocated": 11824.0}
    assert analysis.summarize(run)["last_step"] == 480


def test_a_cut_training_line_is_joined_only_with_its_rest(tmp_path):
    """Synthetic, from fixture 27's first wrapped line: its rest after a new log line (a time
    stamp and the logger's prefix) is no rest of it; nor a line that continues no `key: value`
    sequence. A line that ends whole takes nothing from the line after it. Each is read as it
    is: the cut line keeps its values a `, ` follows, the cut one dropped and counted."""
    lines = WRAPPED.read_text(encoding="utf-8").split("\n")
    head, rest, saved = lines[27], lines[28].rstrip(), lines[29]
    assert head.endswith("norm_edit_dis: 1.0") and rest.startswith("00000, CTCLoss")

    def read(*text):
        log = tmp_path / "x.log"
        log.write_text("\n".join(text) + "\n", encoding="utf-8")
        run = load(str(log), fmt="paddleocr")
        return [r["values"] for r in _records(run)], run

    for after in ((saved, rest), ("a note", rest), (rest[:5] + "x",)):
        rows, run = read(head, *after)
        assert rows[0] == {"learning_rate": 5.8e-05, "acc": 1.0}, after
        assert run.info["values_cut"] == 1 and run.unparsed == len(after) - (after[0] == saved)
    rows, run = read(head + rest, "00000, CTCLoss: 0.1")
    assert rows[0]["norm_edit_dis"] == 1.0 and rows[0]["CTCLoss"] == 0.049039
    assert run.unparsed == 1 and "values_cut" not in run.info


@pytest.mark.parametrize("case,steps,last,cut", [
    ("paddleseg/15_v2.8_eval_dice_kappa_zero_last_train_line_cut_mid_field_seg1436.log",
     [470, 480, 490, 500, 510], {"loss": 0.2077, "learning_rate": 0.005981, "batch_cost": 0.4049},
     "reader_cost"),
    ("paddleseg/05_v2.0_train_tab_ips_pr928.log", None,
     {"loss": 1.8324, "learning_rate": 0.007086, "batch_cost": 0.3515}, "reader_cost"),
    ("paddleclas/11_engine_v2.5_piecewise_two_class_clas3203.log", None,
     {"learning_rate": 0.001, "top1": 0.96814, "CELoss": 0.06468}, "loss"),      # `loss: 0.06`
    ("paddleocr/06_rec_svtr_save_model_fractional_samples_ocr6632.log", None,
     {"learning_rate": 5.4e-05, "acc": 0.783203, "norm_edit_dis": 0.958927}, "loss"),  # `1.`
])
def test_a_last_training_line_cut_mid_field_keeps_its_whole_values(data, case, steps, last, cut):
    """Excerpts that end in a training line cut mid-field (`…, batch_cost: 0.4049, reader_co`)
    or mid-value: the record was dropped (PaddleSeg issue 1436: last step 500 for 510). As
    ppdet reads such a line, its values a `, ` follows are its record, the cut one left out
    and the line counted (`values_cut`)."""
    run = load(str(data / case))
    rows = _records(run)
    assert rows[-1]["values"] == last and cut not in rows[-1]["values"]
    if steps:
        assert [r["step"] for r in rows] == steps
    summary = analysis.summarize(run)
    assert summary["last_step"] == rows[-1]["step"] and summary["values_cut"] == 1
    assert run.unparsed == (1 if case.startswith("paddleseg/15") else 0)      # (its ``` line)


def _records(run) -> list[dict]:
    """Each training record as the log states it (tests/golden.py's shape)."""
    from golden import record
    return [record(table, i) for _, table in run.tables("train") for i in range(len(table))]


WRAP_LOGS = sorted(p for fmt in ("paddleocr", "paddleclas", "paddleseg")
                   for p in (DATA / fmt).glob("*.log"))


@pytest.mark.parametrize("width", [80, 117, 150])
@pytest.mark.parametrize("path", WRAP_LOGS, ids=[p.name for p in WRAP_LOGS])
def test_training_lines_a_paste_hard_wrapped_keep_every_record(path, width):
    """Synthetic, from every real PaddleOCR, PaddleClas and PaddleSeg log: each training line
    that reads whole, hard-wrapped at a fixed width (a terminal's copy; each piece stripped
    at its end, as the reader gives it): the same records, each at its first line, with the
    same values; where a piece ends as a line may end (right after an ETA: the memory that
    some lines print after it is on the next), those after it are missing, none other."""
    fmt = formats.get(path.parent.name)
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    probe, wrapped, origin = fmt.Parser(), [], []
    for number, line in enumerate(lines, 1):
        m = next(filter(None, (prefix.search(line) for prefix in fmt.Parser.PREFIXES)), None)
        pieces = [line]
        if m and len(line) > width and probe.train_line(line[m.end():]):
            pieces = [line[i:i + width].rstrip() for i in range(0, len(line), width)]
            pieces = pieces[:1] + [piece for piece in pieces[1:] if piece]
        wrapped += pieces
        origin += [number] * len(pieces)

    def records(text, line):     # (repr: NaN equals NaN)
        return [(e.phase, e.step, e.epoch, line(e.line), {k: repr(v) for k, v in e.metrics.items()})
                for e in parse(fmt, text) if isinstance(e, Record)]

    if len(wrapped) == len(lines):
        pytest.skip("no training line longer than the width")
    got, want = records("\n".join(wrapped), lambda n: origin[n - 1]), records("\n".join(lines), int)
    assert [r[:4] for r in got] == [r[:4] for r in want]
    for (*_, values), (*_, whole) in zip(got, want):
        missing = list(whole)[len(values):]
        assert values == {k: whole[k] for k in list(whole)[:len(values)]}
        assert not missing or missing[0].startswith("max_mem_"), missing


def test_a_traceback_pasted_without_its_frames_indentation_ends_at_its_exception_line(data):
    """PaddleClas issue 554: `File "…", line N, in f` and its code line at column 0; the
    exception line `KeyError: 'top2'` was not taken ("cut off before the exception line"), and
    the frames were 6 unparsed lines."""
    run = load(str(data / "paddleclas/20_v2_end_epoch0_then_keyerror_top2_frames_unindented_clas554.log"))
    assert analysis.status(run) == ("failed", "traceback at line 9: KeyError: 'top2'")
    assert run.unparsed == 0
