"""Console output of `llamafactory-cli train` and any Hugging Face Trainer script.

Spec: shared/formats/llamafactory.md (§2–§7, §9, §10). Also reads LlamaBoard's running_log.txt,
which holds the same logger lines. A step dict carries no step: it waits for the training bar
frame drawn right after it (the frame before can lag); without one the step is
round(epoch × examples ÷ total batch size), else the record's ordinal.
"""
from __future__ import annotations

import math
import re
from datetime import datetime

import numpy as np

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
    Records,
)
from ..sources import MAX_LINE

NAME = "hf_trainer"
TITLE = "LLaMA-Factory / Hugging Face Trainer console output (also LlamaBoard running_log.txt)"

_LF_A = re.compile(r"(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2}):(\d{2}) - (?:DEBUG|INFO|WARNING|ERROR|CRITICAL)"
                   r" - ((?:llmtuner|llamafactory|transformers)[\w.]*) - ")
_LF_B = re.compile(r"\[(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\|"
                   r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})\]"
                   r" ([\w.]+):(\d+) >> ")
_HF = re.compile(r"\[(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\|[\w.]+\.py:\d+\] "
                 r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}),\d{3} >> ")
_BAR = re.compile(r"(?:(?P<desc>[^|\r\n]*?): )?(?P<pct>[ \d]{2}\d)%\|[^|]*\| *(?P<n>\d+)/(?P<total>\d+|\?)"
                  r" \[(?P<elapsed>\d+:\d{2}(?::\d{2})?)<(?P<remaining>\d+:\d{2}(?::\d{2})?|\?),"
                  r" *(?:\?|\d+(?:\.\d+)?)"
                  r"(?P<unit>[^\]\[,\s{]*/s|s/[^\]\[,\s{]+)(?:,[^\]\r\n{]*)?\]?")
_DICT = re.compile(r"\{'(?:loss|eval_[\w/.@-]+|predict_[\w/.@-]+|train_runtime|epoch|reward)'[^{}]*\}")
_DICT_START = re.compile(r"\{'(?:loss|eval_[\w/.@-]+|train_runtime)': ")
_PAIR = re.compile(r"'([^']+)': (?:'([^']*)'|tensor\(([^,)]+)[^)]*\)|([^,}]+))")
_BLOCK = re.compile(r"^\*\*\*\*\* (\w+) metrics \*\*\*\*\*$")
_ROW = re.compile(r"^  (\S+)\s*= +(\S.*)$")
_DELTA = re.compile(r"^(?:(\d+) days?, )?(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")
_RANK = re.compile(r"^\[rank\d+\]: ")
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit))\b:?(.*)$")
_OOM = re.compile(r"out of memory|OutOfMemoryError", re.I)
_FACTS = [
    (re.compile(r"^\s*Num examples = ([\d,]+)$"), "num_examples"),
    (re.compile(r"^\s*Num Epochs = ([\d,]+)$"), "num_train_epochs"),
    (re.compile(r"^\s*Total train batch size \(.*\) = ([\d,]+)$"), "total_train_batch_size"),
    (re.compile(r"^\s*Total (?:optimization|training) steps = ([\d,]+)$"), "total_steps"),
    (re.compile(r"^\s*Gradient Accumulation steps = (\d+)$"), "gradient_accumulation_steps"),
    (re.compile(r"world size: (\d+),"), "world_size"),
]
_VERSION = re.compile(r'"transformers_version": "([\w.]+)"')
# LF's info_rank0/warning_rank0 wrappers print a constant line number per release (spec §2.2).
_LF_WRAPPER_LINES = {"157": "0.9.1-0.9.2", "162": "0.9.1-0.9.2", "168": "0.9.1-0.9.2",
                     "143": "0.9.3-0.9.4", "148": "0.9.3-0.9.4", "154": "0.9.3-0.9.4",
                     "144": ">=0.9.5", "149": ">=0.9.5", "155": ">=0.9.5"}
