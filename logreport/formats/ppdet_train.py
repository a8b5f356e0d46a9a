"""PaddleDetection's training line: its grammar, shared by the ppdet line parser, and the block
fast path that reads runs of alike training lines column-wise (their layout learnt from one
line, every number of a run cast at once).

`BlockPath` is a mixin of `ppdet.Parser`: its state (year, epoch, last_step, ...) is the
parser's; lines the fast path does not take go back through `feed`.
"""
from __future__ import annotations

import re

import numpy as np

from ..events import TRAIN, Info, Records
from . import columns

NUM = r"-?(?:\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|nan|inf)"
PREFIX = re.compile(r"\[(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})\] ([A-Za-z_][\w.]*) "
                     r"(?:DEBUG|INFO|WARNING|ERROR|CRITICAL): ")
# the static graph's (ppdet 0.x) training line, its time stamp first
STATIC = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}),\d{3}-INFO: iter: (\d+), (.*)")
EPOCH = re.compile(r"(?:^|\s|: )Epoch: \[(\d+)\] \[\s*(\d+)/(\d+)\] ")
PAIR = re.compile(r"([A-Za-z_][\w.]*): (" + NUM + r")(?= |,|$)")
ETA = re.compile(r"eta: (-?\d+ days?, )?(-?\d+):(\d{2}):(\d{2})")
MIN_RUN = 8               # training lines alike in a row before the fast path takes them
_DECIMALS = {"batch_cost": 4, "data_cost": 4, "ips": 4}   # printed .4f; the meters, lr: .6f
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])  # 29 Feb: line path


def eta_seconds(match: re.Match) -> float:
    days = int(match.group(1).split()[0]) if match.group(1) else 0
    h, m, s = int(match.group(2)), int(match.group(3)), int(match.group(4))
    return float(days * 86400 + h * 3600 + m * 60 + s)


def train_parts(msg: str, prefixed: bool):
    """A training line's (epoch match, offset of the rest, {metric: pair match}, eta match, the
    metric whose value a cut ended the line in: dropped from the metrics, see `_cut`)."""
    m = EPOCH.search(msg)
    if m is None or not (prefixed or "batch_cost: " in msg):
        return None
    rest = msg[m.end():]
    if "learning_rate: " not in rest and "lr: " not in rest:
        return None
    fields = {}
    for pair in PAIR.finditer(rest):
        key = pair.group(1)
        if key != "eta":
            fields["learning_rate" if key == "lr" else key] = pair
    if not any("loss" in k for k in fields):
        return None
    cut = _cut(rest, fields)
    if cut is not None:
        del fields[cut]
    return m, m.end(), fields, ETA.search(rest), cut


def _cut(rest: str, fields: dict) -> str | None:
    """The metric whose value ends a training line that was cut short (a process killed
    mid-write, a paste): a value LogPrinter never ends a line with, printed with fewer
    decimals than it prints (.6f; .4f: batch_cost, data_cost, ips), may have lost digits, so
    it is no value. `max_mem_allocated` ends a line in bytes, but in MB only with its unit."""
    name = next(reversed(fields), None)     # (in the order printed)
    if name is None or rest[fields[name].end(2):].strip(" *`"):
        return None                         # the line goes on after its last value
    value = fields[name].group(2)
    if name.startswith("max_mem_"):
        reserved = fields.get("max_mem_reserved")
        return name if name == "max_mem_allocated" and reserved is not None \
            and rest.startswith(" MB", reserved.end(2)) else None
    if not value[-1:].isdigit():
        return None                         # nan, inf: whole words
    decimals = len(value.partition(".")[2]) if "e" not in value.lower() else 6
    return name if decimals < _DECIMALS.get(name, 6) else None


