"""Gallery hygiene on real photos: the same person enrolled under two ids is found, and merging
them is one audited transaction that keeps the index consistent."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from conftest import same_person_line

from workstation.cli import main
from workstation.errors import GalleryError, WorkstationError
from workstation.gallery.enroll import EnrollItem, enroll
from workstation.gallery.hygiene import (
    DEFAULT_DUPLICATE_THRESHOLD,
    duplicate_threshold,
    find_duplicate_subjects,
    merge_subjects,
)
from workstation.gallery.search import search_image
from workstation.gallery.store import Gallery
from workstation.progress import drain
from workstation.vision.images import load_image


@pytest.fixture
def twice_enrolled(gallery: Gallery, engine, photo_paths: dict[str, Path]) -> Gallery:
    """Obama under P-1 and again (another photo) under P-7; Biden under P-2."""
    items = [
        EnrollItem("P-1", photo_paths["obama"], "test", "Barack Obama", {"dob": "1961-08-04"}),
        EnrollItem("P-7", photo_paths["obama2"], "test", None, {"dob": "1961", "alias": "B.O."}),
        EnrollItem("P-2", photo_paths["biden"], "test", "Joe Biden"),
    ]
    assert drain(enroll(gallery, engine, items)).enrolled == 3
    return gallery


def test_finds_the_person_enrolled_twice_and_nobody_else(twice_enrolled: Gallery) -> None:
    pairs = find_duplicate_subjects(twice_enrolled)
    assert len(pairs) == 1
    (pair,) = pairs
    assert (pair.subject_a, pair.subject_b) == ("P-1", "P-7")
    assert pair.name_a == "Barack Obama" and pair.name_b is None
    assert pair.score > duplicate_threshold(twice_enrolled)[0]
    faces = {f.id: f.subject_id for f in twice_enrolled.all_faces()}
    assert faces[pair.face_a] == "P-1" and faces[pair.face_b] == "P-7"
    assert pair.to_dict()["score"] == pytest.approx(pair.score, abs=1e-5)
    # A stricter threshold than their score finds nothing; a lax one also pairs Obama and Biden.
    assert find_duplicate_subjects(twice_enrolled, threshold=pair.score + 0.01) == []
    lax = find_duplicate_subjects(twice_enrolled, threshold=-1.0)
    assert len(lax) == 3 and lax[0].score == pytest.approx(pair.score)


def test_small_gallery_uses_the_fixed_strict_threshold(twice_enrolled: Gallery) -> None:
    from workstation.calibration.reference import score_like_sface

    threshold, why = duplicate_threshold(twice_enrolled)
    # 9,000-odd impostor pairs cannot show an FMR of 1e-5, so the documented fixed value is used,
    # moved onto the scale of the gallery's model (its strangers' tail in its reference table).
    assert twice_enrolled.model_id is not None
    expected = score_like_sface(twice_enrolled.model_id, DEFAULT_DUPLICATE_THRESHOLD)
    assert expected is not None and threshold == expected[0] and "too few" in why
    # Stricter than the score read as "probably the same person", on any model's scale.
    assert threshold > same_person_line(twice_enrolled.model_id)
    sface_alone = (
        "sface-2021dec-int8bq@fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
    )
    same = score_like_sface(sface_alone, DEFAULT_DUPLICATE_THRESHOLD)
    assert same is not None and same[0] == pytest.approx(DEFAULT_DUPLICATE_THRESHOLD, abs=1e-6)
    assert score_like_sface("insightface:pack/x.onnx@abc", DEFAULT_DUPLICATE_THRESHOLD) is None


def test_merge_moves_faces_merges_attributes_and_is_audited(
    twice_enrolled: Gallery, engine, photo_paths
) -> None:
    moved_face = twice_enrolled.faces_of("P-7")[0].id
    twice_enrolled.index()  # loaded, so the merge must keep it consistent
    details = merge_subjects(twice_enrolled, "P-1", "P-7", "same man: passport check")
    assert twice_enrolled.subject("P-7") is None
    keep = twice_enrolled.subject("P-1")
    assert keep is not None and keep.face_count == 2 and keep.name == "Barack Obama"
    assert keep.attributes["dob"] == "1961-08-04"  # the kept subject's value wins
    assert keep.attributes["alias"] == "B.O."  # new values are added
    (history,) = keep.attributes["merged_from"]
    assert history["subject_id"] == "P-7" and history["attributes"]["dob"] == "1961"
    assert details["face_ids_moved"] == [moved_face]
    assert details["attributes_conflicting"] == ["dob"]
    event = twice_enrolled.audit_events()[-1]
    assert event.action == "merge" and event.details["reason"] == "same man: passport check"
    assert event.details["merged_subject_id"] == "P-7" and event.details["keep_subject_id"] == "P-1"
    assert twice_enrolled.verify_audit().intact
    # Search sees one subject for both photos; the index was kept, not rebuilt.
    result = search_image(twice_enrolled, engine, load_image(photo_paths["obama2"]), "C-2", "check")
    assert [c.subject_id for c in result.candidates] == ["P-1", "P-2"]
    assert result.candidates[0].face_id == moved_face
    assert "index_rebuild" not in [e.action for e in twice_enrolled.audit_events()]
    with Gallery(twice_enrolled.folder) as reopened:
        messages: list[str] = []
        assert reopened.index(on_message=messages.append).count == 3 and messages == []
    assert find_duplicate_subjects(twice_enrolled) == []


def test_merge_refuses_bad_requests(twice_enrolled: Gallery) -> None:
    with pytest.raises(WorkstationError, match="needs a reason"):
        merge_subjects(twice_enrolled, "P-1", "P-7", "  ")
    with pytest.raises(WorkstationError, match="into itself"):
        merge_subjects(twice_enrolled, "P-1", "P-1", "oops")
    with pytest.raises(GalleryError, match="'P-404' is not in the gallery"):
        merge_subjects(twice_enrolled, "P-1", "P-404", "typo")
    assert twice_enrolled.subject_count() == 3
    assert "merge" not in [e.action for e in twice_enrolled.audit_events()]


def test_cli_duplicates_and_merge(twice_enrolled: Gallery) -> None:
    folder = str(twice_enrolled.folder)
    twice_enrolled.close()

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        return main(["--gallery", folder, *argv], out=out, err=err), out.getvalue(), err.getvalue()

    code, out, _ = run("duplicates", "--case", "C-1", "--purpose", "test", "--json")
    (line,) = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and (line["subject_a"], line["subject_b"]) == ("P-1", "P-7")
    with Gallery(Path(folder)) as reopened:
        assert line["threshold"] == duplicate_threshold(reopened)[0]
    code, out, _ = run("duplicates", "--case", "C-1", "--purpose", "test", "--threshold", "0.99")
    assert code == 0 and "0 possible duplicate pair(s)" in out
    code, _, err = run("merge", "P-1", "P-404", "--reason", "typo")
    assert code == 1 and "P-404" in err and "Traceback" not in err
    code, out, _ = run("merge", "P-1", "P-7", "--reason", "same person")
    assert code == 0 and "1 face(s) moved" in out
    code, out, _ = run("duplicates", "--case", "C-1", "--purpose", "test")
    assert code == 0 and "0 possible duplicate pair(s)" in out


def test_a_duplicate_pair_does_not_vouch_for_itself(twice_enrolled: Gallery) -> None:
    """The FMR shown for a possible duplicate leaves out the two subjects' own face pairs."""
    from workstation.gallery.calibration import calibrate, fmr_excluding_pair

    pair = find_duplicate_subjects(twice_enrolled)[0]
    calibration = drain(calibrate(twice_enrolled, reason="test"))
    plain = calibration.estimate(pair.score)
    fair = fmr_excluding_pair(
        twice_enrolled, calibration, pair.subject_a, pair.subject_b, pair.score
    )
    assert plain is not None and fair is not None
    assert plain.exceed >= 1  # the pair itself is counted among the "strangers"
    assert fair.exceed == plain.exceed - 1 and fair.pairs == plain.pairs - 1
    assert fair.below_floor and fair.text.startswith("< 1 in")