_NOT_METRICS = ("epoch", "step", "total_flos")

# The fast post-hoc path (feed_block) takes whole physical lines made only of tqdm frames that
# feed would read as plain bars (no description, a numeric total, it/s or s/it), all of one
# total, blank frames, and maybe a last frame that is a training dict of plain numbers.
_CLOCK_B = rb"\d+:\d{2}(?::\d{2})?"
_BAR_B = (rb"[ \d]{2}\d%\|(?:\xe2\x96[\x88-\x8f])*[ #\d]*\| *(?P<nN>\d+)/TOTAL \[(?P<eN>" + _CLOCK_B
          + rb")<(?P<rN>" + _CLOCK_B + rb"|\?), *(?:\?|\d+(?:\.\d+)?)(?:it/s|s/it)\](?:\x1b\[A)?")
_NUM_B = rb"-?(?:\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|nan|inf)"
_VALUE_B = rb"(?:'" + _NUM_B + rb"'|" + _NUM_B + rb")"
_BAR_LINE = re.compile(  # first bar: n1, e1, r1; last other bar (if any): n2, e2, r2
    rb"\n\r(?: *\r)*" + _BAR_B.replace(b"N", b"1").replace(b"TOTAL", rb"(?P<total>\d+)")
    + rb"(?:\r(?: *|" + _BAR_B.replace(b"N", b"2").replace(b"TOTAL", rb"(?P=total)") + rb"))*"
    + rb"(?:\r(?P<dict>\{'loss': " + _VALUE_B + rb"(?:, '[\w/.@-]+': " + _VALUE_B + rb")*\}))?"
    + rb"(?![^\n])")
_BARS_B = re.compile(_BAR_B.replace(b"?P<nN>", b"").replace(b"?P<eN>", b"").replace(b"?P<rN>", b"")
                     .replace(b"TOTAL", rb"\d+"))
_KEYS_B = re.compile(rb"'([^']+)': ")
_VALUES_B = re.compile(rb": '?([^',}]+)")
_ODD_EPOCH = re.compile(rb"'epoch': '?-?(?:nan|inf)")
_FALLBACK = object()                 # a dict's step when a dict, not a bar, flushed it

# Real lines (from shared/fixtures) and the events each must give when fed to a fresh Parser.
SAMPLES = [
    ("[INFO|trainer.py:1478] 2026-11-25 16:45:50,937 >>   Total optimization steps = 60\n"
     "{'loss': '7.622', 'grad_norm': '0.1841', 'learning_rate': '0', 'epoch': '0.008889'}\n"
     "  2%|▏         | 1/60 [00:00<00:28,  2.04it/s]",
     [Info({"total_steps": 60}, line=1),
      Record(TRAIN, {"loss": 7.622, "grad_norm": 0.1841, "learning_rate": 0.0}, step=1,
             epoch=0.008889, line=2),
      Info({"elapsed_seconds": 0.0, "remaining_seconds": 28.0}, line=3)]),
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
     [Info({"llamafactory_version": ">=0.9.5"}, line=1),
      Info({"elapsed_seconds": 3.0, "remaining_seconds": 178.0}, line=1),
      Record(TRAIN, {"loss": 7.622, "learning_rate": 0.0}, step=1, epoch=0.01,
             time=None, line=1)]),
    ("***** eval metrics *****\n  epoch                   =     0.5333\n"
     "  eval_loss               =     7.5585\n  eval_runtime            = 0:00:02.20",
     [Record(EVAL, {"eval_loss": 7.5585, "eval_runtime": 2.2}, epoch=0.5333, line=1)]),
    ("[INFO|trainer.py:1478] 2026-11-25 17:10:30,372 >>   Total optimization steps = 200\n"
     "  6%|▌         | 12/200 [00:51<15:13,  4.86s/it]Traceback (most recent call last):\n"
     "    return F.linear(input, self.weight, self.bias)\nKeyboardInterrupt",
     [Info({"total_steps": 200}, line=1),
      Info({"elapsed_seconds": 51.0, "remaining_seconds": 913.0}, line=2),
      Marker(KILLED, "KeyboardInterrupt", line=4, step=12, time=1795626630.0)]),
]


