"""Latency of `logreport watch --serve` and its CPU use while idle.

Appends a real log line by line while `watch --serve --no-tui` follows it; for each training
line, measures the time from the write until /api/summary counts the new record. Then leaves the
log alone for --idle seconds and reads the CPU seconds the watcher used, beside `tail -F` on the
same file over the same time as a baseline.

--backlog BIG: the followed file starts as a copy of BIG (say bench/parse.py's 1 GB log):
first `summary` is timed on it, then the time `watch` takes to serve all of its records (the
live state), then the appends are measured on top of it. The watcher's peak RSS is printed.

    python bench/watch_latency.py [--log PATH] [--idle 60] [--poll SECONDS] [--backlog BIG]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
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


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a process, from /proc (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024


def timed_summary(cmd: list[str], log: str) -> tuple[float, int]:
    """Seconds `summary --json` takes on the log, and the training records it counts."""
    start = time.monotonic()
    out = subprocess.run(cmd + ["summary", log, "--json"], cwd=ROOT, capture_output=True,
                         check=True).stdout
    return time.monotonic() - start, json.loads(out)["runs"][0]["train_records"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", default=str(DEFAULT_LOG), help="real log to replay")
    ap.add_argument("--idle", type=float, default=60.0, help="idle seconds measured")
    ap.add_argument("--poll", type=float, default=None, help="pass --poll to watch")
    ap.add_argument("--logreport", default=None, help="logreport command (default: this tree)")
    ap.add_argument("--backlog", help="big log the followed file starts as")
    args = ap.parse_args()
    lines = Path(args.log).read_bytes().splitlines(keepends=True)
    tmp = tempfile.mkdtemp(prefix="logreport-bench-")
    log = os.path.join(tmp, "run.log")
    logreport = [args.logreport] if args.logreport else [sys.executable, "-m", "logreport"]
    if args.backlog:
        shutil.copyfile(args.backlog, log)
        summary_seconds, backlog_records = timed_summary(logreport, log)
        print(f"backlog {os.path.getsize(log) / 1e6:.0f} MB: summary {summary_seconds:.2f} s, "
              f"{backlog_records} training records", flush=True)
    else:
        open(log, "wb").close()
    started = time.monotonic()
    cmd = logreport + ["watch", log, "--serve", "--port", "0", "--no-tui", "-o", os.path.join(tmp, "r.html")]
    if args.poll:
        cmd += ["--poll", str(args.poll)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = re.search(r"(http://\S+)", proc.stderr.readline().decode()).group(1)
    latencies = []
    try:
        seen = 0
        if args.backlog:
            while records(base) < backlog_records:
                time.sleep(0.05)
            print(f"watch live on the backlog after {time.monotonic() - started:.2f} s "
                  f"(summary: {summary_seconds:.2f} s)", flush=True)
            seen = records(base)
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
        rss = peak_rss_mb(proc.pid)
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
    print(f"watch peak RSS {rss:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
