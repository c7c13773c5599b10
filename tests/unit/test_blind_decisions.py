"""Blind verification covers decisions too (issue 15 item 1): a verifier does not see the first
examiner's lead or exclusion, nor its note, on a candidate under ACE-V comparison until they have
recorded their own sheet, in any read (the decisions, the search record, the bundle and its
events); and a bundle carries only comparison sheets that match their audit hashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from examiners import open_as
from lobby_search import enrol_and_search
from sqlite_file import edit_database

from tests.unit.test_comparison_sheets import CASE, sheet
from workstation.errors import WorkstationError
from workstation.gallery.comparisons import record_sheet
from workstation.gallery.decisions import confirm_lead, decisions_for, record_decision
from workstation.reports.bundle import RECORDS_LEFT_OUT, build_case_bundle
from workstation.reports.sheet_report import SHEET_VERIFIED

NOTE = "same ear lobes, scar on the chin"


@pytest.fixture
def examined(tmp_path: Path, engine, photo_paths):
    """examiner1 compared obama (a sheet) and called him a possible lead with a note."""
    folder = tmp_path / "gallery"
    with open_as(folder, "examiner1") as gallery:
        record = enrol_and_search(gallery, engine, photo_paths, CASE, "lobby photo")
        first_sheet = record_sheet(gallery, record.search_id, "obama", sheet())
        lead = record_decision(gallery, record.search_id, "obama", "possible_lead", NOTE)
        record_decision(gallery, record.search_id, "biden", "excluded", "different nose")
    return folder, record.search_id, lead, first_sheet


def test_a_verifier_sees_no_decision_or_note_until_their_own_sheet(examined) -> None:
    folder, search_id, lead, _ = examined
    with open_as(folder, "examiner2", roles=["reviewer", "analyst"]) as gallery:
        shown = decisions_for(gallery, search_id)
        # The candidate under ACE-V comparison: withheld. The other (no sheet): as before.
        assert [d.subject_id for d in shown] == ["biden"]
        record = gallery.search_record(search_id)
        assert record.decisions_withheld == {"obama": 1}
        assert all(d.subject_id != "obama" for d in record.decisions)
        bundle = build_case_bundle(gallery, CASE)
        assert NOTE not in json.dumps(bundle.data)
        assert bundle.data["searches"][0]["decisions_withheld"] == {"obama": 1}
        assert bundle.data["audit"]["events_withheld_blind_verification"] == 1
        # Confirming what they have not seen is refused, in words.
        with pytest.raises(WorkstationError, match="withheld from examiner2 by blind"):
            confirm_lead(gallery, lead.id, "agree")
        record_sheet(gallery, search_id, "obama", sheet())
        after = decisions_for(gallery, search_id)
        assert lead in after and NOTE in json.dumps(build_case_bundle(gallery, CASE).data)
        assert gallery.search_record(search_id).decisions_withheld == {}
        confirmed = confirm_lead(gallery, lead.id, "agree after my own comparison")
    assert confirmed.confirms == lead.id
    with open_as(folder, "examiner1") as gallery:  # the first examiner sees both
        assert {d.user for d in decisions_for(gallery, search_id)} == {"examiner1", "examiner2"}


def test_an_edited_sheet_row_leaves_its_search_out_of_the_bundle(examined) -> None:
    folder, search_id, _, first_sheet = examined
    with open_as(folder, "examiner1") as gallery:
        bundle = build_case_bundle(gallery, CASE)
        (view,) = bundle.data["searches"][0]["comparison_sheets"]
        assert [s["record_check"] for s in view["sheets"]] == [SHEET_VERIFIED]
    # Outside the program: the sheet's conclusion turned into strong support.
    edit_database(
        folder,
        "UPDATE comparison_sheets SET sheet = replace(sheet, 'support_same', "
        "'strong_support_same') WHERE id = ?",
        (first_sheet.id,),
    )
    with open_as(folder, "examiner1") as gallery:
        bundle = build_case_bundle(gallery, CASE)
    assert bundle.data["searches"] == []
    (left,) = bundle.data["audit"]["records_left_out"]
    assert left["search_id"] == search_id
    assert any(f"comparison sheet {first_sheet.id} differs" in p for p in left["problems"])
    assert bundle.data["audit"]["records_statement"].startswith(RECORDS_LEFT_OUT)
