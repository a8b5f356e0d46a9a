"""The lines of a block that the hf_trainer fast path (`hf_fast`) reads at C speed, and their
columns: stateless, numpy and pyarrow (RE2, casts) over the block's bytes. The block's shape
(the training bar's total, the keys of its dicts) is read from its first lines; then one RE2
match per line tells which lines have that shape, and the lines' shape being known, their
bar counts and values are cut out where the separators are and cast at once.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import arrow, hf_bars
from .hf_bars import last_clock
from .hf_marks import Marks
from .hf_quiet import BLANKS, bar
from .hf_values import number

_NUM = rb"[-+.\w]+"         # a number for pyarrow's cast, else see _floats
_ITEMS = re.compile(rb"'([\w/.@-]+)': (')?")      # a dict's keys, and whether their values are quoted


def dict_pattern(keys: tuple, quoted: tuple) -> bytes:
    """A training dict of these keys whose values are numbers pyarrow's cast may take (else
    see _floats), each quoted or not as `quoted` says (transformers 5 quotes floats, not
    integers), to the line's end."""
    return rb"\{" + rb", ".join(b"'" + re.escape(k) + b"': " + (b"'" + _NUM + b"'" if q else _NUM)
                                for k, q in zip(keys, quoted)) + rb"\} *\n$"


def training_pattern(total: bytes, keys: tuple, quoted: tuple) -> str:
    """The RE2 pattern (pyarrow's regex functions: bytes, no state, no GIL) of a training line:
    frames of the training bar, then from its last `\\r` on a dict (dict_pattern)."""
    frames = (BLANKS + bar(total, rb"\d+") + rb"(?:\r" + bar(total, rb"\d+")
              + rb")*(?:\r *)*\r")
    return (b"^" + frames + dict_pattern(keys, quoted)).decode()


def _keys(text: bytes):
    """(keys, quoted: a flag per key) of a printed training dict, or None for one that may be
    no training record (a key twice, the final dict's keys) or that states its step (feed
    reads those)."""
    items = _ITEMS.findall(text)
    keys = tuple(key for key, _ in items)
    if len(set(keys)) != len(keys) or b"train_loss" in keys or b"train_samples_per_second" in keys \
            or b"step" in keys:
        return None
    return keys, tuple(bool(quote) for _, quote in items)


def block_shape(data: bytes, tries: int = 8, start: int = 0):
    """(total, keys, quoted: a flag per key) of the block's first training line (from offset
    `start`) with a bar before its dict (of the first `tries` training lines), else of the
    first whose line before ends in a bar (LlamaBoard's echo pairs), or Nones."""
    at, second = data.find(b"\r{'loss': ", start), None
    for _ in range(tries):
        if at < 0:
            break
        end = data.find(b"\n", at)
        end = end if end >= 0 else len(data)
        start = data.rfind(b"\n", 0, at) + 1
        totals = _TOTAL.findall(data, start, at)
        shape = _keys(data[at + 1:end])
        if shape is None:
            break
        if totals:
            return (totals[-1], *shape)
        if second is None and start:
            before = _TOTAL.findall(data, data.rfind(b"\n", 0, start - 1) + 1, start)
            second = (before[-1], *shape) if before else None
        at = data.find(b"\r{'loss': ", end)
    return second or (None, None, ())



_TOTAL = re.compile(rb"\| *\d+/(\d+) \[")


def bare_shape(marks: Marks, starts: np.ndarray, tries: int = 8) -> tuple:
    """(keys, quoted, offset) of the block's first line that is a training dict alone (of the
    first `tries` lines that start with a brace), or Nones."""
    data = marks.data
    for at in starts[marks.bytes[starts] == ord("{")][:tries].tolist():
        if data.startswith(b"{'loss': ", at):
            return (*(_keys(data[at:data.index(b"\n", at)]) or (None, ())), at)
    return None, (), None


