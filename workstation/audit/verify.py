"""`audit verify`: the checks of a chain, over any store (storage-neutral).

Walks the events in order and holds each to:

1. **Its link and hash**: the sequence has no gap, each event names the previous event's hash,
   and its content hashes to its hash.
2. **Its signature**: from the genesis event on, every event carries the fingerprint of the key
   that signed it and a valid Ed25519 signature of its hash by that key; the key was registered
   in the chain before the event (the genesis event registers the first administrator's key,
   registration events carry each public key) and not revoked; the examiner named is the one
   the key is registered to; and their roles then allowed the act (workstation.audit.roles).
   So the registered keys are rebuilt from the chain alone, never from a table an attacker can
   edit.
3. **Its rows**: the row hashes stored for the event match the digest it carries.
4. **The decision rules**: a confirmation is signed by another key than the lead it confirms.

Then `check_rows` re-hashes the current rows and compares each with the last event that wrote it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from workstation.audit.actions import AuditAction
from workstation.audit.log import GENESIS_HASH, AuditEvent, event_hash
from workstation.audit.roles import Role, refusal
from workstation.audit.rows import COVERED_TABLES, RowEntry, row_sha256, row_word, rows_digest
from workstation.audit.signing import (
    KeyFileError,
    decode_public_key,
    fingerprint,
    short_fingerprint,
    verify_signature,
)
from workstation.domain import examiner_key


@dataclass
class RegisteredKey:
    """An examiner's key as the chain registered it."""

    fingerprint: str
    public_key: str  # text form ("ed25519:...")
    name: str
    roles: frozenset[Role]
    registered_seq: int
    revoked_seq: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked_seq is None


@dataclass
class ChainReport:
    """What `verify_chain` found. `intact` only when no problem was found."""

    intact: bool
    events: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None
    gallery_id: str | None = None
    genesis_seq: int | None = None
    genesis_hash: str | None = None
    first_administrator_key: str | None = None
    unsigned_events: int = 0  # written before the gallery's genesis (an older version)
    examiners: dict[str, RegisteredKey] = field(default_factory=dict)  # by fingerprint
    rows_checked: int = 0
    witness_entries: int = 0  # witness entries of this gallery held against the chain
    witness_files: int = 0
    witnessed_elsewhere: int = 0  # a later head of this gallery id witnessed at another folder
    witness_unreadable: list[str] = field(default_factory=list)


def _problem(report: ChainReport, seq: int | None, text: str) -> ChainReport:
    report.intact = False
    report.first_bad_seq = seq
    report.problem = text
    return report


class _Registry:
    def __init__(self) -> None:
        self.keys: dict[str, RegisteredKey] = {}

    def active_for(self, name: str) -> RegisteredKey | None:
        wanted = examiner_key(name)
        return next(
            (k for k in self.keys.values() if k.active and examiner_key(k.name) == wanted), None
        )

    def register(self, seq: int, entry: dict[str, Any]) -> str | None:
        """Register the key an event carries; a problem in words, or None."""
        try:
            name = str(entry["name"])
            public = str(entry["public_key"])
            roles = Role.parse(entry.get("roles") or [])
            fp = fingerprint(decode_public_key(public))
        except (KeyError, TypeError, ValueError, KeyFileError) as exc:
            return f"event {seq} registers an examiner it does not describe fully ({exc})"
        if fp in self.keys:
            return f"event {seq} registers key {short_fingerprint(fp)} a second time"
        if self.active_for(name) is not None:
            return f"event {seq} registers {name} while their earlier key is still registered"
        self.keys[fp] = RegisteredKey(fp, public, name, roles, seq)
        return None


