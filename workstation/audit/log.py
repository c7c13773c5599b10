"""The tamper-evident audit log.

Every act (enrolment, deletion, search, decision, export, settings change, index rebuild,
re-embedding) appends one event in the same SQLite transaction as the act itself, so an act
without its record, or a record without its act, cannot be committed.

Each event is serialised as canonical JSON (sorted keys, fixed separators, UTF-8) of its sequence
number, time, user, action, case, purpose and details, and chained:
``hash = SHA-256(previous hash + canonical event)``, starting from 64 zeros. SQLite triggers
reject UPDATE and DELETE on the table; anyone who bypasses them (by editing the file) breaks the
chain from that event on, which `verify_chain` reports. Writing the head hash down, or printing it
in a report, anchors everything before it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workstation.audit.actions import AuditAction

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    """The one serialisation that is hashed: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    time: str
    user: str
    action: str
    case_id: str | None
    purpose: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def hashed_body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "user": self.user,
            "action": self.action,
            "case": self.case_id,
            "purpose": self.purpose,
            "details": self.details,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.hashed_body(), "prev_hash": self.prev_hash, "hash": self.hash}


def event_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(body)).encode("utf-8")).hexdigest()


def chain_head(conn: sqlite3.Connection) -> tuple[int, str]:
    """(last sequence number, its hash); (0, 64 zeros) for an empty log."""
    row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)


def append_event(
    conn: sqlite3.Connection,
    *,
    user: str,
    action: AuditAction | str,
    details: dict[str, Any],
    case_id: str | None = None,
    purpose: str | None = None,
) -> AuditEvent:
    """Append one event. Call it inside the transaction of the act it records.

    The caller's transaction must hold SQLite's write lock (BEGIN IMMEDIATE) so that two writers
    cannot both read the same head; the UNIQUE constraint on prev_hash is a second guard.
    `action` must be one of `AuditAction` (ValueError otherwise).
    """
    if not conn.in_transaction:
        raise RuntimeError("audit events must be written inside the transaction of their act")
    try:
        action = AuditAction(action).value
    except ValueError:
        raise ValueError(
            f"{action!r} is not an audited act (workstation.audit.actions.AuditAction)"
        ) from None
    last_seq, last_hash = chain_head(conn)
    # Round-trip details through JSON so the stored and the hashed forms are the same values.
    details = json.loads(canonical_json(details))
    event = AuditEvent(
        seq=last_seq + 1,
        time=utc_now(),
        user=user,
        action=action,
        case_id=case_id,
        purpose=purpose,
        details=details,
        prev_hash=last_hash,
        hash="",
    )
    digest = event_hash(last_hash, event.hashed_body())
    conn.execute(
        "INSERT INTO audit (seq, time, user, action, case_id, purpose, details, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.seq,
            event.time,
            user,
            action,
            case_id,
            purpose,
            canonical_json(details),
            last_hash,
            digest,
        ),
    )
    return AuditEvent(**{**event.__dict__, "hash": digest})


def _row_to_event(row: sqlite3.Row | tuple[Any, ...]) -> AuditEvent:
    seq, time, user, action, case_id, purpose, details, prev_hash, digest = row
    return AuditEvent(
        seq=int(seq),
        time=time,
        user=user,
        action=action,
        case_id=case_id,
        purpose=purpose,
        details=json.loads(details),
        prev_hash=prev_hash,
        hash=digest,
    )


_COLUMNS = "seq, time, user, action, case_id, purpose, details, prev_hash, hash"


def list_events(
    conn: sqlite3.Connection, case_id: str | None = None, limit: int | None = None
) -> list[AuditEvent]:
    sql = f"SELECT {_COLUMNS} FROM audit"
    params: list[Any] = []
    if case_id is not None:
        sql += " WHERE case_id = ?"
        params.append(case_id)
    sql += " ORDER BY seq"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [_row_to_event(row) for row in conn.execute(sql, params)]


@dataclass(frozen=True)
class ChainReport:
    intact: bool
    events: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None


def verify_chain(conn: sqlite3.Connection) -> ChainReport:
    """Walk the whole chain; report the first event whose link or hash does not hold."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    last_hash = GENESIS_HASH
    cursor = conn.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY seq")
    for row in cursor:
        seq = int(row[0])
        try:
            event = _row_to_event(row)
        except (ValueError, TypeError) as exc:
            return ChainReport(
                False, count, expected_seq - 1, last_hash, seq, f"unreadable ({exc})"
            )
        if seq != expected_seq:
            return ChainReport(
                False,
                count,
                expected_seq - 1,
                last_hash,
                seq,
                f"sequence jumps from {expected_seq - 1} to {seq}: events are missing",
            )
        if event.prev_hash != expected_prev:
            return ChainReport(
                False,
                count,
                seq - 1,
                last_hash,
                seq,
                "its link to the previous event does not match (an event before it was "
                "removed, replaced or reordered)",
            )
        recomputed = event_hash(event.prev_hash, event.hashed_body())
        if recomputed != event.hash:
            return ChainReport(
                False,
                count,
                seq - 1,
                last_hash,
                seq,
                "its content does not match its hash (the event was altered)",
            )
        expected_prev = last_hash = event.hash
        expected_seq += 1
        count += 1
    return ChainReport(True, count, expected_seq - 1, last_hash)
