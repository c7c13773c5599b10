"""The gallery folder: one SQLite database (the source of truth), stored image copies, and the
derived FAISS index.

Layout of a gallery folder::

    gallery.sqlite        subjects, images, faces (with embeddings), cases, searches,
                          decisions, audit
    images/ab/<sha256>.jpg  byte-exact copies of enrolled photos (for re-embedding and review)
    faces.vectors.f32     vector index (workstation.gallery.index), derived from gallery.sqlite:
    faces.ids.i64         caught up or rebuilt whenever it is behind, missing, stale or damaged
    faces.pq.faiss        (large galleries only)
    faces.faiss.json      its manifest: what it was built from, checksums, measured recall

Every write goes through `Gallery.transaction()` (BEGIN IMMEDIATE), and the audit event of an
act is appended inside that same transaction.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from workstation.audit.log import AuditEvent, append_event, utc_now
from workstation.domain import ModelId
from workstation.errors import GalleryError, ModelMismatchError
from workstation.gallery.schema import check_schema_version, migrate
from workstation.paths import current_user
from workstation.permissions import create_private_file, make_private_dir, restrict_process

DB_NAME = "gallery.sqlite"
IMAGES_DIR = "images"


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


class Gallery:
    """An open gallery folder. One instance per thread (SQLite connections are per thread)."""

    def __init__(
        self,
        folder: Path | str,
        user: str | None = None,
        create: bool = True,
        read_only: bool = False,
    ) -> None:
        """Open (or create) a gallery.

        Args:
            folder: the gallery folder.
            user: the examiner recorded in the audit log (default: the OS login).
            create: create the folder and database when there is none; False raises instead.
            read_only: open the database without any write (no migration, no journal-mode
                change): for commands that only read, such as `audit verify`.
        """
        self.folder = Path(folder).expanduser()
        self.user = user or current_user()
        db_path = self.folder / DB_NAME
        self._index = None
        if read_only:
            if not db_path.is_file():
                raise GalleryError(no_gallery_message(self.folder))
            self.conn = _connect_read_only(db_path)
            self.db = sqlite_utils.Database(self.conn)
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
            conn = sqlite3.connect(str(db_path), timeout=30.0)
            conn.execute("PRAGMA busy_timeout = 30000")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise GalleryError(f"{db_path}: cannot switch the database to WAL mode")
            # FULL: a committed audit event survives a power cut, not only a crash.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn, str(db_path))
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{db_path}: not a usable gallery database ({exc})") from exc
        self.db = sqlite_utils.Database(conn)
        self.conn = conn

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def db_path(self) -> Path:
        return self.folder / DB_NAME

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: the act and its audit event commit together or not at all."""
        if self.conn.in_transaction:
            raise RuntimeError("nested gallery transactions are not supported")
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def audit(
        self,
        action: str,
        details: dict[str, Any],
        case_id: str | None = None,
        purpose: str | None = None,
    ) -> AuditEvent:
        """Append an audit event; must be called inside `transaction()`."""
        return append_event(
            self.conn,
            user=self.user,
            action=action,
            details=details,
            case_id=case_id,
            purpose=purpose,
        )

    # ------------------------------------------------------------------ meta and model
    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def generation(self) -> int:
        """Bumped in the same transaction as every change to the faces table."""
        return int(self.meta("faces_generation") or 0)

    def bump_generation(self) -> int:
        new = self.generation + 1
        self.set_meta("faces_generation", str(new))
        return new

    @property
    def model_id(self) -> str | None:
        return self.meta("model_id")

    @property
    def model_dim(self) -> int | None:
        value = self.meta("model_dim")
        return int(value) if value else None

    def check_model(self, model: ModelId) -> None:
        """Refuse to mix embeddings of different models in one gallery."""
        bound = self.model_id
        if bound is not None and bound != str(model):
            raise ModelMismatchError(
                f"{self.folder}: this gallery was built with model {_short(bound)}, but the "
                f"current model is {model.short}; scores from different models cannot be "
                "compared. Use the gallery's model, or run `workstation reembed` to re-compute "
                "the gallery with the new one"
            )

    def bind_model(self, model: ModelId) -> None:
        """Bind an empty gallery to a model (inside a transaction)."""
        self.check_model(model)
        if self.model_id is None:
            self.set_meta("model_id", str(model))
            self.set_meta("model_name", model.name)
            self.set_meta("model_dim", str(model.dim))

    # ------------------------------------------------------------------ counts and lookups
    def face_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0])

    def subject_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM subjects").fetchone()[0])

    def subjects(self, query: str | None = None) -> list[SubjectInfo]:
        sql = (
            "SELECT s.id, s.name, s.attributes, s.created_at, COUNT(f.id) FROM subjects s "
            "LEFT JOIN faces f ON f.subject_id = s.id"
        )
        params: list[Any] = []
        if query:
            sql += " WHERE s.id LIKE ? OR s.name LIKE ?"
            params = [f"%{query}%", f"%{query}%"]
        sql += " GROUP BY s.id ORDER BY s.id"
        return [
            SubjectInfo(row[0], row[1], json.loads(row[2]), row[3], int(row[4]))
            for row in self.conn.execute(sql, params)
        ]

    @staticmethod
    def _subject_filter(query: str | None) -> tuple[str, list[Any]]:
        if not query:
            return "", []
        # Typed text is matched literally: "_" and "%" in a subject id are not wildcards.
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return " WHERE id LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\'", [pattern, pattern]

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
            ") p LEFT JOIN faces f ON f.subject_id = p.id GROUP BY p.id ORDER BY p.id"
        )
        rows = self.conn.execute(sql, [*params, max(0, limit), max(0, offset)])
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
        return int(self.conn.execute(f"SELECT COUNT(*) FROM subjects{where}", params).fetchone()[0])

    def subject(self, subject_id: str) -> SubjectInfo | None:
        row = self.conn.execute(
            "SELECT s.id, s.name, s.attributes, s.created_at, COUNT(f.id) FROM subjects s "
            "LEFT JOIN faces f ON f.subject_id = s.id WHERE s.id = ? GROUP BY s.id",
            (subject_id,),
        ).fetchone()
        return (
            None
            if row is None
            else SubjectInfo(row[0], row[1], json.loads(row[2]), row[3], int(row[4]))
        )

    _FACE_SQL = (
        "SELECT f.id, f.subject_id, f.image_id, f.box, f.landmarks, f.source, f.aligned, "
        "f.quality, f.model_id, i.sha256, i.original_path, i.stored_path "
        "FROM faces f JOIN images i ON i.id = f.image_id"
    )

    def _face_from_row(self, row: tuple[Any, ...]) -> FaceRecord:
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
        )

    def faces_of(self, subject_id: str) -> list[FaceRecord]:
        rows = self.conn.execute(
            self._FACE_SQL + " WHERE f.subject_id = ? ORDER BY f.id", (subject_id,)
        )
        return [self._face_from_row(row) for row in rows]

    def face(self, face_id: int) -> FaceRecord | None:
        row = self.conn.execute(self._FACE_SQL + " WHERE f.id = ?", (face_id,)).fetchone()
        return None if row is None else self._face_from_row(row)

    def all_faces(self) -> Iterator[FaceRecord]:
        for row in self.conn.execute(self._FACE_SQL + " ORDER BY f.id"):
            yield self._face_from_row(row)

    def image_file(self, record: FaceRecord) -> Path:
        """The stored copy of a face's photo (falls back to the original path)."""
        if record.stored_path:
            stored = self.folder / record.stored_path
            if stored.exists():
                return stored
        return Path(record.original_path)

    def image_id_for_sha256(self, sha256: str) -> int | None:
        row = self.conn.execute("SELECT id FROM images WHERE sha256 = ?", (sha256,)).fetchone()
        return None if row is None else int(row[0])

    def embeddings(self, batch: int = 50_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All (face ids, embeddings) in batches, from SQLite (the source of truth)."""
        dim = self.model_dim
        cursor = self.conn.execute("SELECT id, embedding FROM faces ORDER BY id")
        while rows := cursor.fetchmany(batch):
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
            yield ids, matrix.reshape(len(rows), dim or -1)

    # ------------------------------------------------------------------ stored images
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

    # ------------------------------------------------------------------ cases
    def ensure_case(self, case_id: str, purpose: str) -> bool:
        """Create the case if new (inside a transaction); True when it was created."""
        row = self.conn.execute("SELECT id FROM cases WHERE id = ?", (case_id,)).fetchone()
        if row is not None:
            return False
        self.conn.execute(
            "INSERT INTO cases (id, purpose, created_at, created_by) VALUES (?, ?, ?, ?)",
            (case_id, purpose, utc_now(), self.user),
        )
        return True

    def cases(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM cases ORDER BY created_at DESC"))

    # ------------------------------------------------------------------ vector index
    def index(self, on_message: Any = None) -> Any:
        """The FAISS index, loaded once and rebuilt from SQLite if missing, stale or damaged."""
        from workstation.gallery.index import VectorIndex

        if self._index is None or self._index.generation != self.generation:
            self._index = VectorIndex.open_for(self, on_message=on_message)
        return self._index

    def forget_index(self) -> None:
        self._index = None


def no_gallery_message(folder: Path) -> str:
    return (
        f"{folder}: no gallery here (no {DB_NAME}); check the folder given with --gallery or in "
        "the settings. Only enrolment creates a new gallery"
    )


def _connect_read_only(db_path: Path) -> sqlite3.Connection:
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
            check_schema_version(conn, source)
            return conn
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
            check_schema_version(conn, source)
            return conn
    except sqlite3.DatabaseError as exc:
        raise GalleryError(f"{db_path}: not a usable gallery database ({exc})") from exc


def _short(model_id: str) -> str:
    name, _, digest = model_id.partition("@")
    return f"{name}@{digest[:12]}" if digest else model_id
