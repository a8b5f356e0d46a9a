"""Where a run stands: status (and why), wall time, total steps, ETA, timing and progress. Pure:
the file's modification time comes with the run (`Run.modified`), nothing here reads the disk."""
from __future__ import annotations

import bisect
import math
import time as _time
from datetime import datetime

import numpy as np

from .. import formats, present, store
from ..events import EVAL, FINAL, FINISHED, KILLED, NEW_RUN, OOM, TRACEBACK, TRAIN
from ..model import Run, iso_time, plain
from .rolling import median_of
from .series import (
    as_int,
    best,
    last_train_axes,
    last_value,
    main_loss,
    mean_positive,
    median,
    remembered,
    sample,
    step_gaps,
)

FAIL_MARKERS = (TRACEBACK, OOM, KILLED)
RUNNING_WITHIN = 600          # seconds: how fresh a log must be to be taken as running
NO_END = "no end of training and no error ended it"   # (an error before its last record did not)


def status(run: Run, live: bool = False, now: float | None = None) -> tuple[str, str]:
    """(status, evidence): finished | failed | running | unknown.

    failed: an error, OOM or kill after the last training record (of a log of evaluations
    only, after the last evaluation; of a run of several files, at its last step or past it),
    but not one of a later launch that failed before it trained: the training keeps its own
    status, the failure said in the evidence (of several such launches, the last's). With no
    training record, the failure named is that of the launch that ended the log, the launches
    that failed before it counted. finished: the tool said so
    (an end marker, final metrics) after the last training record, or for a tool that prints
    no end line, its own ETA had run out at the last record. running: the caller is watching
    the log live, or the file was modified in the last RUNNING_WITHIN seconds *and* its last
    timestamped line is about that recent too (a copied or downloaded log has a fresh mtime
    but old lines). A log without timestamps is running only while watched. Otherwise
    unknown.
    """
    last_train = max((int(t.line[-1]) for _, t in run.tables(TRAIN)), default=0)
    # a log of evaluations only: a failure before the last evaluation is over
    last = last_train or max((int(t.line[-1]) for _, t in run.tables(EVAL)), default=0)
    fails = [m for m in run.markers if m.kind in FAIL_MARKERS and m.line >= last]
    if len(run.inputs) > 1:     # (lines of several files: a failure before the last step,
        reached = max((float(np.nanmax(t.step)) for _, t in run.tables(TRAIN)), default=0.0)
        fails = [m for m in fails if m.step is None or m.step >= reached]   # a resumed one's)
    stopped = [m for m in fails if stopped_after_end(run, m)]
    fails = [m for m in fails if m not in stopped]
    launches = _by_launch(run, fails)
    # a launch after the last training record that failed before it trained (a file appended
    # by every launch) leaves the training before it as it was
    relaunch = _relaunch(run, last_train)
    ended = _ended(run, last_train)
    if fails and (relaunch is None or fails[0].line < relaunch):
        # the training's own failure; with no training record, the launch's that ended the log
        cause = fails[0] if last_train else launches[-1][0]
        ends = [end for end in _end_lines(run) if last_train <= end < cause.line]
        after = f"; after the training's end at line {max(ends)}" if ended and ends else ""
        return "failed", _said(cause) + ("" if last_train else _earlier(launches)) + after
    if not fails:
        later = f"; a later launch (line {relaunch}) logged no training record" if relaunch else ""
    elif len(launches) == 1:
        later = f"; a later launch failed before it trained ({_said(fails[0])})"
    else:           # (the one that ended the log)
        later = f"; {len(launches)} later launches failed before they trained, the last " \
            f"({_said(launches[-1][0])})"
    if ended:
        if stopped:
            ended += f"; then stopped ({stopped[0].detail} at line {stopped[0].line})"
        return "finished", ended + later
    if live:
        return "running", "the log is being watched and has no end of training yet" + later
    fresh, why = _fresh(run, _time.time() if now is None else now)
    return ("running" if fresh else "unknown"), why + later


def _said(marker) -> str:
    return f"{marker.kind} at line {marker.line}: {marker.detail}"


def _earlier(launches: list[list]) -> str:
    """'; 2 earlier launches failed too (the first at line 161)', or '' for one launch."""
    if len(launches) < 2:
        return ""
    first = "" if len(launches) == 2 else "the first "
    return f"; {present.count(len(launches) - 1, 'earlier launch', 'earlier launches')} failed " \
        f"too ({first}at line {launches[0][0].line})"


