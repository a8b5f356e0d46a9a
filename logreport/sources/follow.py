"""Follow a log file (or an output folder) as it is written: complete lines, restarts reported.

`Follower.poll()` reads what was appended since the last call and returns its complete lines as
(number, text) pairs; a partial last line waits in the `sources.LineSplitter`. The file may not
exist yet (poll returns nothing until it does). When the file starts over, poll returns the lines
read before that, then a `Marker`, then the lines of the new content:

- rotation (renamed away, or copied and truncated: logrotate `create` / `copytruncate`) keeps
  the same run going: the old file is read to its end and no marker is given;
- truncation, replacement or deletion-and-recreation otherwise means a new run overwrote the log:
  `Marker(NEW_RUN)`, which starts a new segment.

A rotated copy is recognised in the same folder by the old inode, or by the old first bytes
and the last bytes read, where they were read (another rank's log starts alike).
Line numbers keep counting across restarts, so they only ever go forward.
"""
from __future__ import annotations

import errno
import os
import stat

from ..errors import InputError
from ..events import NEW_RUN, Marker
from .text import READ, LineSplitter, check_text

HEAD = 256                  # bytes compared to tell a rewritten file from the one we read
MAX_POLL = 8 * READ         # bytes read by one poll (a big backlog is read over several polls)


