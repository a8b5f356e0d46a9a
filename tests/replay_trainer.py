"""A stand-in trainer for `run --stop-on` tests: prints a real log's lines as a training would,
and notes each signal it gets.

    python replay_trainer.py LOG SIGNALS [--delay S] [--ignore SIGINT,SIGTERM] [--exit]

Each line of LOG goes to stdout, then it waits `--delay` seconds (default 0.01). Each signal
received is appended to the file SIGNALS (its name and a wall-clock time); SIGINT raises
KeyboardInterrupt as in any Python trainer unless --ignore names it. After the last line it
sleeps until a signal ends it, or exits 0 with --exit.
"""
import argparse
import signal
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("signals")
    ap.add_argument("--delay", type=float, default=0.01)
    ap.add_argument("--ignore", default="")
    ap.add_argument("--exit", action="store_true")
    args = ap.parse_args()
    ignored = {name for name in args.ignore.split(",") if name}

    def note(signum, frame):
        name = signal.Signals(signum).name
        with open(args.signals, "a") as f:
            f.write(f"{name} {time.time():.3f}\n")
        if name in ignored:
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        sys.exit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, note)
    with open(args.log, encoding="utf-8", errors="replace") as f:
        for line in f:
            sys.stdout.write(line)
            sys.stdout.flush()
            time.sleep(args.delay)
    if not args.exit:
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
