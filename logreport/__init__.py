"""logreport: live and post-training reports from the logs PaddleDetection and LLaMA-Factory
already write."""
from __future__ import annotations

import os
import sys

# pyarrow (number parsing, compression, parquet) would otherwise keep freed blocks in its own
# mimalloc pool: ~50 MB more peak memory on a big log, for no speed gain.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
# numpy's OpenBLAS starts a thread per core at import, which takes ~70 ms of CPU (the workers
# that read a big log need those cores); logreport does no linear algebra.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _fresh_bytecode() -> None:
    """Keep the package's bytecode written where Python itself will not write it
    (PYTHONDONTWRITEBYTECODE with an editable install, which pip does not compile as it does a
    regular one): every command would otherwise compile its ~40 modules from source, 0.1 s
    each time; seeing that every module has bytecode newer than its source takes 1 ms, and
    only then is `compileall` imported (15 ms). A folder that cannot be written is left as
    it is."""
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.dont_write_bytecode and not _bytecode_fresh(here) and os.access(here, os.W_OK):
        import compileall

        compileall.compile_dir(here, quiet=2)


def _bytecode_fresh(folder: str) -> bool:
    """Whether every module under `folder` has bytecode written after its source."""
    tag = sys.implementation.cache_tag
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                try:
                    source = os.stat(os.path.join(root, name)).st_mtime_ns
                    compiled = os.stat(os.path.join(root, "__pycache__",
                                                    f"{name[:-3]}.{tag}.pyc")).st_mtime_ns
                except OSError:
                    return False
                if compiled < source:
                    return False
    return True


_fresh_bytecode()

__version__ = "0.1.0"

__all__ = ["__version__", "load", "build_report", "write_html", "summarize"]


def load(path: str, fmt: str | None = None):
    """Read a log file, output folder, glob, '-' (stdin) or .gz file into a Run."""
    from .reader import load as _load

    return _load(path, fmt)


def build_report(runs, title: str | None = None, lang: str = "en") -> dict:
    """The ReportData (a JSON-ready dict) of one or several runs."""
    from .report import build

    return build(list(runs), title=title, lang=lang)


def write_html(report: dict, path: str) -> None:
    """Write a self-contained HTML report, atomically."""
    from .render import write_html as _write

    _write(report, path)


def summarize(run) -> dict:
    """The `summary --json` object of one run."""
    from .analysis import summarize as _summarize

    return _summarize(run)
