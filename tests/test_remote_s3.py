"""Logs in S3: a real S3 endpoint on loopback (moto in server mode) reached through s3fs, as a
user's AWS settings would point at it. `summary`, `report`, `export` and `index` of real runs
in a bucket give what they give for the same files on disk; `watch` picks up a log rewritten
with more lines (an object store's append)."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto")

from logreport import catalog  # noqa: E402
from logreport.export import write as export  # noqa: E402
from logreport.reader import load  # noqa: E402
from logreport.sources import remote as remote_source  # noqa: E402
from logreport.watch import Options, Watch  # noqa: E402
from tests.servers import moto_s3  # noqa: E402
from tests.test_index import tree  # noqa: E402

DATA = Path(__file__).parent / "data"
LONG = DATA / "ppdet" / "picodet_s_320_coco_long80e.log"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """The endpoint's environment, a boto3 client, and the bucket `runs` holding the tree of
    real runs of test_index (det/*.log, llm/<output folders>, a notes file) and a gzipped log."""
    import boto3

    with moto_s3(tmp_path_factory.mktemp("moto")) as env:
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
        client.create_bucket(Bucket="runs")
        client.create_bucket(Bucket="sites")
        yield env, client


@pytest.fixture(scope="module")
def bucket(s3, tmp_path_factory):
    """A local copy of what the bucket holds, each file's mtime set to its object's
    LastModified (a run's status depends on when its log last changed)."""
    env, client = s3
    root = tree(tmp_path_factory.mktemp("local") / "runs")
    (root / "gz").mkdir()
    (root / "gz" / "long80e.log.gz").write_bytes(gzip.compress(LONG.read_bytes()))
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = path.relative_to(root).as_posix()
        client.upload_file(str(path), "runs", key)
        stamp = client.head_object(Bucket="runs", Key=key)["LastModified"].timestamp()
        os.utime(path, (stamp, stamp))
    return root


@pytest.fixture
def in_process(s3, monkeypatch):
    """This process's fsspec and AWS settings pointed at the endpoint."""
    import fsspec.config

    env, _ = s3
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": env["AWS_ENDPOINT_URL"]})
    remote_source._remote.cache_clear()
    yield
    remote_source._remote.cache_clear()


def cli(env: dict, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "logreport", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, cwd=cwd, timeout=300)


def local_form(text: str, root: Path) -> str:
    """Output for s3://runs/... written as for the local copy of the bucket."""
    return text.replace("s3://runs", str(root))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["det/picodet_s_320_coco_long80e.log", "llm/sft_lora",
                                  "gz/long80e.log.gz", "det", "det/*_train.log"])
def test_summary_of_s3_equals_the_local_files(s3, bucket, name):
    env, _ = s3
    remote = cli(env, "summary", "--json", f"s3://runs/{name}")
    local = cli(env, "summary", "--json", str(bucket / name))
    assert remote.returncode == 0, remote.stderr
    assert local.returncode == 0, local.stderr
    got, want = json.loads(local_form(remote.stdout, bucket)), json.loads(local.stdout)
    assert len(got["runs"]) == len(want["runs"]) and got["runs"][0]["train_records"] > 0
    for a, b in zip(got["runs"], want["runs"]):      # (the evidence says how long ago: the clock)
        assert {k: v for k, v in a.items() if b.get(k) != v and k != "status_evidence"} == {}, \
            a["source"]


@pytest.mark.timeout(120)
def test_report_and_export_of_s3_equal_the_local_files(s3, bucket, tmp_path):
    env, _ = s3
    for kind, out in (("report", "r.html"), ("export", "rows.csv")):
        remote = cli(env, kind, "s3://runs/llm/sft_lora", "-o", str(tmp_path / f"s3-{out}"))
        local = cli(env, kind, str(bucket / "llm" / "sft_lora"), "-o", str(tmp_path / out))
        assert remote.returncode == 0 and local.returncode == 0, remote.stderr + local.stderr
        assert local_form((tmp_path / f"s3-{out}").read_text(encoding="utf-8"), bucket) == \
            (tmp_path / out).read_text(encoding="utf-8")


def catalog_rows(site: Path, bucket: Path) -> tuple[list, list]:
    """Runs (by name, written as for the local copy of the bucket, less their ids and what
    depends on the clock) and metric rows of a site."""
    con = catalog.connect_views(str(site))
    try:
        runs = con.execute("select * exclude (id, parquet, page, indexed_at, status_evidence) "
                           "from runs order by name")
        names = [d[0] for d in runs.description]
        rows = [dict(zip(names, r)) for r in runs.fetchall()]
        metrics = repr(con.execute("select * exclude (run_id) from metrics order by all").fetchall())
    finally:
        con.close()
    for row in rows:
        row["summary"] = json.loads(row["summary"])
        row["summary"].pop("status_evidence")       # says how long ago: the clock
    return [local_form(repr(row), bucket) for row in rows], metrics


@pytest.mark.timeout(240)
def test_index_of_a_bucket_equals_the_local_index(s3, bucket, tmp_path):
    env, _ = s3
    remote = cli(env, "index", "s3://runs/", "-o", str(tmp_path / "s3site"), "--jobs", "2")
    local = cli(env, "index", str(bucket), "-o", str(tmp_path / "site"), "--jobs", "2")
    assert remote.returncode == 0 and local.returncode == 0, remote.stderr + local.stderr
    assert "skipped det/notes.txt" in remote.stderr
    got, want = catalog_rows(tmp_path / "s3site", bucket), catalog_rows(tmp_path / "site", bucket)
    assert len(got[0]) == len(want[0]) > 10
    assert got == want


@pytest.mark.timeout(240)
def test_index_on_dask_writes_its_parquet_dataset_to_a_bucket(s3, bucket, tmp_path):
    import pandas as pd

    env, _ = s3
    done = cli(env, "index", "s3://runs/det/", "-o", "s3://sites/det/", "--dask", "local",
               "--jobs", "2")
    assert done.returncode == 0, done.stderr
    local = cli(env, "index", str(bucket / "det"), "-o", str(tmp_path / "site"), "--jobs", "2")
    assert local.returncode == 0, local.stderr
    options = {"client_kwargs": {"endpoint_url": env["AWS_ENDPOINT_URL"]}, "key": "test",
               "secret": "test"}
    rows = pd.read_parquet("s3://sites/det/.logreport/runs/", storage_options=options)
    want = pd.read_parquet(tmp_path / "site" / ".logreport" / "runs")
    by = ["run", "segment", "phase", "metric", "step", "epoch"]
    rows = rows.drop(columns="run_id").sort_values(by).reset_index(drop=True)
    want = want.drop(columns="run_id").sort_values(by).reset_index(drop=True)
    pd.testing.assert_frame_equal(rows, want)
    # the catalog and the index page went to the bucket too
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    assert fs.exists("sites/det/index.html") and fs.exists("sites/det/.logreport/catalog.duckdb")
    assert len(fs.ls("sites/det/runs/")) == 2 * len(list((tmp_path / "site" / "runs").glob("*.html")))


@pytest.mark.timeout(120)
def test_watch_picks_up_an_object_rewritten_with_more_lines(s3, in_process, tmp_path):
    """`watch --poll 1`: the object's size is looked at every second and only the new range is
    read; the run then holds what reading the whole log gives."""
    _, client = s3
    text = LONG.read_bytes()
    cut = text.index(b"\n", len(text) // 2) + 1
    client.put_object(Bucket="runs", Key="live/train.log", Body=text[:cut])
    watch = Watch("s3://runs/live/train.log", Options(poll=1.0, output=str(tmp_path / "r.html")))
    try:
        watch.start()
        watch.step()
        first = watch.reader.run().count("train")
        client.put_object(Bucket="runs", Key="live/train.log", Body=text)     # "appended"
        follower = watch.reader.followers["s3://runs/live/train.log"]
        deadline = time.monotonic() + 60
        while follower.offset < len(text) and time.monotonic() < deadline:
            watch.step()
            time.sleep(0.2)
        watch.reader.finish()
        run = watch.reader.run()
    finally:
        watch.close()
    assert 0 < first < run.count("train")
    shutil.copy(LONG, tmp_path / "train.log")
    export([run], str(tmp_path / "watched.csv"))
    export([load(str(tmp_path / "train.log"))], str(tmp_path / "read.csv"))
    assert (tmp_path / "watched.csv").read_text() == (tmp_path / "read.csv").read_text()


@pytest.mark.timeout(120)
def test_what_is_not_there_is_one_line(s3, tmp_path):
    env, _ = s3
    for url in ("s3://runs/det/nothing.log", "s3://no-such-bucket/x.log", "s3://runs/nothing*/"):
        done = cli(env, "summary", url)
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("logreport: s3://"), done.stderr

