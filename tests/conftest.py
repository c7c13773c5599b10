"""Shared test fixtures: real models, real photos, real SQLite and FAISS files in tmp folders.

No test may touch the user's real settings or gallery: the data and config folders point into
each test's tmp folder. Qt runs offscreen.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]


def shared_faces_dir() -> Path | None:
    """../shared/faces (the labelled development set), or WORKSTATION_FACES if set."""
    override = os.environ.get("WORKSTATION_FACES")
    candidates = (
        [Path(override)]
        if override
        else [REPO.parent / "shared" / "faces", REPO / ".." / "shared" / "faces"]
    )
    for candidate in candidates:
        if (candidate / "labels.csv").exists():
            return candidate.resolve()
    return None


TEST_LOGIN = "examiner1"


def same_person_line(model_id: object) -> float:
    """The score the product reads as "probably the same person" for this model (strangers
    reach it about 1 in 630 in its shipped reference table). Tests compare scores with it, not
    with numbers of one model's scale: a fused model's strangers score about 0.6, SFace's 0.0."""
    from workstation.calibration.reference import same_person_score

    return same_person_score(str(model_id))[0]


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSTATION_DATA_DIR", str(tmp_path / "user-data"))
    monkeypatch.setenv("WORKSTATION_CONFIG_DIR", str(tmp_path / "user-config"))
    monkeypatch.delenv("WORKSTATION_MODEL_DIR", raising=False)
    monkeypatch.delenv("WORKSTATION_KEY_PASSPHRASE", raising=False)
    # Each test runs as one OS login, "examiner1", whatever this machine's login is (the real
    # lookup is tested in tests/unit/test_identity.py); its profile is the config folder above,
    # where its examiner key is made on first use. Other examiners have profiles of their own
    # (tests/examiners.py).
    monkeypatch.setattr("workstation.identity.os_login", lambda: TEST_LOGIN)


@pytest.fixture(scope="session")
def engine():
    """The real default engine (the registry's default configuration), loaded once per session."""
    from workstation.vision.registry import create_engine

    return create_engine()


@pytest.fixture(scope="session")
def photo_paths() -> dict[str, Path]:
    return {
        "obama": FIXTURES / "obama.jpg",
        "obama2": FIXTURES / "obama2.jpg",
        "biden": FIXTURES / "biden.jpg",
    }


# ---------------------------------------------------------------------- both kinds of gallery
# A test module that sets GALLERY_KINDS = ("embedded", "agency") runs each of its tests that
# takes `gallery`, `gallery_folder` or `new_gallery_folder` twice: on an embedded gallery (SQLite
# and FAISS files) and on an agency gallery (PostgreSQL and Milvus, real servers shared by the
# session: tests/agency_servers.py). Both kinds pass the same tests.
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "gallery_kind" in metafunc.fixturenames:
        kinds = getattr(metafunc.module, "GALLERY_KINDS", ("embedded",))
        metafunc.parametrize("gallery_kind", kinds)


@pytest.fixture(scope="session")
def agency_servers():
    """PostgreSQL (pgserver) and Milvus Lite for the session. Without them installed the agency
    tests are skipped, unless WORKSTATION_REQUIRE_AGENCY=1 (CI) makes that a failure."""
    from agency_servers import AgencyServers, agency_available

    missing = agency_available()
    if missing is not None:
        if os.environ.get("WORKSTATION_REQUIRE_AGENCY") == "1":
            pytest.fail(missing + " (WORKSTATION_REQUIRE_AGENCY=1)")
        pytest.skip(missing + ": pip install -e '.[test]'")
    servers = AgencyServers()
    yield servers
    servers.close()


@pytest.fixture
def new_gallery_folder(gallery_kind: str, tmp_path: Path, request: pytest.FixtureRequest):
    """A factory of empty gallery folders of this test's kind: `new_gallery_folder("name")`.

    Embedded: a folder path where the first opening creates the gallery. Agency: a folder with
    gallery.toml naming a fresh database and collection.
    """
    made: list[Path] = []
    servers = request.getfixturevalue("agency_servers") if gallery_kind == "agency" else None

    def make(name: str = "gallery") -> Path:
        folder = tmp_path / name
        if servers is not None:
            servers.new_gallery(folder)
            made.append(folder)
        return folder

    yield make
    for folder in made:
        servers.drop_gallery(folder)


@pytest.fixture
def gallery_folder(new_gallery_folder):
    return new_gallery_folder("gallery")


@pytest.fixture
def gallery(gallery_folder: Path):
    from workstation.gallery.store import Gallery

    with Gallery(gallery_folder, user="examiner1") as opened:
        yield opened


@pytest.fixture(scope="session")
def shared_faces() -> Path:
    """The shared labelled photos. CI sets WORKSTATION_REQUIRE_SHARED_FACES=1 so a missing
    folder fails instead of skipping."""
    found = shared_faces_dir()
    if found is None:
        if os.environ.get("WORKSTATION_REQUIRE_SHARED_FACES") == "1":
            pytest.fail(
                "../shared/faces is required (WORKSTATION_REQUIRE_SHARED_FACES=1) but missing"
            )
        pytest.skip("../shared/faces is not beside this checkout")
    return found


def build_tiny_recognizer(path: Path, dim: int = 64, seed: int = 7) -> Path:
    """A small ArcFace-shaped ONNX recogniser (1x3x112x112 -> 1xdim), built with the onnx package.

    Average-pools the face to 3x14x14 and projects it with fixed random weights: not a good
    recogniser, but a real ONNX model that insightface's router loads as ArcFaceONNX and
    onnxruntime runs, so the pack backend is exercised end to end without downloaded weights.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((3 * 14 * 14, dim)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node(
                "AveragePool", ["data"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]
            ),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["fc1"]),
        ],
        "tiny_arcface",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, dim])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def tiny_insightface_pack(tmp_path: Path) -> Path:
    pack = tmp_path / "insightface" / "models" / "tinypack"
    build_tiny_recognizer(pack / "w600k_tiny.onnx")
    return pack
