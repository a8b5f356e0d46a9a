"""Where logs are read from, and their bytes made into lines. A location is chosen by its URL
scheme (`fs`): a local path, stdin or a .gz file (`local`), or a URL read through fsspec
(`remote`: s3://, gs://, hdfs://, http(s)://, sftp:// and ssh://). `follower` gives what
follows a log as it grows: a local file (`follow`), a URL polled for its size (`poll`), a log
on another machine through the user's own ssh (`ssh`). Nothing outside this package opens or
asks the file system about a log.
"""
from __future__ import annotations

from .fs import (
    absolute,
    basename,
    broken_link,
    exists,
    given,
    glob,
    has_magic,
    is_url,
    isdir,
    isfile,
    join,
    listing,
    open_log,
    parent,
    positional,
    relative,
    stat,
    walk,
)
from .remote import scheme
from .stat import Stat
from .text import (
    BLOCK,
    Input,
    LineSplitter,
    block_lines,
    check_text,
    decode,
    frames,
    lf_ends,
)

__all__ = ["BLOCK", "Input", "LineSplitter", "Stat", "absolute", "basename",
           "block_lines", "broken_link", "check_text", "decode", "exists", "follower",
           "frames", "given", "glob", "has_magic", "is_url", "isdir", "isfile", "join",
           "lf_ends", "listing", "open_log", "parent", "positional", "relative", "scheme", "stat",
           "streams_backlog", "walk"]


def streams_backlog(path: str) -> bool:
    """Whether following this log gives what it holds too (ssh://: one stream from byte 0),
    so that a watch reads no backlog before following it."""
    return scheme(path) == "ssh"


def follower(path: str, from_end: bool = False, every: float | None = None):
    """What follows a log as it grows: poll() gives its new complete lines (see follow.py);
    `every`: seconds between two looks at a URL's size (polled followers only)."""
    if scheme(path) == "ssh":
        from .ssh import SshFollower

        return SshFollower(path, from_end)
    if is_url(path):
        from .poll import PollFollower

        return PollFollower(path, from_end, every)
    from .follow import Follower

    return Follower(path, from_end)
