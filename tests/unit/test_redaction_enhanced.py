"""Redaction of an enhanced search (issue 15 items 2 and 5): the marks and boxes live in the
original's pixels; the working copy is made again from the unredacted original and every box
carried into it through the steps' geometry (vision/enhancement.py); the searched face stays
the pixels searched; a face only the working copy shows is found there and redacted in both.
(The PDF: tests/gui/test_redaction_export.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
from group_photos import CASE, PURPOSE, STREET_FRAME, group_photo, inside, street_frame

from workstation.calibration.reference import same_person_score
from workstation.footage import search_frame
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.search import search_image
from workstation.progress import drain
from workstation.reports.bundle import build_case_bundle
from workstation.reports.case_report import report_images
from workstation.reports.enhancement_report import (
    enhancement_images,
    original_key,
    searched_pixels,
    working_key,
)
from workstation.reports.redaction import (
    FOUND_IN_WORKING_COPY,
    SOURCE_DETECTED,
    detect_faces_for_redaction,
    plan_redaction,
    redacted_original,
    redacted_searched,
)
from workstation.vision.alignment import face_view
from workstation.vision.cvcompat import cv2_module
from workstation.vision.enhancement_steps import parse_steps
from workstation.vision.images import load_image


@pytest.fixture
def group_case(gallery, engine, photo_paths, tmp_path):
    """Obama enrolled (Biden, twice in the photo, is a bystander), the group photo made."""
    drain(enroll(gallery, engine, items_for_subject("P-OBAMA", [photo_paths["obama"]], "Obama")))
    path = tmp_path / "group.png"
    spots = group_photo(engine, photo_paths, path)
    return gallery, path, spots


# Crop away the small Biden (x 960-1040 of the 1100 px group photo), straighten a little,
# upscale, brighten: the working copy's pixels are not the original's.
ENHANCED_STEPS = [
    {"step": "crop", "x": 20, "y": 60, "width": 920, "height": 620},
    {"step": "rotate", "angle": 8.0},
    {"step": "upscale", "factor": 1.5, "interpolation": "cubic"},
    {"step": "gamma", "gamma": 1.2},
]


def test_an_enhanced_search_redacts_both_images_and_keeps_the_searched_face(
    group_case, engine, photo_paths
) -> None:
    """Marks and boxes live in the original's pixels; the working copy is made again from the
    unredacted original and each box carried into it through the steps' geometry."""
    gallery, path, spots = group_case
    original = load_image(path)
    steps = parse_steps(ENHANCED_STEPS)
    record = search_image(gallery, engine, original, CASE, PURPOSE, steps=steps)
    assert record.probe.enhancement is not None
    bundle = build_case_bundle(gallery, CASE)
    plan = bundle.redactions[record.search_id]
    assert plan.problem is None and plan.geometry is not None
    # The searched face, carried back to the original, is Obama's; the bystanders are Biden's,
    # the small one outside the crop too (it is in the original shown in the report).
    assert plan.searched_box is not None and inside(plan.searched_box, spots["obama"])
    detected = [b for b in plan.boxes if b.source == SOURCE_DETECTED]
    assert any(inside(b.box, spots["biden_near"]) for b in detected)
    assert any(inside(b.box, spots["biden_small"]) for b in detected)
    assert not any(inside(b.box, spots["obama"]) and b.box.iou(plan.searched_box) > 0.3
                   for b in detected)  # fmt: skip
    assert all(b.found_in in ("original", FOUND_IN_WORKING_COPY) for b in detected)

    working, problem = searched_pixels(record, original.bgr)
    assert working is not None, problem
    shown_original = redacted_original(original.bgr, plan)
    shown_working = redacted_searched(working, plan)
    # The searched face is exactly the pixels searched: its box in the working copy untouched.
    x, y, w, h = (int(v) for v in record.face.box.as_list())
    assert np.array_equal(shown_working[y : y + h, x : x + w], working[y : y + h, x : x + w])
    # Every bystander is obscured in the original; those inside the crop in the working copy.
    for box in detected:
        bx, by, bw, bh = (int(v) for v in box.box.as_list())
        region = (slice(by, by + bh), slice(bx, bx + bw))
        assert not np.array_equal(shown_original[region], original.bgr[region])
    near = next(b for b in detected if inside(b.box, spots["biden_near"]))
    there = plan.geometry.forward_box(near.box)
    nx, ny, nw, nh = (int(v) for v in there.as_list())
    assert not np.array_equal(
        shown_working[ny : ny + nh, nx : nx + nw], working[ny : ny + nh, nx : nx + nw]
    )
    # As an attacker reads it: SFace on the redacted working copy at the face the detector
    # finds on the unredacted one, against Biden's own photo (baseline: the same before).
    same_person, _ = same_person_score(str(engine.model))
    biden = engine.analyze(load_image(photo_paths["biden"]).bgr)[0].embedding
    truth = max(
        detect_faces_for_redaction(working), key=lambda d: d.box.iou(there) if there else 0.0
    )
    before, after = (
        float(np.dot(engine.embed_faces(image, [(truth.box, truth.landmarks)])[0], biden))
        for image in (working, shown_working)
    )
    print(f"working copy, near Biden: cosine {before:.3f} unredacted, {after:.3f} redacted")
    assert before >= same_person > after

    # The report: the probe crop is the one searched (from the unredacted working copy), and
    # both previews are the redacted images.
    images = report_images(gallery, bundle)
    searched_crop = face_view(working, record.face.box.as_list(), record.face.landmarks).bgr
    probe_crop = cv2_module().imdecode(
        np.frombuffer(images[f"probe-{record.search_id}"], np.uint8), 1
    )
    assert np.array_equal(probe_crop, searched_crop)
    expected = enhancement_images(record, shown_original, shown_working, lambda bgr: bgr.tobytes())
    for key in (original_key(record), working_key(record)):
        drawn = cv2_module().imdecode(np.frombuffer(images[key], np.uint8), 1)
        assert drawn.tobytes() == expected[key]
    photo = cv2_module().imdecode(
        np.frombuffer(images[f"probephoto-{record.search_id}"], np.uint8), 1
    )
    assert not np.array_equal(photo, original.bgr)

    # The bundle: boxes in the original's pixels (with its SHA-256); the working copy redacted
    # by carrying them through the recorded steps.
    listed = json.loads(json.dumps(bundle.data))["searches"]
    entry = next(s for s in listed if s["search_id"] == record.search_id)["redaction"]
    assert entry["image_sha256"] == original.sha256
    assert entry["coordinates"].startswith("pixels of the original")
    copy = entry["working_copy"]
    assert copy["working_sha256"] == record.probe.enhancement.working_sha256
    assert "recorded steps" in copy["redacted_by"]
    assert len(copy["boxes"]) == plan.redacted_count
    assert "in the original and in the working copy" in entry["statement"]


