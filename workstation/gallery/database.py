"""The gallery's database connection, for either kind of gallery: SQLite (the embedded gallery,
a file in the gallery folder) or PostgreSQL (the agency gallery, issue 13: a server many
workstations share).

`Gallery`, `GalleryChange`, the migrations and the audit store write one SQL text for both, in
the common subset of the two dialects: `?` placeholders (translated to psycopg's `%s`), `"user"`
quoted, `ON CONFLICT`, `INSERT ... RETURNING id`, savepoints, no SQLite-only functions. What
differs is here, behind one small interface (`Database`):

- opening a write transaction: SQLite's `BEGIN IMMEDIATE` takes the file's write lock; the
  agency gallery takes a transaction-level advisory lock, so that writers are serialised the
  same way (two acts never read the same audit head);
- a read snapshot, reserving ids for bulk inserts, the schema version, table lookups;
- the driver's exceptions, named as DB-API modules name them (`db.Error`, `db.IntegrityError`,
  `db.OperationalError`), and `is_busy` (another process holds the write lock).

The statements are handed to the driver as they are: a refusal raises the driver's own exception
(sqlite3's for the embedded gallery), so a test or a tool that writes past the gallery's methods
sees what SQLite says.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any, Protocol

SQLITE, POSTGRESQL = "sqlite", "postgresql"


class Cursor(Protocol):
    """What `Database.execute` returns: the DB-API cursor of either driver."""

    description: Any

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchmany(self, size: int = ...) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Database:
    """One connection to the gallery's database (one per thread, like the connections below).

    Subclasses: `SqliteDatabase` (here) and the agency gallery's PostgreSQL connection.
    """

    dialect: str = ""
    # What messages name as the database: the SQLite file, or the server and database name.
    source: str = ""
    # The driver's exception classes (DB-API names).
    Error: type[Exception] = Exception
    IntegrityError: type[Exception] = Exception
    OperationalError: type[Exception] = Exception
    # The LIKE that ignores ASCII case, as SQLite's LIKE does.
    like = "LIKE"

    # ------------------------------------------------------------------ statements
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        """Many new rows of `table` at once (bulk enrolment, an event's row hashes): the same
        rows as one INSERT each, written the fastest way the database has (PostgreSQL: COPY)."""
        names = ", ".join(f'"{name}"' for name in columns)
        marks = ", ".join("?" * len(columns))
        self.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an INSERT and return the new row's id (`RETURNING id` in both dialects)."""
        row = self.execute(sql + " RETURNING id", params).fetchone()
        return int(row[0])

    def reserve_ids(self, table: str, count: int) -> list[int]:
        """`count` new ids for explicit inserts into `table` (inside a write transaction)."""
        raise NotImplementedError

    def id_high_water(self, table: str) -> int:
        """The highest id `table` ever gave (deleted rows included): new rows get more."""
        raise NotImplementedError

    def set_id_high_water(self, table: str, highest: int) -> None:
        """Make `table` give new rows ids above `highest`."""
        raise NotImplementedError

    def run_script(self, script: str) -> None:
        """Run DDL written once for both dialects (see `ddl`) inside the caller's transaction.

        Statement by statement (sqlite3.complete_statement finds their ends, so trigger bodies
        stay whole): executescript would commit the open transaction first.
        """
        for statement in split_statements(ddl(script, self.dialect)):
            self.execute(statement)

    def is_busy(self, exc: BaseException) -> bool:
        """Whether `exc` says another process holds the gallery's write lock."""
        return False

    # ------------------------------------------------------------------ transactions
    @property
    def in_transaction(self) -> bool:
        raise NotImplementedError

    def begin_write(self, wait: bool = True) -> None:
        """Open a transaction that holds the gallery's write lock until it ends (`wait`
        False: fail at once, with an `is_busy` error, when another process holds it)."""
        raise NotImplementedError

    def begin_read(self) -> None:
        """Open a read transaction that sees one consistent state of the gallery."""
        raise NotImplementedError

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.execute("ROLLBACK")

    def savepoint(self, name: str) -> None:
        self.execute(f"SAVEPOINT {name}")

    def rollback_to(self, name: str) -> None:
        self.execute(f"ROLLBACK TO SAVEPOINT {name}")
        self.execute(f"RELEASE SAVEPOINT {name}")

    def release(self, name: str) -> None:
        self.execute(f"RELEASE SAVEPOINT {name}")

    # ------------------------------------------------------------------ schema
    def schema_version(self) -> int:
        raise NotImplementedError

    def set_schema_version(self, version: int) -> None:
        raise NotImplementedError

    def table_exists(self, table: str) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SqliteDatabase(Database):
    """The embedded gallery's SQLite file (its PRAGMAs are set by `Gallery` when it opens it)."""

    dialect = SQLITE
    Error = sqlite3.Error
    IntegrityError = sqlite3.IntegrityError
    OperationalError = sqlite3.OperationalError

    def __init__(self, conn: sqlite3.Connection, source: str, busy_timeout_ms: int) -> None:
        self._conn = conn
        self.source = source
        self._busy_timeout_ms = busy_timeout_ms

    @property
    def connection(self) -> sqlite3.Connection:
        """The sqlite3 connection itself (SQLite-only code: migrations that rebuild tables)."""
        return self._conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    def is_busy(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and is_sqlite_busy(exc)

    def reserve_ids(self, table: str, count: int) -> list[int]:
        # The write lock is held (BEGIN IMMEDIATE): nobody else can take these ids meanwhile.
        top = self.id_high_water(table)
        return list(range(top + 1, top + 1 + count))

    def id_high_water(self, table: str) -> int:
        # A table with AUTOINCREMENT never gives out an id it gave before (schema migration 3):
        # the higher of its highest row and its sequence.
        top = int(self.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0])
        row = self.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
        return max(top, int(row[0])) if row is not None else top

    def set_id_high_water(self, table: str, highest: int) -> None:
        highest = max(int(highest), self.id_high_water(table))
        self.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
        self.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, highest))

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def begin_write(self, wait: bool = True) -> None:
        # IMMEDIATE takes the write lock at once, so that two writers cannot both read the
        # same audit head.
        if wait:
            self.execute("BEGIN IMMEDIATE")
            return
        self.execute("PRAGMA busy_timeout = 0")
        try:
            self.execute("BEGIN IMMEDIATE")
        finally:
            self.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")

    def begin_read(self) -> None:
        self.execute("BEGIN")

    def schema_version(self) -> int:
        return int(self.execute("PRAGMA user_version").fetchone()[0])

    def set_schema_version(self, version: int) -> None:
        self.execute(f"PRAGMA user_version = {int(version)}")

    def table_exists(self, table: str) -> bool:
        row = self.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        return row is not None

    def close(self) -> None:
        self._conn.close()


