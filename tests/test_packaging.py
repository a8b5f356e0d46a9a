"""The wheel carries the templates (top-level templates/ -> logreport/templates)."""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def test_wheel_contains_templates_and_no_tests(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True)
    wheel = next(tmp_path.glob("logreport-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "logreport/templates/report.html.j2" in names
    assert "logreport/cli.py" in names
    assert not [n for n in names if n.startswith("tests/")]


def test_bytecode_is_written_once_where_python_would_not(tmp_path):
    """PYTHONDONTWRITEBYTECODE with an editable install (no pip compile step): the first import
    writes the package's bytecode, so later commands do not compile ~40 modules each time."""
    import importlib.util
    import os
    import shutil

    copy = tmp_path / "logreport"
    shutil.copytree(ROOT / "logreport", copy, ignore=shutil.ignore_patterns("__pycache__"))
    cached = Path(importlib.util.cache_from_source(str(copy / "formats" / "hf_fast.py")))
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(tmp_path))
    subprocess.run([sys.executable, "-c", "import logreport"], env=env, cwd=tmp_path, check=True)
    assert cached.exists()
    fresh = subprocess.run([sys.executable, "-c", "import logreport, sys; print('compileall' in "
                            "sys.modules)"], env=env, cwd=tmp_path, check=True,
                           capture_output=True, text=True)
    assert fresh.stdout.strip() == "False"      # all fresh: compileall (15 ms) not even imported
    (copy / "formats" / "hf_fast.py").write_text((copy / "formats" / "hf_fast.py").read_text() + "\n")
    os.utime(copy / "formats" / "hf_fast.py", (cached.stat().st_mtime + 5,) * 2)
    before = cached.read_bytes()
    subprocess.run([sys.executable, "-c", "import logreport"], env=env, cwd=tmp_path, check=True)
    assert cached.read_bytes() != before                  # an edited module is compiled again


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="threads counted in /proc")
def test_numpy_starts_no_blas_threads():
    """logreport does no linear algebra: numpy's OpenBLAS, imported after it, starts no thread
    per core (~70 ms of CPU that the workers reading a big log need)."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.endswith("NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", "import logreport, numpy, threading, os; "
                          "print(len(os.listdir('/proc/self/task')))"], env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
