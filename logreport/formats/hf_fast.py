"""The block fast path of the hf_trainer parser: a block of whole lines is read at C speed
into kinds of stretches (which lines are of each, and their columns: `hf_lines`), then their
events are given in order, exactly those of feeding every frame (but for the bar clock Info,
whose facts end equal):

- *training lines*: tqdm frames of the training bar, then a training dict whose keys are
  those of the block's first such line (`\\r  2%|▏ | 1/60 [00:00<00:28,  2.04it/s]\\r  …
  \\r{'loss': '7.622', …}`), found by one RE2 match per line (pyarrow: bytes, no GIL) whose
  pattern admits only frames feed reads as plain training bars and a dict of those keys;
  the lines' shape being known, their bar counts and values are cut out where the
  separators after them are, and cast at once. A run of them gives one Records: each
  dict's step is the count of the first frame after it (the last dict's too where the line
  after the run, which feed reads, begins with the training bar: `hf_quiet.first_bar`).
- *quiet lines* (`hf_quiet`): logger lines with no fact, marker or dict, the bare lines that
  continue them (a config dump), bars of another total (an eval bar) and empty lines (found by
  RE2 over all of a block's lines between runs at once: `hf_quiet.Gaps`). They change only a
  few flags and the clock, which the stretch gives at once.
- *bare dicts*: lines that are a training dict alone, of the keys of the block's first such
  line (a console of stdout only, `| tee`: tqdm draws its bars on stderr). Their steps are
  estimates, made in order as feed makes them; their values are cut out as above.
- *one-frame lines*: a console whose tqdm redraws became lines of their own (`\\r` turned into
  `\\n` on the way to the file): lines that are a frame of the training bar alone, blank lines,
  and such dicts alone, one after a bar at least. As on training lines, each dict's step is the
  count of the first bar after it.
- *echo pairs*: LlamaBoard's console, where LLaMA-Factory's logger echoes each training dict
  right after the bars (`\\r 57%|… | 34/60 [01:51<01:49,  4.22s/it][INFO|…] llamafactory.train.
  callbacks:144 >> {'loss': 7.5547, …}`) and the dict follows on the next line: the dict
  replaces its echo and takes its step from the bars around (the last before the echo, the
  first after), as feed weighs them.
- *a glued line* (`hf_quiet.glued_line`): the line after a run of training lines that begins
  with the training bar and goes on with a logger line (the evaluation's first, then its
  banner on the next line; a checkpoint saved), read with feed's own methods for a frame's bar
  and for the text after it, without feed's splitting and dispatch.
- anything else goes back to `feed`, line by line.

`prepare_block` is stateless (it may run in another thread or process); `emit_block` gives
the events in order and keeps the parser's state. A mixin of `hf_trainer.Parser`: its state
(train_total, pending, last_step, ...) is the parser's.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..events import TRAIN, Frames, RecordColumns, RecordRows, Records
from .hf_bars import run_clocks
from .hf_lines import (
    BareDicts,
    EchoPairs,
    OneFrameLines,
    bare_dicts,
    bare_of,
    bare_shape,
    block_shape,
    echo_pairs,
    frame_lines,
    frame_total,
    frames_of,
    pairs_of,
    run_of,
    training_lines,
)
from .hf_marks import Marks
from .hf_quiet import (
    BARE,
    ECHO,
    FRAMES,
    GLUED,
    LINES,
    QUIET,
    STD,
    Gaps,
    Quiet,
    first_bar,
    glued_line,
    split,
)
from .hf_values import BAR, plain_bar, stamp

NOT_METRICS = ("epoch", "step", "total_flos")   # keys of a dict that are no metric of it


def _names(keys: tuple | None) -> tuple:
    return tuple(key.decode() for key in keys or ())


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
        line) that the caller must `feed` frame by frame, in order (or `Frames`, those frames
        split ahead), ints of frames read that no event counts, and events."""
        return self.emit_block(self.prepare_block(data), number, data)

    # --- stateless: the stretches of a block ---------------------------------------------
    def prepare_block(self, data: bytes, ends: np.ndarray | None = None) -> Prepared:
        """The stretches of a block (see the module); needs no state. `ends`: the offsets of
        its line ends, where known."""
        total, keys, quoted = block_shape(data)
        if not data.endswith(b"\n"):
            data, ends = data + b"\n", None
        marks = Marks(data, ends)
        ends = marks.where(b"\n")
        starts = np.concatenate(([0], ends[:-1] + 1))
        bare_keys, bare_quoted, bare_at = bare_shape(marks, starts)
        if total is None and bare_keys:
            total = frame_total(data, bare_at)
        prepared = Prepared(int(total) if total else None, _names(keys), _names(bare_keys))
        kinds = np.full(len(ends), QUIET, dtype=np.int8)   # QUIET: none of the others
        columns = {}
        shape_of = np.full(len(ends), -1, dtype=np.int8)     # of a training line
        if keys:
            shape_of, shapes = training_lines(marks, starts, total, keys, quoted)
            shapes = [shape + (_record_columns(*shape),) for shape in shapes]
            kinds[shape_of >= 0] = STD
            if marks.losses(b" >> "):
                echo, columns[ECHO] = echo_pairs(marks, starts, total, keys, quoted)
                kinds[echo] = ECHO
        if bare_keys:
            dicts, values, bare, echoes, versioned = bare_dicts(marks, starts, bare_keys,
                                                                bare_quoted)
            kinds[bare] = BARE
            in_bare = bare[np.flatnonzero(dicts)]
            columns[BARE] = (np.flatnonzero(dicts & bare), [v[in_bare] for v in values], echoes,
                             versioned)
            # a dict alone between bars, one frame a line, is no bare dict but a one-frame line
            if total and not in_bare.all():
                one, columns[FRAMES] = frame_lines(marks, starts, total, dicts & ~bare,
                                                   [v[~in_bare] for v in values])
                kinds[one] = FRAMES
        kinds_and_shapes = kinds.astype(np.int16) * 8 + shape_of
        edges = np.flatnonzero(kinds_and_shapes[1:] != kinds_and_shapes[:-1]) + 1
        last = np.zeros(len(ends), dtype=bool)         # of its stretch
        last[edges - 1] = last[-1] = True
        bounds = np.concatenate(([0], edges, [len(ends)]))
        lengths, kind_of = np.diff(bounds), kinds[bounds[:-1]]
        # quiet stretches, and one-frame lines too few to pay: read by gaps
        between = (kind_of == QUIET) | (kind_of == FRAMES) & (lengths < 3)
        gaps = Gaps(data, starts, ends, total, np.flatnonzero(np.repeat(between, lengths)), last)
        std = np.flatnonzero(kind_of == STD)                 # runs of training lines
        runs = _runs(marks, starts, shape_of, shapes, bounds[std], bounds[std + 1]) \
            if len(std) else None
        taken = 0                       # lines a GLUED stretch took from the next stretch
        bounds_list = bounds.tolist()
        starts, ends, kinds = gaps.starts, gaps.ends, kinds.tolist()    # (lists: read one by one)
        for lo, hi, to_gaps in zip(bounds_list[:-1], bounds_list[1:], between.tolist()):
            lo, taken = lo + taken, 0
            if lo >= hi:
                continue
            if to_gaps:
                gaps.read(prepared.parts, lo, hi)
                continue
            start, end, kind = starts[lo], ends[hi - 1] + 1, kinds[lo]
            if kind == STD:
                # a line that begins with the training bar is none of gap's quiet lines: the
                # next line, if it does, is one feed reads
                bar = first_bar(data, starts[hi], ends[hi], total) \
                    if hi < len(ends) and kinds[hi] == QUIET else None
                run = run_of(shapes[shape_of[lo]], *next(runs), marks, starts, ends, lo,
                             hi - lo, int(bar.group(2)) if bar else None)
                # its last dict's step: the count of the bar beginning the next line (else none yet)
                run.records.step[run.lines.hi - 1] = np.nan if run.next_count is None \
                    else run.next_count
                prepared.parts.append((STD, lo, hi - lo, start, end, run))
                if bar:
                    taken = glued_line(prepared.parts, bar, data, hi, starts, ends, kinds)
                continue
            if kind == BARE:
                detail = bare_of(columns[BARE], data, starts, lo, hi)
            else:
                detail = (frames_of if kind == FRAMES else pairs_of)(columns[kind], data, starts,
                                                                     ends, lo, hi)
            prepared.parts.append((kind, lo, hi - lo, start, end, detail))
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
            elif kind == QUIET and detail.bare is not None:    # (not `data`: see Quiet)
                yield split(detail.bare, 0, len(detail.bare), number + first)
            elif kind == LINES:
                yield Frames((number + first + i, text) for i, text in detail)
            elif kind == BARE:
                yield from self._bare_dicts(prepared.bare_keys, number + first, count, detail,
                                            data, start, end)
            elif kind == FRAMES:
                yield from self._one_frame_lines(prepared, number + first, detail, data, start,
                                                 end)
            elif kind == ECHO:
                yield from self._echo_pairs(prepared, number + first, detail, data, start, end)
            elif kind == GLUED:
                yield from self._glued_line(number + first, *detail)
            else:
                yield split(data, start, end, number + first)

    def _training_lines(self, prepared: Prepared, number: int, count: int, run, data: bytes,
                        start: int, end: int):
        """The events of a run of training lines (`TrainingLines`)."""
        lines = None
        while count and not self._clean(prepared.total, int(run.counts[0])):
            lines = lines or data[start:end].split(b"\n")      # the first line, as feed reads it
            yield [(number, lines.pop(0))]
            number, count = number + 1, count - 1
            run = run.after_first()
        if not count:
            return
        counts, frames = run.counts, run.frames
        first = int(counts[0])
        out: list = []
        self._flush(out, first)                       # the first frame flushes the pending record
        yield from out
        flushed = count - (run.next_count is None)    # the next line's first bar flushes the last
        if flushed:
            records, lo = run.records, run.lines.lo
            self._stated_steps(records.step[lo:lo + flushed])
            yield RecordRows(records, lo, lo + flushed, number - int(records.line[lo]))
        out = []
        if run.next_count is None:
            self._last_dict(run.keys, run.values, number + count - 1, out)
        self._clock_after(run.clock, first, run.last_count, number, out)
        yield from out
        self.clock_step = self.last_step = run.last_count
        self.redraws = self.redraws or frames > count
        self.bar_line = number + count - 1
        self.in_dump = self.in_message = False
        yield frames + count - flushed          # the bars, and the last dict if now pending

    def _bare_dicts(self, keys: tuple, number: int, count: int, run: BareDicts, data: bytes,
                    start: int, end: int):
        """The events of a stretch of bare dicts (of `keys`, `BareDicts`): each flushes the one
        before it, whose step is then an estimate (Steps._estimate); an echo before a dict
        flushes it instead, and the dict replaces the echo."""
        lines = None
        while count and not self._bare_clean(run):
            lines = lines or data[start:end].split(b"\n")      # the first line, as feed reads it
            yield [(number, lines.pop(0))]
            number, count, run = number + 1, count - 1, run.after_first()
        if not count:
            return
        dicts, values = run.dicts, run.values
        n = len(dicts)
        out: list = []
        self._before_dict(TRAIN, number, out)
        self._flush(out)               # the first dict (or its echo) flushes the pending record
        if n > 1:                      # the next one (or its echo) comes while it waits
            self._buffered(number + int(dicts[0]), out)
        yield from out
        if n > 1:
            epochs = values[keys.index("epoch")][:-1] if "epoch" in keys else \
                np.full(n - 1, np.nan)
            steps = self._estimated_steps(epochs)
            self.last_step = int(steps[-1])
            yield _records(keys, values, steps, number + dicts[:-1], estimated=np.ones(n - 1))
        out = []
        self._last_dict(keys, values, number + int(dicts[-1]), out)
        yield from out
        self.in_message = False
        if run.stamp is not None:

            self.time = stamp(*run.stamp)
        yield 1 + len(run.echoes)            # the last dict (now pending), the echoes

    def _one_frame_lines(self, prepared: Prepared, number: int, run: OneFrameLines, data: bytes,
                         start: int, end: int):
        """The events of a stretch of one-frame lines (`OneFrameLines`) from line `number`:
        the first bar flushes the pending record; each dict's step is the count of the first
        bar after it; a dict with none after it is left pending."""
        after_bar = np.isin(run.dicts - 1, run.bars).any() or len(run.dicts) and run.dicts[0] == 0 \
            and self.bar_line == number - 1       # a dict on the line after a bar: feed weighs
        if not self._clean(prepared.total, int(run.counts[0])) or after_bar \
                or self.bars_apart:                                     # it (_values, _unsure)
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
        self._clock_after(run.clock, int(run.counts[0]), int(run.counts[-1]), number, out)
        yield from out
        self.clock_step = self.last_step = int(run.counts[-1])
        self.bar_line = number + int(run.bars[-1])
        self.in_dump = self.in_message = False
        yield len(run.bars) + len(run.dicts) - flushed    # the bars, and a dict left pending

    def _echo_pairs(self, prepared: Prepared, number: int, run: EchoPairs, data: bytes,
                    start: int, end: int):
        """The events of a stretch of echo pairs (`EchoPairs`) from line `number`: as feed
        reads them, each dict replaces its echo and takes its step, the last bar before the
        echo, weighed against the first bar after it (Steps._choose); the last stays pending."""
        pairs, keys, redraws = len(run.firsts), prepared.keys, self.redraws
        glued, after = run.lasts[:-1], run.firsts[1:]
        flags = redraws | (np.cumsum(run.multi)[:-1] > 0)     # redraws at each flush
        epochs = run.values[keys.index("epoch")] if "epoch" in keys else None
        differ = np.flatnonzero(glued != after).tolist()
        if not (self._clean(prepared.total, int(run.firsts[0])) and self.first_time is not None
                and ("llamafactory_version" in self.facts or not run.versioned)) \
                or any(self._bars_guess(bool(flags[k]), None if epochs is None
                                        else float(epochs[k])) for k in differ):  # feed's rules
            yield split(data, start, end, number)
            return

        out: list = []
        self._flush(out, int(run.firsts[0]))      # the first bar flushes the pending record
        yield from out
        if pairs > 1:
            steps = glued.copy()
            for k in differ:
                self.redraws = bool(flags[k])
                steps[k] = self._choose(int(glued[k]), int(after[k]),
                                        None if epochs is None else float(epochs[k]))
            self._stated_steps(steps)
            yield _records(keys, run.values, steps, number + 1 + 2 * np.arange(pairs - 1))
        self.redraws = redraws or bool(run.multi.any())
        out = []
        self._last_dict(keys, run.values, number + 2 * pairs - 1, out)
        self.pending.step = int(run.lasts[-1])            # its echo's
        self._clock_after(run.clock, int(run.firsts[0]), int(run.lasts[-1]), number, out)
        yield from out
        self.clock_step = self.last_step = int(run.lasts[-1])
        self.bar_line = number + 2 * (pairs - 1)
        self.in_dump = self.in_message = False
        self.time = stamp(*run.stamp)
        yield run.frames + 1              # the bars (the echoes on their frames), the last dict

    def _glued_line(self, number: int, text: str, cut: int, banner: str | None):
        """The events of a GLUED stretch (`hf_quiet.glued_line`) from line `number`: what feed
        gives for its frame, its bar (`text[:cut]`) read as `feed` reads the first of a frame's
        bars, the text after it as feed reads what follows a frame's bar, then the banner;
        feed reads the frames where a record or burst waits to be joined."""
        m = BAR.match(text) if not self.burst and self.partial is None else None
        if m is None or m.end() != cut:
            yield Frames([(number, text)] + ([(number + 1, banner)] if banner is not None else []))
            return
        out: list = []
        self.glued = self._bar(plain_bar(m, None), number, out)
        self._line(text[cut:], number, out)
        self.glued = None
        if banner is not None:
            self._line(banner, number + 1, out)
        yield from out
        yield 1 + (banner is not None)            # the frames read

    def _clock_after(self, clock: tuple, first: int, last: int, number: int, out: list) -> None:
        """The bar clock Info after a stretch of bars from line `number` whose first count is
        `first` and last `last` (clock: elapsed, remaining, line in the stretch, whether its
        streak of equal counts reaches back to the first bar); none if feed would give none."""
        elapsed, remaining, line, whole = clock
        if not (whole and first == self.clock_step):
            self._clock(elapsed, remaining, line + number, out, last)

    def _bare_clean(self, run: BareDicts) -> bool:
        """Whether a bare dict now gives what the fast path says: a training record whose
        step feed estimates, flushing the one before it (an echo's logger line changes only
        the clock, once the first stamp and the version are known); not in a console that
        draws bars, where dicts alone are a buffered stdout's burst (feed holds them)."""
        return self.partial is None and self.block is None and not self.in_traceback \
            and not self.in_dump and not self._after_final() \
            and not (self.bar_line or self.candidate or self.buffered) \
            and not (self.pending is not None and self.pending_echo) \
            and (not len(run.echoes) or self.first_time is not None
                 and ("llamafactory_version" in self.facts or not run.versioned.any()))

    def _last_dict(self, keys: tuple, values: list, number: int, out: list) -> None:
        """The last dict of a stretch (line `number`), pending as feed leaves it."""
        self._values({k: float(v[-1]) for k, v in zip(keys, values)}, number, out, echo=False)

    def _clean(self, total: int | None, first: int) -> bool:
        """Whether a training line now gives what the fast path says: its bars are of the
        training total, no dict, metric block or traceback is open, and the record its first
        bar (count `first`) flushes leaves it so: an evaluation whose epoch belies the step it
        gets finds stdout buffered (Steps._emit), and feed then reads the line."""
        return self.train_total == total and self.partial is None and self.block is None \
            and not self.in_traceback and not self.buffered and not self._after_final() \
            and self.written is None \
            and not self._flush_finds_buffered(first)

    def _quiet_ok(self, prepared: Prepared, quiet: Quiet) -> bool:
        """Whether a stretch of quiet lines is quiet in this state (else feed reads it)."""
        if quiet.unsafe or self.partial is not None or self.block is not None or self.burst \
                or self.in_traceback or self.parted or self.first_time is None and quiet.stamped:
            return False
        if quiet.bars and self.train_total != prepared.total:
            return False
        if quiet.bare is not None and not (self.in_message or self.in_dump):
            return False
        if quiet.version and "transformers_version" not in self.facts:
            return False
        for name, value in quiet.facts:
            if not (name == "num_examples" and (self.in_eval or self.train_count)
                    or self.facts.get(name) == value
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
        if quiet.starts:
            self._eval_begins()


def _runs(marks, starts: np.ndarray, shape_of: np.ndarray, shapes: list, lo: np.ndarray,
          hi: np.ndarray):
    """Per run of training lines lo[k]..hi[k]-1 of a block, in order: where its first line
    is among its shape's lines, and its last count and clock (`run_clocks`; None: run_of
    reads them)."""
    at = np.zeros(len(starts), dtype=np.int64)
    for _, lines, *_ in shapes:
        at[lines] = np.arange(len(lines))
    clocks = run_clocks(marks, starts, shape_of >= 0, lo, hi) or [None] * len(lo)
    return zip(at[lo].tolist(), clocks)


def _records(keys: tuple, values: list, steps: np.ndarray, lines: np.ndarray,
             estimated: np.ndarray | None = None) -> Records:
    """The training Records of the first len(steps) of a stretch's dicts (on `lines`), as
    _values makes their records."""
    count = len(steps)
    epoch, metrics = _metrics(keys, [v[:count] for v in values], count)
    return Records(TRAIN, steps.astype(np.float64), epoch, np.full(count, np.nan),
                   np.asarray(lines, dtype=np.float64), metrics, estimated)


def _record_columns(keys: tuple, lines: np.ndarray, columns: tuple) -> RecordColumns:
    """The records of a shape of training lines (`training_lines`'s keys, lines, columns):
    each dict's step is the first bar count of the line after it (the last one's of a stretch,
    that of the line after the stretch: set with the stretch)."""
    per_line, values = columns
    step = np.full(len(lines), np.nan)
    if len(lines):
        step[:-1] = per_line[0][1:]
    epoch, metrics = _metrics(keys, values, len(lines))
    return RecordColumns(step, epoch, lines.astype(np.float64), metrics)


def _metrics(keys: tuple, values: list, count: int) -> tuple:
    """The epochs (NaN: none) and metrics of `count` dicts of `keys` (values per key), as
    _values reads them."""
    metrics = dict(zip(keys, values))
    epoch = metrics.pop("epoch", None)
    if "learning_rate" not in metrics and "lr" in metrics:
        metrics["learning_rate"] = metrics.pop("lr")
    return (np.full(count, np.nan) if epoch is None else epoch,
            {k: v for k, v in metrics.items() if k not in NOT_METRICS})


