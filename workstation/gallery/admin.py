"""Gallery changes beyond enrolment: deleting subjects (one, or a retention purge) and
re-embedding.

Each is one unit of work (`Gallery.change`) with its audit event. Decisions are in
workstation.gallery.decisions, merging in workstation.gallery.hygiene.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from workstation.audit.actions import AuditAction
from workstation.audit.log import utc_now
from workstation.domain import BBox
from workstation.errors import GalleryError, ImageError, WorkstationError
from workstation.gallery.index_build import rebuild_index
from workstation.gallery.reads import Read, record_read, require_read_case, retention_consulted
from workstation.gallery.store import Gallery
from workstation.gallery.subject_reads import SubjectInfo
from workstation.progress import CancelToken, Progress, Work
from workstation.vision.engine import FaceEngine


def delete_subject(gallery: Gallery, subject_id: str, reason: str) -> dict[str, Any]:
    """Remove a subject, its faces, and photos no other face uses. Needs a reason (audited).

    Deleted means deleted (issue 12 item 1): the rows go (SQLite's secure_delete zeroes them),
    the faces' vectors are overwritten in every index file, the photo copies are unlinked, and
    the WAL is checkpointed so no old page lingers there. The audit event keeps what the law
    needs: the subject id, the reason, who and when; never the name, a photo, its hash or path.
    """
    return delete_subjects(gallery, [subject_id], reason, AuditAction.DELETE)


def delete_subjects(
    gallery: Gallery,
    subject_ids: Sequence[str],
    reason: str,
    action: AuditAction = AuditAction.DELETE,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Remove several subjects in one audited act (see `delete_subject`); returns its details."""
    reason = (reason or "").strip()
    if not reason:
        raise WorkstationError("deleting a subject needs a reason (it is kept in the audit log)")
    wanted = list(dict.fromkeys(subject_ids))
    with gallery.change(action) as change:
        face_ids: list[int] = []
        photos = 0
        for subject_id in wanted:
            if gallery.subject(subject_id) is None:
                raise GalleryError(f"subject {subject_id!r} is not in the gallery {gallery.folder}")
            faces, removed_sha256 = change.remove_subject(subject_id)
            face_ids += faces
            photos += len(removed_sha256)
        details: dict[str, Any] = (
            {"subject_id": wanted[0]} if action == AuditAction.DELETE and len(wanted) == 1 else {}
        )
        details.update(
            subject_ids=wanted,
            reason=reason,
            face_ids=face_ids,
            photos_removed=photos,
            **(extra or {}),
        )
        change.details.update(details)
    return change.details


def subjects_enrolled_before(gallery: Gallery, cutoff: datetime) -> list[SubjectInfo]:
    """The subjects created before `cutoff` (a retention period's start), oldest first."""
    return gallery.subjects_created_before(cutoff.astimezone(UTC).isoformat())


def apply_retention(
    gallery: Gallery, older_than_days: int, reason: str, dry_run: bool = False
) -> tuple[list[SubjectInfo], dict[str, Any] | None]:
    """Delete every subject enrolled more than `older_than_days` days ago, in one audited act
    listing their ids (`AuditAction.RETENTION`). With `dry_run`, only list them.

    Returns (the subjects that go or would go, the audit details or None)."""
    if older_than_days < 0:
        raise WorkstationError("--older-than needs a number of days of 0 or more")
    reason = (reason or "").strip()
    if not reason:
        raise WorkstationError("a retention purge needs a reason (it is kept in the audit log)")
    cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
    going = subjects_enrolled_before(gallery, cutoff)
    if dry_run or not going:
        return going, None
    details = delete_subjects(
        gallery,
        [subject.id for subject in going],
        reason,
        AuditAction.RETENTION,
        extra={"older_than_days": older_than_days, "enrolled_before": cutoff.isoformat()},
    )
    return going, details


def retention_list(
    gallery: Gallery, older_than_days: int, case_id: str | None, purpose: str | None
) -> list[SubjectInfo]:
    """The subjects a retention purge of `older_than_days` would delete, the listing recorded
    first (it names subjects: a consultation, `Read.RETENTION_LIST`, with the period, the ids
    and the face count) against `case_id` and `purpose`; CaseRequiredError without them. The
    command line's `retention --dry-run` and the app's retention dialog both list through it."""
    case_id, purpose = require_read_case(case_id, purpose, Read.RETENTION_LIST)
    going, _ = apply_retention(gallery, older_than_days, "listing", dry_run=True)
    record_read(
        gallery, Read.RETENTION_LIST, retention_consulted(older_than_days, going), case_id, purpose
    )
    return going


def reembed(
    gallery: Gallery, engine: FaceEngine, cancel: CancelToken | None = None
) -> Work[dict[str, Any] | None]:
    """Re-compute every embedding with another model, from the stored photos.

    The same face regions are kept: faces with landmarks are re-aligned from them, drawn boxes
    are re-cropped. New embeddings are computed first; only when all succeed are they written,
    with the new model id and one audit event, in a single transaction, and the index rebuilt.
    Cancelling or any failure leaves the gallery as it was. Returns a summary dict (None when
    cancelled).
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
