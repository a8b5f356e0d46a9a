"""Console output of `llamafactory-cli train` and any Hugging Face Trainer script.

As printed by transformers' Trainer (trainer.py, ProgressCallback: tqdm bars and `tqdm.write`
of each logs dict) and LLaMA-Factory (extras/logging.py: its logger format; LogCallback's echo
of each logs dict). Also reads LlamaBoard's running_log.txt, which holds the same logger lines.
A step dict carries no step: its step is weighed from the bar frames around it and its epoch
(hf_steps), else estimated and marked.
"""
from __future__ import annotations

import math
import re

from ..events import (
    CHECKPOINT,
    EVAL,
    FINAL,
    FINISHED,
    KILLED,
    OOM,
    RESUME,
    TRACEBACK,
    TRAIN,
    Info,
    Marker,
    Record,
)
from . import Descriptor
from .common import EXCEPTION, ended, straight_quotes
from .hf_blocks import Blocks
from .hf_end import Ending
from .hf_fast import NOT_METRICS, BlockPath
from .hf_lines import LF_WRAPPER_LINES
from .hf_steps import SWIFT_KEY, Steps
from .hf_values import BAR, argument, bars, clock_seconds, facts_of, parse_dict, plain_bar, stamp

NAME = "hf_trainer"
TITLE = "LLaMA-Factory / Hugging Face Trainer console output (also LlamaBoard running_log.txt)"
DESCRIPTOR = Descriptor(
    tool="transformers", main_eval=("eval_accuracy", "eval_loss"), main_loss=("loss",),
    throughput=("train_samples_per_second", "train_tokens_per_second"),
    hidden=("total_flos", "train_runtime", "eval_runtime", "train_samples", "eval_samples",
            "predict_samples"),
    units={"train_samples_per_second": "samples/s", "train_tokens_per_second": "tokens/s",
           "eval_samples_per_second": "samples/s", "train_runtime": "s", "eval_runtime": "s"},
    # DPO/KTO: the reward terms and preference accuracy are what the loss optimises; the
    # policy's logits and log-probabilities are for a closer look
    sections=((r"^(?:rewards/|accuracy$)", "losses"), (r"^eval_(?:logits|logps)/", "more")),
    tokens_seen=("num_input_tokens_seen", "total_tokens"),
    final_eval=True,
)

_LF_A = re.compile(r"(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2}):(\d{2}) - (?:DEBUG|INFO|WARNING|ERROR|CRITICAL)"
                   r" - ((?:llmtuner|llamafactory|transformers)[\w.]*) - ")
_LF_B = re.compile(r"\[(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\|"
                   r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})\]"
                   r" ([\w.]+):(\d+) >>(?: |$)")      # (a line with no message: its space stripped)
_HF = re.compile(r"\[(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\|[\w.]+\.py:\d+\] "
                 r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}),\d{3} >>(?: |$)")
_RESUMED_AT = re.compile(r"Continuing training from global step (\d+)$")    # a resume's
_DICT = re.compile(r"\{'(?:loss|eval_[\w/.@-]+|predict_[\w/.@-]+|train_runtime|epoch|reward)'[^{}]*\}")
_DICT_START = re.compile(r"\{'(?:loss|eval_[\w/.@-]+|train_runtime)': ")
_BLOCK = re.compile(r"^\*\*\*\*\* (\w+) metrics \*\*\*\*\*$")
_ROW = re.compile(r"^\s+(\S+)\s*= +(\S.*)$")    # (a paste may indent it more)
_RANK = re.compile(r"^\[rank\d+\]: ")
_LABEL = re.compile(r"^\d{1,5}: ")       # srun --label's task number
_OOM = re.compile(r"out of memory|OutOfMemoryError", re.I)
# The DeepSpeed launcher ending a run (deepspeed/launcher/launch.py sigkill_handler): a rank
# that failed (a negative code: killed by that signal), or the launcher itself signalled
_LAUNCHER = re.compile(r"^\[(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d),\d+\] \[\w+\] "
                       r"\[launch\.py:\d+:sigkill_handler\] (?:.* (exits with return code = "
                       r"(-?\d+))|(Main process received (SIG\w+), exiting))$")
