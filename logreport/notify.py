"""Chat notifications by webhook (`--notify URL`): Feishu/Lark, DingTalk, WeCom, Slack, or a
plain JSON POST of the `summary --json` run object.

The URL's host picks the dialect (`--notify-format` overrides). Signing secrets (Feishu/Lark
"signature verification", DingTalk "加签") come from config.toml, keyed by URL, or from
LOGREPORT_NOTIFY_SECRET; never from the command line. A webhook URL carries its own token, so
neither the URL, its token nor the secret is ever printed: a webhook is named by dialect and host.

Each platform's request as documented by the platform (tests/test_notify.py checks each one
against a local server):
- Feishu/Lark custom bot: POST {"msg_type": "interactive", "card": {...}}; with a secret also
  "timestamp" (seconds) and "sign" = base64(HMAC-SHA256(key="<timestamp>\\n<secret>", msg=""));
  answers {"code": 0, ...} (open.feishu.cn/document/client-docs/bot-v3/add-custom-bot).
- DingTalk custom robot: POST {"msgtype": "markdown", "markdown": {"title", "text"}}; with a
  secret the URL also gets timestamp (ms) and sign = urlencode(base64(HMAC-SHA256(key=secret,
  msg="<timestamp>\\n<secret>"))); answers {"errcode": 0} (open.dingtalk.com, 自定义机器人安全设置).
- WeCom group robot: POST {"msgtype": "markdown", "markdown": {"content"}} (≤ 4096 bytes), and
  {"msgtype": "image", "image": {"base64", "md5"}} for the chart (PNG ≤ 2 MB); answers
  {"errcode": 0} (developer.work.weixin.qq.com/document/path/91770).
- Slack incoming webhook: POST {"text", "blocks"}; answers 200 "ok", else 4xx with an error
  word such as invalid_payload (api.slack.com/messaging/webhooks).

The loss chart goes only where a webhook alone can post an image: WeCom (the image message
carries the PNG itself). Feishu needs an image_key uploaded with an app's token, DingTalk and
Slack show images only from a public URL; the generic JSON carries the numbers instead.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from . import __version__, alerts, wording
from .alerts import EVENTS
from .config import load as load_config
from .errors import LogreportError, UsageError

DIALECTS = ("feishu", "dingtalk", "wecom", "slack", "json")
HOSTS = {"open.feishu.cn": "feishu", "open.larksuite.com": "feishu",
         "oapi.dingtalk.com": "dingtalk", "qyapi.weixin.qq.com": "wecom",
         "hooks.slack.com": "slack"}
SIGNED = ("feishu", "dingtalk")
URLS_ENV = "LOGREPORT_NOTIFY"
SECRET_ENV = "LOGREPORT_NOTIFY_SECRET"
TIMEOUT = 10.0              # seconds for one request
RETRY = 5.0                 # seconds before the first retry (then 10, 20, ... up to 10 min)
MAX_ANOMALIES = 5
MAX_TEXT = 200              # characters of one piece of log text (an anomaly's detail)


class NotifyError(LogreportError):
    """A webhook did not take the message."""


# --- webhooks ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Webhook:
    """Where to post and how; the URL and secret stay out of repr()."""

    url: str = field(repr=False)
    dialect: str
    secret: str | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return f"{self.dialect} webhook at {urllib.parse.urlsplit(self.url).netloc}"


def dialect_of(url: str) -> str:
    return HOSTS.get((urllib.parse.urlsplit(url).hostname or "").lower(), "json")


def webhooks(urls=(), fmt: str | None = None, env=None, config: dict | None = None) -> list[Webhook]:
    """The webhooks to notify: `--notify` URLs, else LOGREPORT_NOTIFY (URLs separated by spaces
    or commas), else the [[notify]] entries of config.toml. A config entry with the same URL
    gives its secret and format; LOGREPORT_NOTIFY_SECRET is the secret of the signing ones
    without one. `fmt` (--notify-format) overrides every dialect."""
    env = os.environ if env is None else env
    entries = _entries(load_config() if config is None else config)
    if fmt is not None and fmt not in DIALECTS:
        raise UsageError(f"unknown --notify-format {fmt!r}", "use " + ", ".join(DIALECTS))
    if urls:
        chosen = list(urls)
    elif env.get(URLS_ENV, "").strip():
        chosen = re.split(r"[\s,]+", env[URLS_ENV].strip())
    else:
        chosen = [e["url"] for e in entries]
    by_url = {e["url"]: e for e in entries}
    hooks = []
    for url in chosen:
        _check_url(url)
        entry = by_url.get(url, {})
        dialect = fmt or entry.get("format") or dialect_of(url)
        secret = entry.get("secret") or env.get(SECRET_ENV) or None
        hooks.append(Webhook(url, dialect, secret if dialect in SIGNED else None))
    return hooks


def _check_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = f"{parts.scheme}://{parts.hostname}" if parts.scheme else "a URL without a scheme"
        raise UsageError(f"a --notify webhook must be an http(s) URL ({shown})",
                         "copy the whole webhook address the bot's settings show")


def _entries(config: dict) -> list[dict]:
    """The [[notify]] entries: url, and optionally secret and format."""
    entries = config.get("notify", [])
    hint = 'write [[notify]] tables, each with url = "..." (and secret, format)'
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise UsageError("[[notify]] in config.toml must be an array of tables", hint)
    for e in entries:
        unknown = sorted(set(e) - {"url", "secret", "format"})
        if not isinstance(e.get("url"), str) or unknown:
            raise UsageError("a [[notify]] entry needs url and may have only secret and format"
                             + (f" (not {unknown[0]})" if unknown else ""), hint)
        if e.get("format") not in (None, *DIALECTS):
            raise UsageError(f"unknown [[notify]] format {e['format']!r}", "use " + ", ".join(DIALECTS))
    return entries


# --- the message ---------------------------------------------------------------------------
# key: (English, Chinese)
PHRASES = {
    "finished": ("finished", "已完成"), "failed": ("failed", "失败"),
    "running": ("running", "运行中"), "unknown": ("unknown", "状态未知"),
    "stopped": ("stopped by logreport", "已被 logreport 停止"), "best": ("Best", "最佳"),
    "final_loss": ("Final", "最终"), "duration": ("Duration", "用时"), "progress": ("Step", "步数"),
    "anomalies": ("Anomalies", "异常"), "at_step": ("at step {}", "第 {} 步"),
    "epoch": ("epoch {}", "第 {} 轮"), "more": ("more in the report", "其余见报告"),
    "h_stop": ("Stopped by logreport at step {last}: {reason} at step {step} ({detail}).",
               "logreport 在第 {last} 步停止了训练：第 {step} 步出现 {reason}（{detail}）。"),
    "h_fail": ("Failed at step {step}: {detail}.", "在第 {step} 步失败：{detail}。"),
    "h_anomaly": ("{kind} at step {step}: {detail}.", "第 {step} 步出现 {kind}：{detail}。"),
    "h_finish": ("Finished {steps} steps in {duration}.", "已完成 {steps} 步，用时 {duration}。"),
    "h_other": ("{status} at step {step}.", "{status}，第 {step} 步。"),
    # where the log states no step
    "h_fail_": ("Failed: {detail}.", "失败：{detail}。"),
    "h_anomaly_": ("{kind}: {detail}.", "出现 {kind}：{detail}。"),
    "h_finish_": ("Finished in {duration}.", "已完成，用时 {duration}。"),
    "h_other_": ("{status}.", "{status}。"),
}
WORDS = {lang: {key: pair[i] for key, pair in PHRASES.items()} for i, lang in enumerate(("en", "zh"))}


@dataclass
class Message:
    """What every dialect says. Texts from the log (metric names, details) are not escaped
    here: each dialect does it for its own markup."""

    title: str
    headline: str
    facts: list[tuple[str, str]]
    anomalies: list[str]
    footer: str
    tone: str                           # bad | warn | good | info
    chart: bytes | None = None
    summary: dict = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    lang: str = "en"

    def word(self, key: str) -> str:
        return WORDS.get(self.lang, WORDS["en"])[key]


def compose(summary: dict, events: list[str], lang: str = "en", chart: bytes | None = None) -> Message:
    """The message for these events of this run."""
    from .mail import run_name
    from .present import duration as _duration
    from .present import number as _g
    from .present import step_number

    w = WORDS.get(lang, WORDS["en"])
    summary = wording.summary_in(summary, lang)
    stopped = summary.get("stopped")
    status = "stopped" if stopped else (summary.get("status") or "unknown")
    anomalies = summary.get("anomalies") or []
    step = _g(summary.get("last_step"))
    stepless = "_" if summary.get("last_step") is None else ""      # (no "step –")
    if stopped:
        headline = w["h_stop"].format(last=_g(stopped.get("last_step")), step=_g(stopped.get("step")),
                                      reason=stopped.get("reason"), detail=stopped.get("detail"))
    elif status == "failed":
        fails = [a for a in anomalies if a.get("kind") in ("traceback", "oom")]
        headline = w["h_fail" + stepless].format(step=step, detail=fails[-1]["detail"] if fails
                                      else summary.get("status_evidence"))
    elif any(e.startswith("anomaly:") for e in events):
        kind = next(e for e in events if e.startswith("anomaly:"))[len("anomaly:"):]
        a = next((a for a in anomalies if a.get("kind") == kind), {})
        headline = w["h_anomaly" + ("_" if a.get("step") is None else "")].format(
            kind=kind, step=_g(a.get("step")), detail=a.get("detail"))
    elif status == "finished":
        headline = w["h_finish" + stepless].format(steps=step,
                                                   duration=_duration(summary.get("wall_seconds"), lang))
    else:
        headline = w["h_other" + stepless].format(status=w.get(status, status), step=step)
    facts = []
    best = summary.get("best")
    if best:
        where = w["at_step"].format(step_number(best.get("step"), best.get("step_estimated"))) + (
            ", " + w["epoch"].format(_g(best["epoch"])) if best.get("epoch") is not None else "")
        facts.append((w["best"], f"{best['metric']} {_g(best['value'])} ({where})"))
    final = summary.get("final") or {}
    loss = "loss" if "loss" in final else next((k for k in final if "loss" in k.lower()), None)
    if loss:
        at = (summary.get("final_steps") or {}).get(loss)      # (logged before the last step)
        facts.append((f"{w['final_loss']} {loss}",
                      _g(final[loss]) + (f" ({w['at_step'].format(_g(at))})" if at is not None else "")))
    facts.append((w["duration"], _duration(summary.get("wall_seconds"), lang)))
    total = summary.get("total_steps")
    facts.append((w["progress"], step + (f" / {total}" if total else "")))
    lines = [f"{a.get('kind')}" + ("" if a.get("step") is None else
                                   f" {w['at_step'].format(_g(a.get('step')))}")
             + f": {a.get('detail')}" for a in anomalies[:MAX_ANOMALIES]]
    if len(anomalies) > MAX_ANOMALIES:
        lines.append(f"+{len(anomalies) - MAX_ANOMALIES} {w['more']}")
    tone = ("bad" if status in ("stopped", "failed") or "divergence" in str(events) or "nan" in str(events)
            else "warn" if anomalies else "good" if status == "finished" else "info")
    return Message(title=f"logreport: {run_name(summary)} · {w.get(status, status)}",
                   headline=headline, facts=facts, anomalies=lines,
                   footer=f"logreport {__version__} · {socket.gethostname()}", tone=tone,
                   chart=chart, summary=summary, events=list(events), lang=lang)


def _plain(text, limit: int = MAX_TEXT) -> str:
    """Log text on one line: control characters and line breaks become spaces; cut to limit."""
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", str(text)).strip()
    return text if len(text) <= limit else text[:limit - 1] + "…"


_MARKUP = str.maketrans({"<": "‹", ">": "›", "[": "［", "]": "］", "`": "ʹ", "*": "∗", "|": "¦"})


def _md(text, limit: int = MAX_TEXT) -> str:
    """Log text for DingTalk/WeCom markdown: no tag (<font>, <@user> mentions), link, code,
    emphasis or table can come from the log."""
    return _plain(text, limit).translate(_MARKUP)


def _slack_escape(text) -> str:
    """Slack mrkdwn's three control characters, as Slack documents."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _markdown(msg: Message) -> str:
    """The message as DingTalk/WeCom markdown."""
    lines = [f"### {_md(msg.title)}", "", f"**{_md(msg.headline, 400)}**", ""]
    lines += [f"- {_md(label)}: {_md(value)}" for label, value in msg.facts]
    if msg.anomalies:
        lines += ["", f"**{msg.word('anomalies')}**"] + [f"- {_md(a)}" for a in msg.anomalies]
    lines += ["", f"> {_md(msg.footer)}"]
    return "\n".join(lines)


