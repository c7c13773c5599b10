"""Decisions and the second examiner's confirmation, enforced by the core on a real gallery
(real photos, models and SQLite): a lead is confirmed once, by someone else, and not after it was
superseded; names that differ only in case, spaces or Unicode form are one examiner."""

from __future__ import annotations

from pathlib import Path

import pytest
from examiners import open_as
from sqlite_file import edit_database, read_database

from workstation.audit.actions import AuditAction
from workstation.domain import Decision, DecisionRecord, examiner_key, same_examiner
from workstation.errors import WorkstationError
from workstation.gallery.decisions import (
    confirm_lead,
    confirmation_refusal,
    decisions_for,
    lead_to_confirm,
    record_decision,
    why_no_lead_to_confirm,
)
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.search import search_image
from workstation.gallery.store import Gallery
from workstation.progress import drain
from workstation.vision.images import load_image


@pytest.fixture
def searched(gallery: Gallery, engine, photo_paths: dict[str, Path]) -> tuple[Gallery, int]:
    """A gallery of two people (examiner "alice") and one search with both as candidates."""
    items = items_for_subject("P-OBAMA", [photo_paths["obama"]], "Barack Obama")
    items += items_for_subject("P-BIDEN", [photo_paths["biden"]], "Joe Biden")
    drain(enroll(gallery, engine, items))
    with open_as(gallery.folder, "alice") as alice:
        result = search_image(alice, engine, load_image(photo_paths["obama2"]), "C-1", "lead")
    return gallery, result.search_id


def _as(gallery: Gallery, user: str) -> Gallery:
    return open_as(gallery.folder, user)


@pytest.mark.parametrize("spelling", ["alice", "ALICE", "alice ", " Alice", "Ａｌｉｃｅ"])
def test_an_examiner_cannot_confirm_their_own_lead_under_any_spelling(
    searched: tuple[Gallery, int], spelling: str
) -> None:
    gallery, search_id = searched
    with _as(gallery, "alice") as alice:
        lead = record_decision(alice, search_id, "P-OBAMA", Decision.POSSIBLE_LEAD, "same scar")
    with _as(gallery, spelling) as same, pytest.raises(WorkstationError) as refused:
        confirm_lead(same, lead.id)
    message = str(refused.value)
    assert f"decision {lead.id}" in message and "second examiner" in message
    assert [d.decision for d in decisions_for(gallery, search_id)] == [Decision.POSSIBLE_LEAD]


def test_a_lead_is_confirmed_once(searched: tuple[Gallery, int]) -> None:
    gallery, search_id = searched
    with _as(gallery, "alice") as alice:
        lead = record_decision(alice, search_id, "P-OBAMA", "possible_lead", "same scar")
    with _as(gallery, "bob") as bob:
        confirmed = confirm_lead(bob, lead.id, "agree")
    assert confirmed.decision is Decision.CONFIRMED and confirmed.confirms == lead.id
    for again in ("bob", "BOB", "carol"):
        with _as(gallery, again) as other, pytest.raises(WorkstationError) as refused:
            confirm_lead(other, lead.id)
        message = str(refused.value)
        assert f"decision {lead.id} was already confirmed" in message
        assert f"decision {confirmed.id}" in message and "once" in message
    kinds = [d.decision.value for d in decisions_for(gallery, search_id)]
    assert kinds == ["possible_lead", "confirmed"]
    events = [e for e in gallery.audit_events(case_id="C-1") if e.action == AuditAction.DECISION]
    assert [(e.user, e.details["decision"]) for e in events] == [
        ("alice", "possible_lead"),
        ("bob", "confirmed"),
    ]
    assert events[-1].details["confirms"] == lead.id


