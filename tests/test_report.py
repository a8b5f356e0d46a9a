"""The report: ReportData built from real logs, read back from the written page."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from logreport import render
from logreport.analysis import values
from logreport.cli import main
from logreport.events import TRAIN, Record
from logreport.model import Run
from logreport.reader import load
from logreport.report import MAX_POINTS, build, trace, unpack

DATA = Path(__file__).parent / "data" / "ppdet"
PICODET = DATA / "picodet_s_320_coco_train.log"
PICODET_271 = DATA / "picodet_s_320_coco_train-ppdet2.7.1.log"


def page_data(html: str) -> dict:
    """The JSON payload embedded in a written report."""
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert m, "no report-data element"
    return json.loads(m.group(1))


def test_vendored_plotly_is_plotly_py_version():
    from plotly.offline import get_plotlyjs_version

    assert render.plotly_version() == get_plotlyjs_version()
    assert "MIT" in (render.ASSETS / "plotly.js-LICENSE").read_text()


def test_page_payload_round_trips(tmp_path):
    runs = [load(str(PICODET)), load(str(PICODET_271))]
    data = build(runs)
    out = tmp_path / "cmp.html"
    render.write_html(data, str(out))
    assert page_data(out.read_text(encoding="utf-8")) == json.loads(render._dumps(data))
    assert [r["name"] for r in data["runs"]] == [PICODET.name, PICODET_271.name]
    titles = [c["title"] for c in data["charts"]]
    assert titles[:2] == ["bbox AP@IoU", "bbox AP by area"] and "loss" in titles
    assert "learning rate" in titles
    assert [s["key"] for s in data["sections"]] == ["evaluation", "losses", "optimisation", "speed"]


def test_series_values_are_exact(tmp_path):
    run = load(str(PICODET))
    data = build([run])
    steps, _, _, vals = values(run, TRAIN, "loss")
    t = data["runs"][0]["series"]["train"]["loss"]
    y = unpack(t["y"]).astype(float)
    if t["y"]["dtype"] == "f4":  # the page prints 7 significant digits for the CSV
        y = np.array([float(f"{v:.7g}") for v in y])
    assert list(y) == list(vals) and list(unpack(t["x"])) == list(steps)
    assert t["n"] == len(vals) and "m" not in t


def test_compare_table_marks_best_per_row():
    data = build([load(str(PICODET)), load(str(PICODET_271))])
    rows = {(r["key"], r.get("metric")): r for r in data["compare"]}
    loss = rows[("final", "loss")]
    assert loss["best"] == [int(np.argmin(loss["values"]))]
    speed = rows[("median_throughput", "ips")]
    assert speed["best"] == [int(np.argmax(speed["values"]))]
    assert rows[("format", None)]["best"] == []


def test_per_category_table_is_carried():
    data = build([load(str(DATA / "ppyoloe_crn_s_coco_evalonly_classwise.log"))])
    table = data["runs"][0]["tables"][0]
    assert table["header"] and table["rows"]


def _run_with(metrics: dict[str, np.ndarray]) -> Run:
    run = Run("synthetic")
    n = len(next(iter(metrics.values())))
    for i in range(n):
        run.add(Record(TRAIN, {k: float(v[i]) for k, v in metrics.items()}, step=i * 10,
                       epoch=i // 1000, time=1.7e9 + i, line=i + 1))
    return run


@pytest.mark.parametrize("chunk", [1 << 16, 977])
def test_downsampling_keeps_spikes_and_marks_nan(chunk, monkeypatch):
    """Also when the series is read in many chunks (977 values: buckets straddle them)."""
    from logreport import store

    monkeypatch.setattr(store, "CHUNK", chunk)
    rng = np.random.default_rng(0)
    loss = 2 + 0.1 * rng.standard_normal(50_000)
    loss[12_345] = 80.0
    loss[30_000] = np.nan
    loss[40_000] = np.inf
    run = _run_with({"loss": loss})
    t = trace(run, TRAIN, "loss")
    y, x, c, m = unpack(t["y"]), unpack(t["x"]), unpack(t["c"]), unpack(t["m"])
    assert len(y) <= MAX_POINTS and len(x) == len(y) == len(c) == len(m)
    assert y.max() == 80.0 and 123450 in x
    assert t["nbad"] == 2 and t["bad"] == {"step": [300000, 400000], "value": ["nan", "inf"]}
    assert c.sum() == 50_000 - 2  # every finite value is counted in exactly one bucket
    finite = loss[np.isfinite(loss)]
    assert np.isclose((m.astype(float) * c).sum(), finite.sum(), rtol=1e-5)


def test_llm_metric_families_share_charts():
    names = ["loss", "grad_norm", "learning_rate", "rewards/chosen", "rewards/rejected",
             "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected",
             "logits/chosen", "logits/rejected", "train_samples_per_second"]
    run = _run_with({n: np.linspace(1, 2, 5) for n in names})
    charts = {c["title"]: c["metrics"] for c in build([run])["charts"]}
    assert charts["rewards/*"] == ["rewards/chosen", "rewards/rejected", "rewards/accuracies",
                                   "rewards/margins"]
    assert charts["logps/*"] == ["logps/chosen", "logps/rejected"]
    assert charts["logits/*"] == ["logits/chosen", "logits/rejected"]
    assert charts["throughput"] == ["train_samples_per_second"]
    assert list(charts)[0] == "loss" and "grad_norm" in charts and "learning rate" in charts


def test_cli_options(tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    out = tmp_path / "r.html"
    result = runner.invoke(main, ["report", str(PICODET), "-o", str(out)])
    assert result.exit_code == 0, result.output
    inline = out.read_text(encoding="utf-8")
    assert page_data(inline)["lang"] == "zh" and page_data(inline)["labels"]["summary"] == "概要"
    assert "<script src" not in inline
    result = runner.invoke(main, ["report", str(PICODET), "-o", str(out), "--lang", "en",
                                  "--plotlyjs", "cdn"])
    assert result.exit_code == 0, result.output
    cdn = out.read_text(encoding="utf-8")
    assert page_data(cdn)["lang"] == "en"
    assert render.plotly_cdn_url() in cdn and render.plotly_sri() in cdn
    assert len(cdn) < len(inline) - 400_000


@pytest.mark.timeout(120)      # runs of 500 000 values each
@pytest.mark.parametrize("n_runs", [1, 4])
def test_long_runs_page_is_under_a_megabyte(n_runs):
    """Ten metrics of 50k full-precision values per run: points are capped, < 1 MB."""
    rng = np.random.default_rng(1)
    names = ("loss", "loss_cls", "loss_iou", "loss_dfl", "learning_rate", "ips", "batch_cost",
             "data_cost", "grad_norm", "loss_l1")
    runs = [_run_with({k: 1 + rng.random(50_000) for k in names}) for _ in range(n_runs)]
    data = build(runs)
    html = render.render_report(data)
    assert len(html.encode()) < 1_000_000
    loss = data["runs"][0]["series"]["train"]["loss"]
    assert loss["y"]["dtype"] == "f8" and 400 <= len(unpack(loss["y"])) <= MAX_POINTS


def test_restart_in_one_file_is_marked_as_a_segment(tmp_path):
    """Two real runs appended to one file: the second starts a segment, drawn as a line."""
    log = tmp_path / "appended.log"
    log.write_text(PICODET.read_text(encoding="utf-8") + PICODET_271.read_text(encoding="utf-8"),
                   encoding="utf-8")
    data = build([load(str(log))])
    run = data["runs"][0]
    assert [m["kind"] for m in run["marks"]].count("segment") == 1
    loss = run["series"]["train"]["loss"]
    assert [s for _, s in loss["seg"]] == [0, 1]
    assert [a["seg"] for a in run["axes"]["train"]] == [0, 1]


def test_a_title_names_up_to_three_runs_and_counts_more():
    logs = sorted(DATA.glob("picodet_s_320_coco_*.log"))[:4]
    runs = [load(str(p)) for p in logs]
    assert build(runs[:2])["title"] == f"{runs[0].name} vs {runs[1].name}"
    assert build(runs)["title"] == "4 runs compared"
    assert build(runs, lang="zh")["title"] == "4 个运行对比"
    assert build(runs, title="mine")["title"] == "mine"


def test_no_best_is_marked_on_a_figure_that_is_no_score():
    """A TRL SFT log (103): `eval_num_tokens` (a count: a new-best star at every evaluation),
    `eval_entropy` and the speeds had best stars and green cells. Only scores
    get them (eval_loss, eval_mean_token_accuracy), as only a score is ever the summary's best."""
    run = load(str(DATA.parent / "llamafactory" /
                   "103_nonLF_trl_qlora_nohup_bursts_epoch_printed_rounded_no_banner.log.gz"))
    data = build([run])
    series = data["runs"][0]["series"]["eval"]
    assert {"eval_num_tokens", "eval_entropy", "eval_loss"} <= set(series)
    starred = {name for name, t in series.items() if t.get("best")}
    assert starred == {"eval_loss", "eval_mean_token_accuracy"}
    evals = data["runs"][0]["evals"]
    best = {m for m, rows in zip(evals["columns"], evals["best"]) if rows}
    assert best <= starred and "eval_loss" in best
    assert data["runs"][0]["summary"]["best"]["metric"] == "eval_loss"


def test_a_column_of_one_value_has_no_best_cell():
    """A diverged Faster R-CNN whose one evaluation has every AP 0: every cell was a green
    "best"."""
    run = load(str(DATA / "faster_rcnn_r50_fpn_coco_diverge_lr1000.log"))
    evals = build([run])["runs"][0]["evals"]
    assert evals["rows"] and evals["best"] == [[] for _ in evals["columns"]]
