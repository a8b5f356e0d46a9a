"""Remote logs and clusters, each against a baseline measured in the same run:

- `summary --json` of a 100 MB PaddleDetection log in S3 (moto's server on loopback, read
  through s3fs in ranged reads) against the same log on disk (the issue asks <= 1.5x);
- `index --dask local` of 2,000 real logs (the PaddleDetection runs of tests/data, copied 100
  times) against `index` with the local process pool: both times and the overhead per task.

usage: python bench/remote.py [--dir DIR] [--mb 100] [--logs 2000] [--jobs N]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from parse import ppdet_log  # noqa: E402

from tests.servers import moto_s3  # noqa: E402

DET = sorted(p for p in (ROOT / "tests" / "data" / "ppdet").glob("*.log")
             if not p.name.startswith("public_"))


def run(argv: list[str], env: dict | None = None) -> float:
    """Seconds a logreport command took (it must succeed)."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "logreport", *argv], capture_output=True,
                          env={**os.environ, **(env or {})})
    if done.returncode:
        sys.exit(f"failed: logreport {' '.join(argv)}\n{done.stderr.decode()[-2000:]}")
    return time.monotonic() - start


def best(times: int, argv: list[str], env: dict | None = None) -> float:
    return min(run(argv, env) for _ in range(times))


def s3_summary(folder: Path, mb: int) -> None:
    import boto3

    log = folder / f"big{mb}.log"
    if not log.exists():
        ppdet_log(str(log), mb)
    size = log.stat().st_size / 1e6
    with moto_s3(folder) as env:
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
        client.create_bucket(Bucket="bench")
        client.upload_file(str(log), "bench", "big.log")
        local = best(3, ["summary", "--json", str(log)])
        remote = best(3, ["summary", "--json", "s3://bench/big.log"], env)
    print(f"summary of a {size:.0f} MB log: local {local:.2f} s, S3 on loopback {remote:.2f} s: "
          f"{remote / local:.2f}x local (asked: <= 1.5x)")


def dask_index(folder: Path, logs: int, jobs: int) -> None:
    root = folder / f"runs{logs}"
    if not root.exists():
        for i in range(logs):
            node = root / f"node{i // len(DET):03d}"
            node.mkdir(parents=True, exist_ok=True)
            shutil.copy(DET[i % len(DET)], node / DET[i % len(DET)].name)
    times = {}
    for name, extra in (("pool", []), ("dask", ["--dask", "local"])):
        site = folder / f"site-{name}"
        shutil.rmtree(site, ignore_errors=True)
        times[name] = run(["index", str(root), "-o", str(site), "--jobs", str(jobs), *extra])
    per_task = (times["dask"] - times["pool"]) / logs * 1000
    print(f"index of {logs} logs, {jobs} workers: local pool {times['pool']:.1f} s, "
          f"--dask local {times['dask']:.1f} s: {times['dask'] / times['pool']:.2f}x, "
          f"overhead {per_task:+.1f} ms per task (cluster start included)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "logreport-bench-remote"))
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--logs", type=int, default=2000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    s3_summary(folder, args.mb)
    dask_index(folder, args.logs, args.jobs)


if __name__ == "__main__":
    main()
