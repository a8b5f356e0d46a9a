"""`index --dask`: the runs read as Dask tasks, next to the data, instead of in a local pool.

Each task is `index.read_entry`: it reads one run and writes its files (its Parquet part, its
page) straight to the site, which workers on other machines must reach: a URL (`-o
s3://bucket/site/`) or a shared folder. It returns the run's catalog row; this process writes
the catalog from them. A task lost with a worker (killed, out of memory) is run again by Dask on
another; what a task writes is replaced whole, so a run read twice is written once.
"""
from __future__ import annotations

import contextlib

from .errors import MissingExtra, UsageError

CONNECT_TIMEOUT = "30s"


def outcomes(tasks: list, address: str, jobs: int | None = None):
    """`index.read_entry` of each task on the cluster at `address` ("local": a LocalCluster
    of `jobs` worker processes, default one per core), as they complete."""
    if not tasks:
        return
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise MissingExtra("--dask needs dask.distributed", "pip install 'logreport[dask]'") from None
    from .index import read_entry

    with contextlib.ExitStack() as stack:
        stack.enter_context(_quiet())
        client = stack.enter_context(_client(Client, address, jobs))
        futures = client.map(read_entry, tasks, pure=False)
        for _, outcome in as_completed(futures, with_results=True):
            yield outcome


def local_cluster(jobs: int | None = None):
    """A LocalCluster of worker processes on this machine, one thread each."""
    import logging

    from dask.distributed import LocalCluster

    return LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                        dashboard_address=None, silence_logs=logging.ERROR)


@contextlib.contextmanager
def _client(client_class, address: str, jobs: int | None):
    if address == "local":
        with local_cluster(jobs) as cluster, client_class(cluster) as client:
            yield client
        return
    if "://" not in address and ":" not in address:
        raise UsageError(f"not a Dask scheduler address: {address!r}",
                         "give tcp://HOST:8786, or local for a cluster on this machine")
    try:
        client = client_class(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as e:
        raise UsageError(f"cannot reach the Dask scheduler: {e}",
                         "is `dask scheduler` running there? check the address", address) from None
    with client:
        yield client


@contextlib.contextmanager
def _quiet():
    """Dask's own logging stays out of the command's output (warnings still show)."""
    import logging

    loggers = [logging.getLogger(n) for n in ("distributed", "dask")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
