"""The tamper-evident audit log: what an event is, how it is hashed, chained and signed.

Every act (enrolment, deletion, search, decision, export, settings change, index rebuild,
re-embedding, examiner registration) appends one event in the same transaction as the act
itself, so an act without its record, or a record without its act, cannot be committed.

Each event is serialised as canonical JSON (sorted keys, fixed separators, UTF-8) of its sequence
number, time, examiner, action, case, purpose and details, the fingerprint of the key that signs
it and the digest of the rows it wrote (workstation.audit.rows), and chained:
``hash = SHA-256(previous hash + canonical event)``, starting from 64 zeros. The examiner's
Ed25519 key then signs the hash. Events written before signing existed have no key and no row
digest, and their hash covers the fields they had (so older chains still verify as they did).

This module is storage-neutral: it builds and checks events; the gallery stores them (SQLite in
workstation.gallery, PostgreSQL in an agency gallery) and `workstation.audit.verify` walks them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from workstation.audit.actions import AuditAction
from workstation.audit.signing import SigningKey

GENESIS_HASH = "0" * 64
# What an examiner's key signs: this prefix and the event's 32 hash bytes (the prefix keeps an
# event signature from ever being taken for a signature of something else, e.g. a witness entry).
EVENT_SIGNATURE_CONTEXT = b"workstation audit event v1\x00"


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
    # The fingerprint of the examiner's key that signs the event (None: written before signing).
    key: str | None = None
    # {"count": n, "sha256": digest} of the rows the act wrote (workstation.audit.rows).
    rows: dict[str, Any] | None = None
    signature: str | None = None  # Ed25519 signature of the hash, hex (not hashed itself)

    def hashed_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "seq": self.seq,
            "time": self.time,
            "user": self.user,
            "action": self.action,
            "case": self.case_id,
            "purpose": self.purpose,
            "details": self.details,
        }
        # Only signed events have these: older events keep the hash they were written with.
        if self.key is not None:
            body["key"] = self.key
        if self.rows is not None:
            body["rows"] = self.rows
        return body

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.hashed_body(),
            "key": self.key,
            "rows": self.rows,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
            "signature": self.signature,
        }

    @property
    def signed_message(self) -> bytes:
        return EVENT_SIGNATURE_CONTEXT + bytes.fromhex(self.hash)


def event_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(body)).encode("utf-8")).hexdigest()


def audited_action(action: AuditAction | str) -> str:
    """The stored value of an audited act; ValueError for anything not in AuditAction."""
    try:
        return AuditAction(action).value
    except ValueError:
        raise ValueError(
            f"{action!r} is not an audited act (workstation.audit.actions.AuditAction)"
        ) from None


def new_event(
    head: tuple[int, str],
    *,
    user: str,
    action: AuditAction | str,
    details: dict[str, Any],
    case_id: str | None = None,
    purpose: str | None = None,
    signer: SigningKey | None,
    rows: dict[str, Any] | None = None,
) -> AuditEvent:
    """The next event after `head` (its seq and hash), hashed and signed by `signer`.

    The store calls it inside the transaction that holds the write lock, so that the head it
    read is still the head when the event is stored. `signer` None makes an unsigned event:
    only the tests of older chains do that.
    """
    last_seq, last_hash = head
    # Round-trip details through JSON so the stored and the hashed forms are the same values.
    details = json.loads(canonical_json(details))
    event = AuditEvent(
        seq=last_seq + 1,
        time=utc_now(),
        user=user,
        action=audited_action(action),
        case_id=case_id,
        purpose=purpose,
        details=details,
        prev_hash=last_hash,
        hash="",
        key=signer.fingerprint if signer is not None else None,
        rows=rows if signer is not None else None,
    )
    event = replace(event, hash=event_hash(last_hash, event.hashed_body()))
    if signer is not None:
        event = replace(event, signature=signer.sign(event.signed_message))
    return event


def event_from_stored(
    seq: Any,
    time: str,
    user: str,
    action: str,
    case_id: str | None,
    purpose: str | None,
    details: str,
    prev_hash: str,
    digest: str,
    key: str | None = None,
    rows: str | None = None,
    signature: str | None = None,
) -> AuditEvent:
    """An event from its stored columns (details and rows as JSON text)."""
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
        key=key,
        rows=json.loads(rows) if rows else None,
        signature=signature,
    )


def stored_columns(event: AuditEvent) -> tuple[Any, ...]:
    """An event's values in the order of `STORED_COLUMNS` (details and rows as JSON text)."""
    return (
        event.seq,
        event.time,
        event.user,
        event.action,
        event.case_id,
        event.purpose,
        canonical_json(event.details),
        event.prev_hash,
        event.hash,
        event.key,
        canonical_json(event.rows) if event.rows is not None else None,
        event.signature,
    )


STORED_COLUMNS = (
    'seq, time, "user", action, case_id, purpose, details, prev_hash, hash, key_fingerprint, '
    "rows_digest, signature"
)


def head_of(events: Iterable[AuditEvent]) -> tuple[int, str]:
    last = (0, GENESIS_HASH)
    for event in events:
        last = (event.seq, event.hash)
    return last
