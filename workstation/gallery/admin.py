"""Gallery changes beyond enrolment: deleting subjects, recording decisions, re-embedding.

Each is one transaction with its audit event.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from workstation.audit.log import utc_now
from workstation.errors import GalleryError, ImageError, WorkstationError
from workstation.gallery.index_build import rebuild_index
from workstation.gallery.store import Gallery
from workstation.progress import CancelToken, Progress
from workstation.vision.alignment import align_face, crop_box
from workstation.vision.engine import FaceEngine
from workstation.vision.images import load_image

DECISIONS = ("possible_lead", "excluded", "inconclusive")


def delete_subject(gallery: Gallery, subject_id: str, reason: str) -> dict[str, Any]:
    """Remove a subject, its faces, and photos no other face uses. Needs a reason (audited)."""
    reason = (reason or "").strip()
    if not reason:
        raise WorkstationError("deleting a subject needs a reason (it is kept in the audit log)")
    subject = gallery.subject(subject_id)
    if subject is None:
        raise GalleryError(f"subject {subject_id!r} is not in the gallery {gallery.folder}")
    faces = gallery.faces_of(subject_id)
    face_ids = [f.id for f in faces]
    removed_files: list[str] = []
    # Load the index before the act so the deletion updates it in place; a fresh connection
    # (as each GUI worker opens) would otherwise find it stale and rebuild it from scratch.
    index = gallery.index()
    with gallery.transaction() as conn:
        conn.execute("DELETE FROM faces WHERE subject_id = ?", (subject_id,))
        orphans = conn.execute(
            "SELECT id, sha256, stored_path FROM images WHERE id NOT IN "
            "(SELECT DISTINCT image_id FROM faces)"
        ).fetchall()
        conn.executemany("DELETE FROM images WHERE id = ?", [(row[0],) for row in orphans])
        conn.execute("DELETE FROM subjects WHERE id = ?", (subject_id,))
        generation = gallery.bump_generation()
        details = {
            "subject_id": subject_id,
            "name": subject.name,
            "reason": reason,
            "face_ids": face_ids,
            "image_sha256": [row[1] for row in orphans],
        }
        gallery.audit("delete", details)
        removed_files = [row[2] for row in orphans if row[2]]
    for relative in removed_files:
        (gallery.folder / relative).unlink(missing_ok=True)
    index.remove(face_ids)
    index.generation = generation
    index.save()
    return details


@dataclass(frozen=True)
class Decision:
    id: int
    search_id: int
    subject_id: str
    decision: str
    note: str | None
    user: str
    created_at: str
    confirms: int | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def record_decision(
    gallery: Gallery,
    search_id: int,
    subject_id: str,
    decision: str,
    note: str | None = None,
) -> Decision:
    """Record an examiner's decision on one candidate of a search."""
    if decision not in DECISIONS:
        raise WorkstationError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    search = _search_row(gallery, search_id)
    candidates = {c["subject_id"] for c in json.loads(search["candidates"])}
    if subject_id not in candidates:
        raise WorkstationError(f"subject {subject_id!r} is not a candidate of search {search_id}")
    return _insert_decision(gallery, search, subject_id, decision, note, confirms=None)


def confirm_lead(gallery: Gallery, decision_id: int, note: str | None = None) -> Decision:
    """A second examiner confirms a possible lead; the first examiner cannot confirm their own."""
    row = gallery.conn.execute(
        "SELECT id, search_id, subject_id, decision, user FROM decisions WHERE id = ?",
        (decision_id,),
    ).fetchone()
    if row is None:
        raise WorkstationError(f"decision {decision_id} does not exist")
    if row[3] != "possible_lead":
        raise WorkstationError(
            f"decision {decision_id} is {row[3]!r}; only a possible lead can be confirmed"
        )
    if row[4] == gallery.user:
        raise WorkstationError(
            f"decision {decision_id} was recorded by {row[4]}; a second examiner must confirm it"
        )
    search = _search_row(gallery, int(row[1]))
    return _insert_decision(gallery, search, row[2], "confirmed", note, confirms=decision_id)


