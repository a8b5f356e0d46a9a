"""The block fast path of the hf_trainer parser: a block of whole lines is read at C speed
into four kinds of stretches, then their events are given in order, exactly those of feeding
every frame (but for the bar clock Info, whose facts end equal):

- *training lines*: tqdm frames of the training bar, then a training dict whose keys are
  those of the block's first such line (`\\r  2%|▏ | 1/60 [00:00<00:28,  2.04it/s]\\r  …
  \\r{'loss': '7.622', …}`), found by one RE2 match per line (pyarrow: bytes, no GIL) whose
  pattern admits only frames feed reads as plain training bars and a dict of those keys;
  the lines' shape being known, their bar counts and values are cut out where the
  separators after them are, and cast at once. A run of them gives one Records: each
  dict's step is the count of the first frame after it.
- *quiet lines* (`hf_quiet`): logger lines with no fact, marker or dict, the bare lines that
  continue them (a config dump), bars of another total (an eval bar) and empty lines (one `re`
  findall over the lines between runs). They change only a few flags and the clock, which the
  stretch gives at once.
- *bare dicts*: lines that are a training dict alone, of the keys of the block's first such
  line (a console of stdout only, `| tee`: tqdm draws its bars on stderr). Their steps are
  estimates, made in order as feed makes them; their values are cut out as above.
- *one-frame lines*: a console whose tqdm redraws became lines of their own (`\r` turned into
  `\n` on the way to the file): lines that are a frame of the training bar alone, blank lines,
  and such dicts alone, one after a bar at least. As on training lines, each dict's step is the
  count of the first bar after it.
- anything else goes back to `feed`, line by line.

`prepare_block` is stateless (it may run in another thread or process); `emit_block` gives
the events in order and keeps the parser's state. A mixin of `hf_trainer.Parser`: its state
(train_total, pending, last_step, ...) is the parser's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..events import TRAIN, Records
from . import arrow
from .hf_quiet import (
    BARE,
    BLANKS,
    CLOCK,
    FRAMES,
    LINES,
    QUIET,
    STD,
    Quiet,
    QuietReader,
    bar,
    gap,
    split,
)

NOT_METRICS = ("epoch", "step", "total_flos")   # keys of a dict that are no metric of it
_NUM = rb"[-+.\w]+"         # a number for pyarrow's cast, else see _floats
_ITEMS = re.compile(rb"'([\w/.@-]+)': (')?")      # a dict's keys, and whether their values are quoted
_FRAME = re.compile(rb"(\d+)/\d+ \[(" + CLOCK + rb")<(" + CLOCK + rb"|\?),")


def _dict_pattern(keys: tuple, quoted: tuple) -> bytes:
    """A training dict of these keys whose values are numbers pyarrow's cast may take (else
    see _floats), each quoted or not as `quoted` says (transformers 5 quotes floats, not
    integers), to the line's end."""
    return rb"\{" + rb", ".join(b"'" + re.escape(k) + b"': " + (b"'" + _NUM + b"'" if q else _NUM)
                                for k, q in zip(keys, quoted)) + rb"\} *\n$"


def _training_pattern(total: bytes, keys: tuple, quoted: tuple) -> str:
    """The RE2 pattern (pyarrow's regex functions: bytes, no state, no GIL) of a training line:
    frames of the training bar, then from its last `\\r` on a dict (_dict_pattern)."""
    frames = (BLANKS + bar(total, rb"\d+") + rb"(?:\r" + bar(total, rb"\d+")
              + rb")*(?:\r *)*\r")
    return (b"^" + frames + _dict_pattern(keys, quoted)).decode()


def _keys(text: bytes):
    """(keys, quoted: a flag per key) of a printed training dict, or None for one that may be
    no training record (a key twice, the final dict's keys)."""
    items = _ITEMS.findall(text)
    keys = tuple(key for key, _ in items)
    if len(set(keys)) != len(keys) or b"train_loss" in keys or b"train_samples_per_second" in keys:
        return None
    return keys, tuple(bool(quote) for _, quote in items)