def _by_launch(run: Run, fails: list) -> list[list]:
    """The failures launch by launch, in order: a one-file run's new runs part them (a file
    that every launch appends to); the failures of a run of several files are one group."""
    if len(run.inputs) > 1:
        return [fails] if fails else []
    starts = sorted(m.line for m in run.markers if m.kind == NEW_RUN)
    groups: dict[int, list] = {}
    for m in fails:
        groups.setdefault(bisect.bisect(starts, m.line), []).append(m)
    return list(groups.values())


def _ends(run: Run) -> list[tuple[int, bool]]:
    """(line, metrics) where the tool said a training ended: an end marker (False), final
    metrics (True)."""
    return [(m.line, False) for m in run.markers if m.kind == FINISHED] + \
        [(int(t.line[-1]), True) for _, t in run.tables(FINAL)]


def _end_lines(run: Run) -> list[int]:
    return [line for line, _ in _ends(run)]


def stopped_after_end(run: Run, marker) -> bool:
    """Whether a failure marker is a kill (Ctrl-C, SIGTERM) after the training said it ended
    (an end marker or final metrics after its last record): a web UI or script stopped once
    the run had finished, which is no failure of it (a one-file run: lines comparable)."""
    if marker.kind != KILLED or len(run.inputs) > 1:
        return False
    last_train = max((int(t.line[-1]) for _, t in run.tables(TRAIN)), default=0)
    return any(last_train <= end < marker.line for end in _end_lines(run))


def _ended(run: Run, last_train: int) -> str | None:
    """Why the training ended (None: it did not say): the tool said so after the last training
    record, or its own ETA had run out."""
    ends = _ends(run)
    # after the last training record: a finished run followed by another one is not finished
    # (the lines of a run read from several files are not comparable)
    if ends and (max(ends)[0] >= last_train or len(run.inputs) > 1):
        line, metrics = max(ends)                   # (the metrics, on a tie)
        return "final training metrics were logged" if metrics \
            else f"the tool logged the end of training at line {line}"
    if formats.describe(run.format).ends_by_eta and _eta_ran_out(run):
        return ("the tool's own ETA had run out at the last training record, and the eval after "
                "the last epoch (if the run evaluates) was printed")
    return None


def _relaunch(run: Run, after: int) -> int | None:
    """The line of the first new launch after line `after` (a record's) of a one-file run (a
    file every launch appends to), or None."""
    if not after or len(run.inputs) != 1:
        return None
    return min((m.line for m in run.markers if m.kind == NEW_RUN and m.line > after),
               default=None)


def _last_time(run: Run) -> float:
    """The last time stamp of the run's records and markers, before a launch after its last
    record (one that never trained: it failed or was stopped at start-up, maybe days later)."""
    last = max((int(t.line[-1]) for phase in (TRAIN, EVAL, FINAL) for _, t in run.tables(phase)),
               default=0)
    relaunch = _relaunch(run, last)
    if relaunch is None:
        return run.last_time
    times = [m.time for m in run.markers if m.time is not None and m.line < relaunch]
    times += [float(t.time[len(t) - 1]) for phase in (TRAIN, EVAL, FINAL)
              for _, t in run.tables(phase)]
    return max((t for t in times if math.isfinite(t)), default=run.last_time)


def wall_seconds(run: Run) -> float | None:
    """From the run's first to its last time stamp: of its records and markers when its
    training records carry time stamps (not of a launch after them that never trained), else
    of its time-stamped lines (Trainer consoles stamp logger lines, not the step dicts), or
    the tool's own runtime (train_runtime, the elapsed time its bar printed) where that is
    longer (the stamped lines were the start-up's only); None for a run with no clock, or one
    stamp only (a line whose stamp was cut: the span is unknown, not 0 s)."""
    spans = run.first_time is not None and (run.last_time > run.first_time
                                            or _timed_records(run) > 1)
    if run.timed_train and spans:
        return max(0.0, _last_time(run) - run.first_time)
    runtime = last_value(run, FINAL, "train_runtime") or run.info.get("elapsed_seconds")
    if run.clock is not None and (run.clock[1] > run.clock[0] or runtime is not None):
        return max(run.clock[1] - run.clock[0], float(runtime or 0))
    if runtime is not None:
        return float(runtime)
    return max(0.0, run.last_time - run.first_time) if spans else None