def test_a_superseded_lead_cannot_be_confirmed(searched: tuple[Gallery, int]) -> None:
    gallery, search_id = searched
    with _as(gallery, "alice") as alice:
        lead = record_decision(alice, search_id, "P-OBAMA", "possible_lead", "same scar")
    with _as(gallery, "dave") as dave:
        later = record_decision(dave, search_id, "P-OBAMA", "excluded", "different ears")
    with _as(gallery, "bob") as bob, pytest.raises(WorkstationError) as refused:
        confirm_lead(bob, lead.id)
    message = str(refused.value)
    assert f"decision {lead.id} was superseded by decision {later.id}" in message
    assert "excluded by dave" in message
    # A decision on another candidate of the same search does not supersede it.
    with _as(gallery, "alice") as alice:
        second = record_decision(alice, search_id, "P-BIDEN", "possible_lead", "maybe")
        record_decision(alice, search_id, "P-OBAMA", "inconclusive", "poor light")
    with _as(gallery, "bob") as bob:
        assert confirm_lead(bob, second.id).confirms == second.id


def test_only_a_possible_lead_can_be_confirmed_and_decisions_come_from_the_enum(
    searched: tuple[Gallery, int],
) -> None:
    gallery, search_id = searched
    with _as(gallery, "alice") as alice:
        excluded = record_decision(alice, search_id, "P-BIDEN", "excluded", "different")
        with pytest.raises(WorkstationError, match="decision must be one of"):
            record_decision(alice, search_id, "P-BIDEN", "confirmed", "a shortcut")
        with pytest.raises(WorkstationError, match="decision must be one of"):
            record_decision(alice, search_id, "P-BIDEN", "probably", "")
    with _as(gallery, "bob") as bob, pytest.raises(WorkstationError, match="only a possible"):
        confirm_lead(bob, excluded.id)
    with _as(gallery, "bob") as bob, pytest.raises(WorkstationError, match="does not exist"):
        confirm_lead(bob, 999)


def test_the_database_check_is_built_from_the_decision_enum(gallery: Gallery) -> None:
    (table_sql,) = read_database(
        gallery.folder, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'decisions'"
    )[0]
    checked = table_sql.split("decision IN (", 1)[1].split(")", 1)[0]
    assert sorted(v.strip(" '") for v in checked.split(",")) == sorted(d.value for d in Decision)
    with pytest.raises(Exception, match="CHECK constraint failed"):
        edit_database(
            gallery.folder,
            'INSERT INTO decisions (search_id, subject_id, decision, "user", created_at) '
            "VALUES (1, 'X', 'probable', 'mallory', '2026-01-01')",
        )


def _record(id_: int, decision: Decision, user: str, confirms: int | None = None) -> DecisionRecord:
    return DecisionRecord(id_, 1, "S", decision, None, user, f"t{id_}", confirms)


def test_the_rule_over_a_list_of_decisions() -> None:
    lead = _record(1, Decision.POSSIBLE_LEAD, "alice")
    assert lead_to_confirm([lead], "bob") == lead
    assert lead_to_confirm([lead], " ALICE ") is None
    assert "second examiner" in (why_no_lead_to_confirm([lead], "Alice") or "")
    confirmed = _record(2, Decision.CONFIRMED, "bob", confirms=1)
    assert lead_to_confirm([lead, confirmed], "carol") is None
    assert "already confirmed by bob" in (why_no_lead_to_confirm([lead, confirmed], "carol") or "")
    replaced = _record(3, Decision.POSSIBLE_LEAD, "carol")
    decisions = [lead, _record(2, Decision.EXCLUDED, "dave"), replaced]
    assert confirmation_refusal(decisions, lead, "bob") is not None
    assert lead_to_confirm(decisions, "bob") == replaced
    assert lead_to_confirm(decisions, "carol") is None
    assert (
        why_no_lead_to_confirm([], "bob") == "no decision has been recorded on this candidate yet"
    )


def test_examiner_names_are_compared_normalised() -> None:
    assert examiner_key("  Alice   Smith ") == "alice smith"
    assert same_examiner("ALICE", "alice ") and same_examiner("Ａｌｉｃｅ", "alice")
    assert same_examiner("STRASSE", "straße")  # case folding, not lower()
    assert not same_examiner("alice", "alicia")
