"""Logs behind a URL, read through fsspec: s3://, gs://, hdfs://, http(s)://, sftp:// and
ssh://, file://. Each protocol's package is an optional extra; credentials come from where that
package reads them (AWS environment and profiles, gcloud, ~/.ssh/config and the agent), or a
password in the URL, which is taken out of it at once (`remember`): no path, message or report
ever holds it."""
from __future__ import annotations

import contextlib
import functools
import gzip
import logging
import os
import posixpath
import warnings
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from ..errors import InputError, MissingExtra, scrub
from .stat import Stat

BLOCK = 32 << 20          # bytes a remote read asks for at a time (a range request each)

# protocol -> (the extra that brings it, the package it needs)
EXTRAS = {"s3": ("s3", "s3fs"), "s3a": ("s3", "s3fs"), "gs": ("gcs", "gcsfs"),
          "gcs": ("gcs", "gcsfs"), "hdfs": ("hdfs", "fsspec"), "http": ("http", "aiohttp"),
          "https": ("http", "aiohttp"), "sftp": ("ssh", "sshfs"), "ssh": ("ssh", "sshfs")}
_PASSWORDS: dict[str, str] = {}      # "scheme://user@host:port" -> the password given in a URL


def scheme(path: str) -> str:
    """A URL's scheme ("s3"), "" for a local path (a Windows drive letter is no scheme)."""
    head, sep, _ = path.partition("://")
    return head.lower() if sep and len(head) > 1 and head.isalnum() else ""


