"""PaddleOCR training and evaluation logs (1.x static graph, 2.0-2.4 `root`, 2.5+ / 3.x `ppocr`).

As printed by PaddleOCR (tools/program.py, ppocr/utils/logging.py). The step is the printed
cumulative `iter` / `global_step`; an evaluation takes the step of the training line before it.
Eval metrics keep the log's names (`hmean`, `precision`, `recall`, `acc`, `norm_edit_dis`,
`fps`); a `best metric` line (the best so far, printed after every eval) becomes facts
`best_<name>`, and the `metric in ckpt` block of tools/eval.py (what the checkpoint stored)
facts `ckpt_<name>`, not evaluations; its evaluation (`metric eval`) is another process's, in a
segment of its own (after training lines, or after another eval.py's), with no step or epoch.
"""
from __future__ import annotations

import re

from ..events import CHECKPOINT, EVAL, FINISHED, NEW_RUN, RESUME, TRAIN, Info, Marker, Record
from . import Descriptor
from .common import (
    BRACKET_DATE,
    DASH_DATE,
    LEVEL,
    NUM,
    SEP,
    TIMEDELTA,
    LineParser,
    at,
    cut_short,
    duration,
    parse_number,
    sniffer,
)

NAME = "paddleocr"
TITLE = "PaddleOCR (tools/train.py, tools/eval.py console output or train.log)"
DESCRIPTOR = Descriptor(
    tool="PaddleOCR",
    main_eval=("hmean", "acc"),  # text detection / KIE, then recognition / table
    main_loss=("loss", "total_loss"),  # total_loss: 1.x detection
    throughput=("ips",),
    hidden=("samples", "avg_samples"),  # samples per log window: bookkeeping
    ends_by_eta=True,                   # no end line (the best metric after the epoch loop ends it)
    epoch_labels=True,
)

_PREFIX = re.compile(BRACKET_DATE + "(?:root|ppocr) " + LEVEL)
_PREFIX_1X = re.compile(DASH_DATE + r",\d{3}-" + LEVEL)
_VALUE = NUM + "x*"                          # NaN prints as `nanxxx`
_TRAIN = re.compile(
    r"^epoch: \[(\d+)/(\d+)\], (?:iter|global_step): (\d+), (.*?), ((?:avg_)?reader_cost): (" + _VALUE
    + r") s, ((?:avg_)?batch_cost): (" + _VALUE + r") s, ((?:avg_)?samples): (" + _VALUE + r"), ips: ("
    + _VALUE + r")(?: samples/s)?(?:, eta: (" + TIMEDELTA + "))?"
    r"(?:, max_mem_reserved: (\d+) (MB|B),? max_mem_allocated: (\d+) (?:MB|B))?\s*$")
# a training line whose end another process's print overwrote (`avg_samplanms has been
# installed.`): its head, then `key: value` pairs each whole where `, ` follows it
_TRAIN_HEAD = re.compile(r"^epoch: \[(\d+)/(\d+)\], (?:iter|global_step): (\d+), ")
_PART = re.compile(r"^([A-Za-z_]\w*): (?:(" + _VALUE + r")(?: (?:s|samples/s|(MB|B)))?|(" + TIMEDELTA
                   + r"))$")
_TRAIN_1X = re.compile(r"^epoch: (\d+), iter: (\d+), (.*), time: (" + NUM + r")\s*$")
_STAT = re.compile(r"^'?([A-Za-z_][\w.]*)'?: '?(" + _VALUE + r")'?$")
_PAIR = re.compile(r"([A-Za-z_][\w.]*): ([^,]+)")
_SAVES = ("save model in ", "save best model is to ")
_CUR = ("cur metric, ", "cur metirc, ")          # PaddleOCR 2.0 printed "metirc"
_BEST = ("best metric, ", "best metirc, ")
_EVAL_EVERY = re.compile(r"after the (\d+)th iteration, an evaluation is run every (\d+) iterations")
_KEY_VALUE = re.compile(r"^(\w+):(" + NUM + r")\s*$")        # tools/eval.py: one per line
_THRESHOLD = re.compile(r"^thr " + NUM + r":\w+:")    # tools/eval.py: a result per threshold (FCE)
# 1.x: an evaluation during training, and the best so far (det: the metrics' dict; rec: acc)
_TEST_ITER = re.compile(r"^Test iter: (\d+), (?:metrics:\{(.*)\}|acc:(" + NUM + r")), best_(\w+):("
                        + NUM + r"), best_epoch:(\d+), best_batch_id:(\d+)")
