"""`logreport index` and `logreport serve` on 1,000 runs: cold, warm, one log appended, live
latency, memory, idle CPU, and the index page in headless Chromium.

usage: python bench/index_scale.py [--dir DIR] [--runs 1000] [--appending 10] [--idle 60]

Generates once (cached in DIR) a tree of runs made from the real runs in tests/data, renamed
(runs/<gpu>/<config>/<run>-NNNN), lengths varied log-uniformly up to 50k training records by
repeating their training lines with the counters renumbered: PaddleDetection logs (longer
epochs: each training line repeated, iterations renumbered; the eval after each epoch kept),
LLaMA-Factory output folders (trainer_log.jsonl steps renumbered, the other files as written)
and LLaMA-Factory console logs (the training bar's counts renumbered). Then, each against a
baseline measured in the same run:

- cold `index` (a process per core) against reading every byte (`cat`), with the CPU it used;
- warm `index`, nothing changed, against a `stat` of every file (`find -printf`);
- one log appended, against `summary --json` of that log (its parse);
- `serve` on the same site: APPENDING logs get fresh training lines (their last lines are
  fresh: they are running); for each line, the time until its row (/api/runs) and its page
  (/runs/<id>/api/summary) show the new step; then CPU over --idle seconds without a line;
  the server's peak RSS;
- the index page (file://) in headless Chromium: load to a drawn table, then a sort.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from parse import lf_log  # noqa: E402
from watch_latency import cpu_seconds, peak_rss_mb  # noqa: E402

DATA = ROOT / "tests" / "data"
MAX_RECORDS = 50_000
GPUS = ("a100", "h100", "v100", "rtx4090")
PPDET_TRAIN = re.compile(rb"Epoch: \[(\d+)\]")
PPDET_ITER = re.compile(rb"Epoch: \[(\d+)\] \[\s*(\d+)/(\d+)\]")
PPDET_STAMP = re.compile(rb"^\[\d\d/\d\d \d\d:\d\d:\d\d\]")


def lengths(rnd: random.Random, natural: int) -> int:
    """Training records wanted: log-uniform from the log's own count up to MAX_RECORDS."""
    natural = max(natural, 1)
    return int(math.exp(rnd.uniform(math.log(natural), math.log(MAX_RECORDS))))


