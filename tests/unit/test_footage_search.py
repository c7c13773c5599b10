"""Searching footage: tracks and frames find the right person, with lineage in the audit log;
finding a person marks the right time segments; the `footage` command."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from footage_clips import Appearance, make_clip

from workstation.cli import main
from workstation.errors import CaseRequiredError
from workstation.footage import (
    find_person,
    find_subject,
    find_threshold,
    probe_video,
    record_scan,
    scan_video,
    search_frame,
    search_track,
)
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.progress import drain
from workstation.vision.engine import select_face
from workstation.vision.images import load_image
from workstation.vision.video import read_frame


@pytest.fixture(scope="module")
def clip(engine, photo_paths, tmp_path_factory) -> Path:
    """Obama (a different photo from the enrolled one) 0.0-1.6 s and again 3.0-4.0 s; Biden
    1.0-2.4 s."""
    path = tmp_path_factory.mktemp("clips") / "street.mp4"
    make_clip(
        engine,
        path,
        [
            Appearance(photo_paths["obama2"], 0.0, 1.6, 20, 60, dx_per_s=50),
            Appearance(photo_paths["biden"], 1.0, 2.4, 300, 80),
            Appearance(photo_paths["obama2"], 3.0, 4.0, 200, 150),
        ],
        seconds=4.4,
    )
    return path


@pytest.fixture(scope="module")
def scanned(engine, clip):
    return drain(scan_video(engine, clip))


@pytest.fixture
def enrolled(gallery, engine, photo_paths):
    items = items_for_subject("S-OBAMA", [photo_paths["obama"]], "Obama") + items_for_subject(
        "S-BIDEN", [photo_paths["biden"]], "Biden"
    )
    report = drain(enroll(gallery, engine, items))
    assert gallery.face_count() == 2, report
    return gallery


def test_each_track_finds_the_right_person_first_with_lineage(enrolled, scanned) -> None:
    assert [(t.start_s, t.end_s) for t in scanned.tracks] == [(0.0, 1.4), (1.0, 2.2), (3.0, 3.8)]
    expected = ["S-OBAMA", "S-BIDEN", "S-OBAMA"]
    for track, subject in zip(scanned.tracks, expected, strict=True):
        result = search_track(enrolled, scanned, track, "CASE-7", "robbery lead")
        assert result.candidates[0].subject_id == subject
        threshold, _ = find_threshold(track.model)
        assert result.candidates[0].score > threshold > result.candidates[1].score
        assert result.probe.sha256 == scanned.video.sha256
        assert result.probe.path.endswith(f"street.mp4#frame={track.best_frame}")
        assert result.params["track_id"] == track.track_id
        assert result.params["frame_index"] == track.best_frame
    events = [e for e in enrolled.audit_events(case_id="CASE-7") if e.action == "search"]
    assert len(events) == 3
    frame = events[1].details["probe_frame"]
    biden = scanned.tracks[1]
    assert frame["video_sha256"] == scanned.video.sha256
    assert frame["track_id"] == biden.track_id
    assert frame["frame_index"] == biden.best_frame
    assert frame["timecode"] == f"00:00:0{biden.best_frame // 10}.{biden.best_frame % 10}00"
    assert (frame["track_start_s"], frame["track_end_s"]) == (1.0, 2.2)
    assert enrolled.verify_audit().intact


def test_scan_is_recorded_in_the_audit_log(enrolled, scanned) -> None:
    record_scan(enrolled, scanned, "CASE-7", "robbery lead")
    event = enrolled.audit_events(case_id="CASE-7")[-1]
    assert event.action == "footage_scan"
    assert event.details["video"]["sha256"] == scanned.video.sha256
    assert [t["track"] for t in event.details["tracks"]] == [1, 2, 3]


def test_one_chosen_frame_and_face_is_searched_with_its_frame_lineage(
    enrolled, engine, clip
) -> None:
    info = probe_video(clip)
    frame_index = 13  # 1.3 s: Obama (left) and Biden (right) both in view
    bgr = read_frame(info, frame_index)
    faces = engine.analyze(bgr)
    assert len(faces) == 2
    biden_face = 0 if faces[0].box.x > faces[1].box.x else 1
    result = search_frame(
        enrolled, engine, info, frame_index, bgr, "CASE-8", "frame probe", face_index=biden_face
    )
    assert result.candidates[0].subject_id == "S-BIDEN"
    assert result.faces_found == 2
    event = enrolled.audit_events(case_id="CASE-8")[-1]
    assert event.details["probe_frame"]["frame_index"] == 13
    assert event.details["probe_frame"]["timecode"] == "00:00:01.300"
    assert event.details["probe_path"].endswith("#frame=13")


def test_find_a_person_from_a_probe_photo_marks_their_segments(
    engine, scanned, photo_paths
) -> None:
    face, _ = select_face(engine, load_image(photo_paths["obama"]).bgr, "obama.jpg")
    segments = find_person(scanned, face.embedding)
    assert [(s.start_s, s.end_s) for s in segments] == [(0.0, 1.4), (3.0, 3.8)]
    assert [s.track_ids for s in segments] == [(1,), (3,)]
    assert segments[0].start_frame == 0 and segments[1].end_frame == 38
    assert all(s.score >= find_threshold(engine.model)[0] for s in segments)


def test_find_a_gallery_subject_in_footage(enrolled, scanned) -> None:
    with pytest.raises(CaseRequiredError):
        find_subject(enrolled, scanned, "S-BIDEN", None, None)
    segments = find_subject(enrolled, scanned, "S-BIDEN", "CASE-9", "where was he")
    assert [(s.start_s, s.end_s, s.track_ids) for s in segments] == [(1.0, 2.2, (2,))]
    event = enrolled.audit_events(case_id="CASE-9")[-1]
    assert event.action == "footage_find"
    assert event.details["video_sha256"] == scanned.video.sha256
    assert event.details["segments"][0]["start_tc"] == "00:00:01.000"
    threshold, basis = find_threshold(enrolled.model_id)
    assert event.details["threshold"] == threshold
    assert event.details["threshold_basis"] == basis and "reference table" in basis


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_footage_command_prints_one_json_object_per_track(enrolled, clip) -> None:
    folder = str(enrolled.folder)
    enrolled.close()
    code, out, err = _run(
        [
            "--gallery",
            folder,
            "footage",
            "--case",
            "C9",
            "--purpose",
            "p",
            "--json",
            "--top",
            "1",
            str(clip),
        ]
    )
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["track"] for r in rows] == [1, 2, 3]
    assert [(r["start_s"], r["end_s"]) for r in rows] == [(0.0, 1.4), (1.0, 2.2), (3.0, 3.8)]
    assert [r["candidates"][0]["subject_id"] for r in rows] == ["S-OBAMA", "S-BIDEN", "S-OBAMA"]
    assert all(len(r["candidates"]) == 1 and r["frames"] > 0 for r in rows)
    assert {"rank", "subject_id", "score", "face_id"} <= set(rows[0]["candidates"][0])
    assert rows[1]["best_frame"] % 2 == 0


def test_footage_command_errors_are_one_line_naming_the_file(tmp_path, enrolled) -> None:
    folder = str(enrolled.folder)
    enrolled.close()
    bad = tmp_path / "evidence.mov"
    bad.write_bytes(b"\x00\x01 not a video at all" * 100)
    code, out, err = _run(
        ["--gallery", folder, "footage", "--case", "C", "--purpose", "p", str(bad)]
    )
    assert code == 1
    assert err.count("\n") == 1 and "evidence.mov" in err and "not a video" in err
    assert "Traceback" not in err and out == ""


def test_footage_command_finds_a_gallery_subject(enrolled, clip) -> None:
    folder = str(enrolled.folder)
    enrolled.close()
    argv = ["--gallery", folder, "footage", "--case", "C9", "--purpose", "p", "--json"]
    code, out, err = _run([*argv, "--find-subject", "S-OBAMA", str(clip)])
    assert code == 0, err
    segments = [json.loads(line) for line in out.splitlines()]
    assert [(s["start_s"], s["end_s"]) for s in segments] == [(0.0, 1.4), (3.0, 3.8)]
    assert all(
        s["subject_id"] == "S-OBAMA" and s["start_tc"].startswith("00:00:0") for s in segments
    )
    code, _, err = _run([*argv, "--find-subject", "S-NOBODY", str(clip)])
    assert code == 1 and "S-NOBODY" in err and "not in the gallery" in err


def test_footage_command_says_which_faces_it_did_not_look_for(enrolled, clip) -> None:
    folder = str(enrolled.folder)
    enrolled.close()
    argv = ["--gallery", folder, "footage", "--case", "C9", "--purpose", "p", "--top", "1"]
    code, out, err = _run([*argv, "--min-face", "200", str(clip)])
    assert code == 0, err
    # A 480 px clip is searched at its own size whatever is asked: the detector's own limit.
    assert "faces narrower than 28 px in the frame were not looked for" in out
    code, out, err = _run([*argv, "--min-face", "12", str(clip)])
    assert code != 0 and "smallest face to look for must be at least 20 px" in err
    assert "got 12" in err and "Traceback" not in err and "sha256" not in out  # before hashing


def test_case_report_says_what_the_scan_behind_a_track_search_did_not_look_for(
    enrolled, scanned
) -> None:
    import html
    import re

    from workstation.reports.bundle import build_case_bundle
    from workstation.reports.case_report import report_html

    search_track(enrolled, scanned, scanned.tracks[0], "CASE-8", "robbery lead")
    page = report_html(build_case_bundle(enrolled, "CASE-8"), "case.json", "0" * 64)
    visible = html.unescape(re.sub(r"<[^>]+>", " ", page))
    assert "Footage scan" in visible
    assert "one frame in every 0.2 s searched for faces" in visible
    assert f"faces narrower than {scanned.smallest_face_px} px were not looked for" in visible
