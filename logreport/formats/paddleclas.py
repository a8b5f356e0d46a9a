"""PaddleClas training and evaluation logs (static 1.x, dygraph 2.0/2.1, engine 2.2 → PaddleX 3).

As printed by PaddleClas (ppcls/engine, tools/program.py in 1.x). Engine lines: the step is
(epoch - 1) × iterations per epoch + iteration (both as printed); `[Train][Epoch e/E][Avg]` is
a training record at the epoch's last step, `[Eval][Epoch e][Avg]` an evaluation at that step.
Before the engine (≤ 2.1) the log prints only the step within the epoch and no iterations per
epoch: those records have an epoch and no step. Per-batch eval progress (`[Eval][Epoch e][Iter:
i/N]`, `valid step:`) is not an evaluation; `END valid` and `[Avg]` are. `[best metric: x]`
becomes the fact `best_metric`.
"""
from __future__ import annotations

import re

from ..events import CHECKPOINT, EVAL, FINISHED, TRAIN, Info, Marker, Record
from . import Descriptor
from .common import (
    BRACKET_DATE,
    DASH_DATE,
    LEVEL,
    NUM,
    TIMEDELTA,
    LineParser,
    at,
    cut_short,
    duration,
    sniffer,
)

NAME = "paddleclas"
TITLE = "PaddleClas (tools/train.py, tools/eval.py console output or train.log)"
DESCRIPTOR = Descriptor(
    tool="PaddleClas",
    main_eval=("top1", "recall1"),  # classification, then retrieval
    main_loss=("loss",),
    throughput=("ips",),
    hidden=("batch_cost_sum",),
    epoch_labels=True,                 # [Epoch 2/300] is epoch 2 in progress
)

_PREFIX = re.compile(BRACKET_DATE + "(?:root|ppcls) " + LEVEL)
_PREFIX_OLD = re.compile(DASH_DATE + " " + LEVEL)
_TRAIN = re.compile(r"(?:^|\[Train\])\[Epoch (\d+)/(\d+)\]\[Iter: (\d+)/(\d+)\](.*)$")
_AVG = re.compile(r"^\[(Train|Eval)\]\[Epoch (\d+)(?:/(\d+))?\]\[Avg\](.*)$")
_EVAL_ITER = re.compile(r"^\[Eval\]\[Epoch \d+\]\[Iter: \d+/\d+\]")
_BEST = re.compile(r"^\[Eval\]\[Epoch \d+\]\[best metric( ema)?: (" + NUM + r")\]\s*$")
_TAIL = re.compile(r", ips: (" + NUM + r") (?:images/sec|samples/s)(?:, eta: (" + TIMEDELTA + ")"
                   r"(?:, max_mem_reserved: (" + NUM + r") MB, max_mem_allocated: (" + NUM + r") MB)?)?"
                   r"[`'\"]?\s*$")      # (engines derived from PaddleClas's may print no eta)
# a part of a training line cut short (an excerpt's end) that a `, ` follows, whole
_CUT_PART = re.compile(r"^(?:(?:lr\([A-Za-z]\w*\)|[A-Za-z_][\w.]*): *" + NUM
                       + r"(?:s| images/sec| samples/s| MB)?|eta: " + TIMEDELTA + ")$")
_TAIL_EVAL = re.compile(r", ips: " + NUM + r" (?:images/sec|samples/s)\s*$")
_MARK = re.compile(r"\[Epoch \d+(?:/\d+)?\]\[(?:Iter: \d+/\d+\]|Avg\]|best metric)")
_PAIR = re.compile(r"(lr\([A-Za-z]\w*\)|[A-Za-z_][\w.]*): *(" + NUM + r")s?(?=[ ,`]|$)")
_ETA = re.compile("eta: (" + TIMEDELTA + ")")
_OLD = re.compile(r"^(?:(END) )?(?:epoch:\s*(\d+)\s*,?\s*)?(train|valid)(?: step:\s*(\d+)\s*,?)?\s+(.*)$")
_OLD_END = re.compile(r"(?:elapse: " + NUM + r"(?:s| reader : " + NUM + r"s)|images/sec\.?"
                      r"|eta: \d+:\d{2}:\d{2})\s*$")      # (`reader : `: the static graph, Oct 2020)

