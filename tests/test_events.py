"""TensorBoard and VisualDL event files of real runs: read as runs whose names, steps and values
are what the same run's trainer_state.json and console say; followed live; without the extra,
one line naming it."""
import json
import math
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA

from logreport.analysis import summarize
from logreport.cli import main
from logreport.eventsource import EventInput
from logreport.formats import tfevents, visualdl
from logreport.model import plain
from logreport.reader import load
from logreport.report import build as build_report
from logreport.runs import discover
from logreport.watch import Options, Watch

EVENTS = DATA / "events"
HF = EVENTS / "hf_tensorboard"
HF_RUN = HF / "out" / "runs" / "Dec05_16-46-05_vm"
NAN_RUN = EVENTS / "hf_tensorboard_nan" / "out" / "runs" / "Dec05_16-46-24_vm"
TF4_RUN = EVENTS / "hf_tensorboard_tf4" / "out" / "runs"
VDL = EVENTS / "ppdet_vdl"
VDL_FILE = VDL / "vdl_log_dir" / "scalar" / "vdlrecords.1796489029.log"


def series(run, phase, metric):
    """[(step, value)] of one metric (NaN as the string "nan", to compare)."""
    got = run.arrays(phase, metric)
    return [(plain(s), "nan" if v != v else v) for s, v in zip(got["step"], got["value"])]


def history(state_path, key):
    """[(step, value)] of one key of trainer_state.json's log_history."""
    entries = json.loads(Path(state_path).read_text())["log_history"]
    return [(h["step"], "nan" if h[key] != h[key] else h[key]) for h in entries if key in h]


def close(got, want):
    return len(got) == len(want) and all(
        a[0] == b[0] and (a[1] == b[1] or math.isclose(a[1], b[1], rel_tol=1e-6))
        for a, b in zip(got, want))


@pytest.mark.parametrize("run_dir", [HF_RUN, NAN_RUN, TF4_RUN], ids=["5.x", "nan", "4.x"])
def test_tfevents_give_trainer_states_names_steps_and_values(run_dir):
    state = run_dir.parents[1 if run_dir.name != "runs" else 0] / "trainer_state.json"
    run, from_state = load(str(run_dir)), load(str(state))
    assert run.format == "tfevents"
    for phase in ("train", "eval", "final"):
        assert sorted(run.metric_names(phase)) == sorted(from_state.metric_names(phase))
    for metric in ("loss", "learning_rate", "grad_norm"):
        assert close(series(run, "train", metric), history(state, metric)), metric
    assert close(series(run, "eval", "eval_loss"), history(state, "eval_loss"))
    assert close(series(run, "final", "train_loss"), history(state, "train_loss"))
    entries = json.loads(state.read_text())["log_history"]
    assert run.arrays("train", "loss")["epoch"].tolist() == [h["epoch"] for h in entries if "loss" in h]
    assert run.info["total_steps"] == 100 and run.info["transformers_version"]


def test_tfevents_times_are_the_records_wall_times():
    run = load(str(HF_RUN))
    times = run.arrays("train", "loss")["time"]
    assert (times[1:] > times[:-1]).all()
    assert 3 < times[-1] - times[0] < 9                 # the run's ~4 s of training


def test_check_flags_the_nan_event_file(runner):
    result = runner.invoke(main, ["check", str(NAN_RUN), "--json"])
    assert result.exit_code == 1
    (report,) = json.loads(result.stdout)["runs"]
    nan = [a for a in report["anomalies"] if a["kind"] == "nan"]
    assert nan and nan[0]["metric"] == "grad_norm" and nan[0]["step"] == 5


