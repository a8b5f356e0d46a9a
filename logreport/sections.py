"""Which charts a report draws, and in which section: Evaluation, Losses, Optimisation, Speed and
system, then everything else under More (folded).

`charts(runs)` -> [{"id", "title", "phase", "metrics", "section", ...}] in page order;
`sections(chart_list)` -> [{"key", "charts": [ids], "open"}]. Metric names decide by patterns
(losses, learning rate, throughput, ...); what is particular to a format (COCO's AP families,
DPO's reward terms, units) comes from its descriptor.
"""
from __future__ import annotations

import re

from . import formats
from .analysis import is_loss, main_eval_metric, main_loss
from .events import EVAL, SYSTEM, TRAIN
from .labels import EN
from .model import Run

SECTIONS = ("evaluation", "losses", "optimisation", "speed", "more")
FOLDED = ("more",)                 # sections shown folded
PER_SECOND = "_per_second"         # a rate by its name (samples, steps, tokens): a throughput
OPTIMISATION = re.compile(r"(?:^|[/_])(?:lr|learning_rate|grad_norm|loss_scale|scale|momentum|"
                          r"weight_decay)$")
COST = ("batch_cost", "data_cost")


def charts(runs: list[Run]) -> list[dict]:
    """The charts of these runs, section by section (see the module docstring)."""
    described = formats.merged(run.format for run in runs)
    hidden = set(described.hidden)
    train = _names(runs, TRAIN, hidden)
    evals = _names(runs, EVAL, hidden)
    out = _evaluation(runs, evals, described) + _losses(runs, train, described)
    out += _optimisation(train) + _speed(runs, train, evals, described)
    shown = {m for c in out if c["phase"] == TRAIN for m in c["metrics"]}
    shown_eval = {m for c in out if c["phase"] == EVAL for m in c["metrics"]}
    out += [dict(c, section="more") for c in
            _grouped([n for n in train if n not in shown], TRAIN)
            + _grouped([n for n in evals if n not in shown_eval], EVAL)]
    units, counters = described.units, set(described.tokens_seen)
    for i, chart in enumerate(out):
        if chart["phase"] == TRAIN and set(chart["metrics"]) <= counters:
            chart["smooth"] = False         # a running count (tokens seen): its value is exact
        chart["id"] = f"chart{i}"
        found = {units.get(m) for m in chart["metrics"]}
        if len(found) == 1 and None not in found:
            chart["unit"] = found.pop()
    return out


def sections(chart_list: list[dict]) -> list[dict]:
    """The sections that have charts, in page order, with their chart ids."""
    out = []
    for key in SECTIONS:
        ids = [c["id"] for c in chart_list if c["section"] == key]
        if ids:
            out.append({"key": key, "charts": ids, "open": key not in FOLDED})
    return out


def _names(runs: list[Run], phase: str, hidden: set) -> list[str]:
    names: dict[str, None] = {}
    for run in runs:
        names.update(dict.fromkeys(n for n in run.metric_names(phase) if n not in hidden))
    return list(names)


def _hinted(name: str, section: str, described) -> bool:
    """The descriptor puts this metric in this section."""
    return any(key == section and re.search(pattern, name) for pattern, key in described.sections)


def _evaluation(runs: list[Run], evals: list[str], described) -> list[dict]:
    """Eval metrics (not speed): the format's families (COCO AP@IoU, AP by area), ``prefix/``
    families, else one chart each; the chart of the main metric first, its name kept."""
    names = [n for n in evals if not _is_speed(n, described) and not _hinted(n, "more", described)]
    charts_ = _families(names, described.families)
    grouped = {m for c in charts_ for m in c["metrics"]}
    charts_ += _grouped([n for n in names if n not in grouped], EVAL)
    mains = [m for m in (main_eval_metric(run) for run in runs) if m]
    charts_.sort(key=lambda c: 0 if any(m in c["metrics"] for m in mains) else 1)
    for chart in charts_:
        main = next((m for m in mains if m in chart["metrics"]), None)
        if main:
            chart["main"] = main
    return [dict(c, section="evaluation") for c in charts_]


