"""PaddleSeg training and evaluation logs (legacy pdseg ≤ 0.8, 2.0 → 2.9, develop / PaddleSeg 3).

As printed by PaddleSeg (paddleseg/core/train.py, val.py, paddleseg/utils/logger.py; pdseg).
The step is the printed cumulative `iter` (`step` in legacy pdseg); an evaluation takes the
step of the training line before it. The per-class arrays after `[EVAL] Class IoU:` (and `Class
Acc`, `Class Precision`, `Class Recall`) become one table per evaluation; the best-model line
becomes the facts `best_mIoU` and `best_iter`.
"""
from __future__ import annotations

import re
from itertools import zip_longest

from ..events import EVAL, FINISHED, TABLE, TRAIN, Info, Marker, Record
from . import Descriptor
from .common import BRACKET_DATE, DASH_DATE, LEVEL, NUM, LineParser, at, cut_short, duration, sniffer

NAME = "paddleseg"
TITLE = "PaddleSeg (tools/train.py, tools/val.py console output; legacy pdseg)"
DESCRIPTOR = Descriptor(
    tool="PaddleSeg",
    main_eval=("mIoU", "IoU"),  # IoU: legacy pdseg's mean IoU
    main_loss=("loss",),
    throughput=("ips", "step/sec"),
    hidden=(),
    epoch_labels=True,
)

_PREFIX = re.compile(DASH_DATE + r" \[(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\](?:\t| +|$)")
_PREFIX_3 = re.compile(BRACKET_DATE + LEVEL)
_S = r"[:=] ?"                               # `key: value` from 2.1 on, `key=value` before
_TRAIN = re.compile(
    r"^\[TRAIN\] epoch" + _S + r"(\d+), iter" + _S + r"(\d+)/(\d+), loss" + _S + "(" + NUM + "), lr" + _S
    + "(" + NUM + "), batch_cost" + _S + "(" + NUM + "), reader_cost" + _S + "(" + NUM + ")(?:, ips" + _S
    + "(" + NUM + r") samples/sec)?(?:, (?:max_mem_reserved: (\d+) (MB|B),? ?max_mem_allocated: (\d+)"
    r" (?:MB|B))? *)? \| ETA (\d+:\d{2}:\d{2})(?:, max_mem_reserved: (\d+), max_mem_allocated: (\d+))?\s*$")
# a line cut short (an excerpt's end): its head, its values before the cut, what the cut left of
# its ETA (the part after ` | `)
_TRAIN_HEAD = re.compile(r"^\[TRAIN\] epoch" + _S + r"(\d+), iter" + _S + r"(\d+)/(\d+), ")
_PART = re.compile(r"^(loss|lr|batch_cost|reader_cost|ips|max_mem_reserved|max_mem_allocated)" + _S
                   + "(" + NUM + r")(?: samples/sec| MB| B)?$")
_ETA_CUT = re.compile(r"^(?:E(?:TA?)?|ETA [\d:]*|ETA (\d+:\d{2}:\d{2})(?:,|, [\w:, ]*))?$")
_LEGACY_TRAIN = re.compile(r"^epoch=(\d+) step=(\d+) lr=(" + NUM + ") loss=(" + NUM + r") step/sec=("
                           + NUM + r") \| ETA (\d+:\d{2}:\d{2})\s*$")
_EVAL = re.compile(r"^\[EVAL\] #Images" + _S + r"(\d+) mIoU" + _S + "(" + NUM + ") Acc" + _S + "(" + NUM
                   + ") Kappa" + _S + "(" + NUM + ")(?: Dice: (" + NUM + "))?(?: Auc_roc: (" + NUM
                   + r"))? ?$")
_CLASS = re.compile(r"^\[EVAL\] ?(?:Class|Category) (IoU|Acc|Precision|Recall): ?(.*)$")
_BEST = re.compile(r"^\[EVAL\] The (EMA )?model with the best validation mIoU \((" + NUM
                   + r")\) was saved at iter (\d+)\.$")
