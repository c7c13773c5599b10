"""The gallery database schema, as numbered migrations, written once for both kinds of gallery.

Each migration is a small function run in its own transaction on a `Database` (SQLite for the
embedded gallery; PostgreSQL for the agency gallery, issue 13); its DDL is written in SQLite's
words and `database.ddl` gives PostgreSQL its own (identity ids, BIGINT, BYTEA), so there is one
schema, not two copies that drift. The version is SQLite's `PRAGMA user_version` (or the agency
database's version table: `Database.schema_version`); the numbers are the same. A gallery opened
by an older program version is upgraded in place, and one written by a newer version is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from workstation.domain import Decision
from workstation.errors import GalleryError
from workstation.gallery.database import SQLITE, Database, SqliteDatabase, append_only_guard


@dataclass(frozen=True)
class Table:
    """What the rest of the gallery needs to know of one table of the schema."""

    name: str
    # The columns a row is found by, and a copy reads the table in the order of (keyset paging).
    key: tuple[str, ...]
    # Its ids are given by the database (integers from a sequence): a copied gallery goes on
    # counting above the source's high-water mark, and row hashes name these rows by number.
    numbered: bool = False
    # One of the gallery's rows, moved by `gallery copy`. Not: the database's own schema version
    # (checked instead) and an agency database's witness of each event as it arrived (written by
    # the server itself, which witnesses the copied events as they are inserted).
    copied: bool = True


# Every table either kind of gallery has, in the order a copy's rows must arrive (what a row
# points at first). The one list: the copy, the row hashes' keys and the agency's grants read it,
# and a migration that adds a table adds it here (tests check it against the migrated databases).
TABLES: tuple[Table, ...] = (
    Table("meta", ("key",)),
    Table("examiners", ("fingerprint",)),
    Table("gallery_settings", ("key",)),
    Table("subjects", ("id",)),
    Table("images", ("id",), numbered=True),
    Table("faces", ("id",), numbered=True),
    Table("cases", ("id",)),
    Table("searches", ("id",), numbered=True),
    Table("decisions", ("id",), numbered=True),
    Table("calibrations", ("id",), numbered=True),
    Table("comparison_sheets", ("id",), numbered=True),
    Table("watches", ("id",), numbered=True),
    Table("watch_hits", ("id",), numbered=True),
    Table("redaction_marks", ("id",), numbered=True),
    Table("audit", ("seq",)),
    Table("audit_rows", ("seq", "tbl", "row_id")),
    Table("workstation_schema", ("version",), copied=False),
    Table("audit_witness", ("seq",), copied=False),
)
TABLE = {table.name: table for table in TABLES}


def _sql_values(enum: type[Enum]) -> str:
    """An enum's values as a SQL list, for CHECK constraints ('a', 'b', ...)."""
    return ", ".join("'" + str(member.value).replace("'", "''") + "'" for member in enum)