def frame_total(data: bytes, at: int) -> bytes | None:
    """The total of the bar drawn nearest a training dict alone on its line (at offset `at`),
    within a kilobyte after it, else before it: the training bar's, if any."""
    after = _TOTAL.search(data, at, at + 1024)
    before = _TOTAL.findall(data, max(0, at - 1024), at)
    return after.group(1) if after else before[-1] if before else None


class Rows(Sequence):
    """Rows lo..hi-1 of a block's columns, each read as a slice of its column. The block's
    stretches share its columns, so a worker sends each column once, not a copy per stretch
    (thousands of small arrays a range, on a console that evaluates every few steps)."""

    def __init__(self, columns: list, lo: int, hi: int):
        self.columns, self.lo, self.hi = columns, int(lo), int(hi)     # (no numpy ints to send)

    def __getitem__(self, k: int) -> np.ndarray:
        return self.columns[k][self.lo:self.hi]

    def __len__(self) -> int:
        return len(self.columns)

    def __iter__(self):
        return (column[self.lo:self.hi] for column in self.columns)

    def __reduce__(self):
        return Rows, (self.columns, self.lo, self.hi)

    def after(self, k: int) -> Rows:
        """Without the first k rows."""
        return Rows(self.columns, self.lo + k, self.hi)


def _column(rows: str, k: int) -> property:
    """A property: column k of a stretch's `Rows` field `rows`."""
    return property(lambda self: getattr(self, rows)[k])


class TrainingLines(NamedTuple):
    """A run of training lines: per line its first bar count and its bar frames (frames read that
    no record counts), the dicts' values (per key), the last bar count, the bar clock of the run
    (elapsed, remaining, line in the run, whether the clock's streak of equal counts reaches
    back to the first bar), and the count of the training bar that begins the line after it,
    where feed reads that line (its first frame flushes the last dict). A tuple: unpickled 3x
    faster than a dataclass."""

    keys: tuple               # of the dicts
    lines: Rows               # per line: its first bar count, its bar frames
    values: Rows              # per key
    last_count: int
    clock: tuple
    next_count: int | None = None
    records: object = None    # the block's RecordColumns of its shape

    counts = _column("lines", 0)
    bars = _column("lines", 1)

    @property
    def frames(self) -> int:
        return int(self.bars.sum())

    def after_first(self) -> TrainingLines:
        """The run without its first line (which feed read)."""
        elapsed, remaining, line, whole = self.clock
        return self._replace(lines=self.lines.after(1), values=self.values.after(1),
                             clock=(elapsed, remaining, line - 1, whole))


def training_lines(marks: Marks, starts: np.ndarray, total: bytes, keys: tuple, quoted: tuple,
                   most: int = 4) -> tuple[np.ndarray, list]:
    """Which lines of a block are training lines, of which shape: the block's first (`total`,
    `keys`, `quoted`: block_shape's), then, while training dicts are left, the shape of the
    first one left if its total is the same (a key that comes or goes, values quoted
    otherwise): (each line's shape, -1 for none; per shape: its keys (str), lines, columns:
    those of each line (its first bar count, its bar frames), then each key's values)."""
    data = marks.data
    shape_of = np.full(len(starts), -1, dtype=np.int8)
    shapes: list = []
    left = marks.losses(b"\r")                        # training dicts not yet placed
    after_bars = marks.dict_lines(b"\r", starts)      # (the lines that may be such lines)
    while True:
        found = matches(marks, starts, training_pattern(total, keys, quoted), after_bars) \
            & (shape_of < 0)
        found, columns = cut_columns(marks, starts, found, keys, quoted, counted=True)
        shape_of[found] = len(shapes)
        lines = np.flatnonzero(found)
        shapes.append((keys, quoted, lines, ([columns[0], _bar_frames(marks, starts, lines, keys)]
                                             if columns else [], columns[1:])))
        left -= len(shapes[-1][2])
        if len(shapes) == most or left <= 0:
            break
        rest = after_bars[shape_of[after_bars] < 0]
        if not len(rest):
            break
        other, keys, quoted = block_shape(data, start=int(starts[rest[0]]))
        if other != total or keys is None or any(s[:2] == (keys, quoted) for s in shapes):
            break
    return shape_of, [(tuple(key.decode() for key in keys), lines, columns)
                      for keys, _, lines, columns in shapes]


