"""Email delivery: SMTP settings, the message (summary body + report attachment), sending, and a
rate-limited Notifier for `watch`. The password is never printed, logged or put in an error."""
from __future__ import annotations

import io
import json
import os
import re
import smtplib
import socket
import ssl
import struct
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, formatdate, getaddresses, make_msgid

import numpy as np

from . import __version__, alerts, present
from .alerts import EVENTS
from .config import config_path
from .config import load as load_config
from .errors import InputError, LogreportError, UsageError
from .report import points

TLS_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
ENV = "LOGREPORT_SMTP_"
PASSWORD_ENV = "LOGREPORT_SMTP_PASSWORD"


class MailError(LogreportError):
    """The message could not be delivered (exit 1; the report stays on disk)."""


# --- settings ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """Where and how to send; `password` is kept out of repr()."""

    host: str
    port: int
    tls: str
    user: str | None = None
    sender: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    allow_plaintext_auth: bool = False      # log in over --tls none to a host not loopback

    def from_address(self) -> str:
        if self.sender:
            return self.sender
        if self.user and "@" in self.user:
            return self.user
        return f"logreport@{socket.gethostname() or 'localhost'}"

    def plaintext_auth(self) -> bool:
        """The password would cross the network in clear and nobody allowed it."""
        from .serve import is_loopback

        return bool(self.user) and self.tls == "none" and not is_loopback(self.host) \
            and not self.allow_plaintext_auth


def _config(path: str) -> dict:
    """The [smtp] table of the config file ({} when there is no file)."""
    data = load_config(path)
    smtp = data.get("smtp", {})
    if not isinstance(smtp, dict):
        raise UsageError("[smtp] must be a table", "see README, section Email", path)
    if "password" in smtp:
        raise UsageError("the config file must not hold the SMTP password",
                         f"remove it and set {PASSWORD_ENV} (or type it at the prompt)", path)
    return smtp


def resolve_settings(host=None, port=None, user=None, sender=None, tls=None, password=None,
                     env=None, config: str | None = None,
                     allow_plaintext_auth: bool = False) -> Settings:
    """Settings by precedence: arguments > LOGREPORT_SMTP_* variables > config file [smtp].

    A login over `--tls none` to a host that is not loopback is refused (UsageError) unless
    allow_plaintext_auth, LOGREPORT_SMTP_ALLOW_PLAINTEXT_AUTH=1 or `allow_plaintext_auth =
    true` in the config allows it."""
    env = os.environ if env is None else env
    path = config or config_path()
    conf = _config(path)

    def pick(arg, name, key):
        if arg not in (None, ""):
            return arg
        if env.get(ENV + name):
            return env[ENV + name]
        return conf.get(key)

    tls = str(pick(tls, "TLS", "tls") or "starttls").lower()
    if tls not in TLS_MODES:
        raise UsageError(f"unknown TLS mode {tls!r}", "use --tls starttls, ssl or none "
                         "(LOGREPORT_SMTP_TLS, config [smtp] tls)")
    host = pick(host, "HOST", "host")
    if not host:
        raise UsageError("no SMTP server given", "pass --smtp-host, set LOGREPORT_SMTP_HOST, "
                         f"or put host = \"...\" under [smtp] in {path}")
    port = pick(port, "PORT", "port") or DEFAULT_PORTS[tls]
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise UsageError(f"SMTP port {port!r} is not a number",
                         "check --smtp-port / LOGREPORT_SMTP_PORT / config [smtp] port") from None
    allowed = pick(allow_plaintext_auth or None, "ALLOW_PLAINTEXT_AUTH", "allow_plaintext_auth")
    settings = Settings(host=str(host), port=port, tls=tls, user=pick(user, "USER", "user"),
                        sender=pick(sender, "FROM", "from"), password=password,
                        allow_plaintext_auth=str(allowed).lower() in ("1", "true", "yes"))
    if settings.plaintext_auth():
        raise UsageError(*_PLAINTEXT_AUTH)
    addresses([settings.from_address()], "--from (LOGREPORT_SMTP_FROM)")
    return settings


_PLAINTEXT_AUTH = ("refusing to send the SMTP password in clear text (--tls none) to a server "
                   "that is not on this machine", "use --tls starttls or ssl; if the network "
                   "between is trusted, pass --allow-plaintext-auth "
                   "(LOGREPORT_SMTP_ALLOW_PLAINTEXT_AUTH=1)")