def _shape(data: bytes, tries: int = 8):
    """(total, keys, quoted: a flag per key) of the block's first training line with a bar
    before its dict (of the first `tries` training lines), or Nones."""
    at = data.find(b"\r{'loss': ")
    for _ in range(tries):
        if at < 0:
            break
        end = data.find(b"\n", at)
        end = end if end >= 0 else len(data)
        totals = re.findall(rb"\| *\d+/(\d+) \[", data[data.rfind(b"\n", 0, at) + 1:at])
        if totals:
            shape = _keys(data[at + 1:end])
            if shape is None:
                break
            return (totals[-1], *shape)
        at = data.find(b"\r{'loss': ", end)
    return None, None, ()


def _names(keys: tuple | None) -> tuple:
    return tuple(key.decode() for key in keys or ())


def _bare_shape(marks: _Marks, starts: np.ndarray, tries: int = 8) -> tuple:
    """(keys, quoted, offset) of the block's first line that is a training dict alone (of the
    first `tries` lines that start with a brace), or Nones."""
    data = marks.data
    for at in starts[marks.bytes[starts] == ord("{")][:tries].tolist():
        if data.startswith(b"{'loss': ", at):
            return (*(_keys(data[at:data.index(b"\n", at)]) or (None, ())), at)
    return None, (), None


def _frame_total(data: bytes, at: int) -> bytes | None:
    """The total of the bar drawn nearest a training dict alone on its line (at offset `at`),
    within a kilobyte after it, else before it: the training bar's, if any."""
    after = re.search(rb"\| *\d+/(\d+) \[", data[at:at + 1024])
    before = re.findall(rb"\| *\d+/(\d+) \[", data[max(0, at - 1024):at])
    return after.group(1) if after else before[-1] if before else None


@dataclass
class Prepared:
    """A block, prepared: its stretches (kind, first line, lines, start, end, detail)."""

    total: int | None
    keys: tuple = ()               # of its training lines' dicts
    bare_keys: tuple = ()          # of its bare dicts
    parts: list = field(default_factory=list)


