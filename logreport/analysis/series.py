"""Reading a run's series: values, samples, medians, the last values; which metric is the main
loss, the main eval metric and the throughput; the best eval value."""
from __future__ import annotations

import math
import re

import numpy as np

from .. import formats, store
from ..events import EVAL, FINAL, RESUME, TRAIN
from ..model import Run, plain
from .rolling import median_of


# --- series access ---------------------------------------------------------------------
def values(run: Run, phase: str, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, epochs, lines, values) of a metric over all segments, in order (read-only
    arrays; the last few asked for are remembered until the run's tables grow)."""
    return remembered(run, ("values", phase, metric), lambda: _values(run, phase, metric))


def remembered(run: Run, key: tuple, compute):
    """compute(), remembered for the last few keys until the run reads more (arrays in it are
    made read-only)."""
    key += (run.lines, tuple(len(t) for phase in (TRAIN, EVAL) for _, t in run.tables(phase)))
    memo = run.memo
    if key not in memo:
        if len(memo) >= 4:
            del memo[next(iter(memo))]
        memo[key] = compute()
        for a in memo[key] if isinstance(memo[key], tuple) else ():
            a.flags.writeable = False
    return memo[key]


def _values(run: Run, phase: str, metric: str):
    a = run.arrays(phase, metric)
    return a["step"], a["epoch"], a["line"], a["value"]


def applicable(run: Run, metric: str, vals: np.ndarray) -> np.ndarray:
    """Which values are numbers to use: finite, and not the format's "not applicable" value
    (COCO's -1), which is kept as printed but never drawn, best, compared or alarmed on."""
    ok = np.isfinite(vals)
    sentinel = formats.not_applicable(run.format, metric)
    if sentinel is not None:
        ok &= vals != sentinel
    return ok


SAMPLE = 1 << 20     # records a statistic (median, mean) reads at most: every k-th beyond


def sample(run: Run, phase: str, metric: str, columns=(), segment: int | range | None = None
           ) -> dict[str, np.ndarray]:
    """A metric's values (and table `columns`) at every k-th record, k the smallest that
    keeps at most SAMPLE of them: all of them on any but a very long run (of one `segment`,
    or a range of them, only, if given). Bounded memory."""
    segments = range(segment, segment + 1) if isinstance(segment, int) else segment
    total = sum(len(t.series[metric]) for _, t in run.tables(phase, segments)
                if metric in t.series)
    stride = max(1, -(-total // SAMPLE))
    parts: dict[str, list] = {k: [] for k in (*columns, "value")}
    seen = 0
    for part in run.chunks(phase, metric, columns, segments):
        start = -seen % stride
        for k in parts:
            parts[k].append(part[k][start::stride].copy())  # not a view: frees the chunk
        seen += len(part["value"])
    return {k: np.concatenate(v) if v else np.array([]) for k, v in parts.items()}


def recent(run: Run, phase: str, metric: str, n: int) -> np.ndarray:
    """The last n values of a metric (over segments), oldest first."""
    parts, need = [], n
    for _, table in reversed(list(run.tables(phase))):
        series = table.series.get(metric)
        if series is None:
            continue
        parts.append(series.value.slice(len(series) - need, len(series)))
        need -= len(parts[-1])
        if need <= 0:
            break
    return np.concatenate(parts[::-1]) if parts else np.empty(0)


def median(run: Run, metric: str) -> float | None:
    """Median of the finite values of a training metric (of a sample on a very long run)."""
    def compute():
        vals = sample(run, TRAIN, metric)["value"]
        vals = vals[np.isfinite(vals)]
        return float(median_of(vals)) if len(vals) else None

    return remembered(run, ("median", metric), compute)


def mean_positive(run: Run, metric: str) -> float | None:
    """Mean of the finite positive values of a training metric (of a sample on a long run)."""
    def compute():
        vals = sample(run, TRAIN, metric)["value"]
        vals = vals[np.isfinite(vals) & (vals > 0)]
        return float(np.mean(vals)) if len(vals) else None

    return remembered(run, ("mean_positive", metric), compute)


def last_finite(run: Run, phase: str, metric: str) -> tuple[float, float] | None:
    """(step, value) of the last finite value of a metric, or None."""
    for _, table in reversed(list(run.tables(phase))):
        series = table.series.get(metric)
        n = len(series) if series is not None else 0
        for hi in range(n, 0, -store.CHUNK):
            vals = series.value.slice(hi - store.CHUNK, hi)
            finite = np.flatnonzero(np.isfinite(vals))
            if len(finite):
                i = hi - len(vals) + int(finite[-1])
                return float(table.step.take(series.rec_slice(i, i + 1))[0]), float(vals[finite[-1]])
    return None


def _median_counted(counts: dict[float, int]) -> float:
    """np.median of a multiset given as value -> count."""
    keys = sorted(counts)
    total = sum(counts.values())
    if not total:
        return float("nan")
    cum = np.cumsum([counts[k] for k in keys])
    lo = keys[int(np.searchsorted(cum, (total - 1) // 2, side="right"))]
    hi = keys[int(np.searchsorted(cum, total // 2, side="right"))]
    return (lo + hi) / 2


def step_gaps(run: Run, metric: str, positive: bool, finite_values: bool = False) -> float:
    """Median difference between the steps of consecutive records of a train metric (only
    positive differences between known steps, when `positive`); counted chunk by chunk, as
    the differences are few distinct numbers."""
    counts: dict[float, int] = {}
    last = None
    for part in run.chunks(TRAIN, metric, ("step",)):
        steps = part["step"]
        if finite_values:
            steps = steps[np.isfinite(part["value"])]
        if positive:
            steps = steps[np.isfinite(steps)]
        if last is not None:
            steps = np.concatenate(([last], steps))
        if len(steps):
            last = steps[-1]
        gaps = np.diff(steps)
        if positive:
            gaps = gaps[gaps > 0]
        if np.isnan(gaps).any():
            return float("nan")
        for gap, n in zip(*np.unique(gaps, return_counts=True)):
            counts[float(gap)] = counts.get(float(gap), 0) + int(n)
    return _median_counted(counts)


def is_loss(name: str) -> bool:
    return "loss" in name.lower() and not name.startswith(("eval_", "train_"))


def main_loss(run: Run) -> str | None:
    names = run.metric_names(TRAIN)
    for name in formats.describe(run.format).main_loss:
        if name in names:
            return name
    if "loss" in names:
        return "loss"
    losses = [n for n in names if is_loss(n)]
    return losses[0] if losses else None


# error rates and errors a log names by their abbreviation (ASR's word / character error rate)
_ERRORS = {"wer", "cer", "mer", "wil", "ter", "mse", "mae", "rmse", "mape", "eer"}


def lower_is_better(metric: str) -> bool:
    name = metric.lower()
    return "loss" in name or "perplexity" in name or "mpjpe" in name or name.endswith("error") \
        or not _ERRORS.isdisjoint(re.split(r"[^a-z0-9]+", name))


SPEEDS = ("fps", "_per_second", "_runtime")       # how fast an eval ran, not how well
# words of an eval figure that counts, sizes, times or describes rather than scores: no best
_BOOKKEEPING = {"num", "samples", "tokens", "seen", "len", "cost", "mem", "time",
                "step", "epoch", "thresh", "threshold", "entropy", "logits", "logps", "ips"}


def judged(metric: str) -> bool:
    """Whether a higher (or, lower_is_better, lower) value of this eval metric is a better
    result: not a speed (eval_runtime, samples_per_second), a count (eval_num_tokens,
    *_num_test_samples), a threshold or a description of the outputs (eval_entropy, logps)."""
    return not metric.endswith(SPEEDS) and _BOOKKEEPING.isdisjoint(
        re.split(r"[^a-z0-9]+", metric.lower()))


OVERALL = ("eval_f1", "eval_exact_match", "eval_exact")    # a QA or tagging run's own scores


def main_eval_metric(run: Run) -> str | None:
    """The eval metric that ranks a run: the Trainer's `metric_for_best_model` where the log
    states it, else the one the log's stated best names (_ranked_by), else the format's first,
    else an accuracy, else an overall F1 or exact match, else a loss, else the first; never a
    bookkeeping one nor a speed (an eval of runtimes alone has none)."""
    chosen, alike = _main_eval(run)
    return alike[0] if alike else chosen


def alike_eval_metrics(run: Run) -> list[str]:
    """Where nothing names the main eval metric and several accuracies or losses stand equal
    (each eval dataset's `eval_<name>_loss`, a student's and a teacher's loss): those, in the
    log's order, the first of which main_eval_metric takes; else []."""
    alike = _main_eval(run)[1]
    return alike if len(alike) > 1 else []


def _main_eval(run: Run) -> tuple[str | None, list[str]]:
    """(the main eval metric, else None; where that is None, the accuracies, else the losses,
    of which main_eval_metric takes the first)."""
    described = formats.describe(run.format)
    names = [n for n in run.metric_names(EVAL)
             if n not in described.hidden and judged(n)]
    chosen = run.info.get("metric_for_best_model")      # the Trainer's own, as its log states
    if isinstance(chosen, str):
        for name in (chosen, f"eval_{chosen}"):
            if name in names:
                return name, []
    ranked = _ranked_by(run, names)
    if ranked:
        return next((n for n in described.main_eval if n in ranked), ranked[0]), []
    for name in described.main_eval:
        if name in names:
            return name, []
    accuracy = [n for n in names if "accuracy" in n]
    overall = [n for n in OVERALL if n in names]        # not a subset's (`eval_HasAns_f1`)
    losses = [n for n in names if n.endswith("loss")]
    if accuracy or losses and not overall:
        return None, accuracy or losses
    return (overall or names or [None])[0], []


def _ranked_by(run: Run, names: list[str]) -> list[str]:
    """Where the log states its best without naming the metric (PaddleClas's `[best metric:
    x]`): the metrics that have an evaluation of that value (to the five decimals printed)."""
    stated = run.info.get("best_metric")
    if not isinstance(stated, (int, float)) or not math.isfinite(stated):
        return []
    return [n for n in names
            if np.isclose(run.arrays(EVAL, n)["value"], stated, rtol=0, atol=5e-6).any()]


def estimated_lines(run: Run, lines: set) -> set:
    """Those of `lines` that hold a training or eval record whose step the log does not state
    (a buffered console's, say)."""
    found: set = set()
    wanted = np.fromiter(lines, dtype=np.float64, count=len(lines))
    for phase in (TRAIN, EVAL) if lines else ():
        for _, table in run.tables(phase):
            if table.estimated_count:
                guessed = np.asarray(table.line)[np.asarray(table.estimated) > 0]
                found.update(int(n) for n in guessed[np.isin(guessed, wanted)])
    return found


def estimated_steps(run: Run) -> set:
    """The steps only training or eval records whose step is an estimate have."""
    guessed, stated = set(), set()
    for phase in (TRAIN, EVAL):
        for _, table in run.tables(phase):
            steps, flags = np.asarray(table.step), np.asarray(table.estimated) > 0
            guessed.update(steps[flags].tolist())
            stated.update(steps[~flags].tolist())
    return guessed - stated


def lineage_starts(run: Run) -> list[int]:
    """The segments where a training begins afresh (its first step no later than its first
    logging interval, or than the log's first training's), the first always: each begins a
    lineage its later segments (resumes) continue. A log that holds several trainings (appended
    runs, another model tried first) is judged by the last; best levels never cross them."""
    starts, origin, reached = [0], {}, {}      # per axis: steps, else epochs (a log of none)
    for seg, table in run.tables(TRAIN):
        column = table.step if not math.isnan(table.step[0]) else table.epoch
        axis = "step" if column is table.step else "epoch"
        values = column.slice(0, min(2, len(table)))
        if math.isnan(values[0]):
            continue
        gap = float(values[1] - values[0]) if len(values) > 1 else 0.0
        if axis in origin and seg.index > starts[-1] and (
                values[0] <= max(origin[axis], gap)
                or axis in reached and values[0] > reached[axis] + 2 * max(gap, 1.0)):
            starts.append(seg.index)    # (afresh, or resumed past all this log reached: a
        origin.setdefault(axis, float(values[0]))                   # training it holds no
        last = column[len(table) - 1]                                # more of)
        if not math.isnan(last):
            reached[axis] = max(reached.get(axis, 0.0), float(last))
    return starts


def began_midway(run: Run) -> dict | None:
    """Where the log's last training begins when the log holds none of its start: its first
    record's `step` and `epoch`, and `resumed` where a resume line of its file comes before it
    (after the training before it). Midway: a first epoch past the first where the format's
    epochs are labels (`Epoch: [2]`: a resume, or an excerpt), else a resume whose first step
    is past its logging interval; else None (a late first step alone may be a hole in the
    log: not said)."""
    start = lineage_starts(run)[-1]
    tables = [(seg, t) for seg, t in run.tables(TRAIN) if seg.index >= start and len(t)]
    if not tables:
        return None
    table = tables[0][1]
    step, epoch = plain(table.step[0]), plain(table.epoch[0])
    if step is None or table.estimated[0]:
        return None
    line, path = int(table.line[0]), run.input_name(int(table.file[0]))
    before = [t for seg, t in run.tables(TRAIN) if seg.index < start and len(t)
              and run.input_name(int(t.file[len(t) - 1])) == path]
    after = int(before[-1].line[len(before[-1]) - 1]) if before else 0
    resumed = run.markers.has(RESUME) and any(
        m.kind == RESUME and m.file == path and after < m.line < line for m in run.markers)
    described = formats.describe(run.format)
    if described.epoch_labels:
        later = isinstance(epoch, int) and epoch > 1 - described.zero_based_epochs
    else:
        gap = float(table.step[1]) - step if len(table) > 1 else 0.0
        later = resumed and step > gap
    if not later:
        return None
    return {"step": as_int(step), "epoch": epoch, "resumed": resumed}


def trainings(run: Run, segments) -> np.ndarray:
    """The training (1, 2, ...: lineage_starts) each of these segment indices belongs to."""
    return np.searchsorted(lineage_starts(run), segments, side="right")


def separate_evaluations(run: Run) -> list[int]:
    """The segments of processes that only evaluated: evaluations, none at a step, and no
    training record (tools/eval.py of some checkpoint, a test script); each may be of other
    data than any other's."""
    return [seg.index for seg, table in run.tables(EVAL)
            if not len(seg.train) and np.isnan(np.asarray(table.step)).all()]


def evaluation_groups(run: Run, segments) -> np.ndarray:
    """The group each of these segment indices' evaluations are compared within: its training
    (`trainings`); a separate evaluation's segment (`separate_evaluations`) a group of its own
    (-1 - its index): its best is never taken over another's."""
    segments = np.asarray(segments, dtype=np.int64)
    alone = np.isin(segments, separate_evaluations(run))
    return np.where(alone, -1 - segments, trainings(run, segments))


# --- figures ---------------------------------------------------------------------------
def best(run: Run, metric: str | None = None) -> dict | None:
    """The best value of an eval metric (default: the main one) in the log's last training
    that evaluated (lineage_starts), or its last separate evaluation (evaluation_groups), with
    its step (and whether that is an estimate) and epoch; the best the log states (`stated`:
    its best-metric line) where that is better than every evaluation of a training read;
    `last_training`: the log's earlier trainings' evaluations were left out;
    `separate_evaluations`: n, the last of the log's n separate evaluations, the others'
    (and the trainings') left out; `alongside`: where several alike stand equal
    (alike_eval_metrics), the best of each of the others."""
    alike = [] if metric else alike_eval_metrics(run)
    if alike:
        found = best(run, alike[0])
        others = [b for b in (best(run, m) for m in alike[1:]) if b]
        return {**found, "alongside": others} if found and others else found
    metric = metric or main_eval_metric(run) or _stated_metric(run)
    if metric is None or metric not in run.metric_names(EVAL):
        return _stated_best(run, metric)
    evals = run.arrays(EVAL, metric)
    steps, epochs, estimated, vals = (evals[k] for k in ("step", "epoch", "estimated", "value"))
    finite = applicable(run, metric, vals)
    if not finite.any():
        return _stated_best(run, metric)
    group = evaluation_groups(run, evals["segment"])
    last = group == group[np.flatnonzero(finite)[-1]]
    earlier = _left_out(group, finite, last)
    finite &= last
    masked = np.where(finite, vals, np.inf if lower_is_better(metric) else -np.inf)
    i = int(np.argmin(masked) if lower_is_better(metric) else np.argmax(masked))
    # (what a training's best-metric line states is no best of a separate evaluation's)
    stated = None if group[i] < 0 and run.count(TRAIN) else _stated_best(run, metric)
    if stated is not None and (stated["value"] < vals[i] if lower_is_better(metric)
                               else stated["value"] > vals[i]):
        # better than any evaluation read: one before the lines read (an excerpt, a resume)
        return {**stated, **earlier}
    return {"metric": metric, "value": float(vals[i]), "step": as_int(steps[i]),
            "step_estimated": bool(estimated[i]), "epoch": plain(epochs[i]), **earlier}


def _left_out(group: np.ndarray, finite: np.ndarray, last: np.ndarray) -> dict:
    """What the best of the `last` group leaves out: the separate evaluations it is the last
    of, or the log's earlier trainings."""
    if not (finite & ~last).any():
        return {}
    if group[last][0] >= 0:
        return {"last_training": True}
    return {"separate_evaluations": len(set(group[finite & (group < 0)].tolist()))}


def _stated_best(run: Run, metric: str | None) -> dict | None:
    """The best of `metric` so far as the log states it (PaddleOCR's `best metric, hmean: x`,
    PaddleSeg's best mIoU: the fact best_<metric>), with its iter and epoch where stated."""
    stated = run.info.get(f"best_{metric}") if metric else None
    if not isinstance(stated, (int, float)) or not math.isfinite(stated):
        return None
    return {"metric": metric, "value": float(stated), "step": run.info.get("best_iter"),
            "step_estimated": False, "epoch": run.info.get("best_epoch"), "stated": True}


def _stated_metric(run: Run) -> str | None:
    """Where no evaluation was read, the main metric whose best the log states (an excerpt
    that ends in PaddleOCR's `best metric, acc: 0`)."""
    return next((name for name in formats.describe(run.format).main_eval
                 if f"best_{name}" in run.info), None)


def throughput(run: Run) -> dict | None:
    """The median throughput of the training records; where none carries one, the training's
    average the trainer states at its end (HF's `train_samples_per_second`: "stated")."""
    names = run.metric_names(TRAIN)
    wanted = formats.describe(run.format).throughput
    for name in wanted:
        if name in names:
            middle = median(run, name)
            if middle is not None:
                return {"metric": name, "median": middle}
    for name in wanted:
        stated = last_value(run, FINAL, name)
        if stated is not None:
            return {"metric": name, "median": stated, "stated": True}
    return None


def _finals(run: Run) -> dict:
    """Metric -> (table, series) holding its last value of the log's last training
    (lineage_starts: a metric only an earlier training, another model, printed is none of it)."""
    out = {}
    first = lineage_starts(run)[-1]
    for seg in reversed(run.segments[first:]):
        for name, series in seg.train.series.items():
            if name not in out and len(series):
                out[name] = seg.train, series
    return out


def final_values(run: Run) -> dict:
    """The last value of each training metric of the log's last training."""
    return {name: series.value[-1] for name, (_, series) in _finals(run).items()}


def final_steps(run: Run) -> dict:
    """Metric -> the step its final value was logged at, for each logged at a step other than
    the last step (a last line cut before it, a later record without it); None: a step the log
    does not state (an estimate; where the last step is none either, left out)."""
    steps, _ = last_train_axes(run)
    last = steps[-1] if len(steps) else math.nan
    out = {}
    for name, (table, series) in _finals(run).items():
        i = series.last_index()
        step = table.step[i]
        if step != last and not (math.isnan(step) and math.isnan(last)):
            out[name] = None if table.estimated[i] else as_int(step)
    return out


def last_value(run: Run, phase: str, name: str) -> float | None:
    """The last finite value of a metric, or None."""
    last = last_finite(run, phase, name)
    return None if last is None else last[1]


def last_train_axes(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """Step and epoch where the last training got, as arrays of one (empty: no training)."""
    where = last_train_row(run)
    if where is None:
        return np.array([]), np.array([])
    table, i = where
    return table.step.slice(i, i + 1), table.epoch.slice(i, i + 1)


def last_train_row(run: Run):
    """(table, index) of the record that says where the last training got: its last training
    record, or its final record (`train_runtime`, at the step the training ended) where that
    comes later in the same segment (a run whose logging steps end before its last step), or
    at the same step stated where the record's is an estimate; with no training record (its
    logging steps past its last), the last final record at a step; else None (no training)."""
    tables = list(run.tables(TRAIN))
    if not tables:
        ends = [t for _, t in run.tables(FINAL) if not math.isnan(t.step[len(t) - 1])]
        return (ends[-1], len(ends[-1]) - 1) if ends else None
    segment, table = tables[-1]
    last, guessed = table.step[len(table) - 1], table.estimated[len(table) - 1]
    end = segment.tables[FINAL]
    if len(end) and (end.step[len(end) - 1] > last or end.step[len(end) - 1] == last
                     and guessed and not end.estimated[len(end) - 1]):
        return end, len(end) - 1
    return table, len(table) - 1


def as_int(x):
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else int(x)
