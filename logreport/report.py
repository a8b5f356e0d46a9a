"""build(runs) -> ReportData: one JSON-ready dict that drives the HTML page and live views.

Series travel compactly: numeric arrays are plotly.js typed-array specs
(``{"dtype": "f4", "bdata": <base64 little-endian>}``). A long series is cut to at most
``MAX_POINTS`` points (the min and max of small buckets, then LTTB: spikes survive), read a
chunk at a time (bounded memory); every kept point also carries the mean
and count of the finite values it stands for, so the page can run TensorBoard's debiased EMA
over the whole series. NaN/inf values are listed apart ("bad"), never silently dropped.
"""
from __future__ import annotations

import base64
import json
import math
import os

import numpy as np

from . import __version__, evaltable, formats, headline, present, wording
from .analysis import (
    applicable,
    evaluation_groups,
    is_loss,
    judged,
    lower_is_better,
    main_eval_metric,
    summarize,
)
from .events import EVAL, NEW_RUN, RESUME, TABLE, TRAIN
from .labels import LABELS
from .model import Run, iso_time, json_number, plain
from .sections import charts, sections

MAX_POINTS = 2000        # per trace
TOTAL_POINTS = 16000     # per report: long traces share this when there are many
MIN_POINTS = 400         # floor: a trace is never cut below this to save bytes
SERIES_BYTES = 360_000   # all series of a page (plotly.js takes ~530 kB of the 1 MB, the page ~50 kB)
KNOTS = 128              # step -> epoch/time interpolation knots per segment
AXES_KNOTS = 256         # ... per phase of a run, shared by its segments (at least 2 each)
MAX_SEGMENTS = 16        # segments with their own knots, lines and label: the last ones
MAX_BAD = 200            # non-finite points listed per trace (the count is exact)
MAX_MARKS = 1000         # evaluations marked per run (more: evenly thinned, the page says so)
TITLE_NAMES = 3          # runs named in a report's title; more are counted
TABLES_BYTES = 24_000    # per-category tables of a run: the newest that fit (rows cut if one
                         # alone does not)


def build(runs: list[Run], title: str | None = None, lang: str = "en",
          live: bool = False, full_paths: bool = False) -> dict:
    """The report data of one or several runs (live: `watch` is following them; full_paths:
    show absolute paths, else the names as the user typed them)."""
    summaries = [summarize(run, live=live) for run in runs]
    chart_list = charts(runs)
    run_data = [_run_data(run, s, chart_list, lang, full_paths) for run, s in zip(runs, summaries)]
    headline.mark_best([r["headline"]["cards"] for r in run_data])
    budget = _points_per_trace(runs, chart_list)
    while True:  # shrink the points per trace until the series fit the page's byte budget
        for run, data in zip(runs, run_data):
            data["series"] = _series(run, chart_list, budget)
        size = sum(len(json.dumps(r["series"])) for r in run_data)
        if size <= SERIES_BYTES or budget <= MIN_POINTS:
            break
        budget = max(MIN_POINTS, int(budget * SERIES_BYTES / size * 0.95))
    for run, data in zip(runs, run_data):
        data["axes"] = {phase: _axes(run, phase, _shown_segments(run))
                        for phase in data["series"]}
    return {
        "title": title or _title(runs, lang),
        "lang": lang,
        "labels": LABELS.get(lang, LABELS["en"]),
        "version": __version__,
        "runs": run_data,
        "notes": _notes(runs, lang),
        "charts": chart_list,
        "sections": sections(chart_list),
        "x_axes": _x_axes(run_data),
        "compare": compare_rows([r["summary"] for r in run_data], lang),
    }


def _title(runs: list[Run], lang: str) -> str:
    """The runs' names joined by "vs"; past TITLE_NAMES runs, how many are compared (the
    table names them)."""
    if len(runs) <= TITLE_NAMES:
        return " vs ".join(run.name for run in runs)
    return LABELS.get(lang, LABELS["en"])["runs_compared"].format(n=len(runs))


def _notes(runs: list[Run], lang: str) -> list[str]:
    """What the formats of these runs say a reader should know (their descriptors' notes)."""
    notes = (formats.describe(f).note for f in dict.fromkeys(run.format for run in runs))
    return [note.get(lang) or note["en"] for note in notes if note]


