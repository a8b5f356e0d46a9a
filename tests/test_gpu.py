"""`watch --gpu` on NVML readings recorded on an H100 (idle, then under a bf16 matmul load) and
replayed by tests/fake_nvml.py: logreport/gpu.py runs as it is. Each reading was recorded beside
nvidia-smi's reading of the same moment, which the units are checked against."""
from __future__ import annotations

import io
import re
import sys

import pytest
from conftest import DATA
from fake_nvml import RECORDING, SAMPLES, FakeNvml
from rich.console import Console
from test_report import page_data

from logreport.analysis import values
from logreport.events import SYSTEM
from logreport.gpu import GpuSampler, GpuUnavailable
from logreport.live import PlainView
from logreport.watch import Options, Watch

LOG = DATA / "gpu_run" / "hf_trainer_gpt2_h100.log"      # the HF Trainer run of that machine
METRICS = ["gpu0/util_percent", "gpu0/memory_used_mib", "gpu0/power_w"]


@pytest.fixture
def nvml(monkeypatch):
    def install(**kw) -> FakeNvml:
        fake = FakeNvml(**kw)
        monkeypatch.setitem(sys.modules, "pynvml", fake)
        return fake
    return install


def smi(sample: dict, field: str) -> float:
    return float(sample["nvidia_smi"][0][field])


def check_units(values: dict[str, list[float]], samples: list[dict]) -> None:
    """Utilisation in percent and power in watts as nvidia-smi shows them; memory in MiB, moving
    as nvidia-smi's does (NVML's `used` also counts the driver's reserved memory, which
    nvidia-smi leaves out: a constant offset)."""
    assert values["gpu0/util_percent"] == [smi(s, "utilization.gpu") for s in samples]
    for watts, s in zip(values["gpu0/power_w"], samples):
        assert watts == pytest.approx(smi(s, "power.draw"), rel=0.01)   # read ~0.1 s apart
    offsets = [mib - smi(s, "memory.used") for mib, s in zip(values["gpu0/memory_used_mib"],
                                                               samples)]
    assert max(offsets) - min(offsets) <= 1


def test_the_recording_is_of_an_idle_then_loaded_gpu():
    assert RECORDING["device"].startswith("NVIDIA H100") and RECORDING["count"] == 1
    idle = [s for s in SAMPLES if s["phase"] == "idle"]
    load = [s for s in SAMPLES if s["phase"] == "load"]
    assert idle and load and len(SAMPLES) == len(idle) + len(load)
    assert max(smi(s, "memory.used") for s in idle) < min(smi(s, "memory.used") for s in load)
    assert max(smi(s, "power.draw") for s in idle) < min(smi(s, "power.draw") for s in load)


def test_each_reading_becomes_a_system_record_in_nvidia_smis_units(nvml):
    fake = nvml()
    sampler = GpuSampler()
    assert fake.started
    records = [sampler.sample(step) for step in range(len(SAMPLES))]
    sampler.close()
    assert not fake.started
    for step, record in enumerate(records):
        assert (record.phase, record.step, list(record.metrics)) == (SYSTEM, step, METRICS)
    check_units({m: [r.metrics[m] for r in records] for m in METRICS}, SAMPLES)


def test_a_reading_that_fails_is_left_out(nvml):
    nvml(failing=("nvmlDeviceGetPowerUsage",))
    record = GpuSampler().sample(None)
    assert list(record.metrics) == METRICS[:2] and record.step is None


def test_nvml_without_a_gpu_is_unavailable(nvml):
    nvml(count=0)                                  # a synthetic shape: NVML starts, sees no GPU
    with pytest.raises(GpuUnavailable, match="^NVML sees no GPU$"):
        GpuSampler()


def test_the_real_nvml_library_without_a_driver_does_not_start(monkeypatch):
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        said = str(e)
    else:
        pynvml.nvmlShutdown()
        pytest.skip("this machine has an NVIDIA driver")
    with pytest.raises(GpuUnavailable, match=f"^NVML does not start: {re.escape(said)}$"):
        GpuSampler()


def test_watch_gpu_samples_reach_the_run_the_report_and_the_status_line(nvml, tmp_path):
    """The watch loop over the log of the GPU run appended in five pieces, sampling the GPU at
    every turn of the loop."""
    fake = nvml()
    lines = LOG.read_bytes().splitlines(keepends=True)
    pieces = [b"".join(lines[len(lines) * i // 5: len(lines) * (i + 1) // 5]) for i in range(5)]
    log = tmp_path / "run.log"
    log.write_bytes(b"")
    w = Watch(str(log), Options(poll=0.01, output=str(tmp_path / "r.html"), gpu=True))
    w.gpu.every = 0.0

    def keep_going() -> bool:
        if not pieces:
            return False
        with open(log, "ab") as f:
            f.write(pieces.pop(0))
        return True

    assert w.loop(keep_going) == 0
    served = fake.served("nvmlDeviceGetUtilizationRates")
    assert len(served) > 5 and not fake.started
    assert w.run.metric_names(SYSTEM) == METRICS
    series = {m: values(w.run, SYSTEM, m) for m in METRICS}
    check_units({m: list(v[3]) for m, v in series.items()}, served)
    steps = list(series[METRICS[0]][0])       # the last training step when each was taken
    assert steps == sorted(steps) and len(set(steps)) > 1 and steps[-1] == w.summary["last_step"]
    charts = [(c["title"], c["metrics"]) for c in w.data["charts"] if c["phase"] == SYSTEM]
    assert charts == [("GPU util percent", METRICS[:1]), ("GPU memory used mib", METRICS[1:2]),
                      ("GPU power w", METRICS[2:])]
    written = page_data((tmp_path / "r.html").read_text(encoding="utf-8"))
    assert [(c["title"], c["metrics"]) for c in written["charts"] if c["phase"] == SYSTEM] == charts
    assert {m: t["n"] for m, t in written["runs"][0]["series"][SYSTEM].items()} == {
        m: len(served) for m in METRICS}
    out = io.StringIO()
    PlainView(Console(file=out, width=300)).update(w.run, w.summary, 0.0)
    (line,) = out.getvalue().splitlines()
    util, gib, watts = re.search(r" \| gpu0 (\d+)% ([\d.]+) GiB (\d+) W$", line).groups()
    last = served[-1]
    assert float(util) == smi(last, "utilization.gpu")
    assert float(watts) == pytest.approx(smi(last, "power.draw"), rel=0.01)
    assert float(gib) == pytest.approx(series[METRICS[1]][3][-1] / 1024, abs=0.05)
