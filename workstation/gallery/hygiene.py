"""Gallery hygiene: find people enrolled twice under different subject ids, and merge them.

A person enrolled under two ids splits their photos between two candidates and, worse, makes
one of them look like a stranger who scores as high as the person: the FMR calibration counts
them as an impostor pair. `find_duplicate_subjects` lists subject pairs whose faces match above
a strict threshold; a person reviews each pair, and `merge_subjects` joins two subjects (audited,
with a reason). Nothing is merged automatically.

The threshold is chosen from a false-match rate of at most 1 in 100,000 (DUPLICATE_FMR_TARGET):
taken from the gallery's own calibration when it has enough impostor pairs to show a rate that
low (its 95% upper bound), otherwise DEFAULT_DUPLICATE_THRESHOLD (see its comment).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workstation.audit.actions import AuditAction
from workstation.errors import GalleryError, WorkstationError
from workstation.gallery.store import Gallery
from workstation.progress import CancelToken, Progress, Work, drain

DUPLICATE_FMR_TARGET = 1e-5
# Used when no calibration can resolve an FMR of 1e-5 (that needs about 300,000 impostor pairs).
# On the development photos (3,140 impostor pairs, SFace int8) the highest impostor score was
# 0.457; extrapolating the impostor tail puts FMR 1e-5 at 0.48-0.51 (normal, Fisher-z and
# generalised-Pareto fits) and 1e-6 at 0.51-0.56. 0.60 sits above all of them with a margin
# for heavier tails in real galleries (look-alikes, relatives); 96% of same-person pairs there
# still scored above it. benchmarks/accuracy.py prints these; docs/ACCURACY.md has them.
DEFAULT_DUPLICATE_THRESHOLD = 0.60
_ROWS_PER_STEP = 512


@dataclass(frozen=True)
class DuplicatePair:
    """Two subjects whose best-matching faces score above the duplicate threshold."""

    subject_a: str
    subject_b: str
    face_a: int
    face_b: int
    score: float
    name_a: str | None = None
    name_b: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject_a": self.subject_a,
            "subject_b": self.subject_b,
            "name_a": self.name_a,
            "name_b": self.name_b,
            "face_a": self.face_a,
            "face_b": self.face_b,
            "score": round(self.score, 5),
        }


def duplicate_threshold(gallery: Gallery) -> tuple[float, str]:
    """The strict default threshold for this gallery and where it comes from (in words)."""
    model_id = gallery.model_id
    if model_id is not None:
        from workstation.gallery.calibration import calibration_for

        calibration = calibration_for(gallery, model_id)
        measured = calibration.histogram.score_at_fmr(DUPLICATE_FMR_TARGET)
        if calibration.usable and measured is not None:
            return measured, (
                f"score where the FMR is at most 1 in {1 / DUPLICATE_FMR_TARGET:,.0f} (95% upper "
                f"bound) in {calibration.label} ({calibration.impostor_pairs:,} impostor pairs)"
            )
    too_few = (
        f"too few impostor pairs to measure an FMR of 1 in {1 / DUPLICATE_FMR_TARGET:,.0f} here"
    )
    # DEFAULT_DUPLICATE_THRESHOLD is on SFace's cosine scale; another model (a fused ensemble's
    # strangers score about 0.6) gets the score that lies as far into its own strangers' tail.
    if model_id is not None:
        from workstation.calibration.reference import score_like_sface

        equivalent = score_like_sface(model_id, DEFAULT_DUPLICATE_THRESHOLD)
        if equivalent is not None:
            return equivalent[0], f"{too_few}; {equivalent[1]}"
    return DEFAULT_DUPLICATE_THRESHOLD, (
        f"fixed {DEFAULT_DUPLICATE_THRESHOLD:.2f}: {too_few}; above the extrapolated FMR-1e-5 "
        "score of SFace on the development set (docs/ACCURACY.md)"
    )


def scan_duplicate_subjects(
    gallery: Gallery, threshold: float | None = None, cancel: CancelToken | None = None
) -> Work[list[DuplicatePair] | None]:
    """Generator form of `find_duplicate_subjects` (yields progress; None when cancelled)."""
    if threshold is None:
        threshold, _ = duplicate_threshold(gallery)
    faces = gallery.labelled_embeddings()
    if len(faces) < 2:
        return []
    ids, vectors = faces.ids, faces.vectors
    codes: dict[str, int] = {}
    subjects = np.array([codes.setdefault(s, len(codes)) for s in faces.subject_ids])
    names = {code: subject for subject, code in codes.items()}
    best: dict[tuple[int, int], tuple[float, int, int]] = {}
    m = len(ids)
    columns = np.arange(m)
    for start in range(0, m, _ROWS_PER_STEP):
        if cancel is not None and cancel.cancelled:
            yield Progress(start, m, "cancelled")
            return None
        stop = min(m, start + _ROWS_PER_STEP)
        scores = vectors[start:stop] @ vectors.T
        mask = (
            (columns[None, :] > np.arange(start, stop)[:, None])
            & (subjects[None, :] != subjects[start:stop, None])
            & (scores >= threshold)
        )
        for r, c in zip(*np.nonzero(mask), strict=True):
            i, j = start + int(r), int(c)
            a, b = int(subjects[i]), int(subjects[j])
            key = (a, b) if names[a] < names[b] else (b, a)
            face_pair = (int(ids[i]), int(ids[j])) if key[0] == a else (int(ids[j]), int(ids[i]))
            score = float(scores[r, c])
            if key not in best or score > best[key][0]:
                best[key] = (score, *face_pair)
        yield Progress(stop, m, f"compared {stop:,} of {m:,} faces")
    display = {s.id: s.name for s in gallery.subjects()}
    pairs = [
        DuplicatePair(
            names[a], names[b], fa, fb, score, display.get(names[a]), display.get(names[b])
        )
        for (a, b), (score, fa, fb) in best.items()
    ]
    pairs.sort(key=lambda p: (-p.score, p.subject_a, p.subject_b))
    return pairs


def find_duplicate_subjects(
    gallery: Gallery, threshold: float | None = None
) -> list[DuplicatePair]:
    """Pairs of different subjects whose best faces score at least `threshold`, best first.

    `threshold` None uses `duplicate_threshold(gallery)` (strict: FMR at most 1e-5). These are
    candidates for a person to review, not proof that two records are one person.
    """
    found = drain(scan_duplicate_subjects(gallery, threshold))
    return list(found or [])


def merge_subjects(gallery: Gallery, keep_id: str, merge_id: str, reason: str) -> dict[str, Any]:
    """Move every face of `merge_id` to `keep_id` and remove `merge_id`, with an audit event.

    Attributes are merged: `keep_id`'s values win; values of `merge_id` that differ are kept
    under attributes["merged_from"] (with its id and name), so nothing is lost. The name of
    `keep_id` is kept (the merged name is used only when `keep_id` has none). Past searches and
    decisions keep the ids they were made with; the audit event links the two. Returns the
    audit details.
    """
    reason = (reason or "").strip()
    if not reason:
        raise WorkstationError("merging two subjects needs a reason (it is kept in the audit log)")
    if keep_id == merge_id:
        raise WorkstationError(f"cannot merge subject {keep_id!r} into itself")
    # Read and write in one transaction: a face enrolled meanwhile is moved and listed too.
    with gallery.change(AuditAction.MERGE) as change:
        keep = gallery.subject(keep_id)
        merge = gallery.subject(merge_id)
        for wanted, found in ((keep_id, keep), (merge_id, merge)):
            if found is None:
                raise GalleryError(f"subject {wanted!r} is not in the gallery {gallery.folder}")
        assert keep is not None and merge is not None
        attributes = dict(keep.attributes)
        differing = {
            k: v
            for k, v in merge.attributes.items()
            if k != "merged_from" and attributes.get(k) != v
        }
        for key, value in differing.items():
            attributes.setdefault(key, value)
        history = list(attributes.get("merged_from", []))
        history += list(merge.attributes.get("merged_from", []))
        history.append(
            {
                "subject_id": merge_id,
                "name": merge.name,
                "attributes": {k: v for k, v in merge.attributes.items() if k != "merged_from"},
                "reason": reason,
            }
        )
        attributes["merged_from"] = history
        decisions = gallery.decision_count_for_subject(merge_id)
        # Face ids and embeddings are unchanged (search maps face ids to subjects through the
        # database), so the vector index stays valid; the change only moves its generation on.
        moved = change.move_faces(merge_id, keep_id)
        change.update_subject(keep_id, keep.name or merge.name, attributes)
        change.remove_subject(merge_id)
        change.details.update(
            {
                # Ids only: names stay in the rows (the kept subject's merged_from), which
                # a later deletion removes; the log keeps what it is given for ever.
                "keep_subject_id": keep_id,
                "merged_subject_id": merge_id,
                "reason": reason,
                "face_ids_moved": moved,
                "attributes_conflicting": sorted(
                    k
                    for k in differing
                    if k in keep.attributes and keep.attributes[k] != differing[k]
                ),
                "past_decisions_on_merged_id": decisions,
                "faces_after": keep.face_count + len(moved),
            }
        )
    return change.details
