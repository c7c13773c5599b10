"""Where workstation keeps its data and settings on this PC."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

APP_NAME = "workstation"


def data_dir() -> Path:
    """The user's data folder for workstation (WORKSTATION_DATA_DIR overrides it)."""
    override = os.environ.get("WORKSTATION_DATA_DIR")
    if override:
        return Path(override)
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    """The user's config folder for workstation (WORKSTATION_CONFIG_DIR overrides it)."""
    override = os.environ.get("WORKSTATION_CONFIG_DIR")
    if override:
        return Path(override)
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False))


def default_gallery_dir() -> Path:
    """The embedded default gallery: SQLite + FAISS files in the user's data folder."""
    return data_dir() / "gallery"


def current_user() -> str:
    """The OS login name, used as the examiner when none is given."""
    try:
        return getpass.getuser()
    except Exception:  # getpass raises various errors when no login name is set
        return os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"
