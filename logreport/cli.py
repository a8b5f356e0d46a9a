"""The `logreport` command: a thin click layer; the only place errors become exit codes."""
from __future__ import annotations

import json
import os
import signal
import sys
import threading

import click

from . import __version__
from .errors import InputError, LogreportError, UsageError
from .terminal import cell, clean, json_text

FAIL_ON = "nan,traceback,divergence"     # anomaly kinds that fail `check` and `watch` by default
LOGS = click.argument("logs", nargs=-1, required=True, metavar="LOG...")
FORMAT = click.option("--format", "fmt", default=None, metavar="NAME",
                      help="Log format (default: detected). See `logreport formats`.")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that every `finally` runs as on Ctrl-C."""


def _terminated(signum, frame):
    raise Terminated()


def notify_options(f):
    """`--notify` (chat webhooks) and `--lang`: on watch, run, demo and check (and any command
    that tells someone about a run: give it these and call _chat_notifiers)."""
    for option in reversed([
        click.option("--notify", "notify", multiple=True, metavar="URL",
                     help="Post to this chat webhook (Feishu/Lark, DingTalk, WeCom, Slack, else "
                          "plain JSON; repeatable) when the run finishes, fails or is stopped and "
                          "on the first anomaly of each kind [env LOGREPORT_NOTIFY; config.toml "
                          "[[notify]]]."),
        click.option("--notify-format", type=click.Choice(["feishu", "dingtalk", "wecom", "slack",
                                                           "json"]),
                     default=None, help="Message dialect of every --notify URL (default: by "
                                        "the URL's host)."),
        click.option("--lang", type=click.Choice(["en", "zh"]), default=None,
                     help="Language of messages and pages (default: zh if LC_ALL/LANG starts "
                          "with zh)."),
    ]):
        f = option(f)
    return f


def _chat_notifiers(kw, retry: float | None = None) -> list:
    from .notify import RETRY, notifiers

    return notifiers(kw["notify"], kw["notify_format"], kw["lang"] or locale_lang(),
                     retry=retry or RETRY)


class Main(click.Group):
    """Turns library errors into one line + exit code; a traceback only with --debug."""

    def invoke(self, ctx):
        if threading.current_thread() is threading.main_thread():   # (signals: main thread only)
            signal.signal(signal.SIGTERM, _terminated)  # clean up as on Ctrl-C (no stray .tmp)
        try:
            return super().invoke(ctx)
        except LogreportError as e:
            if ctx.obj and ctx.obj.get("debug"):
                import traceback

                traceback.print_exc()
            click.echo(f"logreport: {clean(e.one_line())}", err=True)
            ctx.exit(e.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Terminated:
            ctx.exit(128 + signal.SIGTERM)
        except KeyboardInterrupt:
            ctx.exit(130)
        except Exception as e:  # a bug: say so in one line unless --debug
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"logreport: internal error: {type(e).__name__}: {clean(e)} "
                       "(hint: rerun with --debug and report it)", err=True)
            ctx.exit(1)


@click.group(cls=Main)
@click.version_option(__version__, prog_name="logreport")
@click.option("--debug", is_flag=True, help="Show the traceback of an error.")
@click.pass_context
def main(ctx, debug):
    """Reports from the training logs PaddleDetection and LLaMA-Factory already write."""
    ctx.obj = {"debug": debug}


def locale_lang() -> str:
    """zh when the locale (LC_ALL, else LANG) is Chinese, else en."""
    loc = os.environ.get("LC_ALL") or os.environ.get("LANG") or ""
    return "zh" if loc.lower().startswith("zh") else "en"


def load_runs(logs, fmt):
    """The runs the command-line paths name: a file is one run, a folder one run when it is
    one run's output, else one run per log in it (said on stderr, as are skipped files)."""
    from . import formats
    from .reader import load_all

    if fmt and formats.get(fmt) is None:
        raise UsageError(f"unknown format {fmt!r}", "known: " + ", ".join(formats.names()))
    runs, notes = [], []
    for path in logs:
        with _progress(path) as progress:
            runs += load_all([path], fmt, progress, notes)
    for note in notes:
        click.echo(f"logreport: {clean(note)}", err=True)
    return runs


