"""One reader for every command: a run's inputs read into a Run.

`report`, `summary` and the rest read a run to its end (`load`, `load_all`); `watch` reads
what the inputs hold (`Reader.backlog`, in blocks: the formats' fast paths) and then follows
what is appended (`Reader.poll`). A run's output folder is read file by file, each into its
own part, and merged (`Reader.run`).
"""
from __future__ import annotations

import copy
import gc
from contextlib import contextmanager

from . import formats, ranges
from .errors import InputError, LogreportError, NoRecords, UnknownFormat, UsageError
from .events import EVAL, FINAL, KILLED, OOM, TRACEBACK, TRAIN, Marker
from .eventsource import EventInput
from .merge import LEFT_OUT, Collected, merge_into
from .model import Run
from .pipeline import SNIFF_LINES, Ingest, prepared_ahead, written_at
from .runs import RunSource, discover, folder_inputs
from .sources import basename, block_lines, isfile, join, stat, streams_backlog
from .sources import follower as text_follower
from .sources.follow import Follower

WORKERLOG_PREFIX = "workerlog."        # paddle.distributed.launch writes one per rank
CATCH_UP = 1 << 20      # bytes appended since the last poll that are read in blocks (fast path)


class Reader:
    """One run's inputs read into a Run: `backlog` (what they hold now), then `poll` while
    they grow (`live`), then `finish`; `run()` is the Run so far."""

    def __init__(self, source: RunSource, fmt: str | None = None, live: bool = False,
                 from_end: bool = False, every: float | None = None):
        self.source = source
        self.fmt = fmt
        self.live = live
        self.from_end = from_end
        self.every = every                            # seconds between looks at a URL
        self.single = Run(source.name, fmt or "")     # the run of a one-input source
        self.parts: dict[str, Collected] = {}         # an output folder: each file alone
        self.ingests: dict[str, Ingest] = {}
        self.followers: dict[str, object] = {}        # path -> sources.follower, EventFollower
        self.errors: list[UnknownFormat] = []
        self.said: list[str] = []                     # restarts, skipped files: for the user
        self.failed: dict[str, tuple | None] = {}     # path -> its sources.stat at its failure
        self.unreadable: list[InputError] = []        # a folder's files that could not be read
        self.cut: dict[str, int] = {}                 # path -> lines cut at MAX_LINE by blocks

    # --- reading ------------------------------------------------------------------------
    def inputs(self) -> list:
        """The run's inputs: an output folder that is followed may gain files."""
        if not (self.source.folder and self.live):
            return list(self.source.inputs)
        try:
            return folder_inputs(self.source.name)
        except InputError:
            return []

    def backlog(self, progress=None) -> int:
        """Read what every input holds now, in blocks (followed inputs: up to their last
        complete line, where following goes on); returns the lines read.

        progress: called as progress(bytes_read_so_far, bytes_in_all), if given."""
        inputs = self.inputs()
        if self.from_end or (self.live and any(streams_backlog(i.path) for i in inputs)):
            for inp in inputs:
                self._follower(inp)
            return 0
        total = sum(inp.size() or 0 for inp in inputs)
        done = lines = 0
        for inp in inputs:
            sink = self._sink(inp)
            before = sink.lines
            if isinstance(inp, EventInput):
                self._take_events(inp, self._follower(inp).poll())
                continue
            if self.live and not isfile(inp.path):
                continue            # not there yet, or no regular file: the follower says
            ingest = self._ingest(inp)
            number = 1
            try:
                with _rare_collections():
                    for number, data, prepared in ranges.blocks(
                            inp, ingest, limit=(inp.size() or 0) if self.live else None):
                        ingest.feed_block(number, data, prepared)
                        number += data.count(b"\n")
                        done += len(data)
                        if progress:
                            progress(done, total)
            except UnknownFormat as e:
                self.errors.append(e)
                continue
            except InputError as e:     # unreadable or binary: a folder's other files go on
                if not self.source.folder:
                    raise
                self.unreadable.append(e)
                self.ingests.pop(inp.path)
                self.parts.pop(inp.path, None)
                self.failed[inp.path] = None
                continue
            self.cut[inp.path] = inp.cut
            self._count_cut(inp)
            if self.live and inp.offset:
                self._follower(inp).skip(inp.offset, number)
            sink.saw_modified(inp.mtime())
            lines += sink.lines - before
        return lines

    def poll(self) -> tuple[int, int]:
        """Read what was appended since: (lines read, events that reached the run). A file of
        a followed folder that cannot be read (unreadable, binary) is skipped and said once;
        one that could not be opened is tried again once it changes (chmod, replaced)."""
        lines = events = 0
        for inp in self.inputs():
            if inp.path in self.failed and self.failed[inp.path] in (None, _state(inp.path)):
                continue
            follower = self._follower(inp)
            try:
                point = follower.resume_point() if isinstance(follower, Follower) else None
                if point is not None and point[2] > CATCH_UP:
                    caught = self._catch_up(inp, follower, point)
                    lines, events = lines + caught, events + caught
                items = follower.poll()
            except InputError as e:
                if not self.source.folder:
                    raise
                self.followers.pop(inp.path).close()
                if inp.path not in self.failed:
                    self.said.append(f"logreport: warning: {e.one_line()}; skipped")
                opened = getattr(follower, "opened", True)
                self.failed[inp.path] = None if opened else _state(inp.path)
                continue
            said = getattr(follower, "said", None)     # a connection lost, made again
            if said:
                self.said += said
                said.clear()
            self._count_cut(inp)
            if not items:
                continue
            lines += len(items)
            events += self._take_events(inp, items) if isinstance(inp, EventInput) \
                else self._feed(inp, items)
        for ingest in self.ingests.values():        # what was there is read: decide the format
            events += ingest.settle()
        return lines, events

    def finish(self, strict: bool = True) -> None:
        """The end of the inputs: their last lines (a followed file's unfinished one), the
        parsers flushed, a followed file's last modification. strict: a run none of whose
        inputs is of a known format raises."""
        for inp in self.inputs():
            follower = self.followers.get(inp.path)
            items = follower.flush() if follower is not None else []
            if items:
                if isinstance(inp, EventInput):
                    self._take_events(inp, items)
                else:
                    self._feed(inp, items)
            if follower is not None and inp.path in self.ingests:
                self._sink_of(inp.path).saw_modified(inp.mtime())
        for path, ingest in self.ingests.items():
            try:
                ingest.finish(strict=True)
            except UnknownFormat as e:
                self.errors.append(e)
                continue
            files = self._sink_of(path).files
            if ingest.name not in files:
                files.append(ingest.name)
        if strict and self.errors and not self.known():
            raise self.errors[0]

    def close(self) -> None:
        for follower in self.followers.values():
            follower.close()

    def run(self) -> Run:
        """The run so far: a one-input source's Run, or an output folder's files merged."""
        if not self.source.folder:
            return self.single
        run = Run(self.source.name, self.fmt or "")
        parts = []
        for inp in self.inputs():           # (in the order the folder's files are read)
            part = self.parts.get(inp.path)
            if part is not None:
                part = copy.copy(part)
                part.files = [inp.path] if part.format else []
                parts.append(part)
        merge_into(run, parts)
        ranks = [p for p in self.parts if basename(p).startswith(WORKERLOG_PREFIX)]
        if len(ranks) > 1:                  # a launch folder: one log per card
            run.info.setdefault("world_size", len(ranks))
        return run

    def held(self) -> tuple[int, list]:
        """(input, events) that a paused log's parser holds back (Ingest.held); a folder's
        files are merged anew into each run: none."""
        if self.source.folder or len(self.ingests) != 1:
            return 0, []
        ingest = next(iter(self.ingests.values()))
        return ingest.file, ingest.held()

    def undecided(self) -> list[tuple[str, Ingest]]:
        """Inputs whose lines no format has claimed after SNIFF_LINES of them."""
        return [(path, ingest) for path, ingest in self.ingests.items()
                if ingest.parser is None and len(ingest.buffer) >= SNIFF_LINES]

    def opened(self) -> bool:
        """Whether every input followed was opened (a file that came, a login that worked)."""
        return bool(self.followers) and all(getattr(follower, "opened", True)
                                            for follower in self.followers.values())

    # --- internals ----------------------------------------------------------------------
    def known(self) -> bool:
        """Whether some input is of a known format."""
        return bool(self.single.format or any(p.format for p in self.parts.values()))

    def _sink(self, inp):
        """Where an input's events go: its part of a folder, or the run."""
        if not self.source.folder:
            return self.single
        part = self.parts.get(inp.path)
        if part is None:
            part = self.parts[inp.path] = Collected(inp.name)
        return part

    def _sink_of(self, path: str):
        return self.parts[path] if self.source.folder else self.single

    def _follower(self, inp):
        follower = self.followers.get(inp.path)
        if follower is None:
            texts = any(not isinstance(i, EventInput) for i in self.inputs())
            follower = self.followers[inp.path] = (
                inp.follower(self.from_end, required=not (self.source.folder and texts))
                if isinstance(inp, EventInput) else text_follower(inp.path, self.from_end, self.every))
        return follower

    def _ingest(self, inp, old: Ingest | None = None) -> Ingest:
        ingest = self.ingests.get(inp.path)
        if ingest is None or old is not None:
            fmt = self.fmt or (old.format.NAME if old is not None and old.format else None)
            ingest = self.ingests[inp.path] = Ingest(self._sink(inp), inp.name, fmt,
                                                     written_at(inp.mtime()), give_up=not self.live)
            if self.live and not self.source.folder and inp.name not in self.single.files:
                self.single.files.append(inp.name)        # followed: named from the start
        return ingest

    def _catch_up(self, inp, follower: Follower, point: tuple[int, int, int]) -> int:
        """A big append read in blocks (the format's fast path), as the backlog is; the
        follower goes on after its last complete line. Returns the lines read."""
        ingest = self._ingest(inp)
        start, number, size = point
        before = ingest.run.lines
        blocks = inp.complete_blocks(size, start=start, number=number)
        for number, data, prepared in prepared_ahead(blocks, ingest):
            ingest.feed_block(number, data, prepared)
            number += data.count(b"\n")
        if inp.offset > start:
            self.cut[inp.path] = self.cut.get(inp.path, 0) + inp.cut
            follower.skip(inp.offset, number)
        return ingest.run.lines - before

    def _count_cut(self, inp) -> None:
        """Lines whose ends were cut at MAX_LINE (by the blocks read and by the follower), as
        the run's fact `lines_cut`."""
        follower = self.followers.get(inp.path)
        splitter = getattr(follower, "splitter", None)
        cut = self.cut.get(inp.path, 0) + (splitter.clipper.cut if splitter is not None else 0)
        if cut:
            self._sink(inp).info["lines_cut"] = cut

    def _take_events(self, inp: EventInput, events: list) -> int:
        """Events of an event file, straight into its sink."""
        sink = self._sink(inp)
        follower = self.followers[inp.path]
        for event in events:
            sink.add(event)
        sink.lines += follower.records - getattr(follower, "counted", 0)
        follower.counted = follower.records
        sink.format = sink.format or follower.format
        if inp.name not in sink.files:
            sink.files.append(inp.name)
        sink.saw_modified(inp.mtime())
        return len(events)

    def _feed(self, inp, items: list) -> int:
        """Lines of a text input, with the follower's restart markers between them."""
        ingest = self._ingest(inp)
        lines: list = []
        events = 0
        for item in items:
            if not isinstance(item, Marker):
                lines.append(item)
            elif self.source.folder and inp.path.endswith(".json"):
                self.parts.pop(inp.path, None)      # a JSON document rewritten: read it anew
                ingest = self._ingest(inp, ingest)
                lines = []
            else:                                   # the log started over: a new segment
                events += ingest.feed(lines) + ingest.finish(strict=False)
                lines = []
                ingest.run.add(item)
                self.said.append(f"{inp.name}: {item.detail}: starting a new segment")
                ingest = self._ingest(inp, ingest)
                events += 1
        return events + ingest.feed(lines)


