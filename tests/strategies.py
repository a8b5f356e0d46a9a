"""Hypothesis strategies shared by the fuzz tests and bench/fuzz.py: real lines, mutated."""
from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from logreport import formats
from logreport.eventsource import format_of

DATA = Path(__file__).parent / "data"

# Examples per property: a few hundred in the test suite, many more from bench/fuzz.py.
settings.register_profile("logreport", deadline=None, database=None,
                          max_examples=int(os.environ.get("LOGREPORT_FUZZ_EXAMPLES", "300")),
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("logreport")


def real_lines() -> list[str]:
    """Lines of every format's samples and of the real fixtures in tests/data."""
    lines: list[str] = []
    for fmt in formats.all_formats():
        for text, _ in fmt.SAMPLES:
            lines.extend(text.split("\n"))
    for path in sorted(DATA.rglob("*")):
        if path.is_file() and path.suffix in (".log", ".txt", ".jsonl", ".json") \
                and not format_of(path.name):             # vdlrecords.*.log is binary
            lines.extend(path.read_text(encoding="utf-8", errors="replace").splitlines()[:60])
    return [line for line in lines if line.strip()]


REAL = real_lines()


@st.composite
def mutated_line(draw) -> str:
    """A real line, truncated, with inserted junk, or with two fields swapped."""
    line = draw(st.sampled_from(REAL))
    how = draw(st.sampled_from(["keep", "truncate", "insert", "swap", "delete"]))
    if how == "truncate":
        return line[: draw(st.integers(0, len(line)))]
    if how == "insert":
        at = draw(st.integers(0, len(line)))
        junk = draw(st.text(min_size=1, max_size=8))
        return line[:at] + junk + line[at:]
    if how == "delete" and line:
        a = draw(st.integers(0, len(line) - 1))
        return line[:a] + line[a + draw(st.integers(1, 10)):]
    if how == "swap":
        parts = line.split(" ")
        if len(parts) > 2:
            i, j = draw(st.integers(0, len(parts) - 1)), draw(st.integers(0, len(parts) - 1))
            parts[i], parts[j] = parts[j], parts[i]
        return " ".join(parts)
    return line


documents = st.lists(st.one_of(mutated_line(), st.text(max_size=80)), max_size=30)
raw_bytes = st.binary(max_size=400)
