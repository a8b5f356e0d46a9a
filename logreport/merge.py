"""An output folder's files merged into one run, column-wise: each file is kept as it comes
(`Collected`: compact columns, no object per record), then `merge` adds from each later file
only what the earlier ones lack (see `pipeline.read_folder`).
"""
from __future__ import annotations

import os
from itertools import chain

import numpy as np

from . import formats
from .events import KILLED, OOM, PHASES, TRACEBACK, TRAIN, Info, Marker, Record, Records
from .model import NAN, Reading, Run
from .sources import basename
from .store import CHUNK, Column

_PHASE_CODE = {phase: code for code, phase in enumerate(PHASES)}
_TRAIN_CODE = _PHASE_CODE[TRAIN]
FAILURES = (TRACEBACK, OOM, KILLED)      # markers kept from every file (other kinds: once)
_FIELDS = ("phase", "step", "epoch", "time", "line", "estimated", "file", "sig")
LEFT_OUT = "left out"                     # files_used of a folder's file of another run
CLOCK = ("bar_step", "elapsed_seconds", "remaining_seconds")    # facts a file states as it goes


class _Rows:
    """Records as columns: phase code, step, epoch, time, line (NaN for None), the index of
    each record's metric names in `names` (in the record's order), and the values of each
    metric: an array for the records start.. of its span (`values` name -> (start, array); a
    value is meaningful only where the record's names hold the metric)."""

    def __init__(self):
        self.phase = np.zeros(0, dtype=np.int8)
        self.step, self.epoch, self.time, self.estimated, self.file = (np.zeros(0)
                                                                       for _ in range(5))
        self.line = np.zeros(0, dtype=np.int64)
        self.sig = np.zeros(0, dtype=np.int64)
        self.values: dict[str, tuple[int, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.line)

    def metric(self, name: str, idx: np.ndarray) -> np.ndarray:
        """The values of a metric at records idx (which must have it)."""
        start, values = self.values[name]
        return values[idx - start]

    def set_metric(self, name: str, idx: np.ndarray, new: np.ndarray) -> None:
        """Give records idx (sorted) values of a metric, widening its span as needed."""
        start, values = self.values.get(name, (int(idx[0]), np.zeros(0)))
        lo, hi = min(start, int(idx[0])), max(start + len(values), int(idx[-1]) + 1)
        if (lo, hi) != (start, start + len(values)):
            values = np.concatenate([np.full(start - lo, NAN), values,
                                     np.full(hi - start - len(values), NAN)])
        values[idx - lo] = new
        self.values[name] = (lo, values)


class _Names:
    """The distinct ordered tuples of metric names, numbered, with a membership test."""

    def __init__(self):
        self.tuples: list[tuple] = []
        self.ids: dict[tuple, int] = {}

    def id(self, names: tuple) -> int:
        got = self.ids.get(names)
        if got is None:
            got = self.ids[names] = len(self.tuples)
            self.tuples.append(names)
        return got

    def has(self, name: str) -> np.ndarray:
        """For each numbered tuple, whether it holds name (index with a sig column)."""
        return np.array([name in t for t in self.tuples], dtype=bool)


class Collected(Reading):
    """What one file of a folder gave, kept as it comes, to merge it with the other files'
    (`merge`): its records as compact columns in arrival order (no object per record), its
    markers, and its facts folded both ways (the last value of each, and the first)."""

    def __init__(self, source: str):
        super().__init__(source)
        self.count = 0                      # records so far
        self.fields = {k: Column(self.spill) for k in _FIELDS}
        self.values: dict[str, Column] = {}
        self.names = _Names()               # the metric names of records ("sig" numbers them)
        self.facts_last: dict = {}
        self.facts_first: dict = {}
        self.at: dict = {}                  # fact -> where first given; see `where`
        self.marks: list[tuple[tuple, Marker]] = []

    def where(self) -> tuple:
        """The place of a fact or marker among the records: before record `count`, in order."""
        return self.count, 0, len(self.at) + len(self.marks)

    def add(self, event, file: int = 0) -> None:
        """Keep one event of this file (`file` is always this file: 0)."""
        if isinstance(event, Info):
            for k, v in event.facts.items():
                if k not in self.facts_first:
                    self.at[k] = self.where()
                    self.facts_first[k] = v
                self.facts_last[k] = v
        elif isinstance(event, Marker):
            if event.file is None:
                event.file = self.source
            self.marks.append((self.where(), event))
            self.saw_time(event.time)
        elif isinstance(event, Records):
            n = len(event)
            estimated = np.zeros(n) if event.estimated is None else event.estimated
            columns = (np.full(n, _PHASE_CODE[event.phase]), np.trunc(event.step), event.epoch,
                       event.time, event.line, estimated, np.zeros(n),
                       np.full(n, self.names.id(tuple(event.metrics))))
            known = np.asarray(event.time)[~np.isnan(event.time)]
            if len(known):
                self.saw_time(float(known.min()))
                self.saw_time(float(known.max()))
                self.timed_train = self.timed_train or event.phase == TRAIN
            for field, values in zip(_FIELDS, columns):
                self.fields[field].extend(values)
            for name, values in event.metrics.items():
                self._metric(name).extend(values)
            self.count += n
        elif isinstance(event, Record):
            columns = (_PHASE_CODE[event.phase], NAN if event.step is None else event.step,
                       NAN if event.epoch is None else event.epoch,
                       NAN if event.time is None else event.time, event.line,
                       float(event.estimated), 0.0, self.names.id(tuple(event.metrics)))
            self.saw_time(event.time)
            for field, value in zip(_FIELDS, columns):
                self.fields[field].append(value)
            for name, value in event.metrics.items():
                self._metric(name).append(value)
            self.count += 1
            self.timed_train = self.timed_train or (event.phase == TRAIN and event.time is not None)

    def _metric(self, name: str) -> Column:
        """The column of a metric, filled with NaN up to the current record."""
        column = self.values.get(name)
        if column is None:
            column = self.values[name] = Column(self.spill)
        if len(column) < self.count:
            column.extend(np.full(self.count - len(column), NAN))
        return column

    def rows(self, names: _Names) -> _Rows:
        """The records as numpy columns, their names numbered in `names`."""
        rows = _Rows()
        for field in _FIELDS:
            setattr(rows, field, np.asarray(self.fields[field]))
        rows.phase = rows.phase.astype(np.int8)
        rows.line = rows.line.astype(np.int64)
        ids = np.array([names.id(t) for t in self.names.tuples], dtype=np.int64)
        rows.sig = ids[rows.sig.astype(np.int64)] if len(ids) else rows.sig.astype(np.int64)
        rows.values = {name: (0, np.asarray(column)) for name, column in self.values.items()}
        return rows


def merge_into(run: Run, parts: list[Collected]) -> None:
    """Merge the files of a folder, each parsed alone into a Collected, into run; a file of
    another run is left out (_another_run), and `files_used` says so."""
    named = []
    used: dict[str, str] = {}
    for part in parts:
        why = _another_run(part, named) if part.files else None
        if why:                                     # (none of its lines is this run's)
            used[part.source] = f"{LEFT_OUT}: {why}"
            continue
        run.lines += part.lines
        run.unparsed += part.unparsed
        run.unparsed_samples.extend(part.unparsed_samples[:50 - len(run.unparsed_samples)])
        if part.files:
            run.format = run.format or part.format
            named.append(part)
    events = merge(named, used)
    first = next(events, None)                      # (`used` is filled by then)
    for part in named:
        run.input_id(part.source)
        run.saw_modified(part.modified)
        if used.get(part.source) == "nothing new":  # (a copy's clock is no run's time)
            continue
        run.saw_time(part.first_time)
        run.saw_time(part.last_time)
        for t in part.clock or ():
            run.saw_clock(t)
        run.timed_train = run.timed_train or part.timed_train
    for event in chain([first], events) if first is not None else ():
        run.add(event)
    run.files.extend(name for name, what in used.items()
                     if what != "nothing new" and not what.startswith(LEFT_OUT))
    run.info["files_used"] = {os.path.basename(name): what for name, what in used.items()}


def _another_run(part: Collected, before: list[Collected]) -> str | None:
    """Why a folder's file is of another run than the files before it (None: it is not): a
    log of another tool (a PaddleDetection log in a LLaMA-Factory output folder), or a
    console of another training written to the same folder: its total steps another, or its
    training losses at the steps the files before state other than theirs."""
    tool = formats.describe(part.format).tool
    tools = {formats.describe(p.format).tool for p in before} - {""}
    if tool and tools and tool not in tools:
        return f"a {tool} log, another tool's than this run's ({', '.join(sorted(tools))})"
    total = part.facts_first.get("total_steps")
    for other in before:
        stated = other.facts_last.get("total_steps")
        if total and stated and total != stated:
            return f"another training's: {total} steps in all, {basename(other.source)} {stated}"
    steps, losses = _stated_losses(part)
    for other in before:
        their_steps, theirs = _stated_losses(other)
        _, mine, at = np.intersect1d(steps, their_steps, assume_unique=True, return_indices=True)
        a, b = losses[mine], theirs[at]     # (one loss as two files print it: 4 decimals,
        differ = int(np.count_nonzero(np.abs(a - b) > 2e-3 * np.maximum(abs(a), abs(b)) + 1e-4))
        if len(mine) >= 3 and 2 * differ > len(mine):         # or 4 significant digits)
            return (f"another run's: {differ} of its {len(mine)} training losses at the "
                    f"steps {basename(other.source)} states differ")
    return None


def _stated_losses(part: Collected) -> tuple[np.ndarray, np.ndarray]:
    """The stated steps of a file's training records with a loss, and those losses (arrays, a
    step once: its last)."""
    loss = part.values.get("loss")
    if loss is None:
        return np.zeros(0), np.zeros(0)
    values = np.full(part.count, NAN)
    values[:len(loss)] = np.asarray(loss)
    phase, step = np.asarray(part.fields["phase"]), np.asarray(part.fields["step"])
    keep = np.flatnonzero((phase == _TRAIN_CODE) & (np.asarray(part.fields["estimated"]) == 0)
                          & ~np.isnan(step) & np.isfinite(values))
    steps, last = np.unique(step[keep][::-1], return_index=True)      # (the last of a step)
    return steps, values[keep][::-1][last]


def merge(parts: list[Collected], used: dict):
    """The events of several files of one run, without duplicates (see read_folder): facts,
    records (as Records blocks), markers. `used` is filled before the first comes.

    Column-wise: each file's records become numpy columns, matched to the records kept so far
    by their (phase, step) key; a file's records without a step, other than train ones, take
    the last step of the files before it (their final record's, after the last logged loss:
    where the results files' final metrics and evaluation after training were). The first
    file's markers come among the records where it gave them; the other files' after them."""
    names = _Names()
    kept = _Rows()
    key_sorted = np.zeros(0, dtype=np.int64)    # (phase, step) keys of kept records, sorted,
    key_row = np.zeros(0, dtype=np.int64)       # and the kept record each one names
    facts: dict = {}
    markers: list[Marker] = []
    placed: list[tuple[int, Marker]] = []     # the first file's, before its record N
    base_monotonic = True
    for index, part in enumerate(parts):
        rows = part.rows(names)
        rows.file[:] = index
        gave: dict[str, tuple] = {}     # what -> (count, where first given)
        new = part.facts_last if index == 0 else \
            {k: (part.facts_last if k in CLOCK else part.facts_first)[k]
             for k in part.facts_first if k not in facts}
        facts.update(new)
        for k in new:
            gave[k] = (0, part.at[k])
        kinds = {m.kind for m in markers}
        failures = {(m.kind, str(m.detail)) for m in markers if m.kind in FAILURES}
        for where, marker in part.marks:
            if marker.kind not in kinds or marker.kind in FAILURES \
                    and (marker.kind, str(marker.detail)) not in failures:
                markers.append(marker)
                if index == 0:
                    placed.append((where[0], marker))
                _give(gave, f"{marker.kind} marker", 1, where)
        reached = kept.step[~np.isnan(kept.step)]
        if len(reached):
            rows.step[np.isnan(rows.step) & (rows.phase != _TRAIN_CODE)] = reached.max()
        known = ~np.isnan(rows.step)
        keys = _keys(rows.phase, rows.step, known)
        pos = np.minimum(np.searchsorted(key_sorted, keys), max(len(key_sorted) - 1, 0))
        found = known & (key_sorted[pos] == keys) if len(key_sorted) else np.zeros(len(rows), bool)
        fresh = np.flatnonzero(~found)
        same = _restated(kept, rows, fresh[~known[fresh] & (rows.phase[fresh] != _TRAIN_CODE)],
                         names)
        if len(same):      # results files that repeat one another (all_results, predict_results)
            _give(gave, "records equal to ones before left out", len(same), (int(same[0]), 2, 0))
            fresh = np.setdiff1d(fresh, same)
        if (kept.phase == _TRAIN_CODE).any():   # the files before give the run's records:
            echo = (rows.phase[fresh] == _TRAIN_CODE) & (rows.estimated[fresh] > 0)
            if echo.any():                      # a guessed step cannot match them to those
                _give(gave, "training records with estimated steps left out (the files "
                      "before hold the run's records)", int(echo.sum()), (int(fresh[echo][0]), 2, 0))
                fresh = fresh[~echo]
        for code in np.unique(rows.phase[fresh]):
            of_phase = fresh[rows.phase[fresh] == code]
            _give(gave, f"{PHASES[code]} records", len(of_phase), (int(of_phase[0]), 1, 0))
        _fill_missing(kept, rows, np.flatnonzero(found), key_row[pos[found]], names, gave)
        start = len(kept)
        kept = _append(kept, rows, fresh)
        new_keys = np.flatnonzero(known[fresh])
        key_sorted, key_row = _add_keys(key_sorted, key_row, keys[fresh][new_keys],
                                        start + new_keys)
        if index == 0:
            steps = kept.step[(kept.phase == _TRAIN_CODE) & ~np.isnan(kept.step)]
            base_monotonic = bool((steps[1:] >= steps[:-1]).all())
        ordered = sorted(gave.items(), key=lambda item: item[1][1])
        used[part.source] = ", ".join(f"{n} {what}" if n else what for what, (n, _) in ordered) \
            or "nothing new"
    order = np.arange(len(kept))
    if base_monotonic:
        missing = np.isnan(kept.step)
        order = np.lexsort((np.where(missing, 0, kept.step), missing))
    later = markers[len(placed):]
    return chain([Info(facts)], _placed(kept, order, names, placed,
                                        parts[0].count if parts else 0), later)


def _placed(kept: _Rows, order: np.ndarray, names: _Names, placed: list, first: int):
    """The kept records in `order` (_blocks) with the first file's markers among them, each
    before the record it came before in that file (its first `first` records are kept's
    first): a new process there starts a segment, as in the file read alone."""
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    at = 0
    for before, marker in placed:
        to = max(at, int(position[before]) if before < first else len(order))
        yield from _blocks(kept, order[at:to], names)
        yield marker
        at = to
    yield from _blocks(kept, order[at:], names)


def _restated(kept: _Rows, rows: _Rows, stepless: np.ndarray, names: _Names) -> np.ndarray:
    """Those of `stepless` (records with no step) whose phase, metrics and values equal a kept
    record's with no step (NaN equals NaN)."""
    def content(table: _Rows, i: int) -> tuple:
        return (int(table.phase[i]), *((name, repr(float(table.metric(name, np.array([i]))[0])))
                                       for name in names.tuples[table.sig[i]]))

    if not len(stepless):
        return stepless
    before = {content(kept, i) for i in np.flatnonzero(np.isnan(kept.step))}
    return np.array([i for i in stepless.tolist() if content(rows, i) in before], dtype=np.int64)


def _keys(phase: np.ndarray, step: np.ndarray, known: np.ndarray) -> np.ndarray:
    """One int64 per (phase, step) (0 where the step is unknown)."""
    return np.where(known, np.nan_to_num(step).astype(np.int64) * len(PHASES) + phase, 0)


def _give(gave: dict, what: str, n: int, where: tuple) -> None:
    count, first = gave.get(what, (0, where))
    gave[what] = (count + n, min(first, where))


def _fill_missing(kept: _Rows, rows: _Rows, hits: np.ndarray, targets: np.ndarray,
                  names: _Names, gave: dict) -> None:
    """Records of a file (`hits`) at the key of kept records (`targets`): the metrics those
    lack are added from the first record that has them, after the names they have."""
    if not len(hits):
        return
    for name in rows.values:
        had = names.has(name)
        want = had[rows.sig[hits]] & ~had[kept.sig[targets]]
        if not want.any():
            continue
        to, chosen = np.unique(targets[want], return_index=True)
        chosen = np.flatnonzero(want)[chosen]
        kept.set_metric(name, to, rows.metric(name, hits[chosen]))
        first = int(hits[chosen].min())
        _give(gave, name, len(chosen), (first, 1, names.tuples[rows.sig[first]].index(name)))
    _extend_names(kept, rows, hits, targets, names)


def _extend_names(kept: _Rows, rows: _Rows, hits: np.ndarray, targets: np.ndarray,
                  names: _Names) -> None:
    """Each target's names followed by those its hits add, hit by hit in file order."""
    def extended(have: tuple, sigs) -> int:
        for sig in sigs:
            have += tuple(n for n in names.tuples[sig] if n not in have)
        return names.id(have)

    by_target = np.argsort(targets, kind="stable")
    tsorted = targets[by_target]
    unique, first, counts = np.unique(tsorted, return_index=True, return_counts=True)
    once = counts == 1
    single, single_hit = unique[once], hits[by_target[first[once]]]
    size = len(names.tuples)
    distinct, inverse = np.unique(kept.sig[single] * size + rows.sig[single_hit],
                                  return_inverse=True)
    new = np.array([extended(names.tuples[p // size], [p % size]) for p in distinct.tolist()],
                   dtype=np.int64)
    for target, lo, n in zip(unique[~once].tolist(), first[~once].tolist(),
                             counts[~once].tolist()):
        kept.sig[target] = extended(names.tuples[kept.sig[target]],
                                    rows.sig[hits[by_target[lo:lo + n]]].tolist())
    kept.sig[single] = new[inverse.reshape(-1)]


def _append(kept: _Rows, rows: _Rows, take: np.ndarray) -> _Rows:
    """kept followed by rows[take]."""
    every = len(take) == len(rows)
    if every and not len(kept):
        return rows

    def joined(old, new):
        return np.concatenate([old, new if every else new[take]])

    out = _Rows()
    for column in _FIELDS:
        setattr(out, column, joined(getattr(kept, column), getattr(rows, column)))
    out.values = dict(kept.values)
    for name, (_, values) in rows.values.items():     # (rows' spans start at 0)
        if name not in out.values:
            out.values[name] = (len(kept), values if every else values[take[take < len(values)]])
            continue
        start, old = out.values[name]
        gap = np.full(len(kept) - start - len(old), NAN)
        out.values[name] = (start, np.concatenate([old, gap, values if every else
                                                   values[take[take < len(values)]]]))
    return out


def _add_keys(key_sorted, key_row, keys, rows):
    """The sorted keys with new ones (for a key given twice, its last record)."""
    if not (keys[1:] > keys[:-1]).all():        # (else sorted already, each key once)
        last = len(keys) - 1 - np.unique(keys[::-1], return_index=True)[1]
        keys, rows = keys[last], rows[last]
    if not len(key_sorted):
        return keys, rows
    keys = np.concatenate([key_sorted, keys])
    order = np.argsort(keys, kind="stable")
    return keys[order], np.concatenate([key_row, rows])[order]


def _blocks(kept: _Rows, order: np.ndarray, names: _Names):
    """The kept records in `order`, as Records blocks of one phase and the same metrics (of at
    most one chunk each, made one at a time)."""
    phase, sig = kept.phase[order], kept.sig[order]
    cuts = np.flatnonzero((phase[1:] != phase[:-1]) | (sig[1:] != sig[:-1])) + 1
    bounds = [0, *cuts.tolist(), len(order)]
    for lo, hi in zip(bounds, bounds[1:]):
        for start in range(lo, hi, CHUNK):
            take = order[start:min(hi, start + CHUNK)]
            estimated = kept.estimated[take]
            yield Records(PHASES[phase[lo]], kept.step[take], kept.epoch[take],
                          kept.time[take], kept.line[take],
                          {n: kept.metric(n, take) for n in names.tuples[sig[lo]]},
                          estimated=estimated if estimated.any() else None, file=kept.file[take])
