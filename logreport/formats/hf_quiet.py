"""The stretches between training lines of the hf_trainer fast path (`hf_fast`): *quiet
lines* (logger lines with no fact, marker or dict, the bare lines that continue them: a config
dump, bars of another total than the training one: an eval bar, and empty lines), found by
RE2 over all of a block's lines between runs at once (`Gaps`), which change only a few flags
and the clock of the parser and are read into a `Quiet` a stretch at once; and lines that
`feed` reads one by one, in order (`first_bar`: the training bar such a line begins with;
`glued_line`: such a line whose text after the bar is read with the run before it).
"""
from __future__ import annotations

import re
from bisect import bisect_right
from typing import NamedTuple

import numpy as np

from ..sources.text import block_lines, decode, frames
from . import arrow
from .hf_values import facts_of, stamp

# kinds of stretches (of training lines, bare dicts, one-frame lines, echo pairs: hf_fast)
STD, QUIET, LINES, BARE, FRAMES, ECHO, GLUED = 0, 1, 2, 3, 4, 5, 6

CLOCK = rb"(?:\d\d:\d\d|\d+:\d\d:\d\d)"      # as tqdm prints it (a subset of what feed takes)


def bar(total: bytes, count: bytes) -> bytes:
    """A tqdm frame that feed reads as a plain bar (no description, it/s or s/it, nothing
    around it) of `total`; `count`: the pattern of its count."""
    return (rb"[ \d]{2}\d%\|(?:\xe2\x96[\x88-\x8f])*[ #\d]*\| *" + count + rb"/" + total
            + rb" \[" + CLOCK + rb"<(?:" + CLOCK + rb"|\?), *(?:\?|\d+\.\d\d)(?:it/s|s/it)\]")


BLANKS = rb"\r(?: *(?:\x1b\[A)?\r)*"          # a line's start, and frames that decode to ""

# A quiet line's message: printable ASCII first (a Unicode space could hide a marker, banner
# or dict from this test), none of the texts of _OTHERWISE. Patterns for RE2 (pyarrow: bytes,
# no lookahead).
_FIRST = rb"[!-=?-Z\\\]^-z}~]"
_REST = rb"[^\n\r\x1b\x00|>]*"
_HEAD = (rb"\[(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\|[\w.]+\.py:\d+\] "
         rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} >> ")
_LOGGER = _HEAD + rb" *(?:" + _FIRST + _REST + rb")?"       # a transformers logger line
_BARE = rb" *" + _FIRST + _REST                             # a bare line (a config dump's)
# a message that is a marker or a banner: no quiet line
_OTHERWISE = (rb"^(?:" + _HEAD + rb")? *(?:\*\*\*\*\*|Training completed\.|Saving model checkpoint to "
              rb"|Continuing training from|Resuming training from|Killed)").decode()
_STAMP = re.compile(rb"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d),\d{3}")    # a logger line's
# Text that feed may read otherwise (a dict, a rank prefix, a traceback, a data example, a
# LLaMA-Factory logger line, a hyperparameter dump, where the run's end stands: hf_end): an
# RE2 pattern
_UNSAFE = (r"\{'|\[rank|Traceback|Killed|Watchdog caught|example:"
           r"| - (?:llmtuner|llamafactory|transformers)|metric_for_best_model|logging_steps=|do_eval="
           r"|\*\*\* (?:Evaluate|Predict) \*\*\*|Dropping the following result")
_LABEL = re.compile(rb"\d{1,5}: ")      # srun's task label, a line's start: feed reads it too


def _other_than(total: bytes) -> bytes:
    """An RE2 pattern of the digit strings other than `total`."""
    k = len(total)
    alternatives = [rb"\d{%d,}" % (k + 1)] + ([rb"\d{1,%d}" % (k - 1)] if k > 1 else [])
    for i in range(k):              # the same length, the first digit that differs at i
        others = bytes(d for d in b"0123456789" if d != total[i])
        rest = k - i - 1
        alternatives.append(total[:i] + b"[" + others + b"]" + (rb"\d{%d}" % rest if rest else b""))
    return b"(?:" + b"|".join(alternatives) + b")"


