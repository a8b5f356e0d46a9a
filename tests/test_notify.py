"""Chat notifications against local stand-ins of each platform (127.0.0.1; the real endpoints are
never contacted). Each stand-in checks the request as its platform documents it:

- Feishu/Lark custom bot (open.feishu.cn/document/client-docs/bot-v3/add-custom-bot): POST
  /open-apis/bot/v2/hook/<token>, JSON; "signature verification": body "timestamp" (seconds,
  within an hour) and "sign" = base64(HmacSHA256 keyed with timestamp + "\\n" + secret, of an
  empty message); answers {"code": 0, "msg": "success"}, or code 19021 when the sign is wrong.
- DingTalk custom robot (open.dingtalk.com/document/robots/customize-robot-security-settings):
  POST /robot/send?access_token=<token>&timestamp=<ms>&sign=<urlEncode(base64(HmacSHA256
  keyed with the secret, of timestamp + "\\n" + secret))>, JSON {"msgtype": "markdown",
  "markdown": {"title", "text"}}; answers {"errcode": 0, "errmsg": "ok"}, 310000 on a bad sign.
- WeCom group robot (developer.work.weixin.qq.com/document/path/91770): POST
  /cgi-bin/webhook/send?key=<key>, JSON markdown {"content"} of at most 4096 bytes, image
  {"base64", "md5" of the bytes before encoding}, JPG/PNG at most 2 MB; answers {"errcode": 0}.
- Slack incoming webhook (api.slack.com/messaging/webhooks): POST /services/T…/B…/…,
  Content-type application/json, {"text", "blocks"}; answers 200 "ok", else 400 invalid_payload.
"""
import base64
import hashlib
import hmac
import http.server
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
from conftest import DATA

from logreport import notify
from logreport.errors import UsageError
from logreport.present import duration, number
from logreport.reader import load
from logreport.render import write_html
from logreport.report import build

ROOT = Path(__file__).resolve().parent.parent
DIVERGE = DATA / "ppdet" / "ppyoloe_crn_s_coco_diverge_lr1000.log"      # divergence + spike
FINISHED = DATA / "ppdet" / "picodet_s_320_coco_train.log"
NAN_LOG = DATA / "ppdet" / "faster_rcnn_r50_fpn_coco_nan_lr1e8.log"
TOKEN = "b7c1e0d2-5f3a-4e8b-9c6d-0123456789ab"
SECRET = "SECa1b2c3d4e5f60718293a4b5c6d7e8f9"
PATHS = {"feishu": f"/open-apis/bot/v2/hook/{TOKEN}", "dingtalk": f"/robot/send?access_token={TOKEN}",
         "wecom": f"/cgi-bin/webhook/send?key={TOKEN}", "slack": f"/services/T0001/B0001/{TOKEN}",
         "json": f"/hooks/{TOKEN}"}


