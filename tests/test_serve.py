"""`watch --serve` safety, on real sockets of 127.0.0.1: only its routes, no file ever read for a
client, loopback unless told otherwise (with a warning), slow clients bounded."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from conftest import DATA, until

from logreport import serve
from logreport.analysis import summary_json
from logreport.reader import load
from logreport.report import build
from logreport.serve import LiveServer, is_loopback

ROOT = Path(__file__).resolve().parent.parent
LOG = DATA / "ppdet" / "picodet_s_320_coco_long80e.log"
PACKAGE = str(ROOT / "logreport")

OPENED: list | None = None          # the audit hook records file opens while this is a list


def _audit(event, args):
    if OPENED is not None and event in ("open", "os.listdir", "os.scandir"):
        OPENED.append(str(args[0]) if args else "")


sys.addaudithook(_audit)


@pytest.fixture(scope="module")
def payload():
    data = build([load(str(LOG))], live=True)
    return data, summary_json([data["runs"][0]["summary"]]) + "\n"


@pytest.fixture
def server(payload):
    servers = []

    def start(**kw):
        s = LiveServer("127.0.0.1", 0, **kw)
        s.start()
        s.publish(1, payload[1], payload[0])
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def raw(server, request: bytes, timeout: float = 5) -> bytes:
    """Send bytes as they are; the whole answer (the server closes: Connection: close)."""
    with socket.create_connection(server.server_address[:2], timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def get(server, target: str, host: str = "127.0.0.1") -> tuple[int, bytes]:
    answer = raw(server, f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                 .encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


TRAVERSALS = ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd", "/etc/passwd",
              "/..%2f..%2fetc%2fpasswd", "/api/../../etc/passwd", "/api/summary/../../x",
              "/api/summary/", "/./api/summary", "/index.html", "/logreport/serve.py",
              "/assets/plotly.min.js", "/api", "*", "../etc/passwd",
              "http://127.0.0.1/etc/passwd", "http://127.0.0.1/api/summary",
              "file:///etc/passwd", "/%00", "/\\..\\..\\etc\\passwd"]


def test_only_its_routes_and_no_file_is_read_for_a_client(server, payload):
    global OPENED
    s = server()
    get(s, "/")                         # the page renders once (package templates and assets)
    OPENED = []
    try:
        for target in TRAVERSALS:
            code, body = get(s, target)
            assert code == 404 and body == b"not found\n", target
        assert get(s, "/api/summary") == (200, payload[1].encode())
        assert json.loads(get(s, "/api/report?x=1")[1]) == json.loads(
            json.dumps(payload[0], allow_nan=False))
        assert get(s, "/favicon.ico") == (204, b"")
        assert OPENED == [], OPENED     # not one file opened or listed to answer a client
        OPENED = []
        s.publish(2, payload[1], payload[0])
        code, page = get(s, "/")
        assert code == 200 and b"/api/events" in page
        assert all(path.startswith(PACKAGE) for path in OPENED), OPENED
    finally:
        OPENED = None
    head = raw(s, b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 405") or head.startswith(b"HTTP/1.1 405")
    assert b"Allow: GET" in head
    assert get(s, "/api/summary", host="evil.example:80")[0] == 403     # DNS rebinding
    assert get(s, "/api/summary", host="127.0.0.2")[0] == 200


def test_loopback_by_default_and_a_warning_otherwise():
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.8.0.1", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "", "::", "192.168.1.5", "example.com", "10.0.0.1"):
        assert not is_loopback(host), host
    local = LiveServer(port=0)
    try:
        assert local.server_address[0] == "127.0.0.1" and local.warning is None
    finally:
        local.server_close()
    public = LiveServer("0.0.0.0", 0)
    try:
        assert "not loopback" in public.warning and "--host 127.0.0.1" in public.warning
    finally:
        public.server_close()


@pytest.mark.parametrize("host,warned", [(None, False), ("0.0.0.0", True)])
def test_watch_serve_warns_on_stderr_when_not_loopback(tmp_path, host, warned):
    log = tmp_path / "run.log"
    log.write_bytes(LOG.read_bytes())
    cmd = [sys.executable, "-m", "logreport", "watch", str(log), "--serve", "--port", "0",
           "--no-tui", "-o", str(tmp_path / "r.html")] + (["--host", host] if host else [])
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        first = proc.stderr.readline()
        assert first.startswith("live page: http://" + (host or "127.0.0.1") + ":"), first
        if warned:
            second = proc.stderr.readline()
            assert second.startswith("logreport: warning: the live page listens on 0.0.0.0")
            assert "(hint: use --host 127.0.0.1" in second
        port = int(first.rsplit(":", 1)[1].strip(" /\n"))
        for _ in range(500):                    # Ctrl-C once the loop runs (it has published)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"GET /api/summary HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Connection: close\r\n\r\n")
                if sock.recv(12) == b"HTTP/1.1 200":
                    break
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "warning" not in err and "Traceback" not in err


def free_slots(s) -> int:
    """How many more connections the server would take now (no connection may be arriving)."""
    taken = 0
    while taken < serve.MAX_CLIENTS and s.clients.acquire(blocking=False):
        taken += 1
    for _ in range(taken):
        s.clients.release()
    return taken


def test_a_client_that_never_sends_a_request_is_dropped(server):
    s = server(client_timeout=0.3)
    with socket.create_connection(s.server_address[:2], timeout=10) as sock:
        assert sock.recv(1024) == b""           # closed by the server, not by our timeout
    until(lambda: free_slots(s) == serve.MAX_CLIENTS, "its thread ends and frees its slot")


def test_connections_beyond_the_limit_are_closed_at_once(server, monkeypatch):
    """The server accepts in order: the three silent connections hold the slots (far longer
    than the test takes) when the fourth comes."""
    monkeypatch.setattr(serve, "MAX_CLIENTS", 3)
    s = server(client_timeout=600)
    silent = [socket.create_connection(s.server_address[:2]) for _ in range(3)]
    try:
        assert raw(s, b"GET /api/summary HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") == b""
    finally:
        for sock in silent:
            sock.close()
    until(lambda: raw(s, b"GET /favicon.ico HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Connection: close\r\n\r\n"), "the slots come back once those are gone")


def open_stream(s) -> socket.socket:
    sock = socket.create_connection(s.server_address[:2], timeout=5)
    sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return sock


def test_event_streams_are_bounded(server, monkeypatch):
    monkeypatch.setattr(serve, "MAX_STREAMS", 2)
    s = server()
    streams = [open_stream(s) for _ in range(2)]
    for sock in streams:
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    code, body = get(s, "/api/events")
    assert code == 503 and b"too many" in body
    streams.pop().close()
    for version in range(2, 300):               # the closed stream's thread notices on a write
        s.publish(version, "{}", {"runs": []})
        code, _ = get(s, "/favicon.ico")
        sock = open_stream(s)
        if sock.recv(4096).startswith(b"HTTP/1.1 200"):
            sock.close()
            break
        sock.close()
        time.sleep(0.01)
    else:
        pytest.fail("a closed stream kept its slot")
    for sock in streams:
        sock.close()


@pytest.mark.timeout(120)      # builds 12 runs' page and publishes it 200 times
def test_a_reader_that_stops_reading_keeps_memory_bounded(server):
    """Only the latest payload is kept: publishing 200 versions to a stream that reads nothing
    costs about one payload, not 200."""
    runs = [load(str(path)) for path in sorted((DATA / "ppdet").glob("*.log"))[:12]]
    data = build(runs, live=True)
    text = summary_json([run["summary"] for run in data["runs"]])
    s = server()
    sock = open_stream(s)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    assert sock.recv(200).startswith(b"HTTP/1.1 200")        # then it reads no more
    s.publish(2, text, data)
    size = len(s.published.report)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for version in range(3, 203):
            s.publish(version, text, data)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert size > 50_000
    assert peak < 12 * size, (peak, size)      # encoding one costs ~9x; all 200 would be 200x
    assert s.published.version == 202
    sock.settimeout(5)
    seen = b""
    while b'{"version": 202}' not in seen:      # the stream reaches the latest version
        chunk = sock.recv(65536)
        assert chunk
        seen += chunk
    sock.close()
    assert threading.active_count() < 100