# --- one body per dialect --------------------------------------------------------------------
FEISHU_COLORS = {"bad": "red", "warn": "orange", "good": "green", "info": "blue"}


def feishu_sign(secret: str, timestamp: int) -> str:
    """Feishu/Lark: HMAC-SHA256 keyed with "<timestamp>\\n<secret>" over nothing, base64."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk: HMAC-SHA256 keyed with the secret over "<timestamp>\\n<secret>", base64
    (the caller URL-encodes it into the query)."""
    text = f"{timestamp_ms}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), text, hashlib.sha256).digest()).decode()


def _feishu(hook: Webhook, msg: Message, now: float) -> list[tuple[str, dict]]:
    """An interactive card; every text from the log is plain_text (no lark_md mentions)."""
    def plain(text, limit=MAX_TEXT):
        return {"tag": "plain_text", "content": _plain(text, limit)}

    elements = [{"tag": "div", "text": plain(msg.headline, 400)},
                {"tag": "div", "fields": [{"is_short": True, "text": plain(f"{label}: {value}")}
                                          for label, value in msg.facts]}]
    if msg.anomalies:
        elements += [{"tag": "hr"},
                     {"tag": "div", "text": plain(msg.word("anomalies") + ":\n" + "\n".join(
                         _plain(a) for a in msg.anomalies), 2000)}]
    elements.append({"tag": "note", "elements": [plain(msg.footer)]})
    body = {"msg_type": "interactive",
            "card": {"config": {"wide_screen_mode": True},
                     "header": {"title": plain(msg.title, 100), "template": FEISHU_COLORS[msg.tone]},
                     "elements": elements}}
    if hook.secret:
        timestamp = int(now)
        body = {"timestamp": str(timestamp), "sign": feishu_sign(hook.secret, timestamp), **body}
    return [(hook.url, body)]


