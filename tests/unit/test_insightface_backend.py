"""insightface packs already on disk are usable; nothing is ever downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workstation.errors import ModelError
from workstation.hashing import sha256_file
from workstation.vision.images import load_image
from workstation.vision.insightface_backend import list_packs, resolve_pack
from workstation.vision.registry import create_engine


def test_pack_by_folder_loads_and_embeds(tiny_insightface_pack: Path, photo_paths) -> None:
    engine = create_engine("insightface", insightface_pack=tiny_insightface_pack)
    model_file = tiny_insightface_pack / "w600k_tiny.onnx"
    assert engine.model.name == "insightface:tinypack/w600k_tiny.onnx"
    assert engine.model.sha256 == sha256_file(model_file)
    assert engine.model.dim == 64
    faces = engine.analyze(load_image(photo_paths["obama"]).bgr)
    assert len(faces) == 1  # detection falls back to the verified YuNet
    assert faces[0].embedding.shape == (64,)
    assert np.isclose(np.linalg.norm(faces[0].embedding), 1.0, atol=1e-4)


def test_pack_by_name_under_insightface_home(
    tiny_insightface_pack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tiny_insightface_pack.parents[1]))
    assert list_packs() == [tiny_insightface_pack]
    assert resolve_pack("tinypack") == tiny_insightface_pack
    assert resolve_pack(None) == tiny_insightface_pack


def test_missing_pack_is_not_downloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path))
    with pytest.raises(ModelError, match="nothing is downloaded"):
        create_engine("insightface", insightface_pack="buffalo_l")
    assert not (tmp_path / "models" / "buffalo_l").exists()


def test_pack_without_recogniser_is_refused(tmp_path: Path) -> None:
    pack = tmp_path / "empty_pack"
    pack.mkdir()
    (pack / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"junk\.onnx: insightface cannot load"):
        create_engine("insightface", insightface_pack=pack)
