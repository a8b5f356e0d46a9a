"""What the event-file formats (tfevents, visualdl) share: their optional library, how a stored
value and time become a logreport value and time, and how single scalars group into records.

An event file stores one scalar per entry (tag, step, wall time, float32 value); a logreport
Record holds the values logged together. `Grouper` puts consecutive scalars of one step back
together; the format says which tags belong to which phase (`kind`) and which tag ends a group.
"""
from __future__ import annotations

import math
import os
import time as _time
from collections import Counter
from dataclasses import dataclass, field
from importlib import import_module

import numpy as np

from ..errors import MissingExtra
from ..events import Info, Record


def need(extra: str, what: str, path: str, *modules: str) -> list:
    """Import the modules of an optional extra, or raise its one-line error."""
    try:
        return [import_module(name) for name in modules]
    except ImportError:
        raise MissingExtra(f"reading {what} needs the optional extra '{extra}'",
                         f"pip install 'logreport[{extra}]'", path) from None


def float32(value: float) -> float:
    """A float32 as the shortest decimal that reads back as it (0.00096, not 0.000959999975):
    what the writer was given, where it had at most 7 significant digits."""
    if not math.isfinite(value):
        return value
    return float(str(np.float32(value)))


def local_clock(seconds: float) -> float:
    """Seconds since 1970 (UTC) on the naive local clock that text logs and Records use."""
    return seconds + _time.localtime(seconds).tm_gmtoff


def learning_rate(name: str) -> str:
    """The learning rate is always `learning_rate` (`lr`, `Train/lr`, `train/learning_rate`)."""
    return "learning_rate" if name.rsplit("/", 1)[-1] in ("lr", "learning_rate") else name


@dataclass
class Group:
    """Scalars logged together: one step, each tag once; time and number of the first.
    `given`: its values given before (at a pause), whose record its values complete."""

    step: int
    kind: str | None
    values: dict = field(default_factory=dict)
    time: float | None = None
    number: int = 0
    ended: bool = False
    given: dict = field(default_factory=dict)


class Grouper:
    """Scalars in file order -> groups. A group ends at a new step, a tag it already has, a tag
    of another kind (kind(tag): a string, or None for a tag of any group), after a tag in `ends`
    unless the next is in `goes_on`."""

    def __init__(self, kind, ends=(), goes_on=()):
        self.kind = kind
        self.ends, self.goes_on = frozenset(ends), frozenset(goes_on)
        self.open: Group | None = None

    def add(self, step: int, tag: str, value: float, time: float | None, number: int) -> list:
        """Closed groups (at most one) after this scalar."""
        kind = self.kind(tag)
        group, out = self.open, []
        if group is None or not self._fits(group, step, tag, kind):
            if group is not None and group.values:
                out.append(group)
            group = self.open = Group(step, kind, time=time, number=number)
        group.kind = group.kind or kind
        group.values[tag] = value
        group.ended = tag in self.ends
        return out

    def _fits(self, group: Group, step: int, tag: str, kind: str | None) -> bool:
        if group.step != step or tag in group.values or tag in group.given:
            return False
        if group.ended and tag not in self.goes_on:
            return False
        return kind is None or group.kind is None or kind == group.kind

    def flush(self) -> list:
        """The open group, if any."""
        group, self.open = self.open, None
        return [group] if group is not None and group.values else []

    def pause(self) -> list:
        """At a pause in the writing: the open group's values so far, as a group; it stays
        open, and scalars that fit it are the rest of its record (a writer may have flushed
        part of what it logged together: VisualDL appends scalar by scalar). Where a tag
        ends groups, only an ended one is given: a part may not tell its record's phase (a
        Trainer's final metrics before `train_loss`)."""
        group = self.open
        if group is None or not group.values or self.ends and not group.ended:
            return []
        given = Group(group.step, group.kind, group.values, group.time, group.number,
                      group.ended, dict(group.given))
        group.given.update(group.values)
        group.values = {}
        return [given]


class ScalarReader:
    """The reading loop of an event-file format: `poll()` turns the complete records written
    since the last call into events, `finish()` ends the file. A format gives `_payloads()`
    (the new complete records), `_record(payload, out)` (its scalars through `scalar`, other
    entries through `skip` or facts) and `_record_of(group)` (a Record or None), and counts
    in `consumed` the bytes of the file that the records read took."""

    def __init__(self, path: str, grouper: Grouper):
        self.path = path
        self.grouper = grouper
        self.records = 0                # records read
        self.consumed = 0               # bytes they took
        self.skipped: Counter = Counter()
        self.facts: dict = {}

    def poll(self) -> list:
        """Events of the new complete records; when none came, the group still open (a writer
        flushes what it logged together at once)."""
        out: list = []
        before, facts = self.records, dict(self.facts)
        for payload in self._payloads():
            self.records += 1
            self._record(payload, out)
        if self.records == before:
            out.extend(self._give(group) for group in self.grouper.pause())
        return self._with_facts(out, facts)

    def finish(self) -> list:
        """At the end of the file: the open group, and what could not be read."""
        facts = dict(self.facts)
        out = [self._give(group) for group in self.grouper.flush()]
        try:
            tail = os.path.getsize(self.path) - self.consumed
        except OSError:
            tail = 0
        if tail > 0:
            self.facts["unread_tail"] = (f"{os.path.basename(self.path)}: {tail} bytes after "
                                         f"record {self.records} are no complete record")
        return self._with_facts(out, facts)

    def scalar(self, step: int, tag: str, value: float, time: float, out: list) -> None:
        """One scalar of the record being read."""
        for group in self.grouper.add(step, tag, value, time, self.records):
            out.append(self._give(group))

    def _give(self, group: Group) -> Record | None:
        """The record of a group; of the rest of one given at a pause: one that completes it."""
        record = self._record_of(group)
        if record is not None and group.given:
            record.completes = True
        return record

    def decode(self, message, payload: bytes):
        """A record's proto, or None for a damaged one (counted)."""
        try:
            return message.FromString(payload)
        except Exception:             # protobuf's DecodeError
            self.skip("undecodable")
            return None

    def skip(self, kind: str) -> None:
        """An entry that is not a scalar (text, histogram, image...): counted in the facts."""
        self.skipped[kind] += 1
        self.facts["skipped_records"] = ", ".join(f"{k} ×{n}" for k, n in sorted(self.skipped.items()))

    def _with_facts(self, out: list, before: dict) -> list:
        if self.facts != before:
            out.append(Info(dict(self.facts), line=self.records))
        return [event for event in out if event is not None]
