"""Shared by the benchmark scripts: embed the labelled photos of ../shared/faces through the
public API (load_image, create_engine, FaceEngine.analyze), largest face of each photo.
"""

from __future__ import annotations

import csv
import time
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


def mated_scores(data: Embedded, photos: np.ndarray | None = None) -> np.ndarray:
    """Scores of the same-identity pairs (two photos of one person), every such pair once."""
    chosen = np.flatnonzero(data.ok) if photos is None else photos[data.ok[photos]]
    ids = np.array(data.identities)[chosen]
    sims = data.vectors[chosen] @ data.vectors[chosen].T
    upper = np.triu(np.ones_like(sims, dtype=bool), k=1)
    return sims[upper & (ids[:, None] == ids[None, :])]


# ---------------------------------------------------------------------- member views (cached)
VIEWS = ("sface", "sface_mirror", "dlib", "dlib_mirror")


def embed_member_views(
    paths: list[str],
    cache: Path,
    worker: int = 0,
    workers: int = 1,
    members: tuple[str, ...] = ("sface", "dlib"),
) -> dict[str, np.ndarray]:
    """For each photo's largest face: the unit vectors of SFace and dlib, each of the face and of
    its mirror image (the four views every configuration of the registry is made of), plus the
    seconds spent per photo (`members` limits the models run; the others' views stay zero).
    Computed through the product's own detector and embedders, cached in
    `cache` (an .npz; photos already there are not embedded again). `worker`/`workers` split the
    work across processes (each writes its own part file, merged when all are there)."""
    from workstation.vision.engine import l2_normalise
    from workstation.vision.registry import EngineOptions, _detector, _dlib, _sface

    part = cache.with_suffix(f".part{worker}of{workers}.npz")
    done: dict[str, dict[str, np.ndarray]] = {}
    own: list[str] = []
    for existing in (cache, part):
        if existing.exists():
            stored = _load_rows(existing)
            done.update(stored)
            if existing == part:
                own.extend(stored)
    todo = [p for i, p in enumerate(paths) if i % workers == worker and p not in done]
    if todo:
        from workstation.vision.cvcompat import cv2_module

        cv2_module().setNumThreads(1)
        options = EngineOptions()
        detector, sface = _detector(options), _sface(options)
        dlib = _dlib(options) if "dlib" in members else None
        from workstation.vision.engine import FaceEngine

        engine = FaceEngine(detector, sface)
        for n, path in enumerate(todo, start=1):
            started = time.perf_counter()
            row = {k: np.zeros(128, np.float32) for k in VIEWS}
            ok = False
            try:
                bgr = load_image(Path(path)).bgr
                found = engine.detect(bgr)
            except WorkstationError:
                found = []
            if found:
                ok = True
                face = found[0]
                for name, embedder in (("sface", sface), ("dlib", dlib)):
                    if embedder is None:
                        continue
                    prepared = embedder.prepare(bgr, face.box, face.landmarks)
                    mirrored = tuple(np.ascontiguousarray(c[:, ::-1]) for c in prepared)
                    vectors = l2_normalise(embedder.embed([prepared, mirrored]))
                    row[name], row[f"{name}_mirror"] = vectors[0], vectors[1]
            done[path] = {
                **row,
                "ok": np.array(ok),
                "seconds": np.array(time.perf_counter() - started),
            }
            own.append(path)
            if n % 200 == 0 or n == len(todo):
                _save(part, own, done)
                print(f"  worker {worker}: {n}/{len(todo)} photos embedded", flush=True)
    return {
        k: np.array([done[p][k] for p in paths if p in done]) for k in (*VIEWS, "ok", "seconds")
    }


def _save(path: Path, paths: list[str], rows: dict[str, dict[str, np.ndarray]]) -> None:
    arrays = {k: np.array([rows[p][k] for p in paths]) for k in (*VIEWS, "ok", "seconds")}
    partial = path.with_suffix(".tmp.npz")
    np.savez(partial, paths=np.array(paths), **arrays)
    partial.replace(path)


def _load_rows(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """One cache file's rows by photo path. Each array is read from the .npz once and each row
    copied: `NpzFile[key]` re-reads the whole array on every access and a row view keeps it
    alive, so indexing it per row held about 18 GB for 3,000 photos (measured)."""
    with np.load(path, allow_pickle=False) as stored:
        arrays = {k: stored[k] for k in ("paths", *VIEWS, "ok", "seconds")}
    return {
        str(p): {k: arrays[k][i].copy() for k in (*VIEWS, "ok", "seconds")}
        for i, p in enumerate(arrays["paths"])
    }


def merge_parts(cache: Path, paths: list[str], workers: int) -> None:
    """Join the worker part files into the cache file."""
    rows: dict[str, dict[str, np.ndarray]] = {}
    for source in [cache, *(cache.with_suffix(f".part{w}of{workers}.npz") for w in range(workers))]:
        if source.exists():
            rows.update(_load_rows(source))
    _save(cache, [p for p in paths if p in rows], rows)


def config_vectors(views: dict[str, np.ndarray], key: str) -> np.ndarray:
    """A registry configuration's vectors, composed from the cached member views with the
    product's own fusion code (benchmarks/accuracy.py --cfp checks the composition against
    create_engine(key) on real photos)."""
    from workstation.vision.embedders import FusionMember, fusion_scales
    from workstation.vision.engine import l2_normalise
    from workstation.vision.registry import (
        SIGMA_DLIB,
        SIGMA_DLIB_FLIP,
        SIGMA_SFACE,
        SIGMA_SFACE_FLIP,
        WEIGHT_DLIB,
        WEIGHT_SFACE,
    )

    sface, dlib = views["sface"], views["dlib"]
    sface_flip = l2_normalise(views["sface"] + views["sface_mirror"])
    dlib_flip = l2_normalise(views["dlib"] + views["dlib_mirror"])
    if key == "fast":
        return sface
    if key == "fast-mirror":
        return sface_flip
    if key == "dlib":
        return dlib
    if key == "dlib-flip":
        return dlib_flip
    if key == "fused-noflip":
        members, sigmas = (sface, dlib), (SIGMA_SFACE, SIGMA_DLIB)
    elif key == "accurate":
        members, sigmas = (sface_flip, dlib_flip), (SIGMA_SFACE_FLIP, SIGMA_DLIB_FLIP)
    else:
        raise SystemExit(f"no composition for configuration {key!r}")
    from workstation.domain import ModelId

    dummy = ModelId("member", "0" * 64, 128)
    scales = fusion_scales(
        [FusionMember(dummy, WEIGHT_SFACE, sigmas[0]), FusionMember(dummy, WEIGHT_DLIB, sigmas[1])]
    )
    return np.hstack([members[0] * scales[0], members[1] * scales[1]]).astype(np.float32)