class BlockPath:
    """The fast path of the hf_trainer parser."""

    def feed_block(self, data: bytes, number: int):
        """Parse whole lines of bytes whose first is `number`: yields lists of (number, raw
        line) that the caller must `feed` frame by frame, in order, ints of frames read that
        no event counts, and events."""
        return self.emit_block(self.prepare_block(data), number, data)

    # --- stateless: the stretches of a block ---------------------------------------------
    def prepare_block(self, data: bytes) -> Prepared:
        """The stretches of a block (see the module); needs no state."""
        total, keys, quoted = _shape(data)
        if not data.endswith(b"\n"):
            data += b"\n"
        marks = _Marks(data)
        ends = marks.where(b"\n")
        starts = np.concatenate(([0], ends[:-1] + 1))
        bare_keys, bare_quoted, bare_at = _bare_shape(marks, starts)
        if total is None and bare_keys:
            total = _frame_total(data, bare_at)
        prepared = Prepared(int(total) if total else None, _names(keys), _names(bare_keys))
        kinds = np.full(len(ends), QUIET, dtype=np.int8)   # QUIET: none of the others
        columns = {}
        if keys:
            std = _matches(marks, starts, _training_pattern(total, keys, quoted))
            std, columns[STD] = _columns(marks, starts, std, keys, quoted, counted=True)
            kinds[std] = STD
        if bare_keys:
            # a dict alone between bars, one frame a line, is no bare dict but a one-frame line
            dicts = _matches(marks, starts, "^" + _dict_pattern(bare_keys, bare_quoted).decode())
            paired = dicts & (np.r_[False, dicts[:-1]] | np.r_[dicts[1:], False])
            bare, columns[BARE] = _columns(marks, starts, paired, bare_keys, bare_quoted,
                                           counted=False)
            kinds[bare] = BARE
            if total and (dicts & ~paired).any():
                one, columns[FRAMES] = _frame_lines(marks, starts, total, dicts & ~paired,
                                                    bare_keys, bare_quoted)
                kinds[one] = FRAMES
        key_slashes = sum(key.count(b"/") for key in keys or ())
        at = {STD: 0, BARE: 0}            # lines of a kind before the stretch
        reader = QuietReader()
        edges = np.flatnonzero(kinds[1:] != kinds[:-1]) + 1
        for lo, hi in zip([0, *edges.tolist()], [*edges.tolist(), len(ends)]):
            start, end, kind = int(starts[lo]), int(ends[hi - 1]) + 1, int(kinds[lo])
            if kind == QUIET or kind == FRAMES and hi - lo < 3:     # too short to pay
                gap(prepared.parts, reader, data, total, lo, start, end, starts, ends)
                continue
            if kind == FRAMES:
                prepared.parts.append((kind, lo, hi - lo, start, end,
                                       _frames_of(columns[FRAMES], data, starts, ends, lo, hi)))
                continue
            rows = [c[at[kind]:at[kind] + hi - lo] for c in columns[kind]]
            at[kind] += hi - lo
            if kind == STD:
                rows = _run_of(rows, marks, starts, ends, lo, hi - lo, key_slashes)
            prepared.parts.append((kind, lo, hi - lo, start, end, rows))
        return prepared

    # --- stateful: the events, in order --------------------------------------------------
    def emit_block(self, prepared: Prepared, number: int, data):
        """The events of a prepared block of `data` whose first line is `number` (see
        feed_block); updates the state. Only a stretch that feed must read after all takes
        slices of `data` (which may read them only then: see ranges)."""
        for kind, first, count, start, end, detail in prepared.parts:
            if kind == STD:
                yield from self._training_lines(prepared, number + first, count, detail, data,
                                                start, end)
            elif kind == QUIET and self._quiet_ok(prepared, detail):
                self._quiet(detail)
                if detail.frames:
                    yield detail.frames
            elif kind == LINES:
                yield list(zip(range(number + first, number + first + count), detail))
            elif kind == BARE:
                yield from self._bare_dicts(prepared.bare_keys, number + first, count, detail,
                                            data, start, end)
            elif kind == FRAMES:
                yield from self._one_frame_lines(prepared, number + first, detail, data, start,
                                                 end)
            else:
                yield split(data, start, end, number + first)

    def _training_lines(self, prepared: Prepared, number: int, count: int, run, data: bytes,
                        start: int, end: int):
        """The events of a run of training lines (`TrainingLines`)."""
        lines = None
        while count and not self._clean(prepared.total):
            lines = lines or data[start:end].split(b"\n")      # the first line, as feed reads it
            yield [(number, lines.pop(0))]
            number, count = number + 1, count - 1
            run = run.after_first()
        if not count:
            return
        out: list = []
        self._flush(out, int(run.counts[0]))          # the first frame flushes the pending record
        yield from out
        if count > 1:
            steps = run.counts[1:]
            self._stated_steps(steps)
            yield _records(prepared.keys, run.values, steps, np.arange(number, number + count - 1))
        out = []
        self._last_dict(prepared.keys, run.values, number + count - 1, out)
        elapsed, remaining, line, whole = run.clock
        if not (whole and int(run.counts[0]) == self.clock_step):
            self._clock(elapsed, remaining, line + number, out)
        yield from out
        self.clock_step = self.last_step = run.last_count
        self.redraws = self.redraws or run.frames > count
        self.bar_line = number + count - 1
        self.in_dump = self.in_message = False
        yield run.frames + 1            # the bars, and the last dict (now pending)

    def _bare_dicts(self, keys: tuple, number: int, count: int, values: list, data: bytes,
                    start: int, end: int):
        """The events of a stretch of bare dicts (of `keys`; `values`: a column per key): each
        flushes the one before it, whose step is then an estimate (Steps._estimate)."""
        lines = None
        while count and not self._bare_clean():
            lines = lines or data[start:end].split(b"\n")      # the first line, as feed reads it
            yield [(number, lines.pop(0))]
            number, count, values = number + 1, count - 1, [v[1:] for v in values]
        if not count:
            return
        out: list = []
        self._flush(out)                            # the first dict flushes the pending record
        yield from out
        if count > 1:
            epochs = values[keys.index("epoch")][:-1] if "epoch" in keys else \
                np.full(count - 1, np.nan)
            steps = self._estimated_steps(epochs)
            self.last_step = int(steps[-1])
            yield _records(keys, values, steps, np.arange(number, number + count - 1),
                           estimated=np.ones(count - 1))
        out = []
        self._last_dict(keys, values, number + count - 1, out)
        yield from out
        self.in_message = False
        yield 1                                     # the last dict (now pending)

    def _one_frame_lines(self, prepared: Prepared, number: int, run: OneFrameLines, data: bytes,
                         start: int, end: int):
        """The events of a stretch of one-frame lines (`OneFrameLines`) from line `number`:
        the first bar flushes the pending record; each dict's step is the count of the first
        bar after it; a dict with none after it is left pending."""
        if not self._clean(prepared.total):
            yield split(data, start, end, number)
            return
        out: list = []
        self._flush(out, int(run.counts[0]))
        yield from out
        after = np.searchsorted(run.bars, run.dicts)        # each dict's next bar
        flushed = int(np.count_nonzero(after < len(run.bars)))
        if flushed:
            steps = run.counts[after[:flushed]]
            self._stated_steps(steps)
            yield _records(prepared.bare_keys, run.values, steps, number + run.dicts[:flushed])
        out = []
        if flushed < len(run.dicts):
            self._last_dict(prepared.bare_keys, run.values, number + int(run.dicts[-1]), out)
        elapsed, remaining, line, whole = run.clock
        if not (whole and int(run.counts[0]) == self.clock_step):
            self._clock(elapsed, remaining, line + number, out)
        yield from out
        self.clock_step = self.last_step = int(run.counts[-1])
        self.bar_line = number + int(run.bars[-1])
        self.in_dump = self.in_message = False
        yield len(run.bars) + len(run.dicts) - flushed    # the bars, and a dict left pending

    def _bare_clean(self) -> bool:
        """Whether a bare dict now gives what the fast path says: a training record whose
        step feed estimates, flushing the one before it."""
        return self.partial is None and self.block is None and not self.in_traceback \
            and not self.in_dump and not (self.pending is not None and self.pending_echo)

    def _last_dict(self, keys: tuple, values: list, number: int, out: list) -> None:
        """The last dict of a stretch (line `number`), pending as feed leaves it."""
        self._values({k: float(v[-1]) for k, v in zip(keys, values)}, number, out, echo=False)

    def _clean(self, total: int | None) -> bool:
        """Whether a training line now gives what the fast path says: its bars are of the
        training total and no dict, metric block or traceback is open."""
        return self.train_total == total and self.partial is None and self.block is None \
            and not self.in_traceback

    def _quiet_ok(self, prepared: Prepared, quiet: Quiet) -> bool:
        """Whether a stretch of quiet lines is quiet in this state (else feed reads it)."""
        if quiet.unsafe or self.partial is not None or self.block is not None \
                or self.in_traceback or self.first_time is None and quiet.stamped:
            return False
        if quiet.bars and self.train_total != prepared.total:
            return False
        if quiet.bare_first and not (self.in_message or self.in_dump):
            return False
        if quiet.version and "transformers_version" not in self.facts:
            return False
        for name, value in quiet.facts:
            if not (name == "num_examples" and self.in_eval or self.facts.get(name) == value
                    and (name != "total_steps" or self.train_total == value)):
                return False
        return True

    def _quiet(self, quiet: Quiet) -> None:
        """The state after a stretch of quiet lines."""
        if quiet.message is not None:
            self.in_message = quiet.message
            self.in_dump = False
        if quiet.stamped:
            self.time = quiet.time