_VERSION = re.compile(r'"transformers_version": "([\w.]+)"')
_LOGURU = re.compile(r"(?:[A-Z]+ *\| )?(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.\d+)? \| "
                     r"(?:[A-Z]+ *\| )?[\w.]+:[\w<>]+:\d+ - ")   # its level before or after the time
_FRAME = re.compile(r'\s*File "[^"]*", line \d+, in ')     # a traceback's frame
PARTED_MOST = 100   # lines (another stream's records) that may part a traceback's frames
_TRAINER_FRAME = re.compile(r'File ".*[/\\](?:transformers[/\\]trainer\.py|llamafactory[/\\]|llmtuner[/\\])')


# Real lines (from the fixtures in tests/data) and the events each must give when fed to a fresh Parser.
SAMPLES = [
    ("[INFO|trainer.py:1478] 2026-11-25 16:45:50,937 >>   Total optimization steps = 60\n"
     "  2%|▏         | 1/60 [00:00<00:28,  2.04it/s]\n"
     "{'loss': '7.622', 'grad_norm': '0.1841', 'learning_rate': '0', 'epoch': '0.008889'}\n"
     "  2%|▏         | 1/60 [00:00<00:28,  2.04it/s]",
     [Info({"total_steps": 60}, line=1),
      Info({"elapsed_seconds": 0.0, "bar_step": 1, "remaining_seconds": 28.0}, line=2),
      Record(TRAIN, {"loss": 7.622, "grad_norm": 0.1841, "learning_rate": 0.0}, step=1,
             epoch=0.008889, line=3)]),
    ("{'loss': nan, 'grad_norm': nan, 'learning_rate': 1e+30, 'epoch': 0.02, "
     "'num_input_tokens_seen': 1024, 'train_runtime': 0.0794, 'train_tokens_per_second': 12895.205}",
     [Record(TRAIN, {"loss": float("nan"), "grad_norm": float("nan"), "learning_rate": 1e30,
                     "num_input_tokens_seen": 1024.0, "train_runtime": 0.0794,
                     "train_tokens_per_second": 12895.205}, step=1, epoch=0.02, line=1,
             estimated=True)]),
    ("{'train_runtime': 140.1484, 'train_samples_per_second': 1.712, 'train_steps_per_second': 0.428, "
     "'train_loss': 7.5664171059926355, 'epoch': 0.53}",
     [Record(FINAL, {"train_runtime": 140.1484, "train_samples_per_second": 1.712,
                     "train_steps_per_second": 0.428, "train_loss": 7.5664171059926355},
             step=None, epoch=0.53, line=1)]),
    ("  2%|▏         | 1/60 [00:03<02:58,  3.03s/it][INFO|2026-11-25 16:47:48] "
     "llamafactory.train.callbacks:144 >> {'loss': 7.6220, 'learning_rate': 0.0000e+00, 'epoch': 0.01}",
     [Info({"llamafactory_version": ">=0.9.5"}, line=1), Info({"total_steps": 60}, line=1),
      Info({"elapsed_seconds": 3.0, "bar_step": 1, "remaining_seconds": 178.0}, line=1),
      Record(TRAIN, {"loss": 7.622, "learning_rate": 0.0}, step=1, epoch=0.01,
             time=None, line=1)]),
    ("***** eval metrics *****\n  epoch                   =     0.5333\n"
     "  eval_loss               =     7.5585\n  eval_runtime            = 0:00:02.20",
     [Record(EVAL, {"eval_loss": 7.5585, "eval_runtime": 2.2}, epoch=0.5333, line=1)]),
    ("[INFO|trainer.py:1478] 2026-11-25 17:10:30,372 >>   Total optimization steps = 200\n"
     "  6%|▌         | 12/200 [00:51<15:13,  4.86s/it]Traceback (most recent call last):\n"
     "    return F.linear(input, self.weight, self.bias)\nKeyboardInterrupt",
     [Info({"total_steps": 200}, line=1),
      Info({"elapsed_seconds": 51.0, "bar_step": 12, "remaining_seconds": 913.0}, line=2),
      Marker(KILLED, "KeyboardInterrupt", line=4, step=12, time=1795626630.0)]),
]


