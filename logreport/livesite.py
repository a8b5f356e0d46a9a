"""`logreport serve ROOT`: the index of a tree of runs, live.

The site is brought up to date as `logreport index` does (`index.Indexer`), then kept so:
a run whose files change is followed as `watch` follows a log (`watch.Watch`: its row and its
page update as lines come), until it has been quiet for QUIET seconds or it ended; then it is
read into the catalog again (from where its last read stopped). The tree is walked again
every RESCAN seconds, and soon after a file event names a path of no known run: new runs
appear, deleted ones go.

Paths served (GET only; nothing else is read from disk than the site's own files, found by
run id, never by a path from the request):

    /                         the index page, live          /api/runs    its rows (JSON)
    /api/events               server-sent events: `report` with {"version": n} on new rows
    /assets/plotly.min.js     the site's plotly.js
    /runs/<id>.html           a run's report (a run being followed: redirected to its live page)
    /runs/<id>.data.js        what "compare" draws of it
    /runs/<id>/               the live page of a followed run, with api/summary, api/report
                              and api/events below it, as `watch --serve` serves them

Access: loopback by default. Any other address needs a token (`--token`, LOGREPORT_TOKEN, or
a random one printed as a URL with ?token=), checked on every request, kept in a cookie after
the first visit; the Host header must be a name of this server (no DNS rebinding); no CORS
headers are sent.
"""
from __future__ import annotations

import hmac
import logging
import os
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlsplit

from . import catalog, site
from .analysis import summary_json
from .errors import LogreportError
from .index import Entry, Indexer, input_files
from .serve import Handler, LiveServer, Published, is_loopback
from .watch import Options, Watch

QUIET = 120.0            # seconds without a new line after which a followed run is put back
RESCAN = 30.0            # seconds between two walks of the tree
SOON = 0.5               # seconds after an event on an unknown path before the tree is walked
WALK_GAP = 5.0           # seconds between two walks, at least (a checkpoint being written
                         # sends a stream of events on paths of no run)
INDEX_GAP = 0.5          # seconds between two publications of the index rows, at least
TICK = 1.0               # longest sleep
MAX_FOLLOWED = 64        # runs followed at once; more changed runs wait for the next walk
RUN_PATH = re.compile(r"/runs/([0-9a-f]{16})(\.html|\.data\.js|/|/api/summary|/api/report|"
                      r"/api/events)")


class Access:
    """Who may read: the Host names this server answers to and, off loopback, the token."""

    def __init__(self, host: str, token: str | None, allow_hosts=()):
        self.loopback = is_loopback(host)
        self.token = token if token else (None if self.loopback else secrets.token_urlsafe(24))
        names = {host, socket.gethostname(), socket.getfqdn(), *allow_hosts}
        self.hosts = {n.lower() for n in names if n and n not in ("0.0.0.0", "::")}

    def host_ok(self, header: str, local_address: str) -> bool:
        """A loopback name, a name of this machine, --allow-host, or the address the client
        connected to (a DNS rebinding page names its own domain, never these)."""
        name = header.partition("]")[0].lstrip("[") if header.startswith("[") \
            else header.rsplit(":", 1)[0] if header.count(":") == 1 else header
        name = name.lower()
        return bool(name) and (is_loopback(name) or name in self.hosts
                               or name == local_address.lower())

    def token_of(self, query: str, cookie_header: str, port: int) -> str | None:
        """The token the request carries: ?token=, else the cookie."""
        given = parse_qs(query).get("token")
        if given:
            return given[0]
        try:
            jar = SimpleCookie(cookie_header or "")
        except CookieError:
            return None
        morsel = jar.get(self.cookie_name(port))
        return morsel.value if morsel else None

    def token_ok(self, given: str | None) -> bool:
        return self.token is None or (given is not None
                                      and hmac.compare_digest(given.encode(), self.token.encode()))

    @staticmethod
    def cookie_name(port: int) -> str:
        return f"logreport-token-{port}"


