"""Run, Segment, Table, Series: append-only columnar storage of everything a log yielded."""
from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np

from . import store
from .events import EVAL, FINAL, NEW_RUN, PHASES, SYSTEM, TRAIN, Info, Marker, Record, Records
from .markers import Markers
from .store import Column, Spill

NAN = float("nan")
EXPORTED = ("step", "estimated", "epoch", "time")   # a tidy row's columns, besides its value


class Series:
    """One metric of one table: indexes into the table's records (`rec`), and values.

    The indexes are stored only once they stop being consecutive: a metric that every record
    has costs no index (`rec` is then computed: first, first + 1, ...). Both are compact
    `store.Column`s.
    """

    __slots__ = ("name", "value", "_first", "_rec", "_spill")

    def __init__(self, name: str, spill: Spill | None = None):
        self.name = name
        self._spill = spill
        self.value = Column(spill)
        self._first = 0
        self._rec: Column | None = None

    def __len__(self) -> int:
        return len(self.value)

    @property
    def rec(self):
        """Record indexes, an int64 numpy array."""
        if self._rec is not None:
            return np.asarray(self._rec, dtype=np.int64)
        return np.arange(self._first, self._first + len(self.value), dtype=np.int64)

    def rec_slice(self, lo: int, hi: int) -> np.ndarray:
        """Record indexes of values lo..hi-1, an int64 numpy array."""
        if self._rec is not None:
            return self._rec.slice(lo, hi).astype(np.int64)
        return np.arange(self._first + lo, self._first + min(hi, len(self.value)), dtype=np.int64)

    def last_index(self) -> int:
        """The record index of the last value (-1 when empty)."""
        if not len(self.value):
            return -1
        return int(self._rec[-1]) if self._rec is not None else self._first + len(self.value) - 1

    def add_indexes(self, first: int, n: int = 1) -> None:
        """Record indexes first .. first+n-1 (call before appending their values)."""
        if self._rec is None:
            if not len(self.value):
                self._first = first
                return
            if first == self._first + len(self.value):
                return
            self._rec = Column(self._spill)
            self._rec.extend(np.arange(self._first, self._first + len(self.value)))
        self._rec.extend(np.arange(first, first + n))


class Table:
    """The records of one phase of one segment: shared step/epoch/time/line columns, the
    input each record came from (`file`, an index into `Run.inputs`) and whether its step is
    an estimate (`estimated`, 0 or 1)."""

    __slots__ = ("phase", "step", "epoch", "time", "line", "file", "estimated", "estimated_count",
                 "series", "spill")

    def __init__(self, phase: str, spill: Spill | None = None):
        self.phase = phase
        self.spill = spill
        self.step, self.epoch, self.time, self.line, self.file, self.estimated = (
            Column(spill) for _ in range(6))
        self.estimated_count = 0
        self.series: dict[str, Series] = {}

    def __len__(self) -> int:
        return len(self.step)

    def append(self, rec: Record, file: int = 0) -> None:
        index = len(self.step)
        self.step.append(NAN if rec.step is None else rec.step)
        self.epoch.append(NAN if rec.epoch is None else rec.epoch)
        self.time.append(NAN if rec.time is None else rec.time)
        self.line.append(rec.line)
        self.file.append(file)
        self.estimated.append(1.0 if rec.estimated else 0.0)
        self.estimated_count += bool(rec.estimated)
        self._add_metrics(index, rec.metrics)

    def completes_last(self, rec: Record) -> bool:
        """Whether a record that `completes` the one before it gives only metrics the last
        record lacks, at its step (both unknown: an evaluation of no step), which
        `complete_last` then adds to it."""
        index = len(self.step) - 1
        if index < 0 or not rec.metrics:
            return False
        last = self.step[index]
        return (last == rec.step if rec.step is not None else last != last) and not any(
                name in self.series and self.series[name].last_index() == index
                for name in rec.metrics)

    def complete_last(self, rec: Record) -> None:
        """Add rec's metrics to the last record (see completes_last)."""
        self._add_metrics(len(self.step) - 1, rec.metrics)

    def _add_metrics(self, index: int, metrics: dict) -> None:
        """Each metric's value, as the record at `index`'s."""
        for name, value in metrics.items():
            series = self.series.get(name)
            if series is None:
                series = self.series[name] = Series(name, self.spill)
            series.add_indexes(index)
            series.value.append(value)

    def repeats_last(self, rec: Record) -> bool:
        """Whether rec is the last record printed again (another rank or writer): the same
        step, epoch and metric names, values equal to print precision."""
        index = len(self.step) - 1
        if index < 0 or self.step[index] != rec.step or not _same(self.epoch[index], rec.epoch):
            return False
        names = [name for name, series in self.series.items() if series.last_index() == index]
        if sorted(names) != sorted(rec.metrics):
            return False
        return all(_same(self.series[name].value[-1], rec.metrics[name]) for name in names)

    def extend(self, recs: Records, lo: int, hi: int, file: int = 0) -> None:
        """Append records lo..hi-1 of a block, as `append` would one by one."""
        index = len(self.step)
        for column, values in ((self.step, recs.step), (self.epoch, recs.epoch),
                               (self.time, recs.time), (self.line, recs.line)):
            column.extend(values[lo:hi])
        self.file.extend(np.full(hi - lo, file, dtype=np.float64) if recs.file is None
                         else np.asarray(recs.file, dtype=np.float64)[lo:hi])
        if recs.estimated is None:
            self.estimated.extend(np.zeros(hi - lo))
        else:
            flags = np.asarray(recs.estimated, dtype=np.float64)[lo:hi]
            self.estimated.extend(flags)
            self.estimated_count += int(flags.sum())
        for name, values in recs.metrics.items():
            series = self.series.get(name)
            if series is None:
                series = self.series[name] = Series(name, self.spill)
            series.add_indexes(index, hi - lo)
            series.value.extend(values[lo:hi])

    def last_step(self) -> float:
        return self.step[-1] if len(self.step) else NAN