def sniff(lines: list[str]) -> float:
    """Share of lines that HF Trainer / LLaMA-Factory print (step dicts weigh most)."""
    if not lines:
        return 0.0
    hits = bars = 0.0
    for text in lines:
        if "{'" in text and "'global_step': " not in text \
                and (_DICT.search(text) or _DICT_START.match(text)):    # global_step: paddlenlp
            hits += 5
        elif _logger_line(text):
            hits += 1
        elif "***** " in text and ("Running training" in text or _BLOCK.match(text)):
            hits += 5
        elif "%|" in text and _BAR.search(text):
            bars += 1               # every tqdm user prints these: they count only beside
    return min(1.0, (hits + bars) / len(lines)) if hits else 0.0    # a line of the trainer


def _logger_line(text: str) -> bool:
    """A line of the LLaMA-Factory (format A or B) or transformers logger."""
    if " >> " in text:
        return bool(_LF_B.search(text) or _HF.search(text))
    return (" - INFO - " in text or " - WARNING - " in text) and bool(_LF_A.search(text))


def number(text: str) -> float | None:
    """A value as printed: number, nan/inf, a quoted 4.x/5.x number, or a timedelta."""
    text = text.strip().strip("'")
    try:
        return float(text.replace(",", "")) if "," in text and ":" not in text else float(text)
    except ValueError:
        pass
    m = _DELTA.match(text)
    if m:
        days = int(m.group(1) or 0)
        return days * 86400 + int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))
    return None


def parse_dict(text: str) -> dict[str, float]:
    """The numeric items of a printed Python dict (repr, with bare nan/inf or quoted numbers)."""
    out: dict[str, float] = {}
    for m in _PAIR.finditer(text):
        raw = m.group(2) if m.group(2) is not None else (m.group(3) or m.group(4))
        value = number(raw)
        if value is not None:
            out[m.group(1)] = value
    return out


def _clock_seconds(text: str) -> float:
    """tqdm's [MM:SS] or [H:MM:SS] (hours may exceed 99)."""
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


def _stamp(year, month, day, hh, mm, ss) -> float | None:
    try:
        dt = datetime(int(year), int(month), int(day), int(hh), int(mm), int(ss))
    except ValueError:
        return None
    return (dt - datetime(1970, 1, 1)).total_seconds()


def _split(data: bytes, number: int) -> list[tuple[int, bytes]]:
    """(number, raw line) of the lines of data (a last line end ends no empty line)."""
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    return list(zip(range(number, number + len(lines)), lines))


def _odd_dict(text: bytes) -> bool:
    """A glued dict that the fast path leaves to feed: a final one, or one with an odd epoch."""
    return b"'train_loss'" in text or b"'train_samples_per_second'" in text \
        or bool(_ODD_EPOCH.search(text))


