"""The fast post-hoc path (blocks, ppdet column-wise runs) gives exactly the line-by-line rows."""
from pathlib import Path

import pytest

from logreport import pipeline
from logreport.eventsource import format_of
from logreport.formats import ppdet
from logreport.model import Run
from logreport.sources import Input

DATA = Path(__file__).parent / "data"
LOGS = sorted(p for p in DATA.rglob("*")        # text logs (VisualDL's vdlrecords.*.log is binary)
              if p.name.endswith((".log", ".log.gz", ".txt", ".out", ".jsonl")) and not format_of(p.name))


def line_by_line(path: Path, fmt: str | None = None) -> Run:
    """The live path: every line through Parser.feed (what watch does)."""
    run = Run(str(path))
    ingest = pipeline.Ingest(run, str(path), fmt, year=2024)
    lines = list(Input(str(path)).lines())
    for i in range(0, len(lines), 1000):
        ingest.feed(lines[i:i + 1000])
    ingest.finish(strict=False)
    return run


def by_blocks(path: Path, size: int, fmt: str | None = None) -> Run:
    """The post-hoc path of `load`: blocks, each prepared ahead in a worker thread."""
    run = Run(str(path))
    ingest = pipeline.Ingest(run, str(path), fmt, year=2024)
    blocks = Input(str(path)).blocks(size)
    for number, data, prepared in pipeline.prepared_ahead(blocks, ingest):
        ingest.feed_block(number, data, prepared)
    ingest.finish(strict=False)
    return run


def _same(x):
    """NaN equal to NaN, for comparing rows."""
    return "nan" if x != x else x


def facts(run: Run):
    return ([tuple(map(_same, row)) for row in run.rows()],
            [(m.kind, m.detail, m.line, m.step, m.time) for m in run.markers],
            run.info, run.lines, run.unparsed, run.unparsed_samples,
            [s.label for s in run.segments], run.first_time, run.last_time, run.format)


def test_there_are_logs():
    assert len(LOGS) >= 100


@pytest.mark.parametrize("size", [1 << 12, 1 << 22])
@pytest.mark.parametrize("path", LOGS, ids=[str(p.relative_to(DATA)) for p in LOGS])
def test_blocks_give_the_rows_of_line_by_line(path, size, monkeypatch):
    monkeypatch.setattr(ppdet, "MIN_RUN", 2)  # take even short runs column-wise
    assert facts(by_blocks(path, size)) == facts(line_by_line(path))


def test_the_fast_path_takes_the_training_lines(monkeypatch):
    """On a long run of alike lines almost every record comes as a block, not one by one."""
    path = DATA / "bench" / "genbig_excerpt.log.gz"
    blocks = []
    monkeypatch.setattr(Run, "_add_records",
                        lambda self, recs, file=0, orig=Run._add_records: (
                            blocks.append(len(recs)), orig(self, recs, file)))
    run = by_blocks(path, 1 << 16)
    assert run.count("train") == 7400 - 15
    assert sum(blocks) > 0.9 * run.count("train")


def test_parquet_export_has_the_rows_of_to_frame(tmp_path):
    import pandas as pd

    from logreport.export import write
    from logreport.pipeline import load

    run = load(str(DATA / "bench" / "genbig_excerpt.log.gz"))
    write([run], str(tmp_path / "x.parquet"))
    got = pd.read_parquet(tmp_path / "x.parquet")
    want = run.to_frame()
    assert len(got) == len(want)
    for column in ("segment", "phase", "step", "metric", "value"):
        assert got[column].tolist() == want[column].tolist()
    assert (got["time"] == want["time"]).all()


def test_series_indexes_stored_only_once_not_consecutive():
    import numpy as np

    from logreport.events import TRAIN, Record, Records

    run = Run("x")
    run.add(Record(TRAIN, {"loss": 1.0, "lr": 0.1}, step=0))
    run.add(Records(TRAIN, np.array([1.0, 2.0]), np.full(2, np.nan), np.full(2, np.nan),
                    np.array([2, 3]), {"loss": np.array([2.0, 3.0])}))
    run.add(Record(TRAIN, {"loss": 4.0, "lr": 0.2}, step=3))
    series = run.segment.train.series
    assert list(series["loss"].rec) == [0, 1, 2, 3]
    assert list(series["lr"].rec) == [0, 3]
    assert [(r[2], r[5], r[6]) for r in run.rows()] == [
        (0, "loss", 1.0), (1, "loss", 2.0), (2, "loss", 3.0), (3, "loss", 4.0),
        (0, "lr", 0.1), (3, "lr", 0.2)]


CONSOLE = DATA / "llamafactory" / "sft_lora" / "console.log"


def test_hf_trainer_fast_path_skips_the_bar_frames(monkeypatch):
    """On a real LLaMA-Factory console log most tqdm frames and step dicts never reach feed."""
    from logreport.formats import hf_trainer

    calls = []
    monkeypatch.setattr(hf_trainer.Parser, "feed",
                        lambda self, text, number, orig=hf_trainer.Parser.feed:
                        (calls.append(text), orig(self, text, number))[1])

    def bars_and_steps():
        return sum("%|" in text or text.startswith("{'loss'") for text in calls)

    slow = facts(line_by_line(CONSOLE, "hf_trainer"))   # --format: no lines spent detecting it
    frames = bars_and_steps()
    calls.clear()
    fast = by_blocks(CONSOLE, 1 << 22, "hf_trainer")
    assert facts(fast) == slow
    assert fast.count("train") == 60
    assert frames > 200
    assert bars_and_steps() < frames / 10


def _step_lines_merged(text: bytes, total: bytes | None, drop: bytes | None) -> bytes:
    """The real console log as logging_steps=2 would print it (every other step's dict and line
    end dropped, so a line holds four bar frames), its bars' total maybe changed, the lines
    holding `drop` dropped."""
    out, odd = [], False
    for line in text.split(b"\n"):
        if drop and drop in line:
            continue
        cut = line.find(b"\r{'loss'")
        if cut >= 0 and line.startswith(b"\r"):
            odd = not odd
            if odd:
                out.append(line[:line.rfind(b"\r", 0, cut)])
                continue
        out.append(line + b"\n")
    merged = b"".join(out)
    return merged.replace(b"/60 [", b"/%s [" % total) if total else merged


@pytest.mark.parametrize("total, drop", [(None, None), (b"97", None), (b"97", b"Num examples")])
@pytest.mark.parametrize("size", [1 << 10, 1 << 14, 1 << 22])
def test_hf_trainer_fast_path_many_frames_and_fallback_steps(tmp_path, total, drop, size):
    """Lines of several bar frames (the last ones of one step), and bars whose total is not the
    training one (dicts then take their step from the epoch, or count without the number of
    examples): the same facts either way."""
    path = tmp_path / "console.log"
    path.write_bytes(_step_lines_merged(CONSOLE.read_bytes(), total, drop))
    slow = line_by_line(path, "hf_trainer")
    assert facts(by_blocks(path, size, "hf_trainer")) == facts(slow)
    assert slow.count("train") == 30
