"""A big log read on every core: cut at line ends into ranges that worker processes prepare
(the stateless part of a format's block fast path: matching, numbers) while this process emits
each prepared range in order, so the parser's state (steps, pending records, flags) is carried
across every cut exactly as when reading the file from one end to the other.

`blocks(inp, ingest)` is the one entry point: it yields `(number, data, prepared)` like
`pipeline.prepared_ahead`, for `Ingest.feed_block`. Small files, streams, `.gz` files, formats
without `prepare_block` and systems without `fork` are read in this process, as before.
Memory stays flat: at most two ranges per worker are in flight.
"""
from __future__ import annotations

import multiprocessing
import os
import warnings
from collections import deque
from concurrent.futures import ProcessPoolExecutor

from .sources import Input, check_text, lf_ends

MIN_SIZE = 48 << 20       # bytes: a smaller log is read in this process
RANGE = 2 << 20           # bytes a worker prepares at a time (the range's lines, whole)
FIRST = 256 << 10         # bytes read here first, and on until the format is known

_worker: dict = {}        # in a worker process: the parser and the open file


def blocks(inp: Input, ingest, limit: int | None = None, workers: int | None = None,
           size: int = RANGE, min_size: int = MIN_SIZE):
    """(number, data, prepared) of the whole-line blocks of an input, in order.

    limit: read only the complete lines up to about this offset (a log being written: `watch`
    reads its backlog so); `inp.offset` is then the offset after them. workers: processes
    (default: one per core); size: bytes per range; min_size: the smallest log read so.
    """
    from .pipeline import prepared_ahead

    workers = workers or os.cpu_count() or 1
    length = None if inp.path == "-" or inp.path.endswith(".gz") else inp.size()
    if length is None or min(length, limit or length) < min_size or workers < 2 \
            or "fork" not in multiprocessing.get_all_start_methods():
        source = inp.complete_blocks(limit) if limit is not None else inp.blocks()
        return prepared_ahead(source, ingest)
    return _parallel(inp, ingest, limit, workers, size)


def _parallel(inp: Input, ingest, limit: int | None, workers: int, size: int):
    fd = _open(inp)
    try:
        total = os.fstat(fd).st_size if limit is None else _complete_end(fd, limit)
        number, at, judged = 1, 0, False
        while at < total and (not judged or ingest.parser is None
                              or not hasattr(ingest.parser, "prepare_block")):
            end = _line_start(fd, min(at + min(FIRST, size), total), total)
            data, lines = lf_ends(os.pread(fd, end - at, at))  # the format is decided on these
            judged = judged or check_text(data, inp.name)
            at = end
            yield number, data, None
            number += lines
        if at < total:
            for data, lines, end, prepared in _prepared(inp, ingest.parser, fd, at, total,
                                                        workers, size):
                yield number, data, prepared
                number += lines
                at = end
        inp.offset = at
    finally:
        os.close(fd)


def _prepared(inp: Input, parser, fd: int, start: int, total: int, workers: int, size: int):
    """(data, lines, end, prepared) of the ranges from `start` on, prepared by workers, in
    order (the data as a `_Range`)."""
    pending: deque = deque()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                             initializer=_init, initargs=(parser, inp.path)) as pool:
        nominal = start
        while nominal < total or pending:
            while nominal < total and len(pending) < 2 * workers:
                end = min(nominal + size, total)
                with warnings.catch_warnings():     # the workers only prepare: no lock of
                    warnings.filterwarnings(        # another thread is theirs to take
                        "ignore", ".*fork", DeprecationWarning)
                    pending.append(pool.submit(_prepare, nominal, end, total))
                nominal = end
            begin, end, lines, prepared = pending.popleft().result()
            if end > begin:
                yield _Range(fd, begin, end, lines), lines, end, prepared


def _open(inp: Input) -> int:
    inp.open().close()                  # a missing or unreadable file: its InputError
    return os.open(inp.path, os.O_RDONLY)


def _line_start(fd: int, at: int, total: int) -> int:
    """The offset of the first line starting at or after `at` (a line belongs to the range
    it starts in), or `total`."""
    if at <= 0 or at >= total:
        return max(0, min(at, total))
    pos = at - 1
    while pos < total:
        chunk = os.pread(fd, min(1 << 16, total - pos), pos)
        cut = chunk.find(b"\n")
        if cut >= 0:
            return pos + cut + 1
        if not chunk:
            break
        pos += len(chunk)
    return total


def _complete_end(fd: int, limit: int) -> int:
    """The offset after the complete lines up to about `limit` (the line it cuts, if that
    line has its end)."""
    size = os.fstat(fd).st_size
    end = _line_start(fd, min(limit, size), size)
    if end < size or os.pread(fd, 1, size - 1) == b"\n":
        return end
    pos = end            # the file ends without a line end: up to the last one before
    while pos > 0:
        chunk = os.pread(fd, min(1 << 16, pos), max(0, pos - (1 << 16)))
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            return pos - len(chunk) + cut + 1
        pos -= len(chunk)
    return 0


def _init(parser, path: str) -> None:
    _worker["parser"] = parser
    _worker["fd"] = os.open(path, os.O_RDONLY)


def _prepare(nominal: int, end: int, total: int):
    """In a worker: see _prepare_range."""
    return _prepare_range(_worker["fd"], _worker["parser"], nominal, end, total)


def _prepare_range(fd: int, parser, nominal: int, end: int, total: int):
    """(start, end, line ends, prepared) of the lines that start in [nominal, end)."""
    start, stop = _line_start(fd, nominal, total), _line_start(fd, end, total)
    if stop <= start:
        return start, start, 0, None
    data, lines = lf_ends(os.pread(fd, stop - start, start))
    return start, stop, lines, parser.prepare_block(data)


class _Range:
    """The bytes of a prepared range as its reader uses them (its length, its line ends,
    slices), read from the file only if the emitting parser asks for a slice (a prepared
    range holds what it needs but in rare cases)."""

    def __init__(self, fd: int, start: int, end: int, lines: int):
        self.fd, self.start, self.end, self.lines = fd, start, end, lines
        self.data: bytes | None = None

    def __len__(self) -> int:
        return self.end - self.start

    def count(self, sub: bytes) -> int:
        if sub == b"\n":
            return self.lines
        return self[:].count(sub)

    def __getitem__(self, item):
        if self.data is None:
            self.data = lf_ends(os.pread(self.fd, self.end - self.start, self.start))[0]
        return self.data[item]