def _quiet_pattern(total: bytes | None) -> str:
    """A line that is quiet by itself (a logger line, a bare line, a line of bars of another
    total than the training one; the next lines may still say otherwise: Gaps)."""
    lines = _LOGGER + b"|" + _BARE
    if total is not None:
        other = bar(_other_than(total), rb"\d+") + rb"(?:\x1b\[A)?"
        lines += b"|" + BLANKS + other + rb"(?:\r(?:" + other + rb"| *(?:\x1b\[A)?))*"
    return (rb"^(?:" + lines + rb")\n").decode()


def _resets(first: np.ndarray) -> np.ndarray:
    """Whether lines beginning with these bytes reset feed's flags (a bar, a logger line) or
    are empty."""
    return (first == 13) | (first == 91) | (first == 10)


class Gaps:
    """The lines of a block between its runs of training lines, and which of them are quiet
    lines where they stand, found for the whole block at once: a logger or bare line quiet by
    itself (two RE2 passes: _quiet_pattern, _OTHERWISE); an empty line, unless the next line
    is empty too; a line of bars, unless the next line resets no flag (is neither a bar, a
    logger line nor empty: a bare line after a bar is not understood, counted unparsed) or is
    empty and the one after it resets none. The line after a stretch's last does not count.
    A third RE2 pass finds the lines that hold text feed may read otherwise (_UNSAFE); lines
    that begin with a digit are tested for srun's label apart (_LABEL: an anchored RE2
    alternative slowed that pass 5 %)."""

    def __init__(self, data: bytes, starts: np.ndarray, ends: np.ndarray, total: bytes | None,
                 lines: np.ndarray, last: np.ndarray):
        """`lines`: which lines of the block lie between runs of training lines; `last`: per
        line of the block, whether it ends its stretch."""
        self.data, self.reader = data, QuietReader()
        self.starts, self.ends = starts.tolist(), ends.tolist()     # (lists: read one by one)
        first = np.frombuffer(data, np.uint8)[starts]
        empty = first == 10
        quiet = np.zeros(len(ends), dtype=bool)
        unsafe = np.zeros(len(ends) + 1, dtype=np.int64)
        sized = lines[~empty[lines]]
        if len(sized):
            spans = arrow.slices(data, starts[sized], ends[sized] + 1)
            quiet[sized] = arrow.matches(spans, _quiet_pattern(total)) \
                & ~arrow.matches(spans, _OTHERWISE)
            unsafe[sized + 1] = arrow.matches(spans, _UNSAFE)
            digit = sized[(first[sized] >= 48) & (first[sized] <= 57)]   # few, but srun's lines
            unsafe[digit + 1] |= np.array([_LABEL.match(data, int(starts[k])) is not None
                                           for k in digit], dtype=np.int64)
        self.unsafe = np.cumsum(unsafe).tolist()        # lines before each that hold such text
        then = ~last                                     # the next line is in the stretch
        unset = np.append(~_resets(first[1:]), False)    # the next line resets no flag
        empty_next = then & np.append(empty[1:], False)
        bars_fail = then & unset | empty_next & np.append(then[1:] & unset[1:], False)
        quiet &= (first != 13) | ~bars_fail             # (only a line of bars begins with \r)
        gap_empty = lines[empty[lines]]
        quiet[gap_empty] = ~empty_next[gap_empty]
        self.quiet = quiet.tolist()
        self.flips = (np.flatnonzero(quiet[1:] != quiet[:-1]) + 1).tolist()

    def read(self, parts: list, first: int, end: int) -> None:
        """Append the stretches of lines first..end-1 (no training line) to `parts`: quiet
        stretches, and lines for feed (consecutive ones in one stretch, with an empty line
        alone among them: a tqdm bar one frame a line, cleared by empty lines, is one
        stretch; and with a quiet line alone after one of them: an evaluation bar's last
        frame between the line of its dict and the checkpoint line after it, a warning's
        second line, which feed reads in less time than a stretch of its own takes)."""
        quiet, flips, starts, ends = self.quiet, self.flips, self.starts, self.ends
        k, line, lines_from = bisect_right(flips, first), first, None
        while line < end:
            stop = flips[k] if k < len(flips) and flips[k] < end else end
            k, count = k + 1, stop - line
            if not quiet[line] or count == 1 and lines_from is not None:
                lines_from = line if lines_from is None else lines_from
            else:
                if lines_from is not None:
                    _lines(parts, self.data, lines_from, line, starts, ends)
                    lines_from = None
                start, stop_at = starts[line], ends[stop - 1] + 1
                parts.append((QUIET, line, count, start, stop_at, self.reader.read(
                    self.data[start:stop_at], count, self.unsafe[stop] > self.unsafe[line])))
            line = stop
        if lines_from is not None:
            _lines(parts, self.data, lines_from, line, starts, ends)


