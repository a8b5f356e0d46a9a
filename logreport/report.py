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

import numpy as np

from . import __version__, formats, present
from .analysis import (
    applicable,
    is_loss,
    lower_is_better,
    main_eval_metric,
    main_loss,
    summarize,
)
from .events import EVAL, NEW_RUN, RESUME, SYSTEM, TABLE, TRAIN
from .model import Run, iso_time, json_number, plain

PER_SECOND = "_per_second"     # a rate by its name (samples, steps, tokens): a throughput
MAX_POINTS = 2000        # per trace
TOTAL_POINTS = 16000     # per report: long traces share this when there are many
MIN_POINTS = 400         # floor: a trace is never cut below this to save bytes
SERIES_BYTES = 380_000   # all series of a page (plotly.js takes ~530 kB of the 1 MB)
KNOTS = 256              # step -> epoch/time interpolation knots per segment
MAX_BAD = 200            # non-finite points listed per trace (the count is exact)
MAX_MARKS = 200          # eval / checkpoint lines per run


def build(runs: list[Run], title: str | None = None, lang: str = "en",
          live: bool = False) -> dict:
    """The report data of one or several runs (live: `watch` is following them)."""
    summaries = [summarize(run, live=live) for run in runs]
    chart_list = charts(runs)
    budget = _points_per_trace(runs, chart_list)
    while True:  # shrink the points per trace until the series fit the page's byte budget
        run_data = [_run_data(run, s, chart_list, budget) for run, s in zip(runs, summaries)]
        size = sum(len(json.dumps(r["series"])) for r in run_data)
        if size <= SERIES_BYTES or budget <= MIN_POINTS:
            break
        budget = max(MIN_POINTS, int(budget * SERIES_BYTES / size * 0.95))
    return {
        "title": title or " vs ".join(run.name for run in runs),
        "lang": lang,
        "labels": LABELS.get(lang, LABELS["en"]),
        "version": __version__,
        "runs": run_data,
        "notes": _notes(runs, lang),
        "charts": chart_list,
        "compare": compare_rows(summaries),
    }


def _notes(runs: list[Run], lang: str) -> list[str]:
    """What the formats of these runs say a reader should know (their descriptors' notes)."""
    notes = (formats.describe(f).note for f in dict.fromkeys(run.format for run in runs))
    return [note.get(lang) or note["en"] for note in notes if note]


# --- per run ----------------------------------------------------------------------------
def _run_data(run: Run, summary: dict, chart_list: list[dict], budget: int) -> dict:
    origin = run.first_time
    wanted = {(c["phase"], m) for c in chart_list for m in c["metrics"]}
    series: dict = {}
    for phase, name in sorted(wanted):
        if name in run.metric_names(phase):
            series.setdefault(phase, {})[name] = trace(run, phase, name, budget)
    return {
        "name": run.name,
        "summary": summary,
        "facts": _facts(run),
        "axes": {phase: _axes(run, phase, origin) for phase in series},
        "series": series,
        "marks": _marks(run),
        "tables": [m.detail for m in run.markers if m.kind == TABLE],
    }


def _facts(run: Run) -> dict:
    return {
        "format": run.format,
        "files": list(run.files),
        "first_time": iso_time(run.first_time),
        "last_time": iso_time(run.last_time),
        "lines": run.lines,
        "segments": [seg.label for seg in run.segments if not seg.is_empty()],
        **{k: v for k, v in run.info.items() if isinstance(v, (str, int, float))},
        # a folder: what each of its files gave (merge.merge_into), where sources disagree
        **{f"files_used: {name}": what for name, what in run.info.get("files_used", {}).items()},
    }


def _marks(run: Run) -> list[dict]:
    """Vertical lines: resumes, new runs/segments, checkpoints, evaluations (by train step)."""
    out = [{"kind": "segment", "step": _first_step(seg), "detail": seg.label}
           for seg in run.segments[1:] if not seg.is_empty()]
    out += [{"kind": "resume" if m.kind == RESUME else "new_run", "step": m.step,
             "detail": str(m.detail)[:200]}
            for m in run.markers if m.kind in (RESUME, NEW_RUN) and m.step is not None]
    main = main_eval_metric(run)
    if main:
        steps = [s for _, t in run.tables(EVAL) if main in t.series
                 for s in np.asarray(t.step)[np.asarray(t.series[main].rec, dtype=np.int64)]]
        out += [{"kind": "eval", "step": plain(s), "detail": main}
                for s in steps[:MAX_MARKS] if not math.isnan(s)]
    return [m for m in out if m["step"] is not None]


