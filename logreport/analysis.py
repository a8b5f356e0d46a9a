"""Summary figures and anomaly detection over a Run (used by summary, report, watch, email)."""
from __future__ import annotations

import json
import math
import os
import time as _time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import formats, present, store
from .events import EVAL, FINAL, FINISHED, KILLED, OOM, TRACEBACK, TRAIN
from .model import Run, json_number, plain

FAIL_MARKERS = (TRACEBACK, OOM, KILLED)
RUNNING_WITHIN = 600          # seconds: how fresh a log must be to be taken as running


def _limit(default, text: str):
    return field(default=default, metadata={"help": text})


@dataclass
class Thresholds:
    """Anomaly thresholds: options of `check`, usable by `summary` and `watch`."""

    zero_loss_records: int = _limit(3, "Records in a row with loss exactly 0, after non-zero.")
    spike_factor: float = _limit(10.0, "Spike: loss above this many times the window's median.")
    spike_window: int = _limit(20, "Spike: records in the window before a value.")
    spike_min_history: int = _limit(5, "Spike: records needed before one can be told.")
    spike_steps: int = _limit(5, "Spike: records of fewer steps are median-filtered over "
                                 "this many steps (per-step losses are noisy).")
    divergence_factor: float = _limit(10.0, "Divergence: loss level at the end over the best "
                                            "level reached before.")
    divergence_tail: float = _limit(0.25, "Divergence: share of the records that is the end.")
    divergence_window: int = _limit(5, "Divergence: records in the rolling median (level).")
    divergence_min_records: int = _limit(8, "Divergence: records needed to tell by levels; "
                                            "a shorter run diverges when its loss blows up:")
    blowup_factor: float = _limit(100.0, "...grows this many times over its lowest value "
                                         "before.")
    throughput_drop: float = _limit(0.30, "Throughput drop: share below the run's median...")
    throughput_records: int = _limit(5, "...for this many records in a row.")
    stall_factor: float = _limit(10.0, "Stall: no line for this many times the median gap "
                                       "between records...")
    stall_min_seconds: float = _limit(300.0, "...and for at least this many seconds.")
    eval_regression_evals: int = _limit(3, "Eval regression: evals in a row worse than the best.")


