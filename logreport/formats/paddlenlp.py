"""PaddleNLP / PaddleFormers Trainer logs: the `key: value, …` logger lines hf_trainer does not read.

As printed by PaddleNLP (paddlenlp/trainer/trainer.py, trainer_callback.py, utils/log.py). A
training record's step is its `global_step`, its epoch `epoch` or `progress_or_epoch`; an eval
record (keys `eval_*`) takes the step of the training record before it. Also read: the first
Trainer's Hugging Face-style dicts (they carry `'global_step'`), records hand-wrapped over
several lines, the `***** train metrics *****` block (final metrics), and the UIE fine-tuning
script's own `global step N, …`, `valid step N, …` and `Evaluation precision: …` lines.
"""
from __future__ import annotations

import re

from ..events import CHECKPOINT, EVAL, FINAL, NEW_RUN, TRAIN, Info, Marker, Record
from . import Descriptor
from .common import DASH_DATE, NUM, LineParser, at, sniffer
from .hf_values import argument, parse_dict, restated
from .hf_values import number as row_value

NAME = "paddlenlp"
TITLE = "PaddleNLP / PaddleFormers Trainer console output (key: value records)"
DESCRIPTOR = Descriptor(
    tool="PaddleNLP",
    main_eval=("eval_accuracy", "eval_micro_f1", "eval_f1", "F1", "eval_loss"),
    main_loss=("loss",),
    throughput=("interval_samples_per_second", "global_samples_per_second", "speed"),
    # identifiers and counters PaddleFormers logs beside the metrics: kept, never charted
    hidden=("timestamp", "data_id", "src_id", "data_type", "tokens_trained_current_step", "batch"),
)

_PREFIX = re.compile(r"(?:\[" + DASH_DATE + r",\d{3}\] )?"
                     r"\[ *(?:DEBUG|INFO|TRAIN|EVAL|WARNING|ERROR|CRITICAL)\] -(?: |$)")
_PAIR = re.compile(r"^([A-Za-z_][\w./@-]*): (\S+)$")
_EPOCH_KEYS = ("epoch", "progress_or_epoch")
_GIB = ("current_memory_allocated", "current_memory_reserved", "max_memory_allocated",
        "max_memory_reserved")
_BLOCK = re.compile(r"^\*\*\*\*\* (\w+) metrics \*\*\*\*\*$")
# a block's header after tqdm's frames on its line
_BLOCK_AFTER_BAR = re.compile(r"(?:it/s|s/it)\]\s*(\*\*\*\*\* \w+ metrics \*\*\*\*\*)$")
_ROW = re.compile(r"^  (\S+)\s*= +(\S.*)$")
_FACT = re.compile(r"^\s*(Num examples|Num Epochs|Total train batch size|Gradient Accumulation steps"
                   r"|Total optimization steps)(?: \(.*\))? = (\d{1,3}(?:,\d{3})+|\d+)(?:\.0)?$")
_FACT_NAMES = {"Num examples": "num_examples", "Num Epochs": "num_train_epochs",
               "Total train batch size": "total_train_batch_size",
               "Gradient Accumulation steps": "gradient_accumulation_steps",
               "Total optimization steps": "total_steps"}
# a task script's `global step N, key: value [unit], ...` (UIE: epoch, loss, speed step/s;
# ERNIE pretraining: loss, lm_loss, speed steps/s, ips seqs/s, learning rate, loss_scaling;
# PaddleFleetX GPT: batch, avg_reader_cost / avg_batch_cost in sec, ips tokens/s), and its
# evaluation's `valid step N, batch: …` / `test step N, …` (the task name, the global step)
_SCRIPT_TRAIN = re.compile(r"^(global|valid|test) step (\d+)((?:, [A-Za-z_][\w ]*: " + NUM
                           + r"(?: [A-Za-z]+/s| sec)?)+)\s*$")
_SCRIPT_PAIR = re.compile(r", ([A-Za-z_][\w ]*): (" + NUM + ")")
# a record the Trainer writes through its progress bar (`disable_tqdm: False`): no prefix
_BARE_RECORD = ("loss: ", "eval_", "train_runtime: ")
_UIE_EVAL = re.compile(r"^Evaluation precision: (" + NUM + r"), recall: (" + NUM + r"), F1: ("
                       + NUM + r")\s*$")

