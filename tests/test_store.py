"""store.Column keeps every value bit for bit, in much less memory than float64."""
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest
from golden import cases, facts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logreport import store
from logreport.analysis import summarize
from logreport.reader import load
from logreport.store import Column

DATA = Path(__file__).parent / "data"


def bits(a) -> list[int]:
    return np.asarray(a, dtype=np.float64).view(np.int64).tolist()


decimals = st.builds(lambda m, d: m / 10.0 ** d, st.integers(-10 ** 9, 10 ** 9), st.integers(0, 8))
values = st.lists(st.one_of(decimals, st.floats(allow_nan=True, allow_infinity=True),
                            st.sampled_from([0.0, -0.0, float("nan"), 1e-300, 5e-324])),
                  max_size=60)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # CHUNK is set once
@pytest.mark.timeout(120)      # a property: many examples
@given(parts=st.lists(st.tuples(st.booleans(), values), max_size=6))
def test_every_value_comes_back_bit_for_bit(parts, monkeypatch):
    monkeypatch.setattr(store, "CHUNK", 8)     # seal often
    column, want = Column(), []
    for one_by_one, chunk in parts:
        if one_by_one:
            for v in chunk:
                column.append(v)
        else:
            column.extend(np.array(chunk, dtype=np.float64))
        want += chunk
    assert len(column) == len(want)
    assert bits(column) == bits(want)
    assert bits(list(column)) == bits(want)
    for lo, hi in ((0, len(want)), (3, 17), (len(want) - 5, len(want) + 3)):
        assert bits(column.slice(lo, hi)) == bits(want[max(lo, 0):hi])
    if want:
        assert bits([column[-1], column[0]]) == bits([want[-1], want[0]])
        idx = np.arange(0, len(want), 3)
        assert bits(column.take(idx)) == bits([want[i] for i in idx])
        column[-1] = 2.5
        assert column[len(want) - 1] == 2.5


def test_only_the_open_tail_can_be_replaced(monkeypatch):
    monkeypatch.setattr(store, "CHUNK", 4)
    column = Column()
    column.extend(np.arange(10.0))
    with pytest.raises(IndexError):
        column[0] = 1.0


def test_sealed_chunks_live_in_the_spill_file_or_in_memory_when_it_fails(monkeypatch):
    values = np.arange(3 * store.CHUNK + 5) / 100.0
    column = Column(store.Spill())
    column.extend(values)
    assert all(isinstance(c.payload, tuple) for c in column._chunks)     # (offset, length)
    assert bits(column) == bits(values)

    def no_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.tempfile, "TemporaryFile", no_disk)
    column = Column(store.Spill())
    column.extend(values)
    assert all(isinstance(c.payload, bytes) for c in column._chunks)
    assert bits(column) == bits(values)


def test_a_runs_chunks_are_in_its_own_file(monkeypatch):
    """The file goes with the Run: a watch that rebuilds runs does not fill the disk."""
    import gc
    import os

    monkeypatch.setattr(store, "CHUNK", 64)
    run = load(str(DATA / "ppdet" / "picodet_s_320_coco_long80e.log"))
    file = run.spill._file
    assert "(deleted)" in os.readlink(f"/proc/self/fd/{file.fileno()}")   # unlinked already
    assert os.fstat(file.fileno()).st_size > 0
    del run
    gc.collect()
    assert file.closed


def test_printed_decimals_take_a_few_bits():
    """The columns of a real ppdet log: loss terms printed with 6 decimals cost ~3 bytes,
    steps, epochs, learning rate and memory almost nothing; NaN comes back as NaN."""
    text = gzip.open(DATA / "bench" / "genbig_excerpt.log.gz", "rt").read()
    loss = [float(x) for x in re.findall(r" loss: (\S+)", text)]
    steps = [float(x) for x in re.findall(r"\[ *(\d+)/\d+\]", text)]
    for vals, most in ((loss, 3.5), (steps, 0.5)):
        vals = (vals * 10)[:store.CHUNK + 1]   # one sealed chunk and the open last value
        column = Column()
        for v in vals:
            column.append(v)
        assert (column.nbytes - 8) / store.CHUNK < most
        assert bits(column) == bits(vals)
    column = Column()
    column.extend(np.array(loss * 10 + [float("nan"), float("inf")]))
    assert np.isnan(column[-2]) and column[-1] == float("inf")


