"""Log text is untrusted: it never runs in a report or a mail, and the SMTP password never
leaks into argv, output, reports or errors."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_mail import SECRET, authenticator, free_port, received, smtp  # noqa: F401 (fixture)
from test_report import page_data

from logreport import render
from logreport.cli import main
from logreport.reader import load
from logreport.report import build

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
CLASSWISE = DATA / "ppdet" / "ppyoloe_crn_s_coco_evalonly_classwise.log"
CRASH = DATA / "ppdet" / "picodet_s_320_coco_nan_crash.log"
HF = DATA / "llamafactory" / "07_trainer_log_v0.1_pt_final_null.jsonl"
ATTACKS = ["<script>window.__pwned=1</script>", "<img src=x onerror=window.__pwned=2>",
           "javascript:window.__pwned=3", "</script><script>window.__pwned=4</script>",
           "<svg onload=window.__pwned=5>", "<!--<script>window.__pwned=6//"]


def hostile_logs(folder: Path) -> list[Path]:
    """Real logs with attacks in category names, a table title, metric names, messages, paths."""
    table = CLASSWISE.read_text(encoding="utf-8")
    for name, attack in zip(("red_box", "green_box", "blue_ellipse"), ATTACKS):
        table = table.replace(f" {name} ", f" {attack} ")
    table = table.replace("Per-category of bbox AP:", f"Per-category of {ATTACKS[3]}:")
    crash = CRASH.read_text(encoding="utf-8").replace("ValueError:", "ValueError: " + ATTACKS[1])
    metrics = HF.read_text(encoding="utf-8").replace(
        '"loss":', f'{json.dumps(ATTACKS[0] + ATTACKS[5])}: 0.5, {json.dumps(ATTACKS[3])}: 1, "loss":')
    logs = {f"{ATTACKS[4]}.log": table, f"{ATTACKS[2]}.log": crash,
            "trainer_log.jsonl": metrics}
    paths = []
    for name, text in logs.items():
        sub = folder / str(len(paths))
        sub.mkdir()
        (sub / name).write_text(text, encoding="utf-8")
        paths.append(sub / name)
    return paths


def hostile_report(folder: Path) -> tuple[Path, dict]:
    runs = [load(str(p)) for p in hostile_logs(folder)]
    data = build(runs, title=ATTACKS[0])
    out = folder / "hostile.html"
    render.write_html(data, str(out))
    return out, data


def test_attacks_reach_the_payload_as_data(tmp_path):
    out, _ = hostile_report(tmp_path)
    payload = page_data(out.read_text(encoding="utf-8"))
    text = json.dumps(payload, ensure_ascii=False)
    for attack in ATTACKS:
        assert attack in text, attack
    table = payload["runs"][0]["tables"][0]
    assert ATTACKS[3] in table["title"]
    assert {ATTACKS[0], ATTACKS[1], ATTACKS[2]} <= {cell for row in table["rows"] for cell in row}
    assert {ATTACKS[0] + ATTACKS[5], ATTACKS[3]} <= set(payload["runs"][2]["series"]["train"])


def test_log_text_only_inside_the_json_element(tmp_path):
    """Every script element is one of the template's three; the code is the same whatever the
    data; the JSON text holds no '</' or '<!--' that could end it early."""
    html = hostile_report(tmp_path)[0].read_text(encoding="utf-8")
    plain = tmp_path / "plain.html"
    render.write_html(build([load(str(CLASSWISE))]), str(plain))
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.DOTALL)
    assert [attrs for attrs, _ in scripts] == [
        ' type="application/json" id="report-data"',
        ' type="application/x-gzip-base64" id="plotly-gz"', ""]
    plain_code = re.findall(r"<script>(.*?)</script>", plain.read_text("utf-8"), re.DOTALL)
    assert scripts[2][1] == plain_code[0]
    data_text = scripts[0][1]
    assert "</" not in data_text and "<!--" not in data_text and "<" not in data_text
    outside = html.replace(data_text, "")
    for attack in ATTACKS:
        assert attack not in outside
    assert not re.search(r"\son\w+\s*=", outside.replace(scripts[2][1], ""))


@pytest.mark.browser
@pytest.mark.skipif(not __import__("browser").available(), reason="chromium is not installed")
def test_attacks_do_not_run_in_chromium(tmp_path):
    from browser import Browser

    out, _ = hostile_report(tmp_path)
    with Browser() as b:
        page = b.open(out.as_uri())
        page.wait_for("document.documentElement.dataset.drawn === '1'")
        assert page.eval("window.__pwned === undefined")
        assert page.eval("document.querySelectorAll('img, svg[onload], iframe, "
                         "a[href^=\"javascript\"]').length") == 0
        assert page.eval("Array.from(document.querySelectorAll('[href], [src]')).filter("
                         "e => /^\\s*javascript:/i.test(e.getAttribute('href') || "
                         "e.getAttribute('src'))).length") == 0
        tables = page.eval("document.getElementById('tables').textContent")
        assert ATTACKS[0] in tables and ATTACKS[1] in tables and ATTACKS[3] in tables
        body = page.eval("document.body.textContent")
        for attack in ATTACKS:                  # shown as text, not taken for markup
            assert attack in body, attack
        assert page.errors == [] and page.requests == []


# --- mail ----------------------------------------------------------------------------------
def mail_args(log: Path, port: int, out: Path, *extra: str) -> list[str]:
    return ["email", str(log), "--to", "a@example.com", "--from", "bot@example.com",
            "--smtp-host", "127.0.0.1", "--smtp-port", str(port), "--tls", "none",
            "-o", str(out), *extra]


def test_mail_body_from_a_hostile_log_has_no_script(runner, smtp, tmp_path):  # noqa: F811
    port, handler = smtp()
    crash = hostile_logs(tmp_path)[1]
    result = runner.invoke(
        main, mail_args(crash, port, tmp_path / "r.html"),
        env={"LOGREPORT_SMTP_PASSWORD": "", "XDG_CONFIG_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.stderr
    html = received(handler).get_body(("html",)).get_content()
    assert ATTACKS[2] in html            # the path (javascript: ...) is shown as text
    tags = Tags()
    tags.feed(html)
    assert not {"script", "svg", "iframe", "object", "embed"} & {t for t, _ in tags.found}
    for tag, attrs in tags.found:
        if tag == "img":      # only the inline chart, attached as a MIME part
            assert dict(attrs)["src"].startswith("cid:")
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            assert not (value or "").strip().lower().startswith("javascript:"), (tag, name)


class Tags(HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, list]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, attrs))


def run_cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "logreport", *args], cwd=ROOT, text=True,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1", **env),
                          capture_output=True, timeout=120, check=False)


def test_no_command_takes_a_password_on_the_command_line():
    for name, command in main.commands.items():
        for param in command.params:
            assert "pass" not in param.name.lower(), (name, param.name)
            assert not any("pass" in o for o in param.opts), (name, param.opts)


@pytest.mark.parametrize("failure", ["refused", "wrong_password", "no_auth", "recipient"])
@pytest.mark.parametrize("debug", [False, True])
def test_password_never_in_output_reports_or_errors(smtp, tmp_path, failure, debug):  # noqa: F811
    """Each way a send fails, with and without --debug: the password appears nowhere."""
    if failure == "refused":
        port = free_port()
    elif failure == "wrong_password":
        port, _ = smtp(authenticator=authenticator, auth_require_tls=False)
    else:   # no_auth: a login asked of a server without AUTH; recipient: refused at RCPT
        port, _ = smtp(refuse="a@example.com")
    password = "wrong-" + SECRET if failure == "wrong_password" else SECRET
    out = tmp_path / "r.html"
    user = [] if failure == "recipient" else ["--smtp-user", "alice"]
    args = (["--debug"] if debug else []) + mail_args(CLASSWISE, port, out, *user)
    proc = run_cli(args, {"LOGREPORT_SMTP_PASSWORD": password, "XDG_CONFIG_HOME": str(tmp_path),
                          "HOME": str(tmp_path)})
    assert proc.returncode == 1
    assert ("Traceback" in proc.stderr) == debug
    assert password not in proc.stdout + proc.stderr
    assert password not in " ".join(args)
    assert out.exists()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
