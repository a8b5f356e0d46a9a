"""The metrics blocks of the hf_trainer parser: `***** eval metrics *****` and its `key = value`
rows (trainer.log_metrics), which restate the dict the Trainer logged before them, and what a
live log's pause gives of what waits (`settle`). A mixin of `hf_trainer.Parser`: its state
(block, pending, settled, ...) is the parser's.
"""
from __future__ import annotations

import copy
import re

from ..events import EVAL, TRACEBACK, TRAIN, Marker, Record
from .hf_values import number, restated, without_timing


class Blocks:
    """Metrics blocks, and the parser's settling at a pause."""

    settled: Record | None = None   # the evaluation or final record a pause gave (see settle)

    def settle(self) -> list:
        """At a live log's pause, what waits for lines that may still come: a metrics block it
        ends in (whose rows may go on after the pause: they complete the record it gave), an
        evaluation or final record (which a metrics block after the pause may restate: see
        _joins_pending); not a training dict nor a burst (bars step them)."""
        out: list = []
        block = self.block
        self._end_block(out)
        if block is not None:
            self.block = Record(block.phase, {}, epoch=block.epoch, line=block.line,
                                completes=bool(block.metrics))
        if self.pending is not None and self.pending.phase != TRAIN and not self.burst:
            settled = self.pending
            self._flush(out)
            self.settled = settled
        return out

    def waiting_events(self) -> list:
        """What the log's end would give here, as `finish` gives it to a copy of the parser
        (which stays as it is), of what the parser holds for lines that may still come: the
        records of a training dict waiting for its bar (or a burst), and a traceback still
        open, cut short. What a live view shows at a pause, until the lines after them come."""
        records = self.pending is not None and self.pending.phase == TRAIN or bool(self.burst)
        if not (records or self.in_traceback):
            return []
        return [event for event in copy.deepcopy(self).finish()
                if isinstance(event, Record) and records
                or isinstance(event, Marker) and event.kind == TRACEBACK]

    def _joins_pending(self, block: Record) -> bool:
        """Whether a metrics block restates the dict waiting (trainer.log_metrics after the
        Trainer logged it): one evaluation (or the training's end), which then takes the keys
        the block adds (an example script's perplexity). Another rank's timing may differ.
        Where a pause gave that dict already (`settled`), the block keeps only the keys it adds,
        a record that completes it."""
        rec = self.pending if self.pending is not None else self.settled
        if rec is None or rec.phase != block.phase \
                or not restated(without_timing(block.metrics), rec.metrics, True):
            return False
        self._end_restates(rec.metrics)
        added = {k: v for k, v in block.metrics.items() if k not in rec.metrics}
        if rec is self.settled:         # given at a pause: the block gives the rest of it
            block.metrics, block.completes = added, True
            return not added
        rec.metrics.update(added)
        rec.epoch = block.epoch if rec.epoch is None else rec.epoch
        return True

    def _block_row(self, row: re.Match) -> None:
        """A row of the open block (`  eval_loss = 2.6309`): its value, the epoch its record's."""
        key, value = row.group(1), row.group(2)
        self._end_row(row)
        # total_flos and memory are printed in GF / MB there, unlike the dict and the files
        v = None if key == "total_flos" or "_mem_" in key else number(value)
        if v is not None and key == "epoch":
            self.block.epoch = v
        elif v is not None:
            self.block.metrics[key] = v

    def _end_block(self, out: list) -> None:
        """The record of the open block, if it has values: joined to the dict it restates, else
        given (its added keys only, where it restates one given before: `_place`)."""
        block, self.block = self.block, None
        self.in_eval = self.in_eval and (block is None or block.phase != EVAL)   # (it ended)
        if block is not None:
            self._end_block_ends(block.phase)
        if block is not None and block.metrics and not self._joins_pending(block):
            self._flush(out)
            self._emit(block, None, out, restates=True)