class Parser:
    """Stateful: a step dict waits for the next training bar frame, which gives its step."""

    def __init__(self):
        self.facts: dict = {}
        self.train_total: int | None = None
        self.pending: Record | None = None
        self.pending_echo = False
        self.in_eval = False
        self.in_dump = False
        self.in_message = False   # bare lines may continue the last logger message
        self.in_traceback = 0     # line of an open traceback
        self.block: Record | None = None
        self.partial: str | None = None
        self.partial_lines: list[tuple[int, str]] = []      # the lines of `partial`
        self.rejected: list[tuple[int, str]] = []           # lines taken in, found of no use
        self.last_step: int | None = None
        self.clock_step: int | None = None    # bar step whose elapsed/remaining were sent
        self.train_count = 0
        self.record_step: int | None = None   # step of the last training record
        self.record_gap = 1                   # steps between records whose steps are stated
        self.estimated = False                # the last record's step is an estimate
        self.glued: int | None = None         # step of a training bar right before a dict
        self.candidate: tuple | None = None   # the last bar seen while the training one is not
                                              # known: (total, elapsed, remaining, line)
        self.redraws = False                  # the console kept tqdm's redraws (\r frames)
        self.bar_line = 0                     # line of the last training bar frame
        self.emitted: dict[tuple, set] = {}      # (eval/final, step) -> metric names given (last 16)
        self.time: float | None = None
        self.first_time: float | None = None     # the first time stamp of the log

    # --- steps --------------------------------------------------------------------------
    def _estimate(self, epoch: float | None) -> int:
        """A step for a training record the log states none for, always above the last
        record's (an estimate never collides with a record before it nor goes back): the
        last record's step plus the usual gap between records, when the epoch as printed
        (x examples / batch size) allows it; else the epoch's step; else the ordinal."""
        last = self.record_step
        following = None if last is None else last + self.record_gap
        span = self._epoch_span(epoch)
        if span is None:
            return self.train_count + 1 if following is None else following
        low, high = span
        if following is not None and (low <= following <= high or following > high):
            return following
        guess = min(max(round(epoch * self.steps_per_epoch()), low), high)
        return guess if last is None else max(guess, last + 1)

    def steps_per_epoch(self) -> float | None:
        examples = self.facts.get("num_examples")
        batch = self.facts.get("total_train_batch_size")
        return examples / batch if examples and batch else None

    def _epoch_span(self, epoch: float | None) -> tuple[int, int] | None:
        """The steps whose epoch prints as `epoch` (to the decimals it was printed with)."""
        per_epoch = self.steps_per_epoch()
        if epoch is None or not per_epoch or epoch != epoch:
            return None
        text = repr(float(epoch))
        decimals = len(text.partition(".")[2]) if "e" not in text else 16
        half = 0.5 * 10.0 ** -decimals
        return math.ceil((epoch - half) * per_epoch), math.floor((epoch + half) * per_epoch)

    def _choose(self, glued: int | None, after: int | None, epoch: float | None) -> int | None:
        """The step of a dict from its clues: the training bar glued right before it on its
        line, and the bar drawn after it. They differ when tqdm had not redrawn the bar yet
        (the bar after is right: it is redrawn at once) or when a console kept only the last
        frame of each line (the bar glued before is right: the one after is the next logging
        step's), or both (the step lies between). The epoch decides when the examples and
        batch size are known; else a console that kept its redraws (several frames on a line)
        trusts the bar after."""
        if glued is None or after is None or glued == after:
            return after if after is not None else glued
        span = self._epoch_span(epoch)
        if span is not None and span[0] == span[1] and \
                min(glued, after) <= span[0] <= max(glued, after):
            return span[0]                  # the epoch as printed names one step between
        if span is not None:
            guess = epoch * self.steps_per_epoch()
            return glued if abs(glued - guess) < abs(after - guess) else after
        return after if self.redraws else glued

    def _train_step(self, step: int | None, epoch: float | None) -> tuple[int, bool]:
        """(step, estimated) of the next training record, given the step the log states for
        it (None: none); remembers it, and the gap between records whose steps are stated."""
        estimated = step is None
        if estimated:
            step = self._estimate(epoch)
        elif self.record_step is not None and step > self.record_step and not self.estimated:
            self.record_gap = step - self.record_step
        self.record_step, self.estimated = step, estimated
        self.train_count += 1
        return step, estimated

    def _emit(self, rec: Record, step: int | None, out: list) -> None:
        """Give rec its step (a bar glued before it, else `step`: the bar that flushed it)."""
        if rec.phase == TRAIN:
            rec.step, rec.estimated = self._train_step(self._choose(rec.step, step, rec.epoch),
                                                       rec.epoch)
            self.last_step = rec.step
        else:                                 # a block repeating its dict: only new keys
            rec.step = step if step is not None else self.last_step
            seen = self.emitted.setdefault((rec.phase, rec.step), set())
            if len(self.emitted) > 16:          # a repeat follows its dict: keep the last few
                del self.emitted[next(iter(self.emitted))]
            if seen:
                rec.metrics = {k: v for k, v in rec.metrics.items() if k not in seen}
                if not rec.metrics:
                    return
            seen.update(rec.metrics)
        out.append(rec)

    def _flush(self, out: list, step: int | None = None) -> None:
        if self.pending is not None:
            rec, self.pending = self.pending, None
            self._emit(rec, step, out)

    # --- the parser ---------------------------------------------------------------------
    def feed(self, text: str, number: int) -> list | None:
        """The events of one line; None for a line that is none of the trainer's."""
        out: list = []
        if "%|" in text:
            pos, known = 0, False
            for m in _BAR.finditer(text):
                self._line(text[pos:m.start()], number, out)
                self.glued = self._bar(m, number, out)
                pos, known = m.end(), True
            known = self._line(text[pos:], number, out) or known
            self.glued = None
        else:
            known = self._line(text, number, out)
        return out if known or out else None

    # --- the fast post-hoc path --------------------------------------------------------
    def feed_block(self, data: bytes, number: int):
        """Parse whole lines of bytes whose first is `number`: yields lists of (number, raw
        line) that the caller must `feed` frame by frame, in order, and for runs of lines made
        only of training bar frames and glued training dicts (_BAR_LINE) their events: Records,
        Record, Info, and an int of frames read that no Records counts.

        Gives exactly the events of feeding every frame, but for the bar clock Info, whose
        facts end equal.
        """
        data = b"\n" + data      # each _BAR_LINE match begins with the line end before it
        run: list = []
        at = 1                # offset of the first line not yielded yet, whose number is `number`
        for m in _BAR_LINE.finditer(data):
            start = m.start() + 1
            if start > at:
                if run:
                    yield from self._bar_lines(run)
                    run = []
                yield _split(data[at:start - 1], number)
                number += data.count(b"\n", at, start)
            run.append((number, m))
            number += 1
            at = m.end() + 1
        if run:
            yield from self._bar_lines(run)
        if at < len(data):
            yield _split(data[at:], number)

    def _bar_lines(self, lines: list):
        """The events of consecutive _BAR_LINE lines, as feed would give them (see feed_block)."""
        start = 0
        while start < len(lines):
            if self.train_total is None or self.partial is not None or self.block is not None \
                    or self.in_traceback:
                yield [(number, m.group()[1:]) for number, m in lines[start:]]
                return
            start = yield from self._train_bars(lines, start)

    def _train_bars(self, lines: list, start: int):
        """_bar_lines from lines[start] on, up to a line that feed must read (returned: the
        index after it): a line cut by decode, or with a final dict or one with an odd epoch.
        Bars are of the training bar when their total is the training total, else ignored (an
        eval bar)."""
        train = str(self.train_total).encode()
        frames = 0
        dicts: list = []          # [number, raw dict, keys, step] (step: None while it waits)
        clock = None
        last_dict = None          # a dict given its fallback step after the last training bar
        out: list = []
        slow = None
        for i in range(start, len(lines)):
            number, m = lines[i]
            total, n1, n2, text = m.group("total", "n1", "n2", "dict")
            if m.end() - m.start() > MAX_LINE or text is not None and _odd_dict(text):
                slow = i
                break
            count = m.string.count(b"%|", m.start(), m.end())
            frames += count
            if total == train:
                self._step(dicts, out, int(n1))
                self.redraws = self.redraws or count > 1
                if n2 is None:
                    last, j, bar = int(n1), 0, m.group("e1", "r1")
                elif count == 2:
                    last = int(n2)
                    j = int(last != int(n1))
                    bar = m.group("e2", "r2") if j else m.group("e1", "r1")
                else:
                    bars = _BARS_B.findall(m.group())
                    last = int(bars[-1][0])
                    j = len(bars) - 1
                    while j > 0 and int(bars[j - 1][0]) == last:
                        j -= 1
                    bar = bars[j][1:]
                if j > 0 or last != self.clock_step:
                    clock = (number, bar)
                self.clock_step = self.last_step = last
                last_dict = None
            if text is not None:
                if dicts and dicts[-1][3] is None:
                    last_dict = len(dicts) - 1
                self._step(dicts, out, _FALLBACK)
                frames += 1
                dicts.append([number, text, _KEYS_B.findall(text), None])
        if slow != start:
            yield from self._train_events(dicts, out, clock, last_dict, frames)
        if slow is None:
            return len(lines)
        yield [(lines[slow][0], lines[slow][1].group()[1:])]
        return slow + 1

    def _train_events(self, dicts: list, out: list, clock, last_dict, frames: int):
        """The events of _train_bars once its lines are read; the last dict, still without a
        step, becomes the pending one."""
        self.in_dump = self.in_message = False
        if clock is not None:
            number, (elapsed, remaining) = clock
            self._clock(elapsed.decode(), remaining.decode(), number, out)
        yield from out
        if dicts:
            self.pending_echo = False           # as _dict leaves it
        if dicts and dicts[-1][3] is None:      # still waits for its step
            number, text, _, _ = dicts.pop()
            self._dict(text.decode(), number, out, echo=False)
        start = 0
        for end in range(1, len(dicts) + 1):
            if end == len(dicts) or dicts[end][2] != dicts[start][2]:
                records = self._records(dicts[start:end])
                if start <= (last_dict if last_dict is not None else -1) < end:
                    self.last_step = int(records.step[last_dict - start])
                frames -= len(records)
                yield records
                start = end
        if frames:
            yield frames

    def _step(self, dicts: list, out: list, step) -> None:
        """_train_bars: a training bar (its step) or a dict (_FALLBACK) flushes the dict before
        (a dict drops a pending LlamaBoard echo instead, as _dict does)."""
        if not dicts:
            if step is _FALLBACK and self.pending_echo:
                self.pending = None
            self._flush(out, None if step is _FALLBACK else step)
        elif dicts[-1][3] is None:
            dicts[-1][3] = step

    def _records(self, dicts: list) -> Records:
        """Records of training dicts with the same keys, as _dict and _emit would give them."""
        keys = [k.decode() for k in dicts[0][2]]
        values = np.array([float(v) for d in dicts for v in _VALUES_B.findall(d[1])])
        column = dict(zip(keys, values.reshape(len(dicts), len(keys)).T))
        epoch = column.pop("epoch", None)
        if "learning_rate" not in column and "lr" in column:
            column["learning_rate"] = column.pop("lr")
        metrics = {k: v for k, v in column.items() if k not in _NOT_METRICS}
        epochs = [None] * len(dicts) if epoch is None else epoch.tolist()
        steps, flags = zip(*(self._train_step(None if d[3] is _FALLBACK else d[3], e)
                             for d, e in zip(dicts, epochs)))
        estimated = np.array(flags, dtype=bool)
        return Records(TRAIN, np.array(steps, dtype=np.float64),
                       np.full(len(dicts), np.nan) if epoch is None else epoch,
                       np.full(len(dicts), np.nan),
                       np.array([d[0] for d in dicts], dtype=np.float64), metrics,
                       estimated=estimated if estimated.any() else None)

    def finish(self) -> list:
        out: list = []
        self._reject_partial()
        self._end_block(out)
        self._flush(out)
        if self.in_traceback:            # cut short before its exception line
            out.append(Marker(TRACEBACK, "traceback (cut short)", line=self.in_traceback,
                              step=self.last_step, time=self.time))
        return out

    def _bar(self, m: re.Match, number: int, out: list) -> int | None:
        """A tqdm frame; for a frame of the training bar, its step (else None)."""
        self.in_dump = self.in_message = False
        self._reject_partial()          # a terminal's wrap never puts a bar inside a dict
        if m.group("desc") or m.group("total") == "?" or not m.group("unit").endswith(("it/s", "s/it")):
            return None
        total, n = int(m.group("total")), int(m.group("n"))
        if self.train_total is None:        # no "Total optimization steps" line (a paste)
            if self.in_eval:
                return None
            if self.pending is None or self.pending.phase != TRAIN:
                self.candidate = (total, m.group("elapsed"), m.group("remaining"), number)
                return n        # the training bar only if a dict is glued right after it
            self.train_total = total        # drawn after a training dict: the training bar
        if total != self.train_total:
            return None
        self._train_bar(n, m.group("elapsed"), m.group("remaining"), number, out)
        return n

    def _train_bar(self, n: int, elapsed: str, remaining: str, number: int, out: list) -> None:
        """A frame of the training bar: it flushes the dict before it and gives the clock."""
        self._flush(out, n)
        if n != self.clock_step:
            self.clock_step = n
            self._clock(elapsed, remaining, number, out)
        self.redraws = self.redraws or number == self.bar_line
        self.last_step, self.bar_line = n, number

    def _clock(self, elapsed: str, remaining: str, number: int, out: list) -> None:
        """Elapsed and remaining time of the training bar, once per new step (live ETA)."""
        facts = {"elapsed_seconds": _clock_seconds(elapsed)}
        if remaining != "?":
            facts["remaining_seconds"] = _clock_seconds(remaining)
        self.facts.update(facts)
        out.append(Info(facts, line=number))

    def _line(self, text: str, number: int, out: list) -> bool:
        """One line or the part of one beside progress bars; whether it was understood."""
        if not text.strip():
            return False
        if "[rank" in text:
            text = _RANK.sub("", text.lstrip())
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
                self._block_row(row.group(1), row.group(2))
                return True
            self._end_block(out)
        if self.in_traceback and self._traceback_line(text, number, out):
            return True
        if "Traceback (most recent call last)" in text:
            self.in_traceback = number
            self.in_dump = False
            return True
        head = None
        if " >> " in text:
            head = _LF_B.search(text) or _HF.search(text)
        elif " - " in text:
            head = _LF_A.search(text)
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
        if "{'" in text:
            m = _DICT.search(text)
            if m:
                self.in_message = False
                self._dict(m.group(0), number, out, echo=False)
                return True
        block = _BLOCK.match(stripped) if stripped.startswith("*****") else None
        if block:
            self.in_message = False
            self._flush(out)
            phase = TRAIN if block.group(1) == "train" else EVAL
            self.block = Record(FINAL if phase == TRAIN else EVAL, {}, line=number)
            return True
        # A bare line after a logger line continues its message (a config's JSON, say).
        return self._message(stripped, number, out) or self.in_message

    def _join_wrapped(self, text: str, number: int) -> str | None:
        """A dict hard-wrapped by a terminal copy: glue its pieces until the closing brace.
        A line that cannot be a piece (a new dict, a logger line) shows the open one was half a
        dict: its lines are rejected (counted as unparsed) and `text` goes on alone."""
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
        if head.re is _LF_A:
            self.time = _stamp(groups[2], groups[0], groups[1], *groups[3:6])
        else:
            self.time = _stamp(*groups[:6])
        if self.first_time is None:
            self.first_time = self.time
        if head.re is _LF_B and "llamafactory_version" not in self.facts:
            version = _LF_WRAPPER_LINES.get(groups[7]) if groups[6].startswith("llamafactory.") \
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
        """Facts, banners and markers, from a logger message or a bare line; whether it was
        one of them."""
        if not msg:
            return False
        if msg == "***** Running Evaluation *****" or msg == "***** Running Prediction *****":
            self.in_eval = True
        elif msg == "***** Running training *****":
            self.in_eval = False
        elif msg.startswith("Training completed."):
            out.append(Marker(FINISHED, msg, line=number, step=self.last_step, time=self.time))
        elif msg.startswith("Saving model checkpoint to "):
            out.append(Marker(CHECKPOINT, msg[len("Saving model checkpoint to "):], line=number,
                              step=self.last_step, time=self.time))
        elif msg.startswith(("Continuing training from", "Resuming training from")):
            out.append(Marker(RESUME, msg, line=number, time=self.time))
        elif msg.startswith(("Figure saved at: ", "Figure saved: ")):
            pass                          # LLaMA-Factory's plot_loss PNGs
        elif msg == "Killed" or msg.endswith(" Killed"):
            out.append(Marker(KILLED, msg, line=number, step=self.last_step, time=self.time))
        elif "transformers_version" in msg and "transformers_version" not in self.facts:
            m = _VERSION.search(msg)
            if m:
                self._fact("transformers_version", m.group(1), number, out)
        elif " = " not in msg and "world size: " not in msg:   # what all _FACTS need
            return False
        else:
            for pattern, name in _FACTS:
                m = pattern.search(msg)
                if m:
                    value = int(m.group(1).replace(",", ""))
                    if name == "num_examples" and self.in_eval:
                        return True
                    self._fact(name, value, number, out)
                    if name == "total_steps":
                        self.train_total = value
                    return True
            return False
        return True

    def _fact(self, name: str, value, number: int, out: list) -> None:
        if self.facts.get(name) != value:
            self.facts[name] = value
            out.append(Info({name: value}, line=number))

    def _traceback_line(self, text: str, number: int, out: list) -> bool:
        """Whether the line belongs to the open traceback; another line (a record another rank
        printed meanwhile, say) closes it and is parsed as usual."""
        if text[:1].isspace() or text.startswith(("File ", "^", "~", "During handling",
                                                  "The above exception")):
            return True
        self.in_traceback = False
        m = _EXCEPTION.match(text.strip())
        detail = text.strip()[:300]
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
        epoch = values.pop("epoch", None)
        if "train_loss" in values or "train_samples_per_second" in values:
            phase = FINAL
        elif any(k.startswith(("eval_", "predict_")) for k in values) and "loss" not in values:
            phase = EVAL
            self.in_eval = False
        else:
            phase = TRAIN
        if "learning_rate" not in values and "lr" in values:
            values["learning_rate"] = values.pop("lr")
        metrics = {k: v for k, v in values.items() if k not in _NOT_METRICS}
        if not metrics:
            return
        rec = Record(phase, metrics, epoch=epoch, line=number)
        if phase == TRAIN:          # a training bar right before it on its line is its step
            rec.step, self.glued = self.glued, None
            if rec.step is not None and self.train_total is None and self.candidate:
                total, elapsed, remaining, line = self.candidate
                self.train_total = total
                self._train_bar(rec.step, elapsed, remaining, line, out)
        if self.pending is not None and self.pending_echo and not echo and phase == TRAIN:
            if rec.step is None:         # the LlamaBoard echo of this very dict: keep the dict
                rec.step = self.pending.step
            self.pending = None
        self._flush(out)
        self.pending, self.pending_echo = rec, echo

    def _block_row(self, key: str, value: str) -> None:
        if key in ("total_flos",) or "_mem_" in key:
            return                        # printed in GF / MB, unlike the dict and the files
        v = number(value)
        if v is None:
            return
        if key == "epoch":
            self.block.epoch = v
        else:
            self.block.metrics[key] = v

    def _end_block(self, out: list) -> None:
        block, self.block = self.block, None
        if block is not None and block.metrics:
            self._emit(block, None, out)
