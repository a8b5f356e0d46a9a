"""Unparsed lines are the lines no parser understands, not the noise it knows."""
from logreport.analysis import summarize
from logreport.live import figures
from logreport.reader import load


def test_a_clean_ppdet_log_leaves_only_foreign_banners_unparsed(data):
    run = load(str(data / "ppdet/ppyoloe_crn_s_coco_train.log"))
    assert run.unparsed == 6
    texts = [text for _, _, text in run.unparsed_samples]
    assert texts[0].startswith("Warning: Unable to use numba")
    assert texts[3].startswith("=" * 23 + " Modified FLAGS detected")
    assert not any("loading annotations" in t or "Average Precision" in t for t in texts)


def test_progress_bars_and_logger_continuations_are_not_unparsed(data):
    run = load(str(data / "llamafactory/sft_lora/console.log"))
    texts = [text for _, _, text in run.unparsed_samples]
    assert run.unparsed == len(texts) == 2
    assert texts[0].startswith("[transformers] warmup_ratio is deprecated")
    assert not any("it/s]" in t or "s/it]" in t for t in texts)


def test_live_view_reads_a_finished_ppdet_run_as_100_percent(data):
    run = load(str(data / "ppdet/ppyoloe_crn_s_coco_train.log"))
    assert figures(run, summarize(run))["step"] == "35/36 (100 %)"


def test_the_live_view_says_the_step_of_a_loss_logged_before_the_last_step(data):
    """The last line (step 400) is cut before its loss: the live line read
    "step 400/249146 (0.2 %) · loss 2088.6", a loss logged at step 380."""
    run = load(str(data / "ppdet/public_28_ppyolo_jetson_pd4120.log"))
    f = figures(run, summarize(run))
    assert f["step"].startswith("400/249146") and f["loss"] == "loss 2088.6 @ step 380"
