"""Writes of cases and what is done in them: a part of the unit of work, `GalleryChange`.

Cases (their authorisation and status), searches, decisions, comparison sheets, redaction
marks, cold-case watches and their hits, calibrations. See `subject_writes` for why the writes
are split by module.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from workstation.audit.log import utc_now
from workstation.domain import CaseAuthorisation, CaseStatus, Decision
from workstation.errors import CaseStatusError, WorkstationError
from workstation.gallery.case_rules import case_move_refusal
from workstation.gallery.change_part import ChangePart
from workstation.gallery.database import Database

if TYPE_CHECKING:
    pass


# The columns a calibration row is stored with (its id is given by the database).
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


class CaseWrites(ChangePart):
    """Cases, searches, decisions, sheets, redaction marks, watches, calibrations (a part of
    `GalleryChange`)."""

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

    def add_calibration(self, row: dict[str, Any]) -> int:
        """Store a calibration row (columns of the calibrations table, JSON already as text);
        returns its id."""
        calibration_id = insert_calibration(self._writing(), row)
        self._touch("calibrations", [calibration_id])
        return calibration_id


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
