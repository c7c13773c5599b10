"""Shared by the benchmark scripts: embed the labelled photos of ../shared/faces through the
public API (load_image, create_engine, FaceEngine.analyze), largest face of each photo.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workstation.errors import WorkstationError
from workstation.vision.engine import FaceEngine
from workstation.vision.images import load_image

DEFAULT_FACES = Path(__file__).resolve().parents[1] / ".." / "shared" / "faces"


@dataclass
class Embedded:
    paths: list[str]  # relative to the faces folder
    identities: list[str]
    folders: list[str]  # source folder (first path component)
    vectors: np.ndarray  # n x dim, L2-normalised; rows of failed photos are zero
    ok: np.ndarray  # bool per photo: a face was found
    verdicts: list[str | None]
    failures: list[tuple[str, str]]  # (path, reason)


def read_labels(faces_dir: Path) -> list[dict[str, str]]:
    with open(faces_dir / "labels.csv", newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row.get("identity")]


def embed_labelled(engine: FaceEngine, faces_dir: Path) -> Embedded:
    rows = read_labels(faces_dir)
    dim = engine.model.dim
    vectors = np.zeros((len(rows), dim), dtype=np.float32)
    ok = np.zeros(len(rows), dtype=bool)
    verdicts: list[str | None] = []
    failures: list[tuple[str, str]] = []
    for i, row in enumerate(rows):
        try:
            faces = engine.analyze(load_image(faces_dir / row["path"]).bgr)
        except WorkstationError as exc:
            failures.append((row["path"], str(exc)))
            verdicts.append(None)
            continue
        if not faces:
            failures.append((row["path"], "no face detected"))
            verdicts.append(None)
            continue
        vectors[i] = faces[0].embedding
        ok[i] = True
        verdicts.append(faces[0].quality.verdict.value)
    return Embedded(
        paths=[r["path"] for r in rows],
        identities=[r["identity"] for r in rows],
        folders=[r["path"].split("/", 1)[0] for r in rows],
        vectors=vectors,
        ok=ok,
        verdicts=verdicts,
        failures=failures,
    )


def pair_sets(data: Embedded) -> np.ndarray:
    """The pairs.csv set of each photo: deepface, dlib_johns, or misc (the three small folders)."""
    named = {"deepface", "dlib_johns"}
    return np.array([f if f in named else "misc" for f in data.folders])


def impostor_scores(data: Embedded, photos: np.ndarray | None = None) -> np.ndarray:
    """Scores of the different-identity pairs within one set (pairs.csv's impostor pairs).

    Pairs across sets are left out on purpose: photos from different sources differ in style
    as well as person, so they score lower and would make false matches look rarer than they
    are among photos of one kind (a real gallery). `photos` restricts to those photo indices.
    """
    chosen = np.flatnonzero(data.ok) if photos is None else photos[data.ok[photos]]
    ids = np.array(data.identities)[chosen]
    sets = pair_sets(data)[chosen]
    sims = data.vectors[chosen] @ data.vectors[chosen].T
    upper = np.triu(np.ones_like(sims, dtype=bool), k=1)
    keep = upper & (ids[:, None] != ids[None, :]) & (sets[:, None] == sets[None, :])
    return sims[keep]