class Platform:
    """A local stand-in for one platform's webhook: checks each request, answers as it does."""

    def __init__(self, dialect: str, secret: str | None = None):
        self.dialect, self.secret = dialect, secret
        self.got: list[dict] = []          # {"path", "query", "headers", "body", "time"}
        self.problems: list[str] = []
        platform = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = platform.receive(self.path, dict(self.headers), raw)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(answer, bytes)
                                 else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{PATHS[dialect]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def receive(self, path: str, headers: dict, raw: bytes):
        parts = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(parts.query)
        ctype = headers.get("Content-Type", "")
        bad = []
        if ctype.split(";")[0].strip() != "application/json":
            bad.append(f"content type {ctype!r}")
        if "charset" in ctype and "charset=utf-8" not in ctype.lower():
            bad.append(f"charset {ctype!r}")
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = None
            bad.append("body is not UTF-8 JSON")
        self.got.append({"path": parts.path, "query": query, "headers": headers, "body": body,
                         "time": time.time()})
        want = urllib.parse.urlsplit(PATHS[self.dialect])
        if parts.path != want.path:
            bad.append(f"path {parts.path}")
        if body is not None:
            bad += getattr(self, "check_" + self.dialect)(body, query)
        self.problems += bad
        return self.answer(bad)

    def answer(self, bad: list[str]):
        if self.dialect == "feishu":
            signed = not any("sign" in b for b in bad)
            return 200, ({"code": 0, "msg": "success", "data": {}} if not bad else
                         {"code": 19021 if not signed else 9499, "msg": "sign match fail or "
                          "timestamp is not within one hour from current time" if not signed
                          else "Bad Request", "data": {}})
        if self.dialect in ("dingtalk", "wecom"):
            return 200, ({"errcode": 0, "errmsg": "ok"} if not bad else
                         {"errcode": 310000 if any("sign" in b for b in bad) else 40008,
                          "errmsg": "sign not match" if any("sign" in b for b in bad)
                          else "invalid message type"})
        if self.dialect == "slack":
            return (200, b"ok") if not bad else (400, b"invalid_payload")
        return (200, {"ok": True}) if not bad else (400, {"error": "; ".join(bad)})

    # --- each platform's documented shape --------------------------------------------------
    def check_feishu(self, body, query):
        bad = []
        if self.secret:
            ts = body.get("timestamp")
            key = f"{ts}\n{self.secret}".encode()
            want = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            if not (isinstance(ts, str) and ts.isdigit() and abs(time.time() - int(ts)) < 3600):
                bad.append(f"sign timestamp {ts!r}")
            elif body.get("sign") != want:
                bad.append("sign does not match")
        if body.get("msg_type") != "interactive" or not isinstance(body.get("card"), dict):
            bad.append("not an interactive card")
            return bad
        card = body["card"]
        title = card.get("header", {}).get("title", {})
        if title.get("tag") != "plain_text" or not title.get("content"):
            bad.append("card header title")
        for text in _texts(card.get("elements")):
            if text.get("tag") not in ("plain_text", "lark_md") or not isinstance(text.get("content"), str):
                bad.append(f"text object {text}")
        if len(json.dumps(body).encode()) > 20_000:
            bad.append("body over 20 KB")
        return bad

    def check_dingtalk(self, body, query):
        bad = []
        if query.get("access_token") != [TOKEN]:
            bad.append("access_token")
        if self.secret:
            ts, sign = query.get("timestamp", [""])[0], query.get("sign", [""])[0]
            text = f"{ts}\n{self.secret}".encode()
            want = base64.b64encode(hmac.new(self.secret.encode(), text, hashlib.sha256).digest())
            if not (ts.isdigit() and abs(time.time() * 1000 - int(ts)) < 3600_000):
                bad.append(f"sign timestamp {ts!r}")
            elif sign != want.decode():
                bad.append("sign does not match")
        md = body.get("markdown")
        if body.get("msgtype") != "markdown" or not isinstance(md, dict) or \
                not isinstance(md.get("title"), str) or not isinstance(md.get("text"), str):
            bad.append("not a markdown message")
        return bad

    def check_wecom(self, body, query):
        bad = [] if query.get("key") == [TOKEN] else ["key"]
        if body.get("msgtype") == "markdown":
            content = body.get("markdown", {}).get("content")
            if not isinstance(content, str) or len(content.encode()) > 4096:
                bad.append("markdown content")
        elif body.get("msgtype") == "image":
            image = body.get("image", {})
            data = base64.b64decode(image.get("base64", ""))
            if hashlib.md5(data).hexdigest() != image.get("md5"):
                bad.append("image md5")
            if not data.startswith(b"\x89PNG\r\n\x1a\n") or len(data) > 2 * 2**20:
                bad.append("image not a PNG of at most 2 MB")
        else:
            bad.append(f"msgtype {body.get('msgtype')!r}")
        return bad

    def check_slack(self, body, query):
        bad = [] if isinstance(body.get("text"), str) and body["text"] else ["no text"]
        for block in body.get("blocks", []):
            kind = block.get("type")
            if kind not in ("header", "section", "context", "divider"):
                bad.append(f"block {kind}")
            if kind == "header" and (block["text"]["type"] != "plain_text"
                                     or len(block["text"]["text"]) > 150):
                bad.append("header")
            if kind == "section" and len(block.get("fields", [])) > 10:
                bad.append("more than 10 fields")
            for text in [block.get("text")] + block.get("fields", []) + block.get("elements", []):
                if text is not None and (text.get("type") not in ("plain_text", "mrkdwn")
                                         or len(text.get("text", "")) > 3000):
                    bad.append(f"text object {text}")
        return bad

    def check_json(self, body, query):
        return [] if isinstance(body.get("run"), dict) and body.get("events") else ["no run"]


def _texts(elements):
    """Every text object inside Feishu card elements."""
    for e in elements or []:
        if "text" in e:
            yield e["text"]
        for field in e.get("fields", []):
            yield field["text"]
        for inner in e.get("elements", []):
            if "tag" in inner and "content" in inner:
                yield inner


def all_text(body) -> str:
    return json.dumps(body, ensure_ascii=False)


@pytest.fixture
def platform():
    made = []

    def make(dialect, secret=None):
        made.append(Platform(dialect, secret))
        return made[-1]

    yield make
    for p in made:
        p.close()


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    """The report data and file of a real diverged run."""
    data = build([load(str(DIVERGE))])
    path = tmp_path_factory.mktemp("report") / "r.html"
    write_html(data, str(path))
    return data, str(path)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


# --- each platform ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished():
    """The report data of a real finished run with evaluations."""
    return build([load(str(FINISHED))])


@pytest.mark.parametrize("dialect, secret", [("feishu", SECRET), ("feishu", None),
                                             ("dingtalk", SECRET), ("dingtalk", None),
                                             ("wecom", None), ("slack", None), ("json", None)])
def test_each_platform_gets_its_documented_request(platform, diverged, finished, dialect, secret):
    data, report = diverged
    summary = data["runs"][0]["summary"]
    p = platform(dialect, secret)
    n = notify.Notifier(notify.Webhook(p.url, dialect, secret))
    line = n.update(summary, report)
    port = p.server.server_address[1]
    assert summary["status"] == "finished"
    assert line == f"notified the {dialect} webhook at 127.0.0.1:{port}: anomaly:divergence, " \
                   "anomaly:spike, finish"
    assert p.problems == []
    assert len(p.got) == (2 if dialect == "wecom" else 1)     # WeCom: markdown, then the chart
    text = all_text(p.got[0]["body"])
    assert TOKEN not in line and (secret is None or secret not in text)
    if dialect == "json":                      # the run object itself, and the headline
        assert p.got[0]["body"]["run"] == json.loads(json.dumps(summary))
        assert p.got[0]["body"]["events"] == ["anomaly:divergence", "anomaly:spike", "finish"]
        assert p.got[0]["body"]["text"].startswith("divergence at step 3: loss level")
        return
    # the headline, final loss, duration and anomalies of a diverged run ...
    assert "divergence at step 3: loss level" in text and "spike at step 5" in text
    assert f"Final loss: {number(summary['final']['loss'])}" in text
    assert f"Duration: {duration(summary['wall_seconds'])}" in text
    if dialect == "wecom":
        png = base64.b64decode(p.got[1]["body"]["image"]["base64"])
        assert png.startswith(b"\x89PNG")
    # ... and of a finished one, with its best evaluation
    good = finished["runs"][0]["summary"]
    assert notify.Notifier(notify.Webhook(p.url, dialect, secret)).update(good, None)
    text = all_text(p.got[-1]["body"])
    best = good["best"]
    assert p.problems == [] and f"Finished {good['last_step']} steps in " in text
    assert f"Best: {best['metric']} {number(best['value'])} (at step {best['step']}, epoch " in text


def test_chinese_messages_with_lang_zh(platform, diverged):
    data, report = diverged
    p = platform("dingtalk", SECRET)
    n = notify.Notifier(notify.Webhook(p.url, "dingtalk", SECRET), lang="zh")
    assert n.update(data["runs"][0]["summary"], report).startswith("notified")
    text = p.got[0]["body"]["markdown"]["text"]
    assert "第 3 步出现 divergence" in text and "最终 loss" in text and "用时" in text and "异常" in text


def test_a_wrong_secret_is_one_line_naming_neither_url_nor_secret(platform, diverged):
    data, report = diverged
    p = platform("feishu", SECRET)
    n = notify.Notifier(notify.Webhook(p.url, "feishu", "SECwrong0000000000000000000"))
    line = n.update(data["runs"][0]["summary"], report)
    port = p.server.server_address[1]
    assert line.startswith(f"notify failed: feishu webhook at 127.0.0.1:{port} refused the "
                           "message: code 19021 sign match fail")
    assert line.endswith("; retrying in 5 s") and "\n" not in line
    assert TOKEN not in line and "SECwrong" not in line and SECRET not in line


def test_failures_back_off_and_never_raise(platform, diverged):
    data, report = diverged
    summary = data["runs"][0]["summary"]
    with socket.socket() as s:                       # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clock = Clock()
    n = notify.Notifier(notify.Webhook(f"http://127.0.0.1:{port}{PATHS['slack']}", "slack"),
                        clock=clock)
    delays = []
    for _ in range(4):
        line = n.update(summary, report)
        assert line.startswith(f"notify failed: cannot reach the slack webhook at 127.0.0.1:{port}")
        assert TOKEN not in line
        delays.append(float(re.search(r"retrying in (\S+) s", line).group(1)))
        assert n.update(summary, report) is None            # not before the retry is due
        clock.now += delays[-1]
    assert delays == [5, 10, 20, 40]
    p = platform("slack")
    n.hook = notify.Webhook(p.url, "slack")                  # the network is back
    assert n.update(summary, report).startswith("notified the slack webhook")
    assert n.update(summary, report) is None and len(p.got) == 1


def test_log_text_cannot_mention_link_or_format(platform, diverged):
    """A synthetic anomaly detail with each platform's mention, link and tag syntax."""
    data, report = diverged
    evil = ('<at user_id="all"></at> <@all> <!channel> [click](http://x.test) '
            '<font color="warning">x</font> `code` **bold**\nsecond line')
    summary = dict(data["runs"][0]["summary"])
    summary["anomalies"] = [dict(summary["anomalies"][0], detail=evil)]
    for dialect in ("dingtalk", "wecom", "slack", "feishu"):
        p = platform(dialect)
        notify.Notifier(notify.Webhook(p.url, dialect)).update(summary, report)
        body = p.got[0]["body"]
        if dialect in ("dingtalk", "wecom"):
            md = body["markdown"]["text" if dialect == "dingtalk" else "content"]
            assert not re.search(r"[<\[\]`]|(?<!^)>", md, re.M), md
            assert "second line" in md and "\nsecond line" not in md
        elif dialect == "slack":
            assert "<!channel>" not in body["text"] and "&lt;!channel&gt;" in body["text"]
            assert {t["type"] for b in body["blocks"] for t in [b.get("text")] + b.get("fields", [])
                    if t} == {"plain_text"}
        else:
            assert {t["tag"] for t in _texts(body["card"]["elements"])} == {"plain_text"}


# --- which webhooks ----------------------------------------------------------------------------
def test_the_host_picks_the_dialect_and_format_overrides():
    urls = {"https://open.feishu.cn/open-apis/bot/v2/hook/x": "feishu",
            "https://open.larksuite.com/open-apis/bot/v2/hook/x": "feishu",
            "https://oapi.dingtalk.com/robot/send?access_token=x": "dingtalk",
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x": "wecom",
            "https://hooks.slack.com/services/T/B/x": "slack",
            "https://example.com/hook": "json"}
    hooks = notify.webhooks(list(urls), env={}, config={})
    assert [h.dialect for h in hooks] == list(urls.values())
    assert [h.dialect for h in notify.webhooks(list(urls), "slack", env={}, config={})] == \
        ["slack"] * len(urls)


def test_urls_and_secrets_from_options_env_and_config():
    feishu = f"https://open.feishu.cn/open-apis/bot/v2/hook/{TOKEN}"
    ding = f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}"
    config = {"notify": [{"url": feishu, "secret": SECRET},
                         {"url": "http://10.0.0.1/x", "format": "slack"}]}
    from_config = notify.webhooks(env={}, config=config)
    assert [(h.dialect, h.secret) for h in from_config] == [("feishu", SECRET), ("slack", None)]
    env = {"LOGREPORT_NOTIFY": f"{ding}, {feishu}", "LOGREPORT_NOTIFY_SECRET": "SECenv"}
    from_env = notify.webhooks(env=env, config=config)
    assert [(h.dialect, h.secret) for h in from_env] == [("dingtalk", "SECenv"),
                                                          ("feishu", SECRET)]
    given = notify.webhooks([feishu], env=env, config=config)      # options win over env
    assert [(h.url, h.secret) for h in given] == [(feishu, SECRET)]
    assert notify.webhooks(env={}, config={}) == []
    assert SECRET not in repr(from_config) and TOKEN not in repr(from_config)


