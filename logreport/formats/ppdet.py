"""PaddleDetection console logs (ppdet 0.x static graph, 2.x, develop/2.8, PaddleYOLO fork).

As printed by PaddleDetection (ppdet/engine/callbacks.py LogPrinter, ppdet/engine/trainer.py,
pycocotools' summary). Lines are matched by their message, wherever it sits on the line
(notebook indentation, `# `, `> `, `[rank0]: ` and container timestamps are tolerated).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from ..events import (
    CHECKPOINT,
    EVAL,
    KILLED,
    NEW_RUN,
    OOM,
    RESUME,
    TABLE,
    TRACEBACK,
    TRAIN,
    Info,
    Marker,
    Record,
)
from . import Descriptor
from .common import GPU_START, OOM_TEXT, killed
from .ppdet_sniff import sniff as sniff  # (its score: formats.detect)
from .ppdet_train import ETA, MIN_RUN, NUM, PREFIX, STATIC, BlockPath, eta_seconds, train_parts

NAME = "ppdet"
TITLE = "PaddleDetection (tools/train.py, tools/eval.py console output)"

_MEM_UNIT = re.compile(r"max_mem_reserved: \d+ MB")
# the static graph's logger prefix (`%(asctime)s-%(levelname)s: `): its other messages
_STATIC_PREFIX = re.compile(r"\s*(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}),\d{3}"
                            r"-(?:DEBUG|INFO|WARNING|ERROR|CRITICAL): ")
_SAVES = ("Save checkpoint: ", "Save model to ")   # 2.x's, the static graph's (ends in ".")
_STATIC_PAIR = re.compile(r"'?([A-Za-z_][\w.]*)'?: '?(" + NUM + r")'?(?= |,|$)")
_COCO_ROW = re.compile(r"Average (Precision|Recall)\s+\((?:AP|AR)\) @\[ IoU=(0\.50:0\.95|0\.50|0\.75)"
                       r"\s*\| area=\s*(all|small|medium|large) \| maxDets=\s*(\d+) \] = (" + NUM + ")")
_EVAL_TYPE = re.compile(r"Evaluate annotation type \*(\w+)\*")
_VOC = re.compile(r"mAP\((\d\.\d{2})(?:, (?:11point|integral))?\) = (" + NUM + r")%?")  # static: no %
_FPS = re.compile(r"Total sample number: (\d+), aver(?:a)?ge FPS: (\S+)")
_MPII = re.compile(r"^\s*(Head|Shoulder|Elbow|Wrist|Hip|Knee|Ankle|PCKh|PCKh@0\.1) : (" + NUM + ")$")
_WIDER = re.compile(r"(Easy|Medium|Hard)\s+Val AP: (" + NUM + ")")
_BEST = re.compile(r"Best test (\w+) ap is (" + NUM + r")\.?\s*$")      # 2.x, `{:0.3f}`
DESCRIPTOR = Descriptor(
    tool="PaddleDetection",
    main_eval=("bbox/AP", "segm/AP", "keypoint/AP", "AP", "bbox/mAP", "keypoint/PCKh"),
    main_loss=("loss",),
    throughput=("ips",),
    hidden=("eta_seconds",),
    # pycocotools prints -1.000 for an area range with no ground truth: "not applicable"
    sentinels=((r"(?:^|/)A[PR]", -1.0),),
    units={"ips": "images/s", "batch_cost": "s/iter", "data_cost": "s/iter"},
    zero_based_steps=True,                 # epoch x iterations per epoch + iteration, from 0
    ends_by_eta=True,                      # it prints no end line
    note={"en": "PaddleDetection prints each loss as the median over its log_iter window: it "
                "is already smoothed.",
          "zh": "PaddleDetection 打印的损失已是 log_iter 窗口内的中位数，本身已平滑。"},
    parser_options=("written",),           # its time stamps have no year
    run_files=("workerlog.[0-9]*",),       # paddle.distributed.launch: one log per rank
    # the launcher's own: endpoints, nvidia-smi samples, each launch's peer list (<job>.<pod>)
    launcher_files=r"endpoints\.log|[^.]+\.(?:gpu|[a-z]{6})\.log",
    zero_based_epochs=True,                # Epoch: [0] is the first
    epoch_labels=True,
    # pycocotools' 12 figures: AP by IoU threshold, AP by object area, AR likewise
    families=((r"^(?:(?P<task>.+)/)?AP(?:50|75)?$", "ap_iou"),
              (r"^(?:(?P<task>.+)/)?AP[sml]$", "ap_area"),
              (r"^(?:(?P<task>.+)/)?AR(?:1|10|100|50|75)?$", "ar_all"),
              (r"^(?:(?P<task>.+)/)?AR[sml]$", "ar_area")),
    eval_table=r"(?:^|/)(?:AP(?:50|75|[sml])?|mAP|PCKh)$",
)
_TABLE_ROW = re.compile(r"^\s*\|(.*)\|\s*$")
_EXCEPTION = re.compile(r"^\s*(?:\[rank\d+\]: )?([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|"
                        r"Warning)|ResourceExhaustedError|Exception|SystemExit)\b:?(.*)$")
# Lines PaddleDetection's runs print that carry nothing to keep: pycocotools chatter, Paddle's
# C++ glog lines, the legacy launcher's log lines.
_KNOWN_NOISE = re.compile(
    r"(?:loading annotations into memory\.\.\.|Done \(t=[\d.]+s\)|creating index\.\.\."
    r"|index created!|Loading and preparing results\.\.\.|DONE \(t=[\d.]+s\)\.?"
    r"|Running per image evaluation\.\.\.|Accumulating evaluation results\.\.\."
    r"|[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d{6}\s+\d+ [\w./-]+:\d+\]"
    r"|(?:INFO|WARNING|WARING|ERROR) \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} [\w.]+:\d+\])")
# a semi-supervised run evaluates its teacher, then its student (trainer_ssod): the student's
# metrics are named apart (the teacher is the model it keeps as best)
_SSOD_EVALS = {"*****teacher evaluate*****": "", "*****student evaluate*****": "student/"}
_STARTUP = ("Finish loading model weights", "Finish resuming model weights",
            "-----------  Configuration", "Configuration Arguments")
_AREA = {"all": "", "small": "s", "medium": "m", "large": "l"}
_IOU = {"0.50:0.95": "", "0.50": "50", "0.75": "75"}
_TASK = {"bbox": "bbox", "segm": "segm", "mask": "segm", "keypoints": "keypoint",
         "keypoint": "keypoint", "keypoints_crowd": "keypoint"}

# Real lines (from the fixtures in tests/data) and the events each must give when fed to a fresh Parser.
SAMPLES = [
    ("[11/25 16:45:51] ppdet.engine.callbacks INFO: Epoch: [0] [ 0/12] learning_rate: 0.000000 "
     "loss: 4.262882 loss_cls: 0.714085 loss_iou: 0.852876 loss_dfl: 2.833213 loss_l1: 5.164682 "
     "eta: 0:02:09 batch_cost: 3.6104 data_cost: 0.0001 ips: 0.5540 images/s",
     [Info({"steps_per_epoch": 12}, line=1),
      Record(TRAIN, {"learning_rate": 0.0, "loss": 4.262882, "loss_cls": 0.714085,
                     "loss_iou": 0.852876, "loss_dfl": 2.833213, "loss_l1": 5.164682,
                     "batch_cost": 3.6104, "data_cost": 0.0001, "ips": 0.554,
                     "eta_seconds": 129.0}, step=0, epoch=0, line=1)]),
    ("[07/01 17:29:40] ppdet.engine INFO: Epoch: [0] [  0/200] learning_rate: 0.000000 loss_xy: nan "
     "loss_wh: nan loss_iou: nan loss_obj: nan loss_cls: nan loss: nan eta: 25 days, 11:08:01 "
     "batch_cost: 16.9237 data_cost: 12.1469 ips: 1.8908 images/s",
     [Info({"steps_per_epoch": 200}, line=1),
      Record(TRAIN, {"learning_rate": 0.0, "loss_xy": float("nan"), "loss_wh": float("nan"),
                     "loss_iou": float("nan"), "loss_obj": float("nan"), "loss_cls": float("nan"),
                     "loss": float("nan"), "batch_cost": 16.9237, "data_cost": 12.1469,
                     "ips": 1.8908, "eta_seconds": 2200081.0}, step=0, epoch=0, line=1)]),
    ("[11/21 15:37:17] ppdet.engine INFO: Epoch: [0] [ 110/3125] eta: 0:24:11 lr: 0.000000 "
     "loss_box: 0.256545 loss_cls: 0.059035 loss_obj: 0.247987 loss: 0.563567 batch_cost: 0.4402 "
     "data_cost: 0.0004 ips: 18.1718 images/s max_mem_reserved: 11613581568 "
     "max_mem_allocated: 10151881472",
     [Info({"steps_per_epoch": 3125, "units": {"max_mem_reserved": "bytes",
                                               "max_mem_allocated": "bytes"}}, line=1),
      Record(TRAIN, {"learning_rate": 0.0, "loss_box": 0.256545, "loss_cls": 0.059035,
                     "loss_obj": 0.247987, "loss": 0.563567, "batch_cost": 0.4402,
                     "data_cost": 0.0004, "ips": 18.1718, "max_mem_reserved": 11613581568.0,
                     "max_mem_allocated": 10151881472.0, "eta_seconds": 1451.0},
             step=110, epoch=0, line=1)]),
    ("2021-07-13 16:34:21,130-INFO: iter: 0, lr: 0.000012, 'loss_cls_0': '1.152286', "
     "'loss': '2.686026', eta: 0:00:00, batch_cost: 0.00003 sec, ips: 38479.85321 images/sec",
     [Record(TRAIN, {"learning_rate": 0.000012, "loss_cls_0": 1.152286, "loss": 2.686026,
                     "batch_cost": 0.00003, "ips": 38479.85321, "eta_seconds": 0.0},
             step=0, time=1626194061.0, line=1)]),
    ("    [02/24 17:15:52] ppdet.metrics.metrics INFO: mAP(0.50, 11point) = 84.34%",
     [Record(EVAL, {"bbox/mAP": 84.34}, line=1)]),
    ("[11/25 16:46:24] ppdet.metrics.coco_utils INFO: Start evaluate...\n"
     "Evaluate annotation type *bbox*\n"
     " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.048\n"
     " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ] = 0.067",
     [Record(EVAL, {"bbox/AP": 0.048, "bbox/AR10": 0.067}, line=3)]),
    # (real lines, the header between them left out as a paste does): no task is guessed
    ("[11/25 16:46:24] ppdet.metrics.coco_utils INFO: Start evaluate...\n"
     " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.048\n"
     " Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000",
     [Record(EVAL, {"AP": 0.048, "APl": -1.0}, line=2)]),
    # the best a VOC run states, a fraction (`{:0.3f}`), above the one evaluation read (a %)
    ("[07/28 23:27:20] ppdet.metrics.metrics INFO: mAP(0.50, integral) = 90.83%\n"
     "[07/28 23:27:20] ppdet.engine INFO: Best test bbox ap is 0.915.",
     [Record(EVAL, {"bbox/mAP": 90.83}, line=1), Info({"best_bbox/mAP": 91.5}, line=2)]),
    ("[11/25 16:48:22] ppdet.utils.checkpoint INFO: Save checkpoint: /home/user/ppdet_out/ppyoloe_resume",
     [Marker(CHECKPOINT, "/home/user/ppdet_out/ppyoloe_resume", line=1)]),
]


class Parser(BlockPath):
    """Stateful: an eval spans many lines; the year is guessed (ppdet stamps have none): the
    one the log was last written in (`written`, else now), see _first_year."""

    def __init__(self, written: datetime | None = None):
        self.written = written or datetime.now()
        self.year = self.written.year
        self.last_month = 0
        self.time: float | None = None
        self.first_time: float | None = None     # the first time stamp of the log
        self.epoch: int | None = None
        self.steps_per_epoch: int | None = None
        self.last_step: int | None = None
        self.task: str | None = None     # of the COCO table being read, as the log says it
        self.untasked: set[str] = set()  # pending COCO names no line has given a task yet
        self.model = ""                  # "student/" while a semi-supervised run evaluates it
        self.pending: dict[str, float] = {}
        self.pending_line = 0
        self.evaluated: dict[str, float] = {}   # this process's best of each eval metric read
        self.last_eval: tuple = ()       # the names of the last evaluation read
        self.table: dict | None = None
        self.in_traceback = False
        self.traceback_line = 0
        self.trained_since_start = False
        self.failed = False              # a failure was read since the process started
        self.units_sent = False
        self.facts_steps: int | None = None
        self.values_cut = self.facts_cut = 0     # training lines cut in their last value
        self.empty_evals = 0             # `Evaluation results empty`: no detection, no AP
        self.min_run = MIN_RUN
        self._layouts: dict = {}          # line skeleton -> its layout (fast path)

    # --- helpers ------------------------------------------------------------------------
    def _first_year(self, month: int, day: int, hh: int, mm: int, ss: int) -> None:
        """The year of the log's first stamp: the one the log was last written in, or the one
        before where that would date the stamp after the last write even on a clock the most
        ahead of UTC (a December log read in January: no line is written after its file)."""
        latest = self.written.astimezone(timezone.utc).replace(tzinfo=None) + AHEAD_OF_UTC
        if latest.year == self.year and (month, day, hh, mm, ss) > (
                latest.month, latest.day, latest.hour, latest.minute, latest.second):
            self.year -= 1

    def _stamp(self, m: re.Match) -> float:
        month, day = int(m.group(1)), int(m.group(2))
        if not self.last_month:
            self._first_year(month, day, *(int(m.group(i)) for i in (3, 4, 5)))
        if month < self.last_month:          # Dec -> Jan: the year rolled over
            self.year += 1
        self.last_month = month
        try:
            dt = datetime(self.year, month, day, int(m.group(3)), int(m.group(4)), int(m.group(5)))
        except ValueError:
            return self.time or 0.0
        return (dt - _EPOCH0).total_seconds()

    def _eval_step(self) -> int | None:
        if self.epoch is not None and self.steps_per_epoch:
            return (self.epoch + 1) * self.steps_per_epoch - 1
        return self.last_step

    def _flush_eval(self) -> list:
        self.untasked = set()
        if not self.pending:
            return []
        metrics = {self.model + k: v for k, v in self.pending.items()} if self.model \
            else self.pending
        rec = Record(EVAL, metrics, step=self._eval_step(), epoch=self.epoch, time=self.time,
                     line=self.pending_line)
        self.pending = {}
        self.last_eval = tuple(metrics)
        for name, value in metrics.items():
            if value == value and value > self.evaluated.get(name, float("-inf")):
                self.evaluated[name] = value
        return [rec]

    def _add_eval(self, name: str, value: float, number: int) -> None:
        if not self.pending:
            self.pending_line = number
        self.pending[name] = value

    # --- the parser ---------------------------------------------------------------------
    def feed(self, text: str, number: int) -> list | None:
        """The events of one line; None for a line that is not PaddleDetection's."""
        out: list = []
        if self.table is not None:
            if self._table_line(text, out, number):
                return out
        prefix = PREFIX.search(text) if "] " in text else None
        if prefix:
            self.time = self._stamp(prefix)
            if self.first_time is None:
                self.first_time = self.time
            msg = text[prefix.end():]
        else:
            msg = text
        if "Epoch: [" in msg:
            rec = self._train(msg, number, prefix is not None)
            if rec is not None:
                out.extend(self._flush_eval())
                out.extend(self._facts(msg, rec, number))
                out.append(rec)
                self.in_traceback = False
                return out
        if "-INFO: iter: " in text:
            rec = self._static(text, number)
            if rec is not None:
                out.append(rec)
                return out
        static = _STATIC_PREFIX.match(text) if prefix is None else None
        if static:
            self._static_time(*static.groups())
            prefix, msg = static, text[static.end():]
        if prefix:
            self._message(msg, number, out)
            return out
        return out if self._bare(text, number, out) else None

    def finish(self) -> list:
        out = self._flush_eval()
        if self.in_traceback:  # the log ends inside a traceback (cut off, or still being written)
            out.append(Marker(TRACEBACK, "Traceback (cut off before the exception line)",
                              line=self.traceback_line, step=self.last_step, time=self.time))
        return out

    def _train(self, msg: str, number: int, prefixed: bool) -> Record | None:
        parts = train_parts(msg, prefixed)
        if parts is None:
            return None
        m, _, fields, eta, cut = parts
        epoch, it, steps = int(m.group(1)), int(m.group(2)), int(m.group(3))
        metrics = {name: float(pair.group(2)) for name, pair in fields.items()}
        self.values_cut += cut is not None
        if eta:
            metrics["eta_seconds"] = eta_seconds(eta)
        self.epoch, self.steps_per_epoch = epoch, steps
        step = epoch * steps + it
        self.last_step = step
        self.trained_since_start = True
        return Record(TRAIN, metrics, step=step, epoch=epoch, time=self.time, line=number)


    def _facts(self, msg: str, rec: Record, number: int) -> list:
        """Info when steps per epoch change, and the memory unit once."""
        facts: dict = {}
        if self.steps_per_epoch != self.facts_steps:
            self.facts_steps = facts["steps_per_epoch"] = self.steps_per_epoch
        if self.values_cut != self.facts_cut:       # a cut line's last value, dropped
            self.facts_cut = facts["values_cut"] = self.values_cut
        if not self.units_sent and "max_mem_reserved" in rec.metrics:
            self.units_sent = True
            unit = "MB" if _MEM_UNIT.search(msg) else "bytes"
            facts["units"] = {"max_mem_reserved": unit, "max_mem_allocated": unit}
        return [Info(facts, line=number)] if facts else []

    def _static(self, text: str, number: int) -> Record | None:
        m = STATIC.search(text)
        if m is None:
            return None
        *stamp, it, rest = m.groups()
        self._static_time(*stamp)
        metrics: dict[str, float] = {}
        for key, value in _STATIC_PAIR.findall(rest):
            if key != "eta":
                metrics["learning_rate" if key == "lr" else key] = float(value)
        eta = ETA.search(rest)
        if eta and metrics.get("time") != 0:    # (its steps left x a median time: none yet)
            metrics["eta_seconds"] = eta_seconds(eta)
        self.last_step = int(it)
        self.trained_since_start = True
        return Record(TRAIN, metrics, step=int(it), time=self.time, line=number)

    def _static_time(self, year, month, day, hh, mm, ss) -> None:
        """The time of a static-graph line (its stamp has a year)."""
        try:
            self.time = (datetime(int(year), int(month), int(day), int(hh), int(mm), int(ss))
                         - _EPOCH0).total_seconds()
        except ValueError:
            return
        if self.first_time is None:
            self.first_time = self.time

    def _message(self, msg: str, number: int, out: list) -> None:
        """A prefixed logger message that is not a training line."""
        if msg.startswith("Eval iter: "):
            out.extend(self._flush_eval())
            self.task = None
        elif msg.startswith(_SAVES):
            out.extend(self._flush_eval())
            saved = next(words for words in _SAVES if msg.startswith(words))
            path = msg[len(saved):].strip()
            out.append(Marker(CHECKPOINT, path.rstrip(".") if saved == "Save model to " else path,
                              line=number, step=self.last_step, time=self.time))
        elif msg.startswith("Total sample number: "):
            m = _FPS.search(msg)
            if m:
                try:
                    self._add_eval("fps", float(m.group(2)), number)
                except ValueError:
                    pass
            if not self.untasked:       # else a `Best test <task> ap` line may still name it
                out.extend(self._flush_eval())
        elif msg.startswith("Best test "):
            self._name_task(msg.split()[2:3])
            out.extend(self._flush_eval())
            self._stated_best(msg, number, out)
        elif msg.startswith("mAP("):
            m = _VOC.search(msg)
            if m:
                self._add_eval("bbox/mAP", float(m.group(2)), number)
        elif msg.startswith("Per-category of "):
            title = msg[len("Per-category of "):].strip().rstrip(":").strip()
            self._name_task(title.split()[:1])
            self.table = {"title": self.model + title, "header": [], "rows": [], "line": number}
        elif msg.startswith(_STARTUP):
            self._startup(msg, number, out)
        elif "Val AP: " in msg:
            m = _WIDER.search(msg)
            if m:
                self._add_eval(f"bbox/{m.group(1).lower()}_AP", float(m.group(2)), number)
        elif OOM_TEXT.search(msg):
            self._failure(OOM, msg.strip()[:300], number, out)
        elif msg.startswith("Evaluation results empty"):      # (COCO's metrics not computed)
            self.empty_evals += 1
            out.append(Info({"empty_evaluations": self.empty_evals}, line=number))
        elif msg.startswith("KeyboardInterrupt: main proc"):    # the static graph's reader, ^C
            self._failure(KILLED, msg.strip(), number, out)

    def _stated_best(self, msg: str, number: int, out: list) -> None:
        """`Best test bbox ap is 0.915.`: the best this process evaluated (the Checkpointer's
        best_ap, map_res[key][0]: COCO's AP, or VOC's mAP as a fraction, where its mAP line
        prints a percentage), perhaps from an evaluation before the lines read (an excerpt).
        The fact best_<metric>, in the units of the metric of the evaluation it follows: the
        stated value (printed to 3 decimals) where it is above every evaluation of this process
        read by more than its rounding, else that evaluation's exact value. A line after no
        evaluation of its task read (its units unknown) gives none."""
        m = _BEST.search(msg)
        task = _TASK.get(m.group(1).lower()) if m else None
        if task is None:
            return
        if f"{task}/AP" in self.last_eval:
            metric, scale = f"{task}/AP", 1.0
        elif task == "bbox" and "bbox/mAP" in self.last_eval:
            metric, scale = "bbox/mAP", 100.0
        else:
            return
        stated, seen = float(m.group(2)), self.evaluated.get(metric)
        if seen is None or stated * scale > seen + 0.0005 * scale * (1 + 1e-9):
            out.append(Info({f"best_{metric}": round(stated * scale, 9)}, line=number))
        else:
            out.append(Info({f"best_{metric}": seen}, line=number))

    def _startup(self, msg: str, number: int, out: list) -> None:
        resume = msg.startswith("Finish resuming")
        self.evaluated = {}              # a new process: its Checkpointer's best starts afresh
        # (a launch that failed, or one that only evaluated (tools/eval.py): the next apart)
        if self.trained_since_start or self.failed or self.last_eval or self.pending:
            out.extend(self._flush_eval())
            out.append(Marker(NEW_RUN, "resumed run" if resume else "new run", line=number,
                              time=self.time))
            self.trained_since_start, self.model = False, ""
            self.epoch = self.last_step = None     # a new process: no epoch until it trains
        self.failed, self.last_eval = False, ()
        if resume:
            out.append(Marker(RESUME, msg.split(": ", 1)[-1].strip(), line=number, time=self.time))

    def _failure(self, kind: str, detail: str, number: int, out: list, timed: bool = True) -> None:
        """A failure's marker; the next process's start is then a new run's."""
        self.failed = True
        out.append(Marker(kind, detail, line=number, step=self.last_step,
                          time=self.time if timed else None))

    def _bare(self, text: str, number: int, out: list) -> bool:
        """A line without the ppdet prefix: pycocotools, tracebacks, launcher, glog.
        Returns whether the line is one of those (else it is not understood)."""
        stripped = text.strip()
        if stripped in _SSOD_EVALS:
            out.extend(self._flush_eval())
            self.model = _SSOD_EVALS[stripped]
            return True
        if "Average " in text:
            m = _COCO_ROW.search(text)
            if m:
                self._coco_row(m, number)
                return True
        if stripped.startswith("Evaluate annotation type"):
            m = _EVAL_TYPE.search(stripped)
            if m:
                self.task = _TASK.get(m.group(1), m.group(1))
            return True
        if "Traceback (most recent call last)" in text:
            self.in_traceback = True
            self.traceback_line = number
            return True
        if self.in_traceback:
            m = _EXCEPTION.match(text)
            if m and not text.startswith((" ", "\t")):
                self.in_traceback = False
                self._failure(OOM if OOM_TEXT.search(stripped) else TRACEBACK, stripped[:500],
                              number, out)
            return True
        said = killed(stripped) or (stripped if stripped == "^C" else None)
        if said:
            self._failure(KILLED, said, number, out)
        elif stripped.startswith("LAUNCH "):
            if stripped.endswith("Pod failed"):
                self._failure(KILLED, "Pod failed", number, out, timed=False)
            elif "Configuration" in stripped:
                self._startup(stripped, number, out)
        elif "mAP(" in text and _VOC.search(text):
            self._add_eval("bbox/mAP", float(_VOC.search(text).group(2)), number)
        elif " : " in text and _MPII.match(text):
            m = _MPII.match(text)
            self._add_eval(f"keypoint/{m.group(1)}", float(m.group(2)), number)
        elif OOM_TEXT.search(text):
            self._failure(OOM, stripped[:300], number, out)
        elif stripped.startswith("-----------  Configuration Arguments") \
                or GPU_START in stripped:    # (Paddle's first use of a GPU: a new process)
            self._startup(stripped, number, out)
        else:
            return bool(_KNOWN_NOISE.match(stripped))
        return True

    def _coco_row(self, m: re.Match, number: int) -> None:
        """A pycocotools summary row, named `<task>/AP50` etc. The task is what the log says:
        `Evaluate annotation type *segm*` before the table, keypoints' own `maxDets= 20`, or
        (a table pasted without its header) a per-category table or `Best test` line after
        it; until then the name has no task (`AP50`)."""
        kind, iou, area, max_dets, value = m.groups()
        if max_dets == "20" and self.task is None:
            self._name_task(["keypoints"])
        name = ("AP" if kind == "Precision" else "AR") + _IOU[iou] + _AREA[area]
        if kind == "Recall" and area == "all" and iou == "0.50:0.95" and self.task != "keypoint":
            name += max_dets
        if self.task is None:
            self.untasked.add(name)
            self._add_eval(name, float(value), number)
        else:
            self._add_eval(f"{self.task}/{name}", float(value), number)

    def _name_task(self, words: list[str]) -> None:
        """A line after a table without its header names its task: rename what it gave."""
        task = _TASK.get(words[0].lower()) if words else None
        if task is None:
            return
        self.task = task
        self.pending = {f"{task}/{k}" if k in self.untasked else k: v
                        for k, v in self.pending.items()}
        self.untasked = set()

    def _table_line(self, text: str, out: list, number: int) -> bool:
        """Per-category AP grid (terminaltables): header, then category/AP pairs."""
        stripped = text.strip()
        if stripped.startswith("+") and set(stripped) <= set("+-=| "):
            return True
        row = _TABLE_ROW.match(text)
        if row is None:
            table, self.table = self.table, None
            if table["rows"]:
                out.append(Marker(TABLE, {k: table[k] for k in ("title", "header", "rows")},
                                  line=table["line"], step=self._eval_step(), time=self.time))
            return False
        cells = [c.strip() for c in row.group(1).split("|")]
        if not self.table["header"]:
            self.table["header"] = cells[:2]
            return True
        for i in range(0, len(cells) - 1, 2):
            if cells[i]:
                self.table["rows"].append([cells[i], cells[i + 1]])
        return True


_EPOCH0 = datetime(1970, 1, 1)
AHEAD_OF_UTC = timedelta(hours=14)     # the most a local clock is ahead of UTC (UTC+14)

