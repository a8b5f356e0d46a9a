"""Reports opened in headless Chromium: charts draw, nothing leaks, hostile text stays text."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from logreport import render
from logreport.analysis import values
from logreport.events import TRAIN, Record
from logreport.model import Run
from logreport.reader import load
from logreport.report import build
from tests.browser import Browser, available, watch_served

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not available(), reason="chromium is not installed")]

DATA = Path(__file__).parent / "data" / "ppdet"
DRAWN = "document.documentElement.dataset.drawn === '1'"
HOSTILE = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"


def ema(vals: np.ndarray, weight: float = 0.6) -> np.ndarray:
    """TensorBoard's debiased exponential moving average (non-finite values skipped): the
    reference the page's own EMA is checked against."""
    out = np.empty(len(vals))
    last, num = 0.0, 0
    for i, v in enumerate(vals):
        if not math.isfinite(v):
            out[i] = last / (1 - weight ** num) if num else float("nan")
            continue
        last = last * weight + (1 - weight) * v
        num += 1
        out[i] = last / (1 - weight ** num)
    return out


@pytest.fixture(scope="module")
def browser():
    with Browser() as b:
        yield b


def _open(browser, runs, path, **kw):
    render.write_html(build(runs, **kw), str(path))
    page = browser.open(path.as_uri())
    page.wait_for(DRAWN)
    return page


def _chart_id(page, title: str) -> str:
    """The id of the chart with this title."""
    return page.eval(f"logreport.state.data.charts.filter(c => c.title === {json.dumps(title)})[0].id")


def _smoothed_path(page, chart_id):
    """The SVG path of the first smoothed trace (the second trace of a train chart)."""
    return page.eval(f"document.querySelectorAll('#{chart_id} .scatterlayer .trace')[1]"
                     ".querySelector('path.js-line').getAttribute('d')")


def test_compare_report_draws_every_chart(browser, tmp_path):
    runs = [load(str(DATA / "picodet_s_320_coco_train.log")),
            load(str(DATA / "picodet_s_320_coco_train-ppdet2.7.1.log")),
            load(str(DATA / "ppyoloe_crn_s_coco_resume.log"))]
    page = _open(browser, runs, tmp_path / "cmp.html")
    charts = page.eval("logreport.state.data.charts.map(c => c.id)")
    drawn = page.eval("logreport.state.data.charts.map(c => "
                      "document.querySelectorAll('#' + c.id + ' .main-svg').length)")
    assert charts and all(n > 0 for n in drawn)
    assert page.errors == [] and page.requests == []
    page.screenshot(str(tmp_path / "compare.png"))
    assert (tmp_path / "compare.png").stat().st_size > 10_000
    # the summary table highlights a best value and the CSV has every series
    assert page.eval("document.querySelectorAll('#summary td.best').length") > 0
    csv = page.eval("logreport.csv()").splitlines()
    assert csv[0] == "run,phase,metric,step,epoch,hours,value"
    assert any(",train,loss_vfl," in line for line in csv)


def test_smoothing_is_tensorboard_ema_and_slider_redraws(browser, tmp_path):
    run = load(str(DATA / "picodet_s_320_coco_train.log"))
    page = _open(browser, [run], tmp_path / "one.html")
    loss = _chart_id(page, "loss")
    before = _smoothed_path(page, loss)
    page.eval("var s = document.getElementById('smooth'); s.value = '0.95';"
              "s.dispatchEvent(new Event('input'))")
    page.wait_for(f"document.querySelectorAll('#{loss} .scatterlayer .trace')[1]"
                  f".querySelector('path.js-line').getAttribute('d') !== {json.dumps(before)}")
    drawn = page.eval(f"Array.from(document.getElementById('{loss}').data[1].y)")
    vals = values(run, TRAIN, "loss")[3]
    assert np.allclose(drawn, ema(vals, 0.95))
    assert page.errors == []


