"""The watch loop: reader -> Run -> summary, report, view, page, notifiers.

The same `reader.Reader`, `analysis.summarize`, `report.build` and `render.write_html` as
`logreport report`: a post-training report is a watch that has reached the end of the file.
All Run updates happen on the loop's thread; the server only ever sees finished payloads.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field

from . import formats, sources
from .analysis import refresh, stall, summary_json
from .events import EVAL, FINAL, FINISHED, Record
from .eventsource import file_input
from .pipeline import SNIFF_LINES, unknown_format
from .preview import with_held
from .reader import Reader, not_empty
from .render import write_html
from .report import build
from .runs import RunSource
from .sources import Input

REFRESH_IDLE = 30.0      # seconds: re-publish even without new lines (stall, status)
PUBLISH_GAP = 0.05       # seconds between two summary/page refreshes, at least
WHOLE_RUN_SHARE = 0.2    # of the time, at most, spent redoing whole-run figures on a long run
TICK = 1.0               # longest sleep: re-checks the file and the clock of the view


@dataclass
class Options:
    fmt: str | None = None
    from_end: bool = False
    output: str | None = None
    interval: float = 10.0
    poll: float | None = None              # seconds; None: watchdog wakes the loop
    stall_minutes: float | None = None
    exit_when_done: bool = False
    title: str | None = None
    gpu: bool = False                       # sample GPUs through NVML into the run
    done_grace: float = 5.0                 # --exit-when-done: seconds of quiet before exiting
    final_eval_wait: float = 300.0          # ... and before giving up on a Trainer's last eval
    fail_on: tuple = ("nan", "traceback", "divergence")    # as `check`: these kinds exit 1
    notifiers: list = field(default_factory=list)   # objects with update(summary, report_path)
    stopper: object = None                  # stop.Stopper (--stop-on): update(watch) after a refresh
    lang: str = "en"                        # of the report page


def default_output(path: str) -> str:
    """The report next to the log: run.log -> run.report.html; a folder -> folder/report.html;
    a log behind a URL: NAME.report.html in the current folder."""
    if sources.is_url(path):
        return os.path.splitext(sources.basename(path))[0] + ".report.html"
    if sources.isdir(path):
        return os.path.join(path, "report.html")
    return os.path.splitext(path)[0] + ".report.html"


class Waker:
    """Sleeps until the watched folder changes (watchdog), or a timeout; polls with --poll."""

    def __init__(self, folder: str | None, poll: float | None):
        self.event = threading.Event()
        self.poll = poll
        self.observer = None
        if poll is None and folder is not None and sources.isdir(folder):
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer

            # the library prints nothing: watchdog's stop-time races log errors otherwise
            logging.getLogger("watchdog").addHandler(logging.NullHandler())
            waker = self

            class Handler(FileSystemEventHandler):
                def on_any_event(self, event):
                    waker.event.set()

            self.observer = Observer()
            self.observer.schedule(Handler(), folder, recursive=False)
            self.observer.daemon = True
            self.observer.start()

    def wait(self, timeout: float) -> None:
        limit = self.poll if self.observer is None and self.poll else TICK
        self.event.wait(max(0.0, min(timeout, limit)))
        self.event.clear()

    def wake(self) -> None:
        self.event.set()

    def close(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(2)


def watched(path: str) -> RunSource:
    """What `watch PATH` follows: a folder (one run's output: its files as they come), an
    event file, or a log (which may not exist yet)."""
    path = sources.given(path)
    if not sources.streams_backlog(path) and sources.isdir(path):
        return RunSource(path, [], folder=True)
    return RunSource(path, [file_input(path) or Input(path)])


class Watch:
    """Follows one log file or output folder into a Run and keeps every surface current."""

    def __init__(self, path: str, options: Options, view=None, server=None):
        self.path = path
        self.opt = options
        self.view = view
        self.server = server
        self.output = options.output or default_output(path)
        self.reader = Reader(watched(path), options.fmt, live=True, from_end=options.from_end,
                             every=options.poll)
        self.run = self.reader.run()
        self.watching = True                       # (until finish: a live run, as far as seen)
        self.is_folder = self.reader.source.folder
        self.unknown_said: set[str] = set()        # files told to be of no known format yet
        self.waiting: str | None = None            # said while the log does not exist yet
        folder = path if self.is_folder else sources.parent(path)
        self.waker = Waker(None if sources.is_url(path) else folder, options.poll)
        self.stop = threading.Event()
        self.last_line = time.time()
        self.summary: dict | None = None
        self.dirty = False                # records came since the last publish (or it is due)
        self.new_records = False          # records came since the last publish
        self.report_due = False           # records came since the last report file
        self.next_publish = 0.0
        self.next_whole = 0.0             # when whole-run figures may be redone
        self.whole_due = False            # the last publish left whole-run figures behind
        self.published_at = time.monotonic()
        self.next_report = 0.0
        self.version = 0
        self.system: list[Record] = []         # GPU samples (a folder's Run is rebuilt)
        self.held: tuple[int, list] = (0, [])  # what the parser holds back at a pause (shown)
        self.gpu = self._gpu_sampler() if options.gpu else None

    def _gpu_sampler(self):
        from .gpu import GpuSampler, GpuUnavailable

        try:
            return GpuSampler()
        except GpuUnavailable as e:
            if self.view is not None:
                self.view.message(f"--gpu: {e}; carrying on without GPU figures")
            return None

    # --- the loop -------------------------------------------------------------------------
    def loop(self, keep_going=None) -> int:
        """Run until stopped (Ctrl-C, `stop`, `keep_going()` false, or done with
        --exit-when-done); returns the exit code."""
        code, done, leaving = 0, None, False
        try:
            self.start()
            while not self.stop.is_set():
                got = self.step()
                now = time.monotonic()
                self._refresh_due(now, got)
                if self.dirty and now >= self.next_publish:
                    self.publish()
                    if self.opt.stopper is not None:
                        self.opt.stopper.update(self)
                    done = self.done_code() if self.opt.exit_when_done else None
                if done is not None and time.time() - self.last_line >= self._grace():
                    leaving = True              # done, and the log has gone quiet
                    break
                if self.report_due and now >= self.next_report and self.summary is not None:
                    self.write_report()
                if self.gpu is not None and self.gpu.due():
                    self._sample_gpu()
                if self.view is not None:
                    self.view.tick(time.time() - self.last_line)
                if keep_going is not None and not keep_going() and not got:
                    break
                if not got:
                    wait = TICK if not self.dirty else self.next_publish - now
                    if self.whole_due:
                        wait = min(wait, max(0.0, self.next_whole - now))
                    self.waker.wait(wait)
        except KeyboardInterrupt:
            code = 0
        finally:
            self.finish()
        if leaving:         # the code of the log as read to its end (what the parser held, given)
            final = self.done_code()
            code = done if final is None else final
        return code

    def _refresh_due(self, now: float, got: int) -> None:
        """A publish is due without new records where status and stall changed with time
        alone, or where the log paused after a refresh that left whole-run figures behind."""
        if now - self.published_at > REFRESH_IDLE or \
                self.whole_due and not got and now >= self.next_whole:
            self.dirty = True

    def start(self) -> None:
        """Before the first step: say that the log does not exist yet, read what it holds."""
        self._say_waiting()
        if self.reader.backlog():
            self.dirty = self.report_due = self.new_records = True

    def step(self) -> int:
        """Read what was appended; returns the number of lines read."""
        lines, events = self.reader.poll()
        if lines:
            self.last_line = time.time()
            if self.waiting is not None:                      # it came
                self.view.retract(self.waiting)
                self.waiting = None
        if events:
            self.dirty = self.report_due = self.new_records = True
        held = self.reader.held() if self.watching else (0, [])
        if held != self.held:           # shown from a pause on, until the lines after it came
            self.held = held
            self.dirty = self.report_due = self.new_records = True
        self._say_news()
        return lines

    def _say_news(self) -> None:
        """What reading found to tell: restarts, files of the folder it cannot read (skipped:
        watching goes on), inputs of no known format so far."""
        while self.reader.said:
            said = self.reader.said.pop(0)
            if self.view is not None:
                self.view.message(said)
        for path, ingest in self.reader.undecided():
            self._say_unknown(path, ingest)

    def _say_unknown(self, path: str, ingest) -> None:
        """Once per file: no format claims its lines so far; watching goes on."""
        if path in self.unknown_said or self.view is None:
            return
        self.unknown_said.add(path)
        error = unknown_format(path, [text for _, text in ingest.buffer[:SNIFF_LINES]])
        detail = error.message.removeprefix("no training records recognised ")
        self.view.message(f"logreport: {path}: no training records recognised yet "
                          f"({len(ingest.buffer)} lines read; {detail.strip('()')}); still "
                          f"watching (hint: {error.hint})")

    def _say_waiting(self) -> None:
        """Before the first step: the log does not exist yet (a panel says so until it comes)."""
        if self.view is not None and not sources.streams_backlog(self.path) \
                and not sources.exists(self.path):
            self.waiting = f"logreport: waiting for {self.path} to appear"
            self.view.message(self.waiting)

    def _current(self):
        """The run as read so far (a folder's files merged anew), with the GPU samples and
        what the stopper noted on the run it saw."""
        run = self.reader.run()
        if run is not self.run:
            if "stopped" in self.run.info:
                run.info["stopped"] = self.run.info["stopped"]
            for record in self.system:
                run.add(record)
        return run

    def _shown(self):
        """The run as the surfaces show it: at a pause, with what the parser holds back."""
        file, events = self.held
        return with_held(self.run, events, file) if events else self.run

    def _sample_gpu(self) -> None:
        last = self.run.segment.train.last_step()
        record = self.gpu.sample(None if last != last else int(last))
        self.system.append(record)
        if not self.is_folder:
            self.run.add(record)
        self.dirty = self.report_due = True

    # --- surfaces -------------------------------------------------------------------------
    def publish(self, whole: bool = False) -> None:
        """Recompute the summary (and the page data when serving); update view and server.

        On a long run the whole-run figures (status, anomalies, timing, the report's series)
        cost more than new lines bring: between two of those, only the figures that cost
        little (counts, last step and values) follow the new records (analysis.refresh).
        Without new records (a refresh for the clock: status, stall) or with `whole`, the
        whole-run figures are redone."""
        started = time.monotonic()
        if not whole and self.new_records and self.summary is not None \
                and started < self.next_whole and not self.is_folder:
            summary = refresh(self.summary, self._shown())
            summary["anomalies"] = [a for a in summary["anomalies"] if a["kind"] != "stall"]
            data = dict(self.data, runs=[dict(self.data["runs"][0], summary=summary)])
            self.whole_due = True
        else:
            summary, data = self._whole_run()
            self.whole_due = False
        self.summary, self.data = summary, data
        self.version += 1
        if self.server is not None:
            self.server.publish(self.version, summary_json([summary]) + "\n", data)
        if self.view is not None:
            self.view.update(self._shown(), summary, time.time() - self.last_line)
        self.dirty = self.new_records = False
        self.published_at = time.monotonic()
        self.next_publish = self.published_at + max(PUBLISH_GAP, 2 * (self.published_at - started))

    def _whole_run(self) -> tuple[dict, dict]:
        """Summary and page data computed over the whole run."""
        started = time.monotonic()
        self.run = self._current()
        run = self._shown()
        data = build([run], title=self.opt.title, lang=self.opt.lang, live=self.watching)
        summary = data["runs"][0]["summary"]
        stalled = stall(run, time.time() - self.last_line, self.opt.stall_minutes) \
            if run.lines else None
        if stalled:
            summary = dict(summary, anomalies=summary["anomalies"] + [stalled])
            data["runs"][0]["summary"] = summary
        cost = time.monotonic() - started
        self.next_whole = time.monotonic() + max(PUBLISH_GAP, cost / WHOLE_RUN_SHARE - cost)
        return summary, data

    def write_report(self) -> None:
        write_html(self.data, self.output)
        self.report_due = False
        self.next_report = time.monotonic() + self.opt.interval
        for notifier in self.opt.notifiers:
            said = notifier.update(self.summary, self.output)
            if said and self.view is not None:
                self.view.message(said)

    def done_code(self) -> int | None:
        """With --exit-when-done: None while the run goes on; once it is done, the code
        `check --fail-on` gives for the same log (1 for an anomaly of those kinds, and for a
        failed run or one stalled before its end: the quiet after a finished run's end, up to
        final_eval_wait, is no stall), else 0."""
        state = self.summary["status"]
        kinds = {a["kind"] for a in self.summary["anomalies"]}
        if state == "failed" or "stall" in kinds and state != "finished":
            return 1
        if state != "finished":
            return None
        return 1 if kinds & set(self.opt.fail_on) else 0

    def _grace(self) -> float:
        """Seconds of quiet before --exit-when-done leaves a done run: final_eval_wait where a
        finished one-log Trainer console's last lines are not its end yet (the parser's
        `awaits`: an evaluation begun or still due, a metrics block still being printed),
        else done_grace."""
        run = self.run
        if self.summary["status"] != "finished" or len(run.inputs) != 1 \
                or not formats.describe(run.format).final_eval:
            return self.opt.done_grace
        last_eval = max((int(t.line[-1]) for _, t in run.tables(EVAL)), default=0)
        last_end = max([int(t.line[-1]) for _, t in run.tables(FINAL)]
                       + [m.line for m in run.markers if m.kind == FINISHED], default=0)
        evaluated, due = 0 < last_eval < last_end, last_eval < last_end
        if any(getattr(i.parser, "awaits", None) and i.parser.awaits(evaluated, due)
               for i in self.reader.ingests.values()):
            return max(self.opt.done_grace, self.opt.final_eval_wait)
        return self.opt.done_grace

    def finish(self) -> None:
        """End of watching: flush parsers, write the final report, tell the notifiers."""
        try:
            self._finish()
        finally:
            self.reader.close()
            self.waker.close()
            if self.gpu is not None:
                self.gpu.close()

    def _finish(self) -> None:
        self.step()
        self.reader.finish(strict=True)
        if not (self.is_folder or self.opt.from_end) and self.reader.opened():
            not_empty(self.reader.run())    # a log that stayed empty: summary's refusal
        if not self.reader.known():
            return                          # nothing came: no report to write
        if self.opt.stopper is not None:
            self.opt.stopper.update(self, last=True)     # the training has ended: say so
        self.watching = False               # (the page left behind claims no live run)
        self.held = (0, [])                 # (the parser gave what it held)
        self.publish(whole=True)
        self.write_report()

    def close(self) -> None:
        self.stop.set()
        self.waker.wake()