def verify_events(
    events: Iterable[AuditEvent],
    row_entries: Iterable[tuple[int, str, str, str | None]] = (),
) -> ChainReport:
    """Walk a whole chain (events in seq order; row entries (seq, table, id, hash) in seq order).

    Returns at the first problem, naming the event.
    """
    report = ChainReport(True, 0, 0, GENESIS_HASH)
    registry = _Registry()
    leads: dict[int, str] = {}  # possible-lead decision id -> fingerprint of the key recording it
    entries = _grouped_entries(iter(row_entries))
    pending = next(entries, None)
    expected_prev, expected_seq = GENESIS_HASH, 1
    for event in events:
        seq = event.seq
        if seq != expected_seq:
            return _problem(
                report, seq, f"sequence jumps from {expected_seq - 1} to {seq}: events are missing"
            )
        if event.prev_hash != expected_prev:
            return _problem(
                report,
                seq,
                f"event {seq}: its link to the previous event does not match (an event before "
                "it was removed, replaced or reordered)",
            )
        if event_hash(event.prev_hash, event.hashed_body()) != event.hash:
            return _problem(
                report,
                seq,
                f"event {seq}: its content does not match its hash (the event was altered)",
            )
        # Row hashes stored for this event must be exactly those its digest commits to.
        stored: list[RowEntry] = []
        while pending is not None and pending[0] < seq:
            return _problem(
                report,
                pending[0],
                f"row hashes are stored for event {pending[0]}, which does not exist",
            )
        if pending is not None and pending[0] == seq:
            stored = pending[1]
            pending = next(entries, None)
        problem = _check_rows_digest(event, stored)
        if problem is None:
            problem = _check_signature(event, registry, report)
        if problem is None:
            problem = _check_decision(event, leads)
        if problem is not None:
            return _problem(report, seq, problem)
        report.events += 1
        report.head_seq, report.head_hash = seq, event.hash
        expected_prev, expected_seq = event.hash, seq + 1
    if pending is not None:
        return _problem(
            report,
            pending[0],
            f"row hashes are stored for event {pending[0]}, which does not exist",
        )
    report.examiners = registry.keys
    return report


def _grouped_entries(
    entries: Iterator[tuple[int, str, str, str | None]],
) -> Iterator[tuple[int, list[RowEntry]]]:
    current: int | None = None
    group: list[RowEntry] = []
    for seq, table, row_id, digest in entries:
        if current is not None and seq != current:
            yield current, group
            group = []
        current = seq
        group.append((table, str(row_id), digest))
    if current is not None:
        yield current, group


def _check_rows_digest(event: AuditEvent, stored: list[RowEntry]) -> str | None:
    if event.rows is None:
        if stored:
            return f"event {event.seq} records no rows, yet row hashes are stored for it"
        return None
    if rows_digest(stored) != event.rows:
        return (
            f"event {event.seq}: the row hashes stored with it do not match the digest it "
            "carries (they were altered outside the program)"
        )
    return None


def _check_signature(event: AuditEvent, registry: _Registry, report: ChainReport) -> str | None:
    seq = event.seq
    if event.key is None:
        if report.genesis_seq is not None:
            return f"event {seq} is not signed (every event after the genesis event must be)"
        report.unsigned_events += 1
        return None
    action = event.action
    if action == AuditAction.GENESIS.value:
        if report.genesis_seq is not None:
            return (
                f"event {seq} is a second genesis event (the gallery's was event "
                f"{report.genesis_seq})"
            )
        earlier = int(event.details.get("earlier_events") or 0)
        if earlier != report.unsigned_events:
            return (
                f"event {seq} (genesis) says {earlier} unsigned event(s) came before it; the "
                f"chain has {report.unsigned_events}"
            )
        administrator = event.details.get("administrator") or {}
        problem = registry.register(seq, administrator)
        if problem is not None:
            return problem
        first = next(iter(registry.keys.values()))
        if first.fingerprint != event.key:
            return f"event {seq} (genesis) is not signed by the administrator key it registers"
        report.genesis_seq, report.genesis_hash = seq, event.hash
        report.gallery_id = str(event.details.get("gallery_id") or "")
        report.first_administrator_key = first.fingerprint
    elif report.genesis_seq is None:
        return f"event {seq} is signed, but no genesis event registered any key before it"
    key = registry.keys.get(event.key)
    if key is None:
        return (
            f"event {seq} is signed by key {short_fingerprint(event.key)}, which is not "
            "registered in this gallery"
        )
    if key.revoked_seq is not None:
        return (
            f"event {seq} is signed by {key.name}'s key {short_fingerprint(key.fingerprint)}, "
            f"revoked at event {key.revoked_seq}"
        )
    if not verify_signature(
        decode_public_key(key.public_key), event.signed_message, event.signature or ""
    ):
        return (
            f"event {seq}: its signature is not {key.name}'s signature of its hash (the event "
            "was altered and re-hashed, or signed with another key)"
        )
    if event.user != key.name:
        return (
            f"event {seq} names examiner {event.user!r}, but is signed by the key registered "
            f"to {key.name!r}"
        )
    refused = refusal(key.name, key.roles, action, event.details)
    if refused is not None:
        return f"event {seq}: {refused}"
    return _apply_registry_change(event, registry)


