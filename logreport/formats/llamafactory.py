"""LLaMA-Factory / HF Trainer output files: trainer_log.jsonl and *_results.json.

As LLaMA-Factory (train/callbacks.py LogCallback) and transformers (save_metrics) write them.
trainer_log.jsonl is parsed line by line (it grows during training); a multi-line JSON file
(all/train/eval_results.json) is read object by object (the JSON text reader here is also
hf_state's, for trainer_state.json). Python's json writes NaN / Infinity bare; json.loads reads
them back.
"""
from __future__ import annotations

import bisect
import functools
import json
import re

from ..events import EVAL, FINAL, FINISHED, TRAIN, Info, Marker, Record
from . import Descriptor
from .hf_steps import SWIFT_KEY, drop_state, swift_steps

NAME = "llamafactory"
TITLE = "LLaMA-Factory trainer_log.jsonl and Hugging Face *_results.json"
DESCRIPTOR = Descriptor(
    tool="transformers",
    main_eval=("eval_accuracy", "eval_loss"),
    main_loss=("loss",),
    throughput=("train_samples_per_second", "throughput", "train_tokens_per_second"),
    hidden=("total_flos", "train_runtime", "eval_runtime"),
    units={"train_samples_per_second": "samples/s", "throughput": "tokens/s",
           "train_tokens_per_second": "tokens/s", "train_runtime": "s", "eval_runtime": "s"},
    # DPO/KTO: the reward terms and preference accuracy are what the loss optimises; the
    # policy's logits and log-probabilities are for a closer look
    sections=((r"^(?:rewards/|accuracy$)", "losses"), (r"^eval_(?:logits|logps)/", "more")),
    tokens_seen=("num_input_tokens_seen", "total_tokens"),
    # an LLaMA-Factory / HF output folder, structured files first (LlamaBoard's running_log.txt
    # holds the console's logger lines)
    run_files=("trainer_log.jsonl", "trainer_state.json", "all_results.json",
               "train_results.json", "eval_results.json", "*_results.json", "running_log.txt"),
)

_PROGRESS = ("current_steps", "total_steps", "epoch", "percentage", "elapsed_time",
             "remaining_time", "step")
_TRAIN_KEYS = ("loss", "reward", "accuracy")
_FINAL_KEYS = ("train_loss", "train_samples_per_second")
_DELTA = re.compile(r"^(?:(\d+) days?, )?(\d+):(\d{2}):(\d{2})$")
_JSON_KEY = re.compile(r'^\s*"(total_flos|epoch|loss|learning_rate|grad_norm|eval_loss|train_loss|'
                       r'train_runtime|[a-z]+_samples_per_second|[a-z]+_steps_per_second|'
                       r'eval_runtime)": ')
# keys that only a trainer_state.json (or its log_history) prints: the hf_state format's
STATE_KEY = re.compile(r'^\s*"(log_history|global_step|max_steps|best_metric|best_global_step|'
                       r'best_model_checkpoint|logging_steps|eval_steps|save_steps|step)": ')

SAMPLES = [
    ('{"current_steps": 2, "total_steps": 60, "loss": 7.6300272941589355, '
     '"lr": 0.0008333333333333333, "epoch": 0.017777777777777778, "percentage": 3.33, '
     '"elapsed_time": "0:00:05", "remaining_time": "0:02:43"}',
     [Info({"total_steps": 60, "remaining_seconds": 163.0, "elapsed_seconds": 5.0}, line=1),
      Record(TRAIN, {"loss": 7.6300272941589355, "learning_rate": 0.0008333333333333333},
             step=2, epoch=0.017777777777777778, line=1)]),
    ('{"current_steps": 15, "total_steps": 60, "eval_loss": 7.559988021850586, '
     '"epoch": 0.13333333333333333, "percentage": 25.0, "elapsed_time": "0:00:49", '
     '"remaining_time": "0:02:27"}',
     [Info({"total_steps": 60, "remaining_seconds": 147.0, "elapsed_seconds": 49.0}, line=1),
      Record(EVAL, {"eval_loss": 7.559988021850586}, step=15, epoch=0.13333333333333333,
             line=1)]),
    ('{\n    "epoch": 0.5333333333333333,\n    "eval_loss": 7.5584940910339355,\n'
     '    "eval_runtime": 2.203,\n    "eval_samples_per_second": 22.696,\n'
     '    "eval_steps_per_second": 5.901\n}',
     [Record(EVAL, {"eval_loss": 7.5584940910339355, "eval_runtime": 2.203,
                    "eval_samples_per_second": 22.696, "eval_steps_per_second": 5.901},
             epoch=0.5333333333333333, line=1)]),
]


