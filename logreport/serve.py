"""The live page of `watch --serve`: a loopback HTTP server of four read-only paths.

GET /             the report page (the same HTML as the report file) plus a small script that
                  listens to /api/events and hands new report data to window.logreport.update
GET /api/summary  what `summary --json` prints for the log as read so far (status: live)
GET /api/report   the report data (the payload the page is drawn from)
GET /api/events   server-sent events: `report` with {"version": n} whenever new data is ready
GET /favicon.ico  empty (204), so that browsers log no error

Only the latest payloads are kept (memory is bounded whatever the clients do); anything else is
404/405, and no path of a request ever names a file: nothing is read from disk for a client.
Clients cannot lock others out: a request must arrive whole within REQUEST_DEADLINE seconds of
the server waiting for it (slow headers, an idle keep-alive) and its answer be taken within
REPLY_DEADLINE; event streams have their own slots (MAX_STREAMS), apart from the MAX_CLIENTS
of page loads. When a pool is full, or one client (address) holds its share of it
(PER_CLIENT, PER_CLIENT_STREAMS), the oldest connection that is only waiting for a request, or
the oldest stream, of the busiest client is closed to make room: a new page always loads.
"""
from __future__ import annotations

import ipaddress
import json
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .errors import UsageError
from .render import page_json, render_report

MAX_STREAMS = 16         # concurrent /api/events streams
PER_CLIENT_STREAMS = 8   # ... of one client address
MAX_CLIENTS = 64         # other concurrent connections (each holds a thread)
PER_CLIENT = 16          # ... of one client address
CLIENT_TIMEOUT = 20.0    # seconds one read or blocked write of a connection may take
REQUEST_DEADLINE = 10.0  # seconds for a whole request to arrive once the server waits for it
REPLY_DEADLINE = 60.0    # seconds for a client to take a whole answer (a page is ~1 MB)
HEARTBEAT = 15.0         # seconds between keep-alive comments on an idle event stream
ROUTES = ("/", "/api/summary", "/api/report", "/api/events", "/favicon.ico")


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1; IPv6 in brackets or not)."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

# Fetches new data on each event; without window.logreport.update, reloads (at most every 10 s).
LIVE_SCRIPT = """<script type="application/json" id="logreport-live">%(version)s</script>
<script>(function () {
  var version = JSON.parse(document.getElementById("logreport-live").textContent).version;
  var loaded = Date.now(), busy = false;
  var events = new EventSource("%(base)sapi/events");
  events.addEventListener("report", function (e) {
    var v = JSON.parse(e.data).version;
    if (v <= version || busy) return;
    var api = window.logreport;
    if (!api || typeof api.update !== "function") {
      if (Date.now() - loaded > 10000) location.reload();
      return;
    }
    busy = true;
    fetch("%(base)sapi/report").then(function (r) { return r.json(); }).then(function (data) {
      version = v; api.update(data);
    }).finally(function () { busy = false; });
  });
})();</script>
"""

WAITING = (b'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="2">'
           b"<title>logreport</title><p>Waiting for the first training records\xe2\x80\xa6")


class Published:
    """The latest payloads, replaced whole by the watch loop, read by the request threads."""

    def __init__(self, base: str = "/"):
        self.base = base             # where the page is served: its API is below it
        self.cond = threading.Condition()
        self.version = 0
        self.summary = b""
        self.data: dict | None = None
        self.report = b""
        self._html: tuple[int, bytes] = (0, b"")

    def set(self, version: int, summary_text: str, data: dict) -> None:
        report = json.dumps(data, ensure_ascii=False, allow_nan=False,
                            separators=(",", ":")).encode()
        with self.cond:
            self.version, self.summary = version, summary_text.encode()
            self.data, self.report = data, report
            self.cond.notify_all()

    def html(self) -> bytes:
        """The page of the latest data (rendered once per version)."""
        with self.cond:
            version, data, cached = self.version, self.data, self._html
        if cached[0] == version and cached[1]:
            return cached[1]
        page = render_report(data)
        script = LIVE_SCRIPT % {"version": page_json({"version": version}), "base": self.base}
        cut = page.rfind("</body>")
        page = page[:cut] + script + page[cut:] if cut >= 0 else page + script
        body = page.encode()
        with self.cond:
            self._html = (version, body)
        return body

    def wait_newer(self, version: int, timeout: float) -> int:
        with self.cond:
            self.cond.wait_for(lambda: self.version > version, timeout)
            return self.version


