"""Gallery changes beyond enrolment: deleting subjects and re-embedding.

Each is one unit of work (`Gallery.change`) with its audit event. Decisions are in
workstation.gallery.decisions, merging in workstation.gallery.hygiene.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from workstation.audit.actions import AuditAction
from workstation.audit.log import utc_now
from workstation.domain import BBox
from workstation.errors import GalleryError, ImageError, WorkstationError
from workstation.gallery.index_build import rebuild_index
from workstation.gallery.store import Gallery
from workstation.progress import CancelToken, Progress
from workstation.vision.engine import FaceEngine


def delete_subject(gallery: Gallery, subject_id: str, reason: str) -> dict[str, Any]:
    """Remove a subject, its faces, and photos no other face uses. Needs a reason (audited)."""
    reason = (reason or "").strip()
    if not reason:
        raise WorkstationError("deleting a subject needs a reason (it is kept in the audit log)")
    with gallery.change(AuditAction.DELETE) as change:
        subject = gallery.subject(subject_id)
        if subject is None:
            raise GalleryError(f"subject {subject_id!r} is not in the gallery {gallery.folder}")
        face_ids, removed_sha256 = change.remove_subject(subject_id)
        change.details.update(
            subject_id=subject_id,
            name=subject.name,
            reason=reason,
            face_ids=face_ids,
            image_sha256=removed_sha256,
        )
    return change.details


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
    updates: list[tuple[int, np.ndarray]] = []
    cache_path, cache_bgr = None, None
    for done, face in enumerate(faces, start=1):
        if cancel is not None and cancel.cancelled:
            yield Progress(done - 1, total, "cancelled; the gallery was not changed")
            return None
        path = gallery.image_file(face)
        if path != cache_path:
            try:
                # Checked against its recorded SHA-256: never re-embed an altered photo.
                cache_bgr = gallery.load_photo(face).bgr
            except ImageError as exc:
                raise GalleryError(
                    f"cannot re-embed face {face.id} of subject {face.subject_id}: {exc}; "
                    "the gallery was not changed"
                ) from exc
            cache_path = path
        assert cache_bgr is not None
        landmarks = tuple((x, y) for x, y in face.landmarks) if face.landmarks else None
        vector = engine.embed_faces(cache_bgr, [(BBox(*face.box), landmarks)])[0]
        updates.append((face.id, np.asarray(vector, dtype=np.float32)))
        yield Progress(done, total, f"re-embedded face {face.id}")
    summary = {"faces": total, "old_model_id": old_model, "new_model_id": new_model}
    with gallery.change(AuditAction.REEMBED, summary) as change:
        change.set_embeddings(updates, new_model)
        change.set_model(engine.model)
        change.details["at"] = utc_now()
    yield from rebuild_index(gallery, reason="re-embedded with a new model")
    return change.details
