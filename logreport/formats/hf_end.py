"""Whether a Trainer console's last lines are its run's end (part of the hf_trainer parser):
`watch --exit-when-done` leaves a finished run after a short quiet, unless the log paused
where more of its end is still to come (`awaits`).

What follows the training's end, as transformers and LLaMA-Factory print it: `Training
completed.`, the final dict (`{'train_runtime': ...}`), the model saved, `***** train metrics
*****` (trainer.log_metrics); where the script evaluates, `*** Evaluate ***` (the example
scripts), the banner, the evaluation's bar and its metrics (a block, where the training's came
as one); last the model card (`Dropping the following result ...`: LLaMA-Factory's
create_modelcard_and_push, the example scripts' create_model_card).

A mixin of `hf_trainer.Parser`: its state (block, bar_line, ...) is the parser's.
"""
from __future__ import annotations

import re

from ..events import EVAL, FINAL

_DO_EVAL = re.compile(r"\bdo_eval=(True|False)\b")
_BEGINS = ("***** Running training *****", "==((====))==  Unsloth - 2x")


class Ending:
    """The run's end as far as the console printed it."""

    lf_seen = False         # LLaMA-Factory's logger printed here
    running_log = False     # ... as LlamaBoard's running log: logger lines only, no dict, no block
    stated_eval = False     # the arguments printed say do_eval=True: the script evaluates at its end
    evaluating = 0          # the line an evaluation began on, its result not yet come (0: none)
    over = False            # the training said it ended (`Training completed.`, its final metrics)
    train_block = False     # ... and its metrics block came (so will a final evaluation's)
    card = False            # the model card was written: the script's last step
    widest = (False, False)  # the open block printed its widest key, its widest value
    row_key = ""            # the key of the open block's last row (log_metrics sorts them)
    restates = ""           # the greatest key of the dict the open block restates (all printed)

    def awaits(self, evaluated: bool, due: bool) -> bool:
        """Whether the run, whose training ended, has more of its end to print: a metrics block
        open (the training's: the script goes on after it; one that has not printed its widest
        key and value yet, to which log_metrics pads every row, or, in sorted order, every key
        of the dict it restates; any, in LLaMA-Factory's console: its model card follows), an
        evaluation begun whose result has not come, LLaMA-Factory's training metrics block (it
        saves the model first), or an evaluation still due (`due`: none since the training's
        end) in a script whose arguments say it evaluates at its end, or (`evaluated`: it
        evaluated during training) in LLaMA-Factory's console, whose workflows evaluate after
        training when the evaluation strategy set do_eval. Nothing after the model card."""
        lf = self.lf_seen and not self.running_log
        block = self.block
        if self.card:
            return False
        if block is not None and (block.phase == FINAL or lf or not all(self.widest)
                                  or not (block.metrics or block.completes)
                                  or self.row_key < self.restates):
            return True
        if self.evaluating > self.bar_line or lf and self.over and not self.train_block:
            return True
        return due and self.stated_eval or evaluated and lf

    def _end_message(self, msg: str, number: int) -> None:
        """A message (or bare line) that tells where the run's end stands."""
        if msg.startswith(_BEGINS):                 # a training begins: its end is to come
            self.evaluating, self.over, self.train_block, self.card = 0, False, False, False
        elif msg in ("***** Running Evaluation *****", "***** Running Prediction *****") \
                or msg.endswith(("*** Evaluate ***", "*** Predict ***")):
            self.evaluating = self.evaluating or number
        elif msg.startswith("Training completed."):
            self.over = True
        elif msg.startswith("Dropping the following result"):
            self.card = self.over
        elif "do_eval=" in msg and (m := _DO_EVAL.search(msg)):
            self.stated_eval = m.group(1) == "True"

    def _end_logger(self, name: str, lf_a: bool) -> None:
        """A logger line of LLaMA-Factory's format (`name`: the logger's, or the file's in
        LlamaBoard's running log, where transformers' records come in that format too)."""
        if name.endswith(".py") or lf_a and name.startswith("transformers"):
            self.running_log = True
        elif name.startswith(("llamafactory", "llmtuner")):
            self.lf_seen = True

    def _end_dict(self, phase: str, echo: bool) -> None:
        """A dict: an evaluation's result (unless a block gives it: train_block), the
        training's final metrics."""
        if phase == EVAL and not self.train_block:
            self.evaluating = 0
        elif phase == FINAL and not echo:
            self.over = True

    def _end_block_begins(self, phase: str) -> None:
        """A metrics block's header: the training's ends it."""
        self.widest, self.row_key, self.restates = (False, False), "", ""
        if phase == FINAL:
            self.over = self.train_block = True

    def _end_row(self, row: re.Match) -> None:
        """A row of the open block: the widest key's has one space before `=`, the widest
        value's one after it."""
        self.row_key = row.group(1)
        equals = row.string.index("=", row.end(1))
        self.widest = (self.widest[0] or equals - row.end(1) <= 1,
                       self.widest[1] or row.start(2) - equals <= 2)

    def _end_restates(self, keys) -> None:
        """The open block restates a dict of these keys: log_metrics prints each of them."""
        self.restates = max([self.restates, *keys])

    def _end_block_ends(self, phase: str) -> None:
        """A metrics block ended (or a pause gave it): an evaluation's is its result."""
        if phase == EVAL:
            self.evaluating = 0
