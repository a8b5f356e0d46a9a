"""A log's bytes to text lines: read in blocks from wherever it lives (`fs`), decoded, split."""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass

import numpy as np

from ..bounded import BlockReader, Clipper
from ..errors import InputError
from ..events import MAX_LINE
from . import fs

READ = 1 << 20               # bytes read at a time by `Input.lines` and a follower
BLOCK = 1 << 20              # bytes read at a time by `Input.blocks` (whole lines)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]")



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
    return _cleaned(text)


def _cleaned(text: str) -> str:
    """Decoded text without ANSI codes and NULs, cut to MAX_LINE, trailing blanks dropped."""
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    if "\0" in text:
        text = text.replace("\0", "")
    if len(text) > MAX_LINE:
        text = text[:MAX_LINE]
    return text.rstrip()


class LineSplitter:
    """Bytes in, complete lines out: `\\n` and `\\r` end a line; a partial tail waits.

    Frames of one physical line (tqdm's `\\r` redraws) share its line number. A frame is kept
    up to MAX_LINE bytes (`bounded.Clipper`): the buffer never holds more.
    """

    def __init__(self):
        self.buffer = b""
        self.number = 1          # number of the physical line being assembled
        self.clipper = Clipper()

    def restart(self, number: int) -> None:
        """Go on at the start of line `number` (what was buffered is dropped); frames cut so far
        stay counted."""
        cut, self.buffer, self.number = self.clipper.cut, b"", number
        self.clipper = Clipper()
        self.clipper.cut = cut

    def feed(self, data: bytes) -> list[tuple[int, str]]:
        buf = self.buffer + self.clipper.clip(data)
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
        # Inside the unfinished line, frames before the last \r are complete (one before a \r
        # at the very end too: a \n after it, of \r\n, ends the line with an empty frame).
        cut = tail.rfind(b"\r")
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
    """Append the non-empty (number, text) frames of one physical line (\r splits frames;
    each is decoded as `decode` would decode it alone: the line at once when it is UTF-8)."""
    if b"\r" in raw:
        try:
            pieces = raw.decode("utf-8").split("\r")
        except UnicodeDecodeError:
            pieces = None
        for frame in pieces if pieces is not None else raw.split(b"\r"):
            if not frame:
                continue
            text = _cleaned(frame) if pieces is not None else decode(frame)
            if text:
                out.append((number, text))
    else:
        text = decode(raw)
        if text:
            out.append((number, text))


def lf_ends(data: bytes) -> tuple[bytes, np.ndarray]:
    """Whole lines with each `\\r\\n` line end read as `\\n` (the frames of a line are the
    same either way; faster than `replace` on tqdm's `\\r`-dense output), and the offsets of
    their line ends (a block's fast path needs them too)."""
    a = np.frombuffer(data, dtype=np.uint8)
    before = np.flatnonzero(a[1:] == 10)            # the byte before each line end
    ends = np.concatenate(([0], before + 1)) if len(a) and a[0] == 10 else before + 1
    cut = a[before] == 13
    if not cut.any():
        return data, ends
    cuts = before[cut].tolist()
    if len(ends) > len(before):
        cut = np.concatenate(([False], cut))
    view = memoryview(data)                         # (slices of a bytes object are copies)
    return (b"".join(view[s:e] for s, e in zip([0] + [c + 1 for c in cuts], cuts + [len(data)])),
            ends - np.cumsum(cut))


def block_lines(data: bytes, number: int) -> list[tuple[int, str]]:
    """The (number, text) frames of a block of whole lines whose first line is `number`. A
    block that is UTF-8 is decoded and cleaned of ANSI codes and NULs at once (neither spans
    a line end or `\r`), each frame then cut and stripped as `_cleaned` does; else line by
    line (`frames`)."""
    out: list[tuple[int, str]] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        for raw in data.split(b"\n")[:data.count(b"\n") + (not data.endswith(b"\n"))]:
            frames(raw, number, out)
            number += 1
        return out
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    if "\0" in text:
        text = text.replace("\0", "")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    for line in lines:
        for frame in line.split("\r") if "\r" in line else (line,):
            if len(frame) > MAX_LINE:
                frame = frame[:MAX_LINE]
            frame = frame.rstrip()
            if frame:
                out.append((number, frame))
        number += 1
    return out