# --- series access ---------------------------------------------------------------------
def values(run: Run, phase: str, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, epochs, lines, values) of a metric over all segments, in order (read-only
    arrays; the last few asked for are remembered until the run's tables grow)."""
    return _remembered(run, ("values", phase, metric), lambda: _values(run, phase, metric))


def _remembered(run: Run, key: tuple, compute):
    """compute(), remembered for the last few keys until the run reads more (arrays in it are
    made read-only)."""
    key += (run.lines, tuple(len(t) for phase in (TRAIN, EVAL) for _, t in run.tables(phase)))
    memo = run.__dict__.setdefault("_analysis_memo", {})
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


def sample(run: Run, phase: str, metric: str, columns=()) -> dict[str, np.ndarray]:
    """A metric's values (and table `columns`) at every k-th record, k the smallest that
    keeps at most SAMPLE of them: all of them on any but a very long run. Bounded memory."""
    total = sum(len(t.series[metric]) for _, t in run.tables(phase) if metric in t.series)
    stride = max(1, -(-total // SAMPLE))
    parts: dict[str, list] = {k: [] for k in (*columns, "value")}
    seen = 0
    for part in run.chunks(phase, metric, columns):
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
        return float(np.median(vals)) if len(vals) else None

    return _remembered(run, ("median", metric), compute)


def mean_positive(run: Run, metric: str) -> float | None:
    """Mean of the finite positive values of a training metric (of a sample on a long run)."""
    def compute():
        vals = sample(run, TRAIN, metric)["value"]
        vals = vals[np.isfinite(vals) & (vals > 0)]
        return float(np.mean(vals)) if len(vals) else None

    return _remembered(run, ("mean_positive", metric), compute)


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


def _step_gaps(run: Run, metric: str, positive: bool, finite_values: bool = False) -> float:
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
    for name in formats.trait(run.format, "MAIN_LOSS"):
        if name in names:
            return name
    if "loss" in names:
        return "loss"
    losses = [n for n in names if is_loss(n)]
    return losses[0] if losses else None


def lower_is_better(metric: str) -> bool:
    name = metric.lower()
    return "loss" in name or "perplexity" in name or "mpjpe" in name or name.endswith("error")


_MAIN_EVAL = ("bbox/AP", "segm/AP", "keypoint/AP", "AP", "bbox/mAP", "keypoint/PCKh",
              "eval_accuracy", "eval_loss")


def main_eval_metric(run: Run) -> str | None:
    names = [n for n in run.metric_names(EVAL) if n != "fps"]
    for name in formats.trait(run.format, "MAIN_EVAL") + _MAIN_EVAL:
        if name in names:
            return name
    accuracy = [n for n in names if "accuracy" in n]
    losses = [n for n in names if n.endswith("loss")]
    return (accuracy or losses or names or [None])[0]


# --- figures ---------------------------------------------------------------------------
def best(run: Run, metric: str | None = None) -> dict | None:
    """The best value of an eval metric (default: the main one), with its step and epoch."""
    metric = metric or main_eval_metric(run)
    if metric is None or metric not in run.metric_names(EVAL):
        return None
    steps, epochs, _, vals = values(run, EVAL, metric)
    finite = applicable(run, metric, vals)
    if not finite.any():
        return None
    masked = np.where(finite, vals, np.inf if lower_is_better(metric) else -np.inf)
    i = int(np.argmin(masked) if lower_is_better(metric) else np.argmax(masked))
    return {"metric": metric, "value": float(vals[i]), "step": _int(steps[i]),
            "epoch": plain(epochs[i])}


def throughput(run: Run) -> dict | None:
    names = run.metric_names(TRAIN)
    for name in formats.trait(run.format, "THROUGHPUT") + (
            "ips", "throughput", "train_samples_per_second", "samples_per_second", "tokens_per_second"):
        if name in names:
            middle = median(run, name)
            if middle is not None:
                return {"metric": name, "median": middle}
    return None


def final_values(run: Run) -> dict:
    out = {}
    for seg in reversed(run.segments):
        for name, series in seg.train.series.items():
            if name not in out and len(series):
                out[name] = series.value[-1]
    return out


def status(run: Run, live: bool = False, now: float | None = None) -> tuple[str, str]:
    """(status, evidence): finished | failed | running | unknown.

    failed: an error, OOM or kill after the last training record. finished: the tool said so
    (an end marker, final metrics), or for ppdet, which prints no end line, its own ETA had
    run out at the last record. running: the caller is watching the log live, or the file was
    modified in the last RUNNING_WITHIN seconds *and* its last timestamped line is about that
    recent too (a copied or downloaded log has a fresh mtime but old lines). A log without
    timestamps is running only while watched. Otherwise unknown.
    """
    last_train = max((int(t.line[-1]) for _, t in run.tables(TRAIN)), default=0)
    fails = [m for m in run.markers if m.kind in FAIL_MARKERS and m.line >= last_train]
    if fails:
        return "failed", f"{fails[0].kind} at line {fails[0].line}: {fails[0].detail}"
    if any(m.kind == FINISHED for m in run.markers) or run.count(FINAL):
        return "finished", "final training metrics were logged"
    if run.format == "ppdet" and _ppdet_done(run):
        return "finished", ("ppdet's own ETA had run out at the last training record, and the "
                             "eval after the last epoch (if the run evaluates) was printed")
    if live:
        return "running", "the log is being watched and has no end of training yet"
    fresh, why = _fresh(run, _time.time() if now is None else now)
    return ("running" if fresh else "unknown"), why


def wall_seconds(run: Run) -> float | None:
    """From the run's first to its last time stamp: of its records and markers when its
    training records carry time stamps (ppdet), else of its time-stamped lines (HF consoles
    stamp logger lines, not the step dicts); without any, the tool's own runtime
    (train_runtime, the elapsed time it printed); None for a run with no clock."""
    if run.timed_train and run.first_time is not None:
        return max(0.0, run.last_time - run.first_time)
    if run.clock is not None:
        return run.clock[1] - run.clock[0]
    runtime = _last(run, FINAL, "train_runtime") or run.info.get("elapsed_seconds")
    if runtime is not None:
        return float(runtime)
    return max(0.0, run.last_time - run.first_time) if run.first_time is not None else None


def _fresh(run: Run, now: float) -> tuple[bool, str]:
    """Whether the log is still being written, and why (see status())."""
    try:
        mtime = max(os.path.getmtime(p) for p in (run.files or [run.source]))
    except (OSError, ValueError):
        return False, "no end of training and no error; the source has no modification time"
    age = now - mtime
    if run.last_time is None:
        return False, (f"no end of training and no error; the file changed {present.duration(age)} ago "
                       "but its lines have no timestamps to tell a live run from a copy "
                       "(`watch` it to follow it live)")
    behind = _local_clock(mtime) - run.last_time
    if age < RUNNING_WITHIN and abs(behind) < RUNNING_WITHIN:
        return True, f"the log was written {age:.0f} s ago and its last line is {behind:.0f} s older"
    return False, (f"no end of training and no error; its last timestamped line is "
                   f"{present.duration(behind)} older than the file's last change, "
                   f"{present.duration(age)} ago")


def _local_clock(t: float) -> float:
    """Seconds since 1970 on the naive local clock that log timestamps use."""
    return (datetime.fromtimestamp(t) - datetime(1970, 1, 1)).total_seconds()


def _ppdet_done(run: Run) -> bool:
    """ppdet prints no end line: done when its own ETA says less than one log window remains
    and, if the run evaluates, the eval after the last training record has been printed."""
    last = _last_record(run, "eta_seconds")
    if last is None:
        return False
    remaining = _remaining_steps(run)
    records = sum(len(t.series["eta_seconds"]) for _, t in run.tables(TRAIN)
                  if "eta_seconds" in t.series)
    window = _step_gaps(run, "eta_seconds", positive=False) if records > 1 else 1.0
    if remaining is None or remaining > max(window, 1.0):
        return False
    # A run that evaluates (--eval) evaluates after its last epoch too: wait for that eval.
    eval_steps = [t.step[-1] for _, t in run.tables(EVAL)]
    return not eval_steps or max(eval_steps) >= last[0]


def _last_record(run: Run, metric: str) -> tuple[float, float] | None:
    """(step, value) of the last training record of a metric, or None."""
    for _, table in reversed(list(run.tables(TRAIN))):
        series = table.series.get(metric)
        if series is not None and len(series):
            return table.step[series.last_index()], series.value[-1]
    return None


def _remaining_steps(run: Run) -> float | None:
    """Steps left after the last training record, by ppdet's ETA and mean batch time."""
    eta = _last_record(run, "eta_seconds")
    cost = mean_positive(run, "batch_cost")
    if eta is None or cost is None:
        return None
    return float(eta[1]) / cost


def total_steps(run: Run) -> int | None:
    """The total the log states; else (ppdet) whole epochs from its ETA, which is the steps
    left times its mean batch time since the run (re)started: exact at the run's first
    record when that is an epoch's first step (the mean is that one batch: the answer is
    fixed from the start, it does not follow each record's ETA up and down); otherwise the
    median of what the second half of the records imply."""
    if run.info.get("total_steps"):
        return int(run.info["total_steps"])
    per_epoch = run.info.get("steps_per_epoch")
    if not per_epoch:
        return None

    def compute():
        first = next(run.chunks(TRAIN, "eta_seconds", ("step", "line")), None)
        cost = next(run.chunks(TRAIN, "batch_cost", ("line",)), None)
        if first is None or cost is None or not len(first["value"]):
            return None
        if first["step"][0] % per_epoch == 0 and cost["line"][0] == first["line"][0] \
                and cost["value"][0] > 0:
            implied = first["step"][:1] + first["value"][:1] / cost["value"][:1]
        else:   # a running mean of the costs printed stands in for ppdet's own
            eta = sample(run, TRAIN, "eta_seconds", ("step", "line"))
            cost = sample(run, TRAIN, "batch_cost", ("line",))
            ok = np.isfinite(cost["value"]) & (cost["value"] > 0)
            lines, vals = cost["line"][ok], cost["value"][ok]
            at = np.searchsorted(lines, eta["line"], side="right") - 1
            use = (at >= 0) & np.isfinite(eta["value"]) & np.isfinite(eta["step"])
            if not use.any():
                return None
            running = np.cumsum(vals) / np.arange(1, len(vals) + 1)
            implied = (eta["step"][use] + eta["value"][use] / running[at[use]])[
                use.sum() // 2:]
        return int(max(round(float(np.median(implied)) / per_epoch), 1) * per_epoch)

    return _remembered(run, ("total_steps",), compute)


def eta_seconds(run: Run, state: str) -> float | None:
    """Seconds left: the tool's own estimate, plus the evaluations still to come (ppdet)."""
    if state in ("finished", "failed"):
        return 0.0 if state == "finished" else None
    if "remaining_seconds" in run.info:
        return float(run.info["remaining_seconds"])
    eta = _last_record(run, "eta_seconds")
    if eta is None:
        return None
    evals = eval_time(run)
    return float(eta[1]) + (evals["remaining_seconds"] if evals else 0.0)


# --- timing ----------------------------------------------------------------------------
def timing(run: Run) -> dict | None:
    """Time per iteration and per epoch, evaluation time, images/s (runs that log batch_cost).

    Per epoch, as MMDetection's cal_train_time: the mean batch_cost of the epoch's records
    except its first (which carries the data loader's start-up), times the steps per epoch.
    """
    part = sample(run, TRAIN, "batch_cost", ("epoch",))
    epochs, cost = part["epoch"], part["value"]
    keep = np.isfinite(cost) & np.isfinite(epochs)
    if not keep.any():
        return None
    epochs, cost = epochs[keep], cost[keep]
    # the costs of each epoch, in record order; epochs in the order first seen
    cuts = np.flatnonzero(np.diff(epochs)) + 1
    stretches: dict[float, list] = {}
    for start, part in zip([0, *cuts.tolist()], np.split(cost, cuts)):
        stretches.setdefault(float(epochs[start]), []).append(part)
    per_epoch = {e: np.concatenate(parts) for e, parts in stretches.items()}
    exclude = any(len(c) > 1 for c in per_epoch.values())
    iter_seconds = {e: float(np.mean(c[1:] if exclude and len(c) > 1 else c))
                    for e, c in per_epoch.items()}
    steps_per_epoch = run.info.get("steps_per_epoch")
    out: dict = {"seconds_per_iter": float(np.mean(list(iter_seconds.values()))),
                 "first_record_of_epoch_excluded": exclude, "epoch_seconds": None}
    if steps_per_epoch:
        secs = {e: s * steps_per_epoch for e, s in iter_seconds.items()}
        slow, fast = max(secs, key=secs.get), min(secs, key=secs.get)
        out["epoch_seconds"] = {"mean": float(np.mean(list(secs.values()))),
                                "slowest": {"epoch": plain(slow), "seconds": secs[slow]},
                                "fastest": {"epoch": plain(fast), "seconds": secs[fast]},
                                "epochs": len(secs)}
    out["eval"] = eval_time(run)
    out["images_per_second"] = _images_per_second(run)
    return out


def _images_per_second(run: Run) -> dict | None:
    """ppdet's ips is per card; the total needs the number of cards (world_size)."""
    per_gpu = median(run, "ips")
    if per_gpu is None:
        return None
    gpus = run.info.get("world_size") or run.info.get("gpus")
    return {"per_gpu": per_gpu, "gpus": gpus, "total": per_gpu * gpus if gpus else None}


def eval_time(run: Run) -> dict | None:
    """Mean evaluation time, measured on the log's clock, and the time the remaining ones need.

    One evaluation lasts from the last training record before it to its result, less the
    training steps that were still due in that epoch (batch_cost each).
    """
    if not run.count(TRAIN):
        return None
    evals = [row for _, table in run.tables(EVAL)
             for row in zip(table.step, table.epoch, table.time, table.line)]
    before = _train_before(run, np.array([row[3] for row in evals], dtype=np.float64))
    cost = median(run, "batch_cost") or 0.0
    durations, eval_epochs = [], []
    for (step, epoch, t, _), (found, last_step, last_time) in zip(evals, before):
        if not math.isnan(epoch):
            eval_epochs.append(int(epoch))
        if not found or math.isnan(t) or math.isnan(last_time):
            continue
        due = 0.0 if math.isnan(step) else max(0.0, step - last_step)
        durations.append(max(0.0, t - last_time - due * cost))
    if not durations:
        return None
    mean = float(np.mean(durations))
    left = _evals_left(run, sorted(set(eval_epochs)))
    return {"mean_seconds": mean, "measured": len(durations), "remaining_evals": left,
            "remaining_seconds": mean * left if left is not None else 0.0}


def _train_before(run: Run, lines: np.ndarray) -> list[tuple[bool, float, float]]:
    """For each line number: (found, step, time) of the training record on the nearest line
    before it (the last one of equal lines), read a chunk of the tables at a time."""
    best = np.full(len(lines), -np.inf)
    step, time = np.full(len(lines), np.nan), np.full(len(lines), np.nan)
    for _, table in run.tables(TRAIN):
        for lo in range(0, len(table), store.CHUNK):
            own = {c: getattr(table, c).slice(lo, lo + store.CHUNK)
                   for c in ("line", "step", "time")}
            order = np.argsort(own["line"], kind="stable")
            sorted_lines = own["line"][order]
            at = np.searchsorted(sorted_lines, lines) - 1
            ok = at >= 0
            ok[ok] = sorted_lines[at[ok]] >= best[ok]
            pick = order[at[ok]]
            best[ok], step[ok], time[ok] = own["line"][pick], own["step"][pick], own["time"][pick]
    return [(b > -np.inf, s, t) for b, s, t in zip(best.tolist(), step.tolist(), time.tolist())]


def _evals_left(run: Run, eval_epochs: list[int]) -> int | None:
    """Evaluations still due: every k-th epoch (k from the evals seen) and the last one."""
    total, per_epoch = total_steps(run), run.info.get("steps_per_epoch")
    epochs = _train_axes(run)[1]
    if not total or not per_epoch or not eval_epochs or not len(epochs):
        return None
    n_epochs = round(total / per_epoch)
    every = int(np.median(np.diff(eval_epochs))) if len(eval_epochs) > 1 else eval_epochs[0] + 1
    every = max(every, 1)
    return sum(1 for e in range(int(epochs[-1]), n_epochs)
               if e > eval_epochs[-1] and ((e + 1) % every == 0 or e == n_epochs - 1))


def progress(run: Run, state: str) -> dict | None:
    """Where the run stands: step of total, %, elapsed and remaining time, tokens/s."""
    steps, _ = _train_axes(run)
    total = total_steps(run)
    if not len(steps) or math.isnan(steps[-1]):
        return None
    done = float(steps[-1]) + (1 if run.format == "ppdet" else 0)   # ppdet steps are 0-based
    elapsed = (run.info.get("elapsed_seconds") or _last(run, FINAL, "train_runtime")
               or _last(run, TRAIN, "train_runtime"))
    if elapsed is None and run.first_time is not None and run.last_time > run.first_time:
        elapsed = run.last_time - run.first_time
    return {"step": _int(steps[-1]), "total_steps": total,
            "percent": 100.0 if state == "finished" else (
                round(100.0 * min(done / total, 1.0), 2) if total else None),
            "elapsed_seconds": elapsed, "remaining_seconds": eta_seconds(run, state),
            "tokens_per_second": _tokens_per_second(run),
            "best_eval_loss": best(run, "eval_loss")}


def _tokens_per_second(run: Run) -> float | None:
    """Trainer's train_tokens_per_second, or LLaMA-Factory's `throughput` (tokens seen / s)."""
    names = [(FINAL, "train_tokens_per_second"), (TRAIN, "train_tokens_per_second")]
    if "num_input_tokens_seen" in run.metric_names(TRAIN) or "total_tokens" in run.metric_names(TRAIN):
        names.append((TRAIN, "throughput"))
    for phase, name in names:
        value = _last(run, phase, name)
        if value is not None:
            return value
    return None


def _last(run: Run, phase: str, name: str) -> float | None:
    """The last finite value of a metric, or None."""
    last = last_finite(run, phase, name)
    return None if last is None else last[1]


# --- anomalies -------------------------------------------------------------------------
ANOMALY_KINDS = ("nan", "zero_loss", "spike", "divergence", "throughput_drop", "stall",
                 "traceback", "oom", "eval_regression")
MAX_PER_KIND = 20


def anomalies(run: Run, th: Thresholds | None = None) -> list[dict]:
    """Everything that went wrong in a run, in line order (stall is live only: see stall())."""
    th = th or Thresholds()
    found = _nonfinite(run)
    loss = main_loss(run)
    if loss:
        found += _zero_loss(run, loss, th) + _spikes(run, loss, th) + _divergence(run, loss, th)
    found += _throughput_drop(run, th) + _eval_regression(run, th)
    for a in found:
        a["file"] = _file_of(run, EVAL if a["kind"] == "eval_regression" else TRAIN, a)
    found += _failures(run)
    order = {name: i for i, name in enumerate(run.inputs)}
    return sorted(found, key=lambda a: (order.get(a["file"], 0), a["line"] or 0))


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


def _anomaly(kind, step, metric, detail, line) -> dict:
    return {"kind": kind, "step": _int(step), "metric": metric, "detail": detail,
            "line": _int(line)}


def _nonfinite(run: Run) -> list[dict]:
    """One `nan` anomaly: the first record with a non-finite loss or grad_norm, and the count."""
    bad = np.zeros(0, dtype=bool)          # by line number: a record there has one
    first = None                            # (line, step, name, value) of the first
    names = [n for n in run.metric_names(TRAIN) if is_loss(n) or n == "grad_norm"]
    main = main_loss(run)
    for name in sorted(names, key=lambda n: n != main):
        for part in run.chunks(TRAIN, name):
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
    return [_anomaly("nan", step, name,
                     f"{name} is {present.number(value)} at step {_int(step)}; "
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
        out.append(_anomaly("zero_loss", step, name, f"{name} is exactly 0 for {length} records "
                            f"from step {_int(step)}", line))
        if len(out) >= MAX_PER_KIND:
            break
    return out


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
    gaps = _step_gaps(run, name, positive=True, finite_values=True)
    return 1.0 if math.isnan(gaps) else gaps


def _levels(run: Run, name: str, width: int):
    """The finite values of a training metric a chunk at a time, with their rolling median
    over `width` records: (steps, lines, values, levels) of each chunk."""
    history = np.empty(0)
    for part in run.chunks(TRAIN, name):
        keep = np.isfinite(part["value"])
        vals = part["value"][keep]
        if not len(vals):
            continue
        joined = np.concatenate([history, vals])
        level = _rolling_median(joined, width)[len(history):]
        history = joined[max(0, len(joined) - (width - 1)):] if width > 1 else history
        yield part["step"][keep], part["line"][keep], vals, level


def _rolling_median(vals: np.ndarray, width: int, chunk: int = 1 << 16) -> np.ndarray:
    """Median of each value and the width-1 before it (fewer at the start)."""
    if width <= 1 or not len(vals):
        return vals.copy()
    out = np.empty(len(vals))
    for i in range(min(width - 1, len(vals))):
        out[i] = np.median(vals[:i + 1])
    windows = sliding_window_view(vals, width) if len(vals) >= width else vals[:0, None]
    for start in range(0, len(windows), chunk):      # bounded memory on long runs
        out[width - 1 + start:width - 1 + start + chunk] = np.median(windows[start:start + chunk],
                                                                     axis=1)
    return out


def _median_before(vals: np.ndarray, width: int, factor: float) -> np.ndarray:
    """Median of the `width` values before each one (fewer at the start), computed only where
    the value exceeds factor x the window's minimum (no median can be smaller); +inf elsewhere."""
    before = np.full(len(vals), np.inf)
    if len(vals) < 2:
        return before
    rolling = _rolling_min(vals, width)[:-1]       # window ending at i-1, for i = 1..n-1
    with np.errstate(invalid="ignore"):
        candidates = np.flatnonzero(vals[1:] > factor * rolling) + 1
    early, late = candidates[candidates < width], candidates[candidates >= width]
    for i in early:
        before[i] = np.median(vals[:i])
    if len(late):
        before[late] = np.median(sliding_window_view(vals, width)[late - width], axis=1)
    return before


def _rolling_min(vals: np.ndarray, width: int) -> np.ndarray:
    """Minimum of each value and the width-1 before it (fewer at the start)."""
    padded = np.concatenate([np.full(width - 1, np.inf), vals])
    return sliding_window_view(padded, width).min(axis=1)


def _spikes(run: Run, name: str, th: Thresholds) -> list[dict]:
    """A loss > spike_factor x the median of the previous window.

    Records that stand for a single step or a few (ppdet with log_iter=1, HF logging_steps=1)
    are raw per-step losses, noisy by nature; they are first median-filtered over
    `spike_steps` steps, as ppdet itself does over log_iter steps, so the test compares like
    with like.
    """
    width = max(1, math.ceil(th.spike_steps / _per_record_steps(run, name)))
    out: list[dict] = []
    history = np.empty(0)                   # |levels| of the records just before the chunk
    seen = next_free = 0
    for steps, lines, vals, level in _levels(run, name, width):
        joined = np.concatenate([history, np.abs(level)])
        before = _median_before(joined, th.spike_window, th.spike_factor)[len(history):]
        before[:max(0, th.spike_min_history - seen)] = np.nan
        with np.errstate(invalid="ignore"):
            hits = np.flatnonzero((before > 0) & (np.abs(level) > th.spike_factor * before))
        for i in hits.tolist():
            if seen + i < next_free:
                continue                            # the same spike seen through the filter
            next_free = seen + i + width + 1
            med = before[i]
            what = f"{name} {vals[i]:.6g}" if width == 1 else \
                f"{name} (median of {width} records) {level[i]:.6g}"
            out.append(_anomaly("spike", steps[i], name,
                                f"{what} at step {_int(steps[i])} is {abs(level[i]) / med:.3g}x "
                                f"the median {med:.6g} of the previous records", lines[i]))
            if len(out) >= MAX_PER_KIND:
                return out
        history = joined[-th.spike_window:]
        seen += len(vals)
    return out


def ema(vals: np.ndarray, weight: float = 0.6) -> np.ndarray:
    """TensorBoard's debiased exponential moving average (non-finite values skipped)."""
    out = np.empty(len(vals))
    last, num = 0.0, 0
    for i, v in enumerate(vals):
        if not math.isfinite(v):
            out[i] = last / (1 - weight ** num) if num else float("nan")
            continue
        last = last * weight + (1 - weight) * v
        num += 1
        out[i] = last / (1 - weight ** num)
    return out


def _divergence(run: Run, name: str, th: Thresholds) -> list[dict]:
    """The loss over the last part of the run stays divergence_factor x above its best level.

    Levels are rolling medians (robust to single spikes); the best level is the lowest one
    reached before the last part.
    """
    n = sum(int(np.isfinite(part["value"]).sum()) for part in run.chunks(TRAIN, name, ()))
    if n < th.divergence_min_records:
        return _blowup(run, name, th)
    tail = max(4, int(n * th.divergence_tail))
    best, seen, ends = np.inf, 0, []
    for _, _, vals, level in _levels(run, name, th.divergence_window):
        head = max(0, n - tail - seen)
        if head:
            best = min(best, float(level[:head].min()))
        if head < len(vals):
            ends.append(vals[head:])
        last_level = level[-1]
        seen += len(vals)
    now = float(np.median(np.concatenate(ends)))
    high = th.divergence_factor * best
    if not (best > 0 and now > high and last_level > high):
        return []
    first = None                            # the record after the last calm level
    for steps, lines, _, level in _levels(run, name, th.divergence_window):
        if first == "next chunk":
            first = (steps[0], lines[0])
        calm = np.flatnonzero(level <= high)
        if len(calm):
            i = int(calm[-1]) + 1
            first = (steps[i], lines[i]) if i < len(level) else "next chunk"
    step, line = first
    return [_anomaly("divergence", step, name,
                     f"{name} level {now:.6g} over the last {tail} records is "
                     f"{now / best:.3g}x its best level {best:.6g}; high since step "
                     f"{_int(step)}", line)]


def _blowup(run: Run, name: str, th: Thresholds) -> list[dict]:
    """A run too short to tell levels apart: the first record whose loss is blowup_factor x
    the lowest positive value before it."""
    steps, _, lines, vals = values(run, TRAIN, name)
    lowest = math.inf
    for i, v in enumerate(vals.tolist()):
        if not math.isfinite(v):
            continue
        if v > 0 and lowest < math.inf and v >= th.blowup_factor * lowest:
            return [_anomaly("divergence", steps[i], name,
                             f"{name} {v:.6g} at step {_int(steps[i])} is {v / lowest:.3g}x its "
                             f"lowest value {lowest:.6g} before", lines[i])]
        if v > 0:
            lowest = min(lowest, v)
    return []


def _throughput_drop(run: Run, th: Thresholds) -> list[dict]:
    """Throughput below (1 - throughput_drop) x the run's median for a sustained stretch."""
    speed = throughput(run)
    if speed is None:
        return []
    name, median = speed["metric"], speed["median"]
    def low(vals: np.ndarray) -> np.ndarray:
        return np.isfinite(vals) & (vals < (1 - th.throughput_drop) * median)

    out = []
    for step, line, length, vals in _stretches(run.chunks(TRAIN, name), low,
                                               th.throughput_records):
        drop = 1 - float(np.median(vals)) / median
        out.append(_anomaly("throughput_drop", step, name,
                            f"{name} {drop:.0%} below the run's median {median:.4g} for "
                            f"{length} records from step {_int(step)}", line))
        if len(out) >= MAX_PER_KIND:
            break
    return out


def _eval_regression(run: Run, th: Thresholds) -> list[dict]:
    """The main eval metric worse than its best so far for eval_regression_evals evals in a row."""
    metric = main_eval_metric(run)
    if metric is None:
        return []
    steps, _, lines, vals = values(run, EVAL, metric)
    sign = 1.0 if lower_is_better(metric) else -1.0
    usable = applicable(run, metric, vals)
    out, best_value, worse = [], None, 0
    for i, v in enumerate(vals):
        if not usable[i]:
            continue
        if best_value is None or sign * v < sign * best_value:
            best_value = v
        worse = worse + 1 if sign * v > sign * best_value else 0
        if worse == th.eval_regression_evals:
            out.append(_anomaly("eval_regression", steps[i], metric,
                                f"{metric} {v:.6g} is worse than its best {best_value:.6g} for "
                                f"{worse} evals in a row", lines[i]))
    return out[:MAX_PER_KIND]


def _failures(run: Run) -> list[dict]:
    """traceback / oom from the parser's markers (Killed, KeyboardInterrupt and Pod failed
    count as traceback), once per kind and step: ranks and retries repeat the same failure."""
    out, seen = [], set()
    for m in run.markers:
        if m.kind not in FAIL_MARKERS:
            continue
        kind = "oom" if m.kind == OOM else "traceback"
        key = (kind, m.step if m.step is not None else str(m.detail))
        if key not in seen:
            seen.add(key)
            out.append(dict(_anomaly(kind, m.step, None, str(m.detail), m.line),
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
            limit = max(limit, th.stall_factor * float(np.median(gaps)), 2 * float(gaps.max()))
    if last_line_age_seconds <= limit:
        return None
    steps, _ = _train_axes(run)
    step = steps[-1] if len(steps) else None
    return dict(_anomaly("stall", step, None,
                    f"no new line for {present.duration(last_line_age_seconds)} "
                    f"(limit {present.duration(limit)})", run.lines), file=run.source)


def _record_gaps(run: Run) -> np.ndarray:
    times = np.sort(np.concatenate([np.asarray(t.time) for phase in (TRAIN, EVAL)
                                    for _, t in run.tables(phase)] or [np.array([])]))
    gaps = np.diff(times[np.isfinite(times)])
    return gaps[gaps > 0]


# --- the summary -----------------------------------------------------------------------
def summarize(run: Run, th: Thresholds | None = None, live: bool = False) -> dict:
    """The `summary --json` object of one run (live: the caller is watching it)."""
    state, evidence = status(run, live=live)
    wall = wall_seconds(run)
    summary = {
        "source": run.source,
        "format": run.format or None,
        "files": list(run.files),
        "status": state,
        "status_evidence": evidence,
        "last_step": None,
        "last_epoch": None,
        "total_steps": total_steps(run),
        "train_records": 0,
        "eval_records": 0,
        "segments": 0,
        "final": {},
        "best": None,
        "throughput": throughput(run),
        "wall_seconds": wall,
        "eta_seconds": eta_seconds(run, state),
        "timing": timing(run),
        "progress": progress(run, state),
        "anomalies": anomalies(run, th),
        "unparsed_lines": 0,
    }
    if "stopped" in run.info:         # `--stop-on` ended the run: why, at which step, what signal
        summary["stopped"] = dict(run.info["stopped"])
    return refresh(summary, run)


def refresh(summary: dict, run: Run) -> dict:
    """The summary with the figures that cost little brought up to the run's last records:
    counts, last step and epoch, last values, best eval. The whole-run ones (status, timing,
    anomalies, ETA) stay as they were: `watch` redoes those less often on a long run."""
    steps, epochs = _train_axes(run)
    estimated = sum(t.estimated_count for _, t in run.tables(TRAIN))
    last = list(run.tables(TRAIN))
    return dict(summary,
                last_step=_int(steps[-1]) if len(steps) else None,
                last_step_estimated=bool(last and last[-1][1].estimated[-1]),
                last_epoch=plain(epochs[-1]) if len(epochs) else None,
                train_records=run.count(TRAIN),
                estimated_steps=estimated,
                repeated_records=run.repeats,
                eval_records=run.count(EVAL),
                segments=len([s for s in run.segments if not s.is_empty()]),
                final={k: json_number(v) for k, v in final_values(run).items()},
                best=best(run),
                unparsed_lines=run.unparsed)


def summary_json(summaries: list[dict]) -> str:
    """The text `summary --json` prints (also served by `watch --serve` at /api/summary)."""
    return json.dumps({"runs": summaries}, ensure_ascii=False, indent=2, allow_nan=False)


def _train_axes(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """Step and epoch of the last training record, as arrays of one (empty: no training)."""
    tables = list(run.tables(TRAIN))
    if not tables:
        return np.array([]), np.array([])
    table = tables[-1][1]
    lo = len(table) - 1
    return table.step.slice(lo, len(table)), table.epoch.slice(lo, len(table))


def _int(x):
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else int(x)


