"""LLaMA-Factory / HF Trainer output files: trainer_log.jsonl, trainer_state.json, *_results.json.

Spec: shared/formats/llamafactory.md §8. trainer_log.jsonl is parsed line by line (it grows during
training); a multi-line JSON file (trainer_state.json, all/train/eval_results.json) is buffered and
read at finish(). Python's json writes NaN / Infinity bare; json.loads reads them back.
"""
from __future__ import annotations

import json
import re

from ..events import EVAL, FINAL, FINISHED, TRAIN, Info, Marker, Record

NAME = "llamafactory"
TITLE = "LLaMA-Factory trainer_log.jsonl, HF trainer_state.json and *_results.json"

_PROGRESS = ("current_steps", "total_steps", "epoch", "percentage", "elapsed_time",
             "remaining_time", "step")
_TRAIN_KEYS = ("loss", "reward", "accuracy")
_FINAL_KEYS = ("train_loss", "train_samples_per_second")
_DELTA = re.compile(r"^(?:(\d+) days?, )?(\d+):(\d{2}):(\d{2})$")
_JSON_KEY = re.compile(r'^\s*"(log_history|global_step|max_steps|best_metric|total_flos|epoch|step|'
                       r'loss|learning_rate|grad_norm|eval_loss|train_loss|train_runtime|'
                       r'[a-z]+_samples_per_second|[a-z]+_steps_per_second|eval_runtime)": ')

SAMPLES = [
    ('{"current_steps": 2, "total_steps": 60, "loss": 7.6300272941589355, '
     '"lr": 0.0008333333333333333, "epoch": 0.017777777777777778, "percentage": 3.33, '
     '"elapsed_time": "0:00:05", "remaining_time": "0:02:43"}',
     [Info({"total_steps": 60, "remaining_seconds": 163.0}, line=1),
      Record(TRAIN, {"loss": 7.6300272941589355, "learning_rate": 0.0008333333333333333},
             step=2, epoch=0.017777777777777778, line=1)]),
    ('{"current_steps": 15, "total_steps": 60, "eval_loss": 7.559988021850586, '
     '"epoch": 0.13333333333333333, "percentage": 25.0, "elapsed_time": "0:00:49", '
     '"remaining_time": "0:02:27"}',
     [Info({"total_steps": 60, "remaining_seconds": 147.0}, line=1),
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
    hits = 0.0
    for text in lines:
        if text.startswith('{"') and ('"current_steps": ' in text or '"loss": ' in text):
            hits += 5
        elif '": ' in text and _JSON_KEY.match(text):
            hits += 1
    return min(1.0, hits / len(lines))


def seconds(text) -> float | None:
    """`H:MM:SS` or `N day(s), H:MM:SS` (str(timedelta)) to seconds."""
    m = _DELTA.match(text) if isinstance(text, str) else None
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


def _int(value) -> int | None:
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
    return Record(phase, metrics, step=step, epoch=_float(entry.get("epoch")), line=line)


class Parser:
    """trainer_log.jsonl lines one by one; any other JSON document as a whole at finish()."""

    def __init__(self):
        self.buffer: list[str] = []
        self.start = 0
        self.trained = False
        self.count = 0
        self.facts: dict = {}

    def feed(self, text: str, number: int) -> list | None:
        stripped = text.strip()
        if not self.buffer and stripped.startswith("{") and stripped.endswith("}"):
            return self._jsonl(stripped, number)
        if not self.buffer:
            self.start = number
        self.buffer.append(text)
        return []

    def finish(self) -> list:
        if not self.buffer:
            return []
        text, self.buffer = "\n".join(self.buffer), []
        try:
            doc = json.loads(text)
        except ValueError:
            return []
        if not isinstance(doc, dict):
            return []
        if isinstance(doc.get("log_history"), list):
            return self._state(doc)
        rec = record(doc, None, self.start)
        if rec is None:
            return []
        if rec.phase == FINAL:      # all_results.json: train_* and eval_* in one document
            evals = {k: v for k, v in rec.metrics.items() if k.startswith(("eval_", "predict_"))}
            rec.metrics = {k: v for k, v in rec.metrics.items() if k not in evals}
            if evals:
                return [rec, Record(EVAL, evals, epoch=rec.epoch, line=self.start)]
        return [rec]

    def _jsonl(self, text: str, number: int) -> list | None:
        try:
            entry = json.loads(text)
        except ValueError:
            return None
        if not isinstance(entry, dict):
            return None
        out: list = []
        facts = {}
        if _int(entry.get("total_steps")) is not None:
            facts["total_steps"] = entry["total_steps"]
        remaining = seconds(entry.get("remaining_time"))
        if remaining is not None:
            facts["remaining_seconds"] = remaining
        if facts and facts != self.facts:
            self.facts = facts
            out.append(Info(dict(facts), line=number))
        step = _int(entry.get("current_steps"))
        rec = record(entry, step, number)
        if rec is not None:
            if rec.phase == TRAIN:
                self.trained = True
                self.count += 1
                if rec.step is None:        # v0.1 lines trimmed of their steps: the ordinal
                    rec.step = self.count
            out.append(rec)
        elif self.trained:      # the end-of-training summary line: progress keys only
            out.append(Marker(FINISHED, "end-of-training line of trainer_log.jsonl", line=number,
                              step=step))
        return out

    def _state(self, doc: dict) -> list:
        out: list = []
        facts = {k: doc[k] for k in ("max_steps", "num_train_epochs", "logging_steps",
                                     "eval_steps", "train_batch_size")
                 if isinstance(doc.get(k), (int, float)) and not isinstance(doc.get(k), bool)}
        if "max_steps" in facts:
            facts["total_steps"] = facts.pop("max_steps")
        if facts:
            out.append(Info(facts, line=self.start))
        for entry in doc["log_history"]:
            if isinstance(entry, dict):
                rec = record(entry, _int(entry.get("step")), self.start)
                if rec is not None:
                    out.append(rec)
        return out
