"""Building the vector index: from SQLite embeddings (or any chunks), choosing exact or
approximate by size, training the product quantiser and measuring the short-list length it needs.

Loading, searching and incremental changes are in workstation/gallery/index.py.

Strategy by size (measured on 2 cores, see docs/PERFORMANCE.md): up to `FLAT_MAX_FACES` faces the
search is an exact scan of the memory-mapped matrix with FAISS's single-query kernel on one
thread (OpenMP fan-out made a single query three times slower here; numpy's BLAS matrix-vector
product was slower still). Above it a product quantiser trained on the stored embeddings scans
every face's 16-byte code (FAISS PQ fast scan: 10 million faces in 160 MB) and proposes a short
list; its length is chosen at build time from the recall measured on the stored embeddings and
written to the manifest. IVF (SQ8) was measured first: on embeddings spread like the default
model's it needed a quarter of its lists probed to keep mates, and was slower than the full
fast scan (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workstation.audit.actions import AuditAction
from workstation.audit.log import utc_now
from workstation.gallery import index as index_module
from workstation.gallery.index import (
    ANN_NAME,
    APPROX_KIND,
    IDS_NAME,
    PQ_M,
    VECTORS_NAME,
    VectorIndex,
    faiss_module,
)
from workstation.hashing import sha256_file
from workstation.progress import CancelToken, Progress

if TYPE_CHECKING:
    from workstation.gallery.store import Gallery

PQ_TRAIN_MAX = 200_000
# Short-list lengths tried at build time, smallest first; the first meeting the target is kept.
SHORTLIST_CHOICES = (250, 500, 1000, 2000, 4000)
TARGET_MATE_RECALL_LOSS = 0.002
# Simulated weak mates used to measure recall: stored faces turned to this cosine.
CALIBRATION_MATE_SCORE = 0.55
CALIBRATION_QUERIES = 500


def build_index(
    folder: Path,
    chunks: Iterable[tuple[np.ndarray, np.ndarray]],
    total: int,
    dim: int,
    generation: int = 0,
    model_id: str | None = None,
    flat_max: int | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[Progress]:
    """Write a new index from (ids, vectors) chunks; yields progress, returns the VectorIndex.

    New files are written beside the old ones and swapped in at the end, manifest last;
    cancelling leaves the previous index untouched and returns None.
    """
    # Read at call time: the exact/approximate threshold lives (once) in index.py.
    flat_max = index_module.FLAT_MAX_FACES if flat_max is None else flat_max
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / ".index-build"
    staging.mkdir(exist_ok=True)
    (staging / ANN_NAME).unlink(missing_ok=True)  # left by an interrupted build
    done = 0
    yield Progress(0, total, "writing embeddings")
    with open(staging / VECTORS_NAME, "wb") as vec_out, open(staging / IDS_NAME, "wb") as ids_out:
        for ids, vectors in chunks:
            if cancel is not None and cancel.cancelled:
                yield Progress(done, total, "cancelled; the previous index was kept")
                return None
            vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dim)
            vec_out.write(vectors.tobytes())
            ids_out.write(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
            done += len(vectors)
            yield Progress(done, total, f"wrote {done} of {total} embeddings")
        vec_out.flush()
        os.fsync(vec_out.fileno())
        ids_out.flush()
        os.fsync(ids_out.fileno())
    index = VectorIndex(staging, dim, generation, model_id)
    index._ids = np.fromfile(staging / IDS_NAME, dtype=np.int64)
    index._refresh_deleted()
    index._map_vectors()
    if index.saved_rows > flat_max:
        ann = yield from _build_pq(index, cancel)
        if ann is None:
            return None
    index.built_at = utc_now()
    index._vectors = np.zeros((0, dim), dtype=np.float32)  # release before the files move
    for name in (VECTORS_NAME, IDS_NAME, ANN_NAME):
        if (staging / name).exists():
            (staging / name).replace(folder / name)
        elif (folder / name).exists():
            (folder / name).unlink()
    staging.rmdir()
    index.folder = folder
    index._map_vectors()
    index._write_manifest()
    yield Progress(total, total, f"index ready: {index.kind}, {index.count} faces")
    return index


def _build_pq(index: VectorIndex, cancel: CancelToken | None) -> Iterator[Progress]:
    faiss = faiss_module()
    rows, dim = index.saved_rows, index.dim
    rng = np.random.default_rng(0)
    train_n = min(rows, PQ_TRAIN_MAX)
    sample = np.sort(rng.choice(rows, size=train_n, replace=False))
    yield Progress(0, rows, f"training the approximate index on {train_n} faces")
    pq = faiss.IndexPQFastScan(dim, PQ_M, 4, faiss.METRIC_INNER_PRODUCT)
    pq.train(np.ascontiguousarray(index._vectors[sample]))
    step = 500_000
    for start in range(0, rows, step):
        if cancel is not None and cancel.cancelled:
            yield Progress(start, rows, "cancelled; the previous index was kept")
            return None
        stop = min(rows, start + step)
        pq.add(np.ascontiguousarray(index._vectors[start:stop]))  # labels = row numbers
        yield Progress(stop, rows, f"approximate index: {stop} of {rows} faces")
    faiss.write_index(pq, str(index.folder / ANN_NAME))
    index.kind = APPROX_KIND
    index._ann = pq
    index._ann_rows = rows
    yield Progress(rows, rows, "measuring the approximate index's recall")
    choice = calibrate_shortlist(index, rng)
    index.shortlist = choice["shortlist"]
    index.ann_meta = {
        "type": f"PQ{PQ_M}x4 fast scan (faiss IndexPQFastScan, inner product), exact re-rank",
        "bytes_per_face": PQ_M // 2,
        "trained_on": train_n,
        "rows": rows,
        "file_sha256": sha256_file(index.folder / ANN_NAME),
        **choice,
    }
    return pq


def calibrate_shortlist(index: VectorIndex, rng: np.random.Generator) -> dict[str, Any]:
    """Measure recall on stored embeddings; pick the shortest short list meeting the target.

    Without labels, a mate is simulated: each query is a stored face turned away from itself
    (in a random direction) until its cosine similarity to it is `CALIBRATION_MATE_SCORE`, a
    weak mate for the default model (its mated scores on ../shared/faces: mean 0.75, sd 0.08).
    `mate_recall` is the share of such queries whose face is in the returned top 20 (the
    target: within TARGET_MATE_RECALL_LOSS of exact search's), `recall_at_20` the overlap with
    the exact top 20 (reported: its tail is near-ties between strangers).
    """
    faiss = faiss_module()
    rows = index.saved_rows
    n = min(CALIBRATION_QUERIES, rows)
    picks = np.sort(rng.choice(rows, size=n, replace=False))
    stored = np.asarray(index._vectors[picks], dtype=np.float32)
    turn = rng.standard_normal(stored.shape).astype(np.float32)
    turn -= np.sum(turn * stored, axis=1, keepdims=True) * stored
    turn /= np.linalg.norm(turn, axis=1, keepdims=True)
    cos = CALIBRATION_MATE_SCORE
    queries = np.ascontiguousarray(cos * stored + math.sqrt(1 - cos * cos) * turn)
    _, truth = faiss.knn(queries, index._vectors, 20, metric=faiss.METRIC_INNER_PRODUCT)
    longest = min(rows, SHORTLIST_CHOICES[-1])
    _, proposed = index._ann.search(queries, longest)
    # Exact search itself misses a weak mate when strangers outscore it (more often in a big
    # gallery): the target is to lose at most TARGET_MATE_RECALL_LOSS against exact search.
    exact_mates = float(
        np.mean([row in set(t.tolist()) for row, t in zip(picks, truth, strict=True)])
    )
    tried = []
    chosen: dict[str, Any] | None = None
    for shortlist in SHORTLIST_CHOICES:
        mates = overlap = 0.0
        for q, row, exact, short in zip(queries, picks, truth, proposed, strict=True):
            candidates = short[:shortlist]
            scores, cand_rows = index._rerank(q, candidates[candidates >= 0])
            got = set(cand_rows[np.argsort(-scores)[:20]].tolist())
            overlap += len(got & set(exact.tolist())) / 20
            mates += int(row) in got
        result = {
            "shortlist": shortlist,
            "mate_recall": round(mates / n, 4),
            "recall_at_20": round(overlap / n, 4),
        }
        tried.append(result)
        if result["mate_recall"] >= exact_mates - TARGET_MATE_RECALL_LOSS or shortlist >= rows:
            chosen = result
            break
    chosen = chosen or tried[-1]
    return {
        **chosen,
        "exact_mate_recall": round(exact_mates, 4),
        "calibration_mate_score": cos,
        "calibration_queries": n,
        "calibration": tried,
        "measured_at": utc_now(),
    }


def rebuild_index(
    gallery: Gallery,
    reason: str = "requested",
    cancel: CancelToken | None = None,
    flat_max: int | None = None,
) -> Iterator[Progress]:
    """Rebuild the index from SQLite embeddings; yields progress, returns the new VectorIndex.

    The rebuild is audited. Cancelling leaves the previous index files untouched.
    """
    total = gallery.face_count()
    index = yield from build_index(
        gallery.folder,
        gallery.embeddings(),
        total,
        gallery.model_dim or 1,
        generation=gallery.generation,
        model_id=gallery.model_id,
        flat_max=flat_max,
        cancel=cancel,
    )
    if index is None:
        return None
    details: dict[str, Any] = {
        "reason": reason,
        "faces": index.count,
        "kind": index.kind,
        "model_id": gallery.model_id,
        "index_sha256": index.file_sha256,
    }
    if index.ann_meta:
        details["ann"] = {
            k: index.ann_meta[k]
            for k in ("shortlist", "mate_recall", "recall_at_20")
            if k in index.ann_meta
        }
    with gallery.change() as change:
        change.record(AuditAction.INDEX_REBUILD, details)
    gallery.use_index(index)
    return index