def _dingtalk(hook: Webhook, msg: Message, now: float) -> list[tuple[str, dict]]:
    url = hook.url
    if hook.secret:
        timestamp = int(now * 1000)
        query = urllib.parse.urlencode({"timestamp": timestamp,
                                        "sign": dingtalk_sign(hook.secret, timestamp)})
        url += ("&" if urllib.parse.urlsplit(url).query else "?") + query
    return [(url, {"msgtype": "markdown",
                   "markdown": {"title": _md(msg.title, 100), "text": _markdown(msg)}})]


WECOM_MARKDOWN_BYTES = 4096


def _wecom(hook: Webhook, msg: Message, now: float) -> list[tuple[str, dict]]:
    text = _markdown(msg)
    while len(text.encode()) > WECOM_MARKDOWN_BYTES and msg.anomalies:
        msg = Message(**{**msg.__dict__, "anomalies": msg.anomalies[:-1]})
        text = _markdown(msg)
    out = [(hook.url, {"msgtype": "markdown", "markdown": {"content": text}})]
    if msg.chart:
        out.append((hook.url, {"msgtype": "image", "image": {
            "base64": base64.b64encode(msg.chart).decode(), "md5": hashlib.md5(msg.chart).hexdigest()}}))
    return out


def _slack(hook: Webhook, msg: Message, now: float) -> list[tuple[str, dict]]:
    """Block Kit; the texts from the log go in plain_text objects, the fallback is escaped."""
    def plain(text, limit=MAX_TEXT):
        return {"type": "plain_text", "text": _plain(text, limit)}

    blocks = [{"type": "header", "text": plain(msg.title, 150)},
              {"type": "section", "text": plain(msg.headline, 400)},
              {"type": "section", "fields": [plain(f"{label}: {value}") for label, value in msg.facts]}]
    if msg.anomalies:
        blocks.append({"type": "section", "text": plain(msg.word("anomalies") + ":\n" + "\n".join(
            _plain(a) for a in msg.anomalies), 2900)})
    blocks.append({"type": "context", "elements": [plain(msg.footer)]})
    return [(hook.url, {"text": _slack_escape(f"{_plain(msg.title)}: {_plain(msg.headline, 400)}"),
                        "blocks": blocks})]


