"""LLaMA-Factory runs: console steps agree with trainer_state.json; output folders merge once."""
import json
import math
from datetime import datetime
from pathlib import Path

import pytest
from conftest import repeated
from hypothesis import given
from hypothesis import strategies as st
from strategies import DATA  # noqa: F401  (loads the hypothesis profile)

from logreport import headline, mail, present
from logreport.analysis import summarize, values
from logreport.formats.hf_values import stamp
from logreport.headline import cards
from logreport.reader import load

RUNS = sorted(p for p in (Path(__file__).parent / "data" / "llamafactory").iterdir() if p.is_dir())


def _state(run_dir: Path) -> dict | None:
    found = [run_dir / "trainer_state.json"] + sorted(run_dir.glob("checkpoint-*.trainer_state.json"))
    found = [p for p in found if p.exists()]
    return json.loads(found[0].read_text()) if found else None


def _close(a: float, b: float) -> bool:
    if math.isnan(b):
        return math.isnan(a)
    return math.isclose(a, b, rel_tol=6e-4, abs_tol=1e-12)   # 5.x prints 4 significant digits


@pytest.mark.parametrize("run_dir", [r for r in RUNS if _state(r) and (r / "console.log").exists()],
                         ids=lambda p: p.name)
def test_console_steps_and_values_match_trainer_state(run_dir):
    history = [h for h in _state(run_dir)["log_history"] if "loss" in h]
    run = load(str(run_dir / "console.log"))
    assert run.format == "hf_trainer"
    for metric in ("loss", "grad_norm", "learning_rate"):
        steps, _, _, vals = values(run, "train", metric)
        got = dict(zip(steps.astype(int).tolist(), vals.tolist()))
        for entry in history:
            assert entry["step"] in got, (metric, entry["step"])
            assert _close(got[entry["step"]], entry[metric]), (metric, entry["step"])


def test_folder_counts_each_record_once_and_says_which_files_gave_what():
    folder = next(r for r in RUNS if r.name == "sft_lora")
    run = load(str(folder))
    summary = summarize(run)
    assert summary["train_records"] == 60 and summary["last_step"] == 60
    assert summary["eval_records"] == 4 and summary["status"] == "finished"
    used = run.info["files_used"]
    assert "60 train records" in used["trainer_log.jsonl"]
    assert "60 grad_norm" in used["trainer_state.json"]
    assert used["all_results.json"] == "nothing new"
    assert [Path(f).name for f in run.files] == ["trainer_log.jsonl", "trainer_state.json",
                                                 "console.log"]


def test_interrupted_run_is_failed_and_killed_run_is_not_finished():
    by_name = {r.name: r for r in RUNS}
    assert summarize(load(str(by_name["sft_lora_interrupted"] / "console.log")))["status"] == "failed"
    killed = summarize(load(str(by_name["sft_lora_killed_sigterm"] / "console.log")))
    assert killed["status"] != "finished" and killed["last_step"] == 127


@pytest.mark.parametrize("log", sorted((Path(__file__).parent / "data" / "llamafactory").glob("*.jsonl"))
                         + [r / "trainer_log.jsonl" for r in RUNS if (r / "trainer_log.jsonl").exists()],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_folder_of_one_file_is_that_file(log, tmp_path):
    """The folder merge (columns, blocks) gives back the records, segments and markers the
    file gives alone: duplicate writers, resumes in the same file, eval and final lines."""
    (tmp_path / "trainer_log.jsonl").write_bytes(log.read_bytes())
    alone, folder = load(str(log)), load(str(tmp_path))
    assert repr(list(folder.rows())) == repr(list(alone.rows()))      # (NaN losses too)
    assert [s.label for s in folder.segments] == [s.label for s in alone.segments]
    assert [(m.kind, m.line) for m in folder.markers] == [(m.kind, m.line) for m in alone.markers]
    assert {k: v for k, v in folder.info.items() if k != "files_used"} == alone.info


def test_parser_state_stays_small_over_many_evaluations():
    """The eval de-duplication remembers only the last few eval steps, not every one (a long
    run evaluates thousands of times): the real console log's training part (4 evals) read 6
    times over, its training bar and epochs renumbered into one run of 360 steps."""
    from logreport.formats.hf_trainer import Parser

    text = repeated((Path(__file__).parent / "data" / "llamafactory" / "sft_lora" / "console.log")
                    .read_bytes(), 6).decode("utf-8")       # keeps the \r of tqdm frames
    parser = Parser()
    evals = set()
    for number, line in enumerate(text.split("\n"), 1):
        for frame in line.split("\r"):
            evals.update(e.step for e in parser.feed(frame, number) or []
                         if getattr(e, "phase", None) == "eval")
    assert len(evals) == 24
    assert len(parser.emitted) <= 16


@given(st.integers(0, 10000), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25),
       st.integers(0, 61), st.integers(0, 61))
