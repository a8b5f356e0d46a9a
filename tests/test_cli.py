"""The command-line contracts of report, summary, export and formats, on real fixtures."""
import gzip
import json
import re
from pathlib import Path

import pytest

from logreport.cli import main

PPDET = "ppdet/ppyoloe_crn_s_coco_train.log"


def test_summary_json_has_the_contract_keys(runner, data):
    result = runner.invoke(main, ["summary", str(data / PPDET), "--json"])
    assert result.exit_code == 0, result.stderr
    run = json.loads(result.stdout)["runs"][0]
    for key in ("source", "format", "status", "last_step", "last_epoch", "total_steps",
                "train_records", "final", "best", "throughput", "wall_seconds", "eta_seconds",
                "anomalies", "unparsed_lines"):
        assert key in run
    assert run["format"] == "ppdet"
    assert run["train_records"] == 36 and run["last_step"] == 35 and run["last_epoch"] == 2
    assert run["best"] == {"metric": "bbox/AP", "value": 0.048, "step": 11, "step_estimated": False,
                           "epoch": 0}
    assert run["final"]["loss"] == 29.832212
    assert run["throughput"]["metric"] == "ips"


def test_summary_human_table(runner, data):
    result = runner.invoke(main, ["summary", str(data / PPDET)])
    assert result.exit_code == 0
    assert "bbox/AP 0.048" in result.stdout and "ppdet" in result.stdout


def test_summary_of_several_files_gz_and_stdin(runner, data, tmp_path):
    raw = (data / PPDET).read_bytes()
    gz = tmp_path / "run.log.gz"
    gz.write_bytes(gzip.compress(raw))
    result = runner.invoke(main, ["summary", str(data / PPDET), str(gz), "-", "--json"],
                           input=raw)
    assert result.exit_code == 0, result.stderr
    runs = json.loads(result.stdout)["runs"]
    assert [r["train_records"] for r in runs] == [36, 36, 36]


def test_a_run_read_from_stdin_is_named_as_messages_name_it(runner, data, tmp_path):
    """`cat x.log | logreport export - -o x.csv` named the run `'-` (the spreadsheet-formula
    guard's quote before `-`), `-` in JSONL and in summary's table."""
    raw = (data / PPDET).read_bytes()
    out = tmp_path / "stdin.csv"
    assert runner.invoke(main, ["export", "-", "-o", str(out)], input=raw).exit_code == 0
    assert {row.split(",")[0] for row in out.read_text().splitlines()[1:]} == {"<stdin>"}
    table = runner.invoke(main, ["summary", "-"], input=raw).stdout
    assert "<stdin>" in table