class BlockPath:
    """The block fast path of the ppdet parser."""

    prepare_in_threads = True       # prepare_block is mostly numpy and pyarrow (no GIL)

    # --- the fast post-hoc path ----------------------------------------------------------
    def feed_block(self, data: bytes, number: int):
        """Parse whole lines of bytes: yields Records for runs of alike training lines, and
        lists of (number, raw line) for the others, which the caller must `feed` in order
        before resuming (their state is the state of the runs after them).

        Gives exactly the events of feeding every line, but for Info facts, which end equal.
        """
        return self.emit_block(self.prepare_block(data), number, data)

    def prepare_block(self, data: bytes, ends: np.ndarray | None = None) -> list:
        """The stateless part of feed_block (layouts, matching, numbers): may run in another
        thread or process, ahead of emit_block, which must then get the blocks in order
        (`ends`: the offsets of its line ends, where known).
        Its stretches of lines: (first, end, lines, run): a run of alike training lines
        (layout, their numbers), or None and the lines that `feed` reads."""
        block = columns.Block(data, ends)
        n = block.n
        skeletons = block.skeletons()
        ids = {sk: i for i, sk in enumerate(dict.fromkeys(skeletons))}
        line_ids = np.fromiter(map(ids.__getitem__, skeletons), dtype=np.int64, count=n)
        order = np.argsort(line_ids, kind="stable")
        splits = np.cumsum(np.bincount(line_ids, minlength=len(ids)))[:-1]
        codes = np.full(n, -1, dtype=np.int64)
        found = {}
        for sk, idx in zip(ids, np.split(order, splits)):
            layout = self._layout_of(sk, block.line(idx[0]))
            if layout is None:
                continue
            ok, values = layout.match(block, idx)
            good = layout.valid(values)
            lines = idx[ok][good]
            codes[lines] = ids[sk]
            found[ids[sk]] = (layout, lines, values[good])
        first = np.ones(n, dtype=bool)
        first[1:] = codes[1:] != codes[:-1]
        run = np.cumsum(first) - 1
        fast = (codes >= 0) & ~first & (np.bincount(run)[run] >= self.min_run)
        bounds = [0, *(np.flatnonzero(fast[1:] != fast[:-1]) + 1).tolist(), n]
        parts = []
        for lo, hi in zip(bounds, bounds[1:]):
            if hi == lo:
                continue
            if not fast[lo]:
                lines = data[block.line_start[lo]:block.line_end[hi - 1]].split(b"\n")
                parts.append((lo, hi, lines, None))
                continue
            layout, lines, values = found[codes[lo]]
            at = int(np.searchsorted(lines, lo))
            parts.append((lo, hi, None, (layout, values[at:at + hi - lo])))
        return parts

    def emit_block(self, prepared: list, number: int, data=None):
        """The events of a prepared block, in order (see feed_block); updates the state."""
        for lo, hi, lines, run in prepared:
            if run is None:
                yield list(zip(range(number + lo, number + hi), lines))
            else:
                yield from self._records(*run, np.arange(number + lo, number + hi,
                                                          dtype=np.float64))

    def _layout_of(self, skeleton: bytes, line: bytes):
        layout = self._layouts.get(skeleton, False)
        if layout is False:
            if len(self._layouts) >= 4096:
                self._layouts.clear()
            layout = self._layouts[skeleton] = _Layout.of(line)
        return layout

    def _records(self, layout: _Layout, v: np.ndarray, lines: np.ndarray):
        """The events of a run of alike training lines, from their numbers; updates the state."""
        c = 0
        if layout.prefixed:
            month, day, hh, mi, ss = (v[:, j] for j in range(5))
            if not self.last_month:
                self._first_year(*(int(x[0]) for x in (month, day, hh, mi, ss)))
            before = np.concatenate(([self.last_month], month[:-1]))
            years = self.year + np.cumsum(month < before)
            days = ((years - 1970) * 12 + month.astype(np.int64) - 1).astype("datetime64[M]")
            days = days.astype("datetime64[D]").astype(np.int64) + day - 1
            time = days * 86400.0 + (hh * 3600 + mi * 60 + ss)
            self.year, self.last_month, self.time = int(years[-1]), int(month[-1]), float(time[-1])
            if self.first_time is None:
                self.first_time = float(time[0])
            c = 5
        else:
            time = np.full(len(v), np.nan if self.time is None else self.time)
        epoch, it, steps = v[:, c], v[:, c + 1], v[:, c + 2]
        c += 3
        metrics = {}
        for name in layout.names:
            if name in layout.constants:
                metrics[name] = np.full(len(v), layout.constants[name])
            else:
                metrics[name] = v[:, c]
                c += 1
        if layout.eta:
            days = 0.0
            if layout.eta_days:
                days, c = v[:, c] * 86400, c + 1
            metrics["eta_seconds"] = days + v[:, c] * 3600 + v[:, c + 1] * 60 + v[:, c + 2]
        step = epoch * steps + it
        self.epoch, self.steps_per_epoch = int(epoch[-1]), int(steps[-1])
        self.last_step = int(step[-1])
        self.trained_since_start = True
        self.in_traceback = False
        yield Records(TRAIN, step, epoch, time, lines, metrics)
        if self.facts_steps is None or (steps != self.facts_steps).any():
            self.facts_steps = self.steps_per_epoch
            yield Info({"steps_per_epoch": self.steps_per_epoch}, line=int(lines[-1]))
        if layout.cut:              # (lines alike, each cut in the same value: a paste's width)
            self.values_cut += len(v)
            self.facts_cut = self.values_cut
            yield Info({"values_cut": self.values_cut}, line=int(lines[-1]))


