"""Follow a log behind a URL (s3://, gs://, sftp://, …) by polling its size: every `every`
seconds its size is asked, and only the bytes past what was read are fetched (a ranged read).
An object store has no append: a writer rewrites the object, and what was read is kept when
its first bytes are unchanged; a smaller or otherwise rewritten object starts a new segment."""
from __future__ import annotations

import time

from ..events import NEW_RUN, Marker
from . import fs
from .follow import HEAD, MAX_POLL
from .text import LineSplitter, check_text

EVERY = 30.0          # seconds between two looks at the object, unless --poll says otherwise


class PollFollower:
    """Follows one URL as `follow.Follower` follows a local file (the same poll/skip/flush)."""

    def __init__(self, url: str, from_end: bool = False, every: float | None = None):
        self.path = url
        self.from_end = from_end
        self.every = EVERY if every is None else every
        self.offset = 0
        self.head = b""
        self.splitter = LineSplitter()
        self.opened = False
        self.judged = False
        self.next_look = 0.0
        self.last = None          # the object's Stat at the last look
        self.said: list[str] = []

    def poll(self, limit: int = MAX_POLL) -> list:
        now = time.monotonic()
        if now < self.next_look:
            return []
        st = fs.stat(self.path)
        if st is None or (st == self.last and st.size <= self.offset):
            self.next_look = now + self.every       # not there yet, or nothing new
            return []
        self.last = st
        out: list = []
        if not self.opened:
            self.opened = True
            self.offset = st.size if self.from_end else 0
            self.judged = self.from_end
            self.head = self._range(0, min(HEAD, st.size))
        elif st.size < self.offset or self._range(0, len(self.head)) != self.head:
            out.extend(self.splitter.flush())
            reason = "log truncated" if st.size < self.offset else "log rewritten"
            out.append(Marker(NEW_RUN, reason, line=self.splitter.number))
            self.offset, self.judged = 0, False
            self.head = self._range(0, min(HEAD, st.size))
        if st.size > self.offset:
            data = self._range(self.offset, min(st.size, self.offset + limit))
            if not self.judged:
                self.judged = check_text(data, self.path)
            self.offset += len(data)
            out.extend(self.splitter.feed(data))
        if st.size <= self.offset:          # all read: the next look after `every`
            self.next_look = now + self.every
        return out

    def skip(self, offset: int, number: int) -> None:
        """Go on from byte `offset`, whose line is `number`: what lies before was read already."""
        st = fs.stat(self.path)
        self.opened, self.judged = True, True
        self.offset, self.splitter.number = offset, number
        self.head = self._range(0, min(HEAD, st.size if st else 0))
        self.next_look = time.monotonic() + self.every

    def flush(self) -> list:
        return self.splitter.flush()

    def close(self) -> None:
        """Nothing stays open between polls."""

    def _range(self, start: int, end: int) -> bytes:
        return fs.system(self.path).read_range(self.path, start, end) if end > start else b""