def _migration_1(db: Database) -> None:
    # The decisions CHECK is built from the Decision enum, the one list of decisions. A value
    # added to the enum later needs a migration that widens the CHECK of existing galleries
    # (tests/unit/test_decisions.py compares a gallery's CHECK with the enum).
    db.run_script(
        f"""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE subjects (
            id TEXT PRIMARY KEY,
            name TEXT,
            attributes TEXT NOT NULL DEFAULT '{{}}',
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        );
        CREATE TABLE images (
            id INTEGER PRIMARY KEY,
            sha256 TEXT NOT NULL UNIQUE,
            original_path TEXT NOT NULL,
            stored_path TEXT,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            format TEXT,
            file_bytes INTEGER,
            imported_at TEXT NOT NULL,
            imported_by TEXT NOT NULL
        );
        CREATE TABLE faces (
            id INTEGER PRIMARY KEY,
            subject_id TEXT NOT NULL REFERENCES subjects(id),
            image_id INTEGER NOT NULL REFERENCES images(id),
            box TEXT NOT NULL,
            landmarks TEXT,
            source TEXT NOT NULL,
            aligned INTEGER NOT NULL,
            quality TEXT NOT NULL,
            verdict TEXT NOT NULL,
            model_id TEXT NOT NULL,
            embedding BLOB NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX faces_subject ON faces(subject_id);
        CREATE INDEX faces_image ON faces(image_id);
        CREATE TABLE cases (
            id TEXT PRIMARY KEY,
            purpose TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        );
        CREATE TABLE searches (
            id INTEGER PRIMARY KEY,
            case_id TEXT NOT NULL REFERENCES cases(id),
            purpose TEXT NOT NULL,
            "user" TEXT NOT NULL,
            created_at TEXT NOT NULL,
            probe_path TEXT,
            probe_sha256 TEXT NOT NULL,
            face TEXT NOT NULL,
            model_id TEXT NOT NULL,
            params TEXT NOT NULL,
            gallery_size INTEGER NOT NULL,
            candidates TEXT NOT NULL,
            note TEXT
        );
        CREATE INDEX searches_case ON searches(case_id);
        CREATE TABLE decisions (
            id INTEGER PRIMARY KEY,
            search_id INTEGER NOT NULL REFERENCES searches(id),
            subject_id TEXT NOT NULL,
            decision TEXT NOT NULL
                CHECK (decision IN ({_sql_values(Decision)})),
            note TEXT,
            "user" TEXT NOT NULL,
            created_at TEXT NOT NULL,
            confirms INTEGER REFERENCES decisions(id)
        );
        CREATE INDEX decisions_search ON decisions(search_id);
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            "user" TEXT NOT NULL,
            action TEXT NOT NULL,
            case_id TEXT,
            purpose TEXT,
            details TEXT NOT NULL,
            prev_hash TEXT NOT NULL UNIQUE,
            hash TEXT NOT NULL UNIQUE
        );
        CREATE INDEX audit_case ON audit(case_id);
        """,
    )
    append_only_guard(
        db, "audit", ("audit_no_update", "audit_no_delete"), "the audit log is append-only"
    )


def _migration_2(db: Database) -> None:
    """Score calibrations (impostor score histograms), kept so every reported FMR can be redone."""
    db.run_script(
        """
        CREATE TABLE calibrations (
            id INTEGER PRIMARY KEY,
            sha256 TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            model_id TEXT NOT NULL,
            sources TEXT NOT NULL,
            impostor_pairs INTEGER NOT NULL,
            gallery_pairs INTEGER NOT NULL,
            reference_pairs INTEGER NOT NULL,
            generation INTEGER NOT NULL,
            gallery_faces INTEGER NOT NULL,
            gallery_subjects INTEGER NOT NULL,
            histogram TEXT NOT NULL,
            details TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX calibrations_model ON calibrations(model_id);
        """,
    )


# Tables whose integer ids other records (search records, reports, the audit log) point at. A
# deleted row's id must never be given to a new row: an old search's candidate would then show
# another person's photo. audit is left out: its rows cannot be deleted (triggers), so its seq
# is never reused, and rebuilding it would mean dropping the append-only table.
_NEVER_REUSED: dict[str, str | None] = {
    # table: the highest id of that table the audit log has ever named (rows deleted before
    # this upgrade, when the highest of them was the last one, are named only there)
    "images": None,  # image ids are internal: no record outside the database names them
    "faces": "SELECT MAX(CAST(json_extract(details, '$.face_id') AS INTEGER)) FROM audit "
    "WHERE action = 'enrol'",
    "searches": "SELECT MAX(CAST(json_extract(details, '$.search_id') AS INTEGER)) FROM audit",
    "decisions": "SELECT MAX(CAST(json_extract(details, '$.decision_id') AS INTEGER)) FROM audit",
    "calibrations": "SELECT MAX(CAST(json_extract(details, '$.id') AS INTEGER)) FROM audit "
    "WHERE action = 'calibrate'",
}


def _migration_3(db: Database) -> None:
    """Ids are never reused: AUTOINCREMENT on every table other records point at.

    SQLite cannot add AUTOINCREMENT to an existing table, so each is rebuilt (SQLite's
    documented twelve-step procedure, with foreign keys checked by `migrate`): same columns,
    rows, indexes and triggers. Its sequence then starts above the highest id it ever had,
    the larger of its highest remaining id and the highest id the audit log names, so ids
    deleted before this upgrade are not given out again either.
    """
    if db.dialect != SQLITE:
        # An agency gallery's ids are identity columns from its first migration: never reused.
        return
    assert isinstance(db, SqliteDatabase)
    conn = db.connection
    for table, audited_sql in _NEVER_REUSED.items():
        _rebuild_with_autoincrement(conn, table)
        highest = int(conn.execute(f'SELECT COALESCE(MAX(id), 0) FROM "{table}"').fetchone()[0])
        if audited_sql:
            audited = conn.execute(audited_sql).fetchone()[0]
            highest = max(highest, int(audited or 0))
        conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, highest))


