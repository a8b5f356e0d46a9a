"""The commands that follow a run while it trains: watch, run, demo."""
from __future__ import annotations

import os
import sys
import threading

import click

from .cli import (
    FAIL_ON,
    FORMAT,
    anomaly_kinds,
    chat_notifiers,
    locale_lang,
    main,
    notify_options,
    smtp_password,
)
from .errors import InputError, UsageError
from .terminal import clean


def stop_options(f):
    """`--stop-on` and its companions, on run and watch."""
    for option in reversed([
        click.option("--stop-on", default=None, metavar="KINDS",
                     help="Stop the training when one of these anomalies shows: nan, divergence, "
                          "stall, eval_regression[:N] (N evaluations without improvement), spike, "
                          "zero_loss, throughput_drop. Exit code 3."),
        click.option("--grace", default=60.0, show_default=True, type=click.FloatRange(0),
                     help="Seconds from SIGINT to SIGTERM (SIGKILL 30 s later)."),
        click.option("--dry-run-stop", is_flag=True,
                     help="Only print what --stop-on would do."),
    ]):
        f = option(f)
    return f


def _stopper(kw, training):
    """The Stopper of --stop-on (None without it)."""
    from .stop import StopOn, Stopper

    if not kw["stop_on"]:
        if kw["dry_run_stop"]:
            raise UsageError("--dry-run-stop needs --stop-on", "e.g. --stop-on nan --dry-run-stop")
        return None
    return Stopper(StopOn.parse(kw["stop_on"]), training, kw["grace"], kw["dry_run_stop"])


def watch_options(f):
    """Options shared by watch, run and demo."""
    for option in reversed([
        click.option("--interval", default=10.0, show_default=True, type=click.FloatRange(0),
                     help="Seconds between two rewrites of the report file, at least."),
        click.option("--poll", type=click.FloatRange(0.05), default=None, metavar="SECONDS",
                     help="Re-read every SECONDS instead of waiting for file events "
                          "(NFS and other network filesystems)."),
        click.option("--serve", is_flag=True, help="Serve a live page and /api/summary."),
        click.option("--host", default="127.0.0.1", show_default=True,
                     help="Address the live page listens on (loopback by default)."),
        click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
                     help="Port of the live page (0: any free port)."),
        click.option("--no-tui", is_flag=True,
                     help="Plain status lines instead of the live panel (for nohup and CI)."),
        click.option("--exit-when-done", is_flag=True,
                     help="Stop when the run is done, with the exit code `check` gives for the "
                          "log: 1 when it failed, stalled or has a --fail-on anomaly, else 0."),
        click.option("--fail-on", default=FAIL_ON, show_default=True, callback=anomaly_kinds,
                     metavar="KINDS",
                     help="With --exit-when-done: anomaly kinds that make a finished run exit "
                          "1, as `check --fail-on` (a failed or stalled run always does)."),
        click.option("--stall-minutes", type=click.FloatRange(0, min_open=True), default=None,
                     help="Raise a stall anomaly after this long without a new line "
                          "(default: 10x the median gap, at least 5 min)."),
        click.option("--title", default=None, help="Page title (default: the run name)."),
        click.option("--gpu", is_flag=True,
                     help="Sample GPU utilisation, memory and power (NVML, extra 'gpu') into "
                          "the run every few seconds."),
        click.option("--email-to", multiple=True, metavar="ADDR",
                     help="Mail the report when the run finishes or fails and on the first "
                          "anomaly of each kind (SMTP from LOGREPORT_SMTP_* or config.toml)."),
        click.option("--email-on", default="finish,fail,anomaly,stop", show_default=True,
                     help="Which events mail the report (with --email-to)."),
        FORMAT,
    ]):
        f = option(f)
    return notify_options(f)


