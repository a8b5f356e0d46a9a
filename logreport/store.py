"""Column: an append-only float64 column kept compact in memory, losslessly.

Values go to an open tail; every CHUNK values the tail is sealed into a `Chunk`. Logs print
numbers as decimals (`loss: 1.234567`, `'loss': 7.519`), so a chunk is usually stored as
decimal mantissas (1234567 and a scale of 10**6) in the smallest integer type that holds
them, byte-shuffled and zstd-compressed: 2-3 bytes for a noisy loss, almost nothing for steps,
epochs, line numbers or a learning rate, instead of 8. Decoding gives back the very same
float64 bits (checked when sealing; a chunk that does not round-trip is stored as raw float64).
A column given a `Spill` (each Run has one) writes sealed payloads to an unlinked temporary
file: the kernel's page cache keeps them, not the process, so memory stays about flat however
long the log; the file goes with the Run.
"""
from __future__ import annotations

import os
import tempfile
import threading
import weakref
from array import array

import numpy as np

CHUNK = 1 << 16          # values per sealed chunk
MAX_DECIMALS = 15
MAX_ODD = 1024           # non-finite values a chunk keeps apart, in memory; more (a column of
                         # NaN: no time stamps): the chunk is stored as raw float64, compressed
_INTS = (np.int8, np.int16, np.int32, np.int64)
_codec = None


def _zstd():
    global _codec
    if _codec is None:
        import pyarrow as pa

        _codec = pa.Codec("zstd", compression_level=1)
    return _codec


class Spill:
    """Append-only bytes in an unlinked temporary file (made on first use, deleted when the
    Spill is), read back by offset; kept in memory instead when the file cannot be made or
    written (a full or read-only disk) or positional I/O is missing (Windows)."""

    def __init__(self):
        self._file = None
        self._size = 0
        self._lock = threading.Lock()
        self._broken = not hasattr(os, "pwrite")     # positional I/O is POSIX; else memory

    def put(self, data: bytes):
        """A reference to the bytes for `get`: (offset, length) in the file, or the bytes."""
        with self._lock:
            if not self._broken:
                try:
                    if self._file is None:
                        self._file = tempfile.TemporaryFile(prefix="logreport-")
                        weakref.finalize(self, self._file.close)
                    os.pwrite(self._file.fileno(), data, self._size)
                    self._size += len(data)
                    return self._size - len(data), len(data)
                except OSError:
                    self._broken = True
            return data

    def get(self, ref) -> bytes:
        if isinstance(ref, bytes):
            return ref
        offset, length = ref
        return os.pread(self._file.fileno(), length, offset)

    @staticmethod
    def size(ref) -> int:
        return len(ref) if isinstance(ref, bytes) else ref[1]

    def __reduce__(self):
        """Pickled as the bytes it holds: references into them stay valid (a saved parse)."""
        with self._lock:
            data = b"" if self._file is None else os.pread(self._file.fileno(), self._size, 0)
        return _unpickle_spill, (data,)


def _unpickle_spill(data: bytes) -> Spill:
    spill = Spill()
    if data and not isinstance(spill.put(data), tuple):
        raise ValueError("a saved Spill needs its temporary file")   # refs are file offsets
    return spill


class Chunk:
    """CHUNK values, sealed: mantissas (or raw float64) + the non-finite values apart."""

    __slots__ = ("n", "dtype", "decimals", "payload", "odd_at", "odd")

    def __init__(self, values: np.ndarray, spill: Spill | None):
        self.n = len(values)
        finite = np.isfinite(values)
        self.odd_at = np.flatnonzero(~finite).astype(np.int32)
        self.odd = values[self.odd_at]
        work = values if not len(self.odd_at) else np.where(finite, values, 0.0)
        ints, self.decimals = _mantissas(work) if len(self.odd_at) <= MAX_ODD else (None, None)
        if ints is None:         # (new empty arrays: a slice would keep the whole one)
            self.odd_at, self.odd = np.empty(0, np.int32), np.empty(0)
            ints = values
        self.dtype = ints.dtype
        payload = _zstd().compress(_shuffle(ints), asbytes=True)
        self.payload = spill.put(payload) if spill is not None else payload

    def decode(self, spill: Spill | None) -> np.ndarray:
        size = self.dtype.itemsize
        payload = spill.get(self.payload) if spill is not None else self.payload
        raw = _zstd().decompress(payload, decompressed_size=self.n * size, asbytes=True)
        planes = np.frombuffer(raw, np.uint8).reshape(size, self.n)
        stored = np.empty((self.n, size), dtype=np.uint8)
        for k in range(size):              # (3x faster than a transposed copy)
            stored[:, k] = planes[k]
        stored = stored.view(self.dtype).ravel()
        if self.decimals is None:
            return stored
        out = stored.astype(np.float64)
        if self.decimals:
            out /= 10.0 ** self.decimals
        out[self.odd_at] = self.odd
        return out

    @property
    def nbytes(self) -> int:
        """Bytes stored (in the spill file or in memory)."""
        return Spill.size(self.payload) + self.odd_at.nbytes + self.odd.nbytes


def _shuffle(values: np.ndarray) -> bytes:
    """The bytes of the values, byte 0 of every value first, then byte 1, ... (compresses
    better: the high bytes of nearby numbers are alike)."""
    size = values.dtype.itemsize
    return np.ascontiguousarray(values.view(np.uint8).reshape(-1, size).T).tobytes()


