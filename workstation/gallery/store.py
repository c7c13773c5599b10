"""The gallery folder: one SQLite database (the source of truth), stored image copies, and the
derived vector index. `Gallery` owns the schema: every read is a named method here, and every
write goes through one unit of work, `Gallery.change()` (workstation.gallery.change).

Layout of a gallery folder::

    gallery.sqlite        subjects, images, faces (with embeddings), cases, searches,
                          decisions, calibrations, audit
    images/ab/<sha256>.jpg  byte-exact copies of enrolled photos (for re-embedding and review)
    faces.vectors.f32     vector index (workstation.gallery.index), derived from gallery.sqlite:
    faces.ids.i64         caught up or rebuilt whenever it is behind, missing, stale or damaged
    faces.pq.faiss        (large galleries only)
    faces.faiss.json      its manifest: what it was built from, checksums, measured recall

The methods are the gallery's interface: the GUI, the command line, calibration, footage and
reports call them and never see a connection or SQL, so that another storage (issue 13: records
in PostgreSQL, vectors in Milvus) can implement the same methods. The SQL is kept to what SQLite
and PostgreSQL both understand where that costs nothing (quoted "user" columns, ON CONFLICT, no
SQLite-only functions); the SQLite-only statements (PRAGMAs, WAL, BEGIN IMMEDIATE) are in
`_open_sqlite` and `transaction` alone.

No sqlite-utils: it is good at dict rows in and out, creating tables from data and bulk
`insert_all`, but here the schema is fixed by numbered migrations (with CHECK constraints and
triggers it would not write), dict rows are one line of `sqlite3.Row`, and bulk inserts are
`executemany` (measured: sqlite-utils' `insert_all` was slower for 100,000 faces; numbers in
pyproject.toml). It cannot help the PostgreSQL gallery either, which needs its own SQL.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workstation.audit.actions import AuditAction
from workstation.audit.log import AuditEvent
from workstation.audit.roles import ALL_ROLES, Role, refusal
from workstation.audit.rows import (
    COVERED_LATER,
    COVERED_TABLES,
    RowEntry,
    row_sha256,
    row_word,
)
from workstation.audit.verify import ChainReport, check_rows, verify_events
from workstation.audit.witness import (
    GalleryHead,
    WitnessLine,
    append_entry,
    check_head,
    check_witnesses,
    read_witnesses,
    signed_entry,
)
from workstation.domain import Decision, DecisionRecord, ModelId
from workstation.errors import (
    GalleryBusyError,
    GalleryError,
    IdentityError,
    ModelMismatchError,
    NotPermittedError,
    WorkstationError,
)
from workstation.gallery import audit_store
from workstation.gallery.change import GalleryChange
from workstation.gallery.database import Database, SqliteDatabase, is_sqlite_busy
from workstation.gallery.examiners import (
    RegisteredExaminer,
    identity_refusal,
    key_entry,
    new_gallery_id,
    normalised_name,
)
from workstation.gallery.moving import moved_refusal, unfinished_copy_refusal
from workstation.gallery.photo_copies import (
    IMAGES_DIR,
    OrphanReport,
    check_needed,
    finish_check,
    fsync_folders,
    remove_orphans,
)
from workstation.gallery.photos import load_verified_photo
from workstation.gallery.records import SearchRecord, record_from_row
from workstation.gallery.schema import check_schema_version, migrate
from workstation.gallery.sheets import (
    ComparisonSheet,
    SheetsView,
    blind_view,
    withhold_decisions,
)
from workstation.identity import Examiner
from workstation.permissions import create_private_file, make_private_dir, restrict_process
from workstation.vision.images import LoadedImage

if TYPE_CHECKING:
    from workstation.gallery.index import VectorIndex
    from workstation.gallery.milvus import MilvusVectors

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
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubjectInfo:
    id: str
    name: str | None
    attributes: dict[str, Any]
    created_at: str
    face_count: int
    # The subject's lowest face id (its thumbnail); filled by `Gallery.subject_page` only.
    first_face_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject_id": self.id,
            "name": self.name,
            "attributes": self.attributes,
            "created_at": self.created_at,
            "faces": self.face_count,
        }


@dataclass(frozen=True)
class FaceRecord:
    id: int
    subject_id: str
    image_id: int
    box: list[float]
    landmarks: list[list[float]] | None
    source: str
    aligned: bool
    quality: dict[str, Any]
    model_id: str
    image_sha256: str
    original_path: str
    stored_path: str | None
    imported_at: str | None = None  # when and by whom its photo was enrolled
    imported_by: str | None = None


@dataclass(frozen=True)
class LabelledEmbeddings:
    """Every face's id, subject and embedding, row for row (ordered by face id)."""

    ids: np.ndarray  # int64, n
    subject_ids: list[str]  # n
    vectors: np.ndarray  # float32, n x dim

    def __len__(self) -> int:
        return len(self.ids)


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


def _open_sqlite(db_path: Path) -> SqliteDatabase:
    """Open (and migrate) the database: every SQLite-only setting of the gallery is here (and
    in `_connect_read_only` for read-only opening)."""
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


def _dict_rows(cursor: Any) -> list[dict[str, Any]]:
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def _existing_folder(folder: Path) -> None:
    """An agency witness folder must be there already (a mounted share): never made locally."""
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"{folder} is not reachable (not a folder)")