_DICT_ITEM = re.compile(r"'(\w+)': (" + NUM + r")")

SAMPLES = [
    ("[2024/11/05 03:46:08] ppocr INFO: epoch: [3/5], global_step: 130, lr: 0.000500, "
     "loss: 0.956546, loss_shrink_maps: 0.475362, loss_threshold_maps: 0.390981, "
     "loss_binary_maps: 0.095230, loss_cbn: 0.000000, avg_reader_cost: 0.00055 s, "
     "avg_batch_cost: 0.42715 s, avg_samples: 16.0, ips: 37.45749 samples/s, eta: 0:01:01, "
     "max_mem_reserved: 12221 MB, max_mem_allocated: 10612 MB",
     [Info({"total_epochs": 5, "units": {"max_mem_reserved": "MB", "max_mem_allocated": "MB"}},
           line=1),
      Record(TRAIN, {"learning_rate": 0.0005, "loss": 0.956546, "loss_shrink_maps": 0.475362,
                     "loss_threshold_maps": 0.390981, "loss_binary_maps": 0.09523,
                     "loss_cbn": 0.0, "avg_reader_cost": 0.00055, "avg_batch_cost": 0.42715,
                     "avg_samples": 16.0, "ips": 37.45749, "eta_seconds": 61.0,
                     "max_mem_reserved": 12221.0, "max_mem_allocated": 10612.0},
             step=130, epoch=3, time=at("2024-11-05 03:46:08"), line=1)]),
    ("2021-05-14 11:36:51,758-INFO: epoch: 0, iter: 2, lr: 0.000001, 'loss': nan, 'acc': 0.0, "
     "time: 2.346",
     [Record(TRAIN, {"learning_rate": 1e-06, "loss": float("nan"), "acc": 0.0, "time": 2.346},
             step=2, epoch=0, time=at("2021-05-14 11:36:51"), line=1)]),
    ("2020-05-18 12:07:49,601-INFO: epoch: 156, iter: 4996, 'total_loss': 2.304114, "
     "'loss_threshold_maps': 0.762533, 'loss_shrink_maps': 1.291126, 'lr': 1e-04, "
     "'loss_binary_maps': 0.249221, time: 1.161",
     [Record(TRAIN, {"total_loss": 2.304114, "loss_threshold_maps": 0.762533,
                     "loss_shrink_maps": 1.291126, "learning_rate": 0.0001,
                     "loss_binary_maps": 0.249221, "time": 1.161},
             step=4996, epoch=156, time=at("2020-05-18 12:07:49"), line=1)]),
    ("[2021/03/20 11:54:28] root INFO: epoch: [4/10], iter: 29, lr: 0.000820, loss: 0.973238, "
     "acc: 0.531250, reader_cost: 0.00007 s, batch_cost: 0.04810 s, samples: 256, ips: 5322.24591",
     [Info({"total_epochs": 10}, line=1),
      Record(TRAIN, {"learning_rate": 0.00082, "loss": 0.973238, "acc": 0.53125,
                     "reader_cost": 7e-05, "batch_cost": 0.0481, "samples": 256.0,
                     "ips": 5322.24591}, step=29, epoch=4, time=at("2021-03-20 11:54:28"), line=1)]),
    ("[2022/06/23 20:30:54] ppocr INFO: epoch: [148/200], global_step: 2510, lr: 0.000056, "
     "acc: 0.767578, norm_edit_dis: 0.956831, loss: 1.898343, avg_reader_cost: 0.00951 s, "
     "avg_batch_cost: 0.36412 s, avg_samples: 512.0, ips: 1406.13581 samples/s, eta: 0:07:25",
     [Info({"total_epochs": 200}, line=1),
      Record(TRAIN, {"learning_rate": 5.6e-05, "acc": 0.767578, "norm_edit_dis": 0.956831,
                     "loss": 1.898343, "avg_reader_cost": 0.00951, "avg_batch_cost": 0.36412,
                     "avg_samples": 512.0, "ips": 1406.13581, "eta_seconds": 445.0},
             step=2510, epoch=148, time=at("2022-06-23 20:30:54"), line=1)]),
    ("[2023/10/06 13:26:28] ppocr INFO: epoch: [1/500], global_step: 360, lr: 0.000093, "
     "acc: 0.000000, norm_edit_dis: 0.000000, CTCLoss: nanxxx, SARLoss: nanxxx, loss: nanxxx, "
     "avg_reader_cost: 0.00016 s, avg_batch_cost: 0.54348 s, avg_samples: 128.0, "
     "ips: 235.52057 samples/s, eta: 3 days, 18:09:07",
     [Info({"total_epochs": 500}, line=1),
      Record(TRAIN, {"learning_rate": 9.3e-05, "acc": 0.0, "norm_edit_dis": 0.0,
                     "CTCLoss": float("nan"), "SARLoss": float("nan"), "loss": float("nan"),
                     "avg_reader_cost": 0.00016, "avg_batch_cost": 0.54348, "avg_samples": 128.0,
                     "ips": 235.52057, "eta_seconds": 324547.0},
             step=360, epoch=1, time=at("2023-10-06 13:26:28"), line=1)]),
    ("[2022/08/27 14:18:08] ppocr INFO: cur metric, precision: 0, recall: 0, hmean: 0, "
     "fps: 4.661542241707648",
     [Record(EVAL, {"precision": 0.0, "recall": 0.0, "hmean": 0.0, "fps": 4.661542241707648},
             time=at("2022-08-27 14:18:08"), line=1)]),
    ("[2022/08/27 14:18:25] ppocr INFO: save best model is to ./output/cro_vl_fr_re_models/best_accuracy",
     [Marker(CHECKPOINT, "./output/cro_vl_fr_re_models/best_accuracy", line=1,
             time=at("2022-08-27 14:18:25"))]),
    ("[2022/08/27 14:18:25] ppocr INFO: best metric, hmean: 0, precision: 0, recall: 0, "
     "fps: 4.661542241707648, best_epoch: 1",
     [Info({"best_hmean": 0.0, "best_precision": 0.0, "best_recall": 0.0,
            "best_fps": 4.661542241707648, "best_epoch": 1}, line=1)]),
    ("[2023/03/24 11:24:16] ppocr INFO: best metric, hmean: 0, is_float16: False, precision: 0.0, "
     "recall: 0.0, fps: 6.358296325689887, best_epoch: 45",
     [Info({"best_hmean": 0.0, "best_precision": 0.0, "best_recall": 0.0,
            "best_fps": 6.358296325689887, "best_epoch": 45}, line=1)]),
    ("[2025/09/24 12:21:24] ppocr INFO: save model in ./output/PP-OCRv5_mobile_det\\latest",
     [Marker(CHECKPOINT, "./output/PP-OCRv5_mobile_det\\latest", line=1,
             time=at("2025-09-24 12:21:24"))]),
    ("2020-08-14 16:22:17,661-INFO: Test iter: 92000, metrics:{'precision': 0.7173326276792802, "
     "'recall': 0.6175787123524855, 'hmean': 0.6637285147642132}, best_hmean:0.664705, "
     "best_epoch:23, best_batch_id:68000",
     [Record(EVAL, {"precision": 0.7173326276792802, "recall": 0.6175787123524855,
                    "hmean": 0.6637285147642132}, step=92000, time=at("2020-08-14 16:22:17"),
             line=1),
      Info({"best_hmean": 0.664705, "best_epoch": 23, "best_iter": 68000}, line=1)]),
    ("[2022/03/09 09:29:05] root INFO: metric in ckpt ***************\n"
     "[2022/03/09 09:29:05] root INFO: hmean:0.8520302821748106\n"
     "[2022/03/09 09:29:05] root INFO: best_epoch:24\n"
     "[2022/03/09 09:29:08] root INFO: metric eval ***************\n"
     "[2022/03/09 09:29:08] root INFO: precision:0.7710144927536232",
     [Info({"ckpt_hmean": 0.8520302821748106}, line=2), Info({"ckpt_best_epoch": 24}, line=3),
      Record(EVAL, {"precision": 0.7710144927536232}, time=at("2022-03-09 09:29:08"), line=5)]),
]


