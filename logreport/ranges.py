"""A big log read on every core: cut at line ends into ranges that worker processes prepare
(the stateless part of a format's block fast path: matching, numbers) while this process emits
each prepared range in order, so the parser's state (steps, pending records, flags) is carried
across every cut exactly as when reading the file from one end to the other.

`blocks(inp, ingest)` is the one entry point: it yields `(number, data, prepared)` like
`pipeline.prepared_ahead`, for `Ingest.feed_block`. The log's start is read as `Input.blocks`
reads it (the format is decided there); small files, streams, `.gz` files, logs behind a URL
(read ahead in big ranged requests, which beat many small ones from workers), formats without
`prepare_block` and systems without `fork` are read so to their end. A range the workers cannot
give as `Input.blocks` would (NUL bytes, a frame longer than MAX_LINE: `bounded` clips those)
hands the rest of the file back to `Input`'s reader. Memory stays flat: at most three ranges per
worker are in flight.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
import warnings
from multiprocessing.reduction import ForkingPickler

import numpy as np

from .bounded import BlockReader
from .errors import InputError
from .events import MAX_LINE
from .sources import BLOCK, Input, is_url, lf_ends, positional

MIN_SIZE = 48 << 20       # bytes: a smaller log is read in this process
RANGE = 2 << 20           # bytes a worker prepares at a time (the range's lines, whole)
LINE_TAIL = 1 << 16       # bytes read past a range's end to find where its last line ends
AHEAD = 3                 # ranges in flight per worker (a worker sends as it goes: 0-30 ms
                          # less than 2 on the perf-lf console)
FIRST = 256 << 10         # bytes of the blocks read here first (the format is decided on them)

_worker: dict = {}        # in a worker process: the parser and the open file


def blocks(inp: Input, ingest, limit: int | None = None, workers: int | None = None,
           size: int = RANGE, min_size: int = MIN_SIZE):
    """(number, data, prepared) of the whole-line blocks of an input, in order.

    limit: read only the complete lines up to about this offset (a log being written: `watch`
    reads its backlog so); `inp.offset` is then the offset after them. workers: processes
    (default: one per core); size: bytes per range and first block; min_size: the smallest
    log read so.
    """
    from .pipeline import prepared_ahead

    workers = workers or cores()
    length = None if inp.path == "-" or inp.path.endswith(".gz") or is_url(inp.path) \
        else inp.size()
    if length is None or min(length, limit or length) < min_size or workers < 2 \
            or "fork" not in multiprocessing.get_all_start_methods() or _holed(inp.path):
        return prepared_ahead(inp.complete_blocks(limit) if limit is not None else inp.blocks(),
                              ingest)
    return _parallel(inp, ingest, limit, workers, size)


def cores() -> int:
    """The cores this process may run on (its CPU affinity: `taskset`, a container's cpuset),
    else the machine's."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:          # no affinity on this system (macOS, Windows)
        return os.cpu_count() or 1


def _holed(path: str) -> bool:
    """Whether a file starts with NUL bytes (a copytruncate hole, which `Input` skips)."""
    try:
        file = positional(path)
    except InputError:
        return False                    # Input says why
    try:
        return file.read(0, 1) == b"\0"
    finally:
        file.close()


def _parallel(inp: Input, ingest, limit: int | None, workers: int, size: int):
    serial = inp.complete_blocks(limit, min(FIRST, size)) if limit is not None \
        else inp.blocks(min(FIRST, size))
    number, at = 1, 0
    for number, data in serial:            # the format is decided on the first blocks
        yield number, data, None
        number, at = number + data.count(b"\n"), inp.offset
        if hasattr(ingest.parser, "prepare_block") and data.endswith(b"\n"):
            break
    else:
        return
    serial.close()
    file = positional(inp.path)
    try:
        total = file.size() if limit is None else _complete_end(file, limit)
        for data, lines, end, prepared in _prepared(inp, ingest.parser, file, at, total, workers,
                                                    size):
            if prepared is None:        # read as `Input` reads it, from here on
                yield from _serial(inp, end, number, total, limit is not None)
                return
            yield number, data, prepared
            number += lines
            inp.offset = end
    finally:
        file.close()


def _serial(inp: Input, start: int, number: int, total: int, complete: bool):
    """The blocks from offset `start` (a line's start) on, as `Input.blocks` gives them."""
    stream = inp.open()
    try:
        stream.seek(start)
        reader = BlockReader(stream, BLOCK, None, complete)
        cut = inp.cut
        for data in reader.blocks(total - start):
            data, ends = lf_ends(data)
            inp.offset = reader.offset if complete else start + reader.offset
            inp.cut = cut + reader.cut
            yield number, data, None
            number += len(ends)
    finally:
        stream.close()


def _prepared(inp: Input, parser, file, start: int, total: int, workers: int, size: int):
    """(data, lines, end, prepared) of the ranges from `start` on, prepared by workers, in
    order (the data as a `_Range`); prepared None: a range they cannot read, a worker gone or
    none to be had (`end` is where this process reads on), and no more. Range k goes to worker
    k % workers; each has at most AHEAD ranges in flight (no thread here: each result is read
    when its turn comes). The workers are stopped before this process reads on."""
    pool: list[_Worker] = []
    here = None                             # where this process reads on, if it must
    try:
        try:
            while len(pool) < workers:
                pool.append(_Worker(parser, inp.path))
        except OSError:                     # no process to be had (a limit, memory)
            here = start
        nominal, sent, done, at = start, 0, 0, start
        while here is None and (done < sent or nominal < total):
            while nominal < total and sent - done < AHEAD * workers:
                end = min(nominal + size, total)
                pool[sent % workers].send((nominal, end, total))
                nominal, sent = end, sent + 1
            result = pool[done % workers].receive()
            done += 1
            if result is None:              # the worker is gone
                here = at
                break
            begin, end, lines, prepared = result
            if prepared is None and end > begin:
                here = begin
                break
            if end > begin:
                yield _Range(file, begin, end, lines), lines, end, prepared
            at = max(at, end)
    finally:
        for worker in pool:
            worker.close()
    if here is not None:
        yield None, 0, here, None


class _Worker:
    """A forked process that prepares the ranges sent to it, in the order sent."""

    def __init__(self, parser, path: str):
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        with warnings.catch_warnings():     # the worker only prepares: no lock of
            warnings.filterwarnings(        # another thread is its to take
                "ignore", ".*fork", DeprecationWarning)
            self.process = context.Process(target=_serve, args=(child, parser, path),
                                           daemon=True)
            self.process.start()
        child.close()

    def send(self, task: tuple) -> None:
        try:
            self.conn.send(task)
        except OSError:             # it died: `receive` says so when its turn comes
            pass

    def receive(self):
        """The next result, or None where the worker died."""
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            return None

    def close(self) -> None:
        """Stop the worker, whatever it is doing (its ranges are not needed any more)."""
        self.conn.close()
        self.process.kill()
        self.process.join()


def _serve(conn, parser, path: str) -> None:
    """A worker's loop: prepare each range sent, while a thread sends the results before it
    (a result, 0.4-0.6 MB, outgrows a socket's buffer, 208 kB by default: the worker would
    wait, idle, until the main process took it). Ctrl-C is the main process's to handle; on
    an error the worker stops, and the main process reads on itself from the range it did
    not get (meeting the same error there, if it is one of the code)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init(parser, path)
    results: queue.SimpleQueue = queue.SimpleQueue()        # (at most AHEAD of them)
    threading.Thread(target=_send_all, args=(conn, results), daemon=True).start()
    try:
        while True:
            results.put(ForkingPickler.dumps(_prepare(*conn.recv())))
    except Exception:
        return


def _send_all(conn, results: queue.SimpleQueue) -> None:
    """A worker's sending thread: each pickled result, in order."""
    try:
        while True:
            conn.send_bytes(results.get())
    except OSError:             # the main process is gone or done
        return


def _line_start(file, at: int, total: int, read: bytes = b"", low: int = 0) -> int:
    """The offset of the first line starting at or after `at` (a line belongs to the range
    it starts in), or `total`; `read`: bytes of the file from offset `low`, looked at first."""
    if at <= 0 or at >= total:
        return max(0, min(at, total))
    if low <= at - 1 < low + len(read):
        cut = read.find(b"\n", at - 1 - low)
        if cut >= 0:
            return low + cut + 1
    pos = at - 1
    while pos < total:
        chunk = file.read(pos, min(pos + (1 << 16), total))
        cut = chunk.find(b"\n")
        if cut >= 0:
            return pos + cut + 1
        if not chunk:
            break
        pos += len(chunk)
    return total


def _complete_end(file, limit: int) -> int:
    """The offset after the complete lines up to about `limit` (the line it cuts, if that
    line has its end)."""
    size = file.size()
    end = _line_start(file, min(limit, size), size)
    if end < size or file.read(size - 1, size) == b"\n":
        return end
    pos = end            # the file ends without a line end: up to the last one before
    while pos > 0:
        chunk = file.read(max(0, pos - (1 << 16)), pos)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            return pos - len(chunk) + cut + 1
        pos -= len(chunk)
    return 0


def _init(parser, path: str) -> None:
    _worker["parser"] = parser
    _worker["file"] = positional(path)


def _prepare(nominal: int, end: int, total: int):
    """In a worker: (start, end, line ends, prepared) of the lines that start in
    [nominal, end); prepared None when `Input` would not give these bytes as they are."""
    file = _worker["file"]
    low, high = max(0, nominal - 1), min(total, end + LINE_TAIL)
    read = file.read(low, high)       # one read, but for a line longer than the tail
    start, stop = _line_start(file, nominal, total, read, low), \
        _line_start(file, end, total, read, low)
    if stop <= start:
        return start, start, 0, None
    data, ends = lf_ends(read[start - low:stop - low] if stop <= high else file.read(start, stop))
    if b"\0" in data or _long_frame(data):
        return start, stop, len(ends), None
    return start, stop, len(ends), _worker["parser"].prepare_block(data, ends)


def _long_frame(data: bytes) -> bool:
    """Whether a frame (between line ends and `\\r`) of data is longer than MAX_LINE."""
    half = MAX_LINE // 2            # such a frame holds a whole window of this size
    if all(data.find(b"\n", k, k + half) >= 0 or data.find(b"\r", k, k + half) >= 0
           for k in range(0, len(data) - half + 1, half)):
        return False
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    starts = np.concatenate(([0], ends + 1))
    stops = np.append(ends, len(data))
    long = stops - starts > MAX_LINE
    return any(max(map(len, data[a:b].split(b"\r"))) > MAX_LINE
               for a, b in zip(starts[long].tolist(), stops[long].tolist()))


class _Range:
    """The bytes of a prepared range as its reader uses them (its length, its line ends,
    slices), read from the file only if the emitting parser asks for a slice (a prepared
    range holds what it needs but in rare cases)."""

    def __init__(self, file, start: int, end: int, lines: int):
        self.file, self.start, self.end, self.lines = file, start, end, lines
        self.data: bytes | None = None

    def __len__(self) -> int:
        return self.end - self.start

    def count(self, sub: bytes) -> int:
        if sub == b"\n":
            return self.lines
        return self[:].count(sub)

    def __getitem__(self, item):
        if self.data is None:
            self.data = lf_ends(self.file.read(self.start, self.end))[0]
        return self.data[item]
