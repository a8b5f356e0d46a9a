"""Tidy export of runs: JSONL and CSV written a slice of a series at a time, Parquet through
pyarrow; all streamed into the temporary file, so memory stays flat. A value the format prints
for "not applicable" (COCO's -1.000: no object of that size) is no value: its row's value is
empty (CSV), null (JSONL, Parquet), as the report leaves it out of every chart and figure."""
from __future__ import annotations

import csv
import json
import math
import os
import re

import numpy as np

from . import formats
from .errors import UsageError
from .model import EXPORTED, Run, iso_time, json_number, plain
from .render import replace_atomic

COLUMNS = ["run", "segment", "phase", "step", "step_estimated", "epoch", "time", "metric",
           "value"]
SUFFIXES = (".jsonl", ".csv", ".parquet")
ROW_GROUP = 1 << 16         # rows per parquet row group (and per slice held in memory)


def check_suffix(path: str) -> str:
    """The export type a path names (its extension); a UsageError if none known."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"unknown export type {suffix or '(none)'!r}",
                         "use -o with .jsonl, .csv or .parquet", path)
    return suffix


def write(runs: list[Run], path: str) -> int:
    """Write all rows to path (format by extension); returns the row count. Rows go to the
    temporary file a slice of a series at a time, as they are made: memory stays flat
    however many there are."""
    suffix = check_suffix(path)
    if suffix == ".parquet":
        return _parquet(runs, path)
    count = 0

    def write_rows(tmp: str) -> None:
        nonlocal count
        count = 0
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            if suffix == ".csv":
                writer = csv.writer(f, lineterminator="\n")
                writer.writerow(COLUMNS)
            for run in runs:
                for part in run.series_columns(ROW_GROUP, EXPORTED):
                    na = _not_applicable(run, part[2], part[-1])
                    if suffix == ".csv":
                        writer.writerows(_csv_rows(run.name, *part, na=na))
                    else:
                        f.writelines(_json_lines(run.name, *part, na=na))
                    count += len(part[-1])

    replace_atomic(path, write_rows)
    return count


def _not_applicable(run: Run, metric: str, value: np.ndarray) -> np.ndarray | None:
    """Which values of a slice are the format's "not applicable" one (formats.not_applicable),
    or None where the metric has none."""
    sentinel = formats.not_applicable(run.format, metric)
    if sentinel is None:
        return None
    na = value == sentinel
    return na if na.any() else None


def _json_lines(name, seg, phase, metric, step, estimated, epoch, time, value, na=None):
    """JSONL of one slice: what json.dumps gives for each row of `rows`, made faster (null
    where `na`: not applicable)."""
    head = f'{{"run": {_json(name)}, "segment": {seg}, "phase": {_json(phase)}, "step": '
    tail = f', "metric": {_json(metric)}, "value": '
    values = [repr(v) if math.isfinite(v) else f'"{json_number(v)}"' for v in value.tolist()]
    if na is not None:
        values = ["null" if x else v for v, x in zip(values, na.tolist())]
    flags = ["true" if x else "false" for x in estimated.tolist()]
    return (f'{head}{s}, "step_estimated": {x}, "epoch": {e}, "time": {t}{tail}{v}}}\n'
            for s, x, e, t, v in zip(_texts(_plain(step), "null"), flags,
                                     _texts(_plain(epoch), "null"),
                                     [_json(t) if t else "null" for t in _times(time)], values))


def _csv_rows(name, seg, phase, metric, step, estimated, epoch, time, value, na=None):
    """CSV rows of one slice (cells as `csv_cell` makes them; empty where `na`)."""
    n = len(value)
    constant = [csv_cell(name)] * n, [seg] * n, [csv_cell(phase)] * n
    values = [csv_cell(v) for v in value.tolist()]
    if na is not None:
        values = ["" if x else v for v, x in zip(values, na.tolist())]
    return zip(*constant, _plain(step), ["true" if x else "false" for x in estimated.tolist()],
               _plain(epoch), _times(time), [csv_cell(metric)] * n, values)


def _json(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _plain(column) -> list:
    """model.plain of each value: None where NaN, an int where integral, else the float."""
    return [plain(x) for x in column.tolist()]


def _texts(values: list, none: str) -> list[str]:
    return [none if v is None else repr(v) for v in values]


def _times(column) -> list:
    """model.iso_time of each value ("" where missing)."""
    return [iso_time(t) if t == t else "" for t in column.tolist()]


_FORMULA = re.compile(r"[=+\-@\t\r]")


def csv_cell(value):
    """A CSV cell a spreadsheet cannot run: text that starts with = + - @ tab or CR and is not
    a number gets a leading ' (the rule of the page's own CSV download, csvCell in
    report.html.j2; OWASP's advice). So a non-finite value is written nan, inf or '-inf."""
    if value is None:
        return ""
    if isinstance(value, int) or isinstance(value, float) and math.isfinite(value):
        return value
    text = str(value)
    return "'" + text if _FORMULA.match(text) and not _number(text) else text


def _number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _parquet(runs: list[Run], path: str) -> int:
    """Streamed a slice of a series at a time (flat memory); the columns of `Run.to_frame`.

    Arrow arrays are built from numpy buffers: pyarrow.array(ndarray) would import pandas.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("run", pa.string()), ("segment", pa.int64()), ("phase", pa.string()),
                        ("step", pa.int64()), ("step_estimated", pa.bool_()),
                        ("epoch", pa.float64()),
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
                for seg, phase, metric, step, estimated, epoch, time, value in \
                        run.series_columns(ROW_GROUP, EXPORTED):
                    n = len(value)
                    batch = [_repeat(run.name, n),
                             _column(pa.int64(), np.full(n, seg, np.int64)), _repeat(phase, n),
                             _column(pa.int64(), step, np.int64),
                             _flags(estimated),
                             _column(pa.float64(), epoch),
                             _column(pa.timestamp("ns"), np.round(time * 1e9), np.int64),
                             _repeat(metric, n),
                             _column(pa.float64(), value,
                                     missing=_not_applicable(run, metric, value))]
                    pending.append(pa.Table.from_arrays(batch, schema=schema))
                    count += n
                    if sum(len(t) for t in pending) >= ROW_GROUP:
                        writer.write_table(pa.concat_tables(pending), ROW_GROUP)
                        pending = []
            if pending:
                writer.write_table(pa.concat_tables(pending), ROW_GROUP)

    replace_atomic(path, write)
    return count


def _column(kind, values, dtype=None, missing=None):
    """An arrow array of a numpy float column (cast to dtype: NaN becomes null; null where
    `missing`)."""
    import pyarrow as pa

    valid = None
    if dtype is not None:
        missing = np.isnan(values)
        values = np.where(missing, 0, values).astype(dtype)
    if missing is not None and missing.any():
        valid = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(kind, len(values), [valid, pa.py_buffer(values)],
                                 null_count=-1 if valid is not None else 0)


def _flags(values):
    """An arrow boolean array of a numpy 0/1 column."""
    import pyarrow as pa

    bits = np.packbits(values.astype(bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)],
                                 null_count=0)


def _repeat(text: str, n: int):
    """n times the same string, as an arrow string array."""
    import pyarrow as pa

    indices = pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(np.zeros(n, np.int32))])
    return pa.DictionaryArray.from_arrays(indices, pa.array([text])).dictionary_decode()