def _watch(path, kw, output=None, from_end=False, plain=False, keep_going=None,
           stopper=None, notifiers=None) -> int:
    """Watch one log with the shared options; returns the exit code of the loop."""
    import signal

    from rich.console import Console

    from . import formats
    from .live import LiveView, PlainView
    from .watch import Options, Watch, default_output

    if kw["fmt"] and formats.get(kw["fmt"]) is None:
        raise UsageError(f"unknown format {kw['fmt']!r}", "known: " + ", ".join(formats.names()))
    _one_run(path)
    opts = Options(fmt=kw["fmt"], from_end=from_end, output=output or default_output(path),
                   interval=kw["interval"], poll=kw["poll"], stall_minutes=kw["stall_minutes"],
                   exit_when_done=kw["exit_when_done"], title=kw["title"], gpu=kw["gpu"],
                   fail_on=tuple(kw["fail_on"]),
                   notifiers=notifiers if notifiers is not None
                   else _notifiers(kw["email_to"], kw["email_on"]) + chat_notifiers(kw),
                   stopper=stopper, lang=kw["lang"] or locale_lang())
    server = None
    if kw["serve"]:
        from .serve import LiveServer

        server = LiveServer(kw["host"], kw["port"])
        server.start()
        click.echo(f"live page: {server.url}", err=True)
        if server.warning:
            click.echo(f"logreport: {server.warning}", err=True)
    console = Console(stderr=plain)
    if kw["no_tui"] or plain or not console.is_terminal:
        view = PlainView(console)
    else:
        view = LiveView(console, path, opts.output, server.url if server else None)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)   # end like Ctrl-C
    watcher = Watch(path, opts, view, server)
    try:
        code = watcher.loop(keep_going)
    finally:
        signal.signal(signal.SIGTERM, previous)
        view.close()
        if server is not None:
            server.close()
    if os.path.exists(opts.output):
        click.echo(f"report: {clean(opts.output)}", err=True)
    return code


def _one_run(path: str) -> None:
    """`watch` follows one run: a folder of several separate runs is refused."""
    from . import sources
    from .runs import folder_runs

    path = sources.given(path)
    if sources.streams_backlog(path) or not sources.isdir(path):
        return
    try:
        found = folder_runs(path)
    except InputError:
        return                      # no log yet: the run's files will come
    if len(found) > 1:              # (a launch folder's run is the folder: name its rank 0)
        first = found[0].inputs[0].path if found[0].name == path else found[0].name
        raise UsageError(f"{len(found)} logs of separate runs here",
                         f"watch one run, e.g. logreport watch {first}", path)


def _notifiers(to, on) -> list:
    """`watch --email-to`: one mail Notifier (settings from the environment or config.toml)."""
    if not to:
        return []
    from .alerts import check_events, parse_events
    from .mail import Notifier, resolve_settings

    events = check_events(parse_events(on), "--email-on")
    return [Notifier(smtp_password(resolve_settings()), list(to), on=events)]


@main.command()
@click.argument("log")
@click.option("-o", "--output", default=None,
              help="Report kept current (default: next to the log, run.log -> run.report.html).")
@click.option("--from-end", is_flag=True, help="Skip what the log already holds.")
@click.option("--pid", type=click.IntRange(1), default=None,
              help="The training's process (started elsewhere): the watch ends when it does, "
                   "and --stop-on stops its process group.")
@watch_options
@stop_options
def watch(log, output, from_end, pid, **kw):
    """Follow a log (or an output folder) while training runs: live view, report kept current.

    Waits for a log that does not exist yet; survives truncation, rotation and a new run
    overwriting the file. Ctrl-C writes the final report and exits 0.

    Example: logreport watch run.log --serve
    """
    from .procgroup import Training

    training = None
    if pid is not None:
        try:
            training = Training.attach(pid)
        except ProcessLookupError:
            raise UsageError(f"no process {pid}", "give the PID of the running training") from None
        except PermissionError:
            raise UsageError(f"not allowed to signal process {pid}",
                             "run logreport as the user who runs the training") from None
    elif kw["stop_on"]:
        raise UsageError("watch --stop-on needs --pid PID (the training to stop)",
                         "or start the training with `logreport run --stop-on ... -- CMD`")
    stopper = _stopper(kw, training)
    code = _watch(log, kw, output, from_end, stopper=stopper,
                  keep_going=training.alive if training else None)
    sys.exit(_stopped_code(stopper) or code)


