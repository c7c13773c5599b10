"""Append-only, hash-chained, signed audit log (Qt-free, storage-neutral)."""

from workstation.audit.log import GENESIS_HASH, AuditEvent, canonical_json, new_event
from workstation.audit.verify import ChainReport, verify_events

__all__ = [
    "GENESIS_HASH",
    "AuditEvent",
    "ChainReport",
    "canonical_json",
    "new_event",
    "verify_events",
]
