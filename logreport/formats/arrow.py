"""pyarrow's compute kernels on the bytes of a block (no copy of the block, no GIL), called
through `pyarrow._compute` itself: importing `pyarrow.compute` first wraps every kernel in a
Python function (30 ms on every command that reads a log)."""
from __future__ import annotations

import numpy as np


def lines(data: bytes, starts: np.ndarray, end: int):
    """A binary array of data[starts[i]:starts[i + 1]] (the last up to `end`)."""
    import pyarrow as pa

    offsets = np.empty(len(starts) + 1, dtype=np.int32)
    offsets[:-1], offsets[-1] = starts, end
    return pa.BinaryArray.from_buffers(pa.binary(), len(starts), [None, pa.py_buffer(offsets),
                                                                 pa.py_buffer(data)])


def slices(data: bytes, starts: np.ndarray, ends: np.ndarray):
    """A binary array of data[starts[i]:ends[i]] (spans in increasing, disjoint order)."""
    import pyarrow as pa

    m = starts.size
    bounds = np.empty(2 * m, dtype=np.int64)         # each span, then what is between
    bounds[0::2], bounds[1::2] = starts.ravel(), ends.ravel()
    every_other = np.arange(0, 2 * m, 2, dtype=np.int64)
    return _call("take", lines(data, bounds, len(data)),
                 pa.Array.from_buffers(pa.int64(), m, [None, pa.py_buffer(every_other)]))


def floats(texts) -> np.ndarray:
    """Printed numbers (a binary array) as float64s: correctly rounded, like float(); raises
    pyarrow.ArrowInvalid on a text the cast does not take (it takes none that float() does not)."""
    import pyarrow as pa
    from pyarrow._compute import CastOptions

    out = _call("cast", texts, options=CastOptions.safe(pa.float64()))
    return np.frombuffer(out.buffers()[1], np.float64, len(out), out.offset * 8)


def matches(texts, pattern: str) -> np.ndarray:
    """Which texts an RE2 pattern matches (a search: anchor it with ^ and $)."""
    from pyarrow._compute import MatchSubstringOptions

    flags = _call("match_substring_regex", texts, options=MatchSubstringOptions(pattern))
    return np.unpackbits(np.frombuffer(flags.buffers()[1], np.uint8),
                         bitorder="little")[flags.offset:flags.offset + len(texts)].astype(bool)


def _call(name: str, *args, options=None):
    from pyarrow._compute import call_function

    return call_function(name, list(args), options)
