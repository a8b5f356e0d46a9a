"""When to tell someone about a watched run: the events, the rate limit and the retries that
every notifier shares (mail.Notifier, notify.Notifier).

An event is a key: `finish`, `fail`, `stop` (logreport stopped the run, `--stop-on`), or
`anomaly:KIND` (`anomaly:stall` included). It is told when it becomes true, at most once per
`interval` seconds per key; a failed delivery is tried again after `retry` seconds, doubling
with each failure in a row up to `interval`.
"""
from __future__ import annotations

import time

from .errors import LogreportError, UsageError

EVENTS = ("finish", "fail", "anomaly", "stop")


def parse_events(text: str) -> list[str]:
    """`finish,fail,anomaly` → ["finish", "fail", "anomaly"]."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def check_events(on, option: str) -> set[str]:
    unknown = sorted(set(on) - set(EVENTS))
    if unknown:
        raise UsageError(f"unknown {option} event {', '.join(unknown)}",
                         f"use a comma-separated subset of {','.join(EVENTS)}")
    return set(on)


def events_of(summary: dict, on) -> set[str]:
    """The event keys that hold for this summary."""
    keys = set()
    status = summary.get("status")
    if status == "finished" and "finish" in on:
        keys.add("finish")
    if status == "failed" and "fail" in on:
        keys.add("fail")
    if summary.get("stopped") and "stop" in on:
        keys.add("stop")
    if "anomaly" in on:
        keys |= {f"anomaly:{a.get('kind')}" for a in summary.get("anomalies") or []}
    return keys


class Notifier:
    """The shared loop of a notifier; a subclass says how to deliver and what to print.

    `update(summary, report_path)` never raises; it returns a line for the caller to print
    (what was sent, or why not and when it retries) or None."""

    option = "--notify-on"

    def __init__(self, on=EVENTS, interval: float = 600.0, retry: float = 60.0,
                 clock=time.monotonic):
        self.on = check_events(on, self.option)
        self.interval, self.retry, self.clock = interval, retry, clock
        self.sent_at: dict[str, float] = {}
        self.pending: set[str] = set()
        self.retry_at = 0.0
        self.failures = 0
        self._seen: set[str] = set()
        self.last_error: str | None = None

    # what a subclass gives
    def deliver(self, summary: dict, report_path: str | None, events: list[str],
                payload: dict | None) -> None:
        raise NotImplementedError

    def said_sent(self, events: list[str]) -> str:
        raise NotImplementedError

    def said_failed(self, error: str, delay: float | None) -> str:
        """The line for a failed delivery (delay None: no retry is coming)."""
        raise NotImplementedError

    # the loop
    def due(self, summary: dict) -> set[str]:
        """The events to tell now (none while a failed delivery waits for its retry)."""
        now = self.clock()
        current = events_of(summary, self.on)
        self.pending |= current - self._seen      # newly true: a finish, a failure, a new kind
        self.pending &= current                  # no longer true: nothing to say
        self._seen = current
        if now < self.retry_at:
            return set()
        return {k for k in self.pending if now - self.sent_at.get(k, -self.interval) >= self.interval}

    def update(self, summary: dict, report_path: str | None,
               payload: dict | None = None) -> str | None:
        due = self.due(summary)
        if not due:
            return None
        delay = self._attempt(summary, report_path, payload, due)
        if delay is None:
            return self.said_sent(sorted(due))
        return self.said_failed(self.last_error, delay)

    def _attempt(self, summary, report_path, payload, due: set[str]) -> float | None:
        """Deliver `due`; None when done, else the seconds until the retry."""
        now = self.clock()
        try:
            self.deliver(summary, report_path, sorted(due), payload)
        except Exception as e:  # noqa: BLE001 - a watch never dies because a message failed
            delay = min(self.retry * 2 ** self.failures, max(self.interval, self.retry))
            self.failures += 1
            self.retry_at = now + delay
            self.last_error = e.one_line() if isinstance(e, LogreportError) else \
                f"{type(e).__name__}: {e}"
            return delay
        self.last_error, self.failures = None, 0
        for key in due:
            self.sent_at[key] = now
        self.pending -= due
        return None

    def send_now(self, summary: dict, payload: dict | None = None, attempts: int = 3,
                 sleep=time.sleep, say=print) -> bool:
        """For a one-shot command (`check`): tell the due events now, trying a failed delivery
        `attempts` times in all, with the same backoff; each outcome is one line to `say`.
        True when delivered (or nothing was due)."""
        due = self.due(summary)
        if not due:
            return True
        for attempt in range(attempts):
            delay = self._attempt(summary, None, payload, due)
            if delay is None:
                say(self.said_sent(sorted(due)))
                return True
            last = attempt == attempts - 1
            say(self.said_failed(self.last_error, None if last else delay))
            if not last:
                sleep(delay)
        return False
