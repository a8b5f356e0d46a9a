"""Column-wise reading of runs of like lines, for the fast post-hoc path of a format.

Two lines are *alike* when they are equal once their digits are deleted (their skeleton), their
digit runs sit at the same places, and the runs that are not numbers of interest are equal.
The format parses one real line of a skeleton with its ordinary parser and says where the
numbers of interest are (`Layout`); every alike line then gives the same events with its own
numbers, which are cut out of the block at the same digit runs and parsed in bulk (pyarrow's
string-to-float cast: correctly rounded, like Python's float()).
"""
from __future__ import annotations

import re

import numpy as np

from . import arrow

DIGITS = b"0123456789"
_RUN = re.compile(rb"\d+")


class Block:
    """Whole lines of bytes, with their line and digit-run offsets (numpy)."""

    def __init__(self, data: bytes, ends: np.ndarray | None = None):
        self.data = data
        a = self.bytes = np.frombuffer(data, dtype=np.uint8)
        ends = np.flatnonzero(a == 10) if ends is None else ends
        if data and not data.endswith(b"\n"):
            ends = np.append(ends, len(data))
        self.n = len(ends)
        self.line_start = np.concatenate(([0], ends[:-1] + 1)) if self.n else ends
        self.line_end = ends
        digit = (a - 48) < 10
        edges = np.flatnonzero(digit[1:] != digit[:-1]) + 1
        if len(a) and digit[0]:
            edges = np.concatenate(([0], edges))
        if len(a) and digit[-1]:
            edges = np.append(edges, len(a))
        self.run_start, self.run_end = edges[0::2].copy(), edges[1::2].copy()
        self.first_run = np.searchsorted(self.run_start,
                                         np.append(self.line_start, len(data)))

    def skeletons(self) -> list[bytes]:
        """Each line without its digits."""
        return self.data.translate(None, DIGITS).split(b"\n")[:self.n]

    def line(self, i: int) -> bytes:
        return self.data[self.line_start[i]:self.line_end[i]]


class Layout:
    """Where the numbers of interest sit in the digit runs of one real line.

    tokens: disjoint (start, end, fixed) spans of numbers in `line`, each with a digit; fixed:
    its digit runs must have the line's lengths (for `\\d{2}`-like patterns). Digit runs before
    `free_before` may differ in value but not in length; any other digit run outside the
    tokens must be equal.
    """

    def __init__(self, line: bytes, tokens: list[tuple[int, int, bool]], free_before: int = 0):
        runs = [m.span() for m in _RUN.finditer(line)]
        self.k = len(runs)
        lens = np.array([e - s for s, e in runs], dtype=np.int64)
        self.lens = lens
        self.gap = np.array([s for s, _ in runs], dtype=np.int64) - (np.cumsum(lens) - lens)
        kind = ["literal"] * self.k
        self.first, self.lead, self.last, self.tail = [], [], [], []
        order = sorted(range(len(tokens)), key=lambda t: tokens[t][0])
        self.unsort = np.argsort(order)
        for s, e, fixed in (tokens[t] for t in order):
            inside = [j for j, (rs, re_) in enumerate(runs) if rs >= s and re_ <= e]
            a, b = inside[0], inside[-1]
            self.first.append(a)
            self.lead.append(runs[a][0] - s)
            self.last.append(b)
            self.tail.append(e - runs[b][1])
            for j in inside:
                kind[j] = "fixed" if fixed else "free"
        for j, (_, re_) in enumerate(runs):
            if kind[j] == "literal" and re_ <= free_before:
                kind[j] = "fixed"
        self.fixed = np.array([j for j in range(self.k) if kind[j] != "free"], dtype=np.int64)
        self.literals = [(j, line[runs[j][0]:runs[j][1]]) for j in range(self.k)
                         if kind[j] == "literal"]

    def match(self, block: Block, idx: np.ndarray):
        """(ok, values): which lines idx are alike, and their tokens' numbers (ok rows only)."""
        fr = block.first_run[idx]
        ok = (block.first_run[idx + 1] - fr) == self.k
        nruns = len(block.run_start)
        rows = np.minimum(fr[:, None] + np.arange(self.k), max(nruns - 1, 0))
        if not nruns:
            return ok & (self.k == 0), np.empty((int(ok.sum()), len(self.first)))
        s, e = block.run_start[rows], block.run_end[rows]
        length = e - s
        ok &= ((s - block.line_start[idx][:, None] - (np.cumsum(length, axis=1) - length))
               == self.gap).all(axis=1)
        ok &= (length[:, self.fixed] == self.lens[self.fixed]).all(axis=1)
        last = len(block.bytes) - 1
        for j, text in self.literals:
            for t, ch in enumerate(text):
                ok &= block.bytes[np.minimum(s[:, j] + t, last)] == ch
        s, e = s[ok], e[ok]
        starts = s[:, self.first] - np.array(self.lead, dtype=np.int64)
        ends = e[:, self.last] + np.array(self.tail, dtype=np.int64)
        return ok, numbers(block.data, starts, ends)[:, self.unsort]


def numbers(data: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """float(data[s:e]) for each (s, e), in bulk; spans in increasing, disjoint order."""
    import pyarrow as pa

    if not starts.size:
        return np.empty(starts.shape)
    texts = arrow.slices(data, starts, ends)
    try:
        return arrow.floats(texts).reshape(starts.shape)
    except pa.ArrowInvalid:  # a number arrow does not take (e.g. 1e999): Python's float
        return np.array([float(t) for t in texts.to_pylist()]).reshape(starts.shape)
