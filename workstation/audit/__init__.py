"""Append-only, hash-chained audit log (Qt-free)."""

from workstation.audit.log import (
    GENESIS_HASH,
    AuditEvent,
    ChainReport,
    append_event,
    canonical_json,
    chain_head,
    list_events,
    verify_chain,
)

__all__ = [
    "GENESIS_HASH",
    "AuditEvent",
    "ChainReport",
    "append_event",
    "canonical_json",
    "chain_head",
    "list_events",
    "verify_chain",
]