def _same(a: float, b: float | None) -> bool:
    """Two printed values are the same number (NaN is NaN; a missing value is NaN)."""
    b = NAN if b is None else b
    if a != a or b != b:
        return a != a and b != b
    return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


class Segment:
    """A stretch of a run whose steps only go forward; a resume or re-run starts a new one."""

    def __init__(self, index: int, label: str = "", spill: Spill | None = None):
        self.index = index
        self.label = label or f"segment {index}"
        self.tables = {phase: Table(phase, spill) for phase in PHASES}

    @property
    def train(self) -> Table:
        return self.tables[TRAIN]

    @property
    def eval(self) -> Table:
        return self.tables[EVAL]

    def is_empty(self) -> bool:
        return not any(len(t) for t in self.tables.values())


class Reading:
    """What reading inputs keeps besides the records themselves: the inputs (records and markers
    name theirs), the format, lines read and not understood, facts, markers and the clock. A
    `Run` is one; so is a folder's file read on its own before the merge (`merge.Collected`)."""

    def __init__(self, source: str, fmt: str = ""):
        self.source = source
        self.format = fmt
        self.files: list[str] = []
        self.inputs: list[str] = []     # every input read; records name theirs by index
        self.info: dict = {}
        self.markers = Markers()
        self.spill = Spill()       # the sealed chunks of its columns, in a temporary file
        self.lines = 0
        self.unparsed = 0
        self.unparsed_samples: list[tuple[str, int, str]] = []     # (input, line, text)
        self.repeats = 0           # records printed twice (ranks, writers): kept once
        self.first_time: float | None = None   # span of the time stamps of its records and
        self.last_time: float | None = None    # markers
        self.clock: tuple[float, float] | None = None   # span of every time-stamped line read
        self.modified: float | None = None     # latest modification time of its inputs
        self.timed_train = False               # a training record came with a time stamp

    def input_id(self, name: str) -> int:
        """The index of an input in `inputs` (added when new)."""
        if name not in self.inputs:
            self.inputs.append(name)
        return self.inputs.index(name)

    def input_name(self, file) -> str:
        """The name of input number `file` (the run's source when unknown)."""
        i = int(file)
        return self.inputs[i] if 0 <= i < len(self.inputs) else self.source

    def saw_modified(self, mtime: float | None) -> None:
        """An input was last modified at mtime."""
        if mtime is not None and (self.modified is None or mtime > self.modified):
            self.modified = mtime

    def saw_clock(self, t: float | None) -> None:
        """Widen the span of the log's time-stamped lines to include t."""
        clock = self.clock
        if t is None or t != t or clock and clock[0] <= t <= clock[1]:
            return
        self.clock = (min(clock[0], t), max(clock[1], t)) if clock else (t, t)

    def saw_time(self, t: float | None) -> None:
        """Widen the span of the records' and markers' time stamps to include t."""
        if t is None or t != t:
            return
        if self.first_time is None or t < self.first_time:
            self.first_time = t
        if self.last_time is None or t > self.last_time:
            self.last_time = t

    def note_unparsed(self, number: int, text: str, file: int = 0, keep: int = 50) -> None:
        self.unparsed += 1
        if len(self.unparsed_samples) < keep:
            self.unparsed_samples.append((self.input_name(file), number, text[:300]))


