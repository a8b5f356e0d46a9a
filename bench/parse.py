"""Parse speed and memory of `logreport summary` / `export` against grep, awk and a Python loop.

usage: python bench/parse.py [--mb 1000] [--dir DIR] [--logreport CMD] [--only LOG] [--declined]
                            [--scaling] [--realruns]
Generates (once, cached in DIR) a PaddleDetection log with shared/checks/genbig.py, a
LLaMA-Factory console log built by repeating and renumbering the lines of the real fixture
shared/fixtures/realrun/llamafactory/sft_lora/console.log (tqdm redraws kept; an evaluation
every 15 steps, a checkpoint every 30), and (`--only genlf`) the console log of the perf-lf
check (shared/checks/genlf.py: an evaluation every 500 steps) or (`--only stdout`) that log
without tqdm's frames (what `llamafactory-cli train ... | tee` keeps: tqdm draws on stderr),
or (`--only frames`) with each frame on a line of its own (`\r` turned into `\n` on the way),
or (`--only board`) LlamaBoard's console (the real fixture sft_lora_llamaboard repeated as
above: the logger's echo of each dict glued to the bars, then the dict) or (`--only
board_stdout`) that console without tqdm's frames; then times each command on the page-cached
file, `summary` also on one core (taskset) and, with --declined, with the fast path declining
every block (each line read by the line parser: what a console of a shape it does not know
gets).
Prints wall seconds, MB/s, ratio to awk (wall), CPU seconds (user + sys of the command and
its worker processes), cores used (CPU / wall), and peak memory: the largest
sum of the proportional set sizes (PSS: shared pages split between the processes) of the
command and its workers, sampled every 20 ms (the log is read, never mapped: its pages are in
no process). Timings depend on the machine's load: read ratios within one run.
--scaling: instead, `summary` on the first 1/27, 1/9, 1/3 and all of each log (whole lines),
to show how peak memory grows with the file.
--realruns: instead, the console of every real LLaMA-Factory run in shared/fixtures/realrun
that completed its training, its training part repeated to about --mb MB as above: the speed
of `summary` (and on one core) on each shape of console those runs print, against the loop.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

SHARED = os.environ.get("LOGREPORT_SHARED", "/work/shared")
AWK = r"""awk '/Epoch: \[/ {n++; for(i=1;i<=NF;i++) if($i=="loss:") s+=$(i+1)} END{print n, s}'"""
PY_LOOP = r"""import re, sys
pat = re.compile(sys.argv[2])
n = s = 0
with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
    for line in f:
        m = pat.search(line)
        if m:
            n += 1; s += float(m.group(1))
