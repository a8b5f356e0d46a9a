"""Parse speed and memory of `logreport summary` / `export` against grep, awk and a Python loop.

usage: python bench/parse.py [--mb 1000] [--dir DIR] [--logreport CMD] [--only FORMAT] [--scaling]
Generates (once, cached in DIR) a PaddleDetection log with shared/checks/genbig.py and a
LLaMA-Factory console log built by repeating and renumbering the lines of the real fixture
shared/fixtures/realrun/llamafactory/sft_lora/console.log (tqdm redraws kept), then times each
command on the page-cached file. Prints seconds, MB/s, ratio to awk and peak RSS.
--scaling: instead, `summary` on the first 1/27, 1/9, 1/3 and all of each log (whole lines),
to show how peak memory grows with the file.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

SHARED = os.environ.get("LOGREPORT_SHARED", "/work/shared")
AWK = r"""awk '/Epoch: \[/ {n++; for(i=1;i<=NF;i++) if($i=="loss:") s+=$(i+1)} END{print n, s}'"""
PY_LOOP = r"""import re, sys
pat = re.compile(r"loss: ([-\d.naif]+)")
n = s = 0
with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
    for line in f:
        m = pat.search(line)
        if m:
            n += 1; s += float(m.group(1))
print(n, s)"""


def ppdet_log(path: str, mb: int) -> None:
    lines = int(mb * 1e6 / 313)  # genbig lines are ~313 bytes
    subprocess.run([sys.executable, f"{SHARED}/checks/genbig.py", path, str(lines)], check=True)


def lf_log(path: str, mb: float, src: str = f"{SHARED}/fixtures/realrun/llamafactory/sft_lora/console.log",
           reps: int | None = None) -> int:
    """The real console log with its training part (tqdm frames, metric dicts, evals) repeated
    `reps` times (default: to about `mb` MB): the training bar's counts renumbered into one long
    run ("Total optimization steps" too); eval bars and everything else as printed. Returns
    the training steps written."""
    text = open(src, "rb").read()
    start = text.rindex(b"\n", 0, text.index(b"\r  0%|")) + 1       # the training bar's line
    end = text.rindex(b"\n", 0, text.index(b"Training completed")) + 1
    head, body, tail = text[:start], text[start:end], text[end:]
    per = int(re.search(rb"Total optimization steps = (\d+)", head).group(1))
    reps = reps or max(1, int(mb * 1_000_000 // len(body)))
    count = re.compile(rb"(\d+)/%d \[" % per)
    head = head.replace(b"Total optimization steps = %d" % per,
                        b"Total optimization steps = %d" % (reps * per))
    with open(path, "wb") as out:
        out.write(head)
        for k in range(reps):
            out.write(count.sub(lambda m, k=k: b"%d/%d [" % (int(m.group(1)) + k * per,
                                                             reps * per), body))
        out.write(tail)
    return reps * per


def timed(cmd: str) -> tuple[float, float]:
    """(seconds, peak RSS MB) of a shell command (stdout to a file: GNU grep stops at the
    first match when it writes to /dev/null)."""
    with tempfile.NamedTemporaryFile() as rss, tempfile.NamedTemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.run(f"/usr/bin/time -f %M -o {rss.name} {cmd} > {out.name}",
                              shell=True, stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - t0
        if proc.returncode:
            return float("nan"), float("nan")
        return seconds, int(open(rss.name).read().split()[-1]) / 1024


def bench(path: str, logreport: str, workdir: str) -> None:
    size = os.path.getsize(path) / 1e6
    subprocess.run(f"cat {shlex.quote(path)} > /dev/null", shell=True)
    q = shlex.quote(path)
    cmds = [("grep -c loss", f"grep -c loss {q}"), ("awk loss-only", f"{AWK} {q}"),
            ("python re loop", f"{sys.executable} -c {shlex.quote(PY_LOOP)} {q}"),
            ("logreport summary --json", f"{logreport} summary {q} --json"),
            ("logreport export parquet",
             f"{logreport} export {q} -o {shlex.quote(os.path.join(workdir, 'x.parquet'))}")]
    results = []
    for name, cmd in cmds:
        results.append((name, *timed(cmd)))
        print(f"  {name}: {results[-1][1]:.2f} s", file=sys.stderr, flush=True)
    awk = results[1][1]
    print(f"\n{os.path.basename(path)}: {size:.0f} MB, {os.cpu_count()} CPUs")
    print("| command | seconds | MB/s | x awk | peak RSS MB |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds, rss in results:
        if seconds != seconds:
            print(f"| {name} | failed | | | |")
            continue
        print(f"| {name} | {seconds:.2f} | {size / seconds:.0f} | {seconds / awk:.2f} | {rss:.0f} |")


def scaling(path: str, logreport: str, workdir: str) -> None:
    """Peak RSS of `summary` on growing prefixes of the log."""
    size = os.path.getsize(path)
    print(f"\n{os.path.basename(path)}: summary on prefixes")
    print("| prefix MB | seconds | MB/s | peak RSS MB |")
    print("|---:|---:|---:|---:|")
    for part in (27, 9, 3, 1):
        prefix = path
        if part > 1:
            prefix = os.path.join(workdir, f"prefix_{part}_{os.path.basename(path)}")
            if not os.path.exists(prefix):
                with open(path, "rb") as src, open(prefix, "wb") as out:
                    data = src.read(size // part)
                    out.write(data[:data.rindex(b"\n") + 1])
        mb = os.path.getsize(prefix) / 1e6
        subprocess.run(f"cat {shlex.quote(prefix)} > /dev/null", shell=True)
        seconds, rss = timed(f"{logreport} summary {shlex.quote(prefix)} --json")
        print(f"| {mb:.0f} | {seconds:.2f} | {mb / seconds:.0f} | {rss:.0f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=1000, help="size of each generated log")
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "logreport-bench"))
    ap.add_argument("--logreport", default=f"{sys.executable} -m logreport")
    ap.add_argument("--only", choices=["ppdet", "llamafactory"], help="bench one log only")
    ap.add_argument("--scaling", action="store_true", help="peak memory against file size")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    for name, make in (("ppdet", ppdet_log), ("llamafactory", lf_log)):
        if args.only and name != args.only:
            continue
        path = os.path.join(args.dir, f"{name}_{args.mb}mb.log")
        if not os.path.exists(path):
            make(path, args.mb)
        (scaling if args.scaling else bench)(path, args.logreport, args.dir)


if __name__ == "__main__":
    main()
