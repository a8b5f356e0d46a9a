"""`logreport index`: every run under some folders, into a static site and its catalog.

The runs are found as every command finds them (`find_runs`: one per log; an output folder or a
launch folder is one run). A run already in the catalog whose files have the same size, mtime
and inode costs a stat; a changed log is read again, from where the last read stopped when it
was only appended to (`resume`); a run whose log is gone leaves the catalog. The runs to read
are shared out to a pool of processes, one per core. Each read run gives:

    SITE/runs/<id>.html              its report (plotly.js shared: SITE/assets/plotly.min.js)
    SITE/runs/<id>.data.js           what the index page's "compare" draws of it
    SITE/.logreport/runs/run_id=<id>/part-0.parquet  its tidy rows (`export`'s columns; the
                                     runs' rows are one Hive-partitioned Parquet dataset)
    SITE/.logreport/state/<id>.pickle  where its read stopped (single text logs)
    a row of SITE/.logreport/catalog.duckdb (`catalog`)

and SITE/index.html is written again when anything changed. With `dask` (a scheduler's
address, or "local") the runs are read as Dask tasks instead (`cluster`); SITE may be a URL
(`target`).
"""
from __future__ import annotations

import copyreg
import fnmatch
import hashlib
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial

from . import __version__, catalog, formats, site, sources, target
from .analysis.status import RUNNING_WITHIN
from .errors import LogreportError, UsageError
from .eventsource import EventInput
from .export import write as export_rows
from .model import Run
from .ranges import cores
from .reader import read_source, readable
from .render import remove_leftovers, write_html, write_shared_plotly
from .report import build
from .resume import Mark, Reader, stat
from .runs import RunSource
from .sources import Input

FLUSH_EVERY = 100        # outcomes written to the catalog at once during a long index


def _event_input(path: str, fmt: str) -> EventInput:
    return EventInput(path, formats.get(fmt))


# tasks go to worker processes: an event input travels as its path and format name
copyreg.pickle(EventInput, lambda e: (_event_input, (e.path, e.format.NAME)))


@dataclass
class Entry:
    """A run found under a root: its catalog id, its name (path relative to the root) and
    what it is read from."""

    id: str
    name: str
    source: RunSource

    @property
    def folder(self) -> str:
        return os.path.dirname(self.name)


@dataclass
class Outcome:
    """What reading one entry gave: a catalog row (None: skipped, with `reason`) and the
    Marks of its files."""

    id: str
    row: dict | None
    files: list[dict]
    reason: str = ""
    name: str = ""
    source: str = ""


@dataclass
class Result:
    """What an index did: runs in the catalog, read (and of those resumed), removed, skipped."""

    runs: int = 0
    read: int = 0
    resumed: int = 0
    removed: int = 0
    skipped: list[str] = field(default_factory=list)   # "name: reason" of entries read now
    unread: list[str] = field(default_factory=list)    # files that may be logs, not named so
    changed: list[str] = field(default_factory=list)   # ids written again or removed


def find_runs(roots: list[str], include=(), exclude=(), outside: str | None = None,
              unread: list[str] | None = None) -> list[Entry]:
    """The runs under the roots, as `summary` and `report` take them (runs.discover), named
    by their path relative to their root (the root's name first when there are several), kept
    when their name matches an `include` glob (if any) and no `exclude` glob; none below the
    folder `outside` (the site itself). `unread` gets the files not read for their names."""
    from .runs import discover

    entries: dict[str, Entry] = {}
    for root in roots:
        if root == "-":
            raise UsageError("index reads folders and files, not stdin", "give a folder")
        found, _ = discover([root], unread=unread)
        base = _base(root)
        for source in found:
            path = sources.absolute(source.name)
            if outside and _below(path, outside):
                continue
            name = sources.relative(path, base) if path != base else sources.basename(base)
            if len(roots) > 1:
                name = f"{sources.basename(base)}/{name}"
            if include and not any(fnmatch.fnmatch(name, g) for g in include):
                continue
            if any(fnmatch.fnmatch(name, g) for g in exclude):
                continue
            key = hashlib.sha1(path.encode("utf-8", "surrogateescape")).hexdigest()[:16]
            entries.setdefault(key, Entry(key, name, source))
    return sorted(entries.values(), key=lambda e: e.name)


def _base(root: str) -> str:
    """The folder names are relative to: the root folder, a file's folder, a glob's fixed part."""
    root = sources.given(root)
    sep = "/" if sources.is_url(root) else os.sep
    if sources.has_magic(root):
        parts = root.split(sep)
        fixed = [p for p in parts[:next(i for i, p in enumerate(parts) if sources.has_magic(p))]]
        return sources.absolute(sep.join(fixed) or ".")
    path = sources.absolute(root)
    return path.rstrip("/") if sources.isdir(path) else sources.parent(path)


