"""Property: `watch` over a log appended in random pieces, ended wherever the file ends (mid-line,
at a line's end without its newline, or after it), gives the records, lines and summary that
`report` (reader.load) gives for the whole file: the unfinished last line is flushed at the end
of watching, once, as the reader takes it. (Only the status differs: a watch says `running` where
the log shows no end, `report` says `unknown`.)"""
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import DATA  # also loads the hypothesis profile
from test_follow_fuzz import facts

from logreport.analysis import summarize
from logreport.errors import LogreportError
from logreport.reader import load
from logreport.watch import Options, Watch

pytestmark = pytest.mark.timeout(120)      # a property: each example watches a log

LOGS = [DATA / "ppdet" / "picodet_s_320_coco_train.log",
        DATA / "llamafactory" / "sft_lora" / "console.log",          # tqdm: \r ends lines too
        DATA / "llamafactory" / "sft_lora_llamaboard" / "console.log",   # bars, then echo lines
        DATA / "llamafactory" / "sft_lora" / "trainer_log.jsonl"]    # one record a line
RAW = {path: path.read_bytes() for path in LOGS}


LIVE = ("status", "status_evidence")


def report(path: str):
    """What `report` reads from the file: (facts, summary), or the error it ends with."""
    try:
        run = load(path)
    except LogreportError as e:
        return e.one_line()
    return facts(run), settled(summarize(run))


def settled(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in LIVE}


def watched(path: str, data: bytes, cuts: list[int], folder: str):
    """Append data in pieces ending at cuts, a watch step after each; then end the watch."""
    w = Watch(path, Options(poll=0.01, output=str(Path(folder) / "r.html")))
    start = 0
    with open(path, "wb") as f:
        for cut in cuts + [len(data)]:
            f.write(data[start:cut])
            f.flush()
            start = cut
            w.step()
    try:
        w.finish()
    except LogreportError as e:
        return e.one_line()
    return facts(w.run), settled(w.summary)


@settings(max_examples=max(10, settings.default.max_examples // 3))   # each writes a report
@given(st.sampled_from(LOGS), st.data())
def test_watch_ended_anywhere_gives_what_report_gives_for_the_file(path, data):
    raw = RAW[path]
    end = data.draw(st.integers(1, len(raw)), label="end")
    text = raw[:end]
    if data.draw(st.booleans(), label="final newline"):
        text = text if text.endswith(b"\n") else text + b"\n"
    else:
        text = text.rstrip(b"\r\n")                   # the last line is unfinished
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(text)), max_size=8), label="cuts")))
    with tempfile.TemporaryDirectory() as folder:
        log = str(Path(folder) / path.name)
        got = watched(log, text, cuts, folder)
        assert got == report(log)
