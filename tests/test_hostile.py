"""Hostile input (issue 16): what a log, a file name or a client can make logreport do.

Terminals get no control character from log text and rich reads no markup in it; mail cannot
leak a password or have its headers broken by a name; `run` hands no logreport secret to the
training command; watch never blocks on a FIFO; a CSV cell never starts a formula; an
interrupted export leaves nothing behind; a report of 299 tables or 722 segments stays under
1 MB. The logs are real fixtures with the hostile part put in.
"""
from __future__ import annotations

import email
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_mail import SECRET, Handler, authenticator, free_port, received, smtp  # noqa: F401
from test_report import page_data

from logreport import evaltable, mail, report
from logreport.cli import main
from logreport.export import csv_cell
from logreport.follow import Follower
from logreport.reader import load
from logreport.render import render_report, replace_atomic, write_html

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
PPDET = DATA / "ppdet" / "ppyoloe_crn_s_coco_train.log"
CLASSWISE = DATA / "ppdet" / "ppyoloe_crn_s_coco_evalonly_classwise.log"
JSONL = DATA / "llamafactory" / "32_trainer_log_v0.9.1plus_lr_eval_loss.jsonl"
ESCAPES = "\x1b]52;c;ZWNobyBwd25lZA==\x07 \x1b]0;owned\x07 \x1b]8;;https://evil.example\x1b\\x" \
          "\x1b]8;;\x1b\\ \x1bc \x9b2J \x9d0;t\x9c end"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")     # all but \t and \n
NO_NAMES = {"LOGREPORT_SMTP_PASSWORD": "", "LOGREPORT_SMTP_USER": "", "LOGREPORT_SMTP_HOST": ""}


def cli(args: list[str], env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "logreport", *args], cwd=ROOT,
                          env={**os.environ, **NO_NAMES, **(env or {})}, capture_output=True,
                          text=True, timeout=120, check=False, **kw)


def with_traceback(path: Path, detail: str) -> Path:
    """The real log, then a traceback whose exception line carries `detail`."""
    path.write_text(PPDET.read_text("utf-8") + "Traceback (most recent call last):\n"
                    f"RuntimeError: {detail}\n", encoding="utf-8")
    return path


def jsonl_renamed(path: Path, name: str, key: str = "eval_loss") -> Path:
    """The real trainer_log.jsonl with a key renamed: eval_loss is the run's best metric, lr
    a training metric."""
    text = JSONL.read_text("utf-8").replace(json.dumps(key), json.dumps(name))
    path.write_text(text, encoding="utf-8")
    return path


