"""Impostor score histograms computed from embeddings and their subject labels (pure numpy).

Every pair of faces of two different subjects is an impostor pair. The gallery feeds the
embeddings (workstation.gallery.calibration); nothing here reads storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from workstation.calibration.histogram import ImpostorHistogram, bin_of
from workstation.progress import CancelToken, Progress, Work

# Galleries with more faces are calibrated on a random sample of this many faces (seed recorded):
# 20,000 faces give about 2 x 10^8 pairs, enough to resolve an FMR of 10^-7.
MAX_CALIBRATION_FACES = 20_000
_ROWS_PER_STEP = 512


def impostor_histogram(
    vectors: np.ndarray,
    subjects: Sequence[Any],
    cancel: CancelToken | None = None,
    max_faces: int = MAX_CALIBRATION_FACES,
    seed: int = 0,
) -> Work[tuple[ImpostorHistogram, dict[str, Any]] | None]:
    """Histogram of the scores of all different-subject pairs (or of a seeded sample of faces).

    Args:
        vectors: n x dim unit-length embeddings (cosine similarity is their dot product).
        subjects: n subject labels (any hashable values), row for row.
        cancel: checked between blocks of rows.
        max_faces: above this many faces, a random sample of this many is used.
        seed: the sample's random seed (recorded in the details).

    Yields progress; returns (histogram, details) or None when cancelled.
    """
    total_faces = len(vectors)
    if len(subjects) != total_faces:
        raise ValueError(f"{len(subjects)} subject labels for {total_faces} embeddings")
    details: dict[str, Any] = {"faces": total_faces, "sampled": False}
    histogram = ImpostorHistogram()
    if total_faces < 2:
        return histogram, details
    codes: dict[Any, int] = {}
    labels = np.fromiter(
        (codes.setdefault(s, len(codes)) for s in subjects), dtype=np.int64, count=total_faces
    )
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if total_faces > max_faces:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(total_faces, size=max_faces, replace=False))
        vectors, labels = vectors[keep], labels[keep]
        details.update(sampled=True, sample_faces=max_faces, seed=seed)
    m = len(vectors)
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
        mask = (columns[None, :] > rows[:, None]) & (labels[None, :] != labels[start:stop, None])
        counts += np.bincount(bin_of(scores[mask]), minlength=len(counts))
        yield Progress(stop, m, f"compared {stop:,} of {m:,} faces with the rest")
    return ImpostorHistogram(counts), details


def cross_histogram(a: np.ndarray, b: np.ndarray) -> ImpostorHistogram:
    """Histogram of the scores of every pair (one face of `a`, one of `b`)."""
    scores = (np.atleast_2d(a) @ np.atleast_2d(b).T).ravel()
    return ImpostorHistogram.from_scores(scores)


def group_histograms(
    vectors: np.ndarray,
    subjects: Sequence[Any],
    groups: Sequence[str | None],
    cancel: CancelToken | None = None,
    max_faces: int = MAX_CALIBRATION_FACES,
    seed: int = 0,
) -> Work[dict[str, ImpostorHistogram] | None]:
    """Within-group impostor histograms: for each group, the pairs of faces of two different
    subjects who both belong to it (workstation.calibration.groups says why within-group).

    Args:
        vectors: n x dim unit-length embeddings.
        subjects: n subject labels, row for row.
        groups: n group labels (None: the subject's group is not recorded; left out).
        cancel: checked between blocks of rows.
        max_faces: a group with more faces is sampled to this many (seeded, as the pooled one).
        seed: the sample's random seed.

    Yields progress; returns {group: histogram} (groups with at least one pair) or None when
    cancelled.
    """
    if not (len(vectors) == len(subjects) == len(groups)):
        raise ValueError(
            f"{len(vectors)} embeddings, {len(subjects)} subject labels, {len(groups)} groups"
        )
    labels = np.array([g if g is not None else "" for g in groups], dtype=object)
    subject_array = np.array(list(subjects), dtype=object)
    found: dict[str, ImpostorHistogram] = {}
    names = sorted({g for g in groups if g is not None})
    for number, name in enumerate(names, start=1):
        rows = np.flatnonzero(labels == name)
        result = yield from impostor_histogram(
            vectors[rows], list(subject_array[rows]), cancel, max_faces, seed
        )
        if result is None:
            return None
        histogram, _details = result
        if histogram.pairs:
            found[name] = histogram
        yield Progress(number, len(names), f"group {number} of {len(names)}: {name}")
    return found