def _lines(parts: list, data: bytes, first: int, end: int, starts: list, ends: list) -> None:
    """Lines first..end-1 for feed: a LINES stretch, with their frames (their lines counted
    from its first), split and decoded here (in a worker, not in the process that feeds them)."""
    start, stop = starts[first], ends[end - 1] + 1
    parts.append((LINES, first, end - first, start, stop, block_lines(data[start:stop], 0)))


class Quiet(NamedTuple):
    """A stretch of quiet lines: frames (non-empty ones), whether feed would find a logger
    line or bar last (`message`: True, False; None: neither), the last logger line's stamp,
    where bare lines come first the stretch's bytes (`bare`: feed reads such lines unless they
    continue a message, mostly a warning glued to a bar, and where the block was prepared in a
    worker only these bytes of it come along), bars, facts its lines restate, a
    transformers_version, text that feed may read otherwise (`unsafe`: one of _UNSAFE's,
    which Gaps finds in every line between training lines at once), or a bar beginning (at 0:
    `starts`). A tuple: a worker sends thousands."""

    frames: int
    message: bool | None
    stamped: bool
    time: float | None
    bare: bytes | None
    bars: int
    facts: list
    version: bool
    unsafe: bool
    starts: bool


class QuietReader:
    """Reads stretches of quiet lines into `Quiet`s. What a stretch's Quiet is depends on its
    digits only through its last logger line's stamp and the facts its lines state, and a
    console repeats its stretches with other digits (an evaluation's lines, every few steps):
    what the rest depends on is read once per text with its digits masked (`_Shape`), the
    stamp and the facts' messages are then looked up where the shape says they are."""

    def __init__(self):
        self.times: dict = {}           # a logger line's stamp -> its time
        self.stated: dict = {}          # a line's message -> the facts it states
        self.shapes: dict = {}          # a stretch's text, its digits masked -> its _Shape

    def read(self, text: bytes, count: int, unsafe: bool) -> Quiet:
        """The Quiet of a stretch of `count` quiet lines (`unsafe`: see Quiet)."""
        masked = text.translate(_MASK)
        shape = self.shapes.get(masked)
        if shape is None:
            if len(self.shapes) >= _SHAPES_MOST:
                self.shapes.clear()
            shape = self.shapes[masked] = _shape(masked, count)
        time = None
        if shape.at_logger >= 0:
            printed = text[shape.at_logger - 23:shape.at_logger]
            time = self.times.get(printed)
            if time is None:
                time = self.times[printed] = stamp(*_STAMP.match(printed).groups())
        facts = []
        for start, end in shape.messages:
            message = text[start:end]
            stated = self.stated.get(message)
            if stated is None:
                stated = self.stated[message] = facts_of(decode(message).strip())
            facts += stated
        return Quiet(shape.frames, shape.message, shape.at_logger >= 0, time,
                     text if shape.bare else None, shape.bars, facts, shape.version, unsafe,
                     b"| 0/" in text)


class _Shape(NamedTuple):
    """What a stretch's Quiet is, but for its stamp and facts (see Quiet): where its last
    logger line's stamp ends (-1: none), and the (start, end) of the messages of its lines
    that may state a fact."""

    frames: int
    message: bool | None
    at_logger: int
    bare: bool
    bars: int
    messages: tuple
    version: bool


_MASK = bytes.maketrans(b"0123456789", b"0000000000")     # (no text that _shape looks for
_SHAPES_MOST = 4096                                         # holds a digit)