def _json(hook: Webhook, msg: Message, now: float) -> list[tuple[str, dict]]:
    return [(hook.url, {"logreport": __version__, "events": msg.events, "title": msg.title,
                        "text": msg.headline, "run": msg.summary})]


BODIES = {"feishu": _feishu, "dingtalk": _dingtalk, "wecom": _wecom, "slack": _slack, "json": _json}


def requests(hook: Webhook, msg: Message, now: float | None = None) -> list[tuple[str, dict]]:
    """The (url, JSON body) requests that deliver msg to hook, in order."""
    return BODIES[hook.dialect](hook, msg, time.time() if now is None else now)


# --- posting -------------------------------------------------------------------------------
def post(hook: Webhook, url: str, body: dict, timeout: float = TIMEOUT) -> None:
    """POST one JSON body; a NotifyError (naming the webhook, never its URL) unless the
    platform says it took it."""
    data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": f"logreport/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = response.read(65536)
    except urllib.error.HTTPError as e:
        text = e.read(300).decode("utf-8", "replace")
        e.close()
        raise NotifyError(f"{hook.label} answered HTTP {e.code}: {_scrub(_plain(text), hook)}",
                          _hint(hook)) from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise NotifyError(f"cannot reach the {hook.label}: {_scrub(_plain(reason), hook)}",
                          "check the network and the URL (--notify, LOGREPORT_NOTIFY, config.toml)") from None
    _check_answer(hook, answer)