def remember(url: str) -> str:
    """The URL without a password in it; the password is kept for this process's connections
    to that host."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    clean = urlunsplit(parts._replace(netloc=netloc))
    _PASSWORDS[f"{parts.scheme}://{netloc}"] = parts.password
    return clean


def _filesystem_class(protocol: str):
    import importlib

    extra, package = EXTRAS.get(protocol, ("", ""))
    if not package:
        raise InputError(f"{protocol}:// is not a kind of location logreport reads",
                         "give a local path or an s3://, gs://, hdfs://, http(s)://, sftp:// "
                         "or ssh:// URL")
    try:
        with warnings.catch_warnings():      # asyncssh's deprecation warnings on import
            warnings.simplefilter("ignore")
            importlib.import_module(package)
            import fsspec
        for name in (package, "fsspec"):     # their retries and tracebacks: our one line says it
            logging.getLogger(name).addHandler(logging.NullHandler())

            return fsspec.get_filesystem_class("sftp" if protocol == "ssh" else protocol)
    except ImportError:
        raise MissingExtra(f"reading {protocol}:// needs the {package} package",
                           f"pip install 'logreport[{extra}]'") from None


@functools.cache
def _remote(protocol: str, netloc: str, pid: int) -> Remote:
    return Remote(protocol, netloc)


def remote(url: str) -> Remote:
    """The file system a URL is on (one per host or bucket store, kept; a forked worker makes
    its own: fsspec's are not fork-safe)."""
    parts = urlsplit(url)
    netloc = parts.netloc if scheme(url) not in ("s3", "s3a", "gs", "gcs") else ""
    return _remote(scheme(url), netloc, os.getpid())


class Remote:
    """One fsspec file system; paths in and out are full URLs."""

    def __init__(self, protocol: str, netloc: str):
        cls = _filesystem_class(protocol)
        self.protocol = protocol
        base = f"{protocol}://{netloc}"
        options = cls._get_kwargs_from_urls(base + "/") if netloc else {}
        password = _PASSWORDS.get(base)
        if password is not None and protocol in ("sftp", "ssh"):
            options["password"] = password
        elif password is not None and protocol in ("http", "https"):
            import aiohttp

            user = urlsplit(base).username or ""
            options["client_kwargs"] = {"auth": aiohttp.BasicAuth(user, password)}
        with self.calling(base):
            self.fs = cls(**options)
        self.prefix = "" if protocol in ("http", "https") else \
            base if cls._strip_protocol(base + "/x") == "/x" else f"{protocol}://"

    def path(self, url: str) -> str:
        """The file system's own path of a URL."""
        if self.prefix and url.startswith(self.prefix):
            return url[len(self.prefix):] or "/"
        return self.fs._strip_protocol(url)

    def url(self, path: str) -> str:
        return path if not self.prefix else self.prefix + (
            path if path.startswith("/") or self.prefix.endswith("://") else "/" + path)

    @contextlib.contextmanager
    def calling(self, url: str):
        """A library's error as one InputError line (no traceback, no credentials)."""
        try:
            yield
        except InputError:
            raise
        except FileNotFoundError:
            raise InputError("no such file or folder", "check the URL", url) from None
        except PermissionError as e:
            raise InputError(f"access denied: {scrub(str(e))[:200]}", "check the credentials "
                             "(AWS_PROFILE / AWS_ACCESS_KEY_ID, gcloud auth, ssh keys)", url) from None
        except Exception as e:      # botocore, aiohttp, asyncssh, pyarrow: each its own kinds
            detail = scrub(str(e).splitlines()[0] if str(e) else "")[:200]
            raise InputError(f"cannot read: {type(e).__name__}: {detail}".rstrip(": "),
                             "check the URL, the network and the credentials", url) from None

    def exists(self, url: str) -> bool:
        with self.calling(url):
            return self.fs.exists(self.path(url))

    def broken_link(self, url: str) -> bool:
        return False

    def isdir(self, url: str) -> bool:
        with self.calling(url):
            return self.fs.isdir(self.path(url))

    def isfile(self, url: str) -> bool:
        with self.calling(url):
            return self.fs.isfile(self.path(url))

    def listing(self, folder: str) -> dict[str, str]:
        """name -> "dir", "file" or "other"."""
        with self.calling(folder):
            entries = self.fs.ls(self.path(folder), detail=True)
        return {posixpath.basename(e["name"].rstrip("/")):
                {"directory": "dir", "file": "file"}.get(e.get("type"), "other") for e in entries}

    def glob(self, pattern: str) -> list[str]:
        with self.calling(pattern):
            return sorted(self.url(p) for p in self.fs.glob(self.path(pattern)))

    def walk(self, folder: str):
        with self.calling(folder):
            for root, dirs, names in self.fs.walk(self.path(folder)):
                yield self.url(root), dirs, names

    def stat(self, url: str) -> Stat | None:
        try:
            with self.calling(url):
                info = self.fs.info(self.path(url))
        except InputError:
            return None
        if info.get("type") == "directory":
            return None
        return Stat(int(info.get("size") or 0), _mtime_ns(info))

    def put(self, local: str, url: str) -> None:
        """Write a local file to the URL (what `index -o URL` writes)."""
        with self.calling(url):
            self.fs.put_file(local, self.path(url))

    def get(self, url: str, local: str) -> None:
        with self.calling(url):
            self.fs.get_file(self.path(url), local)

    def remove(self, url: str) -> None:
        """Remove a file or a folder below the URL, if there."""
        with self.calling(url), contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.path(url), recursive=True)

    def read_range(self, url: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of a file: one ranged read."""
        with self.calling(url):
            return self.fs.cat_file(self.path(url), start=start, end=end)

    def open(self, url: str, offset: int = 0):
        """A buffered stream of ranged reads from `offset` (a .gz object decompressed as it
        streams in): nothing is downloaded whole."""
        with self.calling(url):
            stream = self.fs.open(self.path(url), "rb", block_size=BLOCK, cache_type="background")
            if offset:
                stream.seek(offset)
        stream = _Stream(self, url, stream)
        return gzip.GzipFile(fileobj=stream) if url.endswith(".gz") else stream


class _Stream:
    """An fsspec file whose read errors are InputErrors (see `Remote.calling`)."""

    def __init__(self, remote: Remote, url: str, file):
        self.remote, self.url, self.file = remote, url, file

    def read(self, size: int = -1) -> bytes:
        with self.remote.calling(self.url):
            return self.file.read(size)

    def tell(self) -> int:
        return self.file.tell()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.file.close()


def _mtime_ns(info: dict) -> int:
    """The modification time an fsspec `info` gives, under the name each store uses."""
    for key in ("LastModified", "mtime", "updated", "last_modified", "modified"):
        value = info.get(key)
        if isinstance(value, datetime):
            return int(value.timestamp() * 1e9)
        if isinstance(value, (int, float)):
            return int(value * 1e9)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
    return 0