def test_hostile_text_is_shown_not_run(browser, tmp_path):
    text = (DATA / "picodet_s_320_coco_nan_crash.log").read_text(encoding="utf-8")
    assert "ValueError:" in text
    text = text.replace("ValueError:", f"ValueError: {HOSTILE} javascript:alert(1)")
    log = tmp_path / "<img src=x onerror=window.__pwned=3>.log"
    log.write_text(text, encoding="utf-8")
    named = Run("metric names")  # a structured log may carry any key as a metric name
    for i in range(5):
        named.add(Record(TRAIN, {HOSTILE: float(i), "loss": 1.0 / (i + 1)}, step=i, line=i + 1))
    page = _open(browser, [load(str(log)), named], tmp_path / "x.html", title=HOSTILE)
    assert any(HOSTILE in c["metrics"] for c in page.eval("logreport.state.data.charts"))
    assert page.eval("logreport.state.data.charts.every(c => "
                     "document.querySelector('#' + c.id + ' .main-svg'))")
    assert page.eval("window.__pwned === undefined")
    assert page.eval("document.querySelectorAll('img, iframe').length") == 0
    body = page.eval("document.body.textContent")
    assert HOSTILE in body and "onerror=window.__pwned=3" in body
    assert page.eval("document.title").startswith(HOSTILE)
    assert page.errors == [] and page.requests == []


