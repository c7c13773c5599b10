"""Say which face, everywhere: `compare --face-a/--box-a/--face-b/--box-b`, the pairs file's
box_a/box_b (and face_a/face_b) columns, and an enrolment manifest's `box` column, on a real
photo of two people (real YuNet + SFace)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import same_person_line

from workstation.cli import main
from workstation.domain import BBox, FaceChoice
from workstation.vision.cvcompat import cv2_module
from workstation.vision.images import load_image


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def box_text(box: BBox) -> str:
    return ",".join(f"{v:.0f}" for v in (box.x, box.y, box.w, box.h))


@pytest.fixture(scope="module")
def two_people(engine, photo_paths, tmp_path_factory):
    """obama2 (left, the larger face) and biden (right) side by side; and biden's face box."""
    cv2 = cv2_module()
    left, right = (load_image(photo_paths[n]).bgr for n in ("obama2", "biden"))
    height = min(left.shape[0], right.shape[0])
    joined = np.concatenate(
        [cv2.resize(im, (im.shape[1] * height // im.shape[0], height)) for im in (left, right)],
        axis=1,
    )
    path = tmp_path_factory.mktemp("which") / "two_people.png"
    assert cv2.imwrite(str(path), joined)
    faces = engine.analyze(joined)
    assert len(faces) == 2
    left_width = left.shape[1] * height // left.shape[0]
    biden = next(f for f in faces if f.box.center[0] > left_width)
    assert faces[0] is not biden  # the largest face is obama's: the default picks the wrong one
    return path, biden.box


@pytest.fixture
def gallery(photo_paths, tmp_path) -> str:
    """A gallery for `compare` to record its comparisons in (its audit log, its calibration),
    made by this test's examiner (each test has its own profile and key)."""
    folder = str(tmp_path / "g")
    code, _, err = run("--gallery", folder, "enroll", "--subject", "S1", str(photo_paths["obama"]))
    assert code == 0, err
    return folder


def compare_json(gallery: str, *argv: str) -> list[dict]:
    code, out, err = run(
        "--gallery", gallery, "compare", "--case", "C-1", "--purpose", "test", "--json", *argv
    )
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_compare_uses_the_face_it_is_told(two_people, photo_paths, gallery) -> None:
    path, biden_box = two_people
    biden = str(photo_paths["biden"])
    (largest,) = compare_json(gallery, str(path), biden)
    (by_number,) = compare_json(gallery, "--face-a", "1", str(path), biden)
    (by_box,) = compare_json(gallery, "--box-a", box_text(biden_box), str(path), biden)
    same = same_person_line(largest["model_id"])
    assert largest["score"] < same < by_number["score"]
    assert by_box["score"] > same
    assert by_number["face_a"]["face_index"] == 1
    assert by_box["face_a"]["source"] == "manual" and by_box["face_a"]["aligned"]
    assert by_box["face_a"]["box"] == [float(v) for v in box_text(biden_box).split(",")]
    assert BBox(*by_box["face_a"]["found_box"]).iou(biden_box) >= 0.5
    assert by_box["face_b"]["chosen"] == "the largest face"
    # Photo B can be chosen the same way.
    (swapped,) = compare_json(gallery, "--box-b", box_text(biden_box), biden, str(path))
    assert abs(swapped["score"] - by_box["score"]) < 1e-3


def test_a_box_around_no_face_is_compared_unaligned_and_says_so(
    two_people, photo_paths, gallery
) -> None:
    path, _ = two_people
    code, out, err = run(
        "--gallery",
        gallery,
        "compare",
        "--case",
        "C-1",
        "--purpose",
        "test",
        "--box-a",
        "2,2,60,60",
        str(path),
        str(photo_paths["biden"]),
    )
    assert code == 0, err
    assert "LOW CONFIDENCE" in out
    (row,) = compare_json(gallery, "--box-a", "2,2,60,60", str(path), str(photo_paths["biden"]))
    assert row["face_a"]["low_confidence"] and not row["face_a"]["aligned"]


def test_face_choices_are_refused_when_they_cannot_mean_one_face(
    two_people, photo_paths, gallery
) -> None:
    path, box = two_people
    biden = str(photo_paths["biden"])
    with pytest.raises(SystemExit):  # argparse: one or the other
        run(
            "--gallery",
            gallery,
            "compare",
            "--case",
            "C-1",
            "--purpose",
            "test",
            "--face-a",
            "1",
            "--box-a",
            box_text(box),
            str(path),
            biden,
        )
    code, _, err = run(
        "--gallery",
        gallery,
        "compare",
        "--case",
        "C-1",
        "--purpose",
        "test",
        "--face-a",
        "5",
        str(path),
        biden,
    )
    assert code != 0 and "face 5 asked for, but only 2 face(s) found" in err
    code, _, err = run(
        "--gallery",
        gallery,
        "compare",
        "--case",
        "C-1",
        "--purpose",
        "test",
        "--box-a",
        "1,2,nan,4",
        str(path),
        biden,
    )
    assert code != 0 and "finite" in err
    code, _, err = run(
        "--gallery",
        gallery,
        "compare",
        "--case",
        "C-1",
        "--purpose",
        "test",
        "--pairs",
        "x.csv",
        "--face-b",
        "1",
    )
    assert code != 0 and "box_a/box_b" in err


def test_face_choice_parsing() -> None:
    assert FaceChoice.parse(None, None) == FaceChoice()
    assert FaceChoice.parse(" 10, 20, 30, 40 ", "").box == BBox(10, 20, 30, 40)
    assert FaceChoice.parse("", "2").index == 2
    for box, index in (("1,2,3,4", "0"), ("1,2,3", None), ("a,b,c,d", None), (None, "-1")):
        with pytest.raises(ValueError):
            FaceChoice.parse(box, index)


def test_pairs_file_box_and_face_columns(two_people, photo_paths, gallery, tmp_path) -> None:
    path, biden_box = two_people
    biden = str(photo_paths["biden"])
    pairs = tmp_path / "pairs.csv"
    with open(pairs, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_a", "image_b", "box_a", "box_b", "face_a", "face_b"])
        writer.writerow([str(path), biden, box_text(biden_box), "", "", ""])
        writer.writerow([str(path), biden, "", "", "1", ""])
        writer.writerow([str(path), biden, "", "", "", ""])
        writer.writerow([str(path), biden, "1,2,3", "", "", ""])  # malformed: said, the rest go on
    code, out, err = run(
        "--gallery",
        gallery,
        "compare",
        "--case",
        "C-1",
        "--purpose",
        "test",
        "--json",
        "--pairs",
        str(pairs),
    )
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["error"] is None for r in rows] == [True, True, True, False]
    same = same_person_line(rows[0]["model_id"])
    assert rows[0]["face_a"]["source"] == "manual" and rows[0]["score"] > same
    assert rows[1]["face_a"]["face_index"] == 1 and rows[1]["score"] > same
    assert rows[2]["score"] < same
    assert "line 5" in rows[3]["error"] and "X,Y,W,H" in rows[3]["error"]


def test_manifest_box_column_enrols_the_face_in_the_box(two_people, photo_paths, tmp_path) -> None:
    path, biden_box = two_people
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject_id", "image", "name", "box"])
        writer.writerow(["P-BIDEN", str(path), "Joe Biden", box_text(biden_box)])
        writer.writerow(["P-OTHER", str(photo_paths["obama"]), "", "0,0,-5,5"])  # bad box
    gallery = str(tmp_path / "g")
    code, out, err = run("--gallery", gallery, "enroll", "--manifest", str(manifest), "--json")
    outcomes = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    by_subject = {o["subject_id"]: o for o in outcomes}
    assert by_subject["P-BIDEN"]["status"] == "enrolled", err
    assert "manifest's box" in by_subject["P-BIDEN"]["message"]
    assert by_subject["P-OTHER"]["status"] == "failed"
    assert "box" in by_subject["P-OTHER"]["message"]
    code, out, err = run(
        "--gallery",
        gallery,
        "search",
        "--case",
        "2026-0100",
        "--purpose",
        "which face test",
        "--json",
        str(photo_paths["biden"]),
    )
    assert code == 0, err
    result = json.loads(out.splitlines()[0])
    first = result["candidates"][0]
    assert first["subject_id"] == "P-BIDEN" and first["score"] > 0.6
    from workstation.gallery.store import Gallery

    with Gallery(Path(gallery)) as opened:
        (face,) = opened.faces_of("P-BIDEN")
    assert BBox(*face.box).iou(biden_box) >= 0.5 and face.source == "manual" and face.aligned


@pytest.mark.parametrize("key", ["fast", "accurate"])
def test_enrolment_embeds_the_main_face_only_and_counts_the_others(
    key, two_people, tmp_path
) -> None:
    # Enrolment keeps the largest face; the other is counted (the photo is listed for review)
    # and not embedded. The main face comes out exactly as the full analysis gives it, on the
    # configuration's own detection copy.
    from workstation.gallery.enroll import enroll, items_for_subject
    from workstation.gallery.store import Gallery
    from workstation.progress import drain
    from workstation.vision.registry import create_engine

    path, biden_box = two_people
    engine = create_engine(key)
    with Gallery(tmp_path / "g", user="examiner1") as gallery:
        report = drain(enroll(gallery, engine, items_for_subject("P-OBAMA", [path])))
        (outcome,) = report.outcomes
        assert outcome.status == "enrolled" and outcome.other_faces == 1
        stored = gallery.face_vectors([outcome.face_id])[outcome.face_id]
        (face,) = gallery.faces_of("P-OBAMA")
    bgr = load_image(path).bgr
    every = engine.analyze(bgr, max_side=engine.enrol_detection_side, full_resolution=False)
    assert len(every) == 2 and BBox(*face.box).iou(biden_box) < 0.1
    assert np.allclose(stored, every[0].embedding, atol=1e-5)
