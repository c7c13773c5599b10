"""Recognition beyond one model, on the real models and real photos: mirror averaging, dlib's
ResNet with its own 5-point alignment, and the fused ensemble in one vector."""

from __future__ import annotations

import shutil
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from workstation.calibration.reference import load_reference, same_person_score
from workstation.errors import ModelError, ModelMismatchError
from workstation.gallery.admin import reembed
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.search import search_image
from workstation.progress import drain
from workstation.vision.dlib_backend import DlibResNetEmbedder
from workstation.vision.embedders import FusedEmbedder, MirrorAveraged
from workstation.vision.engine import FaceEngine, l2_normalise
from workstation.vision.images import load_image
from workstation.vision.models import load_manifest, locate_model
from workstation.vision.registry import (
    CONFIGURATIONS,
    DLIB_LANDMARKS,
    DLIB_RESNET,
    SIGMA_DLIB_FLIP,
    SIGMA_SFACE_FLIP,
    WEIGHT_DLIB,
    WEIGHT_SFACE,
    configuration,
    create_engine,
)


@pytest.fixture(scope="module")
def accurate() -> FaceEngine:
    return create_engine("accurate")


@pytest.fixture(scope="module")
def fast() -> FaceEngine:
    return create_engine("fast")


@pytest.fixture(scope="module")
def fast_mirror() -> FaceEngine:
    return create_engine("fast-mirror")


@pytest.fixture(scope="module")
def photos(photo_paths: dict[str, Path]) -> dict[str, np.ndarray]:
    return {name: load_image(path).bgr for name, path in photo_paths.items()}


def _more_photos(limit: int = 6) -> list[np.ndarray]:
    """A few of ../shared/faces when it is beside the checkout (more pairs for the maths)."""
    from conftest import shared_faces_dir

    folder = shared_faces_dir()
    if folder is None:
        return []
    paths = sorted((folder / "dlib_johns").glob("*.jpg"))[:limit]
    return [load_image(p).bgr for p in paths]


def test_dlib_alone_tells_people_apart_on_real_photos(photos) -> None:
    dlib = create_engine("dlib")
    obama, obama2, biden = (dlib.analyze(photos[n])[0] for n in ("obama", "obama2", "biden"))
    same, different = obama.embedding @ obama2.embedding, obama.embedding @ biden.embedding
    # dlib's cosines sit high for everyone (strangers about 0.82 on the development photos,
    # sigma 0.04): only the order and the margin in sigmas mean anything.
    assert same > different + 3 * 0.04
    assert (
        dlib.model.dim == 128
        and dlib.model.sha256 == load_manifest()["models"][DLIB_RESNET]["sha256"]
    )
    landmarks_hash = load_manifest()["models"][DLIB_LANDMARKS]["sha256"]
    assert dlib.model.name.endswith(landmarks_hash[:12])


def test_dlib_gets_its_own_150px_chip(photos) -> None:
    dlib = create_engine("dlib")
    face = dlib.detect(photos["obama"])[0]
    (chip,) = dlib.prepare(photos["obama"], face.box, face.landmarks)
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
    # Same chip whether or not the detector's landmarks are known: dlib finds its own points.
    (chip_from_box,) = dlib.prepare(photos["obama"], face.box, None)
    assert np.array_equal(chip, chip_from_box)


def test_the_68_point_model_is_never_named() -> None:
    manifest = load_manifest()["models"]
    assert not any("68" in entry["resource"] for entry in manifest.values())
    for config in CONFIGURATIONS:
        assert set(config.model_files) <= set(manifest)


def test_altered_dlib_model_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    for key in (DLIB_RESNET, DLIB_LANDMARKS):
        shutil.copyfile(locate_model(key), folder / locate_model(key).name)
    target = folder / locate_model(DLIB_LANDMARKS).name
    data = bytearray(target.read_bytes())
    data[1000] ^= 0xFF
    target.write_bytes(bytes(data))
    from workstation.vision.models import load_verified

    with pytest.raises(ModelError, match=rf"{target.name}: model file has been altered"):
        DlibResNetEmbedder(
            load_verified(DLIB_RESNET, folder), load_verified(DLIB_LANDMARKS, folder)
        )


def test_mirror_averaging_adds_the_mirror_image(fast, fast_mirror, photos) -> None:
    engine, plain = fast_mirror, fast
    assert isinstance(engine.embedder, MirrorAveraged)
    face = plain.detect(photos["obama"])[0]
    prepared = plain.prepare(photos["obama"], face.box, face.landmarks)
    (crop,) = prepared
    by_hand = l2_normalise(
        l2_normalise(plain.embed_prepared([prepared]))
        + l2_normalise(plain.embed_prepared([(np.ascontiguousarray(crop[:, ::-1]),)]))
    )[0]
    mirrored = engine.embed_faces(photos["obama"], [(face.box, face.landmarks)])[0]
    assert np.allclose(mirrored, by_hand, atol=1e-5)
    assert not np.allclose(mirrored, plain.embed_prepared([prepared])[0], atol=1e-3)
    assert engine.model.name == f"{plain.model.name}+flip"
    assert engine.model.sha256 == plain.model.sha256 and str(engine.model) != str(plain.model)


