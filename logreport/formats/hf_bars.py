"""The training bar's counts and clock in a block's lines (hf_trainer's fast path, `hf_lines`):
the counts printed before slashes, read at once with numpy (`counts`), and the last count of a
stretch of lines with the bar clock after it, read from its lines (`last_clock`) or, for all
runs of training lines of a block at once, from their frames (`run_clocks`).
"""
from __future__ import annotations

import re

import numpy as np

from .hf_quiet import CLOCK

FRAME = re.compile(rb"(\d+)/\d+ \[(" + CLOCK + rb")<(" + CLOCK + rb"|\?),")


def counts(a: np.ndarray, slashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def last_clock(data: bytes, starts, ends, first: int, n: int) -> tuple:
    """The last bar count of a stretch of lines, and the bar clock after it: (elapsed,
    remaining, line in the stretch, whether it is the first frame's), of the frame where the
    count last changed. A line's frames are read up to the `,` after its last `<` (a dict
    after them is not read: its digits are slow to look through)."""
    last = None
    for i in range(n - 1, -1, -1):
        start, end = int(starts[first + i]), int(ends[first + i])
        at = data.rfind(b"<", start, end)
        if at < 0:
            continue
        comma = data.find(b",", at, end)
        for count, elapsed, remaining in reversed(FRAME.findall(
                data, start, comma + 1 if comma >= 0 else end)):
            if last is None:
                final = int(count)
            elif int(count) != last[0]:
                return final, (last[1].decode(), last[2].decode(), last[3], False)
            last = (int(count), elapsed, remaining, i)
    return final, (last[1].decode(), last[2].decode(), 0, True)


def run_clocks(marks, starts: np.ndarray, training: np.ndarray, lo: np.ndarray,
               hi: np.ndarray) -> list | None:
    """What last_clock reads of each run of training lines lo[k]..hi[k]-1 of a block, read
    for all runs at once from the frames of its `training` lines (a flag per line): such a
    line is frames of the training bar, then a dict (the line's first quote is the dict's);
    a frame, `count/total [elapsed<remaining, rate]`, has two slashes, its count's first.
    None where a count is too long to be read so (last_clock reads it)."""
    data, a = marks.data, marks.bytes
    lines = np.flatnonzero(training)
    quotes, slashes = marks.where(b"'"), marks.where(b"/")
    first = np.searchsorted(slashes, starts[lines])
    per_line = (np.searchsorted(slashes, quotes[np.searchsorted(quotes, starts[lines])])
                - first) // 2
    on_line = np.zeros(len(starts), dtype=np.int64)
    on_line[lines] = per_line
    before = np.zeros(len(starts) + 1, dtype=np.int64)    # frames on the lines before each
    np.cumsum(on_line, out=before[1:])
    which = np.arange(int(before[-1])) - np.repeat(before[lines], per_line)
    at = slashes[np.repeat(first, per_line) + 2 * which]      # each frame's count slash
    count, long = counts(a, at)
    if long.any():
        return None
    line = np.repeat(lines, per_line)
    index = np.arange(len(count))
    changed = np.r_[True, count[1:] != count[:-1]]
    streak = np.maximum.accumulate(np.where(changed, index, 0))   # its streak's first frame
    f0, last = before[lo], before[hi] - 1
    frame = np.maximum(streak[last], f0)            # where the run's count last changed
    whole = frame == f0
    out = []
    for final, slash, ln, w in zip(count[last].tolist(), at[frame].tolist(),
                                   (line[frame] - lo).tolist(), whole.tolist()):
        bracket = data.find(b"[", slash)
        lt = data.find(b"<", bracket)
        comma = data.find(b",", lt)
        out.append((final, (data[bracket + 1:lt].decode(), data[lt + 1:comma].decode(),
                            0 if w else ln, w)))
    return out
