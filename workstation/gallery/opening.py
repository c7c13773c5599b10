"""Where a gallery is and how its database opens: the folder's kind (embedded or agency), the
SQLite settings every gallery database gets (WAL, a power-cut-safe commit, secure delete,
foreign keys, migration), read-only opening, and the words for a folder that holds no gallery or
a database another process holds. `Gallery` (workstation.gallery.store) opens through these.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from workstation.errors import GalleryError
from workstation.gallery.database import Database, SqliteDatabase, is_sqlite_busy
from workstation.gallery.schema import check_schema_version, migrate
from workstation.permissions import create_private_file, make_private_dir, restrict_process

DB_NAME = "gallery.sqlite"
# The kinds of gallery (`gallery_kind`): SQLite and FAISS files in the folder.
EMBEDDED = "embedded"
# Records in PostgreSQL, vectors in Milvus: a folder with gallery.toml (workstation.gallery.agency).
AGENCY = "agency"
AGENCY_CONFIG = "gallery.toml"
# The gallery setting naming the agency witness folder (a network share or write-once store).
WITNESS_FOLDER_SETTING = "witness_folder"
# Every file of the vector index (vectors, ids, codes, manifest) is named faces.*.
INDEX_FILES_GLOB = "faces.*"

# How long a writer waits for another process's write transaction before saying the gallery is
# busy (enrolment batches hold it for about a second; a re-embed's commit for longer).
BUSY_TIMEOUT_SECONDS = 30.0


def _switch_to_wal(conn: sqlite3.Connection) -> str:
    """Set WAL mode, waiting as long as for any write lock. SQLite answers a journal-mode change
    with "database is locked" at once, without its busy handler, while another connection is
    making the same new database (the app's workers open a new gallery together at start-up)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if not is_sqlite_busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def open_sqlite(db_path: Path) -> SqliteDatabase:
    """Open (and migrate) the database: every SQLite-only setting of the gallery is here (and
    in `connect_read_only` for read-only opening)."""
    conn = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_SECONDS)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    # Deleted rows (a subject's name, embeddings, photo hashes) are overwritten with zeros in
    # the database file and its WAL instead of staying in free pages (issue 12 item 1).
    conn.execute("PRAGMA secure_delete = ON")
    mode = _switch_to_wal(conn)
    if str(mode).lower() != "wal":
        raise GalleryError(f"{db_path}: cannot switch the database to WAL mode")
    # FULL: a committed audit event survives a power cut, not only a crash.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    db = SqliteDatabase(conn, str(db_path), int(BUSY_TIMEOUT_SECONDS * 1000))
    try:
        migrate(db)
    except BaseException:
        conn.close()
        raise
    return db


def busy_message(db_path: Path) -> str:
    """One line: which gallery is busy, and which process holds it where that can be known."""
    holders = _processes_using(db_path)
    who = (
        "held by " + "; ".join(holders)
        if holders
        else "held by another workstation window or command (or a program with the file open)"
    )
    return (
        f"{db_path.parent}: the gallery is busy: another process has been writing to it for "
        f"over {BUSY_TIMEOUT_SECONDS:.0f} s ({who}); nothing was changed here. Try again when "
        "it has finished"
    )


def _processes_using(db_path: Path, limit: int = 3) -> list[str]:
    """Other processes with the database open, as 'process PID (command)' (Linux /proc; an
    empty list where that cannot be read)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    try:
        targets = {str(db_path.resolve()), str(db_path.resolve()) + "-wal"}
    except OSError:
        return []
    found: list[str] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            links = {os.readlink(fd) for fd in (entry / "fd").iterdir()}
        except OSError:
            continue
        if links & targets:
            try:
                raw = (entry / "cmdline").read_bytes().replace(b"\0", b" ").strip()
                command = raw.decode("utf-8", "backslashreplace")[:80]
            except OSError:
                command = "?"
            found.append(f"process {entry.name} ({command})")
            if len(found) >= limit:
                break
    return found


def open_database(folder: Path | str, login: str) -> tuple[Database, str]:
    """The database of the gallery in `folder` as it is, and its kind (EMBEDDED or AGENCY),
    without opening it as a gallery (no genesis event, no clean-up): for `gallery copy`, which
    fills an empty one. A folder holding no gallery gets a new, empty embedded database."""
    folder = Path(folder).expanduser()
    if gallery_kind(folder) == AGENCY:
        from workstation.gallery.agency import open_agency

        db, _ = open_agency(folder, read_only=False, login=login)
        return db, AGENCY
    restrict_process()
    db_path = folder / DB_NAME
    if not db_path.exists():
        try:
            make_private_dir(folder)
            create_private_file(db_path)
        except OSError as exc:
            raise GalleryError(f"{folder}: cannot create the gallery folder ({exc})") from exc
    try:
        return open_sqlite(db_path), EMBEDDED
    except sqlite3.DatabaseError as exc:
        raise GalleryError(f"{db_path}: not a usable gallery database ({exc})") from exc


def gallery_kind(folder: Path | str) -> str | None:
    """EMBEDDED or AGENCY for a folder that holds a gallery, None for one that holds none."""
    folder = Path(folder).expanduser()
    if (folder / DB_NAME).exists():
        return EMBEDDED
    if (folder / AGENCY_CONFIG).is_file():
        return AGENCY
    return None


def no_gallery_message(folder: Path) -> str:
    return (
        f"{folder}: no gallery here (no {DB_NAME}, no {AGENCY_CONFIG}); check the folder given "
        "with --gallery or in the settings. Only enrolment creates a new gallery"
    )


def connect_read_only(db_path: Path) -> SqliteDatabase:
    """Open the database for reading only, never migrating or writing it.

    A WAL database read-only needs its -shm file, which SQLite creates next to it when the
    folder is writable. In a read-only folder (a copy on write-protected media) without one,
    the database is opened as immutable, which is exact only when no -wal file holds changes:
    a -wal with content and no -shm cannot be read there, and is refused rather than ignored.
    """
    uri = db_path.resolve().as_uri()
    source = str(db_path)
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30.0)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            db = SqliteDatabase(conn, source, 30_000)
            check_schema_version(db)
            return db
        except sqlite3.OperationalError:
            conn.close()
            wal = db_path.with_name(db_path.name + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise GalleryError(
                    f"{wal}: holds changes not yet written into {db_path.name}, and they cannot "
                    "be read from this read-only folder (SQLite needs to create "
                    f"{db_path.name}-shm); copy the whole gallery folder to a writable place "
                    "and run the command on the copy"
                ) from None
            conn = sqlite3.connect(f"{uri}?immutable=1", uri=True)
            db = SqliteDatabase(conn, source, 30_000)
            check_schema_version(db)
            return db
    except sqlite3.DatabaseError as exc:
        raise GalleryError(f"{db_path}: not a usable gallery database ({exc})") from exc