def _bar_frames(marks: Marks, starts: np.ndarray, lines: np.ndarray, keys: tuple) -> np.ndarray:
    """The bar frames of some training lines of a block (of dicts of `keys`): 2 slashes a
    bar (n/total, it/s), those of the keys aside."""
    slashes = marks.where(b"/")
    found = np.searchsorted(slashes, marks.where(b"\n")[lines] + 1) - \
        np.searchsorted(slashes, starts[lines])
    return (found - sum(key.count(b"/") for key in keys)) // 2


def matches(marks: Marks, starts: np.ndarray, pattern: str,
            lines: np.ndarray | None = None) -> np.ndarray:
    """Which lines of a block (their `starts`) an RE2 pattern matches (each with its `\\n`);
    where `lines` (sorted) are given, only those (the others cannot match), tried apart where
    they hold less than half of the block (else copying them out costs more than trying all)."""
    if lines is None:
        return arrow.matches(arrow.lines(marks.data, starts, len(marks.data)), pattern)
    found = np.zeros(len(starts), dtype=bool)
    ends = marks.where(b"\n")[lines] + 1
    if int((ends - starts[lines]).sum()) * 2 > len(marks.data):
        found[lines] = True
        return found & matches(marks, starts, pattern)
    if len(lines):
        found[lines] = arrow.matches(arrow.slices(marks.data, starts[lines], ends), pattern)
    return found


def cut_columns(marks: Marks, starts: np.ndarray, found: np.ndarray, keys: tuple, quoted: tuple,
             counted: bool) -> tuple[np.ndarray, list]:
    """Which of the `found` lines of a block (their `starts`), each ending in a dict of `keys`,
    feed reads as such, and their columns: (`counted`) the count of each one's first bar, then
    each key's values. A value feed would not read as a number makes its line no match. The
    lines' shape being known (the dict holds a line's only quotes), the columns are cut out
    where the separators are."""
    data = marks.data
    found = found.copy()
    idx = np.flatnonzero(found)
    if not len(idx):
        return found, []
    columns, bad = [], np.zeros(len(idx), dtype=bool)
    if counted:
        counts, bad = hf_bars.counts(marks.bytes, marks.next(b"/", starts[idx]))   # a `/` ends it
        columns.append(counts)
    quotes = marks.where(b"'")
    at = np.searchsorted(quotes, starts[idx])          # each dict's first quote, then each key's
    for i in range(len(keys)):
        if quoted[i]:       # 'key': 'value'
            begin, end = quotes[at + 2] + 1, quotes[at + 3]
        else:               # 'key': value, (or }: the last)
            begin = quotes[at + 1] + 3
            end = marks.next(b"}" if i == len(keys) - 1 else b",", begin)
        at = at + (4 if quoted[i] else 2)
        column, odd = _floats(arrow.slices(data, begin, end))
        columns.append(column)
        if odd is not None:
            bad |= odd
    if bad.any():
        found[idx[bad]] = False
        columns = [c[~bad] for c in columns]
    return found, columns


@dataclass
class OneFrameLines:
    """A stretch of one-frame lines: its bar lines and their counts, its dict lines and their
    values (per key), all lines counted from the stretch's first, and the bar clock after it
    (see TrainingLines)."""

    bars: np.ndarray
    counts: np.ndarray
    dicts: np.ndarray
    values: Rows
    clock: tuple


@dataclass
class BareDicts:
    """A stretch of bare dicts from line `first` of a block: the dicts' lines and values (per
    key), and the echo lines among them (LlamaBoard's stdout: the logger's echo of each dict
    before it), whether each tells the version, and the last one's stamp."""

    at: Rows                  # the dicts' lines in the block
    values: Rows
    echo_at: Rows             # the echoes' lines in the block, whether each tells the version
    first: int
    stamp: tuple | None

    @property
    def dicts(self) -> np.ndarray:
        """The dicts' lines, counted from the stretch's first."""
        return self.at[0] - self.first

    @property
    def echoes(self) -> np.ndarray:
        return self.echo_at[0] - self.first

    versioned = _column("echo_at", 1)

    def after_first(self) -> BareDicts:
        """The stretch without its first line (which feed read)."""
        dicts, echoes = self.at[0], self.echo_at[0]
        d = int(len(dicts) > 0 and dicts[0] == self.first)
        e = int(len(echoes) > 0 and echoes[0] == self.first)
        return BareDicts(self.at.after(d), self.values.after(d), self.echo_at.after(e),
                         self.first + 1, self.stamp)


