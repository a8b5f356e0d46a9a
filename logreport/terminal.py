"""Text from logs made safe for a terminal: it can neither drive the terminal nor style itself.

Everything a log decides (lines, metric and file names, error details) may hold control
characters: ESC starts sequences that set the window title (OSC 0), write the clipboard
(OSC 52), make links (OSC 8) or reset the screen (`ESC c`). `clean` shows every C0 and C1
control character but the tab as U+FFFD; `cell` also keeps rich from reading `[...]` in it
as markup.
"""
from __future__ import annotations

CONTROLS = {c: "\ufffd" for c in [*range(32), *range(127, 160)] if c != 9}
_JSON_RAW = {c: f"\\u{c:04x}" for c in range(127, 160)}


def clean(text) -> str:
    """str(text) with its control characters (C0 but tab, DEL, C1) shown as U+FFFD."""
    return str(text).translate(CONTROLS)


def cell(text, style: str = ""):
    """A rich Text of clean(text): printed as is, `[b]` or `[link=...]` stay plain text."""
    from rich.text import Text

    return Text(clean(text), style=style)


def json_text(text: str) -> str:
    """JSON (ensure_ascii=False) with DEL and C1 characters escaped: json.dumps writes them
    raw, and some terminals obey a raw C1 CSI. The same JSON value, as \\u escapes."""
    return text.translate(_JSON_RAW)


def closed_pipe() -> int:
    """Stdout's reader went away (`logreport … | head`): what is left goes nowhere, and the
    exit code is a SIGPIPE's, as for any tool in a pipe (it was an "internal error")."""
    import os
    import signal
    import sys

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 128 + signal.SIGPIPE