SAMPLES = [
    ("[2022-08-31 16:19:16,008] [    INFO] - loss: 3.25806541, learning_rate: 2.999206349206349e-05, "
     "global_step: 10, interval_runtime: 2.2591, interval_samples_per_second: 3.541, "
     "interval_steps_per_second: 4.427, epoch: 0.0265",
     [Record(TRAIN, {"loss": 3.25806541, "learning_rate": 2.999206349206349e-05,
                     "interval_runtime": 2.2591, "interval_samples_per_second": 3.541,
                     "interval_steps_per_second": 4.427}, step=10, epoch=0.0265,
             time=at("2022-08-31 16:19:16"), line=1)]),
    ("{'loss': 0.1856, 'learning_rate': 4.5e-05, 'global_step': 150, 'epoch': 2.0}".ljust(173),
     [Record(TRAIN, {"loss": 0.1856, "learning_rate": 4.5e-05}, step=150, epoch=2.0, line=1)]),
    ("# [2024-03-03 18:06:33,568] [    INFO] - loss: 1.08327329, learning_rate: 4e-08, global_step: 1, "
     "interval_runtime: 4.8704, interval_samples_per_second: 6.570357298475159, "
     "interval_steps_per_second: 0.2053236655773487, progress_or_epoch: 0.0008",
     [Record(TRAIN, {"loss": 1.08327329, "learning_rate": 4e-08, "interval_runtime": 4.8704,
                     "interval_samples_per_second": 6.570357298475159,
                     "interval_steps_per_second": 0.2053236655773487}, step=1, epoch=0.0008,
             time=at("2024-03-03 18:06:33"), line=1)]),
    ("[    INFO] - loss: 12.0635252, learning_rate: 2e-06, global_step: 1, "
     "current_memory_allocated: 7.549170255661011, current_memory_reserved: 7.753237724304199, "
     "max_memory_allocated: 7.549170255661011, max_memory_reserved: 7.753237724304199, "
     "interval_runtime: 1.1518, interval_samples_per_second: 0.8682, "
     "interval_tokens_per_second_per_device: 889.0448, interval_hardware_tflops_per_device: 2.77, "
     "interval_steps_per_second: 0.8682, progress_or_epoch: 0.0",
     [Info({"units": dict.fromkeys(_GIB, "GiB")}, line=1),
      Record(TRAIN, {"loss": 12.0635252, "learning_rate": 2e-06,
                     "current_memory_allocated": 7.549170255661011,
                     "current_memory_reserved": 7.753237724304199,
                     "max_memory_allocated": 7.549170255661011,
                     "max_memory_reserved": 7.753237724304199, "interval_runtime": 1.1518,
                     "interval_samples_per_second": 0.8682,
                     "interval_tokens_per_second_per_device": 889.0448,
                     "interval_hardware_tflops_per_device": 2.77,
                     "interval_steps_per_second": 0.8682}, step=1, epoch=0.0, line=1)]),
    ("[2026-01-19 17:43:11,367] [    INFO] - loss: 22.995561599731445, loss_cur_dp: 22.995561599731445, "
     "learning_rate: 1.666667e-06, global_step: 1, mem_allocated_gb: 13.636426, "
     "max_mem_allocated_gb: 19.670876, mem_reserved_gb: 33.954417, max_mem_reserved_gb: 45.060626, "
     "loss_scale: 32770.000000, global_runtime: 104.895400, global_samples_per_second: 0.610100, "
     "global_steps_per_second: 0.009500, tokens_trained_current_step: 524288, "
     "timestamp: 1768815791366, TFLOPS_per_sec_per_card: 23.853000, "
     "tokens_per_sec_per_card: 4980.700000, tokens_per_sec_per_card_average: 4980.700000, "
     "progress_or_epoch: 0.007700, data_id: 7, src_id: 0, data_type: 0",
     [Record(TRAIN, {"loss": 22.995561599731445, "loss_cur_dp": 22.995561599731445,
                     "learning_rate": 1.666667e-06, "mem_allocated_gb": 13.636426,
                     "max_mem_allocated_gb": 19.670876, "mem_reserved_gb": 33.954417,
                     "max_mem_reserved_gb": 45.060626, "loss_scale": 32770.0,
                     "global_runtime": 104.8954, "global_samples_per_second": 0.6101,
                     "global_steps_per_second": 0.0095, "tokens_trained_current_step": 524288.0,
                     "timestamp": 1768815791366.0, "TFLOPS_per_sec_per_card": 23.853,
                     "tokens_per_sec_per_card": 4980.7, "tokens_per_sec_per_card_average": 4980.7,
                     "data_id": 7.0, "src_id": 0.0, "data_type": 0.0}, step=1, epoch=0.0077,
             time=at("2026-01-19 17:43:11"), line=1)]),
    ("[2022-08-31 16:19:29,953] [    INFO] - loss: 2.35693874, learning_rate: 2.992063492063492e-05, "
     "global_step: 100, interval_runtime: 1.5483, interval_samples_per_second: 5.167, "
     "interval_steps_per_second: 6.459, epoch: 0.2646\n"
     "[2022-08-31 16:19:29,954] [    INFO] - ***** Running Evaluation *****\n"
     "[2022-08-31 16:19:29,954] [    INFO] -   Num examples = 1373\n"
     "[2022-08-31 16:19:42,031] [    INFO] - eval_loss: 2.104221820831299, "
     "eval_accuracy: 0.4996358339402768, eval_runtime: 12.0756, eval_samples_per_second: 113.701, "
     "eval_steps_per_second: 3.561, epoch: 0.2646\n"
     "[2022-08-31 16:19:42,031] [    INFO] - Saving model checkpoint to ./checkpoints/checkpoint-100",
     [Record(TRAIN, {"loss": 2.35693874, "learning_rate": 2.992063492063492e-05,
                     "interval_runtime": 1.5483, "interval_samples_per_second": 5.167,
                     "interval_steps_per_second": 6.459}, step=100, epoch=0.2646,
             time=at("2022-08-31 16:19:29"), line=1),
      Record(EVAL, {"eval_loss": 2.104221820831299, "eval_accuracy": 0.4996358339402768,
                    "eval_runtime": 12.0756, "eval_samples_per_second": 113.701,
                    "eval_steps_per_second": 3.561}, step=100, epoch=0.2646,
             time=at("2022-08-31 16:19:42"), line=4),
      Marker(CHECKPOINT, "./checkpoints/checkpoint-100", line=5, step=100,
             time=at("2022-08-31 16:19:42"))]),
    ("[2022-08-31 16:19:13,747] [    INFO] -   Num examples = 3024\n"
     "[2022-08-31 16:19:13,748] [    INFO] -   Total optimization steps = 37800.0",
     [Info({"num_examples": 3024}, line=1), Info({"total_steps": 37800}, line=2)]),
    ("[    INFO] - ***** train metrics *****\n"
     "[    INFO] -   progress_or_epoch        =     0.0868\n"
     "[    INFO] -   train_loss               =     5.4334\n"
     "[    INFO] -   train_runtime            = 0:35:59.57",
     [Record(FINAL, {"train_loss": 5.4334, "train_runtime": 2159.57}, epoch=0.0868, line=1)]),
    ("[2022-12-12 14:42:38,317] [    INFO] - global step 220, epoch: 28, loss: 0.00503, speed: 1.89 step/s\n"
     "[2022-12-12 14:43:21,570] [    INFO] - Evaluation precision: 0.00000, recall: 0.00000, F1: 0.00000",
     [Record(TRAIN, {"loss": 0.00503, "speed": 1.89}, step=220, epoch=28,
             time=at("2022-12-12 14:42:38"), line=1),
      Record(EVAL, {"precision": 0.0, "recall": 0.0, "F1": 0.0}, step=220, epoch=28,
             time=at("2022-12-12 14:43:21"), line=2)]),
    ("[2022-11-23 09:46:31,176] [    INFO] - valid step 2000, batch: 10, loss: 7.448310, "
     "lm_loss: 6.745527, sop_loss: 0.702782, ips: 135 seqs/s",
     [Record(EVAL, {"batch": 10.0, "loss": 7.44831, "lm_loss": 6.745527, "sop_loss": 0.702782,
                    "ips": 135.0}, step=2000, time=at("2022-11-23 09:46:31"), line=1)]),
]


