"""Peak memory, exit code and message of logreport on hostile inputs (issue 16's bounds).

usage: python bench/hostile.py [--gz-gb 10] [--line-mb 1000] [--export-mb 1000] [--dir DIR]
                               [--only NAME ...] [--limit-mb 4000]
Inputs (made once, cached in DIR): /dev/zero; a .gz of --gz-gb GB of zeros; a 2 GB sparse
file; a PaddleDetection line followed by one --line-mb MB line (read by `summary` and, through
`run -- cat`, by watch's follower); a --export-mb MB PaddleDetection log (shared/checks/
genbig.py) exported to .jsonl, .csv and .parquet, and `summary` of it. Each command runs
under RLIMIT_AS --limit-mb (a runaway one ends in MemoryError instead of taking the machine).
The bound is 300 MB peak RSS; the ratio column compares each peak with the baseline of the
same run: `summary` of a small real log (what the interpreter and libraries cost).
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

SHARED = os.environ.get("LOGREPORT_SHARED", "/work/shared")
SMALL = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests", "data",
                     "ppdet", "ppyoloe_crn_s_coco_train.log")
BOUND_MB = 300
PPDET_LINE = (b"[07/01 10:00:00] ppdet.engine INFO: Epoch: [0] [ 0/10] eta: 0:00:10 "
              b"lr: 0.001000 loss: 1.000000 batch_cost: 0.1 data_cost: 0.01 ips: 8.0 images/s\n")


def zeros_gz(path: str, gb: int) -> None:
    subprocess.run(f"head -c {gb}G /dev/zero | gzip -1 > {path}", shell=True, check=True)


def sparse(path: str) -> None:
    with open(path, "wb") as f:
        f.truncate(2 << 30)


def long_line(path: str, mb: int) -> None:
    with open(path, "wb") as f:
        f.write(PPDET_LINE + b"Epoch: [0] [ 1/10] loss: ")
        block = b"x" * (1 << 20)
        for _ in range(mb):
            f.write(block)
        f.write(b"\n" + PPDET_LINE.replace(b"[ 0/10]", b"[ 2/10]"))


def big_log(path: str, mb: int) -> None:
    lines = int(mb * 1e6 / 313)  # genbig lines are ~313 bytes
    subprocess.run([sys.executable, f"{SHARED}/checks/genbig.py", path, str(lines)], check=True)


def measure(argv: list[str], limit_mb: int) -> tuple[float, int, float, str]:
    """(peak RSS MB, exit code, seconds, last stderr line) of one command."""
    def limit():
        size = limit_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=limit)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
            code = os.waitstatus_to_exitcode(status)
        except KeyboardInterrupt:
            proc.kill()
            raise
        seconds = time.perf_counter() - t0
        err.seek(0)
        lines = err.read().decode("utf-8", "replace").strip().splitlines()
    return usage.ru_maxrss / 1024, code, seconds, (lines[-1] if lines else "")[:150]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gz-gb", type=int, default=10)
    ap.add_argument("--line-mb", type=int, default=1000)
    ap.add_argument("--export-mb", type=int, default=1000)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "logreport-hostile"))
    ap.add_argument("--limit-mb", type=int, default=4000, help="RLIMIT_AS of each command")
    ap.add_argument("--only", nargs="*", help="names of the cases to run")
    ap.add_argument("--logreport", default=f"{sys.executable} -m logreport")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    lr = args.logreport.split()
    d = args.dir

    def made(name: str, make, *extra) -> str:
        path = os.path.join(d, name)
        if not os.path.exists(path):
            make(path, *extra)
        return path

    cases = {
        "baseline": lambda: lr + ["summary", SMALL],
        "devzero": lambda: lr + ["summary", "/dev/zero"],
        "gz_bomb": lambda: lr + ["summary", made(f"zeros_{args.gz_gb}g.log.gz", zeros_gz,
                                                 args.gz_gb)],
        "sparse_2g": lambda: lr + ["summary", made("sparse_2g.log", sparse)],
        "line_summary": lambda: lr + ["summary", made(f"line_{args.line_mb}mb.log", long_line,
                                                      args.line_mb)],
        "line_watch": lambda: lr + ["run", "-o", os.path.join(d, "line_run.log"), "--report",
                                    os.path.join(d, "line_run.html"), "--", "cat",
                                    made(f"line_{args.line_mb}mb.log", long_line, args.line_mb)],
    }
    for kind in ("summary", "jsonl", "csv", "parquet"):
        def command(kind=kind):
            log = made(f"ppdet_{args.export_mb}mb.log", big_log, args.export_mb)
            if kind == "summary":
                return lr + ["summary", log, "--json"]
            return lr + ["export", log, "-o", os.path.join(d, f"out.{kind}")]
        cases[f"export_{kind}" if kind != "summary" else "big_summary"] = command
    print(f"| case | peak RSS MB | x baseline | <= {BOUND_MB} | exit | seconds | last stderr line |")
    print("|---|---:|---:|---|---:|---:|---|")
    base = None
    for name, command in cases.items():
        if args.only and name not in args.only and name != "baseline":
            continue
        rss, code, seconds, line = measure(command(), args.limit_mb)
        base = base or rss
        print(f"| {name} | {rss:.0f} | {rss / base:.1f} | {'yes' if rss <= BOUND_MB else 'NO'} | "
              f"{code} | {seconds:.1f} | {line.replace('|', '/')} |", flush=True)


if __name__ == "__main__":
    main()
