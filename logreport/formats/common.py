"""What the Paddle family's text logs share: numbers as printed, durations, timestamps,
tracebacks, progress bars, and a parser skeleton (a prefix gives the time, the rest of the
line goes to the format's own reader).

Used by paddleocr, paddleclas, paddleseg and paddlenlp (ppdet: its out-of-memory text and
process-start line; hf_trainer: a traceback's exception line).
"""
from __future__ import annotations

import re
from datetime import datetime

from ..events import KILLED, NEW_RUN, OOM, TRACEBACK, TRAIN, Info, Marker, Record

NUM = r"-?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|nan|inf)"
LEVEL = r"(?:DEBUG|INFO|WARNING|ERROR|CRITICAL):(?: |$)"     # a logger's level and colon
BRACKET_DATE = r"\[(\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})\] "    # [2022/06/23 20:30:54]
DASH_DATE = r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})"            # 2021-03-30 06:55:57
TIMEDELTA = r"(?:\d+ days?, )?\d+:\d{2}:\d{2}"                 # str(timedelta): `2 days, 20:01:28`
_DELTA = re.compile(r"^(?:(\d+) days?, )?(\d+):(\d{2}):(\d{2})$")
# A Python traceback's exception line (`raise Exception(...)`'s too): its class and message
EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)|Exception)\b:?(.*)$")
# a traceback's frame line a paste left unindented: the line after it is its code line
_BARE_FRAME = re.compile(r'^File ".*", line \d+')
OOM_TEXT = re.compile(r"out of memory|OutOfMemoryError|ResourceExhaustedError|^MemoryError\b", re.I)
GPU_START = "GPU Compute Capability"    # Paddle's glog line at a process's first use of a GPU
TRAIN_START = "train with paddle "      # PaddleOCR's and PaddleClas's tools/train.py, first
# the lines of Paddle's C++ traceback after a Python one, up to its exception line (blank lines
# and separators among them)
_CPP_TRACEBACK = re.compile(r"^(?:-+|\d+ +\S.*|Not support stack backtrace yet\.|Error Message Summary:"
                            r"|C\+\+ Traceback \(most recent call last\):)?$")
_TQDM = re.compile(r"\d+%\|[^|]*\| *\d+/\d+ \[")
_KERAS_BAR = re.compile(r"^\s*\d+/\d+ \[[=>.]*\]")


def _starts(*words: str) -> str:
    """A regex of the beginnings of words (`s`, `sa`, … `samples/sec`)."""
    return "|".join(sorted({re.escape(w[:i]) for w in words for i in range(1, len(w) + 1)},
                           key=len, reverse=True))


# the start of a `key: value` pair that a cut ended a line in (`reader_co`, `lr:`, `ips: 11.5 sam`,
# `eta: 3 days, 1`, `CTCLoss: nanx`): a key, a number, a time, its unit, each maybe cut
_PAIR_START = re.compile(r"^[A-Za-z_][\w.]*(?:\([A-Za-z]\w*\)?)?(?:[:=] ?(?:-?[\d.]*(?:[eE][-+]?\d*)?"
                         r"(?:s|(?: (?:" + _starts("samples/sec", "images/sec", "MB", "B") + "))?)"
                         r"|[\d:]*|\d+ (?:" + _starts("days") + r")(?:,(?: [\d:]*)?)?"
                         r"|" + _starts("nanxxx", "inf") + "))?$")
SEP = re.compile(r"(?<! day)(?<! days), ")    # between `key: value` pairs (not `3 days, 18:09:07`'s)
_GLOG = re.compile(r"^[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d{6}\s+\d+ [\w./-]+:\d+\]")
_EPOCH0 = datetime(1970, 1, 1)


def parse_number(text: str) -> float | None:
    """A value as printed (`nanxxx`: PaddleOCR pads NaN with x), or None."""
    text = text.strip().rstrip("x")
    try:
        return float(text)
    except ValueError:
        return None


def duration(text: str) -> float | None:
    """Seconds of a printed `str(timedelta)` or HH:MM:SS (`2 days, 20:01:28`, `13:56:38`)."""
    m = _DELTA.match(text.strip())
    if m is None:
        return None
    days = int(m.group(1) or 0)
    return float(days * 86400 + int(m.group(2)) * 3600 + int(m.group(3)) * 60 + int(m.group(4)))