print(n, s)"""
LOSS = {"ppdet": r"loss: ([-\d.naif]+)", "llamafactory": r"'loss': '?([-0-9.e]+|nan)",
        "genlf": r"'loss': '?([-0-9.e]+|nan)", "stdout": r"'loss': '?([-0-9.e]+|nan)",
        "frames": r"'loss': '?([-0-9.e]+|nan)", "board": r"'loss': '?([-0-9.e]+|nan)",
        "board_stdout": r"'loss': '?([-0-9.e]+|nan)"}
# `logreport` with the hf_trainer fast path declining every block: each line goes to feed
DECLINED = ("import sys; from logreport.formats import hf_fast; "
            "hf_fast.BlockPath.prepare_block = lambda self, data: hf_fast.Prepared(None, "
            "parts=[(-1, 0, 0, 0, len(data), None)]); "
            "from logreport.cli import main; sys.argv[0] = 'logreport'; main()")


def ppdet_log(path: str, mb: int) -> None:
    lines = int(mb * 1e6 / 313)  # genbig lines are ~313 bytes
    subprocess.run([sys.executable, f"{SHARED}/checks/genbig.py", path, str(lines)], check=True)


def lf_log(path: str, mb: float, src: str = f"{SHARED}/fixtures/realrun/llamafactory/sft_lora/console.log",
           reps: int | None = None) -> int:
    """The real console log with its training part (tqdm frames, metric dicts, evals) repeated
    `reps` times (default: to about `mb` MB): the training bar's counts and the epochs renumbered
    into one long run ("Total optimization steps" too); eval bars and everything else as printed.
    Returns the training steps written."""
    text = open(src, "rb").read()
    start = text.rindex(b"\n", 0, text.index(b"\r  0%|")) + 1       # the training bar's line
    end = text.rindex(b"\n", 0, text.index(b"Training completed")) + 1
    head, body, tail = text[:start], text[start:end], text[end:]
    per = int(re.search(rb"Total optimization steps = (\d+)", head).group(1))
    reps = reps or max(1, int(mb * 1_000_000 // len(body)))
    count = re.compile(rb"(\d+)/%d \[" % per)
    epoch = re.compile(rb"'epoch': (')?([\d.]+)'?|(?<=  epoch)( +=) +([\d.]+)")   # (a dict, a block)
    span = _epochs_of(head, per) or \
        max(float(m.group(2)) for m in epoch.finditer(body) if m.group(2))    # a copy's epochs
    head = head.replace(b"Total optimization steps = %d" % per,
                        b"Total optimization steps = %d" % (reps * per))

    def moved(m: re.Match, k: int) -> bytes:
        if m.group(4):
            return m.group(3) + b" %10.4f" % (float(m.group(4)) + k * span)
        quote = m.group(1) or b""
        return b"'epoch': %s%.4f%s" % (quote, float(m.group(2)) + k * span, quote)

    with open(path, "wb") as out:
        out.write(head)
        for k in range(reps):
            copy = count.sub(lambda m, k=k: b"%d/%d [" % (int(m.group(1)) + k * per, reps * per), body)
            out.write(epoch.sub(lambda m, k=k: moved(m, k), copy) if k else copy)
        out.write(epoch.sub(lambda m: moved(m, reps - 1), tail))
    return reps * per


def _epochs_of(head: bytes, steps: int) -> float | None:
    """The epochs `steps` training steps take, as the Trainer counts them (examples / total
    batch size steps an epoch: the epoch it prints, to 4 digits, would drift over many copies)."""
    examples = re.search(rb"Num examples = ([\d,]+)", head)
    batch = re.search(rb"Total train batch size \(.*\) = (\d+)", head)
    if not (examples and batch):
        return None
    return steps * int(batch.group(1)) / int(examples.group(1).replace(b",", b""))


def genlf_log(path: str, mb: int) -> None:
    with open(path + ".steps", "w") as steps:
        subprocess.run([sys.executable, f"{SHARED}/checks/genlf.py", path, str(mb)], check=True,
                       stdout=steps)


def stdout_log(path: str, mb: int) -> None:
    """The genlf console with every tqdm frame dropped, each other piece of a line on its own."""
    genlf_log(path + ".console", mb)
    with open(path + ".console", "rb") as src, open(path, "wb") as out:
        for line in src:
            for piece in line.rstrip(b"\n").split(b"\r"):
                if b"%|" not in piece and piece.strip():
                    out.write(piece + b"\n")
    os.remove(path + ".console")


def frames_log(path: str, mb: int) -> None:
    """The genlf console with every tqdm frame on a line of its own."""
    genlf_log(path + ".console", mb)
    with open(path + ".console", "rb") as src, open(path, "wb") as out:
        for line in src:
            out.write(line.replace(b"\r", b"\n"))
    os.remove(path + ".console")


BOARD = f"{SHARED}/fixtures/realrun/llamafactory/sft_lora_llamaboard/console.log"


def board_log(path: str, mb: int) -> None:
    lf_log(path, mb, src=BOARD)


def board_stdout_log(path: str, mb: int) -> None:
    """LlamaBoard's console without tqdm's frames (the bars glued before each echo dropped)."""
    board_log(path + ".console", int(mb * 1.6))
    bar = re.compile(rb"[ \d]{2}\d%\|[^\]\r]*\]")
    with open(path + ".console", "rb") as src, open(path, "wb") as out:
        for line in src:
            for piece in line.rstrip(b"\n").split(b"\r"):
                piece = bar.sub(b"", piece).replace(b"\x1b[A", b"")     # tqdm's cursor moves
                if piece.strip():
                    out.write(piece + b"\n")
    os.remove(path + ".console")


def _tree(pid: int) -> list[int]:
    """A process and its descendants (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in open(f"/proc/{p}/task/{task}/children").read().split()]
        except OSError:
            pass
    return out