def _check_answer(hook: Webhook, answer: bytes) -> None:
    """Feishu, DingTalk and WeCom answer HTTP 200 with a JSON error code."""
    if hook.dialect not in ("feishu", "dingtalk", "wecom"):
        return
    try:
        data = json.loads(answer)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise NotifyError(f"{hook.label} gave an answer that is not JSON", _hint(hook))
    code = data.get("code", data.get("StatusCode")) if hook.dialect == "feishu" else data.get("errcode")
    if code not in (0, None):
        text = data.get("msg") or data.get("errmsg") or data.get("StatusMessage") or ""
        raise NotifyError(f"{hook.label} refused the message: code {code} {_scrub(_plain(text), hook)}",
                          _hint(hook))


def _hint(hook: Webhook) -> str:
    if hook.dialect in SIGNED:
        return ("check the URL and the signing secret ([[notify]] secret in config.toml or "
                f"{SECRET_ENV}); a keyword rule must allow messages containing 'logreport'")
    return "check the webhook URL (--notify, LOGREPORT_NOTIFY, config.toml) and --notify-format"


def _scrub(text: str, hook: Webhook) -> str:
    """Text with the URL, its token-like parts and the secret blotted out."""
    parts = urllib.parse.urlsplit(hook.url)
    secrets = [hook.url, hook.secret, parts.query,
               *[v for _, v in urllib.parse.parse_qsl(parts.query)],
               *[p for p in parts.path.split("/") if len(p) >= 8]]
    for s in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(s, "***")
    return text


# --- the notifier of a watch -----------------------------------------------------------------
class Notifier(alerts.Notifier):
    """Posts to one webhook on the events of alerts.Notifier (finish, fail, stop, anomalies)."""

    def __init__(self, hook: Webhook, lang: str = "en", on=EVENTS, interval: float = 600.0,
                 retry: float = RETRY, clock=time.monotonic, timeout: float = TIMEOUT):
        super().__init__(on=on, interval=interval, retry=retry, clock=clock)
        self.hook, self.lang, self.timeout = hook, lang, timeout

    def deliver(self, summary, report_path, events, payload) -> None:
        chart = None
        if self.hook.dialect == "wecom":
            chart = _chart(payload, report_path)
        msg = compose(summary, events, self.lang, chart)
        for url, body in requests(self.hook, msg):
            post(self.hook, url, body, self.timeout)

    def said_sent(self, events: list[str]) -> str:
        return f"notified the {self.hook.label}: {', '.join(events)}"

    def said_failed(self, error: str, delay: float | None) -> str:
        then = f"retrying in {delay:g} s" if delay is not None else "not retrying"
        return f"notify failed: {error}; {then}"


def _chart(payload: dict | None, report_path: str | None) -> bytes | None:
    """The loss chart PNG from the report data (given, or read back from the report file)."""
    from .mail import loss_chart, read_payload

    if payload is None and report_path:
        try:
            payload = read_payload(report_path)
        except LogreportError:
            return None
    chart = loss_chart(payload) if payload else None
    return chart["png"] if chart else None


def notifiers(urls=(), fmt: str | None = None, lang: str = "en", env=None,
              config: dict | None = None, retry: float = RETRY) -> list[Notifier]:
    """One Notifier per webhook (see webhooks())."""
    return [Notifier(hook, lang, retry=retry) for hook in webhooks(urls, fmt, env, config)]
