"""The events of a block added to a run, its training and evaluation records held back and
added at once.

A console's fast path gives, between two evaluations or checkpoints, a block of training records
and the last dict on its own; adding each to the run costs numpy calls and a column append per
field (most of the main process's time on a log that evaluates every few steps). A `Batch` keeps
such records while adding them later changes nothing, then adds them as one `Records`: their
steps rise past every step before them (no new segment, no repeat to fold), they carry no time
stamp (the run's clock takes the first and last of a block), and they share their metrics (a
step that is an estimate stays marked so). It keeps evaluation records with no time stamp and
the same metrics alike (on such a console, one every few training steps): they start no segment
and fold no repeat, and their table is theirs alone. Anything else is added at once, after the
held records when it is a training or evaluation record or starts a segment. Only a `Run` holds
records (a folder's file kept in arrival order, `merge.Collected`, takes each as it comes).
"""
from __future__ import annotations

import math

import numpy as np

from .events import EVAL, NEW_RUN, TRAIN, Info, Marker, Record, RecordRows, Records
from .model import Reading, Run


class Batch:
    """Adds events read from input `file` to a reading; `flush()` adds what is held."""

    def __init__(self, reading: Reading, file: int = 0):
        self.reading, self.file = reading, file
        self.holds = isinstance(reading, Run)
        self.held: list = []                 # Records and single Records, in order
        self.keys: frozenset | None = None
        self.last = math.nan                 # the last held step
        self.evals: list[Record] = []        # evaluation records, in order

    def add(self, event) -> None:
        if isinstance(event, Info):              # (facts: never held, nothing to flush)
            self.reading.add(event, self.file)
            return
        if self.holds and (self._hold(event) or self._hold_eval(event)):
            return
        if isinstance(event, RecordRows):
            event = event.records()
        if event.phase in (TRAIN, EVAL) if isinstance(event, (Record, Records)) else \
                isinstance(event, Marker) and event.kind == NEW_RUN:
            self.flush()
        self.reading.add(event, self.file)

    def flush(self) -> None:
        if self.evals:
            self.reading.add(_block(self.evals, EVAL), self.file)
            self.evals = []
        if not self.held:
            return
        parts, single = [], []            # blocks, and the single records since the last one
        for event in self.held:
            if isinstance(event, Record):
                single.append(event)
                continue
            if single:
                parts.append(_block(single, TRAIN))
                single = []
            if isinstance(event, RecordRows) and parts and isinstance(parts[-1], RecordRows) \
                    and parts[-1].joins(event):
                parts[-1] = RecordRows(event.columns, parts[-1].lo, event.hi, event.base)
            else:
                parts.append(event)
        if single:
            parts.append(_block(single, TRAIN))
        parts = [p.records() if isinstance(p, RecordRows) else p for p in parts]
        estimated = None
        if any(p.estimated is not None for p in parts):
            estimated = np.concatenate([np.zeros(len(p)) if p.estimated is None
                                        else np.asarray(p.estimated, dtype=np.float64)
                                        for p in parts])
        joined = parts[0] if len(parts) == 1 else Records(
            TRAIN, *(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("step", "epoch", "time", "line")),
            {k: np.concatenate([p.metrics[k] for p in parts]) for k in parts[0].metrics},
            estimated)
        self.held, self.keys, self.last = [], None, math.nan
        self.reading.add(joined, self.file)

    def _hold(self, event) -> bool:
        """Hold a training record if adding it later changes nothing (see the module)."""
        if isinstance(event, Record):
            if event.phase != TRAIN or event.step is None or event.time is not None:
                return False
            first = last = float(event.step)
        elif isinstance(event, Records):
            if event.phase != TRAIN or event.file is not None or not len(event) \
                    or not np.isnan(event.time).all():
                return False
            steps = np.asarray(event.step, dtype=np.float64)
            if not (steps[1:] > steps[:-1]).all():
                return False
            first, last = float(steps[0]), float(steps[-1])
        elif isinstance(event, RecordRows):
            columns, lo, hi = event.columns, event.lo, event.hi
            if not columns.rise(lo, hi):
                return False
            first, last = float(columns.step[lo]), float(columns.step[hi - 1])
        else:
            return False
        keys = event.columns.keys if isinstance(event, RecordRows) else frozenset(event.metrics)
        before = self.last if self.held else self.reading.segment.train.last_step()
        if not (first > before or math.isnan(before) and first == first) \
                or self.held and keys != self.keys:
            return False
        self.held.append(event)
        self.keys, self.last = keys, last
        return True

    def _hold_eval(self, event) -> bool:
        """Hold an evaluation record with no time stamp and the metrics of those held."""
        if not isinstance(event, Record) or event.phase != EVAL or event.time is not None \
                or event.completes \
                or self.evals and event.metrics.keys() != self.evals[0].metrics.keys():
            return False
        self.evals.append(event)
        return True


def _block(records: list[Record], phase: str) -> Records:
    """Single records of a phase (of the same metrics) as one block."""
    estimated = [float(r.estimated) for r in records]
    return Records(phase, np.array([math.nan if r.step is None else float(r.step) for r in records]),
                   np.array([math.nan if r.epoch is None else float(r.epoch) for r in records]),
                   np.full(len(records), math.nan), np.array([float(r.line) for r in records]),
                   {k: np.array([float(r.metrics[k]) for r in records])
                    for k in records[0].metrics},
                   np.array(estimated) if any(estimated) else None)
