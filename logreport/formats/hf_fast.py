"""The block fast path of the hf_trainer parser: whole lines of tqdm frames and training dicts
read column-wise (one regex over a block, values cast at once), giving exactly the events of
feeding every frame.

A mixin of `hf_trainer.Parser`: its state (train_total, pending, last_step, ...) is the
parser's; what the fast path cannot take it hands back to `feed`.
"""
from __future__ import annotations

import re

import numpy as np

from ..events import MAX_LINE, TRAIN, Records

# The fast post-hoc path (feed_block) takes whole physical lines made only of tqdm frames that
# feed would read as plain bars (no description, a numeric total, it/s or s/it), all of one
# total, blank frames, and maybe a last frame that is a training dict of plain numbers.
_CLOCK_B = rb"\d+:\d{2}(?::\d{2})?"
_BAR_B = (rb"[ \d]{2}\d%\|(?:\xe2\x96[\x88-\x8f])*[ #\d]*\| *(?P<nN>\d+)/TOTAL \[(?P<eN>" + _CLOCK_B
          + rb")<(?P<rN>" + _CLOCK_B + rb"|\?), *(?:\?|\d+(?:\.\d+)?)(?:it/s|s/it)\](?:\x1b\[A)?")
_NUM_B = rb"-?(?:\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|nan|inf)"
_VALUE_B = rb"(?:'" + _NUM_B + rb"'|" + _NUM_B + rb")"
_BAR_LINE = re.compile(  # first bar: n1, e1, r1; last other bar (if any): n2, e2, r2
    rb"\n\r(?: *\r)*" + _BAR_B.replace(b"N", b"1").replace(b"TOTAL", rb"(?P<total>\d+)")
    + rb"(?:\r(?: *|" + _BAR_B.replace(b"N", b"2").replace(b"TOTAL", rb"(?P=total)") + rb"))*"
    + rb"(?:\r(?P<dict>\{'loss': " + _VALUE_B + rb"(?:, '[\w/.@-]+': " + _VALUE_B + rb")*\}))?"
    + rb"(?![^\n])")
_BARS_B = re.compile(_BAR_B.replace(b"?P<nN>", b"").replace(b"?P<eN>", b"").replace(b"?P<rN>", b"")
                     .replace(b"TOTAL", rb"\d+"))
_KEYS_B = re.compile(rb"'([^']+)': ")
_VALUES_B = re.compile(rb": '?([^',}]+)")
_ODD_EPOCH = re.compile(rb"'epoch': '?-?(?:nan|inf)")
NOT_METRICS = ("epoch", "step", "total_flos")   # keys of a dict that are no metric of it
_FALLBACK = object()                 # a dict's step when a dict, not a bar, flushed it


def _split(data: bytes, number: int) -> list[tuple[int, bytes]]:
    """(number, raw line) of the lines of data (a last line end ends no empty line)."""
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    return list(zip(range(number, number + len(lines)), lines))


def _odd_dict(text: bytes) -> bool:
    """A glued dict that the fast path leaves to feed: a final one, or one with an odd epoch."""
    return b"'train_loss'" in text or b"'train_samples_per_second'" in text \
        or bool(_ODD_EPOCH.search(text))