def _first_step(seg) -> float | None:
    for table in seg.tables.values():
        if len(table) and not math.isnan(table.step[0]):
            return plain(table.step[0])
    return None


def _axes(run: Run, phase: str, origin: float | None) -> list[dict]:
    """Per segment, knots (step, epoch, hours since the run's start) to place points on the
    epoch or time axis. Epochs become fractional when steps per epoch are known."""
    per_epoch = run.info.get("steps_per_epoch")
    out = []
    for seg, table in run.tables(phase):
        pick = np.unique(np.linspace(0, len(table) - 1, min(len(table), KNOTS)).astype(np.int64))
        step, epoch, time = (column.take(pick) for column in (table.step, table.epoch,
                                                               table.time))
        keep = np.isfinite(step)
        step, epoch, time = step[keep], epoch[keep], time[keep]
        if not len(step):
            continue
        if per_epoch and phase == TRAIN and np.all(np.isnan(epoch) | (epoch == np.round(epoch))):
            epoch = step / float(per_epoch)
        hours = (time - origin) / 3600.0 if origin is not None else np.full(len(time), np.nan)
        out.append({"seg": seg.index, "step": typed(step, "f8"), "epoch": typed(epoch, "f4"),
                    "hours": typed(hours, "f4")})
    return out


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
    if phase == EVAL:
        out["best"] = new_bests(vals, lower_is_better(name))
    return out


PRESELECT = 4            # a long series: min and max of PRESELECT x max_points buckets, then LTTB


def _candidates(run: Run, phase: str, name: str, bucket: int) -> dict:
    """The finite points of a series that may be drawn: all of them (bucket 1), or the first,
    the last, and the min and max of each `bucket` consecutive finite values. For each: its
    index among the finite values, step (the ordinal when there is none), value, segment and
    the running sum of the finite values up to it; the non-finite ones are counted apart, and
    "not applicable" values (COCO's -1) are counted and never drawn."""
    parts: dict[str, list] = {k: [] for k in ("index", "step", "value", "segment", "total")}
    out = {"n": 0, "nbad": 0, "nna": 0, "bad_steps": [], "bad_values": []}
    seen, running = 0, 0.0
    for part in run.chunks(phase, name, ("step",)):
        vals = part["value"]
        steps = np.where(np.isnan(part["step"]), out["n"] + np.arange(len(vals)), part["step"])
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


def new_bests(vals: np.ndarray, lower: bool) -> list[int]:
    """Indices where a value beats every earlier one."""
    out, best = [], None
    for i, v in enumerate(vals):
        if best is None or (v < best if lower else v > best):
            best = v
            out.append(i)
    return out


def typed(arr, dtype: str) -> dict:
    """A plotly.js typed-array spec: little-endian bytes in base64."""
    data = np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": dtype, "bdata": base64.b64encode(data.tobytes()).decode("ascii")}


def decode(spec) -> np.ndarray:
    """A typed-array spec (or a plain list) back to a numpy array."""
    if isinstance(spec, dict):
        dtype = np.dtype(spec["dtype"]).newbyteorder("<")
        return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=dtype).astype(float)
    return np.asarray(spec, dtype=float)