PROGRESS_BYTES = 64 << 20    # inputs at least this big show a progress bar on a terminal


class _count_progress:
    """A rich progress bar of done/total items on stderr, only when stderr is a terminal."""

    def __init__(self, what: str):
        self.what, self.bar, self.task = what, None, None

    def __enter__(self):
        return self.update if sys.stderr.isatty() else None

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.what, total=total)
        self.bar.update(self.task, completed=done)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False


class _progress:
    """A rich progress bar on stderr for a long read, only when stderr is a terminal."""

    def __init__(self, path: str):
        self.path, self.bar, self.task = path, None, None

    def __enter__(self):
        return self.update if sys.stderr.isatty() else None

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            if total < PROGRESS_BYTES:
                return
            from rich.console import Console
            from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

            self.bar = Progress(*Progress.get_default_columns(), DownloadColumn(),
                                TransferSpeedColumn(), console=Console(stderr=True),
                                transient=True)
            self.bar.start()
            from rich.markup import escape

            name = escape(clean(os.path.basename(self.path)))
            self.task = self.bar.add_task(f"reading {name}", total=total)
        self.bar.update(self.task, completed=done)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False


@main.command()
@LOGS
@click.option("-o", "--output", default="report.html", show_default=True,
              help="HTML file to write.")
@click.option("--title", default=None, help="Page title (default: the run names).")
@click.option("--lang", type=click.Choice(["en", "zh"]), default=None,
              help="Language of the page's labels (default: zh if LC_ALL/LANG starts with zh).")
@click.option("--plotlyjs", type=click.Choice(["inline", "cdn"]), default="inline",
              show_default=True,
              help="inline: plotly.js compressed inside the page (works offline); "
                   "cdn: a small page that loads plotly.js from jsDelivr.")
@click.option("--full-paths", is_flag=True,
              help="Show the logs' absolute paths in the page (default: the names as typed).")
@FORMAT
def report(logs, output, title, lang, plotlyjs, full_paths, fmt):
    """Write a self-contained interactive HTML report of one or more runs.

    Example: logreport report run.log -o report.html
    """
    from .render import write_html
    from .report import build

    runs = load_runs(logs, fmt)
    write_html(build(runs, title=title, lang=lang or locale_lang(), full_paths=full_paths), output,
               plotlyjs)
    click.echo(f"wrote {output} ({os.path.getsize(output) / 1e6:.2f} MB)", err=True)


@main.command()
@LOGS
@click.option("--json", "as_json", is_flag=True, help="Print JSON ({\"runs\": [...]}).")
@click.option("--show-unparsed", is_flag=True,
              help="Also print the first lines no parser understood, with their numbers.")
@FORMAT
def summary(logs, as_json, show_unparsed, fmt):
    """Print the key figures of one or more runs.

    Example: logreport summary run.log --json
    """
    from .analysis import summarize, summary_json

    runs = load_runs(logs, fmt)
    data = {"runs": [summarize(run) for run in runs]}
    if show_unparsed:
        for run, s in zip(runs, data["runs"]):
            s["unparsed_samples"] = [{"file": f, "line": n, "text": t}
                                     for f, n, t in run.unparsed_samples]
    if as_json:
        click.echo(json_text(summary_json(data["runs"])))
        return
    _print_summary(data["runs"])
    if show_unparsed:
        for s in data["runs"]:
            _print_unparsed(s)


def _print_unparsed(s: dict) -> None:
    """Unparsed lines with their numbers; control characters shown as \ufffd (log text must not
    drive the terminal)."""
    samples = s["unparsed_samples"]
    click.echo(f"{clean(s['source'])}: {s['unparsed_lines']} unparsed lines"
               + (f", the first {len(samples)}:" if samples else ""))
    for sample in samples:
        where = sample["line"] if sample["file"] == s["source"] else \
            clean(f"{sample['file']}:{sample['line']}")
        click.echo(f"  {where:>6}  {clean(sample['text'])}")


