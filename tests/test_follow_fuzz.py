"""Property: a log followed while it is written, appended in random pieces, gives exactly the lines
and records of reading the whole file at once (`reader.load`)."""
import os
import tempfile

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import DATA  # also loads the hypothesis profile

from logreport.model import Run
from logreport.pipeline import Ingest, written_at
from logreport.reader import load
from logreport.sources import LineSplitter
from logreport.sources.follow import Follower

pytestmark = pytest.mark.timeout(120)      # a property: hundreds of examples

LOGS = [DATA / "ppdet" / "picodet_s_320_coco_train.log",
        DATA / "llamafactory" / "sft_lora" / "console.log"]


def facts(run: Run) -> tuple:
    """What a reader made of a log: rows (NaN-safe), lines, unparsed, format, segments."""
    return ([repr(row) for row in run.rows()], run.lines, run.unparsed,
            [(n, text) for _, n, text in run.unparsed_samples],
            run.format,
            [(s.index, s.label) for s in run.segments])


def whole(path) -> tuple[list, tuple]:
    data = path.read_bytes()
    splitter = LineSplitter()
    return splitter.feed(data) + splitter.flush(), facts(load(str(path)))


WHOLE = {path: whole(path) for path in LOGS}


def follow(data: bytes, cuts: list[int], limits: list[int]) -> tuple[list, tuple]:
    """Append data in pieces ending at cuts, polling (with a read limit) after each append, as
    the watch loop does: lines to the Ingest, or a format decision on a pause."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "run.log")
        follower = Follower(path)
        run = Run(path)
        ingest = Ingest(run, path, None, written_at(None))           # no file yet
        lines = follower.poll()                 # no file yet: nothing
        start = 0
        with open(path, "wb") as f:
            for i, cut in enumerate(cuts + [len(data)]):
                f.write(data[start:cut])
                f.flush()
                start = cut
                while got := follower.poll(limits[i % len(limits)] if limits else 1 << 20):
                    lines.extend(got)
                    ingest.feed(got)
                ingest.settle()
        tail = follower.flush()
        follower.close()
        lines.extend(tail)
        ingest.feed(tail)
        ingest.finish()
        run.files.append(path)
    return lines, facts(run)


@given(st.sampled_from(LOGS), st.data())
def test_following_random_appends_gives_what_reading_at_once_gives(path, data):
    raw = path.read_bytes()
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(raw)), max_size=12))))
    limits = data.draw(st.lists(st.integers(1, 5000), max_size=3))
    lines, got = follow(raw, cuts, limits)
    want_lines, want = WHOLE[path]
    assert lines == want_lines
    assert got == want
