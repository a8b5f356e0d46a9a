"""Registry of log formats, and detection of the format of some lines.

A format module has NAME, TITLE, SAMPLES (real lines with the events they must give),
sniff(lines) -> score in [0, 1], and Parser with feed(text, number) -> events and finish().
feed returns a list of events (empty for a line it knows, such as a progress bar or library
chatter), or None for a line it does not understand: those are counted as unparsed.
A format may also name, as tuples of metric names, its main eval metrics (MAIN_EVAL, best
first), main losses (MAIN_LOSS), throughput metrics (THROUGHPUT) and bookkeeping metrics that
are kept but not charted (HIDDEN); `trait` reads them.
"""
from __future__ import annotations

from importlib import import_module

# Order matters only for ties; the sample test checks that no two formats claim one sample.
_MODULES = ("ppdet", "hf_trainer", "llamafactory", "paddleocr", "paddleclas", "paddleseg", "paddlenlp")
THRESHOLD = 0.02


def all_formats() -> list:
    return [import_module(f"{__name__}.{name}") for name in _MODULES]


def get(name: str):
    for fmt in all_formats():
        if name == fmt.NAME:
            return fmt
    return None


def trait(name: str | None, constant: str) -> tuple:
    """A format's MAIN_EVAL, MAIN_LOSS, THROUGHPUT or HIDDEN names; () if it has none."""
    fmt = get(name) if name else None
    return tuple(getattr(fmt, constant, ()))


def names() -> list[str]:
    return [fmt.NAME for fmt in all_formats()]


def scores(lines: list[str]) -> list[tuple[float, object]]:
    """Every format's score for these lines, best first."""
    ranked = [(fmt.sniff(lines), fmt) for fmt in all_formats()]
    ranked.sort(key=lambda pair: -pair[0])
    return ranked


def not_applicable(name: str | None, metric: str) -> float | None:
    """The value a format prints for "not applicable" in this metric (COCO's -1 for an area
    with no objects), or None: such a value is never drawn, best, compared or alarmed on."""
    fmt = get(name) if name else None
    for pattern, value in getattr(fmt, "SENTINELS", ()):
        if pattern.search(metric):
            return value
    return None


def detect(lines: list[str]):
    """The format these lines are in, or None."""
    ranked = scores(lines)
    if ranked and ranked[0][0] >= THRESHOLD:
        return ranked[0][1]
    return None