def _summary_rows(s: dict) -> list[tuple[str, str]]:
    """(label, text) of one run's summary, as the terminal shows it."""
    from . import present

    progress = s["progress"] or {}
    timing = s["timing"] or {}
    speed = s["throughput"]
    return [("format", s["format"] or present.MISSING),
            ("status", present.status(s)),
            ("last step", present.step_of(s["last_step"], s["total_steps"])
             + (" (estimated)" if s.get("last_step_estimated") else "")),
            ("last epoch", present.number(s["last_epoch"])),
            ("train records", str(s["train_records"])),
            ("best", present.best(s["best"])),
            ("throughput", present.metric(speed["metric"], speed["median"]) if speed
             else present.MISSING),
            ("progress", present.percent(progress.get("percent"))),
            ("wall time", present.duration(s["wall_seconds"])),
            ("ETA", present.duration(s["eta_seconds"])),
            ("time / epoch", present.duration((timing.get("epoch_seconds") or {}).get("mean"))),
            ("anomalies", present.kinds(s["anomalies"])),
            ("unparsed lines", str(s["unparsed_lines"]))]


def _print_summary(summaries):
    """A table: a column per run (a row per run when there are many)."""
    from rich.console import Console
    from rich.table import Table

    rows = [_summary_rows(s) for s in summaries]
    names = [_run_name(s) for s in summaries]
    table = Table(show_header=True, header_style="bold")
    if len(summaries) <= 3:
        table.add_column("")
        for name in names:
            table.add_column(cell(name))
        for i, (label, _) in enumerate(rows[0]):
            table.add_row(label, *[cell(r[i][1]) for r in rows])
    else:
        wanted = ("status", "last step", "best", "wall time", "anomalies")
        table.add_column("run")
        for label in wanted:
            table.add_column(label)
        for name, r in zip(names, rows):
            texts = dict(r)
            table.add_row(cell(name), *[cell(texts[label]) for label in wanted])
    Console().print(table)


def _run_name(s: dict) -> str:
    source = s["source"].rstrip("/")
    base = os.path.basename(source) or source
    if base in ("console.log", "trainer_log.jsonl", "run.log", "train.log"):
        return os.path.join(os.path.basename(os.path.dirname(source)), base)
    return base


def _kinds(ctx, param, value):
    from .analysis import ANOMALY_KINDS

    kinds = [k.strip() for k in value.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in ANOMALY_KINDS]
    if unknown:
        raise click.BadParameter(f"unknown kind {unknown[0]!r}; known: {', '.join(ANOMALY_KINDS)}")
    return kinds


def _threshold_options(command):
    """One option per field of analysis.Thresholds (--spike-factor, --zero-loss-records...)."""
    from dataclasses import fields

    from .analysis import Thresholds

    for limit in reversed(fields(Thresholds)):
        command = click.option(f"--{limit.name.replace('_', '-')}", limit.name,
                               type=type(limit.default), default=limit.default,
                               show_default=True, help=limit.metadata["help"])(command)
    return command


@main.command()
@LOGS
@click.option("--json", "as_json", is_flag=True, help="Print JSON ({\"runs\": [...]}).")
@click.option("--fail-on", default=FAIL_ON, show_default=True,
              callback=_kinds, metavar="KINDS",
              help="Comma-separated anomaly kinds that make the exit status 1.")
