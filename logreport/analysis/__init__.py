"""What a run says: its series (`series`), where it stands (`status`), what went wrong
(`anomalies`) and its summary (`summary`), the model every surface renders."""
from __future__ import annotations

from .anomalies import ANOMALY_KINDS, DETECTORS, Thresholds, anomalies, stall
from .series import (
    applicable,
    best,
    evaluation_groups,
    is_loss,
    judged,
    lineage_starts,
    lower_is_better,
    main_eval_metric,
    main_loss,
    recent,
    throughput,
    trainings,
    values,
)
from .status import status, total_steps, wall_seconds
from .summary import Summary, refresh, summarize, summary_json

__all__ = ["ANOMALY_KINDS", "DETECTORS", "Summary", "Thresholds", "anomalies", "applicable",
           "best", "evaluation_groups", "is_loss", "judged", "lineage_starts", "lower_is_better",
           "main_eval_metric", "main_loss", "recent", "refresh", "stall", "status", "summarize",
           "summary_json", "throughput", "total_steps", "trainings", "values", "wall_seconds"]