# --- per run ----------------------------------------------------------------------------
def _run_data(run: Run, summary: dict, chart_list: list[dict], lang: str,
              full_paths: bool) -> dict:
    shown = _shown_path(full_paths)
    summary = wording.summary_in(summary, lang)
    summary = dict(summary, source=shown(summary["source"]),
                   files=[shown(f) for f in summary["files"]],
                   anomalies=[dict(a, file=shown(a["file"])) if a.get("file") else a
                              for a in summary["anomalies"]])
    loss = headline.loss_change(run)
    segments = _shown_segments(run)
    tables, omitted = _tables([m.detail for m in run.markers if m.kind == TABLE])
    facts = _facts(run, full_paths, segments, lang)
    hidden = sum(not seg.is_empty() for seg in run.segments) - len(segments)
    for key, count in (("segments_omitted", hidden), ("tables_omitted", omitted)):
        if count:
            facts[key] = count
    return {
        "name": run.name,
        "summary": summary,
        "headline": {"sentence": headline.sentence(summary, loss, lang),
                     "cards": headline.cards(summary, loss, lang)},
        "banner": [_banner(a, chart_list, lang) for a in summary["anomalies"]],
        "facts": facts,
        **_marks(run, segments, lang),
        "tables": tables,
        "evals": evaltable.evaluations(run, chart_list, lang),
        "heat": evaltable.heat_tables(run, lang),
    }


def _series(run: Run, chart_list: list[dict], budget: int) -> dict:
    wanted = {(c["phase"], m) for c in chart_list for m in c["metrics"]}
    series: dict = {}
    for phase, name in sorted(wanted):
        if name in run.metric_names(phase):
            series.setdefault(phase, {})[name] = trace(run, phase, name, budget)
    return series


def _shown_path(full: bool):
    """How a path appears in the page: as the user typed it, or absolute (--full-paths)."""
    return os.path.abspath if full else (lambda path: path)


def _banner(anomaly: dict, chart_list: list[dict], lang: str) -> dict:
    """An anomaly for the banner: its line of text and the chart that shows it."""
    phase = EVAL if anomaly["kind"] == "eval_regression" else TRAIN
    chart = next((c["id"] for c in chart_list
                  if c["phase"] == phase and anomaly.get("metric") in c["metrics"]), None)
    if chart is None:          # a failure: the main loss's chart, at its step
        chart = next((c["id"] for c in chart_list if c["section"] == "losses"), None)
    return {"kind": anomaly["kind"], "step": anomaly.get("step"), "metric": anomaly.get("metric"),
            "phase": phase, "chart": chart, "text": headline.anomaly_line(anomaly, lang)}


def _shown_segments(run: Run) -> list:
    """The segments the page labels and places on other x axes: the last MAX_SEGMENTS that
    hold records (a log appended to hundreds of times would pass the page's 1 MB)."""
    return [seg for seg in run.segments if not seg.is_empty()][-MAX_SEGMENTS:]


def _facts(run: Run, full_paths: bool, segments: list, lang: str = "en") -> dict:
    """Facts of the run: format, files, time span, lines, the segments shown and the log's own
    facts (an absolute path the log names is cut to its file name unless --full-paths)."""
    info = {k: os.path.basename(v.rstrip("/\\")) if not full_paths and isinstance(v, str)
            and _absolute(v) else v
            for k, v in run.info.items() if isinstance(v, (str, int, float))}
    first, last = map(iso_time, _stamps(run))
    return {
        "format": run.format,
        "files": [_shown_path(full_paths)(f) for f in run.files],
        "first_time": first,
        "last_time": last,
        # a format whose stamps print no year: the one its file was last written in
        **({"year_assumed": int(first[:4])} if first
           and "written" in formats.describe(run.format).parser_options else {}),
        "lines": run.lines,
        "segments": [wording.label(seg.label, lang) for seg in segments],
        **{k: wording.fact(v, lang) for k, v in info.items()},
        # a folder: what each of its files gave (merge.merge_into), where sources disagree
        **{f"files_used: {name}": what for name, what in run.info.get("files_used", {}).items()},
    }


def _stamps(run: Run) -> tuple:
    """The log's first and last time stamps, of any line (a console stamps its start-up and
    save lines, not its records)."""
    stamps = [t for t in (run.first_time, run.last_time, *(run.clock or ())) if t is not None]
    return (min(stamps), max(stamps)) if stamps else (None, None)


