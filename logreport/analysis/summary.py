"""The summary of a run: the one model that every surface renders (`summary --json`, the
terminal, the report, email, the live page)."""
from __future__ import annotations

import json
from typing import TypedDict

from ..events import EVAL, TRAIN
from ..model import Run, json_number, plain
from .anomalies import Thresholds, anomalies
from .series import (
    as_int,
    began_midway,
    best,
    final_steps,
    final_values,
    last_train_axes,
    last_train_row,
    lineage_starts,
    throughput,
)
from .status import eta_seconds, progress, status, timing, total_steps, wall_seconds


class Summary(TypedDict, total=False):
    """What `summary --json` prints for a run (README, "Commands", lists every key)."""

    source: str
    format: str | None
    files: list[str]
    status: str                       # running | finished | failed | unknown
    status_evidence: str
    last_step: int | None
    last_step_estimated: bool
    last_epoch: float | None
    total_steps: int | None
    total_steps_estimated: bool       # inferred from the tool's ETA: the log states none
    train_records: int
    estimated_steps: int
    repeated_records: int
    values_cut: int                   # values a cut line ended in: dropped, may have lost digits
    eval_records: int
    segments: int
    trainings: int                    # trainings begun afresh in the log (series.lineage_starts)
    began: dict | None                # step, epoch, resumed: the last training begins midway
    final: dict                       # metric -> last value (non-finite as "nan", "inf")
    final_steps: dict                 # metric -> its final value's step, where not last_step
    best: dict | None                 # metric, value, step, epoch
    throughput: dict | None           # metric, median
    wall_seconds: float | None
    eta_seconds: float | None
    timing: dict | None
    progress: dict | None
    anomalies: list[dict]             # kind, step, metric, detail, line, file
    unparsed_lines: int
    stopped: dict                     # `run --stop-on`: reason, step, signal, ... (when it did)


def summarize(run: Run, th: Thresholds | None = None, live: bool = False) -> Summary:
    """The `summary --json` object of one run (live: the caller is watching it)."""
    state, evidence = status(run, live=live)
    wall = wall_seconds(run)
    total = total_steps(run)
    summary: Summary = {
        "source": run.source,
        "format": run.format or None,
        "files": list(run.files),
        "status": state,
        "status_evidence": evidence,
        "last_step": None,
        "last_epoch": None,
        "total_steps": total,
        "total_steps_estimated": total is not None and not run.info.get("total_steps"),
        "train_records": 0,
        "eval_records": 0,
        "segments": 0,
        "final": {},
        "final_steps": {},
        "best": None,
        "throughput": throughput(run),
        "wall_seconds": wall,
        "eta_seconds": eta_seconds(run, state),
        "timing": timing(run),
        "progress": progress(run, state),
        "anomalies": anomalies(run, th),
        "unparsed_lines": 0,
    }
    if "stopped" in run.info:         # `--stop-on` ended the run: why, at which step, what signal
        summary["stopped"] = dict(run.info["stopped"])
    return refresh(summary, run)


def refresh(summary: Summary, run: Run) -> Summary:
    """The summary with the figures that cost little brought up to the run's last records:
    counts, last step and epoch, last values, best eval. The whole-run ones (status, timing,
    anomalies, ETA) stay as they were: `watch` redoes those less often on a long run."""
    steps, epochs = last_train_axes(run)
    estimated = sum(t.estimated_count for _, t in run.tables(TRAIN))
    last = last_train_row(run)
    return dict(summary,
                last_step=as_int(steps[-1]) if len(steps) else None,
                last_step_estimated=bool(last and last[0].estimated[last[1]]),
                last_epoch=plain(epochs[-1]) if len(epochs) else None,
                train_records=run.count(TRAIN),
                estimated_steps=estimated,
                repeated_records=run.repeats + int(run.info.get("repeated_evaluations", 0)),
                values_cut=int(run.info.get("values_cut", 0)),
                eval_records=run.count(EVAL),
                segments=len([s for s in run.segments if not s.is_empty()]),
                trainings=len(lineage_starts(run)) if run.count(TRAIN) else 0,
                began=began_midway(run),
                final={k: json_number(v) for k, v in final_values(run).items()},
                final_steps=final_steps(run),
                best=best(run),
                unparsed_lines=run.unparsed)


def summary_json(summaries: list[Summary]) -> str:
    """The text `summary --json` prints (also served by `watch --serve` at /api/summary)."""
    return json.dumps({"runs": summaries}, ensure_ascii=False, indent=2, allow_nan=False)