class Run(Reading):
    """Everything read from one source (a log file, a folder, stdin): its records in segments
    of columnar tables."""

    def __init__(self, source: str, fmt: str = ""):
        super().__init__(source, fmt)
        self.segments: list[Segment] = [Segment(0, spill=self.spill)]
        self.memo: dict = {}                   # derived figures, keyed by what they read
        self.label: str | None = None          # a name that tells it from runs named alike

    @property
    def segment(self) -> Segment:
        return self.segments[-1]

    def new_segment(self, label: str = "") -> Segment:
        """Start a new segment unless the current one is still empty."""
        if self.segment.is_empty():
            if label:
                self.segment.label = label
        else:
            self.segments.append(Segment(len(self.segments), label, self.spill))
        return self.segment

    def add(self, event, file: int = 0) -> None:
        """Append one parser event read from input number `file`."""
        if isinstance(event, Record):
            self._add_record(event, file)
        elif isinstance(event, Records):
            self._add_records(event, file)
        elif isinstance(event, Info):
            self.info.update(event.facts)
        elif isinstance(event, Marker):
            if event.file is None:
                event.file = self.input_name(file)
            if event.kind == NEW_RUN:
                self.new_segment(str(event.detail or ""))
            self.markers.append(event)
            self.saw_time(event.time)

    def _add_record(self, rec: Record, file: int = 0) -> None:
        table = self.segment.tables[rec.phase]
        if rec.completes and table.completes_last(rec):
            table.complete_last(rec)
            self.saw_time(rec.time)
            return
        if rec.phase == TRAIN and rec.step is not None:
            last = table.last_step()
            if rec.step == last and table.repeats_last(rec):
                self.repeats += 1             # the same record printed twice: kept once
                return
            if not math.isnan(last) and rec.step < last and not rec.estimated:
                table = self.new_segment(f"restart at step {rec.step} (line {rec.line})").train
        elif rec.phase == TRAIN and rec.epoch is not None and len(table) \
                and rec.epoch < table.epoch[-1]:     # no step: an epoch that goes back tells it
            table = self.new_segment(f"restart at epoch {plain(rec.epoch)} (line {rec.line})").train
        table.append(rec, file)
        if rec.phase != SYSTEM:               # machine samples keep the wall clock, not the log's
            self.saw_time(rec.time)
            self.timed_train = self.timed_train or (rec.phase == TRAIN and rec.time is not None)

    def _add_records(self, recs: Records, file: int = 0) -> None:
        """A block of records: the same segments as adding them one by one."""
        n = len(recs)
        if not n:
            return
        step = np.asarray(recs.step, dtype=np.float64)
        back = []
        first_back = False
        if recs.phase == TRAIN:
            table = self.segment.train
            last = table.last_step()
            if np.isnan(step).any() or _repeats_within(recs, step) \
                    or step[0] == last and table.repeats_last(block_record(recs, 0)) \
                    or recs.estimated is not None and ((step[1:] < step[:-1]).any()
                                                       or step[0] < last):
                # rare (missing steps, a record printed twice, or estimates that do not rise:
                # an estimate starts no segment): the one-by-one rules
                for i in range(n):
                    self._add_record(block_record(recs, i), block_file(recs, i, file))
                return
            first_back = bool(step[0] < last)
            back = (np.flatnonzero(step[1:] < step[:-1]) + 1).tolist()
        bounds = [0] + back + [n]
        for j, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
            if j > 0 or first_back:
                self.new_segment(f"restart at step {int(step[lo])} (line {int(recs.line[lo])})")
            self.segment.tables[recs.phase].extend(recs, lo, hi, file)
        times = np.asarray(recs.time)
        known = np.flatnonzero(~np.isnan(times))
        if len(known):
            self.saw_time(float(times[known[0]]))
            self.saw_time(float(times[known[-1]]))
            self.timed_train = self.timed_train or recs.phase == TRAIN

    def tables(self, phase: str, segments: range | None = None):
        """(segment, table) pairs of one phase that hold records (of a range of segment
        indexes only, if given: a log of many processes is judged one training at a time)."""
        for seg in self.segments if segments is None else self.segments[segments.start:segments.stop]:
            table = seg.tables[phase]
            if len(table):
                yield seg, table

    def arrays(self, phase: str, metric: str) -> dict[str, np.ndarray]:
        """One metric over all segments as numpy arrays: step, epoch, time, line, estimated (1
        where the step is an estimate), value and segment (NaN marks a missing step/epoch/time).
        Whole: for short series (evals); a long one is read with `chunks`."""
        parts: dict[str, list] = {k: [] for k in ("step", "epoch", "time", "line", "estimated",
                                                  "value", "segment")}
        for seg, table in self.tables(phase):
            series = table.series.get(metric)
            if series is None:
                continue
            idx = series.rec
            for column in ("step", "epoch", "time", "line", "estimated"):
                parts[column].append(getattr(table, column).take(idx))
            parts["value"].append(np.asarray(series.value))
            parts["segment"].append(np.full(len(idx), seg.index, dtype=np.int64))
        return {k: np.concatenate(v) if v else np.array([], dtype=np.int64 if k == "segment"
                                                         else float)
                for k, v in parts.items()}

    def metric_names(self, phase: str) -> list[str]:
        names: dict[str, None] = {}
        for _, table in self.tables(phase):
            names.update(dict.fromkeys(table.series))
        return list(names)

    def count(self, phase: str = TRAIN) -> int:
        return sum(len(t) for _, t in self.tables(phase))

    def rows(self):
        """Tidy rows: (segment, phase, step, epoch, time, metric, value)."""
        for seg, phase, name, steps, epochs, times, vals in self.series_columns():
            for step, epoch, t, value in zip(steps.tolist(), epochs.tolist(), times.tolist(),
                                             vals.tolist()):
                yield seg, phase, plain(step), plain(epoch), plain(t), name, value

    def series_columns(self, size: int | None = None, columns=("step", "epoch", "time")):
        """The tidy rows of `rows()`, in the same order, as numpy slices of at most `size` rows
        (default: one chunk): (segment, phase, metric, *the table `columns`, value); NaN marks
        a missing step/epoch/time (`estimated`: 1 where the step is an estimate)."""
        for seg in self.segments:
            for phase in (TRAIN, EVAL, FINAL):
                table = seg.tables[phase]
                for name, series in table.series.items():
                    for part in _slices(table, series, columns, size):
                        yield (seg.index, phase, name, *(part[c] for c in columns),
                               part["value"])

    def chunks(self, phase: str, metric: str, columns=("step", "line"),
               segments: range | None = None):
        """One metric over all segments (or those of a range of indexes), in order, in slices
        of at most one chunk (bounded memory however long the run): dicts of numpy arrays, the
        table `columns` asked for and `value`, and the `segment` index."""
        for seg, table in self.tables(phase, segments):
            series = table.series.get(metric)
            if series is not None:
                for part in _slices(table, series, columns):
                    part["segment"] = seg.index
                    yield part

    def to_frame(self):
        """The tidy DataFrame: run, segment, phase, step, step_estimated, epoch, time, metric,
        value."""
        import pandas as pd

        rows = [(seg, phase, plain(step), bool(est), plain(epoch), plain(t), name, value)
                for seg, phase, name, *columns in self.series_columns(columns=EXPORTED)
                for step, est, epoch, t, value in zip(*(c.tolist() for c in columns))]
        frame = pd.DataFrame(rows, columns=["segment", "phase", "step", "step_estimated", "epoch",
                                            "time", "metric", "value"])
        frame.insert(0, "run", self.name)
        frame["step"] = frame["step"].astype("Int64")
        frame["time"] = pd.to_datetime(frame["time"], unit="s")
        return frame

    @property
    def name(self) -> str:
        """A short name for the run: the file or folder name (its `label`, where given;
        `<stdin>`, as messages say it, for standard input)."""
        import os

        if self.label:
            return self.label
        if self.source == "-":
            return "<stdin>"
        base = os.path.basename(self.source.rstrip("/")) or self.source
        if base in ("console.log", "trainer_log.jsonl", "run.log") and os.sep in self.source:
            parent = os.path.basename(os.path.dirname(self.source.rstrip("/")))
            return f"{parent}/{base}" if parent else base
        return base


