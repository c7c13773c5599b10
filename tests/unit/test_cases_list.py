"""Cases as a list (issue 15 item 4): the list's facts, closing, reopening and archiving as
audited acts, and the core's refusal of any change to a closed or archived case.

Real models, real photos, real SQLite: the searches and decisions are the program's own.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from examiners import open_as
from sqlite_file import edit_database

from workstation.audit.actions import AuditAction
from workstation.domain import CaseAuthorisation, CaseStatus, Decision
from workstation.errors import CaseStatusError, NotPermittedError, WorkstationError
from workstation.gallery.cases import (
    DEFAULT_RETENTION_DAYS,
    archive_case,
    authorise_case,
    case_summaries,
    close_case,
    reopen_case,
)
from workstation.gallery.decisions import confirm_lead, record_decision
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.search import compare_images, record_comparison, search_image
from workstation.gallery.store import Gallery
from workstation.progress import drain
from workstation.reports.bundle import export_case_bundle
from workstation.vision.images import load_image


@pytest.fixture
def two_cases(gallery: Gallery, engine, photo_paths: dict[str, Path]) -> Gallery:
    """Two people enrolled; case C-1 searched by alice (a lead, confirmed by bob), case C-2
    searched by the administrator with no decision."""
    items = items_for_subject("P-OBAMA", [photo_paths["obama"]], "Barack Obama")
    items += items_for_subject("P-BIDEN", [photo_paths["biden"]], "Joe Biden")
    drain(enroll(gallery, engine, items))
    approval = CaseAuthorisation("J. Prosecutor", "2026-05-01", "order 17/2026")
    with open_as(gallery.folder, "alice", ["analyst"]) as alice:
        probe = load_image(photo_paths["obama2"])
        result = search_image(alice, engine, probe, "C-1", "robbery", authorisation=approval)
        lead = record_decision(alice, result.search_id, "P-OBAMA", Decision.POSSIBLE_LEAD, "same")
        record_decision(alice, result.search_id, "P-BIDEN", Decision.EXCLUDED, "not him")
    with open_as(gallery.folder, "bob", ["reviewer"]) as bob:
        confirm_lead(bob, lead.id)
    search_image(gallery, engine, load_image(photo_paths["biden"]), "C-2", "fraud")
    return gallery


def test_the_list_says_what_was_done_in_each_case(two_cases: Gallery) -> None:
    summaries = {s.case_id: s for s in case_summaries(two_cases)}
    assert set(summaries) == {"C-1", "C-2"}
    c1, c2 = summaries["C-1"], summaries["C-2"]
    assert c1.status is CaseStatus.OPEN and c1.purpose == "robbery"
    assert c1.examiners == ("alice", "bob")
    assert (c1.searches, c1.leads, c1.confirmations) == (1, 1, 1)
    assert c1.authorisation == CaseAuthorisation("J. Prosecutor", "2026-05-01", "order 17/2026")
    assert c1.retain_until is None and not c1.past_retention
    assert (c2.searches, c2.leads, c2.confirmations, c2.authorisation) == (1, 0, 0, None)
    # Latest activity first: C-2 was searched after bob's confirmation.
    assert [s.case_id for s in case_summaries(two_cases)] == ["C-2", "C-1"]
    assert c1.last_activity == two_cases.audit_events(case_id="C-1")[-1].time
    line = c1.to_dict()
    assert line["status"] == "open" and line["examiners"] == ["alice", "bob"]
    assert line["authorisation"]["reference"] == "order 17/2026"


def test_a_lead_superseded_by_an_exclusion_is_no_longer_counted(two_cases: Gallery) -> None:
    search_id = two_cases.searches_of_case("C-1")[0]["id"]
    record_decision(two_cases, search_id, "P-OBAMA", Decision.EXCLUDED, "second look: not him")
    c1 = next(s for s in case_summaries(two_cases) if s.case_id == "C-1")
    assert (c1.leads, c1.confirmations) == (0, 0)


def test_closing_is_audited_refuses_new_work_and_reopening_allows_it_again(
    two_cases: Gallery, engine, photo_paths: dict[str, Path]
) -> None:
    until = close_case(two_cases, "C-1", "suspect charged", "2030-01-31")
    assert until == "2030-01-31"
    event = two_cases.audit_events(case_id="C-1")[-1]
    assert event.action == AuditAction.CASE_CLOSE.value
    assert event.details["reason"] == "suspect charged"
    assert event.details["previous_status"] == "open"
    assert event.details["retain_until"] == "2030-01-31"
    with pytest.raises(CaseStatusError, match="closed: reopen it first"):
        search_image(two_cases, engine, load_image(photo_paths["obama2"]), "C-1", "robbery")
    search_id = two_cases.searches_of_case("C-1")[0]["id"]
    with pytest.raises(CaseStatusError, match="closed"):
        record_decision(two_cases, search_id, "P-BIDEN", Decision.INCONCLUSIVE, "x")
    with pytest.raises(CaseStatusError, match="already closed"):
        close_case(two_cases, "C-1", "again")
    assert len(two_cases.searches_of_case("C-1")) == 1
    reopen_case(two_cases, "C-1", "new witness")
    summary = next(s for s in case_summaries(two_cases) if s.case_id == "C-1")
    assert summary.status is CaseStatus.OPEN and summary.retain_until is None
    search_image(two_cases, engine, load_image(photo_paths["obama2"]), "C-1", "robbery")
    assert len(two_cases.searches_of_case("C-1")) == 2
    assert two_cases.verify_audit().intact


def test_an_archived_case_is_read_only_in_the_core_and_export_is_a_read(
    two_cases: Gallery, engine, photo_paths: dict[str, Path], tmp_path: Path
) -> None:
    search_id = two_cases.searches_of_case("C-1")[0]["id"]
    a, b = load_image(photo_paths["obama"]), load_image(photo_paths["obama2"])
    comparison = compare_images(engine, a, b, "obama.jpg", "obama2.jpg")
    until = archive_case(two_cases, "C-1", "court case concluded")
    assert until == date.fromordinal(date.today().toordinal() + DEFAULT_RETENTION_DAYS).isoformat()
    events_before = len(two_cases.audit_events())
    refused = [
        lambda: search_image(
            two_cases, engine, load_image(photo_paths["obama2"]), "C-1", "robbery"
        ),
        lambda: record_decision(two_cases, search_id, "P-BIDEN", Decision.INCONCLUSIVE, "x"),
        lambda: authorise_case(
            two_cases, "C-1", CaseAuthorisation("someone", "2026-06-01", "order 1")
        ),
        lambda: record_comparison(two_cases, comparison, "C-1", "robbery"),
        lambda: reopen_case(two_cases, "C-1", "try"),
        lambda: close_case(two_cases, "C-1", "try"),
    ]
    for act in refused:
        with pytest.raises(CaseStatusError, match="archived"):
            act()
    assert len(two_cases.audit_events()) == events_before
    assert len(two_cases.searches_of_case("C-1")) == 1
    assert len(two_cases.decisions_for(search_id)) == 3
    # An export is a read: allowed, and logged on the case.
    export_case_bundle(two_cases, "C-1", tmp_path / "c1.json")
    assert two_cases.audit_events(case_id="C-1")[-1].action == AuditAction.EXPORT.value
    # The other case is untouched by C-1's status.
    search_image(two_cases, engine, load_image(photo_paths["obama2"]), "C-2", "fraud")
    assert two_cases.verify_audit().intact


def test_archiving_keeps_the_date_set_at_closing_and_needs_an_administrator(
    two_cases: Gallery,
) -> None:
    close_case(two_cases, "C-2", "no lead", "2031-12-31")
    with (
        open_as(two_cases.folder, "alice", ["analyst"]) as alice,
        pytest.raises(NotPermittedError, match="archive a case"),
    ):
        archive_case(alice, "C-2", "done")
    assert archive_case(two_cases, "C-2", "done") == "2031-12-31"
    c2 = next(s for s in case_summaries(two_cases) if s.case_id == "C-2")
    assert c2.status is CaseStatus.ARCHIVED and c2.read_only
    assert c2.status_reason == "done" and c2.status_changed_by == two_cases.user


def test_cases_past_their_retention_date_are_flagged(two_cases: Gallery) -> None:
    close_case(two_cases, "C-2", "no lead", "2026-01-31")
    summaries = {s.case_id: s for s in case_summaries(two_cases, today=date(2026, 2, 1))}
    assert summaries["C-2"].past_retention and not summaries["C-1"].past_retention
    summaries = {s.case_id: s for s in case_summaries(two_cases, today=date(2026, 1, 31))}
    assert not summaries["C-2"].past_retention


def test_bad_requests_are_refused_in_words(two_cases: Gallery) -> None:
    with pytest.raises(WorkstationError, match="reason is required"):
        close_case(two_cases, "C-1", "  ")
    with pytest.raises(WorkstationError, match="not a date"):
        close_case(two_cases, "C-1", "done", "31/01/2030")
    with pytest.raises(WorkstationError, match="no searches"):
        close_case(two_cases, "C-404", "done")
    with pytest.raises(CaseStatusError, match="already open"):
        reopen_case(two_cases, "C-1", "why")


def test_a_status_written_outside_the_program_fails_verification(two_cases: Gallery) -> None:
    """Archiving by editing the database is not an act: `audit verify` names the case row."""
    assert two_cases.verify_audit().intact
    edit_database(two_cases.folder, "UPDATE cases SET status = 'archived' WHERE id = 'C-1'")
    report = two_cases.verify_audit()
    assert not report.intact