def test_a_decaying_learning_rate_is_kept_as_decimals():
    """A learning rate that decays to near 0 over a chunk, printed with 4 digits as
    transformers 5 prints it ('learning_rate': '4.917e-05'): its smallest values need 10
    decimals where its first need 6; the chunk is stored as mantissas (not raw float64, which
    cost 5x the bytes and 3x the time to seal), bit for bit."""
    n = store.CHUNK
    text = (DATA / "llamafactory" / "sft_lora" / "console.log").read_text()
    assert re.search(r"'learning_rate': '\d\.\d{3}e-0\d'", text)
    vals = [float(f"{5e-3 * (1 - s / n):.4g}") for s in range(n)] + [0.0]
    column = Column()
    column.extend(np.array(vals))
    assert column._chunks[0].decimals is not None
    assert (column.nbytes - 8) / n < 0.5
    assert bits(column) == bits(vals)


CASES = cases()


@pytest.mark.parametrize("path,expected", CASES, ids=[c[0].name for c in CASES])
def test_fixtures_parse_the_same_with_tiny_chunks(path, expected, monkeypatch):
    """Sealing after every 3 values changes nothing a fixture parses to."""
    want = json.loads(expected.read_text(encoding="utf-8"))
    monkeypatch.setattr(store, "CHUNK", 3)
    got = facts(load(str(path)))
    assert {k: got.get(k) for k in want} == want


ANOMALY_CASES = sorted(str(path.relative_to(DATA)) for path, _ in cases())


@pytest.mark.parametrize("case", ANOMALY_CASES)
def test_summaries_are_the_same_read_a_few_records_at_a_time(case, monkeypatch):
    """Analysis reads series a chunk at a time (bounded memory): with 3-record chunks every
    figure and anomaly (nan, zero loss, spikes, divergence, throughput drops...) is the same."""
    normal = summary_text(load(str(DATA / case)))
    monkeypatch.setattr(store, "CHUNK", 3)
    assert summary_text(load(str(DATA / case))) == normal


@pytest.mark.parametrize("case", ANOMALY_CASES[::4])
def test_report_series_are_the_same_read_a_few_records_at_a_time(case, monkeypatch):
    from logreport.report import trace

    def series(run):
        return [trace(run, phase, name) for phase in ("train", "eval")
                for name in run.metric_names(phase)]

    normal = series(load(str(DATA / case)))
    monkeypatch.setattr(store, "CHUNK", 3)
    assert series(load(str(DATA / case))) == normal


def summary_text(run) -> str:
    """The summary, less the evidence that says how long ago the file changed."""
    summary = summarize(run)
    summary.pop("status_evidence")
    return json.dumps(summary, default=str)


@pytest.mark.parametrize("case", ["ppdet/rtdetr_r18vd_coco_train.log",
                                  "ppdet/picodet_s_320_coco_long80e.log",
                                  "ppdet/ppyoloe_crn_s_coco_diverge_lr1000.log"])
def test_sensitive_thresholds_find_the_same_with_tiny_chunks(case, monkeypatch):
    """Low thresholds make many stretches and spikes, some across chunk edges."""
    from logreport.analysis import Thresholds, anomalies

    th = Thresholds(throughput_drop=0.02, throughput_records=2, spike_factor=1.05,
                    spike_min_history=1, zero_loss_records=1, divergence_factor=1.01)
    normal = anomalies(load(str(DATA / case)), th)
    assert len(normal) >= 3
    monkeypatch.setattr(store, "CHUNK", 3)
    assert anomalies(load(str(DATA / case)), th) == normal