def tell_apart(runs) -> None:
    """Label runs whose names are alike (`sft` for both saves/full/sft and saves/lora/sft) by
    as much of the end of their paths as tells them apart (`full/sft`, `lora/sft`)."""
    import os

    alike: dict[str, list[Run]] = {}
    for run in runs:
        alike.setdefault(run.name, []).append(run)
    for name, group in alike.items():
        if len(group) < 2:
            continue
        paths = [(run.source if "://" in run.source else os.path.abspath(run.source))
                 .replace(os.sep, "/").rstrip("/").split("/") for run in group]
        for depth in range(name.count("/") + 2, max(map(len, paths)) + 1):
            labels = ["/".join(path[-depth:]) for path in paths]
            if len(set(labels)) == len(labels):
                break
        for run, label in zip(group, labels):
            run.label = label


def _slices(table: Table, series: Series, columns, size: int | None = None):
    """A series with the table columns of its records, `size` values at a time."""
    size = size or store.CHUNK
    for lo in range(0, len(series), size):
        yield Part(table, series.rec_slice(lo, lo + size), columns,
                   value=series.value.slice(lo, lo + size))


class Part(dict):
    """A slice of a series (`Run.chunks`): its values, and the table columns asked for, each
    decoded when first read (a detector that finds nothing reads no step or line)."""

    def __init__(self, table: Table, idx: np.ndarray, columns, **items):
        super().__init__(**items)
        self._columns = (table, idx, columns)

    def __missing__(self, column: str) -> np.ndarray:
        table, idx, columns = self._columns
        if column not in columns:
            raise KeyError(column)
        found = self[column] = getattr(table, column).take(idx)
        return found

    def but(self, **items) -> Part:
        """A copy with these items replaced (the columns not read yet still to be read)."""
        table, idx, columns = self._columns
        return Part(table, idx, columns, **{**self, **items})


