"""How fast `watch` follows a log written faster than its lines can be read one by one.

A writer appends a big log (PaddleDetection, from ../shared/checks/genbig.py) at --rate MB/s
in tenths of a second; the watcher (`watch.Watch`, stepped as its loop steps it) follows it
until it has every record. Beside it, in the same run, the same file read to its end as
`summary` reads it. Prints both rates and their ratio (the follower must stay within 2x).

    python bench/follow_rate.py [--log PATH] [--rate 100]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from logreport.reader import load  # noqa: E402
from logreport.watch import Options, Watch  # noqa: E402

GENBIG = Path(os.environ.get("GENBIG", "/work/shared/checks/genbig.py"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", default=None, help="log to write (default: genbig's 300k lines)")
    ap.add_argument("--rate", type=float, default=100.0, help="MB/s the writer appends")
    args = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="logreport-follow-")
    src = args.log or os.path.join(folder, "big.log")
    if not args.log:
        subprocess.run([sys.executable, str(GENBIG), src, "300000"], check=True)
    data = Path(src).read_bytes()
    started = time.perf_counter()
    records = load(src).count()
    read_s = time.perf_counter() - started

    out = os.path.join(folder, "run.log")
    open(out, "wb").close()
    watch = Watch(out, Options(output=os.path.join(folder, "r.html")))
    watch.reader.backlog()
    piece = int(args.rate * 1e6 / 10)

    def write() -> None:
        with open(out, "ab") as f:
            for i in range(0, len(data), piece):
                f.write(data[i:i + piece])
                f.flush()
                time.sleep(0.1)

    writer = threading.Thread(target=write)
    started = time.perf_counter()
    writer.start()
    while writer.is_alive() or watch.reader.run().count() < records:
        watch.step()
    follow_s = time.perf_counter() - started
    writer.join()
    watch.finish()
    mb = len(data) / 1e6
    print(f"{mb:.0f} MB, {records} records, written at {args.rate:g} MB/s "
          f"({mb / args.rate:.1f} s)")
    print(f"read to its end (summary's reader): {read_s:.2f} s, {mb / read_s:.0f} MB/s")
    print(f"followed as written (watch):        {follow_s:.2f} s, {mb / follow_s:.0f} MB/s "
          f"= {follow_s / read_s:.2f}x the read (bound: 2x)")


if __name__ == "__main__":
    main()
