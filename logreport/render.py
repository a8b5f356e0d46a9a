"""HTML rendering: the jinja2 environment (autoescaped), the plotly.js asset, atomic writes."""
from __future__ import annotations

import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import jinja2

from .errors import OutputError

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


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """The plotly.js bundle that ships with the installed plotly package."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def page_json(data: dict) -> str:
    """Data for a <script type="application/json">: '</' and '<!--' cannot end the element."""
    return _dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_report(report: dict) -> str:
    template = environment().get_template("report.html.j2")
    return template.render(report=report, data_json=page_json(report), plotly_js=plotly_js())


def write_atomic(path: str, text: str) -> None:
    """Write via a temporary file in the same folder and rename: the old file survives errors."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".logreport-", suffix=".tmp", dir=folder)
    except OSError as e:
        raise OutputError(f"cannot write here: {e.strerror}", "choose another -o path",
                          path) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OutputError(f"write failed: {e.strerror}", "free some disk space or choose "
                          "another -o path; the previous file was kept", path) from None


def write_html(report: dict, path: str) -> None:
    """Render the report and write it atomically."""
    write_atomic(path, render_report(report))
