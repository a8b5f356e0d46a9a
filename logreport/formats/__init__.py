"""Registry of log formats, detection of the format of some lines, and what the rest of
logreport may know of a format: its `Descriptor`.

A format module has NAME, TITLE, SAMPLES (real lines with the events they must give),
sniff(lines) -> score in [0, 1], Parser with feed(text, number) -> events and finish(), and
DESCRIPTOR. feed returns a list of events (empty for a line it knows, such as a progress bar
or library chatter), or None for a line it does not understand: those are counted as unparsed.
No format name appears outside this package: the rest asks `describe(name)`.
"""
from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass, field
from importlib import import_module


@dataclass(frozen=True)
class Descriptor:
    """What a format tells the rest of logreport (all optional).

    main_eval / main_loss / throughput: metric names that rank a run, its loss, its speed, best
    first; hidden: bookkeeping metrics kept but not charted; sentinels: (regex of metric names,
    value printed for "not applicable", e.g. COCO's -1); units: metric -> unit for axes;
    zero_based_steps: steps count from 0 (the Nth step is step N-1); ends_by_eta: the tool prints
    no end line, the run is done when its own ETA (`eta_seconds`, with `batch_cost`) ran out;
    note: a line for the report, per language; parser_options: keyword arguments its Parser
    takes (`year`: the year a log was written, for stamps without one); run_files: file name
    patterns that make a folder one run's output, in the order they are read (structured files
    first; one with a leading `*` only names such a file, it marks no folder);
    launcher_files: where the run_files are a launcher's ranks, a regex of its own other files
    in their folder (Paddle's `log/` also keeps other launches' logs: any other log there is a
    run of its own);
    zero_based_epochs: epochs count from 0 (epoch N is the N+1-th); epoch_labels: a record's
    epoch is the one it belongs to (`Epoch: [2]`), not the epochs done (2.35); families: (regex of
    eval metric names, label key) pairs, one chart per family and task (the regex's `task`
    group; COCO's AP by IoU and AP by area); sections: (regex of metric names, section key)
    for metrics the report would otherwise put under "More"; eval_table: regex of the eval
    metrics that make the columns of the report's evaluation table (default: all charted);
    tokens_seen: train metrics counting the tokens seen so far (an x axis); final_eval: a log
    that evaluated during training evaluates once more after its final metrics (transformers'
    do_eval, after the model's save); tool: the tool that writes it (an output folder's files
    of another tool are no part of its run; an event format's, empty: any tool's).
    """

    main_eval: tuple = ()
    main_loss: tuple = ()
    throughput: tuple = ()
    hidden: tuple = ()
    sentinels: tuple = ()
    units: dict = field(default_factory=dict)
    zero_based_steps: bool = False
    ends_by_eta: bool = False
    note: dict = field(default_factory=dict)
    parser_options: tuple = ()
    run_files: tuple = ()
    launcher_files: str = ""
    zero_based_epochs: bool = False
    epoch_labels: bool = False
    families: tuple = ()
    sections: tuple = ()
    eval_table: str = ""
    tokens_seen: tuple = ()
    final_eval: bool = False
    tool: str = ""


NONE = Descriptor()


# Order matters only for ties; the sample test checks that no two formats claim one sample.
_MODULES = ("ppdet", "hf_trainer", "llamafactory", "hf_state", "paddleocr", "paddleclas", "paddleseg",
            "paddlenlp")
_EVENT_MODULES = ("tfevents", "visualdl")      # binary event files: read whole, not by lines
THRESHOLD = 0.02
CLEAR = 0.5         # the score that decides a live log's format on its first few lines


def all_formats() -> list:
    return [import_module(f"{__name__}.{name}") for name in _MODULES]


@functools.cache
def get(name: str):
    """The format module of a name (line formats and event-file formats), or None."""
    for fmt in all_formats() + [import_module(f"{__name__}.{m}") for m in _EVENT_MODULES]:
        if name == fmt.NAME:
            return fmt
    return None


def describe(name: str | None) -> Descriptor:
    """The descriptor of a format (an empty one for no or an unknown format)."""
    fmt = get(name) if name else None
    return getattr(fmt, "DESCRIPTOR", NONE)


def merged(names) -> Descriptor:
    """One descriptor for runs of several formats: each tuple joined, best of each first."""
    found = [describe(n) for n in dict.fromkeys(names)]
    joined = {k: tuple(dict.fromkeys(x for d in found for x in getattr(d, k)))
              for k in ("main_eval", "main_loss", "throughput", "hidden", "sentinels",
                        "families", "sections", "tokens_seen")}
    units = {k: v for d in found for k, v in d.units.items()}
    return Descriptor(**joined, units=units)


def _run_file_pattern(name: str) -> tuple[int, Descriptor] | None:
    """(rank among every format's run_files patterns, its descriptor) of the first pattern
    that names this file, or None."""
    rank = 0
    for fmt in all_formats():
        descriptor = getattr(fmt, "DESCRIPTOR", NONE)
        for pattern in descriptor.run_files:
            if fnmatch.fnmatchcase(name, pattern):
                return rank, descriptor
            rank += 1
    return None


def marks_run_folder(name: str) -> bool:
    """Whether a file of this name makes its folder one run's output: a run_files pattern
    names it other than by a leading `*` (HF's `*_results.json` is read with the run's other
    files, but a `coco_results.json` beside logs of separate runs makes no run of them)."""
    return any(fnmatch.fnmatchcase(name, pattern) for fmt in all_formats()
               for pattern in getattr(fmt, "DESCRIPTOR", NONE).run_files
               if not pattern.startswith("*"))


def run_file_rank(name: str) -> int | None:
    """Where a file of one run's output folder comes in the reading order (None: it does not
    mark such a folder)."""
    found = _run_file_pattern(name)
    return None if found is None else found[0]


def launcher_files(run_files: list[str]) -> re.Pattern | None:
    """Where these run files (names) are a launcher's ranks, the pattern of the launcher's own
    other files (Descriptor.launcher_files); None in another run's folder."""
    found = {(_run_file_pattern(n) or (0, NONE))[1].launcher_files for n in run_files}
    return re.compile(found.pop()) if len(found) == 1 and "" not in found else None


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
    for pattern, value in describe(name).sentinels:
        if re.search(pattern, metric):
            return value
    return None


def detect(lines: list[str], clear: bool = False):
    """The format these lines are in, or None; with `clear` (a few lines: a live log's first),
    only where they are mostly that format's (CLEAR) and no other scores as high (lines two
    formats print alike, or a path with "paddle" in it, decide nothing yet)."""
    ranked = scores(lines)
    if not ranked or ranked[0][0] < (CLEAR if clear else THRESHOLD):
        return None
    if clear and len(ranked) > 1 and ranked[1][0] >= ranked[0][0]:
        return None
    return ranked[0][1]