def _records(keys: tuple, values: list, steps: np.ndarray, lines: np.ndarray,
             estimated: np.ndarray | None = None) -> Records:
    """The training Records of the first len(steps) of a stretch's dicts (on `lines`), as
    _values makes their records."""
    count = len(steps)
    metrics = dict(zip(keys, (v[:count] for v in values)))
    epoch = metrics.pop("epoch", None)
    if "learning_rate" not in metrics and "lr" in metrics:
        metrics["learning_rate"] = metrics.pop("lr")
    return Records(TRAIN, steps.astype(np.float64),
                   np.full(count, np.nan) if epoch is None else epoch, np.full(count, np.nan),
                   np.asarray(lines, dtype=np.float64),
                   {k: v for k, v in metrics.items() if k not in NOT_METRICS}, estimated)


@dataclass
class TrainingLines:
    """A run of training lines: each line's first bar count, the dicts' values (per key),
    frames read that no record counts, the last bar count, and the bar clock of the run
    (elapsed, remaining, line in the run, whether the clock's streak of equal counts reaches
    back to the first bar)."""

    counts: np.ndarray
    values: list
    frames: int
    first_frames: int         # bar frames of the first line
    last_count: int
    clock: tuple

    def after_first(self) -> TrainingLines:
        """The run without its first line (which feed read)."""
        elapsed, remaining, line, whole = self.clock
        return TrainingLines(self.counts[1:], [v[1:] for v in self.values],
                             self.frames - self.first_frames, 0, self.last_count,
                             (elapsed, remaining, line - 1, whole))


