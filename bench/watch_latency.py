"""Latency of `logreport watch --serve` and its CPU use while idle.

Appends a real log line by line while `watch --serve --no-tui` follows it; for each training
line, measures the time from the write until /api/summary counts the new record. Then leaves the
log alone for --idle seconds and reads the CPU seconds the watcher used, beside `tail -F` on the
same file over the same time as a baseline.

    python bench/watch_latency.py [--log PATH] [--idle 60] [--poll SECONDS]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LOG = ROOT / "tests" / "data" / "ppdet" / "picodet_s_320_coco_long80e.log"
TRAIN = re.compile(rb"Epoch: \[\d+\] \[\s*\d+/\d+\]|'loss': |\"current_steps\"")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def records(base: str) -> int:
    try:
        with urllib.request.urlopen(base + "api/summary", timeout=5) as r:
            return json.load(r)["runs"][0]["train_records"]
    except urllib.error.HTTPError as e:
        e.close()
        return -1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", default=str(DEFAULT_LOG), help="real log to replay")
    ap.add_argument("--idle", type=float, default=60.0, help="idle seconds measured")
    ap.add_argument("--poll", type=float, default=None, help="pass --poll to watch")
    ap.add_argument("--logreport", default=None, help="logreport command (default: this tree)")
    args = ap.parse_args()
    lines = Path(args.log).read_bytes().splitlines(keepends=True)
    tmp = tempfile.mkdtemp(prefix="logreport-bench-")
    log = os.path.join(tmp, "run.log")
    open(log, "wb").close()
    cmd = [args.logreport] if args.logreport else [sys.executable, "-m", "logreport"]
    cmd += ["watch", log, "--serve", "--port", "0", "--no-tui", "-o", os.path.join(tmp, "r.html")]
    if args.poll:
        cmd += ["--poll", str(args.poll)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = re.search(r"(http://\S+)", proc.stderr.readline().decode()).group(1)
    latencies = []
    try:
        seen = 0
        with open(log, "ab") as f:
            for line in lines:
                f.write(line)
                f.flush()
                if not TRAIN.search(line):
                    continue
                start = time.monotonic()
                while records(base) <= seen and time.monotonic() - start < 10:
                    time.sleep(0.01)
                latencies.append(time.monotonic() - start)
                seen = records(base)
        time.sleep(2)                                   # let the last refresh settle
        tail = subprocess.Popen(["tail", "-F", log], stdout=subprocess.DEVNULL)
        cpu0, tail0 = cpu_seconds(proc.pid), cpu_seconds(tail.pid)
        time.sleep(args.idle)
        cpu = cpu_seconds(proc.pid) - cpu0
        tail_cpu = cpu_seconds(tail.pid) - tail0
        tail.terminate()
        tail.wait()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    latencies.sort()
    p50 = latencies[len(latencies) // 2]
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(f"{len(latencies)} training lines, {seen} records seen")
    print(f"latency write -> /api/summary: p50 {p50:.3f} s, p95 {p95:.3f} s, max {latencies[-1]:.3f} s")
    print(f"idle {args.idle:.0f} s: watch used {cpu:.2f} CPU s ({cpu / args.idle:.2%} of a core); "
          f"baseline tail -F used {tail_cpu:.2f} CPU s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