def test_fused_inner_product_is_the_weighted_z_normalised_cosine_sum(accurate, photos) -> None:
    fused = accurate.embedder
    assert isinstance(fused, FusedEmbedder)
    images = [photos["obama"], photos["obama2"], photos["biden"], *_more_photos()]
    faces = [(bgr, accurate.detect(bgr)[0]) for bgr in images]
    vectors = np.vstack([accurate.embed_faces(bgr, [(f.box, f.landmarks)]) for bgr, f in faces])
    # Each member's own vectors, computed by the member alone (not read back out of the fusion).
    members = []
    for member in fused.members:
        alone = FaceEngine(accurate.detector, member)
        members.append(
            np.vstack([alone.embed_faces(bgr, [(f.box, f.landmarks)]) for bgr, f in faces])
        )
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    weights = (WEIGHT_SFACE, WEIGHT_DLIB)
    sigmas = (SIGMA_SFACE_FLIP, SIGMA_DLIB_FLIP)
    means = (0.1, 0.8)  # any member means: they only shift Z by a constant
    total = sum(w / s for w, s in zip(weights, sigmas, strict=True))
    shift = sum(w * m / s for w, m, s in zip(weights, means, sigmas, strict=True))
    for a, b in combinations(range(len(images)), 2):
        cosines = [float(m[a] @ m[b]) for m in members]
        z = sum(w * (c - m) / s for w, c, m, s in zip(weights, cosines, means, sigmas, strict=True))
        assert float(vectors[a] @ vectors[b]) == pytest.approx((z + shift) / total, abs=2e-5)
    same = float(vectors[0] @ vectors[1])
    assert same > float(vectors[0] @ vectors[2]) and same > float(vectors[1] @ vectors[2])


def test_fused_model_id_names_every_member(accurate) -> None:
    name = accurate.model.name
    manifest = load_manifest()["models"]
    for key in ("sface-2021dec-int8bq", DLIB_RESNET):
        assert manifest[key]["sha256"][:12] in name
    assert f"sigma={SIGMA_SFACE_FLIP:g}" in name and f"sigma={SIGMA_DLIB_FLIP:g}" in name
    assert "+flip" in name and "@" not in name  # '@' separates the name from the hash
    assert accurate.model.dim == 256
    assert str(configuration("accurate").expected_model_id()) == str(accurate.model)


def test_each_shipped_configuration_has_its_own_reference_table() -> None:
    names = set()
    for config in CONFIGURATIONS:
        if config.reference is None:
            continue
        expected = config.expected_model_id()
        assert expected is not None
        table = load_reference(str(expected))
        assert table is not None and table.sha256 == config.reference.sha256
        names.add(table.name)
    assert len(names) == sum(1 for c in CONFIGURATIONS if c.reference is not None)
    for key in ("fast", "accurate"):
        assert configuration(key).reference is not None


def test_same_person_score_follows_the_model_scale() -> None:
    sface, _ = same_person_score(str(configuration("fast").expected_model_id()))
    fused, basis = same_person_score(str(configuration("accurate").expected_model_id()))
    assert sface == pytest.approx(0.363, abs=0.01)  # OpenCV's published SFace value
    # Strangers score about 0.6 under fusion: a fixed 0.363 would link everyone.
    assert fused > 0.6 and "reference table" in basis


def test_a_gallery_of_one_configuration_refuses_another_until_reembedded(
    gallery, fast, accurate, photo_paths
) -> None:
    engine = fast
    items = items_for_subject("P-OBAMA", [photo_paths["obama"]], "Barack Obama")
    items += items_for_subject("P-BIDEN", [photo_paths["biden"]], "Joe Biden")
    drain(enroll(gallery, engine, items))
    probe = load_image(photo_paths["obama2"])
    with pytest.raises(ModelMismatchError, match="reembed"):
        search_image(gallery, accurate, probe, "C-1", "test")
    summary = drain(reembed(gallery, accurate))
    assert summary["new_model_id"] == str(accurate.model) and gallery.model_dim == 256
    result = search_image(gallery, accurate, probe, "C-1", "test")
    assert [c.subject_id for c in result.candidates] == ["P-OBAMA", "P-BIDEN"]
    assert result.calibration["reference_sha256"] == configuration("accurate").reference.sha256
    with pytest.raises(ModelMismatchError):
        search_image(gallery, engine, probe, "C-1", "test")