class _Layout(columns.Layout):
    """A training line's layout, and what its numbers are (in this order): the time stamp's
    month, day, hour, minute, second (if prefixed); epoch, iter, steps per epoch; the metrics
    in `names` that are not `constants` (nan, inf); the ETA's days (if any), h, m, s."""

    @classmethod
    def of(cls, raw: bytes) -> _Layout | None:
        """The layout of a real line, or None if it is not a plain training line."""
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            return None
        if not text.isprintable():
            return None
        text = text.rstrip()
        prefix = PREFIX.search(text) if "] " in text else None
        at = prefix.end() if prefix else 0
        msg = text[at:]
        parts = train_parts(msg, prefix is not None) if "Epoch: [" in msg else None
        if parts is None:
            return None
        m, rest, fields, eta, cut = parts
        rest += at
        tokens = [(prefix.start(g), prefix.end(g), True) for g in range(1, 6)] if prefix else []
        tokens += [(at + m.start(g), at + m.end(g), False) for g in range(1, 4)]
        constants = {}
        for name, pair in fields.items():
            if any(ch.isdigit() for ch in pair.group(2)):
                tokens.append((rest + pair.start(2), rest + pair.end(2), False))
            else:
                constants[name] = float(pair.group(2))
        if eta:
            if eta.group(1):
                start = rest + eta.start(1)
                tokens.append((start, start + len(eta.group(1).split()[0]), False))
            tokens += [(rest + eta.start(g), rest + eta.end(g), g > 2) for g in range(2, 5)]
        layout = cls(raw, tokens, prefix.start() if prefix else 0)
        layout.prefixed = prefix is not None
        layout.names = list(fields)
        layout.constants = constants
        layout.eta = eta is not None
        layout.eta_days = bool(eta and eta.group(1))
        layout.cut = cut is not None
        return layout

    def valid(self, v: np.ndarray) -> np.ndarray:
        """Rows whose time stamp is a real date (else the line parser decides)."""
        if not self.prefixed:
            return np.ones(len(v), dtype=bool)
        month = v[:, 0].astype(np.int64)
        ok = (month >= 1) & (month <= 12)
        return ok & (v[:, 1] >= 1) & (v[:, 1] <= _MONTH_DAYS[np.where(ok, month, 0)]) \
            & (v[:, 2] <= 23) & (v[:, 3] <= 59) & (v[:, 4] <= 59)