def test_a_logger_stamp_is_read_as_datetime_reads_it(year, month, day, hh, mm, ss):
    """`stamp` (its day's start cached) gives what datetime gives, None for a date or time that
    is none, for the digit strings a logger line prints (str or bytes)."""
    try:
        want = (datetime(year, month, day, hh, mm, ss) - datetime(1970, 1, 1)).total_seconds()
    except ValueError:
        want = None
    printed = (f"{year:04d}", f"{month:02d}", f"{day:02d}", f"{hh:02d}", f"{mm:02d}", f"{ss:02d}")
    assert stamp(*printed) == want and type(stamp(*printed)) is type(want)
    assert stamp(*(p.encode() for p in printed)) == want


def test_a_bar_alone_on_the_line_before_a_dict_is_the_training_bar():
    """A real axolotl paste: an evaluation dict, the training bar's frames each on a line of
    their own (21/873 ... 28/873), then one training dict, and no `Total optimization steps`
    line. The bar right before the dict is the training bar, as if glued to it: the dict is at
    step 28 of 873 (it was an estimate, 1, with no total, progress or ETA); the evaluation
    before the bars gets no step from them."""
    run = load(str(Path(__file__).parent / "data/llamafactory"
                   / "90_nonLF_axolotl_bar_a_line_each_then_one_dict_no_total.log"))
    summary = summarize(run)
    assert (summary["last_step"], summary["last_step_estimated"]) == (28, False)
    assert summary["total_steps"] == 873
    progress = summary["progress"]
    assert (progress["elapsed_seconds"], progress["remaining_seconds"]) == (121.0, 3651.0)
    assert summary["best"]["metric"] == "eval_loss" and summary["best"]["step"] is None


def test_throughput_falls_back_to_the_average_stated_at_the_end():
    """A console whose training dicts carry no throughput (TRL's SFT run under nohup: tqdm's
    rate is not a record) shows the trainer's own `train_samples_per_second`, marked stated;
    where training records carry one, their median stays."""
    data = Path(__file__).parent / "data" / "llamafactory"
    summary = summarize(load(str(data / "87_nonLF_trl_sft_nohup_one_eval.log")))
    assert summary["throughput"] == {"metric": "train_samples_per_second", "median": 0.8,
                                     "stated": True}
    (card,) = [c for c in cards(summary, lang="zh") if c["key"] == "throughput"]
    assert (card["text"], card["sub"]) == ("0.8 samples/s", "训练结束时给出的平均值")
    assert ("throughput", "train_samples_per_second 0.8") in mail.facts(summary)   # no "(median)"
    three = summarize(load(str(data / "64_nonLF_deepspeed_script_three_trainings_no_banner.log")))
    assert three["throughput"]["median"] == 30.279          # the last training's, not the first's
    lines = summarize(load(str(data / "24b_sft_full_v0.9.4_webui_step_lines_per_step_train_runtime.log")))
    assert lines["throughput"] == {"metric": "train_tokens_per_second", "median": 81.4525}


def test_dicts_pasted_with_typographic_quotes_are_read():
    """A README whose `{'loss': …}` lines a word processor turned into `{‘loss’: …}`: they
    were taken as the logger line's continuation, 22 records lost with nothing unparsed."""
    run = load(str(Path(__file__).parent / "data" / "llamafactory"
                   / "94_nonLF_run_mlm_readme_typographic_quotes_eval_nan.log"))
    steps, _, _, losses = values(run, "train", "loss")
    assert len(losses) == 22 and losses[0] == 5.2999 and losses[-1] == 5.1444
    assert summarize(run)["throughput"]["median"] == 127.9
    assert [a["kind"] for a in summarize(run)["anomalies"]] == ["nan"]