class Handler(BaseHTTPRequestHandler):
    server: LiveServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the quiet server logs nothing
        pass

    def setup(self):
        self.timeout = self.server.client_timeout     # socket timeout of this connection
        super().setup()

    def handle_one_request(self):
        self.server.mark(self.request, WAITING_FOR_REQUEST)      # each keep-alive request
        super().handle_one_request()

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        self.server.mark(self.request, REPLYING)
        return parsed

    def do_GET(self):
        if not self._host_ok():
            return self._send(403, b"forbidden host\n", "text/plain")
        pub = self.server.published
        path = self.path.split("?", 1)[0]
        if path not in ROUTES:                  # also //x, /../x, %2e%2e, absolute URLs
            return self._send(404, b"not found\n", "text/plain")
        if pub.data is None and path == "/":
            return self._send(200, WAITING, "text/html; charset=utf-8")
        if pub.data is None and path != "/api/events":
            return self._send(503, b"no data yet; retry\n", "text/plain")
        if path == "/":
            return self._send(200, pub.html(), "text/html; charset=utf-8")
        if path == "/api/summary":
            return self._send(200, pub.summary, "application/json")
        if path == "/api/report":
            return self._send(200, pub.report, "application/json")
        if path == "/api/events":
            return self._events()
        return self._send(204, b"", "image/x-icon")     # favicon: none, and no 404 in the console

    def do_HEAD(self):
        self._send(405, b"", "text/plain", {"Allow": "GET"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD

    def _host_ok(self) -> bool:
        """Refuse other Host names on a loopback server (DNS rebinding)."""
        if self.server.public:
            return True
        host = self.headers.get("Host") or ""
        name = host.partition("]")[0] + "]" if host.startswith("[") else host.split(":")[0]
        return is_loopback(name)

    def _send(self, code: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _events(self, pub: Published | None = None) -> None:
        """Server-sent events of `pub` (default: the server's payloads) until the client goes."""
        if not self.server.mark(self.request, STREAM):
            return self._send(503, b"too many live pages open\n", "text/plain")
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            pub, seen = pub or self.server.published, -1
            while not self.server.closing:
                version = pub.wait_newer(seen, HEARTBEAT)
                if version > seen:
                    self.wfile.write(b"event: report\ndata: {\"version\": %d}\n\n" % version)
                    seen = version
                else:
                    self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
        except OSError:
            pass                        # the page went away, or its slot was given to a new one
        finally:
            self.close_connection = True


WAITING_FOR_REQUEST, REPLYING, STREAM, CLOSING = "waiting", "replying", "stream", "closing"


@dataclass
class Connection:
    """What one client connection is doing, and since when."""

    sock: socket.socket
    client: str
    phase: str = WAITING_FOR_REQUEST
    since: float = 0.0

    def close(self) -> None:
        """Make its thread's blocked read or write fail now; the thread then ends."""
        self.phase = CLOSING
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class LiveServer(ThreadingHTTPServer):
    """Serves the latest published payloads from a background thread."""

    daemon_threads = True
    handler_class = Handler      # a subclass may serve more paths

    def __init__(self, host: str = "127.0.0.1", port: int = 8765,
                 client_timeout: float = CLIENT_TIMEOUT):
        self.published = Published()
        self.connections: dict[socket.socket, Connection] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.client_timeout = client_timeout
        self.public = not is_loopback(host)
        self.closing = False
        try:
            super().__init__((host, port), self.handler_class)
        except OSError as e:
            raise UsageError(f"cannot listen on {host}:{port}: {e.strerror}",
                             "choose another --port (or --port 0 for any free one)") from None
        self.thread = threading.Thread(target=self.serve_forever, name="logreport-serve",
                                       daemon=True)
        self.watchdog = threading.Thread(target=self._deadlines, name="logreport-deadlines",
                                         daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def warning(self) -> str | None:
        """What to tell the user when the page is reachable from other machines."""
        if not self.public:
            return None
        return (f"warning: the live page listens on {self.server_address[0] or 'every address'}"
                ", not loopback: anyone who can reach this port can read the run's data "
                "(there is no password) (hint: use --host 127.0.0.1 and an SSH tunnel)")

    def process_request(self, request, client_address):
        """A thread per connection, when there is room (see the module docstring)."""
        with self.lock:
            conn = Connection(request, client_address[0], since=time.monotonic())
            if not self._make_room(conn, stream=False):
                self.shutdown_request(request)
                return
            self.connections[request] = conn
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._forget(request)
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._forget(request)

    def mark(self, request, phase: str) -> bool:
        """The connection enters a phase (its deadline counts from now); False when it may not
        (no room for one more event stream)."""
        with self.lock:
            conn = self.connections.get(request)
            if conn is None or conn.phase == CLOSING:
                return False
            if phase == STREAM and not self._make_room(conn, stream=True):
                return False
            if phase != conn.phase:             # the first request's wait counts from accept
                conn.phase, conn.since = phase, time.monotonic()
            return True

    def _make_room(self, new: Connection, stream: bool) -> bool:
        """Room in a pool (streams, or the other connections) for `new`: when the pool or its
        client's share is full, the oldest connection that may go (a stream; else one waiting
        for a request) of the client with the most is closed. False when none may go."""
        total, share = (MAX_STREAMS, PER_CLIENT_STREAMS) if stream else (MAX_CLIENTS, PER_CLIENT)
        pool = [c for c in self.connections.values() if c is not new and c.phase != CLOSING
                and (c.phase == STREAM) == stream]
        mine = [c for c in pool if c.client == new.client]
        if len(mine) < share and len(pool) < total:
            return True
        if len(mine) < share:
            busiest = Counter(c.client for c in pool).most_common(1)[0][0]
            mine = [c for c in pool if c.client == busiest]
        idle = [c for c in mine if stream or c.phase == WAITING_FOR_REQUEST]
        if not idle:
            return False
        min(idle, key=lambda c: c.since).close()
        return True

    def _forget(self, request) -> None:
        with self.lock:
            self.connections.pop(request, None)

    def _deadlines(self) -> None:
        """Close every connection past the deadline of its phase, twice a second."""
        limits = {WAITING_FOR_REQUEST: REQUEST_DEADLINE, REPLYING: REPLY_DEADLINE}
        while not self.stopped.wait(0.5):
            now = time.monotonic()
            with self.lock:
                for conn in self.connections.values():
                    if conn.phase in limits and now - conn.since > limits[conn.phase]:
                        conn.close()

    def handle_error(self, request, client_address):
        """A client that went away or timed out is not an error of ours: nothing is printed."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def start(self) -> None:
        self.thread.start()
        self.watchdog.start()

    def publish(self, version: int, summary_text: str, data: dict) -> None:
        self.published.set(version, summary_text, data)

    def close(self) -> None:
        self.closing = True
        self.stopped.set()
        with self.published.cond:
            self.published.cond.notify_all()
        self.shutdown()
        self.server_close()
