"""Report size and draw time in headless Chromium (targets: <= 1 MB, all charts <= 1.5 s).

usage: python bench/report_size.py [WORKDIR]

Cases: PaddleDetection logs of 300k and 1M steps (../shared/checks/genbig.py: 5 losses, lr,
speed, memory, a COCO table per epoch) and a 3-run comparison (300k, 200k and 100k steps).
Baseline, measured in the same run: plotly.py's own write_html (full plotly.js inlined) of one
chart holding the same main-loss points.
Times are medians of 3 page loads; "first chart" is when the first chart is drawn, "all charts"
when every chart is.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from logreport import render  # noqa: E402
from logreport.reader import load  # noqa: E402
from logreport.report import build  # noqa: E402
from tests.browser import Browser  # noqa: E402

GENBIG = Path(os.environ.get("GENBIG", "/work/shared/checks/genbig.py"))
LOADS = 3


def log_of(work: Path, steps: int) -> Path:
    path = work / f"ppdet_{steps}.log"
    if not path.exists():
        subprocess.run([sys.executable, str(GENBIG), str(path), str(steps)], check=True)
    return path


def our_page(logs: list[Path], out: Path) -> tuple[int, float, float, int]:
    t0 = time.perf_counter()
    runs = [load(str(p)) for p in logs]
    t1 = time.perf_counter()
    data = build(runs)
    render.write_html(data, str(out))
    return out.stat().st_size, time.perf_counter() - t1, t1 - t0, len(data["charts"])


def baseline_page(log: Path, out: Path) -> int:
    import plotly.graph_objects as go

    from logreport.report import trace, unpack

    t = trace(load(str(log)), "train", "loss")
    go.Figure(go.Scatter(x=unpack(t["x"]), y=unpack(t["y"]))).write_html(
        str(out), include_plotlyjs=True)
    return out.stat().st_size


def draw_times(browser: Browser, page_path: Path, ours: bool) -> tuple[float, float]:
    firsts, alls = [], []
    for _ in range(LOADS):
        page = browser.open(page_path.as_uri())
        if ours:
            page.wait_for("document.documentElement.dataset.drawn === '1'", 60)
            firsts.append(page.eval("logreport.firstChartMs"))
            alls.append(page.eval("logreport.firstDrawMs"))
            assert not page.errors and not page.requests, (page.errors, page.requests)
        else:  # plotly.py draws in an inline script, before DOMContentLoaded ends
            page.wait_for("document.querySelector('.main-svg')", 60)
            t = page.eval("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
            firsts.append(t)
            alls.append(t)
        page.send("Page.close")
    return statistics.median(firsts) / 1000, statistics.median(alls) / 1000


def main() -> None:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="bench-"))
    work.mkdir(parents=True, exist_ok=True)
    big, mid, small = log_of(work, 300_000), log_of(work, 200_000), log_of(work, 100_000)
    cases = {"300k-step ppdet": [big], "1M-step ppdet": [log_of(work, 1_000_000)],
             "3-run compare": [big, mid, small]}
    base_path = work / "baseline.html"
    base_size = baseline_page(big, base_path)
    with Browser() as browser:
        base_first, _ = draw_times(browser, base_path, ours=False)
        print(f"baseline plotly.py write_html, 1 chart: {base_size / 1e6:.2f} MB, "
              f"first draw {base_first:.2f} s")
        ok = True
        for name, logs in cases.items():
            out = work / (name.replace(" ", "_") + ".html")
            size, build_s, load_s, charts = our_page(logs, out)
            first, every = draw_times(browser, out, ours=True)
            ok &= size <= 1_000_000 and every <= 1.5
            print(f"{name}, {charts} charts: {size / 1e6:.3f} MB ({size / base_size:.2f}x baseline), "
                  f"first chart {first:.2f} s ({first / base_first:.2f}x baseline), "
                  f"all charts {every:.2f} s; parse {load_s:.1f} s, build+render {build_s:.1f} s")
    print("targets (<= 1 MB, all charts drawn <= 1.5 s):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