def test_live_update_redraws_with_new_data(browser, tmp_path):
    first = tmp_path / "first.log"
    full = (DATA / "picodet_s_320_coco_train.log").read_text(encoding="utf-8").splitlines(True)
    first.write_text("".join(full[: len(full) // 2]), encoding="utf-8")
    page = _open(browser, [load(str(first))], tmp_path / "live.html")
    loss = _chart_id(page, "loss")
    page.eval(f"Plotly.relayout('{loss}', {{'xaxis.range': [0, 5]}}).then(() => 1)",
              await_promise=True)
    shutil.copy(DATA / "picodet_s_320_coco_train.log", first)
    fresh = json.dumps(build([load(str(first))]))
    page.eval(f"logreport.update({fresh}).then(() => 1)", await_promise=True)
    assert page.eval("logreport.state.data.runs[0].series.train.loss.n") == len(
        values(load(str(first)), TRAIN, "loss")[3])
    assert page.eval(f"document.getElementById('{loss}').layout.xaxis.range") == [0, 5]
    assert page.eval("logreport.state.data.charts.every(c => "
                     "document.querySelector('#' + c.id + ' .main-svg'))")
    assert page.errors == []


def test_axis_switch_and_log_y(browser, tmp_path):
    run = load(str(DATA / "picodet_s_320_coco_train.log"))
    page = _open(browser, [run], tmp_path / "axes.html")
    loss = _chart_id(page, "loss")
    page.eval("var a = document.getElementById('axis'); a.value = 'epoch';"
              "a.dispatchEvent(new Event('change'))")
    page.wait_for(f"document.getElementById('{loss}').layout.xaxis.title.text === 'epoch'")
    epochs = page.eval(f"Array.from(document.getElementById('{loss}').data[0].x)")
    steps = values(run, TRAIN, "loss")[0]
    assert np.allclose(epochs, steps / run.info["steps_per_epoch"], atol=1e-6)
    page.eval("var a = document.getElementById('axis'); a.value = 'hours';"
              "a.dispatchEvent(new Event('change'))")
    page.wait_for(f"document.getElementById('{loss}').layout.xaxis.title.text === "
                  "'hours since start'")
    hours = page.eval(f"Array.from(document.getElementById('{loss}').data[0].x)")
    assert hours[0] >= 0 and hours == sorted(hours) and hours[-1] < 1
    page.eval("var l = document.getElementById('logy'); l.checked = true;"
              "l.dispatchEvent(new Event('change'))")
    page.wait_for(f"document.getElementById('{loss}').layout.yaxis.type === 'log'")
    assert page.errors == [] and page.requests == []


def test_served_live_page_updates_in_place(browser, tmp_path):
    """`watch --serve`: the page gets new data over /api/events and redraws without a reload."""
    full = (DATA / "picodet_s_320_coco_long80e.log").read_bytes().splitlines(True)
    log = tmp_path / "run.log"
    log.write_bytes(b"".join(full[: len(full) // 2]))
    with watch_served(log, tmp_path / "r.html") as url:
        page = browser.open(url)
        page.wait_for(DRAWN)
        half = page.eval("logreport.state.data.runs[0].summary.train_records")
        page.eval("window.__same_page = 1")
        with open(log, "ab") as f:
            f.writelines(full[len(full) // 2:])
        page.wait_for("logreport.state.data.runs[0].summary.train_records === 80")
        assert 0 < half < 80
        assert page.eval("window.__same_page") == 1
        assert page.errors == []


def test_a_line_never_joins_two_segments_and_smoothing_starts_afresh_in_each(browser, tmp_path):
    """Four PaddleSeg processes appended to one log: the loss line ran back from each run's
    end to the next one's start, and the EMA carried the last run's loss into the next; each
    segment is now a line of its own (a gap before its first point) and its smoothed line
    starts at its own first value."""
    path = DATA.parent / "paddleseg" / "11_four_runs_appended_finished_then_resumed_workerlog0.log"
    run = load(str(path))
    page = _open(browser, [run], tmp_path / "segments.html")
    loss = _chart_id(page, "loss")
    raw, smooth = (page.eval(f"Array.from(document.getElementById('{loss}').data[{i}].y)"
                             ".map(v => isNaN(v) ? null : v)") for i in (0, 1))
    x = page.eval(f"Array.from(document.getElementById('{loss}').data[0].x)"
                  ".map(v => isNaN(v) ? null : v)")
    gaps = [i for i, v in enumerate(raw) if v is None]
    segments = [seg for seg in run.segments if "loss" in seg.train.series]
    assert len(gaps) == len(segments) - 1 >= 2
    assert all(x[i] is None and smooth[i] is None for i in gaps)
    for i in gaps:                      # the debiased EMA of one value is that value
        assert smooth[i + 1] == pytest.approx(raw[i + 1], rel=1e-6)
    assert x[gaps[0] + 1] < x[gaps[0] - 1]      # the next process starts its steps afresh
    assert page.errors == []


def _eval_charts(page):
    """Per evaluation chart: its drawn x values (null for none) and its x axis title."""
    return page.eval("logreport.state.data.charts.filter(c => c.phase === 'eval').map(c => {"
                     "const gd = document.getElementById(c.id); return [gd.data.filter("
                     "t => t.meta && t.meta.kind === 'line').map(t => Array.from(t.x).map("
                     "v => isNaN(v) ? null : v)), gd.layout.xaxis.title.text]; })")


def test_one_training_point_is_drawn_and_a_stepless_evaluation_is_not_put_at_step_0(
        browser, tmp_path):
    """A train log followed by a `tools/eval.py` run (public_41): the evaluation, which has
    no step of the training, was drawn at step 0 beside the first training record; it is
    drawn as evaluation 1 on an axis that says the log states no step."""
    run = load(str(DATA / "public_41_train_then_evalpy_same_file_roadsign.log"))
    page = _open(browser, [run], tmp_path / "evalpy.html")
    charts = _eval_charts(page)
    assert charts and all(x == [[1]] and "no step" in title for x, title in charts)
    loss = _chart_id(page, "loss")                  # its one training record: a marker
    modes = page.eval(f"document.getElementById('{loss}').data.filter(t => t.y.length === 1)"
                      ".map(t => t.mode)")
    assert modes and all("markers" in m for m in modes)
    assert page.errors == []


@pytest.mark.parametrize("log, order", [
    # training, then three tools/eval.py runs of a released checkpoint: charts had no mark
    # (each run a process, a segment of its own: a gap between each two)
    ("paddleocr/15_v2.0_rec_training_then_evalpy_of_another_checkpoint_workerlog0_lines34300"
     "-35583.log", [1, None, 2, None, 3]),
    # eval.py alone: its one evaluation was put at "step 0", a step the log never states
    ("ppdet/public_51_evalpy_coco_small_area_minus1_not_applicable_pcb_windows_notes.log",
     [1])])
def test_evaluations_with_no_step_are_drawn_in_log_order_never_at_a_step(
        browser, tmp_path, log, order):
    """Evaluations the log states no step for were left out of every evaluation chart (x all
    NaN: empty charts beside a table of 3 evaluations) or drawn at step 0 of an axis titled
    "step". They are drawn in log order (a gap between two processes), the axis saying so;
    the smoothing slider, which has nothing to smooth on an eval-only log, is hidden."""
    run = load(str(DATA.parent / log))
    page = _open(browser, [run], tmp_path / "nostep.html")
    charts = _eval_charts(page)
    assert charts and all(title == "evaluation, in log order (the log states no step)"
                          and all(x == order for x in traces if x) for traces, title in charts)
    hidden = page.eval("getComputedStyle(document.getElementById('smooth').parentNode).display"
                       " === 'none'")
    assert hidden == (not run.count(TRAIN))
    assert page.errors == [] and page.requests == []


def test_a_stated_best_is_not_pinned_to_a_point_of_another_value(browser, tmp_path):
    """PaddleOCR's `best metric` line (hmean 0.849033, before the lines of this excerpt) is
    the run's best as the log states it; the chart's one evaluation is hmean 0. The label
    "best 0.849033" pointed at that 0."""
    run = load(str(DATA.parent / "paddleocr" / "04_det_east_root_cur_best_metric_ocr2196.log"))
    page = _open(browser, [run], tmp_path / "stated.html")
    chart = _chart_id(page, "hmean")
    texts = page.eval(f"(document.getElementById('{chart}').layout.annotations || [])"
                      ".map(a => a.text)")
    assert not any("0.849033" in t for t in texts)
    assert page.errors == []


def test_a_series_of_one_value_is_drawn_on_its_own_range(browser, tmp_path):
    """A constant learning rate (`learning_rate: 0.000010` on every line of a real YOLOv3
    log): Plotly's autorange put it on -1..1, a flat line that read as 0."""
    run = load(str(DATA / "public_50_yolov3_voc_last_two_epochs_best_stated_above_the_eval_read"
                          "_mouse_todo.log"))
    assert set(values(run, TRAIN, "learning_rate")[3]) == {1e-05}
    page = _open(browser, [run], tmp_path / "flat.html")
    lr = _chart_id(page, "learning rate")
    low, high = page.eval(f"document.getElementById('{lr}').layout.yaxis.range")
    assert 0 < low < 1e-05 < high < 2e-05
    assert page.errors == [] and page.requests == []


def test_a_wrapped_anomaly_line_keeps_its_bullet_on_its_first_line(browser, tmp_path):
    """The banner's anomaly lines are buttons; as inline blocks, a line that wrapped had its
    bullet on its last line (a list marker sits on the baseline, an inline block's is its last
    line's), so wrapped items read split or merged (a PaddleNLP log's 26 anomalies, at 500
    px). Each is a block: its bullet on its first line."""
    run = load(str(DATA.parent / "paddlenlp" /
                   "11_trainer_2022_08_fewclue_ten_tasks_one_file_near_zero_loss_oom.log.gz"))
    page = _open(browser, [run], tmp_path / "banner.html")
    shown = page.eval("Array.from(document.querySelectorAll('#banner li button'))"
                      ".map(b => getComputedStyle(b).display)")
    assert len(shown) == 26 and set(shown) == {"block"}
    assert page.errors == [] and page.requests == []


def test_a_cards_metric_name_wraps_at_its_underscores_not_mid_word(browser, tmp_path):
    """A throughput card's label `train_samples_per_second` broke mid-word in a 150 px card
    (`train_samples_per_sec` / `ond`): it may wrap after an underscore, its text unchanged."""
    run = load(str(DATA.parent / "llamafactory" /
                   "109_nonLF_trl_sft_v5_buffered_evals_at_epoch_ends.log.gz"))
    page = _open(browser, [run], tmp_path / "card.html")
    label = "Array.from(document.querySelectorAll('.hcard .k')).filter(k => " \
            "k.textContent.includes('train_samples_per_second'))[0]"
    assert page.eval(f"{label}.textContent") == "throughput (median) train_samples_per_second"
    assert page.eval(f"{label}.querySelectorAll('wbr').length") == 3
    assert page.errors == [] and page.requests == []


def test_the_anomaly_tables_explanation_comes_before_the_file(browser, tmp_path):
    """The details' anomaly table put each anomaly's file path before its explanation: at
    1400 px the explanation was pushed to the right edge, 92 px wide, Chinese text broken every
    character or two. The explanation comes before the line and the file."""
    run = load(str(DATA.parent / "llamafactory" / "108_nonLF_unsloth_sft_banner_buffered_zh.log"))
    page = _open(browser, [run], tmp_path / "anomalies.html")
    head = page.eval("Array.from(document.querySelectorAll('#anomalies th')).map(t => t.textContent)")
    assert head[-3:] == ["detail", "line", "file"]
    row = page.eval("Array.from(document.querySelector('#anomalies tr.anomaly').cells)"
                    ".map(c => c.textContent)")
    assert row[4].startswith("eval_loss") and row[-1].endswith(".log")


def _lines(page, chart_id):
    """(kind, y values) of each line of a chart (raw, line), nulls for gaps."""
    return page.eval(f"document.getElementById('{chart_id}').data.filter(t => t.meta && "
                     "['line', 'raw'].includes(t.meta.kind)).map(t => [t.meta.kind, "
                     "Array.from(t.y).map(v => isNaN(v) ? null : v)])")


@pytest.mark.parametrize("log, raw", [
    # loss 1.4596 then exactly 0 three times: the smoothed line ended at 0.14
    ("llamafactory/05_sft_nan_then_zero_loss_npu.log", [1.4596, 0, 0, 0]),
    # loss 93279.75 at step 2 (divergence): the smoothed line peaked at ~48 000
    ("ppdet/picodet_s_320_coco_nan_crash.log", None)])
def test_smoothing_never_hides_a_collapse_or_a_spike(browser, tmp_path, log, raw):
    """The default smoothing (0.6) drew a loss that fell to exactly 0, or peaked at 93279.75,
    as a gentle bold curve (the raw line faint behind), beside the page's own zero_loss or
    divergence anomaly. A series such an anomaly flags, or of fewer than 10 points, is drawn
    as logged, and the chart says why."""
    run = load(str(DATA.parent / log))
    page = _open(browser, [run], tmp_path / "collapse.html")
    loss = _chart_id(page, "loss")
    ((kind, drawn),) = _lines(page, loss)
    assert kind == "line"
    assert drawn == pytest.approx(raw or values(run, TRAIN, "loss")[3].tolist())
    assert max(drawn) == pytest.approx(1.4596 if raw else 93279.75)
    note = page.eval(f"document.getElementById('{loss}-card').querySelector('.note')"
                     ".textContent")
    assert note.startswith("drawn as logged, not smoothed: loss (")
    assert page.errors == [] and page.requests == []


def test_a_count_of_tokens_seen_is_not_smoothed(browser, tmp_path):
    """num_input_tokens_seen counts up; smoothed, its line ended below the count logged."""
    run = load(str(DATA.parent / "llamafactory" /
                   "24b_sft_full_v0.9.4_webui_step_lines_per_step_train_runtime.log"))
    page = _open(browser, [run], tmp_path / "tokens.html")
    ((kind, drawn),) = _lines(page, _chart_id(page, "num_input_tokens_seen"))
    assert kind == "line" and drawn == values(run, TRAIN, "num_input_tokens_seen")[3].tolist()
    assert page.errors == [] and page.requests == []


def test_every_evaluation_is_marked_on_the_training_charts(browser, tmp_path):
    """PaddleClas, 400 epochs, 409 evaluations: only the first 200 were marked (steps 97 to
    19403, as ~200 dotted lines 1-2 px apart over the loss), as if evaluations stopped half
    way. All 409 are marked, as ticks along the bottom (too many for lines)."""
    run = load(str(DATA.parent / "paddleclas" /
                   "16_cait_400_epochs_an_eval_each_climbing_noisily.log.gz"))
    page = _open(browser, [run], tmp_path / "marks.html")
    loss = page.eval("logreport.state.data.charts.filter(c => c.title === 'loss' && "
                     "c.phase === 'train')[0].id")
    ticks = page.eval(f"document.getElementById('{loss}').data.filter(t => t.meta && "
                      "t.meta.kind === 'evals').map(t => Array.from(t.x))")
    steps = [s for _, t in run.tables("eval") for s in t.step.take(np.arange(len(t)))]
    assert len(ticks) == 1 and ticks[0] == steps and len(steps) == 409
    assert max(steps) == 38799
    assert page.eval(f"document.getElementById('{loss}').layout.shapes.filter(s => "
                     "s.line.dash === 'dot').length") == 0
    assert page.errors == [] and page.requests == []


def test_the_best_label_is_drawn_when_the_log_holds_several_trainings(browser, tmp_path):
    """PaddleNLP's ten tasks in one log: the eval_accuracy chart had no "best 0.63522" label
    (the card has it): the label looked up the point nearest the best's step on the whole
    series, which was another training's evaluation at the same step, of another value."""
    run = load(str(DATA.parent / "paddlenlp" /
                   "11_trainer_2022_08_fewclue_ten_tasks_one_file_near_zero_loss_oom.log.gz"))
    page = _open(browser, [run], tmp_path / "best.html")
    chart = page.eval("logreport.state.data.charts.filter(c => c.main)[0].id")
    texts = page.eval(f"(document.getElementById('{chart}').layout.annotations || [])"
                      ".map(a => a.text)")
    assert any(t.startswith("best 0.63522") for t in texts)
    assert page.errors == [] and page.requests == []
