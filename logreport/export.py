"""Tidy export of runs: JSONL and CSV streamed row by row, Parquet through pandas/pyarrow."""
from __future__ import annotations

import csv
import json
import os

from .errors import UsageError
from .model import Run, iso_time, json_number
from .render import replace_atomic, write_atomic

COLUMNS = ["run", "segment", "phase", "step", "epoch", "time", "metric", "value"]
SUFFIXES = (".jsonl", ".csv", ".parquet")
ROW_GROUP = 1 << 16         # rows per parquet row group (and per slice held in memory)


def rows(runs: list[Run]):
    """Tidy rows as dicts; time as ISO 8601, values as floats."""
    for run in runs:
        name = run.name
        for seg, phase, step, epoch, t, metric, value in run.rows():
            yield {"run": name, "segment": seg, "phase": phase, "step": step, "epoch": epoch,
                   "time": iso_time(t), "metric": metric, "value": value}


def write(runs: list[Run], path: str) -> int:
    """Write all rows to path (format by extension); returns the row count."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"unknown export type {suffix or '(none)'!r}",
                         "use -o with .jsonl, .csv or .parquet", path)
    if suffix == ".parquet":
        return _parquet(runs, path)
    lines = []
    count = 0
    if suffix == ".csv":
        import io

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows(runs):
            writer.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
            count += 1
        write_atomic(path, buf.getvalue())
        return count
    for row in rows(runs):
        row["value"] = json_number(row["value"])
        lines.append(json.dumps(row, ensure_ascii=False))
        count += 1
    write_atomic(path, "\n".join(lines) + ("\n" if lines else ""))
    return count


def _parquet(runs: list[Run], path: str) -> int:
    """Streamed a slice of a series at a time (flat memory); the columns of `Run.to_frame`.

    Arrow arrays are built from numpy buffers: pyarrow.array(ndarray) would import pandas.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("run", pa.string()), ("segment", pa.int64()), ("phase", pa.string()),
                        ("step", pa.int64()), ("epoch", pa.float64()),
                        ("time", pa.timestamp("ns")), ("metric", pa.string()),
                        ("value", pa.float64())])
    count = 0

    def write(tmp: str) -> None:
        nonlocal count
        count = 0
        pending: list = []  # slices gathered into row groups of ROW_GROUP rows, not one each
        # no min/max of `value`: they leave NaN out, and DuckDB (2.0) then skips row groups
        # for `where isnan(value)` as if they held none
        stats = [name for name in schema.names if name != "value"]
        with pq.ParquetWriter(tmp, schema, write_statistics=stats) as writer:
            for run in runs:
                for seg, phase, metric, step, epoch, time, value in run.series_columns(ROW_GROUP):
                    n = len(value)
                    batch = [_repeat(run.name, n),
                             _column(pa.int64(), np.full(n, seg, np.int64)), _repeat(phase, n),
                             _column(pa.int64(), step, np.int64),
                             _column(pa.float64(), epoch),
                             _column(pa.timestamp("ns"), np.round(time * 1e9), np.int64),
                             _repeat(metric, n), _column(pa.float64(), value)]
                    pending.append(pa.Table.from_arrays(batch, schema=schema))
                    count += n
                    if sum(len(t) for t in pending) >= ROW_GROUP:
                        writer.write_table(pa.concat_tables(pending), ROW_GROUP)
                        pending = []
            if pending:
                writer.write_table(pa.concat_tables(pending), ROW_GROUP)

    replace_atomic(path, write)
    return count


def _column(kind, values, dtype=None):
    """An arrow array of a numpy float column (cast to dtype: NaN becomes null)."""
    import numpy as np
    import pyarrow as pa

    valid = None
    if dtype is not None:
        missing = np.isnan(values)
        values = np.where(missing, 0, values).astype(dtype)
        if missing.any():
            valid = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(kind, len(values), [valid, pa.py_buffer(values)],
                                 null_count=-1 if valid is not None else 0)


def _repeat(text: str, n: int):
    """n times the same string, as an arrow string array."""
    import numpy as np
    import pyarrow as pa

    indices = pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(np.zeros(n, np.int32))])
    return pa.DictionaryArray.from_arrays(indices, pa.array([text])).dictionary_decode()
