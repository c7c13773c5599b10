"""The gallery's subjects, faces, photos and embeddings as read: part of `Gallery`.

`Gallery` (workstation.gallery.store) is the one interface to a gallery; its reads are kept in
modules by what they read (this one; cases and searches in `case_reads`; the audit trail, its
witnesses and examiners in `audit_trail`) so that no module holds them all. Nothing here writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workstation.gallery.database import Database, chunks
from workstation.gallery.photos import load_verified_photo

if TYPE_CHECKING:
    from workstation.vision.images import LoadedImage


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


def _matrix(blobs: list[bytes], dim: int | None) -> np.ndarray:
    """Stored embeddings (float32 bytes) as one n x dim matrix."""
    matrix = np.frombuffer(b"".join(blobs), dtype=np.float32)
    return matrix.reshape(len(blobs), dim or (matrix.size // max(1, len(blobs))))


class SubjectReads:
    """Subjects, faces, photos and embeddings (a part of `Gallery`)."""

    if TYPE_CHECKING:
        _conn: Database
        folder: Path

        @property
        def model_dim(self) -> int | None: ...

        def read_snapshot(self) -> AbstractContextManager[None]: ...

    _FACE_SQL = (
        "SELECT f.id, f.subject_id, f.image_id, f.box, f.landmarks, f.source, f.aligned, "
        "f.quality, f.model_id, i.sha256, i.original_path, i.stored_path, i.imported_at, "
        "i.imported_by FROM faces f JOIN images i ON i.id = f.image_id"
    )

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
        for chunk in chunks(ids):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, subject_id FROM faces WHERE id IN ({marks})"
            found.update({int(r[0]): r[1] for r in self._conn.execute(sql, chunk)})
        return found

    def face_vectors(self, face_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """{face id: stored embedding} for the faces that exist."""
        ids = [int(i) for i in face_ids]
        found: dict[int, np.ndarray] = {}
        for chunk in chunks(ids):
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
