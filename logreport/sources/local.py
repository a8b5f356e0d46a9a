"""Logs on this machine's disk: paths asked through `os`, files opened for reading."""
from __future__ import annotations

import errno
import glob as globbing
import gzip
import os
import stat as stats
import sys

from ..errors import InputError
from .stat import Stat


def _error(e: OSError, path: str) -> InputError:
    if isinstance(e, PermissionError):
        return InputError("permission denied", "check the file's read permission", path)
    return InputError(e.strerror or str(e), "check the path", path)


class Local:
    """The local file system (and '-', stdin)."""

    def exists(self, path: str) -> bool:
        return path == "-" or os.path.exists(path)

    def broken_link(self, path: str) -> bool:
        return os.path.islink(path) and not os.path.exists(path)

    def isdir(self, path: str) -> bool:
        return path != "-" and os.path.isdir(path)

    def isfile(self, path: str) -> bool:
        return os.path.isfile(path)

    def listing(self, folder: str) -> dict[str, str]:
        """name -> "dir", "file" or "other" (a link to a folder is "other": not walked into)."""
        try:
            with os.scandir(folder) as entries:
                return {e.name: _kind(e) for e in entries}
        except PermissionError:
            raise InputError("permission denied", "check the folder's permissions", folder) from None
        except OSError as e:
            raise _error(e, folder) from None

    def glob(self, pattern: str) -> list[str]:
        return sorted(globbing.glob(pattern))

    def walk(self, folder: str):
        yield from os.walk(folder)

    def stat(self, path: str) -> Stat | None:
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return None
        return Stat(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)

    def open(self, path: str, offset: int = 0):
        """The binary stream of a log from `offset`: stdin, a .gz file decompressed, or a file
        (a character or block device refused; a leading hole of a sparse file not read)."""
        if path == "-":
            try:
                if not sys.stdin.isatty():       # a terminal is a device too, and fine
                    _refuse_device(os.fstat(sys.stdin.fileno()).st_mode, "<stdin>")
            except (OSError, ValueError):        # no file descriptor (an embedding caller)
                pass
            return sys.stdin.buffer
        try:
            _refuse_device(os.stat(path).st_mode, path)
            if path.endswith(".gz"):
                return gzip.open(path, "rb")
            stream = open(path, "rb")
        except OSError as e:
            raise _error(e, path) from None
        if offset:
            stream.seek(offset)
        else:
            _skip_hole(stream)
        return stream


class LocalPositional:
    """A file read at any offset (os.pread): `read(start, end)`, `size()`, `close()`."""

    def __init__(self, path: str):
        try:
            self.fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            raise _error(e, path) from None

    def read(self, start: int, end: int) -> bytes:
        return os.pread(self.fd, max(0, end - start), start)

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def close(self) -> None:
        os.close(self.fd)


def _kind(entry: os.DirEntry) -> str:
    try:
        if entry.is_dir(follow_symlinks=False):
            return "dir"
        return "file" if entry.is_file() else "other"
    except OSError:
        return "other"


def _refuse_device(mode: int, name: str) -> None:
    """Only files, pipes and sockets hold logs: /dev/zero would be read for ever."""
    if stats.S_ISCHR(mode) or stats.S_ISBLK(mode):
        kind = "a character device" if stats.S_ISCHR(mode) else "a block device"
        raise InputError(f"this is {kind}, not a log file",
                         "give the training log (or pipe it in: `... | logreport summary -`)",
                         name)


def _skip_hole(stream) -> None:
    """Seek past a leading hole of a sparse file (logrotate's copytruncate under a writer
    that does not append): its NULs would be dropped anyway, now they are not even read."""
    seek_data = getattr(os, "SEEK_DATA", None)
    if seek_data is None or not stats.S_ISREG(os.fstat(stream.fileno()).st_mode):
        return
    try:
        stream.seek(os.lseek(stream.fileno(), 0, seek_data))
    except OSError as e:
        if e.errno == errno.ENXIO:          # nothing but a hole
            stream.seek(0, os.SEEK_END)
        else:                               # no SEEK_DATA on this filesystem
            stream.seek(0)