_EARLY = re.compile(r"^Early stopping at iter (\d+)\. The best mean IoU is (" + NUM + r")")
_LEGACY_EVAL = re.compile(r"^\[EVAL\]#image=(\d+) acc=(" + NUM + ") IoU=(" + NUM + r")\s*$")
_LEGACY_KAPPA = re.compile(r"^\[EVAL\]Kappa:(" + NUM + r")\s*$")
_LEGACY_STEP = re.compile(r"^\[EVAL\]step=\d+ .*\| ETA \d+:\d{2}:\d{2}\s*$")
_ARRAY_VALUE = re.compile(r"^(?:\d+\.?\d*(?:e[-+]?\d+)?|nan|inf)$")
_VERSION = re.compile(r"^PaddleSeg: (\S+)")

_LEGACY_IOU = "0.7778 0.8772 0.8416 0.9095 0.2639 0.2408 0.6473" + " 0.0000" * 12
_LEGACY_ACC = "0.8641 0.9266 0.9168 0.9540 0.6009 0.6139 0.7644" + " 0.0000" * 12
SAMPLES = [
    ("2021-03-30 06:55:57 [INFO]\t[TRAIN] epoch: 1, iter: 20/500, loss: 2.0859, lr: 0.009657, "
     "batch_cost: 0.5344, reader_cost: 0.07273, ips: 3.7425 samples/sec | ETA 00:04:16",
     [Info({"total_steps": 500}, line=1),
      Record(TRAIN, {"loss": 2.0859, "learning_rate": 0.009657, "batch_cost": 0.5344,
                     "reader_cost": 0.07273, "ips": 3.7425, "eta_seconds": 256.0}, step=20,
             epoch=1, time=at("2021-03-30 06:55:57"), line=1)]),
    ("epoch=1 step=170 lr=0.00093 loss=0.0491 step/sec=5.027 | ETA 00:07:06",
     [Record(TRAIN, {"learning_rate": 0.00093, "loss": 0.0491, "step/sec": 5.027,
                     "eta_seconds": 426.0}, step=170, epoch=1, line=1)]),
    ("2021-01-19 07:02:41 [INFO]\t[TRAIN] epoch=1, iter=5/100, loss=2.8735, lr=0.009639, "
     "batch_cost=0.8913, reader_cost=0.2592 | ETA 00:01:24",
     [Info({"total_steps": 100}, line=1),
      Record(TRAIN, {"loss": 2.8735, "learning_rate": 0.009639, "batch_cost": 0.8913,
                     "reader_cost": 0.2592, "eta_seconds": 84.0}, step=5, epoch=1,
             time=at("2021-01-19 07:02:41"), line=1)]),
    ("2023-11-20 18:50:16 [INFO]      [TRAIN] epoch: 1, iter: 390/400, loss: 2.0438, lr: 0.000156, "
     "batch_cost: 0.3238, reader_cost: 0.00205, ips: 12.3544 samples/sec | ETA 00:00:03, "
     "max_mem_reserved: 6202455040, max_mem_allocated: 5203445504",
     [Info({"total_steps": 400,
            "units": dict.fromkeys(("max_mem_reserved", "max_mem_allocated"), "bytes")}, line=1),
      Record(TRAIN, {"loss": 2.0438, "learning_rate": 0.000156, "batch_cost": 0.3238, "reader_cost": 0.00205,
                     "ips": 12.3544, "eta_seconds": 3.0, "max_mem_reserved": 6202455040.0,
                     "max_mem_allocated": 5203445504.0}, step=390, epoch=1, time=at("2023-11-20 18:50:16"),
             line=1)]),
    ("2021-07-20 22:37:33 [INFO]\tStart evaluating (total_samples: 200, total_iters: 200)...\n"
     "200/200 [==============================] - 6s 30ms/step - batch_cost: 0.0290 - reader cost: 8.5472e-0\n"
     "2021-07-20 22:37:38 [INFO]\t[EVAL] #Images: 200 mIoU: 0.5000 Acc: 1.0000 Kappa: nan \n"
     "2021-07-20 22:37:38 [INFO]\t[EVAL] Class IoU: \n"
     "[1. 0.]\n"
     "2021-07-20 22:37:40 [INFO]\t[EVAL] The model with the best validation mIoU (0.5000) "
     "was saved at iter 200.",
     [Record(EVAL, {"mIoU": 0.5, "Acc": 1.0, "Kappa": float("nan")},
             time=at("2021-07-20 22:37:38"), line=3),
      Marker(TABLE, {"title": "Class IoU", "header": ["class", "IoU"], "rows": [["0", "1."], ["1", "0."]]},
             line=4, time=at("2021-07-20 22:37:38")),
      Info({"best_mIoU": 0.5, "best_iter": 200}, line=6)]),
    ("2021-01-13 16:41:31 [INFO]\t[EVAL] #Images=76 mIoU=0.8526 Acc=0.9942 Kappa=0.8283",
     [Record(EVAL, {"mIoU": 0.8526, "Acc": 0.9942, "Kappa": 0.8283},
             time=at("2021-01-13 16:41:31"), line=1)]),
    ("2022-05-11 02:31:10 [INFO]      [EVAL] #Images: 500 mIoU: 0.0158 Acc: 0.0946 Kappa: 0.0261 "
     "Dice: 0.0280",
     [Record(EVAL, {"mIoU": 0.0158, "Acc": 0.0946, "Kappa": 0.0261, "Dice": 0.028},
             time=at("2022-05-11 02:31:10"), line=1)]),
    ("[EVAL]#image=2919 acc=0.9116 IoU=0.2399\n"
     "[EVAL]Category IoU: [" + _LEGACY_IOU + "]\n"
     "[EVAL]Category Acc: [" + _LEGACY_ACC + "]\n"
     "[EVAL]Kappa:0.8661",
     [Record(EVAL, {"acc": 0.9116, "IoU": 0.2399, "Kappa": 0.8661}, line=1),
      Marker(TABLE, {"title": "Category IoU, Acc", "header": ["class", "IoU", "Acc"],
                     "rows": [[str(i), iou, acc] for i, (iou, acc) in
                              enumerate(zip(_LEGACY_IOU.split(), _LEGACY_ACC.split()))]},
             line=2)]),
]


