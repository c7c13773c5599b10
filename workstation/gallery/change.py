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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from workstation.audit.actions import AuditAction
from workstation.audit.log import AuditEvent, audited_action, new_event, utc_now
from workstation.audit.roles import Role, refusal
from workstation.audit.rows import COVERED_LATER, RowEntry, row_sha256, rows_digest
from workstation.domain import (
    CaseAuthorisation,
    CaseStatus,
    Decision,
    Face,
    ModelId,
    Verdict,
    examiner_key,
)
from workstation.errors import CaseStatusError, GalleryError, NotPermittedError, WorkstationError
from workstation.gallery import audit_store
from workstation.gallery.case_rules import case_act_refusal, case_move_refusal
from workstation.gallery.database import Database
from workstation.gallery.photo_copies import clear_busy, mark_busy, unlink_durably

if TYPE_CHECKING:
    from workstation.gallery.examiners import RegisteredExaminer
    from workstation.gallery.store import Gallery


class GalleryChange:
    """One transaction of writes, with its audit events; see the module docstring."""

    def __init__(
        self,
        gallery: Gallery,
        conn: Database,
        save_index: bool,
        acting: RegisteredExaminer,
    ) -> None:
        self.gallery = gallery
        self._conn = conn
        self._save_index = save_index
        # The registered examiner acting (checked when the change opened): the name every row
        # and event records, and the roles every act is held to.
        self.acting = acting
        # Rows written since the last event, {(table, row id): removed?}: the next event
        # carries their hashes (a removed row is listed with no hash).
        self._rows: dict[tuple[str, str], bool] = {}
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
        # Personal data removed (faces, subjects, embeddings replaced): after the commit the WAL
        # is checkpointed and truncated, so no old copy of those pages stays in the -wal file.
        self._scrub = False
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
        if self._rows:
            self.rollback()
            raise RuntimeError(
                "rows were written after the change's last audit event; record the act after "
                "writing its rows"
            )
        generation = self.generation_before
        try:
            if self._faces_changed:
                generation = self.gallery._bump_generation()
                if self._added or self._removed:
                    self.gallery._before_commit(self._added, self._removed)
            # A crash between the commit and the unlinks leaves copies no row names: the marker
            # tells the next opening to look for them.
            busy = mark_busy(self.gallery.folder) if self._files else None
            self._conn.commit()
        except BaseException:
            self.rollback()
            raise
        self.open = False
        self.gallery._change = None
        # The new head, signed, to the witnesses outside the gallery (never fails the act).
        self.gallery.witness_head()
        # Unlinked and the folder fsynced (overwriting first would not erase on an SSD: see
        # gallery.photo_copies); no row names them any more.
        unlink_durably(self.gallery.folder / relative for relative in self._files)
        clear_busy(busy)
        if self._faces_changed:
            self.gallery._sync_index(
                self.generation_before,
                generation,
                self._added,
                self._removed,
                rebuild=self._rebuild_index,
                save=self._save_index,
            )
        if self._scrub:
            self.gallery.checkpoint_wal()
        return generation

    def rollback(self) -> None:
        """Undo everything written through this change; the index and files are untouched."""
        if self.open:
            self._conn.rollback()
        self.open = False
        self.gallery._change = None

    @contextmanager
    def step(self, what: str = "the change") -> Iterator[None]:
        """A part of the change that is undone alone when it fails (a savepoint): its rows,
        audit events and pending index updates go; the rest of the change stays.

        A database refusal inside is raised as GalleryError naming `what` and the database's
        reason.
        """
        self._require_open()
        self._steps += 1
        name = f"step_{self._steps}"
        mark = (len(self._added), len(self._removed), len(self._files), len(self.events))
        changed, wrote, rows = self._faces_changed, self._wrote, dict(self._rows)
        self._conn.savepoint(name)
        try:
            yield
        except BaseException as exc:
            self._conn.rollback_to(name)
            del self._added[mark[0] :], self._removed[mark[1] :], self._files[mark[2] :]
            del self.events[mark[3] :]
            self._faces_changed, self._wrote, self._rows = changed, wrote, rows
            if isinstance(exc, self._conn.Error):
                raise GalleryError(f"the gallery database refused {what} ({exc})") from exc
            raise
        self._conn.release(name)

    def _require_open(self) -> None:
        if not self.open:
            raise RuntimeError("this gallery change has already been committed or rolled back")

    def _writing(self) -> Database:
        """The connection, for a write (marks the change as one that must be audited)."""
        self._require_open()
        self._wrote = True
        return self._conn

    def _touch(self, table: str, row_ids: Iterable[Any], removed: bool = False) -> None:
        """Note rows written (or removed): the next event carries their hashes."""
        for row_id in row_ids:
            self._rows[(table, str(row_id))] = removed

    def touch_every_row(self, tables: Iterable[str] | None = None) -> int:
        """Note every covered row (of `tables`, default all) as written: an adopted gallery's
        baseline; returns how many."""
        before = len(self._rows)
        for table in audit_store.ROW_KEYS if tables is None else tables:
            key = audit_store.ROW_KEYS[table]
            ids = [str(r[0]) for r in self._conn.execute(f'SELECT "{key}" FROM {table}')]
            self._touch(table, (i for i in ids if not audit_store.uncovered(table, i)))
        return len(self._rows) - before

    def cover_later_tables(self, keys: Iterable[str]) -> dict[str, int]:
        """Hash, as found, the rows of the tables the chain came to cover later (`keys` of
        rows.COVERED_LATER) and mark the gallery as covering them; rows hashed per table."""
        counts: dict[str, int] = {}
        for key in keys:
            for table in COVERED_LATER[key]:
                counts[table] = self.touch_every_row([table])
            self.gallery._set_meta(key, utc_now())
            self._touch("meta", [key])
        self._wrote = True
        return counts

    def _row_entries(self) -> list[RowEntry]:
        """The hashes of the rows written since the last event, read back as stored."""
        by_table: dict[str, list[str]] = {}
        entries: list[RowEntry] = []
        for (table, row_id), removed in self._rows.items():
            if removed:
                entries.append((table, row_id, None))
            else:
                by_table.setdefault(table, []).append(row_id)
        for table, ids in by_table.items():
            found = audit_store.rows_by_id(self._conn, table, ids)
            for row_id in ids:
                row = found.get(row_id)
                # Written and removed within the act: listed as removed.
                entries.append((table, row_id, None if row is None else row_sha256(table, row)))
        return entries

    # ------------------------------------------------------------------ audit
    def record(
        self,
        action: AuditAction,
        details: dict[str, Any],
        case_id: str | None = None,
        purpose: str | None = None,
    ) -> AuditEvent:
        """Append an audit event to this change (it commits with the change's rows).

        The examiner's roles must allow the act (NotPermittedError naming the examiner, the
        role needed and the act); the event carries the hashes of the rows written since the
        previous event and is signed with the examiner's key.
        """
        self._require_open()
        action = AuditAction(audited_action(action))
        problem = refusal(self.acting.name, self.acting.roles, action, details)
        if problem is not None:
            raise NotPermittedError(problem)
        if case_id is not None:
            # Every act on a case passes here: a closed or archived case refuses what would
            # change it, whichever surface or function asked (see workstation.gallery.cases).
            case_problem = case_act_refusal(case_id, self._case_status(case_id), action)
            if case_problem is not None:
                raise CaseStatusError(case_problem)
        entries = self._row_entries()
        event = new_event(
            audit_store.chain_head(self._conn),
            user=self.acting.name,
            action=action,
            details=details,
            case_id=case_id,
            purpose=purpose,
            signer=self.gallery.examiner.key(),
            rows=rows_digest(entries),
        )
        audit_store.insert_event(self._conn, event, entries)
        self._rows.clear()
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
        self._touch("meta", ("model_id", "model_name", "model_dim"))

    # ------------------------------------------------------------------ subjects
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

    # ------------------------------------------------------------------ cases, decisions
    def ensure_case(self, case_id: str, purpose: str) -> bool:
        """Create the case if new; True when it was created."""
        created = insert_case(self._writing(), case_id, purpose, self.acting.name)
        if created:
            self._touch("cases", [case_id])
        return created

    def authorise_case(self, case_id: str, authorisation: CaseAuthorisation) -> None:
        """Record who approved the case's searches, when, and the approval's reference."""
        self._writing().execute(
            "UPDATE cases SET authorised_by = ?, authorised_at = ?, authorisation = ? WHERE id = ?",
            (authorisation.by, authorisation.at, authorisation.reference, case_id),
        )
        self._touch("cases", [case_id])

    def _case_status(self, case_id: str) -> CaseStatus:
        row = self._conn.execute("SELECT status FROM cases WHERE id = ?", (case_id,)).fetchone()
        return CaseStatus(row[0]) if row is not None and row[0] else CaseStatus.OPEN

    def set_case_status(
        self, case_id: str, status: CaseStatus, reason: str, retain_until: str | None
    ) -> CaseStatus:
        """Close, reopen or archive a case (the caller records the matching event); returns the
        status it had. The move is checked here, under the write lock, against the stored
        status: an archived case never moves again (CaseStatusError naming the case)."""
        row = self._writing().execute("SELECT id FROM cases WHERE id = ?", (case_id,)).fetchone()
        if row is None:
            raise WorkstationError(f"case {case_id!r} has no searches in the gallery")
        previous = self._case_status(case_id)
        problem = case_move_refusal(case_id, previous, status)
        if problem is not None:
            raise CaseStatusError(problem)
        self._writing().execute(
            "UPDATE cases SET status = ?, status_changed_at = ?, status_changed_by = ?, "
            "status_reason = ?, retain_until = ? WHERE id = ?",
            (
                None if status is CaseStatus.OPEN else status.value,
                utc_now(),
                self.acting.name,
                reason,
                retain_until,
                case_id,
            ),
        )
        self._touch("cases", [case_id])
        return previous

    # ------------------------------------------------------------------ watches
    def add_watch(self, row: dict[str, Any], embedding: np.ndarray) -> int:
        """Store a watch (columns of the watches table but id/embedding/created_*); its id."""
        columns = dict(row)
        columns["embedding"] = np.asarray(embedding, dtype=np.float32).tobytes()
        columns["created_at"] = utc_now()
        columns["created_by"] = self.acting.name
        names = ", ".join(columns)
        marks = ", ".join("?" * len(columns))
        watch_id = self._writing().insert(
            f"INSERT INTO watches ({names}) VALUES ({marks})", list(columns.values())
        )
        self._touch("watches", [watch_id])
        return watch_id

    def end_watches(self, watch_ids: Sequence[int], reason: str) -> None:
        """End watches: their probe embedding is deleted (NULL), when and why are kept."""
        now = utc_now()
        for watch_id in watch_ids:
            cursor = self._writing().execute(
                "UPDATE watches SET embedding = NULL, ended_at = ?, ended_by = ?, "
                "end_reason = ? WHERE id = ? AND ended_at IS NULL",
                (now, self.acting.name, reason, int(watch_id)),
            )
            # A watch that had already ended is not rewritten, nor re-vouched for.
            if cursor.rowcount:
                self._touch("watches", [watch_id])

    def watch_searched(self, watch_id: int, checked_face_id: int) -> None:
        """Faces up to `checked_face_id` have been searched for this watch."""
        self._writing().execute(
            "UPDATE watches SET checked_face_id = ? WHERE id = ?",
            (int(checked_face_id), int(watch_id)),
        )
        self._touch("watches", [watch_id])

    def add_watch_hit(
        self,
        watch_id: int,
        search_id: int,
        subject_id: str,
        face_id: int,
        score: float,
        fmr: float | None,
        fmr_text: str | None,
    ) -> int:
        hit_id = self._writing().insert(
            "INSERT INTO watch_hits (watch_id, search_id, subject_id, face_id, score, fmr, "
            "fmr_text, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (watch_id, search_id, subject_id, face_id, round(score, 5), fmr, fmr_text, utc_now()),
        )
        self._touch("watch_hits", [hit_id])
        return hit_id

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
        decision_id = self._writing().insert(
            'INSERT INTO decisions (search_id, subject_id, decision, note, "user", created_at, '
            "confirms, key_fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                search_id,
                subject_id,
                Decision(decision).value,
                note,
                self.acting.name,
                created_at,
                confirms,
                self.acting.fingerprint,
            ),
        )
        self._touch("decisions", [decision_id])
        return decision_id, created_at

    def add_comparison_sheet(
        self, search_id: int, subject_id: str, role: str, verifies: int | None, sheet_json: str
    ) -> tuple[int, str]:
        """Store one version of this examiner's ACE-V sheet; returns (its id, its time)."""
        created_at = utc_now()
        sheet_id = self._writing().insert(
            'INSERT INTO comparison_sheets (search_id, subject_id, role, verifies, "user", '
            "key_fingerprint, created_at, sheet) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                search_id,
                subject_id,
                role,
                verifies,
                self.acting.name,
                self.acting.fingerprint,
                created_at,
                sheet_json,
            ),
        )
        self._touch("comparison_sheets", [sheet_id])
        return sheet_id, created_at

    def add_redaction_mark(
        self,
        search_id: int,
        case_id: str,
        image_ref: str,
        kind: str,
        box: tuple[float, float, float, float],
        note: str | None,
    ) -> tuple[int, str]:
        """Store one redaction mark by this examiner; returns (its id, its time)."""
        created_at = utc_now()
        x, y, w, h = (float(v) for v in box)
        mark_id = self._writing().insert(
            "INSERT INTO redaction_marks (search_id, case_id, image_ref, kind, x, y, w, h, note, "
            '"user", key_fingerprint, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
            (
                search_id,
                case_id,
                image_ref,
                kind,
                x,
                y,
                w,
                h,
                note,
                self.acting.name,
                self.acting.fingerprint,
                created_at,
            ),
        )
        self._touch("redaction_marks", [mark_id])
        return mark_id, created_at

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
        search_id = self._writing().insert(
            'INSERT INTO searches (case_id, purpose, "user", created_at, probe_path, '
            "probe_sha256, face, model_id, params, gallery_size, candidates, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                case_id,
                purpose,
                self.acting.name,
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
        self._touch("searches", [search_id])
        return search_id

    # ------------------------------------------------------------------ calibrations
    def add_calibration(self, row: dict[str, Any]) -> int:
        """Store a calibration row (columns of the calibrations table, JSON already as text);
        returns its id."""
        calibration_id = insert_calibration(self._writing(), row)
        self._touch("calibrations", [calibration_id])
        return calibration_id

    # ------------------------------------------------------------------ examiners, settings
    def add_examiner(
        self, fingerprint: str, name: str, public_key: str, roles: frozenset[Role]
    ) -> None:
        """Register an examiner's key (its event must carry the same key: see examiners.py)."""
        self._writing().execute(
            "INSERT INTO examiners (fingerprint, name, name_key, public_key, roles, "
            "registered_at, registered_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                fingerprint,
                name,
                examiner_key(name),
                public_key,
                json.dumps(sorted(r.value for r in roles)),
                utc_now(),
                self.acting.name,
            ),
        )
        self._touch("examiners", [fingerprint])

    def revoke_examiner(self, fingerprint: str, reason: str) -> None:
        self._writing().execute(
            "UPDATE examiners SET revoked_at = ?, revoked_by = ?, revoked_reason = ? "
            "WHERE fingerprint = ? AND revoked_at IS NULL",
            (utc_now(), self.acting.name, reason, fingerprint),
        )
        self._touch("examiners", [fingerprint])

    def set_examiner_roles(self, fingerprint: str, roles: frozenset[Role]) -> None:
        self._writing().execute(
            "UPDATE examiners SET roles = ? WHERE fingerprint = ?",
            (json.dumps(sorted(r.value for r in roles)), fingerprint),
        )
        self._touch("examiners", [fingerprint])

    def set_gallery_setting(self, key: str, value: str | None) -> None:
        """Set (or, with None, remove) a setting of the gallery itself."""
        if value is None:
            self._writing().execute("DELETE FROM gallery_settings WHERE key = ?", (key,))
            self._touch("gallery_settings", [key], removed=True)
            return
        self._writing().execute(
            "INSERT INTO gallery_settings (key, value, changed_at, changed_by) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "changed_at = excluded.changed_at, changed_by = excluded.changed_by",
            (key, value, utc_now(), self.acting.name),
        )
        self._touch("gallery_settings", [key])


def _attributes_json(attributes: dict[str, Any]) -> str:
    # Most subjects have none: "{}" without json.dumps (a third of a 100,000-subject bulk add).
    return json.dumps(attributes, sort_keys=True) if attributes else "{}"


def insert_case(conn: Database, case_id: str, purpose: str, user: str) -> bool:
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


def insert_calibration(conn: Database, row: dict[str, Any]) -> int:
    """Store a calibration row inside the caller's transaction; returns its id."""
    missing = set(CALIBRATION_COLUMNS) - set(row)
    if missing:
        raise ValueError(f"a calibration row needs {', '.join(sorted(missing))}")
    return conn.insert(
        f"INSERT INTO calibrations ({', '.join(CALIBRATION_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(CALIBRATION_COLUMNS))})",
        [row[column] for column in CALIBRATION_COLUMNS],
    )
