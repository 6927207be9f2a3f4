"""The one place that knows where skillchat keeps files.

SKILLCHAT_HOME puts everything under one folder (tests use it; so can a portable install).
Otherwise the platform's conventions apply, through platformdirs.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "skillchat"


def _home() -> Path | None:
    home = os.environ.get("SKILLCHAT_HOME")
    return Path(home).expanduser() if home else None


def _ensure(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def config_dir() -> Path:
    home = _home()
    if home:
        return _ensure(home / "config")
    import platformdirs

    return _ensure(Path(platformdirs.user_config_dir(APP)))


def data_dir() -> Path:
    home = _home()
    if home:
        return _ensure(home / "data")
    import platformdirs

    return _ensure(Path(platformdirs.user_data_dir(APP)))


def cache_dir() -> Path:
    home = _home()
    if home:
        return _ensure(home / "cache")
    import platformdirs

    return _ensure(Path(platformdirs.user_cache_dir(APP)))


def config_file() -> Path:
    """SKILLCHAT_CONFIG names another file; `--config` on the command line overrides both."""
    override = os.environ.get("SKILLCHAT_CONFIG")
    return Path(override).expanduser() if override else config_dir() / "config.toml"


def database_file() -> Path:
    override = os.environ.get("SKILLCHAT_DB")
    return Path(override).expanduser() if override else data_dir() / "traces.db"


def prompt_history_file() -> Path:
    """What was typed into the app, kept between sessions (up and down recall it)."""
    return data_dir() / "prompt-history.jsonl"


def user_handbooks_dir() -> Path:
    return _ensure(data_dir() / "handbooks")


def shipped_handbooks_dir() -> Path:
    """Handbooks packaged with skillchat: inside the wheel, or handbooks/ in a source checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "_handbooks"
    return packaged if packaged.is_dir() else here.parent / "handbooks"
