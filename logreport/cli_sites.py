"""The commands over many runs: index, serve, query."""
from __future__ import annotations

import os

import click

from .cli import count_progress, locale_lang, main


@main.command(name="index")
@click.argument("roots", nargs=-1, required=True, metavar="ROOT...")
@click.option("-o", "--output", "site", default="site", show_default=True,
              help="Folder of the site: index.html, a report per run, the catalog.")
@click.option("--include", multiple=True, metavar="GLOB",
              help="Only runs whose name (path under the root) matches (repeat for several).")
@click.option("--exclude", multiple=True, metavar="GLOB",
              help="Leave out runs whose name matches (repeat for several).")
@click.option("--jobs", type=click.IntRange(1), default=None,
              help="Processes reading runs at once (default: one per core).")
@click.option("--lang", type=click.Choice(["en", "zh"]), default=None,
              help="Language of the pages' labels (default: zh if LC_ALL/LANG starts with zh).")
@click.option("--dask", default=None, metavar="ADDRESS",
              help="Read the runs as Dask tasks: a scheduler (tcp://HOST:8786) or `local` (a "
                   "LocalCluster of --jobs processes). Workers write to the site: give a URL "
                   "(-o s3://bucket/site/) or a folder they share. Needs logreport[dask].")
def index_cmd(roots, site, include, exclude, jobs, lang, dask):
    """Write a static site of every run under ROOT: a table of runs and a report per run.

    A run is a log, an output folder or a launch folder, as for `report`. Incremental: a run
    whose files did not change costs a stat; an appended log is read on from where it
    stopped; a deleted one leaves the catalog (SITE/.logreport/catalog.duckdb, see `query`).

    ROOT and -o may be URLs (s3://, gs://, sftp://, …; see "Remote logs and clusters").

    Example: logreport index runs/ -o site/
    """
    from .index import index
    from .runs import some

    with count_progress("reading runs") as progress:
        result = index(list(roots), site, include, exclude, jobs, lang or locale_lang(),
                       progress, dask)
    if result.unread:
        click.echo(f"logreport: not read, not named like a log (*.log, *.txt, *.out): "
                   f"{some(result.unread)}", err=True)
    for line in result.skipped[:10]:
        click.echo(f"logreport: skipped {line}", err=True)
    if len(result.skipped) > 10:
        click.echo(f"logreport: skipped {len(result.skipped) - 10} more (see: logreport query "
                   f"--site {site} \"select * from catalog_skipped\")", err=True)
    click.echo(f"{os.path.join(site, 'index.html')}: {result.runs} runs; read {result.read} "
               f"({result.resumed} on from where they stopped), removed {result.removed}, "
               f"skipped {len(result.skipped)}", err=True)


def _serve_site(roots) -> str:
    """Where `serve` keeps its site without -o: a cache folder per set of roots."""
    import hashlib

    key = "\0".join(os.path.abspath(r) for r in roots).encode("utf-8", "surrogateescape")
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "logreport", "serve", hashlib.sha1(key).hexdigest()[:16])


@main.command(name="serve")
@click.argument("roots", nargs=-1, required=True, metavar="ROOT...")
@click.option("-o", "--output", "site", default=None,
              help="Folder of the site (default: a cache folder, ~/.cache/logreport/serve/…).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any other than loopback needs the token.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port (0: any free one).")
@click.option("--token", envvar="LOGREPORT_TOKEN", default=None,
              help="Token asked for off loopback [env LOGREPORT_TOKEN] (default: a random one, "
                   "printed in the URL).")
@click.option("--allow-host", multiple=True, metavar="NAME",
              help="Another Host name this server answers to (a DNS alias, a proxy's name).")
@click.option("--include", multiple=True, metavar="GLOB", help="As for `index`.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="As for `index`.")
@click.option("--jobs", type=click.IntRange(1), default=None,
              help="Processes reading runs at once while indexing (default: one per core).")
@click.option("--lang", type=click.Choice(["en", "zh"]), default=None,
              help="Language of the pages' labels (default: zh if LC_ALL/LANG starts with zh).")
@click.option("--poll", type=click.FloatRange(0.05), default=None, metavar="SECONDS",
              help="Walk the tree every SECONDS instead of waiting for file events (NFS).")
def serve_cmd(roots, site, host, port, token, allow_host, include, exclude, jobs, lang, poll):
    """Serve the index of every run under ROOT, live: new runs appear, running ones update.

    Each run's page is live as with `watch --serve`. Off loopback, every request needs the
    token (printed as a URL with ?token=, kept in a cookie after the first visit).

    Example: logreport serve runs/ --port 8000
    """
    import signal

    from .livesite import serve

    site = site or _serve_site(roots)

    def ready(server):
        for url in server.urls():
            click.echo(f"index: {url}", err=True)
        click.echo(f"logreport: serving {', '.join(roots)} (site {site}); Ctrl-C stops", err=True)

    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        serve(list(roots), site, host, port, token, allow_host, include, exclude, jobs,
              lang or locale_lang(), poll, ready)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


@main.command()
@click.argument("sql")
@click.option("--site", default=None, metavar="SITE",
              help="Site made by `logreport index` (default: the current folder if it holds "
                   "one, else ./site).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list of objects).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
def query(sql, site, as_json, as_csv):
    """Run SQL on a site's catalog: views `runs` (a row per run) and `metrics` (tidy rows).

    Example: logreport query "select name, best_metric, best_value from runs order by best_value desc"
    """
    from . import query as q

    columns, rows = q.run(site or q.default_site(), sql)
    if as_json:
        click.echo(q.as_json(columns, rows))
    elif as_csv:
        click.echo(q.as_csv(columns, rows), nl=False)
    else:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(show_header=True, header_style="bold")
        for c in columns:
            table.add_column(escape(c))
        for row in rows:
            table.add_row(*[escape("" if v is None else str(v)) for v in row])
        Console().print(table)
        click.echo(f"{len(rows)} row{'s' if len(rows) != 1 else ''}", err=True)
