"""The agency gallery's records in PostgreSQL (issue 13): one connection per thread, as for SQLite.

Each examiner connects as the PostgreSQL role libpq resolves (the user in the URL, PGUSER, or the
OS login; the password from ~/.pgpass or PGPASSWORD, or Kerberos or a client certificate, as the
agency's server is configured).

The connection runs in autocommit mode and the gallery opens its transactions itself, as with
SQLite: `begin_write` is `BEGIN` plus a transaction-level advisory lock that every writer of the
gallery takes, so writers are serialised as SQLite's `BEGIN IMMEDIATE` serialises them (two acts
never read the same audit head; a confirmation's check and its write see the same rows). Readers
never wait for it. A writer waits at most `lock_timeout` (30 s, as SQLite's busy timeout) and
then gets LockNotAvailable, which `is_busy` recognises (the gallery says it is busy).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from workstation.errors import GalleryError
from workstation.gallery.database import POSTGRESQL, Database, to_pyformat

# pg_advisory_xact_lock key of the gallery's write lock (any constant: one gallery per database).
WRITE_LOCK_KEY = 0x57_53_47_4C  # "WSGL"
SCHEMA_TABLE = "workstation_schema"
LOCK_TIMEOUT = "30s"


def psycopg_module() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - the agency extra is not installed
        raise GalleryError(
            "this is an agency gallery (PostgreSQL), but the PostgreSQL client library is not "
            "installed: pip install 'workstation[agency]'"
        ) from exc
    return psycopg


def describe_url(url: str) -> str:
    """A connection URL as messages name it: host and database, never a password."""
    psycopg = psycopg_module()
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the PostgreSQL server"
    host = info.get("host") or "localhost"
    port = f":{info['port']}" if info.get("port") else ""
    return f"postgresql://{host}{port}/{info.get('dbname') or ''}"


class PostgresDatabase(Database):
    """One connection to the agency gallery's PostgreSQL database."""

    dialect = POSTGRESQL
    like = "ILIKE"  # SQLite's LIKE ignores ASCII case; PostgreSQL's does not

    def __init__(self, conn: Any, source: str) -> None:
        psycopg = psycopg_module()
        self._conn = conn
        self.source = source
        self.Error = psycopg.Error
        self.IntegrityError = psycopg.IntegrityError
        self.OperationalError = psycopg.OperationalError
        self._lock_refused = psycopg.errors.LockNotAvailable

    @classmethod
    def connect(cls, url: str, read_only: bool = False, **overrides: Any) -> PostgresDatabase:
        """Connect as the examiner libpq resolves (see the module docstring).

        `overrides` are libpq parameters that win over the URL's (tests pass `user`).
        """
        psycopg = psycopg_module()
        source = describe_url(url)
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=30, **overrides)
        except psycopg.OperationalError as exc:
            reason = " ".join(str(exc).split())
            raise GalleryError(
                f"{source}: cannot connect to the agency gallery's database ({reason})"
            ) from exc
        conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        if read_only:
            conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        return cls(conn, source)

    @property
    def connection(self) -> Any:
        return self._conn

    def session_user(self) -> str:
        """The role the server authenticated."""
        return str(self._conn.execute("SELECT session_user").fetchone()[0])

    # ------------------------------------------------------------------ statements
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if params:
            return self._conn.execute(to_pyformat(sql), list(params))
        return self._conn.execute(sql)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(to_pyformat(sql), [list(row) for row in rows])

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        # COPY instead of executemany: measured on 20,000 faces (60,000 rows plus 60,000 row
        # hashes), psycopg's pipelined executemany spent about 100 us of client CPU a row, COPY
        # a tenth of that. COPY fires the same triggers (the examiner and row-hash guards),
        # checks the same constraints and needs the same INSERT grant as INSERT.
        names = ", ".join(f'"{name}"' for name in columns)
        with (
            self._conn.cursor() as cursor,
            cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def is_busy(self, exc: BaseException) -> bool:
        return isinstance(exc, self._lock_refused)

    def reserve_ids(self, table: str, count: int) -> list[int]:
        if count <= 0:
            return []
        rows = self.execute(
            "SELECT nextval(pg_get_serial_sequence(?, 'id')) FROM generate_series(1, ?)",
            (table, count),
        ).fetchall()
        return [int(r[0]) for r in rows]

    def id_high_water(self, table: str) -> int:
        top = int(self.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0])
        # NULL while the sequence has given nothing.
        (last,) = self.execute(
            "SELECT pg_sequence_last_value(pg_get_serial_sequence(?, 'id')::regclass)", (table,)
        ).fetchone()
        return max(top, int(last or 0))

    def set_id_high_water(self, table: str, highest: int) -> None:
        highest = max(int(highest), self.id_high_water(table))
        if highest > 0:
            self.execute(
                "SELECT setval(pg_get_serial_sequence(?, 'id'), ?, true)", (table, highest)
            )

    # ------------------------------------------------------------------ transactions
    @property
    def in_transaction(self) -> bool:
        status = self._conn.info.transaction_status
        return status != psycopg_module().pq.TransactionStatus.IDLE

    def begin_write(self, wait: bool = True) -> None:
        self.execute("BEGIN")
        if wait:
            self.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
            return
        (taken,) = self.execute(f"SELECT pg_try_advisory_xact_lock({WRITE_LOCK_KEY})").fetchone()
        if not taken:
            self.execute("ROLLBACK")
            raise self._lock_refused("another workstation holds the gallery's write lock")

    def begin_read(self) -> None:
        self.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    # ------------------------------------------------------------------ schema
    def schema_version(self) -> int:
        if not self.table_exists(SCHEMA_TABLE):
            return 0
        row = self.execute(f"SELECT version FROM {SCHEMA_TABLE}").fetchone()
        return 0 if row is None else int(row[0])

    def set_schema_version(self, version: int) -> None:
        self.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (version INTEGER NOT NULL)")
        self.execute(f"DELETE FROM {SCHEMA_TABLE}")
        self.execute(f"INSERT INTO {SCHEMA_TABLE} (version) VALUES (?)", (int(version),))

    def table_exists(self, table: str) -> bool:
        row = self.execute("SELECT to_regclass(?)", (table,)).fetchone()
        return row is not None and row[0] is not None

    def close(self) -> None:
        self._conn.close()
