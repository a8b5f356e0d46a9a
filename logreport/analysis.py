"""Summary figures and anomaly detection over a Run (used by summary, report, watch, email)."""
from __future__ import annotations

import math
import os
import time as _time
from dataclasses import dataclass

import numpy as np

from .events import EVAL, FINAL, FINISHED, KILLED, OOM, TRACEBACK, TRAIN
from .model import Run

FAIL_MARKERS = (TRACEBACK, OOM, KILLED)
RUNNING_WITHIN = 600          # a log written to in the last 10 min is taken as running


@dataclass
class Thresholds:
    """Anomaly thresholds (all options of `check`, `summary`, `watch`)."""

    spike_factor: float = 10.0       # a value above factor x rolling median of the window
    spike_window: int = 20
    divergence_tail: float = 0.25    # share of the run examined for a steady rise
    divergence_factor: float = 3.0   # smoothed loss at the end vs its minimum


# --- series access ---------------------------------------------------------------------
def values(run: Run, phase: str, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, epochs, lines, values) of a metric over all segments, in order."""
    steps, epochs, lines, vals = [], [], [], []
    for _, table in run.tables(phase):
        series = table.series.get(metric)
        if series is None:
            continue
        idx = np.asarray(series.rec, dtype=np.int64)
        steps.append(np.asarray(table.step)[idx])
        epochs.append(np.asarray(table.epoch)[idx])
        lines.append(np.asarray(table.line)[idx])
        vals.append(np.asarray(series.value))
    if not vals:
        empty = np.array([], dtype=float)
        return empty, empty, empty, empty
    return (np.concatenate(steps), np.concatenate(epochs), np.concatenate(lines),
            np.concatenate(vals))


def is_loss(name: str) -> bool:
    return "loss" in name.lower() and not name.startswith(("eval_", "train_"))


def main_loss(run: Run) -> str | None:
    names = run.metric_names(TRAIN)
    if "loss" in names:
        return "loss"
    losses = [n for n in names if is_loss(n)]
    return losses[0] if losses else None


def lower_is_better(metric: str) -> bool:
    name = metric.lower()
    return "loss" in name or "perplexity" in name or "mpjpe" in name or name.endswith("error")


_MAIN_EVAL = ("bbox/AP", "segm/AP", "keypoint/AP", "bbox/mAP", "keypoint/PCKh", "eval_accuracy",
              "eval_loss")


def main_eval_metric(run: Run) -> str | None:
    names = [n for n in run.metric_names(EVAL) if n != "fps"]
    for name in _MAIN_EVAL:
        if name in names:
            return name
    accuracy = [n for n in names if "accuracy" in n]
    losses = [n for n in names if n.endswith("loss")]
    return (accuracy or losses or names or [None])[0]


# --- figures ---------------------------------------------------------------------------
def best(run: Run) -> dict | None:
    metric = main_eval_metric(run)
    if metric is None:
        return None
    steps, epochs, _, vals = values(run, EVAL, metric)
    finite = np.isfinite(vals)
    if not finite.any():
        return None
    masked = np.where(finite, vals, np.inf if lower_is_better(metric) else -np.inf)
    i = int(np.argmin(masked) if lower_is_better(metric) else np.argmax(masked))
    return {"metric": metric, "value": float(vals[i]), "step": _int(steps[i]),
            "epoch": _num(epochs[i])}


def throughput(run: Run) -> dict | None:
    names = run.metric_names(TRAIN)
    for name in ("ips", "throughput", "train_samples_per_second", "samples_per_second",
                 "tokens_per_second"):
        if name in names:
            vals = values(run, TRAIN, name)[3]
            vals = vals[np.isfinite(vals)]
            if len(vals):
                return {"metric": name, "median": float(np.median(vals))}
    return None


def final_values(run: Run) -> dict:
    out = {}
    for seg in reversed(run.segments):
        for name, series in seg.train.series.items():
            if name not in out and len(series):
                out[name] = series.value[-1]
    return out


def status(run: Run) -> tuple[str, str]:
    """(status, evidence): finished | failed | running | unknown."""
    last_train = max((int(t.line[-1]) for _, t in run.tables(TRAIN)), default=0)
    fails = [m for m in run.markers if m.kind in FAIL_MARKERS and m.line >= last_train]
    if fails:
        return "failed", f"{fails[0].kind} at line {fails[0].line}: {fails[0].detail}"
    finished = [m for m in run.markers if m.kind == FINISHED]
    if finished or run.count(FINAL):
        return "finished", "final training metrics were logged"
    if run.format == "ppdet" and _ppdet_done(run):
        return "finished", "the last training record is in the last logging window of the run"
    age = _age(run.source)
    if age is not None and age < RUNNING_WITHIN:
        return "running", f"the log was written {age:.0f} s ago"
    return "unknown", "no end of training, no error, and the log is not being written"


def _age(path: str) -> float | None:
    try:
        return _time.time() - os.path.getmtime(path)
    except OSError:
        return None


def _ppdet_done(run: Run) -> bool:
    """ppdet prints no end line: done when its own ETA says less than one log window remains."""
    steps, _, _, eta = values(run, TRAIN, "eta_seconds")
    if not len(eta):
        return False
    remaining = _remaining_steps(run)
    window = float(np.median(np.diff(steps))) if len(steps) > 1 else 1.0
    return remaining is not None and remaining <= max(window, 1.0)


def _remaining_steps(run: Run) -> float | None:
    """Steps left after the last training record, by ppdet's ETA and mean batch time."""
    eta = values(run, TRAIN, "eta_seconds")[3]
    cost = values(run, TRAIN, "batch_cost")[3]
    cost = cost[np.isfinite(cost) & (cost > 0)]
    if not len(eta) or not len(cost):
        return None
    return float(eta[-1]) / float(np.mean(cost))