def addresses(values, option: str = "--to/--cc") -> list[str]:
    """Each address of values (`a@example.com`, `"Doe, John" <john@example.com>`, several
    comma-separated in one), parsed by the standard library, formatted for a header."""
    out = []
    for value in values:
        pairs = getaddresses([value]) if not re.search(r"[\r\n]", value) else []
        if not pairs or any("@" not in addr.strip("@") for _, addr in pairs):
            raise UsageError(f"not an email address: {value!r}",
                             f"give {option} as name@example.com or '\"Name\" <name@example.com>'")
        out += [formataddr(pair) for pair in pairs]
    return out


def header_text(text: str) -> str:
    """Text for a mail header: control characters (CR/LF first) become spaces."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f]+", " ", text).strip()


def password_from_env(env=None) -> str | None:
    env = os.environ if env is None else env
    return env.get(PASSWORD_ENV) or None


# --- the report file ---------------------------------------------------------------------
_PAYLOAD = re.compile(r'<script\b[^>]*\bid\s*=\s*["\']report-data["\'][^>]*>(.*?)</script>',
                      re.DOTALL | re.IGNORECASE)


def read_payload(path: str) -> dict:
    """The report data embedded in a logreport HTML report (`<script id="report-data">`)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            html = f.read()
    except OSError as e:
        raise InputError(f"cannot read the report: {e.strerror}", "check the path", path) from None
    match = _PAYLOAD.search(html)
    try:
        data = json.loads(match.group(1)) if match else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or not data.get("runs"):
        raise InputError("not a logreport report (no report-data payload)",
                         "give the log or output folder instead, or rebuild the report with "
                         "`logreport report`", path)
    return data


def run_name(summary: dict) -> str:
    """A short run name: the file name without extension, or the folder of a generic file."""
    source = str(summary.get("source") or "run").rstrip("/")
    base = os.path.basename(source) or source
    for ext in (".gz", ".jsonl", ".json", ".log", ".txt"):
        base = base.removesuffix(ext)
    if base in ("console", "trainer_log", "run", "train", "output", "log") and os.sep in source:
        return os.path.basename(os.path.dirname(source)) or base
    return base


# --- the message -------------------------------------------------------------------------
def subject(summary: dict, name: str | None = None) -> str:
    """`[logreport] NAME · STATUS · METRIC VALUE @ epoch N` (+ anomaly count)."""
    parts = [name or run_name(summary), summary.get("status") or "unknown"]
    best = summary.get("best")
    if best:
        where = present.where(best.get("step"), best.get("epoch"), best.get("step_estimated"))
        parts.append(f"{present.metric(best['metric'], best['value'])} @ {where}")
    elif "loss" in (summary.get("final") or {}):
        step, estimated = present.final_step(summary, "loss")
        at = present.where(step, estimated=estimated)
        parts.append(f"loss {present.number(summary['final']['loss'])}" + (f" @ {at}" if at else ""))
    n = len(summary.get("anomalies") or [])
    if n:
        parts.append(present.count(n, "anomaly", "anomalies"))
    return "[logreport] " + " · ".join(parts)


def facts(summary: dict) -> list[tuple[str, str]]:
    """(label, text) rows of the summary table, shared by the HTML and plain-text bodies."""
    speed = summary.get("throughput")
    rows = [("status", present.status(summary)),
            ("why", summary.get("status_evidence") or present.MISSING),
            *([("stopped", summary["stopped"]["text"])] if summary.get("stopped") else []),
            ("format", summary.get("format") or present.MISSING),
            ("last step", present.step_of(summary.get("last_step"), summary.get("total_steps"),
                                           summary.get("last_step_estimated"))),
            ("last epoch", present.number(summary.get("last_epoch"))),
            ("best", present.best(summary.get("best"))),
            ("throughput" if speed and speed.get("stated") else "throughput (median)",
             present.metric(speed["metric"], speed["median"]) if speed
             else present.MISSING),
            ("wall time", present.duration(summary.get("wall_seconds"))),
            ("ETA", present.duration(summary.get("eta_seconds")))]
    rows += [(f"final {k}", present.number(v) + present.logged_before(summary, k))
             for k, v in (summary.get("final") or {}).items() if k not in ("eta_seconds",)]
    return rows


