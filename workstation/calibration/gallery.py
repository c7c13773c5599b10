"""Calibrating scores for one gallery: its own different-subject pairs plus the shipped table.

Every pair of faces enrolled under two different subjects is an impostor pair (assuming no person
was enrolled twice; a duplicate only adds high "impostor" scores, which makes the FMR look higher,
the cautious direction, and `workstation duplicates` finds them). The gallery's pairs come from
the population the investigator actually searches, and their number grows with the square of the
gallery, so they soon outweigh the shipped reference table. The two are pooled by adding counts.

A calibration is stored in the gallery (table `calibrations`, with its histogram) and audited, so
every FMR a search reported can be recomputed later from the calibration id the search recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from workstation.audit.log import canonical_json, utc_now
from workstation.calibration.histogram import FmrEstimate, ImpostorHistogram, bin_of
from workstation.calibration.reference import ReferenceTable, load_reference
from workstation.errors import CalibrationError
from workstation.gallery.store import Gallery
from workstation.progress import CancelToken, Progress, drain

# Below this many impostor pairs in all, the FMR is reported as unknown: a rate from fewer pairs
# says almost nothing (its floor would be 1 in a few hundred).
MIN_IMPOSTOR_PAIRS = 1_000
# Galleries with more faces are calibrated on a random sample of this many faces (seed recorded):
# 20,000 faces give about 2 x 10^8 pairs, enough to resolve an FMR of 10^-7.
MAX_CALIBRATION_FACES = 20_000
# Before a search, a gallery this small is re-calibrated automatically when it changed since its
# last calibration (well under a second); bigger ones need `workstation calibrate`.
AUTO_CALIBRATE_MAX_FACES = 3_000
_ROWS_PER_STEP = 512


@dataclass(frozen=True)
class Calibration:
    """The impostor score distribution used to turn scores into false-match rates."""

    model_id: str
    histogram: ImpostorHistogram
    gallery_pairs: int
    reference: ReferenceTable | None
    calibration_id: int | None = None  # row in the gallery's calibrations table
    created_at: str | None = None
    created_by: str | None = None
    generation: int | None = None
    gallery_faces: int = 0
    gallery_subjects: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    stale: bool = False  # the gallery changed since this was computed
    pending: bool = False  # computed but not yet stored (see store_calibration)

    @property
    def impostor_pairs(self) -> int:
        return self.histogram.pairs

    @property
    def reference_pairs(self) -> int:
        return self.reference.histogram.pairs if self.reference else 0

    @property
    def sources(self) -> list[str]:
        found = []
        if self.gallery_pairs:
            found.append("gallery")
        if self.reference is not None:
            found.append(f"reference:{self.reference.name}")
        return found

    @property
    def usable(self) -> bool:
        return self.impostor_pairs >= MIN_IMPOSTOR_PAIRS

    @property
    def sha256(self) -> str:
        """Hash of what the FMR depends on: the model, the sources and the histogram."""
        import hashlib

        body = {
            "model_id": self.model_id,
            "sources": self.sources,
            "gallery_pairs": self.gallery_pairs,
            "reference_sha256": self.reference.sha256 if self.reference else None,
            "histogram": self.histogram.to_json(),
        }
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()

    @property
    def label(self) -> str:
        """Short id for people: 'calibration 7' or 'reference only'."""
        if self.calibration_id is not None:
            return f"calibration {self.calibration_id}"
        if self.pending:
            return "new calibration (not yet stored)"
        return "reference table only" if self.reference else "none"

    def estimate(self, score: float) -> FmrEstimate | None:
        """FMR at a score, or None when too few impostor pairs are known (FMR unknown)."""
        if not self.usable:
            return None
        return self.histogram.fmr(score)

    def unknown_reason(self) -> str:
        return (
            f"FMR unknown: only {self.impostor_pairs:,} impostor pairs to calibrate from (at "
            f"least {MIN_IMPOSTOR_PAIRS:,} are needed); enrol more subjects and run "
            "`workstation calibrate`"
        )

    def summary(self) -> dict[str, Any]:
        """What a search records about the calibration it used."""
        return {
            "id": self.calibration_id,
            "label": self.label,
            "sha256": self.sha256,
            "model_id": self.model_id,
            "sources": self.sources,
            "impostor_pairs": self.impostor_pairs,
            "gallery_pairs": self.gallery_pairs,
            "reference_pairs": self.reference_pairs,
            "reference_sha256": self.reference.sha256 if self.reference else None,
            "created_at": self.created_at,
            "reason": self.details.get("reason"),
            "gallery_faces_at_calibration": self.gallery_faces,
            "stale": self.stale,
            "usable": self.usable,
        }


def _reference_for(model_id: str) -> ReferenceTable | None:
    return load_reference(model_id)


def reference_only(model_id: str) -> Calibration:
    """The calibration of a gallery that has none of its own yet."""
    reference = _reference_for(model_id)
    histogram = reference.histogram if reference else ImpostorHistogram()
    return Calibration(model_id, histogram, gallery_pairs=0, reference=reference)


def gallery_impostor_histogram(
    gallery: Gallery,
    cancel: CancelToken | None = None,
    max_faces: int = MAX_CALIBRATION_FACES,
    seed: int = 0,
) -> Iterator[Progress]:
    """Histogram of all different-subject face pairs (or of a seeded sample of faces).

    Yields progress; returns (histogram, details) or None when cancelled.
    """
    subject_rows = gallery.conn.execute("SELECT id, subject_id FROM faces ORDER BY id").fetchall()
    codes: dict[str, int] = {}
    subject_of = {int(r[0]): codes.setdefault(r[1], len(codes)) for r in subject_rows}
    id_parts, matrix_parts = [], []
    for ids, matrix in gallery.embeddings():
        id_parts.append(ids)
        matrix_parts.append(matrix)
    total_faces = sum(len(i) for i in id_parts)
    details: dict[str, Any] = {"faces": total_faces, "sampled": False}
    histogram = ImpostorHistogram()
    if total_faces < 2:
        return histogram, details
    ids = np.concatenate(id_parts)
    vectors = np.ascontiguousarray(np.concatenate(matrix_parts), dtype=np.float32)
    if total_faces > max_faces:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(total_faces, size=max_faces, replace=False))
        ids, vectors = ids[keep], vectors[keep]
        details.update(sampled=True, sample_faces=max_faces, seed=seed)
    subjects = np.fromiter((subject_of[int(i)] for i in ids), dtype=np.int64, count=len(ids))
    m = len(ids)
    counts = np.zeros_like(histogram.counts)
    columns = np.arange(m)
    for start in range(0, m, _ROWS_PER_STEP):
        if cancel is not None and cancel.cancelled:
            yield Progress(start, m, "cancelled; no calibration was stored")
            return None
        stop = min(m, start + _ROWS_PER_STEP)
        scores = vectors[start:stop] @ vectors.T
        rows = np.arange(start, stop)
        # Each unordered pair once (column after row), and only pairs of different subjects.
        mask = (columns[None, :] > rows[:, None]) & (
            subjects[None, :] != subjects[start:stop, None]
        )
        counts += np.bincount(bin_of(scores[mask]), minlength=len(counts))
        yield Progress(stop, m, f"compared {stop:,} of {m:,} faces with the rest")
    return ImpostorHistogram(counts), details


def compute_calibration(
    gallery: Gallery,
    model_id: str | None = None,
    reason: str = "requested by user",
    cancel: CancelToken | None = None,
    max_faces: int = MAX_CALIBRATION_FACES,
) -> Iterator[Progress]:
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
    # Read the gallery as one consistent snapshot (a WAL read transaction): an enrolment running
    # on another connection meanwhile must neither mix generations nor fail the search.
    own_snapshot = not gallery.conn.in_transaction
    if own_snapshot:
        gallery.conn.execute("BEGIN")
    try:
        generation = gallery.generation
        faces, subjects = gallery.face_count(), gallery.subject_count()
        result = yield from gallery_impostor_histogram(gallery, cancel, max_faces)
    finally:
        if own_snapshot and gallery.conn.in_transaction:
            gallery.conn.execute("COMMIT")
    if result is None:
        return None
    gallery_histogram, details = result
    reference = _reference_for(model_id)
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
    )


def store_calibration(gallery: Gallery, calibration: Calibration) -> Calibration:
    """Store a computed calibration; call inside the transaction of the act that uses it.

    Returns it with its new id. It is not audited here: the act's own audit event records it.
    """
    if not calibration.pending:
        return calibration
    # A calibration read from an older snapshot (the gallery changed meanwhile) is stored as
    # what it is: its generation says which state it describes, so it reads as stale later.
    row_id = gallery.conn.execute(
        "INSERT INTO calibrations (sha256, created_at, created_by, model_id, sources, "
        "impostor_pairs, gallery_pairs, reference_pairs, generation, gallery_faces, "
        "gallery_subjects, histogram, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            calibration.sha256,
            calibration.created_at or utc_now(),
            calibration.created_by or gallery.user,
            calibration.model_id,
            json.dumps(calibration.sources),
            calibration.impostor_pairs,
            calibration.gallery_pairs,
            calibration.reference_pairs,
            calibration.generation,
            calibration.gallery_faces,
            calibration.gallery_subjects,
            json.dumps(calibration.histogram.to_json(), sort_keys=True),
            json.dumps(calibration.details, sort_keys=True),
        ),
    ).lastrowid
    return replace(calibration, calibration_id=int(row_id or 0), pending=False)


def calibrate(
    gallery: Gallery,
    model_id: str | None = None,
    reason: str = "requested by user",
    cancel: CancelToken | None = None,
    max_faces: int = MAX_CALIBRATION_FACES,
) -> Iterator[Progress]:
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
    with gallery.transaction():
        stored = store_calibration(gallery, calibration)
        gallery.audit("calibrate", {**stored.summary(), **stored.details})
    return stored


def latest_calibration(gallery: Gallery, model_id: str) -> Calibration | None:
    """The most recent stored calibration for this model (None when there is none)."""
    row = gallery.conn.execute(
        "SELECT id, sha256, created_at, created_by, gallery_pairs, reference_pairs, generation, "
        "gallery_faces, gallery_subjects, histogram, details FROM calibrations "
        "WHERE model_id = ? ORDER BY id DESC LIMIT 1",
        (model_id,),
    ).fetchone()
    if row is None:
        return None
    return _from_row(gallery, model_id, row)


def stored_calibration(gallery: Gallery, calibration_id: int) -> Calibration:
    """A stored calibration by id (to recompute what an old search reported)."""
    row = gallery.conn.execute(
        "SELECT id, sha256, created_at, created_by, gallery_pairs, reference_pairs, generation, "
        "gallery_faces, gallery_subjects, histogram, details, model_id FROM calibrations "
        "WHERE id = ?",
        (calibration_id,),
    ).fetchone()
    if row is None:
        raise CalibrationError(f"{gallery.folder}: there is no calibration {calibration_id}")
    return _from_row(gallery, row[11], row[:11])


def _from_row(gallery: Gallery, model_id: str, row: tuple[Any, ...]) -> Calibration:
    histogram = ImpostorHistogram.from_json(json.loads(row[9]))
    reference = _reference_for(model_id) if row[5] else None
    calibration = Calibration(
        model_id=model_id,
        histogram=histogram,
        gallery_pairs=int(row[4]),
        reference=reference,
        calibration_id=int(row[0]),
        created_at=row[2],
        created_by=row[3],
        generation=int(row[6]),
        gallery_faces=int(row[7]),
        gallery_subjects=int(row[8]),
        details=json.loads(row[10]),
        stale=int(row[6]) != gallery.generation,
    )
    if calibration.sha256 != row[1]:
        raise CalibrationError(
            f"{gallery.folder}: stored calibration {row[0]} does not match its checksum "
            "(altered or damaged); run `workstation calibrate`"
        )
    return calibration


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


def fmr_fields(calibration: Calibration, score: float, gallery_faces: int) -> dict[str, Any]:
    """The FMR fields a candidate or comparison shows, with words when it is unknown."""
    estimate = calibration.estimate(score)
    if estimate is None:
        return {
            "fmr": None,
            "fmr_text": calibration.unknown_reason(),
            "expected_strangers": None,
        }
    strangers = estimate.expected_strangers(gallery_faces) if gallery_faces else None
    return {
        "fmr": float(f"{estimate.fmr:.3g}"),
        "fmr_text": estimate.text,
        "expected_strangers": None if strangers is None else float(f"{strangers:.3g}"),
    }


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

    def embeddings_of(subject_id: str) -> np.ndarray:
        rows = gallery.conn.execute(
            "SELECT embedding FROM faces WHERE subject_id = ?", (subject_id,)
        ).fetchall()
        return np.frombuffer(b"".join(r[0] for r in rows), dtype=np.float32).reshape(len(rows), -1)

    own_scores = (embeddings_of(subject_a) @ embeddings_of(subject_b).T).ravel()
    own = ImpostorHistogram(
        np.bincount(bin_of(own_scores), minlength=len(calibration.histogram.counts))
    )
    exceed = max(0, estimate.exceed - own.exceeding(score))
    pairs = estimate.pairs - int(own_scores.size)
    if pairs <= 0:
        return None
    return FmrEstimate.counted(score, exceed, pairs)