def _matrix(blobs: list[bytes], dim: int | None) -> np.ndarray:
    """Stored embeddings (float32 bytes) as one n x dim matrix."""
    matrix = np.frombuffer(b"".join(blobs), dtype=np.float32)
    return matrix.reshape(len(blobs), dim or (matrix.size // max(1, len(blobs))))


_DECISION_COLUMNS = (
    'id, search_id, subject_id, decision, note, "user", created_at, confirms, key_fingerprint'
)
_CALIBRATION_COLUMNS = (
    "id, sha256, created_at, created_by, model_id, sources, impostor_pairs, gallery_pairs, "
    "reference_pairs, generation, gallery_faces, gallery_subjects, histogram, details"
)


def _decision(row: tuple[Any, ...]) -> DecisionRecord:
    return DecisionRecord(
        id=int(row[0]),
        search_id=int(row[1]),
        subject_id=row[2],
        decision=Decision(row[3]),
        note=row[4],
        user=row[5],
        created_at=row[6],
        confirms=None if row[7] is None else int(row[7]),
        key_fingerprint=row[8],
    )


class Gallery:
    """An open gallery folder. One instance per thread (SQLite connections are per thread)."""

    def __init__(
        self,
        folder: Path | str,
        user: str | None = None,
        create: bool = True,
        read_only: bool = False,
        examiner: Examiner | None = None,
    ) -> None:
        """Open (or create) a gallery.

        Args:
            folder: the gallery folder.
            user: a test hook: the name to act under instead of the OS login. It must match
                the name registered for the profile's key (it never changes whose key signs).
            create: create the folder and database when there is none; False raises instead.
                Whoever creates a gallery is its first administrator (the genesis event).
            read_only: open the database without any write (no migration, no journal-mode
                change): for commands that only read, such as `audit verify`.
            examiner: who acts (name and profile with the signing key); default: the OS login
                and the profile in the config folder (`Examiner.current(user)`).
        """
        self.folder = Path(folder).expanduser()
        if examiner is not None and user is not None and user != examiner.name:
            raise ValueError("give the examiner or a user name, not both")
        self.examiner = examiner or Examiner.current(user)
        # The registered examiner acting, resolved (inside the write transaction) by each
        # change: the name it records is the one registered for the key that signs.
        self._acting: RegisteredExaminer | None = None
        self._change: GalleryChange | None = None
        self._gallery_id: str | None = None
        self._genesis_cache: AuditEvent | None = None
        # Heads that could not be written to a witness (the act itself was committed): the
        # command line and the app show them.
        self.witness_problems: list[str] = []
        db_path = self.folder / DB_NAME
        self._index: Any = None
        self._conn: Database
        self.read_only = read_only
        # An agency gallery's vectors (a Milvus collection); None: FAISS files in the folder.
        self.vectors: MilvusVectors | None = None
        self.kind = gallery_kind(self.folder) or EMBEDDED
        if self.kind == AGENCY:
            from workstation.gallery.agency import open_agency

            self._conn, self.vectors = open_agency(self.folder, read_only, self.examiner.name)
            self._refuse_unfinished_copy()
            if not read_only:
                restrict_process()
                self._start()
            return
        if read_only:
            if not db_path.is_file():
                raise GalleryError(no_gallery_message(self.folder))
            self._conn = _connect_read_only(db_path)
            self._refuse_unfinished_copy()
            return
        # Everything this process writes into the gallery from now on (photo copies, index
        # files, SQLite's -wal and -shm) is for the owner (and the examiners' group) only.
        restrict_process()
        if not db_path.exists():
            if not create:
                raise GalleryError(no_gallery_message(self.folder))
            try:
                make_private_dir(self.folder)
                # Made before SQLite opens it: SQLite gives -wal and -shm the database's mode.
                create_private_file(db_path)
            except OSError as exc:
                raise GalleryError(
                    f"{self.folder}: cannot create the gallery folder ({exc})"
                ) from exc
        try:
            conn = _open_sqlite(db_path)
        except sqlite3.OperationalError as exc:
            if is_sqlite_busy(exc):
                raise GalleryBusyError(busy_message(db_path)) from exc
            raise GalleryError(f"{db_path}: not a usable gallery database ({exc})") from exc
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{db_path}: not a usable gallery database ({exc})") from exc
        self._conn = conn
        self._refuse_unfinished_copy()
        self._start()

    def _refuse_unfinished_copy(self) -> None:
        """A copy interrupted before it was whole never opens as a gallery (gallery.moving)."""
        problem = unfinished_copy_refusal(self._conn, self.folder)
        if problem is not None:
            self._conn.close()
            raise GalleryError(problem)

    def _start(self) -> None:
        """What a write-enabled opening does once connected: the genesis event of a new
        gallery, the clean-up of photo copies a crash left."""
        if self.genesis_event() is None and audit_store.chain_head(self._conn)[0] == 0:
            # A new gallery (or one that never recorded anything): its creator is its first
            # administrator. An older gallery with unsigned events is adopted explicitly.
            self._genesis(adopting=False)
        else:
            self._cover_later_tables()
        # Photo copies a crash left without a row (see gallery.photo_copies), removed at open.
        self.orphans_removed = self._remove_orphan_photos()

    def _covered_tables(self) -> list[str]:
        """The tables whose rows the chain covers in this gallery: all, but those covered later
        (rows.COVERED_LATER) in a gallery upgraded since and not yet opened by an examiner,
        whose rows there no event has hashed yet. (The flag is a covered row itself: removed
        outside the program, `audit verify` names it.)"""
        pending = {
            table
            for key, tables in COVERED_LATER.items()
            if self.meta(key) is None
            for table in tables
        }
        return [table for table in COVERED_TABLES if table not in pending]

    def _roles_writing_meta(self) -> frozenset[Role]:
        """Who may write `meta` here: anyone on a PC; on an agency's database, the roles its
        grants let add rows to it."""
        if self.kind != AGENCY:
            return ALL_ROLES
        from workstation.gallery.agency_roles import roles_inserting

        return roles_inserting("meta")

    def _cover_later_tables(self) -> None:
        """An upgraded gallery's rows in the tables the chain came to cover later (watches and
        their hits) are hashed as found, once, by the first registered examiner to open it, in
        an act of their own (rows.COVERED_LATER): from then on `audit verify` holds them to
        those hashes, and the event says who vouched for them and when."""
        if all(self.meta(key) is not None for key in COVERED_LATER):
            return
        if self.genesis_event() is None:
            return  # an older gallery not yet adopted: its adoption hashes every row
        try:
            change = self.open_change(save_index=False)
        except (IdentityError, GalleryError) as exc:
            # Someone who may not act here (not registered, revoked; the gallery moved): the
            # gallery still opens for what they may do, and the next examiner does this.
            log.info("%s: rows to hash left for a registered examiner (%s)", self.folder, exc)
            return
        try:
            # Checked again under the write lock: another process may have done it meanwhile.
            missing = [key for key in COVERED_LATER if self.meta(key) is None]
            if not missing or not change.acting.roles & self._roles_writing_meta():
                change.rollback()
                return
            counts = change.cover_later_tables(missing)
            change.record(AuditAction.ROWS_ADOPTED, {"tables": counts, "covered": missing})
            change.commit()
        except BaseException:
            change.rollback()
            raise

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def db_path(self) -> Path:
        return self.folder / DB_NAME

    @property
    def conn(self) -> Database:
        """The database connection, for code not yet moved behind named methods (issue 14)."""
        return self._conn

    @property
    def database_source(self) -> str:
        """The database as messages name it: the SQLite file, or the agency's server and
        database (never a password)."""
        return self._conn.source

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    @property
    def user(self) -> str:
        """The examiner acting: the name registered for their key once a change has checked
        it, else the name they act under (the OS login)."""
        return self._acting.name if self._acting is not None else self.examiner.name

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """One atomic write: the act and its audit event (`audit()`) commit together or not at
        all. Prefer `change()`, whose methods also record which rows the act wrote."""
        with self.change() as _change:
            yield self._conn

    def open_change(self, save_index: bool = True) -> GalleryChange:
        """Start a unit of work that the caller commits or rolls back itself (enrolment's
        batches stay open across progress steps). See `GalleryChange`.

        The examiner is checked inside the transaction (registered, not revoked, acting under
        their registered name): IdentityError otherwise, and nothing is written.
        """
        if self._conn.in_transaction:
            raise RuntimeError("nested gallery transactions are not supported")
        if self.read_only:
            raise GalleryError(
                f"{self.folder}: the gallery was opened read-only; nothing is written"
            )
        # IMMEDIATE takes the write lock at once, so that two writers cannot both read the
        # same audit head.
        self._begin_write()
        try:
            acting = self._resolve_acting()
            # A gallery moved elsewhere records nothing more: its chain goes on there.
            moved = moved_refusal(self._conn, self.folder)
            if moved is not None:
                raise GalleryError(moved)
        except BaseException:
            self._conn.rollback()
            raise
        change = GalleryChange(self, self._conn, save_index=save_index, acting=acting)
        self._change = change
        return change

    def _resolve_acting(self) -> RegisteredExaminer:
        """The registered examiner whose key is in the acting profile (inside a transaction)."""
        if self.genesis_event() is None:
            raise IdentityError(
                f"{self.folder}: this gallery was made by an older version, before examiners "
                "were registered and events signed; an administrator adopts it once with "
                "`workstation examiners adopt` (they become its first administrator)"
            )
        key = self.examiner.key()
        registered = self.examiner_by_fingerprint(key.fingerprint)
        problem = identity_refusal(
            registered, self.examiner.name, key.fingerprint, str(self.folder)
        )
        if problem is not None:
            raise IdentityError(problem)
        assert registered is not None
        self._acting = registered
        return registered

    def acting_examiner(self) -> RegisteredExaminer:
        """The registered examiner acting now (IdentityError when they may not act here)."""
        with self.read_snapshot():
            return self._resolve_acting()

    def require(self, action: AuditAction, details: dict[str, Any] | None = None) -> None:
        """Refuse now (NotPermittedError, IdentityError) an act the examiner may not do, before
        long work starts; the act's own change checks again when it records."""
        acting = self.acting_examiner()
        problem = refusal(acting.name, acting.roles, action, details or {})
        if problem is not None:
            raise NotPermittedError(problem)

    def may(self, action: AuditAction, details: dict[str, Any] | None = None) -> bool:
        """Whether the acting examiner may do this act (for enabling buttons)."""
        try:
            self.require(action, details)
        except IdentityError:
            return False
        return True

    def _begin_write(self) -> None:
        """Take the write lock, or say in one line who holds it (GalleryBusyError)."""
        try:
            self._conn.begin_write()
        except self._conn.OperationalError as exc:
            if self._conn.is_busy(exc):
                raise GalleryBusyError(busy_message(self.db_path)) from exc
            raise

    def checkpoint_wal(self) -> bool:
        """Copy the WAL into the database and truncate it to zero bytes, so that pages of rows
        just deleted (older versions of them included) are not left in the -wal file. Waits
        at most a few seconds for other connections' reads; False when one kept it from
        completing (the next deletion or checkpoint finishes it).

        An agency gallery has no WAL file of its own: PostgreSQL reuses a deleted row's pages
        after (auto)vacuum and recycles its WAL segments itself (what an agency's DBA must
        bound: docs/DEPLOYMENT.md, "Deleted means deleted, on the servers")."""
        if self._conn.in_transaction:
            raise RuntimeError("checkpoint outside a transaction")
        if self.kind == AGENCY:
            return True
        self._conn.execute("PRAGMA busy_timeout = 5000")
        try:
            busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.OperationalError as exc:
            log.warning("%s: WAL checkpoint failed (%s)", self.db_path, exc)
            return False
        finally:
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        if busy:
            log.warning(
                "%s: another connection was reading: the WAL could not be truncated yet",
                self.db_path,
            )
        return not busy

    def drop_index_files(self) -> None:
        """Remove the vector index's files (derived, rebuilt from the database on next use):
        used when faces were removed while the saved index was not in step to remove them."""
        self._index = None
        for path in self.folder.glob(INDEX_FILES_GLOB):
            if path.is_file():
                path.unlink(missing_ok=True)
        fsync_folders([self.db_path])

    def _remove_orphan_photos(self) -> OrphanReport:
        """Remove photo copies and partial files no row names (left by a crash), holding the
        write lock without waiting for it: when another process writes, it is left for the
        next opening."""
        if not (self.folder / IMAGES_DIR).is_dir():
            return OrphanReport()
        markers = check_needed(self.folder)
        if not markers:
            return OrphanReport()
        conn = self._conn
        try:
            conn.begin_write(wait=False)
        except conn.OperationalError:
            return OrphanReport()
        try:
            stored = {
                str(row[0])
                for row in conn.execute(
                    "SELECT stored_path FROM images WHERE stored_path IS NOT NULL"
                )
            }
            report = remove_orphans(self.folder, stored)
            finish_check(self.folder, markers)
        finally:
            conn.commit()
        if report:
            log.warning("%s: %s", self.folder, report.summary())
        return report

    @contextmanager
    def change(
        self,
        action: AuditAction | None = None,
        details: dict[str, Any] | None = None,
        case_id: str | None = None,
        purpose: str | None = None,
        save_index: bool = True,
    ) -> Iterator[GalleryChange]:
        """One unit of work: an act, its audit event and the vector index kept in step.

        Opens the transaction; the caller writes through the `GalleryChange` it yields (and may
        add to `change.details`). On leaving the block without an error the audit event
        (`action`, `change.details`) is appended, the faces generation is bumped once if any
        face changed, the transaction commits, and only then are the added and removed faces
        applied to the vector index and the photos no face uses any more deleted. On an error
        everything rolls back and the index and files are untouched.
        """
        unit = self.open_change(save_index=save_index)
        if details is not None:
            unit.details.update(details)
        try:
            yield unit
            if action is not None:
                unit.record(action, unit.details, case_id=case_id, purpose=purpose)
            unit.commit()
        except BaseException:
            unit.rollback()  # nothing to undo when the commit went through
            raise

    def _genesis(self, adopting: bool) -> AuditEvent:
        """Write the genesis event: the gallery's new random id and its first administrator
        (the examiner opening it, with every role), signed by their key."""
        key = self.examiner.key()
        name = normalised_name(self.examiner.name)
        self._conn.begin_write()
        try:
            if self.genesis_event() is not None:  # another process was first
                self._conn.rollback()
                genesis = self.genesis_event()
                assert genesis is not None
                return genesis
            earlier = audit_store.chain_head(self._conn)[0]
            if earlier and not adopting:
                raise IdentityError(f"{self.folder}: an older gallery is adopted explicitly")
            entry = key_entry(name, key.public_text, ALL_ROLES)
            acting = RegisteredExaminer(
                entry["fingerprint"], name, key.public_text, ALL_ROLES, "", name
            )
            change = GalleryChange(self, self._conn, save_index=False, acting=acting)
            self._change = change
            change.add_examiner(entry["fingerprint"], name, key.public_text, ALL_ROLES)
            baseline = change.touch_every_row() if adopting else 0
            # Its rows are covered from the start (an adopted gallery's by the baseline above).
            change.cover_later_tables(COVERED_LATER)
            event = change.record(
                AuditAction.GENESIS,
                {
                    "gallery_id": new_gallery_id(),
                    "folder": str(self.folder.resolve()),
                    "administrator": entry,
                    "earlier_events": earlier,
                    "adopted": adopting,
                    # An adopted gallery's rows as they were found: the chain vouches for them
                    # from here on, not for how they came to be.
                    "baseline_rows": baseline,
                },
            )
        except BaseException:
            self._conn.rollback()
            self._change = None
            raise
        change.commit()
        self._acting = None
        return event

    def adopt(self) -> AuditEvent:
        """Adopt a gallery made before examiners were registered: the examiner becomes its
        first administrator; its older events stay unsigned (verified as such)."""
        if self.genesis_event() is not None:
            raise GalleryError(f"{self.folder}: this gallery already has its administrator")
        return self._genesis(adopting=True)

    @contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Read several things as one consistent state of the gallery (a read transaction).

        Another connection writing meanwhile (an examiner enrolling) changes nothing seen
        inside; inside an open write transaction this is that transaction.
        """
        if self._conn.in_transaction:
            yield
            return
        self._conn.begin_read()
        try:
            yield
        finally:
            if self._conn.in_transaction:
                self._conn.commit()

    def audit(
        self,
        action: AuditAction | str,
        details: dict[str, Any],
        case_id: str | None = None,
        purpose: str | None = None,
    ) -> AuditEvent:
        """Append an audit event to the change (or `transaction()`) open now."""
        if self._change is None or not self._change.open:
            raise RuntimeError("audit events must be written inside the transaction of their act")
        return self._change.record(AuditAction(action), details, case_id=case_id, purpose=purpose)

    # ------------------------------------------------------------------ meta and model
    def meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def generation(self) -> int:
        """Bumped (once) by every unit of work that changes a face, in its transaction."""
        return int(self.meta("faces_generation") or 0)

    def _bump_generation(self) -> int:
        new = self.generation + 1
        self._set_meta("faces_generation", str(new))
        return new

    @property
    def model_id(self) -> str | None:
        return self.meta("model_id")

    @staticmethod
    def bound_model_of(folder: Path | str) -> str | None:
        """The model id a gallery folder's faces were embedded with (None: no gallery there yet,
        one being created right now, or no face enrolled), read without writing anything.

        A gallery that cannot be read here gives None too: opening it for the act itself names
        the problem, in one place.
        """
        if gallery_kind(folder) is None:
            return None
        try:
            with Gallery(folder, user="-", read_only=True) as gallery:
                return gallery.model_id
        except (GalleryError, sqlite3.Error, OSError):
            return None

    @property
    def model_dim(self) -> int | None:
        value = self.meta("model_dim")
        return int(value) if value else None

    def check_model(self, model: ModelId | str) -> None:
        """Refuse to mix embeddings of different models in one gallery."""
        bound = self.model_id
        if bound is not None and bound != str(model):
            short = model.short if isinstance(model, ModelId) else _short(model)
            raise ModelMismatchError(
                f"{self.folder}: this gallery was built with model {_short(bound)}, but the "
                f"current model is {short}; scores from different models cannot be "
                "compared. Use the gallery's model, or run `workstation reembed` to re-compute "
                "the gallery with the new one"
            )

    # ------------------------------------------------------------------ counts
    def face_count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0])

    def subject_count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM subjects").fetchone()[0])

    def counts(self) -> dict[str, int]:
        """Rows of each kind: subjects, images, faces, cases, searches, decisions,
        calibrations and audit events (one snapshot)."""
        tables = {
            "subjects": "subjects",
            "images": "images",
            "faces": "faces",
            "cases": "cases",
            "searches": "searches",
            "decisions": "decisions",
            "calibrations": "calibrations",
            "audit_events": "audit",
        }
        with self.read_snapshot():
            return {
                name: int(self._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
                for name, table in tables.items()
            }

    # ------------------------------------------------------------------ subjects
    def subjects(self, query: str | None = None) -> list[SubjectInfo]:
        sql = (
            "SELECT s.id, s.name, s.attributes, s.created_at, COUNT(f.id) FROM subjects s "
            "LEFT JOIN faces f ON f.subject_id = s.id"
        )
        params: list[Any] = []
        if query:
            sql += f" WHERE s.id {self._conn.like} ? OR s.name {self._conn.like} ?"
            params = [f"%{query}%", f"%{query}%"]
        sql += " GROUP BY s.id ORDER BY s.id"
        return [
            SubjectInfo(row[0], row[1], json.loads(row[2]), row[3], int(row[4]))
            for row in self._conn.execute(sql, params)
        ]

    def subject_attributes(self, subject_ids: Iterable[str] | None = None) -> dict[str, dict]:
        """Attributes by subject id (manifest columns such as sex and race): of these subjects,
        or of every subject when `subject_ids` is None. Subjects that do not exist are left out."""
        if subject_ids is None:
            rows = self._conn.execute("SELECT id, attributes FROM subjects")
            return {row[0]: json.loads(row[1]) for row in rows}
        found: dict[str, dict] = {}
        wanted = list(dict.fromkeys(subject_ids))
        for start in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT id, attributes FROM subjects WHERE id IN ({marks})", chunk
            )
            found.update((row[0], json.loads(row[1])) for row in rows)
        return found

    def subjects_created_before(self, cutoff: str) -> list[SubjectInfo]:
        """Subjects whose row was created before `cutoff` (ISO 8601 UTC), oldest first."""
        sql = (
            "SELECT s.id, s.name, s.attributes, s.created_at, COUNT(f.id) FROM subjects s "
            "LEFT JOIN faces f ON f.subject_id = s.id WHERE s.created_at < ? "
            "GROUP BY s.id ORDER BY s.created_at, s.id"
        )
        return [
            SubjectInfo(row[0], row[1], json.loads(row[2]), row[3], int(row[4]))
            for row in self._conn.execute(sql, (cutoff,))
        ]

    def _subject_filter(self, query: str | None) -> tuple[str, list[Any]]:
        if not query:
            return "", []
        # Typed text is matched literally: "_" and "%" in a subject id are not wildcards.
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        like = self._conn.like
        return f" WHERE id {like} ? ESCAPE '\\' OR name {like} ? ESCAPE '\\'", [pattern, pattern]

    def subject_page(self, query: str | None, offset: int, limit: int) -> list[SubjectInfo]:
        """One page of the subjects matching `query` (in id or name), ordered by id.

        Each subject comes with its face count and `first_face_id`, from one query that pages
        the subjects first and only then looks up the faces of that page (through the
        faces_subject index), so a page costs the same on a large gallery as on a small one.

        Args:
            query: text the subject id or name must contain; None or "" for all subjects.
            offset: how many matching subjects to skip.
            limit: the most subjects to return.
        """
        where, params = self._subject_filter(query)
        sql = (
            "SELECT p.id, p.name, p.attributes, p.created_at, COUNT(f.id), MIN(f.id) FROM ("
            "SELECT id, name, attributes, created_at FROM subjects"
            f"{where} ORDER BY id LIMIT ? OFFSET ?"
            ") p LEFT JOIN faces f ON f.subject_id = p.id "
            "GROUP BY p.id, p.name, p.attributes, p.created_at ORDER BY p.id"
        )
        rows = self._conn.execute(sql, [*params, max(0, limit), max(0, offset)])
        return [
            SubjectInfo(
                row[0],
                row[1],
                json.loads(row[2]),
                row[3],
                int(row[4]),
                None if row[5] is None else int(row[5]),
            )
            for row in rows
        ]

    def subject_total(self, query: str | None = None) -> int:
        """How many subjects match `query` (in id or name); all subjects for None or ""."""
        where, params = self._subject_filter(query)
        sql = f"SELECT COUNT(*) FROM subjects{where}"
        return int(self._conn.execute(sql, params).fetchone()[0])

    def subject(self, subject_id: str) -> SubjectInfo | None:
        row = self._conn.execute(
            "SELECT s.id, s.name, s.attributes, s.created_at, COUNT(f.id) FROM subjects s "
            "LEFT JOIN faces f ON f.subject_id = s.id WHERE s.id = ? GROUP BY s.id",
            (subject_id,),
        ).fetchone()
        return (
            None
            if row is None
            else SubjectInfo(row[0], row[1], json.loads(row[2]), row[3], int(row[4]))
        )

    # ------------------------------------------------------------------ faces and photos
    _FACE_SQL = (
        "SELECT f.id, f.subject_id, f.image_id, f.box, f.landmarks, f.source, f.aligned, "
        "f.quality, f.model_id, i.sha256, i.original_path, i.stored_path, i.imported_at, "
        "i.imported_by FROM faces f JOIN images i ON i.id = f.image_id"
    )

    @staticmethod
    def _face_from_row(row: tuple[Any, ...]) -> FaceRecord:
        return FaceRecord(
            id=int(row[0]),
            subject_id=row[1],
            image_id=int(row[2]),
            box=json.loads(row[3]),
            landmarks=json.loads(row[4]) if row[4] else None,
            source=row[5],
            aligned=bool(row[6]),
            quality=json.loads(row[7]),
            model_id=row[8],
            image_sha256=row[9],
            original_path=row[10],
            stored_path=row[11],
            imported_at=row[12],
            imported_by=row[13],
        )

    def faces_of(self, subject_id: str) -> list[FaceRecord]:
        rows = self._conn.execute(
            self._FACE_SQL + " WHERE f.subject_id = ? ORDER BY f.id", (subject_id,)
        )
        return [self._face_from_row(row) for row in rows]

    def face(self, face_id: int) -> FaceRecord | None:
        row = self._conn.execute(self._FACE_SQL + " WHERE f.id = ?", (face_id,)).fetchone()
        return None if row is None else self._face_from_row(row)

    def all_faces(self) -> Iterator[FaceRecord]:
        for row in self._conn.execute(self._FACE_SQL + " ORDER BY f.id"):
            yield self._face_from_row(row)

    def image_file(self, record: FaceRecord) -> Path:
        """The stored copy of a face's photo (falls back to the original path)."""
        if record.stored_path:
            stored = self.folder / record.stored_path
            if stored.exists():
                return stored
        return Path(record.original_path)

    def load_photo(self, record: FaceRecord) -> LoadedImage:
        """A face's photo, decoded, once its bytes are checked against the recorded SHA-256.

        Every surface that shows or exports a gallery photo (thumbnails, Compare, the gallery
        manager, reports, re-embedding) loads it here.

        Raises:
            StoredPhotoError: naming the face: missing, unreadable, or "does not match its
                recorded SHA-256: altered or replaced".
        """
        return load_verified_photo(self.image_file(record), record.image_sha256, record.id)

    def image_id_for_sha256(self, sha256: str) -> int | None:
        row = self._conn.execute("SELECT id FROM images WHERE sha256 = ?", (sha256,)).fetchone()
        return None if row is None else int(row[0])

    def enrolled_sha256s(self) -> frozenset[str]:
        """The SHA-256 of every enrolled photo (a photo is never enrolled twice)."""
        return frozenset(row[0] for row in self._conn.execute("SELECT sha256 FROM images"))

    def subject_of_image(self, image_id: int) -> str | None:
        """The subject a stored photo's face was enrolled for (None when it has no face)."""
        row = self._conn.execute(
            "SELECT subject_id FROM faces WHERE image_id = ? ORDER BY id LIMIT 1", (image_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def face_subjects(self, face_ids: Iterable[int]) -> dict[int, str]:
        """{face id: subject id} for the faces that exist."""
        ids = [int(i) for i in face_ids]
        found: dict[int, str] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, subject_id FROM faces WHERE id IN ({marks})"
            found.update({int(r[0]): r[1] for r in self._conn.execute(sql, chunk)})
        return found

    def face_vectors(self, face_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """{face id: stored embedding} for the faces that exist."""
        ids = [int(i) for i in face_ids]
        found: dict[int, np.ndarray] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, embedding FROM faces WHERE id IN ({marks})"
            for face_id, blob in self._conn.execute(sql, chunk):
                found[int(face_id)] = np.frombuffer(blob, dtype=np.float32)
        return found

    def highest_face_id(self) -> int:
        """The highest face id given so far (ids are never reused), 0 for none."""
        return int(self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM faces").fetchone()[0])

    def faces_after(self, face_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, embeddings) of the faces with an id above `face_id`, in id order."""
        rows = self._conn.execute(
            "SELECT id, embedding FROM faces WHERE id > ? ORDER BY id", (int(face_id),)
        ).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return ids, _matrix([r[1] for r in rows], self.model_dim)

    def subject_embeddings(self, subject_id: str) -> np.ndarray:
        """Every enrolled embedding of one subject (n x dim, in face id order; n may be 0)."""
        rows = self._conn.execute(
            "SELECT embedding FROM faces WHERE subject_id = ? ORDER BY id", (subject_id,)
        ).fetchall()
        if not rows:
            return np.zeros((0, self.model_dim or 0), dtype=np.float32)
        return _matrix([r[0] for r in rows], self.model_dim)

    def embeddings(self, batch: int = 50_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All (face ids, embeddings) in batches, from SQLite (the source of truth)."""
        dim = self.model_dim
        cursor = self._conn.execute("SELECT id, embedding FROM faces ORDER BY id")
        while rows := cursor.fetchmany(batch):
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            yield ids, _matrix([r[1] for r in rows], dim)

    def labelled_embeddings(self, batch: int = 50_000) -> LabelledEmbeddings:
        """Every face's id, subject id and embedding, read in one query (one consistent set:
        calibration and the duplicate scan compare faces of different subjects)."""
        dim = self.model_dim
        cursor = self._conn.execute("SELECT id, subject_id, embedding FROM faces ORDER BY id")
        id_parts: list[np.ndarray] = []
        subjects: list[str] = []
        matrices: list[np.ndarray] = []
        while rows := cursor.fetchmany(batch):
            id_parts.append(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
            subjects.extend(r[1] for r in rows)
            matrices.append(_matrix([r[2] for r in rows], dim))
        if not id_parts:
            return LabelledEmbeddings(
                np.zeros(0, dtype=np.int64), [], np.zeros((0, dim or 0), dtype=np.float32)
            )
        vectors = np.ascontiguousarray(np.concatenate(matrices), dtype=np.float32)
        return LabelledEmbeddings(np.concatenate(id_parts), subjects, vectors)

    def store_image_copy(self, source: Path, sha256: str) -> str:
        """Copy an enrolled photo into the gallery by content hash; returns the relative path."""
        suffix = source.suffix.lower() or ".img"
        relative = Path(IMAGES_DIR) / sha256[:2] / f"{sha256}{suffix}"
        target = self.folder / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(target.suffix + ".part")
            shutil.copyfile(source, partial)
            partial.replace(target)
        return relative.as_posix()

    # ------------------------------------------------------------------ cases and searches
    def ensure_case(self, case_id: str, purpose: str) -> bool:
        """Create the case if new (inside a transaction); True when it was created.

        Inside `change()`, use `GalleryChange.ensure_case`.
        """
        return self._open_change().ensure_case(case_id, purpose)

    def add_calibration(self, row: dict[str, Any]) -> int:
        """Store a calibration row inside `transaction()` (see GalleryChange.add_calibration)."""
        return self._open_change().add_calibration(row)

    def _open_change(self) -> GalleryChange:
        if self._change is None or not self._change.open:
            raise RuntimeError("gallery writes must be made inside a transaction")
        return self._change

    def case(self, case_id: str) -> dict[str, Any] | None:
        rows = _dict_rows(self._conn.execute("SELECT * FROM cases WHERE id = ?", (case_id,)))
        return rows[0] if rows else None

    def cases(self) -> list[dict[str, Any]]:
        return _dict_rows(self._conn.execute("SELECT * FROM cases ORDER BY created_at DESC"))

    def case_activity(self) -> list[dict[str, Any]]:
        """Every case row with what was done in it: `searches`, `leads` (candidates whose
        standing decision is a possible lead), `confirmations`, `examiners` (who acted on it,
        in the order they first did) and `last_activity` (its latest audited act's time).

        Call inside `read_snapshot()` so the counts agree with each other.
        """
        cases = {str(row["id"]): row for row in self.cases()}
        for row in cases.values():
            row.update(searches=0, leads=0, confirmations=0, examiners=[], last_activity=None)
        for case_id, count in self._conn.execute(
            "SELECT case_id, COUNT(*) FROM searches GROUP BY case_id"
        ):
            if case_id in cases:
                cases[case_id]["searches"] = int(count)
        # The standing decision on each candidate is the latest one that is not a confirmation;
        # a confirmation counts while the lead it confirms still stands.
        standing: dict[tuple[str, int, str], tuple[int, str]] = {}
        confirmed: list[tuple[str, int, str, int]] = []
        for case_id, search_id, subject_id, decision, decision_id, confirms in self._conn.execute(
            "SELECT s.case_id, d.search_id, d.subject_id, d.decision, d.id, d.confirms "
            "FROM decisions d JOIN searches s ON s.id = d.search_id ORDER BY d.id"
        ):
            key = (str(case_id), int(search_id), str(subject_id))
            if decision == Decision.CONFIRMED.value:
                confirmed.append((*key, int(confirms or 0)))
            else:
                standing[key] = (int(decision_id), str(decision))
        for (case_id, _search, _subject), (_id, decision) in standing.items():
            if case_id in cases and decision == Decision.POSSIBLE_LEAD.value:
                cases[case_id]["leads"] += 1
        for case_id, search_id, subject_id, lead_id in confirmed:
            lead = standing.get((case_id, search_id, subject_id))
            if case_id in cases and lead is not None and lead[0] == lead_id:
                cases[case_id]["confirmations"] += 1
        # Whoever enrolled a face a watch then searched did not act on the case: their
        # watch_search events count as activity, not as an examiner of the case. A read
        # (`view`: listing the cases, opening one) is not an act on it either: a supervisor
        # reading a case neither joins its examiners nor moves its last activity.
        for case_id, user, _first, last, only_watch in self._conn.execute(
            'SELECT case_id, "user", MIN(seq), MAX(time), '
            "MIN(CASE WHEN action = 'watch_search' THEN 1 ELSE 0 END) FROM audit "
            "WHERE case_id IS NOT NULL AND action <> 'view' "
            'GROUP BY case_id, "user" ORDER BY MIN(seq)'
        ):
            acted = cases.get(str(case_id))
            if acted is None:
                continue
            if not only_watch:
                acted["examiners"].append(str(user))
            if acted["last_activity"] is None or str(last) > acted["last_activity"]:
                acted["last_activity"] = str(last)
        return list(cases.values())

    def watch_rows(
        self, watch_id: int | None = None, active_only: bool = False
    ) -> list[dict[str, Any]]:
        """Watches as rows, oldest first (the embedding as bytes, None once ended); one watch
        with `watch_id`, only those not ended with `active_only`."""
        sql, params = "SELECT * FROM watches", []
        where = []
        if watch_id is not None:
            where.append("id = ?")
            params.append(int(watch_id))
        if active_only:
            where.append("ended_at IS NULL")
        if where:
            sql += " WHERE " + " AND ".join(where)
        return _dict_rows(self._conn.execute(sql + " ORDER BY id", params))

    def watch_hit_rows(self, watch_ids: Iterable[int]) -> list[dict[str, Any]]:
        """The hits of these watches, oldest first."""
        found: list[dict[str, Any]] = []
        for chunk in _chunks([int(i) for i in watch_ids]):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT * FROM watch_hits WHERE watch_id IN ({marks}) ORDER BY id"
            found += _dict_rows(self._conn.execute(sql, chunk))
        return sorted(found, key=lambda r: int(r["id"]))

    def search_row(self, search_id: int) -> dict[str, Any] | None:
        """A stored search as its row (JSON columns still as text), or None."""
        rows = _dict_rows(self._conn.execute("SELECT * FROM searches WHERE id = ?", (search_id,)))
        return rows[0] if rows else None

    def searches_of_case(self, case_id: str) -> list[dict[str, Any]]:
        """The stored searches of a case as rows, oldest first."""
        sql = "SELECT * FROM searches WHERE case_id = ? ORDER BY id"
        return _dict_rows(self._conn.execute(sql, (case_id,)))

    # ------------------------------------------------------------------ decisions
    def decision(self, decision_id: int) -> DecisionRecord | None:
        row = self._conn.execute(
            f"SELECT {_DECISION_COLUMNS} FROM decisions WHERE id = ?", (decision_id,)
        ).fetchone()
        return None if row is None else _decision(row)

    def decisions_for(self, search_id: int, subject_id: str | None = None) -> list[DecisionRecord]:
        """The decisions on a search's candidates (or on one subject of it), oldest first."""
        sql = f"SELECT {_DECISION_COLUMNS} FROM decisions WHERE search_id = ?"
        params: list[Any] = [search_id]
        if subject_id is not None:
            sql += " AND subject_id = ?"
            params.append(subject_id)
        return [_decision(row) for row in self._conn.execute(sql + " ORDER BY id", params)]

    def visible_decisions(self, search_id: int) -> tuple[list[DecisionRecord], dict[str, int]]:
        """The decisions on a search's candidates that this gallery's examiner may see now, and
        per subject how many blind verification withholds (`sheets.withhold_decisions`): the
        read for display; `decisions_for` is the acts' own read."""
        with self.read_snapshot():
            decisions = self.decisions_for(search_id)
            versions: dict[str, list[ComparisonSheet]] = {}
            for sheet in self._comparison_sheet_rows([search_id]):
                versions.setdefault(sheet.subject_id, []).append(sheet)
        blind = [s for s, found in versions.items() if blind_view(found, self.user, s).blind]
        return withhold_decisions(decisions, blind, self.user)

    def comparison_sheets(self, search_id: int, subject_id: str) -> SheetsView:
        """The ACE-V sheets on one candidate that this gallery's examiner may see now: blind
        verification (`sheets.blind_view`) withholds other examiners' sheets until they have
        recorded their own. The only public read of sheets, with the records' (below)."""
        return blind_view(
            self.comparison_sheet_versions(search_id, subject_id), self.user, subject_id
        )

    def redaction_mark_rows(self, search_ids: Iterable[int]) -> list[dict[str, Any]]:
        """The redaction marks (gallery/redactions.py) on these searches' probes, oldest first."""
        if not self._conn.table_exists("redaction_marks"):
            return []  # a gallery read at an older schema (opened read-only) has none
        rows: list[dict[str, Any]] = []
        for chunk in _chunks(list(search_ids)):
            marks = ",".join("?" * len(chunk))
            rows += _dict_rows(
                self._conn.execute(
                    f"SELECT * FROM redaction_marks WHERE search_id IN ({marks}) ORDER BY id",
                    list(chunk),
                )
            )
        return sorted(rows, key=lambda row: int(row["id"]))

    def comparison_sheet_versions(
        self, search_id: int, subject_id: str | None = None
    ) -> list[ComparisonSheet]:
        """Every version of every sheet on a search's candidates (or one subject's), oldest
        first, unfiltered: for the act that records a sheet (which role it takes) and for the
        reads above, which apply the blind rule; never shown as they are."""
        return self._comparison_sheet_rows([search_id], subject_id)

    def _comparison_sheet_rows(
        self, search_ids: list[int], subject_id: str | None = None
    ) -> list[ComparisonSheet]:
        if not self._conn.table_exists("comparison_sheets"):
            return []  # a gallery read at an older schema (opened read-only) has none
        found: list[ComparisonSheet] = []
        for chunk in _chunks(search_ids):
            marks = ",".join("?" * len(chunk))
            sql = (
                'SELECT id, search_id, subject_id, role, verifies, "user", key_fingerprint, '
                f"created_at, sheet FROM comparison_sheets WHERE search_id IN ({marks})"
            )
            params: list[Any] = list(chunk)
            if subject_id is not None:
                sql += " AND subject_id = ?"
                params.append(subject_id)
            rows = self._conn.execute(sql, params).fetchall()
            found += [
                ComparisonSheet(
                    id=int(row[0]),
                    search_id=int(row[1]),
                    subject_id=row[2],
                    role=row[3],
                    verifies=None if row[4] is None else int(row[4]),
                    examiner=row[5],
                    key_fingerprint=row[6],
                    created_at=row[7],
                    body=json.loads(row[8]),
                )
                for row in rows
            ]
        return sorted(found, key=lambda sheet: sheet.id)

    def decision_count_for_subject(self, subject_id: str) -> int:
        sql = "SELECT COUNT(*) FROM decisions WHERE subject_id = ?"
        return int(self._conn.execute(sql, (subject_id,)).fetchone()[0])

    # ------------------------------------------------------------------ calibrations
    def latest_calibration_row(self, model_id: str) -> dict[str, Any] | None:
        """The most recent stored calibration of a model as its row (JSON still as text)."""
        sql = (
            f"SELECT {_CALIBRATION_COLUMNS} FROM calibrations WHERE model_id = ? "
            "ORDER BY id DESC LIMIT 1"
        )
        rows = _dict_rows(self._conn.execute(sql, (model_id,)))
        return rows[0] if rows else None

    def calibration_row(self, calibration_id: int) -> dict[str, Any] | None:
        sql = f"SELECT {_CALIBRATION_COLUMNS} FROM calibrations WHERE id = ?"
        rows = _dict_rows(self._conn.execute(sql, (calibration_id,)))
        return rows[0] if rows else None

    # ------------------------------------------------------------------ audit log
    def audit_events(
        self, case_id: str | None = None, limit: int | None = None
    ) -> list[AuditEvent]:
        """The audit events (of one case, or all), oldest first."""
        return audit_store.list_events(self._conn, case_id=case_id, limit=limit)

    def audit_event(self, seq: int) -> AuditEvent | None:
        return audit_store.event_at(self._conn, seq)

    def audit_head(self) -> tuple[int, str]:
        """(seq, hash) of the last event (0 and 64 zeros for an empty log)."""
        return audit_store.chain_head(self._conn)

    def event_rows(self, seq: int) -> list[RowEntry]:
        """The row hashes an event carries: (table, row id, SHA-256 or None for removed)."""
        return audit_store.event_row_entries(self._conn, seq)

    def verify_audit(
        self, rows: bool = True, witnesses: bool = True, head: tuple[int, str] | None = None
    ) -> ChainReport:
        """Walk the whole chain (links, hashes, signatures against the keys the chain
        registers, roles, row digests); then, when `rows`, re-hash every current row against
        the last event that wrote it; when `witnesses`, hold the chain to every witness of its
        head it can read (workstation.audit.witness); and to `head` (SEQ, HASH) when given (a
        head printed in a report). See workstation.audit.verify."""
        # Witnesses are read before the chain: a head is witnessed only after its act commits,
        # so every head read here is in the chain read next. Read after the chain, an act
        # committing in between would look like a rollback (seen with reads recorded by the app
        # while a verify ran).
        witness_lines: tuple[list[WitnessLine], list[str]] = (
            read_witnesses(self.witness_folders()) if witnesses else ([], [])
        )
        with self.read_snapshot():
            report = verify_events(
                audit_store.iter_events(self._conn), audit_store.iter_row_entries(self._conn)
            )
            if report.intact and rows and report.genesis_seq is not None:
                checked, problem = check_rows(
                    audit_store.DatabaseRowSource(self._conn),
                    tables=self._covered_tables(),
                    skip=audit_store.uncovered,
                )
                report.rows_checked = checked
                if problem is not None:
                    report.intact = False
                    report.problem = problem
            if report.intact and head is not None:
                problem = check_head(head[0], head[1], report.head_seq, self._hash_at)
                if problem is not None:
                    report.intact = False
                    report.problem = problem
            if report.intact and witnesses and report.genesis_seq is not None:
                self._check_witnesses(report, *witness_lines)
            if report.intact and witnesses and self.kind == AGENCY:
                # The agency database's own witness of every event (gallery.agency_roles): read
                # in the same snapshot, as it is written in the same transaction as its event.
                from workstation.gallery.agency_roles import witness_problem

                found = witness_problem(self._conn, report.head_seq)
                if found is not None:
                    report.intact = False
                    report.first_bad_seq, report.problem = found
        return report

    def row_problems(self, table: str, row_ids: Iterable[Any]) -> dict[str, str]:
        """{row id: what is wrong, in words} for those of these rows that do not match the hash
        the last event writing them recorded (reports and bundles leave such rows out)."""
        ids = [str(row_id) for row_id in row_ids]
        latest = audit_store.DatabaseRowSource(self._conn).latest_row_entries(table, ids)
        rows = audit_store.rows_by_id(self._conn, table, ids)
        problems: dict[str, str] = {}
        for row_id in ids:
            word, recorded, row = row_word(table, row_id), latest.get(row_id), rows.get(row_id)
            if recorded is None:
                problems[row_id] = f"{word} was not written by any audited act"
            elif row is None:
                problems[row_id] = f"{word} is missing (event {recorded[0]} wrote it)"
            elif recorded[1] is None:
                problems[row_id] = f"{word} is present, but event {recorded[0]} removed it"
            elif row_sha256(table, row) != recorded[1]:
                problems[row_id] = (
                    f"{word} differs from what event {recorded[0]} recorded: the row was edited "
                    "outside the program"
                )
        return problems

    def _hash_at(self, seq: int) -> str | None:
        row = self._conn.execute("SELECT hash FROM audit WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else str(row[0])

    def _check_witnesses(
        self, report: ChainReport, lines: list[WitnessLine], unreadable: list[str]
    ) -> None:
        assert report.genesis_hash is not None and report.first_administrator_key is not None
        head = GalleryHead(
            gallery_id=str(report.gallery_id),
            folder=str(self.folder.resolve()),
            seq=report.head_seq,
            hash=report.head_hash,
            genesis_hash=report.genesis_hash,
            first_administrator_key=report.first_administrator_key,
        )
        check = check_witnesses(head, self._hash_at, lines)
        report.witness_entries, report.witness_files = check.entries, check.files
        report.witnessed_elsewhere = check.later_elsewhere
        report.witness_unreadable = unreadable
        if check.problem is not None:
            report.intact = False
            report.problem = check.problem

    # ------------------------------------------------------------------ witnesses
    def witness_folders(self) -> list[Path]:
        """Where the head is witnessed: the examiner's profile and, when the gallery has one,
        the agency witness folder."""
        folders = [self.examiner.witness_dir]
        agency = self.gallery_setting(WITNESS_FOLDER_SETTING)
        if agency:
            folders.append(Path(agency))
        return folders

    def witnessed_head(self) -> GalleryHead | None:
        """The gallery's id, folder and head as a witness records them (None before genesis)."""
        genesis = self._genesis_cache or self.genesis_event()
        if genesis is None or genesis.key is None:
            return None
        self._genesis_cache = genesis
        seq, digest = self.audit_head()
        return GalleryHead(
            gallery_id=str(genesis.details.get("gallery_id")),
            folder=str(self.folder.resolve()),
            seq=seq,
            hash=digest,
            genesis_hash=genesis.hash,
            first_administrator_key=genesis.key,
        )

    def witness_head(self) -> None:
        """Append the head, signed, to every witness (after each committed act). A witness
        that cannot be written is noted in `witness_problems`; the act stays committed."""
        head = self.witnessed_head()
        if head is None:
            return
        try:
            entry = signed_entry(head, self.user, self.examiner.key())
        except WorkstationError as exc:
            self.witness_problems.append(f"the head was not witnessed: {exc}")
            return
        profile = self.examiner.witness_dir
        for folder in self.witness_folders():
            make_dir = make_private_dir if folder == profile else _existing_folder
            try:
                append_entry(folder, entry, make_dir)
            except OSError as exc:
                self.witness_problems.append(
                    f"the gallery's head (event {head.seq}) was not written to the witness "
                    f"folder {folder} ({exc}); `audit verify` cannot hold the chain to it there"
                )

    # ------------------------------------------------------------------ examiners
    def genesis_event(self) -> AuditEvent | None:
        """The chain's genesis event (the gallery's id and first administrator), if any."""
        events = audit_store.list_events(self._conn, actions=[AuditAction.GENESIS.value], limit=1)
        return events[0] if events else None

    @property
    def gallery_id(self) -> str | None:
        """The gallery's random id, from its genesis event (None before it has one)."""
        if self._gallery_id is None:
            genesis = self.genesis_event()
            if genesis is not None:
                self._gallery_id = str(genesis.details.get("gallery_id"))
        return self._gallery_id

    def examiners(self) -> list[RegisteredExaminer]:
        """Every registered examiner (revoked ones too), in order of registration."""
        if not audit_store.has_accountability(self._conn):
            return []
        rows = _dict_rows(self._conn.execute("SELECT * FROM examiners ORDER BY registered_at"))
        return [RegisteredExaminer.from_row(row) for row in rows]

    def examiner_by_fingerprint(self, fingerprint: str) -> RegisteredExaminer | None:
        if not audit_store.has_accountability(self._conn):
            return None
        sql = "SELECT * FROM examiners WHERE fingerprint = ?"
        rows = _dict_rows(self._conn.execute(sql, (fingerprint,)))
        return RegisteredExaminer.from_row(rows[0]) if rows else None

    def gallery_setting(self, key: str) -> str | None:
        """A setting of the gallery itself (e.g. the agency witness folder), or None."""
        if not audit_store.has_accountability(self._conn):
            return None
        row = self._conn.execute(
            "SELECT value FROM gallery_settings WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else str(row[0])

    # ------------------------------------------------------------------ vector index
    def index(self, on_message: Any = None) -> VectorIndex:
        """The vector index, loaded once and rebuilt from SQLite if missing, stale or damaged."""
        from workstation.gallery.index_build import open_index

        if self.vectors is not None:
            self._index = self.vectors.index(self, self._index, on_message)
            return self._index
        if self._index is None or self._index.generation != self.generation:
            self._index = open_index(self, on_message=on_message)
        return self._index

    def use_index(self, index: Any) -> None:
        """Keep `index` as this gallery's loaded index (after building or rebuilding it)."""
        self._index = index

    def forget_index(self) -> None:
        self._index = None

    def save_index(self) -> None:
        """Write the loaded index's changes to its files (no-op when none is loaded)."""
        index = self._index
        if self.vectors is None and index is not None and (index.count or index.path.exists()):
            index.save()

    def _sync_index(
        self,
        before: int,
        after: int,
        added: list[tuple[np.ndarray, np.ndarray]],
        removed: list[int],
        rebuild: bool,
        save: bool,
    ) -> None:
        """After a unit of work committed: apply its face changes to the index, if the index
        (in memory, else on disk) was in step with the gallery before it. Otherwise leave it
        (removed faces are still overwritten in its files at once): `index()` catches a behind
        index up, or rebuilds it, on its next use.

        An agency gallery's collection was written before the commit (`_before_commit`)."""
        if self.vectors is not None:
            self._index = None if rebuild else self._index
            return
        index = None if rebuild else self._index
        if index is not None and index.generation != before:
            index = None
        try:
            if index is None and not rebuild:
                index = self._index_at(before, added, removed)
            if index is None:
                self._index = None
                if removed:
                    from workstation.gallery.index import remove_from_saved

                    if not remove_from_saved(self.folder, removed):
                        # Files that cannot be read to overwrite the faces in place (damaged)
                        # may still hold them: they go now (rebuilt from the database later).
                        self.drop_index_files()
                return
            if removed:
                index.remove(removed)
            for ids, vectors in added:
                index.add(ids, vectors)
            if index.model_id is None:
                index.model_id = self.model_id
            index.generation = after
            self._index = index
            if save:
                index.save()
        except OSError:
            # The act is committed; the index is derived: the next use catches it up from the
            # database or rebuilds it (its manifest no longer matches), and says so.
            self._index = None
            if removed:  # the files may still hold the removed vectors: they go now
                try:
                    self.drop_index_files()
                except OSError as exc:
                    log.error("%s: index files holding deleted faces: %s", self.folder, exc)

    def _before_commit(
        self, added: list[tuple[np.ndarray, np.ndarray]], removed: list[int]
    ) -> None:
        """A change that added or removed faces is about to commit, the write lock held: an
        agency gallery's vectors are written to its shared collection now (deleted faces leave
        searches in the act itself; an interrupted write is repaired on the next open)."""
        if self.vectors is not None:
            self.vectors.before_commit(self, added, removed)

    def face_ids(self) -> np.ndarray:
        """Every face id, ascending (what a derived vector store must hold)."""
        rows = self._conn.execute("SELECT id FROM faces ORDER BY id").fetchall()
        return np.asarray([int(r[0]) for r in rows], dtype=np.int64)

    def newest_face_id(self) -> int | None:
        row = self._conn.execute("SELECT MAX(id) FROM faces").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def _index_at(
        self, generation: int, added: list[tuple[np.ndarray, np.ndarray]], removed: list[int]
    ) -> VectorIndex | None:
        """The saved index if it shows the gallery at `generation`, or a new empty one for a
        gallery that had no faces then; None otherwise."""
        from workstation.gallery.index import MANIFEST_NAME, VectorIndex

        if (self.folder / MANIFEST_NAME).exists():
            loaded = VectorIndex.load(self.folder, expect_model=self.model_id)
            if (
                isinstance(loaded, VectorIndex)
                and loaded.generation == generation
                and loaded.model_id in (None, self.model_id)
            ):
                return loaded
            return None
        added_count = sum(len(ids) for ids, _ in added)
        if self.face_count() - added_count + len(removed) == 0 and self.model_dim:
            return VectorIndex(self.folder, self.model_dim, generation, self.model_id)
        return None

    # ------------------------------------------------------------------ search records
    # (issue 14 item 1: the one record of a search, built here from the stored rows)
    def search_record(self, search_id: int) -> SearchRecord:
        """The record of one stored search, with its decisions and today's subject names."""
        with self.read_snapshot():
            row = self.search_row(search_id)
            if row is None:
                raise GalleryError(
                    f"search {search_id} does not exist in the gallery {self.folder}"
                )
            return self._search_records([row])[0]

    def case_search_records(self, case_id: str) -> list[SearchRecord]:
        """Every search of a case, oldest first, each with its decisions."""
        with self.read_snapshot():
            return self._search_records(self.searches_of_case(case_id))

    def _search_records(self, rows: list[dict[str, Any]]) -> list[SearchRecord]:
        """Records of stored search rows: their decisions, and the names and face quality of
        their candidates as the gallery holds them now (call inside `read_snapshot`)."""
        if not rows:
            return []
        ids = [int(row["id"]) for row in rows]
        subject_ids: set[str] = set()
        face_ids: set[int] = set()
        for row in rows:
            for stored in json.loads(row["candidates"]):
                subject_ids.add(str(stored["subject_id"]))
                face_ids.add(int(stored["face_id"]))
        decisions: dict[int, list[DecisionRecord]] = {i: [] for i in ids}
        names: dict[str, str | None] = {}
        quality: dict[int, str | None] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {_DECISION_COLUMNS} FROM decisions WHERE search_id IN ({marks})"
            for row in self._conn.execute(sql + " ORDER BY id", chunk):
                decision = _decision(row)
                decisions[decision.search_id].append(decision)
        for chunk in _chunks(sorted(subject_ids)):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, name FROM subjects WHERE id IN ({marks})"
            names.update(self._conn.execute(sql, chunk))
        for chunk in _chunks(sorted(face_ids)):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, quality FROM faces WHERE id IN ({marks})"
            for face_id, text in self._conn.execute(sql, chunk):
                quality[int(face_id)] = json.loads(text).get("verdict")
        # The ACE-V sheets on each candidate, as this examiner may see them (blind rule).
        versions: dict[tuple[int, str], list[ComparisonSheet]] = {}
        for sheet in self._comparison_sheet_rows(ids):
            versions.setdefault((sheet.search_id, sheet.subject_id), []).append(sheet)
        sheets: dict[int, list[SheetsView]] = {i: [] for i in ids}
        for (search_id, subject_id), found in sorted(versions.items()):
            sheets[search_id].append(blind_view(found, self.user, subject_id))
        records = []
        for row in rows:
            search_id = int(row["id"])
            # Blind verification withholds other examiners' decisions with their sheets.
            blind = [view.subject_id for view in sheets[search_id] if view.blind]
            shown, withheld = withhold_decisions(decisions[search_id], blind, self.user)
            record = record_from_row(row, shown, names, quality).with_sheets(sheets[search_id])
            records.append(record.with_blind_decisions(shown, withheld))
        return records


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


def open_gallery(
    folder: Path | str,
    user: str | None = None,
    create: bool = False,
    read_only: bool = False,
    examiner: Examiner | None = None,
) -> Gallery:
    """Open the gallery in `folder`: the one factory the command line and the app use, so that
    neither knows which kind of gallery (embedded today; agency, issue 13) a folder holds.

    Args: as `Gallery`; `create` makes a new embedded gallery when the folder holds none (only
    enrolment and the app's first start pass True).
    """
    return Gallery(folder, user=user, create=create, read_only=read_only, examiner=examiner)


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
        return _open_sqlite(db_path), EMBEDDED
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


def _connect_read_only(db_path: Path) -> SqliteDatabase:
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


def _chunks(ids: list[Any], size: int = 500) -> Iterator[list[Any]]:
    """SQLite allows at most 999 parameters per statement in older builds."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _short(model_id: str) -> str:
    name, _, digest = model_id.partition("@")
    return f"{name}@{digest[:12]}" if digest else model_id