class Follower:
    """Follows one file path."""

    def __init__(self, path: str, from_end: bool = False):
        self.path = path
        self.from_end = from_end
        self.file = None
        self.inode = None
        self.offset = 0
        self.head = b""           # the first HEAD bytes of the followed file
        self.tail = b""           # the last HEAD bytes read (a rotated copy holds them too)
        self.splitter = LineSplitter()
        self.opened = False       # the file has been opened at least once
        self.judged = False       # told text from binary on the file's first bytes

    def poll(self, limit: int = MAX_POLL) -> list:
        """New complete lines [(number, text)], with a Marker where the log started over; reads
        about `limit` bytes, more only to complete a line (nothing returned: nothing complete)."""
        out: list = []
        if self.file is None:
            self._open(at_end=self.from_end and not self.opened)
            if self.file is None:
                return out
        restart = self._restart()
        if restart is not None:
            reason, rotated = restart
            out.extend(self._read_rest(rotated))
            out.extend(self.splitter.flush())
            self._close()
            if reason:
                out.append(Marker(NEW_RUN, reason, line=self.splitter.number))
            self._open(at_end=False)
            if self.file is None:
                return out
        while True:             # a line longer than limit: read on until it completes
            before = self.offset
            lines = self._read(limit)
            out.extend(lines)
            if self.offset == before and self._whole_document():
                out.extend(self.splitter.flush())
            if lines or self.offset - before < limit:
                return out

    def _whole_document(self) -> bool:
        """Whether the unfinished line is the end of a JSON document a writer left without a
        line end (transformers writes `*_results.json` so): a `.json` file whose last bytes,
        unchanged since the poll before, close it."""
        return self.path.endswith(".json") and self.splitter.buffer.rstrip().endswith(b"}")

    def resume_point(self) -> tuple[int, int, int] | None:
        """(byte offset, line number, bytes to read) from the start of the line not finished
        yet to the file's end, while the file goes on (no restart) and no frame of that line
        was given: what a caller may read in blocks instead of polling, then `skip`."""
        tail = self.splitter.clipper.whole_tail()
        if self.file is None or tail is None or self._restart() is not None:
            return None
        start = self.offset - tail
        return start, self.splitter.number, os.fstat(self.file.fileno()).st_size - start

    def skip(self, offset: int, number: int) -> None:
        """Go on from byte `offset`, whose line is `number`: what lies before was read already
        (an unfinished line kept from before is dropped: it was read too)."""
        if self.file is None:
            self._open(at_end=False)
        if self.file is not None:
            self.offset, self.judged = offset, True
            self.splitter.restart(number)
            self._read_tail()
            self.file.seek(offset)

    def flush(self) -> list:
        """The unfinished last line, at the end of watching."""
        return self.splitter.flush()

    def close(self) -> None:
        self._close()

    # --- internals ------------------------------------------------------------------------
    def _open(self, at_end: bool) -> None:
        try:
            f = open_regular(self.path)
        except FileNotFoundError:
            return
        except OSError as e:
            raise _input_error(e, self.path) from None
        st = os.fstat(f.fileno())
        self.file, self.inode = f, st.st_ino
        self.head = f.read(HEAD)
        self.offset = st.st_size if at_end else 0
        self._read_tail()
        f.seek(self.offset)
        self.judged = at_end
        self.opened = True

    def _close(self) -> None:
        if self.file is not None:
            self.file.close()
        self.file = None

    def _restart(self) -> tuple[str, str | None] | None:
        """None while the file goes on; else (why a new run began or "" if rotated, the
        rotated file or None)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._unread():
                return None                  # read what the deleted file still holds first
            rotated = self._rotated_to()
            return ("" if rotated else "log deleted"), rotated
        except OSError as e:                 # a symbolic link loop, a folder made unreadable
            raise _input_error(e, self.path) from None
        if st.st_ino != self.inode:
            reason = "log replaced by a new file"
        elif st.st_size < self.offset:
            reason = "log truncated"
        elif self.head and os.pread(self.file.fileno(), len(self.head), 0) != self.head or \
                self.tail and os.pread(self.file.fileno(), len(self.tail),
                                       self.offset - len(self.tail)) != self.tail:
            reason = "log rewritten"        # (runs start alike: the bytes before the offset)
        else:
            return None
        rotated = self._rotated_to()
        return ("" if rotated else reason), rotated

    def _unread(self) -> bool:
        """The deleted file still has bytes we have not read (read them before giving up)."""
        return os.fstat(self.file.fileno()).st_size > self.offset

    def _read_rest(self, rotated: str | None) -> list:
        """What was appended before the restart: from the old file, or from its copy."""
        try:
            if rotated and os.stat(rotated).st_ino != self.inode:
                with open_regular(rotated) as f:        # copytruncate: the copy has it
                    f.seek(self.offset)
                    return self._feed_all(f)
            if os.path.exists(self.path) and os.stat(self.path).st_ino == self.inode:
                return []                               # rewritten in place: the tail is gone
        except OSError:
            return []
        return self._feed_all(self.file)                # renamed away or deleted: still open

    def _feed_all(self, f) -> list:
        """The lines of the rest of f, READ bytes at a time (the splitter bounds a line)."""
        out: list = []
        while data := f.read(READ):
            out.extend(self.splitter.feed(data))
        return out

    def _rotated_to(self) -> str | None:
        """The file of the same folder that now holds what we were reading, if any."""
        folder = os.path.dirname(os.path.abspath(self.path))
        base = os.path.basename(self.path)
        try:
            names = os.listdir(folder)
        except OSError:
            return None
        for name in names:
            if name == base or not name.startswith(base.split(".")[0]):
                continue
            other = os.path.join(folder, name)
            try:
                with open_regular(other) as f:           # a FIFO beside the log: not waited on
                    if os.fstat(f.fileno()).st_ino == self.inode:
                        return other
                    if self.head and f.read(len(self.head)) == self.head and self._holds_tail(f):
                        return other
            except OSError:
                continue
        return None

    def _holds_tail(self, f) -> bool:
        """Whether a file holds the bytes read last where they were read (a copy of the
        followed log, not a sibling that starts alike: another rank's workerlog)."""
        at = self.offset - len(self.tail)
        return os.pread(f.fileno(), len(self.tail), at) == self.tail

    def _read_tail(self) -> None:
        """The last HEAD bytes before the offset, as read (after an open or a skip)."""
        size = min(HEAD, self.offset)
        self.tail = os.pread(self.file.fileno(), size, self.offset - size)

    def _read(self, limit: int) -> list:
        if self.file is None:
            return []
        data = self.file.read(limit)
        if not data:
            return []
        self.tail = (self.tail + data)[-HEAD:]
        if not self.judged:       # on the first bytes that are not a hole of NULs
            self.judged = check_text(os.pread(self.file.fileno(), 8192, 0), self.path)
        self.offset += len(data)
        if len(self.head) < HEAD and self.offset - len(data) < HEAD:
            start = self.offset - len(data)
            self.head = (self.head[:start] + data)[:HEAD]
        return self.splitter.feed(data)


def open_regular(path: str):
    """A regular file opened for reading; anything else (a FIFO, a device, a folder) is
    refused with IsADirectoryError or OSError(EINVAL) without blocking: watch follows files."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO's open must not wait
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "this is a folder", path)
        raise OSError(errno.EINVAL, f"this is {_kind(mode)}, not a regular file", path)
    return os.fdopen(fd, "rb")


def _kind(mode: int) -> str:
    return ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file")


def _input_error(e: OSError, path: str) -> InputError:
    """The one-line error of a file watch cannot follow."""
    if isinstance(e, PermissionError):
        return InputError("permission denied", "check the file's read permission", path)
    if isinstance(e, IsADirectoryError):
        return InputError("this is a folder", "give a log file", path)
    if e.errno == errno.EINVAL:
        return InputError(e.strerror, "watch follows regular files; for a pipe, write it to a "
                          "file (`cmd | tee run.log`) or use `logreport run`", path)
    return InputError(e.strerror or str(e), "check the path", path)
