"""Memory bounded by line length wherever lines are read (issue 16, item 1).

Unit properties of `bounded.Clipper` and `bounded.BlockReader` against a plain reference
(hypothesis, a small MAX_LINE), then the commands themselves in a subprocess under
RLIMIT_AS: one 64 MB line, a 2 GB sparse file, a .gz of 256 MB of zeros, /dev/zero, and the
live follower (`run -- cat`). The inputs are real logs with the hostile part added.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_report import page_data

from logreport import bounded, sources
from logreport.bounded import BlockReader, Clipper
from logreport.sources import LineSplitter

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
PPDET = DATA / "ppdet" / "ppyoloe_crn_s_coco_train.log"
LIMIT_MB = 300            # RLIMIT_AS of the commands; a 64 MB line took more than this before
WATCH_LIMIT_MB = 500      # watch and run start more threads (720 MB did for the line before)
LONG = 64 << 20


ONE_FIXTURE = [HealthCheck.function_scoped_fixture]   # it only sets MAX_LINE, per example


# --- the reference: frames cut to MAX_LINE bytes, NULs dropped -----------------------------
def reference(raw: bytes, max_line: int) -> bytes:
    """Each frame (text between \\n / \\r) without NULs, cut to max_line bytes."""
    parts = re.split(rb"([\r\n])", raw.replace(b"\0", b""))
    return b"".join(p if p in (b"\r", b"\n") else p[:max_line] for p in parts)


def pieces(raw: bytes, cuts: list[int]) -> list[bytes]:
    bounds = sorted({0, len(raw), *(c % (len(raw) + 1) for c in cuts)})
    return [raw[a:b] for a, b in zip(bounds, bounds[1:])]


BYTES = st.lists(st.sampled_from([b"a", b"bb", b"\n", b"\r", b"\r\n", b"\0", b"xyz" * 5]),
                 max_size=60).map(b"".join)


@settings(max_examples=300, deadline=None,
          suppress_health_check=ONE_FIXTURE)
@given(raw=BYTES, cuts=st.lists(st.integers(0, 1000), max_size=8), max_line=st.integers(1, 9))
def test_clipper_and_splitter_cut_every_frame_whatever_the_chunks(monkeypatch_max_line, raw,
                                                                  cuts, max_line):
    """The Clipper gives the reference bytes, counts the cut frames; the LineSplitter built on
    it gives their frames and never buffers more than one frame."""
    monkeypatch_max_line(max_line)
    clipper, splitter = Clipper(), LineSplitter()
    out, got = b"", []
    for p in pieces(raw, cuts):
        out += clipper.clip(p)
        got += splitter.feed(p)
        assert len(splitter.buffer) <= max_line + 1            # a frame, maybe a waiting \r
    got += splitter.flush()
    assert out == reference(raw, max_line)
    frames = re.split(rb"[\r\n]", raw.replace(b"\0", b""))
    assert clipper.cut == splitter.clipper.cut == sum(len(f) > max_line for f in frames)
    frames = [f for line in out.replace(b"\r\n", b"\n").split(b"\n") for f in line.split(b"\r")]
    assert [t for _, t in got] == [sources.decode(f) for f in frames if sources.decode(f)]


@settings(max_examples=300, deadline=None,
          suppress_health_check=ONE_FIXTURE)
@given(raw=BYTES, size=st.integers(1, 12), max_line=st.integers(1, 9))
def test_blocks_are_whole_lines_or_whole_frames_and_bounded(monkeypatch_max_line, raw, size,
                                                            max_line):
    monkeypatch_max_line(max_line)
    blocks = list(BlockReader(io.BytesIO(raw), size).blocks())
    assert b"".join(blocks) == reference(raw, max_line)
    for block, after in zip(blocks, blocks[1:]):
        assert block.endswith(b"\n") or after.startswith(b"\r")   # a line, or whole frames
    assert all(len(b) <= max(size, max_line + 1) + size for b in blocks)   # a carry + a read


@settings(max_examples=300, deadline=None,
          suppress_health_check=ONE_FIXTURE)
@given(raw=BYTES, size=st.integers(1, 12), max_line=st.integers(1, 9))
def test_complete_blocks_offset_is_the_raw_end_of_what_they_gave(monkeypatch_max_line, raw,
                                                                  size, max_line):
    """watch goes on from `offset`: the raw bytes before it are exactly the blocks given."""
    monkeypatch_max_line(max_line)
    reader = BlockReader(io.BytesIO(raw), size, complete=True)
    given_ = b"".join(reader.blocks())
    assert given_ == reference(raw[:reader.offset], max_line)
    rest = raw[reader.offset:]
    assert b"\n" not in rest and (given_.endswith(b"\n") or not given_ or rest.startswith(b"\r"))
    frames = re.split(rb"[\r\n]", raw[:reader.offset].replace(b"\0", b""))
    assert reader.cut == sum(len(f) > max_line for f in frames)      # the cuts of what it gave


@pytest.fixture
def monkeypatch_max_line():
    """Set bounded.MAX_LINE for one hypothesis example (restored after the test)."""
    saved = bounded.MAX_LINE

    def set_(n: int) -> None:
        bounded.MAX_LINE = n

    yield set_
    bounded.MAX_LINE = saved


# --- the commands under RLIMIT_AS ----------------------------------------------------------
def limited(args: list[str], cwd: Path, limit_mb: int = LIMIT_MB) -> subprocess.CompletedProcess:
    """`python -m logreport ARGS` with its address space limited: a command that held a whole
    long line would end in MemoryError."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (limit_mb << 20, limit_mb << 20))

    return subprocess.run([sys.executable, "-m", "logreport", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, preexec_fn=limit,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), check=False)


