import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

DATA = Path(__file__).parent / "data"


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def data():
    return DATA


def until(condition, what: str, timeout: float = 30.0, every: float = 0.01):
    """Wait for an event: poll condition() until it is true (returns its value); fail the test
    if it is not true within timeout seconds. Nothing is asserted about how long it took."""
    import time

    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"never happened within {timeout:g} s: {what}")
        time.sleep(every)
    return value


def first_lines(path, count: int) -> bytes:
    """A real log's first `count` lines: what a watch has read of it that far."""
    return b"".join(path.read_bytes().splitlines(keepends=True)[:count])


def collapsed(console: bytes, from_echo: int | None = None) -> bytes:
    """A LlamaBoard console as a UI that collapsed tqdm's redraws shows it: each line cut to
    its last \\r frame; with `from_echo`, pasted from that echo of a dict on, the bar before
    it not selected (as LLaMA-Factory issue #6286 posts one)."""
    lines = [line.rsplit(b"\r", 1)[-1] for line in console.split(b"\n")]
    if from_echo is None:
        return b"\n".join(lines)
    at = [i for i, line in enumerate(lines) if b"callbacks" in line and b" >> {" in line]
    first = lines[at[from_echo]]
    return b"\n".join([first[first.index(b"[INFO"):]] + lines[at[from_echo] + 1:])


def repeated(text: bytes, times: int) -> bytes:
    """The real console log with its training part repeated `times` times, the training bar's
    counts and the dicts' epochs renumbered into one long run (as bench/parse.py makes its big
    log): many runs of training lines, evaluations and checkpoint dumps."""
    import re

    start = text.rindex(b"\n", 0, text.index(b"\r  0%|")) + 1
    end = text.rindex(b"\n", 0, text.index(b"Training completed")) + 1
    head, body, tail = text[:start], text[start:end], text[end:]
    count = re.compile(rb"(\d+)/60 \[")
    epoch = re.compile(rb"'epoch': (')?([\d.]+)'?|(?<=  epoch)( +=) +([\d.]+)")   # (a dict, a block)
    span = max(float(m.group(2)) for m in epoch.finditer(body) if m.group(2))  # a copy's epochs
    head = head.replace(b"Total optimization steps = 60", b"Total optimization steps = %d" % (60 * times))

    def moved(m: re.Match, k: int) -> bytes:
        if m.group(4):
            return m.group(3) + b" %10.4f" % (float(m.group(4)) + k * span)
        quote = m.group(1) or b""
        return b"'epoch': %s%.4f%s" % (quote, float(m.group(2)) + k * span, quote)

    def later(text: bytes, k: int) -> bytes:        # the epochs k copies on
        return epoch.sub(lambda m: moved(m, k), text) if k else text

    return head + b"".join(later(count.sub(lambda m, k=k: b"%d/%d [" % (int(m.group(1)) + 60 * k,
                                                                       60 * times), body), k)
                           for k in range(times)) + later(tail, times - 1)
