"""`watch --exit-when-done` on real Trainer consoles written live: it leaves a finished run
only once the log's end is in it, promptly then; a paused watch shows the training dict
that waits for its bar."""
import threading
import time

import pytest
from conftest import DATA
from test_watch import _rows

from logreport.analysis import summarize
from logreport.events import TRAIN
from logreport.reader import load
from logreport.watch import Options, Watch

LF = DATA / "llamafactory"
ESM2 = LF / "97_nonLF_esm2_fsdp_eval_dict_then_block_adding_perplexity.log"
RUN_MLM = LF / "94_nonLF_run_mlm_readme_typographic_quotes_eval_nan.log"


def _watch(log, tmp_path, **kw):
    return Watch(str(log), Options(poll=0.2, output=str(tmp_path / "r.html"), **kw))


def _loop(w):
    """The watch's loop in a thread: (thread, exit codes)."""
    codes = []
    thread = threading.Thread(target=lambda: codes.append(w.loop()), daemon=True)
    thread.start()
    return thread, codes


def _cut(lines, text: bytes, after: int = 1) -> int:
    """The lines up to the first holding `text` (and `after` - 1 more)."""
    return next(i for i, line in enumerate(lines) if text in line) + after


def _paused(lines, cut: int, tmp_path):
    """A watch of the first `cut` lines, paused there (polls with no new bytes), published:
    (watch, log)."""
    log = tmp_path / "run.log"
    log.write_bytes(b"".join(lines[:cut]))
    w = _watch(log, tmp_path)
    w.start()
    for _ in range(3):
        w.step()
    w.publish()
    return w, log


def _ends_as_summary(w, log, rest) -> None:
    """Given the rest of the lines, the watch ends with what summary says of the whole log."""
    with open(log, "ab") as f:
        f.writelines(rest)
    w.step()
    w.finish()
    assert w.summary == summarize(load(str(log)))


@pytest.mark.parametrize("source, text, code", [
    (ESM2, b"train_loss    ", 0),        # in the training's metrics block
    (ESM2, b"*** Evaluate ***", 0),      # the script's evaluation begins (its banner to come)
    (ESM2, b"Metrics are {", 0),         # its dict, the block that adds perplexity to come
    (ESM2, b"  eval_loss   ", 0),        # in that block, before its widest rows
    (ESM2, b"  eval_samples_per_second", 0),   # after them, the dict's eval_steps_per_second to come
    (RUN_MLM, b"  eval_accuracy", 1),    # in the evaluation's block, its NaN eval_loss to come
    (LF / "pt_full" / "console.log", b"{'train_runtime'", 0),   # LLaMA-Factory saves the model
    (LF / "sft_lora" / "console.log", b"Training completed.", 0)])  # its final dict to come
def test_exit_when_done_waits_out_a_pause_before_the_end(tmp_path, source, text, code):
    """The writer pauses where a run looks finished but its end is still to come: the watch
    left after 5 s (0 evaluations of 97's one, a finished code 0 for 94's NaN evaluation). It
    waits (up to final_eval_wait), and given the rest leaves at once with what summary says.
    A block's rows are sorted: one that has not reached every key of the dict it restates goes
    on (97 after its widest rows: the watch left, its evaluation without eval_steps_per_second
    and perplexity)."""
    lines = source.read_bytes().splitlines(keepends=True)
    cut = _cut(lines, text)
    log = tmp_path / "run.log"
    log.write_bytes(b"".join(lines[:cut]))
    w = _watch(log, tmp_path, exit_when_done=True, done_grace=0.2, final_eval_wait=60)
    thread, codes = _loop(w)
    thread.join(3)                           # settled (0.2 s polls), quiet past done_grace
    assert thread.is_alive() and w.summary["status"] == "finished"
    with open(log, "ab") as f:
        f.writelines(lines[cut:])
    thread.join(30)
    assert not thread.is_alive() and codes == [code]
    assert w.summary == summarize(load(str(log)))
    assert _rows(w.run) == _rows(load(str(log)))


@pytest.mark.parametrize("source", [
    DATA / "events" / "hf_tensorboard" / "console.log",     # evaluated during training
    LF / "87_nonLF_trl_sft_nohup_one_eval.log",              # (TRL scripts: no final evaluate())
    LF / "sft_lora_llamaboard" / "running_log.txt",          # its evaluation's banner, then the card
    LF / "67_lf_qwen2.5_1350steps_epochs_printed_0.2_readme.log",   # final evaluation, card
    LF / "pt_full" / "console.log", LF / "sft_lora" / "console.log", ESM2])
def test_exit_when_done_leaves_a_finished_log_promptly(tmp_path, source):
    """A finished run with no evaluation to come: a script that evaluated during training but
    evaluates no more (nothing in the log says it would), LlamaBoard's running log (the
    evaluation's banner, never its result: the model card after it). The watch waited the
    whole final_eval_wait (300 s) for an evaluation; it leaves after done_grace."""
    log = tmp_path / "run.log"
    log.write_bytes(source.read_bytes())
    w = _watch(log, tmp_path, exit_when_done=True, done_grace=0.2, final_eval_wait=15)
    started = time.monotonic()
    assert w.loop() == 0 and w.summary["status"] == "finished"
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("source, text", [
    (LF / "72_nonLF_whisper_asr_eval_wer_stdout.log", b"{'train_runtime'"),   # do_eval=True
    (LF / "61_running_log_stopped_at_12_percent_finetune_LLM.txt", None)])   # its banner, last
