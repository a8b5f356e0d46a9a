"""The fast post-hoc path (blocks, ppdet column-wise runs) gives exactly the line-by-line rows."""
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import collapsed, repeated

from logreport import pipeline
from logreport.eventsource import format_of
from logreport.formats import ppdet
from logreport.model import Run
from logreport.sources import Input

DATA = Path(__file__).parent / "data"
WRITTEN = datetime(2024, 12, 31)       # when the logs were written (ppdet stamps have no year)
LOGS = sorted(p for p in DATA.rglob("*")        # text logs (VisualDL's vdlrecords.*.log is binary)
              if p.name.endswith((".log", ".log.gz", ".txt", ".out", ".jsonl")) and not format_of(p.name))


def line_by_line(path: Path, fmt: str | None = None) -> Run:
    """The live path: every line through Parser.feed (what watch does)."""
    run = Run(str(path))
    ingest = pipeline.Ingest(run, str(path), fmt, written=WRITTEN)
    lines = list(Input(str(path)).lines())
    for i in range(0, len(lines), 1000):
        ingest.feed(lines[i:i + 1000])
    ingest.finish(strict=False)
    return run


def by_blocks(path: Path, size: int, fmt: str | None = None) -> Run:
    """The post-hoc path of `load`: blocks, each prepared ahead in a worker thread."""
    run = Run(str(path))
    ingest = pipeline.Ingest(run, str(path), fmt, written=WRITTEN)
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
            [(seg.index, phase, table.line.take(np.arange(len(table))).tolist(),
              table.estimated.take(np.arange(len(table))).tolist())
             for seg in run.segments for phase, table in seg.tables.items()],
            [(m.kind, m.detail, m.line, m.step, m.time) for m in run.markers],
            run.info, run.lines, run.unparsed, run.unparsed_samples, run.repeats,
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
    from logreport.reader import load

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


def _stdout_only(text: bytes) -> bytes:
    """The real console log without tqdm's frames, as `llamafactory-cli train ... | tee` or
    `disable_tqdm` leave it (tqdm draws on stderr; the dicts are printed on stdout): each
    other piece of a line on a line of its own."""
    out = []
    for line in text.split(b"\n"):
        out += [piece for piece in line.split(b"\r") if b"%|" not in piece and piece.strip()]
    return b"\n".join(out) + b"\n"


def _read_every_way(path: Path, data: bytes) -> Run:
    """`data` written to `path`, read line by line, by blocks of 1 kB and 4 MB and by ranges:
    the same facts every way (the line-by-line run)."""
    path.write_bytes(data)
    slow = line_by_line(path, "hf_trainer")
    for size in (1 << 10, 1 << 22):
        assert facts(by_blocks(path, size, "hf_trainer")) == facts(slow)
    assert facts(by_ranges(path, 3000, "hf_trainer")) == facts(slow)
    return slow


@pytest.mark.parametrize("shape", ["every_step", "every_other_step", "repeated"])
def test_bare_dicts_give_the_facts_of_feed(tmp_path, shape):
    """A console of dicts with no bar (stdout only): each dict but the first of a stretch is
    read column-wise, and its estimated step is feed's, whether each estimate follows the one
    before (every step) or comes from the epoch (every other step's dict: the epochs skip)."""
    from logreport.formats import hf_fast, hf_trainer

    text = CONSOLE.read_bytes()
    data = _stdout_only({"every_step": text, "every_other_step": _step_lines_merged(text, None, None),
                         "repeated": repeated(text, 3)}[shape])
    slow = _read_every_way(tmp_path / "stdout.log", data)
    dicts = data.count(b"{'loss'")
    assert slow.count("train") == dicts and b"%|" not in data
    prepared = hf_trainer.Parser().prepare_block(data)
    assert sum(count for kind, _, count, *_ in prepared.parts if kind == hf_fast.BARE) == dicts