class Parser(LineParser):
    """Stateful: an evaluation's per-class arrays follow its summary, prefix-less."""

    PREFIXES = (_PREFIX, _PREFIX_3)

    def __init__(self):
        super().__init__()
        self.pending: Record | None = None      # legacy eval: Kappa comes lines later
        self.table: dict | None = None          # {"line", "title", "columns": {name: values}}
        self.array: tuple[str, str] | None = None   # (column, text so far) of an open array
        self.continued = False                  # bare lines continue a message (env info)
        self.values_cut = 0                     # training lines cut short: their values kept

    def message(self, msg: str, number: int, out: list) -> bool:
        self.continued = not msg.strip()
        if not msg.startswith("[EVAL] Class "):
            self._close(out)
        if msg.startswith("[TRAIN]"):
            return self._train(msg, number, out)
        if msg.startswith("[EVAL] "):
            return self._eval(msg, number, out)
        m = _EARLY.match(msg)
        if m:
            self.fact(out, number, early_stop_iter=int(m.group(1)), best_mIoU=float(m.group(2)))
            out.append(self.marker(FINISHED, msg.strip(), number))
        return True

    def bare(self, text: str, number: int, out: list) -> bool:
        if self.array is not None:
            return self._array_text(text, number, out)
        if text.startswith("epoch="):
            return self._legacy_train(text, number, out)
        if text.startswith("[EVAL]"):
            return self._legacy_eval(text.rstrip(), number, out)
        if self.continued:
            if text.startswith("---") and "Environment Information" in text:
                self.new_process(number, out)
            version = _VERSION.match(text.strip())
            if version:
                self.fact(out, number, paddleseg_version=version.group(1))
            return True
        return False

    def end(self, out: list) -> None:
        self._close(out)

    def train_line(self, msg: str) -> bool | None:
        if not msg.startswith("[TRAIN]"):
            return None
        m = _TRAIN.match(msg)
        if m:
            return m.group(13) is None
        return False if _cut_train(msg) is not None else None

    def _train(self, msg: str, number: int, out: list) -> bool:
        m = _TRAIN.match(msg)
        if m is None:
            cut = _cut_train(msg)
            if cut is None:
                return False
            if self.hold(msg):              # (its rest may be on the next line)
                return True
            if not cut[3]:
                return False                # (cut in its first value: none whole)
            self.values_cut += 1
            self._train_record(*cut, {"values_cut": self.values_cut}, number, out)
            return True
        if m.group(13) and self.hold(msg):  # ends in its memory in bytes: digits may be next
            return True
        g = m.groups()
        metrics = {"loss": float(g[3]), "learning_rate": float(g[4]), "batch_cost": float(g[5]),
                   "reader_cost": float(g[6])}
        if g[7] is not None:
            metrics["ips"] = float(g[7])
        metrics["eta_seconds"] = duration(g[11])
        facts: dict = {}
        reserved, allocated, unit = (g[8], g[10], g[9]) if g[8] else (g[12], g[13], "B")
        if reserved:                          # before `| ETA` (MB or B), or after it (bytes)
            metrics["max_mem_reserved"], metrics["max_mem_allocated"] = float(reserved), float(allocated)
            if "units" not in self.facts:
                unit = "MB" if unit == "MB" else "bytes"
                facts["units"] = {"max_mem_reserved": unit, "max_mem_allocated": unit}
        self._train_record(int(g[0]), int(g[1]), int(g[2]), metrics, facts, number, out)
        return True

    def _train_record(self, epoch: int, step: int, steps: int, metrics: dict, facts: dict,
                      number: int, out: list) -> None:
        self.fact(out, number, total_steps=steps, **facts)
        self._step(epoch, step)
        out.append(Record(TRAIN, metrics, step=step, epoch=epoch, time=self.time, line=number))
        if step == steps:
            out.append(self.marker(FINISHED, f"iter {step}/{step}: the last iteration", number))

    def _legacy_train(self, text: str, number: int, out: list) -> bool:
        m = _LEGACY_TRAIN.match(text)
        if m is None:
            return False
        epoch, step = int(m.group(1)), int(m.group(2))
        self._step(epoch, step)
        out.append(Record(TRAIN, {"learning_rate": float(m.group(3)), "loss": float(m.group(4)),
                                  "step/sec": float(m.group(5)),
                                  "eta_seconds": duration(m.group(6))},
                          step=step, epoch=epoch, time=self.time, line=number))
        return True

    def _step(self, epoch: int, step: int) -> None:
        self.epoch, self.last_step = epoch, step

    def _eval(self, msg: str, number: int, out: list) -> bool:
        m = _EVAL.match(msg)
        if m:
            metrics = {"mIoU": float(m.group(2)), "Acc": float(m.group(3)), "Kappa": float(m.group(4))}
            for name, value in (("Dice", m.group(5)), ("Auc_roc", m.group(6))):
                if value is not None:
                    metrics[name] = float(value)
            out.append(self._record(metrics, number))
            return True
        m = _CLASS.match(msg)
        if m:
            return self._class(m, number, out)
        m = _BEST.match(msg.rstrip())
        if m:
            key = "best_ema" if m.group(1) else "best"
            self.fact(out, number, **{f"{key}_mIoU": float(m.group(2)), f"{key}_iter": int(m.group(3))})
            return True
        return not msg.startswith(("[EVAL] #Images", "[EVAL] The "))   # cut short: not understood

    def _legacy_eval(self, text: str, number: int, out: list) -> bool:
        m = _LEGACY_EVAL.match(text)
        if m:
            self._close(out)
            self.pending = self._record({"acc": float(m.group(2)), "IoU": float(m.group(3))},
                                        number)
            return True
        m = _LEGACY_KAPPA.match(text)
        if m and self.pending is not None:
            self.pending.metrics["Kappa"] = float(m.group(1))
            return True
        m = _CLASS.match(text)
        if m:
            return self._class(m, number, out)
        return bool(_LEGACY_STEP.match(text))           # per-batch progress of the evaluation

    def _record(self, metrics: dict, number: int) -> Record:
        return Record(EVAL, metrics, step=self.last_step, epoch=self.epoch, time=self.time,
                      line=number)

    def _class(self, m: re.Match, number: int, out: list) -> bool:
        """`Class IoU:` (array on the next lines) or legacy `Category IoU: [...]` (same line)."""
        if self.table is None:
            self.table = {"line": number, "time": self.time, "columns": {},
                          "title": m.group(0).split("]", 1)[1].split()[0]}
        self.array = (m.group(1), "")
        return self._array_text(m.group(2), number, out) if m.group(2).strip() else True

    def _array_text(self, text: str, number: int, out: list) -> bool:
        """A piece of a numpy array as printed (`[0.9812 0.    ]`, wrapped over lines)."""
        name, sofar = self.array
        joined = f"{sofar} {text.strip()}"
        if not joined.strip().startswith("["):
            self.array = None
            return False
        if "]" not in joined:
            self.array = (name, joined)
            return True
        self.array = None
        values = joined.strip()[1:joined.strip().index("]")].split()
        if not all(_ARRAY_VALUE.match(v) for v in values):
            return False
        self.table["columns"][name] = values
        return True

    def _close(self, out: list) -> None:
        """The end of an evaluation: its pending record and its per-class table."""
        if self.pending is not None:
            out.append(self.pending)
            self.pending = None
        table, self.table, self.array = self.table, None, None
        if table and table["columns"]:
            columns = table["columns"]
            rows = [[str(i), *values] for i, values in
                    enumerate(zip_longest(*columns.values(), fillvalue=""))]
            title = f"{table['title']} {', '.join(columns)}"
            out.append(Marker(TABLE, {"title": title, "header": ["class", *columns], "rows": rows},
                              line=table["line"], step=self.last_step, time=table["time"]))


