"""Paths to text lines: files, folders, globs, stdin and .gz; bytes decoded, lines split."""
from __future__ import annotations

import glob
import gzip
import os
import re
import sys
from dataclasses import dataclass

import numpy as np

from .errors import InputError, UsageError
from .events import MAX_LINE
from .eventsource import event_inputs, file_input, folder_events, format_of

CHUNK = 1 << 20
BLOCK = 1 << 20              # bytes read at a time by `Input.blocks` (whole lines)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]")

# Files of an output folder worth reading, in the order they are read (structured first).
FOLDER_FILES = ("trainer_log.jsonl", "trainer_state.json", "all_results.json",
                "train_results.json", "eval_results.json", "running_log.txt")
LOG_SUFFIXES = (".log", ".txt", ".out", ".log.gz", ".txt.gz")
WORKERLOG = re.compile(r"workerlog\.\d+")


def decode(raw: bytes) -> str:
    """UTF-8, else GB18030 (Chinese Windows logs), else UTF-8 with replacement characters.

    ANSI colour codes and NUL bytes (a crash or a copy of a file being written) are dropped.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", errors="replace")
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    if "\0" in text:
        text = text.replace("\0", "")
    if len(text) > MAX_LINE:
        text = text[:MAX_LINE]
    return text.rstrip()


class LineSplitter:
    """Bytes in, complete lines out: `\\n` and `\\r` end a line; a partial tail waits.

    Frames of one physical line (tqdm's `\\r` redraws) share its line number.
    """

    def __init__(self):
        self.buffer = b""
        self.number = 1          # number of the physical line being assembled

    def feed(self, data: bytes) -> list[tuple[int, str]]:
        buf = self.buffer + data
        out: list[tuple[int, str]] = []
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            self._frames(buf[start:nl], out)
            self.number += 1
            start = nl + 1
        tail = buf[start:]
        # Inside the unfinished line, frames before the last \r are complete; a \r at the very
        # end may be the first half of \r\n, so it waits.
        cut = tail.rfind(b"\r", 0, len(tail) - 1)
        if cut >= 0:
            self._frames(tail[:cut], out)
            tail = tail[cut + 1:]
        self.buffer = tail
        return out

    def flush(self) -> list[tuple[int, str]]:
        """The last line of a finished input, even without a line end."""
        out: list[tuple[int, str]] = []
        if self.buffer:
            self._frames(self.buffer, out)
            self.buffer = b""
            self.number += 1
        return out

    def _frames(self, raw: bytes, out: list) -> None:
        frames(raw, self.number, out)


def frames(raw: bytes, number: int, out: list) -> None:
    """Append the non-empty (number, text) frames of one physical line (\r splits frames)."""
    if b"\r" in raw:
        for frame in raw.split(b"\r"):
            text = decode(frame)
            if text:
                out.append((number, text))
    else:
        text = decode(raw)
        if text:
            out.append((number, text))


def lf_ends(data: bytes) -> tuple[bytes, int]:
    """Whole lines with each `\\r\\n` line end read as `\\n` (the frames of a line are the
    same either way; faster than `replace` on tqdm's `\\r`-dense output), and their number of
    line ends."""
    a = np.frombuffer(data, dtype=np.uint8)
    before = np.flatnonzero(a[1:] == 10)            # the byte before each line end
    lines = len(before) + bool(len(a) and a[0] == 10)
    cuts = before[a[before] == 13].tolist()
    if not cuts:
        return data, lines
    return b"".join(data[s:e] for s, e in zip([0] + [c + 1 for c in cuts], cuts + [len(data)])), lines


def block_lines(data: bytes, number: int) -> list[tuple[int, str]]:
    """The (number, text) frames of a block of whole lines whose first line is `number`."""
    out: list[tuple[int, str]] = []
    for raw in data.split(b"\n")[:data.count(b"\n") + (not data.endswith(b"\n"))]:
        frames(raw, number, out)
        number += 1
    return out


@dataclass
class Input:
    """One readable stream: a file, a .gz file, or stdin."""

    path: str
    offset: int = 0       # after `complete_blocks`: the byte offset after its lines

    @property
    def name(self) -> str:
        return "<stdin>" if self.path == "-" else self.path

    def open(self):
        if self.path == "-":
            return sys.stdin.buffer
        try:
            if self.path.endswith(".gz"):
                return gzip.open(self.path, "rb")
            return open(self.path, "rb")
        except PermissionError:
            raise InputError("permission denied", "check the file's read permission",
                              self.path) from None
        except OSError as e:
            raise InputError(e.strerror or str(e), "check the path", self.path) from None

    def lines(self):
        """Yield (line number, text) of every complete line."""
        splitter = LineSplitter()
        for data in self._reads(CHUNK):
            yield from splitter.feed(data)
        yield from splitter.flush()

    def blocks(self, size: int = BLOCK):
        """Yield (number of its first line, bytes) blocks of whole physical lines.

        The last block may lack its final line end; `\r\n` is read as `\n` (the frames of a
        line are the same either way). `block_lines` turns a block into what `lines` yields.
        """
        number = 1
        for data in self._reads(size, whole_lines=True):
            data, lines = lf_ends(data)
            yield number, data
            number += lines

    def complete_blocks(self, limit: int, size: int = BLOCK):
        """Like `blocks`, for the complete lines of a file up to about `limit` bytes; a last
        line without its end is left out (a follower reads it once complete). `self.offset`
        is then the byte offset after the lines yielded so far."""
        number, self.offset = 1, 0
        with self.open() as stream:
            while self.offset < limit:
                data = stream.read(size)
                if data and not data.endswith(b"\n"):
                    data += stream.readline()
                if self.offset == 0 and data:
                    check_text(data, self.name)
                data = data[:data.rfind(b"\n") + 1]
                if not data:
                    return
                self.offset += len(data)
                data, lines = lf_ends(data)
                yield number, data
                number += lines

    def size(self) -> int | None:
        """Bytes to read, where known (not for stdin)."""
        try:
            return None if self.path == "-" else os.path.getsize(self.path)
        except OSError:
            return None

    def mtime(self) -> float | None:
        """When it was last modified, where known (not for stdin)."""
        try:
            return None if self.path == "-" else os.path.getmtime(self.path)
        except OSError:
            return None

    def _reads(self, size: int, whole_lines: bool = False):
        stream = self.open()
        try:
            judged = False
            while True:
                try:
                    data = stream.read(size)
                    if whole_lines and data and not data.endswith(b"\n"):
                        data += stream.readline()
                except (OSError, EOFError) as e:
                    raise InputError(f"read failed: {e}", "is the file complete (gzip)?",
                                     self.path) from None
                if not data:
                    break
                if not judged:
                    judged = check_text(data, self.name)
                yield data
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()


def check_text(head: bytes, name: str) -> bool:
    """Refuse a binary file: too many bytes that never occur in text. Leading NULs are skipped
    (logrotate's copytruncate under a running writer leaves a hole of them); returns False
    while there was nothing else to judge."""
    sample = head.lstrip(b"\0")[:8192]
    if not sample:
        return False
    text_bytes = bytes(range(32, 256)) + b"\n\r\t\f\b\x1b"
    junk = len(sample.translate(None, text_bytes))
    if junk > len(sample) * 0.1:
        raise InputError("this is a binary file, not a text log",
                         "give the training log (the captured console output)", name)
    return True


def expand(paths: list[str]) -> list[str]:
    """Expand globs; keep '-' and plain paths; refuse what does not exist."""
    out: list[str] = []
    for p in paths:
        if p == "-" or os.path.exists(p):
            out.append(p)
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
    """Whether a folder holding these file names is the output of one run: an LLaMA-Factory /
    HF output folder (its structured files) or a `paddle.distributed.launch` log folder."""
    return any(n in FOLDER_FILES or n.endswith("_results.json") or WORKERLOG.fullmatch(n)
               for n in names)


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
    chosen = [n for n in FOLDER_FILES if n in names]
    chosen += [n for n in names if n not in chosen and not n.startswith(".")
               and (n.endswith(LOG_SUFFIXES) or WORKERLOG.fullmatch(n))
               and not format_of(n) and os.path.isfile(os.path.join(folder, n))]
    events = event_inputs(folder)
    if not chosen and not events:
        raise InputError("no log files in this folder",
                         "give a log file, or a folder with *.log, trainer_log.jsonl or "
                         "TensorBoard / VisualDL event files", folder)
    return [Input(os.path.join(folder, n)) for n in chosen] + events