def _families(names: list[str], families: tuple) -> list[dict]:
    """One chart per (descriptor family, task prefix), in the order of the first member."""
    groups: dict[tuple, list[str]] = {}
    for name in names:
        for pattern, label in families:
            m = re.match(pattern, name)
            if m:
                groups.setdefault((m.groupdict().get("task") or "", label), []).append(name)
                break
    out = []
    for (task, label), members in groups.items():
        chart = _chart(f"{task} {EN.get(label, label)}".strip(), EVAL, members, label=label)
        if task:
            chart["prefix"] = task
        out.append(chart)
    return out


def _losses(runs: list[Run], train: list[str], described) -> list[dict]:
    mains = list(dict.fromkeys(m for m in (main_loss(run) for run in runs) if m))
    out = [_chart(name, TRAIN, [name]) for name in mains if name in train]
    out += [_chart(name, TRAIN, [name]) for name in train
            if is_loss(name) and name not in mains and "/" not in name
            and not OPTIMISATION.search(name)]
    shown = {m for c in out for m in c["metrics"]}
    out += _grouped([n for n in train if n not in shown and _hinted(n, "losses", described)],
                    TRAIN)
    return [dict(c, section="losses") for c in out]


def _optimisation(train: list[str]) -> list[dict]:
    out = []
    for name in train:
        if not OPTIMISATION.search(name):
            continue
        if name == "learning_rate":
            out.append(_chart("learning rate", TRAIN, [name], smooth=False, label="learning_rate"))
        else:
            out.append(_chart(name, TRAIN, [name], smooth="grad" in name))
    return [dict(c, section="optimisation") for c in out]


def _is_speed(name: str, described) -> bool:
    return name in described.throughput or name.endswith(PER_SECOND) or name == "fps"


def _speed(runs: list[Run], train: list[str], evals: list[str], described) -> list[dict]:
    """Throughput, seconds per iteration, memory, eval speed, GPU readings (watch --gpu)."""
    out = []
    speed = [n for n in train if _is_speed(n, described)]
    if speed:
        out.append(_chart("throughput", TRAIN, speed, label="throughput"))
    cost = [n for n in COST if n in train]
    if cost:
        out.append(_chart("seconds per iteration", TRAIN, cost, label="seconds_per_iteration"))
    memory = [n for n in train if "mem" in n.lower() and n not in speed]
    if memory:
        out.append(_chart("memory", TRAIN, memory, smooth=False, label="memory"))
    eval_speed = [n for n in evals if _is_speed(n, described)]
    if eval_speed:
        out.append(_chart("eval throughput", EVAL, eval_speed, label="eval_throughput"))
    system: dict[str, list[str]] = {}
    for run in runs:
        for name in run.metric_names(SYSTEM):         # watch --gpu: gpu<i>/<what>, per what
            system.setdefault(name.rpartition("/")[2], []).append(name)
    for what, names in system.items():
        out.append(_chart(f"GPU {what.replace('_', ' ')}", SYSTEM, sorted(set(names)),
                          smooth=False))
    return [dict(c, section="speed") for c in out]


def _grouped(names: list[str], phase: str) -> list[dict]:
    """One chart per ``prefix/`` family (``bbox/AP*`` and ``bbox/AR*`` apart), else per name."""
    groups: dict[str, list[str]] = {}
    for name in names:
        prefix, _, short = name.rpartition("/")
        if prefix and short[:2] in ("AP", "AR"):
            key = f"{prefix}/{short[:2]}"
        else:
            key = f"{prefix}/*" if prefix else name
        groups.setdefault(key, []).append(name)
    return [_chart(key if len(members) > 1 else members[0], phase, members)
            for key, members in groups.items()]


def _chart(title: str, phase: str, metrics: list[str], smooth: bool = True,
           label: str | None = None) -> dict:
    """smooth: whether the smoothing slider applies (not to a schedule like the lr);
    label: key of a translated title in the page's labels (else the title is shown as is)."""
    chart = {"title": title, "phase": phase, "metrics": metrics, "smooth": smooth}
    if label:
        chart["label"] = label
    return chart