def _cut_train(msg: str) -> tuple[int, int, int, dict] | None:
    """A `[TRAIN]` line cut short (`…, batch_cost: 0.4049, reader_co`; `… samples/sec | ET`):
    its epoch, iter, iters and the values whole before the cut (maybe none), the cut one left
    out; None if the line is no such line."""
    head = _TRAIN_HEAD.match(msg)
    if head is None:
        return None
    rest = msg[head.end():]
    body, bar, tail = (rest + " " if rest.endswith(" |") else rest).partition(" | ")
    if bar:                     # cut in its ETA or after it: the values before ` | ` are whole
        eta = _ETA_CUT.match(tail)
        kept = body if eta and all(map(_PART.match, body.split(", "))) else None
    else:
        eta, kept = None, cut_short(body, _PART)
    if kept is None:
        return None
    metrics = {}
    for part in filter(None, kept.split(", ")):
        key, value = _PART.match(part).groups()
        metrics["learning_rate" if key == "lr" else key] = float(value)
    if eta and eta.group(1):
        metrics["eta_seconds"] = duration(eta.group(1))
    return int(head.group(1)), int(head.group(2)), int(head.group(3)), metrics


@sniffer
def sniff(text: str) -> float:
    """What only PaddleSeg prints: its [TRAIN] / [EVAL] lines, legacy pdseg's lines."""
    if "[TRAIN] epoch" in text or "[EVAL] " in text or "[EVAL]#image=" in text:
        m = _PREFIX.search(text) or _PREFIX_3.search(text)
        msg = text[m.end():] if m else text.strip()
        if _TRAIN.match(msg) or _EVAL.match(msg) or _CLASS.match(msg) or _BEST.match(msg) \
                or _LEGACY_EVAL.match(msg):
            return 5
        if m:
            return 1        # its prefix and tag, a line of a variant it does not read (MedicalSeg)
    if text.startswith("epoch=") and _LEGACY_TRAIN.match(text):
        return 5
    return 0
