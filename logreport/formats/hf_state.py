"""Hugging Face Trainer's trainer_state.json: its facts and its `log_history`, each entry a
record at its own `step` (also a `log_history` pasted without the document around it).

As transformers writes it (trainer_callback.py TrainerState.save_to_json, indent 2). Read with
llamafactory's JSON text reader (object by object, a line that is not JSON counted).
"""
from __future__ import annotations

import bisect

from ..events import TRAIN, Info, Record
from . import Descriptor, llamafactory
from .llamafactory import STATE_KEY, record

NAME = "hf_state"
TITLE = "Hugging Face Trainer trainer_state.json (log_history)"
DESCRIPTOR = Descriptor(
    tool="transformers",
    main_eval=llamafactory.DESCRIPTOR.main_eval,
    main_loss=("loss",),
    throughput=("train_samples_per_second",),
    hidden=("total_flos", "train_runtime", "eval_runtime"),
    units=llamafactory.DESCRIPTOR.units,
)
_FACTS = ("max_steps", "num_train_epochs", "logging_steps", "eval_steps", "train_batch_size",
          "best_metric")      # the value of the best evaluation (of metric_for_best_model)

# Real lines (pt_full/trainer_state.json in tests/data: its head, its first entry, its tail)
SAMPLES = [
    ('{\n  "best_global_step": null,\n  "best_metric": null,\n  "epoch": 0.03003003003003003,\n'
     '  "global_step": 15,\n  "log_history": [\n    {\n      "epoch": 0.002002002002002002,\n'
     '      "grad_norm": 0.749427318572998,\n      "learning_rate": 0.0,\n'
     '      "loss": 7.5676798820495605,\n      "step": 1\n    }\n  ],\n  "logging_steps": 1,\n'
     '  "max_steps": 15,\n  "train_batch_size": 2\n}',
     [Info({"logging_steps": 1, "train_batch_size": 2, "total_steps": 15}, line=1),
      Record(TRAIN, {"grad_norm": 0.749427318572998, "learning_rate": 0.0,
                     "loss": 7.5676798820495605}, step=1, epoch=0.002002002002002002,
             line=7)]),
]


def sniff(lines: list[str]) -> float:
    """Share of lines that only a trainer_state.json prints (its document's keys, `"step"`)."""
    if not lines:
        return 0.0
    hits = sum(5 for text in lines if '": ' in text and STATE_KEY.match(text))
    return min(1.0, hits / len(lines))


class Parser(llamafactory.Parser):
    """llamafactory's JSON text reader, reading a `log_history` document as the run's state."""

    def _document(self, doc, number: int, lines, starts, at: int, text: str) -> list:
        if isinstance(doc, dict) and isinstance(doc.get("log_history"), list):
            return self._state(doc, number, lines, starts, text.find('"log_history"', at))
        return super()._document(doc, number, lines, starts, at, text)

    def _state(self, doc: dict, number: int, lines, starts, at: int) -> list:
        """Its facts, then each log_history entry (at the line of its own `{`)."""
        out: list = []
        facts = {k: doc[k] for k in _FACTS
                 if isinstance(doc.get(k), (int, float)) and not isinstance(doc.get(k), bool)}
        if "max_steps" in facts:
            facts["total_steps"] = facts.pop("max_steps")
        if facts:
            out.append(Info(facts, line=number))
        first = bisect.bisect_right(starts, max(at, 0)) - 1
        entry_lines = (n for n, t in lines[first:] if t.strip().startswith("{"))
        for entry in doc["log_history"]:
            line = next(entry_lines, number)
            if isinstance(entry, dict):
                rec = record(entry, llamafactory.as_int(entry.get("step")), line)
                if rec is not None:
                    out.append(rec)
        return out