def test_export_jsonl_rows(runner, data, tmp_path):
    out = tmp_path / "m.jsonl"
    result = runner.invoke(main, ["export", str(data / "ppdet/public_07_ppyolo_nan_paddle33911.log"),
                                  "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert set(rows[0]) == {"run", "segment", "phase", "step", "step_estimated", "epoch", "time",
                            "metric", "value"}
    assert not any(r["step_estimated"] for r in rows)        # ppdet prints every step
    losses = [r for r in rows if r["metric"] == "loss"]
    assert [(r["segment"], r["step"], r["value"]) for r in losses] == [
        (0, 0, "nan"), (0, 20, "nan"), (1, 0, 31146.630859), (1, 20, "nan")]
    assert re.fullmatch(r"\d{4}-07-01T17:29:40", losses[0]["time"])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_csv_and_parquet(runner, data, tmp_path, suffix):
    import pandas as pd

    out = tmp_path / f"m{suffix}"
    result = runner.invoke(main, ["export", str(data / PPDET), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert list(frame.columns) == ["run", "segment", "phase", "step", "step_estimated", "epoch",
                                   "time", "metric", "value"]
    assert not frame.step_estimated.any()
    evals = frame[(frame.phase == "eval") & (frame.metric == "bbox/AP")]
    assert list(evals.value) == [0.048, 0.0]
    assert len(frame[(frame.phase == "train") & (frame.metric == "loss")]) == 36


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_export_leaves_cocos_not_applicable_minus_one_empty(runner, data, tmp_path, suffix):
    """pycocotools prints `= -1.000` for an area with no object (`area= small` on a PCB set
    evaluated by tools/eval.py): not applicable, left out of the report's charts and figures.
    `export` wrote it as the value -1.0 in every format; its row is kept, its value empty (CSV)
    or null (JSONL, Parquet), the same in each."""
    import pandas as pd

    out = tmp_path / f"m{suffix}"
    log = data / "ppdet/public_51_evalpy_coco_small_area_minus1_not_applicable_pcb_windows_notes.log"
    result = runner.invoke(main, ["export", str(log), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "wrote 13 rows" in result.stderr
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        values = {r["metric"]: r["value"] for r in rows}
        assert values["bbox/APs"] is None and values["bbox/ARs"] is None
    else:
        frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
        values = dict(zip(frame.metric, frame.value))
        assert pd.isna(values["bbox/APs"]) and pd.isna(values["bbox/ARs"])
        if suffix == ".csv":
            assert ",bbox/APs,\n" in out.read_text()
    assert -1.0 not in [v for v in values.values() if v is not None]
    assert (values["bbox/AP"], values["bbox/APm"], values["bbox/APl"]) == (0.024, 0.024, 0.0)


def test_export_marks_estimated_steps(runner, data, tmp_path):
    """A Trainer dict with no progress bar after it has no step in the log: its estimate is
    exported, marked (50_nonLF: ten dicts, then the first bar the paste shows, 136/202, which
    may be the next step's: an estimate too)."""
    import pandas as pd

    out = tmp_path / "m.parquet"
    log = data / "llamafactory/50_nonLF_hf_tqdm_glued_eval_header_md_quoted.log"
    assert runner.invoke(main, ["export", str(log), "-o", str(out)]).exit_code == 0
    loss = pd.read_parquet(out).query("metric == 'loss'")
    assert list(loss.step_estimated) == [True] * 11 and list(loss.step)[-1] == 136


def test_formats_lists_ppdet_with_a_sample(runner):
    result = runner.invoke(main, ["formats"])
    assert result.exit_code == 0
    assert result.stdout.startswith("ppdet:") and "Epoch: [0]" in result.stdout


def test_report_writes_html_with_the_data(runner, data, tmp_path):
    out = tmp_path / "r.html"
    result = runner.invoke(main, ["report", str(data / PPDET), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    html = out.read_text(encoding="utf-8")
    assert not re.search(r"<(?:script|link|img|iframe)[^>]+(?:src|href)\s*=\s*[\"']?(?:https?:)?//",
                         html, re.I)


@pytest.mark.parametrize("args,code,words", [
    (["summary", "/no/such/file.log"], 2, "no such file"),
    (["export", "{ppdet}", "-o", "x.xlsx"], 2, "unknown export type"),
    (["export", "/no/such/dir", "-o", "x.xlsx"], 2, "unknown export type"),   # (before reading)
    (["summary", "{gzip}"], 1, "this is a gzip file, not a text log (hint: give its path ending "
                               "in .gz, or pipe it through gunzip -c)"),
    (["summary", "{empty}"], 1, "empty"),
    (["summary", "{binary}"], 1, "binary"),
    (["summary", "{negative}"], 1, "no training records recognised"),
    (["summary", "{ppdet}", "--format", "nope"], 2, "unknown format"),
    (["report"], 2, "Missing argument"),
])
def test_bad_input_gives_one_line_and_exit_code(runner, data, tmp_path, args, code, words):
    (tmp_path / "empty.log").write_bytes(b"")
    (tmp_path / "binary.log").write_bytes(bytes(range(256)) * 50)
    (tmp_path / "run.log").write_bytes(gzip.compress((data / PPDET).read_bytes()))
    paths = {"ppdet": str(data / PPDET), "empty": str(tmp_path / "empty.log"),
             "binary": str(tmp_path / "binary.log"), "gzip": str(tmp_path / "run.log"),
             "negative": str(data / "negative/N1_rtdetr_pytorch_not_ppdet.log")}
    result = runner.invoke(main, [a.format(**paths) for a in args])
    assert result.exit_code == code
    assert words in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""


def test_every_command_has_help_text_and_a_readme_example():
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    for name, command in main.commands.items():
        assert command.help, name
        assert f"logreport {name}" in readme, name


@pytest.mark.parametrize("args, code", [
    (["summary", PPDET, "--json"], 0),
    (["check", "llamafactory/05_sft_nan_then_zero_loss_npu.log"], 1),
    (["summary", "no/such.log"], 2),
])
def test_the_console_script_exits_quickly_with_the_output_and_code_of_main(runner, data, args,
                                                                            code, tmp_path):
    """`python -m logreport` (the console script's run()) leaves without freeing the parse after
    summary/check/export: its stdout (a pipe) and exit code are those of the command in-process.
    (The logs are copies last changed in 2020: a status that says how long ago the file changed
    reads the same in both runs, not a second apart as in a fresh checkout.)"""
    import os
    import subprocess
    import sys

    args = [str(data / a) if a.endswith(".log") else a for a in args]
    for i, a in enumerate(args):
        if os.path.exists(a):
            args[i] = str(tmp_path / os.path.basename(a))
            with open(a, "rb") as source, open(args[i], "wb") as copy:
                copy.write(source.read())
            os.utime(args[i], (1577836800, 1577836800))
    proc = subprocess.run([sys.executable, "-m", "logreport", *args], capture_output=True,
                          text=True, timeout=120)
    want = runner.invoke(main, args)
    assert (proc.returncode, proc.stdout) == (want.exit_code, want.stdout) and code == want.exit_code
    assert proc.stderr == want.stderr and "Traceback" not in proc.stderr


def test_a_command_keeps_freed_memory_for_the_next_arrays():
    """Once a command runs, a numpy array of a chunk's 65536 values that is freed and made
    again reuses the same memory. By default glibc maps each one afresh and gives it back, its
    128 pages faulted in anew every time (over 20,000 faults here; 4-7 % of the CPU of
    `summary` on a big log, whose chunks are all of that size). Linux, glibc: elsewhere the
    command leaves malloc as it is."""
    import subprocess
    import sys

    code = """
import contextlib, io, resource, sys
import numpy as np
from logreport.cli import main
if sys.argv[1:]:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main(sys.argv[1:])
        except SystemExit:
            pass
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    made = np.ones(1 << 16)
    made = made * 2
    del made
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

    def faults(*command: str) -> int:
        done = subprocess.run([sys.executable, "-c", code, *command], capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
        return int(done.stdout)

    if not sys.platform.startswith("linux") or faults() < 10_000:
        pytest.skip("no glibc, or a malloc that reuses such blocks by itself")
    assert faults("formats") < 1_000


def test_a_summary_table_shows_whole_run_names_on_a_narrow_terminal(runner, data):
    """Four real yolov3 logs whose names differ only at their ends: at 80 columns the run
    column cut them to `yolov3_mobilenet_v1_…`, four rows alike. Names now fold, whole."""
    names = ["yolov3_mobilenet_v1_voc_nan_crash.log",
             "yolov3_mobilenet_v1_voc_train-ppdet2.6-paddle2.6.2.log",
             "yolov3_mobilenet_v1_voc_train-ppdet2.7.1.log", "yolov3_mobilenet_v1_voc_train.log"]
    result = runner.invoke(main, ["summary", *(str(data / "ppdet" / n) for n in names)],
                           env={"COLUMNS": "80"})
    assert result.exit_code == 0 and "…" not in result.stdout
    rows: list[str] = []
    for line in result.stdout.splitlines():
        cells = line.split("│")
        if len(cells) > 2:
            if cells[2].strip():            # a run's first line has its status
                rows.append("")
            rows[-1] += cells[1].strip()
    assert rows == names


def test_a_reader_that_closes_the_pipe_ends_it_quietly():
    """`logreport summary runs/ --json | head`: once the reader had gone, logreport said
    "internal error: BrokenPipeError" and exited 1. It ends as a tool in a pipe does."""
    import os
    import subprocess
    import sys

    data = Path(__file__).parent / "data"
    gone, write = os.pipe()
    os.close(gone)                           # (the reader has gone before the first write)
    try:
        done = subprocess.run([sys.executable, "-m", "logreport", "summary", str(data / "ppdet"),
                               "--json"], stdout=write, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write)
    assert done.returncode == 141
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