@FORMAT
@_threshold_options
@notify_options
def check(logs, as_json, fail_on, fmt, notify, notify_format, lang, **limits):
    """Print the anomalies of runs; exit 1 if one of the --fail-on kinds occurred.

    For CI pipelines and cron jobs. Example: logreport check run.log --fail-on nan,oom
    """
    from . import present
    from .analysis import Thresholds, anomalies, status

    th = Thresholds(**limits)
    chat = _chat_notifiers({"notify": notify, "notify_format": notify_format, "lang": lang},
                           retry=1.0)                # a one-shot command waits 1 s, then 2 s
    results = []
    for run in load_runs(logs, fmt):
        state, evidence = status(run)
        results.append({"source": run.source, "status": state, "status_evidence": evidence,
                        "anomalies": anomalies(run, th)})
        if chat:
            _notify_check(chat, run, results[-1], lang or locale_lang())
    failing = sorted({a["kind"] for r in results for a in r["anomalies"]} & set(fail_on))
    if as_json:
        click.echo(json_text(json.dumps({"runs": results, "fail_on": fail_on,
                                         "failed": bool(failing)},
                                        ensure_ascii=False, indent=2, allow_nan=False)))
    else:
        for r in results:
            click.echo(clean(f"{r['source']}: {present.status(r)} ({r['status_evidence']}); "
                             f"{present.count(len(r['anomalies']), 'anomaly', 'anomalies')}"))
            for a in r["anomalies"]:
                where = f"line {a['line']}" if a.get("file") in (None, r["source"]) else \
                    f"{a['file']}:{a['line']}"
                where += f", step {a['step']}" if a["step"] is not None else ""
                click.echo(clean(f"  {a['kind']:<16} {where}: {a['detail']}"))
    if failing:
        click.echo(f"logreport: found {', '.join(failing)}", err=True)
        click.get_current_context().exit(1)


def _notify_check(chat, run, result: dict, lang: str) -> None:
    """`check --notify`: the run's events (finish, fail, anomalies found by check) told now,
    each failure one line on stderr; the exit code stays check's."""
    from .report import build

    payload = build([run], lang=lang)
    summary = dict(payload["runs"][0]["summary"], **result)
    for notifier in chat:
        notifier.send_now(summary, payload,
                          say=lambda text: click.echo(f"logreport: {clean(text)}", err=True))


@main.command()
@LOGS
@click.option("-o", "--output", required=True,
              help="File to write: .jsonl, .csv or .parquet (by its extension).")
@FORMAT
def export(logs, output, fmt):
    """Export every series as tidy rows (run, segment, phase, step, epoch, time, metric, value).

    Example: logreport export run.log -o metrics.csv
    """
    from .export import write

    runs = load_runs(logs, fmt)
    n = write(runs, output)
    click.echo(f"wrote {n} rows to {output}", err=True)


@main.command()
@click.argument("source", metavar="REPORT.html|LOG|DIR")
@click.option("--to", "to", multiple=True, required=True, metavar="ADDR",
              help="Recipient (repeat for several).")
@click.option("--cc", multiple=True, metavar="ADDR", help="Copy to (repeat for several).")
@click.option("--from", "sender", default=None, metavar="ADDR",
              help="Sender address [env LOGREPORT_SMTP_FROM].")
@click.option("--subject", default=None, help="Subject (default: run, status and best metric).")
@click.option("--smtp-host", default=None, metavar="H", help="SMTP server [env LOGREPORT_SMTP_HOST].")
@click.option("--smtp-port", default=None, type=int, metavar="P",
              help="SMTP port (default 587; 465 with --tls ssl) [env LOGREPORT_SMTP_PORT].")
@click.option("--smtp-user", default=None, metavar="U",
              help="Login name; the password comes from LOGREPORT_SMTP_PASSWORD or a prompt "
                   "[env LOGREPORT_SMTP_USER].")
@click.option("--tls", type=click.Choice(["starttls", "ssl", "none"]), default=None,
              help="Encryption (default starttls) [env LOGREPORT_SMTP_TLS].")
@click.option("--allow-plaintext-auth", is_flag=True,
              help="Allow logging in over --tls none to a server that is not on this machine "
                   "(the password crosses the network in clear) "
                   "[env LOGREPORT_SMTP_ALLOW_PLAINTEXT_AUTH=1].")
@click.option("--max-attachment-mb", default=10.0, show_default=True, type=click.FloatRange(min=0),
              help="Zip the report when it is larger than this.")
@click.option("-o", "--output", default="report.html", show_default=True,
              help="Where to write the report when SOURCE is a log or folder.")
