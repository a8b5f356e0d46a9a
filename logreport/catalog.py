"""The runs catalog of a site: one DuckDB file, `SITE/.logreport/catalog.duckdb`.

Tables: `catalog_runs` (a row per readable run: its figures as columns, the whole summary, the run
facts and the index page's row as JSON), `catalog_files` (what each run was read from: path, size,
mtime, inode, the offset after its last complete line and hashes of its first 64 KiB and of
the bytes before that offset) and `catalog_skipped` (logs that gave no run, with the reason). Each
run's tidy rows are a Parquet file, `SITE/.logreport/runs/<id>.parquet` (the columns of
`export`). `connect_views` adds the two views `logreport query` offers: `runs` and `metrics`.

The file is opened only for the time of a read or a write: another process (`logreport
query`, a second `index`) can open it in between.
"""
from __future__ import annotations

import contextlib
import json
import os
import time

from .errors import InputError, UsageError

FOLDER = ".logreport"
SCHEMA = 1
RUN_COLUMNS = (
    ("id", "VARCHAR"), ("name", "VARCHAR"), ("folder", "VARCHAR"), ("source", "VARCHAR"),
    ("format", "VARCHAR"), ("status", "VARCHAR"), ("status_evidence", "VARCHAR"),
    ("started", "TIMESTAMP"), ("ended", "TIMESTAMP"), ("modified", "TIMESTAMP"),
    ("wall_seconds", "DOUBLE"), ("eta_seconds", "DOUBLE"), ("progress_percent", "DOUBLE"),
    ("last_step", "BIGINT"), ("total_steps", "BIGINT"), ("last_epoch", "DOUBLE"),
    ("train_records", "BIGINT"), ("eval_records", "BIGINT"),
    ("loss_metric", "VARCHAR"), ("final_loss", "DOUBLE"),
    ("best_metric", "VARCHAR"), ("best_value", "DOUBLE"), ("best_step", "BIGINT"),
    ("best_epoch", "DOUBLE"), ("throughput_metric", "VARCHAR"), ("throughput", "DOUBLE"),
    ("anomalies", "INTEGER"), ("anomaly_kinds", "VARCHAR[]"), ("unparsed_lines", "BIGINT"),
    ("metric_rows", "BIGINT"), ("parquet", "VARCHAR"), ("page", "VARCHAR"),
    ("summary", "JSON"), ("facts", "JSON"), ("view", "JSON"),
    ("logreport_version", "VARCHAR"), ("indexed_at", "TIMESTAMP"))
FILE_COLUMNS = (("run_id", "VARCHAR"), ("path", "VARCHAR"), ("size", "BIGINT"),
                ("mtime_ns", "BIGINT"), ("inode", "BIGINT"), ("offset", "BIGINT"),
                ("line", "BIGINT"), ("head", "VARCHAR"), ("seam", "VARCHAR"))
SKIPPED_COLUMNS = (("id", "VARCHAR"), ("name", "VARCHAR"), ("source", "VARCHAR"),
                   ("reason", "VARCHAR"))
TABLES = {"catalog_runs": RUN_COLUMNS, "catalog_files": FILE_COLUMNS,
          "catalog_skipped": SKIPPED_COLUMNS}
LOCK_WAIT = 10.0         # seconds to wait for another process holding the catalog


def path_of(site: str) -> str:
    return os.path.join(site, FOLDER, "catalog.duckdb")


def rows_folder(site: str) -> str:
    return os.path.join(site, FOLDER, "runs")


def connect(site: str, read_only: bool = False):
    """A DuckDB connection to the site's catalog (made, with its tables, when missing and not
    read-only); waits up to LOCK_WAIT seconds while another process writes it."""
    import duckdb

    path = path_of(site)
    if read_only and not os.path.exists(path):
        raise UsageError("no runs catalog here", "make one with `logreport index ROOT -o SITE`, "
                         "or give --site", site)
    if not read_only:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            con = duckdb.connect(path, read_only=read_only)
            break
        except duckdb.IOException as e:
            if "lock" not in str(e).lower() or time.monotonic() > deadline:
                raise InputError(f"cannot open the catalog: {str(e).splitlines()[0]}",
                                 "is another logreport writing it? try again", path) from None
            time.sleep(0.1)
        except duckdb.Error as e:
            raise InputError(f"not a readable catalog: {str(e).splitlines()[0]}",
                             "remove SITE/.logreport to rebuild it with `logreport index`",
                             path) from None
    if not read_only:
        _create(con)
    return con


@contextlib.contextmanager
def opened(site: str, read_only: bool = False):
    """`connect`, closed when the block ends."""
    con = connect(site, read_only)
    try:
        yield con
    finally:
        con.close()


