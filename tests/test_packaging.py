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