def _rebuild_with_autoincrement(conn: Any, table: str) -> None:
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    if row is None:
        raise GalleryError(f"table {table} is missing: the gallery database is damaged")
    create_sql = str(row[0])
    if re.search(r"\bAUTOINCREMENT\b", create_sql, flags=re.IGNORECASE):
        return
    # The stored CREATE statement, so columns added by later ALTER TABLEs are kept as they are.
    new_sql, found = re.subn(
        r"\bid\s+INTEGER\s+PRIMARY\s+KEY\b",
        "id INTEGER PRIMARY KEY AUTOINCREMENT",
        create_sql,
        count=1,
        flags=re.IGNORECASE,
    )
    if found != 1:
        raise GalleryError(f"table {table} has no 'id INTEGER PRIMARY KEY' column to renumber")
    staging = f"{table}__rebuilt"
    new_sql, renamed = re.subn(
        r'^\s*CREATE\s+TABLE\s+("?)' + re.escape(table) + r"\1",
        f'CREATE TABLE "{staging}"',
        new_sql,
        count=1,
        flags=re.IGNORECASE,
    )
    if renamed != 1:
        raise GalleryError(f"cannot read the definition of table {table}")
    attached = [
        str(sql)
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') "
            "AND sql IS NOT NULL ORDER BY type, name",
            (table,),
        )
    ]
    columns = ", ".join(f'"{info[1]}"' for info in conn.execute(f'PRAGMA table_info("{table}")'))
    conn.execute(new_sql)
    conn.execute(f'INSERT INTO "{staging}" ({columns}) SELECT {columns} FROM "{table}"')
    conn.execute(f'DROP TABLE "{table}"')
    conn.execute(f'ALTER TABLE "{staging}" RENAME TO "{table}"')
    for statement in attached:
        conn.execute(statement)


def _migration_4(db: Database) -> None:
    """Accountability (issue 11): signed events, the rows each event wrote, registered examiners
    and the gallery's own settings.

    - audit gains the fingerprint of the key that signed each event, the digest of the rows it
      wrote and the signature (NULL for events written before: they keep their old hash);
    - audit_rows holds, for each event, the SHA-256 of every row the act wrote (NULL: removed),
      append-only like the audit table;
    - examiners: the registered keys and roles (the chain's registration events carry the same
      keys, so `audit verify` never trusts this table, it checks it like any other row);
    - gallery_settings: settings of the gallery itself (the agency witness folder);
    - decisions.key_fingerprint: the key that recorded the decision (a confirmation needs
      another key than the lead's);
    - cases.authorised_by / authorised_at / authorisation: who approved the searches of a case,
      when, and the approval's reference (the EU AI Act's log of remote biometric
      identification; optional, recorded with `cases authorise` or the first search).
    """
    db.run_script(
        """
        ALTER TABLE audit ADD COLUMN key_fingerprint TEXT;
        ALTER TABLE audit ADD COLUMN rows_digest TEXT;
        ALTER TABLE audit ADD COLUMN signature TEXT;
        CREATE INDEX audit_action ON audit(action);
        ALTER TABLE decisions ADD COLUMN key_fingerprint TEXT;
        ALTER TABLE cases ADD COLUMN authorised_by TEXT;
        ALTER TABLE cases ADD COLUMN authorised_at TEXT;
        ALTER TABLE cases ADD COLUMN authorisation TEXT;
        CREATE TABLE audit_rows (
            seq INTEGER NOT NULL REFERENCES audit(seq),
            tbl TEXT NOT NULL,
            row_id TEXT NOT NULL,
            sha256 TEXT,
            PRIMARY KEY (seq, tbl, row_id)
        );
        CREATE INDEX audit_rows_row ON audit_rows(tbl, row_id, seq);
        CREATE TABLE examiners (
            fingerprint TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            name_key TEXT NOT NULL,
            public_key TEXT NOT NULL,
            roles TEXT NOT NULL,
            registered_at TEXT NOT NULL,
            registered_by TEXT NOT NULL,
            revoked_at TEXT,
            revoked_by TEXT,
            revoked_reason TEXT
        );
        CREATE UNIQUE INDEX examiners_active_name ON examiners(name_key)
            WHERE revoked_at IS NULL;
        CREATE TABLE gallery_settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            changed_at TEXT NOT NULL,
            changed_by TEXT NOT NULL
        );
        """,
    )
    append_only_guard(
        db,
        "audit_rows",
        ("audit_rows_no_update", "audit_rows_no_delete"),
        "the audit log is append-only",
        rows="row hashes",
    )