def test_a_train_metrics_block_alone_with_a_zero_train_loss_is_flagged():
    """A user's paste of the `train metrics` block alone, `train_loss = 0.0` ("train_loss一直为0"):
    it read "0 evaluations, no training records" and `check` found nothing."""
    run = load(str(Path(__file__).parent / "data" / "llamafactory"
                   / "95_lf_train_metrics_block_alone_train_loss_0_lf4278.log"))
    summary = summarize(run)
    assert [(a["kind"], a["metric"], a["line"]) for a in summary["anomalies"]] == [
        ("zero_loss", "train_loss", 3)]
    assert headline.sentence(summary, lang="zh") == \
        "没有训练记录或评估，只有训练的最终指标，有异常：损失为零（zero_loss）。"
    # where training records show the loss, they are judged, not the stated average
    sft = summarize(load(str(Path(__file__).parent / "data" / "llamafactory" / "sft_lora")))
    assert not [a for a in sft["anomalies"] if a["kind"] == "zero_loss"]


def test_progress_is_where_the_bar_stands_when_it_runs_ahead_of_the_last_dict():
    """Two dicts (steps 1 and 2), then the bar at 21/249 with its ETA: progress said step 2 with
    that ETA beside it (the Trainer logs every logging_steps; the bar moves each step)."""
    run = load(str(Path(__file__).parent / "data" / "llamafactory"
                   / "96_lf_nan_two_dicts_then_the_bar_at_21_of_249_lf7388.log"))
    progress = summarize(run)["progress"]
    assert (progress["step"], progress["total_steps"], progress["percent"]) == (21, 249, 8.43)
    assert progress["remaining_seconds"] == 4668.0 and summarize(run)["last_step"] == 2
    finished = summarize(load(str(Path(__file__).parent / "data" / "llamafactory" / "sft_lora")))
    assert finished["progress"]["step"] == 60 and finished["progress"]["percent"] == 100.0


def test_a_metrics_block_restating_the_dict_before_it_is_one_evaluation():
    """An example script logs its evaluation's dict, then `trainer.log_metrics` prints the
    `eval metrics` block restating it with `perplexity` and `eval_samples` added: that was two
    evaluations (the added keys a record of their own, at the block's epoch 0.9997)."""
    data = Path(__file__).parent / "data" / "llamafactory"
    run = load(str(data / "97_nonLF_esm2_fsdp_eval_dict_then_block_adding_perplexity.log"))
    assert summarize(run)["eval_records"] == 1
    rows = [r for r in run.rows() if r[1] == "eval"]
    assert {r[5]: (r[3], r[6]) for r in rows} == {
        "eval_loss": (0.99968, 2.6308915615081787), "eval_accuracy": (0.99968, 0.20261175918653207),
        "eval_runtime": (0.99968, 94.2151), "eval_samples_per_second": (0.99968, 530.7),
        "eval_steps_per_second": (0.99968, 33.169), "eval_samples": (0.99968, 50000.0),
        "perplexity": (0.99968, 13.8861)}
    # the training's summary dict and its `train metrics` block: one final record each training
    four = load(str(data / "65_nonLF_deepspeed_script_four_trainings_no_bars.log"))
    finals = [r for r in four.rows() if r[1] == "final" and r[5] == "train_loss"]
    assert [r[6] for r in finals] == [0.1563156862324531, 10.380258413461538,
                                      10.846153846153847, 23.009198588709676]
    assert sum(len(t) for _, t in four.tables("final")) == 4


