"""Terminal views of `watch`: a rich live panel, or plain lines for nohup and CI (--no-tui).

Both take `update(run, summary, idle_seconds)` after each refresh, `tick(idle_seconds)` from the
loop (the "last line" clock) and `message(text)`; the CLI gives them the console to write to.
"""
from __future__ import annotations

import math
import time

from . import present
from .analysis import main_loss, recent
from .events import SYSTEM, TRAIN
from .terminal import cell, clean

BARS = "▁▂▃▄▅▆▇█"
SPARK_POINTS = 40
PLAIN_EVERY = 2.0            # seconds between two plain status lines, at least
TUI_EVERY = 0.25             # seconds between two redraws of the panel, at least


def sparkline(vals, width: int = SPARK_POINTS) -> str:
    """The last `width` finite values as block characters (low to high)."""
    vals = [float(v) for v in vals[-width:] if math.isfinite(v)]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    span = hi - lo or 1.0
    return "".join(BARS[min(len(BARS) - 1, int((v - lo) / span * len(BARS)))] for v in vals)


def figures(run, summary: dict) -> dict:
    """What both views show, as short strings (present's formatter: as in every surface)."""
    loss = main_loss(run)
    loss_vals = recent(run, TRAIN, loss, SPARK_POINTS) if loss else []
    lr = recent(run, TRAIN, "learning_rate", 1)
    speed = summary["throughput"]
    progress = summary.get("progress") or {}
    step = present.step_of(summary["last_step"], summary["total_steps"],
                           summary.get("last_step_estimated"))
    if progress.get("percent") is not None and summary["total_steps"]:
        step += f" ({present.percent(progress['percent'])})"
    return {
        "status": present.status(summary),
        "epoch": present.number(summary["last_epoch"]),
        "step": step,
        "loss": f"{loss} {present.number(loss_vals[-1])}{present.logged_before(summary, loss)}"
        if len(loss_vals) else "loss –",
        "spark": sparkline(loss_vals),
        "lr": present.number(lr[-1]) if len(lr) else present.MISSING,
        "speed": present.metric(speed["metric"], speed["median"]) if speed
        else "throughput –",
        "eta": present.duration(summary["eta_seconds"]),
        "best": present.best(summary["best"]),
        "anomalies": [f"{a['kind']}: {a['detail']}" for a in summary["anomalies"]],
        "gpu": gpu_figures(run),
    }


def gpu_figures(run) -> str:
    """The last GPU sample (watch --gpu): utilisation, memory and power of each GPU."""
    last: dict[str, float] = {}
    for _, table in run.tables(SYSTEM):
        for name, series in table.series.items():
            last[name] = series.value[-1]
    gpus = sorted({name.partition("/")[0] for name in last})
    parts = []
    for gpu in gpus:
        util, mem, power = (last.get(f"{gpu}/{k}") for k in ("util_percent", "memory_used_mib",
                                                              "power_w"))
        parts.append(f"{gpu} " + " ".join(text for text in (
            util is not None and f"{util:.0f}%", mem is not None and f"{mem / 1024:.1f} GiB",
            power is not None and f"{power:.0f} W") if text))
    return ", ".join(parts)


class PlainView:
    """One line per refresh (at most every PLAIN_EVERY s) and one per new anomaly or message."""

    def __init__(self, console):
        self.console = console
        self.shown: set[str] = set()
        self.last = 0.0
        self.pending: tuple | None = None
        self.said = ""                 # the last status line (an unchanged one is not repeated)

    def update(self, run, summary: dict, idle: float) -> None:
        self.pending = (run, summary)
        if time.monotonic() - self.last >= PLAIN_EVERY:
            self._print()

    def tick(self, idle: float) -> None:
        if self.pending and time.monotonic() - self.last >= PLAIN_EVERY:
            self._print()

    def message(self, text: str) -> None:
        self.console.print(clean(text), markup=False, highlight=False, soft_wrap=True)

    def retract(self, text: str) -> None:
        """A message no longer true (a printed line stays)."""

    def close(self) -> None:
        if self.pending:
            self._print()

    def _print(self) -> None:
        run, summary = self.pending
        self.pending, self.last = None, time.monotonic()
        f = figures(run, summary)
        line = (f"[{f['status']}] epoch {f['epoch']} · step {f['step']} · {f['loss']} · "
                f"lr {f['lr']} · {f['speed']} · ETA {f['eta']} · best {f['best']}")
        if line != self.said:
            self.said = line
            self.message(line + (f" | {f['gpu']}" if f["gpu"] else ""))
        for text in f["anomalies"]:
            if text not in self.shown:
                self.shown.add(text)
                self.message(f"anomaly {text}")


class LiveView:
    """A rich panel redrawn at most every TUI_EVERY seconds."""

    def __init__(self, console, title: str, report_path: str, url: str | None = None):
        from rich.live import Live

        self.console = console
        self.title = title
        self.footer = f"report: {report_path}" + (f"   live page: {url}" if url else "")
        self.state: tuple | None = None
        self.messages: list[str] = []
        self.idle = 0.0
        self.drawn = 0.0
        self.live = Live(self._render(), console=console, auto_refresh=False, transient=False)
        self.live.start()

    def update(self, run, summary: dict, idle: float) -> None:
        self.state = (run, summary, figures(run, summary))
        self.idle = idle
        self._draw()

    def tick(self, idle: float) -> None:
        if int(idle) != int(self.idle):
            self.idle = idle
            self._draw()

    def message(self, text: str) -> None:
        self.messages = (self.messages + [text])[-3:]
        self._draw()

    def retract(self, text: str) -> None:
        """A message no longer true (the log it waited for came): off the panel."""
        self.messages = [m for m in self.messages if m != text]
        self._draw()

    def close(self) -> None:
        self.live.update(self._render(), refresh=True)
        self.live.stop()

    def _draw(self) -> None:
        if time.monotonic() - self.drawn >= TUI_EVERY:
            self.drawn = time.monotonic()
            self.live.update(self._render(), refresh=True)

    def _render(self):
        from rich.panel import Panel
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        rows = [("waiting", "for training lines…")]
        if self.state is not None:
            f = self.state[2]
            rows = [("status", f["status"]), ("epoch / step", f"{f['epoch']} / {f['step']}"),
                    ("loss", f"{f['loss']}  {f['spark']}"), ("learning rate", f["lr"]),
                    ("throughput", f["speed"]), ("ETA", f["eta"])]
            rows += [("GPU", f["gpu"])] if f["gpu"] else []
            rows.append(("best eval", f["best"]))
            rows += [("anomaly", text, "red") for text in f["anomalies"][-5:]] or \
                [("anomaly", "none")]
        rows.append(("last line", f"{present.duration(self.idle)} ago"))
        rows += [("", text, "yellow") for text in self.messages]
        for label, text, *style in rows:        # log text: no markup, no control characters
            table.add_row(label, cell(text, *style))
        return Panel(table, title=cell(self.title), subtitle=cell(self.footer))
