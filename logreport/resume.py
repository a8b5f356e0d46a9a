"""Reading one log so that a later read goes on where this one stopped.

After the last complete line, the parse state (the Run and its parser, before the end of input
is declared) is saved; a later read of the same log, when the file was only appended to (the
same inode, its first 64 KiB and the bytes just before the saved offset unchanged), loads it
and parses only the new lines. Anything else (a truncated, rewritten or replaced log, a state
from another logreport version) is read from the start. Either way the Run is the one a read
from the start gives (tests/test_index.py checks it).

The state is a pickle in the site's own folder (`.logreport/state/`): it is loaded only from
there, written by the same user.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import asdict, dataclass

from . import __version__
from .model import Run
from .pipeline import Ingest, prepared_ahead, written_at
from .render import replace_atomic
from .sources import BLOCK, check_text, open_log
from .sources import stat as stat_of

HEAD = 64 << 10          # bytes hashed at the start of a log
SEAM = 4 << 10           # bytes hashed just before the offset a read stopped at


@dataclass
class Mark:
    """A log as one read left it: its stat, the offset after its last complete line (and that
    line's number + 1), hashes of its first bytes and of the bytes before the offset."""

    size: int
    mtime_ns: int
    inode: int
    offset: int = 0
    line: int = 1
    head: str = ""
    seam: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def stat(path: str) -> Mark | None:
    """The Mark of a file's stat alone (None when it is gone)."""
    st = stat_of(path)
    return None if st is None else Mark(st.size, st.mtime_ns, st.inode)


class Reader:
    """Reads one log: `read()` its complete lines (from the saved state when the log was only
    appended to since `before`, the Mark of the previous read; None: from the start) and saves
    the state in the file `state`; then `finish()` gives the Run, the last line without its end
    and the end of input included. finish raises what `reader.read_source` raises for the
    same log (the state is kept: a log with no records yet goes on from there next time)."""

    def __init__(self, path: str, state: str, before: Mark | None):
        self.path, self.state, self.before = path, state, before
        self.run: Run | None = None
        self.ingest: Ingest | None = None
        self.tail = b""
        self.resumed = False       # read on from the saved state

    def read(self) -> Mark:
        path = self.path
        with open_log(path) as f:
            now = stat_of(path)
            resumed = _resume(f, path, self.state, self.before, now)
            if resumed is None:
                run = Run(path)
                ingest = Ingest(run, path, None, written_at(now.mtime))
                start, line = 0, 1
            else:
                run, ingest, start, line = resumed
            blocks = _Blocks(f, start, line, now.size)
            for number, data, prepared in prepared_ahead(iter(blocks), ingest):
                ingest.feed_block(number, data, prepared)
            mark = Mark(now.size, now.mtime_ns, now.inode, blocks.offset, blocks.line,
                        _hash(f, 0, min(HEAD, blocks.offset)),
                        _hash(f, max(0, blocks.offset - SEAM), blocks.offset))
            _save(self.state, run, ingest, mark)
            f.seek(blocks.offset)
            self.tail = f.read(max(0, now.size - blocks.offset))  # a last line without its end
        self.run, self.ingest, self.line, self.mtime = run, ingest, blocks.line, now.mtime
        self.resumed = resumed is not None
        return mark

    def finish(self) -> Run:
        if self.tail:
            self.ingest.feed_block(self.line, self.tail.replace(b"\r\n", b"\n"))
        self.ingest.finish()
        self.run.files.append(self.path)
        self.run.saw_modified(self.mtime)
        return self.run


class _Blocks:
    """Blocks of whole lines from `offset` up to `limit` bytes (a last line without its end is
    left out); `offset` and `line` follow what was yielded. The file's first block is checked
    to be text (as `sources.Input` does)."""

    def __init__(self, f, offset: int, line: int, limit: int):
        self.f, self.offset, self.line, self.limit = f, offset, line, limit

    def __iter__(self):
        self.f.seek(self.offset)
        while self.offset < self.limit:
            data = self.f.read(min(BLOCK, self.limit - self.offset))
            end = data.rfind(b"\n") + 1
            if not end and len(data) == BLOCK:    # a line longer than a block: read on to its end
                data += self.f.readline()
                end = data.rfind(b"\n") + 1
            if self.offset == 0 and data:
                check_text(data, self.f.name)
            if not end:
                return
            data = data[:end]
            self.f.seek(self.offset + end)
            number = self.line
            self.offset += end
            self.line += data.count(b"\n")
            yield number, data.replace(b"\r\n", b"\n") if b"\r\n" in data else data


def _hash(f, lo: int, hi: int) -> str:
    f.seek(lo)
    return hashlib.blake2b(f.read(max(0, hi - lo)), digest_size=16).hexdigest()


def _resume(f, path: str, state: str, before: Mark | None, now):
    """(run, ingest, offset, line) of the saved state, when the log was only appended to since
    (`now`: its sources.Stat)."""
    if before is None or not before.offset or before.inode != now.inode \
            or now.size < before.offset \
            or _hash(f, 0, min(HEAD, before.offset)) != before.head \
            or _hash(f, max(0, before.offset - SEAM), before.offset) != before.seam:
        return None
    try:
        with open(state, "rb") as saved:
            kept = pickle.loads(_unpack(saved.read()))
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError,
            ValueError, IndexError):
        return None
    if kept.get("version") != __version__ or kept.get("offset") != before.offset \
            or "written" not in kept:               # (saved before the parsers took it)
        return None
    run = kept["run"]
    ingest = Ingest(run, path, kept["format"], kept["written"])
    ingest.parser, ingest.buffer = kept["parser"], kept["buffer"]
    return run, ingest, before.offset, before.line


def _save(state: str, run: Run, ingest: Ingest, mark: Mark) -> None:
    kept = {"version": __version__, "offset": mark.offset, "run": run, "parser": ingest.parser,
            "buffer": ingest.buffer, "format": ingest.format.NAME if ingest.format else None,
            "written": ingest.written}
    data = _pack(pickle.dumps(kept, protocol=pickle.HIGHEST_PROTOCOL))  # store.Spill: its bytes
    os.makedirs(os.path.dirname(state), exist_ok=True)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as out:
            out.write(data)

    replace_atomic(state, write)



MAGIC = b"logreport-state-1\n"


def _pack(raw: bytes) -> bytes:
    """zstd-compressed (a run's open column tails are raw float64), with its size ahead."""
    return MAGIC + len(raw).to_bytes(8, "little") + _codec().compress(raw, asbytes=True)


def _unpack(data: bytes) -> bytes:
    if not data.startswith(MAGIC):
        raise ValueError("not a saved parse state")
    size = int.from_bytes(data[len(MAGIC):len(MAGIC) + 8], "little")
    return _codec().decompress(data[len(MAGIC) + 8:], decompressed_size=size, asbytes=True)


def _codec():
    import pyarrow as pa

    return pa.Codec("zstd", compression_level=3)