@FORMAT
def email(source, to, cc, sender, subject, smtp_host, smtp_port, smtp_user, tls,
          allow_plaintext_auth, max_attachment_mb, output, fmt):
    """Mail a report: summary in the body, the HTML report attached.

    SMTP settings: options > LOGREPORT_SMTP_* variables > ~/.config/logreport/config.toml [smtp].

    Example: logreport email run.log --to team@example.com --smtp-host smtp.example.com
    """
    from . import mail

    settings = mail.resolve_settings(host=smtp_host, port=smtp_port, user=smtp_user,
                                     sender=sender, tls=tls,
                                     allow_plaintext_auth=allow_plaintext_auth)
    mail.addresses([*to, *cc])
    settings = smtp_password(settings)
    payload = None
    if source.lower().endswith((".html", ".htm")) and os.path.isfile(source):
        report_path = source
    else:
        from .render import write_html
        from .report import build

        payload = build(load_runs([source], fmt))
        write_html(payload, output)
        report_path = output
        click.echo(f"wrote {output} ({os.path.getsize(output) / 1e6:.2f} MB)", err=True)
    msg = mail.send_report(settings, list(to), report_path, cc=list(cc), title=subject,
                           max_attachment_mb=max_attachment_mb, payload=payload)
    click.echo(clean(f"sent {msg['Subject']!r} to {', '.join(to + cc)} via "
                     f"{settings.host}:{settings.port}"), err=True)


def smtp_password(settings):
    """Settings with the password from LOGREPORT_SMTP_PASSWORD, or asked for when a login is set."""
    import dataclasses

    from .mail import password_from_env

    password = password_from_env()
    if settings.user and not password:
        password = click.prompt(f"SMTP password for {settings.user}", hide_input=True,
                                default="", show_default=False)
    return dataclasses.replace(settings, password=password)


@main.command(name="formats")
def formats_cmd():
    """List the known log formats with a sample line each.

    Example: logreport formats
    """
    from . import formats
    from .eventsource import FORMATS

    for fmt in formats.all_formats():
        click.echo(f"{fmt.NAME}: {fmt.TITLE}")
        click.echo(f"    {fmt.SAMPLES[0][0].splitlines()[0][:150]}")
    for fmt in FORMATS:
        click.echo(f"{fmt.NAME}: {fmt.TITLE} (pip install 'logreport[{fmt.EXTRA}]')")
        click.echo(f"    {fmt.EXAMPLE}")


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
        click.option("--fail-on", default=FAIL_ON, show_default=True, callback=_kinds,
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
                   else _notifiers(kw["email_to"], kw["email_on"]) + _chat_notifiers(kw),
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
    from .runs import folder_runs

    if not os.path.isdir(path):
        return
    try:
        found = folder_runs(path)
    except InputError:
        return                      # no log yet: the run's files will come
    if len(found) > 1:
        raise UsageError(f"{len(found)} logs of separate runs here",
                         f"watch one run, e.g. logreport watch {found[0].name}", path)


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
    import threading

    from .procgroup import Training

    _stopper(kw, None)                          # a bad --stop-on is told before starting
    notifiers = _notifiers(kw["email_to"], kw["email_on"]) + _chat_notifiers(kw)
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
    import threading

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


@main.command(name="index")
@click.argument("roots", nargs=-1, required=True, metavar="ROOT...")
@click.option("-o", "--output", "site", default="site", show_default=True,
              help="Folder of the site: index.html, a report per run, the catalog.")
@click.option("--include", multiple=True, metavar="GLOB",
              help="Only runs whose name (path under the root) matches (repeat for several).")
@click.option("--exclude", multiple=True, metavar="GLOB",
              help="Leave out runs whose name matches (repeat for several).")
@click.option("--jobs", type=click.IntRange(1), default=None,
              help="Processes reading runs at once (default: one per core).")
@click.option("--lang", type=click.Choice(["en", "zh"]), default=None,
              help="Language of the pages' labels (default: zh if LC_ALL/LANG starts with zh).")
def index_cmd(roots, site, include, exclude, jobs, lang):
    """Write a static site of every run under ROOT: a table of runs and a report per run.

    A run is a log, an output folder or a launch folder, as for `report`. Incremental: a run
    whose files did not change costs a stat; an appended log is read on from where it
    stopped; a deleted one leaves the catalog (SITE/.logreport/catalog.duckdb, see `query`).

    Example: logreport index runs/ -o site/
    """
    from .index import index

    with _count_progress("reading runs") as progress:
        result = index(list(roots), site, include, exclude, jobs, lang or locale_lang(),
                       progress)
    for line in result.skipped[:10]:
        click.echo(f"logreport: skipped {line}", err=True)
    if len(result.skipped) > 10:
        click.echo(f"logreport: skipped {len(result.skipped) - 10} more (see: logreport query "
                   f"--site {site} \"select * from catalog_skipped\")", err=True)
    click.echo(f"{os.path.join(site, 'index.html')}: {result.runs} runs; read {result.read} "
               f"({result.resumed} on from where they stopped), removed {result.removed}, "
               f"skipped {len(result.skipped)}", err=True)


def _serve_site(roots) -> str:
    """Where `serve` keeps its site without -o: a cache folder per set of roots."""
    import hashlib

    key = "\0".join(os.path.abspath(r) for r in roots).encode("utf-8", "surrogateescape")
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "logreport", "serve", hashlib.sha1(key).hexdigest()[:16])


