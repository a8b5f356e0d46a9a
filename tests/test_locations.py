"""Where a log is named: URL schemes, file:// URLs, a password in a URL taken out of it, a
protocol whose extra is not installed, one that logreport does not read."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from logreport import sources
from logreport.cli import main
from logreport.errors import InputError, scrub
from logreport.sources.remote import remember, remote, scheme

LOG = Path(__file__).parent / "data" / "ppdet" / "faster_rcnn_r50_fpn_coco_train.log"


def test_schemes_and_paths():
    assert [scheme(p) for p in ("s3://b/k", "SFTP://h/p", "/tmp/x.log", "C:\\x.log", "-")] == \
        ["s3", "sftp", "", "", ""]
    assert sources.is_url("gs://b/k") and not sources.is_url("file:///tmp/x")
    assert sources.given("file:///tmp/a%20b.log") == "/tmp/a b.log"
    assert sources.relative("s3://runs/det/x.log", "s3://runs") == "det/x.log"
    assert sources.join("s3://runs/det", "x.log") == "s3://runs/det/x.log"
    assert sources.parent("sftp://node/home/me/x.log") == "sftp://node/home/me"


def test_a_password_is_taken_out_of_a_url_and_out_of_messages():
    assert remember("sftp://me:s3cret@node:2222/runs/x.log") == "sftp://me@node:2222/runs/x.log"
    assert scrub("cannot reach https://me:s3cret@host/x and sftp://u:p@h/y") == \
        "cannot reach https://me:***@host/x and sftp://u:***@h/y"
    error = InputError("failed: sftp://me:s3cret@node/x", "retry", "sftp://me:s3cret@node/x")
    assert "s3cret" not in error.one_line()


def test_a_file_url_reads_as_the_path(tmp_path, runner):
    log = tmp_path / "run.log"
    shutil.copy(LOG, log)
    by_url = runner.invoke(main, ["summary", "--json", log.as_uri()])
    by_path = runner.invoke(main, ["summary", "--json", str(log)])
    assert by_url.exit_code == 0, by_url.output
    assert json.loads(by_url.stdout) == json.loads(by_path.stdout)


@pytest.mark.skipif(importlib.util.find_spec("gcsfs") is not None, reason="gcsfs is installed")
def test_a_missing_extra_is_one_line_naming_it(runner):
    done = runner.invoke(main, ["summary", "gs://bucket/run.log"])
    assert done.exit_code == 1
    assert done.stderr.strip() == ("logreport: reading gs:// needs the gcsfs package "
                                   "(hint: pip install 'logreport[gcs]')")


def test_a_scheme_logreport_does_not_read_is_one_line(runner):
    done = runner.invoke(main, ["summary", "ftp2://host/run.log"])
    assert done.exit_code == 1
    assert done.stderr.strip().splitlines()[0].startswith("logreport: ftp2:// is not a kind of")


def _same_file_system(url: str, parent_id: int) -> bool:
    return id(remote(url)) == parent_id


def test_a_forked_worker_makes_its_own_file_system():
    """fsspec's file systems are not fork-safe (their event loop stays in the parent): the
    process pool of `index` and the parallel ranges fork, and each worker must make its own."""
    import multiprocessing
    import warnings

    pytest.importorskip("s3fs")
    url = "s3://bucket/run.log"
    parent = remote(url)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*fork", DeprecationWarning)
        with multiprocessing.get_context("fork").Pool(1) as pool:
            same_in_child = pool.apply(_same_file_system, (url, id(parent)))
    assert remote(url) is parent and not same_in_child
