"""The gallery's one unit of work: every write to the gallery goes through a `GalleryChange`.

A change is one database transaction. Through it the caller adds or removes subjects, photos
and faces, stores decisions, cases and calibrations, and appends audit events; `commit` then

1. bumps the faces generation once, if any face was added, removed, moved or re-embedded (the
   vector index and the calibration read it to know they describe the current gallery),
2. commits the transaction (the act and its audit event together, or neither),
3. and only after the commit applies the added and removed faces to the vector index and deletes
   the stored photos no face uses any more.

`rollback` (or any error inside `Gallery.change()`) undoes the transaction and leaves the index
and the files as they were. Enrolment writes many photos in one change, each in its own
`step()` (a savepoint) with its own audit event, so one bad photo is undone alone.

Open a change with `Gallery.change(action, details, ...)` (a context manager that also appends
the act's audit event) or `Gallery.open_change()` (committed by the caller).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from workstation.audit.actions import AuditAction
from workstation.audit.log import AuditEvent, append_event, utc_now
from workstation.domain import Decision, Face, ModelId, Verdict
from workstation.errors import GalleryError

if TYPE_CHECKING:
    from workstation.gallery.store import Gallery


class GalleryChange:
    """One transaction of writes, with its audit events; see the module docstring."""

    def __init__(self, gallery: Gallery, conn: sqlite3.Connection, save_index: bool) -> None:
        self.gallery = gallery
        self._conn = conn
        self._save_index = save_index
        # Audit details of the act `Gallery.change()` records at the end (the caller may add).
        self.details: dict[str, Any] = {}
        self.events: list[AuditEvent] = []
        self.open = True
        self.generation_before = gallery.generation
        self._added: list[tuple[np.ndarray, np.ndarray]] = []
        self._removed: list[int] = []
        self._files: list[str] = []  # stored photos to delete after the commit
        self._faces_changed = False
        self._rebuild_index = False
        self._wrote = False  # any row written: the change must then record an audit event
        self._steps = 0

    # ------------------------------------------------------------------ end
    def commit(self) -> int:
        """Bump the generation (if faces changed), commit, then update the index and files.

        Returns the gallery's generation after the change.
        """
        self._require_open()
        if self._wrote and not self.events:
            self.rollback()
            raise RuntimeError(
                "a gallery change that writes must record its audit event (GalleryChange.record)"
            )
        generation = self.generation_before
        if self._faces_changed:
            generation = self.gallery._bump_generation()
        self._conn.execute("COMMIT")
        self.open = False
        for relative in self._files:
            (self.gallery.folder / relative).unlink(missing_ok=True)
        if self._faces_changed:
            self.gallery._sync_index(
                self.generation_before,
                generation,
                self._added,
                self._removed,
                rebuild=self._rebuild_index,
                save=self._save_index,
            )
        return generation

    def rollback(self) -> None:
        """Undo everything written through this change; the index and files are untouched."""
        if self.open and self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        self.open = False

    @contextmanager
    def step(self, what: str = "the change") -> Iterator[None]:
        """A part of the change that is undone alone when it fails (a savepoint): its rows,
        audit events and pending index updates go; the rest of the change stays.

        A database refusal inside is raised as GalleryError naming `what` and SQLite's reason.
        """
        self._require_open()
        self._steps += 1
        name = f"step_{self._steps}"
        mark = (len(self._added), len(self._removed), len(self._files), len(self.events))
        changed, wrote = self._faces_changed, self._wrote
        self._conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException as exc:
            self._conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self._conn.execute(f"RELEASE SAVEPOINT {name}")
            del self._added[mark[0] :], self._removed[mark[1] :], self._files[mark[2] :]
            del self.events[mark[3] :]
            self._faces_changed, self._wrote = changed, wrote
            if isinstance(exc, sqlite3.Error):
                raise GalleryError(f"the gallery database refused {what} ({exc})") from exc
            raise
        self._conn.execute(f"RELEASE SAVEPOINT {name}")

    def _require_open(self) -> None:
        if not self.open:
            raise RuntimeError("this gallery change has already been committed or rolled back")

    def _writing(self) -> sqlite3.Connection:
        """The connection, for a write (marks the change as one that must be audited)."""
        self._require_open()
        self._wrote = True
        return self._conn

    # ------------------------------------------------------------------ audit
    def record(
        self,
        action: AuditAction,
        details: dict[str, Any],
        case_id: str | None = None,
        purpose: str | None = None,
    ) -> AuditEvent:
        """Append an audit event to this change (it commits with the change's rows)."""
        self._require_open()
        event = append_event(
            self._conn,
            user=self.gallery.user,
            action=action,
            details=details,
            case_id=case_id,
            purpose=purpose,
        )
        self.events.append(event)
        return event

    # ------------------------------------------------------------------ model
    def bind_model(self, model: ModelId) -> None:
        """Bind an empty gallery to a model; refuse another model (ModelMismatchError)."""
        self.gallery.check_model(model)
        if self.gallery.model_id is None:
            self._set_model(model)

    def set_model(self, model: ModelId) -> None:
        """Bind the gallery to another model (re-embedding replaces every embedding with it)."""
        self._set_model(model)
        self._faces_changed = True
        self._rebuild_index = True

    def _set_model(self, model: ModelId) -> None:
        self._writing()
        self.gallery._set_meta("model_id", str(model))
        self.gallery._set_meta("model_name", model.name)
        self.gallery._set_meta("model_dim", str(model.dim))

    # ------------------------------------------------------------------ subjects
    def add_subject(
        self, subject_id: str, name: str | None = None, attributes: dict[str, Any] | None = None
    ) -> None:
        """A new subject (GalleryError if the id is taken)."""
        self.add_subjects([(subject_id, name, attributes or {})])

    def add_subjects(self, subjects: Iterable[tuple[str, str | None, dict[str, Any]]]) -> None:
        """Many new subjects at once: (id, name, attributes) each."""
        now, user = utc_now(), self.gallery.user
        try:
            self._writing().executemany(
                "INSERT INTO subjects (id, name, attributes, created_at, created_by) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    (subject_id, name, _attributes_json(attributes), now, user)
                    for subject_id, name, attributes in subjects
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise GalleryError(f"a subject with this id is already in the gallery ({exc})") from exc

    def ensure_subject(
        self, subject_id: str, name: str | None = None, attributes: dict[str, Any] | None = None
    ) -> bool:
        """Create the subject if new (True), else give it `name` if it has none (False)."""
        if self.gallery.subject(subject_id) is None:
            self.add_subject(subject_id, name, attributes)
            return True
        if name:
            self._writing().execute(
                "UPDATE subjects SET name = ? WHERE id = ? AND name IS NULL", (name, subject_id)
            )
        return False

    def update_subject(self, subject_id: str, name: str | None, attributes: dict[str, Any]) -> None:
        self._writing().execute(
            "UPDATE subjects SET name = ?, attributes = ? WHERE id = ?",
            (name, json.dumps(attributes, ensure_ascii=False), subject_id),
        )

    def remove_subject(self, subject_id: str) -> tuple[list[int], list[str]]:
        """Remove a subject, its faces and the photos no other face uses.

        Returns (removed face ids, SHA-256 of the removed photos); the photos' stored copies
        are deleted after the commit.
        """
        face_ids = [
            int(r[0])
            for r in self._writing().execute(
                "SELECT id FROM faces WHERE subject_id = ? ORDER BY id", (subject_id,)
            )
        ]
        removed_sha256 = self.remove_faces(face_ids)
        self._writing().execute("DELETE FROM subjects WHERE id = ?", (subject_id,))
        return face_ids, removed_sha256

    def remove_faces(self, face_ids: Sequence[int]) -> list[str]:
        """Remove faces, and the photos no remaining face uses; returns those photos' SHA-256.

        The faces leave the vector index, and the photos' stored copies are deleted, after the
        commit.
        """
        conn = self._writing()
        ids = sorted({int(i) for i in face_ids})
        image_ids: set[int] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            image_ids.update(
                int(r[0])
                for r in conn.execute(f"SELECT image_id FROM faces WHERE id IN ({marks})", chunk)
            )
            conn.execute(f"DELETE FROM faces WHERE id IN ({marks})", chunk)
        removed_sha256: list[str] = []
        for image_id in sorted(image_ids):
            row = conn.execute(
                "SELECT sha256, stored_path FROM images WHERE id = ? AND NOT EXISTS "
                "(SELECT 1 FROM faces WHERE faces.image_id = images.id)",
                (image_id,),
            ).fetchone()
            if row is None:
                continue
            conn.execute("DELETE FROM images WHERE id = ?", (image_id,))
            removed_sha256.append(row[0])
            if row[1]:
                self._files.append(row[1])
        if ids:
            self._removed.extend(ids)
            self._faces_changed = True
        return removed_sha256

    def move_faces(self, from_subject: str, to_subject: str) -> list[int]:
        """Give every face of one subject to another (the embeddings stay as they are)."""
        moved = [
            int(r[0])
            for r in self._writing().execute(
                "SELECT id FROM faces WHERE subject_id = ? ORDER BY id", (from_subject,)
            )
        ]
        self._writing().execute(
            "UPDATE faces SET subject_id = ? WHERE subject_id = ?", (to_subject, from_subject)
        )
        # The index maps face ids (unchanged) to subjects through the database, so it stays
        # valid; the generation still moves on, because calibration pairs faces by subject.
        self._faces_changed = True
        return moved

    # ------------------------------------------------------------------ photos and faces
    def add_image(
        self,
        sha256: str,
        original_path: str,
        width: int,
        height: int,
        stored_path: str | None = None,
        format: str | None = None,
        file_bytes: int | None = None,
    ) -> int:
        """A photo's row (by content hash; a photo is stored once); returns its id."""
        cursor = self._writing().execute(
            "INSERT INTO images (sha256, original_path, stored_path, width, height, format, "
            "file_bytes, imported_at, imported_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                sha256,
                original_path,
                stored_path,
                width,
                height,
                format,
                file_bytes,
                utc_now(),
                self.gallery.user,
            ),
        )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    def add_face(self, subject_id: str, image_id: int, face: Face, model_id: str) -> int:
        """An analysed face of a stored photo, enrolled for a subject; returns its id.

        Its embedding reaches the vector index after the commit.
        """
        data = face.to_dict()
        embedding = np.asarray(face.embedding, dtype=np.float32).reshape(-1)
        cursor = self._writing().execute(
            "INSERT INTO faces (subject_id, image_id, box, landmarks, source, aligned, quality, "
            "verdict, model_id, embedding, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                subject_id,
                image_id,
                json.dumps(data["box"]),
                json.dumps(data["landmarks"]),
                face.source.value,
                int(face.aligned),
                json.dumps(data["quality"]),
                face.quality.verdict.value,
                model_id,
                embedding.tobytes(),
                utc_now(),
            ),
        )
        assert cursor.lastrowid is not None
        face_id = int(cursor.lastrowid)
        self._added.append((np.array([face_id], dtype=np.int64), embedding[None, :].copy()))
        self._faces_changed = True
        return face_id

    def add_faces_bulk(
        self,
        subject_ids: Sequence[str],
        embeddings: np.ndarray,
        image_sha256: Sequence[str],
        *,
        model_id: str,
        original_path: str,
        width: int,
        height: int,
        box: Sequence[float],
        verdict: Verdict = Verdict.GOOD,
    ) -> np.ndarray:
        """Many faces at once (tests and benchmarks build galleries of 300,000 to 10 million
        faces with it): face i of subject `subject_ids[i]` with embedding `embeddings[i]`, on a
        photo row of its own with SHA-256 `image_sha256[i]`, all from `original_path`, with the
        same box and no landmarks. The subjects must exist. Returns the new face ids."""
        vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
        n = len(subject_ids)
        if vectors.ndim != 2 or len(vectors) != n or len(image_sha256) != n:
            raise ValueError(
                f"{n} subjects, {len(image_sha256)} photos and {len(vectors)} embeddings: "
                "one of each per face"
            )
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        now, user = utc_now(), self.gallery.user
        # Ids given explicitly (the write lock is held), so that they are known without a
        # round trip per row: executemany cannot return them.
        first_image = self._next_id("images")
        first_face = self._next_id("faces")
        image_ids = range(first_image, first_image + n)
        face_ids = np.arange(first_face, first_face + n, dtype=np.int64)
        self._writing().executemany(
            "INSERT INTO images (id, sha256, original_path, width, height, imported_at, "
            "imported_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (image_id, sha, original_path, width, height, now, user)
                for image_id, sha in zip(image_ids, image_sha256, strict=True)
            ),
        )
        box_json = json.dumps([float(v) for v in box])
        quality_json = json.dumps({"verdict": verdict.value, "reasons": []})
        self._writing().executemany(
            "INSERT INTO faces (id, subject_id, image_id, box, source, aligned, quality, "
            "verdict, model_id, embedding, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    int(face_ids[i]),
                    subject_ids[i],
                    first_image + i,
                    box_json,
                    "detected",
                    1,
                    quality_json,
                    verdict.value,
                    model_id,
                    vectors[i].tobytes(),
                    now,
                )
                for i in range(n)
            ),
        )
        self._added.append((face_ids, vectors))
        self._faces_changed = True
        return face_ids

    def _next_id(self, table: str) -> int:
        """The id `table`'s next row gets: above every id it ever had, deleted rows included
        (its AUTOINCREMENT sequence remembers them), so an id is never given twice."""
        conn = self._writing()
        highest = int(conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0])
        sequence = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,))
        row = sequence.fetchone()
        return max(highest, int(row[0]) if row else 0) + 1

    def set_embeddings(self, updates: Iterable[tuple[int, np.ndarray]], model_id: str) -> None:
        """Replace stored embeddings ((face id, vector) each) with ones of `model_id`; the
        vector index is rebuilt by the caller after the commit."""
        self._writing().executemany(
            "UPDATE faces SET embedding = ?, model_id = ? WHERE id = ?",
            (
                (np.asarray(vector, dtype=np.float32).tobytes(), model_id, int(face_id))
                for face_id, vector in updates
            ),
        )
        self._faces_changed = True
        self._rebuild_index = True

    # ------------------------------------------------------------------ cases, decisions
    def ensure_case(self, case_id: str, purpose: str) -> bool:
        """Create the case if new; True when it was created."""
        return insert_case(self._writing(), case_id, purpose, self.gallery.user)

    def add_decision(
        self,
        search_id: int,
        subject_id: str,
        decision: Decision,
        note: str | None,
        confirms: int | None = None,
    ) -> tuple[int, str]:
        """Store a decision by this gallery's examiner; returns (its id, its time)."""
        created_at = utc_now()
        cursor = self._writing().execute(
            'INSERT INTO decisions (search_id, subject_id, decision, note, "user", created_at, '
            "confirms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                search_id,
                subject_id,
                Decision(decision).value,
                note,
                self.gallery.user,
                created_at,
                confirms,
            ),
        )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid), created_at

    # ------------------------------------------------------------------ searches
    def add_search(
        self,
        *,
        case_id: str,
        purpose: str,
        created_at: str,
        probe_path: str,
        probe_sha256: str,
        face: dict[str, Any],
        model_id: str,
        params: dict[str, Any],
        gallery_faces: int,
        candidates: list[dict[str, Any]],
        note: str | None,
    ) -> int:
        """Store one search by this gallery's examiner; returns its id. `candidates` are
        `Candidate.stored_dict()` rows: ids and numbers, never names (the search record looks
        names up when it is read: see workstation.gallery.records)."""
        cursor = self._writing().execute(
            'INSERT INTO searches (case_id, purpose, "user", created_at, probe_path, '
            "probe_sha256, face, model_id, params, gallery_size, candidates, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                case_id,
                purpose,
                self.gallery.user,
                created_at,
                probe_path,
                probe_sha256,
                json.dumps(face),
                model_id,
                json.dumps(params),
                gallery_faces,
                json.dumps(candidates),
                note,
            ),
        )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    # ------------------------------------------------------------------ calibrations
    def add_calibration(self, row: dict[str, Any]) -> int:
        """Store a calibration row (columns of the calibrations table, JSON already as text);
        returns its id."""
        return insert_calibration(self._writing(), row)