def ppdet_run(src: Path, rnd: random.Random, out: Path) -> int:
    """A PaddleDetection log of longer epochs: each training line repeated with its iteration
    renumbered (as a bigger dataset prints them), the eval after each epoch as it was."""
    lines = src.read_bytes().splitlines(keepends=True)
    train = sum(1 for line in lines if PPDET_ITER.search(line))
    if not train:
        shutil.copy(src, out)
        return 0
    times = max(1, lengths(rnd, train) // train)
    with open(out, "wb") as f:
        for line in lines:
            m = PPDET_ITER.search(line)
            if m is None:
                f.write(line)
                continue
            it, per = int(m.group(2)), int(m.group(3))
            width = len(str(per * times))
            for j in range(times):
                f.write(line[:m.start()] + b"Epoch: [%s] [%*d/%d]" % (
                    m.group(1), width, it * times + j, per * times) + line[m.end():])
    return train * times


def lf_folder_run(src: Path, rnd: random.Random, out: Path) -> int:
    """An LLaMA-Factory output folder whose trainer_log.jsonl is repeated, steps renumbered."""
    shutil.copytree(src, out)
    rows = [json.loads(line) for line in (src / "trainer_log.jsonl").read_text().splitlines()
            if line.strip()]
    per = max(r.get("current_steps", 0) for r in rows) or 1
    copies = max(1, lengths(rnd, len(rows)) // len(rows))
    with open(out / "trainer_log.jsonl", "w") as f:
        for k in range(copies):
            for r in rows:
                r = dict(r, total_steps=per * copies)
                if "current_steps" in r:
                    r["current_steps"] += k * per
                f.write(json.dumps(r) + "\n")
    return copies * len(rows)


def lf_console_run(src: Path, rnd: random.Random, out: Path) -> int:
    """An LLaMA-Factory console log with its training part repeated (bench/parse.py's)."""
    per = int(re.search(rb"Total optimization steps = (\d+)", src.read_bytes()).group(1))
    return lf_log(str(out), 0, str(src), reps=max(1, lengths(rnd, per) // per))


def generate(root: Path, runs: int, seed: int = 1000) -> dict:
    """The tree (made once: a finished tree has root/MANIFEST.json); returns the manifest."""
    manifest = root / "MANIFEST.json"
    if manifest.exists():                   # as generated: lines appended by a run before go
        data = json.loads(manifest.read_text())
        for run in data["runs"]:
            if run.get("bytes") is not None and os.path.getsize(run["path"]) != run["bytes"]:
                os.truncate(run["path"], run["bytes"])
        return data
    shutil.rmtree(root, ignore_errors=True)
    rnd = random.Random(seed)
    ppdet = sorted(p for p in (DATA / "ppdet").glob("*.log") if not p.name.startswith("public_"))
    folders = sorted(p for p in (DATA / "llamafactory").iterdir()
                     if (p / "trainer_log.jsonl").exists())
    console = DATA / "llamafactory" / "sft_lora" / "console.log"
    made, records = [], 0
    for i in range(runs):
        gpu = GPUS[i % len(GPUS)]
        kind = i % 20
        if kind < 12:
            src = ppdet[rnd.randrange(len(ppdet))]
            config = re.sub(r"_(train|diverge|nan|noeval|resume|evalonly).*", "", src.stem)
            out = root / gpu / config / f"{src.stem}-{i:04d}.log"
            make = ppdet_run
        elif kind < 17:
            src = folders[rnd.randrange(len(folders))]
            out = root / gpu / "llm" / f"{src.name}-{i:04d}"
            make = lf_folder_run
        else:
            src, out, make = console, root / gpu / "llm" / f"console-{i:04d}.log", lf_console_run
        out.parent.mkdir(parents=True, exist_ok=True)
        n = make(src, rnd, out)
        records += n
        made.append({"path": str(out), "kind": make.__name__, "records": n,
                     "bytes": out.stat().st_size if out.is_file() else None})
    data = {"runs": made, "records": records}
    manifest.write_text(json.dumps(data))
    return data


def timed(cmd: list[str], **kw) -> tuple[float, subprocess.CompletedProcess]:
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, **kw)
    if proc.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr.decode()[-2000:]}")
    return time.monotonic() - start, proc


def children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def fresh_line(template: bytes, epoch: int) -> bytes:
    """A training line of a PaddleDetection log as if printed now, at the given epoch."""
    line = PPDET_TRAIN.sub(b"Epoch: [%d]" % epoch, template)
    return PPDET_STAMP.sub(datetime.now().strftime("[%m/%d %H:%M:%S]").encode(), line)


def appender(path: str):
    """What to append to a log to make it go on: its first training line (a long ETA ahead),
    renumbered after its last epoch, stamped now."""
    lines = Path(path).read_bytes().splitlines(keepends=True)
    train = [line for line in lines if PPDET_TRAIN.search(line)]
    last = max(int(PPDET_TRAIN.search(line).group(1)) for line in train)
    state = {"epoch": last}

    def next_line() -> bytes:
        state["epoch"] += 1
        return fresh_line(train[0], state["epoch"])
    return next_line


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * (len(values) - 1) + 0.5))]


