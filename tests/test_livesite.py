"""`logreport serve ROOT` as a real server process: the token off loopback on every path (the
API and the event stream too), the Host check, the cookie, no CORS headers; runs being written
update their row and their page; new runs appear, deleted ones go."""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import until

from logreport import reader
from logreport.livesite import Access

DATA = Path(__file__).parent / "data"
LONG = DATA / "ppdet" / "picodet_s_320_coco_long80e.log"


@contextlib.contextmanager
def served(root: Path, site: Path, *args: str, env: dict | None = None):
    """`logreport serve ROOT` until the block ends; yields (port, token or None) once the
    first walk is published."""
    proc = subprocess.Popen([sys.executable, "-m", "logreport", "serve", str(root), "-o",
                             str(site), "--port", "0", *args],
                            cwd=Path(__file__).parents[1], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=dict(os.environ, **(env or {})))
    try:
        url = ""
        while "serving" not in (line := proc.stderr.readline().decode()):
            assert line, "serve ended"
            url = line if "127.0.0.1" in line else url
        port = int(re.search(r":(\d+)/", url).group(1))
        token = re.search(r"token=(\S+)", url)
        token = token.group(1) if token else None
        until(lambda: _rows(port, token), "the first index published", 60)
        yield port, token
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def get(port: int, path: str, host: str = "127.0.0.1", cookie: str | None = None,
        stream: bool = False):
    """(status, headers, body); stream: the first chunk of an event stream only."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    headers = {"Host": f"{host}:{port}"}
    if cookie:
        headers["Cookie"] = cookie
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read1(200) if stream and resp.status == 200 else resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), body


def _rows(port: int, token: str | None) -> list[dict]:
    code, _, body = get(port, "/api/runs" + (f"?token={token}" if token else ""))
    return json.loads(body)["rows"] if code == 200 else []


def test_off_loopback_every_path_needs_the_token(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copy(DATA / "ppdet" / "ppyoloe_crn_s_coco_train.log", root / "a.log")
    with served(root, tmp_path / "site", "--host", "0.0.0.0") as (port, token):
        assert token and len(token) >= 20
        run_id = _rows(port, token)[0]["id"]
        paths = ["/", "/api/runs", "/api/events", f"/runs/{run_id}.html",
                 f"/runs/{run_id}.data.js", "/assets/plotly.min.js",
                 f"/runs/{run_id}/api/summary", "/favicon.ico", "/nope"]
        seen_headers = []
        for path in paths:
            code, headers, _ = get(port, path)
            assert code == 401, path
            code, headers, _ = get(port, path + "?token=wrong" + token)
            assert code == 403, path
            code, headers, _ = get(port, path, cookie=f"logreport-token-{port}=x{token}")
            assert code == 403, path
            code, headers, _ = get(port, f"{path}?token={token}", host="evil.example")
            assert code == 421, path                   # DNS rebinding: refused even with it
            code, headers, body = get(port, f"{path}?token={token}", stream=True)
            assert code == {"/nope": 404, f"/runs/{run_id}/api/summary": 302,
                            "/favicon.ico": 204}.get(path, 200), path
            assert headers["Set-Cookie"] == (f"logreport-token-{port}={token}; Path=/; HttpOnly; "
                                             "SameSite=Strict")
            seen_headers.append(headers)
        code, headers, body = get(port, "/api/events", cookie=f"logreport-token-{port}={token}",
                                  stream=True)
        assert code == 200 and headers["Content-Type"] == "text/event-stream"
        assert body.startswith(b"event: report\ndata: {\"version\": ")
        code, _, page = get(port, "/", cookie=f"a=b; logreport-token-{port}={token}")
        assert code == 200 and b'id="index-data"' in page
        assert not [k for h in seen_headers for k in h if k.lower().startswith("access-control")]


def test_the_token_can_be_given(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copy(DATA / "ppdet" / "ppyoloe_crn_s_coco_train.log", root / "a.log")
    with served(root, tmp_path / "site", "--host", "0.0.0.0",
                env={"LOGREPORT_TOKEN": "team-secret-1234"}) as (port, token):
        assert token == "team-secret-1234"
        assert get(port, "/?token=team-secret-1234")[0] == 200
        assert get(port, "/")[0] == 401


def test_loopback_needs_no_token_but_a_loopback_host(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copy(DATA / "ppdet" / "ppyoloe_crn_s_coco_train.log", root / "a.log")
    with served(root, tmp_path / "site") as (port, token):
        assert token is None
        assert get(port, "/")[0] == 200
        assert get(port, "/api/runs", host="localhost")[0] == 200
        assert get(port, "/api/runs", host="attacker.example")[0] == 421


def test_access_host_names_and_cookie():
    access = Access("0.0.0.0", "t0k3n", allow_hosts=["runs.example.com"])
    assert access.host_ok("127.0.0.1:8765", "10.0.0.5") and access.host_ok("[::1]:80", "::1")
    assert access.host_ok("10.0.0.5:8765", "10.0.0.5")          # the address connected to
    assert access.host_ok("RUNS.example.com", "10.0.0.5")
    assert not access.host_ok("evil.example:8765", "10.0.0.5") and not access.host_ok("", "x")
    assert access.token_of("", "logreport-token-80=t0k3n; other=1", 80) == "t0k3n"
    assert access.token_of("token=abc", "logreport-token-80=t0k3n", 80) == "abc"
    assert access.token_of("", 'bad"cookie', 80) is None
    assert access.token_ok("t0k3n") and not access.token_ok("t0k3") and not access.token_ok(None)
    assert Access("127.0.0.1", None).token is None


@pytest.mark.timeout(120)
def test_runs_being_written_update_their_row_and_page_new_runs_appear_deleted_go(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    text = LONG.read_bytes()
    lines = text.splitlines(keepends=True)
    live = root / "live.log"
    live.write_bytes(b"".join(lines[:100]))
    shutil.copy(DATA / "ppdet" / "ppyoloe_crn_s_coco_train.log", root / "done.log")
    want = reader.load(str(LONG)).count()
    with served(root, tmp_path / "site") as (port, _):
        rows = {r["name"]: r for r in _rows(port, None)}
        assert set(rows) == {"live.log", "done.log"} and not rows["live.log"]["live"]
        run_id = rows["live.log"]["id"]
        with open(live, "ab") as f:
            for k in range(100, len(lines), 50):      # the rest, as training writes it
                f.write(b"".join(lines[k:k + 50]))
                f.flush()
                until(lambda: _row(port, "live.log")["live"], "the run followed")

        def page_count():
            code, _, body = get(port, f"/runs/{run_id}/api/summary")
            return code == 200 and json.loads(body)["runs"][0]["train_records"] == want

        until(page_count, "its page has every record")
        until(lambda: _row(port, "live.log")["steps_text"] == "948/960", "its row's last step")
        code, _, page = get(port, f"/runs/{run_id}/")
        assert code == 200 and f'EventSource("/runs/{run_id}/api/events")'.encode() in page
        assert get(port, f"/runs/{run_id}.html")[1]["Location"] == f"/runs/{run_id}/"
        shutil.copy(DATA / "ppdet" / "rtdetr_r18vd_coco_train.log", root / "new.log")
        until(lambda: "new.log" in {r["name"] for r in _rows(port, None)}, "a new run shown")
        (root / "done.log").unlink()
        until(lambda: "done.log" not in {r["name"] for r in _rows(port, None)}, "a run gone")
        assert get(port, f"/runs/{rows['done.log']['id']}.html")[0] == 404


def _row(port: int, name: str) -> dict:
    return {r["name"]: r for r in _rows(port, None)}.get(name, {"live": False, "steps_text": ""})


def test_with_poll_a_run_being_written_is_followed_too(tmp_path):
    """--poll (NFS: no file events): the tree is walked every SECONDS; a run read again is
    followed from then on."""
    root = tmp_path / "runs"
    root.mkdir()
    lines = LONG.read_bytes().splitlines(keepends=True)
    (root / "live.log").write_bytes(b"".join(lines[:100]))
    with served(root, tmp_path / "site", "--poll", "0.2") as (port, _):
        assert not _row(port, "live.log")["live"]
        with open(root / "live.log", "ab") as f:
            f.write(b"".join(lines[100:200]))
        until(lambda: _row(port, "live.log")["live"], "the run followed")
        with open(root / "live.log", "ab") as f:
            f.write(b"".join(lines[200:]))
        until(lambda: _row(port, "live.log")["steps_text"] == "948/960", "its last step")
