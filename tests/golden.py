"""Facts of a parsed run, in the shape of the hand-checked `<case>.expected.json` files."""
from __future__ import annotations

import collections
import json
from pathlib import Path

from logreport.analysis import anomalies, status
from logreport.model import Run, json_number, plain

DATA = Path(__file__).parent / "data"


def cases(refused: bool = False) -> list[tuple[Path, Path]]:
    """(input, expected) pairs: the input is the folder or file named like the expected file;
    `refused`: those whose expected file says that no format claims the log
    (`{"refused": "<the refusal's first words>"}`), else the others."""
    found = []
    for expected in sorted(DATA.glob("*/*.expected.json")):
        stem = expected.name[: -len(".expected.json")]
        candidates = [p for p in expected.parent.glob(stem + "*")
                      if p != expected and (p.is_dir() and p.name == stem
                                            or p.name.startswith(stem + ".")
                                            and not p.name.endswith(".expected.json"))]
        assert len(candidates) == 1, f"{expected}: input is ambiguous or missing: {candidates}"
        if ("refused" in json.loads(expected.read_text(encoding="utf-8"))) == refused:
            found.append((candidates[0], expected))
    return found


def record(table, i: int) -> dict:
    """One record as the log states it: a step the parser estimated (the log prints none) is
    not its step but its `estimated_step`."""
    values = {}
    for name, series in table.series.items():
        for j, r in enumerate(series.rec):
            if r == i:
                values[name] = json_number(series.value[j])
                break
    step = plain(table.step[i])
    out = {"step": step, "epoch": plain(table.epoch[i]), "line": int(table.line[i]),
           "values": values}
    if table.estimated[i]:
        out["step"], out["estimated_step"] = None, step
    return out


REQUIRED = ("format", "status", "anomalies", "train_records", "eval_records")


def facts(run: Run) -> dict:
    train = list(run.tables("train"))
    out = {
        "format": run.format,
        "segments": len([s for s in run.segments if not s.is_empty()]),
        "train_records": run.count("train"),
        "eval_records": run.count("eval"),
        "train_metrics": run.metric_names("train"),
        "eval_metrics": run.metric_names("eval"),
        "markers": dict(collections.Counter(m.kind for m in run.markers)),
        "status": status(run)[0],
        "anomalies": [a["kind"] for a in anomalies(run)],
        "unparsed_lines": run.unparsed,
        "values_cut": run.info.get("values_cut", 0),
    }
    if train:
        out["first_train"] = record(train[0][1], 0)
        out["last_train"] = record(train[-1][1], len(train[-1][1]) - 1)
    out["evals"] = [record(t, i) for _, t in run.tables("eval") for i in range(len(t))]
    return out
