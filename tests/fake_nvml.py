"""A stand-in for nvidia-ml-py's `pynvml` that replays NVML readings recorded on an H100
(tests/data/gpu_run/nvml_readings.json, written by bench/gpu_run/record_nvml.py), so that
logreport/gpu.py runs as it is on machines without a GPU (CI).

Only the library's functions are stood in for: each reading function returns its next recorded
value (the recording's samples in order, from the first again after the last), shaped as
nvidia-ml-py returns it (`.gpu` percent, memory in bytes, power in milliwatts). Install with
`monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())`.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

RECORDING = json.loads((Path(__file__).parent / "data" / "gpu_run" / "nvml_readings.json")
                       .read_text(encoding="utf-8"))
SAMPLES = RECORDING["samples"]


class NVMLError(Exception):
    """nvidia-ml-py's error: an NVML return code and its text."""

    def __init__(self, value: int, text: str):
        super().__init__(text)
        self.value = value


class FakeNvml:
    NVMLError = NVMLError

    def __init__(self, count: int | None = None, failing: tuple[str, ...] = ()):
        """count: GPUs NVML sees (default: the recording's); failing: reading functions that
        raise the error the H100 really gave for a reading it lacks (its fan speed)."""
        self.count = RECORDING["count"] if count is None else count
        self.failing = failing
        self.calls: Counter = Counter()
        self.started = False

    def served(self, name: str, handle: int = 0) -> list[dict]:
        """The recorded samples that `name` has answered from so far, in order."""
        return [SAMPLES[k % len(SAMPLES)] for k in range(self.calls[name, handle])]

    def _next(self, name: str, handle: int) -> dict:
        if name in self.failing:
            raise NVMLError(RECORDING["error"]["value"], RECORDING["error"]["text"])
        self.calls[name, handle] += 1
        return self.served(name, handle)[-1]["gpus"][handle]

    def nvmlInit(self) -> None:
        self.started = True

    def nvmlShutdown(self) -> None:
        self.started = False

    def nvmlDeviceGetCount(self) -> int:
        return self.count

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(**self._next("nvmlDeviceGetUtilizationRates", handle)["utilization"])

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(**self._next("nvmlDeviceGetMemoryInfo", handle)["memory"])

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return self._next("nvmlDeviceGetPowerUsage", handle)["power_mw"]