def _create(con) -> None:
    """The tables, once; a catalog of another schema is emptied (the next index refills it)."""
    con.execute("create table if not exists meta (key VARCHAR, value VARCHAR)")
    found = con.execute("select value from meta where key = 'schema'").fetchone()
    if found is not None and found[0] == str(SCHEMA):
        return
    for name, columns in TABLES.items():
        con.execute(f"drop table if exists {name}")
        con.execute(f"create table {name} ({_typed(columns, ' ')})")
    con.execute("delete from meta")
    con.execute("insert into meta values ('schema', ?)", [str(SCHEMA)])


def read_state(con) -> dict:
    """What an incremental index needs: per entry id, its files as dicts (FILE_COLUMNS), and
    its status and version when it is a run (`runs`) or that it was skipped (`skipped`)."""
    files: dict[str, list[dict]] = {}
    names = [c for c, _ in FILE_COLUMNS]
    for values in con.execute(f"select {_quoted(names)} from catalog_files").fetchall():
        row = dict(zip(names, values))
        files.setdefault(row.pop("run_id"), []).append(row)
    runs = {i: (status, version) for i, status, version in
            con.execute("select id, status, logreport_version from catalog_runs").fetchall()}
    skipped = {i for (i,) in con.execute("select id from catalog_skipped").fetchall()}
    return {"files": files, "runs": runs, "skipped": skipped}


def views(con) -> list[dict]:
    """The index page's rows, in name order."""
    return [json.loads(v) for (v,) in con.execute("select view from catalog_runs order by name").fetchall()]


def write(con, gone: list[str], runs: list[dict], files: list[dict], skipped: list[dict]) -> None:
    """In one transaction: entries `gone` and those written again are deleted, then `runs`,
    `files` and `skipped` rows (dicts of their columns) are inserted."""
    import pyarrow as pa

    again = list(gone) + [r["id"] for r in runs] + [s["id"] for s in skipped]
    con.execute("begin transaction")
    try:
        if again:
            con.register("again_ids", pa.table({"id": pa.array(again, pa.string())}))
            for table, key in (("catalog_runs", "id"), ("catalog_files", "run_id"),
                               ("catalog_skipped", "id")):
                con.execute(f"delete from {table} where {key} in (select id from again_ids)")
            con.unregister("again_ids")
        for table, rows in (("catalog_runs", runs), ("catalog_files", files),
                            ("catalog_skipped", skipped)):
            if rows:
                _insert(con, table, rows)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _insert(con, table: str, rows: list[dict]) -> None:
    """Rows through an Arrow table (one statement), each column cast to its SQL type."""
    import pyarrow as pa

    columns = TABLES[table]
    data = {}
    for name, kind in columns:
        values = [r.get(name) for r in rows]
        if kind == "JSON":
            values = [None if v is None else json.dumps(v, ensure_ascii=False, allow_nan=False)
                      for v in values]
        data[name] = values
    arrow = pa.table({name: _array(values, kind) for (name, kind), values in
                      zip(columns, data.values())})
    con.register("incoming", arrow)
    try:
        con.execute(f"insert into {table} select {_typed(columns, '::')} from incoming")
    finally:
        con.unregister("incoming")


def _quoted(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _typed(columns, sep: str) -> str:
    """'"name" TYPE, ...' (sep ' ') or '"name"::TYPE, ...' (sep '::')."""
    return ", ".join(f'"{name}"{sep}{kind}' for name, kind in columns)


def _array(values: list, kind: str):
    import pyarrow as pa

    types = {"VARCHAR": pa.string(), "JSON": pa.string(), "DOUBLE": pa.float64(),
             "BIGINT": pa.int64(), "INTEGER": pa.int32(), "VARCHAR[]": pa.list_(pa.string()),
             "TIMESTAMP": pa.timestamp("us")}
    return pa.array(values, types[kind])


def connect_views(site: str):
    """A read-only connection with the views `runs` (the catalog's runs) and `metrics` (every
    run's tidy rows from its Parquet file, with `run_id` and `run`, the run's name)."""
    con = connect(site, read_only=True)
    folder = rows_folder(site)
    con.execute("create temp view runs as select * exclude (view) from catalog_runs")
    has_rows = os.path.isdir(folder) and any(n.endswith(".parquet") for n in os.listdir(folder))
    if has_rows:
        pattern = os.path.join(folder, "*.parquet").replace("'", "''")
        con.execute(f"""create temp view metrics as
            select r.id as run_id, r.name as run, m.segment, m.phase, m.step, m.epoch, m.time,
                   m.metric, m.value
            from read_parquet('{pattern}', filename = true) m
            join catalog_runs r on r.id = parse_filename(m.filename, true)""")
    else:
        con.execute("""create temp view metrics as
            select NULL::VARCHAR as run_id, NULL::VARCHAR as run, NULL::BIGINT as segment,
                   NULL::VARCHAR as phase, NULL::BIGINT as step, NULL::DOUBLE as epoch,
                   NULL::TIMESTAMP as time, NULL::VARCHAR as metric, NULL::DOUBLE as value
            where false""")
    return con
