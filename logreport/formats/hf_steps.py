"""Which step a Trainer record is at (part of the hf_trainer parser): the log prints steps only
in its progress bar, so a dict's step is weighed from the clues around it, and where there are
none it is estimated, kept above the record before, and marked as an estimate.

A mixin of `hf_trainer.Parser`: its state (facts, pending, record_step, ...) is the parser's.
"""
from __future__ import annotations

import math
import re

import numpy as np

from ..events import EVAL, FINAL, NEW_RUN, TRAIN, Marker, Record
from .hf_epochs import burst_gap, half_unit, run_after
from .hf_values import restated, without_timing

BUFFERED = ("estimated: stdout was buffered apart from the progress bar (the dicts came out "
            "in bursts after the bar had moved on)")
SWIFT_KEY = "global_step/max_steps"      # ms-swift's dicts state their step and the total
# the training's state that ms-swift adds to every dict, an evaluation's too: no metric of it
SWIFT_STATE = ("memory(GiB)", "train_speed(iter/s)", "train_speed(s/it)")
_SWIFT = re.compile(r"'global_step/max_steps': '([^']*)'")


def swift_steps(value) -> tuple[int, int] | None:
    """(step, total) of ms-swift's `global_step/max_steps` value ('5/94'), if it is one."""
    if isinstance(value, str):
        step, _, total = value.partition("/")
        if step.isdigit() and total.isdigit():
            return int(step), int(total)
    return None


def drop_state(metrics: dict) -> None:
    """An evaluation's metrics without the training's state that ms-swift adds to them."""
    for key in SWIFT_STATE:
        metrics.pop(key, None)


