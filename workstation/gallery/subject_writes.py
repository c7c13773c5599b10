"""Writes of subjects, photos and faces: a part of the unit of work, `GalleryChange`.

`GalleryChange` (workstation.gallery.change) is the one way to write to a gallery; its writes
are kept in modules by what they write (this one; cases and what is done in them in
`case_writes`). Each write notes the rows it wrote, so that the next audit event carries their
hashes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from workstation.audit.log import utc_now
from workstation.audit.rows import row_sha256
from workstation.domain import Face, Verdict
from workstation.errors import GalleryError
from workstation.gallery import audit_store
from workstation.gallery.change_part import ChangePart

if TYPE_CHECKING:
    pass


class SubjectWrites(ChangePart):
    """Subjects, photos, faces and their embeddings (a part of `GalleryChange`)."""

    def add_subject(
        self, subject_id: str, name: str | None = None, attributes: dict[str, Any] | None = None
    ) -> None:
        """A new subject (GalleryError if the id is taken)."""
        self.add_subjects([(subject_id, name, attributes or {})])

    def add_subjects(self, subjects: Iterable[tuple[str, str | None, dict[str, Any]]]) -> None:
        """Many new subjects at once: (id, name, attributes) each."""
        now, user = utc_now(), self.acting.name
        rows = [
            (subject_id, name, _attributes_json(attributes), now, user)
            for subject_id, name, attributes in subjects
        ]
        try:
            self._writing().insert_rows(
                "subjects", ("id", "name", "attributes", "created_at", "created_by"), rows
            )
        except self._conn.IntegrityError as exc:
            raise GalleryError(f"a subject with this id is already in the gallery ({exc})") from exc
        self._touch("subjects", (row[0] for row in rows))

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
            self._touch("subjects", [subject_id])
        return False

    def update_subject(self, subject_id: str, name: str | None, attributes: dict[str, Any]) -> None:
        self._writing().execute(
            "UPDATE subjects SET name = ?, attributes = ? WHERE id = ?",
            (name, json.dumps(attributes, ensure_ascii=False), subject_id),
        )
        self._touch("subjects", [subject_id])

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
        self._touch("subjects", [subject_id], removed=True)
        self._scrub_stored_names(subject_id)
        self._scrub = True
        return face_ids, removed_sha256

    def _scrub_stored_names(self, subject_id: str) -> None:
        """Searches stored before names were looked up at read time kept each candidate's name
        in the row: a deleted subject's name is taken out of them (ids and scores stay).

        A scrubbed row is part of the deleting act: its new hash is recorded by the deletion
        (or merge, or retention) event among its row hashes, and `audit verify` then holds the
        row to that hash (docs/ACCOUNTABILITY.md). Only a row that matched the hash recorded
        for it is re-recorded: one already edited outside the program is scrubbed too, but
        its new hash is not recorded, so `audit verify` goes on naming it (a scrub never
        launders an edit)."""
        conn = self._writing()
        rows = conn.execute(
            "SELECT id, candidates FROM searches WHERE candidates LIKE ?", ('%"name"%',)
        ).fetchall()
        for search_id, text in rows:
            candidates = json.loads(text)
            changed = False
            for candidate in candidates:
                if str(candidate.get("subject_id")) == subject_id and "name" in candidate:
                    del candidate["name"]
                    changed = True
            if not changed:
                continue
            vouched = self._matches_its_record("searches", str(search_id))
            conn.execute(
                "UPDATE searches SET candidates = ? WHERE id = ?",
                (json.dumps(candidates), search_id),
            )
            if vouched:
                self._touch("searches", [search_id])

    def _matches_its_record(self, table: str, row_id: str) -> bool:
        """Whether the row, as it is now, is what the chain holds it to: written earlier in this
        change (its hash is taken at the event), or equal to the hash its last event recorded."""
        if (table, row_id) in self._rows:
            return True
        recorded = audit_store.DatabaseRowSource(self._conn).latest_row_entries(table, [row_id])
        row = audit_store.rows_by_id(self._conn, table, [row_id]).get(row_id)
        entry = recorded.get(row_id)
        return (
            entry is not None
            and entry[1] is not None
            and row is not None
            and row_sha256(table, row) == entry[1]
        )

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
            self._touch("images", [image_id], removed=True)
            removed_sha256.append(row[0])
            if row[1]:
                self._files.append(row[1])
        if ids:
            self._removed.extend(ids)
            self._faces_changed = True
            self._touch("faces", ids, removed=True)
            self._scrub = True
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
        self._touch("faces", moved)
        # The index maps face ids (unchanged) to subjects through the database, so it stays
        # valid; the generation still moves on, because calibration pairs faces by subject.
        self._faces_changed = True
        return moved

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
        image_id = self._writing().insert(
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
                self.acting.name,
            ),
        )
        self._touch("images", [image_id])
        return image_id

    def add_face(self, subject_id: str, image_id: int, face: Face, model_id: str) -> int:
        """An analysed face of a stored photo, enrolled for a subject; returns its id.

        Its embedding reaches the vector index after the commit.
        """
        data = face.to_dict()
        embedding = np.asarray(face.embedding, dtype=np.float32).reshape(-1)
        face_id = self._writing().insert(
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
        self._touch("faces", [face_id])
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
        now, user = utc_now(), self.acting.name
        # Ids reserved (above every id the table ever gave, deleted rows included) and given
        # explicitly, so that they are known without a round trip per row: executemany cannot
        # return them.
        image_ids = self._writing().reserve_ids("images", n)
        face_ids = np.asarray(self._writing().reserve_ids("faces", n), dtype=np.int64)
        self._writing().insert_rows(
            "images",
            ("id", "sha256", "original_path", "width", "height", "imported_at", "imported_by"),
            (
                (image_id, sha, original_path, width, height, now, user)
                for image_id, sha in zip(image_ids, image_sha256, strict=True)
            ),
        )
        box_json = json.dumps([float(v) for v in box])
        quality_json = json.dumps({"verdict": verdict.value, "reasons": []})
        self._writing().insert_rows(
            "faces",
            (
                "id",
                "subject_id",
                "image_id",
                "box",
                "source",
                "aligned",
                "quality",
                "verdict",
                "model_id",
                "embedding",
                "created_at",
            ),
            (
                (
                    int(face_ids[i]),
                    subject_ids[i],
                    image_ids[i],
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
        self._touch("images", image_ids)
        self._touch("faces", face_ids.tolist())
        return face_ids

    def set_embeddings(self, updates: Iterable[tuple[int, np.ndarray]], model_id: str) -> None:
        """Replace stored embeddings ((face id, vector) each) with ones of `model_id`; the
        vector index is rebuilt by the caller after the commit."""
        rows = [
            (np.asarray(vector, dtype=np.float32).tobytes(), model_id, int(face_id))
            for face_id, vector in updates
        ]
        self._writing().executemany(
            "UPDATE faces SET embedding = ?, model_id = ? WHERE id = ?", rows
        )
        self._touch("faces", (row[2] for row in rows))
        self._faces_changed = True
        self._rebuild_index = True
        self._scrub = True  # the old embeddings' pages must not stay in the WAL


def _attributes_json(attributes: dict[str, Any]) -> str:
    # Most subjects have none: "{}" without json.dumps (a third of a 100,000-subject bulk add).
    return json.dumps(attributes, sort_keys=True) if attributes else "{}"