def _timed_records(run: Run) -> int:
    """How many of the run's records carry a time stamp."""
    return sum(int(np.isfinite(np.asarray(t.time)).sum())
               for phase in (TRAIN, EVAL, FINAL) for _, t in run.tables(phase))


def _fresh(run: Run, now: float) -> tuple[bool, str]:
    """Whether the log is still being written, and why (see status())."""
    mtime = run.modified
    if mtime is None:
        return False, f"{NO_END}; the source has no modification time"
    age = now - mtime
    last = run.last_time if run.last_time is not None else run.clock and run.clock[1]
    if last is None:                # (the clock: any stamped line, where no record is)
        return False, (f"{NO_END}; the file changed "
                       f"{present.duration(age)} ago but its lines have no timestamps to tell a "
                       "live run from a copy (`watch` it to follow it live)")
    behind = local_clock(mtime) - last
    if age < RUNNING_WITHIN and abs(behind) < RUNNING_WITHIN:
        return True, (f"the log was written {present.duration(age)} ago and its last line is "
                      f"{present.duration(behind)} older")
    than = "older than" if behind >= 0 else "later than (its clock is not this machine's)"
    assumed = f" (its stamps print no year: {iso_time(last)[:4]} assumed)" \
        if "written" in formats.describe(run.format).parser_options else ""
    return False, (f"{NO_END}; its last timestamped line is "
                   f"{present.duration(abs(behind))} {than} the file's last change, "
                   f"{present.duration(age)} ago{assumed}")


def local_clock(t: float) -> float:
    """Seconds since 1970 on the naive local clock that log timestamps use."""
    return (datetime.fromtimestamp(t) - datetime(1970, 1, 1)).total_seconds()


def _eta_ran_out(run: Run) -> bool:
    """A tool that prints no end line: done when its own ETA says less than one log window remains
    and, if the run evaluates, the eval after the last training record has been printed."""
    last = _printed_eta(run, current=True)
    if last is None:
        return False
    remaining = _remaining_steps(run)
    records = sum(len(t.series["eta_seconds"]) for _, t in run.tables(TRAIN)
                  if "eta_seconds" in t.series)
    window = step_gaps(run, "eta_seconds", positive=False) if records > 1 else 1.0
    if remaining is None or remaining > max(window, 1.0):
        return False
    # A run that evaluates (--eval) evaluates after its last epoch too: wait for that eval.
    eval_steps = [t.step[-1] for _, t in run.tables(EVAL)]
    return not eval_steps or max(eval_steps) >= last[0]


def _remaining_steps(run: Run) -> float | None:
    """Steps left after the last training record, by the tool's ETA and mean batch time."""
    eta = _printed_eta(run, current=True)
    if eta is not None and eta[1] == 0:
        return 0.0                                  # (whatever a batch takes)
    cost = mean_positive(run, "batch_cost")
    if eta is None or cost is None:
        return None
    return float(eta[1]) / cost


def _printed_eta(run: Run, current: bool = False) -> tuple[float, float] | None:
    """(step, seconds) of the tool's last printed ETA, or None; `current`: only where the last
    training record printed it (after a line cut before its ETA, an earlier record's is too old
    to say that the run's time ran out)."""
    for _, table in reversed(list(run.tables(TRAIN))):
        series = table.series.get("eta_seconds")
        if series is not None and len(series) \
                and (not current or series.last_index() == len(table) - 1):
            return table.step[series.last_index()], series.value[-1]
        if current:
            return None
    return None