def test_a_bar_on_the_line_before_a_dict_gives_its_step_on_a_console_of_one_frame_a_line():
    """A README's console: each dict right after the bar frame of its step, one frame a line
    (`2/16`, `{'loss': …, 'epoch': 0.12}`, a blank line, `4/16`, …). Each dict took the next
    bar's count (1, 4, 8, 12, 16) and the last an estimate past the total, step 20 of 16. Each
    is a guess (the bar before and the next differ; the last has no bar after it to weigh the
    one before against), and said so."""
    data = Path(__file__).parent / "data" / "llamafactory"
    run = load(str(data / "98_nonLF_trl_skypilot_readme_bar_then_dict_each_step_20b.log"))
    steps, epochs, _, losses = values(run, "train", "loss")
    assert list(steps) == [1, 2, 4, 8, 12, 16] and list(epochs) == [0.06, 0.12, 0.25, 0.5, 0.75, 1.0]
    summary = summarize(run)
    assert (summary["last_step"], summary["total_steps"], summary["status"]) == (16, 16, "finished")
    assert summary["estimated_steps"] == 6          # a guess between two bars: said so
    spikes = load(str(data / "99_nonLF_trl_skypilot_readme_bar_then_dict_loss_spikes_120b.log"))
    assert list(values(spikes, "train", "loss")[0]) == [1, 2, 3, 4, 8, 14]


def test_metrics_blocks_of_an_indented_paste_are_read():
    """A paste indented two spaces: the blocks' rows at four. They were no rows, and the
    evaluation was lost (`eval_records` 0). Its epoch (2.24, a streamed dataset's, at step 100
    of 100) names step 224 by examples / batch size: an epoch past the bar is no sign of a
    buffered stdout (only a bar past the epoch is)."""
    run = load(str(Path(__file__).parent / "data" / "llamafactory"
                   / "100_nonLF_ezpz_aurora_indented_paste_metrics_blocks_streamed_epochs.log"))
    summary = summarize(run)
    assert summary["eval_records"] == 1 and summary["status"] == "finished"
    assert summary["best"] == {"metric": "eval_accuracy", "value": 0.4701, "step": 100,
                               "step_estimated": False, "epoch": 2.24}
    evals = {r[5]: r[6] for r in run.rows() if r[1] == "eval"}
    assert (evals["eval_loss"], evals["perplexity"]) == (2.5437, 12.7268)
    finals = {r[5]: r[6] for r in run.rows() if r[1] == "final"}
    assert (finals["train_loss"], finals["train_samples"]) == (2.8478338932991027, 25000.0)
    assert "dict_steps" not in run.info


def test_lines_labelled_by_srun_are_read():
    """`srun --label` prefixes each task's lines `0: ` / `1: `: the dicts were read, but not
    `1: Training completed.`, so a run at 1136/1136 was `unknown` ("no end of training")."""
    run = load(str(Path(__file__).parent / "data" / "llamafactory"
                   / "101_nonLF_esm2_slurm_srun_label_prefixed_lines.log"))
    summary = summarize(run)
    assert (summary["status"], summary["last_step"], summary["total_steps"]) == ("finished", 1136, 1136)
    assert [(m.kind, m.line) for m in run.markers if m.kind in ("finished", "checkpoint")] == [
        ("checkpoint", 28), ("finished", 35)]


def test_a_bar_of_another_stream_gives_no_exact_step():
    """Under srun the dicts (stdout) and the bar (stderr) reach the file as lines of their own,
    the bar a snapshot drawn whenever: after the dict at epoch 0.03 (step 32 of 1136, a dict
    every 16 steps) came the bar at 35, and 35 was given as the dict's exact step. A dict right
    after a bar line that the dict before took has no bar of its own: its step is an estimate.
    So are the dicts after the author's `...` (1117 was exact, for 1104): the bars of such a
    console date no dict."""
    run = load(str(Path(__file__).parent / "data" / "llamafactory"
                   / "101_nonLF_esm2_slurm_srun_label_prefixed_lines.log"))
    steps = [(step, bool(estimated)) for _, phase, name, step, estimated, _ in
             run.series_columns(columns=("step", "estimated")) if phase == "train" and name == "loss"
             for step, estimated in zip(step.tolist(), estimated.tolist())]
    assert steps[:6] == [(18, True), (35, True), (53, True), (71, True), (89, True), (106, True)]
    assert steps[6:] == [(1117, True), (1129, True), (1136, True)]
    assert summarize(run)["estimated_steps"] == 9