def points(entry: dict) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of a trace as sent to the page (downsampled when long)."""
    return decode(entry["x"]), decode(entry["y"])


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
def compare_rows(summaries: list[dict]) -> list[dict]:
    """Rows of the summary table: {"key", "values", "best": [run indexes] or []}."""
    rows = [_row("format", [s["format"] for s in summaries]),
            _row("status", [s["status"] for s in summaries]),
            _row("last_step", [s["last_step"] for s in summaries]),
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
        steps = [s["best"]["step"] if s["best"] and s["best"]["metric"] == metric else None
                 for s in summaries]
        rows.append(_row("best", vals, "min" if lower_is_better(metric) else "max",
                         metric=metric))
        rows.append(_row("best_step", steps, metric=metric))
    names = {s["throughput"]["metric"] for s in summaries if s["throughput"]}
    for name in sorted(names):
        vals = [s["throughput"]["median"] if s["throughput"] and s["throughput"]["metric"] == name
                else None for s in summaries]
        rows.append(_row("median_throughput", vals, "max", metric=name))
    rows.append(_row("wall_seconds", [s["wall_seconds"] for s in summaries]))
    rows.append(_row("eta_seconds", [s["eta_seconds"] for s in summaries]))
    rows.append(_row("anomaly_count", [len(s["anomalies"]) for s in summaries], "min"))
    rows.append(_row("unparsed_lines", [s["unparsed_lines"] for s in summaries]))
    finals: dict[str, None] = {}
    for s in summaries:
        finals.update(dict.fromkeys(s["final"]))
    hidden = set(formats.merged(s["format"] for s in summaries).hidden)
    for name in finals:
        if name in hidden:
            continue
        vals = [s["final"].get(name) for s in summaries]
        rows.append(_row("final", vals, "min" if is_loss(name) else None, metric=name))
    return rows


def _row(key: str, values: list, better: str | None = None, metric: str | None = None) -> dict:
    """A summary row: values, their text (present's formatter: durations for *_seconds) and
    which runs are best."""
    show = present.duration if key.endswith("_seconds") else present.number
    row = {"key": key, "values": values, "text": [show(v) for v in values], "best": []}
    if metric:
        row["metric"] = metric
    numbers = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if better and len(values) > 1 and len(set(numbers)) > 1:
        target = min(numbers) if better == "min" else max(numbers)
        row["best"] = [i for i, v in enumerate(values) if v == target]
    return row


# --- which charts -----------------------------------------------------------------------
def charts(runs: list[Run]) -> list[dict]:
    """Which charts the page draws: [{"id", "title", "phase", "metrics"}], chosen by metric
    name patterns: main loss, other losses, learning rate, throughput, timing, memory, tokens,
    ``prefix/name`` families (``rewards/*``, ``logps/*``, ``bbox/AP*``), the rest one each."""
    train: dict[str, None] = {}
    evals: dict[str, None] = {}
    described = formats.merged(run.format for run in runs)
    hidden = set(described.hidden)
    for run in runs:
        train.update(dict.fromkeys(run.metric_names(TRAIN)))
        evals.update(dict.fromkeys(run.metric_names(EVAL)))
    out: list[dict] = []
    mains = list(dict.fromkeys(m for m in (main_loss(run) for run in runs) if m))
    for name in mains:
        out.append(_chart(name, TRAIN, [name]))
    for name in train:
        if is_loss(name) and name not in mains and "/" not in name:
            out.append(_chart(name, TRAIN, [name]))
    if "learning_rate" in train:
        out.append(_chart("learning rate", TRAIN, ["learning_rate"], smooth=False,
                          label="learning_rate"))
    speed = [n for n in train if n in described.throughput or n.endswith(PER_SECOND)]
    if speed:
        out.append(_chart("throughput", TRAIN, speed, label="throughput"))
    cost = [n for n in ("batch_cost", "data_cost") if n in train]
    if cost:
        out.append(_chart("seconds per iteration", TRAIN, cost, label="seconds_per_iteration"))
    memory = [n for n in train if "mem" in n.lower() and n not in hidden]
    if memory:
        out.append(_chart("memory", TRAIN, memory, smooth=False, label="memory"))
    tokens = [n for n in train if "tokens" in n and n not in speed and n not in hidden]
    if tokens:
        out.append(_chart("tokens", TRAIN, tokens, smooth=False, label="tokens"))
    shown = {m for c in out for m in c["metrics"]} | hidden
    out += _grouped([n for n in train if n not in shown], TRAIN)
    eval_speed = [n for n in evals if n.endswith(PER_SECOND)]
    out += _grouped([n for n in evals if n != "fps" and n not in eval_speed and n not in hidden],
                    EVAL)
    if eval_speed:
        out.append(_chart("eval throughput", EVAL, eval_speed, label="eval_throughput"))
    system: dict[str, list[str]] = {}
    for run in runs:
        for name in run.metric_names(SYSTEM):         # watch --gpu: gpu<i>/<what>, per what
            system.setdefault(name.rpartition("/")[2], []).append(name)
    for what, names in system.items():
        out.append(_chart(f"GPU {what.replace('_', ' ')}", SYSTEM, sorted(set(names)),
                          smooth=False))
    for i, chart in enumerate(out):
        chart["id"] = f"chart{i}"
    return out


def _grouped(names: list[str], phase: str) -> list[dict]:
    """One chart per ``prefix/`` family (``bbox/AP*`` and ``bbox/AR*`` apart), else per name."""
    groups: dict[str, list[str]] = {}
    for name in names:
        prefix, _, short = name.rpartition("/")
        if prefix and short[:2] in ("AP", "AR"):
            key = f"{prefix}/{short[:2]}"
        else:
            key = f"{prefix}/*" if prefix else name
        groups.setdefault(key, []).append(name)
    return [_chart(key if len(members) > 1 else members[0], phase, members)
            for key, members in groups.items()]


def _chart(title: str, phase: str, metrics: list[str], smooth: bool = True,
           label: str | None = None) -> dict:
    """smooth: whether the smoothing slider applies (not to a schedule like the lr);
    label: key of a translated title in LABELS (else the title is shown as is)."""
    chart = {"title": title, "phase": phase, "metrics": metrics, "smooth": smooth}
    if label:
        chart["label"] = label
    return chart


# --- page labels ------------------------------------------------------------------------
LABELS = {
    "en": {
        "summary": "Summary", "charts": "Charts", "anomalies": "Anomalies", "facts": "Run facts",
        "tables": "Per-category results", "none": "none", "run": "run", "kind": "kind",
        "step": "step", "epoch": "epoch", "hours": "hours since start", "metric": "metric",
        "line": "line", "detail": "detail", "x_axis": "x axis", "smoothing": "smoothing",
        "log_y": "log y", "download": "download data (CSV)",
        "download_note": "CSV: the points in this page (long series are downsampled; "
                         "`logreport export` writes every point)",
        "smoothing_note": "Debiased exponential moving average as in TensorBoard; the raw line "
                          "is faint behind.",
        "raw": "raw", "smoothed": "smoothed", "new_best": "new best", "nonfinite": "NaN/inf",
        "segment": "new segment", "resume": "resume", "new_run": "new run", "eval": "eval",
        "points_of": "points shown of",
        "format": "format", "status": "status", "last_step": "last step",
        "last_epoch": "last epoch", "total_steps": "total steps",
        "train_records": "training records", "eval_records": "eval records", "best": "best",
        "best_step": "best at step", "median_throughput": "throughput (median)",
        "throughput": "throughput", "anomaly_count": "anomalies",
        "wall_seconds": "wall time", "eta_seconds": "ETA",
        "unparsed_lines": "unparsed lines", "final": "last", "learning_rate": "learning rate",
        "seconds_per_iteration": "seconds per iteration", "memory": "memory", "tokens": "tokens",
        "eval_throughput": "eval throughput", "finished": "finished",
        "failed": "failed", "running": "running", "unknown": "unknown",
        "files": "files read", "first_time": "first time", "last_time": "last time",
        "lines": "lines", "segments": "segments", "generated": "generated by logreport",
        "stopped": "stopped by logreport",
    },
    "zh": {
        "summary": "概要", "charts": "图表", "anomalies": "异常", "facts": "运行信息",
        "tables": "分类别结果", "none": "无", "run": "运行", "kind": "类型",
        "step": "步数", "epoch": "轮次", "hours": "开始后小时数", "metric": "指标",
        "line": "行号", "detail": "详情", "x_axis": "横轴", "smoothing": "平滑",
        "log_y": "对数纵轴", "download": "下载数据 (CSV)",
        "download_note": "CSV 为本页中的数据点（长序列已降采样；完整数据请用 `logreport export`）",
        "smoothing_note": "与 TensorBoard 相同的去偏指数滑动平均；原始曲线以浅色显示在后面。",
        "raw": "原始", "smoothed": "平滑", "new_best": "新最佳", "nonfinite": "NaN/inf",
        "segment": "新分段", "resume": "恢复训练", "new_run": "新运行", "eval": "评估",
        "points_of": "个点，共",
        "format": "格式", "status": "状态", "last_step": "最后步数", "last_epoch": "最后轮次",
        "total_steps": "总步数", "train_records": "训练记录数", "eval_records": "评估记录数",
        "best": "最佳", "best_step": "最佳所在步数", "median_throughput": "吞吐量（中位数）",
        "throughput": "吞吐量", "anomaly_count": "异常数",
        "wall_seconds": "耗时", "eta_seconds": "预计剩余",
        "unparsed_lines": "未解析行数", "final": "最终", "learning_rate": "学习率",
        "seconds_per_iteration": "每步耗时（秒）", "memory": "显存", "tokens": "词元数",
        "eval_throughput": "评估吞吐量", "finished": "已完成", "failed": "失败",
        "running": "运行中", "unknown": "未知", "files": "读取的文件",
        "first_time": "开始时间", "last_time": "结束时间", "lines": "行数",
        "segments": "分段", "generated": "由 logreport 生成", "stopped": "被 logreport 停止",
    },
}