def total_steps(run: Run) -> int | None:
    if run.info.get("total_steps"):
        return int(run.info["total_steps"])
    per_epoch = run.info.get("steps_per_epoch")
    remaining = _remaining_steps(run)
    steps = values(run, TRAIN, "eta_seconds")[0]
    if not per_epoch or remaining is None or not len(steps):
        return None
    epochs = round((steps[-1] + 1 + remaining) / per_epoch)
    return int(max(epochs, 1) * per_epoch)


def eta_seconds(run: Run, state: str) -> float | None:
    if state in ("finished", "failed"):
        return 0.0 if state == "finished" else None
    if "remaining_seconds" in run.info:
        return float(run.info["remaining_seconds"])
    eta = values(run, TRAIN, "eta_seconds")[3]
    return float(eta[-1]) if len(eta) else None


# --- anomalies -------------------------------------------------------------------------
def anomalies(run: Run, th: Thresholds | None = None) -> list[dict]:
    th = th or Thresholds()
    found: list[dict] = []
    for name in run.metric_names(TRAIN):
        if is_loss(name) or name == "grad_norm":
            found.extend(_nonfinite(run, name))
    loss = main_loss(run)
    if loss:
        found.extend(_spikes(run, loss, th))
        found.extend(_divergence(run, loss, th))
    for m in run.markers:
        if m.kind in FAIL_MARKERS:
            kind = "oom" if m.kind == OOM else "traceback"
            found.append(_anomaly(kind, m.step, None, str(m.detail), m.line))
    return found


def _anomaly(kind, step, metric, detail, line) -> dict:
    return {"kind": kind, "step": _int(step), "metric": metric, "detail": detail,
            "line": _int(line)}


def _nonfinite(run: Run, name: str) -> list[dict]:
    steps, _, lines, vals = values(run, TRAIN, name)
    bad = ~np.isfinite(vals)
    if not bad.any():
        return []
    i = int(np.argmax(bad))
    return [_anomaly("nan", steps[i], name,
                     f"{name} is {_fmt(vals[i])} at step {_int(steps[i])} "
                     f"({int(bad.sum())} non-finite values)", lines[i])]


def _spikes(run: Run, name: str, th: Thresholds) -> list[dict]:
    steps, _, lines, vals = values(run, TRAIN, name)
    out = []
    for i in range(3, len(vals)):
        window = vals[max(0, i - th.spike_window):i]
        window = window[np.isfinite(window)]
        if len(window) < 3:
            continue
        med = float(np.median(np.abs(window)))
        if med > 0 and np.isfinite(vals[i]) and abs(vals[i]) > th.spike_factor * med:
            out.append(_anomaly("spike", steps[i], name,
                                f"{name} {vals[i]:.6g} is {abs(vals[i]) / med:.0f}x the median "
                                f"{med:.6g} of the previous {len(window)} records", lines[i]))
            if len(out) >= 20:
                break
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
    steps, _, lines, vals = values(run, TRAIN, name)
    if len(vals) < 8:
        return []
    smooth = ema(vals, 0.6)
    tail = max(4, int(len(vals) * th.divergence_tail))
    lowest = float(np.nanmin(smooth[:-tail])) if len(smooth) > tail else float(np.nanmin(smooth))
    end = smooth[-1]
    rising = np.nanmean(np.diff(smooth[-tail:])) > 0
    if lowest > 0 and np.isfinite(end) and end > th.divergence_factor * lowest and rising:
        return [_anomaly("divergence", steps[-1], name,
                         f"smoothed {name} rose to {end:.6g}, {end / lowest:.1f}x its minimum "
                         f"{lowest:.6g}", lines[-1])]
    return []


# --- the summary -----------------------------------------------------------------------
def summarize(run: Run, th: Thresholds | None = None) -> dict:
    """The `summary --json` object of one run."""
    state, evidence = status(run)
    steps, epochs = _train_axes(run)
    wall = (run.last_time - run.first_time) if run.first_time is not None else None
    return {
        "source": run.source,
        "format": run.format or None,
        "files": list(run.files),
        "status": state,
        "status_evidence": evidence,
        "last_step": _int(steps[-1]) if len(steps) else None,
        "last_epoch": _num(epochs[-1]) if len(epochs) else None,
        "total_steps": total_steps(run),
        "train_records": run.count(TRAIN),
        "eval_records": run.count(EVAL),
        "segments": len([s for s in run.segments if not s.is_empty()]),
        "final": {k: _json_number(v) for k, v in final_values(run).items()},
        "best": best(run),
        "throughput": throughput(run),
        "wall_seconds": wall,
        "eta_seconds": eta_seconds(run, state),
        "anomalies": anomalies(run, th),
        "unparsed_lines": run.unparsed,
    }


def _train_axes(run: Run) -> tuple[np.ndarray, np.ndarray]:
    tables = list(run.tables(TRAIN))
    if not tables:
        return np.array([]), np.array([])
    table = tables[-1][1]
    return np.asarray(table.step), np.asarray(table.epoch)


def _int(x):
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else int(x)


def _num(x):
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return None
    return int(x) if x.is_integer() else x


def _json_number(v: float):
    """A number for JSON: non-finite values become the strings "nan", "inf", "-inf"."""
    if math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def _fmt(v: float) -> str:
    return str(_json_number(float(v)))
