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
