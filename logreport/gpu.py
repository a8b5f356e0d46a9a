"""`watch --gpu`: GPU utilisation, memory used and power sampled through NVML (nvidia-ml-py).

Samples are Records of the "system" phase: `gpu<i>/util_percent`, `gpu<i>/memory_used_mib`,
`gpu<i>/power_w`, at the last training step seen and the wall-clock time of the sample.
"""
from __future__ import annotations

import time

from .events import SYSTEM, Record

EVERY = 5.0          # seconds between two samples


class GpuUnavailable(Exception):
    """NVML or GPUs are missing; the message says which."""


class GpuSampler:
    def __init__(self, every: float = EVERY):
        try:
            import pynvml
        except ImportError:
            raise GpuUnavailable("no NVML: pip install 'logreport[gpu]' (nvidia-ml-py)") from None
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as e:
            raise GpuUnavailable(f"NVML does not start: {e}") from None
        if not count:
            raise GpuUnavailable("NVML sees no GPU")
        self.nvml = pynvml
        self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        self.every = every
        self.next = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self.next

    def sample(self, step: int | None) -> Record:
        """One reading of every GPU (a metric that fails to read is left out)."""
        self.next = time.monotonic() + self.every
        nvml, metrics = self.nvml, {}
        for i, handle in enumerate(self.handles):
            for name, read in (("util_percent", self._util), ("memory_used_mib", self._memory),
                               ("power_w", self._power)):
                try:
                    metrics[f"gpu{i}/{name}"] = float(read(handle))
                except nvml.NVMLError:
                    pass
        return Record(SYSTEM, metrics, step=step, time=time.time())

    def _util(self, handle) -> float:
        return self.nvml.nvmlDeviceGetUtilizationRates(handle).gpu

    def _memory(self, handle) -> float:
        return self.nvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20

    def _power(self, handle) -> float:
        return self.nvml.nvmlDeviceGetPowerUsage(handle) / 1000      # milliwatts

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except self.nvml.NVMLError:
            pass