SAMPLES = [
    ("[2022/08/05 01:29:06] ppcls INFO: [Train][Epoch 3/360][Iter: 0/2503]lr(LinearWarmup): "
     "0.32006392, top1: 0.22070, top5: 0.44531, CELoss: 4.46140, loss: 4.46140, "
     "batch_cost: 1.15203s, reader_cost: 0.85557, ips: 444.43222 samples/s, "
     "eta: 11 days, 22:45:05",
     [Info({"total_epochs": 360, "steps_per_epoch": 2503, "total_steps": 901080,
            "lr_scheduler": "LinearWarmup"}, line=1),
      Record(TRAIN, {"learning_rate": 0.32006392, "top1": 0.2207, "top5": 0.44531,
                     "CELoss": 4.4614, "loss": 4.4614, "batch_cost": 1.15203,
                     "reader_cost": 0.85557, "ips": 444.43222, "eta_seconds": 1032305.0},
             step=5006, epoch=3, time=at("2022-08-05 01:29:06"), line=1)]),
    ("2020-07-27 17:35:21 INFO: epoch:4   train step:170  loss:  0.1664 top1: 0.9688 "
     "top5: 1.0000 lr: 2.299093 elapse: 0.881s",
     [Info({"step_note": "PaddleClas before 2.2 prints no global step: records have none"}, line=1),
      Record(TRAIN, {"loss": 0.1664, "top1": 0.9688, "top5": 1.0, "learning_rate": 2.299093,
                     "elapse": 0.881}, epoch=4, time=at("2020-07-27 17:35:21"), line=1)]),
    ("2020-10-11 12:12:00 INFO: epoch:0   train step:310  loss: 6.88331 top1: 0.00000 "
     "top5: 0.03125 lr: 0.100000 elapse: 0.1418407 reader : 0.0020440s",     # (PaddleClas PR 369)
     [Info({"step_note": "PaddleClas before 2.2 prints no global step: records have none"}, line=1),
      Record(TRAIN, {"loss": 6.88331, "top1": 0.0, "top5": 0.03125, "learning_rate": 0.1,
                     "elapse": 0.1418407, "reader": 0.002044}, epoch=0,
             time=at("2020-10-11 12:12:00"), line=1)]),
    ("2020-12-30 06:13:33 INFO: epoch:0   train step:10   top1: 0.0000 top5: 0.0312 "
     "loss: 11.5920 lr: 0.100000, batch_cost: 0.08779 s, reader_cost: 0.00010 s, "
     "ips: 121.41242 images/sec.\n"
     "2020-12-30 06:13:38 INFO: END epoch:0   train top1: 0.0071 top5: 0.0373 loss:  9.4002  "
     "batch_cost: 0.26346 s, reader_cost: 0.00012 s, batch_cost_sum: 6.84987 s, "
     "ips: 121.46222 images/sec.\n"
     "2020-12-30 06:13:41 INFO: END valid top1: 0.0127 top5: 0.0569 loss: 8773.9191  "
     "batch_cost: 0.09155 s, reader_cost: 0.00009 s, batch_cost_sum: 2.47194 s, "
     "ips: 305.83228 images/sec.",
     [Info({"step_note": "PaddleClas before 2.2 prints no global step: records have none"}, line=1),
      Record(TRAIN, {"top1": 0.0, "top5": 0.0312, "loss": 11.592, "learning_rate": 0.1,
                     "batch_cost": 0.08779, "reader_cost": 0.0001, "ips": 121.41242},
             epoch=0, time=at("2020-12-30 06:13:33"), line=1),
      Record(TRAIN, {"top1": 0.0071, "top5": 0.0373, "loss": 9.4002, "batch_cost": 0.26346,
                     "reader_cost": 0.00012, "batch_cost_sum": 6.84987, "ips": 121.46222},
             epoch=0, time=at("2020-12-30 06:13:38"), line=2),
      Record(EVAL, {"top1": 0.0127, "top5": 0.0569, "loss": 8773.9191, "batch_cost": 0.09155,
                    "reader_cost": 9e-05, "batch_cost_sum": 2.47194, "ips": 305.83228},
             epoch=0, time=at("2020-12-30 06:13:41"), line=3)]),
    ("2021-01-31 20:30:07 INFO: epoch:0  , valid step:50  , top1: 0.75000, top5: 0.92188, "
     "loss: 0.97458, lr: 0.000000, batch_cost: 0.69290 s, reader_cost: 0.59956 s, "
     "ips: 92.36500 images/sec.",
     []),
    ("[2021/07/08 19:07:16] root INFO: [Train][Epoch 1/120][Iter: 90/1177]lr: 0.10000, "
     "CELoss: nan, loss: nan, top1: 0.06868, top5: 0.16209, batch_cost: 0.83230s, "
     "reader_cost: 0.00177, ips: 4.80596 images/sec, eta: 1 day, 8:37:59",
     [Info({"total_epochs": 120, "steps_per_epoch": 1177, "total_steps": 141240}, line=1),
      Record(TRAIN, {"learning_rate": 0.1, "CELoss": float("nan"), "loss": float("nan"), "top1": 0.06868,
                     "top5": 0.16209, "batch_cost": 0.8323, "reader_cost": 0.00177, "ips": 4.80596,
                     "eta_seconds": 117479.0}, step=90, epoch=1, time=at("2021-07-08 19:07:16"), line=1)]),
    ("[2023/09/13 09:33:10] ppcls INFO: [Train][Epoch 56/100][Avg]top1: 0.00000, top2: 0.00000, "
     "CELoss: nan, loss: nan",
     [Info({"total_epochs": 100}, line=1),
      Record(TRAIN, {"top1": 0.0, "top2": 0.0, "CELoss": float("nan"), "loss": float("nan")},
             epoch=56, time=at("2023-09-13 09:33:10"), line=1)]),
    ("[2021/08/13 02:41:44] root INFO: [Eval][Epoch 20][Iter: 10/32]CELoss: 0.03210, "
     "loss: 0.03210, top1: 0.98438, top5: 1.00000, batch_cost: 0.28588s, reader_cost: 0.06187, "
     "ips: 223.86959 images/sec",
     []),
    ("[2022/08/05 01:28:59] ppcls INFO: [Eval][Epoch 2][Avg]CELoss: 3.78812, loss: 3.78812, "
     "top1: 0.23302, top5: 0.47420\n"
     "[2022/08/05 01:28:59] ppcls INFO: [Eval][Epoch 2][best metric: 0.23301999270915985]",
     [Record(EVAL, {"CELoss": 3.78812, "loss": 3.78812, "top1": 0.23302, "top5": 0.4742},
             epoch=2, time=at("2022-08-05 01:28:59"), line=1),
      Info({"best_metric": 0.23301999270915985}, line=2)]),
    ("[2022/08/29 22:13:34] ppcls INFO: [Eval][Epoch 2][Avg]recall1: 0.05172, recall5: 0.20690, "
     "mAP: nan",
     [Record(EVAL, {"recall1": 0.05172, "recall5": 0.2069, "mAP": float("nan")}, epoch=2,
             time=at("2022-08-29 22:13:34"), line=1)]),
    ("[2024/07/31 20:24:32] ppcls INFO: [Train][Epoch 24/120][Iter: 0/304]lr(PiecewiseDecay): "
     "0.00100000, top1: 1.00000, CELoss: 0.01757, loss: 0.01757, batch_cost: 0.61280s, "
     "reader_cost: 0.12493, ips: 26.10981 samples/s, eta: 5:01:10",
     [Info({"total_epochs": 120, "steps_per_epoch": 304, "total_steps": 36480,
            "lr_scheduler": "PiecewiseDecay"}, line=1),
      Record(TRAIN, {"learning_rate": 0.001, "top1": 1.0, "CELoss": 0.01757, "loss": 0.01757,
                     "batch_cost": 0.6128, "reader_cost": 0.12493, "ips": 26.10981,
                     "eta_seconds": 18070.0}, step=6992, epoch=24, time=at("2024-07-31 20:24:32"),
             line=1)]),
    ("[2023/09/13 09:33:11] ppcls WARNING: The number of negative samples is 0, please add "
     "negative samples.",
     []),
    ("[2022/08/05 01:28:59] ppcls INFO: Already save model in ./output/PPLCNet_x1_0/best_model",
     [Marker(CHECKPOINT, "./output/PPLCNet_x1_0/best_model", line=1,
             time=at("2022-08-05 01:28:59"))]),
]


