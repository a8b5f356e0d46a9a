"""The report's evaluation tables: one row per evaluation x the main eval metrics, best per
column; and, when the log prints per-category tables at several evaluations, one table of
categories x evaluations (the page colours it as a heat map).

Texts are written here (`present`); the page only lays them out, sorts and colours them.
"""
from __future__ import annotations

import math
import re

import numpy as np

from . import formats, present
from .analysis import evaluation_groups, judged, lower_is_better
from .events import EVAL, TABLE
from .headline import words
from .labels import LABELS
from .model import Run, plain

MAX_COLUMNS = 12       # metrics in the evaluation table
MAX_ROWS = 300         # evaluations shown (the last ones; the total is stated)
MAX_EVALS = 30         # evaluations in a per-category table (the last ones)
MAX_CELLS = 2500       # cells of one: COCO's 80 categories x 30 evaluations; with more
                       # categories fewer evaluations (at least 2), then the first rows only


def evaluations(run: Run, chart_list: list[dict], lang: str = "en") -> dict | None:
    """{"columns": [metric], "better": ["max"|"min"], "rows": [{"step", "epoch", "step_text",
    "epoch_text", "elapsed", "text", "values"}], "best": [[row index]] per column (of the log's
    last training or separate evaluation that has a value there: evaluation_groups; none for a
    column that is no score (`judged`: a runtime, a count) or where every value is the same),
    "total": evaluations, "unused": metrics without an applicable value}; None when the run
    has no evaluation."""
    columns = _columns(run, chart_list)
    if not columns:
        return None
    tagged = [(seg.index, row) for seg, table in run.tables(EVAL)
              for row in _rows(run, table, columns, lang)]
    rows = [row for _, row in tagged]
    used = [j for j in range(len(columns)) if any(r["values"][j] is not None for r in rows)]
    unused = [m for j, m in enumerate(columns) if j not in used]
    if unused:      # a column with no applicable value (COCO's APl at -1): named apart
        columns = [columns[j] for j in used]
        rows = [dict(r, text=[r["text"][j] for j in used], values=[r["values"][j] for j in used])
                for r in rows]
    if not columns:
        return None
    total = len(rows)
    rows = rows[-MAX_ROWS:]
    group = evaluation_groups(run, [s for s, _ in tagged]).tolist()[-MAX_ROWS:]
    better = ["min" if lower_is_better(m) else "max" for m in columns]
    best = []
    for j, direction in enumerate(better):
        last = next((g for g, r in zip(reversed(group), reversed(rows))
                     if r["values"][j] is not None), None)
        mine = [i for i, r in enumerate(rows) if r["values"][j] is not None and group[i] == last]
        vals = [rows[i]["values"][j] for i in mine]
        target = (min if direction == "min" else max)(vals) \
            if judged(columns[j]) and len(set(vals)) > 1 else None
        best.append([i for i in mine if rows[i]["values"][j] == target])
    return {"columns": columns, "better": better, "rows": rows, "best": best, "total": total,
            "unused": unused}


def _columns(run: Run, chart_list: list[dict]) -> list[str]:
    """The run's eval metrics of the Evaluation section, in chart order; the format's
    `eval_table` pattern narrows them (COCO: the AP figures, not the AR ones)."""
    have = set(run.metric_names(EVAL))
    names = [m for c in chart_list if c["phase"] == EVAL and c["section"] == "evaluation"
             for m in c["metrics"] if m in have]
    pattern = formats.describe(run.format).eval_table
    if pattern and any(re.search(pattern, m) for m in names):
        names = [m for m in names if re.search(pattern, m)]
    return list(dict.fromkeys(names))[:MAX_COLUMNS]


def _rows(run: Run, table, columns: list[str], lang: str) -> list[dict]:
    n = len(table)
    vals = np.full((n, len(columns)), np.nan)
    has = np.zeros((n, len(columns)), dtype=bool)
    for j, name in enumerate(columns):
        series = table.series.get(name)
        if series is not None:
            vals[series.rec, j] = np.asarray(series.value)
            has[series.rec, j] = True
    index = np.arange(n)
    steps, epochs, times, estimated = (column.take(index) for column in (
        table.step, table.epoch, table.time, table.estimated))
    origin = run.first_time
    out = []
    for i in np.flatnonzero(has.any(axis=1)):
        usable = [bool(has[i, j]) and _applicable(run, name, vals[i, j])
                  for j, name in enumerate(columns)]
        elapsed = times[i] - origin if origin is not None and math.isfinite(times[i]) else None
        out.append({"step": plain(steps[i]), "epoch": plain(epochs[i]),
                    "step_text": present.step_number(plain(steps[i]), bool(estimated[i]))
                    if math.isfinite(steps[i]) else "",
                    "epoch_text": present.number(plain(epochs[i])) if math.isfinite(epochs[i])
                    else "",
                    "elapsed": present.duration(elapsed, lang) if elapsed is not None else "",
                    "text": [_text(run, name, vals[i, j], has[i, j], lang)
                             for j, name in enumerate(columns)],
                    "values": [float(vals[i, j]) if ok else None for j, ok in enumerate(usable)]})
    return out


def _applicable(run: Run, name: str, value: float) -> bool:
    sentinel = formats.not_applicable(run.format, name)
    return math.isfinite(value) and value != sentinel


def _text(run: Run, name: str, value: float, has: bool, lang: str) -> str:
    if not has:
        return ""
    if math.isfinite(value) and value == formats.not_applicable(run.format, name):
        return LABELS.get(lang, LABELS["en"])["not_applicable"]
    return present.number(value)


# --- per-category tables over evaluations ----------------------------------------------
def heat_tables(run: Run, lang: str = "en") -> list[dict]:
    """Per-category tables printed at two or more evaluations, one per title and value
    column: {"title", "column", "evals": [label], "rows": [{"name", "cells": [text],
    "values": [number | None], "change": text}], "rows_omitted": categories not shown}
    (at most MAX_CELLS cells: a page stays under 1 MB with LVIS's 1203 categories)."""
    by_title: dict[str, list] = {}
    for m in run.markers:
        if m.kind == TABLE and isinstance(m.detail, dict) and m.detail.get("rows"):
            by_title.setdefault(str(m.detail.get("title") or ""), []).append(m)
    out = []
    for title, found in by_title.items():
        if len(found) < 2:
            continue
        categories = len({str(row[0]) for m in found for row in m.detail["rows"] if row})
        found = found[-max(2, min(MAX_EVALS, MAX_CELLS // max(1, categories))):]
        header = found[-1].detail.get("header") or []
        for j in range(1, max(2, len(header))):
            out.append(_heat(title, header[j] if j < len(header) else "", j, found, lang))
    return out


def _heat(title: str, column: str, j: int, found: list, lang: str) -> dict:
    w = words(lang)
    cells: dict[str, list] = {}
    for k, marker in enumerate(found):
        for row in marker.detail["rows"]:
            if row and len(row) > j:
                cells.setdefault(str(row[0]), [""] * len(found))[k] = str(row[j])
    rows = []
    for name, texts in cells.items():
        values = [_number(t) for t in texts]
        known = [v for v in values if v is not None]
        change = present.number(round(known[-1] - known[0], 12)) if len(known) > 1 else ""
        rows.append({"name": name, "cells": texts, "values": values, "change": change})
    evals = [w["step"].format(present.number(m.step)) if m.step is not None
             else w["eval_n"].format(i + 1) for i, m in enumerate(found)]
    shown = MAX_CELLS // len(found)
    return {"title": title, "column": column, "evals": evals, "rows": rows[:shown],
            "rows_omitted": max(0, len(rows) - shown)}


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