@pytest.mark.parametrize("urls, config, words", [
    (["ftp://x/" + TOKEN], {}, "must be an http(s) URL (ftp://x)"),
    ([TOKEN], {}, "must be an http(s) URL (a URL without a scheme)"),
    ([], {"notify": {"url": "x"}}, "[[notify]] in config.toml must be an array of tables"),
    ([], {"notify": [{"url": "https://x", "token": "y"}]}, "(not token)"),
    ([], {"notify": [{"url": "https://x", "format": "teams"}]}, "unknown [[notify]] format"),
])
def test_bad_webhook_settings_are_usage_errors_without_the_token(urls, config, words):
    with pytest.raises(UsageError) as e:
        notify.webhooks(urls, env={}, config=config)
    assert words in e.value.one_line() and TOKEN not in e.value.one_line()


# --- commands ------------------------------------------------------------------------------------
def logreport(*args, env=None, timeout=120):
    import os

    return subprocess.run([sys.executable, "-m", "logreport", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "XDG_CONFIG_HOME": "/nonexistent", **(env or {})})


def test_watch_notify_tells_the_finished_run(platform, tmp_path):
    p = platform("slack")
    ran = logreport("watch", FINISHED, "--no-tui", "--exit-when-done", "-o", tmp_path / "r.html",
                    "--interval", "0", "--notify", p.url, "--notify-format", "slack")
    assert ran.returncode == 0, ran.stderr
    assert p.problems == [] and len(p.got) == 1
    assert "Finished " in all_text(p.got[0]["body"])
    said = ran.stdout + ran.stderr
    assert "notified the slack webhook at 127.0.0.1" in said and TOKEN not in said


