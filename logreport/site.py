"""What a site shows of its runs: a run at a glance (its catalog figures and its row of the
index page, every text through `present`), the data the page's "compare" draws, and the index
page itself (templates/index.html.j2).

The page is one self-contained file: its rows are JSON in a <script type="application/json">;
sorting, filtering, grouping and comparing happen in the page. "compare" loads the chosen
runs' `runs/<id>.data.js` (a script element works from disk, where fetch does not) and the
site's one copy of plotly.js.
"""
from __future__ import annotations

import math
import os
from datetime import datetime

import numpy as np

from . import __version__, present
from .analysis import applicable, main_eval_metric, main_loss, values
from .events import EVAL, TRAIN
from .model import Run, iso_time
from .render import SHARED_PLOTLY, environment, page_json, write_atomic

PLOTLY = SHARED_PLOTLY
SPARK_POINTS = 40        # points of a sparkline
SERIES_POINTS = 300      # points of a series in the compare view
EVAL_SERIES = 12         # eval metrics of a run in the compare view, at most


def page_path(site: str, run_id: str) -> str:
    return os.path.join(site, "runs", f"{run_id}.html")


def data_path(site: str, run_id: str) -> str:
    return os.path.join(site, "runs", f"{run_id}.data.js")


# --- a run at a glance ------------------------------------------------------------------
def catalog_row(run_id: str, name: str, run: Run, summary: dict) -> dict:
    """The run's figures as catalog columns (catalog.RUN_COLUMNS), its page row in `view`."""
    loss = main_loss(run)
    final = summary["final"].get(loss) if loss else None
    best = summary["best"] or {}
    speed = summary["throughput"] or {}
    progress = summary["progress"] or {}
    started, ended = span(run)
    return {
        "id": run_id, "name": name, "folder": os.path.dirname(name), "source": run.source,
        "format": summary["format"], "status": summary["status"],
        "status_evidence": summary["status_evidence"],
        "started": _micros(started), "ended": _micros(ended), "modified": _micros(modified(run)),
        "wall_seconds": summary["wall_seconds"], "eta_seconds": summary["eta_seconds"],
        "progress_percent": progress.get("percent"), "last_step": summary["last_step"],
        "total_steps": summary["total_steps"], "last_epoch": summary["last_epoch"],
        "train_records": summary["train_records"], "eval_records": summary["eval_records"],
        "loss_metric": loss, "final_loss": _float(final),
        "best_metric": best.get("metric"), "best_value": _float(best.get("value")),
        "best_step": best.get("step"), "best_epoch": best.get("epoch"),
        "throughput_metric": speed.get("metric"), "throughput": _float(speed.get("median")),
        "anomalies": len(summary["anomalies"]),
        "anomaly_kinds": sorted({a["kind"] for a in summary["anomalies"]}),
        "unparsed_lines": summary["unparsed_lines"], "summary": summary,
        "facts": {k: v for k, v in run.info.items() if _plain_json(v)},
        "view": row_view(run_id, name, run, summary),
        "logreport_version": __version__,
        "indexed_at": _micros(_local(datetime.now().timestamp())),
    }


def row_view(run_id: str, name: str, run: Run, summary: dict, live: bool = False) -> dict:
    """The run's row of the index page: values to sort by, texts to show (present), the
    sparklines of its loss and main eval metric."""
    loss, metric = main_loss(run), main_eval_metric(run)
    final = summary["final"].get(loss) if loss else None
    progress = summary["progress"] or {}
    started, _ = span(run)
    running = summary["status"] == "running"
    best = summary["best"]
    return {
        "id": run_id, "name": name, "folder": os.path.dirname(name),
        "format": summary["format"] or "", "status": summary["status"],
        "status_text": present.status(summary), "evidence": summary["status_evidence"],
        "started": started, "started_text": (iso_time(started) or "")[:16].replace("T", " "),
        "duration": summary["wall_seconds"], "duration_text": present.duration(summary["wall_seconds"]),
        "progress": progress.get("percent") if running else None,
        "progress_text": present.percent(progress.get("percent")) if running else "",
        "eta_text": present.duration(summary["eta_seconds"]) if running else "",
        "steps": summary["last_step"],
        "steps_text": present.step_of(summary["last_step"], summary["total_steps"],
                                     summary.get("last_step_estimated")),
        "best": _finite(best["value"]) if best else None, "best_text": present.best(best),
        "loss": _finite(final), "loss_text": present.number(final),
        "loss_metric": loss or "",
        "anomalies": len(summary["anomalies"]),
        "anomalies_text": present.kinds(summary["anomalies"]) if summary["anomalies"] else "",
        "spark_loss": _spark(run, TRAIN, loss), "spark_eval": _spark(run, EVAL, metric),
        "spark_eval_metric": metric or "", "live": live,
    }


def span(run: Run) -> tuple[float | None, float | None]:
    """First and last time stamp of the run on its log's clock (those wall_seconds spans)."""
    if run.timed_train and run.first_time is not None:
        return run.first_time, run.last_time
    if run.clock is not None:
        return run.clock
    return run.first_time, run.last_time


def modified(run: Run) -> float | None:
    """When its files last changed, on the local clock (as log time stamps are)."""
    return None if run.modified is None else _local(run.modified)


def _local(t: float) -> float:
    return (datetime.fromtimestamp(t) - datetime(1970, 1, 1)).total_seconds()


def _micros(t: float | None) -> int | None:
    return None if t is None else int(round(t * 1e6))


def _float(value) -> float | None:
    """A summary value for a DOUBLE column (nan/inf given as strings by the summary)."""
    if value is None:
        return None
    return float(value)