def _below(path: str, folder: str) -> bool:
    folder = sources.absolute(folder).rstrip("/" + os.sep)
    return path == folder or path.startswith(folder + ("/" if sources.is_url(folder) else os.sep))


def input_files(source: RunSource) -> list[str]:
    """Every file a run is read from (an event input: each of its event files)."""
    out: list[str] = []
    for inp in source.inputs:
        out += inp.files() if isinstance(inp, EventInput) else [inp.path]
    return out


def resumable(source: RunSource) -> bool:
    """A single plain text log on this machine: read on from where the last read stopped."""
    return (not source.folder and len(source.inputs) == 1 and type(source.inputs[0]) is Input
            and not source.inputs[0].path.endswith(".gz") and not sources.is_url(source.inputs[0].path))


def changed(entry: Entry, known: dict, now: float) -> bool:
    """Whether an entry must be read (again): new, another version read it, a file added,
    gone or with another size, mtime or inode, or its `running` status has run out (a run is
    running only while its log was written in the last RUNNING_WITHIN seconds)."""
    before = {f["path"]: f for f in known["files"].get(entry.id, [])}
    run = known["runs"].get(entry.id)
    if run is None and entry.id not in known["skipped"]:
        return True
    if run is not None and run[1] != __version__:
        return True
    paths = input_files(entry.source)
    if set(paths) != set(before):
        return True
    newest = 0
    for path in paths:
        mark, old = stat(path), before[path]
        if mark is None or (mark.size, mark.mtime_ns, mark.inode) != \
                (old["size"], old["mtime_ns"], old["inode"]):
            return True
        newest = max(newest, mark.mtime_ns)
    return run is not None and run[0] == "running" and now - newest / 1e9 >= RUNNING_WITHIN


@dataclass
class Task:
    """One entry to read, as a worker process gets it."""

    entry: Entry
    site: str
    lang: str
    before: dict = field(default_factory=dict)   # path -> the Mark dict of the previous read


def read_entry(task: Task) -> Outcome:
    """Read one run and write what it gives to the site (see the module docstring); in a
    worker process. An entry that gives no run (no records, unreadable) is an Outcome with
    a reason; so is an internal error, said as such (the other runs go on)."""
    entry = task.entry
    files: list[dict] = []
    try:
        if resumable(entry.source) and not sources.is_url(task.site):
            path = entry.source.inputs[0].path
            old = task.before.get(path)
            reader = Reader(path, state_path(task.site, entry.id), old and Mark(**old))
            mark = reader.read()
            files = [dict(mark.as_dict(), path=path)]
            run = reader.finish()
            resumed = bool(old) and reader.resumed
        else:
            files = [dict(m.as_dict(), path=p) for p in input_files(entry.source)
                     if (m := stat(p)) is not None]
            run = read_source(entry.source)
            resumed = False
        run = readable(run)
        with target.staged(task.site) as folder:
            row = write_run(folder, entry, run, task.lang)
        row["resumed"] = resumed
        return Outcome(entry.id, row, files)
    except LogreportError as e:
        remove_files(task.site, entry.id, state=False)
        return Outcome(entry.id, None, files, e.message, entry.name, entry.source.name)
    except Exception as e:      # a bug: said in the skipped list, the other runs go on
        remove_files(task.site, entry.id, state=False)
        return Outcome(entry.id, None, files, f"internal error: {type(e).__name__}: {e} (hint: "
                       f"run `logreport --debug summary` on it and report it)", entry.name,
                       entry.source.name)


def state_path(site_dir: str, run_id: str) -> str:
    return os.path.join(site_dir, catalog.FOLDER, "state", f"{run_id}.pickle")


def write_run(site_dir: str, entry: Entry, run: Run, lang: str) -> dict:
    """The run's Parquet rows, report page and compare data; returns its catalog row."""
    parquet = os.path.join(site_dir, catalog.rows_part(entry.id))
    os.makedirs(os.path.dirname(parquet), exist_ok=True)
    remove_leftovers(os.path.dirname(parquet))       # of this run's writer killed before
    count = export_rows([run], parquet)
    page = site.page_path(site_dir, entry.id)
    os.makedirs(os.path.dirname(page), exist_ok=True)
    data = build([run], title=entry.name, lang=lang)
    summary = data["runs"][0]["summary"]         # summarize(run), as the page shows it
    write_html(data, page, "shared", "../" + site.PLOTLY)
    site.write_run_data(site_dir, entry.id, entry.name, run, summary)
    row = site.catalog_row(entry.id, entry.name, run, summary)
    row.update(metric_rows=count, parquet=catalog.rows_part(entry.id),
               page=os.path.relpath(page, site_dir).replace(os.sep, "/"),
               logreport_version=__version__)
    return row


def remove_files(site_dir: str, run_id: str, state: bool = True) -> None:
    """What the site holds of a run that is gone (state: its parse state too; not for a log
    that gives no run yet: it is read on from there)."""
    names = [os.path.dirname(catalog.rows_part(run_id)), site.page_path("", run_id),
             site.data_path("", run_id)]
    target.remove(site_dir, names + ([state_path("", run_id)] if state else []))


