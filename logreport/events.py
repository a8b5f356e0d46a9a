"""What a format parser emits: records of metrics, facts about the run, and markers."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRAIN, EVAL, FINAL = "train", "eval", "final"
MAX_LINE = 1 << 20          # characters of a line a parser gets: the rest is cut (junk)
SYSTEM = "system"            # samples of the machine (watch --gpu)
PHASES = (TRAIN, EVAL, FINAL, SYSTEM)


@dataclass(slots=True)
class Record:
    """Metric values logged together at one point of a run.

    phase: "train" | "eval" | "final" | "system"; step: global step (int) or None; epoch: number
    or None; time: seconds since 1970 of the log's own (naive, local) clock, or None; line: 1-based
    physical line number in the source; estimated: the log states no step for this record, and
    `step` is the parser's estimate (from the epoch, the record's ordinal, or kept monotone);
    completes: its metrics are the rest of the record before it at its step (a metrics block
    that restates an evaluation's dict given before it, the rows of a block after a pause).
    """

    phase: str
    metrics: dict[str, float]
    step: int | None = None
    epoch: float | None = None
    time: float | None = None
    line: int = 0
    estimated: bool = False
    completes: bool = False


@dataclass(slots=True)
class Info:
    """Facts about the run (steps_per_epoch, total_epochs, total_steps, world_size, version...)."""

    facts: dict
    line: int = 0


# Marker kinds a parser may emit.
NEW_RUN = "new_run"          # a fresh start in the same file: begins a new segment
RESUME = "resume"            # training resumed from a checkpoint
CHECKPOINT = "checkpoint"    # a checkpoint was saved
TRACEBACK = "traceback"      # a Python traceback; detail = the exception line
OOM = "oom"                  # out of memory (CUDA / GPU / host)
KILLED = "killed"            # Killed, KeyboardInterrupt, SIGTERM, Pod failed
FINISHED = "finished"        # training reported its end
TABLE = "table"              # a per-category table (detail = {"title", "header", "rows"})


@dataclass(slots=True)
class Marker:
    """Something that happened at a line: kind is one of the constants above."""

    kind: str
    detail: object = ""
    line: int = 0
    step: int | None = None
    time: float | None = None
    file: str | None = None      # the input it came from (set when read, not by parsers)


@dataclass(slots=True)
class Records:
    """Many records of one phase with the same metrics, as numpy float64 columns.

    What a format's fast path emits for a stretch of like lines: one entry per record in each
    column (NaN where a record has no step, epoch or time), one value column per metric;
    `estimated` (None: no step is an estimate) marks the records whose step is an estimate;
    `file` (None: the input being read) gives each record's input, as an index into the run's
    inputs (a folder's merged files).
    """

    phase: str
    step: object
    epoch: object
    time: object
    line: object
    metrics: dict
    estimated: object = None
    file: object = None

    def __len__(self) -> int:
        return len(self.line)


@dataclass(eq=False)
class RecordColumns:
    """A block's training records of one kind as columns, a row each: steps (NaN: none yet),
    epochs, lines (in the block: its first is 0) and metrics, all float64; shared by the
    `RecordRows` of the block's stretches. `stalls[r]`: how many rows up to r have a step that
    does not rise past the one before (made when first asked)."""

    step: np.ndarray
    epoch: np.ndarray
    line: np.ndarray
    metrics: dict
    stalls: np.ndarray | None = None

    def __post_init__(self):
        self.keys = frozenset(self.metrics)

    def rise(self, lo: int, hi: int) -> bool:
        """Whether the steps of rows lo..hi-1 rise."""
        if self.stalls is None:
            self.stalls = np.concatenate(([0], np.cumsum(~(self.step[1:] > self.step[:-1]))))
        return self.stalls[hi - 1] == self.stalls[lo]


class RecordRows:
    """Rows lo..hi-1 of a block's `RecordColumns` (whose first line is `base`): training
    records made a `Records` only when added, a `Batch` having joined a block's adjacent ones."""

    __slots__ = ("columns", "lo", "hi", "base")
    phase = TRAIN

    def __init__(self, columns: RecordColumns, lo: int, hi: int, base: int):
        self.columns, self.lo, self.hi, self.base = columns, lo, hi, base

    def __len__(self) -> int:
        return self.hi - self.lo

    def joins(self, other: RecordRows) -> bool:
        """Whether `other` goes on where these rows end, in the same block."""
        return other.columns is self.columns and other.lo == self.hi and other.base == self.base

    def records(self) -> Records:
        """The rows as a Records (of no time stamps)."""
        columns, lo, hi = self.columns, self.lo, self.hi
        return Records(TRAIN, columns.step[lo:hi], columns.epoch[lo:hi], np.full(hi - lo, np.nan),
                       columns.line[lo:hi] + self.base,
                       {k: v[lo:hi] for k, v in columns.metrics.items()})


class Frames(list):
    """(number, text) frames of whole lines, as `sources.frames` splits and decodes them: what a
    format's fast path gives its caller to feed (split ahead, in a worker say)."""


Event = Record | Info | Marker | Records

