"""Tidy export of runs: JSONL and CSV streamed row by row, Parquet through pandas/pyarrow."""
from __future__ import annotations

import csv
import json
import math
import os

from .errors import UsageError
from .model import Run, iso_time
from .render import replace_atomic, write_atomic

COLUMNS = ["run", "segment", "phase", "step", "epoch", "time", "metric", "value"]
SUFFIXES = (".jsonl", ".csv", ".parquet")


def rows(runs: list[Run]):
    """Tidy rows as dicts; time as ISO 8601, values as floats."""
    for run in runs:
        name = run.name
        for seg, phase, step, epoch, t, metric, value in run.rows():
            yield {"run": name, "segment": seg, "phase": phase, "step": step, "epoch": epoch,
                   "time": iso_time(t), "metric": metric, "value": value}


def _json_value(v: float):
    if math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


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
        row["value"] = _json_value(row["value"])
        lines.append(json.dumps(row, ensure_ascii=False))
        count += 1
    write_atomic(path, "\n".join(lines) + ("\n" if lines else ""))
    return count


def _parquet(runs: list[Run], path: str) -> int:
    import pandas as pd

    frame = pd.concat([run.to_frame() for run in runs], ignore_index=True) if runs else \
        pd.DataFrame(columns=COLUMNS)
    replace_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))
    return len(frame)
