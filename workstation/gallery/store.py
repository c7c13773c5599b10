"""The gallery folder: one SQLite database (the source of truth), stored image copies, and the
derived vector index. `Gallery` owns the schema: every read is a named method of it, and every
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
in PostgreSQL, vectors in Milvus) can implement the same methods. They are kept in modules by
concern, one class to callers: opening and the folder's kind (`opening`), reads of subjects and
faces (`subject_reads`), of cases and searches (`case_reads`), the audit trail (`audit_trail`),
the vector index (`index_upkeep`); the unit of work and the model bound are here. The SQL is
kept to what SQLite and PostgreSQL both understand where that costs nothing (quoted "user"
columns, ON CONFLICT, no SQLite-only functions); the SQLite-only statements (PRAGMAs, WAL, BEGIN
IMMEDIATE) are in `opening` and `transaction` alone.

No sqlite-utils: the schema is fixed by numbered migrations (with CHECK constraints and triggers
it would not write), dict rows are one line, bulk inserts are `executemany` (its `insert_all`
was slower for 100,000 faces; numbers in pyproject.toml), and the PostgreSQL gallery needs its
own SQL.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workstation.audit.actions import AuditAction
from workstation.audit.log import AuditEvent
from workstation.audit.roles import ALL_ROLES, refusal
from workstation.audit.rows import (
    COVERED_LATER,
)
from workstation.domain import ModelId
from workstation.errors import (
    GalleryBusyError,
    GalleryError,
    IdentityError,
    ModelMismatchError,
    NotPermittedError,
)
from workstation.gallery import audit_store
from workstation.gallery.audit_trail import AuditTrail
from workstation.gallery.case_reads import CaseReads
from workstation.gallery.change import GalleryChange
from workstation.gallery.database import Database, is_sqlite_busy
from workstation.gallery.examiners import (
    RegisteredExaminer,
    identity_refusal,
    key_entry,
    new_gallery_id,
    normalised_name,
)
from workstation.gallery.index_upkeep import IndexUpkeep
from workstation.gallery.moving import moved_refusal, unfinished_copy_refusal
from workstation.gallery.opening import (
    AGENCY,
    BUSY_TIMEOUT_SECONDS,
    DB_NAME,
    EMBEDDED,
    busy_message,
    connect_read_only,
    gallery_kind,
    no_gallery_message,
    open_sqlite,
)
from workstation.gallery.photo_copies import (
    IMAGES_DIR,
    OrphanReport,
    check_needed,
    finish_check,
    remove_orphans,
)
from workstation.gallery.subject_reads import (
    SubjectReads,
)
from workstation.identity import Examiner
from workstation.permissions import create_private_file, make_private_dir, restrict_process

if TYPE_CHECKING:
    from workstation.gallery.milvus import MilvusVectors

log = logging.getLogger(__name__)


class Gallery(SubjectReads, CaseReads, AuditTrail, IndexUpkeep):
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
            self._conn = connect_read_only(db_path)
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
            conn = open_sqlite(db_path)
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

    # ------------------------------------------------------------------ photo copies
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


def _short(model_id: str) -> str:
    name, _, digest = model_id.partition("@")
    return f"{name}@{digest[:12]}" if digest else model_id
