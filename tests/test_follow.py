"""The follower, driven step by step (no sleeps): appends, partial lines, restarts of the file."""
import os
import shutil

import pytest
from conftest import DATA

from logreport.events import NEW_RUN, Marker
from logreport.sources.follow import Follower

# Real lines of a PaddleDetection log.
LINES = (DATA / "ppdet" / "picodet_s_320_coco_long80e.log").read_text(
    encoding="utf-8").splitlines()[20:30]
# A real line of an LLaMA-Factory trainer_log.jsonl.
JSONL = ('{"current_steps": 1, "total_steps": 60, "loss": 7.621984958648682, "lr": 0.0, '
         '"epoch": 0.008888888888888889, "percentage": 1.67, "elapsed_time": "0:00:00", '
         '"remaining_time": "0:00:28"}')


def texts(items):
    return [x[1] if isinstance(x, tuple) else x.kind for x in items]


def append(path, data: bytes):
    with open(path, "ab") as f:
        f.write(data)


@pytest.fixture
def log(tmp_path):
    return tmp_path / "run.log"


@pytest.fixture
def follow():
    """Makes followers and closes them after the test."""
    made = []

    def make(path, **kw):
        made.append(Follower(str(path), **kw))
        return made[-1]

    yield make
    for f in made:
        f.close()


def test_waits_for_the_file_then_reads_complete_lines(log, follow):
    f = follow(log)
    assert f.poll() == []
    append(log, (LINES[0] + "\n" + LINES[1][:30]).encode())
    assert f.poll() == [(1, LINES[0])]
    assert f.poll() == []
    append(log, (LINES[1][30:] + "\n").encode())
    assert f.poll() == [(2, LINES[1])]


def test_carriage_return_ends_a_frame_and_crlf_is_one_line_end(log, follow):
    f = follow(log)
    append(log, b" 10%|#   | 1/10\r 20%|##  | 2/10\r")
    assert f.poll() == [(1, " 10%|#   | 1/10"), (1, " 20%|##  | 2/10")]    # (a \r ends each)
    append(log, b"\n" + LINES[0].encode() + b"\r")
    assert f.poll() == [(2, LINES[0])]
    append(log, b"\n" + LINES[1].encode() + b"\n")
    assert f.poll() == [(3, LINES[1])]


def test_invalid_bytes_are_replaced_not_fatal(log, follow):
    f = follow(log)
    append(log, LINES[0].encode() + b"\n\xff\xfe broken \xff\n" + LINES[1].encode() + b"\n")
    out = f.poll()
    assert out[0] == (1, LINES[0]) and out[2] == (3, LINES[1])
    assert "\ufffd" in out[1][1] and "broken" in out[1][1]


def test_from_end_skips_what_is_there(log, follow):
    append(log, (LINES[0] + "\n").encode())
    f = follow(log, from_end=True)
    assert f.poll() == []
    append(log, (LINES[1] + "\n").encode())
    assert texts(f.poll()) == [LINES[1]]


def test_truncation_by_a_new_run_is_a_new_run_marker(log, follow):
    f = follow(log)
    append(log, ("\n".join(LINES[:3]) + "\n").encode())
    assert len(f.poll()) == 3
    with open(log, "wb") as out:                    # `python train.py > run.log` again
        out.write((LINES[5] + "\n").encode())
    out = f.poll()
    assert out == [Marker(NEW_RUN, "log truncated", line=4), (4, LINES[5])]


def test_rewrite_that_outgrew_the_offset_is_seen_by_its_first_bytes(log, follow):
    f = follow(log)
    append(log, (LINES[0] + "\n").encode())
    f.poll()
    with open(log, "wb") as out:
        out.write(("\n".join(LINES[2:10]) + "\n").encode())
    assert os.path.getsize(log) > len(LINES[0]) + 1
    out = f.poll()
    assert out[0] == Marker(NEW_RUN, "log rewritten", line=2)
    assert texts(out[1:]) == LINES[2:10]


def test_rewrite_by_a_run_that_starts_alike_is_seen_by_the_bytes_before_the_offset(log, follow):
    """Every PaddleDetection log starts with the same warnings: a restarted job whose first
    flush outgrew what the dead one wrote kept the first bytes, so the follower read on from
    the old offset into the new run (its early steps lost, the two runs mixed)."""
    first = (DATA / "ppdet" / "ppyoloe_crn_s_coco_diverge_lr1000.log").read_bytes()
    second = (DATA / "ppdet" / "ppyoloe_crn_s_coco_resume.log").read_bytes()
    common = next(i for i, (a, b) in enumerate(zip(first, second)) if a != b)
    assert common >= 256                           # the first HEAD bytes are the same
    written = first[:first.index(b"\n", common + 2000) + 1]
    f = follow(log)
    append(log, written)
    f.poll()
    with open(log, "wb") as out:                    # `python train.py > run.log` again
        out.write(second)
    assert len(second) > len(written)
    out = f.poll(limit=1 << 20)
    assert out[0] == Marker(NEW_RUN, "log rewritten", line=written.count(b"\n") + 1)
    assert texts(out[1:3]) == second.decode().splitlines()[:2]


