"""Bytes of a log read with bounded memory, whatever the input (a 1 GB line, a hole of NULs).

A frame is the text between two line ends (`\\n`, or tqdm's `\\r` redraws). `Clipper` keeps
each frame up to MAX_LINE bytes and drops its rest (cut and counted), and drops NUL bytes
(a copytruncate hole, a crash) as `sources.decode` would. `BlockReader` gives blocks of whole
lines; inside a physical line longer than a block (many `\\r` frames) a block ends before a
`\\r`, so it holds whole frames. Memory is about a block plus MAX_LINE, however long a line.
"""
from __future__ import annotations

from .events import MAX_LINE  # here: bytes kept of one frame (so a parser gets no more)


def _last_end(data: bytes) -> int:
    """Offset of the last `\\n` or `\\r` of data, -1 if none."""
    return max(data.rfind(b"\n"), data.rfind(b"\r"))


def _first_end(data: bytes) -> int:
    """Offset of the first `\\n` or `\\r` of data, -1 if none."""
    ends = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
    return min(ends) if ends else -1


class Clipper:
    """A stream's bytes with NULs dropped and every frame cut to MAX_LINE bytes; frames go on
    across calls. Counts the bytes it dropped and the frames it cut after the last line end
    (`since_line`) and after the last frame end (`since_frame`): a reader that keeps what comes
    after them for later knows the raw offset, and the cuts, of what it gave."""

    def __init__(self):
        self.length = 0           # bytes of the current frame kept so far
        self.cutting = False      # the current frame passed MAX_LINE: its bytes are dropped
        self.cut = 0              # frames cut
        self._raw = [0, 0]        # raw bytes since the last \n, since the last \n or \r
        self._kept = [0, 0]       # the same, kept
        self._cuts = [0, 0]       # frames cut since the last \n, since the last \n or \r

    @property
    def since_line(self) -> tuple[int, int]:
        """(bytes dropped, frames cut) after the last \n."""
        return self._raw[0] - self._kept[0], self._cuts[0]

    def whole_tail(self) -> int | None:
        """The raw bytes after the last `\n` when all of them are kept and hold no `\r` (no
        frame of that line was given yet), else None."""
        raw, kept = self._raw, self._kept
        return raw[0] if raw[0] == raw[1] == kept[0] else None

    @property
    def since_frame(self) -> tuple[int, int]:
        """(bytes dropped, frames cut) after the last \n or \r."""
        return self._raw[1] - self._kept[1], self._cuts[1]

    def clip(self, data: bytes) -> bytes:
        self._count(self._raw, data)
        if b"\0" in data:
            data = data.translate(None, b"\0")
        if len(data) > MAX_LINE:
            out = b"".join(self._piece(data[i:i + MAX_LINE])
                           for i in range(0, len(data), MAX_LINE))
        else:
            out = self._piece(data)
        self._count(self._kept, out)
        return out

    @staticmethod
    def _count(since: list, data: bytes) -> None:
        for k, end in enumerate((data.rfind(b"\n"), _last_end(data))):
            since[k] = len(data) - end - 1 if end >= 0 else since[k] + len(data)

    def _piece(self, data: bytes) -> bytes:
        """clip of at most MAX_LINE bytes: a frame inside it is shorter than MAX_LINE, only the
        one it continues can overflow."""
        out = []
        while data:
            first = _first_end(data)
            if self.cutting:
                if first < 0:
                    break
                self.cutting, self.length, data = False, 0, data[first:]
                continue
            head = len(data) if first < 0 else first
            if self.length + head <= MAX_LINE:
                last = _last_end(data)
                self.length = self.length + len(data) if last < 0 else len(data) - last - 1
                if last >= 0:                           # no cut after these ends
                    self._cuts = [self._cuts[0] if b"\n" not in data else 0, 0]
                out.append(data)
                break
            keep = MAX_LINE - self.length
            out.append(data[:keep])
            self.cutting, self.cut, data = True, self.cut + 1, data[keep:]
            self._cuts = [n + 1 for n in self._cuts]
        return b"".join(out)


class BlockReader:
    """Blocks of whole lines from a binary stream, clipped (see the module docstring).

    `blocks()` yields them (`chunks()` the raw bytes); at the end of the stream the last
    line comes too, even without its line end, unless `complete` (then it is left for a
    follower). `offset` is the stream position after the bytes of the blocks yielded so far."""

    def __init__(self, stream, size: int, check=None, complete: bool = False):
        self.stream, self.size, self.complete = stream, size, complete
        self.check = check            # called with raw bytes until it returns True
        self.clipper = Clipper()
        self.offset = stream.tell() if complete else 0
        self.cut = 0                  # frames cut in the blocks yielded so far

    def chunks(self, limit: float = float("inf")):
        """The raw bytes as read, about `limit` of them at most (for a `LineSplitter`)."""
        read = 0
        while read < limit and (raw := self._read()):
            read += len(raw)
            yield raw

    def blocks(self, limit: float = float("inf")):
        """Yield the blocks, reading about `limit` bytes at most."""
        carry = b""                   # the unfinished physical line, clipped
        start, read = self.offset, 0
        while read < limit:
            raw = self._read()
            if not raw:
                break
            read += len(raw)
            buf = carry + self.clipper.clip(raw)
            end, (dropped, cuts) = buf.rfind(b"\n") + 1, self.clipper.since_line
            if end == 0 and len(buf) > self.size:   # a long physical line: up to its last \r
                end, (dropped, cuts) = buf.rfind(b"\r"), self.clipper.since_frame
            if end <= 0:
                carry = buf
                continue
            carry = buf[end:]
            self.offset = start + read - len(carry) - dropped    # the carry's raw bytes
            self.cut = self.clipper.cut - cuts                  # ... and its cut frames
            yield buf[:end]
        if carry and not self.complete:
            self.cut = self.clipper.cut
            yield carry

    def _read(self) -> bytes:
        raw = self.stream.read(self.size)
        if raw and self.check is not None and self.check(raw):
            self.check = None
        return raw
