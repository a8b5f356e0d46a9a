"""The report page a teammate reads, in headless Chromium: headline, anomaly banner, sections,
robust y scales, no COCO -1 drawn, evaluation tables, figures (SVG, PNG, CSV), hover across a
section, phone width and print."""
from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from logreport import headline, present, render
from logreport.analysis import main_loss, summarize
from logreport.reader import load, load_all
from logreport.report import build
from tests.browser import Browser, available

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not available(), reason="chromium is not installed")]

DATA = Path(__file__).parent / "data"
PPDET = DATA / "ppdet"
LONG80 = PPDET / "picodet_s_320_coco_long80e.log"
SHORT = PPDET / "picodet_s_320_coco_train.log"
CRASH = PPDET / "picodet_s_320_coco_nan_crash.log"
DRAWN = "document.documentElement.dataset.drawn === '1'"
# the realrun fixtures: logs and output folders of real trainings (see RECIPE-realrun.md)
REALRUN = sorted(p for p in PPDET.glob("*.log") if not p.name.startswith("public_")) + sorted(
    p for p in (DATA / "llamafactory").iterdir() if p.is_dir()) + sorted(
    p for p in (DATA / "events").iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def browser():
    with Browser(width=1400, height=1000) as b:
        yield b


@pytest.fixture(scope="module")
def compare(browser, tmp_path_factory):
    """The 80-epoch run, a 2-epoch run and the run whose loss blows up to 93,280."""
    path = tmp_path_factory.mktemp("cmp") / "cmp.html"
    runs = [load(str(p)) for p in (LONG80, SHORT, CRASH)]
    return _open(browser, runs, path), runs


def _open(browser, runs, path: Path, **kw):
    render.write_html(build(runs, **kw), str(path))
    page = browser.open(path.as_uri())
    page.wait_for(DRAWN, 60)
    return page


def _chart(page, title: str) -> str:
    return page.eval(f"logreport.state.data.charts.filter(c => c.title === {json.dumps(title)})"
                     "[0].id")


def test_headline_of_every_realrun_fixture_matches_its_summary(browser, tmp_path):
    page = _open(browser, [load(str(LONG80))], tmp_path / "h.html")
    for path, run in ((p, r) for p in REALRUN for r in load_all([str(p)])):
        s = summarize(run)
        data = build([run])
        # the headline only: charts held back while the data is swapped (other tests draw)
        page.eval("var P = logreport.state.plotly; logreport.state.plotly = null; "
                  f"logreport.update({json.dumps(data)}); logreport.state.plotly = P")
        text = page.eval("document.querySelector('#headline .sentence').textContent")
        assert text == headline.sentence(s, headline.loss_change(run)), path.name
        start = {"finished": "Finished ", "failed": f"Failed at step {s['last_step']} ",
                 "unknown": f"Stopped at step {s['last_step']} "}[s["status"]]
        assert text.startswith(start if s["train_records"] else f"{s['eval_records']} "), path
        if s["wall_seconds"] is not None and s["status"] != "failed" and s["train_records"]:
            assert present.duration(s["wall_seconds"]) in text, path.name
        if s["best"]:
            assert f"{s['best']['metric']} {present.number(s['best']['value'])}" in text, path
        if s["status"] == "failed":
            assert s["status_evidence"][:40] in text, path.name
        else:
            assert all(a["kind"] in text for a in s["anomalies"]), path.name
        loss = main_loss(run)
        last = s["final"].get(loss)
        if isinstance(last, float):          # a number ("nan" would not be the last shown)
            assert f"→ {present.number(last)}." in text, path.name
        cards = page.eval("Array.from(document.querySelectorAll('#headline .hcard .v'))"
                          ".map(e => e.textContent)")
        assert cards[0] == s["status"] and present.duration(s["wall_seconds"]) in cards
        assert page.errors == [], path.name


def test_compare_keeps_the_healthy_runs_scale(compare):
    page, runs = compare
    loss = _chart(page, "loss")
    low, high = page.eval(f"document.getElementById('{loss}')._fullLayout.yaxis.range")
    healthy = np.concatenate([r.arrays("train", "loss")["value"] for r in runs[:2]])
    long80 = runs[0].arrays("train", "loss")["value"]
    assert healthy.min() - 0.2 * np.ptp(healthy) <= low <= long80.min()
    assert long80.max() <= high <= healthy.max() + 0.2 * np.ptp(healthy)
    # the blown-up values stay on the chart as markers at its top edge, their value on hover
    edges = page.eval(f"document.getElementById('{loss}').data.filter(t => t.meta && "
                      "t.meta.kind === 'edge').map(t => ({run: t.meta.run, y: Array.from(t.y), "
                      "v: Array.from(t.customdata)}))")
    crash = runs[2].arrays("train", "loss")["value"]
    assert {e["run"] for e in edges} == {2}
    assert sorted(v for e in edges for v in e["v"]) == sorted(crash[crash > high].tolist())
    assert all(y == high for e in edges for y in e["y"])
    # the switch off: the range holds every value again
    page.eval("var o = document.getElementById('outliers'); o.checked = false;"
              "o.dispatchEvent(new Event('change'))")
    page.wait_for(f"document.getElementById('{loss}')._fullLayout.yaxis.range[1] > 90000")
    page.eval("var o = document.getElementById('outliers'); o.checked = true;"
              "o.dispatchEvent(new Event('change'))")
    page.wait_for(f"document.getElementById('{loss}')._fullLayout.yaxis.range[1] < 100")
    assert page.errors == []


def test_no_drawn_trace_holds_coco_minus_one(compare, browser, tmp_path):
    page, _ = compare
    single = _open(browser, [load(str(LONG80)), load(str(PPDET / "ppyoloe_crn_s_coco_evalonly_"
                                                                 "classwise.log"))],
                   tmp_path / "ap.html")
    for p in (page, single):
        got = p.eval("logreport.state.data.charts.filter(c => c.phase === 'eval').map(c => {"
                     "var gd = document.getElementById(c.id); return {title: c.title, "
                     "range: gd._fullLayout.yaxis.range, y: [].concat.apply([], gd.data.map("
                     "t => Array.from(t.y || []).filter(v => v !== null)))}; })")
        coco = [g for g in got if " A" in g["title"]]
        assert len(coco) == 4
        for g in coco:
            assert -1 not in g["y"] and g["range"][0] > -0.5, g["title"]
    assert single.errors == []


def test_anomaly_banner_scrolls_to_its_chart_and_marks_the_point(compare):
    page, _ = compare
    items = page.eval("Array.from(document.querySelectorAll('#banner button'))"
                      ".map(b => b.textContent)")
    assert items[0].startswith("picodet_s_320_coco_nan_crash.log · divergence at step 1, loss: ")
    page.eval("window.scrollTo(0, 0); document.querySelector('#banner button').click()")
    loss = _chart(page, "loss")
    page.wait_for(f"(document.getElementById('{loss}').layout.annotations || [])"
                  ".some(a => a.text === 'divergence')")
    top = page.eval(f"document.getElementById('{loss}-card').getBoundingClientRect().top")
    assert 0 <= top < page.eval("window.innerHeight")
    note = page.eval(f"document.getElementById('{loss}').layout.annotations"
                     ".filter(a => a.text === 'divergence')[0]")
    assert note["x"] == 1                                          # step 1, the 1808.51 record
    assert page.eval(f"document.getElementById('{loss}-card').classList.contains('flash')")


def test_headline_rows_of_a_comparison(compare):
    page, runs = compare
    rows = page.eval("Array.from(document.querySelectorAll('#headline-table tr.run'))"
                     ".map(tr => Array.from(tr.children).map(c => [c.firstChild.textContent,"
                     " c.className]))")
    assert [r[0][0] for r in rows] == [run.name for run in runs]
    best = {i: [c[0] for c in r if "best" in c[1]] for i, r in enumerate(rows)}
    assert "0.096" in best[0]                                       # best bbox/AP
    sentences = page.eval("Array.from(document.querySelectorAll('#headline-table "
                          "td.sentence-cell')).map(td => td.textContent)")
    assert sentences[2].startswith("Failed at step 3 (epoch 0): divergence")


def test_evaluation_table_sorts_and_marks_the_best(browser, tmp_path):
    page = _open(browser, [load(str(LONG80))], tmp_path / "ev.html")
    head = page.eval("Array.from(document.querySelectorAll('#evaltables th'))"
                     ".map(th => th.textContent)")
    assert head[:4] == ["epoch", "step", "elapsed", "bbox/AP"]
    best = page.eval("Array.from(document.querySelectorAll('#evaltables td.best'))"
                     ".map(td => td.textContent)")
    assert "0.096" in best
    page.eval("document.querySelectorAll('#evaltables th')[3].click()")       # by AP, down
    first = page.eval("document.querySelector('#evaltables tbody tr').children[3].textContent")
    assert first == "0.096"
    # the 0.096 is stated before the first chart, with the run's duration
    before = page.eval("document.getElementById('headline').textContent")
    assert "0.096" in before and "7m 23s" in before
    assert page.errors == []


def test_chart_downloads_svg_and_png_and_copies_csv(browser, tmp_path):
    page = _open(browser, [load(str(LONG80))], tmp_path / "fig.html")
    folder = tmp_path / "downloads"
    folder.mkdir()
    browser.send("Browser.setDownloadBehavior", {"behavior": "allow",
                                                  "downloadPath": str(folder)})
    loss = _chart(page, "loss")
    page.eval(f"document.querySelector('#{loss}-card button[data-act=svg]').click()")
    page.eval(f"document.querySelector('#{loss}-card button[data-act=png]').click()")
    svg, png = _downloaded(folder, ".svg"), _downloaded(folder, ".png")
    root = ET.parse(svg).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "loss" in {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = page.eval(f"logreport.csv('{loss}')").splitlines()
    assert lines[0] == "run,phase,metric,step,epoch,hours,value" and len(lines) == 81
    assert {line.split(",")[2] for line in lines[1:]} == {"loss"}
    button = f"document.querySelector('#{loss}-card button[data-act=csv]')"
    page.eval(f"{button}.click()")
    page.wait_for(f"{button}.textContent === 'copied'")
    assert page.errors == []


def _downloaded(folder: Path, suffix: str, timeout: float = 20.0) -> Path:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done = [p for p in folder.iterdir() if p.suffix == suffix and p.stat().st_size]
        if done:
            return done[0]
        time.sleep(0.05)
    raise AssertionError(f"no {suffix} downloaded")


def test_hover_shows_every_chart_of_the_section(browser, tmp_path):
    """The mouse on a point of the loss chart: the other losses show their values at that
    step; a chart of another section shows nothing."""
    run = load(str(LONG80))
    page = _open(browser, [run], tmp_path / "hover.html")
    loss, vfl, lr = _chart(page, "loss"), _chart(page, "loss_vfl"), _chart(page, "learning rate")
    page.eval(f"document.getElementById('{loss}-card').scrollIntoView({{block: 'center'}})")
    x, y, step = page.eval(f"""(function () {{ var gd = document.getElementById('{loss}'),
        r = gd.querySelector('.nsewdrag').getBoundingClientRect(), t = gd.data[1];
        return [r.left + gd._fullLayout.xaxis.l2p(t.x[40]), r.top + gd._fullLayout.yaxis.l2p(t.y[40]),
                t.x[40]]; }})()""")
    page.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
    page.wait_for(f"document.querySelector('#{vfl} .hoverlayer').textContent")
    shown = page.eval(f"document.querySelector('#{vfl} .hoverlayer').textContent")
    assert step in run.arrays("train", "loss_vfl")["step"]
    assert shown.startswith(f"loss_vfl({present.number(step)}, ")        # its value at the step
    assert page.eval(f"document.querySelector('#{lr} .hoverlayer').textContent") == ""
    assert page.errors == []


def test_phone_width_one_chart_per_row_no_horizontal_scroll(tmp_path):
    with Browser(width=390, height=900) as phone:
        for name, runs in (("one", [LONG80]), ("cmp", [LONG80, SHORT, CRASH]),
                           ("sft", [DATA / "llamafactory" / "sft_lora"])):
            page = _open(phone, [load(str(p)) for p in runs], tmp_path / f"{name}.html")
            assert page.eval("document.documentElement.scrollWidth") <= 390, name
            lefts = page.eval("Array.from(document.querySelectorAll('#sections .sec:not(.folded)"
                              " .card')).map(c => c.getBoundingClientRect().left)")
            assert lefts and len(set(lefts)) == 1, name
            assert page.errors == [], name


def test_print_starts_each_section_on_a_page_with_every_section_open(compare):
    page, _ = compare
    page.send("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        breaks = page.eval("Array.from(document.querySelectorAll('.sec')).map(s => "
                           "getComputedStyle(s).breakBefore)")
        heights = page.eval("Array.from(document.querySelectorAll('.sec > .body'))"
                            ".map(b => b.offsetHeight)")
        assert set(breaks) == {"page"} and min(heights) > 0
        assert page.eval("getComputedStyle(document.getElementById('controls')).display") == \
            "none"
    finally:
        page.send("Emulation.setEmulatedMedia", {"media": ""})
    pdf = page.send("Page.printToPDF", {})["data"]
    assert len(pdf) > 10_000
