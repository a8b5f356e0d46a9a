"""`--stop-on`: which anomalies stop a training, when, and the `stopped` entry that the summary
and the report show. The signals themselves: procgroup.py."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .analysis import Thresholds, anomalies
from .errors import UsageError
from .procgroup import KILL_AFTER, Escalation, Training

# Kinds told by records (and stall, by the clock). Not traceback or oom: a failure line is not a
# record, and the process is ending anyway.
STOP_KINDS = ("nan", "divergence", "stall", "eval_regression", "spike", "zero_loss",
              "throughput_drop")
STOPPED_EXIT = 3           # exit code of `run` / `watch --pid` when logreport stopped the run
GRACE = 60.0               # default seconds between SIGINT and SIGTERM


@dataclass(frozen=True)
class StopOn:
    """`nan,divergence,eval_regression:5` → kinds, and the eval patience when given."""

    kinds: tuple[str, ...]
    patience: int | None = None

    @classmethod
    def parse(cls, text: str) -> StopOn:
        kinds, patience = [], None
        for part in (p.strip() for p in (text or "").split(",")):
            if not part:
                continue
            kind, _, n = part.partition(":")
            if kind not in STOP_KINDS:
                raise UsageError(f"--stop-on cannot use {kind!r}",
                                 f"use a comma-separated subset of {','.join(STOP_KINDS)}")
            if n:
                if kind != "eval_regression" or not n.isdigit() or int(n) < 1:
                    raise UsageError(f"--stop-on {part!r}: only eval_regression takes a number",
                                     "eval_regression:N stops after N evaluations without "
                                     "improvement (N >= 1)")
                patience = int(n)
            kinds.append(kind)
        if not kinds:
            raise UsageError("--stop-on needs at least one kind", "e.g. --stop-on nan,divergence")
        return cls(tuple(dict.fromkeys(kinds)), patience)


def segment_start(run) -> int:
    """The first line of the run's last segment with records (what is running now)."""
    for seg in reversed(run.segments):
        lines = [int(t.line[0]) for t in seg.tables.values() if len(t)]
        if lines:
            return min(lines)
    return 0


def trigger(stop_on: StopOn, run, summary: dict) -> dict | None:
    """The first anomaly of the named kinds in the current segment, at a record (one with a
    step; stall is told by the clock), or None."""
    found = [a for a in summary.get("anomalies") or []
             if a["kind"] in stop_on.kinds and a["kind"] != "eval_regression"]
    if "eval_regression" in stop_on.kinds:       # early stopping's patience: any dip counts
        patience = stop_on.patience or Thresholds().eval_regression_evals
        found += anomalies(run, Thresholds(eval_regression_evals=patience,
                                           eval_regression_margin=0.0), kinds={"eval_regression"})
    start = segment_start(run)
    found = [a for a in found if a["kind"] == "stall"
             or (a["step"] is not None and (a["line"] or 0) >= start)]
    return min(found, key=lambda a: a["line"] or 0) if found else None


class Stopper:
    """Called by the watch loop after each refresh: on the first anomaly it names, writes the
    report and notifies (the summary now has `stopped`), then ends the training's process
    group in the background (procgroup.Escalation). With dry_run it only says what it would do."""

    def __init__(self, stop_on: StopOn, training: Training, grace: float = GRACE,
                 dry_run: bool = False, kill_after: float = KILL_AFTER):
        self.stop_on, self.training, self.grace = stop_on, training, grace
        self.dry_run, self.kill_after = dry_run, kill_after
        self.entry: dict | None = None
        self.escalation: Escalation | None = None
        self.said: set = set()

    @property
    def stopped(self) -> bool:
        return self.entry is not None

    def update(self, watch, last: bool = False) -> None:
        """After a refresh of the watch (last: its final one, the log has ended)."""
        if self.entry is not None:
            self._ended(wait=5.0 if last else 0.0)
            return
        if watch.summary is None:
            return
        found = trigger(self.stop_on, watch.run, watch.summary)
        if found is None:
            return
        say = watch.view.message if watch.view is not None else print
        what = f"{found['kind']} at step {found['step']} (line {found['line']}): {found['detail']}"
        if self.dry_run:
            if (found["kind"], found["step"]) not in self.said:
                self.said.add((found["kind"], found["step"]))
                say(f"--dry-run-stop: would stop the {self.training.target} on {what}: "
                    f"SIGINT, SIGTERM {self.grace:g} s later, SIGKILL {self.kill_after:g} s after "
                    "that")
            return
        say(f"logreport: stopping the {self.training.target} on {what}")
        self.entry = {"by": "logreport", "reason": found["kind"], "step": found["step"],
                      "last_step": watch.summary.get("last_step"),
                      "line": found["line"], "metric": found["metric"], "detail": found["detail"],
                      "pid": self.training.pid, "at": datetime.now().isoformat(timespec="milliseconds"),
                      "signal": None, "signals": [], "ended": False, "text": ""}
        self._describe()
        watch.run.info["stopped"] = self.entry
        watch.publish(whole=True)            # the summary says why ...
        watch.write_report()                 # ... the report too, and notifiers are told
        self.escalation = Escalation(self.training, self.grace, self.kill_after, say=say,
                                     on_signal=self._signalled)
        self.escalation.start()

    def _signalled(self, escalation: Escalation) -> None:
        """Each signal sent goes into the entry (from the escalation's thread)."""
        self.entry["signals"] = [list(s) for s in escalation.sent]
        self.entry["signal"] = escalation.ended_by
        self._describe()

    def _ended(self, wait: float) -> None:
        """Note when the training has ended (waiting up to `wait` s for it)."""
        if not self.entry["ended"] and (not self.training.alive() or
                                        (wait and self.training.wait(wait))):
            self.entry["ended"] = True
            self._describe()

    def _describe(self) -> None:
        e = self.entry
        ended = f"; {e['signal']} {'ended it' if e['ended'] else 'sent'}" if e["signal"] else ""
        e["text"] = (f"stopped by logreport at step {e['last_step']}: {e['reason']} at step "
                     f"{e['step']} ({e['detail']}){ended}")