def bare_dicts(marks: Marks, starts: np.ndarray, keys: tuple, quoted: tuple) -> tuple:
    """The lines of a block that are a training dict of `keys` alone (that feed reads as
    numbers) and their values (per key); which lines make runs of two such dicts or more, each
    maybe after its echo (bare dicts); and those echo lines, with whether each tells the
    version: (dicts, values, bare, echoes, versioned)."""
    dicts = matches(marks, starts, "^" + dict_pattern(keys, quoted).decode(),
                    marks.dict_lines(b"", starts))
    dicts, values = cut_columns(marks, starts, dicts, keys, quoted, counted=False)
    lines = dicts.copy()
    echoes = _echo_lines(marks, starts, b"", dicts) if marks.losses(b" >> ") else \
        np.zeros(0, dtype=np.int64)
    lines[echoes] = True
    run = np.cumsum(~lines)                      # the lines of a run share a number
    bare = lines & (np.bincount(run[dicts], minlength=run[-1] + 1 if len(run) else 1)[run] >= 2)
    echoes = echoes[bare[echoes]]
    return dicts, values, bare, echoes, _versioned(marks, starts, echoes)


def bare_of(columns: tuple, data: bytes, starts: np.ndarray, lo: int, hi: int) -> BareDicts:
    """The BareDicts of lines lo..hi-1 of a block, from the columns of its bare dicts."""
    dict_at, values, echoes, versioned = columns
    d0, d1 = np.searchsorted(dict_at, (lo, hi))
    e0, e1 = np.searchsorted(echoes, (lo, hi))
    stamp = _STAMP.search(data, int(starts[echoes[e1 - 1]])).groups() if e1 > e0 else None
    return BareDicts(Rows([dict_at], d0, d1), Rows(values, d0, d1),
                     Rows([echoes, versioned], e0, e1), lo, stamp)


def _echo_lines(marks: Marks, starts: np.ndarray, bars: bytes, dicts: np.ndarray) -> np.ndarray:
    """The lines that are LlamaBoard's echo of a training dict after `bars` (a pattern), each
    right before a line of `dicts`."""
    echoes = marks.dict_lines(b" >> ", starts)
    echoes = echoes[echoes + 1 < len(starts)]
    found = matches(marks, starts, "^" + (bars + _ECHO).decode(), echoes[dicts[echoes + 1]])
    at = np.flatnonzero(found)
    if len(at):
        at = at[~arrow.matches(arrow.slices(marks.data, starts[at], starts[at + 1]), _NOT_TRAINING)]
    return at