def sniff(lines: list[str]) -> float:
    """Share of lines that HF Trainer / LLaMA-Factory print (step dicts weigh most)."""
    if not lines:
        return 0.0
    hits = bars = 0.0
    for text in lines:
        text = straight_quotes(text)        # (as the parser reads them)
        if "{'" in text and "'global_step': " not in text \
                and (_DICT.search(text) or _DICT_START.match(text)):    # global_step: paddlenlp
            hits += 5
        elif _logger_line(text):
            hits += 1
        elif "***** " in text and ("Running training" in text or _BLOCK.match(text)) \
                and "] - ***** " not in text:        # (PaddleNLP's logger prints it too)
            hits += 5
        elif 'File "' in text and _TRAINER_FRAME.search(text):
            hits += 1               # a traceback through the Trainer or LLaMA-Factory
        elif "%|" in text and BAR.search(text):
            bars += 1               # every tqdm user prints these: they count only beside
    return min(1.0, (hits + bars) / len(lines)) if hits else 0.0    # a line of the trainer


def _logger_line(text: str) -> bool:
    """A line of the LLaMA-Factory (format A or B) or transformers logger."""
    if " >> " in text:
        return bool(_LF_B.search(text) or _HF.search(text))
    return (" - INFO - " in text or " - WARNING - " in text) and bool(_LF_A.search(text))


