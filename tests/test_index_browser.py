"""The index page of a site of real runs in headless Chromium, opened from disk: sort, filter,
group, and "compare" opens with the runs chosen; a hostile run name stays text."""
from __future__ import annotations

import json
import shutil

import pytest
from test_index import DET, LLM, tree

from logreport import catalog
from logreport.index import index
from tests.browser import Browser, available

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not available(), reason="chromium is not installed")]
HOSTILE = "<img src=x onerror=window.__pwned=1>.log"
NAMES = "Array.from(document.querySelectorAll('#runs tbody td.name')).map(td => td.textContent)"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tree(tmp_path_factory.mktemp("runs") / "runs")
    shutil.copy(DET[0], root / "det" / HOSTILE)
    out = tmp_path_factory.mktemp("site")
    index([str(root)], str(out), jobs=2)
    con = catalog.connect(str(out), read_only=True)
    try:
        views = catalog.views(con)
    finally:
        con.close()
    return out, views


@pytest.fixture(scope="module")
def page(site):
    with Browser() as b:
        page = b.open((site[0] / "index.html").as_uri())
        page.wait_for("document.documentElement.dataset.ready === '1'")
        yield page
        assert page.errors == [] and page.requests == []


def _set(page, element: str, value) -> None:
    prop = "checked" if element == "group" else "value"
    page.eval(f"(e => {{ e.{prop} = {json.dumps(value)}; "
              f"e.dispatchEvent(new Event('input')); }})(document.getElementById('{element}'))")


def test_every_run_is_a_row_and_a_hostile_name_stays_text(page, site):
    names = page.eval(NAMES)
    assert names == [v["name"] for v in site[1]] and len(names) == len(DET) + len(LLM) + 1
    assert f"det/{HOSTILE}" in names and page.eval("window.__pwned") is None
    assert page.eval("document.querySelectorAll('#runs tbody svg.spark polyline').length") > 20


def test_sort_by_a_column_both_ways_missing_values_last(page, site):
    views = site[1]
    page.eval("document.querySelector('th[data-key=best]').click()")
    up = [v["name"] for v in sorted(views, key=lambda v: (v["best"] is None, v["best"] or 0))]
    assert page.eval(NAMES) == up
    page.eval("document.querySelector('th[data-key=best]').click()")
    down = [v["name"] for v in sorted(views, key=lambda v: (v["best"] is None, -(v["best"] or 0)))]
    assert page.eval(NAMES) == down
    page.eval("document.querySelector('th[data-key=duration]').click()")
    by_time = sorted(views, key=lambda v: (v["duration"] is None, v["duration"] or 0))
    assert page.eval(NAMES) == [v["name"] for v in by_time]
    page.eval("window.logreportIndex.sortBy('name')")


def test_filter_by_status_format_and_text_and_group_by_folder(page, site):
    views = site[1]
    _set(page, "status", "failed")
    assert page.eval(NAMES) == [v["name"] for v in views if v["status"] == "failed"] != []
    _set(page, "status", "")
    _set(page, "format", "llamafactory")
    assert page.eval(NAMES) == [v["name"] for v in views if v["format"] == "llamafactory"]
    _set(page, "format", "")
    _set(page, "text", "YOLOV3")
    assert page.eval(NAMES) == [v["name"] for v in views if "yolov3" in v["name"]] != []
    _set(page, "text", "")
    _set(page, "group", True)
    groups = page.eval("Array.from(document.querySelectorAll('#runs tr.group')).map(t => t.textContent)")
    assert groups == [f"▾ det ({len(DET) + 1})", f"▾ llm ({len(LLM)})"]
    page.eval("document.querySelector('#runs tr.group').click()")          # collapse det
    assert page.eval(NAMES) == [f"llm/{n}" for n in sorted(LLM)]
    page.eval("document.querySelector('#runs tr.group').click()")
    _set(page, "group", False)
    assert len(page.eval(NAMES)) == len(views)


def test_compare_opens_with_the_runs_chosen(page, site):
    chosen = [v for v in site[1] if v["name"] in ("llm/sft_lora", "llm/dpo_lora",
                                                   "det/picodet_s_320_coco_long80e.log")]
    button = "document.getElementById('compare-button')"
    page.eval(f"document.querySelector('input[data-id=\"{chosen[0]['id']}\"]').click()")
    assert page.eval(f"{button}.disabled") is True                 # one run: nothing to compare
    for v in chosen[1:]:
        page.eval(f"document.querySelector('input[data-id=\"{v['id']}\"]').click()")
    assert page.eval(f"{button}.disabled") is False
    page.eval(f"{button}.click()")
    ids = ",".join(sorted(v["id"] for v in chosen))
    page.wait_for(f"(document.documentElement.dataset.compared || '').split(',').sort().join(',') "
                  f"=== '{ids}'")
    heads = page.eval("Array.from(document.querySelectorAll('#compare-table thead th a'))"
                      ".map(a => a.textContent)")
    assert sorted(heads) == sorted(v["name"] for v in chosen)
    legends = page.eval("Array.from(document.querySelectorAll('#charts .legendtext'))"
                        ".map(t => t.textContent)")
    assert set(legends) == {v["name"] for v in chosen}
    assert page.eval("document.querySelectorAll('#charts .main-svg').length") >= 2
    assert page.eval("document.getElementById('list').offsetParent") is None     # list hidden
    page.eval("document.getElementById('close').click()")
    assert page.eval("document.body.classList.contains('comparing')") is False


def test_a_run_page_of_the_site_draws_with_the_shared_plotly(site):
    run = next(v for v in site[1] if v["name"] == "llm/sft_lora")
    with Browser() as b:
        page = b.open((site[0] / "runs" / f"{run['id']}.html").as_uri())
        page.wait_for("document.documentElement.dataset.drawn === '1'")
        assert page.eval("typeof window.Plotly") == "object"       # from ../assets/plotly.min.js
        assert page.eval("document.querySelectorAll('.main-svg').length") > 0
        assert page.errors == [] and page.requests == []
