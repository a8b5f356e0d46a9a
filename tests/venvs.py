"""Virtual environments of the slow end-to-end tests (~/.cache/logreport/NAME), made once per
version of what goes into them."""
import hashlib
import os
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "logreport"


def stamped(venv: Path, inputs: bytes, make) -> Path:
    """venv, made by make(venv) unless it was already made from the same inputs."""
    stamp = venv / f".install-{hashlib.sha256(inputs).hexdigest()[:12]}"
    if not stamp.exists():
        make(venv)
        stamp.touch()
    return venv