def sniff(lines: list[str]) -> float:
    """Share of lines that look like these JSON files (keys in double quotes)."""
    if not lines:
        return 0.0
    state = any('": ' in text and STATE_KEY.match(text) for text in lines)
    hits = 0.0
    for text in lines:
        if text.startswith('{"') and ('"current_steps": ' in text or '"loss": ' in text):
            hits += 5
        elif not state and '": ' in text and _JSON_KEY.match(text):
            hits += 1
    return min(1.0, hits / len(lines))


def seconds(text) -> float | None:
    """`H:MM:SS` or `N day(s), H:MM:SS` (str(timedelta)) to seconds."""
    return _seconds(text) if isinstance(text, str) else None


@functools.lru_cache(maxsize=1 << 14)       # a log's times repeat (remaining_time, second ticks)
def _seconds(text: str) -> float | None:
    m = _DELTA.match(text)
    if m is None:
        return None
    return float(int(m.group(1) or 0) * 86400 + int(m.group(2)) * 3600 + int(m.group(3)) * 60
                 + int(m.group(4)))


def _float(value) -> float | None:
    """A JSON value as a number: numbers and numeric strings (LF v0.8 throughput "4129.18")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def as_int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _numbers(entry: dict, skip=_PROGRESS) -> dict[str, float]:
    out = {}
    for key, value in entry.items():
        if key not in skip and (number := _float(value)) is not None:
            out["learning_rate" if key == "lr" else key] = number
    return out


def _phase(metrics: dict) -> str | None:
    if any(k in metrics for k in _FINAL_KEYS):
        return FINAL
    if any(k in metrics for k in _TRAIN_KEYS):
        return TRAIN
    if any(k.startswith(("eval_", "predict_")) for k in metrics):
        return EVAL
    return None


def record(entry: dict, step, line: int) -> Record | None:
    """One log entry (a trainer_log line, a log_history item, a results file) as a Record."""
    metrics = _numbers(entry)
    phase = _phase(metrics)
    if phase is None:
        return None
    if phase == EVAL:
        drop_state(metrics)
    return Record(phase, metrics, step=step, epoch=_float(entry.get("epoch")), line=line)


class Parser:
    """trainer_log.jsonl lines one by one; other JSON text (trainer_state.json, a results file,
    a `log_history` pasted without its enclosing braces) as the objects found in it, each
    when it is complete. Lines that are neither are `rejected` (counted as unparsed)."""

    def __init__(self):
        self.buffer: list[tuple[int, str]] = []
        self.rejected: list[tuple[int, str]] = []
        self.trained = False
        self.count = 0
        self.train_total: int | None = None     # total_steps of the training lines
        self.train_step: int | None = None      # current_steps of the last of them
        self.facts: dict = {}

    def feed(self, text: str, number: int) -> list | None:
        stripped = text.strip()
        if stripped.startswith("{") and stripped.endswith("}") and \
                (not self.buffer or stripped.startswith('{"')):
            entry = _object(stripped)
            if entry is not None:           # a trainer_log.jsonl line
                return self._settle() + self._jsonl(entry, number)
            if not self.buffer:
                return None                 # half a line, or not JSON
        self.buffer.append((number, text))
        if text.startswith("}"):            # a document printed with indent ends here
            return self._settle()
        return []

    def finish(self) -> list:
        return self._settle()

    def _settle(self) -> list:
        """The events of the buffered lines: every complete JSON object in them (a document,
        or log_history entries), outermost first; the lines outside those are rejected."""
        lines, self.buffer = self.buffer, []
        if not lines:
            return []
        text = "\n".join(t for _, t in lines)
        starts = [0]
        for _, t in lines:
            starts.append(starts[-1] + len(t) + 1)
        used = [False] * len(lines)
        out: list = []
        decoder = json.JSONDecoder()
        at = text.find("{")
        while at >= 0:
            try:
                doc, end = decoder.raw_decode(text, at)
            except ValueError:
                at = text.find("{", at + 1)
                continue
            first = bisect.bisect_right(starts, at) - 1
            last = bisect.bisect_right(starts, end - 1) - 1
            used[first:last + 1] = [True] * (last - first + 1)
            out += self._document(doc, lines[first][0], lines, starts, at, text)
            at = text.find("{", end)
        self.rejected += [line for line, ok in zip(lines, used) if not ok and line[1].strip()
                          and line[1].strip() not in _PUNCTUATION]
        return out

    def _document(self, doc, number: int, lines, starts, at: int, text: str) -> list:
        """The events of one JSON object found at text offset `at` (line `number`)."""
        if not isinstance(doc, dict):
            return []
        rec = record(doc, as_int(doc.get("step")), number)
        if rec is None:
            return []
        if rec.phase == FINAL:      # all_results.json: train_* and eval_* in one document
            evals = {k: v for k, v in rec.metrics.items() if k.startswith(("eval_", "predict_"))}
            rec.metrics = {k: v for k, v in rec.metrics.items() if k not in evals}
            if evals:
                return [rec, Record(EVAL, evals, step=rec.step, epoch=rec.epoch, line=number)]
        return [rec]

    def _jsonl(self, entry: dict, number: int) -> list:
        out: list = []
        facts = {}
        total, step = as_int(entry.get("total_steps")), as_int(entry.get("current_steps"))
        if step is None and swift_steps(entry.get(SWIFT_KEY)):      # ms-swift's logging.jsonl
            step, total = swift_steps(entry.get(SWIFT_KEY))
        # an evaluation after training (older versions) counts its own loop's steps
        other_loop = None not in (total, self.train_total) and total != self.train_total
        if total is not None and not other_loop:
            facts["total_steps"] = total
        remaining = seconds(entry.get("remaining_time"))
        if remaining is not None:
            facts["remaining_seconds"] = remaining
        elapsed = seconds(entry.get("elapsed_time"))
        if elapsed is not None:
            facts["elapsed_seconds"] = elapsed
        if facts and facts != self.facts:
            self.facts = facts
            out.append(Info(dict(facts), line=number))
        rec = record(entry, None if other_loop else step, number)
        if rec is not None:
            if rec.phase == TRAIN:
                self.trained = True
                self.count += 1
                self.train_total, self.train_step = total, step
                if rec.step is None:        # v0.1 lines trimmed of their steps: the ordinal
                    rec.step, rec.estimated = self.count, True
            elif other_loop:        # at the step training ended, which the line does not say
                rec.step, rec.estimated = self.train_step, self.train_step is not None
            out.append(rec)
        elif self.trained:      # the end-of-training summary line: progress keys only
            self.train_total, self.train_step = total, step
            out.append(Marker(FINISHED, "end-of-training line of trainer_log.jsonl", line=number,
                              step=step))
        return out

_PUNCTUATION = {"[", "]", "],", "{", "}", "},", '"log_history": ['}   # a fragment's syntax


def _object(text: str) -> dict | None:
    """A line that is one JSON object, or None."""
    try:
        entry = json.loads(text)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None