def _apply_registry_change(event: AuditEvent, registry: _Registry) -> str | None:
    seq, details = event.seq, event.details
    if event.action == AuditAction.EXAMINER_ADD.value:
        return registry.register(seq, details)
    if event.action in (AuditAction.EXAMINER_REVOKE.value, AuditAction.EXAMINER_ROLES.value):
        target = registry.keys.get(str(details.get("fingerprint")))
        if target is None or not target.active:
            return (
                f"event {seq} changes key {details.get('fingerprint')!r}, which is not registered"
            )
        if event.action == AuditAction.EXAMINER_REVOKE.value:
            target.revoked_seq = seq
        else:
            try:
                target.roles = Role.parse(details.get("roles") or [])
            except ValueError as exc:
                return f"event {seq}: {exc}"
    return None


def _check_decision(event: AuditEvent, leads: dict[int, str]) -> str | None:
    if event.action != AuditAction.DECISION.value or event.key is None:
        return None
    details = event.details
    decision_id = details.get("decision_id")
    if details.get("decision") == "possible_lead" and decision_id is not None:
        leads[int(decision_id)] = event.key
    confirms = details.get("confirms")
    if confirms is not None and leads.get(int(confirms)) == event.key:
        return (
            f"event {event.seq} confirms decision {confirms} with the same key that recorded "
            "it (a second examiner must confirm)"
        )
    return None


# ---------------------------------------------------------------------- rows
class RowSource(Protocol):
    """What `check_rows` needs from a store (the gallery implements it)."""

    def current_rows(self, table: str) -> Iterator[list[tuple[str, dict[str, Any]]]]:
        """The table's rows now, in chunks of (row id, row as a dict of columns)."""

    def latest_row_entries(self, table: str, row_ids: list[str]) -> dict[str, tuple[int, Any]]:
        """{row id: (seq, hash or None)} of the last event that wrote each row."""

    def live_recorded_count(self, table: str) -> int:
        """How many rows of the table the chain says exist (last written, not removed)."""

    def live_recorded_rows(self, table: str) -> Iterator[list[tuple[str, int]]]:
        """(row id, seq) of every row the chain says exists, in chunks."""

    def existing_row_ids(self, table: str, row_ids: list[str]) -> set[str]:
        """Which of these rows exist now."""


def check_rows(
    source: RowSource,
    tables: Iterable[str] = COVERED_TABLES,
    skip: Callable[[str, str], bool] = lambda table, row_id: False,
) -> tuple[int, str | None]:
    """Re-hash every current row and compare it with the last event that wrote it.

    Returns (rows checked, the first problem in words or None). `skip(table, row_id)` leaves out
    rows that no act writes (derived counters). Memory stays flat at any gallery size: rows are
    read in chunks, and rows missing are looked for only when the counts say some are.
    """
    checked = 0
    for table in tables:
        matched = 0
        for chunk in source.current_rows(table):
            rows = [(row_id, row) for row_id, row in chunk if not skip(table, row_id)]
            latest = source.latest_row_entries(table, [row_id for row_id, _ in rows])
            for row_id, row in rows:
                checked += 1
                recorded = latest.get(row_id)
                if recorded is None:
                    return checked, (
                        f"{row_word(table, row_id)} was not written by any audited act (it was "
                        "added outside the program)"
                    )
                seq, digest = recorded
                if digest is None:
                    return checked, (
                        f"{row_word(table, row_id)} is present, but event {seq} removed it (it "
                        "was put back outside the program)"
                    )
                if row_sha256(table, row) != digest:
                    return checked, (
                        f"{row_word(table, row_id)} differs from what event {seq} recorded: the "
                        "row was edited outside the program"
                    )
                matched += 1
        if matched == source.live_recorded_count(table):
            continue
        for recorded_chunk in source.live_recorded_rows(table):
            ids = [row_id for row_id, _ in recorded_chunk if not skip(table, row_id)]
            existing = source.existing_row_ids(table, ids)
            for row_id, seq in recorded_chunk:
                if row_id not in existing and not skip(table, row_id):
                    return checked, (
                        f"{row_word(table, row_id)} was written by event {seq} and no audited "
                        "act removed it, but it is missing (it was deleted outside the program)"
                    )
    return checked, None