_GLUED_KILL = re.compile(r": line \d+: +\d+ Killed +\S")     # (after its script's name)
_JOB_KILLED = re.compile(r"(?:^|: )(?:line \d+: +)?\d+ Killed +\S|^\[\d+\][+-]? +Killed +\S")


def killed(stripped: str) -> str | None:
    """What a line (stripped) that says the process was killed says: the shell's `Killed`
    after it, or its report of the job it ran (`run.sh: line 67: 57133 Killed    python
    train.py …`, `[1]+  Killed    nohup python …`: its command cut short); else None."""
    if stripped == "Killed" or stripped.endswith(" Killed"):
        return stripped
    if "Killed " in stripped and _JOB_KILLED.search(stripped):
        return stripped if len(stripped) <= 100 else stripped[:99] + "…"
    return None


# an end that no Python traceback tells: a collective the NCCL watchdog timed out (torch >= 2.2
# takes the process down, `what():` of its `c10::DistBackendError` saying so again; an older
# one hangs in it)
_ABORTED = re.compile(r"(?:\[Rank \d+\] )?Watchdog caught collective operation timeout")


def ended(stripped: str) -> tuple[str, str] | None:
    """(kind, what it says) of a line (stripped) that says the process ended: killed (`killed`)
    or stopped by an error no traceback tells (`_ABORTED`: a traceback's kind); else None."""
    if said := killed(stripped):
        return KILLED, said
    m = _ABORTED.search(stripped)
    if m is None:
        return None
    said = stripped[m.start():]
    return TRACEBACK, said if len(said) <= 100 else said[:99] + "…"


def straight_quotes(text: str) -> str:
    """A line whose dict a word processor gave typographic quotes (`{‘loss’: …}`, a paste's),
    with the quotes the program printed."""
    return text.replace("‘", "'").replace("’", "'") if "{‘" in text else text


def cut_short(body: str, part: re.Pattern) -> str | None:
    """What is whole of a `key: value, …` body that a cut ended in a pair (an excerpt's end:
    `loss: 0.2077, batch_cost: 0.4049, reader_co`; or after its comma): the pairs a `, ` follows,
    each one `part` reads; None unless the body is so. The last, the start of one, may have
    lost its end."""
    *kept, last = SEP.split(body[:-1] if body.endswith(",") else body)
    if _PAIR_START.match(last) and all(map(part.match, kept)):
        return ", ".join(kept)
    return None


def stamp(year, month, day, hh, mm, ss) -> float | None:
    """Seconds since 1970 of a naive local date and time (as printed), or None if not a date."""
    try:
        return (datetime(int(year), int(month), int(day), int(hh), int(mm), int(ss))
                - _EPOCH0).total_seconds()
    except (TypeError, ValueError):        # TypeError: a prefix without a date (PaddleNLP docs)
        return None


def progress_bar(text: str) -> bool:
    """A tqdm bar or a Keras-style `N/N [=====]` progress bar (PaddleSeg's eval)."""
    return bool(_TQDM.search(text) or _KERAS_BAR.match(text))


