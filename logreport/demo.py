"""`logreport demo`: replay a shipped real log into a file at the pace it was written."""
from __future__ import annotations

import re
import threading
from datetime import datetime
from pathlib import Path

DEMO_LOG = Path(__file__).resolve().parent / "data" / "demo_detection.log"
MAX_PAUSE = 5.0          # seconds: the longest wait between two lines, whatever the speed
_STAMP = re.compile(r"^\[(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})\]")


def _stamp(line: str) -> float | None:
    m = _STAMP.match(line)
    if not m:
        return None
    month, day, h, mi, s = map(int, m.groups())
    return datetime(2000, month, day, h, mi, s).timestamp()


def replay(target: str, speed: float, stop: threading.Event, source: Path = DEMO_LOG) -> None:
    """Append the source's lines to target, waiting the gaps between their time stamps / speed."""
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    last = None
    with open(target, "a", encoding="utf-8") as out:
        for line in lines:
            t = _stamp(line)
            if t is not None and last is not None and t > last:
                if stop.wait(min(MAX_PAUSE, (t - last) / speed)):
                    return
            if t is not None:
                last = t
            out.write(line)
            out.flush()
