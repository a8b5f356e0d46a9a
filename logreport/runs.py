"""Which runs the paths a user gives name: a file is one run, a folder one run when it is one
run's output (its files, in the order they are read), else one run per log below it."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from . import formats, sources
from .errors import InputError, UsageError
from .eventsource import event_inputs, file_input, folder_events, format_of
from .sources import Input

LOG_SUFFIXES = (".log", ".txt", ".out", ".log.gz", ".txt.gz", ".out.gz")   # what a console log is called
MAYBE_LOG = re.compile(r"[^.]+|.+\.(?:log|txt|out)\.\d[\d_.-]*")  # no extension; a rotated log


def expand(paths: list[str]) -> list[str]:
    """Expand globs (local or in a URL); keep '-' and plain paths; refuse what does not
    exist."""
    out: list[str] = []
    for p in map(sources.given, paths):
        if sources.exists(p):
            out.append(p)
        elif sources.broken_link(p):
            raise InputError("a symbolic link that leads nowhere (a loop, or its target is "
                             "missing)", "check where it points: ls -l", p)
        elif sources.has_magic(p):
            found = sources.glob(p)
            if not found:
                raise InputError("no file matches this pattern", "check the glob", p)
            out.extend(found)
        else:
            raise UsageError("no such file or folder", "check the path", p)
    return out


@dataclass
class RunSource:
    """What one run is read from: one log (`inputs` of one), or the files of a folder that is
    one run's output (`folder`: merged into one run). `listed`: found by walking a folder or
    a glob the user gave, rather than named one by one."""

    name: str
    inputs: list[Input]
    folder: bool = False
    listed: bool = False


def is_run_folder(names: list[str]) -> bool:
    """Whether a folder holding these file names is the output of one run (a format's
    descriptor names its files: an LLaMA-Factory / HF output folder, a
    `paddle.distributed.launch` log folder)."""
    return any(formats.marks_run_folder(n) for n in names)


def discover(paths: list[str], seen: set[str] | None = None,
             unread: list[str] | None = None) -> tuple[list[RunSource], list[str]]:
    """The runs named by command-line paths, and notes for the user (one line each). `seen`:
    the runs earlier calls found (a run is read once however many paths name it); `unread`
    gets the files found that may be logs but are not named like one (see folder_runs).

    A file is one run, whatever it is called (a glob, quoted or not, names one run per file).
    A folder is one run only when it is one run's output (`is_run_folder`); any other folder
    holds one run per log, sub-folders included."""
    runs: list[RunSource] = []
    notes: list[str] = []
    for given in paths:
        listed = not sources.exists(sources.given(given))
        for path in expand([given]):
            if not sources.isdir(path):
                runs.append(RunSource(path, [file_input(path) or Input(path)], listed=listed))
                continue
            maybe: list[str] = []
            found = folder_runs(path, maybe)
            if len(found) == 1 and found[0].folder:
                found[0].listed = listed
            elif len(found) > 1:
                notes.append(f"{path}: {len(found)} logs of separate runs, one run each "
                             "(give a file to read one)")
            if maybe:
                notes.append(f"{path}: not read, not named like a log (*.log, *.txt, *.out): "
                             f"{some(maybe)}; give such a file to read it")
            if unread is not None:
                unread += maybe
            runs += found
    return _once(runs, notes, set() if seen is None else seen), notes


def _once(runs: list[RunSource], notes: list[str], seen: set[str]) -> list[RunSource]:
    """Each run once, where paths name it twice (a file and a folder holding it, a file given
    twice): a second copy would double its rows in one export; said in `notes`."""
    out: list[RunSource] = []
    for run in runs:
        key = run.name if sources.is_url(run.name) else os.path.realpath(run.name)
        if key in seen:
            notes.append(f"{run.name}: named twice, read once")
            continue
        seen.add(key)
        out.append(run)
    return out


def folder_runs(folder: str, unread: list[str] | None = None) -> list[RunSource]:
    """The runs of a folder: one when it is one run's output, else one per log below it. A
    launch folder (Paddle's `log/`) is its ranks' run (with the launcher's own files), and
    each other log in it one more (other launches write there too). `unread` gets the paths
    of files below it that may be logs but are not named like one (no extension, a rotated
    `run.log.1`): they are not read, and the user is told."""
    entries = sources.listing(folder)
    if is_run_folder(list(entries)):
        run = RunSource(folder, folder_inputs(folder, entries), folder=True)
        launcher = formats.launcher_files(_run_files(entries))
        others = [n for n in _consoles(entries) if launcher and not launcher.fullmatch(n)]
        return [run] + [RunSource(sources.join(folder, n), [Input(sources.join(folder, n))],
                                  listed=True) for n in others]
    out: list[RunSource] = [RunSource(folder, [events], listed=True)     # its event files
                            for events in folder_events(folder, entries)]
    maybe: list[str] = []
    for name, kind in entries.items():
        if name.startswith(".") or name == "__pycache__":
            continue
        path = sources.join(folder, name)
        if kind == "dir":
            try:
                out += folder_runs(path, unread)
            except InputError:
                continue                        # a sub-folder without logs
        elif _console(name, kind):
            out.append(RunSource(path, [Input(path)], listed=True))
        elif kind == "file" and MAYBE_LOG.fullmatch(name):
            maybe.append(path)
    if unread is not None:
        unread += maybe
    if not out:
        raise InputError("no log files in this folder",
                         f"not named like a log: {some(maybe)}; give the file itself" if maybe
                         else "give a log file, or a folder with *.log or trainer_log.jsonl",
                         folder)
    return out


def some(paths: list[str]) -> str:
    """A few paths of a list, and how many more."""
    more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
    return ", ".join(paths[:3]) + more


def folder_inputs(folder: str, entries: dict[str, str] | None = None) -> list:
    """Which files of one run's output folder to read: structured files first, then console
    logs (in a launch folder, only the launcher's: see folder_runs), then the event files in
    it or below it (eventsource.EventInput: they add only what the others lack). entries: its
    `sources.listing`, if known."""
    entries = sources.listing(folder) if entries is None else entries
    chosen = _run_files(entries)
    launcher = formats.launcher_files(chosen)
    chosen += [n for n in _consoles(entries) if launcher is None or launcher.fullmatch(n)]
    events = event_inputs(folder)
    if not chosen and not events:
        raise InputError("no log files in this folder",
                         "give a log file, or a folder with *.log, trainer_log.jsonl or "
                         "TensorBoard / VisualDL event files", folder)
    return [Input(sources.join(folder, n)) for n in chosen] + events


def _run_files(entries: dict[str, str]) -> list[str]:
    """The files that make a folder one run's output, in the order they are read."""
    ranked = ((formats.run_file_rank(n), n) for n, kind in entries.items() if kind == "file")
    return [n for rank, n in sorted((r, n) for r, n in ranked if r is not None)]


def _consoles(entries: dict[str, str]) -> list[str]:
    """The console logs among a folder's entries."""
    return [n for n, kind in entries.items() if _console(n, kind)]


def _console(name: str, kind: str) -> bool:
    """Whether a folder entry is a console log: a file named like a log, of no known format's
    own file name, not hidden, not a run file."""
    return kind == "file" and not name.startswith(".") and name.endswith(LOG_SUFFIXES) \
        and not format_of(name) and formats.run_file_rank(name) is None
