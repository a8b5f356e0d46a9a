"""VisualDL records (`vdlrecords.*.log`), decoded with visualdl's own `record_pb2`.

A file is a sequence of `<uint64 little-endian length><Record proto>` (VisualDL's
`RecordWriter.write`, no CRC); each Record holds Values `{id: step, tag, timestamp: ms since
1970, value | image | text | meta_data | ...}`. The framing is read here rather than with
visualdl's `RecordReader`: that one reads past a record still being written (it returns the
truncated bytes and loses its place), while `Reader.poll()` must wait for the rest of it.

PaddleDetection's `VisualDLWriter` (`--use_vdl`) writes each loss component at every iteration
with its own counter from 0 (the global step of a run that was not resumed) and, after each
evaluation, `<task>-mAP` (`bbox-mAP`: COCO AP@[.5:.95], a fraction as the console prints it)
with the evaluation's index as step. That is read as the console reads it: `bbox/AP` at the
global step of the last training record written before it (by the records' timestamps).
PaddleOCR / PaddleSeg / PaddleClas tags keep their names; a tag under `eval`, `evaluate`,
`val` or `test` (`Evaluate/mIoU`, `EVAL/hmean`, `eval_top1`) is an evaluation.
"""
from __future__ import annotations

import struct
from bisect import bisect_right

from ..events import EVAL, TRAIN, Record
from . import Descriptor
from .scalars import Grouper, ScalarReader, float32, learning_rate, local_clock, need

NAME = "visualdl"
TITLE = "VisualDL records (PaddleDetection / PaddleOCR / PaddleSeg --use_vdl)"
EXTRA = "visualdl"
# PaddleDetection's records: its losses, its COCO AP as `bbox/AP`, steps from 0
DESCRIPTOR = Descriptor(main_eval=("bbox/AP",), main_loss=("loss",), zero_based_steps=True)
EXAMPLE = "vdl_log_dir/scalar/vdlrecords.1796489029.log"

_HEADER = struct.Struct("<Q")
MAX_RECORD = 256 << 20       # a longer length is no record: the file is damaged there
_EVAL_HEADS = ("eval", "evaluate", "val", "valid", "validation", "test")
_MAP = "-mAP"                # PaddleDetection's `{metric key}-mAP`
_RECENT = 4096               # training records kept to place an evaluation by its time
_MAP_NOTE = ("PaddleDetection's `<task>-mAP` is read as `<task>/AP` (COCO AP@[.5:.95]; with a VOC "
             "metric it holds the VOC mAP) at the step of the last training record before it")


def is_file(name: str) -> bool:
    """A VisualDL log by its name, as VisualDL tells one (`vdlrecords` in it)."""
    return "vdlrecords" in name


def _kind(tag: str) -> str:
    if tag.endswith(_MAP):
        return "map"
    head = tag.split("/", 1)[0].lower() if "/" in tag else tag.split("_", 1)[0].lower()
    return "eval" if head in _EVAL_HEADS else "train"


class Reader(ScalarReader):
    """One VisualDL file; `poll()` gives the events of the records written since the last call."""

    def __init__(self, path: str):
        super().__init__(path, Grouper(_kind))
        (self.record_pb2,) = need(EXTRA, "VisualDL records", path, "visualdl.proto.record_pb2")
        self.buffer = b""         # the start of a record not complete yet
        self.offset = 0           # bytes read from the file
        self.damaged = False      # a length no record has: nothing after it is read
        self.train: list[tuple[float, int]] = []    # (time, step) of recent training records

    def _payloads(self):
        if self.damaged:
            return
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        buffer, at = self.buffer + data, 0
        while not self.damaged and len(buffer) - at >= _HEADER.size:
            (length,) = _HEADER.unpack_from(buffer, at)
            self.damaged = length > MAX_RECORD
            end = at + _HEADER.size + length
            if self.damaged or end > len(buffer):
                break
            self.consumed += end - at
            yield buffer[at + _HEADER.size:end]
            at = end
        self.buffer = buffer[at:]

    def _record(self, payload: bytes, out: list) -> None:
        record = self.decode(self.record_pb2.Record, payload)
        if record is None:
            return
        for value in record.values:
            what = value.WhichOneof("one_value")
            if what == "value":
                self.scalar(value.id, value.tag, float32(value.value),
                            local_clock(value.timestamp / 1000), out)
            elif what != "meta_data":             # the header LogWriter writes first
                self.skip(what or "empty")

    def _record_of(self, group) -> Record:
        metrics = {learning_rate(tag): v for tag, v in group.values.items()}
        if group.kind == "train":
            self.train.append((group.time, group.step))
            if len(self.train) > 2 * _RECENT:
                del self.train[:-_RECENT]
            return Record(TRAIN, metrics, step=group.step, time=group.time, line=group.number)
        step = group.step
        if group.kind == "map":
            metrics = {tag[:-len(_MAP)] + "/AP": v for tag, v in metrics.items()}
            self.facts["visualdl_mAP"] = _MAP_NOTE
            at = bisect_right(self.train, (group.time, float("inf")))
            step = self.train[at - 1][1] if at else None
        return Record(EVAL, metrics, step=step, time=group.time, line=group.number)