class BlockPath:
    """The fast path of the hf_trainer parser."""

    def feed_block(self, data: bytes, number: int):
        """Parse whole lines of bytes whose first is `number`: yields lists of (number, raw
        line) that the caller must `feed` frame by frame, in order, and for runs of lines made
        only of training bar frames and glued training dicts (_BAR_LINE) their events: Records,
        Record, Info, and an int of frames read that no Records counts.

        Gives exactly the events of feeding every frame, but for the bar clock Info, whose
        facts end equal.
        """
        data = b"\n" + data      # each _BAR_LINE match begins with the line end before it
        run: list = []
        at = 1                # offset of the first line not yielded yet, whose number is `number`
        for m in _BAR_LINE.finditer(data):
            start = m.start() + 1
            if start > at:
                if run:
                    yield from self._bar_lines(run)
                    run = []
                yield _split(data[at:start - 1], number)
                number += data.count(b"\n", at, start)
            run.append((number, m))
            number += 1
            at = m.end() + 1
        if run:
            yield from self._bar_lines(run)
        if at < len(data):
            yield _split(data[at:], number)

    def _bar_lines(self, lines: list):
        """The events of consecutive _BAR_LINE lines, as feed would give them (see feed_block)."""
        start = 0
        while start < len(lines):
            if self.train_total is None or self.partial is not None or self.block is not None \
                    or self.in_traceback:
                yield [(number, m.group()[1:]) for number, m in lines[start:]]
                return
            start = yield from self._train_bars(lines, start)

    def _train_bars(self, lines: list, start: int):
        """_bar_lines from lines[start] on, up to a line that feed must read (returned: the
        index after it): a line cut by decode, or with a final dict or one with an odd epoch.
        Bars are of the training bar when their total is the training total, else ignored (an
        eval bar)."""
        train = str(self.train_total).encode()
        frames = 0
        dicts: list = []          # [number, raw dict, keys, step] (step: None while it waits)
        clock = None
        last_dict = None          # a dict given its fallback step after the last training bar
        out: list = []
        slow = None
        for i in range(start, len(lines)):
            number, m = lines[i]
            total, n1, n2, text = m.group("total", "n1", "n2", "dict")
            if m.end() - m.start() > MAX_LINE or text is not None and _odd_dict(text):
                slow = i
                break
            count = m.string.count(b"%|", m.start(), m.end())
            frames += count
            if total == train:
                self._step(dicts, out, int(n1))
                self.redraws = self.redraws or count > 1
                if n2 is None:
                    last, j, bar = int(n1), 0, m.group("e1", "r1")
                elif count == 2:
                    last = int(n2)
                    j = int(last != int(n1))
                    bar = m.group("e2", "r2") if j else m.group("e1", "r1")
                else:
                    bars = _BARS_B.findall(m.group())
                    last = int(bars[-1][0])
                    j = len(bars) - 1
                    while j > 0 and int(bars[j - 1][0]) == last:
                        j -= 1
                    bar = bars[j][1:]
                if j > 0 or last != self.clock_step:
                    clock = (number, bar)
                self.clock_step = self.last_step = last
                last_dict = None
            if text is not None:
                if dicts and dicts[-1][3] is None:
                    last_dict = len(dicts) - 1
                self._step(dicts, out, _FALLBACK)
                frames += 1
                dicts.append([number, text, _KEYS_B.findall(text), None])
        if slow != start:
            yield from self._train_events(dicts, out, clock, last_dict, frames)
        if slow is None:
            return len(lines)
        yield [(lines[slow][0], lines[slow][1].group()[1:])]
        return slow + 1

    def _train_events(self, dicts: list, out: list, clock, last_dict, frames: int):
        """The events of _train_bars once its lines are read; the last dict, still without a
        step, becomes the pending one."""
        self.in_dump = self.in_message = False
        if clock is not None:
            number, (elapsed, remaining) = clock
            self._clock(elapsed.decode(), remaining.decode(), number, out)
        yield from out
        if dicts:
            self.pending_echo = False           # as _dict leaves it
        if dicts and dicts[-1][3] is None:      # still waits for its step
            number, text, _, _ = dicts.pop()
            self._dict(text.decode(), number, out, echo=False)
        start = 0
        for end in range(1, len(dicts) + 1):
            if end == len(dicts) or dicts[end][2] != dicts[start][2]:
                records = self._records(dicts[start:end])
                if start <= (last_dict if last_dict is not None else -1) < end:
                    self.last_step = int(records.step[last_dict - start])
                frames -= len(records)
                yield records
                start = end
        if frames:
            yield frames

    def _step(self, dicts: list, out: list, step) -> None:
        """_train_bars: a training bar (its step) or a dict (_FALLBACK) flushes the dict before
        (a dict drops a pending LlamaBoard echo instead, as _dict does)."""
        if not dicts:
            if step is _FALLBACK and self.pending_echo:
                self.pending = None
            self._flush(out, None if step is _FALLBACK else step)
        elif dicts[-1][3] is None:
            dicts[-1][3] = step

    def _records(self, dicts: list) -> Records:
        """Records of training dicts with the same keys, as _dict and _emit would give them."""
        keys = [k.decode() for k in dicts[0][2]]
        values = np.array([float(v) for d in dicts for v in _VALUES_B.findall(d[1])])
        column = dict(zip(keys, values.reshape(len(dicts), len(keys)).T))
        epoch = column.pop("epoch", None)
        if "learning_rate" not in column and "lr" in column:
            column["learning_rate"] = column.pop("lr")
        metrics = {k: v for k, v in column.items() if k not in NOT_METRICS}
        epochs = [None] * len(dicts) if epoch is None else epoch.tolist()
        steps, flags = zip(*(self._train_step(None if d[3] is _FALLBACK else d[3], e)
                             for d, e in zip(dicts, epochs)))
        estimated = np.array(flags, dtype=bool)
        return Records(TRAIN, np.array(steps, dtype=np.float64),
                       np.full(len(dicts), np.nan) if epoch is None else epoch,
                       np.full(len(dicts), np.nan),
                       np.array([d[0] for d in dicts], dtype=np.float64), metrics,
                       estimated=estimated if estimated.any() else None)