def _matches(marks: _Marks, starts: np.ndarray, pattern: str) -> np.ndarray:
    """Which lines of a block (their `starts`) an RE2 pattern matches (each with its `\\n`)."""
    return arrow.matches(arrow.lines(marks.data, starts, len(marks.data)), pattern)


def _columns(marks: _Marks, starts: np.ndarray, found: np.ndarray, keys: tuple, quoted: tuple,
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
        counts, bad = _counts(marks.bytes, marks.next(b"/", starts[idx]))   # a `/` ends it
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
    values: list
    clock: tuple


def _frame_lines(marks: _Marks, starts: np.ndarray, total: bytes, lone: np.ndarray, keys: tuple,
                 quoted: tuple) -> tuple[np.ndarray, tuple]:
    """Which lines of a block are one-frame lines (see the module; `lone`: its lines that are
    a training dict of `keys` alone, none next to another), and their columns: the bar lines
    and their counts, the dict lines and their values."""
    bars = _matches(marks, starts, "^" + (bar(total, rb"\d+") + rb" *\n$").decode())
    blank = _matches(marks, starts, "^ *\n$")
    bar_at = np.flatnonzero(bars)
    counts, long = _counts(marks.bytes, marks.next(b"/", starts[bar_at]))
    bars[bar_at[long]] = False
    lone, values = _columns(marks, starts, lone, keys, quoted, counted=False)
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


def _frames_of(columns: tuple, data: bytes, starts: np.ndarray, ends: np.ndarray, lo: int,
               hi: int) -> OneFrameLines:
    """The OneFrameLines of lines lo..hi-1 of a block, from the columns of its one-frame lines."""
    bar_at, counts, dict_at, values = columns
    b0, b1 = np.searchsorted(bar_at, (lo, hi))
    d0, d1 = np.searchsorted(dict_at, (lo, hi))
    return OneFrameLines(bar_at[b0:b1] - lo, counts[b0:b1], dict_at[d0:d1] - lo,
                         [v[d0:d1] for v in values], _clock_of(data, starts, ends, lo, hi - lo))


class _Marks:
    """Where bytes are in a block (each byte's offsets found once, when first asked)."""

    def __init__(self, data: bytes):
        self.data = data
        self.bytes = np.frombuffer(data, dtype=np.uint8)
        self._where: dict = {}

    def where(self, byte: bytes) -> np.ndarray:
        """The offsets of `byte`, in order."""
        found = self._where.get(byte)
        if found is None:
            found = self._where[byte] = np.flatnonzero(self.bytes == ord(byte))
        return found

    def next(self, byte: bytes, at: np.ndarray) -> np.ndarray:
        """The offset of `byte` at or after each of `at` (it is there)."""
        found = self.where(byte)
        return found[np.searchsorted(found, at)]

    def count(self, byte: bytes, start: int, end: int) -> int:
        """How many `byte` there are in [start, end)."""
        found = self.where(byte)
        return int(np.searchsorted(found, end) - np.searchsorted(found, start))


def _counts(a: np.ndarray, slashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The printed counts that end before `slashes` in a block's bytes `a` (digits after a
    space or `|`), and which are too long to be int64s (then 0)."""
    out = np.zeros(len(slashes), np.int64)
    alive = np.ones(len(slashes), dtype=bool)
    scale = 1
    for back in range(1, 20):
        digit = a[slashes - back].astype(np.int64) - 48
        alive &= (digit >= 0) & (digit <= 9)
        if not alive.any():
            return out, np.zeros(len(slashes), dtype=bool)
        out += np.where(alive, digit * scale, 0)
        scale *= 10
    out[alive] = 0
    return out, alive


def _floats(texts) -> tuple[np.ndarray, np.ndarray | None]:
    """The values of printed numbers (a pyarrow binary array) as feed reads them
    (hf_trainer.number), and which of them it would not read (None: all are numbers)."""
    import pyarrow as pa

    try:      # pyarrow's cast takes no number that Python's float() does not, nor `nan(1)`
        return arrow.floats(texts), None
    except pa.ArrowInvalid:
        from .hf_trainer import number

        values = [None if text is None else number(text.decode()) for text in texts.to_pylist()]
        bad = np.array([v is None for v in values], dtype=bool)
        return np.array([np.nan if v is None else v for v in values]), bad


def _run_of(columns: list, marks: _Marks, starts: np.ndarray, ends: np.ndarray, first: int,
            n: int, key_slashes: int) -> TrainingLines:
    """The TrainingLines of lines first..first+n-1 of a block, from the columns of their rows
    (counts, values...); key_slashes: the `/` in a line's dict keys."""
    start, end = int(starts[first]), int(ends[first + n - 1]) + 1
    data = marks.data
    last_line = data[int(starts[first + n - 1]):end - 1]
    slashes = marks.count(b"/", start, end) - n * key_slashes      # 2 per bar: n/total, it/s
    return TrainingLines(columns[0], columns[1:], slashes // 2,
                         (marks.count(b"/", start, int(ends[first]) + 1) - key_slashes) // 2,
                         int(_FRAME.findall(last_line)[-1][0]),
                         _clock_of(data, starts, ends, first, n))


def _clock_of(data: bytes, starts: np.ndarray, ends: np.ndarray, first: int, n: int) -> tuple:
    """The bar clock after a run of training lines: (elapsed, remaining, line in the run,
    whether it is the first frame's): the frame where the count last changed."""
    last = None
    for i in range(n - 1, -1, -1):
        frames = _FRAME.findall(data, int(starts[first + i]), int(ends[first + i]))
        for count, elapsed, remaining in reversed(frames):
            if last is not None and int(count) != last[0]:
                return last[1].decode(), last[2].decode(), last[3], False
            last = (int(count), elapsed, remaining, i)
    return last[1].decode(), last[2].decode(), 0, True
