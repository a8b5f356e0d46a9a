"""`logreport email` and mail.Notifier against a real SMTP server (aiosmtpd) on loopback."""
from __future__ import annotations

import datetime
import email
import io
import ipaddress
import os
import socket
import ssl
import zipfile
from email import policy
from html.parser import HTMLParser
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from logreport import mail
from logreport.cli import main
from logreport.reader import load
from logreport.render import write_html
from logreport.report import build

LOG = Path(__file__).parent / "data" / "ppdet" / "ppyoloe_crn_s_coco_train.log"
ANOMALOUS = LOG.parent / "yolov3_mobilenet_v1_voc_nan_crash.log"    # diverges, then crashes
SECRET = "s3cret-Pa55"


# --- a real SMTP server ------------------------------------------------------------------
class Handler:
    def __init__(self, refuse: str | None = None):
        self.refuse, self.got = refuse, []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == self.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.got.append(envelope)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"alice" and auth_data.password == SECRET.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp():
    """start(**controller_kwargs) -> (port, handler); every server is stopped at the end."""
    started = []

    def start(port=None, refuse=None, **kwargs):
        handler = Handler(refuse)
        ctl = Controller(handler, hostname="127.0.0.1", port=port or free_port(), **kwargs)
        ctl.start()
        started.append(ctl)
        return ctl.port, handler

    yield start
    for ctl in started:
        ctl.stop()


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (server context, client context trusting it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    crt = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
           .public_key(key.public_key()).serial_number(x509.random_serial_number())
           .not_valid_before(now - datetime.timedelta(days=1))
           .not_valid_after(now + datetime.timedelta(days=1))
           .add_extension(x509.SubjectAlternativeName(
               [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
               critical=False)
           .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
           .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    crt_file, key_file = folder / "cert.pem", folder / "key.pem"
    crt_file.write_bytes(crt.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(crt_file, key_file)
    client = ssl.create_default_context(cafile=str(crt_file))
    return server, client, str(crt_file)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """(path, report data) of a real report built from a real ppdet log."""
    data = build([load(str(LOG))])
    path = tmp_path_factory.mktemp("report") / "ppyoloe.html"
    write_html(data, str(path))
    return str(path), data


def settings(port, tls="none", **kw):
    return mail.resolve_settings(host="127.0.0.1", port=port, tls=tls, env={},
                                 config="/nonexistent/config.toml", **kw)


def received(handler) -> email.message.EmailMessage:
    assert len(handler.got) == 1
    return email.message_from_bytes(handler.got[0].content, policy=policy.default)


def attachment(msg) -> tuple[str, bytes]:
    (part,) = list(msg.iter_attachments())
    return part.get_filename(), part.get_payload(decode=True)


# --- settings ----------------------------------------------------------------------------
def test_settings_precedence_flags_env_config(tmp_path):
    conf = tmp_path / "config.toml"
    conf.write_text('[smtp]\nhost = "conf.example.com"\nport = 2525\nuser = "conf"\n'
                    'from = "conf@example.com"\ntls = "ssl"\n')
    s = mail.resolve_settings(env={}, config=str(conf))
    assert (s.host, s.port, s.user, s.sender, s.tls) == (
        "conf.example.com", 2525, "conf", "conf@example.com", "ssl")
    env = {"LOGREPORT_SMTP_HOST": "env.example.com", "LOGREPORT_SMTP_PORT": "26",
           "LOGREPORT_SMTP_TLS": "none", "LOGREPORT_SMTP_FROM": "env@example.com"}
    with pytest.raises(mail.UsageError, match="password in clear text"):   # login "conf"
        mail.resolve_settings(env=env, config=str(conf))
    env["LOGREPORT_SMTP_ALLOW_PLAINTEXT_AUTH"] = "1"
    s = mail.resolve_settings(env=env, config=str(conf))
    assert s.allow_plaintext_auth
    assert (s.host, s.port, s.user, s.sender, s.tls) == (
        "env.example.com", 26, "conf", "env@example.com", "none")
    s = mail.resolve_settings(host="flag.example.com", port=27, tls="starttls", user="flag",
                              env=env, config=str(conf))
    assert (s.host, s.port, s.user, s.tls) == ("flag.example.com", 27, "flag", "starttls")


def test_settings_defaults_and_config_location(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert mail.config_path() == str(tmp_path / "logreport" / "config.toml")
    s = mail.resolve_settings(host="smtp.example.com", env={})
    assert (s.port, s.tls) == (587, "starttls")
    assert mail.resolve_settings(host="h", tls="ssl", env={}).port == 465
    with pytest.raises(mail.UsageError, match="no SMTP server"):
        mail.resolve_settings(env={})


def test_password_never_in_config_nor_repr(tmp_path):
    conf = tmp_path / "config.toml"
    conf.write_text(f'[smtp]\nhost = "h"\npassword = "{SECRET}"\n')
    with pytest.raises(mail.UsageError, match="must not hold the SMTP password") as e:
        mail.resolve_settings(env={}, config=str(conf))
    assert SECRET not in e.value.one_line()
    s = mail.resolve_settings(host="h", password=SECRET, env={}, config=str(conf) + ".none")
    assert SECRET not in repr(s) and SECRET not in str(s)


# --- the message -------------------------------------------------------------------------
def test_plain_delivery_headers_bodies_chart_and_attachment(smtp, report):
    path, data = report
    port, handler = smtp()
    mail.send_report(settings(port, sender="bot@example.com"), ["a@example.com", "b@example.com"],
                     path, cc=["c@example.com"], payload=data)
    env = handler.got[0]
    assert sorted(env.rcpt_tos) == ["a@example.com", "b@example.com", "c@example.com"]
    assert env.mail_from == "bot@example.com"
    msg = received(handler)
    summary = data["runs"][0]["summary"]
    best = summary["best"]
    assert msg["Subject"].startswith(
        f"[logreport] ppyoloe_crn_s_coco_train · {summary['status']} · "
        f"{best['metric']} {best['value']:.4g} @ epoch {best['epoch']}")
    assert msg["To"] == "a@example.com, b@example.com" and msg["Cc"] == "c@example.com"
    assert msg["From"] == "bot@example.com" and msg["Date"] and msg["Message-ID"]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert summary["anomalies"] == []                  # a clean run (anomalies: the next test)
    assert "  anomalies: none" in text.splitlines() and ">none</p>" in html
    for body in (text, html):
        assert summary["status"] in body and best["metric"] in body
        assert "attached (ppyoloe.html" in body
    assert "<script" not in html.lower() and "http" not in html.lower()
    (image,) = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    assert image.get_payload(decode=True).startswith(b"\x89PNG\r\n\x1a\n")
    assert f'src="cid:{image["Content-ID"][1:-1]}"' in html
    name, content = attachment(msg)
    assert name == "ppyoloe.html" and content == Path(path).read_bytes()


class Rows(HTMLParser):
    """The text of each table row of an HTML body, cell by cell."""

    def __init__(self, html: str):
        super().__init__()
        self.rows: list[list[str]] = []
        self.in_cell = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "tr":                # rows of tables inside a cell are rows too
            self.rows.append([])
            self.in_cell = False
        elif tag in ("td", "th"):
            self.rows[-1].append("")
            self.in_cell = True

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.in_cell = False

    def handle_data(self, data):
        if self.in_cell:
            self.rows[-1][-1] += data


def test_both_bodies_list_every_anomaly_of_a_failed_run(smtp, tmp_path):
    data = build([load(str(ANOMALOUS))])
    path = tmp_path / "voc.html"
    write_html(data, str(path))
    port, handler = smtp()
    mail.send_report(settings(port), ["a@example.com"], str(path), payload=data)
    msg = received(handler)
    summary = data["runs"][0]["summary"]
    assert [a["kind"] for a in summary["anomalies"]] == ["divergence", "spike", "traceback"]
    assert msg["Subject"].endswith(" · 3 anomalies")
    lines = msg.get_body(("plain",)).get_content().splitlines()
    rows = Rows(msg.get_body(("html",)).get_content()).rows
    assert "  anomalies: 3" in lines
    for a in summary["anomalies"]:
        assert f"  - {a['kind']} at step {a['step']} (line {a['line']}): {a['detail']}" in lines
        assert [a["kind"], str(a["step"]), a["metric"] or "–", str(a["line"]), a["detail"]] in rows


def test_summary_read_back_from_the_report_payload(smtp, report):
    path, data = report
    port, handler = smtp()
    mail.send_report(settings(port), ["a@example.com"], path)
    assert received(handler)["Subject"] == mail.subject(data["runs"][0]["summary"])


def test_html_body_escapes_log_text(smtp, report):
    path, data = report
    summary = dict(data["runs"][0]["summary"],
                   anomalies=[{"kind": "spike", "step": 1, "metric": "loss", "line": 2,
                               "detail": "<script>alert(1)</script> & <b>"}])
    port, handler = smtp()
    mail.send_report(settings(port), ["a@example.com"], path, summaries=[summary])
    html = received(handler).get_body(("html",)).get_content()
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in html


def test_report_over_the_limit_is_zipped_and_the_body_says_so(smtp, report):
    path, data = report
    port, handler = smtp()
    size_mb = os.path.getsize(path) / 2**20
    mail.send_report(settings(port), ["a@example.com"], path, payload=data,
                     max_attachment_mb=size_mb / 2)
    msg = received(handler)
    name, content = attachment(msg)
    assert name == "ppyoloe.html.zip"
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        assert z.namelist() == ["ppyoloe.html"]
        assert z.read("ppyoloe.html") == Path(path).read_bytes()
    for body in (msg.get_body(("plain",)), msg.get_body(("html",))):
        assert "attached zipped (ppyoloe.html.zip" in body.get_content()


# --- TLS and login -----------------------------------------------------------------------
def test_starttls_with_self_signed_certificate(smtp, report, cert):
    server_ctx, client_ctx, _ = cert
    port, handler = smtp(tls_context=server_ctx, require_starttls=True)
    mail.send_report(settings(port, tls="starttls"), ["a@example.com"], report[0],
                     context=client_ctx)
    assert attachment(received(handler))[1] == Path(report[0]).read_bytes()


def test_implicit_ssl(smtp, report, cert):
    server_ctx, client_ctx, _ = cert
    port, handler = smtp(ssl_context=server_ctx)
    mail.send_report(settings(port, tls="ssl"), ["a@example.com"], report[0], context=client_ctx)
    assert len(handler.got) == 1


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_auth_over_starttls(smtp, report, cert, mechanism):
    server_ctx, client_ctx, _ = cert
    other = {"LOGIN": "PLAIN", "PLAIN": "LOGIN"}[mechanism]
    port, handler = smtp(tls_context=server_ctx, authenticator=authenticator, auth_required=True,
                         auth_exclude_mechanism=[other])
    s = settings(port, tls="starttls", user="alice", password=SECRET)
    mail.send_report(s, ["a@example.com"], report[0], context=client_ctx)
    assert len(handler.got) == 1


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_wrong_password_is_an_auth_failure_without_the_password(smtp, report, mechanism):
    other = {"LOGIN": "PLAIN", "PLAIN": "LOGIN"}[mechanism]
    port, handler = smtp(authenticator=authenticator, auth_require_tls=False,
                         auth_exclude_mechanism=[other])
    mail.send_report(settings(port, user="alice", password=SECRET), ["a@example.com"], report[0])
    wrong = "wrong-" + SECRET
    with pytest.raises(mail.MailError) as e:
        mail.send_report(settings(port, user="alice", password=wrong), ["a@example.com"],
                         report[0])
    line = e.value.one_line()
    assert "authentication failed for user 'alice'" in line and "LOGREPORT_SMTP_PASSWORD" in line
    assert wrong not in line and SECRET not in line
    assert len(handler.got) == 1


# --- failures: one line naming the cause and the setting ----------------------------------
def fails(s, report, **kw) -> str:
    with pytest.raises(mail.MailError) as e:
        mail.send_report(s, ["a@example.com"], report[0], **kw)
    assert os.path.exists(report[0])
    line = e.value.one_line()
    assert "\n" not in line
    return line


def test_connection_refused(report):
    line = fails(settings(free_port()), report)
    assert "connection refused" in line and "--smtp-port" in line


def test_unresolvable_host(report):
    s = mail.resolve_settings(host="nonexistent.invalid", port=25, tls="none", env={})
    line = fails(s, report)
    assert "cannot resolve the SMTP host 'nonexistent.invalid'" in line and "--smtp-host" in line


def test_ssl_to_a_plain_server(smtp, report):
    port, _ = smtp()
    line = fails(settings(port, tls="ssl"), report)
    assert "TLS failure" in line and "--tls" in line


def test_starttls_to_a_server_without_it(smtp, report):
    port, _ = smtp()
    line = fails(settings(port, tls="starttls"), report)
    assert "does not offer STARTTLS" in line and "--tls" in line


def test_untrusted_certificate(smtp, report, cert):
    port, _ = smtp(tls_context=cert[0])
    line = fails(settings(port, tls="starttls"), report)
    assert "certificate is not trusted" in line


def test_login_asked_of_a_server_without_auth(smtp, report):
    port, _ = smtp()
    line = fails(settings(port, user="alice", password=SECRET), report)
    assert "offers no login" in line and "--smtp-user" in line and SECRET not in line


def test_recipient_refused(smtp, report):
    port, handler = smtp(refuse="nobody@example.com")
    with pytest.raises(mail.MailError) as e:
        mail.send_report(settings(port), ["nobody@example.com"], report[0])
    assert "recipient refused" in e.value.one_line() and "nobody@example.com (550" in str(e.value)
    assert "--to" in e.value.one_line() and not handler.got


# --- the command -------------------------------------------------------------------------
def test_cli_mails_a_report_file(smtp, report):
    port, handler = smtp()
    r = CliRunner().invoke(main, ["email", report[0], "--to", "a@example.com", "--from",
                                  "bot@example.com", "--smtp-host", "127.0.0.1", "--smtp-port",
                                  str(port), "--tls", "none"], env={"LOGREPORT_SMTP_PASSWORD": ""})
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "" and "sent '[logreport] ppyoloe_crn_s_coco_train" in r.stderr
    assert attachment(received(handler))[1] == Path(report[0]).read_bytes()


def test_cli_builds_the_report_from_a_log_and_prompts_for_the_password(smtp, tmp_path, cert):
    port, handler = smtp(authenticator=authenticator, auth_require_tls=False)
    out = tmp_path / "r.html"
    r = CliRunner().invoke(main, ["email", str(LOG), "--to", "a@example.com", "-o", str(out),
                                  "--smtp-user", "alice", "--tls", "none"], input=SECRET + "\n",
                           env={"LOGREPORT_SMTP_HOST": "127.0.0.1",
                                "LOGREPORT_SMTP_PORT": str(port), "XDG_CONFIG_HOME": str(tmp_path),
                                "LOGREPORT_SMTP_PASSWORD": ""})
    assert r.exit_code == 0, r.stderr
    assert "SMTP password for alice" in r.output and SECRET not in r.output
    assert attachment(received(handler))[1] == out.read_bytes()


def test_cli_failure_is_one_line_exit_1_and_keeps_the_report(report, tmp_path):
    port = free_port()
    r = CliRunner().invoke(main, ["email", report[0], "--to", "a@example.com", "--smtp-host",
                                  "127.0.0.1", "--smtp-port", str(port), "--smtp-user", "alice",
                                  "--tls", "none"],
                           env={"LOGREPORT_SMTP_PASSWORD": SECRET,
                                "XDG_CONFIG_HOME": str(tmp_path)})
    assert r.exit_code == 1
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("logreport: connection refused")
    assert SECRET not in r.output and "Traceback" not in r.output
    assert os.path.exists(report[0])


def test_cli_rejects_a_page_that_is_not_a_report(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><body>hello</body></html>")
    r = CliRunner().invoke(main, ["email", str(page), "--to", "a@example.com", "--smtp-host",
                                  "127.0.0.1"], env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert r.exit_code == 1 and "not a logreport report" in r.stderr


# --- Notifier ----------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def states(report):
    """Summaries a watch would see over the run: running, a spike, a divergence, finished."""
    base = report[1]["runs"][0]["summary"]
    diverged = build([load(str(LOG.with_name("ppyoloe_crn_s_coco_diverge_lr1000.log")))])
    by_kind = {a["kind"]: a for a in diverged["runs"][0]["summary"]["anomalies"]}
    running = dict(base, status="running", anomalies=[])
    spike = dict(running, anomalies=[by_kind["spike"]])
    both = dict(running, anomalies=[by_kind["spike"], by_kind["divergence"]])
    return running, spike, both, dict(both, status="finished")


def test_notifier_sends_on_events_once_per_kind(smtp, report):
    port, handler = smtp()
    clock = Clock()
    n = mail.Notifier(settings(port), ["a@example.com"], clock=clock)
    running, spike, both, finished = states(report)
    assert n.update(running, report[0]) is None
    assert n.update(spike, report[0]) == "mailed a@example.com: anomaly:spike"
    clock.now += 30
    assert n.update(spike, report[0]) is None
    assert n.update(both, report[0]) == "mailed a@example.com: anomaly:divergence"
    assert n.update(finished, report[0]) == "mailed a@example.com: finish"
    clock.now += 3600
    assert n.update(finished, report[0]) is None
    subjects = [email.message_from_bytes(e.content, policy=policy.default)["Subject"]
                for e in handler.got]
    assert len(subjects) == 3 and "· finished ·" in subjects[-1] and "· running ·" in subjects[0]


def test_notifier_never_mails_a_kind_twice_within_ten_minutes(smtp, report):
    port, handler = smtp()
    clock = Clock()
    n = mail.Notifier(settings(port), ["a@example.com"], on=["fail"], clock=clock)
    running, spike, _, _ = states(report)
    failed = dict(running, status="failed")
    assert n.update(spike, report[0]) is None          # anomalies not asked for
    assert n.update(failed, report[0]) == "mailed a@example.com: fail"
    clock.now += 60
    assert n.update(running, report[0]) is None        # a new run starts in the same log …
    assert n.update(failed, report[0]) is None         # … and fails again: held back
    clock.now += 539
    assert n.update(failed, report[0]) is None
    clock.now += 1
    assert n.update(failed, report[0]) == "mailed a@example.com: fail"
    assert len(handler.got) == 2


def test_notifier_survives_mail_failure_and_retries(smtp, report):
    port = free_port()
    clock = Clock()
    n = mail.Notifier(settings(port), ["a@example.com"], on=["finish"], clock=clock, retry=60)
    finished = states(report)[3]
    line = n.update(finished, report[0])
    assert line.startswith("mail to a@example.com failed: connection refused")
    assert line.endswith("retrying in 60 s")
    _, handler = smtp(port=port)
    clock.now += 59
    assert n.update(finished, report[0]) is None
    clock.now += 1
    assert n.update(finished, report[0]) == "mailed a@example.com: finish"
    assert len(handler.got) == 1




@pytest.mark.timeout(120)      # a watch in a subprocess, to the quiet time of --exit-when-done
def test_watch_email_to_mails_the_finished_run(smtp, tmp_path, monkeypatch):
    """`watch --email-to` on a finished real log: one "finish" mail with the report attached."""
    from click.testing import CliRunner

    port, handler = smtp()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for key, value in {"HOST": "127.0.0.1", "PORT": str(port), "TLS": "none",
                       "FROM": "bot@example.com"}.items():
        monkeypatch.setenv("LOGREPORT_SMTP_" + key, value)
    out = tmp_path / "r.html"
    result = CliRunner().invoke(main, ["watch", str(LOG), "--no-tui", "--exit-when-done",
                                       "-o", str(out), "--email-to", "team@example.com",
                                       "--interval", "0"])
    assert result.exit_code == 0, result.stderr
    assert "mailed team@example.com: finish" in result.stderr + result.stdout
    msg = received(handler)
    assert msg["To"] == "team@example.com" and "finished" in msg["Subject"]
    assert attachment(msg)[1] == out.read_bytes()


def test_watch_refuses_an_unknown_email_event(tmp_path):
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["watch", str(LOG), "--email-to", "a@example.com",
                                       "--email-on", "finish,done"])
    assert result.exit_code == 2 and "unknown --email-on event done" in result.stderr


def test_the_subject_pairs_the_final_loss_with_the_step_it_was_logged_at():
    """PaddleDetection's last line (step 400) is cut before its loss: the subject said
    "loss 2088.6 @ step 400", a loss logged at step 380."""
    from logreport.analysis import summarize

    summary = summarize(load(str(LOG.parent / "public_28_ppyolo_jetson_pd4120.log")))
    assert summary["last_step"] == 400 and summary["final"]["loss"] == 2088.600586
    assert summary["final_steps"]["loss"] == 380 and "learning_rate" not in summary["final_steps"]
    assert mail.subject(summary).endswith(" · loss 2088.6 @ step 380")
    rows = dict(mail.facts(summary))
    assert rows["final loss"] == "2088.6 @ step 380" and rows["final learning_rate"] == "0.0005"