def _finite(value) -> float | None:
    value = _float(value)
    return value if value is not None and math.isfinite(value) else None


def _plain_json(value) -> bool:
    return isinstance(value, (str, int, bool)) or (isinstance(value, float) and math.isfinite(value))


def _points(run: Run, phase: str, metric: str | None, most: int) -> tuple[list, list]:
    """(steps, values) of a metric's usable values (finite, not "not applicable"), at most
    `most` of them (LTTB over their order); a step the log does not give is the ordinal; a
    None in both lists marks a new segment."""
    if not metric or metric not in run.metric_names(phase):
        return [], []
    steps, _, _, vals = values(run, phase, metric)
    keep = applicable(run, metric, vals)
    order = np.arange(len(vals), dtype=np.float64)
    steps = np.where(np.isnan(steps), order, steps)[keep]
    segment = np.concatenate([np.full(len(t.series[metric]), s.index) for s, t in run.tables(phase)
                              if metric in t.series])[keep]
    vals, order = vals[keep], order[keep]
    if len(vals) > most:
        from tsdownsample import LTTBDownsampler

        pick = LTTBDownsampler().downsample(order, vals, n_out=most)
        steps, vals, segment = steps[pick], vals[pick], segment[pick]
    xs: list = []
    ys: list = []
    for i, (x, y) in enumerate(zip(steps.tolist(), vals.tolist())):
        if i and segment[i] != segment[i - 1]:
            xs.append(None)
            ys.append(None)
        xs.append(int(x) if float(x).is_integer() else x)
        ys.append(y)
    return xs, ys


def _spark(run: Run, phase: str, metric: str | None) -> list:
    """A sparkline: values only, 4 significant digits."""
    _, ys = _points(run, phase, metric, SPARK_POINTS)
    return [float(f"{y:.4g}") for y in ys if y is not None]


# --- compare data -----------------------------------------------------------------------
def run_data(run_id: str, name: str, run: Run, summary: dict) -> dict:
    """What the compare view draws of a run: its main loss, learning rate, throughput and eval
    metrics (main first), SERIES_POINTS points each at most."""
    train = [m for m in (main_loss(run), "learning_rate",
                         (summary["throughput"] or {}).get("metric")) if m]
    main = main_eval_metric(run)
    evals = ([main] if main else []) + [m for m in run.metric_names(EVAL) if m != main]
    series = {}
    for phase, names in ((TRAIN, train), (EVAL, evals[:EVAL_SERIES])):
        for metric in dict.fromkeys(names):
            xs, ys = _points(run, phase, metric, SERIES_POINTS)
            if ys:
                series.setdefault(phase, {})[metric] = {"x": xs, "y": ys}
    return {"id": run_id, "name": name, "series": series}


def run_data_js(run_id: str, name: str, run: Run, summary: dict) -> str:
    """runs/<id>.data.js: the run's compare data, JSON handed to the index page's loader (a
    script element loads it from disk too, where fetch cannot)."""
    return f"window.logreportRunData({page_json(run_data(run_id, name, run, summary))});\n"


def write_run_data(site: str, run_id: str, name: str, run: Run, summary: dict) -> None:
    path = data_path(site, run_id)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, run_data_js(run_id, name, run, summary))


# --- the index page ---------------------------------------------------------------------
LABELS = {
    "en": {
        "title": "Runs", "name": "run", "format": "format", "status": "status",
        "started": "started", "duration": "duration", "progress": "progress / ETA",
        "steps": "steps", "best": "best (@ epoch)", "loss": "final loss",
        "anomalies": "anomalies", "spark_loss": "loss", "spark_eval": "eval",
        "filter": "filter", "all": "all", "group": "group by folder", "compare": "compare",
        "close": "close", "select_hint": "select 2 to 8 runs to compare",
        "runs_shown": "runs shown", "of": "of", "finished": "finished", "failed": "failed",
        "running": "running", "unknown": "unknown", "live": "live", "loading": "loading…",
        "missing": "could not load the data of", "train": "training", "eval": "evaluation",
        "generated": "generated by logreport", "top": "(top folder)",
    },
    "zh": {
        "title": "运行列表", "name": "运行", "format": "格式", "status": "状态",
        "started": "开始时间", "duration": "耗时", "progress": "进度 / 预计剩余",
        "steps": "步数", "best": "最佳（@ 轮次）", "loss": "最终损失",
        "anomalies": "异常", "spark_loss": "损失", "spark_eval": "评估",
        "filter": "筛选", "all": "全部", "group": "按文件夹分组", "compare": "对比",
        "close": "关闭", "select_hint": "选择 2 到 8 个运行进行对比",
        "runs_shown": "个运行已显示", "of": "共", "finished": "已完成", "failed": "失败",
        "running": "运行中", "unknown": "未知", "live": "实时", "loading": "加载中…",
        "missing": "无法加载数据：", "train": "训练", "eval": "评估",
        "generated": "由 logreport 生成", "top": "（顶层文件夹）",
    },
}


def render_index(views: list[dict], lang: str = "en", title: str | None = None,
                 live: bool = False, live_version: int = 0) -> str:
    """The index page of these rows (live: served by `logreport serve`, updated in place from
    its version `live_version` on)."""
    labels = LABELS.get(lang, LABELS["en"])
    data = {"rows": views, "labels": labels, "lang": lang, "live": live,
            "live_version": live_version, "plotly": PLOTLY, "version": __version__}
    template = environment().get_template("index.html.j2")
    return template.render(title=title or labels["title"], lang=lang, data_json=page_json(data))


def write_index(site: str, views: list[dict], lang: str = "en", title: str | None = None) -> str:
    path = os.path.join(site, "index.html")
    write_atomic(path, render_index(views, lang, title))
    return path