MAX_ANOMALIES = 10


def _run_view(summary: dict, name: str) -> dict:
    anomalies = summary.get("anomalies") or []
    return {"name": name, "status": summary.get("status") or "unknown", "facts": facts(summary),
            "anomalies": [{k: present.number(a.get(k))
                           for k in ("kind", "step", "metric", "line", "detail")}
                          for a in anomalies[:MAX_ANOMALIES]],
            "more_anomalies": max(0, len(anomalies) - MAX_ANOMALIES)}


def _plain(title: str, runs: list[dict], note: str, chart: dict | None) -> str:
    lines = [title, ""]
    for run in runs:
        lines.append(f"== {run['name']} ==")
        width = max(len(label) for label, _ in run["facts"])
        lines += [f"  {label.ljust(width)}  {text}" for label, text in run["facts"]]
        lines.append("")
        lines.append(f"  anomalies: {len(run['anomalies']) + run['more_anomalies'] or 'none'}")
        lines += [f"  - {a['kind']} at step {a['step']} (line {a['line']}): {a['detail']}"
                  for a in run["anomalies"]]
        if run["more_anomalies"]:
            lines.append(f"  … and {run['more_anomalies']} more in the report")
        lines.append("")
    if chart:
        lines.append(chart["caption"])
    lines += [note, "", f"-- logreport {__version__}"]
    return "\n".join(lines) + "\n"


def _attachment(report: bytes, filename: str, max_mb: float) -> tuple[bytes, str, str]:
    """(bytes, filename, note): the report itself, or zipped when over max_mb MiB."""
    size = len(report) / 2**20
    if len(report) <= max_mb * 2**20:
        return report, filename, (f"The full interactive report is attached ({filename}, "
                                  f"{size:.2f} MB); open it in a browser.")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr(filename, report)
    data = buf.getvalue()
    return data, filename + ".zip", (
        f"The report ({size:.2f} MB) is over the {max_mb:g} MB attachment limit, so it is "
        f"attached zipped ({filename}.zip, {len(data) / 2**20:.2f} MB); unzip it and open "
        f"{filename} in a browser.")


def compose(settings: Settings, to: list[str], report_path: str, cc: list[str] = (),
            summaries: list[dict] | None = None, title: str | None = None,
            max_attachment_mb: float = 10.0, payload: dict | None = None) -> EmailMessage:
    """The message: subject, HTML + plain-text summary, inline loss chart, report attached.

    Without `summaries`, they are read from the report's payload (which also feeds the chart
    when the report has one)."""
    from .render import environment

    if not to:
        raise UsageError("no recipient", "pass --to ADDRESS")
    try:
        with open(report_path, "rb") as f:
            report = f.read()
    except OSError as e:
        raise InputError(f"cannot read the report: {e.strerror}", "check the path",
                         report_path) from None
    if payload is None:
        try:
            payload = read_payload(report_path)
        except InputError:
            if summaries is None:
                raise
    if summaries is None:
        summaries = [r["summary"] for r in payload["runs"]]
    names = [run_name(s) for s in summaries]
    runs = [_run_view(s, n) for s, n in zip(summaries, names)]
    data, filename, note = _attachment(report, header_text(os.path.basename(report_path))
                                       or "report.html", max_attachment_mb)
    chart = loss_chart(payload) if payload else None
    heading = subject(summaries[0], names[0]).removeprefix("[logreport] ")

    msg = EmailMessage()
    msg["Subject"] = header_text(title or subject(summaries[0], names[0]))
    msg["From"] = settings.from_address()
    msg["To"] = ", ".join(addresses(to))
    if cc:
        msg["Cc"] = ", ".join(addresses(cc))
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain="logreport.local")
    msg.set_content(_plain(heading, runs, note, chart))
    cid = make_msgid(domain="logreport.local")
    html = environment().get_template("email.html.j2").render(
        title=heading, runs=runs, note=note, version=__version__,
        chart={**chart, "cid": cid[1:-1]} if chart else None)
    msg.add_alternative(html, subtype="html")
    if chart:
        msg.get_payload()[1].add_related(chart["png"], "image", "png", cid=cid,
                                         filename="loss.png")
    kind = ("application", "zip") if filename.endswith(".zip") else ("text", "html")
    msg.add_attachment(data, maintype=kind[0], subtype=kind[1], filename=filename)
    return msg


