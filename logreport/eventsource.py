"""Event files (TensorBoard, VisualDL) as inputs: where they are, which of them form one run,
reading a run's files into a Run, and following them while they are written.

Runs as TensorBoard and VisualDL group them: each folder that holds event files directly is
one run, its files read in the order they were created (the time in their names). A file is
recognised by its name; the format module reads it (formats.tfevents, formats.visualdl).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import sources
from .errors import InputError, MissingExtra
from .events import Info
from .formats import tfevents, visualdl

FORMATS = (tfevents, visualdl)
DEPTH = 4                    # folder levels below a folder searched for event files
_STAMP = re.compile(r"\.(\d{9,})\.")


def format_of(name: str):
    """The event-file format of a file name, or None."""
    base = sources.basename(name)
    return next((fmt for fmt in FORMATS if fmt.is_file(base)), None)


def _created(name: str) -> tuple:
    """Sort key: the creation time writers put in event file names, then the name."""
    m = _STAMP.search(name)
    return int(m.group(1)) if m else 0, name


@dataclass
class EventInput:
    """One run's event files of one format: a folder holding them, or a single file."""

    path: str
    format: object

    @property
    def name(self) -> str:
        return self.path

    def files(self) -> list[str]:
        """The run's event files, oldest first."""
        if not sources.isdir(self.path):
            return [self.path] if sources.exists(self.path) else []
        try:
            entries = sources.listing(self.path)
        except InputError:
            return []
        return [sources.join(self.path, n) for n in sorted(entries, key=_created)
                if self.format.is_file(n) and entries[n] == "file"]

    def stats(self) -> list:
        """The `sources.Stat` of each of its files there now."""
        return [st for f in self.files() if (st := sources.stat(f)) is not None]

    def size(self) -> int:
        """Bytes of its files (as `sources.Input.size`)."""
        return sum(st.size for st in self.stats())

    def mtime(self) -> float | None:
        """When its newest file was last modified (as `sources.Input.mtime`)."""
        return max((st.mtime for st in self.stats()), default=None)

    def follower(self, from_end: bool = False, required: bool = True) -> EventFollower:
        if sources.is_url(self.path):       # the projects' readers open local files
            raise InputError("event files are read from this machine's disk",
                             "copy them here first (e.g. aws s3 sync, rsync)", self.path)
        return EventFollower(self, from_end, required)

    def read_into(self, run, required: bool = True) -> None:
        """Read the run's records to their end into run (a Run, or a folder's Collected part);
        `required`: see EventFollower."""
        follower = self.follower(required=required)
        for event in follower.poll() + follower.flush():
            run.add(event)
        run.lines += follower.records
        run.format = run.format or self.format.NAME
        run.files.append(self.name)
        run.saw_modified(self.mtime())


class EventFollower:
    """Follows one run's event files; a file the run gains later is taken up when it appears.

    Without the format's optional extra: an error when `required`, else a fact that says so,
    once (a folder whose text logs can still be read)."""

    def __init__(self, source: EventInput, from_end: bool = False, required: bool = True):
        self.source = source
        self.path = source.path
        self.format = source.format.NAME
        self.readers: dict = {}
        self.skip_backlog = from_end
        self.required = required
        self.missing: MissingExtra | None = None

    @property
    def records(self) -> int:
        return sum(reader.records for reader in self.readers.values())

    def poll(self, limit: int | None = None) -> list:
        """Events of the records written since the last call (with from_end, the first call
        reads what is there and gives nothing). `limit` is for the text followers' sake."""
        out: list = []
        if self.missing is not None:
            return out
        for path in self.source.files():
            reader = self.readers.get(path)
            if reader is None:
                try:
                    reader = self.readers[path] = self.source.format.Reader(path)
                except MissingExtra as e:
                    if self.required:
                        raise
                    self.missing = e
                    return [Info({"unread_event_files": f"{self.path}: {e.message} ({e.hint})"})]
            out.extend(reader.poll())
        if self.skip_backlog:
            self.skip_backlog = False
            return []
        return out

    def flush(self) -> list:
        """The end of watching (or reading): what each file still holds back."""
        return [event for reader in self.readers.values() for event in reader.finish()]

    def close(self) -> None:
        """Nothing stays open between polls."""


def file_input(path: str) -> EventInput | None:
    """An event file given by its path, as a run of its own."""
    fmt = format_of(path)
    return EventInput(path, fmt) if fmt is not None and not sources.isdir(path) else None


def folder_events(folder: str, entries: dict[str, str]) -> list[EventInput]:
    """The runs of event files directly in a folder whose `sources.listing` is `entries` (one
    per format; a folder holds one run, as TensorBoard and VisualDL see it)."""
    return [EventInput(folder, fmt) for fmt in FORMATS
            if any(fmt.is_file(n) and kind == "file" for n, kind in entries.items())]


def event_inputs(folder: str) -> list[EventInput]:
    """The runs of event files in a folder and its subfolders (DEPTH levels; hidden ones
    skipped), oldest first: those of one run's output folder (its `runs/`, `vdl_log_dir/`)."""
    found = []
    top = folder.rstrip("/").count("/")
    for root, dirs, names in sources.walk(folder):
        if root.rstrip("/").count("/") - top >= DEPTH:
            dirs.clear()
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for source in folder_events(root, dict.fromkeys(names, "file")):
            first = min((n for n in names if source.format.is_file(n)), key=_created)
            found.append((_created(first), source))
    found.sort(key=lambda pair: pair[0])
    return [source for _, source in found]
