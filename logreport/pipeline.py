"""Lines in, a Run out: detect the format once, feed the parser, append its events.

`load()` reads inputs to their end; `watch` feeds the same `Ingest` from a follower, so a
post-training report is a watch that has reached the end of the file.
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from . import formats
from .errors import InputError, UnknownFormat
from .events import Records
from .merge import Collected, merge_into
from .model import Run
from .sources import Input, block_lines, expand, folder_inputs, frames

SNIFF_LINES = 400       # lines buffered before the format must be decided


class Ingest:
    """Feeds the lines of one input into a Run (detecting the format on the first lines)."""

    def __init__(self, run: Run, name: str, fmt: str | None = None, year: int | None = None):
        self.run = run
        self.name = name
        self.year = year
        self.format = formats.get(fmt) if fmt else None
        self.parser = self.format.Parser(**self._parser_args()) if self.format else None
        self.buffer: list[tuple[int, str]] = []

    def _parser_args(self) -> dict:
        return {"year": self.year} if self.year and self.format.NAME == "ppdet" else {}

    def feed(self, lines) -> int:
        """Parse some (number, text) lines; returns how many events reached the run."""
        if self.parser is None:
            self.buffer.extend(lines)
            if len(self.buffer) < SNIFF_LINES:
                return 0
            if not self._decide():
                return 0
            lines, self.buffer = self.buffer, []
        return self._parse(lines)

    def settle(self) -> int:
        """At a pause of a live input: decide the format on the lines so far, if they tell."""
        if self.parser is not None or not self.buffer or not self._decide():
            return 0
        lines, self.buffer = self.buffer, []
        return self._parse(lines)

    def feed_block(self, number: int, data: bytes, prepared=None) -> None:
        """Parse a block of whole lines (`Input.blocks`) whose first line is `number`.

        A format whose Parser has `feed_block` parses runs of like lines column-wise; it yields
        the other lines back as raw (number, bytes) lists, which go through `feed` in order, and
        an int for lines (frames) it read that its Records do not count.
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
        items = self.parser.emit_block(prepared, number) if prepared is not None else \
            fast(data, number)
        for item in items:
            if isinstance(item, list):
                out: list = []
                for n, raw in item:
                    frames(raw, n, out)
                self._parse(out)
            elif isinstance(item, int):     # lines read that no Records counts
                self.run.lines += item
            else:
                self.run.lines += len(item) if isinstance(item, Records) else 0
                self.run.add(item)

    def _decide(self) -> bool:
        fmt = formats.detect([text for _, text in self.buffer])
        if fmt is None:
            return False
        self.format = fmt
        self.parser = fmt.Parser(**self._parser_args())
        if not self.run.format:
            self.run.format = fmt.NAME
        return True

    def _parse(self, lines) -> int:
        run, parser = self.run, self.parser
        count = 0
        for number, text in lines:
            run.lines += 1
            events = parser.feed(text, number)
            if events is None:
                run.note_unparsed(number, text)
            elif events:
                for event in events:
                    run.add(event)
                count += len(events)
        return count

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
        for event in self.parser.finish():
            self.run.add(event)
            count += 1
        return count


def unknown_format(name: str, lines: list[str]) -> UnknownFormat:
    """The error for lines no format claims: the known formats, the closest, first lines."""
    ranked = formats.scores(lines)
    closest = f"closest: {ranked[0][1].NAME} ({ranked[0][0]:.0%} of lines)" if ranked else ""
    first = " | ".join(t[:60] for t in lines[:2])
    return UnknownFormat(f"not a known log format ({closest}); first lines: {first!r}",
                         "known formats: " + ", ".join(formats.names())
                         + "; see `logreport formats`, or pass --format", name)


def year_of(path: str) -> int | None:
    """The year a log was written, from its modification time (ppdet stamps have no year)."""
    try:
        return datetime.fromtimestamp(os.path.getmtime(path)).year
    except (OSError, ValueError):
        return None


def load(path: str, fmt: str | None = None, progress=None, warn=None) -> Run:
    """Read a log file, folder, glob, '-' (stdin) or .gz file to its end.

    warn: called with the InputError of each file of a folder that cannot be read while
    others can (it is skipped); without it, that error is raised."""
    run = Run(path)
    for p in expand([path]):
        if p != "-" and os.path.isdir(p):
            read_folder(run, folder_inputs(p), fmt, warn)
        else:
            read_inputs(run, [Input(p)], fmt, progress=progress)
    return run


def read_inputs(run: Run, inputs: list[Input], fmt: str | None = None,
                strict: bool = True, progress=None) -> None:
    """Parse several inputs into one run; an unknown format is an error only if none parses.

    progress: called as progress(bytes_read_so_far, bytes_in_all) while reading, if given.
    """
    errors = []
    total = sum(inp.size() or 0 for inp in inputs)
    done = 0
    for inp in inputs:
        ingest = Ingest(run, inp.name, fmt, year_of(inp.path))
        try:
            for number, data, prepared in prepared_ahead(inp.blocks(), ingest):
                ingest.feed_block(number, data, prepared)
                done += len(data)
                if progress:
                    progress(done, total)
            ingest.finish()
            run.files.append(inp.name)
            if inp.cut:                     # lines whose ends were cut (bounded.MAX_LINE)
                run.info["lines_cut"] = run.info.get("lines_cut", 0) + inp.cut
        except UnknownFormat as e:
            errors.append(e)
    if errors and not run.files and strict:
        raise errors[0]


def prepared_ahead(blocks, ingest: Ingest, depth: int = 2):
    """(number, data, prepared) of each block: once the format is known and its parser can
    prepare blocks apart from its state (ppdet), the next blocks are prepared in worker threads
    (numpy and pyarrow work outside the GIL) while the current one is emitted."""
    pending: deque = deque()
    with ThreadPoolExecutor(max_workers=depth) as pool:
        for number, data in blocks:
            prepare = getattr(ingest.parser, "prepare_block", None)
            if prepare is None and not pending:
                yield number, data, None
                continue
            pending.append((number, data, pool.submit(prepare, data)))
            if len(pending) > depth:
                number, data, future = pending.popleft()
                yield number, data, future.result()
        while pending:
            number, data, future = pending.popleft()
            yield number, data, future.result()


def read_folder(run: Run, inputs: list[Input], fmt: str | None = None, warn=None) -> None:
    """An output folder: each file parsed alone, then merged so nothing is counted twice.

    Files come structured first (sources.FOLDER_FILES). A later file adds only what the earlier
    ones lack: records at a (phase, step) not seen yet, metrics missing from a record already
    seen, facts not known yet and marker kinds not seen yet. run.info["files_used"] says what
    each file gave; run.files lists those that gave something. A file that cannot be read
    (unreadable, binary) is skipped and told to `warn` (see `load`) when others gave something.
    """
    parts, errors = [], []
    for inp in inputs:
        part = Collected(inp.name)
        try:
            read_inputs(part, [inp], fmt, strict=False)
        except InputError as e:
            errors.append(e)
            continue
        parts.append(part)
    if errors and (warn is None or not any(part.files for part in parts)):
        raise errors[0]
    if not any(part.files for part in parts):
        read_inputs(run, inputs, fmt)       # raises the right error
        return
    for error in errors:
        warn(error)
    merge_into(run, parts)


def _after_lines(data: bytes, n: int) -> int:
    """The offset just after the n-th line end of data (or its length)."""
    end = 0
    for _ in range(n):
        end = data.find(b"\n", end) + 1
        if not end:
            return len(data)
    return end
