"""The one record of a search: built by the gallery from the stored rows, the same object for a
fresh search and a reloaded one, names looked up (never stored), old rows still readable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workstation.audit.actions import AuditAction
from workstation.audit.log import utc_now
from workstation.errors import GalleryError
from workstation.gallery.admin import delete_subject
from workstation.gallery.decisions import record_decision
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.records import DELETED_SUBJECT, SearchRecord
from workstation.gallery.search import search_image
from workstation.gallery.store import Gallery
from workstation.progress import drain
from workstation.reports.bundle import build_case_bundle
from workstation.reports.columns import Surface, cell, text_table
from workstation.vision.images import load_image


@pytest.fixture
def searched(gallery: Gallery, engine, photo_paths: dict[str, Path]) -> SearchRecord:
    items = items_for_subject("P-OBAMA", [photo_paths["obama"]], "Barack Obama")
    items += items_for_subject("P-BIDEN", [photo_paths["biden"]], "Joe Biden")
    drain(enroll(gallery, engine, items))
    return search_image(gallery, engine, load_image(photo_paths["obama2"]), "C-7", "lead")


def test_a_fresh_search_and_the_reloaded_one_are_the_same_record(gallery, searched) -> None:
    reloaded = gallery.search_record(searched.search_id)
    assert reloaded == searched
    assert gallery.case_search_records("C-7") == [searched]
    assert reloaded.to_dict() == searched.to_dict()
    assert searched.examiner == gallery.user and searched.started_at <= searched.created_at
    assert (searched.probe.width, searched.probe.height) == (626, 1200)
    assert searched.gallery_faces == 2 and searched.gallery_subjects == 2
    assert "recorded" not in searched.params  # record facts are not search parameters
    with pytest.raises(GalleryError, match="search 999 does not exist"):
        gallery.search_record(999)


def test_the_record_carries_the_calibrations_words_and_the_bound_flag(searched) -> None:
    top, other = searched.candidates
    # No stranger pair of the calibration scores as high as obama2 vs obama.
    assert top.subject_id == "P-OBAMA" and top.fmr_upper_bound
    assert top.fmr_text == f"< 1 in {searched.calibration['impostor_pairs']:,}"
    assert not other.fmr_upper_bound and other.fmr_text.startswith("1 in ")
    assert cell("fmr", top, searched) == top.fmr_text
    assert cell("strangers", top, searched).startswith("< ")
    line = next(line for line in text_table(searched, Surface.CLI) if "P-OBAMA" in line)
    assert top.fmr_text in line and "Barack Obama" in line


def test_json_keeps_the_documented_search_keys(searched) -> None:
    line = searched.to_dict()
    documented = {"probe", "sha256", "face", "candidates", "calibration", "error"}
    assert documented <= set(line) and line["error"] is None
    assert {"rank", "subject_id", "name", "score", "fmr", "fmr_text", "expected_strangers"} <= set(
        line["candidates"][0]
    )
    assert line["candidates"][0]["fmr_upper_bound"] is True
    assert line["face"]["faces_found"] == 1 and line["search_id"] == searched.search_id
    json.dumps(line)  # plain JSON


def test_names_are_not_stored_and_a_deleted_subject_is_named_as_such(gallery, searched) -> None:
    (stored,) = gallery.conn.execute(
        "SELECT candidates FROM searches WHERE id = ?", (searched.search_id,)
    ).fetchone()
    assert "Barack Obama" not in stored and "Joe Biden" not in stored
    assert searched.candidate("P-OBAMA").name == "Barack Obama"
    record_decision(gallery, searched.search_id, "P-BIDEN", "excluded", "different ears")
    delete_subject(gallery, "P-BIDEN", "court order 1/2026")
    record = gallery.search_record(searched.search_id)
    biden = record.candidate("P-BIDEN")
    assert biden.subject_deleted and biden.name is None and biden.face_quality is None
    assert cell("name", biden, record) == DELETED_SUBJECT
    assert [d.decision for d in record.decisions_of("P-BIDEN")] == ["excluded"]
    bundle = build_case_bundle(gallery, "C-7")
    assert "Joe Biden" not in json.dumps(bundle.data)
    assert bundle.records == (record,)


def test_rows_written_before_the_record_still_read(gallery, searched) -> None:
    """Old rows stored names, no FMR words, no bound flag and no record facts."""
    top, other = searched.candidates
    old_candidates = [
        {
            "rank": c.rank,
            "subject_id": c.subject_id,
            "name": "name stored back then",
            "face_id": c.face_id,
            "score": c.score,
            "fmr": c.fmr,
            "expected_strangers": c.expected_strangers,
        }
        for c in (top, other)
    ]
    old_candidates[0]["fmr_text"] = top.fmr_text  # "< 1 in N": read as an upper bound
    with gallery.change() as change:
        search_id = change.add_search(
            case_id="C-7",
            purpose="lead",
            created_at=utc_now(),
            probe_path="/old/probe.jpg",
            probe_sha256="ab" * 32,
            face=searched.face.to_dict(),
            model_id=searched.model_id,
            params={"top_k": 2, "quality_gate": "passed"},
            gallery_faces=2,
            candidates=old_candidates,
            note=None,
        )
        change.record(AuditAction.SEARCH, {"search_id": search_id}, case_id="C-7", purpose="lead")
    record = gallery.search_record(search_id)
    old_top, old_other = record.candidates
    assert old_top.name == "Barack Obama"  # looked up now, the stored name is ignored
    assert old_top.fmr_upper_bound and old_top.fmr_text == top.fmr_text
    assert not old_other.fmr_upper_bound and old_other.fmr_text.startswith("1 in ")
    assert record.started_at is None and record.gallery_subjects is None
    assert record.probe.width is None and record.probe.frame is None
