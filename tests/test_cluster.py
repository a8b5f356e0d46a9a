"""`index --dask`: 200 real logs read as Dask tasks on a LocalCluster of two worker processes
give the catalog and the Parquet rows the local pool gives, also when a worker is killed
mid-run (Dask runs its tasks again on another: nothing missing, nothing twice)."""
from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

import pandas as pd  # noqa: E402

from logreport.cli import main  # noqa: E402
from logreport.index import index  # noqa: E402
from tests.test_index import DET, snapshot  # noqa: E402

COPIES = 10          # 10 folders of the 20 real PaddleDetection runs: 200 logs


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("many") / "runs"
    for copy in range(COPIES):
        (folder / f"node{copy}").mkdir(parents=True)
        for log in DET:
            shutil.copy(log, folder / f"node{copy}" / log.name)
    assert len(list(folder.rglob("*.log"))) == 200
    return folder


@pytest.fixture(scope="module")
def local_site(root, tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("local") / "site"
    result = index([str(root)], str(site), jobs=2)
    assert (result.runs, result.skipped) == (200, [])
    return site


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield cluster, client


def parquet_rows(site: Path) -> pd.DataFrame:
    """The site's Parquet dataset as pandas reads it (its Hive partitions: run_id)."""
    rows = pd.read_parquet(site / ".logreport" / "runs")
    rows["run_id"] = rows["run_id"].astype(str)
    by = ["run_id", "segment", "phase", "metric", "step", "epoch"]
    return rows.sort_values(by, kind="stable").reset_index(drop=True)


def same_site(site: Path, want: Path) -> None:
    assert snapshot(site) == snapshot(want)
    pd.testing.assert_frame_equal(parquet_rows(site), parquet_rows(want))
    parts = sorted((site / ".logreport" / "runs").glob("run_id=*/*"))
    assert len(parts) == 200 and all(p.name == "part-0.parquet" for p in parts)


@pytest.mark.timeout(300)
def test_index_on_dask_equals_the_local_index(root, local_site, cluster, tmp_path, runner):
    site = tmp_path / "site"
    done = runner.invoke(main, ["index", str(root), "-o", str(site), "--dask",
                                cluster[0].scheduler_address])
    assert done.exit_code == 0, done.output
    assert "200 runs; read 200" in done.stderr
    same_site(site, local_site)


@pytest.mark.timeout(300)
def test_a_worker_killed_mid_run_loses_nothing(root, local_site, cluster, tmp_path):
    _, client = cluster
    killed: list[int] = []

    def progress(done: int, total: int) -> None:
        if done == 40 and not killed:
            pid = next(iter(client.run(os.getpid).values()))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    site = tmp_path / "site"
    result = index([str(root)], str(site), dask=cluster[0].scheduler_address, progress=progress)
    assert killed
    assert (result.runs, result.read, result.skipped) == (200, 200, [])
    same_site(site, local_site)
