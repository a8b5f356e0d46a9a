"""Errors the library raises; the CLI turns each into one line with a hint and an exit code."""
from __future__ import annotations

import re

_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*):[^/\s@]*@")


def scrub(text: str) -> str:
    """Text with the password of any URL in it (scheme://user:password@host) taken out."""
    return _USERINFO.sub(r"\1:***@", text) if "://" in text else text


class LogreportError(Exception):
    """A problem the user can fix: message, hint, and where (path, line)."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "", path: str | None = None,
                 line: int | None = None):
        message, hint = scrub(message), scrub(hint)
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = scrub(path) if path else path
        self.line = line

    def one_line(self) -> str:
        where = self.path or ""
        if where and self.line:
            where += f":{self.line}"
        text = f"{where}: {self.message}" if where else self.message
        return f"{text} (hint: {self.hint})" if self.hint else text


class InputError(LogreportError):
    """The input cannot be read: missing, unreadable, a folder with no logs, binary."""


class MissingExtra(InputError):
    """Reading this input needs an optional extra that is not installed."""


class UnknownFormat(LogreportError):
    """No known log format matches the input."""


class NoRecords(InputError):
    """A log was read but gave no record: nothing in it is known to logreport."""


class UsageError(LogreportError):
    """The command line asks for something impossible (exit code 2)."""

    exit_code = 2


class OutputError(LogreportError):
    """A result could not be written."""
