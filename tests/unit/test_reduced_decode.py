"""A large JPEG is decoded at a reduced size for enrolment (JPEG's own DCT scaling: issue 10
part 5, the fast configuration's speed), and the face still comes out in the photo's own pixels:
its box, its landmarks, its eye distance, and the photo's size in the gallery."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.store import Gallery
from workstation.progress import drain
from workstation.vision.cvcompat import cv2_module
from workstation.vision.engine import REDUCED_MIN_INTER_EYE_PX, FaceEngine
from workstation.vision.images import decode_image, load_image, read_input_file
from workstation.vision.registry import create_engine

SIDE = 640  # the fast configuration's enrolment side


@pytest.fixture(scope="module")
def fast() -> FaceEngine:
    return create_engine("fast")


def _jpeg(path: Path, bgr: np.ndarray, orientation: int | None = None) -> Path:
    image = Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(path, "JPEG", quality=92, exif=exif.tobytes())
    return path


def _scaled(bgr: np.ndarray, longer: int) -> np.ndarray:
    factor = longer / max(bgr.shape[:2])
    size = (round(bgr.shape[1] * factor), round(bgr.shape[0] * factor))
    return cv2_module().resize(bgr, size, interpolation=cv2_module().INTER_CUBIC)


def _reduced(path: Path):
    return decode_image(read_input_file(path), path, at_least=SIDE)


@pytest.fixture(scope="module")
def large_photo(photo_paths, tmp_path_factory) -> Path:
    """obama.jpg enlarged to 2,600 px on its longer side, as a JPEG."""
    bgr = _scaled(load_image(photo_paths["obama"]).bgr, 2600)
    return _jpeg(tmp_path_factory.mktemp("reduced") / "large.jpg", bgr)


def test_a_large_jpeg_is_decoded_at_a_reduced_size_no_smaller_than_asked(
    large_photo, tmp_path
) -> None:
    full, reduced = load_image(large_photo), _reduced(large_photo)
    assert reduced.scale == pytest.approx(0.25, abs=0.005)  # 1/4 keeps 650 px >= 640
    assert max(reduced.width, reduced.height) >= SIDE
    assert reduced.photo_size == (full.width, full.height) == full.photo_size
    assert reduced.sha256 == full.sha256 and full.scale == 1.0
    # Under twice the side, or not a JPEG: decoded in full.
    small = _jpeg(tmp_path / "small.jpg", _scaled(full.bgr, 2 * SIDE - 1))
    assert _reduced(small).scale == 1.0 and _reduced(small).own_size is None
    png = tmp_path / "large.png"
    cv2_module().imwrite(str(png), full.bgr)
    assert _reduced(png).scale == 1.0


def test_a_turned_photo_reports_its_upright_size(large_photo, tmp_path) -> None:
    stored = load_image(large_photo).bgr
    turned = _jpeg(tmp_path / "turned.jpg", stored, orientation=6)  # shown turned a quarter
    upright = load_image(turned)
    assert (upright.width, upright.height) == (stored.shape[0], stored.shape[1])
    reduced = _reduced(turned)
    assert reduced.scale < 1 and reduced.photo_size == (upright.width, upright.height)
    # Turned like the full decode: the same shape, a quarter of the size.
    assert reduced.bgr.shape[:2] == (-(-upright.height // 4), -(-upright.width // 4))


def test_the_main_face_of_a_reduced_decode_is_in_the_photo_s_pixels(fast, large_photo) -> None:
    full, reduced = load_image(large_photo), _reduced(large_photo)
    asked: list[bool] = []
    main = fast.analyze_main_face(
        reduced.bgr, SIDE, scale=reduced.scale, full_pixels=lambda: asked.append(True) or full.bgr
    )
    reference = fast.analyze_main_face(full.bgr, SIDE)
    assert main is not None and reference is not None
    assert not asked  # eyes far apart in the reduced decode: aligned from it
    assert main.face.box.iou(reference.face.box) >= 0.9
    eyes, eyes_full = main.face.quality.inter_eye_px, reference.face.quality.inter_eye_px
    assert eyes is not None and eyes_full is not None
    assert eyes == pytest.approx(eyes_full, rel=0.05) and eyes * reduced.scale >= 64
    assert float(main.face.embedding @ reference.face.embedding) >= 0.98


def test_a_face_too_small_in_the_reduced_decode_is_aligned_from_the_full_one(
    fast, photo_paths, tmp_path
) -> None:
    # A 3,200 px photo decodes at 1/4 (800 px); a face 240 px wide there is 60 px wide, its
    # eyes under REDUCED_MIN_INTER_EYE_PX apart: found on the reduced decode, aligned from the
    # full one.
    obama = load_image(photo_paths["obama"]).bgr
    box = fast.detect(obama)[0].box
    x, y = max(0, round(box.x - box.w / 2)), max(0, round(box.y - box.h / 2))
    around = obama[y : round(box.y + 1.5 * box.h), x : round(box.x + 1.5 * box.w)]
    face = _scaled(around, round(max(around.shape[:2]) * 240 / box.w))
    canvas = np.full((2000, 3200, 3), 120, np.uint8)
    canvas[800 : 800 + face.shape[0], 1500 : 1500 + face.shape[1]] = face
    path = _jpeg(tmp_path / "small-face.jpg", canvas)
    full, reduced = load_image(path), _reduced(path)
    asked: list[bool] = []
    main = fast.analyze_main_face(
        reduced.bgr, SIDE, scale=reduced.scale, full_pixels=lambda: asked.append(True) or full.bgr
    )
    assert main is not None and asked == [True]
    assert (main.face.quality.inter_eye_px or 0) * reduced.scale < REDUCED_MIN_INTER_EYE_PX
    assert 1500 <= main.face.box.center[0] <= 1500 + face.shape[1]  # in the photo's pixels
    by_hand = fast.embed_faces(full.bgr, [(main.face.box, main.face.landmarks)])[0]
    assert np.allclose(main.face.embedding, by_hand, atol=1e-5)  # the full pixels, aligned


def test_enrolment_stores_the_photo_s_own_size_and_box(fast, large_photo, tmp_path) -> None:
    full = load_image(large_photo)
    reference = fast.analyze_main_face(full.bgr, SIDE)
    assert reference is not None
    with Gallery(tmp_path / "g", user="examiner1") as gallery:
        report = drain(enroll(gallery, fast, items_for_subject("P-1", [large_photo])))
        assert report.enrolled == 1
        (face,) = gallery.faces_of("P-1")
        db_path = gallery.db_path
    from workstation.domain import BBox

    assert BBox(*face.box).iou(reference.face.box) >= 0.9
    with sqlite3.connect(db_path) as db:
        sizes = db.execute("SELECT width, height FROM images").fetchall()
    assert sizes == [(full.width, full.height)]