def _attributes_json(attributes: dict[str, Any]) -> str:
    # Most subjects have none: "{}" without json.dumps (a third of a 100,000-subject bulk add).
    return json.dumps(attributes, sort_keys=True) if attributes else "{}"


def insert_case(conn: sqlite3.Connection, case_id: str, purpose: str, user: str) -> bool:
    """Create the case if new (inside the caller's transaction); True when it was created."""
    row = conn.execute("SELECT id FROM cases WHERE id = ?", (case_id,)).fetchone()
    if row is not None:
        return False
    conn.execute(
        "INSERT INTO cases (id, purpose, created_at, created_by) VALUES (?, ?, ?, ?)",
        (case_id, purpose, utc_now(), user),
    )
    return True


CALIBRATION_COLUMNS = (
    "sha256",
    "created_at",
    "created_by",
    "model_id",
    "sources",
    "impostor_pairs",
    "gallery_pairs",
    "reference_pairs",
    "generation",
    "gallery_faces",
    "gallery_subjects",
    "histogram",
    "details",
)


def insert_calibration(conn: sqlite3.Connection, row: dict[str, Any]) -> int:
    """Store a calibration row inside the caller's transaction; returns its id."""
    missing = set(CALIBRATION_COLUMNS) - set(row)
    if missing:
        raise ValueError(f"a calibration row needs {', '.join(sorted(missing))}")
    cursor = conn.execute(
        f"INSERT INTO calibrations ({', '.join(CALIBRATION_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(CALIBRATION_COLUMNS))})",
        [row[column] for column in CALIBRATION_COLUMNS],
    )
    assert cursor.lastrowid is not None
    return int(cursor.lastrowid)
