"""Rolling statistics of a series (numpy, windows of the values before each): the levels and
medians that the spike and divergence detectors compare a loss with."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def median_of(values, axis: int | None = None):
    """np.median(values, axis), the same values (NaN where a value is NaN), without what
    np.median does on its first call: import numpy.ma (8 ms of every summary)."""
    values = np.asarray(values)
    if axis is None:
        values, axis = values.ravel(), 0
    n = values.shape[axis]
    if not n:
        return np.median(values, axis=axis)      # (NaN, and numpy's warning)
    middle = [n // 2 - 1, n // 2] if n % 2 == 0 else [n // 2]
    part = np.partition(values, [*middle, -1], axis=axis)     # NaNs sort last
    out = np.take(part, middle, axis=axis).mean(axis=axis)
    if not np.issubdtype(values.dtype, np.inexact):
        return out
    nan = np.isnan(np.take(part, -1, axis=axis))
    if np.ndim(out) == 0:
        return values.dtype.type(np.nan) if nan else out
    out[nan] = np.nan
    return out


def rolling_median(vals: np.ndarray, width: int, chunk: int = 1 << 16) -> np.ndarray:
    """Median of each value and the width-1 before it (fewer at the start)."""
    if width <= 1 or not len(vals):
        return vals.copy()
    out = np.empty(len(vals))
    for i in range(min(width - 1, len(vals))):
        out[i] = median_of(vals[:i + 1])
    windows = sliding_window_view(vals, width) if len(vals) >= width else vals[:0, None]
    for start in range(0, len(windows), chunk):      # bounded memory on long runs
        out[width - 1 + start:width - 1 + start + chunk] = _medians(windows[start:start + chunk])
    return out


def _medians(windows: np.ndarray) -> np.ndarray:
    """np.median(windows, axis=1) of finite values; narrow windows are sorted column-wise by
    a network of minimums and maximums (3x faster than numpy's partition)."""
    width = windows.shape[1]
    if width > 9:
        return median_of(windows, axis=1)
    if width == 5:          # (the default windows: 7 comparisons, 10 minimums and maximums)
        return _median5(*(windows[:, i] for i in range(5)))
    columns = [windows[:, i] for i in range(width)]
    for done in range(width - 1):               # each pass takes the largest left to its place
        for i in range(width - 1 - done):
            columns[i], columns[i + 1] = (np.minimum(columns[i], columns[i + 1]),
                                          np.maximum(columns[i], columns[i + 1]))
    middle = width // 2
    return columns[middle] if width % 2 else (columns[middle - 1] + columns[middle]) / 2


def _median5(a, b, c, d, e) -> np.ndarray:
    """The median of five columns: a network that leaves out every comparison whose loser
    can no longer be the median."""
    low, b = np.minimum(a, b), np.maximum(a, b)
    d, e = np.minimum(d, e), np.maximum(d, e)
    d = np.maximum(low, d)              # the smallest of a, b, d, e is out
    b = np.minimum(b, e)                # the largest of them is out
    b, c = np.minimum(b, c), np.maximum(b, c)
    return np.maximum(b, np.minimum(c, d))


def median_before(vals: np.ndarray, width: int, factor: float) -> np.ndarray:
    """Median of the `width` values before each one (fewer at the start), computed only where
    the value exceeds factor x the window's minimum (no median can be smaller); +inf elsewhere."""
    before = np.full(len(vals), np.inf)
    if len(vals) < 2:
        return before
    rolling = _rolling_min(vals, width)[:-1]       # window ending at i-1, for i = 1..n-1
    with np.errstate(invalid="ignore"):
        candidates = np.flatnonzero(vals[1:] > factor * rolling) + 1
    early, late = candidates[candidates < width], candidates[candidates >= width]
    for i in early:
        before[i] = median_of(vals[:i])
    if len(late):
        before[late] = median_of(sliding_window_view(vals, width)[late - width], axis=1)
    return before


def _rolling_min(vals: np.ndarray, width: int) -> np.ndarray:
    """Minimum of each value and the width-1 before it (fewer at the start)."""
    padded = np.concatenate([np.full(width - 1, np.inf), vals])
    out = vals.copy()
    for back in range(1, width):          # (whole shifted copies: 5x a strided window's min)
        np.minimum(out, padded[width - 1 - back:len(padded) - back], out=out)
    return out
