"""Where bytes are in a block of the hf_trainer fast path (`hf_lines`): each byte's offsets,
found once with numpy, and from the quotes, where the training dicts (`{'loss': `) are and on
which lines.
"""
from __future__ import annotations

import numpy as np


class Marks:
    """Where bytes are in a block (each byte's offsets found once, when first asked)."""

    def __init__(self, data: bytes, ends: np.ndarray | None = None):
        self.data = data
        self.bytes = np.frombuffer(data, dtype=np.uint8)
        self._where: dict = {} if ends is None else {b"\n": ends}
        self._dicts: np.ndarray | None = None      # training dicts' braces
        self._lines: dict = {}                        # dict_lines' answers

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

    def dict_lines(self, before: bytes, starts: np.ndarray) -> np.ndarray:
        """The lines (of the block's `starts`, in order) that hold a training dict right
        after `before` (b"": at the line's start)."""
        lines = self._lines.get(before)
        if lines is None:
            braces = self._braces()
            braces = braces[braces >= len(before)]
            braces = braces[self._after(braces, before)]
            lines = np.searchsorted(starts, braces, side="right") - 1
            if not before:
                lines = lines[starts[lines] == braces]
            lines = self._lines[before] = lines[np.r_[True, lines[1:] != lines[:-1]]] \
                if len(lines) else lines
        return lines

    def losses(self, before: bytes) -> int:
        """How many training dicts right after `before` the block holds (one in its first
        four bytes or last eight is not counted)."""
        braces = self._braces()
        braces = braces[(braces >= 4) & (braces < len(self.bytes) - 8)]
        return int(np.count_nonzero(self._after(braces, before)))

    def _braces(self) -> np.ndarray:
        """The offsets of the training dicts (`{'loss': `, their braces), found from the
        block's quotes (which the columns need anyway): no scan of the block."""
        if self._dicts is None:
            quotes, a = self.where(b"'"), self.bytes
            quotes = quotes[(quotes >= 1) & (quotes + 7 < len(a))]
            quotes = quotes[a[quotes - 1] == ord("{")]         # a dict's first key
            found = np.ones(len(quotes), dtype=bool)
            for i, byte in enumerate(b"loss': "):
                found &= a[quotes + 1 + i] == byte
            self._dicts = quotes[found] - 1
        return self._dicts

    def _after(self, braces: np.ndarray, before: bytes) -> np.ndarray:
        """Which of these braces (at `len(before)` or later) come right after `before`."""
        found = np.ones(len(braces), dtype=bool)
        for i, byte in enumerate(reversed(before)):
            found &= self.bytes[braces - 1 - i] == byte
        return found
