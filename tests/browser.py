"""Headless Chromium driven over the DevTools protocol through a pipe (no extra packages).

    with Browser() as b:
        page = b.open("file:///tmp/report.html")
        page.wait_for("document.documentElement.dataset.drawn === '1'")
        page.eval("document.querySelectorAll('.main-svg').length")
        page.errors, page.requests, page.screenshot("shot.png")

Chromium reads commands (JSON, NUL-terminated) on fd 3 and answers on fd 4
(`--remote-debugging-pipe`). Console errors, uncaught exceptions and every network request
that is not file:, data: or blob: are collected.

    with watch_served(log, report) as url:      # `logreport watch LOG --serve` for the page
        page = b.open(url)
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe"]
LOCAL = ("file:", "data:", "blob:", "about:", "chrome-error:")


def available() -> bool:
    return os.path.exists(CHROMIUM) or shutil.which("chromium") is not None


class Browser:
    def __init__(self, timeout: float = 60.0, width: int = 1280, height: int = 900):
        self.timeout = timeout
        self.size = (width, height)
        self.profile = tempfile.mkdtemp(prefix="logreport-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # the child sees our pipe ends as its fds 3 (reads commands) and 4 (writes answers)
        self.proc = subprocess.Popen(
            [CHROMIUM if os.path.exists(CHROMIUM) else "chromium", *FLAGS,
             f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=_dup_to(to_child_r, from_child_w))
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    # --- protocol ------------------------------------------------------------------------
    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def pump(self, seconds: float) -> None:
        """Collect events for a while (a harmless command round-trip keeps reading)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.send("Browser.getVersion")
            time.sleep(0.05)

    def open(self, url: str) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"]
        page = Page(self, session)
        for domain in ("Runtime", "Log", "Network", "Page"):
            page.send(f"{domain}.enable")
        page.send("Emulation.setDeviceMetricsOverride", {"width": self.size[0],
                  "height": self.size[1], "deviceScaleFactor": 1, "mobile": False})
        page.send("Page.navigate", {"url": url})
        return page


class Page:
    def __init__(self, browser: Browser, session: str):
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def eval(self, expression: str, await_promise: bool = False):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": await_promise})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0):
        """Poll a JS expression until it is truthy; returns its value."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                value = self.eval(expression)
            except RuntimeError:
                value = None
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(f"never true: {expression}")

    def _mine(self):
        return [e for e in self.browser.events if e.get("sessionId") == self.session]

    @property
    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error-level log entries."""
        out = []
        for e in self._mine():
            p = e.get("params", {})
            if e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error",
                                                                                  "assert"):
                out.append(" ".join(str(a.get("value", a.get("description", "")))
                                    for a in p.get("args", [])))
            elif e.get("method") == "Runtime.exceptionThrown":
                details = p.get("exceptionDetails", {})
                out.append(details.get("exception", {}).get("description") or details.get("text"))
            elif e.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(p["entry"].get("text", ""))
        return out

    @property
    def requests(self) -> list[str]:
        """URLs the page requested that are not local (file:, data:, blob:)."""
        return [e["params"]["request"]["url"] for e in self._mine()
                if e.get("method") == "Network.requestWillBeSent"
                and not e["params"]["request"]["url"].startswith(LOCAL)]

    def screenshot(self, path: str, full_page: bool = True) -> None:
        params: dict = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            height = self.eval("document.documentElement.scrollHeight")
            width = self.browser.size[0]
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        data = self.send("Page.captureScreenshot", params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))


@contextlib.contextmanager
def watch_served(log: Path, report: Path, timeout: float = 30.0):
    """`python -m logreport watch LOG --serve --port 0 --no-tui` while the block runs; yields the
    page's URL once /api/summary answers (503 until the first records). Ended by SIGINT."""
    proc = subprocess.Popen([sys.executable, "-m", "logreport", "watch", str(log), "--serve",
                             "--port", "0", "--no-tui", "-o", str(report)],
                            cwd=Path(__file__).parents[1], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        url = re.search(r"(http://\S+)", proc.stderr.readline().decode()).group(1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(url + "api/summary", timeout=5).close()
                break
            except urllib.error.HTTPError as e:
                e.close()
                if time.monotonic() > deadline:
                    raise TimeoutError("watch --serve published nothing") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.send_signal(2)
        proc.communicate(timeout=30)


def _dup_to(read_fd: int, write_fd: int):
    """In the child: put the pipe ends on fds 3 and 4 (via high fds, so neither clobbers)."""
    def setup():
        high_r = fcntl.fcntl(read_fd, fcntl.F_DUPFD, 10)
        high_w = fcntl.fcntl(write_fd, fcntl.F_DUPFD, 10)
        os.dup2(high_r, 3)
        os.dup2(high_w, 4)
    return setup