@contextmanager
def _rare_collections():
    """Python's cycle collector run after every 10,000 new containers, not 700, while blocks
    are read (by workers forked here too): a block's prepared stretches are thousands of
    containers, none of them garbage in a cycle, and collecting every 700 took 3-5% of reading
    a console that evaluates every few steps."""
    threshold = gc.get_threshold()
    gc.set_threshold(10_000, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


# --- reading runs to their end ----------------------------------------------------------
def read_source(source: RunSource, fmt: str | None = None, progress=None, warn=None) -> Run:
    """One run read to its end. A file of an output folder that cannot be read (unreadable,
    binary) is told to `warn` when the others gave something; else its error is raised. A log
    whose format, decided on its first lines, gave nothing is read again in the format its
    whole text is in, if that is another (a job's set-up lines first)."""
    run = _read_source(source, fmt, progress, warn)
    if fmt is None and not _gave(run):
        other = _format_of_whole(source)
        if other and other != run.format:
            again = _read_source(source, other, progress, warn)
            if _gave(again):
                return again
    return run


def _gave(run: Run) -> bool:
    return any(run.count(phase) for phase in (TRAIN, EVAL, FINAL))


WHOLE_SNIFF = 1 << 25           # bytes of a log that gave nothing read again to tell its format


def _format_of_whole(source: RunSource) -> str | None:
    """The format the text of a one-file run is in, read whole (up to WHOLE_SNIFF bytes)."""
    if source.folder or len(source.inputs) != 1 or source.inputs[0].path == "-":
        return None
    try:
        with source.inputs[0].open() as stream:
            data = stream.read(WHOLE_SNIFF)
    except OSError:
        return None
    found = formats.detect([text for _, text in block_lines(data, 1)])
    return found.NAME if found else None


def _read_source(source: RunSource, fmt: str | None, progress, warn) -> Run:
    reader = Reader(source, fmt)
    reader.backlog(progress)
    reader.finish(strict=True)
    if reader.unreadable:
        if warn is None or not reader.known():
            raise reader.unreadable[0]
        for error in reader.unreadable:
            warn(error)
    return reader.run()


def load(path: str, fmt: str | None = None, progress=None) -> Run:
    """Read one run to its end: a log file, '-' (stdin), a .gz file, or one run's output
    folder. A path that holds several runs (a folder of logs, a glob) is refused: see
    `load_all`."""
    sources, _ = discover([path])
    if len(sources) != 1:
        raise UsageError(f"{len(sources)} runs here, one per log", "read them with load_all",
                         path)
    return read_source(sources[0], fmt, progress)


def load_all(paths: list[str], fmt: str | None = None, progress=None,
             notes: list[str] | None = None, seen: set[str] | None = None) -> list[Run]:
    """Every run the paths name (see `runs.discover`), each read to its end and checked
    (`readable`). A log the user named that gives nothing is an error; one found by walking a
    folder or a glob is skipped and said in `notes` (lines for the user), as is one that cannot
    be read, or a file of an output folder that cannot be read while the others can. `seen`:
    runs read by earlier calls, not read again (see `runs.discover`)."""
    sources, said = discover(paths, seen)
    notes = notes if notes is not None else []
    notes += said

    def warn(error: LogreportError) -> None:
        notes.append(f"warning: {error.one_line()}; skipped")

    runs: list[Run] = []
    skipped: list[tuple[str, LogreportError]] = []
    unreadable: list[InputError] = []
    for source in sources:
        try:
            runs.append(readable(read_source(source, fmt, progress, warn)))
            notes += mostly_unread(runs[-1]) + left_out(runs[-1])
        except (UnknownFormat, NoRecords) as e:
            if not source.listed:
                raise
            skipped.append((source.name, e))
        except InputError as e:             # found by walking, and unreadable or binary
            if not source.listed:
                raise
            unreadable.append(e)
    if unreadable and not runs and not skipped:
        raise unreadable[0]
    for error in unreadable:
        warn(error)
    if skipped and runs:
        names = ", ".join(basename(name) for name, _ in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        notes.append(f"skipped {len(skipped)} file{'s' if len(skipped) > 1 else ''} with no "
                     f"training records: {names}{more}")
    elif skipped:
        raise skipped[0][1]
    return runs


def _state(path: str) -> tuple:
    """What changes when a file is chmod-ed or replaced (never None)."""
    st = stat(path)
    return () if st is None else (st.inode, st.ctime_ns, st.size)


MOSTLY_UNREAD = 20     # lines not understood, at least, and more than half: said


def mostly_unread(run: Run) -> list[str]:
    """A warning for a run most of whose lines no parser understood (a file that is no log
    of its format, such as a text quoting a few of its lines): its figures come from a few."""
    if run.unparsed < MOSTLY_UNREAD or 2 * run.unparsed <= run.lines:
        return []
    return [f"warning: {run.source}: {run.unparsed} of {run.lines} lines not understood as "
            f"{run.format} output, the figures come from the rest (`summary --show-unparsed` "
            "shows them; --format reads it as another)"]


def left_out(run: Run) -> list[str]:
    """A line for each file of an output folder left out as another run's (merge_into)."""
    return [f"{join(run.source, name)}: {what}; give it alone to read it"
            for name, what in run.info.get("files_used", {}).items() if what.startswith(LEFT_OUT)]


def not_empty(run: Run) -> Run:
    """The run, unless it read no line (none but blank ones): InputError."""
    if run.lines == 0:
        raise InputError("the log is empty", "give a log that has training output", run.source)
    return run


def readable(run: Run) -> Run:
    """The run, if it gave something to show: a record of any phase, a failure (a log that
    ended before training), or a training bar's count (a training begun that logged no record
    yet). Else NoRecords: an unread log never passes."""
    not_empty(run)
    if any(run.count(phase) for phase in (TRAIN, EVAL, FINAL)) \
            or any(m.kind in (TRACEBACK, OOM, KILLED) for m in run.markers) \
            or run.info.get("bar_step"):
        return run
    closest = f"read as {run.format}" if run.format else "no known format"
    raise NoRecords(f"no training records recognised ({closest}, {run.lines} lines)",
                    "see `logreport formats` for what logreport reads, or pass --format",
                    run.source)