def total_steps(run: Run) -> int | None:
    """The total the log states; else whole epochs from the tool's ETA, which is the steps
    left times its mean batch time since the run (re)started: exact at the run's first
    record when that is an epoch's first step (the mean is that one batch: the answer is
    fixed from the start, it does not follow each record's ETA up and down); otherwise the
    median of what the second half of the records imply."""
    if run.info.get("total_steps"):
        return int(run.info["total_steps"])
    per_epoch = run.info.get("steps_per_epoch")
    if not per_epoch:
        return None

    def compute():          # from the last process that printed an ETA (an earlier run in
        # the same log may have had other epochs or iterations)
        last = next((seg.index for seg, t in reversed(list(run.tables(TRAIN)))
                     if "eta_seconds" in t.series), None)
        segments = None if last is None else range(last, last + 1)
        first = next(run.chunks(TRAIN, "eta_seconds", ("step", "line"), segments), None)
        cost = next(run.chunks(TRAIN, "batch_cost", ("line",), segments), None)
        if first is None or cost is None or not len(first["value"]):
            return None
        if first["step"][0] % per_epoch == 0 and cost["line"][0] == first["line"][0] \
                and cost["value"][0] > 0:
            implied = first["step"][:1] + first["value"][:1] / cost["value"][:1]
        else:   # a running mean of the costs printed stands in for the tool's own
            eta = sample(run, TRAIN, "eta_seconds", ("step", "line"), last)
            cost = sample(run, TRAIN, "batch_cost", ("line",), last)
            ok = np.isfinite(cost["value"]) & (cost["value"] > 0)
            lines, vals = cost["line"][ok], cost["value"][ok]
            at = np.searchsorted(lines, eta["line"], side="right") - 1
            use = (at >= 0) & np.isfinite(eta["value"]) & np.isfinite(eta["step"])
            if not use.any():
                return None
            running = np.cumsum(vals) / np.arange(1, len(vals) + 1)
            implied = (eta["step"][use] + eta["value"][use] / running[at[use]])[
                use.sum() // 2:]
        return int(max(round(float(median_of(implied)) / per_epoch), 1) * per_epoch)

    return remembered(run, ("total_steps",), compute)


def eta_seconds(run: Run, state: str) -> float | None:
    """Seconds left: the tool's own estimate, plus the evaluations still to come."""
    if state in ("finished", "failed"):
        return 0.0 if state == "finished" else None
    if "remaining_seconds" in run.info:
        return float(run.info["remaining_seconds"])
    eta = _printed_eta(run)
    if eta is None:
        return None
    evals = eval_time(run)
    return float(eta[1]) + ((evals or {}).get("remaining_seconds") or 0.0)


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
    """ips is per card; the total needs the number of cards (world_size)."""
    per_gpu = median(run, "ips")
    if per_gpu is None:
        return None
    gpus = run.info.get("world_size") or run.info.get("gpus")
    return {"per_gpu": per_gpu, "gpus": gpus, "total": per_gpu * gpus if gpus else None}


def eval_time(run: Run) -> dict | None:
    """Mean evaluation time, measured on the log's clock, and the time the remaining ones need.

    One evaluation lasts from the last training record before it to its result, less the
    training steps that were still due in that epoch (batch_cost each). More steps due than
    two logging intervals: the records between are not in the log (an excerpt, a later
    process's evaluation), and that time is no evaluation's.
    """
    if not run.count(TRAIN):
        return None
    loss = main_loss(run)
    interval = step_gaps(run, loss, positive=True) if loss else float("nan")
    evals = [(*row, seg.index) for seg, table in run.tables(EVAL)
             for row in zip(table.step, table.epoch, table.time, table.line)]
    before = _train_before(run, np.array([row[3] for row in evals], dtype=np.float64),
                           np.array([row[4] for row in evals], dtype=np.int64))
    cost = median(run, "batch_cost") or 0.0
    durations, eval_epochs = [], []
    for (step, epoch, t, _, _), (found, last_step, last_time) in zip(evals, before):
        if not math.isnan(epoch):
            eval_epochs.append(int(epoch))
        if not found or math.isnan(t) or math.isnan(last_time):
            continue
        due = 0.0 if math.isnan(step) else max(0.0, step - last_step)
        if due and not due <= 2 * interval:
            continue
        durations.append(max(0.0, t - last_time - due * cost))
    if not durations:
        return None
    mean = float(np.mean(durations))
    left = _evals_left(run, sorted(set(eval_epochs)))
    return {"mean_seconds": mean, "measured": len(durations), "remaining_evals": left,
            "remaining_seconds": mean * left if left is not None else None}


def _train_before(run: Run, lines: np.ndarray, segments: np.ndarray) -> list[tuple[bool, float, float]]:
    """For each line number: (found, step, time) of the training record of the same segment
    on the nearest line before it (the last one of equal lines), read a chunk of the tables at
    a time (an evaluation a later process ran follows no training record of its own)."""
    best = np.full(len(lines), -np.inf)
    step, time = np.full(len(lines), np.nan), np.full(len(lines), np.nan)
    for seg, table in run.tables(TRAIN):
        for lo in range(0, len(table), store.CHUNK):
            own = {c: getattr(table, c).slice(lo, lo + store.CHUNK)
                   for c in ("line", "step", "time")}
            order = np.argsort(own["line"], kind="stable")
            sorted_lines = own["line"][order]
            at = np.searchsorted(sorted_lines, lines) - 1
            ok = (at >= 0) & (segments == seg.index)
            ok[ok] = sorted_lines[at[ok]] >= best[ok]
            pick = order[at[ok]]
            best[ok], step[ok], time[ok] = own["line"][pick], own["step"][pick], own["time"][pick]
    return [(b > -np.inf, s, t) for b, s, t in zip(best.tolist(), step.tolist(), time.tolist())]


def _evals_left(run: Run, eval_epochs: list[int]) -> int | None:
    """Evaluations still due: every k-th epoch (k from the evals seen: from one alone only
    where the log holds the training from its first epoch) and the last one."""
    total, per_epoch = total_steps(run), run.info.get("steps_per_epoch")
    epochs = last_train_axes(run)[1]
    if not total or not per_epoch or not eval_epochs or not len(epochs) \
            or len(eval_epochs) == 1 and not epochs[0] <= 1:     # (an excerpt from mid-run)
        return None
    n_epochs = round(total / per_epoch)
    every = int(median_of(np.diff(eval_epochs))) if len(eval_epochs) > 1 else eval_epochs[0] + 1
    every = max(every, 1)
    return sum(1 for e in range(int(epochs[-1]), n_epochs)
               if e > eval_epochs[-1] and ((e + 1) % every == 0 or e == n_epochs - 1))


def progress(run: Run, state: str) -> dict | None:
    """Where the run stands: step of total, %, elapsed and remaining time, tokens/s."""
    steps, _ = last_train_axes(run)
    total = total_steps(run)
    bar = run.info.get("bar_step")      # a console's training bar, ahead of its last dict (by up
    if (not len(steps) or math.isnan(steps[-1])) and not isinstance(bar, int):
        return None                     # (a bar with no record yet: a training begun)
    step = float(steps[-1]) if len(steps) and not math.isnan(steps[-1]) else 0.0
    from_bar = state in ("running", "unknown") and isinstance(bar, int) \
        and step < bar <= (total or bar)                      # to a logging gap, or stopped)
    step = float(bar) if from_bar else step
    done = step + formats.describe(run.format).zero_based_steps
    elapsed = (run.info.get("elapsed_seconds") or last_value(run, FINAL, "train_runtime")
               or last_value(run, TRAIN, "train_runtime"))
    if elapsed is None and run.first_time is not None:
        elapsed = _last_time(run) - run.first_time
        elapsed = elapsed if elapsed > 0 else None
    # a finished run is done (its last record may come a little before its last step) unless
    # it stopped well short of its total (early stopping, a stop button): by more than two
    # logging intervals and 5 % of the total
    tables = list(run.tables(TRAIN))                    # (none: a final record's step)
    table = tables[-1][1] if tables else None
    last_two = table.step.slice(max(0, len(table) - 2), len(table)) if table else [0.0]
    gap = float(last_two[-1] - last_two[0])             # 0 with one record
    at_end = not total or not total - done > max(2 * gap, 0.05 * total)
    # steps a buffered console's dicts were given are guesses, not where the bar stands
    guessed = run.info.get("dict_steps") is not None and not from_bar
    return {"step": as_int(step), "total_steps": total,
            "percent": 100.0 if state == "finished" and (at_end or guessed) else (
                round(100.0 * min(done / total, 1.0), 2) if total and not guessed else None),
            "elapsed_seconds": elapsed, "remaining_seconds": eta_seconds(run, state),
            "tokens_per_second": _tokens_per_second(run),
            "best_eval_loss": best(run, "eval_loss")}


def _tokens_per_second(run: Run) -> float | None:
    """Trainer's train_tokens_per_second, or LLaMA-Factory's `throughput` (tokens seen / s)."""
    names = [(FINAL, "train_tokens_per_second"), (TRAIN, "train_tokens_per_second")]
    if "num_input_tokens_seen" in run.metric_names(TRAIN) or "total_tokens" in run.metric_names(TRAIN):
        names.append((TRAIN, "throughput"))
    for phase, name in names:
        value = last_value(run, phase, name)
        if value is not None:
            return value
    return None
