"""Calibrating scores for one gallery: its own different-subject pairs plus the shipped table.

Every pair of faces enrolled under two different subjects is an impostor pair (assuming no person
was enrolled twice; a duplicate only adds high "impostor" scores, which makes the FMR look higher,
the cautious direction, and `workstation duplicates` finds them). The gallery's pairs come from
the population the investigator actually searches, and their number grows with the square of the
gallery, so they soon outweigh the shipped reference table. The two are pooled by adding counts.

A calibration is stored in the gallery (table `calibrations`, with its histogram) and audited, so
every FMR a search reported can be recomputed later from the calibration id the search recorded.
The maths and the calibration record are in workstation.calibration (which knows no gallery);
this module feeds it the gallery's embeddings and stores and loads what it computes.
"""

from __future__ import annotations

from dataclasses import replace

from workstation.audit.actions import AuditAction
from workstation.audit.log import utc_now
from workstation.calibration.groups import group_of
from workstation.calibration.histogram import FmrEstimate, ImpostorHistogram
from workstation.calibration.impostors import (
    MAX_CALIBRATION_FACES,
    cross_histogram,
    group_histograms,
    impostor_histogram,
)
from workstation.calibration.record import Calibration, reference_only
from workstation.calibration.reference import load_reference
from workstation.errors import CalibrationError
from workstation.gallery.change import GalleryChange
from workstation.gallery.store import Gallery
from workstation.progress import CancelToken, Progress, Work, drain

# Before a search, a gallery this small is re-calibrated automatically when it changed since its
# last calibration (well under a second); bigger ones need `workstation calibrate`.
AUTO_CALIBRATE_MAX_FACES = 3_000


def compute_calibration(
    gallery: Gallery,
    model_id: str | None = None,
    reason: str = "requested by user",
    cancel: CancelToken | None = None,
    max_faces: int = MAX_CALIBRATION_FACES,
) -> Work[Calibration | None]:
    """Compute (not store) the gallery's calibration: its pairs pooled with the shipped table.

    Yields progress; returns a pending Calibration (None when cancelled). Store it with
    `store_calibration` inside the transaction of the act that uses it, or use `calibrate`.
    """
    model_id = model_id or gallery.model_id
    if model_id is None:
        raise CalibrationError(
            f"{gallery.folder}: the gallery is empty and bound to no model; enrol photos first"
        )
    if gallery.model_id is not None and gallery.model_id != model_id:
        raise CalibrationError(
            f"{gallery.folder}: the gallery was built with another model; scores of one model "
            "cannot calibrate another"
        )
    # Read the gallery as one consistent snapshot: an enrolment running on another connection
    # meanwhile must neither mix generations nor fail the search.
    with gallery.read_snapshot():
        generation = gallery.generation
        faces, subjects = gallery.face_count(), gallery.subject_count()
        labelled = gallery.labelled_embeddings()
        attributes = gallery.subject_attributes()
    result = yield from impostor_histogram(
        labelled.vectors, labelled.subject_ids, cancel, max_faces
    )
    if result is None:
        return None
    gallery_histogram, details = result
    group_of_subject = {subject: group_of(values) for subject, values in attributes.items()}
    face_groups = [group_of_subject.get(s) for s in labelled.subject_ids]
    groups: dict[str, ImpostorHistogram] = {}
    if any(g is not None for g in face_groups):
        found = yield from group_histograms(
            labelled.vectors, labelled.subject_ids, face_groups, cancel, max_faces
        )
        if found is None:
            return None
        groups = found
    reference = load_reference(model_id)
    histogram = gallery_histogram + reference.histogram if reference else gallery_histogram
    return Calibration(
        model_id=model_id,
        histogram=histogram,
        gallery_pairs=gallery_histogram.pairs,
        reference=reference,
        created_at=utc_now(),
        created_by=gallery.user,
        generation=generation,
        gallery_faces=faces,
        gallery_subjects=subjects,
        details={**details, "reason": reason},
        pending=True,
        groups=groups,
    )