class Steps:
    """The step rules of the hf_trainer parser."""

    buffered = False        # the console's dicts came out in bursts (see _buffered)
    burst: list             # records of a buffered stdout's burst, waiting (see _end_burst)
    burst_bar: int | None = None    # the training bar's count when the burst began
    eval_starts: tuple = ()         # the training bar's count as each evaluation's bar began
    ended = False           # the training printed its final dict (see _before_dict)
    written: tuple | None = None    # a tqdm.write whose text is still to come (_redrawn)
    late_writes = False     # two writes' texts were still to come at once (_redrawn)
    bars_apart = False      # the bars are another stream's lines, apart from the dicts (_unsure)
    epoch_run: tuple = (None, 0, None)  # the epoch the last estimated records printed, how
                                        # many, the step their run began at (run_after)

    def _swift(self, text: str, values: dict, number: int, out: list) -> dict:
        """The values of an ms-swift dict, which states its step and the total (`values`
        gets the step, the run the total); an evaluation's keep only its own metrics."""
        m = _SWIFT.search(text)
        stated = swift_steps(m.group(1)) if m else None
        if stated is not None:
            values["step"] = stated[0]
            self._fact("total_steps", stated[1], number, out)
        if "loss" not in values and any(key.startswith("eval_") for key in values):
            drop_state(values)
        return values

    def _new_process(self, number: int, out: list) -> None:
        """Another process in the same log (a restart, a resume, a script's next launch): after
        records, a marker, and its steps start afresh."""
        if self.train_count:
            self._flush(out)
            out.append(Marker(NEW_RUN, "new run", line=number, time=self.time))
            self._new_run()

    def _redrawn(self, previous: tuple, number: int, bar: str, count: int | None) -> None:
        """A training frame (`bar`, at `count`) that redraws the frame right before it
        (`previous`: its line and text) as it was, in the same second: tqdm.write cleared the
        bar (a blank frame) and redrew it, and its message (the Trainer's logs dict, at that
        count) had not come between: stdout came later (a pipe's buffer; an Unsloth GRPO
        console prints it after the reward printouts, before the bar moves on). That text is
        the next dict's, on a later line (_written_step), unless the write before is still to
        come too: stdout lags by more, and from then on none is matched."""
        if count is None or previous != (number, bar):
            return
        if self.written is not None and self.written[2] == self.train_count:
            self.late_writes = True         # (no dict came since the last one)
        self.written = (count, number, self.train_count)

    def _written_step(self, number: int) -> int | None:
        """For a dict on line `number`: the count of the write whose text it is (_redrawn),
        where it comes on a later line and no training frame came since (its step as the
        Trainer logged it); the write is taken."""
        written, self.written = self.written, None
        if written is None or self.late_writes or number <= written[1] \
                or written[:2] != (self.last_step, self.bar_line):
            return None
        return written[0]

    def _new_run(self) -> None:
        """The step state of a new process in the same log: its steps start afresh."""
        self.record_step = self.last_step = self.clock_step = self.candidate = None
        self.estimated, self.train_count, self.bar_line = False, 0, 0
        self.record_gap, self.epoch_run = self.facts.get("logging_steps"), (None, 0, None)
        self.ended, self.eval_starts = False, ()
        self.written, self.late_writes, self.bars_apart = None, False, False

    def _estimate(self, epoch: float | None) -> int:
        """A step for a training record the log states none for, always above the last
        record's (an estimate never collides with a record before it nor goes back): the
        last record's step plus the usual gap between records, when the epoch as printed
        (x examples / batch size) allows it; else the epoch's step; else the ordinal (times the
        usual gap). The first record to print the epoch after one that several records in a
        row printed lies at the first step that prints it, within a gap (no gap known).
        The first record is at the usual gap at least (a step 1 at least)."""
        last = self.record_step
        following = None if last is None else last + (self.record_gap or 1)
        span = self._epoch_span(epoch)
        if span is None:        # (before a gap is stated, the arguments' logging_steps)
            return (self.train_count + 1) * (self.record_gap or 1) if following is None \
                else following
        low, high = span
        if following is not None and (low <= following <= high or following > high):
            return following
        if last is not None and self.record_gap is None and self._entered(epoch):
            self._gap_between(low)
            self.epoch_run = (None, 0, low)       # (where the run that begins here began)
            return max(low, last + 1)
        guess = round(self._epoch_step(epoch))  # (no step prints as this epoch: the nearest)
        guess = min(max(guess, low), high) if low <= high else guess
        return max(guess, self.record_gap or 1) if last is None else max(guess, last + 1)

    def _entered(self, epoch: float) -> bool:
        """Whether a record printing `epoch` is the first to print it after several estimated
        records in a row printed the epoch just below it (to the same decimals)."""
        before, count, _ = self.epoch_run
        half = half_unit(epoch)
        return count >= 2 and before is not None and half_unit(before) == half \
            and abs(epoch - before - 2 * half) < half / 2

    def _gap_between(self, low: int) -> None:
        """The gap between records, where the run of records that printed the epoch before
        began at the first step printing it (`_entered`) and the next begins at `low`: the
        one whole gap that puts `count` records between (each run's first record lies within
        a gap of its epoch's first step)."""
        _, count, began = self.epoch_run
        if began is None:
            return
        rise = low - began
        fewest, most = -(-(rise + 1) // (count + 1)), (rise - 1) // (count - 1)
        if fewest == most >= 1:
            self.record_gap = fewest

    def steps_per_epoch(self) -> float | None:
        """Examples / total batch size: the steps a fraction of an epoch maps to (the printed
        epoch counts batches)."""
        examples = self.facts.get("num_examples")
        batch = self.facts.get("total_train_batch_size")
        return examples / batch if examples and batch else None

    def _epoch_step(self, epoch):
        """The step an epoch as printed maps to (float or array): whole epochs of the steps
        each takes, plus the fraction at steps_per_epoch. An epoch takes the stated total over
        the stated epochs where that is a whole number within one step of steps_per_epoch (a
        partial last batch is a step: 180 examples in batches of 16 are 12 steps an epoch)."""
        per = self.steps_per_epoch()
        total, epochs = self.facts.get("total_steps"), self.facts.get("num_train_epochs")
        if not (total and epochs and total % epochs == 0 and 0 < abs(total / epochs - per) < 1):
            return epoch * per
        full = np.floor(epoch) if isinstance(epoch, np.ndarray) else math.floor(epoch)
        return full * (total // epochs) + (epoch - full) * per

    def _epoch_span(self, epoch: float | None) -> tuple[int, int] | None:
        """The steps whose epoch prints as `epoch` (to the decimals it was printed with)."""
        if epoch is None or not self.steps_per_epoch() or not math.isfinite(epoch):
            return None
        half = half_unit(epoch)
        return math.ceil(self._epoch_step(epoch - half)), math.floor(self._epoch_step(epoch + half))

    def _choose(self, glued: int | None, after: int | None, epoch: float | None) -> int | None:
        """The step of a dict from its clues: the training bar glued right before it on its
        line, and the bar drawn after it. They differ when tqdm had not redrawn the bar yet
        (the bar after is right: it is redrawn at once) or when a console kept only the last
        frame of each line (the bar glued before is right: the one after is the next logging
        step's), or both (the step lies between). The epoch decides when the examples and
        batch size are known; else a console that kept its redraws (several frames on a line)
        trusts the bar after, one that did not the bar glued before (a guess: _unsure)."""
        if glued is None or after is None or glued == after:
            return after if after is not None else glued
        span = self._epoch_span(epoch)
        if span is not None and span[0] == span[1] and \
                min(glued, after) <= span[0] <= max(glued, after):
            return span[0]                  # the epoch as printed names one step between
        if span is not None:
            guess = self._epoch_step(epoch)
            return glued if abs(glued - guess) < abs(after - guess) else after
        return after if self.redraws else glued

    def _unsure(self, glued: int | None, after: int | None, epoch: float | None, line: int) -> bool:
        """Whether the step _choose gives is a guess, unless the epoch decides. A dict with no
        bar before it at all (a paste's first): the bar after is its own step redrawn, or the
        next logging step's (a console that kept one frame a line). On such a console, a dict
        whose bars before and after differ: the one glued before may be drawn late (tqdm
        redraws at most every 0.1 s), the one after is the next logging step's. A dict right
        after a bar line the record before took: the bars are another stream's lines (`srun
        --label`), apart from the dicts, which no bar after then dates for the rest of the log
        (a paste's `...` between: `bars_apart`)."""
        if after is None or glued == after:
            return False
        if glued is None:
            taken = self.bar_line == line - 1 and self.last_step == self.record_step \
                and after != self.last_step
            self.bars_apart = self.bars_apart or bool(self.bar_line) and taken
            if self.bar_line and not (taken or self.bars_apart) \
                    or self.candidate and self.candidate[0] == self.train_total:
                return False                    # a training bar before it no record took
            span = self._epoch_span(epoch)
            return not (span is not None and span[0] <= after <= span[1])
        return self._bars_guess(self.redraws, epoch)

    def _eval_step(self, glued: int | None, after: int | None) -> tuple[int | None, bool]:
        """(step, estimated) of an eval or final record: the training bar glued right before
        it on its line; else the bar that flushed it, redrawn at its step (a console that kept
        its redraws, or the step of the bar before); else the step of the bar or record before
        it, an estimate where that record's is or where a later bar flushed it (a console that
        kept one frame a line draws the next logging step's)."""
        if glued is not None:
            return glued, False
        if after is not None and (self.redraws or after == self.last_step or self.last_step is None):
            return after, False
        return self.last_step, after is not None or (self.estimated
                                                     and self.last_step == self.record_step)

    def _bars_guess(self, redraws: bool, epoch: float | None) -> bool:
        """Whether a dict whose bars before and after differ gets a guessed step: on a console
        that kept one frame a line (no redraws), unless the epoch decides."""
        return not redraws and self._epoch_span(epoch) is None

    def _train_step(self, step: int | None, epoch: float | None,
                    unsure: bool = False) -> tuple[int, bool]:
        """(step, estimated) of the next training record, given the step the log states for
        it (None: none; `unsure`: a guess, marked as an estimate); remembers it, and the gap
        between records whose steps are stated."""
        estimated = step is None or unsure
        if step is None:
            step = self._estimate(epoch)
            self.epoch_run = run_after(self.epoch_run, np.array([epoch], dtype=np.float64))
        else:
            self.epoch_run = (None, 0, None)
            if not estimated and self.record_step is not None and step > self.record_step \
                    and not self.estimated:
                self.record_gap = step - self.record_step
        self.record_step, self.estimated = step, estimated
        self.train_count += 1
        return step, estimated

    def _stated_steps(self, steps: np.ndarray) -> None:
        """_train_step for records whose steps the log states (an array), at once: the gap is
        the last rise (mostly the last step's: found without array calls)."""
        if len(steps) > 1 and steps[-1] > steps[-2]:
            self.record_gap = int(steps[-1] - steps[-2])
        else:
            before = np.empty(len(steps), dtype=np.float64)
            before[0] = np.nan if self.record_step is None or self.estimated else self.record_step
            before[1:] = steps[:-1]
            grew = np.flatnonzero(steps > before)
            if len(grew):
                self.record_gap = int(steps[grew[-1]] - before[grew[-1]])
        self.record_step, self.estimated = int(steps[-1]), False
        self.train_count += len(steps)
        self.epoch_run = (None, 0, None)

    def _estimated_steps(self, epochs: np.ndarray) -> np.ndarray:
        """_train_step for records the log states no step for (their epochs: NaN where none),
        in order: at once where each estimate is the one before plus the usual gap (else one
        by one)."""
        steps = []
        if self.record_step is None and len(epochs):    # the first estimate is no follower
            steps.append(self._train_step(None, float(epochs[0]))[0])
            epochs = epochs[1:]
        following = self.record_step + (self.record_gap or 1) * np.arange(1, len(epochs) + 1)
        if not len(epochs) or self._following_fits(following, epochs):
            if len(epochs):
                self.record_step, self.estimated = int(following[-1]), True
                self.train_count += len(epochs)
                self.epoch_run = run_after(self.epoch_run, epochs)
            return np.concatenate((np.array(steps, np.float64), following))
        return np.array(steps + [self._train_step(None, epoch)[0] for epoch in epochs.tolist()],
                        np.float64)

    def _following_fits(self, following: np.ndarray, epochs: np.ndarray) -> bool:
        """Whether _estimate keeps each of `following` for its epoch: none is below the steps
        its epoch, as printed, names (_epoch_span)."""
        if not self.steps_per_epoch():
            return True
        # the lowest step of a span is at most ceil(_epoch_step(epoch)): only the estimates
        # below that need their epoch's decimals (NaN, no epoch, compares False)
        doubt = np.flatnonzero(following < np.ceil(self._epoch_step(epochs)))
        for step, epoch in zip(following[doubt].tolist(), epochs[doubt].tolist()):
            span = self._epoch_span(epoch)
            if span is not None and step < span[0]:
                return False
        return True

    def _before_dict(self, phase: str, number: int, out: list) -> None:
        """Before a dict's record waits for its step. A training dict after the training's
        final one (train_runtime, printed or still waiting) begins the log's next training (a
        script's next launch, where transformers printed no banner), which starts afresh, the
        bar glued before it kept. A training dict while the one before still waits for a
        training bar to give its step: in a console that draws one, stdout was buffered (see
        _buffered)."""
        if phase != TRAIN:
            if phase == FINAL:                  # (a run that logged no step dict)
                self._training_bar_before(number - 1, out)
            return
        pending = self.pending
        if self._after_final():
            self._flush(out)                    # (the final dict, waiting for a bar)
            self._end_burst(out)                # (a burst before it is the training's)
            out.append(Marker(NEW_RUN, "new run", line=number, time=self.time))
            candidate = self.candidate
            self._new_run()
            self.candidate = candidate
        elif pending is not None and pending.phase == TRAIN and not self.pending_echo:
            self._training_bar_before(pending.line - 1, out)
            self._buffered(pending.line, out)

    def _left_below_final(self, total: int, n: int, number: int) -> bool:
        """Whether a bar on the line after the final dict, at its end (n of n), is the one tqdm
        left below the dicts it wrote (a terminal's copy of a console): the training bar, whose
        count is the final record's step."""
        return self.pending is not None and self.pending.phase == FINAL and n == total \
            and self.pending.line == number - 1

    def _training_bar_before(self, line: int, out: list) -> None:
        """A bar drawn right before the first dict (on line `line` or after), while no
        training bar is known: the training one."""
        if not self.bar_line and self.train_total is None and self.candidate \
                and self.candidate[3] >= line:
            total, _, _, at, count = self.candidate
            self._bar_total(total, at, out)
            self.clock_step = self.last_step = count
            self.bar_line = at

    def _eval_begins(self) -> None:
        """Another bar began (an evaluation's, drawn unbuffered on stderr): the training bar's
        count then is where the evaluation runs, the one its dict waits for (_end_burst)."""
        if self.train_total is not None and self.clock_step is not None \
                and self.eval_starts[-1:] != (self.clock_step,):
            self.eval_starts = (self.eval_starts + (self.clock_step,))[-16:]

    def _after_final(self) -> bool:
        """Whether the training printed its final dict (emitted, or waiting for a bar)."""
        return self.ended or self.pending is not None and self.pending.phase == FINAL

    def _buffered(self, line: int, out: list) -> None:
        """Dicts came in a burst (from `line`) in a console with a training bar: stdout was
        buffered apart from tqdm's stderr (`nohup`, a pipe), so dicts come out after the bar
        has moved on and no bar tells their steps (dicts in bursts, or an evaluation whose bar
        step its epoch belies: _off_epoch). From here they are estimated (the one waiting too),
        and an evaluation takes the step its epoch names (_buffered_step)."""
        if self.bar_line and not self.buffered:
            self.buffered = True
            self._fact("dict_steps", BUFFERED, line, out)

    def _off_epoch(self, step: int | None, epoch: float | None) -> bool:
        """Whether `step` is far past the steps `epoch` names, to the decimals it was printed
        with (0.03 is any of steps 157-218 at 6250 an epoch): by more than a step an epoch (a
        partial last batch) and two, so only a bar that ran ahead of a buffered stdout gave it
        (an epoch past the bar says rather that the epoch does not count the steps: a streamed
        dataset's, 2.24 epochs at step 100 of 100)."""
        if step is None or epoch is None or not math.isfinite(epoch) or epoch <= 0 \
                or not self.steps_per_epoch():
            return False
        return step - self._epoch_step(epoch + half_unit(epoch)) > epoch + 2

    def _buffered_step(self, epoch: float | None) -> tuple[int | None, bool]:
        """(step, estimated) of an evaluation once stdout was found buffered: the step its epoch
        names (within the training's total), else the training record's before it (a final
        record's, always)."""
        if epoch is not None and self._epoch_span(epoch) is not None:
            return min(max(0, round(self._epoch_step(epoch))), self.train_total or math.inf), True
        return self.record_step, self.record_step is not None

    def _buffered_end(self) -> tuple[int | None, bool]:
        """(step, estimated) of a final record once stdout was found buffered: where the
        training bar ended (drawn unbuffered, up to its last step), else the last training
        record's step."""
        if self.clock_step is not None and (self.record_step is None
                                            or self.clock_step >= self.record_step):
            return self.clock_step, False
        return self.record_step, self.record_step is not None

    def _emit(self, rec: Record, step: int | None, out: list, restates: bool = False,
              written: bool = False) -> None:
        """Give rec its step (a bar glued before it, else `step`: the bar that flushed it). An
        eval or final record that restates one at its step (a metrics block that `restates` its
        dict; `TrainOutput(...)`: the same values, more digits) gives only the keys it adds;
        another one with those keys and other values (a second evaluation at that step: of the
        best model, after training; another run pasted) is kept whole. Once stdout was found
        buffered, training and evaluation records wait for the end of their burst, but for one
        whose tqdm.write gave its step (`written`)."""
        if self.buffered and rec.phase in (TRAIN, EVAL) and not written:
            if not self.burst:
                self.burst_bar = self.clock_step
            self.burst.append(rec)
            return
        self._end_burst(out)            # (a final record comes after the burst before it)
        if rec.phase == TRAIN:
            rec.step, rec.estimated = self._train_step(
                self._choose(rec.step, step, rec.epoch), rec.epoch,
                self._unsure(rec.step, step, rec.epoch, rec.line) or rec.estimated and step is None)
            self.last_step = rec.step
            out.append(rec)
            return
        if not self.buffered:
            rec.step, rec.estimated = self._eval_step(rec.step, step)
            if self._off_epoch(rec.step, rec.epoch):      # a bar that ran ahead gave it
                self._buffered(rec.line, out)
        if self.buffered:
            rec.step, rec.estimated = self._buffered_step(rec.epoch) if rec.phase == EVAL \
                else self._buffered_end()
        if rec.phase == EVAL and rec.step is not None:      # (the evaluations begun up to it)
            self.eval_starts = tuple(s for s in self.eval_starts if s > rec.step)
        if rec.phase == FINAL:          # the training ended: a bar after it is no longer its
            self.ended, self.train_total = True, None
            self.facts.pop("total_steps", None)
        self._place(rec, out, restates)

    def _flush_finds_buffered(self, step: int | None) -> bool:
        """Whether flushing the pending record at `step` finds stdout buffered (_emit): an
        evaluation whose epoch belies the step it then gets."""
        rec = self.pending
        return rec is not None and rec.phase != TRAIN and not self.buffered \
            and self._off_epoch(self._eval_step(rec.step, step)[0], rec.epoch)

    def _place(self, rec: Record, out: list, restates: bool = False) -> None:
        """Add a record that has its step (an eval or final record: see _emit)."""
        if rec.phase != TRAIN:
            seen = self.emitted.setdefault((rec.phase, rec.step), {})
            if len(self.emitted) > 16:          # a repeat follows its dict: keep the last few
                del self.emitted[next(iter(self.emitted))]
            if seen and restated(rec.metrics, seen, restates):
                rec.completes = rec.completes or not seen.keys().isdisjoint(rec.metrics)
                rec.metrics = {k: v for k, v in rec.metrics.items() if k not in seen}
                if not rec.metrics:
                    return
            seen.update(rec.metrics)
        out.append(rec)

    def _another_writers_evaluation(self, rec: Record, number: int, out: list) -> bool:
        """Whether an evaluation dict is the one waiting as another writer printed it (each
        rank's or node's copy: `0: ` / `1: `, `[rank1]: `), the same epoch and values but the
        time each measured: kept once, the copy counted (`repeated_evaluations`); so too where
        a live log's pause gave that dict already (`settled`)."""
        last = self.pending if self.pending is not None else self.settled
        if not (self.writer and self.pending_writer and self.writer != self.pending_writer
                and last is not None and last.phase == EVAL and last.epoch == rec.epoch):
            return False
        untimed = without_timing(rec.metrics)
        if untimed.keys() - last.metrics.keys() or not restated(untimed, last.metrics):
            return False
        self._fact("repeated_evaluations", self.facts.get("repeated_evaluations", 0) + 1,
                   number, out)
        return True

    def _another_writers_copy(self, rec: Record) -> bool:
        """Whether a training dict not glued to a bar is the one before it from another writer
        (a node's `10.96.202.17: {...}`, `[rank1]: {...}`, Ray's `(RayTrainWorker pid=56577)
        {...}`, each worker drawing its own bar): same epoch and values."""
        last, self.last_dict = self.last_dict, (self.writer, rec.epoch, rec.metrics)
        return bool(self.writer) and (rec.step is None or rec.estimated) and last is not None \
            and last[0] != self.writer and last[1:] == (rec.epoch, rec.metrics) and (   # a step
                self.pending is not None and self.pending.phase == TRAIN or self.record_step is not None)

    def _end_burst(self, out: list) -> None:
        """The records of a buffered stdout's burst (the dicts one flush wrote, between two
        stretches of bars and logger lines), with their steps. A flush writes the dicts printed
        since the one before, the last at or before the bar's count when it came (`burst_bar`):
        they lie at the logging steps since the step the burst before ended at, the gap the
        log stated (_burst_gap), and an evaluation takes the count of the training bar when its
        own bar began (_eval_begins: an evaluation at an epoch's end), else the step of the
        training record before it (the Trainer logs, then evaluates). Where no gap is known
        and no epoch names a step (examples and batch size unknown), they are spread evenly up
        to that count (where they fit, a step each); else each is estimated alone (_train_step,
        _buffered_step). All are marked estimated."""
        held, self.burst = self.burst, []
        if not held:
            return
        floor, top = self.record_step or 0, self.burst_bar
        trains = sum(rec.phase == TRAIN for rec in held)
        gap = burst_gap(held, trains, floor, top, self.record_gap)
        spread = gap is None and self.record_gap is None and trains and top is not None \
            and top - floor >= trains and not self.steps_per_epoch()
        step, count, starts = floor, 0, list(self.eval_starts)
        for rec in held:
            before = step if gap or spread else self.record_step
            if rec.phase == EVAL and starts and (before or 0) <= starts[0] <= (top or math.inf):
                rec.step, rec.estimated = starts.pop(0), True       # where its bar began
            elif rec.phase != TRAIN:
                starts = [] if rec.phase == EVAL else starts        # (they do not match)
                rec.step, rec.estimated = (step, True) if gap or spread \
                    else self._buffered_step(rec.epoch)
            elif gap or spread:
                count += 1
                step = floor + (gap * count if gap else count * (top - floor) // trains)
                rec.step, rec.estimated, self.last_step = step, True, step
                self.record_step, self.estimated, self.record_gap = step, True, gap
                self.train_count, self.epoch_run = self.train_count + 1, (None, 0, None)
            else:
                rec.step, rec.estimated = self._train_step(None, rec.epoch)
                self.last_step = rec.step
            self._place(rec, out)
        self.eval_starts = tuple(starts)

    def _flush(self, out: list, step: int | None = None) -> None:
        if self.pending is not None:
            rec, self.pending, self.settled = self.pending, None, None
            self._emit(rec, step, out)
