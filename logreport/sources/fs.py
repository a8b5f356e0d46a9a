"""Where a log lives, chosen by its URL scheme: a local path (or file://, or '-' for stdin) is
`local.Local`, any other URL an fsspec file system (`remote.Remote`). The rest of logreport
asks these functions, never `os.path` or `open`, about a log."""
from __future__ import annotations

import glob as globbing
import os
import posixpath
from urllib.parse import unquote, urlsplit

from .local import Local, LocalPositional
from .remote import remember, remote, scheme
from .stat import Stat

_LOCAL = Local()


def is_url(path: str) -> bool:
    """A location that is not on this machine's disk."""
    return scheme(path) not in ("", "file")


def given(path: str) -> str:
    """A path as the user gave it, made ready for use: file:// becomes a local path, a
    password in a URL is taken out (`remote.remember`)."""
    if scheme(path) == "file":
        return unquote(urlsplit(path).path) or "/"
    return remember(path) if is_url(path) else path


def system(path: str):
    """The file system a path is on."""
    return remote(path) if is_url(path) else _LOCAL


def exists(path: str) -> bool:
    return system(path).exists(path)


def broken_link(path: str) -> bool:
    """A local symbolic link that leads nowhere (a loop, or its target is missing)."""
    return system(path).broken_link(path)


def isdir(path: str) -> bool:
    return system(path).isdir(path)


def isfile(path: str) -> bool:
    return system(path).isfile(path)


def listing(folder: str) -> dict[str, str]:
    """A folder's entries, sorted by name: name -> "dir", "file" or "other"."""
    found = system(folder).listing(folder)
    return {name: found[name] for name in sorted(found)}


def has_magic(path: str) -> bool:
    return globbing.has_magic(path)


def glob(pattern: str) -> list[str]:
    """The paths a glob matches, sorted."""
    return system(pattern).glob(pattern)


def walk(folder: str):
    """(folder, sub-folder names, file names) of a folder and those below it, as os.walk."""
    yield from system(folder).walk(folder)


def stat(path: str) -> Stat | None:
    """Size, mtime (and inode) of a file; None when it is not there (or not a file)."""
    return None if path == "-" else system(path).stat(path)


def open_log(path: str, offset: int = 0):
    """A log's bytes as a binary stream, from `offset` (not for a .gz log)."""
    return system(path).open(path, offset)


def positional(path: str):
    """A local log read at any offset: `read(start, end)` gives those bytes, `size()` its
    length, `close()` (not for a URL or a .gz log: see `open_log`)."""
    return LocalPositional(path)


def join(folder: str, name: str) -> str:
    return posixpath.join(folder, name) if is_url(folder) else os.path.join(folder, name)


def basename(path: str) -> str:
    return posixpath.basename(path.rstrip("/")) if is_url(path) else os.path.basename(path)


def parent(path: str) -> str:
    """The folder a path is in (a local one made absolute)."""
    if is_url(path):
        return posixpath.dirname(path.rstrip("/"))
    return os.path.dirname(os.path.abspath(path))


def absolute(path: str) -> str:
    return path if is_url(path) or path == "-" else os.path.abspath(path)


def relative(path: str, base: str) -> str:
    """A path's name below `base`, with '/' between folders."""
    if is_url(path):
        return posixpath.relpath(path, base)
    return os.path.relpath(path, base).replace(os.sep, "/")