class Parser(LineParser):
    """Stateful: eval records take the last training step; wrapped records and metric blocks
    span lines."""

    PREFIXES = (_PREFIX,)

    def __init__(self):
        super().__init__()
        self.partial: tuple[int, str, float | None] | None = None   # a hand-wrapped record
        self.block: tuple | None = None         # (line, time, {name: value}) of a metrics block
        self.in_eval = False
        self.emitted: dict = {}                 # phase -> the values of its last record
        self.values_cut = 0                     # records whose last value a kill cut
        self.held_facts: dict = {}              # a banner's, until its process trains

    def new_process(self, number: int, out: list) -> None:
        """A process starts (see LineParser), also after one that only evaluated (a script's
        test of one task, then the next task's)."""
        self.apart = self.apart or bool(self.emitted)
        super().new_process(number, out)
        self.in_eval, self.emitted, self.held_facts = False, {}, {}

    def message(self, msg: str, number: int, out: list) -> bool:
        self._end_partial(out)
        if self._block_row(msg, out):
            return True
        text = msg.strip()
        if text.endswith(",") and _PAIR.match(text.split(",")[0].strip()):
            self.partial = (number, text, self.time)
            return True
        if self._record(text, number, out):
            return True
        if "global_step: " in text or text.startswith(("loss: ", "eval_")):
            return False                            # a record with a value that is no number
        return self._other(text, number, out)

    def bare(self, text: str, number: int, out: list) -> bool:
        if self.partial is not None and text[:1].isspace():
            line, sofar, time = self.partial
            self.partial = (line, f"{sofar} {text.strip()}", time)
            if not text.rstrip().endswith(","):
                self._end_partial(out)
            return True
        self._end_partial(out)
        if self._block_row(text, None):     # (a block whose header came after a bar's frames)
            return True
        stripped = text.strip()
        if stripped.startswith("{'") and "'global_step': " in stripped:
            values = parse_dict(stripped)
            return self._emit(values, number, out) if values else False
        if stripped.startswith(_BARE_RECORD) and ": " in stripped:    # tqdm.write's: the bar on
            return self._record(stripped, number, out)
        if stripped.startswith(("global step ", "eval loss: ")):     # an example script's own,
            return self._other(stripped, number, out)                # printed
        header = _BLOCK_AFTER_BAR.search(stripped) if stripped.endswith("*****") else None
        return self._other(header.group(1), number, out) if header else False

    def end(self, out: list) -> None:
        self._end_partial(out)
        self._end_block(out)

    def _end_partial(self, out: list) -> None:
        """A hand-wrapped record ends: parse it whole (at its first line, with its time)."""
        if self.partial is None:
            return
        (line, text, time), self.partial = self.partial, None
        self._record(text.rstrip(","), line, out, time)

    def _record(self, text: str, number: int, out: list, time: float | None = None) -> bool:
        """A `key: value, …` record of numbers; False if the message is not one."""
        values, parts = {}, text.split(",")
        for i, part in enumerate(parts):
            m = _PAIR.match(part.strip())
            value = row_value(m.group(2)) if m else None
            if value is None and self.cut and values and i == len(parts) - 1:
                self.values_cut += 1            # a kill cut its last value: the rest kept
                self.fact(out, number, values_cut=self.values_cut)
                break
            if value is None:
                return False
            values[m.group(1)] = value
        return self._emit(values, number, out, time)

    def _emit(self, values: dict, number: int, out: list, time: float | None = None,
              block: bool = False) -> bool:
        """The record of a dict of logged values: train (global_step), eval or final; time: the
        record's when it was printed before the current line (default: the current time); a
        metrics `block` gives only what it adds to the record of its phase it restates."""
        epoch = next((values.pop(k) for k in _EPOCH_KEYS if k in values), None)
        step = values.pop("global_step", None)
        evaluation = any(k.startswith(("eval_", "test_", "predict_")) for k in values)
        if step is not None and not evaluation:
            self.last_step, self.epoch, phase = int(step), epoch, TRAIN
            self._trains(out, number)
            if any(k in values for k in _GIB) and "units" not in self.facts:
                self.fact(out, number, units=dict.fromkeys(_GIB, "GiB"))
        elif any(k.startswith("train_") for k in values):
            phase = FINAL
        elif evaluation:        # (a dict of an evaluation may state its step: ms-swift's)
            phase = EVAL
            if step is not None:
                self.last_step, self.epoch = int(step), epoch
        else:
            return False
        if block and self.emitted.get(phase) and restated(values, self.emitted[phase], block=True):
            values = {k: v for k, v in values.items() if k not in self.emitted[phase]}
            if not values:                  # a metrics block restating the record before it
                return True
        self.emitted[phase] = values
        step, estimated = (self.last_step, False) if phase != FINAL else (None, False)
        if phase == EVAL and step and self.epoch and epoch is not None and epoch != self.epoch:
            # evaluated between logging steps: the step its epoch names, at the training's rate
            step, estimated = round(epoch * step / self.epoch), True
        out.append(Record(phase, values, step=step, epoch=epoch, line=number, estimated=estimated,
                          time=self.time if time is None else time))
        return True

    def _other(self, text: str, number: int, out: list) -> bool:
        """Banners, facts, checkpoints and the UIE script's lines (any other message is known)."""
        block = _BLOCK.match(text)
        if block:
            self.block = (number, self.time, {})
        elif text in ("***** Running Evaluation *****", "***** Running Prediction *****"):
            self.in_eval = True
        elif text == "***** Running training *****":
            self.in_eval = False
            if self.last_step is not None:      # after records: another process, afresh
                out.append(self.marker(NEW_RUN, "new run", number))
                self.last_step = self.epoch = None
        elif text.endswith("Configuration Arguments"):      # a process's arguments dump
            self.new_process(number, out)
        elif text.startswith("metric_for_best_model"):
            if ranked := argument(text, "metric_for_best_model"):
                self.fact(out, number, metric_for_best_model=ranked)
        elif text.startswith("Saving model checkpoint to "):
            out.append(self.marker(CHECKPOINT, text[len("Saving model checkpoint to "):], number))
        elif text.startswith(("global step ", "valid step ", "test step ")):
            return self._script_train(text, number, out)
        elif text.startswith("eval loss: "):
            pairs = _SCRIPT_PAIR.findall(", " + text[len("eval "):])
            if not pairs:
                return False
            out.append(Record(EVAL, {k.replace(" ", "_"): float(v) for k, v in pairs},
                              step=self.last_step, epoch=self.epoch, time=self.time, line=number))
        elif text.startswith("Evaluation precision: "):
            m = _UIE_EVAL.match(text)
            if m is None:
                return False
            out.append(Record(EVAL, {"precision": float(m.group(1)), "recall": float(m.group(2)),
                                     "F1": float(m.group(3))}, step=self.last_step,
                              epoch=self.epoch, time=self.time, line=number))
        elif " = " in text and not self.in_eval:
            m = _FACT.match(text)
            if m:
                fact = {_FACT_NAMES[m.group(1)]: int(m.group(2).replace(",", ""))}
                if self.stepless:           # a process that has not trained: its banner's
                    self.held_facts.update(fact)        # facts are its own once it does
                else:
                    self.fact(out, number, **fact)
        return True

    def _script_train(self, text: str, number: int, out: list) -> bool:
        """A task script's training line, or its evaluation's at the global step it names (a
        test set's metrics `test_*`, apart from the validation set's)."""
        m = _SCRIPT_TRAIN.match(text)
        if m is None:
            return False
        prefix = "test_" if m.group(1) == "test" else ""
        metrics = {prefix + key.replace(" ", "_"): float(value)
                   for key, value in _SCRIPT_PAIR.findall(m.group(3))}
        if m.group(1) != "global":
            out.append(Record(EVAL, metrics, step=int(m.group(2)), epoch=self.epoch,
                              time=self.time, line=number))
            return True
        epoch = metrics.pop("epoch", None)
        self.last_step = int(m.group(2))
        self.epoch = int(epoch) if epoch is not None and epoch.is_integer() else epoch
        self._trains(out, number)
        out.append(Record(TRAIN, metrics, step=self.last_step, epoch=self.epoch, time=self.time,
                          line=number))
        return True

    def _block_row(self, text: str, out: list | None) -> bool:
        """Whether a line is a row of the metrics block open; a message that is none ends it
        (`out`: a bare line ends none)."""
        if self.block is None:
            return False
        row = _ROW.match(text)
        value = row_value(row.group(2)) if row else None
        if value is not None:
            self.block[2][row.group(1)] = value
            return True
        if out is not None:
            self._end_block(out)
        return False

    def _trains(self, out: list, number: int) -> None:
        """The process trains: the facts its banner stated are its own now."""
        if self.held_facts:
            self.fact(out, number, **self.held_facts)
            self.held_facts = {}

    def _end_block(self, out: list) -> None:
        """The end of a `***** <split> metrics *****` block: its rows are one record."""
        if self.block is not None:
            (line, time, values), self.block = self.block, None
            self._emit(values, line, out, time, block=True)


@sniffer
def sniff(text: str) -> float:
    """What only PaddleNLP prints: its logger's prefix, records with a global step."""
    if "{'" in text and "'global_step': " in text or text.startswith("loss: ") \
            and "global_step: " in text or text.startswith("global step ") \
            and ", batch: " in text and _SCRIPT_TRAIN.match(text):       # an example script's
        return 5
    m = _PREFIX.search(text) if "] - " in text else None
    if m is None:
        return 0
    return 5 if "global_step: " in text or text.startswith("global step ", m.end()) else 1