def _repeats_within(recs: Records, step: np.ndarray) -> bool:
    """Whether a record of a block repeats the one before it (Table.repeats_last: the same
    step, epoch and values; a block's records have the same metric names)."""
    same = step[1:] == step[:-1]
    for column in (recs.epoch, *recs.metrics.values()):
        if not same.any():
            return False
        a = np.asarray(column, dtype=np.float64)
        x, y = a[1:], a[:-1]
        with np.errstate(invalid="ignore"):
            same &= (x != x) & (y != y) | (x == y) \
                | (np.abs(x - y) <= 1e-9 * np.maximum(np.abs(x), np.abs(y)))
    return bool(same.any())


def block_record(recs: Records, i: int) -> Record:
    """Record i of a block, as one event."""
    def value(x):
        return None if x != x else float(x)

    step = value(recs.step[i])
    return Record(recs.phase, {k: float(v[i]) for k, v in recs.metrics.items()},
                  step=None if step is None else int(step), epoch=value(recs.epoch[i]),
                  time=value(recs.time[i]), line=int(recs.line[i]),
                  estimated=recs.estimated is not None and bool(recs.estimated[i]))


def block_file(recs: Records, i: int, file: int) -> int:
    """The input of record i of a block (`file` when the block does not say)."""
    return file if recs.file is None else int(recs.file[i])


def plain(x):
    """A stored number for output: None for missing (NaN), an int when integral."""
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return None
    return int(x) if x.is_integer() else x


def json_number(v: float):
    """A value for JSON: non-finite values become the strings "nan", "inf", "-inf"."""
    if math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def iso_time(t: float | None) -> str | None:
    """Seconds on the log's own clock to ISO 8601 (no timezone: logs print local time)."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, tz=timezone.utc).replace(tzinfo=None).isoformat()
