"""HTML rendering: the jinja2 environment (autoescaped), the plotly.js asset, atomic writes."""
from __future__ import annotations

import base64
import contextlib
import glob
import gzip
import hashlib
import io
import json
import os
import re
import tempfile
from functools import lru_cache
from pathlib import Path

import jinja2

from .errors import OutputError, UsageError

_HERE = Path(__file__).resolve().parent


def templates_dir() -> Path:
    """Templates ship inside the wheel as logreport/templates; a checkout has them at the top."""
    for candidate in (_HERE / "templates", _HERE.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise OutputError("templates are missing from the installation", "reinstall logreport")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.policies["json.dumps_function"] = _dumps
    return env


def _dumps(obj, **kwargs) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


ASSETS = _HERE / "assets"
PLOTLY_GZ = ASSETS / "plotly-basic.min.js.gz"
PLOTLY_MODES = ("inline", "cdn", "shared")
SHARED_PLOTLY = "assets/plotly.min.js"      # a site's one copy (mode "shared"), from its root


@lru_cache(maxsize=1)
def plotly_gz() -> bytes:
    """The vendored plotly.js basic bundle, gzipped (see assets/README.md)."""
    try:
        return PLOTLY_GZ.read_bytes()
    except OSError:
        raise OutputError("plotly.js is missing from the installation",
                          "reinstall logreport, or use --plotlyjs cdn") from None


def plotly_version() -> str:
    """The version in the vendored bundle's banner ("plotly.js (basic - minified) vX.Y.Z")."""
    with gzip.open(io.BytesIO(plotly_gz())) as f:
        head = f.read(200).decode("ascii", "replace")
    match = re.search(r"plotly\.js \(basic - minified\) v(\d+\.\d+\.\d+)", head)
    return match.group(1) if match else ""


def plotly_cdn_url() -> str:
    return ("https://cdn.jsdelivr.net/npm/plotly.js-basic-dist-min@"
            f"{plotly_version()}/plotly-basic.min.js")


@lru_cache(maxsize=1)
def plotly_sri() -> str:
    """Subresource integrity of the CDN file: the same bytes as the vendored one."""
    digest = hashlib.sha384(gzip.decompress(plotly_gz())).digest()
    return "sha384-" + base64.b64encode(digest).decode("ascii")


def write_shared_plotly(site: str) -> str:
    """The site's one copy of plotly.js (SHARED_PLOTLY under `site`), written when it is
    missing or differs; pages of mode "shared" load it by a relative URL."""
    path = os.path.join(site, SHARED_PLOTLY)
    code = gzip.decompress(plotly_gz())
    try:
        if os.path.getsize(path) == len(code) and Path(path).read_bytes() == code:
            return path
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)

    def write(tmp: str) -> None:
        Path(tmp).write_bytes(code)

    replace_atomic(path, write)
    return path


def _plotly(mode: str, shared_url: str = SHARED_PLOTLY) -> dict:
    if mode not in PLOTLY_MODES:
        raise UsageError(f"unknown --plotlyjs {mode!r}", "use inline or cdn")
    if mode == "cdn":
        return {"mode": "cdn", "url": plotly_cdn_url(), "sri": plotly_sri()}
    if mode == "shared":        # the site's copy (write_shared_plotly): no integrity, no CORS
        return {"mode": "shared", "url": shared_url, "sri": ""}
    return {"mode": "inline", "gz": base64.b64encode(plotly_gz()).decode("ascii")}


def page_json(data: dict) -> str:
    """Data for a <script type="application/json">: '</' and '<!--' cannot end the element."""
    return _dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_report(report: dict, plotlyjs: str = "inline", shared_url: str = SHARED_PLOTLY) -> str:
    """The self-contained page (plotly.js gzipped + base64 inline, or from a CDN), or a page of
    a site loading the site's plotly.js from `shared_url` (relative to the page)."""
    template = environment().get_template("report.html.j2")
    return template.render(report=report, data_json=page_json(report),
                           plotly=_plotly(plotlyjs, shared_url))


TMP_PREFIX, TMP_SUFFIX = ".logreport-", ".tmp"      # a file being written by replace_atomic


def write_atomic(path: str, text: str) -> None:
    """Write text via a temporary file in the same folder and rename: the old file survives."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    replace_atomic(path, write)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def replace_atomic(path: str, write) -> None:
    """Call write(temporary path) in path's folder, then rename it to path; on any error, and
    on Ctrl-C or SIGTERM (the CLI makes it KeyboardInterrupt), the temporary file goes and
    the old file stays."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        try:
            fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=TMP_SUFFIX, dir=folder)
            os.close(fd)
            os.chmod(tmp, 0o666 & ~_umask())     # mkstemp's 0600 would hide the file from others
        except OSError as e:
            raise OutputError(f"cannot write here: {e.strerror}", "choose another -o path",
                              path) from None
        write(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if not isinstance(e, OSError):
            raise
        raise OutputError(f"write failed: {e.strerror or e}", "free some disk space or choose "
                          "another -o path; the previous file was kept", path) from None


def remove_leftovers(folder: str) -> None:
    """Remove the temporary files of writes that were killed mid-way (SIGKILL, a lost Dask
    worker: nothing ran to remove them) from a folder that only one writer uses."""
    for name in glob.glob(os.path.join(glob.escape(folder), TMP_PREFIX + "*" + TMP_SUFFIX)):
        with contextlib.suppress(OSError):
            os.unlink(name)


def write_html(report: dict, path: str, plotlyjs: str = "inline",
               shared_url: str = SHARED_PLOTLY) -> None:
    """Render the report and write it atomically."""
    write_atomic(path, render_report(report, plotlyjs, shared_url))