def store_calibration(target: Gallery | GalleryChange, calibration: Calibration) -> Calibration:
    """Store a computed calibration in the act that uses it: through that act's
    `GalleryChange`, or inside the gallery's open `transaction()`.

    Returns it with its new id. It is not audited here: the act's own audit event records it.
    """
    if not calibration.pending:
        return calibration
    # A calibration read from an older snapshot (the gallery changed meanwhile) is stored as
    # what it is: its generation says which state it describes, so it reads as stale later.
    user = target.gallery.user if isinstance(target, GalleryChange) else target.user
    row = replace(
        calibration,
        created_at=calibration.created_at or utc_now(),
        created_by=calibration.created_by or user,
    ).to_row()
    row_id = target.add_calibration(row)
    return replace(calibration, calibration_id=row_id, pending=False)


def calibrate(
    gallery: Gallery,
    model_id: str | None = None,
    reason: str = "requested by user",
    cancel: CancelToken | None = None,
    max_faces: int = MAX_CALIBRATION_FACES,
) -> Work[Calibration | None]:
    """Recompute the gallery's calibration, store it and audit it (one transaction).

    Yields progress; returns the stored Calibration (None when cancelled).
    """
    computed = yield from compute_calibration(gallery, model_id, reason, cancel, max_faces)
    if computed is None:
        return None
    stored = commit_calibration(gallery, computed)
    yield Progress(1, 1, f"stored {stored.label}: {stored.impostor_pairs:,} impostor pairs")
    return stored


def commit_calibration(gallery: Gallery, calibration: Calibration) -> Calibration:
    """Store a pending calibration with its own "calibrate" audit event (one transaction)."""
    if not calibration.pending:
        return calibration
    with gallery.change() as change:
        stored = store_calibration(change, calibration)
        change.record(AuditAction.CALIBRATE, {**stored.summary(), **stored.details})
    return stored


def latest_calibration(gallery: Gallery, model_id: str) -> Calibration | None:
    """The most recent stored calibration for this model (None when there is none)."""
    row = gallery.latest_calibration_row(model_id)
    if row is None:
        return None
    return Calibration.from_row(row, gallery.generation, str(gallery.folder))


def stored_calibration(gallery: Gallery, calibration_id: int) -> Calibration:
    """A stored calibration by id (to recompute what an old search reported)."""
    row = gallery.calibration_row(calibration_id)
    if row is None:
        raise CalibrationError(f"{gallery.folder}: there is no calibration {calibration_id}")
    return Calibration.from_row(row, gallery.generation, str(gallery.folder))


def calibration_for(gallery: Gallery, model_id: str, auto: bool = True) -> Calibration:
    """The calibration a search or comparison should use now.

    The latest stored one when it is up to date. A small gallery that changed since is
    re-calibrated on the spot: the result is pending, and the caller stores it with
    `store_calibration` inside its own transaction, so that the act's audit event records it
    (one event per search). A big gallery keeps its last calibration, marked stale; a gallery
    with no calibration of its own uses the shipped reference table alone.
    """
    latest = latest_calibration(gallery, model_id)
    if latest is not None and not latest.stale:
        return latest
    bound_ok = gallery.model_id in (None, model_id)
    faces = gallery.face_count()
    if auto and bound_ok and 2 <= faces <= AUTO_CALIBRATE_MAX_FACES:
        reason = (
            "automatic: first calibration of this gallery"
            if latest is None
            else "automatic: the gallery changed since the last calibration"
        )
        computed = drain(compute_calibration(gallery, model_id, reason=reason))
        if computed is not None:
            return computed
    if latest is not None:
        return latest
    return reference_only(model_id)


def fmr_excluding_pair(
    gallery: Gallery, calibration: Calibration, subject_a: str, subject_b: str, score: float
) -> FmrEstimate | None:
    """The FMR at `score` among strangers other than these two subjects.

    For a possible duplicate (one person enrolled twice), the gallery's impostor pairs include
    the two subjects' own face pairs, which score as high as the pair being judged: they must
    not vouch for themselves. Their pairs are taken out of the count when the calibration holds
    every gallery pair of the gallery as it is now; otherwise the plain estimate is returned.
    """
    estimate = calibration.estimate(score)
    exact_snapshot = (
        calibration.gallery_pairs > 0
        and not calibration.details.get("sampled")
        and calibration.generation == gallery.generation
    )
    if estimate is None or not exact_snapshot:
        return estimate
    own = cross_histogram(
        gallery.subject_embeddings(subject_a), gallery.subject_embeddings(subject_b)
    )
    exceed = max(0, estimate.exceed - own.exceeding(score))
    pairs = estimate.pairs - own.pairs
    if pairs <= 0:
        return None
    return FmrEstimate.counted(score, exceed, pairs)
