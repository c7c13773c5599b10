"""The hash-chained audit log: append, verify, and detect every kind of tampering."""

from __future__ import annotations

import hashlib

import pytest
from gallery_storage import RefusedEdit, edit_database

from workstation.audit.log import GENESIS_HASH, canonical_json

# Every test taking `gallery` runs on both kinds of gallery (tests/conftest.py).
GALLERY_KINDS = ("embedded", "agency")


def _append(gallery, action: str, **details) -> None:
    with gallery.transaction():
        gallery.audit(action, details, case_id="C-1", purpose="test")


def test_canonical_json_is_stable() -> None:
    assert canonical_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_chain_links_and_verifies(gallery) -> None:
    for i in range(3):
        _append(gallery, "search", n=i)
    events = gallery.audit_events()
    assert [e.seq for e in events] == [1, 2, 3, 4]  # the genesis event, then the three
    assert events[0].prev_hash == GENESIS_HASH
    assert events[1].prev_hash == events[0].hash
    body = canonical_json(events[3].hashed_body())
    assert events[3].hash == hashlib.sha256((events[2].hash + body).encode()).hexdigest()
    report = gallery.verify_audit()
    assert report.intact and report.events == 4 and report.head_hash == events[3].hash


def test_a_new_gallery_holds_only_its_genesis_event(gallery) -> None:
    report = gallery.verify_audit()
    assert report.intact and report.events == 1 and report.genesis_seq == 1
    assert gallery.audit_events()[0].prev_hash == GENESIS_HASH


def test_triggers_reject_update_and_delete(gallery) -> None:
    _append(gallery, "search")
    with pytest.raises(RefusedEdit, match="append-only"):
        edit_database(gallery.folder, "UPDATE audit SET \"user\" = 'mallory'", drop_guards=False)
    with pytest.raises(RefusedEdit, match="append-only"):
        edit_database(gallery.folder, "DELETE FROM audit", drop_guards=False)
    assert gallery.verify_audit().intact


def _force(gallery, sql: str) -> None:
    """What someone with the file and a SQLite shell could do: drop the guard and edit."""
    edit_database(gallery.folder, sql)


def test_edited_event_is_named(gallery) -> None:
    for i in range(4):
        _append(gallery, "search", n=i)
    _force(gallery, "UPDATE audit SET details = '{\"n\":99}' WHERE seq = 3")
    report = gallery.verify_audit()
    assert not report.intact and report.first_bad_seq == 3
    assert "altered" in (report.problem or "")
    assert report.head_seq == 2


def test_removed_event_is_named(gallery) -> None:
    for i in range(4):
        _append(gallery, "search", n=i)
    _force(gallery, "DELETE FROM audit WHERE seq = 2")
    report = gallery.verify_audit()
    assert not report.intact and report.first_bad_seq == 3
    assert "missing" in (report.problem or "")


def test_rewritten_tail_breaks_the_link(gallery) -> None:
    """Re-hashing an edited event is not enough: its signature no longer matches (and the next
    event's link would not either)."""
    for i in range(3):
        _append(gallery, "search", n=i)
    event = gallery.audit_events()[2]
    forged_body = {**event.hashed_body(), "user": "mallory"}
    forged_hash = hashlib.sha256(
        (event.prev_hash + canonical_json(forged_body)).encode()
    ).hexdigest()
    _force(gallery, f"UPDATE audit SET \"user\" = 'mallory', hash = '{forged_hash}' WHERE seq = 3")
    report = gallery.verify_audit()
    assert not report.intact and report.first_bad_seq == 3
    assert "signature" in (report.problem or "")


def test_event_needs_a_transaction(gallery) -> None:
    with pytest.raises(RuntimeError, match="inside the transaction"):
        gallery.audit("search", {})


def test_failed_act_leaves_no_event(gallery) -> None:
    with pytest.raises(ZeroDivisionError), gallery.transaction():
        gallery.audit("delete", {"subject_id": "x"})
        raise ZeroDivisionError
    assert [e.action for e in gallery.audit_events()] == ["genesis"]
