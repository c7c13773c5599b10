"""Probe enhancement with lineage (issue 15 item 2): every step changes the pixels, is bounded and
deterministic; replaying the recorded steps on the original gives the same SHA-256; a search on
the working copy records the lineage in its row and its audit event, `audit verify` passes and
fails when a stored step is edited; a footage frame is an original too."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.search import search_image
from workstation.progress import drain
from workstation.vision.enhancement import (
    Enhancement,
    apply,
    enhance,
    pixels_sha256,
    replay,
    working_copy_of,
)
from workstation.vision.enhancement_steps import (
    STEP_SPECS,
    EnhancementError,
    Step,
    load_steps,
    parse_steps,
)
from workstation.vision.images import load_image

# One step of each kind, with parameters that visibly change a portrait.
EVERY_STEP = [
    {"step": "crop", "x": 40, "y": 60, "width": 400, "height": 500},
    {"step": "rotate", "angle": 7.5},
    {"step": "straighten", "eye1_x": 100, "eye1_y": 100, "eye2_x": 200, "eye2_y": 112},
    {"step": "brightness_contrast", "brightness": 25, "contrast": 1.3},
    {"step": "gamma", "gamma": 1.6},
    {"step": "equalise", "method": "clahe", "clip_limit": 3.0, "tiles": 8},
    {"step": "equalise", "method": "global"},
    {"step": "denoise", "h": 8, "h_color": 8},
    {"step": "sharpen", "sigma": 2.0, "amount": 1.5},
    {"step": "upscale", "factor": 1.5, "interpolation": "lanczos4"},
    {"step": "upscale", "factor": 2, "interpolation": "cubic"},
]


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    # A real photo, cropped so the slow steps (denoise) stay quick.
    return load_image(Path(__file__).parents[1] / "fixtures" / "obama.jpg").bgr[100:700, :]


def test_every_kind_of_step_is_covered_here() -> None:
    assert {s["step"] for s in EVERY_STEP} == set(STEP_SPECS)


@pytest.mark.parametrize("given", EVERY_STEP, ids=lambda s: f"{s['step']}-{len(s)}")
def test_each_step_changes_the_image_deterministically(portrait, given) -> None:
    (step,) = parse_steps([given])
    before = portrait.copy()
    once, twice = apply(portrait, [step]), apply(portrait, [step])
    assert np.array_equal(portrait, before)  # the original is never changed
    assert once.dtype == np.uint8 and once.shape[2] == 3
    assert pixels_sha256(once) == pixels_sha256(twice)
    assert once.shape != portrait.shape or not np.array_equal(once, portrait)


def test_quarter_turns_are_exact_and_rotations_keep_the_whole_image(portrait) -> None:
    height, width = portrait.shape[:2]
    turned = apply(portrait, [Step.make("rotate", angle=90)])
    assert turned.shape[:2] == (width, height)
    assert np.array_equal(apply(turned, [Step.make("rotate", angle=-90)]), portrait)
    tilted = apply(portrait, [Step.make("rotate", angle=30)])
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    assert tilted.shape[1] == pytest.approx(width * c + height * s, abs=2)
    assert tilted.shape[0] == pytest.approx(width * s + height * c, abs=2)


def test_straighten_levels_the_detected_eye_line(engine, portrait) -> None:
    tilted = apply(portrait, [Step.make("rotate", angle=12)])
    (left, right, *_rest) = engine.detect(tilted)[0].landmarks
    assert abs(math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))) > 8
    step = Step.make("straighten", eye1_x=left[0], eye1_y=left[1], eye2_x=right[0], eye2_y=right[1])
    level = apply(tilted, [step])
    (left, right, *_rest) = engine.detect(level)[0].landmarks
    assert abs(math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))) < 2


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"step": "gamma", "gamma": 9}, "step 1 'gamma': parameter 'gamma' must be a number"),
        ({"step": "gamma", "gamma": float("nan")}, "parameter 'gamma'"),
        ({"step": "gamma", "gamma": True}, "parameter 'gamma'"),
        ({"step": "gamma", "gamma": "2"}, "parameter 'gamma'"),
        ({"step": "rotate", "angle": 400}, "step 1 'rotate': parameter 'angle'"),
        ({"step": "crop", "width": 2}, "step 1 'crop': parameter 'width'"),
        ({"step": "crop", "x": 1.5}, "parameter 'x' must be a whole number"),
        ({"step": "brightness_contrast", "contrast": 0}, "parameter 'contrast'"),
        ({"step": "brightness_contrast", "brightness": 300}, "parameter 'brightness'"),
        ({"step": "equalise", "method": "magic"}, "parameter 'method' must be one of"),
        ({"step": "equalise", "tiles": 0}, "parameter 'tiles'"),
        ({"step": "denoise", "template_window": 8}, "parameter 'template_window' must be"),
        ({"step": "denoise", "h": 100}, "parameter 'h'"),
        ({"step": "sharpen", "amount": 50}, "step 1 'sharpen': parameter 'amount'"),
        ({"step": "upscale", "factor": 20}, "step 1 'upscale': parameter 'factor'"),
        ({"step": "upscale", "interpolation": "esrgan"}, "parameter 'interpolation'"),
        ({"step": "straighten", "eye1_x": -4}, "parameter 'eye1_x'"),
        ({"step": "gamma", "g": 2}, "step 1 'gamma': unknown parameter 'g'"),
        ({"step": "superres"}, "step 1: unknown step 'superres'"),
        ({"gamma": 2}, "step 1: unknown step None"),
    ],
)
def test_bad_parameters_are_refused_naming_the_step_and_parameter(given, words) -> None:
    with pytest.raises(EnhancementError, match=words.replace("(", r"\(")):
        parse_steps([given])


def test_the_step_number_is_named_and_limits_hold_when_applied(portrait) -> None:
    with pytest.raises(EnhancementError, match="step 2 'sharpen': parameter 'sigma'"):
        parse_steps(json.dumps([{"step": "gamma"}, {"step": "sharpen", "sigma": 0}]))
    with pytest.raises(EnhancementError, match="not valid JSON"):
        parse_steps("[{")
    with pytest.raises(EnhancementError, match="must be a JSON list"):
        parse_steps('{"step": "gamma"}')
    crop = parse_steps([{"step": "gamma"}, {"step": "crop", "x": 800, "width": 200}])
    with pytest.raises(EnhancementError, match=r"step 2 'crop': the rectangle .* beyond"):
        apply(portrait, crop)
    huge = parse_steps([{"step": "upscale", "factor": 8}] * 2)
    with pytest.raises(EnhancementError, match=r"step 2 'upscale'.*megapixel limit"):
        apply(portrait, huge)


def test_steps_from_a_file_and_defaults_filled(tmp_path) -> None:
    path = tmp_path / "steps.json"
    path.write_text('[{"step": "denoise"}, {"step": "upscale", "factor": 2}]')
    denoise, upscale = load_steps(str(path))
    assert denoise.to_dict() == {
        "step": "denoise",
        "h": 5.0,
        "h_color": 5.0,
        "template_window": 7,
        "search_window": 21,
    }
    assert upscale["interpolation"] == "cubic" and upscale["factor"] == 2.0
    with pytest.raises(EnhancementError, match=r"missing\.json: the steps file cannot be read"):
        load_steps(str(tmp_path / "missing.json"))


def test_replaying_the_recorded_steps_gives_the_same_sha256(portrait) -> None:
    steps = parse_steps(EVERY_STEP[:2] + EVERY_STEP[3:7] + EVERY_STEP[8:10])
    copy = enhance(portrait, steps, "f" * 64)
    lineage = Enhancement.from_dict(json.loads(json.dumps(copy.lineage.to_dict())))
    assert lineage == copy.lineage
    again = replay(portrait.copy(), "f" * 64, lineage)
    assert again.matches and again.original_matches and "MATCH" in again.verdict
    assert (lineage.working_width, lineage.working_height) == copy.bgr.shape[1::-1]
    assert lineage.opencv and lineage.summary == "Enhanced: 8 steps"
    # One parameter changed: another working copy, said in words.
    edited = dict(copy.lineage.to_dict())
    edited["steps"] = [dict(s) for s in edited["steps"]]
    edited["steps"][3]["gamma"] = 1.7
    other = replay(portrait, "f" * 64, Enhancement.from_dict(edited))
    assert not other.matches and "same OpenCV" in other.verdict
    # Another original: refused as not the original, whatever the pixels.
    assert "NOT THE ORIGINAL" in replay(portrait, "0" * 64, lineage).verdict


# ---------------------------------------------------------------------- searches
@pytest.fixture
def enrolled(gallery, engine, photo_paths):
    items = items_for_subject("P-OBAMA", [photo_paths["obama"]], "Barack Obama")
    items += items_for_subject("P-BIDEN", [photo_paths["biden"]], "Joe Biden")
    drain(enroll(gallery, engine, items))
    return gallery


STEPS = [
    {"step": "crop", "x": 100, "y": 150, "width": 420, "height": 520},
    {"step": "gamma", "gamma": 1.3},
    {"step": "equalise", "method": "clahe"},
    {"step": "upscale", "factor": 1.5, "interpolation": "lanczos4"},
]


def test_a_search_on_the_working_copy_records_its_lineage(enrolled, engine, photo_paths) -> None:
    from gallery_storage import edit_database

    image = load_image(photo_paths["obama2"])
    steps = parse_steps(STEPS)
    record = search_image(enrolled, engine, image, "C-9", "robbery", steps=steps)
    lineage = record.probe.enhancement
    assert lineage is not None and record.candidates[0].subject_id == "P-OBAMA"
    assert lineage.original_sha256 == image.sha256 == record.probe.sha256
    assert lineage.steps == steps and lineage.box_coordinates == "working copy"
    working = apply(image.bgr, steps)
    assert lineage.working_sha256 == pixels_sha256(working)
    # The face was found on the working copy: its box lies in the copy's pixels.
    box = record.face.box
    assert box.x + box.w <= working.shape[1] and box.y + box.h <= working.shape[0]
    assert (lineage.working_width, lineage.working_height) == (630, 780)
    assert enrolled.search_record(record.search_id) == record
    assert record.to_dict()["probe_enhancement"]["steps"][1] == {"step": "gamma", "gamma": 1.3}
    event = enrolled.audit_events(case_id="C-9")[-1]
    assert event.details["probe_enhancement"] == lineage.to_dict()
    assert enrolled.verify_audit().intact
    # A stored step edited outside the program: verify names the search.
    edit_database(
        enrolled.folder,
        "UPDATE searches SET params = replace(params, '\"gamma\": 1.3', '\"gamma\": 1.2')",
    )
    assert '"gamma": 1.2' in enrolled.search_row(record.search_id)["params"]
    report = enrolled.verify_audit()
    assert not report.intact and f"search {record.search_id}" in (report.problem or "")
    # Edited out of bounds: the record still reads; making the copy again is refused in words.
    edit_database(
        enrolled.folder,
        "UPDATE searches SET params = replace(params, '\"gamma\": 1.2', '\"gamma\": 50')",
    )
    tampered = enrolled.search_record(record.search_id).probe.enhancement
    assert tampered is not None and tampered.steps[1].params == (("gamma", 50),)
    with pytest.raises(EnhancementError, match="step 2 'gamma': parameter 'gamma'"):
        working_copy_of(image.bgr, tampered)


def test_an_unenhanced_search_says_no_enhancement(enrolled, engine, photo_paths) -> None:
    record = search_image(enrolled, engine, load_image(photo_paths["obama2"]), "C-9", "robbery")
    assert record.probe.enhancement is None
    assert record.to_dict()["probe_enhancement"] is None
    assert "probe_enhancement" not in enrolled.search_row(record.search_id)["params"]
    assert enrolled.audit_events(case_id="C-9")[-1].details["probe_enhancement"] is None


def test_a_footage_frame_is_the_original_of_its_working_copy(
    enrolled, engine, photo_paths, tmp_path
) -> None:
    from footage_clips import Appearance, make_clip

    from workstation.footage.search import search_frame
    from workstation.vision.video import probe_video, read_frame

    clip = tmp_path / "dark.mp4"
    make_clip(engine, clip, [Appearance(photo_paths["obama2"], 0.0, 1.0, 100, 60)], seconds=1.0)
    video = probe_video(clip)
    frame = read_frame(video, 5)
    steps = parse_steps([{"step": "upscale", "factor": 2}, {"step": "sharpen"}])
    record = search_frame(enrolled, engine, video, 5, frame, "C-9", "frame", steps=steps)
    lineage = record.probe.enhancement
    assert lineage is not None and lineage.original_kind == "video frame"
    assert lineage.original_sha256 == pixels_sha256(frame)
    assert record.probe.sha256 == video.sha256 and record.probe.frame["frame_index"] == 5
    assert record.candidates[0].subject_id == "P-OBAMA"
    again = read_frame(probe_video(clip), 5)
    assert replay(again, pixels_sha256(again), lineage).matches
    assert enrolled.verify_audit().intact


def test_a_watch_recomputes_the_probe_from_the_working_copy(enrolled, engine, photo_paths) -> None:
    from workstation.gallery.search import rank_candidates
    from workstation.gallery.watches import probe_embedding

    image = load_image(photo_paths["obama2"])
    record = search_image(enrolled, engine, image, "C-9", "cold case", steps=parse_steps(STEPS))
    again = rank_candidates(enrolled, probe_embedding(enrolled, engine, record.search_id), 1)
    assert again[0].subject_id == "P-OBAMA"
    assert again[0].score == pytest.approx(record.candidates[0].score, abs=1e-3)