def test_rotation_by_rename_reads_the_old_file_to_its_end_without_marker(log, follow):
    f = follow(log)
    append(log, (LINES[0] + "\n").encode())
    f.poll()
    append(log, (LINES[1] + "\n").encode())        # written just before the rotation
    os.rename(log, str(log) + ".1")
    append(log, (LINES[2] + "\n").encode())
    assert f.poll() == [(2, LINES[1]), (3, LINES[2])]


def test_copytruncate_reads_the_missed_lines_from_the_copy(log, follow):
    f = follow(log)
    append(log, (LINES[0] + "\n").encode())
    f.poll()
    append(log, (LINES[1] + "\n").encode())
    shutil.copyfile(log, str(log) + ".1")
    os.truncate(log, 0)
    append(log, (LINES[2] + "\n").encode())
    assert f.poll() == [(2, LINES[1]), (3, LINES[2])]


def test_a_sibling_that_starts_alike_is_no_rotated_copy(tmp_path, follow):
    """A launch folder's ranks start alike (their first 256 bytes are the same): truncating
    workerlog.0 made the follower read workerlog.1's tail from its offset as the lines
    missed before a copytruncate. A rotated copy must hold the bytes read last, where they
    were read."""
    launch = DATA / "ppdet" / "public_43_launch_logdir_restarts_4gpu"
    rank0, rank1 = ((launch / name).read_bytes() for name in ("workerlog.0", "workerlog.1"))
    assert rank0[:256] == rank1[:256] and rank0[:2000] != rank1[:2000]
    log = tmp_path / "workerlog.0"
    (tmp_path / "workerlog.1").write_bytes(rank1)
    f = follow(log)
    cut = rank0.index(b"\n", 1500) + 1
    append(log, rank0[:cut])
    lines = f.poll()
    with open(log, "wb") as out:                    # the next launch overwrites rank 0's log
        out.write(rank0[:300])
    out = f.poll()
    marker = out.index(Marker(NEW_RUN, "log truncated", line=len(lines) + 1))
    new_lines = rank0[:300].decode().split("\n")[:-1]       # (its last line is not complete)
    assert out[:marker] == [] and texts(out[marker + 1:]) == new_lines


def test_replacement_by_another_file_is_a_new_run(log, tmp_path, follow):
    f = follow(log)
    append(log, (LINES[0] + "\n").encode())
    f.poll()
    other = tmp_path / "elsewhere.tmp"
    other.write_bytes((LINES[4] + "\n").encode())
    os.replace(other, log)
    assert f.poll() == [Marker(NEW_RUN, "log replaced by a new file", line=2), (2, LINES[4])]


def test_delete_and_recreate(log, follow):
    f = follow(log)
    append(log, (LINES[0] + "\n").encode())
    f.poll()
    append(log, (LINES[1] + "\n").encode())
    os.unlink(log)
    assert f.poll() == [(2, LINES[1])]              # what the deleted file still held
    assert f.poll() == [Marker(NEW_RUN, "log deleted", line=3)]
    assert f.poll() == []
    append(log, (LINES[2] + "\n").encode())
    assert f.poll() == [(3, LINES[2])]


def test_partial_line_is_flushed_at_the_end(log, follow):
    f = follow(log)
    append(log, LINES[0].encode())
    assert f.poll() == []
    assert f.flush() == [(1, LINES[0])]


def test_a_followed_folder_takes_up_log_files_as_they_appear(tmp_path):
    from logreport.reader import Reader
    from logreport.runs import RunSource

    reader = Reader(RunSource(str(tmp_path), [], folder=True), live=True)
    try:
        assert reader.poll() == (0, 0)
        (tmp_path / "notes.md").write_text("not a log\n")
        (tmp_path / "train.log").write_text(LINES[0] + "\n")
        assert reader.poll()[0] == 1
        (tmp_path / "trainer_log.jsonl").write_text(JSONL + "\n")
        assert reader.poll()[0] == 1
        assert sorted(os.path.basename(p) for p in reader.parts) == ["train.log",
                                                                       "trainer_log.jsonl"]
    finally:
        reader.close()


def test_a_json_document_left_without_a_line_end_is_read_whole(tmp_path):
    """transformers writes `eval_results.json` with no line end after its closing brace: a
    follower read it all but that brace, which it held as an unfinished line, so `watch` on an
    output folder never showed the evaluation after training. Once the file stays as it is, a
    `.json` document's closing line is read; a log's unfinished line still waits."""
    src = DATA / "llamafactory" / "84_lf_sft_output_folder_eval_after_training" / "eval_results.json"
    assert not src.read_bytes().endswith(b"\n")
    shutil.copy(src, tmp_path / "eval_results.json")
    follower = Follower(str(tmp_path / "eval_results.json"))
    texts = [text for _, text in follower.poll() + follower.poll()]
    follower.close()
    assert texts[-1] == "}" and "".join(texts).count('"eval_loss"') == 1
    (tmp_path / "run.log").write_bytes(src.read_bytes())
    log = Follower(str(tmp_path / "run.log"))
    texts = [text for _, text in log.poll() + log.poll()]
    log.close()
    assert "}" not in texts
