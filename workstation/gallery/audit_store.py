"""The audit chain's storage in the gallery database: events, the row hashes each event carries,
and what `audit verify` reads to re-hash the current rows.

The chain's rules (hashing, signing, verifying) are in workstation.audit and know nothing of
SQL; this module is their storage, over either kind of gallery database (`Database`): the SQL is
the subset SQLite and PostgreSQL both understand.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from workstation.audit.log import (
    GENESIS_HASH,
    STORED_COLUMNS,
    AuditEvent,
    event_from_stored,
    stored_columns,
)
from workstation.audit.rows import COVERED_TABLES, UNCOVERED_META, RowEntry
from workstation.gallery.database import POSTGRESQL, Database, chunks, dict_rows
from workstation.gallery.schema import TABLE

# Each covered table's primary key (the row id of its row hashes), and those whose ids are
# integers (schema.TABLES).
ROW_KEYS: dict[str, str] = {table: TABLE[table].key[0] for table in COVERED_TABLES}
INTEGER_KEYS = frozenset(table for table in COVERED_TABLES if TABLE[table].numbered)
CHUNK = 500  # ids per IN (...): SQLite allows 999 parameters in older builds
ARRAY_CHUNK = 10_000  # ids per PostgreSQL array parameter
SCAN_CHUNK = 5_000  # rows per chunk when re-hashing a whole table


_LEGACY_COLUMNS = (
    'seq, time, "user", action, case_id, purpose, details, prev_hash, hash, NULL, NULL, NULL'
)


def _select(conn: Database) -> str:
    """The event columns to select: a gallery opened read-only at an older schema (no
    signature columns, no row hashes) is read as events without them."""
    return STORED_COLUMNS if has_accountability(conn) else _LEGACY_COLUMNS


def has_accountability(conn: Database) -> bool:
    """Whether the database has the signature columns and row-hash table (schema 3 on)."""
    return conn.table_exists("audit_rows")


def chain_head(conn: Database) -> tuple[int, str]:
    """(last sequence number, its hash); (0, 64 zeros) for an empty log."""
    row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)


def last_event(conn: Database) -> AuditEvent | None:
    """The chain's last event (None for an empty log)."""
    seq, _ = chain_head(conn)
    return event_at(conn, seq) if seq else None


def insert_event(conn: Database, event: AuditEvent, entries: list[RowEntry]) -> None:
    """Store an event and its row hashes (inside the act's transaction)."""
    marks = ", ".join("?" * 12)
    conn.execute(f"INSERT INTO audit ({STORED_COLUMNS}) VALUES ({marks})", stored_columns(event))
    if entries:
        conn.insert_rows(
            "audit_rows",
            ("seq", "tbl", "row_id", "sha256"),
            ((event.seq, table, row_id, digest) for table, row_id, digest in entries),
        )


def list_events(
    conn: Database,
    case_id: str | None = None,
    limit: int | None = None,
    actions: Iterable[str] | None = None,
) -> list[AuditEvent]:
    sql = f"SELECT {_select(conn)} FROM audit"
    where: list[str] = []
    params: list[Any] = []
    if case_id is not None:
        where.append("case_id = ?")
        params.append(case_id)
    if actions is not None:
        wanted = list(actions)
        where.append(f"action IN ({', '.join('?' * len(wanted))})")
        params.extend(wanted)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY seq"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [event_from_stored(*row) for row in conn.execute(sql, params)]


def iter_events(conn: Database, batch: int = 10_000) -> Iterator[AuditEvent]:
    """Every event in seq order, read in batches (a chain may hold millions)."""
    cursor = conn.execute(f"SELECT {_select(conn)} FROM audit ORDER BY seq")
    while rows := cursor.fetchmany(batch):
        for row in rows:
            yield event_from_stored(*row)


def event_at(conn: Database, seq: int) -> AuditEvent | None:
    row = conn.execute(f"SELECT {_select(conn)} FROM audit WHERE seq = ?", (seq,)).fetchone()
    return None if row is None else event_from_stored(*row)


def iter_row_entries(
    conn: Database, batch: int = 50_000
) -> Iterator[tuple[int, str, str, str | None]]:
    """Every stored row hash (seq, table, row id, hash) in seq order."""
    if not has_accountability(conn):
        return
    cursor = conn.execute("SELECT seq, tbl, row_id, sha256 FROM audit_rows ORDER BY seq")
    while rows := cursor.fetchmany(batch):
        yield from rows


