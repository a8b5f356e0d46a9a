"""Where `index` writes a site: a local folder, or a URL (`-o s3://bucket/site/`, through
fsspec). A URL site is written through local folders: each run's files by the task that reads
it, in a temporary folder put under the URL when done (`staged`: a Dask worker writes straight
to the target); the catalog and the index page in a folder kept for that URL (`local_folder`),
put under the URL after each update (`publish`)."""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile

from . import sources
from .sources.remote import remote


def local_folder(site: str) -> str:
    """The folder the catalog is kept in: the site itself, or for a URL a cache folder (the
    URL's catalog fetched into it when it has none)."""
    if not sources.is_url(site):
        return site
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = hashlib.sha1(site.rstrip("/").encode("utf-8", "surrogateescape")).hexdigest()[:16]
    folder = os.path.join(cache, "logreport", "sites", key)
    catalog = os.path.join(folder, ".logreport", "catalog.duckdb")
    url = url_of(site, ".logreport/catalog.duckdb")
    if not os.path.exists(catalog) and sources.exists(url):
        os.makedirs(os.path.dirname(catalog), exist_ok=True)
        remote(url).get(url, catalog)
    return folder


def url_of(site: str, relative: str) -> str:
    return site.rstrip("/") + "/" + relative


@contextlib.contextmanager
def staged(site: str):
    """A local folder to write a run's files into for `site`: the site itself, or a temporary
    folder whose files are put under the URL when the block ends without error."""
    if not sources.is_url(site):
        yield site
        return
    folder = tempfile.mkdtemp(prefix="logreport-site-")
    try:
        yield folder
        publish(folder, site)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def publish(folder: str, site: str, names: list[str] | None = None) -> None:
    """Put the files below a local folder (or only those `names`, relative to it) under the
    URL site, at the same relative paths."""
    if names is None:
        names = [os.path.relpath(os.path.join(root, n), folder)
                 for root, _, files in os.walk(folder) for n in files]
    for name in names:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            url = url_of(site, name.replace(os.sep, "/"))
            remote(url).put(path, url)


def remove(site: str, names: list[str]) -> None:
    """Remove files or folders (relative to the site) that are there."""
    for name in names:
        if sources.is_url(site):
            url = url_of(site, name)
            remote(url).remove(url)
            continue
        path = os.path.join(site, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)
