"""Record the NVML readings `watch --gpu` takes (logreport/gpu.py), idle and under a bf16 matmul
load, each beside nvidia-smi's reading of the same moment: tests/data/gpu_run/nvml_readings.json.
On a GPU machine (nvidia-ml-py, torch): python3 record_nvml.py OUT.json"""
import importlib.metadata as md
import json
import subprocess
import sys
import threading
import time

import pynvml as N
import torch

Q = "utilization.gpu,memory.used,memory.total,power.draw,power.draw.instant"


def smi():
    out = subprocess.run(["nvidia-smi", "--query-gpu=" + Q, "--format=csv,noheader,nounits"],
                         capture_output=True, text=True).stdout
    return [dict(zip(Q.split(","), line.split(", "))) for line in out.strip().splitlines()]


def read(h):
    u, m = N.nvmlDeviceGetUtilizationRates(h), N.nvmlDeviceGetMemoryInfo(h)
    return {"utilization": {"gpu": u.gpu, "memory": u.memory},
            "memory": {"total": m.total, "free": m.free, "used": m.used},
            "power_mw": N.nvmlDeviceGetPowerUsage(h)}


def work(stop):
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    while not stop.is_set():
        for _ in range(10):
            a @ a
        torch.cuda.synchronize()


def sample(hs, phase):
    return {"t": round(time.time(), 3), "phase": phase, "gpus": [read(h) for h in hs],
            "nvidia_smi": smi()}


N.nvmlInit()
hs = [N.nvmlDeviceGetHandleByIndex(i) for i in range(N.nvmlDeviceGetCount())]
rec = {"device": N.nvmlDeviceGetName(hs[0]), "driver": N.nvmlSystemGetDriverVersion(),
       "nvml": N.nvmlSystemGetNVMLVersion(), "nvidia_ml_py": md.version("nvidia-ml-py"),
       "torch": torch.__version__, "count": len(hs), "nvidia_smi_query": Q, "samples": []}
try:
    N.nvmlDeviceGetFanSpeed(hs[0])
except N.NVMLError as e:                  # a reading this GPU does not have (no fan)
    rec["error"] = {"call": "nvmlDeviceGetFanSpeed", "value": e.value, "text": str(e)}
for _ in range(3):
    rec["samples"].append(sample(hs, "idle"))
    time.sleep(0.5)
stop = threading.Event()
t = threading.Thread(target=work, args=(stop,))
t.start()
time.sleep(2)
for _ in range(8):
    rec["samples"].append(sample(hs, "load"))
    time.sleep(0.5)
stop.set()
t.join()
N.nvmlShutdown()
json.dump(rec, open(sys.argv[1], "w"), indent=1)
print(json.dumps(rec)[:1500])
