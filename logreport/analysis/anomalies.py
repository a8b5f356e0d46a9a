"""Anomaly detection: each detector finds one kind (or two) of what went wrong in a run."""
from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field, make_dataclass
from functools import partial

import numpy as np

from .. import present
from ..events import EVAL, FINAL, NEW_RUN, OOM, TRAIN
from ..model import Run
from .rolling import median_before, median_of, rolling_median
from .series import (
    applicable,
    as_int,
    estimated_lines,
    estimated_steps,
    is_loss,
    last_train_axes,
    lineage_starts,
    lower_is_better,
    main_eval_metric,
    main_loss,
    remembered,
    sample,
    step_gaps,
    throughput,
    trainings,
    values,
)
from .status import FAIL_MARKERS, stopped_after_end

MAX_PER_KIND = 20


def anomalies(run: Run, th: Thresholds | None = None, kinds=None) -> list[dict]:
    """Everything that went wrong in a run (of these kinds: None for all), in line order
    (stall is live only: see stall())."""
    th = th or Thresholds()
    found = []
    for detector in DETECTORS:
        if detector.find is not None and (kinds is None or set(detector.kinds) & set(kinds)):
            for a in detector.find(run, th):
                a.setdefault("file", _file_of(run, detector.phase, a))
                found.append(a)
    order = {name: i for i, name in enumerate(run.inputs)}
    found = sorted((a for a in found if kinds is None or a["kind"] in kinds),
                   key=lambda a: (order.get(a["file"], 0), a["line"] or 0))
    guessed = estimated_lines(run, {a["line"] for a in found if a["step"] is not None})
    for a in found:         # (which `check` and the pages mark `~N`)
        a["step_estimated"] = a["step"] is not None and a["line"] in guessed
    failures = [a for a in found if a["kind"] in ("traceback", "oom") and a["step"] is not None]
    if failures and any(t.estimated_count for _, t in run.tables(TRAIN)):
        at_guess = estimated_steps(run)     # (a failure is at the step of the record before it)
        for a in failures:
            a["step_estimated"] = a["step_estimated"] or float(a["step"]) in at_guess
    return found


def _file_of(run: Run, phase: str, anomaly: dict) -> str:
    """The input that holds the record an anomaly points at (by its line and step)."""
    if len(run.inputs) <= 1:
        return run.inputs[0] if run.inputs else run.source
    for _, table in run.tables(phase):
        lines, steps = np.asarray(table.line), np.asarray(table.step)
        step = np.nan if anomaly["step"] is None else anomaly["step"]
        hit = np.flatnonzero((lines == anomaly["line"]) & ((steps == step) | np.isnan(steps)))
        if len(hit):
            return run.input_name(table.file[int(hit[0])])
    return run.source


def _lasting(parts):
    """The chunks with each non-finite value that no non-finite neighbour has (across chunks)
    set to 0: an isolated one; the last, until the next comes, one whose neighbour before is
    finite (a live run's next record may show it isolated)."""
    pending, before = None, False
    for part in parts:
        nonfinite = ~np.isfinite(part["value"])
        if not len(nonfinite):
            continue
        if pending is not None:
            yield _streaks(*pending, bool(nonfinite[0]))
        pending, before = (part, nonfinite, before), bool(nonfinite[-1])
    if pending is not None:
        yield _streaks(*pending, False)


def _streaks(part: dict, nonfinite: np.ndarray, before: bool, after: bool) -> dict:
    """`part` with its non-finite values that no neighbour's is set to 0."""
    alone = nonfinite & ~np.concatenate(([before], nonfinite[:-1])) \
        & ~np.concatenate((nonfinite[1:], [after]))
    return part.but(value=np.where(alone, 0.0, part["value"]))


def _on_loss(find, ratios: bool = False):
    """A detector of the main loss: find(run, loss name, thresholds). One that judges the loss
    by `ratios` (x times a median, a best level) judges no loss that takes negative values: a
    policy-gradient surrogate (GRPO's) sits around 0 with either sign, where no ratio means
    anything."""
    def run_it(run: Run, th) -> list[dict]:
        loss = main_loss(run)
        if not loss or ratios and _signed(run, loss):
            return []
        return find(run, loss, th)
    return run_it