def rss_tree_mb(pid: int) -> float:
    """RSS of a process and its children now (MB)."""
    total = 0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
            for task in Path(f"/proc/{p}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, AttributeError):
            continue
    return total / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "logreport-index-bench"))
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--appending", type=int, default=10)
    ap.add_argument("--appends", type=int, default=100, help="lines appended while serving")
    ap.add_argument("--idle", type=float, default=60.0)
    args = ap.parse_args()
    work = Path(args.dir)
    tree = work / "runs"
    started = time.monotonic()
    manifest = generate(tree, args.runs)
    size = sum(f.stat().st_size for f in tree.rglob("*") if f.is_file())
    print(f"{args.runs} runs, {manifest['records']:,} training records, {size / 1e9:.2f} GB "
          f"(generated or found in {time.monotonic() - started:.0f} s)", flush=True)
    lr = [sys.executable, "-m", "logreport"]
    site = work / "site"
    shutil.rmtree(site, ignore_errors=True)
    rows = []

    cat, _ = timed(["sh", "-c", f"find {tree} -type f -exec cat {{}} + > /dev/null"])
    cpu0, load0 = children_cpu(), os.getloadavg()[0]
    cold, proc = timed(lr + ["index", str(tree), "-o", str(site)], cwd=ROOT)
    used = children_cpu() - cpu0
    print(f"load average (others on this machine too): {load0:.1f} before the cold index, "
          f"{os.getloadavg()[0]:.1f} after", flush=True)
    print(proc.stderr.decode().strip().splitlines()[-1], flush=True)
    rows.append(("cold index", cold, "cat of every file", cat, 60.0,
                 f"CPU {used:.0f} s = {used / cold:.2f} cores busy of {os.cpu_count()}"))
    stat, _ = timed(["sh", "-c", f"find {tree} -type f -printf '%s %T@\\n' > /dev/null"])
    warm, proc = timed(lr + ["index", str(tree), "-o", str(site)], cwd=ROOT)
    rows.append(("warm index, nothing changed", warm, "stat of every file", stat, 3.0,
                 proc.stderr.decode().strip().splitlines()[-1].split(": ", 1)[1]))

    ppdet = [r for r in manifest["runs"] if r["kind"] == "ppdet_run" and r["records"] > 100]
    chosen = random.Random(7).sample(ppdet, args.appending)
    one = chosen[0]["path"]
    parse, _ = timed(lr + ["summary", "--json", one], cwd=ROOT)
    with open(one, "ab") as f:
        f.write(appender(one)())
    appended, proc = timed(lr + ["index", str(tree), "-o", str(site)], cwd=ROOT)
    rows.append(("one log appended", appended, f"its parse (summary, {chosen[0]['records']:,} "
                 "records)", parse, 3.0 + parse,
                 proc.stderr.decode().strip().splitlines()[-1].split(": ", 1)[1]))

    writers = {r["path"]: appender(r["path"]) for r in chosen}
    for path, next_line in writers.items():       # running: their last lines are fresh
        with open(path, "ab") as f:
            f.write(next_line())
    serve = subprocess.Popen(lr + ["serve", str(tree), "-o", str(site), "--port", "0"],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    try:
        base = re.search(r"(http://\S+)", serve.stderr.readline().decode()).group(1)
        ids = {}
        while len(ids) < len(writers):
            runs = get_json(base + "api/runs")["rows"]
            ids = {r["id"]: r for r in runs if r["live"]}
            peak = max(peak, rss_tree_mb(serve.pid))
            time.sleep(0.2)
        by_path = {}
        for r in runs:
            for path in writers:
                if path.endswith(r["name"]):
                    by_path[path] = r["id"]
        print(f"serve: {len(runs)} rows, {len(ids)} followed after "
              f"{time.monotonic() - started:.0f} s", flush=True)
        row_lat, page_lat = [], []
        paths = list(writers)
        for k in range(args.appends):
            path = paths[k % len(paths)]
            run_id = by_path[path]
            before = {r["id"]: r["steps"] for r in get_json(base + "api/runs")["rows"]}[run_id]
            page_before = get_json(f"{base}runs/{run_id}/api/summary")["runs"][0]["last_step"]
            t0 = time.monotonic()
            with open(path, "ab") as f:
                f.write(writers[path]())
            row_t = page_t = None
            while (row_t is None or page_t is None) and time.monotonic() - t0 < 10:
                if row_t is None and {r["id"]: r["steps"] for r in get_json(
                        base + "api/runs")["rows"]}[run_id] != before:
                    row_t = time.monotonic() - t0
                if page_t is None and get_json(f"{base}runs/{run_id}/api/summary")[
                        "runs"][0]["last_step"] != page_before:
                    page_t = time.monotonic() - t0
                time.sleep(0.02)
            row_lat.append(row_t if row_t is not None else 10.0)
            page_lat.append(page_t if page_t is not None else 10.0)
            peak = max(peak, rss_tree_mb(serve.pid))
            time.sleep(0.3)
        time.sleep(2)
        cpu0 = cpu_seconds(serve.pid)
        time.sleep(args.idle)
        idle_cpu = (cpu_seconds(serve.pid) - cpu0) / args.idle
        own_peak = peak_rss_mb(serve.pid)
    finally:
        serve.terminate()
        serve.communicate(timeout=60)
    for name, lat in (("row", row_lat), ("page", page_lat)):
        rows.append((f"serve: appended line -> its {name}, p95", percentile(lat, 0.95),
                     f"p50 {percentile(lat, 0.5):.3f} s, max {max(lat):.3f} s", None, 2.0, ""))
    rows.append(("serve: peak RSS (MB)", own_peak, "with its children, sampled", peak, 500.0, ""))
    rows.append(("serve: idle CPU (share of a core)", idle_cpu, f"over {args.idle:.0f} s", None,
                 0.02, ""))

    from tests.browser import Browser
    with Browser() as b:
        page = b.open((site / "index.html").as_uri())
        page.wait_for("document.documentElement.dataset.ready === '1'", timeout=60)
        load = page.eval("window.logreportIndex.readyMs") / 1000
        sort = page.eval("(() => { var t = performance.now(); window.logreportIndex.sortBy('best', -1);"
                         " document.body.offsetHeight; return performance.now() - t; })()") / 1000
        shown = page.eval("document.querySelectorAll('#runs tbody tr').length")
    rows.append((f"index page, {shown} rows: load", load, "", None, 1.0, ""))
    rows.append(("index page: sort by best", sort, "", None, 1.0, ""))

    print("\n| measure | value | baseline | baseline value | target | within | note |")
    print("|---|---:|---|---:|---:|---|---|")
    for name, value, base_name, base_value, target, note in rows:
        base_text = f"{base_value:.3f}" if base_value is not None else ""
        print(f"| {name} | {value:.3f} | {base_name} | {base_text} | {target:g} | "
              f"{'yes' if value <= target else 'NO'} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
