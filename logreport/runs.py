"""Which runs the paths a user gives name: a file is one run, a folder one run when it is one
run's output (its files, in the order they are read), else one run per log below it."""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass

from . import formats
from .errors import InputError, UsageError
from .eventsource import event_inputs, file_input, folder_events, format_of
from .sources import Input

LOG_SUFFIXES = (".log", ".txt", ".out", ".log.gz", ".txt.gz")   # what a console log is called


def expand(paths: list[str]) -> list[str]:
    """Expand globs; keep '-' and plain paths; refuse what does not exist."""
    out: list[str] = []
    for p in paths:
        if p == "-" or os.path.exists(p):
            out.append(p)
        elif os.path.islink(p):
            raise InputError("a symbolic link that leads nowhere (a loop, or its target is "
                             "missing)", "check where it points: ls -l", p)
        elif glob.has_magic(p):
            found = sorted(glob.glob(p))
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
    return any(formats.run_file_rank(n) is not None for n in names)


def discover(paths: list[str]) -> tuple[list[RunSource], list[str]]:
    """The runs named by command-line paths, and notes for the user (one line each).

    A file is one run, whatever it is called (a glob, quoted or not, names one run per file).
    A folder is one run only when it is one run's output (`is_run_folder`); any other folder
    holds one run per log, sub-folders included."""
    runs: list[RunSource] = []
    notes: list[str] = []
    for given in paths:
        listed = given != "-" and not os.path.exists(given)
        for path in expand([given]):
            if path == "-" or not os.path.isdir(path):
                runs.append(RunSource(path, [file_input(path) or Input(path)], listed=listed))
                continue
            found = folder_runs(path)
            if len(found) == 1 and found[0].folder:
                found[0].listed = listed
            else:
                notes.append(f"{path}: {len(found)} logs of separate runs, one run each "
                             "(give a file to read one)")
            runs += found
    return runs, notes


def folder_runs(folder: str) -> list[RunSource]:
    """The runs of a folder: one when it is one run's output, else one per log below it."""
    names = _listdir(folder)
    if is_run_folder(names):
        return [RunSource(folder, folder_inputs(folder, names), folder=True)]
    out: list[RunSource] = [RunSource(folder, [events], listed=True)     # its event files
                            for events in folder_events(folder, names)]
    for name in names:
        if name.startswith(".") or name == "__pycache__":
            continue
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            try:
                out += folder_runs(path)
            except InputError:
                continue                        # a sub-folder without logs
        elif name.endswith(LOG_SUFFIXES) and not format_of(name) and os.path.isfile(path):
            out.append(RunSource(path, [Input(path)], listed=True))
    if not out:
        raise InputError("no log files in this folder",
                         "give a log file, or a folder with *.log or trainer_log.jsonl", folder)
    return out


def _listdir(folder: str) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except PermissionError:
        raise InputError("permission denied", "check the folder's permissions", folder) from None
    except OSError as e:
        raise InputError(e.strerror or str(e), "check the path", folder) from None


def folder_inputs(folder: str, names: list[str] | None = None) -> list:
    """Which files of one run's output folder to read: structured files first, then console
    logs, then the event files in it or below it (eventsource.EventInput: they add only what
    the others lack)."""
    names = _listdir(folder) if names is None else names
    ranked = sorted((rank, n) for n in names
                    if (rank := formats.run_file_rank(n)) is not None
                    and os.path.isfile(os.path.join(folder, n)))
    chosen = [n for _, n in ranked]
    chosen += [n for n in names if n not in chosen and not n.startswith(".")
               and n.endswith(LOG_SUFFIXES) and not format_of(n)
               and os.path.isfile(os.path.join(folder, n))]
    events = event_inputs(folder)
    if not chosen and not events:
        raise InputError("no log files in this folder",
                         "give a log file, or a folder with *.log, trainer_log.jsonl or "
                         "TensorBoard / VisualDL event files", folder)
    return [Input(os.path.join(folder, n)) for n in chosen] + events