def _stopped_code(stopper) -> int | None:
    """Exit code 3 (and one line saying why) when --stop-on stopped the run."""
    from .stop import STOPPED_EXIT

    if stopper is None or not stopper.stopped:
        return None
    click.echo(f"logreport: {clean(stopper.entry['text'])}; exit code {STOPPED_EXIT}", err=True)
    return STOPPED_EXIT


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("-o", "--log", "log", default="run.log", show_default=True,
              help="Log file the command's output is written to.")
@click.option("--report", "output", default=None,
              help="Report kept current (default: next to the log).")
@watch_options
@stop_options
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(log, output, command, **kw):
    """Start a training command, tee its output to the terminal and a log, and watch it.

    The command runs in its own process group (Ctrl-C is passed on to it). The exit code is
    the command's, or 3 when --stop-on stopped it.

    Example: logreport run -o run.log -- python tools/train.py -c x.yml
    """
    import signal

    from .procgroup import Training

    _stopper(kw, None)                          # a bad --stop-on is told before starting
    notifiers = _notifiers(kw["email_to"], kw["email_on"]) + chat_notifiers(kw)
    env = {k: v for k, v in os.environ.items() if not _secret(k)}   # `env` would log them
    env.setdefault("PYTHONUNBUFFERED", "1")     # lines reach the log as they are printed
    try:
        training = Training.start(list(command), env)
    except OSError as e:
        raise UsageError(f"cannot start {command[0]!r}: {e.strerror}",
                         "check the command") from None
    child = training.popen
    try:
        sink = open(log, "wb")
    except OSError as e:
        child.kill()
        raise UsageError(f"cannot write the log: {e.strerror}", "choose another -o",
                         log) from None

    def tee():
        out = sys.stdout.buffer
        with sink:
            while data := os.read(child.stdout.fileno(), 65536):
                out.write(data)
                out.flush()
                sink.write(data)
                sink.flush()

    thread = threading.Thread(target=tee, name="logreport-tee", daemon=True)
    thread.start()
    stopper = _stopper(kw, training)
    try:
        _watch(log, kw, output, plain=True, keep_going=thread.is_alive, stopper=stopper,
               notifiers=notifiers)
    finally:
        if child.poll() is None and not (stopper and stopper.stopped):
            training.send(signal.SIGINT)        # the watch ended first: Ctrl-C, or an error
        code = child.wait()
        thread.join(5)
        child.stdout.close()
    sys.exit(_stopped_code(stopper) or (code if code >= 0 else 128 - code))


def _secret(variable: str) -> bool:
    """logreport's own secrets (LOGREPORT_SMTP_PASSWORD, a token): not for the command `run`
    starts."""
    return variable.startswith("LOGREPORT_") and any(
        word in variable for word in ("PASSWORD", "TOKEN", "SECRET"))


@main.command()
@click.option("--speed", default=10.0, show_default=True, type=click.FloatRange(0.1),
              help="Replay this many times faster than the log was written.")
@click.option("-o", "--output", default=None, help="Report to write (default: a temporary file).")
@watch_options
def demo(speed, output, **kw):
    """Replay a shipped real PaddleDetection log and watch it: the live view without a GPU.

    Example: logreport demo --serve
    """
    import tempfile

    from .demo import replay

    folder = tempfile.mkdtemp(prefix="logreport-demo-")
    log = os.path.join(folder, "demo.log")
    stop = threading.Event()
    writer = threading.Thread(target=replay, args=(log, speed, stop), daemon=True)
    writer.start()
    click.echo(f"replaying a real log into {log} at {speed:g}x", err=True)
    try:
        code = _watch(log, kw, output or os.path.join(folder, "report.html"),
                      keep_going=writer.is_alive)
    finally:
        stop.set()
    sys.exit(code)