def _versioned(marks: Marks, starts: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Whether each of the logger lines `at` tells LLaMA-Factory's version."""
    if not len(at):
        return np.zeros(0, dtype=bool)
    return arrow.matches(arrow.slices(marks.data, starts[at], starts[at + 1]), _VERSIONED)


def frame_lines(marks: Marks, starts: np.ndarray, total: bytes, lone: np.ndarray,
                values: list) -> tuple[np.ndarray, tuple]:
    """Which lines of a block are one-frame lines (see the module; `lone`: its lines that are
    a training dict alone and no bare dict, `values`: theirs, per key), and their columns: the
    bar lines and their counts, the dict lines and their values."""
    bars = matches(marks, starts, "^" + (bar(total, rb"\d+") + rb" *\n$").decode())
    blank = matches(marks, starts, "^ *\n$")
    bar_at = np.flatnonzero(bars)
    counts, long = hf_bars.counts(marks.bytes, marks.next(b"/", starts[bar_at]))
    bars[bar_at[long]] = False
    lines = _frame_runs(bars, blank, lone)
    dict_at = np.flatnonzero(lone)
    kept = lines[dict_at]
    keep = lines[bar_at] & ~long
    return lines, (bar_at[keep], counts[keep], dict_at[kept], [v[kept] for v in values])


def _frame_runs(bars: np.ndarray, blank: np.ndarray, dicts: np.ndarray) -> np.ndarray:
    """Which lines are of runs of one-frame lines: bars, blank lines and dicts, each run
    starting with a bar, each dict after a bar of its run that is after the dict before."""
    lines = bars | blank | dicts
    index = np.arange(len(lines))
    bars_to = np.cumsum(bars)                          # bars up to each line, itself counted
    # a dict is kept if a bar lies since the last dict or line of no run before it
    stops = np.maximum.accumulate(np.where(~lines | dicts, index, -1))
    before = np.r_[-1, stops[:-1]]
    lines &= ~(dicts & (bars_to == np.where(before >= 0, bars_to[before], 0)))
    # then a run's lines before its first bar are no part of it
    stops = np.maximum.accumulate(np.where(~lines, index, -1))
    return lines & (bars_to > np.where(stops >= 0, bars_to[stops], 0))


def frames_of(columns: tuple, data: bytes, starts: np.ndarray, ends: np.ndarray, lo: int,
               hi: int) -> OneFrameLines:
    """The OneFrameLines of lines lo..hi-1 of a block, from the columns of its one-frame lines."""
    bar_at, counts, dict_at, values = columns
    b0, b1 = np.searchsorted(bar_at, (lo, hi))
    d0, d1 = np.searchsorted(dict_at, (lo, hi))
    return OneFrameLines(bar_at[b0:b1] - lo, counts[b0:b1], dict_at[d0:d1] - lo,
                         Rows(values, d0, d1), last_clock(data, starts, ends, lo, hi - lo)[1])


# LlamaBoard's echo of a training dict (its LogCallback, through LLaMA-Factory's logger), glued
# to the bars before it; what feed reads of it is its step (the last bar's count): the dict
# printed on the next line replaces it, so its values need only be numbers
_LF_HEAD = rb"\[(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] [\w.]+:\d+ >> "
_ECHO = (_LF_HEAD + rb"\{'loss': [-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|nan|inf)"
         rb"(?:, '[\w/.@-]+': [-+.\w]+)*\} *\n$")
_NOT_TRAINING = "'train_loss': |'train_samples_per_second': "      # a final dict's keys
# LF's info_rank0/warning_rank0 wrappers print a constant line number per release (spec §2.2).
LF_WRAPPER_LINES = {"157": "0.9.1-0.9.2", "162": "0.9.1-0.9.2", "168": "0.9.1-0.9.2",
                     "143": "0.9.3-0.9.4", "148": "0.9.3-0.9.4", "154": "0.9.3-0.9.4",
                     "144": ">=0.9.5", "149": ">=0.9.5", "155": ">=0.9.5"}
# the logger lines that tell the version (hf_trainer reads it from the first one)
_VERSIONED = r"\] llamafactory\.[\w.]*:(?:" + "|".join(LF_WRAPPER_LINES) + ") >> "
_STAMP = re.compile(rb"\|(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\] ")


@dataclass
class EchoPairs:
    """A stretch of echo pairs (LlamaBoard's console: a line of training bars and the echo of a
    dict, then the dict): each pair's first and last bar count, whether it has more than one
    bar, the dicts' values (per key), the bar frames, whether an echo's logger line tells the
    version, the last echo's stamp (year, month, day, h, m, s) and the bar clock after it."""

    pairs: Rows               # per pair: its first and last bar count, whether it has more
    values: Rows
    frames: int
    versioned: bool
    stamp: tuple
    clock: tuple

    firsts = _column("pairs", 0)
    lasts = _column("pairs", 1)
    multi = _column("pairs", 2)


def echo_pairs(marks: Marks, starts: np.ndarray, total: bytes, keys: tuple,
               quoted: tuple) -> tuple[np.ndarray, tuple]:
    """Which lines of a block are of echo pairs (a training dict of `keys` after its echo),
    and their columns: each pair's first line, bars and their first and last counts, whether it
    tells the version, and the dicts' values."""
    bars = bar(total, rb"\d+")
    second = matches(marks, starts, "^" + (BLANKS + dict_pattern(keys, quoted)).decode(),
                     marks.dict_lines(b"\r", starts))
    at = _echo_lines(marks, starts, rb"\r?" + bars + rb"(?:\r?" + bars + rb")*", second)
    if not len(at):
        return np.zeros(len(starts), dtype=bool), (at, at, at, at, [], at, at)
    dicts = np.zeros(len(starts), dtype=bool)
    dicts[at + 1] = True
    dicts, values = cut_columns(marks, starts, dicts, keys, quoted, counted=False)
    at = at[dicts[at + 1]]                    # (values: of these dicts)
    begin, end = starts[at], starts[at + 1]
    counts = np.searchsorted(marks.where(b"%"), end) - np.searchsorted(marks.where(b"%"), begin)
    slashes = marks.where(b"/")
    first_slash = np.searchsorted(slashes, begin)
    firsts, long = hf_bars.counts(marks.bytes, slashes[first_slash])
    lasts, long_too = hf_bars.counts(marks.bytes, slashes[first_slash + 2 * (counts - 1)])
    ok = ~(long | long_too)
    frames = 1 + np.searchsorted(marks.where(b"\r"), end) - np.searchsorted(marks.where(b"\r"), begin) \
        - (marks.bytes[begin] == 13)
    versioned = _versioned(marks, starts, at)
    lines = np.zeros(len(starts), dtype=bool)
    lines[at[ok]] = lines[at[ok] + 1] = True
    return lines, (at[ok], firsts[ok], lasts[ok], counts[ok] > 1, [v[ok] for v in values],
                   frames[ok], versioned[ok])


def pairs_of(columns: tuple, data: bytes, starts: np.ndarray, ends: np.ndarray, lo: int,
             hi: int) -> EchoPairs:
    """The EchoPairs of lines lo..hi-1 of a block, from the columns of its echo pairs."""
    at, firsts, lasts, multi, values, frames, versioned = columns
    p0, p1 = np.searchsorted(at, (lo, hi))
    last = data[int(starts[hi - 2]):int(ends[hi - 2])]
    return EchoPairs(Rows([firsts, lasts, multi], p0, p1), Rows(values, p0, p1),
                     int(frames[p0:p1].sum()), bool(versioned[p0:p1].any()),
                     _STAMP.search(last).groups(), last_clock(data, starts, ends, lo, hi - lo)[1])


def _floats(texts) -> tuple[np.ndarray, np.ndarray | None]:
    """The values of printed numbers (a pyarrow binary array) as feed reads them
    (hf_trainer.number), and which of them it would not read (None: all are numbers)."""
    import pyarrow as pa

    try:      # pyarrow's cast takes no number that Python's float() does not, nor `nan(1)`
        return arrow.floats(texts), None
    except pa.ArrowInvalid:
        values = [None if text is None else number(text.decode()) for text in texts.to_pylist()]
        bad = np.array([v is None for v in values], dtype=bool)
        return np.array([np.nan if v is None else v for v in values]), bad


def run_of(shape: tuple, at: int, last: tuple | None, marks: Marks, starts, ends, first: int,
           n: int, next_count: int | None = None) -> TrainingLines:
    """The TrainingLines of lines first..first+n-1 of a block, all of one `shape` of
    training_lines (keys, lines, columns) and its records, the first of them its `at`-th
    line; `last`: their last count and clock, where known (`hf_bars.run_clocks`);
    `next_count`: see TrainingLines."""
    keys, _, (per_line, values), records = shape
    last_count, clock = last or last_clock(marks.data, starts, ends, first, n)
    return TrainingLines(keys, Rows(per_line, at, at + n), Rows(values, at, at + n), last_count,
                         clock, next_count, records)

