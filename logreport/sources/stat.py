"""What a log's file system says of it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stat:
    """Size and modification time of a log; `inode` and `ctime_ns` where the file system has
    them (0 for an object store: a rewritten object shows in its size and mtime)."""

    size: int
    mtime_ns: int
    inode: int = 0
    ctime_ns: int = 0

    @property
    def mtime(self) -> float:
        return self.mtime_ns / 1e9
