"""User settings, declared once, and the examiner's UI history kept apart from them.

`Settings` is the configuration that changes what the program does (gallery, face model, number
of candidates): each setting is declared once, below, with its default, its label and its check
(`setting(...)`), and every change is audited: `apply_settings_change` validates it, writes the
audit event in the gallery and puts the file in place as one act. `UiHistory` (recent cases and
photos) is the examiner's own history, not configuration: saved to its own file, never audited.
Both live in the user's config folder as JSON with a schema version.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from workstation.errors import WorkstationError
from workstation.paths import config_dir
from workstation.permissions import make_private_dir
from workstation.vision.registry import DEFAULT_CONFIGURATION, current_key, offered_keys

# 2: the recent lists moved out to history.json (a version-1 file's lists are carried over).
SETTINGS_SCHEMA = 2
HISTORY_SCHEMA = 1
MAX_RECENT = 10


@dataclass(frozen=True)
class SettingSpec:
    """How one setting is shown, typed in and checked."""

    key: str
    label: str
    default: Any
    parse: Callable[[str], Any]  # text as typed on the command line -> value
    check: Callable[[Any], str | None]  # value -> the problem in words, or None
    reloads_engine: bool  # a change means another face model: the loaded one is dropped


def _text_or_none(text: str) -> str | None:
    return None if text in ("", "none", "default") else text


def _whole_number(key: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise WorkstationError(f"{key} must be a whole number, not {text!r}") from None

    return parse


def _no_check(_value: Any) -> str | None:
    return None


def _offered_backend(value: Any) -> str | None:
    """A face-model configuration the registry offers (workstation.vision.registry)."""
    if value in offered_keys():
        return None
    return f"backend must be one of {', '.join(offered_keys())}, not {value!r}"


def _candidates(value: Any) -> str | None:
    try:
        ok = 1 <= int(value) <= 1000
    except (TypeError, ValueError):
        ok = False
    return None if ok else f"the number of candidates must be 1 to 1000, not {value}"


def setting(
    default: Any,
    label: str,
    *,
    parse: Callable[[str], Any] = _text_or_none,
    check: Callable[[Any], str | None] = _no_check,
    reloads_engine: bool = False,
) -> Any:
    """Declare a setting: a dataclass field carrying its label, parser and check."""
    return field(
        default=default,
        metadata={
            "setting": {
                "label": label,
                "parse": parse,
                "check": check,
                "reloads_engine": reloads_engine,
            }
        },
    )


@dataclass
class Settings:
    """The audited configuration (see the module docstring); `schema` is the file's version."""

    schema: int = SETTINGS_SCHEMA
    gallery: str | None = setting(None, "Gallery folder")  # None: the default one
    # A configuration of workstation.vision.registry.
    backend: str = setting(
        DEFAULT_CONFIGURATION, "Face model", check=_offered_backend, reloads_engine=True
    )
    insightface_pack: str | None = setting(None, "insightface model pack", reloads_engine=True)
    model_dir: str | None = setting(None, "Model folder", reloads_engine=True)
    top_k: int = setting(20, "Default candidates", parse=_whole_number("top_k"), check=_candidates)

    def validate(self) -> None:
        """Raise WorkstationError naming the first setting whose value is not allowed."""
        for spec in declared_settings():
            problem = spec.check(getattr(self, spec.key))
            if problem is not None:
                raise WorkstationError(problem)

    def values(self) -> dict[str, Any]:
        """The declared settings' values ({key: value}; no schema)."""
        return {spec.key: getattr(self, spec.key) for spec in declared_settings()}


def declared_settings() -> tuple[SettingSpec, ...]:
    """Every setting, in declaration order."""
    specs = []
    for f in fields(Settings):
        meta = f.metadata.get("setting")
        if meta is not None:
            specs.append(SettingSpec(f.name, default=f.default, **meta))
    return tuple(specs)


def engine_keys() -> frozenset[str]:
    """The settings whose change means another face model."""
    return frozenset(spec.key for spec in declared_settings() if spec.reloads_engine)


def with_setting(settings: Settings, key: str, text: str) -> Settings:
    """A copy of `settings` with `key` set from typed text (unknown keys and bad text refused)."""
    specs = {spec.key: spec for spec in declared_settings()}
    if key not in specs:
        raise WorkstationError(f"unknown setting {key!r}; settable: {', '.join(sorted(specs))}")
    return replace(settings, **{key: specs[key].parse(text)})


def settings_path() -> Path:
    return config_dir() / "settings.json"


def load_settings(path: Path | None = None) -> Settings:
    """Read settings; a missing file gives defaults, a damaged one is reported, not ignored."""
    raw = _read_json(path or settings_path(), "settings")
    if raw is None:
        return Settings()
    known = {spec.key for spec in declared_settings()}
    values = {k: v for k, v in raw.items() if k in known}
    if isinstance(values.get("backend"), str):
        values["backend"] = current_key(values["backend"])
    return Settings(**values)


def changes_between(before: Settings, after: Settings) -> dict[str, list[Any]]:
    """{key: [old, new]} for every declared setting that differs."""
    old, new = before.values(), after.values()
    return {key: [old[key], value] for key, value in new.items() if old[key] != value}


# ---------------------------------------------------------------------- UI history
@dataclass
class UiHistory:
    """Recent cases and photos: the examiner's own history, not audited configuration."""

    schema: int = HISTORY_SCHEMA
    recent_cases: list[str] = field(default_factory=list)
    recent_files: list[str] = field(default_factory=list)

    def remember(self, key: str, value: str) -> None:
        """Put `value` first in the list `key` ("recent_cases" or "recent_files")."""
        current = [v for v in getattr(self, key) if v != value]
        setattr(self, key, [value, *current][:MAX_RECENT])


def history_path() -> Path:
    return config_dir() / "history.json"


def load_history(path: Path | None = None) -> UiHistory:
    """Read the UI history (empty when missing or unreadable: it is only a convenience).

    Settings files of schema 1 held the recent lists; they are carried over once.
    """
    path = path or history_path()
    carried = False
    try:
        raw = _read_json(path, "history")
        if raw is None and path == history_path():
            raw, carried = _read_json(settings_path(), "settings"), True
    except WorkstationError:
        raw = None
    if not isinstance(raw, dict):
        return UiHistory()
    lists = {
        key: [v for v in raw.get(key) or [] if isinstance(v, str)][:MAX_RECENT]
        for key in ("recent_cases", "recent_files")
    }
    history = UiHistory(recent_cases=lists["recent_cases"], recent_files=lists["recent_files"])
    if carried and (history.recent_cases or history.recent_files):
        with contextlib.suppress(OSError):  # kept from now on, whatever the settings file becomes
            save_history(history, path)
    return history


def save_history(history: UiHistory, path: Path | None = None) -> None:
    path = path or history_path()
    # Recent probe paths and case numbers: for the owner (and the examiners' group) only.
    make_private_dir(path.parent)
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(asdict(history), indent=2), encoding="utf-8")
    partial.replace(path)


# ---------------------------------------------------------------------- files
def _read_json(path: Path, what: str) -> dict[str, Any] | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise WorkstationError(f"{path}: {what} file cannot be read ({exc})") from exc
    if not isinstance(raw, dict):
        raise WorkstationError(f"{path}: {what} file cannot be read (not a JSON object)")
    return raw


def write_synced(path: Path, text: str) -> None:
    """Write and flush to disk, so that the rename that follows never exposes a short file."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
