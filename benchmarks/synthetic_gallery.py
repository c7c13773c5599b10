"""Synthetic faces written into a real gallery, for the benchmarks that need a gallery of a given
size: one face per subject, each on a photo row of its own, through the gallery's own bulk unit
of work (`GalleryChange.add_subjects` + `add_faces_bulk`: rows, row hashes and the signed audit
event as an enrolment writes them). The vectors stand in for embeddings; no photo exists.

One place for the photo row's shape and the bulk calls, so that every benchmark's gallery is
made the same way (gui_latency, read_events, delete_speed, search_scale).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

CHUNK = 50_000  # faces per bulk call: bounds the memory of one call at any gallery size


def random_unit_vectors(rng: np.random.Generator, count: int, dim: int) -> np.ndarray:
    """`count` vectors spread uniformly over the unit sphere (strangers to one another)."""
    vectors = rng.standard_normal((count, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def add_synthetic_faces(
    change: Any,
    subject_ids: Sequence[str],
    vectors: np.ndarray,
    photo_keys: Sequence[str],
    model: Any,
    names: Sequence[str | None] | None = None,
) -> list[int]:
    """One subject per vector, its face on a photo row keyed `photo_keys[i]` (the column a
    photo's SHA-256 fills). Returns the new face ids, in order."""
    change.bind_model(model)
    given_names = names if names is not None else [None] * len(subject_ids)
    change.add_subjects(
        (subject, name, {}) for subject, name in zip(subject_ids, given_names, strict=True)
    )
    return change.add_faces_bulk(
        list(subject_ids),
        vectors,
        list(photo_keys),
        model_id=str(model),
        original_path="synthetic",
        width=112,
        height=112,
        box=(0, 0, 112, 112),
    )


def fill_random(
    change: Any, count: int, model: Any, subject_format: str = "SYN-{}", seed: int = 0
) -> None:
    """`count` random faces in one unit of work (`change`), CHUNK at a time."""
    rng = np.random.default_rng(seed)
    for start in range(0, count, CHUNK):
        ids = range(start, min(count, start + CHUNK))
        add_synthetic_faces(
            change,
            [subject_format.format(i) for i in ids],
            random_unit_vectors(rng, len(ids), model.dim),
            [f"synthetic-{i}" for i in ids],
            model,
        )
