"""What a live watch shows of a paused log: the events its parser still holds back for lines
that may come (the last training dict, waiting for the bar that gives its step; a traceback
still open), as the log's end would give them now, added to a fork of the run. The run itself
gets them only from the parser, once those lines come or the log ends: the watch's result is
`summary`'s."""
from __future__ import annotations

import copy

from .events import Marker
from .model import Run
from .store import Column


def with_held(run: Run, events: list, file: int = 0) -> Run:
    """A fork of `run` with `events` (of input `file`) added: its last segment's tables are
    forks, and its markers a copy where a marker is among them; what else it holds is shared
    and stays as it is."""
    twin = copy.copy(run)
    twin.memo = {}
    last = copy.copy(run.segment)
    last.tables = {phase: _fork_table(table) for phase, table in last.tables.items()}
    twin.segments = [*run.segments[:-1], last]
    if any(isinstance(event, Marker) for event in events):
        twin.markers = copy.deepcopy(run.markers)
    for event in events:
        twin.add(event, file)
    return twin


def _fork_table(table):
    twin = _fork(table)
    twin.series = {name: _fork(series) for name, series in table.series.items()}
    return twin


def _fork(obj):
    """A shallow copy of a slotted object whose Columns are forks (`Column.fork`)."""
    twin = copy.copy(obj)
    for name in type(obj).__slots__:
        value = getattr(obj, name, None)
        if isinstance(value, Column):
            setattr(twin, name, value.fork())
    return twin