def event_row_entries(conn: Database, seq: int) -> list[RowEntry]:
    if not has_accountability(conn):
        return []
    sql = "SELECT tbl, row_id, sha256 FROM audit_rows WHERE seq = ? ORDER BY tbl, row_id"
    return [(r[0], r[1], r[2]) for r in conn.execute(sql, (seq,))]


def _id_values(table: str, row_ids: Iterable[str]) -> list[Any]:
    if table in INTEGER_KEYS:
        return [int(row_id) for row_id in row_ids]
    return [str(row_id) for row_id in row_ids]


def rows_by_id(conn: Database, table: str, row_ids: Iterable[str]) -> dict[str, dict]:
    """{row id: row} for the rows that exist (every column, as stored)."""
    key = ROW_KEYS[table]
    found: dict[str, dict[str, Any]] = {}
    values = _id_values(table, row_ids)
    if conn.dialect == POSTGRESQL:
        # One array parameter per 10,000 ids: psycopg parses a query text of 500 placeholders
        # at every call (measured: half the time of reading back 60,000 rows for their hashes).
        array = "bigint[]" if table in INTEGER_KEYS else "text[]"
        for chunk in chunks(values, ARRAY_CHUNK):
            cursor = conn.execute(
                f'SELECT * FROM {table} WHERE "{key}" = ANY(?::{array})', (chunk,)
            )
            for row in dict_rows(cursor):
                found[str(row[key])] = row
        return found
    for chunk in chunks(values, CHUNK):
        marks = ", ".join("?" * len(chunk))
        cursor = conn.execute(f'SELECT * FROM {table} WHERE "{key}" IN ({marks})', chunk)
        for row in dict_rows(cursor):
            found[str(row[key])] = row
    return found


class DatabaseRowSource:
    """`workstation.audit.verify.RowSource` over a gallery database (either kind)."""

    def __init__(self, conn: Database) -> None:
        self._conn = conn

    def current_rows(self, table: str) -> Iterator[list[tuple[str, dict[str, Any]]]]:
        key = ROW_KEYS[table]
        if not self._conn.table_exists(table):
            return  # a gallery read at an older schema (opened read-only) has no such rows
        cursor = self._conn.execute(f'SELECT * FROM {table} ORDER BY "{key}"')
        names = [column[0] for column in cursor.description]
        while rows := cursor.fetchmany(SCAN_CHUNK):
            chunk = []
            for values in rows:
                row = dict(zip(names, values, strict=True))
                chunk.append((str(row[key]), row))
            yield chunk

    def latest_row_entries(self, table: str, row_ids: list[str]) -> dict[str, tuple[int, Any]]:
        latest: dict[str, tuple[int, Any]] = {}
        for chunk in chunks([str(r) for r in row_ids], CHUNK):
            marks = ", ".join("?" * len(chunk))
            sql = (
                f"SELECT row_id, seq, sha256 FROM audit_rows WHERE tbl = ? AND row_id IN ({marks})"
            )
            for row_id, seq, digest in self._conn.execute(sql, [table, *chunk]):
                if row_id not in latest or seq > latest[row_id][0]:
                    latest[row_id] = (int(seq), digest)
        return latest

    _LIVE = (
        "FROM audit_rows a WHERE a.tbl = ? AND a.sha256 IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM audit_rows b WHERE b.tbl = a.tbl AND b.row_id = a.row_id "
        "AND b.seq > a.seq)"
    )

    def live_recorded_count(self, table: str) -> int:
        return int(self._conn.execute(f"SELECT COUNT(*) {self._LIVE}", (table,)).fetchone()[0])

    def live_recorded_rows(self, table: str) -> Iterator[list[tuple[str, int]]]:
        cursor = self._conn.execute(f"SELECT a.row_id, a.seq {self._LIVE}", (table,))
        while rows := cursor.fetchmany(SCAN_CHUNK):
            yield [(str(r[0]), int(r[1])) for r in rows]

    def existing_row_ids(self, table: str, row_ids: list[str]) -> set[str]:
        return set(rows_by_id(self._conn, table, row_ids))


def uncovered(table: str, row_id: str) -> bool:
    """Rows no act writes (derived counters): left out of row hashing."""
    return table == "meta" and row_id in UNCOVERED_META
