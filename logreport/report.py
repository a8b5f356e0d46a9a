"""build(runs) -> ReportData: one JSON-ready dict that drives the HTML page and live views."""
from __future__ import annotations

import math

from . import __version__
from .analysis import is_loss, main_loss, summarize, values
from .events import CHECKPOINT, EVAL, FINAL, RESUME, TABLE, TRAIN
from .model import Run, iso_time

# Train metrics that are bookkeeping, not worth a chart of their own.
HIDDEN = {"eta_seconds", "epoch", "total_flos", "current_steps", "total_steps", "percentage",
          "elapsed_time", "remaining_time"}
THROUGHPUT = ("ips", "throughput", "samples_per_second", "steps_per_second", "tokens_per_second")


def build(runs: list[Run], title: str | None = None, lang: str = "en") -> dict:
    """The report data of one or several runs."""
    summaries = [summarize(run) for run in runs]
    return {
        "title": title or " vs ".join(run.name for run in runs),
        "lang": lang,
        "version": __version__,
        "runs": [_run_data(run, s) for run, s in zip(runs, summaries)],
        "charts": charts(runs),
    }


def _run_data(run: Run, summary: dict) -> dict:
    return {
        "name": run.name,
        "summary": summary,
        "facts": {
            "format": run.format,
            "files": list(run.files),
            "first_time": iso_time(run.first_time),
            "last_time": iso_time(run.last_time),
            "lines": run.lines,
            "segments": [seg.label for seg in run.segments if not seg.is_empty()],
            **{k: v for k, v in run.info.items() if isinstance(v, (str, int, float))},
        },
        "series": _series(run),
        "markers": [_marker(m) for m in run.markers if m.kind in (CHECKPOINT, RESUME)][:500],
        "tables": [m.detail for m in run.markers if m.kind == TABLE],
    }


def _series(run: Run) -> dict:
    """{phase: {metric: {"step", "epoch", "time", "y"}}} with non-finite values as strings."""
    out: dict = {}
    for phase in (TRAIN, EVAL, FINAL):
        for name in run.metric_names(phase):
            steps, epochs, _, vals = values(run, phase, name)
            times = [t for _, t in _times(run, phase, name)]
            out.setdefault(phase, {})[name] = {
                "step": [_clean(x) for x in steps],
                "epoch": [_clean(x) for x in epochs],
                "time": times,
                "y": [_value(v) for v in vals],
            }
    return out


def _times(run: Run, phase: str, name: str):
    for _, table in run.tables(phase):
        series = table.series.get(name)
        if series is not None:
            for i in series.rec:
                yield i, _clean(table.time[i])


def _clean(x: float):
    x = float(x)
    if math.isnan(x):
        return None
    return int(x) if x.is_integer() else x


def _value(v: float):
    if math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def _marker(m) -> dict:
    return {"kind": m.kind, "step": m.step, "line": m.line, "detail": str(m.detail)[:200]}


def charts(runs: list[Run]) -> list[dict]:
    """Which charts the page draws: [{"id", "title", "phase", "metrics"}]."""
    train: dict[str, None] = {}
    evals: dict[str, None] = {}
    for run in runs:
        train.update(dict.fromkeys(run.metric_names(TRAIN)))
        evals.update(dict.fromkeys(run.metric_names(EVAL)))
    out: list[dict] = []
    mains = {main_loss(run) for run in runs} - {None}
    for name in mains:
        out.append(_chart(name, TRAIN, [name]))
    for name in train:
        if is_loss(name) and name not in mains:
            out.append(_chart(name, TRAIN, [name]))
    if "learning_rate" in train:
        out.append(_chart("learning rate", TRAIN, ["learning_rate"]))
    speed = [n for n in train if n in THROUGHPUT or n.endswith(THROUGHPUT)]
    if speed:
        out.append(_chart("throughput", TRAIN, speed))
    cost = [n for n in ("batch_cost", "data_cost") if n in train]
    if cost:
        out.append(_chart("seconds per iteration", TRAIN, cost))
    shown = {m for c in out for m in c["metrics"]}
    for name in train:
        if name not in shown and name not in HIDDEN and name not in cost:
            out.append(_chart(name, TRAIN, [name]))
    groups: dict[str, list[str]] = {}
    for name in evals:
        if name == "fps":
            continue
        task, _, short = name.rpartition("/")
        key = f"{task}/{short[:2]}" if task and short[:2] in ("AP", "AR") else name
        groups.setdefault(key, []).append(name)
    for key, names in groups.items():
        out.append(_chart(key if len(names) > 1 else names[0], EVAL, names))
    for i, chart in enumerate(out):
        chart["id"] = f"chart{i}"
    return out


def _chart(title: str, phase: str, metrics: list[str]) -> dict:
    return {"title": title, "phase": phase, "metrics": metrics}
