"""The `logreport` command: a thin click layer; the only place errors become exit codes."""
from __future__ import annotations

import json
import os
import signal
import sys
import threading

import click

from . import __version__
from .errors import LogreportError, UsageError
from .terminal import cell, clean, closed_pipe, json_text

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
    that tells someone about a run: give it these and call chat_notifiers)."""
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
                     help="Language of chat messages and report pages, not of the terminal "
                          "(default: zh if LC_ALL/LANG starts with zh)."),
    ]):
        f = option(f)
    return f


def chat_notifiers(kw, retry: float | None = None) -> list:
    from .notify import RETRY, notifiers

    return notifiers(kw["notify"], kw["notify_format"], kw["lang"] or locale_lang(), retry=retry or RETRY)


M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3      # glibc's malloc.h


def _keep_freed_memory() -> None:
    """glibc's malloc gives blocks up to 4 MB from the heap and keeps 64 MB free for reuse: a
    chunk's 512 kB arrays were each mapped afresh and faulted in anew (README, Performance).
    Linux only; no-op without glibc's mallopt (musl)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    for option, value in ((M_MMAP_THRESHOLD, 4 << 20), (M_TRIM_THRESHOLD, 64 << 20),
                          (M_TOP_PAD, 16 << 20)):
        mallopt(option, value)


class Main(click.Group):
    """Turns library errors into one line + exit code; a traceback only with --debug."""

    def invoke(self, ctx):
        if threading.current_thread() is threading.main_thread():   # (signals: main thread only)
            signal.signal(signal.SIGTERM, _terminated)  # clean up as on Ctrl-C (no stray .tmp)
            _keep_freed_memory()
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
        except (Terminated, BrokenPipeError) as e:      # SIGTERM; the reader of a pipe went
            ctx.exit(128 + signal.SIGTERM if isinstance(e, Terminated) else closed_pipe())
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
    from .model import tell_apart
    from .reader import load_all

    if fmt and formats.get(fmt) is None:
        raise UsageError(f"unknown format {fmt!r}", "known: " + ", ".join(formats.names()))
    runs, notes, seen = [], [], set()
    for path in logs:
        with _progress(path) as progress:
            runs += load_all([path], fmt, progress, notes, seen)
    for note in notes:
        click.echo(f"logreport: {clean(note)}", err=True)
    tell_apart(runs)
    return runs


PROGRESS_BYTES = 64 << 20    # inputs at least this big show a progress bar on a terminal


class count_progress:
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

    reads_only()
    runs = load_runs(logs, fmt)
    data = {"runs": [summarize(run) for run in runs]}
    if show_unparsed:
        for run, s in zip(runs, data["runs"]):
            s["unparsed_samples"] = [{"file": f, "line": n, "text": t}
                                     for f, n, t in run.unparsed_samples]
    if as_json:
        click.echo(json_text(summary_json(data["runs"])))
        return
    _print_summary(data["runs"], [run.name for run in runs])
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
             + (" (estimated)" if s.get("last_step_estimated") else "")
             + (" (total from the ETA)" if s.get("total_steps_estimated") else "")),
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


def _print_summary(summaries, names):
    """A table: a column per run (a row per run when there are many), named as every command
    names them (Run.name)."""
    from rich.console import Console
    from rich.table import Table

    rows = [_summary_rows(s) for s in summaries]
    table = Table(show_header=True, header_style="bold")
    if len(summaries) <= 3:
        table.add_column("")
        for name in names:
            table.add_column(cell(name), overflow="fold")
        for i, (label, _) in enumerate(rows[0]):
            table.add_row(label, *[cell(r[i][1]) for r in rows])
    else:
        wanted = ("status", "last step", "best", "wall time", "anomalies")
        table.add_column("run", overflow="fold")      # whole, folded: the end tells them apart
        for label in wanted:
            table.add_column(label)
        for name, r in zip(names, rows):
            texts = dict(r)
            table.add_row(cell(name), *[cell(texts[label]) for label in wanted])
    Console().print(table)


def anomaly_kinds(ctx, param, value):
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
              callback=anomaly_kinds, metavar="KINDS",
              help="Comma-separated anomaly kinds that make the exit status 1.")
@FORMAT
@_threshold_options
@notify_options
def check(logs, as_json, fail_on, fmt, notify, notify_format, lang, **limits):
    """Print the anomalies of runs; exit 1 if a run failed or one of the --fail-on kinds occurred.

    For CI pipelines and cron jobs. Example: logreport check run.log --fail-on nan,oom
    """
    from . import present
    from .analysis import Thresholds, anomalies, status

    reads_only()
    th = Thresholds(**limits)
    chat = chat_notifiers({"notify": notify, "notify_format": notify_format, "lang": lang},
                           retry=1.0)                # a one-shot command waits 1 s, then 2 s
    results = []
    for run in load_runs(logs, fmt):
        state, evidence = status(run)
        results.append({"source": run.source, "status": state, "status_evidence": evidence,
                        "anomalies": anomalies(run, th)})
        if chat:
            _notify_check(chat, run, results[-1], lang or locale_lang())
    failing = sorted({a["kind"] for r in results for a in r["anomalies"]} & set(fail_on))
    failed = [r for r in results if r["status"] == "failed"]    # as `watch --exit-when-done`
    if as_json:
        click.echo(json_text(json.dumps({"runs": results, "fail_on": fail_on,
                                         "failed": bool(failing or failed)},
                                        ensure_ascii=False, indent=2, allow_nan=False)))
    else:
        for r in results:
            click.echo(clean(f"{r['source']}: {present.status(r)} ({r['status_evidence']}); "
                             f"{present.count(len(r['anomalies']), 'anomaly', 'anomalies')}"))
            for a in r["anomalies"]:
                where = f"line {a['line']}" if a.get("file") in (None, r["source"]) else \
                    f"{a['file']}:{a['line']}"
                where += f", step {'~' if a.get('step_estimated') else ''}{a['step']}" \
                    if a["step"] is not None else ""
                click.echo(clean(f"  {a['kind']:<16} {where}: {a['detail']}"))
    for r in failed:
        click.echo(clean(f"logreport: {r['source']} failed ({r['status_evidence']})"), err=True)
    if failing:
        click.echo(f"logreport: found {', '.join(failing)}", err=True)
    if failing or failed:
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
    from .export import check_suffix, write

    reads_only()
    check_suffix(output)                # (before reading: a wrong type is said at once)
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


_quick_exit = False      # set by a command that only reads logs and writes its output


def reads_only() -> None:
    """Said by such a command (summary, check, export): see run()."""
    global _quick_exit
    _quick_exit = True


def run() -> None:
    """The console script: `main`, then, after a command that only read logs and wrote its
    output, an exit that does not free its parse object by object (on a big log nearly as long
    as the summary itself: 30 ms per 100 MB); nothing else is left to clean up."""
    try:
        main()              # (click ends it with SystemExit)
    except SystemExit as e:
        if not _quick_exit or not (e.code is None or isinstance(e.code, int)):
            raise
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:         # a closed pipe (| head): what was written stands
            pass
        os._exit(e.code or 0)


# the commands of cli_watch (watch, run, demo) and cli_sites (index, serve, query)
from . import cli_sites, cli_watch  # noqa: E402, F401  (registered on `main` when imported)

if __name__ == "__main__":  # pragma: no cover
    run()