def decisions_for(gallery: Gallery, search_id: int) -> list[Decision]:
    rows = gallery.conn.execute(
        "SELECT id, search_id, subject_id, decision, note, user, created_at, confirms "
        "FROM decisions WHERE search_id = ? ORDER BY id",
        (search_id,),
    )
    return [Decision(*row) for row in rows]


def _search_row(gallery: Gallery, search_id: int) -> dict[str, Any]:
    rows = list(gallery.db.query("SELECT * FROM searches WHERE id = ?", [search_id]))
    if not rows:
        raise WorkstationError(f"search {search_id} does not exist in {gallery.folder}")
    return rows[0]


def _insert_decision(
    gallery: Gallery,
    search: dict[str, Any],
    subject_id: str,
    decision: str,
    note: str | None,
    confirms: int | None,
) -> Decision:
    created_at = utc_now()
    with gallery.transaction() as conn:
        decision_id = conn.execute(
            "INSERT INTO decisions (search_id, subject_id, decision, note, user, created_at, "
            "confirms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (search["id"], subject_id, decision, note, gallery.user, created_at, confirms),
        ).lastrowid
        assert decision_id is not None
        gallery.audit(
            "decision",
            {
                "decision_id": decision_id,
                "search_id": search["id"],
                "subject_id": subject_id,
                "decision": decision,
                "note": note,
                "confirms": confirms,
            },
            case_id=search["case_id"],
            purpose=search["purpose"],
        )
    return Decision(
        decision_id, search["id"], subject_id, decision, note, gallery.user, created_at, confirms
    )


def reembed(
    gallery: Gallery, engine: FaceEngine, cancel: CancelToken | None = None
) -> Iterator[Progress]:
    """Re-compute every embedding with another model, from the stored photos.

    The same face regions are kept: faces with landmarks are re-aligned from them, drawn boxes
    are re-cropped. New embeddings are computed first; only when all succeed are they written,
    with the new model id and one audit event, in a single transaction, and the index rebuilt.
    Cancelling or any failure leaves the gallery as it was. Returns a summary dict.
    """
    old_model = gallery.model_id
    new_model = str(engine.model)
    faces = list(gallery.all_faces())
    total = len(faces)
    updates: list[tuple[bytes, str, int]] = []
    cache_path, cache_bgr = None, None
    for done, face in enumerate(faces, start=1):
        if cancel is not None and cancel.cancelled:
            yield Progress(done - 1, total, "cancelled; the gallery was not changed")
            return None
        path = gallery.image_file(face)
        if path != cache_path:
            try:
                cache_bgr = load_image(path).bgr
            except ImageError as exc:
                raise GalleryError(
                    f"cannot re-embed face {face.id} of subject {face.subject_id}: {exc}; "
                    "the gallery was not changed"
                ) from exc
            cache_path = path
        assert cache_bgr is not None
        if face.landmarks:
            crop = align_face(cache_bgr, tuple((x, y) for x, y in face.landmarks))
        else:
            from workstation.domain import BBox

            crop = crop_box(cache_bgr, BBox(*face.box))
        vector = engine.embed_aligned([crop])[0]
        updates.append((np.asarray(vector, dtype=np.float32).tobytes(), new_model, face.id))
        yield Progress(done, total, f"re-embedded face {face.id}")
    with gallery.transaction() as conn:
        conn.executemany("UPDATE faces SET embedding = ?, model_id = ? WHERE id = ?", updates)
        gallery.set_meta("model_id", new_model)
        gallery.set_meta("model_name", engine.model.name)
        gallery.set_meta("model_dim", str(engine.model.dim))
        gallery.bump_generation()
        summary = {
            "faces": total,
            "old_model_id": old_model,
            "new_model_id": new_model,
            "at": utc_now(),
        }
        gallery.audit("reembed", summary)
    gallery.forget_index()
    yield from rebuild_index(gallery, reason="re-embedded with a new model")
    return summary