@main.command(name="serve")
@click.argument("roots", nargs=-1, required=True, metavar="ROOT...")
@click.option("-o", "--output", "site", default=None,
              help="Folder of the site (default: a cache folder, ~/.cache/logreport/serve/…).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any other than loopback needs the token.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port (0: any free one).")
@click.option("--token", envvar="LOGREPORT_TOKEN", default=None,
              help="Token asked for off loopback [env LOGREPORT_TOKEN] (default: a random one, "
                   "printed in the URL).")
@click.option("--allow-host", multiple=True, metavar="NAME",
              help="Another Host name this server answers to (a DNS alias, a proxy's name).")
@click.option("--include", multiple=True, metavar="GLOB", help="As for `index`.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="As for `index`.")
@click.option("--jobs", type=click.IntRange(1), default=None,
              help="Processes reading runs at once while indexing (default: one per core).")
@click.option("--lang", type=click.Choice(["en", "zh"]), default=None,
              help="Language of the pages' labels (default: zh if LC_ALL/LANG starts with zh).")
@click.option("--poll", type=click.FloatRange(0.05), default=None, metavar="SECONDS",
              help="Walk the tree every SECONDS instead of waiting for file events (NFS).")
def serve_cmd(roots, site, host, port, token, allow_host, include, exclude, jobs, lang, poll):
    """Serve the index of every run under ROOT, live: new runs appear, running ones update.

    Each run's page is live as with `watch --serve`. Off loopback, every request needs the
    token (printed as a URL with ?token=, kept in a cookie after the first visit).

    Example: logreport serve runs/ --port 8000
    """
    import signal

    from .livesite import serve

    site = site or _serve_site(roots)

    def ready(server):
        for url in server.urls():
            click.echo(f"index: {url}", err=True)
        click.echo(f"logreport: serving {', '.join(roots)} (site {site}); Ctrl-C stops", err=True)

    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        serve(list(roots), site, host, port, token, allow_host, include, exclude, jobs,
              lang or locale_lang(), poll, ready)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


@main.command()
@click.argument("sql")
@click.option("--site", default=None, metavar="SITE",
              help="Site made by `logreport index` (default: the current folder if it holds "
                   "one, else ./site).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list of objects).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
def query(sql, site, as_json, as_csv):
    """Run SQL on a site's catalog: views `runs` (a row per run) and `metrics` (tidy rows).

    Example: logreport query "select name, best_metric, best_value from runs order by best_value desc"
    """
    from . import query as q

    columns, rows = q.run(site or q.default_site(), sql)
    if as_json:
        click.echo(q.as_json(columns, rows))
    elif as_csv:
        click.echo(q.as_csv(columns, rows), nl=False)
    else:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(show_header=True, header_style="bold")
        for c in columns:
            table.add_column(escape(c))
        for row in rows:
            table.add_row(*[escape("" if v is None else str(v)) for v in row])
        Console().print(table)
        click.echo(f"{len(rows)} row{'s' if len(rows) != 1 else ''}", err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