class SiteHandler(Handler):
    """The paths of the module docstring, behind the Host and token checks."""

    server: SiteServer

    def do_GET(self):
        access, port = self.server.access, self.server.server_address[1]
        if not access.host_ok(self.headers.get("Host") or "", self.connection.getsockname()[0]):
            return self._send(421, b"this server does not answer to that Host name\n",
                              "text/plain")
        url = urlsplit(self.path)
        given = access.token_of(url.query, self.headers.get("Cookie"), port)
        if not access.token_ok(given):
            code = 401 if given is None else 403
            return self._send(code, b"a token is needed: open the URL `logreport serve` printed "
                              b"(with ?token=...)\n", "text/plain")
        extra = {}
        if access.token is not None and parse_qs(url.query).get("token"):
            extra["Set-Cookie"] = (f"{access.cookie_name(port)}={access.token}; Path=/; "
                                   "HttpOnly; SameSite=Strict")
        self.extra = extra
        self._route(url.path)

    def end_headers(self):
        for key, value in getattr(self, "extra", {}).items():    # the cookie, on every answer
            self.send_header(key, value)
        self.extra = {}
        super().end_headers()

    def _route(self, path: str):
        live = self.server.live
        if path == "/":
            return self._send(200, live.index_html(), "text/html; charset=utf-8")
        if path == "/api/runs":
            return self._send(200, live.index.report or b'{"rows":[]}', "application/json")
        if path == "/api/events":
            return self._events(live.index)
        if path == "/" + site.PLOTLY:
            return self._file(os.path.join(live.site, site.PLOTLY), "text/javascript")
        if path == "/favicon.ico":
            return self._send(204, b"", "image/x-icon")
        match = RUN_PATH.fullmatch(path)
        if match is None or match.group(1) not in live.known:
            return self._send(404, b"not found\n", "text/plain")
        run_id, what = match.groups()
        followed = live.followed.get(run_id)
        if what == ".html":
            if followed is not None:
                return self._send(302, b"", "text/plain", {"Location": f"/runs/{run_id}/"})
            return self._file(site.page_path(live.site, run_id), "text/html; charset=utf-8")
        if what == ".data.js":
            if followed is not None and followed.data_js:
                return self._send(200, followed.data_js, "text/javascript")
            return self._file(site.data_path(live.site, run_id), "text/javascript")
        if followed is None:
            return self._send(302, b"", "text/plain", {"Location": f"/runs/{run_id}.html"})
        pub = followed.pub
        if pub.data is None:
            return self._send(503, b"no data yet; retry\n", "text/plain")
        if what == "/":
            return self._send(200, pub.html(), "text/html; charset=utf-8")
        if what == "/api/summary":
            return self._send(200, pub.summary, "application/json")
        if what == "/api/report":
            return self._send(200, pub.report, "application/json")
        return self._events(pub)

    def _file(self, path: str, ctype: str) -> None:
        try:
            with open(path, "rb") as f:
                body = f.read()
        except OSError:
            return self._send(404, b"not found (being written?)\n", "text/plain")
        return self._send(200, body, ctype)


class SiteServer(LiveServer):
    handler_class = SiteHandler

    def __init__(self, live: LiveSite, access: Access, host: str, port: int):
        self.live, self.access = live, access
        super().__init__(host, port)

    def urls(self) -> list[str]:
        """Where to open the index (with the token when there is one)."""
        host, port = self.server_address[:2]
        names = [host] if host not in ("0.0.0.0", "::") else [socket.gethostname(), "127.0.0.1"]
        query = f"?token={self.access.token}" if self.access.token else ""
        return [f"http://{n}:{port}/{query}" for n in names]


@dataclass
class Followed:
    """A run followed live: its Watch, its page's payloads, its compare data."""

    entry: Entry
    watch: Watch
    pub: Published
    data_js: bytes = b""
    version: int = 0


