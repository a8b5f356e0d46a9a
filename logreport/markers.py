"""Markers: the markers of a run, kept as columns and read back as `Marker`s.

A Marker object with its line, step and time costs about 270 bytes; a console that saves a
checkpoint every 30 steps has over 100,000 of them a GB, which made memory grow with the log.
Here a marker's kind and input are references in lists (their strings are shared), a text
detail is UTF-8 bytes in one buffer, its line and step are int64 and its time a float64: about
100 bytes with a checkpoint path. Iterating gives Markers equal to those appended (a detail that
is not text is kept as it is; a marker whose numbers do not fit the columns, a float step say,
is kept whole).
"""
from __future__ import annotations

from array import array

from .events import Marker

_NONE = -(1 << 63)          # a step of None
_INT64 = range(_NONE + 1, 1 << 63)


class Markers:
    """Append-only; iterated in the order appended."""

    def __init__(self):
        self._kind: list = []
        self._file: list = []
        self._text = bytearray()          # the text details, one after the other
        self._ends = array("q")           # where each marker's text detail ends
        self._details: dict[int, object] = {}  # details that are not text, by position
        self._line = array("q")
        self._step = array("q")
        self._time = array("d")           # NaN: None
        self._whole: dict[int, Marker] = {}   # markers kept as they are, by position

    def append(self, marker: Marker) -> None:
        at, line, step, time = len(self._kind), marker.line, marker.step, marker.time
        if type(line) is int and line in _INT64 \
                and (step is None or type(step) is int and step in _INT64) \
                and (time is None or type(time) is float and time == time):
            self._line.append(line)
            self._step.append(_NONE if step is None else step)
            self._time.append(float("nan") if time is None else time)
            if type(marker.detail) is str:
                self._text += marker.detail.encode("utf-8", "surrogatepass")
            else:
                self._details[at] = marker.detail
        else:                           # its columns only keep the positions aligned
            self._whole[at] = marker
            self._line.append(0)
            self._step.append(_NONE)
            self._time.append(0.0)
        self._ends.append(len(self._text))
        self._kind.append(marker.kind)
        self._file.append(marker.file)

    def __len__(self) -> int:
        return len(self._kind)

    def has(self, kind: str) -> bool:
        """Whether any marker is of this kind (without reading them back)."""
        return kind in self._kind

    def __iter__(self):
        whole, details, text, start = self._whole, self._details, self._text, 0
        columns = zip(self._kind, self._ends, self._line, self._step, self._time, self._file)
        for i, (kind, end, line, step, time, file) in enumerate(columns):
            if whole and i in whole:
                yield whole[i]
            else:
                detail = details[i] if details and i in details else \
                    text[start:end].decode("utf-8", "surrogatepass")
                yield Marker(kind, detail, line, None if step == _NONE else step,
                             None if time != time else time, file)
            start = end