def _absolute(text: str) -> bool:
    return text.startswith(("/", "~", "\\\\")) or (len(text) > 2 and text[1:3] in (":\\", ":/"))


def _tables(tables: list[dict]) -> tuple[list[dict], int]:
    """The newest per-category tables whose JSON fits TABLES_BYTES, oldest first, and how many
    were left out; the newest is always kept, its last rows cut to fit (`rows_omitted`)."""
    kept: list[dict] = []
    size = 0
    for table in reversed(tables):
        cost = len(json.dumps(table, ensure_ascii=False)) + 2        # and ", " or "[]"
        if kept and size + cost > TABLES_BYTES:
            break
        if cost > TABLES_BYTES:
            table = _cut_rows(table)
        kept.insert(0, table)
        size += cost
    return kept, len(tables) - len(kept)


def _cut_rows(table: dict) -> dict:
    rows, keep = table["rows"], len(table["rows"])
    while keep and len(json.dumps(dict(table, rows=rows[:keep], rows_omitted=len(rows)),
                                  ensure_ascii=False)) + 2 > TABLES_BYTES:
        keep = keep * 3 // 4
    return dict(table, rows=rows[:keep], rows_omitted=len(rows) - keep)


def _marks(run: Run, segments: list, lang: str = "en") -> dict:
    """{"marks": vertical lines of the training charts: resumes, new runs/segments, evaluations
    (by train step); of the segments shown (`_shown_segments`), their starts and the last
    restarts; "eval_marks": how many evaluations at a step there are, where more than
    MAX_MARKS (evenly thinned to those)}."""
    out = [{"kind": "segment", "step": _first_step(seg), "detail": wording.label(seg.label, lang)}
           for seg in segments if seg is not run.segments[0]]
    restarts = [m for m in run.markers if m.kind in (RESUME, NEW_RUN) and m.step is not None]
    out += [{"kind": "resume" if m.kind == RESUME else "new_run", "step": m.step,
             "detail": wording.label(str(m.detail)[:200], lang)} for m in restarts[-MAX_SEGMENTS:]]
    main = main_eval_metric(run)
    steps = [s for _, t in run.tables(EVAL) if main in t.series
             for s in np.asarray(t.step)[np.asarray(t.series[main].rec, dtype=np.int64)]
             if not math.isnan(s)] if main else []
    keep = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), MAX_MARKS)).astype(int))
    out += [{"kind": "eval", "step": plain(steps[i])} for i in keep] if steps else []
    thinned = {"eval_marks": len(steps)} if len(steps) > MAX_MARKS else {}
    return {"marks": [m for m in out if m["step"] is not None], **thinned}


def _first_step(seg) -> float | None:
    for table in seg.tables.values():
        if len(table) and not math.isnan(table.step[0]):
            return plain(table.step[0])
    return None