def _pss_mb(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def timed(cmd: str) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak PSS MB of the process tree) of a shell command (stdout
    to a file: GNU grep stops at the first match when it writes to /dev/null)."""
    with tempfile.NamedTemporaryFile() as out:
        before = os.times()
        t0 = time.perf_counter()
        proc = subprocess.Popen(f"exec {cmd} > {out.name}", shell=True, stderr=subprocess.DEVNULL)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, _pss_mb(_tree(proc.pid)))
            time.sleep(0.02)
        seconds = time.perf_counter() - t0
        after = os.times()
        if proc.returncode:
            return float("nan"), float("nan"), float("nan")
        cpu = after.children_user + after.children_system - before.children_user \
            - before.children_system
        return seconds, cpu, peak


def bench(path: str, kind: str, logreport: str, workdir: str, declined: bool) -> None:
    size = os.path.getsize(path) / 1e6
    subprocess.run(f"cat {shlex.quote(path)} > /dev/null", shell=True)
    q = shlex.quote(path)
    loop = f"{sys.executable} -c {shlex.quote(PY_LOOP)} {q} {shlex.quote(LOSS[kind])}"
    cmds = [("grep -c loss", f"grep -c loss {q}"), ("awk loss-only", f"{AWK} {q}"),
            ("python re loop, loss only", loop),
            ("logreport summary --json", f"{logreport} summary {q} --json"),
            *([("logreport summary --json, one core", f"taskset -c 0 {logreport} summary {q} --json")]
              if shutil.which("taskset") else []),
            *([("summary, the fast path declining (line parser)",
                f"{sys.executable} -c {shlex.quote(DECLINED)} summary {q} --json")] if declined else []),
            ("logreport export parquet",
             f"{logreport} export {q} -o {shlex.quote(os.path.join(workdir, 'x.parquet'))}")]
    results = []
    for name, cmd in cmds:
        results.append((name, *timed(cmd)))
        print(f"  {name}: {results[-1][1]:.2f} s", file=sys.stderr, flush=True)
    awk, py = results[1][1], results[2][1]
    load = os.getloadavg()[0]
    print(f"\n{os.path.basename(path)}: {size:.0f} MB, {os.cpu_count()} CPUs, load {load:.1f}")
    print("| command | seconds | MB/s | x awk | x loop | CPU s | cores | peak MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, seconds, cpu, mem in results:
        if seconds != seconds:
            print(f"| {name} | failed | | | | | | |")
            continue
        print(f"| {name} | {seconds:.2f} | {size / seconds:.0f} | {seconds / awk:.2f} | "
              f"{seconds / py:.2f} | {cpu:.2f} | {cpu / seconds:.1f} | {mem:.0f} |")


def scaling(path: str, logreport: str, workdir: str) -> None:
    """Peak memory of `summary` on growing prefixes of the log."""
    size = os.path.getsize(path)
    print(f"\n{os.path.basename(path)}: summary on prefixes")
    print("| prefix MB | seconds | MB/s | CPU s | peak MB |")
    print("|---:|---:|---:|---:|---:|")
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
        seconds, cpu, mem = timed(f"{logreport} summary {shlex.quote(prefix)} --json")
        print(f"| {mb:.0f} | {seconds:.2f} | {mb / seconds:.0f} | {cpu:.2f} | {mem:.0f} |", flush=True)


def realruns(mb: int, logreport: str, workdir: str) -> None:
    """`summary` on each real LLaMA-Factory run's console, repeated to about `mb` MB."""
    print(f"\nreal consoles repeated to about {mb} MB, {os.cpu_count()} CPUs")
    print("| run | MB | loop s | summary s | MB/s | x loop | one core s | MB/s | x loop |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for src in sorted(glob.glob(f"{SHARED}/fixtures/realrun/llamafactory/*/console.log")):
        run = os.path.basename(os.path.dirname(src))
        if b"Training completed" not in open(src, "rb").read():
            print(f"| {run} | its training did not complete: nothing to repeat |" + " |" * 7)
            continue
        path = os.path.join(workdir, f"realrun_{run}_{mb}mb.log")
        if not os.path.exists(path):
            lf_log(path, mb, src=src)
        size = os.path.getsize(path) / 1e6
        subprocess.run(f"cat {shlex.quote(path)} > /dev/null", shell=True)
        q = shlex.quote(path)
        loop = timed(f"{sys.executable} -c {shlex.quote(PY_LOOP)} {q} "
                     f"{shlex.quote(LOSS['llamafactory'])}")[0]
        both = timed(f"{logreport} summary {q} --json")[0]
        one = timed(f"taskset -c 0 {logreport} summary {q} --json")[0] \
            if shutil.which("taskset") else float("nan")
        print(f"| {run} | {size:.0f} | {loop:.2f} | {both:.2f} | {size / both:.0f} | "
              f"{both / loop:.2f} | {one:.2f} | {size / one:.0f} | {one / loop:.2f} |", flush=True)


ASKED = {"genlf": genlf_log, "stdout": stdout_log, "frames": frames_log, "board": board_log,
         "board_stdout": board_stdout_log}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=1000, help="size of each generated log")
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "logreport-bench"))
    ap.add_argument("--logreport", default=f"{sys.executable} -m logreport")
    ap.add_argument("--only", choices=["ppdet", "llamafactory", *ASKED],
                    help="bench one log only (" + ", ".join(ASKED) + ": only when asked)")
    ap.add_argument("--declined", action="store_true",
                    help="time summary with the hf_trainer fast path declining every block too")
    ap.add_argument("--scaling", action="store_true", help="peak memory against file size")
    ap.add_argument("--realruns", action="store_true",
                    help="each real LLaMA-Factory run's console, repeated to --mb MB")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    if args.realruns:
        realruns(args.mb, args.logreport, args.dir)
        return
    for name, make in (("ppdet", ppdet_log), ("llamafactory", lf_log), *ASKED.items()):
        if args.only != name and (args.only or name in ASKED):
            continue
        path = os.path.join(args.dir, f"{name}_{args.mb}mb.log")
        if not os.path.exists(path):
            make(path, args.mb)
        if args.scaling:
            scaling(path, args.logreport, args.dir)
        else:
            bench(path, name, args.logreport, args.dir, args.declined and name != "ppdet")


if __name__ == "__main__":
    main()
