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


def test_a_client_that_never_sends_a_request_is_dropped(server):
    s = server(client_timeout=0.3)
    with socket.create_connection(s.server_address[:2], timeout=10) as sock:
        assert sock.recv(1024) == b""           # closed by the server, not by our timeout
    until(lambda: not s.connections, "its thread has ended: nothing is held")


def test_a_new_connection_takes_the_place_of_the_oldest_idle_one(server, monkeypatch):
    """At MAX_CLIENTS, a connection that only waits for a request makes room for a new one:
    a page always loads (before: the new one was closed at once)."""
    monkeypatch.setattr(serve, "MAX_CLIENTS", 3)
    s = server()
    silent = [socket.create_connection(s.server_address[:2], timeout=5) for _ in range(3)]
    until(lambda: len(s.connections) == 3, "3 connections held")
    try:
        assert get(s, "/api/summary")[0] == 200
        assert silent[0].recv(1024) == b""      # the oldest idle one was closed for it
        live = [c for c in list(s.connections.values()) if c.phase != serve.CLOSING]
        assert len(live) <= 3               # a closed one stays listed until its thread ends
        until(lambda: len(s.connections) <= 3, "the closed one's thread has ended")
    finally:
        for sock in silent:
            sock.close()


def open_stream(s) -> socket.socket:
    sock = socket.create_connection(s.server_address[:2], timeout=5)
    sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return sock


def streams(s) -> int:
    return sum(c.phase == serve.STREAM for c in list(s.connections.values()))


def test_event_streams_are_bounded_and_the_newest_page_gets_one(server, monkeypatch):
    monkeypatch.setattr(serve, "MAX_STREAMS", 2)
    s = server()
    opened = []
    try:
        for _ in range(3):      # one after another: each is a stream before the next one asks
            opened.append(open_stream(s))
            assert opened[-1].recv(4096).startswith(b"HTTP/1.1 200")
        assert streams(s) <= 2
        while chunk := opened[0].recv(4096):        # the oldest stream is ended for the newest
            assert chunk.startswith((b"event: ", b": keep-alive"))
    finally:
        for sock in opened:
            sock.close()


def connect(s, source: str = "127.0.0.1") -> socket.socket:
    """A connection from a loopback address of our choice: 127.0.0.2 is another client."""
    return socket.create_connection(s.server_address[:2], timeout=5,
                                    source_address=(source, 0))


def test_slow_headers_are_cut_at_the_deadline_and_never_lock_out_a_page(server, monkeypatch):
    """Slowloris: clients that send a header byte now and then, each within the socket
    timeout, lose their connection at REQUEST_DEADLINE; meanwhile pages load (before: 64 of
    them locked every other client out for as long as they went on)."""
    monkeypatch.setattr(serve, "REQUEST_DEADLINE", 1.0)
    s = server()
    slow = [connect(s) for _ in range(serve.MAX_CLIENTS + 8)]
    for sock in slow:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    stop = threading.Event()

    def trickle():
        while not stop.wait(0.2):
            for sock in slow:
                try:
                    sock.sendall(b"a")
                except OSError:
                    pass

    dripper = threading.Thread(target=trickle, daemon=True)
    dripper.start()
    try:
        for _ in range(5):
            assert get(s, "/api/summary")[0] == 200
        for sock in slow:                           # each one ends, though it kept sending
            sock.settimeout(10)
            try:
                assert sock.recv(1024) == b""
            except ConnectionResetError:
                pass
    finally:
        stop.set()
        dripper.join(5)
        for sock in slow:
            sock.close()


def test_one_client_only_ever_evicts_itself(server, monkeypatch):
    """Per-client share: a client over PER_CLIENT idle connections loses its own oldest; when
    the pool is full, the client holding the most gives way, not a quiet one."""
    monkeypatch.setattr(serve, "PER_CLIENT", 3)
    monkeypatch.setattr(serve, "MAX_CLIENTS", 4)
    s = server()
    quiet = connect(s, "127.0.0.3")
    until(lambda: len(s.connections) == 1, "the quiet client is in")
    flood = [connect(s, "127.0.0.2") for _ in range(6)]
    try:
        until(lambda: sum(c.client == "127.0.0.2" for c in list(s.connections.values())
                               if c.phase != serve.CLOSING) == 3, "the flood keeps its share")
        assert [c.client for c in list(s.connections.values())].count("127.0.0.3") == 1
        request = b"GET /api/summary HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        quiet.sendall(request)
        assert quiet.recv(12) == b"HTTP/1.1 200"
        other = connect(s, "127.0.0.4")            # the pool is full: the flood gives way
        other.sendall(request)
        assert other.recv(12) == b"HTTP/1.1 200"
        other.close()
    finally:
        quiet.close()
        for sock in flood:
            sock.close()


def test_event_streams_never_starve_page_loads(server):
    """Streams have their own slots: a full stream pool leaves every page slot free, and a
    page's stream still opens (the busiest client's oldest gives way; before: 503)."""
    s = server()
    flood = [open_stream(s) for _ in range(serve.MAX_STREAMS + 4)]
    try:
        for sock in flood:
            assert sock.recv(12) == b"HTTP/1.1 200"
        until(lambda: streams(s) <= serve.MAX_STREAMS, "streams bounded")
        assert get(s, "/")[0] == 200
        page = connect(s, "127.0.0.2")
        page.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert page.recv(12) == b"HTTP/1.1 200"
        page.close()
    finally:
        for sock in flood:
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