def _mantissas(work: np.ndarray) -> tuple[np.ndarray | None, int | None]:
    """(integers m, d) with m / 10**d == work bit for bit, m in the smallest int type; or
    (None, None) when the values are not short decimals."""
    magnitudes = np.abs(work)           # the smallest one needs the most decimals (of a
    magnitudes[magnitudes == 0] = np.inf    # decaying learning rate, say)
    fewest = _decimals_of(np.append(work[:16], work[np.argmin(magnitudes)]))
    if fewest is None:
        return None, None
    bits = work.view(np.int64)
    for d in range(fewest, min(fewest + 4, MAX_DECIMALS + 1)):
        scale = 10.0 ** d
        scaled = np.rint(work * scale)
        if np.abs(scaled).max(initial=0.0) >= 2.0 ** 53:
            return None, None
        ints = scaled.astype(np.int64)
        back = ints / scale if d else ints.astype(np.float64)
        if np.array_equal(back.view(np.int64), bits):
            low, high = int(ints.min(initial=0)), int(ints.max(initial=0))
            for dtype in _INTS:
                info = np.iinfo(dtype)
                if info.min <= low and high <= info.max:
                    return ints.astype(dtype), d
    return None, None


def _decimals_of(sample: np.ndarray) -> int | None:
    """The fewest decimals that give back every value of a small sample (None: over 15)."""
    bits = sample.view(np.int64)
    for d in range(MAX_DECIMALS + 1):
        scale = 10.0 ** d
        ints = np.rint(sample * scale)
        if np.abs(ints).max(initial=0.0) >= 2.0 ** 53:
            return None
        if np.array_equal((ints.astype(np.int64) / scale).view(np.int64), bits):
            return d
    return None


class Column:
    """Append-only float64 values: sealed chunks (in `spill`, if given), then an open tail
    (which always holds the last value, so it can be replaced). `np.asarray(column)` gives
    all of them."""

    __slots__ = ("_chunks", "_sealed", "_tail", "_spill")

    def __init__(self, spill: Spill | None = None):
        self._spill = spill
        self._chunks: list[Chunk] = []
        self._sealed = 0
        self._tail = array("d")

    def __len__(self) -> int:
        return self._sealed + len(self._tail)

    def append(self, value: float) -> None:
        self._tail.append(value)
        if len(self._tail) > CHUNK:
            self._seal()

    def extend(self, values) -> None:
        """Append a numpy array (or anything numpy can make float64)."""
        self._tail.frombytes(np.ascontiguousarray(values, dtype=np.float64).tobytes())
        if len(self._tail) > CHUNK:
            self._seal()

    def _seal(self) -> None:
        tail = np.frombuffer(self._tail, dtype=np.float64)
        cut = (len(tail) - 1) // CHUNK * CHUNK       # keep at least the last value open
        for lo in range(0, cut, CHUNK):
            self._chunks.append(Chunk(tail[lo:lo + CHUNK].copy(), self._spill))
        del tail
        self._tail = array("d", self._tail[cut:])
        self._sealed += cut

    def fork(self) -> Column:
        """A copy that shares the sealed chunks (they never change): what is appended to
        either stays its own."""
        twin = Column(self._spill)
        twin._chunks, twin._sealed = list(self._chunks), self._sealed
        twin._tail = array("d", self._tail)
        return twin

    def __getitem__(self, i: int) -> float:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("column index out of range")
        if i >= self._sealed:
            return self._tail[i - self._sealed]
        return float(self._chunks[i // CHUNK].decode(self._spill)[i % CHUNK])

    def __setitem__(self, i: int, value: float) -> None:
        """Replace a value of the open tail (the last one, say)."""
        if i < 0:
            i += len(self)
        if i < self._sealed:
            raise IndexError("only values of the open tail can be replaced")
        self._tail[i - self._sealed] = value

    def slice(self, lo: int, hi: int) -> np.ndarray:
        """Values lo..hi-1 as a new array, decoding only the chunks they lie in."""
        lo, hi = max(lo, 0), min(hi, len(self))
        if hi <= lo:
            return np.empty(0)
        parts, start = [], self._sealed
        if lo < self._sealed:
            end = min(hi, self._sealed)
            parts = [self._chunks[k].decode(self._spill)
                     for k in range(lo // CHUNK, (end - 1) // CHUNK + 1)]
            start = lo // CHUNK * CHUNK
        if hi > self._sealed:
            parts.append(np.frombuffer(self._tail, dtype=np.float64).copy())
        joined = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return joined[lo - start:hi - start]

    def take(self, idx: np.ndarray) -> np.ndarray:
        """The values at sorted indexes `idx`, decoding one chunk at a time."""
        if not len(idx):
            return np.empty(0)
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        if hi - lo == len(idx):
            return self.slice(lo, hi)
        out = np.empty(len(idx))
        starts = np.arange(lo // CHUNK * CHUNK, hi, CHUNK)        # the chunks they lie in
        cuts = [0, *np.searchsorted(idx, starts[1:]).tolist(), len(idx)]
        for start, a, b in zip(starts.tolist(), cuts, cuts[1:]):
            if b > a:
                out[a:b] = self.slice(start, start + CHUNK)[idx[a:b] - start]
        return out

    def __iter__(self):
        for chunk in self._chunks:
            yield from chunk.decode(self._spill).tolist()
        yield from self._tail

    def __array__(self, dtype=None, copy=None):
        out = self.slice(0, len(self))
        return out if dtype is None else out.astype(dtype, copy=False)

    @property
    def nbytes(self) -> int:
        """Bytes stored (sealed chunks, wherever they are, and the tail's values)."""
        return sum(c.nbytes for c in self._chunks) + self._tail.itemsize * len(self._tail)