def _keys_changed(text: bytes, shapes: int) -> bytes:
    """The real console with its dicts in `shapes` shapes by turns, a stretch of 10 steps each:
    grad_norm left out, or the values unquoted (as transformers 4 prints them), or both."""
    import re

    lines, out, step = text.split(b"\n"), [], 0
    for line in lines:
        if b"\r{'loss': " in line:
            shape, step = (step // 10) % shapes, step + 1
            if shape in (1, 3):
                line = re.sub(rb"'grad_norm': '[^']*', ", b"", line)
            if shape in (2, 3):
                line = re.sub(rb"\{('loss'.*)\}", lambda m: b"{" + m.group(1).replace(b": '", b": ")
                              .replace(b"', ", b", ").rstrip(b"'") + b"}", line)
        out.append(line)
    return b"\n".join(out)


@pytest.mark.parametrize("shapes", [2, 4])
def test_dicts_whose_keys_change_give_the_facts_of_feed(tmp_path, shapes):
    """Training dicts whose keys or quoting change within a block (a key that comes and goes):
    each shape is read column-wise, up to four a block, with feed's facts."""
    from logreport.formats import hf_fast, hf_trainer

    data = _keys_changed(repeated(CONSOLE.read_bytes(), 3), shapes)
    assert data.count(b"'grad_norm'") < data.count(b"{'loss'")
    _read_every_way(tmp_path / "keys.log", data)
    prepared = hf_trainer.Parser().prepare_block(data)
    column_wise = sum(count for kind, _, count, *_ in prepared.parts if kind == hf_fast.STD)
    assert column_wise >= data.count(b"\r{'loss'") * 0.8, column_wise
    assert len({detail.keys for kind, *_, detail in prepared.parts if kind == hf_fast.STD}) == min(shapes, 2)


def _one_frame_a_line(text: bytes, dict_twice: bool = False) -> bytes:
    """The real console log with tqdm's redraws on lines of their own (`\\r` turned into `\\n`
    on the way to the file); `dict_twice`: every tenth dict printed twice, with no bar between."""
    text = text.replace(b"\r", b"\n")
    if dict_twice:
        dicts = text.split(b"\n{'loss'")
        text = b"".join(piece + (b"\n{'loss'" + piece.split(b"\n", 1)[0] if i % 10 == 5 else b"")
                        + b"\n{'loss'" for i, piece in enumerate(dicts[:-1])) + dicts[-1]
    return text


@pytest.mark.parametrize("shape", ["every_step", "every_other_step", "repeated", "dict_twice"])
def test_one_frame_lines_give_the_facts_of_feed(tmp_path, shape):
    """A console whose bar frames are lines of their own: runs of bar lines, blank lines and
    dicts are read column-wise (each dict's step: the count of the next bar line), with feed's
    facts; a dict with no bar before it since the dict before goes to feed."""
    from logreport.formats import hf_fast, hf_trainer

    text = CONSOLE.read_bytes()
    data = _one_frame_a_line({"every_other_step": _step_lines_merged(text, None, None),
                              "repeated": repeated(text, 3)}.get(shape, text),
                             dict_twice=shape == "dict_twice")
    slow = _read_every_way(tmp_path / "frames.log", data)
    dicts = data.count(b"\n{'loss'")
    assert b"\r" not in data and slow.count("train") == dicts     # a dict twice: twice
    prepared = hf_trainer.Parser().prepare_block(data)
    taken = sum(len(detail.dicts) if kind == hf_fast.FRAMES else count     # (a dict twice: bare)
                for kind, _, count, *_, detail in prepared.parts if kind in (hf_fast.FRAMES, hf_fast.BARE))
    assert taken >= dicts * 0.9, (taken, dicts)


BOARD = DATA / "llamafactory" / "sft_lora_llamaboard" / "console.log"


def _without_some_dicts(text: bytes) -> bytes:
    """Every seventh dict line after an echo dropped (an echo alone: its record is the echo's),
    and one echo's loss made no number."""
    lines = text.split(b"\n")
    keep = [line for i, line in enumerate(lines)
            if not (i % 7 == 3 and line.startswith(b"\r ") and b"\r{'loss'" in line)]
    return b"\n".join(keep).replace(b">> {'loss': 7.6300,", b">> {'loss': 7.63x,", 1)


@pytest.mark.parametrize("shape", ["real", "repeated", "echo_alone", "one_bar_a_step"])
def test_echo_pairs_give_the_facts_of_feed(tmp_path, shape):
    """LlamaBoard's console (the real one: a line of bars and the logger's echo of each dict,
    then the dict): pairs are read column-wise, each dict taking its step from the bars around
    its echo as feed weighs them (steps repeat where the bars ran ahead), with feed's facts."""
    from logreport.formats import hf_fast, hf_trainer

    text = BOARD.read_bytes()
    data = {"real": text, "repeated": repeated(text, 4), "echo_alone": _without_some_dicts(text),
            "one_bar_a_step": _step_lines_merged(text, None, None)}[shape]
    _read_every_way(tmp_path / "board.log", data)
    prepared = hf_trainer.Parser().prepare_block(data)
    pairs = sum(count for kind, _, count, *_ in prepared.parts if kind == hf_fast.ECHO) // 2
    echoes = data.count(b"llamafactory.train.callbacks:144 >> {'loss'")
    # (an echo alone, or merged with the next step's bars, is read by feed)
    assert pairs >= echoes * {"echo_alone": 0.6, "one_bar_a_step": 0.4}.get(shape, 0.9), (pairs, echoes)


def _bars_dropped(text: bytes) -> bytes:
    """The real console with tqdm's frames taken out of every line (what stdout alone keeps
    of LlamaBoard's console: the logger's echo of each dict, then the dict)."""
    import re

    out = []
    for line in text.split(b"\n"):
        pieces = [re.sub(rb"[ \d]{2}\d%\|[^\]\r]*\]", b"", piece).replace(b"\x1b[A", b"")  # (tqdm's cursor)
                  for piece in line.split(b"\r")]
        out += [piece for piece in pieces if piece.strip()]
    return b"\n".join(out) + b"\n"


def _one_frame_echoes(text: bytes) -> bytes:
    """LlamaBoard's console with each echo's line cut to its last frame (no redraws) and no
    "Num examples" line (no epoch facts to weigh a step)."""
    return b"\n".join(b"\r" + line.rsplit(b"\r", 1)[-1] if b"callbacks" in line and b"%|" in line
                      else line for line in text.split(b"\n") if b"Num examples" not in line)


@pytest.mark.parametrize("shape", ["collapsed", "collapsed_paste", "one_frame_echoes"])
def test_steps_the_bars_cannot_tell_are_feeds_estimates(tmp_path, shape):
    """Consoles that kept one frame a line: whole with its epoch facts (every step weighed
    by them), pasted from an echo on, or with echo pairs and no facts. The steps the bars
    cannot tell are marked as estimates, as feed marks them one by one (the echo pairs of a
    stretch with any such step go to feed)."""
    from logreport.formats import hf_fast, hf_trainer

    text = repeated(BOARD.read_bytes(), 4)
    data = {"collapsed": collapsed(text), "collapsed_paste": collapsed(text, from_echo=2),
            "one_frame_echoes": _one_frame_echoes(text)}[shape]
    slow = _read_every_way(tmp_path / "console.log", data)
    estimated = [flag for _, table in slow.tables("train") for flag in table.estimated]
    assert any(estimated) == (shape != "collapsed")
    if shape == "one_frame_echoes":
        prepared = hf_trainer.Parser().prepare_block(data)
        assert any(kind == hf_fast.ECHO for kind, *_ in prepared.parts)


@pytest.mark.parametrize("source", ["board", "board_repeated"])
def test_echoes_between_bare_dicts_give_the_facts_of_feed(tmp_path, source):
    """LlamaBoard's console as stdout keeps it (the echo of each dict on a line, then the
    dict; no bars): the dicts and their echoes are read column-wise as bare dicts, each dict
    replacing its echo (steps estimated), with feed's facts."""
    from logreport.formats import hf_fast, hf_trainer

    text = BOARD.read_bytes()
    data = _bars_dropped(repeated(text, 4) if source == "board_repeated" else text)
    slow = _read_every_way(tmp_path / "board_stdout.log", data)
    prepared = hf_trainer.Parser().prepare_block(data)
    bare = [detail for kind, *_, detail in prepared.parts if kind == hf_fast.BARE]
    dicts = data.count(b"\n{'loss'")
    assert sum(len(run.dicts) for run in bare) >= dicts * 0.9
    assert sum(len(run.echoes) for run in bare) >= dicts * 0.9
    # a logger line with no message ("[INFO|trainer.py:2668] … >> " before "***** Running
    # Evaluation *****"): a logger line, not unparsed; only "[transformers] warmup_ratio …" is
    assert slow.unparsed == 1, slow.unparsed_samples


def test_records_of_a_stretch_reach_the_run_at_once(tmp_path, monkeypatch):
    """LlamaBoard's repeated console (its copies' bars and epochs renumbered): its dicts' Records
    are added as blocks, not one by one. (Its steps once repeated where a copy's epochs, left
    as printed, named steps of the first copy and settled the step between the bars: such a
    console now reads as buffered, an evaluation's epoch belying its bar.)"""
    from logreport.events import TRAIN

    path = tmp_path / "board.log"
    path.write_bytes(repeated(BOARD.read_bytes(), 6))
    slow = line_by_line(path, "hf_trainer")
    steps = [step for _, phase, step, *_, metric, _ in slow.rows() if metric == "loss"]
    assert len(steps) == 360 and "dict_steps" not in slow.info
    singles = []
    monkeypatch.setattr(Run, "_add_record", lambda self, rec, file=0, orig=Run._add_record: (
        singles.append(rec) if rec.phase == TRAIN else None, orig(self, rec, file))[1])
    fast = by_blocks(path, 1 << 22, "hf_trainer")
    assert facts(fast) == facts(slow)
    assert len(singles) < 360 / 4, len(singles)


def test_a_record_printed_twice_in_a_block_is_kept_once(tmp_path):
    """LlamaBoard's console with each pair of lines printed twice (two writers): where a copy
    takes the step of the record before it, the block path keeps it once, counted as a
    repeat, as feed does."""
    lines = BOARD.read_bytes().split(b"\n")
    out = []
    for i, line in enumerate(lines):
        out.append(line)
        if b"callbacks:144 >> {'loss'" in line and i + 1 < len(lines) and b"\r{'loss'" in lines[i + 1]:
            out += [lines[i + 1], line]
    path = tmp_path / "twice.log"
    path.write_bytes(b"\n".join(out))
    slow = line_by_line(path, "hf_trainer")
    assert facts(by_blocks(path, 1 << 22, "hf_trainer")) == facts(slow)
    assert slow.repeats > 10


def test_estimated_steps_that_rise_reach_the_run_at_once(tmp_path, monkeypatch):
    """Bare dicts' Records (every step an estimate, rising) are added as blocks, not record by
    record, with the facts of reading them line by line."""
    from logreport.events import TRAIN

    path = tmp_path / "stdout.log"
    path.write_bytes(_stdout_only(repeated(CONSOLE.read_bytes(), 6)))
    slow = facts(line_by_line(path, "hf_trainer"))
    singles, blocks = [], []
    monkeypatch.setattr(Run, "_add_record", lambda self, rec, file=0, orig=Run._add_record: (
        singles.append(rec) if rec.phase == TRAIN else None, orig(self, rec, file))[1])
    monkeypatch.setattr(Run, "_add_records", lambda self, recs, file=0, orig=Run._add_records: (
        blocks.append(len(recs)), orig(self, recs, file))[1])
    fast = by_blocks(path, 1 << 22, "hf_trainer")
    assert facts(fast) == slow and fast.count("train") == 360
    assert len(singles) < 360 / 10, len(singles)
    # the stretches between evaluations, and the dicts left pending by them, are held by the
    # batch and added to the run as one block (estimates stay marked: facts above)
    assert len(blocks) <= 2, blocks


def test_an_infinite_epoch_is_no_step(tmp_path):
    """An epoch printed as inf (the real stdout console, one epoch changed) gives no step from
    the epoch (it stopped the parse with an OverflowError): the estimate follows the one before,
    on either path."""
    data = _stdout_only(CONSOLE.read_bytes()).replace(b"'epoch': '0.01778'", b"'epoch': 'inf'")
    assert data.count(b"'inf'") == 1
    path = tmp_path / "stdout.log"
    path.write_bytes(data)
    slow = line_by_line(path, "hf_trainer")
    assert facts(by_blocks(path, 1 << 22, "hf_trainer")) == facts(slow)
    steps = [step for _, phase, step, epoch, _, metric, _ in slow.rows() if metric == "loss"]
    assert steps[:3] == [1, 2, 3]


def by_ranges(path: Path, size: int, fmt: str | None = None) -> Run:
    """The parallel path of `load`: the file cut at line ends every `size` bytes, the ranges
    prepared in 2 worker processes and emitted here in order."""
    from logreport import ranges

    run = Run(str(path))
    ingest = pipeline.Ingest(run, str(path), fmt, written=WRITTEN)
    source = Input(str(path))
    run.prepared_ranges = 0
    for number, data, prepared in ranges.blocks(source, ingest, workers=2, size=size, min_size=0):
        ingest.feed_block(number, data, prepared)
        run.prepared_ranges += prepared is not None
    ingest.finish(strict=False)
    return run


HF_LOGS = [p for p in LOGS if p.suffix in (".log", ".txt") and "llamafactory" in p.parts
           and b"%|" in p.read_bytes()]
RANGE_LOGS = HF_LOGS + [DATA / "ppdet" / "picodet_s_320_coco_long80e.log",
                        DATA / "ppdet" / "ppyoloe_crn_s_coco_resume.log",
                        DATA / "bench" / "genbig_excerpt.log.gz"]


@pytest.mark.parametrize("how", ["exits", "raises"])
def test_a_worker_that_dies_mid_parse_loses_nothing(how, monkeypatch):
    """A worker process that is killed (out of memory, say) or meets an error on its fifth
    range: the main process reads on itself from the first range it did not get, and gives
    the facts of reading line by line, with no word from the worker on stderr."""
    import os

    from logreport import ranges

    prepare, calls = ranges._prepare, []

    def dying(*task):
        calls.append(task)              # (in the worker: its own copy of the list)
        if len(calls) == 5:
            if how == "exits":
                os._exit(9)
            raise MemoryError("a worker out of memory")
        return prepare(*task)

    monkeypatch.setattr(ranges, "_prepare", dying)
    fast = by_ranges(CONSOLE, 3001)
    assert 0 < fast.prepared_ranges < CONSOLE.stat().st_size // 3001
    assert facts(fast) == facts(line_by_line(CONSOLE))


def test_no_worker_to_be_had_reads_the_file_here(monkeypatch):
    """The second worker cannot be forked (a process limit, no memory): the one started is
    stopped, and the file is read in this process, with the facts of reading line by line."""
    from logreport import ranges

    started, worker = [], ranges._Worker

    def second_fails(*args):
        if started:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        started.append(worker(*args))
        return started[-1]

    monkeypatch.setattr(ranges, "_Worker", second_fails)
    fast = by_ranges(CONSOLE, 3001)
    assert fast.prepared_ranges == 0 and not started[0].process.is_alive()
    assert facts(fast) == facts(line_by_line(CONSOLE))


def test_a_worker_goes_on_while_its_results_wait(tmp_path, monkeypatch):
    """A worker that is done with a range goes on to the next ones sent while this process is
    busy and has not taken the results: a result (0.4-0.6 MB a 2 MB range of a console)
    outgrows a socket's buffer (208 kB by default), and a worker that waited for each to be
    taken sat idle meanwhile. The results then come, in order, as prepared."""
    import time

    from logreport import ranges
    from logreport.formats import hf_trainer

    path = tmp_path / "console.log"
    path.write_bytes(repeated(CONSOLE.read_bytes(), 150))
    total = path.stat().st_size
    cuts = [0, total // 3, 2 * total // 3, total]
    tasks = [(start, end, total) for start, end in zip(cuts, cuts[1:])]
    done = tmp_path / "done"
    prepare = ranges._prepare

    def noted(*task):
        result = prepare(*task)
        with open(done, "a") as out:        # (in the worker)
            out.write(f"{task[0]}\n")
        return result

    monkeypatch.setattr(ranges, "_prepare", noted)
    parser = hf_trainer.Parser()
    worker = ranges._Worker(parser, str(path))
    try:
        for task in tasks:
            worker.send(task)
        deadline = time.monotonic() + 20
        while (not done.exists() or done.read_text().count("\n") < len(tasks)) \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        assert done.read_text().split() == [str(task[0]) for task in tasks]
        ranges._init(parser, str(path))
        assert [worker.receive()[:3] for _ in tasks] == [prepare(*task)[:3] for task in tasks]
    finally:
        worker.close()


@pytest.mark.parametrize("at", [1228, 1229, 1230])
def test_an_evaluation_whose_epoch_belies_its_step_before_training_lines(at, tmp_path):
    """Another run's evaluation pasted into a console (a logger line and its dict, epoch 2.22,
    from fixture 67) right before training lines (at step 295, past the 250 that epoch names):
    the first bar after it flushes it, feed finds its epoch far behind that bar's step, so
    stdout was buffered, and the dicts from there on get estimated steps. The fast path
    flushed it as the first frame of a stretch it then read as if nothing had changed: that
    line's dict kept the bar's step (found by the fuzz test of edited consoles). Blocks of any
    size and ranges give the facts of feed."""
    lines = repeated(CONSOLE.read_bytes(), 5).split(b"\n")
    other = (DATA / "llamafactory" / "67_lf_qwen2.5_1350steps_epochs_printed_0.2_readme.log"
             ).read_bytes().split(b"\n")
    assert other[505].startswith(b"{'eval_loss': 3.25") and other[505].endswith(b"'epoch': 2.22}")
    path = tmp_path / "pasted.log"
    path.write_bytes(b"\n".join(lines[:at] + other[504:506] + lines[at:]))
    slow = line_by_line(path, "hf_trainer")
    assert slow.info["dict_steps"].startswith("estimated: stdout was buffered")
    for size in (300, 1 << 12, 1 << 22):
        assert facts(by_blocks(path, size, "hf_trainer")) == facts(slow)
    assert facts(by_ranges(path, 300, "hf_trainer")) == facts(slow)

@pytest.mark.parametrize("size", [1 << 12, 1 << 22])
@pytest.mark.parametrize("path", HF_LOGS, ids=[str(p.relative_to(DATA)) for p in HF_LOGS])
def test_hf_trainer_fast_path_from_the_first_line(path, size):
    """The format given, no line is spent on detecting it: the fast path reads every real
    console from its first line (quoted and unquoted dicts, keys with a `/` as DPO prints
    them, eval bars) and gives the facts of feed."""
    assert facts(by_blocks(path, size, "hf_trainer")) == facts(line_by_line(path, "hf_trainer"))


@pytest.mark.parametrize("path", RANGE_LOGS, ids=[str(p.relative_to(DATA)) for p in RANGE_LOGS])
def test_ranges_give_the_rows_of_line_by_line(path, monkeypatch):
    """A file cut into ranges prepared in other processes: the same facts as line by line
    (a .gz file is read in this process)."""
    monkeypatch.setattr(ppdet, "MIN_RUN", 2)
    fast = by_ranges(path, 3001)
    assert facts(fast) == facts(line_by_line(path))
    lines = path.read_bytes().count(b"\n")     # (the format is decided on the first 400 here)
    assert fast.prepared_ranges > 0 or path.suffix == ".gz" or lines < 1000


def _arrays(detail) -> list:
    """The numpy arrays a prepared stretch holds (in fields, lists, or `Rows` of a block)."""
    from logreport.formats.hf_lines import Rows

    found = []
    for value in (detail._asdict() if hasattr(detail, "_asdict") else vars(detail)).values():
        if isinstance(value, Rows):
            value = value.columns
        found += [value] if isinstance(value, np.ndarray) else \
            [a for a in value if isinstance(a, np.ndarray)] if isinstance(value, list) else []
    return found


@pytest.mark.parametrize("name", ["sft_lora", "sft_lora_llamaboard"])
def test_a_prepared_range_sends_each_column_once(name):
    """A worker pickles each prepared range back to the main process. A console that evaluates
    every 15 steps has a stretch of training lines (or echo pairs) every 15 lines: each holds
    rows of its block's columns, so the pickle carries each column once, not an array (or
    several) per stretch."""
    import pickle

    from logreport.formats import hf_trainer

    data = repeated((DATA / "llamafactory" / name / "console.log").read_bytes(), 20)
    prepared = pickle.loads(pickle.dumps(hf_trainer.Parser().prepare_block(data)))
    stretches = [detail for *_, detail in prepared.parts if hasattr(detail, "values")]
    arrays = {id(a) for detail in stretches for a in _arrays(detail)}
    assert len(stretches) >= 40 and len(arrays) <= 16


def test_lines_for_feed_are_split_into_frames_where_the_block_is_prepared():
    """The lines of a block that feed reads one by one (an evaluation's banner and dict, a
    checkpoint line, a warning glued to a bar) are split into frames and decoded where the block
    is prepared (a worker), as `frames` splits them: not in the process that feeds them, the
    busier one on a console that evaluates every 15 steps."""
    from logreport.events import Frames
    from logreport.formats import hf_trainer
    from logreport.formats.hf_quiet import LINES
    from logreport.sources import frames

    data = repeated(CONSOLE.read_bytes(), 20)
    prepared = hf_trainer.Parser().prepare_block(data)
    stretches = [(first, count, detail) for kind, first, count, *_, detail in prepared.parts
                 if kind == LINES]
    assert len(stretches) >= 40
    raw = data.split(b"\n")
    for first, count, detail in stretches:
        split: list = []
        for i in range(count):
            frames(raw[first + i], i, split)
        assert detail == split
    fed = [item for item in hf_trainer.Parser().feed_block(data, 1) if isinstance(item, list)]
    assert sum(isinstance(item, Frames) for item in fed) >= len(stretches)


@pytest.mark.parametrize("name,times", [("sft_lora", 4), ("tf4_sft_lora", 4),
                                        ("sft_lora_killed_sigterm", 1)])
def test_the_bar_beginning_the_line_after_training_lines_flushes_their_last_dict(
        name, times, tmp_path, monkeypatch):
    """Training lines, then a line that feed reads and that begins with the training bar (an
    evaluation's logger line glued to it, a checkpoint saved at it): that bar, feed's first
    frame of the line, flushes the last dict of the lines before it, so their stretch gives
    its records at once, the last dict's step that bar's count, instead of leaving it pending
    for feed (a record made, flushed and added alone at every evaluation). Feed's facts."""
    from logreport import batch
    from logreport.events import Record

    data = (DATA / "llamafactory" / name / "console.log").read_bytes()
    data = repeated(data, times) if times > 1 else data
    path = tmp_path / "console.log"
    path.write_bytes(data)
    alone: list = []
    add = batch.Batch.add
    monkeypatch.setattr(batch.Batch, "add", lambda self, event: (
        alone.append(event) if isinstance(event, Record) and event.phase == "train" else None,
        add(self, event))[1])
    run = by_blocks(path, 1 << 20, "hf_trainer")
    assert facts(run) == facts(line_by_line(path, "hf_trainer"))
    evaluations = data.count(b"***** Running Evaluation") + data.count(b"Saving model checkpoint")
    assert evaluations >= 10 and len(alone) <= 4       # (before: one or more an evaluation)


@pytest.mark.parametrize("fed_after_all", [False, True])
@pytest.mark.parametrize("name", ["sft_lora", "tf4_sft_lora", "dpo_lora", "pt_full"])
def test_a_logger_line_glued_to_the_bar_after_training_lines_is_read_with_them(
        name, fed_after_all, tmp_path, monkeypatch):
    """Training lines, then a line that begins with the training bar and goes on with a logger
    line (`\\r 50%|…| 30/60 [00:21<00:17,  1.76it/s][INFO|trainer.py:2668] … >> `, the
    evaluation's first, then `***** Running Evaluation *****` on the next line; or `… >> Saving
    model checkpoint to …`): the stretch reads them as feed would (the bar, the logger line, the
    banner), so that feed is not called for them at every evaluation or checkpoint, nor the
    lines split into frames for it. Feed's facts; and where feed must read them after all (here
    forced: the main process finds no bar where the worker found it), its frames are those."""
    from logreport.formats import hf_fast, hf_trainer

    if fed_after_all:
        monkeypatch.setattr(hf_fast, "BAR", re.compile("(?!)"))

    data = repeated((DATA / "llamafactory" / name / "console.log").read_bytes(), 8)
    path = tmp_path / "console.log"
    path.write_bytes(data)
    glued = re.compile(r" *\d+%\|[^|]*\| *\d+/\d+ \[[^]]*\]\[INFO\|")
    fed: list = []
    feed = hf_trainer.Parser.feed
    monkeypatch.setattr(hf_trainer.Parser, "feed", lambda self, text, number: (
        fed.append(text) if glued.match(text) or text.startswith("***** Running") else None,
        feed(self, text, number))[1])
    run = by_blocks(path, 1 << 20, "hf_trainer")
    assert len(fed) >= 8 if fed_after_all else len(fed) <= 2    # (<= 2: at a block's end)
    monkeypatch.setattr(hf_trainer.Parser, "feed", feed)
    assert facts(run) == facts(line_by_line(path, "hf_trainer"))
    assert len(re.findall(rb"\]\[INFO\|trainer\.py:\d+\] [^\n>]*>> ", data)) >= 8


def test_bare_lines_feed_reads_come_with_their_prepared_range(tmp_path, monkeypatch):
    """A warning glued to the training bar (`\\r  0%|...| 30/60 [00:00<?, ?it/s]/home/...:
    UserWarning: ...`), then its bare continuation line (`  super().__init__(loader)`): feed
    reads that line (it continues no message), so a worker that prepares the range sends its
    bytes along, and the main process does not read the range from the file again for it (it
    did for every range with a checkpoint: the file read and its line ends found once more).
    Feed's facts."""
    from logreport import ranges

    data = repeated(CONSOLE.read_bytes(), 40)
    assert data.count(b"\n  super().__init__(loader)\n") >= 40
    path = tmp_path / "console.log"
    path.write_bytes(data)
    read_again: list = []
    getitem = ranges._Range.__getitem__
    monkeypatch.setattr(ranges._Range, "__getitem__",
                        lambda self, item: (read_again.append(item), getitem(self, item))[1])
    run = by_ranges(path, 100_000, "hf_trainer")
    assert run.prepared_ranges >= 8 and read_again == []
    assert facts(run) == facts(line_by_line(path, "hf_trainer"))


@pytest.mark.timeout(120)
def test_property_parallel_parse_with_random_cut_positions(tmp_path):
    """The split points of the parallel parse: a console log (the real one repeated, one with
    four bar frames a line, one whose bars are not of the training total, stdout only, one
    frame a line, LlamaBoard's and its stdout, dicts whose keys change) cut at random line ends
    gives the facts of reading it line by line."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    text = CONSOLE.read_bytes()
    shapes = {"repeated": repeated(text, 6), "merged": _step_lines_merged(repeated(text, 3), None, None),
              "other_total": _step_lines_merged(text, b"97", None),
              "stdout_only": _stdout_only(repeated(text, 3)),
              "one_frame_a_line": _one_frame_a_line(repeated(text, 3), dict_twice=True),
              "llamaboard": repeated(BOARD.read_bytes(), 3),
              "llamaboard_stdout": _bars_dropped(repeated(BOARD.read_bytes(), 3)),
              "keys_change": _keys_changed(repeated(text, 3), 4)}
    want = {}
    for name, data in shapes.items():
        (tmp_path / name).write_bytes(data)
        want[name] = facts(line_by_line(tmp_path / name, "hf_trainer"))

    @settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.sampled_from(sorted(shapes)), st.integers(min_value=200, max_value=40000))
    def check(name, size):
        assert facts(by_ranges(tmp_path / name, size, "hf_trainer")) == want[name]

    check()


def test_values_the_cast_does_not_take_go_through_feed(tmp_path):
    """Values pyarrow does not cast (`1_000`, ` 7.6`, `abc`) are read as feed reads them (a
    number, or no metric: the line is read by feed). A synthetic variant of the real log."""
    text = CONSOLE.read_bytes()
    odd = (text.replace(b"'loss': '7.63'", b"'loss': '7_63'").replace(b"'loss': '7.652'", b"'loss': 'abc'")
           .replace(b"'grad_norm': '0.1904'", b"'grad_norm': 'nan'")
           .replace(b"'grad_norm': '0.2312'", b"'grad_norm': '-inf'"))
    assert odd.count(b"7_63") == 1 and odd.count(b"'abc'") == 1
    path = tmp_path / "console.log"
    path.write_bytes(odd)
    slow = line_by_line(path, "hf_trainer")
    assert facts(by_blocks(path, 1 << 22, "hf_trainer")) == facts(slow)
    assert facts(by_ranges(path, 5000, "hf_trainer")) == facts(slow)
    assert 7.63e2 in [v for *_, m, v in slow.rows() if m == "loss"]


def test_bars_find_what_the_lazy_description_group_found():
    """hf_values.bars (a description read back from a frame's start) finds the frames and
    descriptions `(?:(?P<desc>[^|\\r\\n]*?): )?` + BAR finds."""
    import re

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from logreport.formats.hf_values import BAR, bars

    lazy = re.compile(r"(?:(?P<desc>[^|\r\n]*?): )?" + BAR.pattern)
    pieces = [": ", " 10%|", "|", "█", " 3/60 [00:01<00:02,  3.1it/s]", "a", "Map: ", "\r", " ",
              "100%|", "5/5 [00:00<?, ?it/s]", ":", "1", "%|", "it/s]"]

    @settings(max_examples=3000, deadline=None)
    @given(st.lists(st.sampled_from(pieces), max_size=14))
    def check(parts):
        text = "".join(parts)
        assert [(s, d, m.span(), m.groups()) for s, d, m in bars(text)] == \
            [(m.start(), m.group("desc"), (m.start("pct"), m.end()), m.groups()[1:])
             for m in lazy.finditer(text)]

    check()


def test_a_blocks_passes_read_at_once_give_what_they_read_one_by_one(monkeypatch):
    """The runs of training lines' last counts and clocks, read for a whole block at once
    (hf_bars.run_clocks), are hf_bars.last_clock's, run by run; the RE2 passes that try only
    the lines holding a training dict (Marks.dict_lines) find what a pass over every line
    finds, and the echo lines those before a dict that such a pass finds: on every real
    LLaMA-Factory console of tests/data (those that end their training repeated), in blocks
    of several sizes."""
    from logreport.formats import arrow, hf_fast, hf_lines, hf_trainer
    from logreport.formats.hf_bars import last_clock

    run_of, matches, echo_lines = hf_fast.run_of, hf_lines.matches, hf_lines._echo_lines
    seen = {"runs": 0, "passes": 0}

    def checked_run_of(shape, at, last, marks, starts, ends, first, n, *rest):
        if last is not None:
            assert last == last_clock(marks.data, starts, ends, first, n)
            seen["runs"] += 1
        return run_of(shape, at, last, marks, starts, ends, first, n, *rest)

    def checked_matches(marks, starts, pattern, lines=None):
        found = matches(marks, starts, pattern, lines)
        if lines is not None:
            every, tried = matches(marks, starts, pattern), np.zeros(len(starts), dtype=bool)
            tried[lines] = True
            assert (found == every & tried).all()
            assert ">> " in pattern or not (every & ~tried).any()     # (echoes: see below)
            seen["passes"] += 1
        return found

    def checked_echo_lines(marks, starts, bars, dicts):
        found = echo_lines(marks, starts, bars, dicts)
        every = np.flatnonzero(matches(marks, starts, "^" + (bars + hf_lines._ECHO).decode())
                               & np.r_[dicts[1:], False])
        if len(every):
            every = every[~arrow.matches(arrow.slices(marks.data, starts[every],
                                                      starts[every + 1]), hf_lines._NOT_TRAINING)]
        assert found.tolist() == every.tolist()
        return found

    monkeypatch.setattr(hf_fast, "run_of", checked_run_of)
    monkeypatch.setattr(hf_lines, "matches", checked_matches)
    monkeypatch.setattr(hf_lines, "_echo_lines", checked_echo_lines)
    for path in sorted((DATA / "llamafactory").glob("*/console.log")):
        data = path.read_bytes()
        data = repeated(data, 10) if b"Training completed" in data else data
        for size in (1 << 16, 3000):
            at = 0
            while at < len(data):
                end = data.rfind(b"\n", at, at + size) + 1 or len(data)
                hf_trainer.Parser().prepare_block(data[at:end])
                at = end
    assert seen["runs"] >= 500 and seen["passes"] >= 300


def test_the_last_clock_of_lines_is_read_from_their_frames_alone():
    """hf_bars.last_clock reads a line's frames only up to the `,` after its last `<` (the
    dict after them, all digits, is slow to look through): the same count and clock as reading
    the whole lines, on every stretch of one to three lines of real consoles, and whatever
    pieces (frames, cut frames, dicts, `<` and `,` alone) lines hold."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from logreport.formats.hf_bars import FRAME, last_clock

    def whole_lines(data, starts, ends, first, n):
        frames = [(int(c), e, r, i) for i in range(n)
                  for c, e, r in FRAME.findall(data, int(starts[first + i]), int(ends[first + i]))]
        if not frames:
            return None
        changed = [k for k in range(1, len(frames)) if frames[k][0] != frames[k - 1][0]]
        _, elapsed, remaining, line = frames[changed[-1] if changed else 0]
        return frames[-1][0], (elapsed.decode(), remaining.decode(), line if changed else 0,
                               not changed)

    for name in ("sft_lora", "tf4_dpo_lora", "sft_lora_llamaboard", "pt_full"):
        data = (DATA / "llamafactory" / name / "console.log").read_bytes()
        ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
        starts = np.concatenate(([0], ends[:-1] + 1))
        with_frames = [i for i in range(len(ends)) if FRAME.search(data, starts[i], ends[i])]
        assert len(with_frames) >= 12
        for i in with_frames:
            for n in (1, 2, 3):
                if i + n <= len(ends):
                    assert last_clock(data, starts, ends, i, n) == \
                        whole_lines(data, starts, ends, i, n)

    pieces = [b"\r  5%|\xe2\x96\x8c | 3/60 [00:01<00:20,  2.9it/s]", b"\r 10%|# | 6/60 [1:00:01<?, ?it/s]",
              b"\r  5%| | 3/60 [00:01<00:2", b"\r{'loss': 7.62, 'grad_norm': 0.103, 'epoch': 0.05}",
              b"<", b",", b"12/60 [00:02<00:03,", b" ", b"\x1b[A", b"\n"]

    @settings(max_examples=2000, deadline=None)
    @given(st.lists(st.sampled_from(pieces), max_size=16))
    def check(parts):
        data = b"".join(parts) + b"\n"
        ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
        starts = np.concatenate(([0], ends[:-1] + 1))
        want = whole_lines(data, starts, ends, 0, len(ends))
        assert (want is None and not FRAME.search(data)) or \
            last_clock(data, starts, ends, 0, len(ends)) == want

    check()


def test_ranges_hand_back_what_input_reads_otherwise(tmp_path):
    """NUL bytes and a frame longer than MAX_LINE in a later range (Input drops the one and
    cuts the other): the rest of the file is read as Input reads it, with the same facts. A
    synthetic corruption of a rewritten copy of the real log."""
    from logreport.events import MAX_LINE

    text = repeated(CONSOLE.read_bytes(), 4)
    middle = text.index(b"\n", len(text) // 2) + 1
    for name, odd in (("nul", b"[INFO|x.py:1] 2026-11-25 16:47:03,486 >> a\0b\n"),
                      ("long", b"x" * (MAX_LINE + 10) + b"\n")):
        path = tmp_path / f"{name}.log"
        path.write_bytes(text[:middle] + odd + text[middle:])
        slow = line_by_line(path, "hf_trainer")
        fast = by_ranges(path, 20000, "hf_trainer")
        assert facts(fast) == facts(slow), name
        assert fast.prepared_ranges > 0


def test_a_blocks_training_records_reach_the_run_at_once(tmp_path, monkeypatch):
    """The console repeated (a run of lines between evaluations, then the last dict on its own,
    again and again): the block's training records are added in a few Records, not hundreds
    of adds, with the facts of reading it line by line."""
    from logreport.events import TRAIN

    path = tmp_path / "console.log"
    path.write_bytes(repeated(CONSOLE.read_bytes(), 6))
    slow = facts(line_by_line(path, "hf_trainer"))
    adds = []
    monkeypatch.setattr(Run, "add", lambda self, event, file=0, orig=Run.add: (
        adds.append(event) if getattr(event, "phase", None) == TRAIN else None,
        orig(self, event, file))[1])
    fast = by_blocks(path, 1 << 22, "hf_trainer")
    assert facts(fast) == slow and fast.count("train") == 360
    assert len(adds) <= 3, [type(a).__name__ for a in adds]


@pytest.mark.parametrize("name", [
    "llamafactory/sft_full/console.log",               # floats quoted, num_input_tokens_seen not
    "llamafactory/sft_lora_interrupted/console.log",   # the first dict has no bar before it
    "llamafactory/tf4_sft_full_diverge_nofilter/console.log",      # nothing quoted, nan values
])
def test_the_fast_path_takes_real_consoles_of_every_quoting(name):
    """The shape of a block's training lines comes from its first dict with a bar before it,
    with each value's quoting (transformers 5 quotes floats, not integers): all training lines
    but the first are read column-wise (their facts equal feed's: see the tests above)."""
    from logreport.formats import hf_fast, hf_trainer

    data = (DATA / name).read_bytes()
    prepared = hf_trainer.Parser().prepare_block(data)
    column_wise = sum(count for kind, _, count, *_ in prepared.parts if kind == hf_fast.STD)
    assert column_wise >= data.count(b"{'loss'") - 1


def test_ranges_use_the_cores_the_process_may_run_on():
    """Pinned to one core (taskset, a container's cpuset), a big log is read in one process:
    two workers would only take turns on that core."""
    import os
    import shutil
    import subprocess
    import sys

    if shutil.which("taskset") is None or not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity here")
    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-c",
                          "from logreport.ranges import cores; print(cores())"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1"


def test_training_lines_fed_one_by_one_until_the_total_is_known(tmp_path):
    """Without its "Total optimization steps" line, feed learns the training total from the
    bars after the first dicts, so the fast path hands it the run's first lines one by one: the
    frames of each line it handed count once (before: a second line's bars were counted again,
    2 lines too many in the mutated console that found it)."""
    text = CONSOLE.read_bytes()
    cut = text.index(b"Total optimization steps")
    cut = text.rindex(b"\n", 0, cut) + 1
    data = text[:cut] + text[text.index(b"\n", cut) + 1:]
    run = _read_every_way(tmp_path / "no_total.log", data)
    assert run.count("train") == 60 and run.unparsed == line_by_line(CONSOLE).unparsed


def test_a_dict_cut_short_is_noted_in_line_order(tmp_path):
    """A training dict cut short (a copy cut mid-line) is rejected when the next bar comes; it
    is noted as unparsed then, before the lines after it, however the lines are batched: the
    same samples every way (before: line by line, in batches of 1000, it came after them)."""
    text = repeated(CONSOLE.read_bytes(), 2)
    at = text.index(b"{'loss': ", text.index(b"{'loss': ") + 1)
    data = text[:at + 40] + text[text.index(b"\n", at):]
    run = _read_every_way(tmp_path / "cut_dict.log", data)
    lines = [line for _, line, _ in run.unparsed_samples]
    assert lines == sorted(lines) and data.count(b"\n", 0, at) + 1 in lines



_NEEDLES = (b"{'", b"[rank", b"Traceback", b"Killed", b"example:", b" - llmtuner", b" - llamafactory",
            b" - transformers", b"metric_for_best_model", b"logging_steps=", b"do_eval=",
            b"*** Evaluate ***", b"*** Predict ***", b"Dropping the following result")
_LABEL = re.compile(rb"(?m)^\d{1,5}: ")         # srun's task label, at a line's start


def _unsafe(text: bytes) -> bool:
    return any(n in text for n in _NEEDLES) or bool(_LABEL.search(text))


def test_a_quiet_stretch_holding_text_feed_may_read_otherwise_is_marked_unsafe():
    """hf_quiet.Gaps marks a block's quiet stretches with one RE2 pass over all of its lines
    between training lines: exactly those stretches whose bytes hold one of the texts feed may
    read otherwise (stop 38 scanned each stretch for each text; stop 39 matched each stretch
    once): on every LLaMA-Factory log of tests/data (35 stretches marked), and on stretches of
    bare lines made of pieces of those texts, invalid UTF-8 among them."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from logreport.formats import hf_trainer
    from logreport.formats.hf_quiet import QUIET, Gaps

    marked = 0
    for path in sorted((DATA / "llamafactory").glob("**/*.log")):
        data = path.read_bytes().rstrip(b"\n") + b"\n"
        for kind, _, _, start, end, quiet in hf_trainer.Parser().prepare_block(data).parts:
            if kind == QUIET:
                assert quiet.unsafe == _unsafe(data[start:end]), path.name
                marked += quiet.unsafe
    assert marked >= 30

    pieces = [n[:k] for n in _NEEDLES for k in (1, len(n) - 1, len(n))] + \
        [b" ", b"\xe2\x96", b"\xff", b"a"]

    @settings(max_examples=1000, deadline=None)
    @given(st.lists(st.lists(st.lists(st.sampled_from(pieces), max_size=6), min_size=1,
                             max_size=4), min_size=1, max_size=6))
    def check(stretches):
        data, cuts = b"", []
        for stretch in stretches:               # bare lines (quiet after a logger line)
            data += b"".join(b"a " + b"".join(line) + b"\n" for line in stretch)
            cuts.append(len(stretch) + (cuts[-1] if cuts else 0))
        ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
        starts = np.concatenate(([0], ends[:-1] + 1))
        last = np.zeros(len(ends), dtype=bool)
        last[[cut - 1 for cut in cuts]] = True
        gaps, parts = Gaps(data, starts, ends, None, np.arange(len(ends)), last), []
        for first, end in zip([0, *cuts], cuts):
            gaps.read(parts, first, end)
        quiet = [part for part in parts if part[0] == QUIET]
        assert len(quiet) == len(stretches)
        assert [p[5].unsafe for p in quiet] == \
            [_unsafe(data[p[3]:p[4]]) for p in quiet]

    check()


def test_the_cycle_collector_runs_rarely_while_blocks_are_read(monkeypatch, tmp_path):
    """While a log's blocks are read, Python's cycle collector runs after every 10,000 new
    containers, not 700 (collecting so often was 3-5% of reading a console that evaluates every
    few steps); the threshold is as before once the log is read, and when it could not be."""
    import gc

    from logreport.errors import UnknownFormat
    from logreport.reader import load

    seen = []
    feed_block = pipeline.Ingest.feed_block
    monkeypatch.setattr(pipeline.Ingest, "feed_block", lambda self, *args: (
        seen.append(gc.get_threshold()[0]), feed_block(self, *args))[1])
    before = gc.get_threshold()
    run = load(str(CONSOLE))
    assert run.count() == 60 and seen and set(seen) == {10_000}
    assert gc.get_threshold() == before
    (tmp_path / "notes.txt").write_text("a shopping list\n" * 50)
    with pytest.raises(UnknownFormat):
        load(str(tmp_path / "notes.txt"))
    assert gc.get_threshold() == before


def test_a_blocks_evaluation_records_are_added_to_the_run_at_once(monkeypatch, tmp_path):
    """A block's evaluation records with no time stamp and the same metrics are held with its
    training records and added as one block (`batch.Batch`): on the real console repeated
    (an evaluation every 15 steps) the run adds none of them alone (each one was, before),
    and its rows, tables, markers and facts are the line parser's."""
    from logreport.events import EVAL

    alone = []
    add_record = Run._add_record
    monkeypatch.setattr(Run, "_add_record", lambda self, rec, file=0: (
        alone.append(rec.phase), add_record(self, rec, file))[1])
    path = tmp_path / "console.log"
    path.write_bytes(repeated(CONSOLE.read_bytes(), 20))
    run = by_blocks(path, 1 << 16, "hf_trainer")
    assert run.count(EVAL) >= 80 and EVAL not in alone
    assert facts(run) == facts(line_by_line(path, "hf_trainer"))


# The quiet lines as one Python `re` findall over a stretch found them (until stop 40): the
# specification that hf_quiet.Gaps now meets with RE2 passes over the whole block at once.
_SPEC_FIRST = (rb"(?!\*\*\*\*\*|Training completed\.|Saving model checkpoint to "
               rb"|Continuing training from|Resuming training from|Killed)[!-=?-Z\\\]^-z}~]")
_SPEC_REST = rb"[^\n\r\x1b\x00|>]*"
_SPEC_LOGGER = (rb"\[(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\|[\w.]+\.py:\d+\] "
                rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} >> " + rb" *(?:" + _SPEC_FIRST
                + _SPEC_REST + rb")?")


def _spec_runs(data: bytes, total: bytes | None, start: int, end: int) -> list:
    """(quiet, lines) of each match of the findall over data[start:end]."""
    from logreport.formats.hf_quiet import BLANKS, bar

    bars = b"(?!)"
    if total is not None:
        other = bar(rb"(?!" + total + rb" \[)\d+", rb"\d+") + rb"(?:\x1b\[A)?"
        bars = BLANKS + other + rb"(?:\r(?:" + other + rb"| *(?:\x1b\[A)?))*"
    pattern = re.compile(rb"((?:(?:" + _SPEC_LOGGER + b"| *" + _SPEC_FIRST + _SPEC_REST
                         + rb")\n|\n(?!\n)|" + bars + rb"\n(?![^\r\[\n]|\n[^\r\[\n]))+)|[^\n]*\n()")
    return [(bool(quiet), quiet.count(b"\n") or 1) for quiet, _ in pattern.findall(data, start, end)]


def _gaps_runs(data: bytes, total: bytes | None, cuts: list) -> list:
    """The same, from hf_quiet.Gaps over the lines of data, stretches ending at `cuts`."""
    from logreport.formats.hf_quiet import Gaps

    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
    starts = np.concatenate(([0], ends[:-1] + 1))
    last = np.zeros(len(ends), dtype=bool)
    last[[cut - 1 for cut in cuts]] = True
    gaps = Gaps(data, starts, ends, total, np.arange(len(ends)), last)
    runs = []
    for line, quiet in enumerate(gaps.quiet):
        if quiet and runs and runs[-1][0] and not last[line - 1]:
            runs[-1] = (True, runs[-1][1] + 1)
        else:
            runs.append((quiet, 1))
    return runs


def test_the_quiet_lines_between_training_lines_are_findalls():
    """hf_quiet.Gaps finds which lines between training lines are quiet (a logger line or a
    bare line whose message is no marker or banner, a line of bars of another total than the
    training one unless a line feed would not reset its flags for follows, an empty line unless
    another follows) with two RE2 passes over a block's lines and a few numpy ones, as the
    Python findall over each stretch found them (a fifth of a worker's time on a console that
    evaluates every 15 steps): the same stretches on every LLaMA-Factory log of tests/data
    (prepared parts compared in bench/, `/tmp/same.sh`) and on 2,000 hypothesis blocks of
    lines made of the pieces such lines have, cut into stretches at random."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from logreport.formats.hf_lines import block_shape

    checked = 0
    for path in sorted((DATA / "llamafactory").glob("**/*.log")):
        data = path.read_bytes().rstrip(b"\n") + b"\n"
        total = block_shape(data)[0]
        lines = data.count(b"\n")
        cuts = sorted({lines, *range(7, lines, 13)})
        spec = []
        for a, b in zip([0, *cuts], cuts):
            spec += _spec_runs(data, total, _offset(data, a), _offset(data, b))
        assert _gaps_runs(data, total, cuts) == spec, path.name
        checked += sum(quiet for quiet, _ in spec)
    assert checked >= 1000

    stamp = b"[INFO|trainer.py:2670] 2026-11-25 16:46:37,100 >> "
    bar_60 = "\r 50%|\u2588\u2588\u2588\u2588\u2588     | 30/60 [00:21<00:17,  1.76it/s]".encode()
    bar_4 = "\r 50%|\u2588\u2588\u2588\u2588\u2588     | 2/4 [00:01<00:01,  1.76it/s]".encode()
    pieces = [stamp, b"  Num examples = 50", b"Killed", b"Saving model checkpoint to /x",
              b"***** Running Evaluation *****", b"Training completed.", b"  ", b" ", b"",
              b"{'loss': 1.0}", b"|", b">", b"\x1b[A", b"\r", bar_60, bar_4, b"\r  \r", b"[",
              b"/2", b"/600 [", b"\xe2\x96\x88", b"\xff", "\u4e2d\u6587".encode(), b"  \"a\": 1,"]

    @settings(max_examples=2000, deadline=None)
    @given(st.lists(st.lists(st.sampled_from(pieces), max_size=4), min_size=1, max_size=12),
           st.sampled_from([b"60", b"4", b"600", None]), st.data())
    def check(lines, total, draw):
        data = b"".join(b"".join(line).replace(b"\n", b"") + b"\n" for line in lines)
        n = len(lines)
        cuts = sorted({n, *draw.draw(st.lists(st.integers(1, n), max_size=3))})
        spec = []
        for a, b in zip([0, *cuts], cuts):
            spec += _spec_runs(data, total, _offset(data, a), _offset(data, b))
        assert _gaps_runs(data, total, cuts) == spec

    check()


def _offset(data: bytes, line: int) -> int:
    """Where line `line` (from 0) of data starts."""
    at = 0
    for _ in range(line):
        at = data.index(b"\n", at) + 1
    return at


def test_only_the_lines_gaps_reads_are_classified(monkeypatch):
    """hf_quiet.Gaps runs its RE2 passes over the lines of the stretches it is asked to read
    (quiet ones, and one-frame lines too few to pay), not over the long runs of one-frame lines
    of a console whose redraws are lines of their own (classifying those made preparing such a
    console 45% slower): on the real console so rewritten, every line classified is read."""
    from logreport.formats import hf_fast, hf_trainer
    from logreport.formats.hf_quiet import FRAMES

    classified, read = [], set()

    class Spy(hf_fast.Gaps):
        def __init__(self, data, starts, ends, total, lines, last):
            classified.extend(lines.tolist())
            super().__init__(data, starts, ends, total, lines, last)

        def read(self, parts, first, end):
            read.update(range(first, end))
            super().read(parts, first, end)

    monkeypatch.setattr(hf_fast, "Gaps", Spy)
    data = _one_frame_a_line(repeated(CONSOLE.read_bytes(), 10))
    prepared = hf_trainer.Parser().prepare_block(data)
    assert sum(part[0] == FRAMES for part in prepared.parts) >= 10
    assert classified and set(classified) <= read


def _stretch_records(run, lines: np.ndarray):
    """The Records of a stretch of training lines as the fast path made them until stop 41, one
    per stretch (kept here as the specification of the rows that `RecordRows` give): each
    dict's step the first bar count of the line after it, the last one's `next_count`."""
    from logreport.formats.hf_fast import _records

    counts = np.asarray(run.counts)
    steps = counts[1:] if run.next_count is None else np.concatenate((counts[1:],
                                                                      [run.next_count]))
    return _records(run.keys, run.values, steps, lines[:len(steps)])


def test_the_rows_of_a_stretch_are_the_records_it_gave_alone(tmp_path):
    """Every stretch of training lines of every LLaMA-Factory console and of the real console
    repeated (cut into blocks of 8 KiB and 64 KiB): its rows of the block's columns
    (`RecordRows`) are the Records the stretch gave alone, and the stretches' rows joined are
    those Records one after another."""
    from logreport.batch import Batch
    from logreport.events import RecordRows
    from logreport.formats.hf_quiet import STD
    from logreport.formats.hf_trainer import Parser

    (tmp_path / "console.log").write_bytes(repeated(CONSOLE.read_bytes(), 20))
    parser, stretches = Parser(), 0
    for number, data in (block for path in HF_LOGS + [tmp_path / "console.log"]
                         for size in (1 << 13, 1 << 16) for block in Input(str(path)).blocks(size)):
        rows, alone = [], []
        for kind, first, count, _, _, run in parser.prepare_block(data).parts:
            if kind != STD or count - (run.next_count is None) < 1:
                continue
            lo, hi = run.lines.lo, run.lines.lo + count - (run.next_count is None)
            rows.append(RecordRows(run.records, lo, hi, number))
            alone.append(_stretch_records(run, np.arange(number + first, number + first + count,
                                                         dtype=np.float64)))
            assert _fields(rows[-1].records()) == _fields(alone[-1])
            assert run.records.rise(lo, hi) == bool((alone[-1].step[1:] > alone[-1].step[:-1]).all())
        stretches += len(rows)
        if rows:
            batch, added = Batch(Run("x")), []
            batch.reading.add = lambda event, file=0, added=added: added.append(event)
            for row in rows:
                batch.add(row)
            batch.flush()
            assert _fields(_joined(added)) == _fields(_joined(alone)) and len(added) == 1
    assert stretches >= 250, stretches


def _fields(records) -> list:
    return [records.phase] + [[_same(x) for x in np.asarray(getattr(records, f)).tolist()]
                              for f in ("step", "epoch", "time", "line")] + \
        [(k, [_same(x) for x in v.tolist()]) for k, v in records.metrics.items()] + \
        [records.estimated]


def _joined(parts: list):
    from logreport.events import Records

    return Records(parts[0].phase, *(np.concatenate([getattr(p, f) for p in parts])
                                     for f in ("step", "epoch", "time", "line")),
                   {k: np.concatenate([p.metrics[k] for p in parts]) for k in parts[0].metrics})


def test_a_blocks_training_records_are_made_once_from_its_columns(tmp_path, monkeypatch):
    """The real console repeated (an evaluation every 15 steps: a stretch of training lines
    each): the training Records of a block are made once, from the block's columns, not one a
    stretch and then joined; the run is the line parser's."""
    from logreport.events import TRAIN, Records

    made = []
    init = Records.__init__
    monkeypatch.setattr(Records, "__init__", lambda self, phase, *a, **k: (
        made.append(phase), init(self, phase, *a, **k))[1])
    path = tmp_path / "console.log"
    path.write_bytes(repeated(CONSOLE.read_bytes(), 20))
    run = by_blocks(path, 1 << 22, "hf_trainer")
    assert run.count(TRAIN) == 1200 and made.count(TRAIN) <= 2, made.count(TRAIN)
    monkeypatch.setattr(Records, "__init__", init)
    assert facts(run) == facts(line_by_line(path, "hf_trainer"))


def test_the_steps_of_rows_rise_where_each_one_is_above_the_one_before():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from logreport.events import RecordColumns

    @settings(max_examples=500, deadline=None)
    @given(st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.0, 5.0, np.nan]), min_size=1, max_size=12),
           st.data())
    def check(steps, data):
        columns = RecordColumns(np.array(steps), np.zeros(len(steps)), np.zeros(len(steps)), {})
        lo = data.draw(st.integers(0, len(steps) - 1))
        hi = data.draw(st.integers(lo + 1, len(steps)))
        step = np.array(steps[lo:hi])
        assert columns.rise(lo, hi) == bool((step[1:] > step[:-1]).all())

    check()


def test_a_folders_console_gives_its_training_rows_to_the_merge(tmp_path):
    """A real LLaMA-Factory output folder with its console and results files but no
    trainer_log.jsonl: the console's stretches of training lines reach the folder's merge (a
    reading that holds no records, `merge.Collected`) as records, every one of them: the
    folder's training rows are the console's read alone."""
    from logreport.events import TRAIN
    from logreport.reader import load

    source = DATA / "llamafactory" / "sft_lora"
    for name in ("console.log", "train_results.json", "eval_results.json"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    alone = load(str(tmp_path / "console.log"))
    folder = load(str(tmp_path))
    assert folder.count(TRAIN) == alone.count(TRAIN) == 60
    rows = [[tuple(map(_same, row)) for row in run.rows() if row[1] == TRAIN]
            for run in (folder, alone)]
    assert rows[0] == rows[1] and len(rows[0]) >= 60 * 3