def _shape(text: bytes, count: int) -> _Shape:
    """The _Shape of a stretch of `count` quiet lines (its digits masked or not)."""
    loggers = text.count(b" >> ")
    bars = (text.count(b"|") - loggers) // 2       # 1 per logger line, 2 per bar
    bar_lines = text.count(b"\n\r") + (text[0] == 13)
    empty = text.count(b"\n\n") + (text[0] == 10)
    at_logger, at_bar = text.rfind(b" >> "), text.rfind(b"%|")
    lead = text[1:2] if text[0] == 10 else text[:1]
    messages = _messages(text) if b" = " in text or b"world size: " in text else ()
    return _Shape(count - loggers - bar_lines - empty + loggers + bars,
                  None if at_logger < 0 and at_bar < 0 else at_logger > at_bar, at_logger,
                  lead not in (b"", b"\r", b"["), bars, messages, b"transformers_version" in text)


def _messages(text: bytes) -> tuple:
    """(start, end) of the messages of the lines of quiet text that may state a fact (see
    hf_values.facts_of), in order: a logger line's after its ` >> `, a bare line whole."""
    out = {}                    # line start -> its message
    for needle in (b" = ", b"world size: "):
        at = text.find(needle)
        while at >= 0:
            start, end = text.rfind(b"\n", 0, at) + 1, text.find(b"\n", at)
            logger = text.find(b" >> ", start, end)
            out[start] = (logger + 4 if logger >= 0 else start, end)
            at = text.find(needle, end)
    return tuple(out[start] for start in sorted(out))


_FIRST_BARS: dict = {}          # total -> first_bar's pattern
_BANNERS = (b"***** Running Evaluation *****", b"***** Running Prediction *****")
_GLUED_MOST = 4096              # bytes of a glued line read with the run before it


def first_bar(data: bytes, start: int, end: int, total: bytes) -> re.Match | None:
    """The training bar (of `total`) that a line begins with, frames that decode to nothing
    before it allowed (group 1: the bar, 2: its count): a bar feed reads first, as a plain
    training bar (`bar`, whatever is glued after it); else None. (After a run of training
    lines, it flushes the run's last dict.)"""
    pattern = _FIRST_BARS.get(total)
    if pattern is None:
        if len(_FIRST_BARS) > 64:
            _FIRST_BARS.clear()
        pattern = _FIRST_BARS[total] = re.compile(rb"(?:" + BLANKS + rb")?(" + bar(total, rb"(\d+)")
                                                  + rb")")
    return pattern.match(data, start, end)


def glued_line(parts: list, first: re.Match, data: bytes, line: int, starts: list, ends: list,
               kinds: list) -> int:
    """A line that begins with the training bar (`first`: first_bar's) and goes on with text
    that feed reads with no other bar or dict in it (a logger line: the evaluation's first,
    `\\r 50%|…| 30/60 [00:21<00:17,  1.76it/s][INFO|trainer.py:2668] … >> `, or a checkpoint
    saved), and the banner after it, if one is next (`***** Running Evaluation *****`): a
    GLUED stretch of its one frame (as `frames` splits and decodes it: those before the bar
    decode to nothing, so where no `\r` follows the bar the frame is the rest of the line,
    decoded alone), where the bar ends in it, the banner. Appended to `parts`; how many lines
    it took (0: none)."""
    start, end = starts[line], ends[line]
    if first.end() == end or end - start > _GLUED_MOST:
        return 0
    if data.find(b"\r", first.start(1), end) < 0:
        text = decode(data[first.start(1):end])
    else:
        read: list = []
        frames(data[start:end], line, read)                 # as feed gets them
        text = read[0][1] if len(read) == 1 else ""
    cut = len(data[first.start(1):first.end(1)].decode("utf-8", "replace"))
    if len(text) <= cut or "%|" in text[cut:] or "{'" in text[cut:]:
        return 0
    taken, banner = 1, None
    after = data[starts[line + 1]:ends[line + 1]] if line + 1 < len(ends) else b""
    if after in _BANNERS and kinds[line + 1] == QUIET:
        taken, banner = 2, after.decode()
    parts.append((GLUED, line, taken, start, ends[line + taken - 1] + 1, (text, cut, banner)))
    return taken


def split(data, start: int, end: int, number: int) -> list[tuple[int, bytes]]:
    """(number, raw line) of the lines of data[start:end] (whole lines)."""
    lines = data[start:end].split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    return list(zip(range(number, number + len(lines)), lines))
