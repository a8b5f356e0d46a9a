"""TensorBoard event files (`events.out.tfevents.*`), read with tensorboard's own loader.

Framing (length, crc, Event proto, crc) and partly written records are tensorboard's
`RawEventFileLoader`'s business: it stops before a record not fully written and goes on from
there at the next call, so `Reader.poll()` can follow a file being written. Values come through
tensorboard's `data_compat` (old `simple_value`s and TF2 scalar tensors alike).

Names as the Hugging Face Trainer logs them: its TensorBoardCallback writes each `logs` dict of
`Trainer.log` as scalars at the global step, `eval_x` as `eval/x`, `test_x` as `test/x`, any
other key `k` as `train/k`. Turned back, a group is read as a `trainer_state.json` entry is
(formats.llamafactory.record): `loss`, `learning_rate`, `grad_norm`, `eval_loss`, final metrics
(`train_loss`, `train_runtime`...) as phase final, `epoch` as the record's epoch. Tags of other
writers keep their names.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np

from ..events import EVAL, TRAIN, Record
from . import llamafactory
from .scalars import Group, Grouper, ScalarReader, float32, learning_rate, local_clock, need

NAME = "tfevents"
TITLE = "TensorBoard event files (Hugging Face Trainer / LLaMA-Factory report_to tensorboard)"
EXTRA = "tensorboard"
# read back as the Trainer's logs: the names, steps and roles of its console and JSON files
DESCRIPTOR = dataclasses.replace(llamafactory.DESCRIPTOR, run_files=())
EXAMPLE = "out/runs/Dec05_16-46-05_vm/events.out.tfevents.1796489165.vm.17884.0"

_MODULES = ("tensorboard.backend.event_processing.event_file_loader",
            "tensorboard.compat.proto.event_pb2", "tensorboard.data_compat",
            "tensorboard.util.tensor_util")
_HF_PREFIXES = (("train/", ""), ("eval/", "eval_"), ("test/", "test_"))
# Trainer.log adds `epoch` after the logged metrics: it ends a group, unless the token count
# and its speed, which include_num_input_tokens_seen adds after it, follow.
_ENDS = ("train/epoch",)
_GOES_ON = ("train/num_input_tokens_seen",)


def is_file(name: str) -> bool:
    """An event file by its name, as TensorBoard tells one (profiler placeholders left out)."""
    return "tfevents" in name and not name.endswith(".profile-empty")


def _kind(tag: str) -> str | None:
    if tag in _ENDS or tag in _GOES_ON:
        return None
    return "eval" if tag.startswith("eval/") else "test" if tag.startswith("test/") else "train"


def logs_key(tag: str) -> str:
    """The key of Trainer's `logs` that the callback wrote as this tag (others: the tag)."""
    for prefix, key in _HF_PREFIXES:
        if tag.startswith(prefix):
            return learning_rate(key + tag[len(prefix):])
    return learning_rate(tag)


def grouper() -> Grouper:
    """Scalars back into the `logs` dicts of Trainer.log calls."""
    return Grouper(_kind, _ENDS, _GOES_ON)


def record(group: Group) -> Record | None:
    """A group of scalars as the Record of its `logs` dict (None: nothing but the epoch); of
    the rest of a group given at a pause (the tokens seen after the epoch), its own values,
    read with those given (they tell the phase)."""
    logs = {logs_key(tag): value for tag, value in {**group.given, **group.values}.items()}
    rec = llamafactory.record(logs, group.step, group.number)
    if rec is None:                       # no loss, no eval_ key: a custom log
        epoch = logs.pop("epoch", None)
        if not logs:
            return None
        rec = Record(EVAL if group.kind in ("eval", "test") else TRAIN, logs,
                     step=group.step, epoch=epoch, line=group.number)
    if group.given:
        own = {logs_key(tag) for tag in group.values}
        rec.metrics = {name: value for name, value in rec.metrics.items() if name in own}
    rec.time = group.time
    return rec


class Reader(ScalarReader):
    """One event file; `poll()` gives the events of the records written since the last call."""

    def __init__(self, path: str):
        super().__init__(path, grouper())
        loader, self.event_pb2, self.data_compat, self.tensor_util = need(
            EXTRA, "TensorBoard event files", path, *_MODULES)
        self.loader = loader.RawEventFileLoader(path)

    def _payloads(self):
        for raw in self.loader.Load():
            self.consumed += len(raw) + 16        # length, its crc, the record, its crc
            yield raw

    def _record(self, raw: bytes, out: list) -> None:
        event = self.decode(self.event_pb2.Event, raw)
        if event is None:
            return
        what = event.WhichOneof("what")
        if what != "summary":
            if what != "file_version":            # the header every writer puts first
                self.skip(what or "empty")
            return
        time = local_clock(event.wall_time)
        for value in event.summary.value:
            number = self._number(value)
            if number is not None:
                self.scalar(event.step, value.tag, number, time, out)

    def _number(self, value) -> float | None:
        """The number of a scalar entry; other entries become facts or are counted."""
        if value.HasField("simple_value"):
            return float32(value.simple_value)
        value = self.data_compat.migrate_value(value)
        plugin = value.metadata.plugin_data.plugin_name
        if plugin == "scalars":
            array = self.tensor_util.make_ndarray(value.tensor)
            if array.size == 1:
                number = float(array.reshape(()))
                return float32(number) if array.dtype == np.float32 else number
        elif plugin == "text" and self._text_facts(value):
            return None
        self.skip(plugin or "other")
        return None

    def _text_facts(self, value) -> bool:
        """HF's `args` (TrainingArguments) and `model_config` texts: the facts they hold."""
        if value.tag not in ("args/text_summary", "model_config/text_summary"):
            return False
        try:
            doc = json.loads(self.tensor_util.make_ndarray(value.tensor).reshape(-1)[0])
        except (ValueError, IndexError, TypeError):
            return False
        if not isinstance(doc, dict):
            return False
        steps, version = doc.get("max_steps"), doc.get("transformers_version")
        if isinstance(steps, int) and steps > 0:
            self.facts["total_steps"] = steps
        if isinstance(version, str):
            self.facts["transformers_version"] = version
        return True

    def _record_of(self, group: Group) -> Record | None:
        return record(group)