def test_check_notify_posts_the_run_and_keeps_checks_exit_code(platform):
    p = platform("json")
    ran = logreport("check", NAN_LOG, env={"LOGREPORT_NOTIFY": p.url})
    assert ran.returncode == 1 and "found nan" in ran.stderr
    assert p.problems == [] and len(p.got) == 1
    body = p.got[0]["body"]
    assert body["events"] == ["anomaly:nan", "finish"] and body["run"]["anomalies"][0]["kind"] == "nan"
    assert body["run"]["source"].endswith(NAN_LOG.name)


def test_check_notify_failure_is_retried_then_given_up_in_one_line_each():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ran = logreport("check", NAN_LOG, "--notify", f"http://127.0.0.1:{port}{PATHS['json']}")
    assert ran.returncode == 1
    failed = [line for line in ran.stderr.splitlines() if "notify failed" in line]
    assert len(failed) == 3 and failed[-1].endswith("not retrying") and TOKEN not in ran.stderr


def test_run_stop_notifies_before_it_signals(platform, tmp_path):
    p = platform("feishu", SECRET)
    config = tmp_path / "logreport" / "config.toml"
    config.parent.mkdir()
    config.write_text(f'[[notify]]\nurl = "{p.url}"\nsecret = "{SECRET}"\nformat = "feishu"\n')
    flag = tmp_path / "signals"
    ran = logreport("run", "-o", tmp_path / "run.log", "--stop-on", "nan", "--lang", "zh", "--",
                    sys.executable, Path(__file__).with_name("replay_trainer.py"), NAN_LOG, flag,
                    env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert ran.returncode == 3, ran.stderr
    assert p.problems == []
    stop = [g for g in p.got if re.search(r"logreport 在第 \d+ 步停止了训练：第 1 步出现 nan",
                                          all_text(g["body"]))]
    assert stop and "已被 logreport 停止" in stop[0]["body"]["card"]["header"]["title"]["content"]
    signalled = float(flag.read_text().split()[1])
    assert stop[0]["time"] <= signalled                      # told first, then SIGINT
    assert SECRET not in ran.stderr + ran.stdout and TOKEN not in ran.stderr + ran.stdout


def test_a_log_that_states_no_step_leaves_the_step_out_of_the_message():
    """A PaddleDetection launch that died before its first line of training: its message said
    "在第 – 步失败" and listed "traceback 第 – 步", its page "Failed at ?"."""
    from logreport import headline
    from logreport.analysis import summarize

    summary = summarize(load(str(DATA / "ppdet" / "public_29_launch_legacy_waring_deprecation_pd3562.log")))
    message = notify.compose(summary, ["failed"], "zh")
    assert message.headline == "失败：Traceback (cut off before the exception line)。"
    assert message.anomalies == ["traceback: Traceback (cut off before the exception line)"]
    assert headline.sentence(summary).startswith("Failed: traceback at line 20: ")
    assert not any("–" in text for text in (message.headline, *message.anomalies))


def test_the_final_loss_says_the_earlier_step_it_was_logged_at():
    """The last line (step 400) is cut before its loss: "Final loss 2088.6" sat beside
    "Step 400 / 249146" with nothing to say the loss is step 380's."""
    from logreport.analysis import summarize

    summary = summarize(load(str(DATA / "ppdet" / "public_28_ppyolo_jetson_pd4120.log")))
    facts = dict(notify.compose(summary, ["finish"], "en").facts)
    assert facts["Final loss"] == "2088.6 (at step 380)" and facts["Step"] == "400 / 249146"