def _migration_5(db: Database) -> None:
    """ACE-V comparison sheets (issue 15 item 1): each version of an examiner's sheet on one
    candidate of a search, as JSON (analysis, features, conclusion, annotations); `role` is
    examination or verification, `verifies` the examination sheet a verification verifies.
    Never updated: recording again adds a row (gallery/comparisons.py)."""
    db.run_script(
        """
        CREATE TABLE comparison_sheets (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            search_id INTEGER NOT NULL REFERENCES searches(id),
            subject_id TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('examination', 'verification')),
            verifies INTEGER REFERENCES comparison_sheets(id),
            "user" TEXT NOT NULL,
            key_fingerprint TEXT,
            created_at TEXT NOT NULL,
            sheet TEXT NOT NULL
        );
        CREATE INDEX comparison_sheets_candidate ON comparison_sheets(search_id, subject_id);
        """,
    )


def _migration_6(db: Database) -> None:
    """Cases as a list (issue 15 item 4): a case's status and its retention date.

    - cases.status: NULL while the case is open, 'closed' or 'archived' (nullable on purpose: a
      NULL column is left out of a row's audited hash, so open cases written before this
      migration keep the hash their events recorded);
    - cases.status_changed_at / status_changed_by / status_reason: the last close, reopen or
      archive (each also an audit event with the reason);
    - cases.retain_until: the date (YYYY-MM-DD) after which the case's records are due for
      deletion, set when the case is closed or archived; `cases` lists the cases past it.
    """
    db.run_script(
        """
        ALTER TABLE cases ADD COLUMN status TEXT CHECK (status IN ('closed', 'archived'));
        ALTER TABLE cases ADD COLUMN status_changed_at TEXT;
        ALTER TABLE cases ADD COLUMN status_changed_by TEXT;
        ALTER TABLE cases ADD COLUMN status_reason TEXT;
        ALTER TABLE cases ADD COLUMN retain_until TEXT;
        """,
    )


def _migration_7(db: Database) -> None:
    """Cold-case watch (issue 15 item 3): a searched probe left on watch, and what it found.

    - watches: the search whose probe is watched, its case and purpose (each re-search is a
      search on that case), the examiner's reason, the false-match rate picked and the score
      threshold the calibration gave for it, the probe's embedding (the searched face's; set to
      NULL when the watch ends or expires: deleted means deleted), the date it expires, the
      highest face id already searched, and how it ended;
    - watch_hits: each new face that scored above a watch's threshold, with the re-search
      (a searches row of the case) that found it.
    """
    db.run_script(
        """
        CREATE TABLE watches (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            search_id INTEGER NOT NULL REFERENCES searches(id),
            case_id TEXT NOT NULL REFERENCES cases(id),
            purpose TEXT NOT NULL,
            reason TEXT NOT NULL,
            fmr REAL NOT NULL,
            threshold REAL NOT NULL,
            model_id TEXT NOT NULL,
            embedding BLOB,
            until TEXT NOT NULL,
            checked_face_id INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            ended_at TEXT,
            ended_by TEXT,
            end_reason TEXT
        );
        CREATE INDEX watches_case ON watches(case_id);
        CREATE TABLE watch_hits (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            watch_id INTEGER NOT NULL REFERENCES watches(id),
            search_id INTEGER NOT NULL REFERENCES searches(id),
            subject_id TEXT NOT NULL,
            face_id INTEGER NOT NULL,
            score REAL NOT NULL,
            fmr REAL,
            fmr_text TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX watch_hits_watch ON watch_hits(watch_id);
        """,
    )


def _migration_8(db: Database) -> None:
    """Redaction on export (issue 15 item 5): the examiner's marks on a search's probe image.

    - kind 'drawn': a box the examiner added to be redacted (a missed face, a tattoo, a badge);
    - kind 'unredact': a box (a detected bystander or a drawn box) the examiner chose to show
      unredacted in exports, with the note saying why (required).
    `image_ref` names the image: the probe's SHA-256, with #frame=N for a video frame. Never
    updated or deleted by the program: each mark is an audited act.
    """
    db.run_script(
        """
        CREATE TABLE redaction_marks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            search_id INTEGER NOT NULL REFERENCES searches(id),
            case_id TEXT NOT NULL REFERENCES cases(id),
            image_ref TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('drawn', 'unredact')),
            x REAL NOT NULL,
            y REAL NOT NULL,
            w REAL NOT NULL,
            h REAL NOT NULL,
            note TEXT,
            "user" TEXT NOT NULL,
            key_fingerprint TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX redaction_marks_search ON redaction_marks(search_id);
        """,
    )