def _signed(run: Run, name: str) -> bool:
    """Whether a training metric takes a negative value (read once for both detectors)."""
    return remembered(run, ("signed", name), lambda: any(
        (part["value"] < 0).any() for part in run.chunks(TRAIN, name, ())))


def anomaly(kind, step, metric, detail, line) -> dict:
    return {"kind": kind, "step": as_int(step), "metric": metric, "detail": detail,
            "line": as_int(line)}


def _nonfinite(run: Run, th=None) -> list[dict]:
    """One `nan` anomaly: the first record with a non-finite loss or grad_norm (an
    evaluation's loss too: `eval_loss: nan`), and the count. A grad_norm non-finite in one
    record alone, those before and after finite, is an fp16 overflow the loss scaler skipped
    (the step is not taken): no anomaly (nor the last alone, until the next comes)."""
    bad = np.zeros(0, dtype=bool)          # by line number: a record there has one
    first = None                            # (line, step, name, value) of the first
    names = [n for n in run.metric_names(TRAIN) if is_loss(n) or n == "grad_norm"]
    main = main_loss(run)
    sources = [(TRAIN, name) for name in sorted(names, key=lambda n: n != main)]
    sources += [(EVAL, name) for name in run.metric_names(EVAL) if "loss" in name.lower()]
    for phase, name in sources:
        for part in _lasting(run.chunks(TRAIN, name)) if name == "grad_norm" else \
                run.chunks(phase, name):
            at = np.flatnonzero(~np.isfinite(part["value"]))
            if not len(at):
                continue
            lines = part["line"][at].astype(np.int64)
            if lines.max() >= len(bad):
                bad = np.concatenate([bad, np.zeros(int(lines.max()) + 1 - len(bad), dtype=bool)])
            bad[lines] = True
            i = at[int(np.argmin(lines))]
            if first is None or part["line"][i] < first[0]:
                first = (part["line"][i], part["step"][i], name, part["value"][i])
    if first is None:
        return []
    line, step, name, value = first
    at = "" if as_int(step) is None else f" at step {as_int(step)}"
    return [anomaly("nan", step, name,
                     f"{name} is {present.number(value)}{at}; "
                     f"{present.count(int(bad.sum()), 'record')} with a non-finite loss or "
                     "grad_norm", line)]


def _zero_loss(run: Run, name: str, th: Thresholds) -> list[dict]:
    """Loss exactly 0 for several records after being non-zero (a NaN filter at work)."""
    seen_nonzero = False

    def zero_after_nonzero(vals: np.ndarray) -> np.ndarray:
        nonlocal seen_nonzero
        nonzero = np.isfinite(vals) & (vals != 0)
        after = np.logical_or.accumulate(np.concatenate([[seen_nonzero], nonzero]))[:-1]
        seen_nonzero = bool(after[-1] or nonzero[-1]) if len(vals) else seen_nonzero
        return (vals == 0) & after

    out = []
    for step, line, length, _ in _stretches(run.chunks(TRAIN, name), zero_after_nonzero,
                                            th.zero_loss_records):
        out.append(anomaly("zero_loss", step, name, f"{name} is exactly 0 for {length} records "
                            f"from step {as_int(step)}", line))
        if len(out) >= MAX_PER_KIND:
            break
    return out


def _zero_losses(run: Run, th: Thresholds) -> list[dict]:
    """zero_loss in the training records; where none shows the loss (a log that kept only its
    final metrics), a training whose average loss stated at its end (HF's `train_loss`) is
    exactly 0: it learnt from nothing (labels all masked, a NaN filter)."""
    loss = main_loss(run)
    if loss:
        return _zero_loss(run, loss, th)
    stated = run.arrays(FINAL, "train_loss")
    return [anomaly("zero_loss", stated["step"][i], "train_loss", "train_loss, the training's "
                    "average loss stated at its end, is exactly 0", int(stated["line"][i]))
            for i in np.flatnonzero(stated["value"] == 0)[:1]]