class Parser(LineParser):
    """Stateful: an evaluation takes the step and epoch of the training line before it."""

    PREFIXES = (_PREFIX, _PREFIX_1X)

    def __init__(self):
        super().__init__()
        self.block: str | None = None      # tools/eval.py: "ckpt" or "eval" key:value lines
        self.pending: Record | None = None
        self.evaluated = False              # tools/eval.py printed: training after it is anew
        self.eval_every: tuple[int, int] | None = None   # (after step, every) the run evaluates
        self.scored = False                 # a `cur metric` whose `best metric` is still due
        self.values_cut = 0                 # training lines cut in their last value

    def message(self, msg: str, number: int, out: list) -> bool:
        if self.block:
            kv = _KEY_VALUE.match(msg)
            if kv:
                self._block_value(kv.group(1), float(kv.group(2)), number, out)
                return True
            if self.block == "eval" and _THRESHOLD.match(msg):
                return True                 # (the overall result follows, one per line)
            self._flush(out)
        if msg.startswith("epoch: "):
            return self._train(msg, number, out)
        if msg.startswith(_CUR):
            self.scored = True
            return self._eval(msg[len(_CUR[0]):], number, out)
        if msg.startswith("Test iter: "):
            return self._test_iter(msg, number, out)
        if msg.startswith(_BEST):
            self._best(msg[len(_BEST[0]):], number, out)
            if not self.scored and self.last_step is not None:    # not an evaluation's: the
                out.append(self.marker(FINISHED, "best metric after the last epoch", number))
            self.scored = False                                   # one after the epoch loop
        elif msg.startswith(_SAVES):
            saved = next(prefix for prefix in _SAVES if msg.startswith(prefix))
            out.append(self.marker(CHECKPOINT, msg[len(saved):].strip(), number))
        elif msg.startswith("resume from "):
            out.append(self.marker(RESUME, msg[len("resume from "):].strip(), number))
        elif msg.startswith("During the training process, after the "):
            m = _EVAL_EVERY.search(msg)
            self.eval_every = (int(m.group(1)), int(m.group(2))) if m else None
        elif msg.startswith("metric in ckpt *"):
            self._evaluator(number, out)
            self.block = "ckpt"
        elif msg.startswith("metric eval *"):
            self._evaluator(number, out)
            self.block = "eval"
        return True

    def new_process(self, number: int, out: list) -> None:
        """A process starts (see LineParser), also after one that ran tools/eval.py: each
        eval.py launch is a segment of its own (its evaluation, of a checkpoint and a data set
        of its own, is compared with no other's)."""
        self.apart = self.apart or self.evaluated
        super().new_process(number, out)
        self.evaluated = False

    def _evaluator(self, number: int, out: list) -> None:
        """tools/eval.py's output: a process of its own, evaluating a checkpoint. After
        training lines it begins a new segment: its evaluation has no step or epoch of them;
        and a training after it is another process, in a segment of its own."""
        if self.last_step is not None:
            out.append(self.marker(NEW_RUN, "tools/eval.py", number))
            self.last_step = self.epoch = None
        self.evaluated = True

    def end(self, out: list) -> None:
        self._flush(out)

    def _train(self, msg: str, number: int, out: list) -> bool:
        m = _TRAIN.match(msg)
        if m is None and _TRAIN_HEAD.match(msg):
            return self._cut_train(msg, number, out)
        if m:
            epoch, epochs, step = int(m.group(1)), int(m.group(2)), int(m.group(3))
            metrics = _stats(m.group(4))
            if metrics is None:
                return False
            for key, value in ((m.group(5), m.group(6)), (m.group(7), m.group(8)),
                               (m.group(9), m.group(10)), ("ips", m.group(11))):
                metrics[key] = parse_number(value)
            facts = {"total_epochs": epochs}
            if _open_end(m, msg) and self.hold(msg):
                return True
            if _ips_cut(m, msg):            # (a paste cut it)
                del metrics["ips"]
                self.values_cut += 1
                facts["values_cut"] = self.values_cut
            if m.group(12):
                metrics["eta_seconds"] = duration(m.group(12))
            if m.group(13):
                unit = "MB" if m.group(14) == "MB" else "bytes"
                metrics["max_mem_reserved"] = float(m.group(13))
                metrics["max_mem_allocated"] = float(m.group(15))
                if "units" not in self.facts:
                    facts["units"] = {"max_mem_reserved": unit, "max_mem_allocated": unit}
            self.fact(out, number, **facts)
        else:
            m = _TRAIN_1X.match(msg)
            metrics = _stats(m.group(3)) if m else None
            if metrics is None:
                return False
            epoch, step = int(m.group(1)), int(m.group(2))
            metrics["time"] = float(m.group(4))
        self._record(epoch, step, metrics, number, out)
        return True

    def _record(self, epoch: int, step: int, metrics: dict, number: int, out: list) -> None:
        if self.evaluated:
            out.append(self.marker(NEW_RUN, "new run", number))
            self.evaluated = False
        self.epoch, self.last_step, self.scored = epoch, step, False
        out.append(Record(TRAIN, metrics, step=step, epoch=epoch, time=self.time, line=number))

    def train_line(self, msg: str) -> bool | None:
        m = _TRAIN.match(msg)
        if m and _stats(m.group(4)) is not None:
            return not _open_end(m, msg)
        head = _TRAIN_HEAD.match(msg)
        return False if head and cut_short(msg[head.end():], _PART) is not None else None

    def _cut_train(self, msg: str, number: int, out: list) -> bool:
        """A 2.x training line that does not end as its layout does: cut at its end (a paste,
        an excerpt) or by what was printed over it (`…, avg_batch_cost: 2.29791 s, avg_samplanms
        has been installed.`). Its values before the first part that is no `key: value` are its
        record, as ppdet reads a cut line: the last where it ends the line only if printed whole
        (6 decimals, or a unit after it; `loss: 1.`, `norm_edit_dis: 1.0` may have lost
        digits). A line with a value dropped is counted (`values_cut`)."""
        head = _TRAIN_HEAD.match(msg)
        body = msg[head.end():]
        if cut_short(body, _PART) is not None and self.hold(msg):
            return True
        parts = SEP.split(body)
        metrics: dict[str, float] = {}
        units = None
        cut = False
        for i, part in enumerate(parts):
            pair = _PART.match(part)
            if pair is None or i == len(parts) - 1 and _cut_value(pair):
                cut = True
                break
            key, value, unit, eta = pair.groups()
            if eta is not None:
                metrics["eta_seconds"] = duration(eta)
                continue
            metrics["learning_rate" if key == "lr" else key] = parse_number(value)
            if unit and key == "max_mem_reserved":
                units = "MB" if unit == "MB" else "bytes"
        if not metrics or None in metrics.values():
            return False
        facts: dict = {"total_epochs": int(head.group(2))}
        if cut:
            self.values_cut += 1
            facts["values_cut"] = self.values_cut
        if units and "units" not in self.facts:
            facts["units"] = {"max_mem_reserved": units, "max_mem_allocated": units}
        self.fact(out, number, **facts)
        self._record(int(head.group(1)), int(head.group(3)), metrics, number, out)
        return True

    def _eval(self, body: str, number: int, out: list) -> bool:
        """`cur metric, …, fps: x`: fps always comes last, so a line without it was cut."""
        pairs = _PAIR.findall(body)
        if not pairs or pairs[-1][0] != "fps":
            return False
        metrics = {k: v for k, v in ((k, parse_number(v)) for k, v in pairs) if v is not None}
        step = self._eval_step()
        out.append(Record(EVAL, metrics, step=step, epoch=self.epoch, time=self.time,
                          line=number, estimated=step != self.last_step))
        return True

    def _test_iter(self, msg: str, number: int, out: list) -> bool:
        """1.x: `Test iter: 92000, metrics:{'precision': …, 'hmean': …}, best_hmean:0.664705,
        best_epoch:23, best_batch_id:68000` (rec: `acc:0.5, best_acc:…`): an evaluation at
        that iter, and the best so far with its epoch and iter."""
        m = _TEST_ITER.match(msg)
        if m is None:
            return False
        iter_, items, acc, name, best, best_epoch, best_iter = m.groups()
        metrics = {"acc": float(acc)} if acc is not None else \
            {key: float(value) for key, value in _DICT_ITEM.findall(items)}
        if not metrics:
            return False
        out.append(Record(EVAL, metrics, step=int(iter_), epoch=self.epoch, time=self.time,
                          line=number))
        self.fact(out, number, **{f"best_{name}": float(best), "best_epoch": int(best_epoch),
                                  "best_iter": int(best_iter)})
        return True

    def _eval_step(self) -> int | None:
        """The step of an evaluation during training: the first at or after the last printed
        that the run evaluates at (`an evaluation is run every N iterations`, after step S:
        S + kN), else the last printed (print and eval steps need not meet)."""
        if self.eval_every is None or self.last_step is None or self.last_step <= self.eval_every[0]:
            return self.last_step
        start, every = self.eval_every
        return start + -(-(self.last_step - start) // every) * every

    def _best(self, body: str, number: int, out: list) -> None:
        facts = {}
        for key, raw in _PAIR.findall(body):
            value = parse_number(raw.strip().rstrip(","))
            if value is not None and key != "is_float16":
                facts[key if key.startswith("best_") else f"best_{key}"] = \
                    int(value) if key == "best_epoch" else value
        self.fact(out, number, **facts)

    def _block_value(self, key: str, value: float, number: int, out: list) -> None:
        if self.block == "ckpt":
            self.fact(out, number, **{f"ckpt_{key}": int(value) if key.endswith("_epoch")
                                      else value})
        else:
            if self.pending is None:
                self.pending = Record(EVAL, {}, step=self.last_step, epoch=self.epoch,
                                      time=self.time, line=number)
            self.pending.metrics[key] = value

    def _flush(self, out: list) -> None:
        self.block = None
        if self.pending is not None:
            out.append(self.pending)
            self.pending = None


def _short(value: str, decimals: int) -> bool:
    """Whether a number as printed shows fewer decimals than it is printed with: it may have
    lost digits (nan, inf: whole words)."""
    return (value[-1].isdigit() or value[-1] == ".") and len(value.partition(".")[2]) < decimals


def _ips_cut(m: re.Match, msg: str) -> bool:
    """Whether a whole line's ips, which it ends in, was cut (`ips: 11` of 11.50463: .5f)."""
    return m.end(11) == len(msg.rstrip()) and _short(m.group(11), 5)


def _open_end(m: re.Match, msg: str) -> bool:
    """Whether a line read whole may go on on the next line (a paste's wrap): its ips, which
    it ends in, cut; or, of the 2.5+ layout (`avg_` costs: ips's unit and an ETA printed), it
    ends before its ETA."""
    return _ips_cut(m, msg) or m.group(5).startswith("avg_") and m.group(12) is None


def _cut_value(pair: re.Match) -> bool:
    """Whether the value of a pair that ends a line was cut (its stats print 6 decimals; a
    unit after it, an ETA: whole)."""
    return bool(pair.group(2)) and pair.end(2) == pair.end() and _short(pair.group(2), 6)


def _stats(body: str) -> dict[str, float] | None:
    """`lr: x, loss: y, …` (2.x) or `'loss': y, 'lr': x, …` (1.x); None unless all are numbers."""
    metrics = {}
    for part in body.split(", "):
        m = _STAT.match(part.strip())
        if m is None:
            return None
        metrics["learning_rate" if m.group(1) == "lr" else m.group(1)] = parse_number(m.group(2))
    return metrics


@sniffer
def sniff(text: str) -> float:
    """What only PaddleOCR prints: its training lines, cur/best metric lines (1.x: `Test iter:
    …`), its logger."""
    if "epoch: " in text and ("-INFO: epoch: " in text or "], global_step: " in text
                              or "], iter: " in text):
        m = _PREFIX.search(text) or _PREFIX_1X.search(text)
        msg = text[m.end():] if m else ""
        if _TRAIN.match(msg) or _TRAIN_1X.match(msg):
            return 5
    if ("metric" in text or "metirc" in text) and _PREFIX.search(text):
        msg = text[_PREFIX.search(text).end():]
        if msg.startswith((*_CUR, *_BEST, "metric in ckpt ***", "metric eval ***")):
            return 5
    if "-INFO: Test iter: " in text:
        m = _PREFIX_1X.search(text)
        if m and _TEST_ITER.match(text[m.end():]):
            return 5
    if "] ppocr " in text and _PREFIX.search(text):
        return 1
    return 0