def long_line_log(path: Path) -> Path:
    """The real log with one 64 MB line after its first line."""
    first, _, rest = PPDET.read_bytes().partition(b"\n")
    with open(path, "wb") as f:
        f.write(first + b"\n" + b"loss: " + b"x" * LONG + b"\n" + rest)
    return path


def summary(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["runs"][0]


def test_one_64mb_line_summary_report_export_in_bounded_memory(tmp_path):
    log = long_line_log(tmp_path / "long.log")
    clean, got = summary(limited(["summary", str(PPDET), "--json"], tmp_path)), \
        summary(limited(["summary", str(log), "--json"], tmp_path))
    for key in ("train_records", "last_step", "final", "best", "status"):
        assert got[key] == clean[key]
    assert got["unparsed_lines"] == clean["unparsed_lines"] + 1       # the cut line, kept junk
    proc = limited(["report", str(log), "-o", "r.html"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = page_data((tmp_path / "r.html").read_text("utf-8"))
    assert data["runs"][0]["facts"]["lines_cut"] == 1                  # cut and counted
    proc = limited(["export", str(log), "-o", "x.jsonl"], tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_the_live_follower_reads_a_64mb_line_in_bounded_memory(tmp_path):
    """`run -- cat LOG`: the log grows from empty, so watch's follower (not the backlog's
    blocks) reads the long line."""
    log = long_line_log(tmp_path / "long.log")
    proc = limited(["run", "-o", "live.log", "--report", "r.html", "--", "cat", str(log)],
                   tmp_path, WATCH_LIMIT_MB)
    assert proc.returncode == 0, proc.stderr[-300:]
    assert (tmp_path / "live.log").stat().st_size == log.stat().st_size
    facts = page_data((tmp_path / "r.html").read_text("utf-8"))["runs"][0]["facts"]
    assert facts["lines_cut"] == 1                                     # as `report` counts


def test_a_2gb_sparse_file_is_empty_not_read(tmp_path):
    log = tmp_path / "sparse.log"
    with open(log, "wb") as f:
        f.truncate(2 << 30)
    proc = limited(["summary", str(log)], tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == f"logreport: {log}: the log is empty (hint: give a log that has " \
                          "training output)\n"


def test_a_hole_before_the_text_is_skipped_and_the_text_read(tmp_path):
    """copytruncate under a writer that does not append: a 1 GB hole, then the log."""
    log = tmp_path / "holed.log"
    with open(log, "wb") as f:
        f.seek(1 << 30)
        f.write(PPDET.read_bytes())
    clean = summary(limited(["summary", str(PPDET), "--json"], tmp_path))
    got = summary(limited(["summary", str(log), "--json"], tmp_path))
    assert (got["train_records"], got["final"]) == (clean["train_records"], clean["final"])


def test_a_gzip_bomb_of_zeros_is_read_in_bounded_memory(tmp_path):
    bomb = tmp_path / "bomb.log.gz"
    block = bytes(1 << 20)
    with gzip.open(bomb, "wb", compresslevel=1) as f:
        for _ in range(256):
            f.write(block)
    assert bomb.stat().st_size < (256 << 20) // 100
    proc = limited(["summary", str(bomb)], tmp_path)
    assert proc.returncode == 1 and "the log is empty" in proc.stderr, proc.stderr


@pytest.mark.parametrize("command", ["summary", "watch"])
def test_dev_zero_is_refused_in_one_line(tmp_path, command):
    proc = limited([command, "/dev/zero"] + (["--no-tui"] if command == "watch" else []),
                   tmp_path, WATCH_LIMIT_MB)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("logreport: /dev/zero: this is a") \
        and "device" in lines[0] and "(hint: " in lines[0], proc.stderr