class LineParser:
    """The skeleton every Paddle-family parser shares.

    A subclass sets PREFIXES (regexes found anywhere in a line, groups 1-6 the date and time)
    and implements `message(msg, number, out)` for what follows a prefix and `bare(text,
    number, out)` for a line without one; both return whether they understood the line.
    Tracebacks, `Killed`, glog lines and progress bars are read here, and a training line
    cut at its end whose rest a paste wrapped onto the next line is read with it (`hold`).
    """

    PREFIXES: tuple = ()
    WRAPS = 8                     # the lines a wrapped line is joined from at most
    cut = False                   # the line being read was cut short (a kill's report after it)

    def __init__(self):
        self.time: float | None = None
        self.first_time: float | None = None     # the first time stamp of the log
        self.last_step: int | None = None
        self.epoch: float | None = None
        self.facts: dict = {}
        self.traceback = 0        # line of an open traceback
        self.bare_frame = 0       # line of its last frame line a paste left unindented
        self.caught = False       # ... that the program logged and went on (PaddleOCR's
                                  # `When parsing line …, error happened with msg: Traceback …`)
        self.held: list = []      # events of a line that was not understood
        self.error_due: tuple | None = None   # an error line whose message follows (Paddle's
                                              # `ResourceExhaustedError: `, a blank, the text)
        self.stepless = False     # a new process began, which has not trained yet
        self.apart = False        # the process so far is a run of its own though it has not
                                  # trained: it failed (PaddleNLP: or it evaluated)
        self.holding: tuple | None = None   # (line, [(line, text)]) of a message that `hold` may
                                            # hold: the last of its line, the lines it spans
        self.wrapped: tuple | None = None   # (line, message, [(line, text)]) held by `hold`
        self.rejected: list[tuple[int, str]] = []   # lines held, then not understood

    def feed(self, text: str, number: int) -> list | None:
        """The events of one line, or None if it is not understood; events it gave anyway
        (what it ended, such as an evaluation's table) come with the next line."""
        out, self.held = self.held, []
        joined = self.wrapped is not None and self._unwrap(text, number, out)
        if self.error_due is not None and text.strip():
            (kind, detail, line), self.error_due = self.error_due, None
            said = not text.lstrip().startswith(("-", "=")) and "Traceback" not in text
            out.append(self.marker(kind, f"{detail} {text.strip()}"[:300] if said else detail, line))
        if joined or self._line(text, number, out):
            if self.stepless and any(isinstance(e, Record) and e.phase == TRAIN for e in out):
                self.stepless = False
            return out
        self.held = out
        return None

    def _line(self, text: str, number: int, out: list) -> bool:
        glued = _GLUED_KILL.search(text) if "Killed " in text else None
        if glued and " " in text[:glued.start()].strip():   # bash's report of the job it
            self.cut = True                      # killed, glued to the line the kill cut short
            self._line(text[:glued.start()], number, out)
            self.cut = False
            out.append(self.marker(KILLED, killed(text[glued.start() + 2:].strip()), number))
            return True
        for prefix in self.PREFIXES:
            m = prefix.search(text)
            if m:
                return self._messages(prefix, m, text, number, out)
        if self.traceback and self._traceback_line(text, number, out):
            return True
        if "Traceback (most recent call last)" in text:
            self.traceback = number
            self.caught = "msg: Traceback (most recent call last)" in text
            return True
        stripped = text.strip()
        if not stripped or _GLOG.match(stripped) or progress_bar(text):
            if GPU_START in stripped:       # Paddle's first use of a GPU: a new process
                self.new_process(number, out)
            return True
        said = killed(stripped) or (stripped if stripped == "^C" else None)
        if said:
            out.append(self.marker(KILLED, said, number))
            return True
        return self.bare(text, number, out)

    def _messages(self, prefix: re.Pattern, m: re.Match, text: str, number: int,
                  out: list) -> bool:
        """The message after each prefix of a line: one, or several that a paste glued into
        one line (their line ends lost). Each is read; the line is understood if each is."""
        understood = True
        while m:
            self.time = stamp(*m.groups()[:6]) or self.time
            if self.first_time is None:
                self.first_time = self.time
            following = prefix.search(text, m.end())
            message = text[m.end():following.start()].rstrip() if following else text[m.end():]
            if message.startswith(TRAIN_START):
                self.new_process(number, out)
            if following is None and understood and not self.cut:
                self.holding = (number, [(number, text)])
            understood = self.message(message, number, out) and understood
            self.holding = None
            m = following
        return understood

    def hold(self, msg: str) -> bool:
        """Whether the training line being read, cut at its end, is held to be read with the
        next line, which may be its rest (a paste's wrap); not the one before another message
        of its line, nor one a kill cut, nor one read alone (`_unwrap`)."""
        if self.holding is None:
            return False
        line, lines = self.holding
        self.wrapped = (line, msg, lines)
        return True

    def _unwrap(self, text: str, number: int, out: list) -> bool:
        """The line after a held one: its rest where the two joined (or joined by a space, which
        the reader strips where the wrap cut at one) read as a training line, or as one still
        cut after a pair more (held again, up to WRAPS lines), read at the first line; else (a
        prefix, a join that does not read) the held line is read alone, and this one as any."""
        line, message, lines = self.wrapped
        reads = {}
        if text.strip() and not any(prefix.search(text) for prefix in self.PREFIXES):
            for joined in (message + text, f"{message} {text}"):
                reads.setdefault(self.train_line(joined), joined)
        rest = reads.get(True, reads.get(False) if ", " in text else None)
        if rest is not None:
            self.wrapped = (line, rest, [*lines, (number, text)])
        self._read_held(out, again=rest is not None and len(lines) + 1 < self.WRAPS)
        return rest is not None

    def _read_held(self, out: list, again: bool = False) -> None:
        """The held message read (held again where still cut, if `again`); its lines counted
        unparsed if it is not understood."""
        (line, message, lines), self.wrapped = self.wrapped, None
        self.holding = (line, lines) if again else None
        if not self.message(message, line, out):
            self.rejected += lines
        self.holding = None

    def settle(self) -> list:
        """At a live log's pause, a held line read alone (a live log writes no wraps)."""
        out: list = []
        if self.wrapped is not None:
            self._read_held(out)
        return out

    def finish(self) -> list:
        out, self.held = self.held, []
        if self.wrapped is not None:
            self._read_held(out)
        if self.error_due is not None:
            (kind, detail, line), self.error_due = self.error_due, None
            out.append(self.marker(kind, detail, line))
        self.end(out)
        self._cut_traceback(out)
        return out

    def _cut_traceback(self, out: list) -> None:
        """A traceback that ends without its exception line (the log was cut)."""
        if self.traceback and not self.caught:
            out.append(self.marker(TRACEBACK, "Traceback (cut off before the exception line)",
                                   self.traceback))
        self.traceback = 0

    # --- for subclasses ----------------------------------------------------------------------
    def message(self, msg: str, number: int, out: list) -> bool:
        raise NotImplementedError

    def bare(self, text: str, number: int, out: list) -> bool:
        return False

    def train_line(self, msg: str) -> bool | None:
        """Whether a message is a training line read whole (True) or one cut at its end (False,
        the subclass `hold`s it); None if neither."""
        return None

    def end(self, out: list) -> None:
        """Add the events still held at the end of the input."""

    def new_process(self, number: int, out: list) -> None:
        """A process starts in the log (its start-up line or banner, Paddle's first use of a
        GPU): after records, a new process (a restart, a resume, another launch) whose records
        begin a segment even where its steps go on or repeat, and whose failures before it
        trains are at no step of the one before; so too after a process that failed before it
        trained (launches that failed one after another: each failure is its own launch's)."""
        if self.last_step is not None or self.apart:
            out.append(self.marker(NEW_RUN, "new run", number))
            self.last_step = self.epoch = None
        self.stepless, self.apart = True, False

    def marker(self, kind: str, detail, number: int) -> Marker:
        self.apart = self.apart or kind in (TRACEBACK, OOM, KILLED)
        return Marker(kind, detail, line=number, step=None if self.stepless else self.last_step,
                      time=self.time)

    def fact(self, out: list, number: int, **facts) -> None:
        """Info with the facts that changed."""
        new = {k: v for k, v in facts.items() if self.facts.get(k) != v}
        if new:
            self.facts.update(new)
            out.append(Info(new, line=number))

    def _traceback_line(self, text: str, number: int, out: list) -> bool:
        """Whether the line belongs to the open traceback; its exception line closes it (where
        a paste left the frames unindented, a frame's code line, the line after it, does not)."""
        code = self.bare_frame == number - 1
        if _BARE_FRAME.match(text):
            self.bare_frame = number
        if text[:1].isspace() or text.startswith(("File ", "^", "~", "During handling",
                                                  "The above exception")):
            return True
        detail = text.strip()[:300]
        if _CPP_TRACEBACK.match(detail):
            return True
        m = EXCEPTION.match(detail)
        if m is None and code:
            return True
        if m is None:
            self._cut_traceback(out)
            return False
        self.traceback = 0
        if self.caught:                     # a data error it logged: no failure of the run
            self.fact(out, number, logged_errors=self.facts.get("logged_errors", 0) + 1,
                      last_logged_error=detail)
            return True
        kind = TRACEBACK
        if m.group(1).endswith("KeyboardInterrupt"):
            kind = KILLED
        elif OOM_TEXT.search(detail):
            kind = OOM
        if m.group(2).strip():
            out.append(self.marker(kind, detail, number))
        else:
            self.error_due = (kind, detail, number)
        return True


def at(text: str) -> float:
    """Seconds since 1970 of `YYYY-MM-DD HH:MM:SS` (for the SAMPLES of a format)."""
    return (datetime.strptime(text, "%Y-%m-%d %H:%M:%S") - _EPOCH0).total_seconds()


def sniffer(weigh):
    """Decorator: a format's sniff(lines) from the weight of one line; the score is the lines'
    weights over their count, at most 1."""
    def sniff(lines: list[str]) -> float:
        if not lines:
            return 0.0
        return min(1.0, sum(weigh(text) for text in lines) / len(lines))

    sniff.__doc__ = weigh.__doc__
    return sniff
