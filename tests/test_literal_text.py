"""Every string that comes from a log shows literally, as text and never as markup, in the page:
chart titles, legends, hover labels and tables, of a report file and of the live page of
`watch --serve`, in headless Chromium.

Plotly reads a little HTML in the text it draws (<b>, <i>, <br>, entities): the page escapes log
text for it (esc() in the template); tables take it as textContent. The logs are real lines with
one change that makes them synthetic: a few keys (metric names) and the file names (run names)
are renamed to markup.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from logreport import render
from logreport.analysis import summarize
from logreport.reader import load
from logreport.report import LABELS, build
from tests.browser import Browser, available, watch_served

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not available(), reason="chromium is not installed")]

DATA = Path(__file__).parent / "data"
DPO = DATA / "llamafactory" / "dpo_lora" / "console.log"              # train and eval dicts
DIVERGE = DATA / "llamafactory" / "sft_full_diverge" / "console.log"  # grad_norm turns nan
CLASSWISE = DATA / "ppdet" / "ppyoloe_crn_s_coco_evalonly_classwise.log"
LAST = LABELS["en"]["final"]                  # the summary row of a metric's last value
DRAWN = "document.documentElement.dataset.drawn === '1'"

METRIC = "a<b>BOLD</b>c"            # a metric of its own chart (grad_norm renamed)
MEMBER = "m<i>IT<br>&amp;"          # one of the rewards/* family (rewards/margins renamed)
CATEGORY = "red<b>BOX</b>&amp;"     # a row of a per-category table (red_box renamed)
RUN_DPO = "dpo<br>&lt;b&gt;.log"    # run names: the file names
RUN_NAN = "nan<i>R&amp;<br>y.log"

# Hover each trace of each chart at its first finite point; the hover label's text.
HOVER_ALL = """(function () { var out = [];
  logreport.state.data.charts.forEach(function (c) { var gd = document.getElementById(c.id);
    gd.data.forEach(function (t, i) {
      if (t.hoverinfo === 'skip') return;
      var j = Array.from(t.y).findIndex(function (v) { return v !== null && isFinite(v); });
      if (j < 0) return;
      Plotly.Fx.hover(gd, [{ curveNumber: i, pointNumber: j }]);
      out.push(gd.querySelector('.hoverlayer').textContent);
      Plotly.Fx.unhover(gd); }); });
  return out; })()"""
TEXTS = "Array.from(document.querySelectorAll('{}')).map(function (e) {{ return e.textContent; }})"
MARKUP_DRAWN = ("document.querySelectorAll('svg tspan[style*=\"bold\"], svg tspan[style*=\"italic\"],"
                " svg tspan.line, #charts a, body b, body i, body br').length")


def marked(src: Path, renames: dict[str, str], dest: Path, keep=lambda line: True) -> Path:
    """The lines of a real log with some text replaced (a synthetic rename of keys)."""
    text = "".join(line for line in src.read_text(encoding="utf-8").splitlines(True)
                   if keep(line))
    for old, new in renames.items():
        assert old in text, old
        text = text.replace(old, new)
    dest.write_text(text, encoding="utf-8")
    return dest


def dpo_log(folder: Path) -> Path:
    return marked(DPO, {"'grad_norm'": repr(METRIC), "rewards/margins'": f"rewards/{MEMBER}'"},
                  folder / RUN_DPO, keep=lambda line: "{'" in line)


def nan_log(folder: Path) -> Path:
    return marked(DIVERGE, {"'grad_norm'": repr(METRIC)}, folder / RUN_NAN,
                  keep=lambda line: "{'" in line)


def classwise_log(folder: Path) -> Path:
    return marked(CLASSWISE, {" red_box ": f" {CATEGORY} "}, folder / "classwise.log")


def shown(page) -> dict[str, list[str]]:
    """What the page shows as text, by where it shows it."""
    return {"titles": page.eval(TEXTS.format(".gtitle")),
            "legend": page.eval(TEXTS.format(".legendtext")),
            "hover": page.eval(HOVER_ALL),
            "cells": page.eval(TEXTS.format("#summary th, #summary td, #anomalies td, #tables th, "
                                            "#tables td, #facts td")),
            "heads": page.eval(TEXTS.format("h1, #tables h2")) + [page.eval("document.title")]}


@pytest.fixture(scope="module")
def browser():
    with Browser() as b:
        yield b


def open_report(browser, runs, path: Path):
    render.write_html(build(runs), str(path))
    page = browser.open(path.as_uri())
    page.wait_for(DRAWN)
    return page


def test_one_run_shows_its_metric_names_literally(browser, tmp_path):
    run = load(str(dpo_log(tmp_path)))
    page = open_report(browser, [run], tmp_path / "one.html")
    got = shown(page)
    assert METRIC in got["titles"]                                  # its own chart
    assert METRIC in got["legend"] and f"rewards/{MEMBER}" in got["legend"]
    assert any(text.startswith(METRIC) for text in got["hover"])   # the trace's name
    assert f"eval_rewards/{MEMBER} · new best: " in "\n".join(got["hover"])   # the best marker
    assert f"{LAST} {METRIC}" in got["cells"] and f"{LAST} rewards/{MEMBER}" in got["cells"]
    assert got["heads"] == [RUN_DPO, f"{RUN_DPO} · logreport"]
    assert page.eval(MARKUP_DRAWN) == 0
    assert page.errors == [] and page.requests == []


def test_compared_runs_show_their_names_and_tables_literally(browser, tmp_path):
    runs = [load(str(nan_log(tmp_path))), load(str(dpo_log(tmp_path))),
            load(str(classwise_log(tmp_path)))]
    page = open_report(browser, runs, tmp_path / "compare.html")
    got = shown(page)
    hover = "\n".join(got["hover"])
    assert {RUN_NAN, RUN_DPO} <= set(got["legend"])                 # one legend entry a run
    assert f"rewards/{MEMBER}" in got["legend"]                     # metric keys of a family
    assert f"{RUN_DPO} · rewards/{MEMBER}" in hover                 # a trace of the family
    assert f"{RUN_NAN} · {METRIC} = nan @ step 2" in hover          # a value that is not finite
    assert f"{RUN_NAN} · zero_loss: loss is exactly 0" in hover     # an anomaly's marker
    assert f"{RUN_DPO} · eval_rewards/{MEMBER} · new best: " in hover
    assert {RUN_NAN, RUN_DPO, CATEGORY} <= set(got["cells"])        # headers, anomalies, tables
    assert got["heads"][0] == f"{RUN_NAN} vs {RUN_DPO} vs classwise.log"
    assert page.eval(MARKUP_DRAWN) == 0
    assert page.errors == [] and page.requests == []


def test_the_live_page_shows_log_text_literally_before_and_after_an_update(browser, tmp_path):
    whole = dpo_log(tmp_path)
    lines = whole.read_bytes().splitlines(True)
    log = tmp_path / "live" / RUN_DPO
    log.parent.mkdir()
    log.write_bytes(b"".join(lines[:4]))
    with watch_served(log, tmp_path / "r.html") as url:
        page = browser.open(url)
        page.wait_for(DRAWN)
        first = shown(page)
        with open(log, "ab") as f:
            f.writelines(lines[4:])
        page.wait_for(f"logreport.state.data.runs[0].summary.train_records === "
                      f"{summarize(load(str(whole)))['train_records']}")
        page.wait_for(f"document.querySelectorAll('.legendtext').length > {len(first['legend'])}")
        after = shown(page)
        errors = list(page.errors)      # (once watch ends, the page's next poll finds no server)
    for got in (first, after):
        assert METRIC in got["titles"] and METRIC in got["legend"]
        assert any(text.startswith(METRIC) for text in got["hover"])
        assert f"{LAST} {METRIC}" in got["cells"] and got["heads"][0] == RUN_DPO
    assert f"rewards/{MEMBER}" in after["legend"]
    assert f"eval_rewards/{MEMBER} · new best: " in "\n".join(after["hover"])
    assert page.eval(MARKUP_DRAWN) == 0
    assert errors == []