class LiveSite:
    """The loop of `logreport serve` (see the module docstring); the server only reads the
    payloads it publishes."""

    def __init__(self, indexer: Indexer, poll: float | None = None):
        self.indexer = indexer
        self.site = indexer.site
        self.poll = poll
        self.index = Published()             # the index rows (report: the /api/runs JSON)
        self.views: dict[str, dict] = {}     # id -> row of a run in the catalog
        self.known: set[str] = set()         # ids the server may name
        self.followed: dict[str, Followed] = {}
        self.paths: dict[str, str] = {}      # a file of a run (or its folder) -> its id
        self.entries: dict[str, Entry] = {}
        self.changed_paths: set[str] = set()
        self.reload = True                   # views to read from the catalog again
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.version = 0
        self.dirty = False
        self.next_walk = 0.0
        self.walked = -WALK_GAP              # when the last walk began
        self.next_index = 0.0
        self._html: tuple[int, bytes] = (-1, b"")

    # --- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        """Until `stop`: walk (first of all), follow, publish. File events are watched from
        before the first walk: a line written meanwhile is not missed."""
        observer = self._observe()
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                for path in self._take_paths():
                    self._changed(path)
                if now >= self.next_walk:
                    self.walk()
                self._step()
                if self.dirty and now >= self.next_index:
                    self.publish_index()
                self.wake.wait(max(0.0, self._due() - time.monotonic()))
                self.wake.clear()
        finally:
            if observer is not None:
                observer.stop()
                observer.join(2)
            for followed in list(self.followed.values()):
                _close(followed.watch)

    def _due(self) -> float:
        """When the loop has something to do without a file event: a walk, a publication."""
        due = min(time.monotonic() + TICK, self.next_walk)
        if self.dirty:
            due = min(due, self.next_index)
        for followed in self.followed.values():
            if followed.watch.dirty:
                due = min(due, followed.watch.next_publish)
        return due

    def walk(self) -> None:
        """Bring the catalog up to date (runs not followed). At the first walk, the runs that
        are running are followed; with --poll (no file events), so are runs read again."""
        first = not self.entries
        self.walked = time.monotonic()
        result = self.indexer.update(skip=set(self.followed))
        entries = {e.id: e for e in self.indexer.entries}
        self.paths = {p: e.id for e in entries.values() for p in _watched_paths(e)}
        for run_id in [i for i in self.followed if i not in entries]:     # deleted
            _close(self.followed.pop(run_id).watch)
        changed = bool(result.changed) or self.reload or first
        if result.changed or self.reload:
            with catalog.opened(self.site, read_only=True) as con:
                views = {v["id"]: v for v in catalog.views(con)}
            with self.lock:
                self.views = dict(views, **{i: self.views[i] for i in self.followed
                                            if i in self.views})
            self.reload = False
        self.known = set(entries)
        if first:
            wanted = [i for i, v in self.views.items() if v["status"] == "running"]
        else:
            wanted = [i for i in result.changed if i in self.entries] if self.poll else []
        for run_id in wanted:
            if run_id in entries:
                self.follow(entries[run_id])
        self.entries = entries
        self.dirty = self.dirty or changed
        self.next_walk = time.monotonic() + (self.poll or RESCAN)

    def follow(self, entry: Entry) -> None:
        """Follow a run as `watch` does: its row and page from the Watch from now on."""
        if entry.id in self.followed or len(self.followed) >= MAX_FOLLOWED:
            return
        options = Options(poll=TICK, output=site.page_path(self.site, entry.id),
                          title=entry.name, lang=self.indexer.lang)
        watch = Watch(entry.source.name, options)
        watch.start()
        self.followed[entry.id] = Followed(entry, watch, Published(f"/runs/{entry.id}/"))
        self.wake.set()

    def _step(self) -> None:
        for run_id, followed in list(self.followed.items()):
            watch = followed.watch
            try:
                watch.step()
                if watch.dirty and time.monotonic() >= watch.next_publish:
                    watch.publish()
                    self._published(followed)
            except LogreportError:
                pass                       # a log that went unreadable: put back below
            quiet = time.time() - watch.last_line
            ended = watch.summary is not None and watch.summary["status"] in ("finished", "failed")
            if quiet >= QUIET or (ended and quiet >= watch.opt.done_grace) \
                    or (watch.summary is None and quiet >= QUIET):
                self._put_back(run_id)

    def _published(self, followed: Followed) -> None:
        """A followed run's new figures: to its page and to its row of the index."""
        watch, entry = followed.watch, followed.entry
        followed.version += 1
        followed.pub.set(followed.version, summary_json([watch.summary]) + "\n", watch.data)
        followed.data_js = site.run_data_js(entry.id, entry.name, watch.run, watch.summary).encode()
        view = site.row_view(entry.id, entry.name, watch.run, watch.summary, live=True)
        with self.lock:
            self.views[entry.id] = view
        self.dirty = True

    def _put_back(self, run_id: str) -> None:
        """A followed run gone quiet or ended: read into the catalog again."""
        _close(self.followed.pop(run_id).watch)
        self.reload = self.dirty = True       # its live row stays until the walk reads it
        self.next_walk = min(self.next_walk, self.walked + WALK_GAP)   # the walk reads it

    # --- file events ------------------------------------------------------------------------
    def _observe(self):
        """watchdog on the roots (recursive): changed paths wake the loop; None with --poll."""
        if self.poll is not None:
            return None
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        logging.getLogger("watchdog").addHandler(logging.NullHandler())
        live = self

        class Changes(FileSystemEventHandler):
            def on_any_event(self, event):
                if event.event_type in ("opened", "closed_no_write"):
                    return
                with live.lock:
                    live.changed_paths.add(os.path.abspath(event.src_path))
                live.wake.set()

        observer = Observer()
        for root in self.indexer.roots:
            if os.path.isdir(root):
                observer.schedule(Changes(), root, recursive=True)
        observer.daemon = True
        observer.start()
        return observer

    def _take_paths(self) -> list[str]:
        with self.lock:
            paths, self.changed_paths = self.changed_paths, set()
        return sorted(paths)

    def _changed(self, path: str) -> None:
        """A path changed: follow its run, or walk soon (a new run, or one gone)."""
        if path.startswith(os.path.abspath(self.site) + os.sep):
            return
        run_id = self.paths.get(path) or self.paths.get(os.path.dirname(path))
        if run_id is not None and run_id in self.entries:
            if run_id not in self.followed:
                self.follow(self.entries[run_id])
            return
        self.next_walk = min(self.next_walk, max(time.monotonic() + SOON,
                                                 self.walked + WALK_GAP))

    # --- the index --------------------------------------------------------------------------
    def publish_index(self) -> None:
        with self.lock:
            rows = sorted(self.views.values(), key=lambda v: v["name"])
        rows = [dict(r, live=r["id"] in self.followed) for r in rows]
        self.version += 1
        self.index.set(self.version, "", {"version": self.version, "rows": rows})
        self.dirty = False
        self.next_index = time.monotonic() + INDEX_GAP

    def index_html(self) -> bytes:
        """The live index page of the latest rows (rendered once per version)."""
        with self.index.cond:
            version, data = self.index.version, self.index.data or {"rows": []}
        cached = self._html
        if cached[0] == version:
            return cached[1]
        page = site.render_index(data["rows"], self.indexer.lang, live=True,
                                 live_version=version).encode()
        self._html = (version, page)
        return page


def _close(watch: Watch) -> None:
    """Stop following a run (its file closed); what it read goes to the catalog by a walk."""
    watch.reader.close()


def _watched_paths(entry: Entry) -> list[str]:
    """The files of a run, and the folder of a run that is a folder (a file added there)."""
    paths = [os.path.abspath(p) for p in input_files(entry.source)]
    if entry.source.folder:
        paths.append(os.path.abspath(entry.source.name))
    return paths


def serve(roots: list[str], site_dir: str, host: str, port: int, token: str | None,
          allow_hosts=(), include=(), exclude=(), jobs: int | None = None, lang: str = "en",
          poll: float | None = None, ready=None) -> None:
    """Index the roots into site_dir, then serve it live until interrupted (Ctrl-C, SIGTERM).
    ready(server), if given, is called once the server listens (the first index comes next:
    the page fills in as it is done)."""
    indexer = Indexer(roots, site_dir, include, exclude, jobs, lang)
    live = LiveSite(indexer, poll)
    server = SiteServer(live, Access(host, token, allow_hosts), host, port)
    try:
        server.start()
        if ready:
            ready(server)
        live.run()
    finally:
        live.stop.set()
        server.close()