class Parser(LineParser):
    """Stateful: evaluations and epoch averages take the step of their epoch's end."""

    PREFIXES = (_PREFIX, _PREFIX_OLD)

    def __init__(self):
        super().__init__()
        self.values_cut = 0                 # training lines cut short: their values kept

    def train_line(self, msg: str) -> bool | None:
        m = _TRAIN.match(msg) if msg.startswith(("[Train]", "[Epoch ")) else None
        if m is None:
            return None
        if _TAIL.search(m.group(5)):
            return True
        return False if cut_short(m.group(5), _CUT_PART) is not None else None

    def message(self, msg: str, number: int, out: list) -> bool:
        if msg.startswith(("[Train]", "[Epoch ")):
            return self._engine_train(msg, number, out)
        if msg.startswith("[Eval]"):
            return self._engine_eval(msg, number, out)
        if msg.startswith("Already save model in "):
            out.append(self.marker(CHECKPOINT, msg[len("Already save model in "):].strip(), number))
            return True
        if "step:" in msg or msg.startswith("END "):
            return self._old(msg, number, out)
        return True

    def bare(self, text: str, number: int, out: list) -> bool:
        """A training line whose prefix was cut off in a paste (`[Epoch 92/120][Iter: 0/149]…`)."""
        start = text.find("[Epoch ")
        return start >= 0 and self._engine_train(text[start:], number, out)

    def _end_step(self, epoch: int) -> int | None:
        """The global step at the end of an epoch, if the iterations per epoch are known."""
        per_epoch = self.facts.get("steps_per_epoch")
        return epoch * per_epoch - 1 if per_epoch else None

    def _engine_train(self, msg: str, number: int, out: list) -> bool:
        m = _TRAIN.match(msg)
        if m is None:
            return self._avg(msg, number, out)
        epoch, epochs, it, per_epoch = (int(g) for g in m.groups()[:4])
        tail = _TAIL.search(m.group(5))
        body = m.group(5)[:tail.start()] if tail else cut_short(m.group(5), _CUT_PART)
        if body is None:
            return False
        if tail is None and self.hold(msg):         # (its rest may be on the next line)
            return True
        metrics, scheduler = _pairs(body)
        if not (metrics or tail):
            return False                            # (cut in its first value: none whole)
        facts = {"total_epochs": epochs, "steps_per_epoch": per_epoch, "total_steps": epochs * per_epoch}
        if tail:
            metrics["ips"] = float(tail.group(1))
            eta = tail.group(2)
        else:                                       # cut short: its values before the cut
            self.values_cut += 1
            facts["values_cut"] = self.values_cut
            whole_eta = _ETA.search(body)
            eta = whole_eta and whole_eta.group(1)
        if eta:
            metrics["eta_seconds"] = duration(eta)
        if tail and tail.group(3):
            metrics["max_mem_reserved"] = float(tail.group(3))
            metrics["max_mem_allocated"] = float(tail.group(4))
        if scheduler:
            facts["lr_scheduler"] = scheduler
        self.fact(out, number, **facts)
        self.epoch = epoch
        self.last_step = (epoch - 1) * per_epoch + it
        out.append(Record(TRAIN, metrics, step=self.last_step, epoch=epoch, time=self.time,
                          line=number))
        return True

    def _avg(self, msg: str, number: int, out: list) -> bool:
        """[Train]/[Eval][Epoch e(/E)][Avg]: the epoch's averages, at the epoch's last step."""
        m = _AVG.match(msg)
        if m is None:
            return False
        phase, epoch, epochs = m.group(1), int(m.group(2)), m.group(3)
        metrics, _ = _pairs(m.group(4))
        if not metrics:
            return False
        step = self._end_step(epoch)
        if phase == "Train":
            if epochs:
                self.fact(out, number, total_epochs=int(epochs))
            self.epoch = epoch
            if step is not None:
                self.last_step = step
            out.append(Record(TRAIN, metrics, step=step, epoch=epoch, time=self.time, line=number))
            if epochs and epoch == int(epochs):
                out.append(self.marker(FINISHED, f"last epoch {epoch}/{epochs} done", number))
        else:
            out.append(Record(EVAL, metrics, step=step if step is not None else self.last_step,
                              epoch=epoch, time=self.time, line=number))
        return True

    def _engine_eval(self, msg: str, number: int, out: list) -> bool:
        if _EVAL_ITER.match(msg):                   # progress within an evaluation
            return _TAIL_EVAL.search(msg) is not None
        best = _BEST.match(msg)
        if best:
            self.fact(out, number, **{"best_metric_ema" if best.group(1) else "best_metric":
                                      float(best.group(2))})
            return True
        return self._avg(msg, number, out)

    def _old(self, msg: str, number: int, out: list) -> bool:
        """Before the engine: `epoch:4   train step:170  …`, `END epoch:0 train …`, `END valid …`."""
        m = _OLD.match(msg)
        if m is None or not _OLD_END.search(msg):
            return False
        end, epoch, mode, _, body = m.groups()
        if epoch is not None:
            self.epoch = int(epoch)
        if mode == "valid" and not end:
            return True                             # progress within an evaluation
        metrics, _ = _pairs(body.replace(" reader : ", " reader: "))
        if not metrics:
            return False
        eta = _ETA.search(body)
        if eta:
            metrics["eta_seconds"] = duration(eta.group(1))
        if "step_note" not in self.facts:
            self.fact(out, number, step_note="PaddleClas before 2.2 prints no global step: "
                                             "records have none")
        out.append(Record(TRAIN if mode == "train" else EVAL, metrics, epoch=self.epoch,
                          time=self.time, line=number))
        return True



def _pairs(body: str) -> tuple[dict[str, float], str | None]:
    """The `key: value` pairs of a line's body, lr first renamed; and the lr's scheduler class."""
    metrics: dict[str, float] = {}
    scheduler = None
    for key, value in _PAIR.findall(body):
        # the first lr is learning_rate; a second optimizer's lr keeps its printed key
        if (key == "lr" or key.startswith("lr(")) and "learning_rate" not in metrics:
            scheduler = key[3:-1] or None
            key = "learning_rate"
        metrics[key] = float(value)
    return metrics, scheduler


@sniffer
def sniff(text: str) -> float:
    """What only PaddleClas prints: its [Train]/[Eval] lines and its pre-engine lines."""
    if "[Epoch " in text and _MARK.search(text):
        return 5
    if ("step:" in text or "END " in text) and ("train " in text or "valid " in text):
        m = _PREFIX_OLD.search(text)
        if m and _OLD.match(text[m.end():]):
            return 5
    if "] ppcls " in text and _PREFIX.search(text):
        return 1
    return 0