def is_sqlite_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLite's "database is locked" / "busy": another connection holds the write lock."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


# ---------------------------------------------------------------------- one SQL, two dialects
@lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """`?` placeholders as psycopg's `%s` (and a literal `%` as `%%`), outside quoted text."""
    out: list[str] = []
    quote = ""
    for char in sql:
        if quote:
            if char == quote:
                quote = ""
        elif char in ("'", '"'):
            quote = char
        elif char == "?":
            out.append("%s")
            continue
        out.append("%%" if char == "%" else char)
    return "".join(out)


_INTEGER_KEY = re.compile(r"\bINTEGER\s+PRIMARY\s+KEY(\s+AUTOINCREMENT)?\b", re.IGNORECASE)
_INTEGER = re.compile(r"\bINTEGER\b", re.IGNORECASE)
_BLOB = re.compile(r"\bBLOB\b", re.IGNORECASE)
_REAL = re.compile(r"\bREAL\b", re.IGNORECASE)
_TEXT = re.compile(r"\bTEXT\b(?!\s*\()", re.IGNORECASE)


@lru_cache(maxsize=256)
def ddl(script: str, dialect: str) -> str:
    """The gallery's DDL (written in SQLite's words) for `dialect`.

    PostgreSQL gets: ids as 64-bit identity columns (never reused, like SQLite's AUTOINCREMENT),
    every INTEGER as BIGINT (pair counts pass 2^31 at 70,000 faces), BLOB as BYTEA, REAL as
    DOUBLE PRECISION (SQLite's REAL is 8 bytes, PostgreSQL's 4: a false-match rate of 1e-4 came
    back as 9.99999974738e-05), and TEXT
    compared byte by byte (COLLATE "C"), so that subjects sort as in SQLite whatever locale the
    agency's server was created with. Triggers differ too much to translate: a migration writes
    them through `append_only_guard`.
    """
    if dialect == SQLITE:
        return script
    script = _INTEGER_KEY.sub("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", script)
    script = _INTEGER.sub("BIGINT", script)
    script = _BLOB.sub("BYTEA", script)
    script = _REAL.sub("DOUBLE PRECISION", script)
    return _TEXT.sub('TEXT COLLATE "C"', script)


def split_statements(script: str) -> list[str]:
    """A script's statements, split where SQLite sees them end (trigger bodies stay whole)."""
    statements: list[str] = []
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            statements.append(statement.strip())
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement: {statement!r}")
    return statements


def append_only_guard(
    db: Database, table: str, names: tuple[str, str], what: str, rows: str = "events"
) -> None:
    """Triggers that refuse UPDATE and DELETE on `table` (the audit log, its row hashes).

    `names` are the (update, delete) trigger names; the refusal says "`what`: `rows` cannot be
    changed" (or deleted).
    """
    update_name, delete_name = names
    if db.dialect == SQLITE:
        db.execute(
            f"CREATE TRIGGER {update_name} BEFORE UPDATE ON {table}\n"
            f"BEGIN SELECT RAISE(ABORT, '{what}: {rows} cannot be changed'); END;"
        )
        db.execute(
            f"CREATE TRIGGER {delete_name} BEFORE DELETE ON {table}\n"
            f"BEGIN SELECT RAISE(ABORT, '{what}: {rows} cannot be deleted'); END;"
        )
        return
    for name, verb in ((update_name, "changed"), (delete_name, "deleted")):
        db.execute(
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{what}: {rows} cannot be {verb}' "
            "USING ERRCODE = 'integrity_constraint_violation'; END $$"
        )
    db.execute(
        f"CREATE TRIGGER {update_name} BEFORE UPDATE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {update_name}()"
    )
    db.execute(
        f"CREATE TRIGGER {delete_name} BEFORE DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {delete_name}()"
    )
    # TRUNCATE skips row triggers: a statement trigger refuses it as well.
    db.execute(
        f"CREATE TRIGGER {delete_name}_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {delete_name}()"
    )


def dict_rows(cursor: Any) -> list[dict[str, Any]]:
    """A query's rows as dicts keyed by column name (both databases' cursors)."""
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def chunks(values: list[Any], size: int = 500) -> Iterator[list[Any]]:
    """`values` in lists of at most `size`: SQLite allows at most 999 parameters per statement
    in older builds."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
