"""How figures read, wherever they are shown: numbers, durations, counts, percentages, steps.

One formatter for the terminal, the report page, email and the live views, so a figure reads the
same everywhere (no 0.5333333333333333 in one place and 0.5333 in another).
"""
from __future__ import annotations

import math

from .wording import kind

MISSING = "–"
DIGITS = 6          # significant digits kept of a value printed with more


def number(value) -> str:
    """A value as the log printed it: an integer as one, a short decimal as it is
    (7.5192, 4.201344), a long one to DIGITS significant digits (0.533333); nan/inf as such."""
    if value is None:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    digits = len(text.split("e")[0].replace("-", "").replace(".", "").lstrip("0"))
    return text if digits <= DIGITS + 1 else f"{value:.{DIGITS}g}"


_UNITS = {"en": ("d", "h", "m", "s", " "), "zh": ("天", "小时", "分", "秒", "")}


def duration(seconds, lang: str = "en") -> str:
    """Seconds as people read them: 45s, 2.2s, 7m 23s, 5h 12m, 3d 4h (zh: 7分23秒, 3天4小时)."""
    if seconds is None or not math.isfinite(seconds):
        return MISSING
    d, h, m, s, sep = _UNITS.get(lang, _UNITS["en"])
    seconds = max(float(seconds), 0.0)
    if seconds < 10 and not seconds.is_integer():
        return f"{seconds:.1f}{s}"
    whole = int(round(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}{d}{sep}{hours}{h}" if hours else f"{days}{d}"
    if hours:
        return f"{hours}{h}{sep}{minutes:02d}{m}"
    if minutes:
        return f"{minutes}{m}{sep}{secs:02d}{s}"
    return f"{secs}{s}"


def count(n: int, word: str, plural: str | None = None) -> str:
    """'1 anomaly', '3 anomalies', '0 records'."""
    return f"{n} {word if n == 1 else plural or word + 's'}"


def percent(value) -> str:
    if value is None:
        return MISSING
    return f"{value:.0f} %" if value >= 10 or value == 0 else f"{value:.1f} %"


def step_of(step, total, estimated: bool = False) -> str:
    """'127/200' (the total when known); '~127/200' for a step the log does not state."""
    if step is None:
        return MISSING
    return step_number(step, estimated) + (f"/{number(total)}" if total else "")


def metric(name: str, value) -> str:
    """'bbox/AP 0.096'."""
    return f"{name} {number(value)}"


def where(step=None, epoch=None, estimated: bool = False) -> str:
    """'epoch 59' (the epoch when known, else the step: 'step ~60' for an estimate)."""
    if epoch is not None:
        return f"epoch {number(epoch)}"
    return f"step {step_number(step, estimated)}" if step is not None else ""


def final_step(summary: dict, name: str) -> tuple:
    """(step, estimated) of the record that logged the final value of `name`: `last_step`
    unless `final_steps` names another (None: the log does not state it)."""
    steps = summary.get("final_steps") or {}
    if name in steps:
        return steps[name], False
    return summary.get("last_step"), bool(summary.get("last_step_estimated"))


def logged_before(summary: dict, name: str) -> str:
    """' @ step 380' where the final value of `name` was logged before the last step."""
    step = (summary.get("final_steps") or {}).get(name)
    return "" if step is None else f" @ step {number(step)}"


def step_number(step, estimated: bool = False) -> str:
    """'719'; '~719' for a step the log does not state (an estimate)."""
    return ("~" if estimated else "") + number(step)


def best(summary_best: dict | None) -> str:
    """'bbox/AP 0.096 @ epoch 59, step 719' ('step ~719' where the step is an estimate)."""
    if not summary_best:
        return MISSING
    b = summary_best
    step = (f"step {step_number(b['step'], b.get('step_estimated'))}"
            if b.get("step") is not None else "")
    at = ", ".join(x for x in (where(epoch=b.get("epoch")), step) if x)
    others = b.get("alongside") or ()          # several alike: the first, and the others'
    return metric(b["metric"], b["value"]) + (f" @ {at}" if at else "") \
        + (" (as the log states)" if b.get("stated") else "") \
        + (" (of the log's last training)" if b.get("last_training") else "") \
        + _separate(b.get("separate_evaluations", 0)) \
        + (f" (first of {len(others) + 1}; also {', '.join(map(best, others))})" if others else "")


def _separate(n: int) -> str:
    """What a best of separate evaluations (processes that only evaluated) leaves out."""
    if not n:
        return ""
    return " (of a separate evaluation run; the training's not compared)" if n == 1 else \
        f" (the last of {n} separate evaluation runs, not compared)"


def status(summary: dict) -> str:
    """'finished', 'finished with anomalies (nan, zero_loss)', 'failed', 'running'."""
    state = summary.get("status") or "unknown"
    found = sorted({a["kind"] for a in summary.get("anomalies") or []})
    if found and state != "failed":
        return f"{state} with anomalies ({', '.join(found)})"
    return state


def kinds(anomalies: list[dict], lang: str = "en") -> str:
    """'nan ×2, spike' (or 'none'); in Chinese '非有限值（nan）×2、突增（spike）'."""
    counts: dict[str, int] = {}
    for a in anomalies:
        counts[a["kind"]] = counts.get(a["kind"], 0) + 1
    return ("、" if lang == "zh" else ", ").join(
        f"{kind(k, lang)} ×{n}" if n > 1 else kind(k, lang) for k, n in counts.items()) or "none"