def test_a_face_only_the_working_copy_shows_is_redacted(gallery, engine, photo_paths, tmp_path):
    """A bystander too faint for the detector in the original (its face squeezed into 8 grey
    levels: a low-contrast CCTV still), revealed by the working copy's equalisation, is found
    there and redacted in both images."""
    drain(enroll(gallery, engine, items_for_subject("P-OBAMA", [photo_paths["obama"]], "Obama")))
    path = tmp_path / "group.png"
    spots = group_photo(engine, photo_paths, path)
    canvas = load_image(path).bgr.copy()
    x, y, w, h = (int(v) for v in spots["biden_near"].as_list())
    faint = 60 + canvas[y : y + h, x : x + w].astype(np.float64) * 8 / 255
    canvas[y : y + h, x : x + w] = faint.astype(np.uint8)
    cv2_module().imwrite(str(path), canvas)
    original = load_image(path)
    found = detect_faces_for_redaction(original.bgr)
    assert not any(inside(d.box, spots["biden_near"]) for d in found)  # missed in the original
    steps = parse_steps([{"step": "equalise", "method": "clahe", "clip_limit": 40, "tiles": 16}])
    record = search_image(gallery, engine, original, CASE, PURPOSE, steps=steps)
    plan = plan_redaction(record, original.bgr, original.sha256, [])
    revealed = [b for b in plan.boxes if inside(b.box, spots["biden_near"])]
    assert revealed and revealed[0].found_in == FOUND_IN_WORKING_COPY
    assert "found only on the working copy" in plan.statement()
    # Redacted in the original too, though the original's detector never saw it.
    shown = redacted_original(original.bgr, plan)
    region = (slice(y, y + h), slice(x, x + w))
    assert not np.array_equal(shown[region], original.bgr[region])


def test_an_enhanced_video_frame_search_redacts_the_frame_and_the_working_copy(
    gallery, engine, photo_paths, tmp_path
) -> None:
    """A footage frame searched on a working copy cropped to the searched face: the bystander
    outside the crop is redacted in the frame the report shows; the working copy keeps the
    searched face as searched."""
    drain(enroll(gallery, engine, items_for_subject("P-OBAMA", [photo_paths["obama"]], "Obama")))
    video, bgr = street_frame(engine, photo_paths, tmp_path)
    steps = parse_steps(
        [
            {"step": "crop", "x": 0, "y": 20, "width": 300, "height": 320},
            {"step": "rotate", "angle": 5.0},
            {"step": "upscale", "factor": 2.0},
            {"step": "sharpen"},
        ]
    )
    record = search_frame(gallery, engine, video, STREET_FRAME, bgr, CASE, PURPOSE, steps=steps)
    assert record.probe.enhancement is not None
    bundle = build_case_bundle(gallery, CASE)
    plan = bundle.redactions[record.search_id]
    assert plan.problem is None and plan.image_ref == f"{video.sha256}#frame=5"
    assert plan.geometry is not None
    (bystander,) = [b for b in plan.boxes if b.redacted]
    assert bystander.box.x > 300  # Biden, right of Obama, outside the crop
    shown = redacted_original(bgr, plan)
    truth = next(d for d in engine.detect(bgr) if d.box.x > 300)
    biden = engine.analyze(load_image(photo_paths["biden"]).bgr)[0].embedding
    same_person, _ = same_person_score(str(engine.model))
    before, after = (
        float(np.dot(engine.embed_faces(image, [(truth.box, truth.landmarks)])[0], biden))
        for image in (bgr, shown)
    )
    assert before >= same_person > after
    working, problem = searched_pixels(record, bgr)
    assert working is not None, problem
    assert np.array_equal(redacted_searched(working, plan), working)  # nobody else in the crop
    images = report_images(gallery, bundle)
    for key in (f"probephoto-{record.search_id}", original_key(record), working_key(record)):
        assert key in images
    frame_preview = cv2_module().imdecode(
        np.frombuffer(images[f"probephoto-{record.search_id}"], np.uint8), 1
    )
    assert np.array_equal(frame_preview, shown)  # the frame as shown: redacted