@dataclass
class Input:
    """One readable stream: a file (local or a URL), a .gz file, or stdin."""

    path: str
    offset: int = 0       # after `complete_blocks`: the byte offset after its lines
    cut: int = 0          # frames cut at MAX_LINE bytes (their ends dropped) while reading

    @property
    def name(self) -> str:
        return "<stdin>" if self.path == "-" else self.path

    def open(self):
        """The binary stream (see `fs.open_log`)."""
        return fs.open_log(self.path)

    def lines(self):
        """Yield (line number, text) of every complete line."""
        splitter = LineSplitter()
        for data in self._reads(BlockReader.chunks, READ):
            yield from splitter.feed(data)
        yield from splitter.flush()
        self.cut = splitter.clipper.cut

    def blocks(self, size: int = BLOCK):
        """Yield (number of its first line, bytes) blocks of whole physical lines.

        The last block may lack its final line end; so may one inside a physical line longer
        than `size` (tqdm's `\r` frames), which then goes on in the next block under the same
        number. `\r\n` is read as `\n` (the frames of a line are the same either way).
        `block_lines` turns a block into what `lines` yields.
        """
        number = 1
        for data in self._reads(BlockReader.blocks, size):
            data, ends = lf_ends(data)
            yield number, data
            number += len(ends)

    def complete_blocks(self, limit: int, size: int = BLOCK, start: int = 0, number: int = 1):
        """Like `blocks`, for the complete lines of a file up to about `limit` bytes (from
        byte `start`, at a line start, whose line is `number`); a last line without its end is
        left out (a follower reads it once complete). `self.offset` is then the byte offset
        after the lines yielded so far."""
        for data in self._reads(BlockReader.blocks, size, limit=limit, complete=True,
                                start=start):
            data, ends = lf_ends(data)
            yield number, data
            number += len(ends)

    def size(self) -> int | None:
        """Bytes to read, where known (not for stdin)."""
        st = self._stat()
        return None if st is None else st.size

    def mtime(self) -> float | None:
        """When it was last modified, where known (not for stdin; not where the file system
        cannot be asked: `watch ssh://` needs only ssh, not the [ssh] extra)."""
        st = self._stat()
        return None if st is None else st.mtime

    def _stat(self):
        try:
            return fs.stat(self.path)
        except InputError:
            return None

    def _reads(self, how, size: int, limit: float = float("inf"), complete: bool = False,
               start: int = 0):
        """What `how` (a BlockReader method) yields from the opened stream (from byte `start`:
        read before, and judged text then); read errors become an InputError, a binary file is
        refused on its first bytes."""
        stream = self.open()
        if start:
            stream.seek(start)
        check = None if start else (lambda raw: check_text(raw, self.name))
        reader = BlockReader(stream, size, check, complete)
        self.offset = reader.offset
        try:
            for data in how(reader, limit):
                self.offset, self.cut = reader.offset, reader.cut
                yield data
        except (OSError, EOFError) as e:
            raise InputError(f"read failed: {e}", "is the file complete (gzip)?",
                             self.path) from None
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()


_NUL_HOLE = re.compile(rb"\0{16,}")


def check_text(head: bytes, name: str) -> bool:
    """Refuse a binary file: too many bytes that never occur in text. Holes of NULs are
    skipped (logrotate's copytruncate under a running writer leaves one at the start, a crash
    one in the middle); returns False while there was nothing else to judge in the first 64
    KiB of head."""
    if head.startswith(b"\x1f\x8b"):     # (a path ending .gz is read through gzip)
        raise InputError("this is a gzip file, not a text log",
                         "give its path ending in .gz, or pipe it through gunzip -c", name)
    sample = _NUL_HOLE.sub(b"", head[:1 << 16])[:8192]
    if not sample:
        return False
    text_bytes = bytes(range(32, 256)) + b"\n\r\t\f\b\x1b"
    junk = len(sample.translate(None, text_bytes))
    if junk > len(sample) * 0.1:
        raise InputError("this is a binary file, not a text log",
                         "give the training log (the captured console output)", name)
    return True