# --- the inline chart: a PNG drawn with numpy, no network, no plotting library -----------
def loss_chart(payload: dict, width: int = 560, height: int = 140) -> dict | None:
    """{"png", "caption", "width", "height"} of the first run's main training loss."""
    runs = payload.get("runs") or [{}]
    series = runs[0].get("series") if isinstance(runs[0], dict) else None
    train = series.get("train") if isinstance(series, dict) else None
    if not isinstance(train, dict):
        return None
    name = "loss" if "loss" in train else next((n for n in train if "loss" in n.lower()), None)
    entry = train.get(name) if name else None
    if not isinstance(entry, dict) or "y" not in entry:
        return None
    steps, ys = points(entry)
    ys = ys[np.isfinite(ys)]
    if len(ys) < 2:
        return None
    png = _line_png(ys, width, height)
    first, last = (steps[0], steps[-1]) if len(steps) else (0, len(ys) - 1)
    caption = (f"{name} over steps {present.number(first)}–{present.number(last)}: min "
               f"{present.number(float(ys.min()))}, max {present.number(float(ys.max()))}, last "
               f"{present.number(float(ys[-1]))}")
    return {"png": png, "caption": caption, "width": width, "height": height}


def _line_png(ys: np.ndarray, width: int, height: int) -> bytes:
    """A min/max-per-column line chart of ys as an RGB PNG."""
    pad = 6
    img = np.full((height, width, 3), 255, dtype=np.uint8)
    img[pad - 1, :] = img[height - pad, :] = (221, 226, 234)
    lo, hi = float(ys.min()), float(ys.max())
    span = (hi - lo) or 1.0
    rows = (height - pad - 1) - (ys - lo) / span * (height - 2 * pad - 1)
    xs = np.linspace(0, width - 1, len(ys))
    line = np.interp(np.arange(width), xs, rows)       # joins points when they are sparse
    lo, hi = line.copy(), line.copy()
    cols = np.round(xs).astype(int)
    np.minimum.at(lo, cols, rows)                      # keeps every extreme when they are dense
    np.maximum.at(hi, cols, rows)
    for col in range(width):
        top, bottom = lo[col], hi[col]
        if col:
            top, bottom = min(top, line[col - 1]), max(bottom, line[col - 1])
        img[int(top):int(bottom) + 1, max(col - 1, 0):col + 1] = (31, 119, 180)
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(height))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(
            ">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                              0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


# --- sending -----------------------------------------------------------------------------
def _where(s: Settings) -> str:
    return f"{s.host}:{s.port}"


_SERVER_HINT = "check --smtp-host/--smtp-port (LOGREPORT_SMTP_HOST/_PORT, config [smtp])"
_TLS_HINT = ("check --tls (starttls on 587, ssl on 465, none for a local relay) and "
             "--smtp-port (LOGREPORT_SMTP_TLS/_PORT)")


def send(settings: Settings, msg: EmailMessage, context: ssl.SSLContext | None = None) -> None:
    """Deliver msg to its To and Cc addresses; every failure is a MailError naming the cause."""
    if settings.plaintext_auth():
        raise MailError(*_PLAINTEXT_AUTH)
    rcpts = [addr for _, addr in getaddresses(msg.get_all("To", []) + msg.get_all("Cc", []))]
    context = context or ssl.create_default_context()
    try:
        if settings.tls == "ssl":
            smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                    context=context)
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with smtp:
            if settings.tls == "starttls":
                smtp.starttls(context=context)
            if settings.user:
                smtp.login(settings.user, settings.password or "")
            smtp.send_message(msg, from_addr=settings.from_address(), to_addrs=rcpts)
    except Exception as e:  # noqa: BLE001 - every cause becomes one clear line
        raise _explain(e, settings) from None


