"""Row hashes: every audit event commits to the exact rows its act wrote (storage-neutral).

An act writes rows (a subject, a photo, a face with its embedding bytes, a search, a decision, a
calibration, a case, a setting, an examiner). The event that records it carries, for each of
those rows, the SHA-256 of the row's canonical form, keyed by table and row id; a row the act
removed is listed with no hash. The entries are stored beside the event (an enrolment of 300,000
faces writes 900,000 of them: too many for the event's own text) and the event's hashed body
holds their count and a digest over all of them, so an entry cannot be changed without breaking
the event's hash and signature.

`audit verify` then re-hashes every current row and compares it with the last event that wrote
it: a row changed outside the program ("decision 7 differs from what event 312 recorded"), a row
removed outside the program, or a row no event ever wrote, is named. A row removed by a later
audited act (deletion, merge, retention) verifies as removed: that act lists it with no hash.

Canonical form: the table's name and the row's columns that are not NULL, by column name, as
canonical JSON; bytes (embeddings) as {"bytes": hex}, booleans as 0/1. NULL columns are left out
so that a migration adding a (nullable) column changes no existing row's hash. Values are those
both SQLite and PostgreSQL return for the same stored row, so a gallery copied between the two
verifies the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from workstation.audit.log import canonical_json

# The tables whose rows the chain covers, with the singular word used in messages. `meta` holds
# the model the gallery is bound to (covered) and derived counters (not: see UNCOVERED_META).
COVERED_TABLES: dict[str, str] = {
    "subjects": "subject",
    "images": "photo",
    "faces": "face",
    "cases": "case",
    "searches": "search",
    "decisions": "decision",
    "calibrations": "calibration",
    "comparison_sheets": "comparison sheet",
    "redaction_marks": "redaction mark",
    "watches": "watch",
    "watch_hits": "watch hit",
    "examiners": "examiner",
    "gallery_settings": "gallery setting",
    "meta": "gallery property",
}
# Derived values kept in `meta` that change without an act of their own (the faces generation is
# bumped at every commit that changes a face, after the act's event).
UNCOVERED_META = frozenset({"faces_generation"})
# Tables the chain came to cover after galleries already held rows in them, by the `meta` key
# that says (written and hashed inside the act that did it) a gallery's rows there are covered.
# A new gallery sets the key at its genesis; an older one has its rows there hashed as found by
# the first examiner to open it after the upgrade (AuditAction.ROWS_ADOPTED), so `audit verify`
# holds them from then on instead of naming them as written outside the program.
COVERED_LATER: dict[str, tuple[str, ...]] = {"watch_rows_hashed": ("watches", "watch_hits")}

RowEntry = tuple[str, str, str | None]  # (table, row id, SHA-256 of the row, or None: removed)


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"bytes": bytes(value).hex()}
    return value


def row_sha256(table: str, row: Mapping[str, Any]) -> str:
    """The SHA-256 of a row's canonical form (see the module docstring)."""
    body = {name: _plain(value) for name, value in row.items() if value is not None}
    return hashlib.sha256(canonical_json({"table": table, "row": body}).encode()).hexdigest()


def row_word(table: str, row_id: str) -> str:
    """A row as named in messages: "decision 7", "subject 'P-12'"."""
    word = COVERED_TABLES.get(table, table)
    return f"{word} {row_id}" if row_id.isdigit() else f"{word} {row_id!r}"


def rows_digest(entries: Iterable[RowEntry]) -> dict[str, Any]:
    """{"count": n, "sha256": digest} over entries sorted by table and row id.

    One line of canonical JSON per entry, hashed in order: the same for any store that returns
    the same entries, and computed without holding a 900,000-entry text in memory.
    """
    digest = hashlib.sha256()
    count = 0
    for entry in sorted(entries, key=lambda e: (e[0], e[1])):
        digest.update(canonical_json(list(entry)).encode())
        digest.update(b"\n")
        count += 1
    return {"count": count, "sha256": digest.hexdigest()}