def test_another_workers_copy_of_a_dict_with_bars_is_a_repeat():
    """Ray Train forwards each worker's output with its prefix: the second worker printed every
    dict again, after its own bar, and each copy was one more record (steps 7, 8, 9 estimated
    for a run that logged 5, 6, 7). A copy from another writer is a repeat, said in the summary."""
    run = load(str(Path(__file__).parent / "data" / "llamafactory"
                   / "117_nonLF_ray_train_two_workers_each_dict_printed_twice_with_bars.log"))
    summary = summarize(run)
    losses = [(r[2], r[6]) for r in run.rows() if r[1] == "train" and r[5] == "loss"]
    assert losses == [(5, 8.4434), (6, 8.3139), (7, 7.9451)]
    assert (summary["train_records"], summary["repeated_records"], summary["estimated_steps"]) == (3, 2, 0)

def test_a_metrics_blocks_example_count_is_no_chart():
    """`eval_samples = 196467` in an `eval metrics` block (how many examples) was drawn as an
    evaluation metric (ticks of 1.964675e+5) and a column of the evaluations table."""
    from logreport import sections

    run = load(str(Path(__file__).parent / "data" / "llamafactory"
                   / "94_nonLF_run_mlm_readme_typographic_quotes_eval_nan.log"))
    charted = {m for chart in sections.charts([run]) for m in chart["metrics"]}
    assert {"eval_accuracy", "eval_loss", "perplexity"} <= charted
    assert not charted & {"eval_samples", "train_samples"}
    assert any(r[5] == "eval_samples" for r in run.rows())        # (kept: export has it)


def test_an_evaluation_each_rank_printed_is_one():
    """Slurm tasks 1 and 0 each print the evaluation's dict (the same loss and accuracy, each
    its own runtime), then task 0 the `eval metrics` block: two evaluations, the block's
    perplexity with the second; the guide's all_results.json holds one evaluation."""
    run = load(str(Path(__file__).parent / "data" / "llamafactory"
                   / "102_nonLF_esm2_slurm_ddp_one_evaluation_printed_by_two_ranks.log"))
    summary = summarize(run)
    assert (summary["eval_records"], summary["repeated_records"]) == (1, 1)
    evals = {r[5]: r[6] for r in run.rows() if r[1] == "eval"}
    assert (evals["eval_loss"], evals["eval_accuracy"], evals["perplexity"]) == (
        2.6093177795410156, 0.20685649827919567, 13.5898)
    assert evals["eval_runtime"] == 75.8886           # the first print's (task 1's)


def test_the_best_of_several_eval_datasets_says_it_is_one_and_gives_the_others():
    """A Trainer given a dict of eval datasets (Sentence Transformers v3: snli, stsb) prints
    one dict each, `eval_snli_loss` then `eval_stsb_loss`: the best was snli's 1.09882 alone,
    taken for being printed first, with nothing saying the run evaluated two sets nor what
    stsb's was (0.276833). It is still the first, said so, with the other's best beside it."""
    run = load(str(Path(__file__).parent / "data" / "llamafactory"
                   / "118_nonLF_sbert_v3_two_eval_datasets_each_its_own_loss_dict.log"))
    summary = summarize(run)
    best = summary["best"]
    assert (best["metric"], best["value"], best["epoch"]) == ("eval_snli_loss", 1.0988188982009888, 0.07)
    assert [(b["metric"], b["value"], b["epoch"]) for b in best["alongside"]] == [
        ("eval_stsb_loss", 0.2768329977989197, 0.07)]
    assert "Best eval_snli_loss 1.09882 at epoch 0.07 (first of 2; also eval_stsb_loss 0.276833 " \
        "at epoch 0.07)" in headline.sentence(summary, headline.loss_change(run))
    assert {c["key"]: c for c in cards(summary)}["best"]["sub"] == "epoch 0.07, first of 2"
    assert present.best(best) == ("eval_snli_loss 1.09882 @ epoch 0.07 "
                                  "(first of 2; also eval_stsb_loss 0.276833 @ epoch 0.07)")
