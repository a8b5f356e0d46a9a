"""The wheel carries the templates (top-level templates/ -> logreport/templates)."""
import subprocess
import sys
import zipfile
from pathlib import Path

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
    (copy / "formats" / "hf_fast.py").write_text((copy / "formats" / "hf_fast.py").read_text() + "\n")
    os.utime(copy / "formats" / "hf_fast.py", (cached.stat().st_mtime + 5,) * 2)
    before = cached.read_bytes()
    subprocess.run([sys.executable, "-c", "import logreport"], env=env, cwd=tmp_path, check=True)
    assert cached.read_bytes() != before                  # an edited module is compiled again