def test_visualdl_of_ppdet_is_what_its_console_says(runner, tmp_path):
    out = tmp_path / "x.jsonl"
    result = runner.invoke(main, ["export", str(VDL / "vdl_log_dir"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    console = load(str(VDL / "console.log"))
    loss = [(r["step"], r["value"]) for r in rows if r["metric"] == "loss"]
    assert len(loss) == 24 and loss[0] == (0, 3.845914) and loss[-1] == (23, 3.393509)
    for name in ("loss", "loss_vfl", "loss_bbox", "loss_dfl"):
        assert [(r["step"], r["value"]) for r in rows if r["metric"] == name] == \
            series(console, "train", name)
    ap = [(r["step"], r["value"]) for r in rows if r["metric"] == "bbox/AP"]
    printed = series(console, "eval", "bbox/AP")            # 0.000, 0.000, 0.002, 0.001
    assert [s for s, _ in ap] == [s for s, _ in printed] == [5, 11, 17, 23]
    assert [round(v, 3) for _, v in ap] == [v for _, v in printed]
    assert max(v for _, v in ap) == pytest.approx(0.00187, rel=1e-3)
    assert {r["phase"] for r in rows if r["metric"] == "bbox/AP"} == {"eval"}


def test_a_flat_vdl_file_and_the_file_alone_read_the_same(tmp_path):
    flat = tmp_path / "vdl"
    flat.mkdir()
    shutil.copy(VDL_FILE, flat)
    rows = list(load(str(VDL / "vdl_log_dir")).rows())
    assert list(load(str(flat)).rows()) == rows
    assert list(load(str(flat / VDL_FILE.name)).rows()) == rows


def test_an_hf_output_folder_with_runs_is_one_run(runner):
    result = runner.invoke(main, ["summary", "--json", str(HF / "out")])
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)["runs"]
    assert summary["train_records"] == 20 and summary["eval_records"] == 4
    run = load(str(HF / "out"))
    assert run.info["files_used"]["trainer_state.json"].endswith("1 final records")
    assert run.info["files_used"][HF_RUN.name] == "transformers_version"   # nothing else new


def test_where_the_sources_disagree_files_used_says_which_gave_what(tmp_path):
    """The state saved at step 50 beside the whole event file: steps after 50 come from it."""
    out = tmp_path / "out"
    shutil.copytree(HF / "out" / "runs", out / "runs")
    shutil.copy(HF / "out" / "checkpoint-50" / "trainer_state.json", out)
    run = load(str(out))
    used = run.info["files_used"]
    assert "10 train records, 2 eval records" in used["trainer_state.json"]
    for gave in ("10 train records", "2 eval records", "1 final records"):
        assert gave in used[HF_RUN.name]
    assert [s for s, _ in series(run, "train", "loss")] == list(range(5, 105, 5))
    facts = build_report([run])["runs"][0]["facts"]                  # the report says it too
    assert facts[f"files_used: {HF_RUN.name}"] == used[HF_RUN.name]


def test_a_logdir_of_several_runs_gives_one_run_each(runner, tmp_path):
    logdir = tmp_path / "logs"
    for run_dir in (HF_RUN, NAN_RUN):
        shutil.copytree(run_dir, logdir / run_dir.name)
    shutil.copytree(VDL / "vdl_log_dir", logdir / "ppdet")
    sources, _ = discover([str(logdir)])
    assert [s.name for s in sources] == [str(logdir / HF_RUN.name), str(logdir / NAN_RUN.name),
                                         str(logdir / "ppdet" / "scalar")]
    result = runner.invoke(main, ["summary", "--json", str(logdir)])
    assert result.exit_code == 0, result.output
    assert [r["format"] for r in json.loads(result.stdout)["runs"]] == \
        ["tfevents", "tfevents", "visualdl"]
    watched = runner.invoke(main, ["watch", str(logdir), "--no-tui"])
    assert watched.exit_code == 2 and "3 logs of separate runs here" in watched.stderr


def test_an_event_run_compares_with_its_console_log(runner, tmp_path):
    out = tmp_path / "cmp.html"
    result = runner.invoke(main, ["report", str(HF / "console.log"), str(HF_RUN), "-o", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    payload = json.loads(html.split('<script type="application/json" id="report-data">')[1]
                         .split("</script>")[0])
    console, events = payload["runs"]
    assert console["summary"]["format"] == "hf_trainer" and events["summary"]["format"] == "tfevents"
    for key in ("last_step", "train_records", "eval_records"):
        assert console["summary"][key] == events["summary"][key]
    assert console["summary"]["best"]["metric"] == events["summary"]["best"]["metric"] == "eval_loss"


def test_formats_lists_the_event_files(runner):
    result = runner.invoke(main, ["formats"])
    assert "tfevents: TensorBoard event files" in result.stdout
    assert "visualdl: VisualDL records" in result.stdout


# --- without the extra ---------------------------------------------------------------------------

@pytest.mark.parametrize("module,path", [("tensorboard", HF_RUN), ("visualdl", VDL / "vdl_log_dir")])
def test_without_the_extra_one_line_names_it(tmp_path, module, path):
    code = f"import sys; sys.modules[{module!r}] = None; from logreport.cli import main; main()"
    p = subprocess.run([sys.executable, "-c", code, "export", str(path), "-o", str(tmp_path / "x.csv")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert f"needs the optional extra '{module}'" in p.stderr
    assert f"pip install 'logreport[{module}]'" in p.stderr


def test_without_the_extra_a_folder_still_reads_its_text_logs(tmp_path):
    code = ("import sys; sys.modules['tensorboard'] = None; from logreport.reader import load; "
            f"r = load({str(HF / 'out')!r}); print(r.count('train')); print(r.info['unread_event_files'])")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    count, note = p.stdout.splitlines()
    assert count == "20" and "needs the optional extra 'tensorboard'" in note


# --- reading while the file is written -----------------------------------------------------------

def tf_record_ends(data: bytes) -> list[int]:
    """Where each TFRecord ends: uint64 length, crc, payload, crc."""
    ends, at = [], 0
    while at < len(data):
        at += 8 + 4 + struct.unpack_from("<Q", data, at)[0] + 4
        ends.append(at)
    return ends


def vdl_record_ends(data: bytes) -> list[int]:
    """Where each VisualDL record ends: uint64 length, payload."""
    ends, at = [], 0
    while at < len(data):
        at += 8 + struct.unpack_from("<Q", data, at)[0]
        ends.append(at)
    return ends


def appended(dest, data: bytes, cuts):
    """Append `data` to the file `dest` up to each cut in turn, yielding after each."""
    written = 0
    for cut in cuts:
        with open(dest, "ab") as f:
            f.write(data[written:cut])
        written = cut
        yield cut


CASES = [(tfevents, next(HF_RUN.iterdir()), tf_record_ends),
         (visualdl, VDL_FILE, vdl_record_ends)]


def group_ends(fmt, source, ends) -> list[int]:
    """Offsets where a writer's flush may end the file: after the last record of a group (a
    Trainer.log call, one ppdet iteration), as the whole file's records tell."""
    whole = fmt.Reader(str(source))
    firsts = [e.line for e in whole.poll() + whole.poll() if not hasattr(e, "facts")]
    return [ends[line - 2] for line in firsts[1:]]


@pytest.mark.parametrize("fmt,source,record_ends", CASES, ids=["tfevents", "visualdl"])
def test_poll_reads_complete_records_and_waits_for_a_partial_one(tmp_path, fmt, source, record_ends):
    data = source.read_bytes()
    ends = record_ends(data)
    whole = fmt.Reader(str(source))
    want = [e for e in whole.poll() + whole.poll() + whole.finish() if not hasattr(e, "facts")]
    flushes = group_ends(fmt, source, ends)
    dest = tmp_path / source.name
    dest.write_bytes(b"")
    reader = fmt.Reader(str(dest))
    got = []
    cuts = [flushes[2], flushes[9] + 5, flushes[9] + 11, flushes[-3], len(data)]   # 2 mid-record
    written = 0
    for cut in cuts:
        with open(dest, "ab") as f:
            f.write(data[written:cut])
        written = cut
        got += reader.poll()
        assert reader.records == sum(end <= cut for end in ends)
        got += reader.poll()                     # nothing new: the group still open comes
    got += reader.finish()
    assert [e for e in got if not hasattr(e, "facts")] == want
    assert "unread_tail" not in {k for e in got if hasattr(e, "facts") for k in e.facts}


def test_a_cut_short_file_reports_its_unread_tail(tmp_path):
    data = VDL_FILE.read_bytes()
    dest = tmp_path / VDL_FILE.name
    dest.write_bytes(data[:vdl_record_ends(data)[50] + 3])
    run = load(str(dest))
    assert run.info["unread_tail"] == f"{VDL_FILE.name}: 3 bytes after record 51 are no complete record"


@pytest.mark.parametrize("fmt,source,record_ends", CASES, ids=["tfevents", "visualdl"])
def test_watch_shows_records_as_they_are_appended(tmp_path, fmt, source, record_ends):
    data = source.read_bytes()
    ends = record_ends(data)
    flushes = group_ends(fmt, source, ends)
    run_dir = tmp_path / "run"
    dest = run_dir / source.name
    run_dir.mkdir()
    w = Watch(str(run_dir), Options(poll=1.0, output=str(tmp_path / "r.html")))
    assert w.step() == 0                               # no event file yet
    seen = []
    for _ in appended(dest, data, (flushes[len(flushes) // 2] + 6, len(data))):  # (the first
        w.step()                                                             # a partial record)
        w.step()
        w.publish()
        seen.append(w.summary["train_records"])
    w.finish()
    full = load(str(source))
    assert 0 < seen[0] < seen[1] == full.count("train")
    assert sorted(w.run.rows()) == sorted(full.rows())
    assert (tmp_path / "r.html").exists()


def test_watching_an_hf_output_folder_gives_what_report_of_it_gives(tmp_path):
    """The event file grows first; trainer_state.json comes at the end, as the Trainer saves it."""
    out = tmp_path / "out"
    source = next(HF_RUN.iterdir())
    (out / "runs" / HF_RUN.name).mkdir(parents=True)
    w = Watch(str(out), Options(poll=1.0, output=str(tmp_path / "r.html")))
    data = source.read_bytes()
    ends = tf_record_ends(data)
    with open(out / "runs" / HF_RUN.name / source.name, "wb") as f:
        for cut in (ends[len(ends) // 3], ends[2 * len(ends) // 3], len(data)):
            f.write(data[f.tell():cut])
            f.flush()
            w.step()
    shutil.copy(HF / "out" / "trainer_state.json", out)
    w.step()
    w.finish()
    want = summarize(load(str(out)))
    assert want["train_records"] == 20
    assert w.summary == want


def test_watch_of_a_single_event_file(tmp_path):
    dest = tmp_path / VDL_FILE.name
    dest.write_bytes(VDL_FILE.read_bytes())
    w = Watch(str(dest), Options(poll=1.0, output=str(tmp_path / "r.html")))
    w.step()
    w.step()
    w.finish()
    assert w.summary["train_records"] == 24 and w.summary["best"]["metric"] == "bbox/AP"


# --- what is not a scalar -------------------------------------------------------------------------

def test_histograms_and_texts_are_counted_not_errors(tmp_path):
    """Synthetic: a file written here with tensorboard's own writer (histogram, text, scalars)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(tmp_path))
    histogram = summary_pb2.HistogramProto(min=0, max=1, num=2, sum=1, sum_squares=1,
                                           bucket_limit=[1], bucket=[2])
    for step, value in enumerate([summary_pb2.Summary.Value(tag="w", histo=histogram),
                                  summary_pb2.Summary.Value(tag="note", simple_value=1.5)]):
        writer.add_event(event_pb2.Event(step=step, wall_time=1.0,
                                         summary=summary_pb2.Summary(value=[value])))
    writer.close()
    run = load(str(tmp_path))
    assert run.info["skipped_records"] == "histograms ×1"
    assert series(run, "train", "note") == [(1, 1.5)]


def test_hf_groups_split_where_trainer_log_calls_did():
    """Synthetic tag order of one Trainer.log call with include_num_input_tokens_seen, then the
    final summary at the same step (HF writes `epoch` after the metrics, the tokens after it)."""
    grouper, groups = tfevents.grouper(), []
    for number, tag in enumerate(("train/loss", "train/epoch", "train/num_input_tokens_seen",
                                  "train/train_runtime", "train/train_tokens_per_second",
                                  "train/train_runtime", "train/train_samples_per_second",
                                  "train/train_loss", "train/epoch"), 1):
        groups += grouper.add(100, tag, 1.0, 0.0, number)
    out = [tfevents.record(g) for g in groups + grouper.flush()]
    assert [(r.phase, sorted(r.metrics)) for r in out] == [
        ("train", ["loss", "num_input_tokens_seen", "train_runtime", "train_tokens_per_second"]),
        ("final", ["train_loss", "train_runtime", "train_samples_per_second"])]


def test_an_event_input_lists_its_files_oldest_first(tmp_path):
    for name in ("events.out.tfevents.1796489300.vm.2.0", "events.out.tfevents.1796489165.vm.1.0",
                 "events.out.tfevents.1796489200.vm.1.0.profile-empty"):
        (tmp_path / name).write_bytes(b"")
    assert [Path(f).name for f in EventInput(str(tmp_path), tfevents).files()] == [
        "events.out.tfevents.1796489165.vm.1.0", "events.out.tfevents.1796489300.vm.2.0"]