def _explain(e: Exception, s: Settings) -> MailError:
    where = _where(s)
    if isinstance(e, socket.gaierror):
        return MailError(f"cannot resolve the SMTP host {s.host!r} (DNS failure)", _SERVER_HINT)
    if isinstance(e, ConnectionRefusedError):
        return MailError(f"connection refused by {where}: no SMTP server listens there",
                         _SERVER_HINT)
    if isinstance(e, ssl.SSLCertVerificationError):
        return MailError(f"TLS failure with {where}: the server's certificate is not trusted "
                         f"({e.verify_message})", "check --smtp-host matches the certificate; "
                         "for a private CA set SSL_CERT_FILE")
    if isinstance(e, ssl.SSLError):
        return MailError(f"TLS failure with {where}: {e.reason or e}", _TLS_HINT)
    if isinstance(e, smtplib.SMTPNotSupportedError):
        if "STARTTLS" in str(e):
            return MailError(f"TLS failure with {where}: the server does not offer STARTTLS",
                             _TLS_HINT)
        return MailError(f"{where} offers no login (SMTP AUTH) on this connection",
                         "use --tls starttls or ssl, or drop --smtp-user (LOGREPORT_SMTP_USER)")
    if isinstance(e, smtplib.SMTPAuthenticationError):
        return MailError(f"authentication failed for user {s.user!r} at {where} "
                         f"({e.smtp_code} {_text(e.smtp_error)})",
                         f"check --smtp-user (LOGREPORT_SMTP_USER) and {PASSWORD_ENV}")
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        refused = "; ".join(f"{a} ({c} {_text(m)})" for a, (c, m) in e.recipients.items())
        return MailError(f"recipient refused by {where}: {refused}", "check the --to/--cc "
                         "addresses, and that this server relays to them")
    if isinstance(e, smtplib.SMTPSenderRefused):
        return MailError(f"sender {e.sender!r} refused by {where} ({e.smtp_code} "
                         f"{_text(e.smtp_error)})", "check --from (LOGREPORT_SMTP_FROM)")
    if isinstance(e, smtplib.SMTPResponseException):
        return MailError(f"{where} answered {e.smtp_code} {_text(e.smtp_error)}", _SERVER_HINT)
    if isinstance(e, smtplib.SMTPServerDisconnected):
        return MailError(f"{where} closed the connection ({e or 'no reason given'})",
                         _TLS_HINT if s.tls != "ssl" else _SERVER_HINT)
    if isinstance(e, (socket.timeout, TimeoutError)):
        return MailError(f"no answer from {where} within {s.timeout:g} s", _SERVER_HINT)
    if isinstance(e, OSError):
        return MailError(f"cannot reach {where}: {e.strerror or e}", _SERVER_HINT)
    return MailError(f"sending to {where} failed: {type(e).__name__}: {e}", _SERVER_HINT)


def _text(v) -> str:
    return (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)).strip()


def send_report(settings: Settings, to: list[str], report_path: str, cc: list[str] = (),
                summaries: list[dict] | None = None, title: str | None = None,
                max_attachment_mb: float = 10.0, payload: dict | None = None,
                context: ssl.SSLContext | None = None) -> EmailMessage:
    """Compose and send; returns the message sent."""
    msg = compose(settings, to, report_path, cc=cc, summaries=summaries, title=title,
                  max_attachment_mb=max_attachment_mb, payload=payload)
    send(settings, msg, context=context)
    return msg


# --- watch notifications -----------------------------------------------------------------
class Notifier(alerts.Notifier):
    """Mails the report when a watched run finishes, fails or is stopped and on the first
    anomaly of each kind (events and rate limit: alerts.Notifier)."""

    option = "--email-on"

    def __init__(self, settings: Settings, to: list[str], cc: list[str] = (),
                 on=EVENTS, max_attachment_mb: float = 10.0, interval: float = 600.0,
                 retry: float = 60.0, clock=time.monotonic,
                 context: ssl.SSLContext | None = None):
        super().__init__(on=on, interval=interval, retry=retry, clock=clock)
        addresses([*to, *cc])                  # a bad one is said at once, not at each retry
        self.settings, self.to, self.cc = settings, list(to), list(cc)
        self.max_attachment_mb, self.context = max_attachment_mb, context

    def deliver(self, summary, report_path, events, payload) -> None:
        send_report(self.settings, self.to, report_path, cc=self.cc, summaries=[summary],
                    max_attachment_mb=self.max_attachment_mb, context=self.context)

    def said_sent(self, events: list[str]) -> str:
        return f"mailed {', '.join(self.to)}: {', '.join(events)}"

    def said_failed(self, error: str, delay: float | None) -> str:
        then = f"retrying in {delay:g} s" if delay is not None else "not retrying"
        return f"mail to {', '.join(self.to)} failed: {error}; {then}"
