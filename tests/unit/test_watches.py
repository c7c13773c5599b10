"""Cold-case watch (issue 15 item 3) with the real models and real photos: a watch fires on a
new enrolment of the same person and not of a stranger, searches only the new faces, is an
audited search on its case, expires, ends, and its probe embedding is deleted when it does."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from footage_clips import Appearance, make_clip
from sqlite_file import edit_database

from workstation.audit.actions import AuditAction
from workstation.audit.rows import COVERED_LATER
from workstation.cli import main
from workstation.errors import CaseStatusError, WorkstationError
from workstation.footage import scan_video, search_frame, search_track
from workstation.gallery.cases import archive_case
from workstation.gallery.change import GalleryChange
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.search import search_image
from workstation.gallery.store import Gallery
from workstation.gallery.watches import (
    DEFAULT_WATCH_DAYS,
    add_watch,
    end_watch,
    expire_watches,
    list_watches,
    notices_for,
)
from workstation.progress import drain
from workstation.vision.images import load_image
from workstation.vision.video import probe_video, read_frame

(FLAG,) = COVERED_LATER


@pytest.fixture
def watched(gallery: Gallery, engine, photo_paths: dict[str, Path]):
    """Biden enrolled; obama2 searched in case C-1 (no match there) and left on watch."""
    drain(enroll(gallery, engine, items_for_subject("P-BIDEN", [photo_paths["biden"]])))
    search = search_image(gallery, engine, load_image(photo_paths["obama2"]), "C-1", "robbery")
    watch = add_watch(gallery, engine, search.search_id, "unknown man in the lobby")
    return gallery, search, watch


def test_a_watch_fires_on_the_same_person_only_and_searches_only_new_faces(
    watched, engine, photo_paths: dict[str, Path], shared_faces: Path
) -> None:
    gallery, search, watch = watched
    assert watch.active and watch.fmr == 1e-4 and watch.threshold > 0
    assert watch.until == (date.today() + timedelta(days=DEFAULT_WATCH_DAYS)).isoformat()
    added = gallery.audit_events(case_id="C-1")[-1]
    assert added.action == AuditAction.WATCH_ADD.value
    assert added.details["reason"] == "unknown man in the lobby"
    assert added.details["threshold"] == round(watch.threshold, 5)
    assert "stranger pairs" in added.details["threshold_basis"]

    # A stranger enrolled: searched (an audited act on the case), no hit.
    stranger = shared_faces / "openface_examples" / "lennon-1.jpg"
    report = drain(enroll(gallery, engine, items_for_subject("P-LENNON", [stranger])))
    assert report.enrolled == 1 and report.watch_hits == []
    event = gallery.audit_events(case_id="C-1")[-1]
    assert event.action == AuditAction.WATCH_SEARCH.value
    assert event.details["faces_searched"] == 1 and event.details["hits"] == []
    assert len(gallery.searches_of_case("C-1")) == 1  # no search row without a hit

    # The same person enrolled (another photo of him): a hit, found in the new face only.
    report = drain(enroll(gallery, engine, items_for_subject("P-NEW", [photo_paths["obama"]])))
    (hit,) = report.watch_hits
    assert hit.subject_id == "P-NEW" and hit.score >= watch.threshold
    # The reference table's 3,140 stranger pairs cannot vouch for 1 in 10,000: no stranger
    # reached the score, and the rate shown is the bound those pairs allow, as any search shows.
    assert hit.fmr is not None and hit.fmr_text and hit.fmr_text.startswith("< 1 in ")
    event = gallery.audit_events(case_id="C-1")[-1]
    assert event.action == AuditAction.WATCH_SEARCH.value and event.purpose == "robbery"
    assert event.details["faces_searched"] == 1  # not the whole gallery
    assert event.details["face_ids_from"] == event.details["face_ids_to"] == hit.face_id
    # The hit is a search of the case, reviewed like any other.
    record = gallery.search_record(hit.search_id)
    assert record.case_id == "C-1" and record.probe.sha256 == search.probe.sha256
    assert [c.subject_id for c in record.candidates] == ["P-NEW"]
    assert record.params["watch"]["watch_id"] == watch.id
    assert record.candidates[0].fmr_text == hit.fmr_text
    (listed,) = list_watches(gallery)
    assert [h.subject_id for h in listed.hits] == ["P-NEW"]
    assert [h.subject_id for h in notices_for(gallery, gallery.user)] == ["P-NEW"]
    assert notices_for(gallery, "someone else") == []

    # Nothing new: the next enrolment of nobody new searches nothing.
    report = drain(enroll(gallery, engine, items_for_subject("P-NEW", [photo_paths["obama"]])))
    assert report.enrolled == 0 and report.watch_hits == []
    assert gallery.verify_audit().intact


def test_a_watch_expires_and_ends_deleting_its_embedding(watched, engine, photo_paths) -> None:
    gallery, search, watch = watched
    assert expire_watches(gallery, today=date.fromisoformat(watch.until)) == []  # its last day
    after = date.fromisoformat(watch.until) + timedelta(days=1)
    assert expire_watches(gallery, today=after) == [watch.id]
    (row,) = gallery.watch_rows(watch_id=watch.id)
    assert row["embedding"] is None and row["end_reason"] == "expired"
    event = gallery.audit_events(case_id="C-1")[-1]
    assert event.action == AuditAction.WATCH_END.value and event.details["expired"] is True
    report = drain(enroll(gallery, engine, items_for_subject("P-NEW", [photo_paths["obama"]])))
    assert report.watch_hits == []  # an ended watch searches nothing

    second = add_watch(gallery, engine, search.search_id, "second look", until="2099-12-31")
    with pytest.raises(WorkstationError, match="reason"):
        end_watch(gallery, second.id, " ")
    ended = end_watch(gallery, second.id, "identified by other means")
    assert not ended.active and ended.end_reason == "identified by other means"
    assert gallery.watch_rows(watch_id=second.id)[0]["embedding"] is None
    with pytest.raises(WorkstationError, match="already ended"):
        end_watch(gallery, second.id, "again")
    assert gallery.verify_audit().intact


def test_watches_of_a_closed_case_end_with_it_and_an_archived_case_refuses_one(
    watched, engine
) -> None:
    gallery, search, watch = watched
    archive_case(gallery, "C-1", "concluded")
    (row,) = gallery.watch_rows(watch_id=watch.id)
    assert row["embedding"] is None and row["end_reason"] == "case archived"
    assert gallery.audit_events(case_id="C-1")[-1].details["watches_ended"] == [watch.id]
    with pytest.raises(CaseStatusError, match="archived"):
        add_watch(gallery, engine, search.search_id, "again")


def test_bad_watch_requests_are_refused_in_words(watched, engine, photo_paths, tmp_path) -> None:
    gallery, search, _ = watched
    with pytest.raises(WorkstationError, match="past"):
        add_watch(gallery, engine, search.search_id, "x", until="2000-01-01")
    with pytest.raises(WorkstationError, match="not a date"):
        add_watch(gallery, engine, search.search_id, "x", until="soon")
    for fmr in (0.0, 1.5):
        with pytest.raises(WorkstationError, match="between 0 and 1"):
            add_watch(gallery, engine, search.search_id, "x", fmr=fmr)
    with pytest.raises(WorkstationError, match="not in the gallery"):
        add_watch(gallery, engine, 999, "x")
    # The probe photo changed since it was searched: its embedding cannot be trusted.
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(photo_paths["obama2"].read_bytes())
    moved = search_image(gallery, engine, load_image(probe), "C-1", "robbery")
    probe.write_bytes(photo_paths["obama"].read_bytes())
    with pytest.raises(WorkstationError, match="SHA-256 differs"):
        add_watch(gallery, engine, moved.search_id, "x")
    probe.unlink()
    with pytest.raises(WorkstationError, match=r"probe\.jpg"):
        add_watch(gallery, engine, moved.search_id, "x")
    assert len(gallery.watch_rows()) == 1  # only the fixture's


def test_a_face_in_a_video_frame_is_watched_from_that_frame_read_again(
    gallery: Gallery, engine, photo_paths: dict[str, Path], tmp_path: Path
) -> None:
    """A face chosen in a frame of footage, the usual cold-case probe, is left on watch: its
    embedding is made again from that frame of the very video searched (SHA-256 checked) and
    fires on the person's later enrolment. A face track (a template of several frames) is
    refused in words, and so is a video changed since its search."""
    clip = tmp_path / "lobby.mp4"
    make_clip(engine, clip, [Appearance(photo_paths["obama2"], 0.0, 2.0, 100, 60)], 2.0)
    drain(enroll(gallery, engine, items_for_subject("P-BIDEN", [photo_paths["biden"]])))
    video = probe_video(clip)
    frame = read_frame(video, 5)
    search = search_frame(gallery, engine, video, 5, frame, "C-1", "robbery")
    watch = add_watch(gallery, engine, search.search_id, "man in the lobby footage")
    (row,) = gallery.watch_rows(watch_id=watch.id)
    watched_vector = np.frombuffer(row["embedding"], dtype=np.float32)
    searched_vector = engine.analyze(frame)[0].embedding
    assert float(watched_vector @ searched_vector) > 0.9999  # the face searched, as searched

    report = drain(enroll(gallery, engine, items_for_subject("P-NEW", [photo_paths["obama"]])))
    (hit,) = report.watch_hits
    assert hit.subject_id == "P-NEW" and hit.watch_id == watch.id

    scan = drain(scan_video(engine, clip))
    tracked = search_track(gallery, scan, scan.tracks[0], "C-1", "robbery")
    with pytest.raises(WorkstationError, match="face track"):
        add_watch(gallery, engine, tracked.search_id, "x")
    make_clip(engine, clip, [Appearance(photo_paths["obama2"], 0.0, 2.0, 120, 60)], 2.0)
    with pytest.raises(WorkstationError, match=r"lobby\.mp4.*SHA-256 differs"):
        add_watch(gallery, engine, search.search_id, "x")
    assert len(gallery.watch_rows()) == 1
    assert gallery.verify_audit().intact


def test_watch_command_line(tmp_path: Path, photo_paths: dict[str, Path]) -> None:
    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()

    g = ["--gallery", str(tmp_path / "g")]
    assert run(*g, "enroll", "--subject", "P-BIDEN", str(photo_paths["biden"]))[0] == 0
    code, out, err = run(
        *g, "search", "--case", "C-5", "--purpose", "p", "--json", str(photo_paths["obama2"])
    )
    assert code == 0, err
    search_id = json.loads(out)["search_id"]
    code, out, err = run(
        *g, "watch", "add", "--search", str(search_id), "--reason", "unresolved", "--fmr", "1e-4"
    )
    assert code == 0 and "watch 1" in out, err
    assert run(*g, "enroll", "--subject", "P-NEW", str(photo_paths["obama"]))[0] == 0
    code, out, err = run(*g, "watch", "list", "--json")
    assert code == 1 and "listing watches and their hits needs a case number" in err
    sup = ["--case", "C-5", "--purpose", "p"]
    code, out, err = run(*g, "watch", "list", "--json", *sup)
    assert code == 0, err
    (line,) = [json.loads(text) for text in out.splitlines()]
    assert line["case_id"] == "C-5" and line["active"] is True
    (hit,) = line["hits"]
    assert hit["subject_id"] == "P-NEW" and hit["score"] >= line["threshold"]
    assert {"fmr", "fmr_text", "found_at", "search_id", "face_id"} <= set(hit)
    code, out, _ = run(*g, "watch", "list", *sup)
    assert "hit: subject P-NEW" in out and "1 watch(es)" in out
    code, out, err = run(*g, "watch", "end", "1", "--reason", "identified")
    assert code == 0 and "ended" in out, err
    code, out, _ = run(*g, "watch", "list", *sup)
    assert "0 watch(es)" in out
    code, out, _ = run(*g, "watch", "list", "--all", "--json", *sup)
    assert json.loads(out)["end_reason"] == "identified"


# ------------------------------------------------------------------ row hashes
def _fire(gallery: Gallery, engine, photo_paths: dict[str, Path]) -> None:
    """Obama enrolled: the watch fires, so the gallery holds a watch and a watch hit."""
    report = drain(enroll(gallery, engine, items_for_subject("P-NEW", [photo_paths["obama"]])))
    assert len(report.watch_hits) == 1


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("UPDATE watches SET threshold = 0.1", "differs from what event"),
        ("UPDATE watches SET end_reason = 'x', ended_at = '2026-01-01'", "watch 1 differs"),
        ("UPDATE watch_hits SET score = 0.99", "watch hit 1 differs"),
        ("DELETE FROM watch_hits", "watch hit 1 was written by event"),
        (
            "INSERT INTO watch_hits (watch_id, search_id, subject_id, face_id, score, "
            "created_at) SELECT watch_id, search_id, 'P-BIDEN', 1, 0.9, created_at "
            "FROM watch_hits",
            "watch hit 2 was not written by any audited act",
        ),
    ],
)
def test_watches_and_hits_edited_outside_the_program_are_named(
    watched, engine, photo_paths, sql: str, words: str
) -> None:
    """A watch's threshold lowered (more alerts), an ended watch's reason, a hit's score, a hit
    removed or one added by hand: each breaks `audit verify`, naming the row."""
    gallery, _, _ = watched
    _fire(gallery, engine, photo_paths)
    with Gallery(gallery.folder, user="examiner1") as other:  # each write vouched for once
        end_watch(other, 1, "solved")
    assert gallery.verify_audit().intact
    edit_database(gallery.folder, sql)
    report = gallery.verify_audit()
    assert not report.intact and words in (report.problem or ""), report.problem


def test_an_upgraded_gallerys_watches_are_hashed_once_by_the_first_examiner_to_open_it(
    tmp_path: Path, engine, photo_paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gallery whose watches were written before the chain covered them is not called
    tampered: `audit verify` leaves them out until an examiner opens it, whose opening hashes
    them as found, in an act of its own and once; from then on they are held to those hashes."""
    # What an older version wrote: watch rows without row hashes, and no flag.
    original_touch = GalleryChange._touch

    def touch_as_before(self, table, row_ids, removed=False):
        if table not in ("watches", "watch_hits"):
            original_touch(self, table, row_ids, removed)

    folder = tmp_path / "older"
    with monkeypatch.context() as older_version:
        older_version.setattr(GalleryChange, "_touch", touch_as_before)
        older_version.setattr(GalleryChange, "cover_later_tables", lambda self, keys: {})
        with Gallery(folder, user="examiner1") as old:
            drain(enroll(old, engine, items_for_subject("P-BIDEN", [photo_paths["biden"]])))
            probe = load_image(photo_paths["obama2"])
            search = search_image(old, engine, probe, "C-1", "robbery")
            watch = add_watch(old, engine, search.search_id, "unknown man in the lobby")
            assert old.meta(FLAG) is None

    with Gallery(folder, read_only=True) as upgraded:
        report = upgraded.verify_audit()
    assert report.intact, report.problem  # the watch rows are not yet held to anything

    with Gallery(folder, user="examiner1") as opened:
        event = opened.audit_events()[-1]
        assert event.action == AuditAction.ROWS_ADOPTED.value and event.user == "examiner1"
        assert event.details == {"tables": {"watches": 1, "watch_hits": 0}, "covered": [FLAG]}
        assert opened.verify_audit().intact
        _fire(opened, engine, photo_paths)
    with Gallery(folder, user="examiner1") as again:  # once only
        assert sum(e.action == "rows_adopted" for e in again.audit_events()) == 1
        assert again.verify_audit().intact
    edit_database(folder, "UPDATE watches SET threshold = 0.1 WHERE id = ?", (watch.id,))
    with Gallery(folder, read_only=True) as later:
        report = later.verify_audit()
    assert not report.intact and "watch 1 differs" in (report.problem or ""), report.problem
    # Removing the flag, to have the watches left out again, is itself named.
    edit_database(folder, "UPDATE watches SET threshold = ? WHERE id = ?", (watch.threshold, 1))
    edit_database(folder, "DELETE FROM meta WHERE key = ?", (FLAG,))
    with Gallery(folder, read_only=True) as later:
        report = later.verify_audit()
    assert not report.intact and FLAG in (report.problem or ""), report.problem