class Indexer:
    """Keeps a site up to date with the runs under some roots (`update`); `index` once, and
    `logreport serve`, which follows the runs being written and updates the rest."""

    def __init__(self, roots: list[str], site_dir: str, include=(), exclude=(),
                 jobs: int | None = None, lang: str = "en", dask: str | None = None):
        self.roots, self.site = list(roots), sources.given(site_dir)
        self.include, self.exclude, self.jobs, self.lang = include, exclude, jobs, lang
        self.dask = dask                         # a scheduler's address, "local", or None
        self.local = target.local_folder(self.site)   # where the catalog is kept
        self.entries: list[Entry] = []          # as the last update found them

    def update(self, skip=frozenset(), progress=None) -> Result:
        """Read the runs that are new or changed (but those in `skip`: followed live), remove
        those that are gone, write index.html when anything changed. progress(done, total),
        if given, is called as runs are read."""
        result = Result()
        self.entries = find_runs(self.roots, self.include, self.exclude, outside=self.site,
                                 unread=result.unread)
        with catalog.opened(self.local) as con:      # open only while read or written
            known = catalog.read_state(con)
        now = time.time()
        tasks = [Task(e, self.site, self.lang, _marks(known, e.id)) for e in self.entries
                 if e.id not in skip and changed(e, known, now)]
        present = {e.id for e in self.entries}
        gone = [i for i in list(known["runs"]) + list(known["skipped"]) if i not in present]
        for run_id in gone:
            remove_files(self.site, run_id)
        result.removed = len([i for i in gone if i in known["runs"]])
        result.changed = list(gone)
        pending: list[Outcome] = []
        if self.dask:
            from .cluster import outcomes as on_cluster

            outcomes = partial(on_cluster, address=self.dask, jobs=self.jobs)
        else:
            outcomes = partial(_outcomes, jobs=self.jobs)
        for done, outcome in enumerate(outcomes(tasks), 1):
            pending.append(outcome)
            result.changed.append(outcome.id)
            if progress:
                progress(done, len(tasks))
            if len(pending) >= FLUSH_EVERY:
                _write(self.local, gone, pending, result)
                gone, pending = [], []
        _write(self.local, gone, pending, result)
        with catalog.opened(self.local, read_only=True) as con:
            result.runs = con.execute("select count(*) from catalog_runs").fetchone()[0]
            views = catalog.views(con) if result.changed or not os.path.exists(
                os.path.join(self.local, "index.html")) else None
        if views is not None:
            write_shared_plotly(self.local)
            site.write_index(self.local, views, self.lang)
            if self.local != self.site:
                target.publish(self.local, self.site, ["index.html", site.PLOTLY,
                                                       catalog.path_of("")])
        return result


def index(roots: list[str], site_dir: str, include=(), exclude=(), jobs: int | None = None,
          lang: str = "en", progress=None, dask: str | None = None) -> Result:
    """Bring the site and its catalog up to date with the runs under the roots (see the module
    docstring)."""
    return Indexer(roots, site_dir, include, exclude, jobs, lang, dask).update(progress=progress)


def _marks(known: dict, run_id: str) -> dict:
    """path -> the Mark (as a dict) of each file of an entry's previous read."""
    return {f["path"]: {k: v for k, v in f.items() if k != "path"}
            for f in known["files"].get(run_id, [])}


def _write(site_dir: str, gone: list[str], outcomes: list[Outcome], result: Result) -> None:
    runs = [o.row for o in outcomes if o.row is not None]
    result.read += len(runs)
    result.resumed += sum(1 for r in runs if r.pop("resumed"))
    skipped = [{"id": o.id, "name": o.name, "source": o.source, "reason": o.reason}
               for o in outcomes if o.row is None]
    result.skipped += [f"{s['name']}: {s['reason']}" for s in skipped]
    files = [dict(f, run_id=o.id) for o in outcomes for f in o.files]
    if gone or outcomes:
        with catalog.opened(site_dir) as con:
            catalog.write(con, gone, runs, files, skipped)


def _outcomes(tasks: list[Task], jobs: int | None):
    """read_entry of each task: in this process for one task (or jobs=1), else in a pool of
    `jobs` processes (default: one per core), the biggest logs first."""
    jobs = jobs or cores()
    if len(tasks) < 2 or jobs < 2:
        for task in tasks:
            yield read_entry(task)
        return
    import multiprocessing

    tasks = sorted(tasks, key=lambda t: -sum(st.size for p in input_files(t.entry.source)
                                             if (st := sources.stat(p)) is not None))
    # spawn: a clean process (no threads of this one, no inherited state)
    with ProcessPoolExecutor(min(jobs, len(tasks)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(read_entry, task) for task in tasks]
        for future in as_completed(futures):
            yield future.result()