# The REAL columns of the schema: PostgreSQL's REAL is a 4-byte float (SQLite's is 8 bytes).
REAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "watches": ("fmr", "threshold"),
    "watch_hits": ("score", "fmr"),
    "redaction_marks": ("x", "y", "w", "h"),
}


def _migration_9(db: Database) -> None:
    """An agency gallery's REAL columns become DOUBLE PRECISION, as `ddl` now makes them: a
    4-byte float turned a false-match rate of 1e-4 into 9.99999974738e-05. A stored value is
    converted through its text, the shortest decimal that reads back as the same 4-byte float
    (1e-4 stays 1e-4, not 9.99999974738e-05). psycopg reads a 4-byte float as that same text,
    so a redaction mark (a row the audit chain hashes) reads back as it did and its recorded
    hash still verifies. SQLite's REAL is already 8 bytes: nothing to do."""
    if db.dialect == SQLITE:
        return
    for table, columns in REAL_COLUMNS.items():
        changes = ", ".join(
            f"ALTER COLUMN {column} TYPE DOUBLE PRECISION USING {column}::text::double precision"
            for column in columns
        )
        db.execute(f"ALTER TABLE {table} {changes}")


MIGRATIONS: list[Callable[[Database], None]] = [
    _migration_1,
    _migration_2,
    _migration_3,
    _migration_4,
    _migration_5,
    _migration_6,
    _migration_7,
    _migration_8,
    _migration_9,
]
SCHEMA_VERSION = len(MIGRATIONS)


def check_schema_version(db: Database) -> int:
    """The database's schema version; refuses one written by a newer program."""
    current = db.schema_version()
    if current > SCHEMA_VERSION:
        raise GalleryError(
            f"{db.source}: gallery schema version {current} is newer than this program "
            f"understands ({SCHEMA_VERSION}); update workstation"
        )
    return current


def migrate(db: Database) -> int:
    """Bring the database to SCHEMA_VERSION; returns the version it started at.

    Each migration and its version bump commit together or not at all.
    """
    current = check_schema_version(db)
    if current == SCHEMA_VERSION:
        return current
    if db.in_transaction:
        db.commit()
    if db.dialect != SQLITE:
        for version in range(current + 1, SCHEMA_VERSION + 1):
            _apply(db, version)
        return current
    # A table rebuild drops and re-creates tables that others point at, which foreign keys
    # forbid mid-way; they are switched off for the migrations (only possible outside a
    # transaction) and checked before each commit instead: a migration may not add a broken
    # reference.
    foreign_keys = int(db.execute("PRAGMA foreign_keys").fetchone()[0])
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        for version in range(current + 1, SCHEMA_VERSION + 1):
            _apply(db, version, check_foreign_keys=True)
    finally:
        db.execute(f"PRAGMA foreign_keys = {foreign_keys}")
    return current


def _apply(db: Database, version: int, check_foreign_keys: bool = False) -> None:
    """Run migration `version` in its own write transaction, unless another connection did."""
    db.begin_write()
    try:
        # Another connection (the app's workers open a new gallery at once; another agency
        # workstation) may have applied this migration while this one waited for the lock:
        # never again, or a re-run sets the version back and fails half-way on the first step
        # that cannot be repeated.
        if db.schema_version() >= version:
            db.commit()
            return
        if check_foreign_keys:
            broken_before = len(db.execute("PRAGMA foreign_key_check").fetchall())
        MIGRATIONS[version - 1](db)
        if check_foreign_keys:
            broken = len(db.execute("PRAGMA foreign_key_check").fetchall())
            if broken > broken_before:
                raise GalleryError(
                    f"{db.source}: schema migration {version} would leave "
                    f"{broken - broken_before} record(s) pointing at nothing; the gallery was "
                    "not changed"
                )
        db.set_schema_version(version)
        db.commit()
    except BaseException:
        db.rollback()
        raise