def _axes(run: Run, phase: str, segments: list) -> list[dict]:
    """Per segment shown, knots (step, epoch, hours since the run's start, and tokens or
    samples seen where the log has them) to place points on another x axis than the step
    (AXES_KNOTS shared out; the points of a segment not shown stay on the step axis). Epochs
    become fractional when steps per epoch are known."""
    per_epoch = run.info.get("steps_per_epoch")
    origin = run.first_time
    seen = _seen(run)
    most = max(2, min(KNOTS, AXES_KNOTS // max(1, len(segments))))
    out = []
    for seg, table in run.tables(phase):
        if seg not in segments:
            continue
        pick = np.unique(np.linspace(0, len(table) - 1, min(len(table), most)).astype(np.int64))
        step, epoch, time = (column.take(pick) for column in (table.step, table.epoch,
                                                               table.time))
        keep = np.isfinite(step)
        step, epoch, time = step[keep], epoch[keep], time[keep]
        if not len(step):
            continue
        if per_epoch and np.all(np.isnan(epoch) | (epoch == np.round(epoch))):
            epoch = step / float(per_epoch)     # (an evaluation where its step's training is)
        hours = (time - origin) / 3600.0 if origin is not None else np.full(len(time), np.nan)
        knots = {"seg": seg.index, "step": typed(step, "f8")}
        for axis, value, dtype in (("epoch", epoch, "f4"), ("hours", hours, "f4"),
                                   *((axis, np.interp(step, at, count, left=np.nan,
                                                      right=np.nan), "f8")
                                     for axis, (at, count) in seen.items())):
            if np.isfinite(value).any():        # an axis the log has no clue for is left out
                knots[axis] = typed(value, dtype)
        out.append(knots)
    return out


def _seen(run: Run) -> dict:
    """{"tokens": (steps, tokens seen)} from a metric the format names (num_input_tokens_seen),
    {"samples": (steps, samples seen)} from the total batch size the log states."""
    out = {}
    names = run.metric_names(TRAIN)
    for name in formats.describe(run.format).tokens_seen:
        if name in names:
            a = run.arrays(TRAIN, name)
            ok = np.isfinite(a["step"]) & np.isfinite(a["value"])
            if ok.any():
                out["tokens"] = (a["step"][ok], a["value"][ok])
                break
    batch = run.info.get("total_train_batch_size")
    steps = [t.step for _, t in run.tables(TRAIN)]
    if isinstance(batch, (int, float)) and batch > 0 and steps:
        last = max(float(np.nanmax(np.asarray(s))) for s in steps)
        out["samples"] = (np.array([0.0, last]), np.array([0.0, last * batch]))
    return out


def _x_axes(run_data: list[dict]) -> list[str]:
    """The x axes the page offers: step, and epoch, hours, tokens, samples where known."""
    out = ["step"]
    for axis in ("epoch", "hours", "tokens", "samples"):
        if any(_known(k.get(axis)) for r in run_data for knots in r["axes"].values()
               for k in knots):
            out.append(axis)
    return out


def _known(spec) -> bool:
    return spec is not None and bool(np.isfinite(unpack(spec)).any())


# --- one series -------------------------------------------------------------------------
def trace(run: Run, phase: str, name: str, max_points: int = MAX_POINTS) -> dict:
    """One metric of one run, ready for the page (see the module docstring). The series is
    read a chunk at a time: memory stays bounded however long the run."""
    finite_count = sum(int(applicable(run, name, p["value"]).sum())
                       for p in run.chunks(phase, name, ()))
    cut = finite_count > max_points
    points = _candidates(run, phase, name, -(-finite_count // (PRESELECT * max_points)))
    out: dict = {"n": points["n"], "nbad": points["nbad"]}
    if points["nna"]:
        out["nna"] = points["nna"]
    if points["nbad"]:
        out["bad"] = {"step": points["bad_steps"], "value": points["bad_values"]}
    index, steps, vals, segs = points["index"], points["step"], points["value"], points["segment"]
    if cut:
        keep = downsample(index, vals, max_points)
        index, steps, vals, segs, total = (a[keep] for a in (index, steps, vals, segs,
                                                             points["total"]))
        count = np.diff(index, prepend=-1)
        out["m"] = typed(np.diff(total, prepend=0.0) / count, "f4")
        out["c"] = typed(count, "u4" if count.max() > 65535 else "u2")
    out["x"] = typed(steps, "i4" if _fits_int32(steps) else "f8")
    out["y"] = typed(vals, "f4" if _float32_exact(vals) else "f8")
    change = np.flatnonzero(np.diff(segs)) + 1
    out["seg"] = [[0, int(segs[0])]] + [[int(i), int(segs[i])] for i in change] if len(segs) \
        else []
    if phase == EVAL and judged(name):      # (no best of a runtime, a count of tokens)
        out["best"] = new_bests(vals, lower_is_better(name), evaluation_groups(run, segs))
    return out


PRESELECT = 4            # a long series: min and max of PRESELECT x max_points buckets, then LTTB


def _candidates(run: Run, phase: str, name: str, bucket: int) -> dict:
    """The finite points of a series that may be drawn: all of them (bucket 1), or the first,
    the last, and the min and max of each `bucket` consecutive finite values. For each: its
    index among the finite values, step (a training record's ordinal when there is none; an
    evaluation stays without: the page draws those in log order, on an axis that says so, never
    at a step the log does not state), value, segment and
    the running sum of the finite values up to it; the non-finite ones are counted apart, and
    "not applicable" values (COCO's -1) are counted and never drawn."""
    parts: dict[str, list] = {k: [] for k in ("index", "step", "value", "segment", "total")}
    out = {"n": 0, "nbad": 0, "nna": 0, "bad_steps": [], "bad_values": []}
    seen, running = 0, 0.0
    ordinal = phase == TRAIN
    for part in run.chunks(phase, name, ("step",)):
        vals = part["value"]
        steps = np.where(np.isnan(part["step"]), out["n"] + np.arange(len(vals)) if ordinal
                         else np.nan, part["step"])
        out["n"] += len(vals)
        finite = np.isfinite(vals)
        usable = applicable(run, name, vals)
        out["nna"] += int((finite & ~usable).sum())
        bad = np.flatnonzero(~finite)[:MAX_BAD - len(out["bad_steps"])]
        out["bad_steps"] += [plain(s) for s in steps[bad]]
        out["bad_values"] += [json_number(v) for v in vals[bad]]
        out["nbad"] += int(len(vals) - finite.sum())
        vals, steps = vals[usable], steps[usable]
        if not len(vals):
            continue
        total = np.cumsum(np.concatenate(([running], vals)))[1:]
        pick = _extremes(vals, seen, bucket)
        for key, column in (("index", seen + pick), ("step", steps[pick]), ("value", vals[pick]),
                            ("segment", np.full(len(pick), part["segment"])),
                            ("total", total[pick])):
            parts[key].append(column)
        seen += len(vals)
        running = total[-1]
    return out | {k: np.concatenate(v) if v else np.array([]) for k, v in parts.items()}


def _extremes(vals: np.ndarray, first: int, bucket: int) -> np.ndarray:
    """Positions of the first and last value and of the min and max of each bucket of
    `bucket` values (buckets aligned on multiples of `bucket` from index `first`)."""
    if bucket <= 1:
        return np.arange(len(vals))
    lead = first % bucket
    rows = -(-(lead + len(vals)) // bucket)
    pad = rows * bucket - lead - len(vals)
    low = np.concatenate((np.full(lead, np.inf), vals, np.full(pad, np.inf))).reshape(rows, -1)
    high = np.concatenate((np.full(lead, -np.inf), vals, np.full(pad, -np.inf))).reshape(rows, -1)
    base = np.arange(rows) * bucket - lead
    return np.unique(np.concatenate(([0, len(vals) - 1], base + low.argmin(axis=1),
                                     base + high.argmax(axis=1))))


def downsample(x: np.ndarray, y: np.ndarray, n_out: int) -> np.ndarray:
    """Indices of at most n_out points (LTTB), the first and the last among them."""
    from tsdownsample import LTTBDownsampler

    keep = LTTBDownsampler().downsample(np.ascontiguousarray(x, dtype=np.float64),
                                        np.ascontiguousarray(y, dtype=np.float64), n_out=n_out)
    return np.unique(np.concatenate(([0], np.asarray(keep, dtype=np.int64), [len(y) - 1])))


def new_bests(vals: np.ndarray, lower: bool, groups=None) -> list[int]:
    """Indices where a value beats every earlier one (of its group, where `groups` numbers
    each value's: evaluation_groups)."""
    out, best = [], {}
    for i, v in enumerate(vals):
        group = None if groups is None else groups[i]
        if group not in best or (v < best[group] if lower else v > best[group]):
            best[group] = v
            out.append(i)
    return out


def typed(arr, dtype: str) -> dict:
    """A plotly.js typed-array spec: little-endian bytes in base64."""
    data = np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": dtype, "bdata": base64.b64encode(data.tobytes()).decode("ascii")}


def unpack(spec) -> np.ndarray:
    """A typed-array spec (or a plain list) back to a numpy array."""
    if isinstance(spec, dict):
        dtype = np.dtype(spec["dtype"]).newbyteorder("<")
        return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=dtype).astype(float)
    return np.asarray(spec, dtype=float)


def points(entry: dict) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of a trace as sent to the page (downsampled when long)."""
    return unpack(entry["x"]), unpack(entry["y"])


def _fits_int32(steps: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(steps)) and np.all(steps == np.round(steps))
                and (not len(steps) or np.abs(steps).max() < 2**31))


def _float32_exact(vals: np.ndarray) -> bool:
    """True when every value is recovered from float32 by printing 7 significant digits
    (the page does that for the CSV), i.e. the log printed at most 7 digits."""
    back = np.array([float(f"{v:.7g}") for v in vals.astype(np.float32)]) if len(vals) else vals
    return bool(np.all(back == vals))


def _points_per_trace(runs: list[Run], chart_list: list[dict]) -> int:
    long = sum(1 for run in runs for c in chart_list for m in c["metrics"]
               if run.count(c["phase"]) > MIN_POINTS and m in run.metric_names(c["phase"]))
    return max(MIN_POINTS, min(MAX_POINTS, TOTAL_POINTS // max(long, 1)))


# --- side-by-side summary ---------------------------------------------------------------
def compare_rows(summaries: list[dict], lang: str = "en") -> list[dict]:
    """Rows of the summary table: {"key", "values", "best": [run indexes] or []} (durations
    written in `lang`)."""
    rows = [_row("format", [s["format"] for s in summaries]),
            _row("status", [s["status"] for s in summaries]),
            _row("last_step", [s["last_step"] for s in summaries],
                 estimated=[s.get("last_step_estimated") for s in summaries]),
            _row("last_epoch", [s["last_epoch"] for s in summaries]),
            _row("total_steps", [s["total_steps"] for s in summaries]),
            _row("train_records", [s["train_records"] for s in summaries]),
            _row("eval_records", [s["eval_records"] for s in summaries])]
    if any(s.get("stopped") for s in summaries):     # `--stop-on` ended a run: why and how
        rows.append(_row("stopped", [(s.get("stopped") or {}).get("text") for s in summaries]))
    metrics = {s["best"]["metric"] for s in summaries if s["best"]}
    for metric in sorted(metrics):
        vals = [s["best"]["value"] if s["best"] and s["best"]["metric"] == metric else None
                for s in summaries]
        ranked = [s["best"] if s["best"] and s["best"]["metric"] == metric else {}
                  for s in summaries]
        rows.append(_row("best", vals, "min" if lower_is_better(metric) else "max",
                         metric=metric))
        rows.append(_row("best_step", [b.get("step") for b in ranked], metric=metric,
                         estimated=[b.get("step_estimated") for b in ranked]))
    names = {s["throughput"]["metric"] for s in summaries if s["throughput"]}
    one_tool = len({s["format"] for s in summaries}) == 1    # (another tool's images a second)
    for name in sorted(names):
        vals = [s["throughput"]["median"] if s["throughput"] and s["throughput"]["metric"] == name
                else None for s in summaries]
        rows.append(_row("median_throughput", vals, "max" if one_tool else None, metric=name))
    rows.append(_row("wall_seconds", [s["wall_seconds"] for s in summaries], lang=lang))
    rows.append(_row("eta_seconds", [s["eta_seconds"] for s in summaries], lang=lang))
    rows.append(_row("anomaly_count", [len(s["anomalies"]) for s in summaries], "min"))
    rows.append(_row("unparsed_lines", [s["unparsed_lines"] for s in summaries]))
    finals: dict[str, None] = {}
    for s in summaries:
        finals.update(dict.fromkeys(s["final"]))
    hidden = set(formats.merged(s["format"] for s in summaries).hidden)
    for name in finals:                                       # (losses of tools do not compare)
        if name in hidden:
            continue
        vals = [s["final"].get(name) for s in summaries]
        broken = [any(a["kind"] in headline.BROKEN_LOSS and a.get("metric") == name
                      for a in s["anomalies"]) for s in summaries]
        rows.append(_row("final", vals, "min" if is_loss(name) and one_tool else None,
                         metric=name, unfit=broken))
    return rows


def _row(key: str, values: list, better: str | None = None, metric: str | None = None,
         unfit: list | None = None, estimated: list | None = None, lang: str = "en") -> dict:
    """A summary row: values, their text (present's formatter: durations for *_seconds; `~`
    before a step that is an estimate) and which runs are best (of those not `unfit`)."""
    show = (lambda v: present.duration(v, lang)) if key.endswith("_seconds") else present.number
    text = [present.step_number(v, e) if e and v is not None else show(v)
            for v, e in zip(values, estimated or [False] * len(values))]
    row = {"key": key, "values": values, "text": text, "best": []}
    if metric:
        row["metric"] = metric
    fit = [i for i, v in enumerate(values) if isinstance(v, (int, float)) and math.isfinite(v)
           and not (unfit and unfit[i])]
    numbers = [values[i] for i in fit]
    if better and len(values) > 1 and len(set(numbers)) > 1:
        target = min(numbers) if better == "min" else max(numbers)
        row["best"] = [i for i in fit if values[i] == target]
    return row
