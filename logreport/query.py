"""`logreport query`: SQL over a site's catalog (view `runs`) and its runs' tidy rows (view
`metrics`), printed as a table, JSON or CSV."""
from __future__ import annotations

import csv
import io
import json
import math
import os
from datetime import date, datetime

from . import catalog
from .errors import InputError, UsageError


def default_site() -> str:
    """The site of the current folder: the folder itself when it holds a catalog, else ./site."""
    return "." if os.path.exists(catalog.path_of(".")) else "site"


def run(site: str, sql: str) -> tuple[list[str], list[tuple]]:
    """(column names, rows) of one SQL statement."""
    import duckdb

    con = catalog.connect_views(site)
    try:
        result = con.execute(sql)
        if result.description is None:
            return [], []
        return [d[0] for d in result.description], result.fetchall()
    except duckdb.Error as e:
        first = str(e).strip().splitlines()[0]
        raise UsageError(f"query failed: {first}", "the views are `runs` and `metrics`; see "
                         "their columns with: logreport query \"describe runs\"") from None
    except (OSError, RuntimeError) as e:
        raise InputError(f"query failed: {e}", "check the site's files", site) from None
    finally:
        con.close()


def _plain(value):
    """A value for JSON: dates as ISO 8601, non-finite numbers as strings (as export does)."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def as_json(columns: list[str], rows: list[tuple]) -> str:
    return json.dumps([{c: _plain(v) for c, v in zip(columns, row)} for row in rows],
                      ensure_ascii=False, indent=2)


def as_csv(columns: list[str], rows: list[tuple]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else json.dumps(_plain(v), ensure_ascii=False)
                         if isinstance(v, (list, dict)) else _plain(v) for v in row])
    return buf.getvalue()
