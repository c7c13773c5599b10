"""The gallery's SQLite file as someone outside the program sees it.

An insider with a SQLite shell edits the file directly (dropping the audit log's append-only
triggers first); another process holds the write lock. Only tests of those attacks and of that
concurrency open the file themselves; every other test goes through the gallery's methods.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

AUDIT_GUARDS = (
    "audit_no_update",
    "audit_no_delete",
    "audit_rows_no_update",
    "audit_rows_no_delete",
)


def edit_database(
    gallery_folder: Path, sql: str, params: tuple[Any, ...] = (), drop_guards: bool = True
) -> None:
    """Run one statement on the gallery's file from outside the program, as an insider would
    (the audit log's triggers dropped first unless `drop_guards` is False), and commit."""
    conn = sqlite3.connect(Path(gallery_folder) / "gallery.sqlite")
    try:
        with conn:
            if drop_guards:
                for trigger in AUDIT_GUARDS:
                    conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            conn.execute(sql, params)
    finally:
        conn.close()


def read_database(gallery_folder: Path, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Rows of one query on the gallery's file (for checks of the stored schema itself)."""
    conn = sqlite3.connect(Path(gallery_folder) / "gallery.sqlite")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


class WriteLock:
    """Another process holding the gallery's write lock until `release()`."""

    def __init__(self, gallery_folder: Path) -> None:
        self._conn = sqlite3.connect(Path(gallery_folder) / "gallery.sqlite", isolation_level=None)
        self._conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self._conn.execute("ROLLBACK")
        self._conn.close()


def append_unsigned_event(
    conn: sqlite3.Connection, user: str, action: str, details: dict[str, Any]
) -> None:
    """Append an event as the first program versions did (no key, no signature, no row hashes),
    inside the caller's transaction: for galleries "made by an older version"."""
    from workstation.audit.log import canonical_json, new_event

    row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    head = (int(row[0]), str(row[1])) if row else (0, "0" * 64)
    event = new_event(head, user=user, action=action, details=details, signer=None)
    conn.execute(
        "INSERT INTO audit (seq, time, user, action, case_id, purpose, details, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.seq,
            event.time,
            event.user,
            event.action,
            event.case_id,
            event.purpose,
            canonical_json(event.details),
            event.prev_hash,
            event.hash,
        ),
    )