def test_exit_when_done_still_waits_for_an_evaluation_the_log_announces(tmp_path, source, text):
    """Where the log says an evaluation follows (the arguments printed do_eval=True; its banner,
    no result yet), a finished run is waited on for final_eval_wait."""
    lines = source.read_bytes().splitlines(keepends=True)
    log = tmp_path / "run.log"
    log.write_bytes(b"".join(lines[:_cut(lines, text) if text else len(lines)]))
    w = _watch(log, tmp_path, exit_when_done=True, done_grace=0.2, final_eval_wait=60)
    thread, _ = _loop(w)
    thread.join(3)
    assert thread.is_alive() and w.summary["status"] == "finished"
    w.close()
    thread.join(10)


def test_the_quiet_while_waiting_for_an_evaluation_is_no_stall(tmp_path):
    """A finished LLaMA-Factory run that evaluated during training, no final evaluation yet:
    after final_eval_wait the watch leaves with the code of the log, which the stall alarm
    (raised by that quiet, on the report it leaves) does not make 1."""
    lines = (LF / "sft_lora" / "console.log").read_bytes().splitlines(keepends=True)
    log = tmp_path / "run.log"
    log.write_bytes(b"".join(lines[:_cut(lines, b"train_steps_per_second")]))
    w = _watch(log, tmp_path, exit_when_done=True, done_grace=0.2, final_eval_wait=3,
               stall_minutes=0.02)
    assert w.loop() == 0
    assert w.summary["status"] == "finished" and w.summary["eval_records"] == 4


def test_a_paused_watch_shows_the_dict_that_waits_for_its_bar(tmp_path):
    """A console's training dict waits for the bar after it, which gives its step: a watch
    paused there showed one record less than summary of the same lines. After a poll or two of
    quiet it shows it, its step an estimate as summary's; the run gets it only from the bar
    after it, so the end is summary's of the whole log."""
    lines = (LF / "tf4_sft_lora" / "console.log").read_bytes().splitlines(keepends=True)
    cut = [i for i, line in enumerate(lines) if line.startswith(b"{'loss'")][20] + 1
    w, log = _paused(lines, cut, tmp_path)
    want = summarize(load(str(log)))
    keys = ("train_records", "last_step", "last_step_estimated", "last_epoch", "estimated_steps",
            "final", "anomalies")
    assert {k: w.summary[k] for k in keys} == {k: want[k] for k in keys}
    assert (w.summary["train_records"], w.summary["last_step_estimated"]) == (21, True)
    assert w.run.count(TRAIN) == 20          # (the run itself: the dict still waits)
    _ends_as_summary(w, log, lines[cut:])


def test_a_pause_after_a_frame_ended_by_a_carriage_return_counts_it(tmp_path):
    """A PaddleNLP test loop's bar pauses at a frame's `\\r`, right before the frame its
    `***** test metrics *****` block is glued to: the watch held that frame back (the `\\r`
    might begin a `\\r\\n`) and showed 70 unparsed lines of 694 where summary of the same bytes
    says 71 of 695. The frame is complete either way: it is read at once."""
    source = DATA / "paddlenlp" / "16_trainer_2022_fewclue_chid_test_metrics_header_after_bar_" \
                                  "frames.log"
    lines = source.read_bytes().splitlines(keepends=True)
    cut = _cut(lines, b"***** test metrics *****", 0)
    assert lines[cut - 1].endswith(b"it/s]\r")
    w, log = _paused(lines, cut, tmp_path)
    want = load(str(log))
    assert (w.summary["unparsed_lines"], w.run.lines) == (want.unparsed, want.lines) == (71, 695)
    _ends_as_summary(w, log, lines[cut:])


def test_a_log_that_ends_inside_a_traceback_is_failed_at_a_pause(tmp_path):
    """A DPO run's rank 0 died: its log ends inside the traceback (no exception line yet, no
    record). `summary` reads it failed (the traceback cut short); a watch showed nothing at all
    and `--exit-when-done` never left. At a pause the open traceback is shown, cut short, as
    the log's end would give it: the watch leaves with summary's failure, the traceback told
    once; the run itself got it only from the parser's end."""
    source = LF / "15_dpo_fsdp_tqdm_rank0_traceback.log"
    log = tmp_path / "run.log"
    log.write_bytes(source.read_bytes())
    w = _watch(log, tmp_path, exit_when_done=True, done_grace=0.2)
    thread, codes = _loop(w)
    thread.join(20)
    assert not thread.is_alive() and codes == [1]
    want = summarize(load(str(log)))
    assert want["status"] == w.summary["status"] == "failed"
    assert [m.kind for m in w.run.markers] == [m.kind for m in load(str(log)).markers]
    assert [a["kind"] for a in w.summary["anomalies"]] == ["traceback"]