class Parser(Steps, Blocks, Ending, BlockPath):
    """Stateful: a step dict waits for the next training bar frame, which gives its step."""

    def __init__(self):
        self.facts: dict = {}
        self.train_total: int | None = None
        self.pending: Record | None = None
        self.pending_echo = self.in_eval = self.in_dump = False
        self.pending_writer = ""              # what a dict waiting printed before it (a rank)
        self.in_message = False   # bare lines may continue the last logger message
        self.in_traceback = 0     # line of an open traceback
        self.parted: tuple | None = None    # (its line, where) a traceback other lines parted
        self.block: Record | None = None
        self.partial: str | None = None
        self.partial_lines: list[tuple[int, str]] = []      # the lines of `partial`
        self.rejected: list[tuple[int, str]] = []           # lines taken in, found of no use
        self.last_step: int | None = None
        self.clock_step: int | None = None    # bar step whose elapsed/remaining were sent
        self.train_count = 0
        self.record_step: int | None = None   # step of the last training record
        self.record_gap: int | None = None    # steps between records: stated (None: unknown)
        self.estimated = False                # the last record's step is an estimate
        self.glued: int | None = None         # step of a training bar right before a dict
        self.writer = ""                      # what a dict's line prints before it: a node, rank
        self.last_dict: tuple | None = None   # the last training dict: (writer, epoch, metrics)
        self.candidate: tuple | None = None   # the last bar seen while the training one is not
                                              # known: (total, elapsed, remaining, line, count)
        self.redraws = False                  # the console kept tqdm's redraws (\r frames)
        self.bar_line = 0                     # line of the last training bar frame
        self.emitted: dict[tuple, set] = {}      # (eval/final, step) -> metric names given (last 16)
        self.time: float | None = None
        self.first_time: float | None = None     # the first time stamp of the log
        self.burst: list = []
        self.alone: tuple = ("", None)        # the last frame that was one bar alone, plain_bar's
        self.frame: tuple = (0, "")           # the last frame fed: (line, text)

    # --- the parser ---------------------------------------------------------------------
    def feed(self, text: str, number: int) -> list | None:
        """The events of one line; None for a line that is none of the trainer's."""
        out: list = []
        if self.burst and not text.lstrip().startswith("{'"):    # a burst ends at its last dict
            self._flush(out)
            self._end_burst(out)
        previous, self.frame = self.frame, (number, text)
        if "%|" in text:
            if text != self.alone[0]:       # (tqdm redraws a bar: the last one alone, again)
                m = BAR.match(text)
                if m is not None and m.end() == len(text):
                    self.alone = (text, plain_bar(m, None))
            if text == self.alone[0]:       # a frame that is one bar alone
                self._redrawn(previous, number, text, self._bar(self.alone[1], number, out))
                return out
            pos, known = 0, False
            for start, desc, m in bars(text):
                if start > pos:
                    self._line(text[pos:start], number, out)
                self.glued = self._bar(plain_bar(m, desc), number, out)
                if start == 0:
                    self._redrawn(previous, number, text[:m.end()], self.glued)
                pos, known = m.end(), True
            known = (pos < len(text) and self._line(text[pos:], number, out)) or known
            self.glued = None
        else:
            known = self._line(text, number, out)
        return out if known or out else None

    def finish(self) -> list:
        out: list = []
        self._reject_partial()
        self._end_block(out)
        self._flush(out)
        self._end_burst(out)
        if self.in_traceback:            # cut short before its exception line
            out.append(Marker(TRACEBACK, "traceback (cut short)", line=self.in_traceback,
                              step=self.last_step, time=self.time))
        return out

    def _bar(self, bar: tuple | None, number: int, out: list) -> int | None:
        """A tqdm frame (`plain_bar`'s); for a frame of the training bar, its step (else None)."""
        self.in_dump = self.in_message = False
        if self.partial is not None:
            self._reject_partial()      # a terminal's wrap never puts a bar inside a dict
        if bar is None:
            return None
        total, n, elapsed, remaining = bar
        if self.train_total is None:        # no "Total optimization steps" line (a paste)
            if self.in_eval:
                return None
            if self._left_below_final(total, n, number):
                self.pending.step = n                       # the training bar, at its end
            elif self.pending is None or self.pending.phase != TRAIN:
                self.candidate = (total, elapsed, remaining, number, n)
                return n        # the training bar only if a dict is glued right after it
            self._bar_total(total, number, out)     # drawn after a training dict: the training bar
        if total != self.train_total:
            return self._eval_begins() if n == 0 else None
        self._train_bar(n, elapsed, remaining, number, out)
        return n

    def _train_bar(self, n: int, elapsed: str, remaining: str, number: int, out: list) -> None:
        """A frame of the training bar: it flushes the dict before it, ends a buffered stdout's
        burst and gives the clock."""
        self._flush(out, n)
        self._end_burst(out)
        if n != self.clock_step:
            self.clock_step = n
            self._clock(elapsed, remaining, number, out, n)
        self.redraws = self.redraws or number == self.bar_line
        self.last_step, self.bar_line = n, number

    def _clock(self, elapsed: str, remaining: str, number: int, out: list, step: int) -> None:
        """Elapsed and remaining time of the training bar, and its count, once per new step
        (live ETA and progress: the bar runs ahead of the last dict by up to a logging gap)."""
        facts = {"elapsed_seconds": clock_seconds(elapsed), "bar_step": step}
        if remaining != "?":
            facts["remaining_seconds"] = clock_seconds(remaining)
        self.facts.update(facts)
        out.append(Info(facts, line=number))

    def _line(self, text: str, number: int, out: list) -> bool:
        """One line or the part of one beside progress bars; whether it was understood."""
        if not text.strip():
            return False
        lead = _RANK.match(text.lstrip()) if "[rank" in text else \
            _LABEL.match(text) if text[:1].isdigit() else None
        rank = lead.group(0).strip() if lead else ""         # (a writer: see _another_writers_copy)
        if "[rank" in text:
            text = text.lstrip()[lead.end() if lead else 0:]
        elif lead:
            text = text[lead.end():]
        if self.partial is not None:
            text = self._join_wrapped(text, number)
            if text is None:
                return True
        if text.startswith("{'") and "}" not in text and _DICT_START.match(text):
            self.partial, self.partial_lines = text, [(number, text)]
            return True
        if self.block is not None:
            row = _ROW.match(text)
            if row:
                self._block_row(row)
                return True
            self._end_block(out)
        if self.parted and _FRAME.match(text) and number - self.parted[1] <= PARTED_MOST:
            self.in_traceback, self.parted = self.parted[0], None    # its frames go on
        if self.in_traceback and self._traceback_line(text, number, out):
            return True
        if "Traceback (most recent call last)" in text:
            self.in_traceback = number
            self.in_dump = False
            return True
        if "sigkill_handler]" in text and self._launcher_end(text.strip(), number, out):
            return True
        head = None
        if " >>" in text:
            head = _LF_B.search(text) or _HF.search(text)
        elif " - " in text:
            head = _LF_A.search(text)
            stamped = _LOGURU.match(text) if head is None and " | " in text else None
            if stamped:                 # a loguru line (AutoTrain's): its time; the rest as usual
                self.time = stamp(*stamped.groups())
                self.first_time = self.time if self.first_time is None else self.first_time
        if head is not None:
            self.in_dump = False
            self.in_message = True
            self._logger_line(head, text[head.end():], number, out)
            return True
        if self.in_dump:
            return True
        stripped = text.strip()
        if stripped in ("training example:", "eval example:"):
            self.in_dump = True
            return True
        text = straight_quotes(text)
        if "{'" in text:
            m = _DICT.search(text)
            if m and text[m.start() - 1:m.start()] == "[":
                return False        # a printed list of dicts (trainer.state.log_history)
            if m:
                self.in_message = False
                self.writer = rank + text[:m.start()].strip()
                self._dict(m.group(0), number, out, echo=False)
                self.writer = ""
                return True
        block = _BLOCK.match(stripped) if stripped.startswith("*****") else None
        if block:
            self.in_message = False
            phase = FINAL if block.group(1) == "train" else EVAL
            if self.pending is None or self.pending.phase != phase:     # (else it may be the
                self._flush(out)                                       # dict the block restates)
            self.block = Record(phase, {}, line=number)
            self._end_block_begins(phase)
            return True
        # A bare line after a logger line continues its message (a config's JSON, say).
        return self._message(stripped, number, out) or self.in_message

    def _launcher_end(self, text: str, number: int, out: list) -> bool:
        """Whether a line is the DeepSpeed launcher ending the run: `exits with return code = N`
        (failed; killed where N < 0), `Main process received SIGINT, exiting` (killed)."""
        m = _LAUNCHER.match(text)
        if m is None:
            return "] Killing subprocess " in text
        self.time = stamp(*m.groups()[:6])
        code, signalled = m.group(8), m.group(9)
        self._flush(out)
        kind = KILLED if signalled or int(code) < 0 else TRACEBACK
        detail = signalled or f"a process of the DeepSpeed launcher {m.group(7)}"
        out.append(Marker(kind, detail, line=number, step=self.last_step, time=self.time))
        return True

    def _join_wrapped(self, text: str, number: int) -> str | None:
        """A dict hard-wrapped by a terminal copy: its pieces glued up to the closing brace; a line
        that cannot be one (a dict, a logger line) rejects them (unparsed), `text` goes on alone."""
        if text.startswith("{'") or " >> " in text or " - INFO - " in text:
            self._reject_partial()
            return text
        joined = self.partial + text
        self.partial_lines.append((number, text))
        if "}" in text or len(joined) > 20000:
            self.partial, self.partial_lines = None, []
            return joined
        self.partial = joined
        return None

    def _reject_partial(self) -> None:
        if self.partial is not None:
            self.rejected += self.partial_lines
            self.partial, self.partial_lines = None, []

    def _logger_line(self, head: re.Match, msg: str, number: int, out: list) -> None:
        groups = head.groups()
        if head.re is not _HF:
            self._end_logger(groups[6], head.re is _LF_A)
        if head.re is _LF_A:
            self.time = stamp(groups[2], groups[0], groups[1], *groups[3:6])
        else:
            self.time = stamp(*groups[:6])
        if self.first_time is None:
            self.first_time = self.time
        if head.re is _LF_B and "llamafactory_version" not in self.facts:
            version = LF_WRAPPER_LINES.get(groups[7]) if groups[6].startswith("llamafactory.") \
                else None
            if version:
                self._fact("llamafactory_version", version, number, out)
        if msg.startswith("{'"):
            m = _DICT.match(msg)
            if m:
                self._dict(m.group(0), number, out, echo=True)
            return
        self._message(msg.strip(), number, out)

    def _message(self, msg: str, number: int, out: list) -> bool:
        """Facts, banners and markers, from a logger message or a bare line; whether one."""
        if not msg:
            return False
        self._end_message(msg, number)
        if msg == "***** Running Evaluation *****" or msg == "***** Running Prediction *****":
            self.in_eval = True
        elif msg == "***** Running training *****" or msg.startswith("==((====))==  Unsloth - 2x"):
            self.in_eval = False            # (Unsloth's trainer prints its own banner)
            self._new_process(number, out)
        elif msg.startswith("[") and "[runner.py:" in msg and "] cmd = " in msg:
            self._new_process(number, out)      # DeepSpeed's runner launches a script
        elif msg.startswith("Training completed."):
            out.append(Marker(FINISHED, msg, line=number, step=self.last_step, time=self.time))
        elif msg.startswith("Saving model checkpoint to "):
            out.append(Marker(CHECKPOINT, msg[len("Saving model checkpoint to "):], line=number,
                              step=self.last_step, time=self.time))
        elif msg.startswith(("Continuing training from", "Resuming training from")):
            out.append(Marker(RESUME, msg, line=number, time=self.time))
            resumed = _RESUMED_AT.match(msg)
            if resumed:             # the step it goes on from: estimates follow it
                self._flush(out)
                self.record_step = self.last_step = int(resumed.group(1))
                self.estimated = False
        elif msg.startswith(("Figure saved at: ", "Figure saved: ")):
            pass                          # LLaMA-Factory's plot_loss PNGs
        elif end := ended(msg):
            out.append(Marker(*end, line=number, step=self.last_step, time=self.time))
        elif msg.startswith("logging_steps"):
            gap = argument(msg, "logging_steps")
            if gap and gap.isdigit():
                self._fact("logging_steps", max(1, int(gap)), number, out)
                if not self.train_count:        # the gap between records, until one is stated
                    self.record_gap = self.facts["logging_steps"]
        elif msg.startswith("metric_for_best_model"):
            if ranked := argument(msg, "metric_for_best_model"):
                self._fact("metric_for_best_model", ranked, number, out)
        elif "transformers_version" in msg and "transformers_version" not in self.facts:
            m = _VERSION.search(msg)
            if m:
                self._fact("transformers_version", m.group(1), number, out)
        else:
            found = facts_of(msg)
            if not found:
                return False
            for name, value in found:
                if name == "num_examples" and (self.in_eval or self.train_count):
                    continue            # an evaluation's (its banner may come after it)
                self._fact(name, value, number, out)
                if name == "total_steps":
                    self.train_total = value
        return True

    def _bar_total(self, total: int, number: int, out: list) -> None:
        """The training bar's total, learnt from it: the run's total steps too, if none stated."""
        self.train_total = total
        if "total_steps" not in self.facts:
            self._fact("total_steps", total, number, out)

    def _fact(self, name: str, value, number: int, out: list) -> None:
        if self.facts.get(name) != value:
            self.facts[name] = value
            out.append(Info({name: value}, line=number))

    def _traceback_line(self, text: str, number: int, out: list) -> bool:
        """Whether the line belongs to the open traceback; another line (a record another rank
        printed meanwhile, say) closes it and is parsed as usual, and where frames follow such
        lines soon (another stream's records between: wandb's copy of a console), they go on
        with it (`parted`)."""
        if text[:1].isspace() or text.startswith(("File ", "^", "~", "During handling",
                                                  "The above exception")):
            return True
        m = EXCEPTION.match(text.strip())
        detail = text.strip()[:300]
        self.parted = (self.in_traceback, number) if m is None else None
        self.in_traceback = False
        if m is None:
            return False
        self._flush(out)
        kind = TRACEBACK
        if m.group(1).endswith("KeyboardInterrupt"):
            kind = KILLED
        elif _OOM.search(detail):
            kind = OOM
        out.append(Marker(kind, detail, line=number, step=self.last_step, time=self.time))
        return True

    def _dict(self, text: str, number: int, out: list, echo: bool) -> None:
        values = parse_dict(text)
        self._values(self._swift(text, values, number, out) if SWIFT_KEY in text else values,
                     number, out, echo)

    def _values(self, values: dict, number: int, out: list, echo: bool) -> None:
        """The record of a printed dict's numeric items (parse_dict's)."""
        written = self._written_step(number)
        epoch = values.pop("epoch", None)
        if "train_loss" in values or "train_samples_per_second" in values:
            phase = FINAL
        elif "loss" not in values and any(k.startswith(("eval_", "predict_")) for k in values):
            phase = EVAL
            self.in_eval = False
        else:
            phase = TRAIN
        self._end_dict(phase, echo)
        if "learning_rate" not in values and "lr" in values:
            values["learning_rate"] = values.pop("lr")
        metrics = {k: v for k, v in values.items() if k not in NOT_METRICS}
        if not metrics:
            return
        rec = Record(phase, metrics, epoch=epoch, line=number)
        if phase == EVAL and self._another_writers_evaluation(rec, number, out):
            return
        self._before_dict(phase, number, out)
        stated = values.get("step")             # TFTrainer's and ms-swift's dicts state it,
        written = written if stated is None and phase == TRAIN and self.glued is None else None
        if written is not None or stated is not None and math.isfinite(stated):
            self._flush(out)                    # (else its tqdm.write's redraw may: _written_step)
            rec.step = int(stated if written is None else written)
            self._emit(rec, None, out, written=written is not None)
            return
        # a training bar right before it on its line (an eval's only where that bar is known)
        known = phase == TRAIN or self.train_total is not None
        rec.step, self.glued = self.glued if known else None, None
        if phase == TRAIN and rec.step is None and self.train_total is None and self.candidate \
                and self.candidate[3] == number - 1:
            self._flush(out)                  # (a record waiting, an evaluation, is not its)
            rec.step = self.candidate[4]      # a bar alone on the line before: as if glued to it
        elif phase == TRAIN and rec.step is None and self.bar_line == number - 1 and not self.redraws \
                and self.last_step != self.record_step:   # so too on a console of one frame a line,
            rec.step, rec.estimated = self.last_step, True  # a bar no record took: a guess until
                                                            # _choose weighs it against the next
        if phase == TRAIN and self._another_writers_copy(rec):
            self._flush(out)          # the dict it copies gets its step, and so does the copy,
            rec.step, rec.estimated = self.record_step, self.estimated    # which the run keeps
            out.append(rec)                                               # once (a repeat)
            return
        if phase == TRAIN and rec.step is not None and self.train_total is None and self.candidate:
            total, elapsed, remaining, line, _ = self.candidate
            self._bar_total(total, line, out)
            self._train_bar(rec.step, elapsed, remaining, line, out)
        if self.pending is not None and self.pending_echo and not echo and phase == TRAIN:
            if rec.step is None:         # the LlamaBoard echo of this very dict: keep the dict
                rec.step = self.pending.step
            self.pending = None
        elif self.pending is not None and self.pending_echo and phase == FINAL \
                and self.pending.epoch == epoch and not any(self.pending.metrics.values()):
            self.pending = None          # its echo: LLaMA-Factory <= 0.7 printed None as 0
        self._flush(out)
        self.pending, self.pending_echo, self.pending_writer = rec, echo, self.writer
