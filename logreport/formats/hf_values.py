"""How the Trainer and its loggers print values and facts (part of the hf_trainer parser, also
read by its fast path and by paddlenlp): numbers as printed (quoted, tensors, timedeltas), a
printed dict's items, tqdm's clock, a logger line's stamp, the facts of the training banner.
"""
from __future__ import annotations

import functools
import math
import re
from datetime import datetime

_PAIR = re.compile(r"'([^']+)': ?(?:'([^']*)'|tensor\(([^,)]+)[^)]*\)|([^,}]+))")
_DELTA = re.compile(r"^(?:(\d+) days?, )?(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")
# A tqdm frame from its percentage on (`bars` adds the description before it, if any).
BAR = re.compile(r"(?P<pct>[ \d]{2}\d)%\|[^|]*\| *(?P<n>\d+)/(?P<total>\d+|\?)"
                 r" \[(?P<elapsed>\d+:\d{2}(?::\d{2})?)<(?P<remaining>\d+:\d{2}(?::\d{2})?|\?),"
                 r" *(?:\?|\d+(?:\.\d+)?)"
                 r"(?P<unit>[^\]\[,\s{/]*/s|s/[^\]\[,\s{/]+)(?:,[^\]\r\n{]*)?\]?")
_FACTS = [      # each matched against one part of a message (" | " parts: Unsloth's banner)
    (re.compile(r"(?:^|\s)Num examples = ([\d,]+)$"), "num_examples"),
    (re.compile(r"(?:^|\s)Num Epochs = ([\d,]+)$"), "num_train_epochs"),
    (re.compile(r"^\s*Total (?:train )?batch size(?: \(.*\))? = ([\d,]+)$"), "total_train_batch_size"),
    (re.compile(r"^\s*Total (?:optimization |training )?steps = ([\d,]+)$"), "total_steps"),
    (re.compile(r"^\s*Gradient [Aa]ccumulation steps = (\d+)$"), "gradient_accumulation_steps"),
    (re.compile(r"world size: (\d+),"), "world_size"),
]


def bars(text: str):
    """The tqdm frames in a text, as `(?:(?P<desc>[^|\\r\\n]*?): )?` + BAR would find them: (start,
    description or None, match). The description is read back from the frame's start (a lazy
    group before the frame would scan the rest of the line at every position)."""
    pos = 0
    while True:
        m = BAR.search(text, pos)
        if m is None:
            return
        start, desc = m.start(), None
        if start - 2 >= pos and text[start - 2:start] == ": ":
            desc_start = max(pos, *(text.rfind(c, pos, start - 2) + 1 for c in "|\r\n"))
            start, desc = desc_start, text[desc_start:start - 2]
        yield start, desc, m
        pos = m.end()


def plain_bar(m: re.Match, desc: str | None) -> tuple | None:
    """(total, count, elapsed, remaining) of a tqdm frame (BAR's match; `desc`: its
    description) that can be the training bar: no description, a total, it/s or s/it."""
    total, unit, n, elapsed, remaining = m.group("total", "unit", "n", "elapsed", "remaining")
    if desc or total == "?" or not unit.endswith(("it/s", "s/it")):
        return None
    return int(total), int(n), elapsed, remaining


def facts_of(msg: str) -> list[tuple[str, int]]:
    """(name, value) of each fact a message states (_FACTS): the Trainer's banner states one
    a line, Unsloth's several (`Num examples = 11,015 | Num Epochs = 1 | Total steps = 300`)."""
    if " = " not in msg and "world size: " not in msg:   # what all _FACTS need
        return []
    out = []
    for part in msg.split(" | "):
        for pattern, name in _FACTS:
            m = pattern.search(part)
            if m:
                out.append((name, int(m.group(1).replace(",", ""))))
                break
    return out


def number(text: str) -> float | None:
    """A value as printed: number, nan/inf, a quoted 4.x/5.x number, or a timedelta."""
    text = text.strip().strip("'")
    try:
        return float(text.replace(",", "")) if "," in text and ":" not in text else float(text)
    except ValueError:
        pass
    m = _DELTA.match(text)
    if m:
        days = int(m.group(1) or 0)
        return days * 86400 + int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))
    return None


def parse_dict(text: str) -> dict[str, float]:
    """The numeric items of a printed Python dict (repr, with bare nan/inf or quoted numbers)."""
    out: dict[str, float] = {}
    for key, quoted, tensor, bare in _PAIR.findall(text):
        printed = quoted or tensor or bare
        try:
            out[key] = float(printed)       # (most values: what `number` gives them)
        except ValueError:
            value = number(printed)
            if value is not None:
                out[key] = value
    return out


@functools.lru_cache(maxsize=4096)
def clock_seconds(text: str) -> float:
    """tqdm's [MM:SS] or [H:MM:SS] (hours may exceed 99)."""
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


def stamp(year, month, day, hh, mm, ss) -> float | None:
    """Seconds since 1970 of a logger line's stamp (None for a date that is none)."""
    midnight = _midnight(year, month, day)
    hh, mm, ss = int(hh), int(mm), int(ss)
    if midnight is None or not (0 <= hh < 24 and 0 <= mm < 60 and 0 <= ss < 60):
        return None
    return midnight + (hh * 3600 + mm * 60 + ss)


@functools.lru_cache(maxsize=256)
def _midnight(year, month, day) -> float | None:
    """Seconds since 1970 of a day's start (None for a date that is none): a log's lines
    share a few days."""
    try:
        return (datetime(int(year), int(month), int(day)) - datetime(1970, 1, 1)).total_seconds()
    except ValueError:
        return None


_ARGUMENT = re.compile(r"^(\w+)\s*[=:]\s*([\w/.@-]+),?$")


def argument(msg: str, name: str) -> str | None:
    """The value of a Trainer argument its arguments' dump states on this line (`logging_steps
    =25,`; PaddleNLP's `metric_for_best_model  :macro_f1`), if it is that one and set."""
    m = _ARGUMENT.match(msg) if msg.startswith(name) else None
    return m.group(2) if m and m.group(1) == name and m.group(2) != "None" else None


def without_timing(metrics: dict) -> dict:
    """An evaluation's values but the time it took (each rank or node measures its own)."""
    return {k: v for k, v in metrics.items() if not k.endswith(("_runtime", "_per_second"))}


def restated(metrics: dict, seen: dict, block: bool = False) -> bool:
    """Whether every value of `metrics` that `seen` has too is the same as printed there (to
    four significant digits, or four decimals: what transformers prints; a metrics `block`
    prints runtimes as H:MM:SS.ss, which are not compared)."""
    return all(math.isclose(value, seen[key], rel_tol=5e-4, abs_tol=5e-5)
               or math.isnan(value) and math.isnan(seen[key])
               for key, value in metrics.items()
               if key in seen and not (block and key.endswith("_runtime")))
