"""User settings: one typed object with a schema version, stored as JSON in the config folder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from workstation.errors import WorkstationError
from workstation.paths import config_dir
from workstation.permissions import make_private_dir
from workstation.vision.registry import DEFAULT_CONFIGURATION, offered_keys

SETTINGS_SCHEMA = 1


@dataclass
class Settings:
    schema: int = SETTINGS_SCHEMA
    gallery: str | None = None  # None: the default gallery in the user's data folder
    backend: str = DEFAULT_CONFIGURATION  # a configuration of workstation.vision.registry
    insightface_pack: str | None = None
    model_dir: str | None = None
    top_k: int = 20
    recent_cases: list[str] | None = None
    recent_files: list[str] | None = None

    def validate(self) -> None:
        if self.backend not in offered_keys():
            raise WorkstationError(
                f"backend must be one of {', '.join(offered_keys())}, not {self.backend!r}"
            )
        if not 1 <= int(self.top_k) <= 1000:
            raise WorkstationError(f"the number of candidates must be 1 to 1000, not {self.top_k}")


def settings_path() -> Path:
    return config_dir() / "settings.json"


def load_settings(path: Path | None = None) -> Settings:
    """Read settings; a missing file gives defaults, a damaged one is reported, not ignored."""
    path = path or settings_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Settings()
    except (OSError, ValueError) as exc:
        raise WorkstationError(f"{path}: settings file cannot be read ({exc})") from exc
    known = {f.name for f in fields(Settings)}
    settings = Settings(**{k: v for k, v in raw.items() if k in known})
    settings.schema = SETTINGS_SCHEMA
    return settings


def save_settings(settings: Settings, path: Path | None = None) -> dict[str, Any]:
    """Write settings atomically; returns what changed ({key: [old, new]}) for the audit log."""
    settings.validate()
    path = path or settings_path()
    before = asdict(load_settings(path)) if path.exists() else asdict(Settings())
    after = asdict(settings)
    changes = {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
    # Recent probe paths and case numbers: for the owner (and the examiners' group) only.
    make_private_dir(path.parent)
    partial = path.with_suffix(".json.part")
    partial.write_text(json.dumps(after, indent=2), encoding="utf-8")
    partial.replace(path)
    return changes