def _stretches(parts, test, min_length: int):
    """Each run of at least min_length records (over chunked `parts` of a series) whose values
    pass `test` (values -> bool array): (first step, first line, length, its values)."""
    open_: list | None = None               # [step, line, length, value arrays]
    for part in parts:
        vals = part["value"]
        edges = np.diff(np.concatenate([[0], test(vals).astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        if open_ is not None and not (len(starts) and starts[0] == 0):
            if open_[2] >= min_length:
                yield tuple(open_[:3]) + (np.concatenate(open_[3]),)
            open_ = None
        for a, b in zip(starts.tolist(), ends.tolist()):
            if a == 0 and open_ is not None:
                open_[2] += b
                open_[3].append(vals[:b])
            else:
                open_ = [part["step"][a], part["line"][a], b - a, [vals[a:b]]]
            if b < len(vals):
                if open_[2] >= min_length:
                    yield tuple(open_[:3]) + (np.concatenate(open_[3]),)
                open_ = None
    if open_ is not None and open_[2] >= min_length:
        yield tuple(open_[:3]) + (np.concatenate(open_[3]),)


def _per_record_steps(run: Run, name: str) -> float:
    """Typical number of steps a record of a finite value stands for (1 when unknown)."""
    gaps = step_gaps(run, name, positive=True, finite_values=True)
    return 1.0 if math.isnan(gaps) else gaps


def _levels(run: Run, name: str, width: int, segments: range | None = None):
    """The finite values of a training metric a chunk at a time (of `segments` only, if
    given), with their rolling median over `width` records of its segment: (segment, at,
    values, levels) of each chunk, at(i) the step and line of value i, read only if asked (a
    median never reaches back into another process's records)."""
    history, segment = np.empty(0), None
    for part in run.chunks(TRAIN, name, segments=segments):
        keep = np.isfinite(part["value"])
        vals = part["value"][keep]
        if not len(vals):
            continue
        if part["segment"] != segment:
            history, segment = np.empty(0), part["segment"]
        joined = np.concatenate([history, vals])
        level = rolling_median(joined, width)[len(history):]
        history = joined[max(0, len(joined) - (width - 1)):] if width > 1 else history
        yield segment, partial(_step_and_line, part, keep), vals, level


def _step_and_line(part: dict, keep: np.ndarray, i: int) -> tuple:
    """The step and line of the i-th kept record of a chunk."""
    at = np.flatnonzero(keep)[i]
    return part["step"][at], part["line"][at]


def _spikes(run: Run, name: str, th: Thresholds) -> list[dict]:
    """A loss > spike_factor x the median of the previous window.

    Records that stand for a single step or a few (log_iter=1, logging_steps=1)
    are raw per-step losses, noisy by nature; they are first median-filtered over
    `spike_steps` steps, as PaddleDetection does over log_iter steps, so the test compares like
    with like.
    """
    width = max(1, math.ceil(th.spike_steps / _per_record_steps(run, name)))
    out: list[dict] = []
    history = np.empty(0)                   # |levels| of the records just before the chunk
    seen = next_free = 0                    # (of its segment: a new process starts afresh)
    segment = None
    for part_segment, at, vals, level in _levels(run, name, width):
        if part_segment != segment:
            history, seen, next_free, segment = np.empty(0), 0, 0, part_segment
            start = abs(float(level[0]))            # the segment's first level
        joined = np.concatenate([history, np.abs(level)])
        before = median_before(joined, th.spike_window, th.spike_factor)[len(history):]
        before[:max(0, th.spike_min_history - seen)] = np.nan
        with np.errstate(invalid="ignore"):
            high = np.abs(level) > th.spike_factor * before
            rises = np.abs(level) - before >= th.spike_min_rise * (start - before)
            hits = np.flatnonzero((before > 0) & high & rises)
        for i in hits.tolist():
            if seen + i < next_free:
                continue                            # the same spike seen through the filter
            next_free = seen + i + width + 1
            med = before[i]
            what = f"{name} {vals[i]:.6g}" if width == 1 else \
                f"{name} (median of {width} records) {level[i]:.6g}"
            step, line = at(i)
            out.append(anomaly("spike", step, name,
                                f"{what} at step {as_int(step)} is {abs(level[i]) / med:.3g}x "
                                f"the median {med:.6g} of the previous records", line))
            if len(out) >= MAX_PER_KIND:
                return out
        history = joined[-th.spike_window:]
        seen += len(vals)
    return out


def _divergence(run: Run, name: str, th: Thresholds) -> list[dict]:
    """The loss over the last part of a training stays divergence_factor x above its best
    level; each training of the log (lineage_starts) is judged on its own (a model tried
    before a restart afresh sets no best level for the next)."""
    starts = lineage_starts(run)
    return [found for lo, hi in zip(starts, starts[1:] + [len(run.segments)])
            for found in _diverged(run, name, th, range(lo, hi))]


def _diverged(run: Run, name: str, th: Thresholds, segments: range) -> list[dict]:
    """_divergence in these segments. Levels are rolling medians (robust to single spikes);
    the best level is the lowest one reached before the last part."""
    n = sum(int(np.isfinite(part["value"]).sum())
            for part in run.chunks(TRAIN, name, (), segments))
    if n < th.divergence_min_records:
        return _blowup(run, name, th, segments) if n else []
    tail = max(4, int(n * th.divergence_tail))
    best, seen, ends, start = np.inf, 0, [], None
    for _, _, vals, level in _levels(run, name, th.divergence_window, segments):
        start = float(level[0]) if start is None else start
        head = max(0, n - tail - seen)
        if head:
            best = min(best, float(level[:head].min()))
        if head < len(vals):
            ends.append(vals[head:])
        last_level = level[-1]
        seen += len(vals)
    now = float(median_of(np.concatenate(ends)))
    high = th.divergence_factor * best
    if not (best > 0 and now > high and last_level > high) \
            or now - best < th.divergence_min_rise * (start - best):
        return []
    first = None                            # the record after the last calm level
    for _, at, _, level in _levels(run, name, th.divergence_window, segments):
        if first == "next chunk":
            first = at(0)
        calm = np.flatnonzero(level <= high)
        if len(calm):
            i = int(calm[-1]) + 1
            first = at(i) if i < len(level) else "next chunk"
    step, line = first
    return [anomaly("divergence", step, name,
                     f"{name} level {now:.6g} over the last {tail} records is "
                     f"{now / best:.3g}x its best level {best:.6g}; high since step "
                     f"{as_int(step)}", line)]


def _blowup(run: Run, name: str, th: Thresholds, segments: range) -> list[dict]:
    """A training too short to tell levels apart (in `segments`): the first record whose loss
    is blowup_factor x the lowest positive value before it, when the next finite value stays
    that high (one high value that falls back is a spike: a real detector's loss can jump 227x
    at its second step and train on; a live watch that has read only that far must not stop
    it)."""
    parts = list(run.chunks(TRAIN, name, segments=segments))
    steps, lines, vals = (np.concatenate([p[k] for p in parts]) for k in ("step", "line", "value"))
    lowest, high = math.inf, None
    for i, v in enumerate(vals.tolist()):
        if not math.isfinite(v):
            continue
        if high is not None:
            if v >= th.blowup_factor * lowest:
                j, first = high
                return [anomaly("divergence", steps[j], name,
                                 f"{name} {first:.6g} at step {as_int(steps[j])} is "
                                 f"{first / lowest:.3g}x its lowest value {lowest:.6g} before, "
                                 f"and {v:.6g} after it", lines[j])]
            high = None
        if v > 0 and lowest < math.inf and v >= th.blowup_factor * lowest:
            high = (i, v)
            continue
        if v > 0:
            lowest = min(lowest, v)
    return []


def _throughput_drop(run: Run, th: Thresholds) -> list[dict]:
    """Throughput below (1 - throughput_drop) x the run's median for a sustained stretch; in a
    log of several trainings (lineage_starts: appended runs, another model), x its training's
    median (another model's speed is no measure of this one's)."""
    speed = throughput(run)
    if speed is None or speed.get("stated"):      # (one average: nothing to drop from)
        return []
    name, starts = speed["metric"], lineage_starts(run)
    out = []
    whose = "the run's" if len(starts) == 1 else "its training's"
    for lo, hi in zip(starts, starts[1:] + [len(run.segments)]):
        segments = range(lo, hi)
        vals = sample(run, TRAIN, name, (), segments)["value"]
        vals = vals[np.isfinite(vals)]
        median = float(median_of(vals)) if len(vals) else 0.0   # (one training: throughput's)
        if not median:
            continue

        def low(vals: np.ndarray, median=median) -> np.ndarray:
            return np.isfinite(vals) & (vals < (1 - th.throughput_drop) * median)

        for step, line, length, vals in _stretches(run.chunks(TRAIN, name, segments=segments),
                                                   low, th.throughput_records):
            drop = 1 - float(median_of(vals)) / median
            out.append(anomaly("throughput_drop", step, name,
                                f"{name} {drop:.0%} below {whose} median {median:.4g} for "
                                f"{length} records from step {as_int(step)}", line))
            if len(out) >= MAX_PER_KIND:
                return out
    return out


def _eval_regression(run: Run, th: Thresholds) -> list[dict]:
    """The main eval metric worse than its best so far (in its training: lineage_starts) for
    eval_regression_evals evals in a row or more, the last by more than eval_regression_margin
    of the best (dips of 0.1-0.9 % on a climbing accuracy are noise), once a streak. An
    evaluation at no step of a training (a separate evaluation run, of a checkpoint or data
    set the log may not name) is no point of it."""
    metric = main_eval_metric(run)
    if metric is None:
        return []
    steps, _, lines, vals = values(run, EVAL, metric)
    lineage = trainings(run, run.arrays(EVAL, metric)["segment"])
    sign = 1.0 if lower_is_better(metric) else -1.0
    usable = applicable(run, metric, vals)
    out, best_value, worse, training, said = [], None, 0, None, False
    for i, v in enumerate(vals):
        if not usable[i] or np.isnan(steps[i]):
            continue
        if lineage[i] != training:              # another training: its own best
            best_value, worse, training = None, 0, lineage[i]
        if best_value is None or sign * v < sign * best_value:
            best_value = v
        worse = worse + 1 if sign * v > sign * best_value else 0
        said = said and worse > 0                   # (once a streak)
        if worse >= th.eval_regression_evals and not said \
                and sign * (v - best_value) > th.eval_regression_margin * abs(best_value):
            said = True
            out.append(anomaly("eval_regression", steps[i], metric,
                                f"{metric} {v:.6g} is worse than its best {best_value:.6g} for "
                                f"{worse} evals in a row", lines[i]))
    return out[:MAX_PER_KIND]


def _failures(run: Run, th=None) -> list[dict]:
    """traceback / oom from the parser's markers (Killed, KeyboardInterrupt and Pod failed
    count as traceback), once per kind and step of a process: ranks and retries repeat the
    same failure, a later process of a log (the n-th of its file) fails anew. A kill after the
    training said it ended stopped a finished run (stopped_after_end): none."""
    out, seen = [], set()
    starts: dict = {}                       # file -> lines where its processes begin
    for m in run.markers:
        if m.kind == NEW_RUN:
            starts.setdefault(m.file, []).append(m.line)
    for m in run.markers:
        if m.kind not in FAIL_MARKERS or stopped_after_end(run, m):
            continue
        kind = "oom" if m.kind == OOM else "traceback"
        process = bisect.bisect(starts.get(m.file, []), m.line)
        key = (kind, m.step if m.step is not None else str(m.detail), process)
        if key not in seen:
            seen.add(key)
            out.append(dict(anomaly(kind, m.step, None, str(m.detail), m.line),
                            file=m.file or run.source))
    return out[:MAX_PER_KIND]


def stall(run: Run, last_line_age_seconds: float, minutes: float | None = None,
          th: Thresholds | None = None) -> dict | None:
    """Live check: a `stall` anomaly when no line came for far longer than usual, else None.

    The limit is `minutes` when given; otherwise the largest of stall_factor x the median gap
    between records, twice the longest gap seen so far (evaluations, checkpoints) and
    stall_min_seconds.
    """
    th = th or Thresholds()
    if minutes is not None:
        limit = minutes * 60.0
    else:
        gaps = _record_gaps(run)
        limit = th.stall_min_seconds
        if len(gaps):
            limit = max(limit, th.stall_factor * float(median_of(gaps)), 2 * float(gaps.max()))
    if last_line_age_seconds <= limit:
        return None
    steps, _ = last_train_axes(run)
    step = steps[-1] if len(steps) else None
    return dict(anomaly("stall", step, None,
                    f"no new line for {present.duration(last_line_age_seconds)} "
                    f"(limit {present.duration(limit)})", run.lines), file=run.source)


def _record_gaps(run: Run) -> np.ndarray:
    times = np.sort(np.concatenate([np.asarray(t.time) for phase in (TRAIN, EVAL)
                                    for _, t in run.tables(phase)] or [np.array([])]))
    gaps = np.diff(times[np.isfinite(times)])
    return gaps[gaps > 0]


@dataclass(frozen=True)
class Limit:
    """A threshold of a detector: an option of `check` (--zero-loss-records ...)."""

    name: str
    default: float
    help: str


@dataclass(frozen=True)
class Detector:
    """What finds anomalies of some kinds: find(run, thresholds) -> anomalies (None: found
    live only, by `watch`), its thresholds, and the phase of the records it points at."""

    kinds: tuple[str, ...]
    find: Callable | None
    limits: tuple[Limit, ...] = ()
    phase: str = TRAIN


DETECTORS = (
    Detector(("nan",), _nonfinite),
    Detector(("zero_loss",), _zero_losses, (
        Limit("zero_loss_records", 3, "Records in a row with loss exactly 0, after non-zero."),)),
    Detector(("spike",), _on_loss(_spikes, ratios=True), (
        Limit("spike_factor", 10.0, "Spike: loss above this many times the window's median."),
        Limit("spike_window", 20, "Spike: records in the window before a value."),
        Limit("spike_min_history", 5, "Spike: records needed before one can be told."),
        Limit("spike_min_rise", 0.01, "Spike: the rise above the window's median is at least "
                                      "this share of the fall to it from the first level (a "
                                      "loss near 0 that jumps tenfold is noise)."),
        Limit("spike_steps", 5, "Spike: records of fewer steps are median-filtered over this "
                                "many steps (per-step losses are noisy)."))),
    Detector(("divergence",), _on_loss(_divergence, ratios=True), (
        Limit("divergence_factor", 10.0, "Divergence: loss level at the end over the best "
                                         "level reached before."),
        Limit("divergence_tail", 0.25, "Divergence: share of the records that is the end."),
        Limit("divergence_window", 5, "Divergence: records in the rolling median (level)."),
        Limit("divergence_min_rise", 0.01, "Divergence: the rise above the best level is at "
                                          "least this share of the fall to it from the first "
                                          "level (a loss near 0 that grows tenfold is noise)."),
        Limit("divergence_min_records", 8, "Divergence: records needed to tell by levels; a "
                                           "shorter run diverges when its loss blows up:"),
        Limit("blowup_factor", 100.0, "...grows this many times over its lowest value "
                                      "before, and the next value stays there."))),
    Detector(("throughput_drop",), _throughput_drop, (
        Limit("throughput_drop", 0.30, "Throughput drop: share below the run's median..."),
        Limit("throughput_records", 5, "...for this many records in a row."))),
    Detector(("stall",), None, (
        Limit("stall_factor", 10.0, "Stall: no line for this many times the median gap "
                                    "between records..."),
        Limit("stall_min_seconds", 300.0, "...and for at least this many seconds."))),
    Detector(("traceback", "oom"), _failures),
    Detector(("eval_regression",), _eval_regression, (
        Limit("eval_regression_evals", 3, "Eval regression: evals in a row worse than the "
                                          "best..."),
        Limit("eval_regression_margin", 0.01, "...the last by more than this share of the best "
                                              "(a smaller dip is noise)."),), phase=EVAL),
)
ANOMALY_KINDS = tuple(kind for detector in DETECTORS for kind in detector.kinds)
Thresholds = make_dataclass(
    "Thresholds",
    [(limit.name, type(limit.default), field(default=limit.default, metadata={"help": limit.help}))
     for detector in DETECTORS for limit in detector.limits])
Thresholds.__doc__ = "Anomaly thresholds (one field per detector Limit): options of `check`."
