"""Lines in, a Run out: detect the format once, feed the parser, append its events.

`load()` reads inputs to their end; `watch` feeds the same `Ingest` from a follower, so a
post-training report is a watch that has reached the end of the file.
"""
from __future__ import annotations

import os
from datetime import datetime

from . import formats
from .errors import UnknownFormat
from .model import Run
from .sources import Input, expand, inputs_for

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
            if events:
                for event in events:
                    run.add(event)
                count += len(events)
            else:
                run.note_unparsed(number, text)
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


def load(path: str, fmt: str | None = None) -> Run:
    """Read a log file, folder, glob, '-' (stdin) or .gz file to its end."""
    run = Run(path)
    inputs = [i for p in expand([path]) for i in inputs_for(p)]
    read_inputs(run, inputs, fmt)
    return run


def read_inputs(run: Run, inputs: list[Input], fmt: str | None = None) -> None:
    """Parse several inputs into one run; an unknown format is an error only if none parses."""
    errors = []
    for inp in inputs:
        ingest = Ingest(run, inp.name, fmt, year_of(inp.path))
        try:
            for chunk in _chunks(inp.lines()):
                ingest.feed(chunk)
            ingest.finish()
            run.files.append(inp.name)
        except UnknownFormat as e:
            errors.append(e)
    if errors and not run.files:
        raise errors[0]


def _chunks(lines, size: int = 4096):
    chunk = []
    for item in lines:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
