"""The watch loop on real logs: step by step, then end to end through `python -m logreport`."""
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA
from test_events import CASES, appended

from logreport.analysis import summarize, summary_json
from logreport.reader import load
from logreport.watch import Options, Watch

FIXTURE = DATA / "ppdet" / "picodet_s_320_coco_long80e.log"
GPU_RUN = DATA / "gpu_run" / "hf_trainer_gpt2_h100.log"
ROOT = Path(__file__).resolve().parent.parent


def lines_of(path):
    return path.read_bytes().splitlines(keepends=True)


class Notes:
    """A notifier that remembers what it was told."""

    def __init__(self):
        self.calls = []

    def update(self, summary, report_path):
        self.calls.append((summary["train_records"], report_path))


def make_watch(log, tmp_path, **kw):
    return Watch(str(log), Options(poll=1.0, output=str(tmp_path / "r.html"), **kw))


def test_a_watch_that_reached_the_end_is_the_post_training_summary(tmp_path):
    log = tmp_path / "run.log"
    lines = lines_of(FIXTURE)
    notes = Notes()
    w = make_watch(log, tmp_path, notifiers=[notes])
    assert w.step() == 0                           # the log does not exist yet
    with open(log, "wb") as f:
        f.writelines(lines[:len(lines) // 2])
        f.flush()
        w.step()
        w.step()                                   # a pause: the format is decided now
        w.publish()
        half = w.summary["train_records"]
        assert 0 < half < 80
        f.writelines(lines[len(lines) // 2:])
    w.step()
    w.finish()
    want = summarize(load(str(log)))
    assert w.summary == want
    assert want["train_records"] == 80
    assert os.path.exists(tmp_path / "r.html")
    assert notes.calls[-1] == (80, str(tmp_path / "r.html"))


def test_the_report_a_stopped_watch_leaves_claims_no_live_run(tmp_path):
    """A watch ended (Ctrl-C) on a run with no end: the report it left, the file people open
    later, said `running` (64 %, an ETA) where `summary` of the same file says `unknown`. Once
    the watch ends, the run is judged as summary judges it."""
    log = tmp_path / "run.log"
    log.write_bytes((DATA / "ppdet" / "public_01_yolov3_paddle34297.log").read_bytes())
    w = make_watch(log, tmp_path)
    w.step()
    w.step()
    w.publish()
    assert w.summary["status"] == "running"          # watched: as far as it can tell
    w.finish()
    want = summarize(load(str(log)))
    assert w.summary["status"] == want["status"] == "unknown"
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    data = json.loads(page.split('id="report-data">', 1)[1].split("</script>", 1)[0])
    assert data["runs"][0]["summary"]["status"] == "unknown"


def test_a_new_run_overwriting_the_log_starts_a_new_segment(tmp_path):
    log = tmp_path / "run.log"
    log.write_bytes(FIXTURE.read_bytes())
    w = make_watch(log, tmp_path)
    w.step()
    w.step()
    log.write_bytes(b"".join(lines_of(FIXTURE)[:60]))     # `train.py > run.log` once more
    w.step()
    w.finish()
    assert w.summary["segments"] == 2
    assert [m.detail for m in w.run.markers if m.kind == "new_run"][-1] == "log truncated"


def test_exit_when_done_reports_the_finished_run(tmp_path):
    log = tmp_path / "run.log"
    log.write_bytes(FIXTURE.read_bytes())
    w = make_watch(log, tmp_path, exit_when_done=True, done_grace=0)
    assert w.loop() == 0
    assert w.summary["status"] == "finished"


def _start_watch(log, tmp_path, *extra):
    proc = subprocess.Popen([sys.executable, "-m", "logreport", "watch", str(log), "--serve",
                             "--port", "0", "--no-tui", "-o", str(tmp_path / "r.html"), *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stderr.readline().decode()
    m = re.search(r"live page: (http://\S+)", line)
    assert m, line
    return proc, m.group(1)


def _get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.headers.get("Content-Type"), r.read()


def _records(base):
    try:
        return json.loads(_get(base + "api/summary")[2])["runs"][0]["train_records"]
    except urllib.error.HTTPError as e:
        e.close()
        return -1                                    # 503 until the first data


def test_watch_serve_end_to_end_sees_every_record(tmp_path):
    log = tmp_path / "run.log"
    want = summarize(load(str(FIXTURE)))["train_records"]
    proc, base = _start_watch(log, tmp_path)
    try:
        assert b"Waiting for the first training records" in _get(base)[2]   # no log yet
        with open(log, "wb") as f:
            for i, line in enumerate(lines_of(FIXTURE)):
                f.write(line)
                f.flush()
                if i % 40 == 0:
                    _records(base)                   # read while it is being written
        deadline = time.monotonic() + 30
        while _records(base) < want and time.monotonic() < deadline:
            time.sleep(0.05)
        status, ctype, body = _get(base + "api/summary")
        assert json.loads(body)["runs"][0]["train_records"] == want
        assert ctype == "application/json"
        assert body.decode() == summary_json(json.loads(body)["runs"]) + "\n"
        status, ctype, page = _get(base)
        assert ctype.startswith("text/html") and b"/api/events" in page
        report = json.loads(_get(base + "api/report")[2])
        assert report["runs"][0]["summary"]["train_records"] == want
        with pytest.raises(urllib.error.HTTPError) as e:
            _get(base + "etc/passwd")
        e.value.close()
        assert e.value.code == 404
        request = urllib.request.Request(base + "api/summary", headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(request, timeout=5)
        e.value.close()
        assert e.value.code == 403
    finally:
        proc.send_signal(2)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert b"report: " in err


def test_run_tees_the_command_and_keeps_its_exit_code(runner, tmp_path):
    from logreport.cli import main

    log = tmp_path / "train.log"
    code = f"import sys; sys.stdout.write(open({str(FIXTURE)!r}).read()); sys.exit(3)"
    result = runner.invoke(main, ["run", "-o", str(log), "--report", str(tmp_path / "r.html"),
                                  "--", sys.executable, "-c", code])
    assert result.exit_code == 3, result.output
    assert log.read_bytes() == FIXTURE.read_bytes()
    assert FIXTURE.read_text().splitlines()[0] in result.stdout
    assert os.path.getsize(tmp_path / "r.html") > 0


def test_demo_replays_and_writes_the_report(runner, tmp_path):
    from logreport.cli import main

    result = runner.invoke(main, ["demo", "--speed", "1000", "--no-tui",
                                  "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "step 948/960" in result.stdout
    assert os.path.getsize(tmp_path / "r.html") > 0


def test_watch_refuses_an_unknown_format_name(runner, tmp_path):
    from logreport.cli import main

    result = runner.invoke(main, ["watch", str(tmp_path / "x.log"), "--format", "nope"])
    assert result.exit_code == 2
    assert "unknown format" in result.stderr


@pytest.mark.parametrize("case", ["sft_lora", "dpo_lora"])
def test_watching_an_output_folder_gives_what_report_of_the_folder_gives(tmp_path, case):
    """Console and trainer_log.jsonl grow side by side; the JSON files come at the end."""
    src = DATA / "llamafactory" / case
    out = tmp_path / "out"
    out.mkdir()
    w = make_watch(out, tmp_path)
    console, jsonl = lines_of(src / "console.log"), lines_of(src / "trainer_log.jsonl")
    with open(out / "console.log", "wb") as c, open(out / "trainer_log.jsonl", "wb") as j:
        for i in range(max(len(console), len(jsonl))):
            c.write(b"".join(console[i:i + 1]))
            j.write(b"".join(jsonl[i:i + 1]))
            c.flush()
            j.flush()
            if i % 25 == 0:
                w.step()
    w.step()
    for name in ("trainer_state.json", "train_results.json", "all_results.json",
                 "eval_results.json"):
        if (src / name).exists():
            shutil.copyfile(src / name, out / name)
    w.step()
    w.finish()
    want = summarize(load(str(out)))
    assert want["train_records"] > 0
    assert w.summary == want


def test_gpu_without_nvml_says_so_once_and_carries_on(tmp_path, monkeypatch):
    import io

    from rich.console import Console

    from logreport.live import PlainView

    monkeypatch.setitem(sys.modules, "pynvml", None)       # as if nvidia-ml-py were absent
    out = io.StringIO()
    log = tmp_path / "run.log"
    log.write_bytes(FIXTURE.read_bytes())
    w = Watch(str(log), Options(poll=1.0, output=str(tmp_path / "r.html"), gpu=True,
                                exit_when_done=True, done_grace=0),
              view=PlainView(Console(file=out)))
    assert w.loop() == 0
    assert out.getvalue().count("--gpu: no NVML") == 1
    assert w.summary["train_records"] == 80


def test_gpu_samples_do_not_move_the_logs_clock():
    """Found on the GPU run: NVML samples at wall-clock time had made wall_seconds 200 s."""
    from logreport.events import SYSTEM, Record

    run = load(str(GPU_RUN))
    before = summarize(run)
    run.add(Record(SYSTEM, {"gpu0/util_percent": 26.0}, step=8000, time=time.time()))
    assert summarize(run) == before
    assert run.metric_names(SYSTEM) == ["gpu0/util_percent"]


def test_stall_is_raised_and_ends_exit_when_done_with_1(tmp_path):
    log = tmp_path / "run.log"
    log.write_bytes(b"".join(lines_of(FIXTURE)[:120]))        # an unfinished run
    w = make_watch(log, tmp_path, stall_minutes=1, exit_when_done=True)
    w.step()
    w.step()
    w.publish()
    assert w.done_code() is None
    w.last_line -= 61                                        # a minute without a new line
    w.publish()
    assert [a["kind"] for a in w.summary["anomalies"]] == ["stall"]
    assert w.done_code() == 1
    w.finish()


def test_live_panel_draws_the_figures(tmp_path):
    import io

    from rich.console import Console

    from logreport.live import LiveView

    log = tmp_path / "run.log"
    log.write_bytes(FIXTURE.read_bytes())
    out = io.StringIO()
    view = LiveView(Console(file=out, force_terminal=True, width=120), "run.log", "r.html",
                    "http://127.0.0.1:8765/")
    w = Watch(str(log), Options(poll=1.0, output=str(tmp_path / "r.html")), view=view)
    w.step()
    w.step()
    w.publish()
    view.close()
    w.finish()
    text = out.getvalue()
    for words in ("948/960", "loss 2.8481", "bbox/AP 0.096", "live page: http://127.0.0.1:8765/"):
        assert words in text
    assert "▁" in text and "█" in text                     # the loss sparkline


@pytest.mark.parametrize("cut", [0.5, 1.0])
def test_a_big_backlog_is_read_in_blocks_then_followed(tmp_path, cut):
    """What a log already holds is read through the post-hoc block path, the follower goes on
    after its last complete line, and the result is exactly what `load` gives, rows and line
    numbers included."""
    log = tmp_path / "run.log"
    data = FIXTURE.read_bytes()
    head = data[: int(len(data) * cut)]
    log.write_bytes(head)                              # may end inside a line
    w = make_watch(log, tmp_path)
    w.reader.backlog()
    (follower,) = w.reader.followers.values()
    assert follower.offset == head.rfind(b"\n") + 1  # the partial line is left to the follower
    with open(log, "ab") as f:
        f.write(data[len(head):])
    w.step()
    w.finish()
    want = load(str(log))
    assert list(w.run.rows()) == list(want.rows())
    assert [(m.kind, m.line) for m in w.run.markers] == [(m.kind, m.line) for m in want.markers]
    assert w.summary == summarize(want)


def test_between_whole_run_refreshes_new_records_still_show(tmp_path):
    """On a long run whole-run figures are redone seldom; counts and last values follow every
    new record meanwhile, and the end of watching redoes everything."""
    log = tmp_path / "run.log"
    lines = lines_of(FIXTURE)
    log.write_bytes(b"".join(lines[:120]))
    w = make_watch(log, tmp_path)
    w.step()
    w.step()                                           # a pause: the format is decided
    w.publish()
    first = w.summary
    assert first["train_records"] > 0
    w.next_whole = time.monotonic() + 3600           # as if the whole run took minutes
    with open(log, "ab") as f:
        f.write(b"".join(lines[120:400]))
    w.step()
    w.publish()
    assert w.summary["train_records"] > first["train_records"]
    assert w.summary["last_step"] > first["last_step"]
    assert w.summary["eval_records"] > first["eval_records"]
    assert w.summary["timing"] is first["timing"]     # not redone yet
    with open(log, "ab") as f:
        f.write(b"".join(lines[400:]))
    w.finish()
    assert w.summary == summarize(load(str(log)), live=True) | {
        "status_evidence": w.summary["status_evidence"]}


@pytest.mark.parametrize("log", [FIXTURE, DATA / "llamafactory" / "sft_lora" / "console.log"])
def test_a_big_append_is_read_in_blocks_as_the_backlog_is(tmp_path, monkeypatch, log):
    """Lines appended faster than a poll reads them go through the block path (the catch-up
    threshold lowered here to any append), with exactly the rows of `load`."""
    from logreport import pipeline, reader

    monkeypatch.setattr(reader, "CATCH_UP", 0)
    blocks = []
    feed_block = pipeline.Ingest.feed_block
    monkeypatch.setattr(pipeline.Ingest, "feed_block",
                        lambda self, *a, **k: (blocks.append(a[0]), feed_block(self, *a, **k)))
    path = tmp_path / log.name
    data = log.read_bytes()
    cut = data.rfind(b"\n", 0, len(data) // 3) + 1
    path.write_bytes(data[:cut])
    w = make_watch(path, tmp_path)
    w.reader.backlog()
    backlog_blocks = len(blocks)
    with open(path, "ab") as f:
        f.write(data[cut:])
    w.step()
    assert len(blocks) > backlog_blocks                   # the append came in blocks
    w.finish()
    want = load(str(path))
    assert list(w.run.rows()) == list(want.rows())
    assert [(m.kind, m.line) for m in w.run.markers] == [(m.kind, m.line) for m in want.markers]


def test_the_panel_stops_saying_it_waits_once_the_log_came(tmp_path):
    """The live panel said `waiting for run.log to appear` in every frame after the log came
    and finished (seen by a newcomer appending a real console to a new file)."""
    import io

    from rich.console import Console

    from logreport.live import LiveView

    log = tmp_path / "run.log"
    out = io.StringIO()
    view = LiveView(Console(file=out, force_terminal=True, width=120), "run.log", "r.html")
    w = Watch(str(log), Options(poll=1.0, output=str(tmp_path / "r.html")), view=view)
    w.start()
    assert view.messages == [f"logreport: waiting for {log} to appear"]
    log.write_bytes(FIXTURE.read_bytes())
    w.step()
    w.step()
    w.publish()
    assert view.messages == []
    view.close()
    w.finish()


def test_exit_when_done_waits_for_the_evaluation_a_trainer_runs_after_training(tmp_path):
    """LLaMA-Factory's console ends: the final metrics, the model saved, then one more
    evaluation (transformers' do_eval), minutes later on a real evaluation set. --exit-when-done
    left after 5 s of quiet with 4 of the 5 evaluations; it now waits for it (up to
    final_eval_wait), and leaves after that wait where none comes."""
    lines = lines_of(DATA / "llamafactory" / "sft_lora" / "console.log")
    cut = next(i for i, line in enumerate(lines) if b"***** train metrics *****" in line) + 7
    assert lines[cut - 1].startswith(b"  train_steps_per_second")
    log = tmp_path / "run.log"
    _waits_for_the_rest(log, lines, cut, 4, 5, tmp_path, settle=3)
    # none comes: it leaves once final_eval_wait has passed
    log.write_bytes(b"".join(lines[:cut]))
    w = make_watch(log, tmp_path, exit_when_done=True, done_grace=0.2, final_eval_wait=2)
    started = time.monotonic()
    assert w.loop() == 0 and w.summary["eval_records"] == 4
    assert 2 <= time.monotonic() - started < 15


def test_exit_when_done_waits_for_an_evaluation_begun_after_the_final_metrics(tmp_path):
    """An example script prints the training's final metrics, then `***** Running Evaluation
    *****` and evaluates (94 s on a real run): no evaluation came during training, so
    --exit-when-done left 5 s after the final metrics, 0 evaluations. An evaluation begun (its
    banner, its dict not yet) is waited for."""
    lines = lines_of(DATA / "llamafactory" / "97_nonLF_esm2_fsdp_eval_dict_then_block_adding_"
                                              "perplexity.log")
    cut = next(i for i, line in enumerate(lines) if b"Running Evaluation" in line) + 1
    # (a few quiet ticks first: the format is decided on the lines so far)
    _waits_for_the_rest(tmp_path / "run.log", lines, cut, 0, 1, tmp_path, settle=8)


def _waits_for_the_rest(log, lines, cut: int, before: int, after: int, tmp_path, settle: float):
    """A watch --exit-when-done on the first `cut` lines, a finished run with `before`
    evaluations, is still there after `settle` s; given the rest, it leaves (0) with `after`,
    as summary reads the whole log."""
    import threading

    log.write_bytes(b"".join(lines[:cut]))
    w = make_watch(log, tmp_path, exit_when_done=True, done_grace=0.2, final_eval_wait=60)
    codes = []
    loop = threading.Thread(target=lambda: codes.append(w.loop()))
    loop.start()
    time.sleep(settle)
    assert loop.is_alive() and w.summary["status"] == "finished"
    assert w.summary["eval_records"] == before
    with open(log, "ab") as f:
        f.writelines(lines[cut:])
    loop.join(30)
    assert not loop.is_alive() and codes == [0]
    assert w.summary["eval_records"] == after == summarize(load(str(log)))["eval_records"]


def _paused_then_given_the_rest(log, head: bytes, rest: bytes, tmp_path) -> Watch:
    """A watch of a log written up to `head`, paused there (ticks: it settles), then given
    the rest, and finished."""
    log.write_bytes(head)
    w = make_watch(log, tmp_path)
    for _ in range(8):                             # ticks of a paused log: it settles
        w.step()
    with open(log, "ab") as f:
        f.write(rest)
    w.step()
    w.finish()
    return w


@pytest.mark.parametrize("name, evals, status", [
    ("97_nonLF_esm2_fsdp_eval_dict_then_block_adding_perplexity.log", 1, "finished"),
    ("98_nonLF_trl_skypilot_readme_bar_then_dict_each_step_20b.log", 0, "finished"),
    ("94_nonLF_run_mlm_readme_typographic_quotes_eval_nan.log", 1, "finished")])
def test_what_a_log_ends_in_shows_once_it_pauses(tmp_path, name, evals, status):
    """A console whose last lines are an evaluation's metrics block, or the training's summary
    dict with no bar after it: a watch showed neither until it stopped (eval_records 0, no
    best; `running`, and `--exit-when-done` waited until the stall alarm failed a finished
    run). Once the log stays as it is a few ticks, the parser gives what it held back."""
    log = tmp_path / "run.log"
    shutil.copy(DATA / "llamafactory" / name, log)
    w = make_watch(log, tmp_path)
    for _ in range(8):                             # ticks of a log that no longer grows
        w.step()
    w.publish()
    want = summarize(load(str(log)))
    assert (w.summary["eval_records"], w.summary["best"]) == (evals, want["best"])
    assert want["eval_records"] == evals and w.summary["status"] == status
    assert w.summary["final"] == want["final"] and w.summary["anomalies"] == want["anomalies"]
    w.finish()
    assert w.summary["eval_records"] == evals      # (nothing was left to give at the end)


def _rows(run, phase="eval"):
    """(step, epoch, {metric: value}) of every record of a phase of a run, as text."""
    rows = []
    for _, table in run.tables(phase):
        values = [{} for _ in range(len(table))]
        for name, series in table.series.items():
            for i, value in zip(series.rec.tolist(), np.asarray(series.value).tolist()):
                values[i][name] = value
        rows += [(table.step[i], table.epoch[i], values[i]) for i in range(len(table))]
    return repr(rows)


@pytest.mark.parametrize("name", [
    "97_nonLF_esm2_fsdp_eval_dict_then_block_adding_perplexity.log",
    "102_nonLF_esm2_slurm_ddp_one_evaluation_printed_by_two_ranks.log",
    "100_nonLF_ezpz_aurora_indented_paste_metrics_blocks_streamed_epochs.log"])
@pytest.mark.parametrize("into", [-3, 0, 1, 3])
def test_a_pause_before_or_inside_a_metrics_block_changes_no_evaluation(tmp_path, name, into):
    """The log pauses right before an evaluation's `***** eval metrics *****` block (`into` 0:
    the dict before it was given at the pause; -3: in 102, before rank 0's copy of rank 1's
    dict, which became a second evaluation) or `into` lines inside it (its first rows were):
    a watch kept two evaluations where summary has one (the block's added keys alone), or
    ended the block at the pause, its other rows unparsed (perplexity lost). The rest of the
    block now completes the record the pause gave."""
    source = DATA / "llamafactory" / name
    log = tmp_path / "run.log"
    lines = lines_of(source)
    cut = next(i for i, line in enumerate(lines) if b"***** eval metrics *****" in line) + into
    w = _paused_then_given_the_rest(log, b"".join(lines[:cut]), b"".join(lines[cut:]), tmp_path)
    whole = load(str(log))
    assert _rows(w.run) == _rows(whole)
    want = summarize(whole)
    for key in ("eval_records", "unparsed_lines", "best", "repeated_records"):
        assert w.summary[key] == want[key], key


def test_a_pause_in_a_job_setup_that_names_paddleseg_paths_locks_no_other_format(tmp_path):
    """A PaddleSeg job's 520 lines of setup (its environment, then `unzip` of the code:
    `inflating: paddleseg/utils/...`) paused before training: every path naming "paddle"
    counted as PaddleDetection's, and the watch locked `ppdet` at the pause (0 records to the
    end; summary: paddleseg, 2400 records). Another Paddle tool's name is no sign of it."""
    source = DATA / "paddleseg" / "14_full_run_after_520_lines_of_job_setup_trainer0.log.gz"
    lines = gzip.decompress(source.read_bytes()).splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if b"progbar.py" in line)   # the unzip listing
    log = tmp_path / "run.log"
    w = _paused_then_given_the_rest(log, b"".join(lines[:cut]), b"".join(lines[cut:]), tmp_path)
    want = summarize(load(str(log)))
    assert (w.summary["format"], w.summary["train_records"]) == ("paddleseg", 2400)
    assert (want["format"], want["train_records"]) == ("paddleseg", 2400)


def test_a_pause_before_the_first_window_is_full_leaves_the_window_to_decide(tmp_path):
    """A PaddleNLP Trainer log paused at its first evaluation, 59 lines in and no record yet
    (they lie in a hole of NULs): read as PaddleNLP (the format they lead to) they gave
    nothing, so the watch waited, but it then decided on every line it had once the rest came,
    where the Trainer's dicts and bars score as hf_trainer: 0 training records to the end
    (summary, which decides on the first window of lines: paddlenlp, 60). A pause's few lines
    are no full window: the first window still decides."""
    data = (DATA / "paddlenlp" / "15_trainer_2022_fewclue_tnews_a_hole_of_nuls_mid_file.log").read_bytes()
    log = tmp_path / "run.log"                     # (cut mid-line, in the evaluation's banner)
    w = _paused_then_given_the_rest(log, data[:43273], data[43273:], tmp_path)
    want = summarize(load(str(log)))
    assert (w.summary["format"], w.summary["train_records"]) == ("paddlenlp", 60)
    assert (want["format"], want["train_records"]) == ("paddlenlp", 60)


def test_a_watch_holds_as_many_lines_of_no_known_format_as_a_read(tmp_path):
    """A PaddleOCR workerlog.0 whose training begins at line 34332, after launches that failed
    and 16,925 of the data loader's errors: a read holds 100,000 lines of no known format
    before it gives up, a watch let all but the newest 20,000 go. Decided near line 34,400,
    the watch had dropped the first 14,480 lines: the first launch's traceback (line 116),
    7,144 unparsed lines, 329 s of wall time. It now holds what a read holds."""
    source = DATA / "paddleocr" / ("26_v2.0_rec_launches_16925_dataloader_errors_then_training_"
                                   "from_line_34332_workerlog0.log.gz")
    log = tmp_path / "workerlog.0"
    log.write_bytes(gzip.decompress(source.read_bytes()))
    w = make_watch(log, tmp_path)
    w.start()
    w.step()
    w.finish()
    want = summarize(load(str(log)))
    for key in ("train_records", "anomalies", "unparsed_lines", "wall_seconds", "segments"):
        assert w.summary[key] == want[key], key
    assert (want["anomalies"][0]["line"], want["unparsed_lines"]) == (116, 17050)


def test_a_crash_at_start_up_is_told_at_a_pause_in_the_format_of_the_rest(tmp_path):
    """A PaddleNLP job whose first launch failed at start-up (a traceback at line 9; the next
    launch came 28 minutes later), paused there: its few lines scored as PaddleDetection's and
    the traceback backed that: the watch locked `ppdet` (to the end: 0 records, `failed`;
    summary: paddlenlp, 11 training and 29 evaluation records). Paddle's own lines no longer
    name PaddleDetection: at the pause the crash is told as PaddleNLP's, and the relaunch's
    records come in."""
    source = DATA / "paddlenlp" / ("12_trainer_2023_11_progress_bar_on_records_without_prefix_"
                                   "workerlog0.log.gz")
    lines = gzip.decompress(source.read_bytes()).splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if b"receive shutdown event" in line) + 1
    log = tmp_path / "workerlog.0"
    log.write_bytes(b"".join(lines[:cut]))
    w = make_watch(log, tmp_path)
    for _ in range(8):                             # ticks of a paused log: it settles
        w.step()
    w.publish()
    assert (w.summary["format"], w.summary["status"]) == ("paddlenlp", "failed")
    with open(log, "ab") as f:
        f.write(b"".join(lines[cut:]))
    w.step()
    w.finish()
    want = summarize(load(str(log)))
    got = [w.summary[k] for k in ("format", "train_records", "eval_records", "status")]
    assert got == [want[k] for k in ("format", "train_records", "eval_records", "status")]
    assert got[:3] == ["paddlenlp", 11, 29]


def test_a_stopped_watch_judges_the_log_by_its_last_modification(tmp_path):
    """A watch noted a log's modification time only where it read a backlog: one started
    before its log existed, stopped, said `the source has no modification time`; one started
    on a log judged it by the time it had at the start. The followed file's last modification
    is noted at the end, as a read notes it."""
    lines = lines_of(DATA / "ppdet" / "public_01_yolov3_paddle34297.log")
    for backlog in (0, len(lines) // 2):
        log = tmp_path / f"run{backlog}.log"
        if backlog:
            log.write_bytes(b"".join(lines[:backlog]))
        w = make_watch(log, tmp_path)
        w.start()
        w.step()
        time.sleep(0.05)
        with open(log, "ab") as f:
            f.writelines(lines[backlog:])
        w.step()
        w.finish()
        assert w.run.modified == load(str(log)).modified == pytest.approx(os.stat(log).st_mtime)
        assert "no modification time" not in w.summary["status_evidence"]
        assert w.summary["status"] == summarize(load(str(log)))["status"] == "unknown"


@pytest.mark.parametrize("fmt, source, record_ends", CASES, ids=["tfevents", "visualdl"])
def test_a_pause_between_two_scalars_of_one_step_keeps_one_record(tmp_path, fmt, source,
                                                                   record_ends):
    """An event file gets a step's scalars one record at a time (VisualDL appends each as it
    is logged). A watch that found no new record at a poll gave the step's scalars so far as
    a record, the rest as more at the same step: read a record at a time, the VisualDL run
    had 96 training records (summary: 24), the Trainer's 63 (20; 16 evaluations for 4, its
    final metrics split in two). The rest of a VisualDL step now completes the record given
    at the pause; a Trainer's group is given at a pause once its epoch (its last tag) came:
    a part may not tell the phase (`train_runtime` read as a training record)."""
    data = source.read_bytes()
    log = tmp_path / source.name
    log.write_bytes(b"")
    w = make_watch(log, tmp_path)
    w.start()
    for _ in appended(log, data, record_ends(data)):   # a record at a time, a pause after each
        w.step()
        w.step()
    w.finish()
    want = load(str(log))
    assert [_rows(w.run, phase) for phase in ("train", "eval", "final")] == \
        [_rows(want, phase) for phase in ("train", "eval", "final")]
    assert w.summary["train_records"] == want.count("train") in (20, 24)


@pytest.mark.parametrize("path", ["paddleocr/06_rec_svtr_save_model_fractional_samples_ocr6632.log",
                                  "paddleseg/05_v2.0_train_tab_ips_pr928.log",
                                  "paddleclas/11_engine_v2.5_piecewise_two_class_clas3203.log"])
def test_a_paused_watch_of_a_paddle_tools_log_goes_on(tmp_path, path):
    """A pause asks the parser for the records it holds back (a Trainer dict waiting for its
    bar): the Paddle parsers' `held` (a line's events kept back) is a list, and calling it
    stopped every paused watch of a PaddleOCR, PaddleSeg or PaddleClas log with a TypeError.
    Paused halfway, then given the rest: what `summary` of the whole log gives."""
    data = (DATA / path).read_bytes()
    half = data.index(b"\n", len(data) // 2) + 1
    log = tmp_path / "run.log"
    w = _paused_then_given_the_rest(log, data[:half], data[half:], tmp_path)
    w.publish()
    want = summarize(load(str(log)))
    assert (w.summary["train_records"], w.summary["last_step"], w.summary["status"]) == \
        (want["train_records"], want["last_step"], want["status"])