def unescaped(text: str) -> str:
    """Terminal output without the styling and cursor sequences rich writes itself."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


# --- terminals ----------------------------------------------------------------------------
def test_check_prints_no_escape_sequence_from_a_log(runner, tmp_path):
    log = with_traceback(tmp_path / "run.log", "bad " + ESCAPES)
    result = runner.invoke(main, ["check", str(log)])
    assert result.exit_code == 1
    assert not CONTROL.search(result.output)
    assert "\ufffd]52;c;ZWNobyBwd25lZA==\ufffd" in result.stdout      # shown, not obeyed
    data = runner.invoke(main, ["check", str(log), "--json"]).stdout
    assert not CONTROL.search(data)
    detail = json.loads(data)["runs"][0]["anomalies"][-1]["detail"]
    assert "\x1b]0;owned\x07" in detail and "\x9b2J" in detail       # JSON keeps the text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(max_codepoint=0x9f) | st.sampled_from("[]/=*训"), max_size=40))
def test_terminal_paths_never_print_a_control_character(runner, tmp_path, text):
    """check, summary, errors, the plain view and the live panel, over any log text."""
    from rich.console import Console

    from logreport.live import LiveView, PlainView

    log = with_traceback(tmp_path / "fuzz.log", text)
    out = runner.invoke(main, ["check", str(log)]).output
    assert not CONTROL.search(out)
    missing = tmp_path / "missing" / f"{text}.log"          # no glob in it can match
    out = runner.invoke(main, ["summary", str(missing)]).output         # an error
    assert not CONTROL.search(out.replace("\n", ""))
    assert len(out.splitlines()) == 1
    term = io.StringIO()
    console = Console(file=term, force_terminal=True, width=100)
    PlainView(console).message(f"{log}: {text}")
    view = LiveView(console, text, "r.html")
    view.message(text)
    view.close()
    assert not CONTROL.search(unescaped(term.getvalue()).replace("\n", "").replace("\r", ""))


def test_summary_table_prints_markup_from_data_as_text(runner, tmp_path):
    link = tmp_path / "[link=https:\\evil.example]x.log"
    shutil.copy(PPDET, link)
    jsonl = jsonl_renamed(tmp_path / "trainer_log.jsonl", "eval_[/x]")
    result = runner.invoke(main, ["summary", str(link), str(jsonl)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output          # before: MarkupError, exit 1
    assert "[link=https:\\evil.example]x.log" in result.stdout
    assert "eval_[/x]" in result.stdout


# --- mail ---------------------------------------------------------------------------------
def mail_args(log: Path, port: int, out: Path, *extra: str) -> list[str]:
    return ["email", str(log), "--to", "a@example.com", "--smtp-host", "127.0.0.1",
            "--smtp-port", str(port), "--tls", "none", "-o", str(out), *extra]


def other_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))          # no packet is sent: it picks the route
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_login_in_clear_text_to_another_host_is_refused_before_anything(tmp_path):
    out = tmp_path / "r.html"
    proc = cli(["email", str(PPDET), "--to", "a@example.com", "--smtp-host", "192.0.2.1",
                "--tls", "none", "--smtp-user", "alice", "-o", str(out)],
               {"LOGREPORT_SMTP_PASSWORD": SECRET})
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith("logreport: refusing to send the SMTP password in clear text")
    assert "--allow-plaintext-auth" in line and not out.exists()
    settings_ = mail.Settings(host="smtp.example.com", port=25, tls="none", user="alice",
                              password=SECRET)
    with pytest.raises(mail.MailError, match="in clear text"):          # the library too
        mail.send(settings_, mail.EmailMessage())


def test_allow_plaintext_auth_logs_in_to_another_host(tmp_path):
    address = other_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    handler = Handler()
    ctl = Controller(handler, hostname=address, port=free_port(), authenticator=authenticator,
                     auth_require_tls=False)
    ctl.start()
    try:
        base = ["email", str(CLASSWISE), "--to", "a@example.com", "--smtp-host", address,
                "--smtp-port", str(ctl.port), "--tls", "none", "--smtp-user", "alice",
                "-o", str(tmp_path / "r.html")]
        assert cli(base, {"LOGREPORT_SMTP_PASSWORD": SECRET}).returncode == 2
        proc = cli(base + ["--allow-plaintext-auth"], {"LOGREPORT_SMTP_PASSWORD": SECRET})
        assert proc.returncode == 0, proc.stderr
    finally:
        ctl.stop()
    assert len(handler.got) == 1


def test_a_display_name_with_a_comma_is_one_recipient(smtp, tmp_path):  # noqa: F811
    port, handler = smtp()
    proc = cli(mail_args(CLASSWISE, port, tmp_path / "r.html", "--to",
                         '"Doe, John" <john@example.com>', "--cc", "b@example.com"))
    assert proc.returncode == 0, proc.stderr
    assert handler.got[0].rcpt_tos == ["a@example.com", "john@example.com", "b@example.com"]
    msg = received(handler)
    assert [a.display_name for a in msg["To"].addresses] == ["", "Doe, John"]


@pytest.mark.parametrize("address", ["not-an-address", "a@example.com\r\nBcc: x@evil.example",
                                     "@example.com"])
def test_an_address_that_is_not_one_is_refused_in_one_line(tmp_path, address):
    proc = cli(mail_args(CLASSWISE, free_port(), tmp_path / "r.html", "--cc", address))
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith("logreport: not an email address: ") and "(hint: " in line


def crlf_case(case: str, tmp_path: Path) -> tuple[Path, list[str]]:
    """(log, extra email args) putting CR/LF into one name that reaches a header."""
    bad = "x\r\nBcc: evil@example.com\r\nX-Evil: 1"
    if case == "run_name":
        log = tmp_path / f"run{bad}.log"
        shutil.copy(CLASSWISE, log)
        return log, []
    if case == "metric_name":
        return jsonl_renamed(tmp_path / "trainer_log.jsonl", "eval_loss" + bad), []
    if case == "subject":
        return CLASSWISE, ["--subject", f"report{bad}"]
    return CLASSWISE, ["-o", str(tmp_path / f"report{bad}.html")]       # attachment name


@pytest.mark.parametrize("case", ["run_name", "metric_name", "subject", "report_file_name"])
def test_cr_lf_in_a_name_never_breaks_a_header(smtp, tmp_path, case):  # noqa: F811
    port, handler = smtp()
    log, extra = crlf_case(case, tmp_path)
    proc = cli(mail_args(log, port, tmp_path / "r.html", *extra))
    assert proc.returncode == 0, proc.stderr                  # before: internal ValueError
    assert handler.got[0].rcpt_tos == ["a@example.com"]
    msg = received(handler)
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert not CONTROL.search(msg["Subject"]) and "\n" not in msg["Subject"]
    assert "\n" not in msg.get_payload()[-1].get_filename()


def test_watch_email_to_with_a_cr_lf_run_name_mails_once(smtp, tmp_path):  # noqa: F811
    """The Notifier of `watch --email-to` (before: ValueError, retried every minute)."""
    port, handler = smtp()
    run = load(str(PPDET))                                  # a finished run
    run.source = str(tmp_path / "run\r\nBcc: evil@example.com.log")
    data = report.build([run])
    out = tmp_path / "r.html"
    write_html(data, str(out))
    notifier = mail.Notifier(mail.resolve_settings(host="127.0.0.1", port=port, tls="none",
                                                   env={}, config="/nonexistent.toml"),
                             ["a@example.com"], on=["finish"])
    said = notifier.update(data["runs"][0]["summary"], str(out))
    assert said == "mailed a@example.com: finish"
    assert received(handler)["Bcc"] is None


@settings(max_examples=40, deadline=None)
@given(st.text(st.characters(max_codepoint=0x9f) | st.sampled_from("\r\n:,<>@\"训"),
               max_size=30))
def test_headers_hold_whatever_the_names(text):
    """Any run or metric name: the message has its own headers only, each on one line."""
    summary = dict(FUZZ_SUMMARY, source=f"/runs/{text}.log",
                   best=dict(FUZZ_SUMMARY["best"], metric=text))
    msg = mail.compose(FUZZ_SETTINGS, ["a@example.com"], FUZZ_REPORT, summaries=[summary])
    back = email.message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert sorted(back.keys()) == ["Content-Type", "Date", "From", "MIME-Version",
                                   "Message-ID", "Subject", "To"]
    assert not CONTROL.search(str(back["Subject"])) and "\n" not in str(back["Subject"])


FUZZ_REPORT = str(DATA / "gpu_run" / "api_summary_final.json")   # any file: it is attached
FUZZ_SUMMARY = report.build([load(str(CLASSWISE))])["runs"][0]["summary"]
FUZZ_SETTINGS = mail.Settings(host="127.0.0.1", port=25, tls="none")


# --- run's environment --------------------------------------------------------------------
def test_run_hands_no_logreport_secret_to_the_command(tmp_path):
    log = tmp_path / "run.log"
    proc = cli(["run", "-o", str(log), "--report", str(tmp_path / "r.html"), "--", "env"],
               {"LOGREPORT_SMTP_PASSWORD": SECRET, "LOGREPORT_RUNS_TOKEN": "t0ken-" + SECRET,
                "LOGREPORT_SMTP_USER": "alice"})
    assert proc.returncode in (0, 1), proc.stderr        # env's output is no training log
    env = dict(line.split("=", 1) for line in log.read_text().splitlines() if "=" in line)
    assert SECRET not in log.read_text()
    assert "LOGREPORT_SMTP_PASSWORD" not in env and "LOGREPORT_RUNS_TOKEN" not in env
    assert env["LOGREPORT_SMTP_USER"] == "alice" and env["PYTHONUNBUFFERED"] == "1"


# --- FIFOs, devices and symbolic link loops in watch --------------------------------------
@pytest.mark.parametrize("kind", ["fifo", "symlink_loop"])
def test_watch_of_what_is_no_file_is_one_line(tmp_path, kind):
    path = tmp_path / "train.log"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(path)
    proc = cli(["watch", str(path), "--no-tui", "-o", str(tmp_path / "r.html")])
    assert proc.returncode == 1                 # before: hung in open() / internal error
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"logreport: {path}: ") and "(hint: " in line
    assert ("FIFO" if kind == "fifo" else "symbolic links") in line


def test_a_fifo_beside_the_log_never_blocks_the_follower(tmp_path):
    """Rotation detection opens the log's siblings: a FIFO among them must not be waited on
    (before: a truncation froze watch)."""
    log = tmp_path / "train.log"
    shutil.copy(PPDET, log)
    os.mkfifo(tmp_path / "train.fifo")
    follower = Follower(str(log))
    assert follower.poll()
    log.write_bytes(b"")                                    # truncated: a new run follows
    got: list = []
    poller = threading.Thread(target=lambda: got.extend(follower.poll()), daemon=True)
    poller.start()
    poller.join(30)
    assert not poller.is_alive(), "the follower blocked on the FIFO"
    assert [m.detail for m in got] == ["log truncated"]
    follower.close()


# --- CSV formulas -------------------------------------------------------------------------
@pytest.mark.parametrize("value,cell", [
    ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'), ("@SUM(A1)", "'@SUM(A1)"),
    ("+cmd", "'+cmd"), ("-2+3", "'-2+3"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("-1.5", "-1.5"), ("+3", "+3"), ("loss", "loss"), ("训练", "训练"), (None, ""),
    (-0.25, -0.25), (3, 3), (float("-inf"), "'-inf"), (float("nan"), "nan")])
def test_csv_cells_follow_the_rule_of_the_pages_download(value, cell):
    """csvCell in report.html.j2: text starting with = + - @ tab or CR that is not a number
    gets a leading quote (a non-finite value is text there too)."""
    assert csv_cell(value) == cell


def test_export_csv_writes_no_formula_from_a_log(runner, tmp_path):
    log = jsonl_renamed(tmp_path / "trainer_log.jsonl", '=HYPERLINK("http://x")', "lr")
    out = tmp_path / "x.csv"
    assert runner.invoke(main, ["export", str(log), "-o", str(out)]).exit_code == 0
    text = out.read_text("utf-8")
    assert not re.search(r'(^|,)"?[=@+-][A-Za-z]', text, re.M)      # the acceptance rule
    assert '\'=HYPERLINK(""http://x"")' in text


# --- interrupted exports ------------------------------------------------------------------
def test_an_interrupted_write_leaves_no_temporary_file(tmp_path):
    out = tmp_path / "x.jsonl"
    out.write_text("the previous output\n")

    def write(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_atomic(str(out), write)
    assert os.listdir(tmp_path) == ["x.jsonl"] and out.read_text() == "the previous output\n"


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
def test_a_signal_during_export_leaves_no_temporary_file(tmp_path, sig, code, suffix):
    """The export is stopped (SIGSTOP) while it writes its temporary file, signalled,
    resumed."""
    big = DATA / "bench" / "genbig_excerpt.log.gz"

    def writing() -> bool:
        for name in os.listdir(tmp_path):
            try:
                if name.startswith(".logreport-") and os.path.getsize(tmp_path / name):
                    return True
            except FileNotFoundError:           # renamed to the output meanwhile
                pass
        return False

    for _ in range(20):
        proc = subprocess.Popen([sys.executable, "-m", "logreport", "export", str(big), "-o",
                                 str(tmp_path / f"x.{suffix}")], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        while proc.poll() is None and not writing():
            time.sleep(0.001)
        proc.send_signal(signal.SIGSTOP)
        if writing():
            break
        proc.send_signal(signal.SIGCONT)        # it was done already: again
        proc.communicate()
        for name in os.listdir(tmp_path):
            os.unlink(tmp_path / name)
    else:
        pytest.fail("never caught the export while it wrote")
    proc.send_signal(sig)
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert os.listdir(tmp_path) == [] and "Traceback" not in err


# --- report size: many tables, many segments ----------------------------------------------
def test_many_per_category_tables_keep_the_newest_under_the_budget(tmp_path):
    """The real classwise eval repeated 299 times (a synthetic shape of real lines)."""
    log = tmp_path / "evals.log"
    log.write_text(CLASSWISE.read_text("utf-8") * 299, encoding="utf-8")
    run = load(str(log))
    data = report.build([run])
    r = data["runs"][0]
    tables = [m.detail for m in run.markers if m.kind == "table"]
    assert len(tables) == 299 and 0 < len(r["tables"]) < 299
    assert r["tables"] == tables[-len(r["tables"]):]                 # the newest, in order
    assert r["facts"]["tables_omitted"] == 299 - len(r["tables"])
    assert len(json.dumps(r["tables"], ensure_ascii=False)) <= report.TABLES_BYTES


def coco_like_evaluation(categories: int) -> str:
    """The real classwise evaluation with its per-category table replaced by one of
    `categories` rows (names made up: a synthetic table in the real terminaltables layout)."""
    lines = CLASSWISE.read_text("utf-8").splitlines(keepends=True)
    rules = [i for i, x in enumerate(lines) if x.startswith("+")]
    head, tail = "".join(lines[:rules[0]]), "".join(lines[rules[-1] + 1:])
    rule = "+----------+-------+----------+-------+----------+-------+\n"
    rows = [f"| cat_{i:<4} | 0.{i % 1000:03d} " for i in range(categories)]
    body = "".join("".join(rows[i:i + 3]) + "|\n" for i in range(0, categories, 3))
    return head + rule + "| category | AP    | category | AP    | category | AP    |\n" \
        + rule + body + rule + tail


def test_coco_sized_tables_and_a_huge_one_stay_under_1mb(tmp_path):
    """80-category tables (COCO's size) after each of 299 evals, then one of 5000 rows."""
    log = tmp_path / "coco.log"
    log.write_text(coco_like_evaluation(80) * 299 + coco_like_evaluation(5000), encoding="utf-8")
    data = report.build([load(str(log))])
    assert len(render_report(data)) < 1_000_000             # before: 2.2 MB
    (last,) = [t for t in data["runs"][0]["tables"] if t.get("rows_omitted")]
    assert len(last["rows"]) + last["rows_omitted"] == 5000
    (heat,) = data["runs"][0]["heat"]                        # categories x evaluations
    assert len(heat["evals"]) == 2 and len(heat["rows"]) + heat["rows_omitted"] == 5000
    assert len(heat["rows"]) * len(heat["evals"]) <= evaltable.MAX_CELLS


def test_lvis_sized_tables_keep_every_category_over_fewer_evaluations(tmp_path):
    """1203 categories (LVIS) at 30 evaluations: all categories, the last 2 evaluations."""
    log = tmp_path / "lvis.log"
    log.write_text(coco_like_evaluation(1203) * 30, encoding="utf-8")
    data = report.build([load(str(log))])
    assert len(render_report(data)) < 1_000_000              # before: 1.17 MB
    (heat,) = data["runs"][0]["heat"]
    assert (len(heat["rows"]), len(heat["evals"]), heat["rows_omitted"]) == (1203, 2, 0)


def test_722_segments_stay_under_1mb(tmp_path):
    """The real log appended to itself 722 times: 722 segments (before: a 1.76 MB page)."""
    log = tmp_path / "again.log"
    log.write_text(PPDET.read_text("utf-8") * 722, encoding="utf-8")
    run = load(str(log))
    data = report.build([run])
    assert len(run.segments) == 722
    assert len(render_report(data)) < 1_000_000
    r = data["runs"][0]
    assert r["facts"]["segments_omitted"] == 722 - report.MAX_SEGMENTS
    assert len(r["facts"]["segments"]) == report.MAX_SEGMENTS
    assert {a["seg"] for a in r["axes"]["train"]} == set(range(722 - report.MAX_SEGMENTS, 722))
    write_html(data, str(tmp_path / "r.html"))
    assert page_data((tmp_path / "r.html").read_text("utf-8"))["runs"][0]["facts"] == r["facts"]
