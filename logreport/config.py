"""The user's config file, ~/.config/logreport/config.toml ($XDG_CONFIG_HOME if set): its
[smtp] table (mail.py) and [[notify]] entries (notify.py)."""
from __future__ import annotations

import os

from .errors import UsageError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def config_path() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "logreport", "config.toml")


def load(path: str | None = None) -> dict:
    """The whole config file ({} when there is none); a broken one is a UsageError."""
    path = path or config_path()
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"cannot read the config file: {e}", "fix or remove it", path) from None
