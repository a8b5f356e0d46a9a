"""Lines in, events out: detect the format once, feed the parser, add its events to a run.

The reader (`reader.Reader`) gives an input's blocks to `feed_block` (the format's fast path)
and a follower's lines to `feed`, for `report` and `watch` alike.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from . import formats
from .batch import Batch
from .errors import UnknownFormat
from .events import KILLED, OOM, TRACEBACK, Frames, Marker, Record, RecordRows, Records
from .formats.common import EXCEPTION
from .model import Reading
from .sources import block_lines, frames

SNIFF_LINES = 400       # lines buffered before the format must be decided
GIVE_UP_LINES = 20000   # lines of no known format the whole buffer decides on (windows after)
LATE_LINES = 100000     # ... unless a window of lines is one format's (a late start: _decide_late)
LATE_CHARS = 1 << 26    # (the lines held meanwhile: at most this many, and characters)
ERROR_ENDS = 20         # lines at a log's end a crash's exception line is among
QUIET_SETTLES = 5       # pauses (a watch's ~1 s ticks) a live log's lines stay as they are
                        # before its format is decided as a whole log's
HELD_QUIET = 2          # ... before a watch shows what the parser holds back (Ingest.held)


class Ingest:
    """Feeds the lines of one input into a run (detecting the format on the first lines)."""

    def __init__(self, run: Reading, name: str, fmt: str | None = None,
                 written: datetime | None = None, give_up: bool = True):
        self.run = run
        self.give_up = give_up
        self.name = name
        self.file = run.input_id(name)
        self.written = written
        self.format = formats.get(fmt) if fmt else None
        self.parser = self.format.Parser(**self._parser_args()) if self.format else None
        if self.format and not run.format:      # (--format: a folder's file counts as read)
            run.format = self.format.NAME
        self.buffer: list[tuple[int, str]] = []
        self.quiet, self.seen = 0, -1   # settles since the buffer last grew; its size then
        self.tried = False              # a decision on the first SNIFF_LINES decided nothing
        self.unbacked = -1              # buffer size whose lines the format read gave nothing
        self.settled = -1               # the lines read when the parser last settled
        self.chars = 0                  # characters of the lines buffered
        self.let_go = 0                 # lines let go from the buffer's start (a watch's)
        self.late = SNIFF_LINES         # the line the next window of _decide_late starts at
        self.held_at, self.held_events = -1, []    # Ingest.held's, and the lines read then

    def _parser_args(self, fmt=None) -> dict:
        """The options its format's (or `fmt`'s) parser takes (when the log was written, for
        stamps printed without a year)."""
        given = {"written": self.written} if self.written else {}
        return {k: v for k, v in given.items()
                if k in (fmt or self.format).DESCRIPTOR.parser_options}

    def feed(self, lines) -> int:
        """Parse some (number, text) lines; returns how many events reached the run.
        UnknownFormat once LATE_LINES lines (or LATE_CHARS) of no known format were buffered:
        the whole buffer decides up to GIVE_UP_LINES, a window of them after (_decide_late)
        (with `give_up`; else, a watch's, the oldest lines beyond those bounds are let go)."""
        if self.parser is None:
            start = len(self.buffer)
            self.buffer.extend(lines)
            self.chars += sum(len(text) for _, text in self.buffer[start:])
            if len(self.buffer) < SNIFF_LINES:
                return 0
            if not (len(self.buffer) <= GIVE_UP_LINES and self._decide() or self._decide_late()):
                if len(self.buffer) > GIVE_UP_LINES and (len(self.buffer) > LATE_LINES
                                                         or self.chars > LATE_CHARS):
                    if self.give_up:
                        raise unknown_format(self.name, [t for _, t in self.buffer])
                    self._let_go()
                return 0
            lines, self.buffer = self.buffer, []
        return self._parse(lines)

    def _let_go(self) -> None:
        """A watch's buffer of no known format kept within LATE_LINES and LATE_CHARS: its
        oldest lines let go (a read holds as many before it gives up: the lines a watch reads
        once the format is decided are those `summary` reads)."""
        cut = max(0, len(self.buffer) - LATE_LINES)
        chars = self.chars - sum(len(text) for _, text in self.buffer[:cut])
        while chars > LATE_CHARS and cut < len(self.buffer):
            chars -= len(self.buffer[cut][1])
            cut += 1
        del self.buffer[:cut]
        self.chars = chars
        self.let_go += cut

    def settle(self) -> int:
        """At a pause of a live input: decide the format on the lines so far, if they tell it
        from every other (else wait for more lines: a watch keeps the format it chose); once
        they have stayed as they are for QUIET_SETTLES pauses (a short log already written, or
        one that stopped), as a whole log's is decided."""
        if self.parser is not None:
            return self._settle_parser()
        if not self.buffer:
            return 0
        self.quiet = self.quiet + 1 if len(self.buffer) == self.seen else 0
        self.seen = len(self.buffer)
        clear = self.quiet < QUIET_SETTLES
        if not clear and self.unbacked == len(self.buffer):
            return 0                    # (read so, these lines gave nothing: wait for more)
        if not self._decide(clear=clear, backed=not clear):
            return 0
        lines, self.buffer = self.buffer, []
        return self._parse(lines)

    def _settle_parser(self) -> int:
        """At a pause of a live input: once it has stayed as it is for QUIET_SETTLES pauses,
        what the parser holds back for lines that may still come is given (its `settle`, where
        it has one: a metrics block the log ends in, the final dict waiting for a bar)."""
        settle = getattr(self.parser, "settle", None)
        self.quiet = self.quiet + 1 if self.run.lines == self.seen else 0
        self.seen = self.run.lines
        if settle is None or self.quiet < QUIET_SETTLES or self.settled == self.run.lines:
            return 0
        self.settled = self.run.lines           # (once a pause)
        events = settle()
        self.held_at = -1 if events else self.held_at
        for event in events:
            self.run.add(event, self.file)
        self.clock()
        return len(events)

    def held(self) -> list:
        """At a pause of HELD_QUIET polls, the events the parser holds back for lines that may
        still come (its `waiting_events`, where it has one: a dict waiting for its bar, a
        traceback still open), as the log's end would give them now; else none. For a live
        view: the run gets none."""
        held = getattr(self.parser, "waiting_events", None)
        if held is None or self.quiet < HELD_QUIET:
            return []
        if self.held_at != self.run.lines:
            self.held_at, self.held_events = self.run.lines, held()
        return self.held_events

    def feed_block(self, number: int, data: bytes, prepared=None) -> None:
        """Parse a block of whole lines (`Input.blocks`) whose first line is `number`.

        A format whose Parser has `feed_block` parses runs of like lines column-wise; it yields
        the other lines back as raw (number, bytes) lists (or as `Frames`, split ahead), which go
        through `feed` in order, and an int for lines (frames) it read that its Records do not
        count.
        `prepared`: the parser's `prepare_block(data)`, made ahead (see read_inputs).
        """
        while self.parser is None and data:  # detect on the first lines, one by one
            cut = _after_lines(data, SNIFF_LINES)
            self.feed(block_lines(data[:cut], number))
            number, data = number + data.count(b"\n", 0, cut), data[cut:]
        if not data:
            return
        fast = getattr(self.parser, "feed_block", None)
        if fast is None:
            self._parse(block_lines(data, number))
            return
        items = self.parser.emit_block(prepared, number, data) if prepared is not None else \
            fast(data, number)
        batch = Batch(self.run, self.file)
        for item in items:
            if isinstance(item, Frames):
                self._parse(item, batch)
            elif isinstance(item, list):
                out: list = []
                for n, raw in item:
                    frames(raw, n, out)
                self._parse(out, batch)
            elif isinstance(item, int):     # lines read that no Records counts
                self.run.lines += item
            else:
                self.run.lines += len(item) if isinstance(item, (Records, RecordRows)) else 0
                batch.add(item)
        batch.flush()
        self.clock()

    def _decide(self, clear: bool = False, backed: bool = False) -> bool:
        """Decide the format on the buffered lines: first on the first SNIFF_LINES, however
        many came at once (a watch reads lines in batches, `load` in blocks: alike), then, if
        that decided nothing, on all of them. `backed`: only a format that reads a record or a
        failure in them (a live log's start-up alone may score as another tool's: a watch
        paused at model loading locked a PaddleSeg run as PaddleDetection's, 0 records)."""
        window = self.buffer if self.tried or clear else self.buffer[:SNIFF_LINES]
        # (a pause's fewer lines that gave nothing read as the format they lead to are no try:
        # the window a whole log is decided on still decides once it is full)
        self.tried = self.tried or not clear and len(window) >= SNIFF_LINES
        fmt = formats.detect([text for _, text in window], clear)
        if fmt is not None and backed and not self._gives_something(fmt):
            self.unbacked = len(self.buffer)
            return False
        return fmt is not None and self._use(fmt)

    def _gives_something(self, fmt) -> bool:
        """Whether the lines buffered, read as `fmt`, give a record or a failure."""
        parser = fmt.Parser(**self._parser_args(fmt))
        events = [e for number, text in self.buffer for e in parser.feed(text, number) or ()]
        return any(isinstance(e, (Record, Records)) or isinstance(e, Marker)
                   and e.kind in (TRACEBACK, OOM, KILLED) for e in events + parser.finish())

    def _use(self, fmt) -> bool:
        """Read this input as `fmt` from now on (the buffered lines first)."""
        self.format = fmt
        self.parser = fmt.Parser(**self._parser_args())
        if not self.run.format:
            self.run.format = fmt.NAME
        return True

    def _decide_late(self) -> bool:
        """A log whose trainer's lines come late (a config dump, then thousands of a data
        loader's errors, then training): where the whole buffer decided nothing, a window of
        SNIFF_LINES lines decides, only where they are mostly one format's and no other's as
        much (`clear`). The windows follow one another from the input's start, each read once
        it is full: the same however the lines come in. Every line buffered is then parsed."""
        while self.late + SNIFF_LINES <= self.let_go + len(self.buffer):
            first, self.late = self.late - self.let_go, self.late + SNIFF_LINES
            window = self.buffer[first:first + SNIFF_LINES] if first >= 0 else []
            fmt = formats.detect([text for _, text in window], clear=True) if window else None
            if fmt is not None:
                return self._use(fmt)
        return False

    def _parse(self, lines, batch: Batch | None = None) -> int:
        """Feed lines to the parser; their events go to the run (through `batch`, if given)."""
        run, feed = self.run, self.parser.feed
        add = batch.add if batch is not None else lambda event: run.add(event, self.file)
        count = 0
        rejected = getattr(self.parser, "rejected", None)
        read = 0
        for number, text in lines:
            read += 1
            events = feed(text, number)
            if rejected:            # noted in line order, however the lines come in batches
                self._rejected()
            if events is None:
                run.note_unparsed(number, text, self.file)
            elif events:
                for event in events:
                    add(event)
                count += len(events)
        run.lines += read
        if rejected:
            self._rejected()
        self.clock()
        return count

    def _rejected(self) -> None:
        """Lines the parser took in but later found it could not use (a half dict, JSON text
        that is not): counted as unparsed."""
        rejected = getattr(self.parser, "rejected", None)
        while rejected:
            number, text = rejected.pop(0)
            self.run.note_unparsed(number, text, self.file)

    def finish(self, strict: bool = True) -> int:
        """End of input: decide the format on what there is, flush the parser."""
        count = 0
        if self.parser is None:
            if not self.buffer:
                return 0
            if not self._decide():
                if strict:
                    raise unknown_format(self.name, [t for _, t in self.buffer])
                return 0
            lines, self.buffer = self.buffer, []
            count = self._parse(lines)
        self.held_at = -1
        for event in self.parser.finish():
            self.run.add(event, self.file)
            count += 1
        self._rejected()
        self.clock()
        return count

    def clock(self) -> None:
        """Widen the run's clock to the first and last time stamps its parser read (a line
        that gave no record has a time stamp too)."""
        if self.parser is not None:
            self.run.saw_clock(getattr(self.parser, "first_time", None))
            self.run.saw_clock(getattr(self.parser, "time", None))


def unknown_format(name: str, lines: list[str]) -> UnknownFormat:
    """The error for lines no format claims: the known formats, the closest, first lines."""
    ranked = formats.scores(lines)
    closest = f"closest format: {ranked[0][1].NAME}, {ranked[0][0]:.0%} of lines" \
        if ranked and ranked[0][0] > 0 else "no known format is close"
    if ranked and ranked[0][0] > 0:
        found = _records_read_as(ranked[0][1], lines)
        if found:
            closest += (f": {found} in them, too few lines to tell the format by; "
                        f"--format {ranked[0][1].NAME} reads it so")
    first = " | ".join(t[:60] for t in lines[:2])
    # a crash before any record of a known format (an OOM at step 0): say which, where the
    # log ends in it (a launch that failed, then others that ran on, does not)
    error = next((t.strip() for t in reversed(lines[-ERROR_ENDS:]) if EXCEPTION.match(t.strip())), "")
    error = f"; it ends in an error: {error[:120]}" if error else ""
    return UnknownFormat(f"no training records recognised ({closest}); first lines: {first!r}"
                         + error,
                         "known formats: " + ", ".join(formats.names())
                         + "; see `logreport formats`, or pass --format", name)


def _records_read_as(fmt, lines: list[str]) -> str:
    """How many training or eval records a format's parser reads in some lines ('1 training
    record'), or ''."""
    from .events import TRAIN
    from .present import count

    parser, found = fmt.Parser(), []
    try:
        for number, text in enumerate(lines, 1):
            found += [e for e in parser.feed(text, number) or () if isinstance(e, Record)]
        found += [e for e in parser.finish() if isinstance(e, Record)]   # (one left waiting)
    except Exception:               # (the lines are no such log: what it reads is no matter)
        return ""
    train = sum(rec.phase == TRAIN for rec in found)
    return count(train, "training record") if train else \
        count(len(found), "evaluation record") if found else ""


def written_at(mtime: float | None) -> datetime | None:
    """When a log was last written (local time), from its modification time: some stamps
    have no year."""
    try:
        return None if mtime is None else datetime.fromtimestamp(mtime)
    except (OSError, ValueError, OverflowError):
        return None


def prepared_ahead(blocks, ingest: Ingest, depth: int = 2):
    """(number, data, prepared) of each block: once the format is known and its parser can
    prepare blocks apart from its state, the next blocks are prepared in worker threads
    (numpy and pyarrow work outside the GIL) while the current one is emitted."""
    pending: deque = deque()
    with ThreadPoolExecutor(max_workers=depth) as pool:
        for number, data in blocks:
            prepare = getattr(ingest.parser, "prepare_block", None)
            if (prepare is None or not getattr(ingest.parser, "prepare_in_threads", False)) \
                    and not pending:
                yield number, data, None
                continue
            pending.append((number, data, pool.submit(prepare, data)))
            if len(pending) > depth:
                number, data, future = pending.popleft()
                yield number, data, future.result()
        while pending:
            number, data, future = pending.popleft()
            yield number, data, future.result()


def _after_lines(data: bytes, n: int) -> int:
    """The offset just after the n-th line end of data (or its length)."""
    end = 0
    for _ in range(n):
        end = data.find(b"\n", end) + 1
        if not end:
            return len(data)
    return end
