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


def path_text(path: Path | str) -> str:
    """A path as text that can be printed, stored and put in JSON, whatever its bytes.

    A file name that is not valid UTF-8 (a Windows-1252 "café.jpg" copied onto Linux) reaches
    Python with its bad bytes as lone surrogates, which no UTF-8 file, terminal or database
    accepts; they are shown as escapes (caf\\xe9.jpg), and every valid character as itself.
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def text_of(message: str) -> str:
    """`message` with any lone surrogate (a non-UTF-8 file name inside it) as an escape."""
    try:
        return message.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        return message.encode("utf-8", "backslashreplace").decode("utf-8")
