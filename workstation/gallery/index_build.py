"""Building the vector index from SQLite (or any chunks) in streamed blocks, and deciding when a
saved index can be used as it is, caught up, or must be rebuilt (`open_index`).

Strategy by size (measured on 2 cores, see docs/PERFORMANCE.md): up to `FLAT_MAX_FACES` faces the
search is an exact scan of the memory-mapped matrix (FAISS's single-query kernel on one thread).
Above it the approximate kind (workstation/gallery/index_approx.py): a PQ fast scan proposes a
short list, 8-bit codes keep its best rows, and those are scored exactly. Both lengths are chosen
here from the recall measured on the stored embeddings and written to the manifest. IVF (SQ8) was
measured first: on embeddings spread like the default model's it needed a quarter of its lists
probed to keep mates, and was slower than the full fast scan (docs/PERFORMANCE.md).

Memory: the build never holds the gallery's vectors at once. Embeddings are streamed from SQLite
into the vector file; the quantisers are trained on a sample; the codes are made block by block
from the file; recall is measured in one more streamed pass. Files are read, not memory-mapped,
on these passes, so that the pages passed through are the OS cache's (which it may drop), not
the process's. What stays in memory is the 16-byte PQ code of every face (160 MB at 10 million)
and the training sample (200,000 faces).

This module uses workstation/gallery/index.py (loading, searching, incremental changes), never
the other way round.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from workstation.audit.actions import AuditAction
from workstation.audit.log import utc_now
from workstation.gallery import index as index_module
from workstation.gallery.index import VectorIndex
from workstation.gallery.index_approx import (
    CALIBRATION_K,
    best_by_codes,
    train_quantizers,
    write_quantizers,
)
from workstation.gallery.index_files import (
    APPROX_FILES,
    APPROX_KIND,
    FLAT_FILES,
    FLAT_KIND,
    FORMAT_VERSION,
    IDS_NAME,
    MANIFEST_NAME,
    SQ8_CODES_NAME,
    VECTORS_NAME,
    faiss_module,
    fingerprints,
    fingerprints_sha256,
    read_block,
    read_manifest,
    write_manifest,
)
from workstation.progress import CancelToken, Progress, Work, drain

PQ_TRAIN_MAX = 200_000
# Rows per streamed block: 64 MB of float32 whatever the dimension.
BLOCK_BYTES = 64 << 20
# Lengths tried at build time (short list proposed by the fast scan, then rows of it scored
# exactly after the 8-bit codes ordered it); the cheapest pair meeting the targets is kept.
SHORTLIST_CHOICES = (500, 1000, 2000, 4000, 8000)
RERANK_CHOICES = (50, 100, 200, 400, 800)
TARGET_MATE_RECALL_LOSS = 0.002
# Overlap of the returned top 20 with exact search's (its tail is near-ties between strangers):
# a longer short list raises it, and costs time on every search.
TARGET_RECALL_AT_20 = 0.9
# Simulated weak mates used to measure recall: stored faces turned to this cosine.
CALIBRATION_MATE_SCORE = 0.55
CALIBRATION_QUERIES = 500
# (query, proposed row) pairs scored at once while measuring recall (16 MB of rows at 256-d).
PAIRS_AT_ONCE = 1 << 14
STAGING_NAME = ".index-build"
STALE = "the index is out of date with the database"
OTHER_COUNT = "the index holds a different number of faces than the database"


class IndexedGallery(Protocol):
    """What the builder needs of a gallery (workstation.gallery.store.Gallery has it; named
    here as a protocol so that the index modules do not import the store, which uses them)."""

    folder: Path

    @property
    def generation(self) -> int: ...

    @property
    def model_id(self) -> str | None: ...

    @property
    def model_dim(self) -> int | None: ...

    def face_count(self) -> int: ...

    def embeddings(self, batch: int = ...) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...

    def faces_after(self, face_id: int) -> tuple[np.ndarray, np.ndarray]: ...

    def face_vectors(self, face_ids: Iterable[int]) -> dict[int, np.ndarray]: ...

    def change(self) -> AbstractContextManager[Any]: ...

    def use_index(self, index: VectorIndex | None) -> None: ...


def _block_rows(dim: int) -> int:
    return max(1, BLOCK_BYTES // (dim * 4))


class _RowPicker:
    """Copies chosen rows (sorted row numbers) out of a stream of blocks."""

    def __init__(self, rows: np.ndarray, dim: int) -> None:
        self.rows = rows
        self.values = np.zeros((len(rows), dim), dtype=np.float32)

    def take(self, start: int, block: np.ndarray) -> None:
        lo, hi = np.searchsorted(self.rows, [start, start + len(block)])
        self.values[lo:hi] = block[self.rows[lo:hi] - start]

    def within(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        keep = self.rows < rows
        return self.rows[keep], self.values[keep]


def build_index(
    folder: Path,
    chunks: Iterable[tuple[np.ndarray, np.ndarray]],
    total: int,
    dim: int | None,
    generation: int = 0,
    model_id: str | None = None,
    flat_max: int | None = None,
    cancel: CancelToken | None = None,
) -> Work[VectorIndex | None]:
    """Write a new index from (ids, vectors) chunks; yields progress, returns the VectorIndex.

    New files are written beside the old ones and swapped in at the end, manifest last;
    cancelling leaves the previous index untouched and returns None. `dim` None: the
    dimension of the first chunk's vectors (a gallery whose model is not recorded).
    """
    # Read at call time: the exact/approximate threshold lives (once) in index.py.
    flat_max = index_module.FLAT_MAX_FACES if flat_max is None else flat_max
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / STAGING_NAME
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted build
    staging.mkdir()
    rng = np.random.default_rng(0)
    approximate = total > flat_max
    train_rows = _sample(rng, total, PQ_TRAIN_MAX if approximate else 0)
    pick_rows = _sample(rng, total, CALIBRATION_QUERIES if approximate else 0)
    train = picks = None
    rows = 0
    yield Progress(0, total, "writing embeddings")
    with open(staging / VECTORS_NAME, "wb") as vec_out, open(staging / IDS_NAME, "wb") as ids_out:
        for ids, vectors in chunks:
            if cancel is not None and cancel.cancelled:
                shutil.rmtree(staging, ignore_errors=True)
                yield Progress(rows, total, "cancelled; the previous index was kept")
                return None
            ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
            if dim is None:
                dim = int(np.shape(vectors)[-1])
            vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), dim)
            if train is None or picks is None:
                train, picks = _RowPicker(train_rows, dim), _RowPicker(pick_rows, dim)
            vec_out.write(vectors.tobytes())
            ids_out.write(ids.tobytes())
            train.take(rows, vectors)
            picks.take(rows, vectors)
            rows += len(vectors)
            yield Progress(rows, total, f"wrote {rows} of {total} embeddings")
        for handle in (vec_out, ids_out):
            handle.flush()
            os.fsync(handle.fileno())
    dim = dim or 1
    ann_meta: dict[str, Any] | None = None
    if approximate and rows > flat_max and train is not None and picks is not None:
        ann_meta = yield from _build_approximate(staging, rows, dim, train, picks, rng, cancel)
        if ann_meta is None:
            shutil.rmtree(staging, ignore_errors=True)
            return None
    del train, picks
    kind = APPROX_KIND if ann_meta is not None else FLAT_KIND
    names = APPROX_FILES if kind == APPROX_KIND else FLAT_FILES
    for name in APPROX_FILES:
        if name in names:
            (staging / name).replace(folder / name)
        else:
            (folder / name).unlink(missing_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    files = fingerprints(folder, names)
    write_manifest(
        folder,
        {
            "format": FORMAT_VERSION,
            "kind": kind,
            "count": rows,
            "rows": rows,
            "dim": dim,
            "model_id": model_id,
            "generation": generation,
            "built_at": utc_now(),
            "index_sha256": fingerprints_sha256(files),
            "files": files,
            "ann": ann_meta,
        },
    )
    index = VectorIndex.load(folder, expect_model=model_id)
    if isinstance(index, str):
        raise OSError(f"{folder}: the index just built cannot be opened: {index}")
    yield Progress(rows, rows, f"index ready: {index.kind}, {index.count} faces")
    return index


def _sample(rng: np.random.Generator, total: int, size: int) -> np.ndarray:
    return np.sort(rng.choice(total, size=min(total, size), replace=False)).astype(np.int64)


def _build_approximate(
    staging: Path,
    rows: int,
    dim: int,
    train: _RowPicker,
    picks: _RowPicker,
    rng: np.random.Generator,
    cancel: CancelToken | None,
) -> Work[dict[str, Any] | None]:
    """Train the quantisers, encode every row block by block, measure the short-list lengths;
    returns the manifest's `ann` entry (None when cancelled)."""
    _, sample = train.within(rows)
    trained_on = len(sample)
    yield Progress(0, rows, f"training the approximate index on {trained_on} faces")
    pq, sq = train_quantizers(sample)
    del sample
    step = _block_rows(dim)
    with open(staging / SQ8_CODES_NAME, "wb") as codes_out:
        for start in range(0, rows, step):
            if cancel is not None and cancel.cancelled:
                yield Progress(start, rows, "cancelled; the previous index was kept")
                return None
            block = read_block(staging / VECTORS_NAME, np.float32, start, step, dim)
            pq.add(block)  # labels = row numbers
            codes_out.write(sq.sa_encode(block).tobytes())
            stop = start + len(block)
            yield Progress(stop, rows, f"approximate index: {stop} of {rows} faces")
        codes_out.flush()
        os.fsync(codes_out.fileno())
    layout = write_quantizers(staging, pq, sq)
    yield Progress(rows, rows, "measuring the approximate index's recall")
    pick_rows, pick_vectors = picks.within(rows)
    choice = yield from calibrate(staging, pq, sq, rows, pick_rows, pick_vectors, rng, cancel)
    if choice is None:
        return None
    return {
        "type": (
            f"PQ{layout['pq_subquantizers']}x{layout['pq_bits']} fast scan (faiss "
            "IndexPQFastScan, inner product) proposes the short list; 8-bit codes (faiss "
            "ScalarQuantizer QT_8bit) keep its best rows; those are scored exactly"
        ),
        "bytes_per_face": int(pq.code_size),
        "trained_on": trained_on,
        "rows": rows,
        **layout,
        **choice,
    }


def calibrate(
    folder: Path,
    pq: Any,
    sq: Any,
    rows: int,
    pick_rows: np.ndarray,
    picks: np.ndarray,
    rng: np.random.Generator,
    cancel: CancelToken | None = None,
) -> Work[dict[str, Any] | None]:
    """Measure recall on stored embeddings; pick the short-list and re-rank lengths.

    Without labels, a mate is simulated: each query is a stored face turned away from itself
    (in a random direction) until its cosine similarity to it is `CALIBRATION_MATE_SCORE`, a
    weak mate for the default model (its mated scores on ../shared/faces: mean 0.75, sd 0.08).
    `mate_recall` is the share of such queries whose face is in the returned top 20,
    `recall_at_20` the overlap with the exact top 20 (faiss.contrib's knn intersection).

    One streamed pass over the float32 and 8-bit files gives the exact top 20 of every query
    (faiss ResultHeap, as faiss.contrib.exhaustive_search.knn_ground_truth does) and the exact
    and 8-bit scores of every row the fast scan proposed; each (short list, re-rank) pair is
    then replayed with the search's own selection (`best_by_codes`). Kept: the pair with the
    fewest exact reads (then the shortest list) whose mate recall is within
    TARGET_MATE_RECALL_LOSS of exact search's and whose top-20 overlap reaches
    TARGET_RECALL_AT_20 (or, if none does, the best overlap measured).
    """
    faiss = faiss_module()
    from faiss.contrib.evaluation import knn_intersection_measure

    n, dim = picks.shape
    turn = rng.standard_normal(picks.shape).astype(np.float32)
    turn -= np.sum(turn * picks, axis=1, keepdims=True) * picks
    turn /= np.linalg.norm(turn, axis=1, keepdims=True)
    cos = CALIBRATION_MATE_SCORE
    queries = np.ascontiguousarray(cos * picks + math.sqrt(1 - cos * cos) * turn, np.float32)
    longest = min(rows, SHORTLIST_CHOICES[-1])
    _, proposed = pq.search(queries, longest)
    flat_rows = proposed.ravel()
    order = np.argsort(flat_rows, kind="stable")
    sorted_rows = flat_rows[order]
    query_of = (order // longest).astype(np.int64)
    exact = np.full(flat_rows.shape, -np.inf, dtype=np.float32)
    approx = np.full(flat_rows.shape, -np.inf, dtype=np.float32)
    k = min(CALIBRATION_K, rows)
    heap = faiss.ResultHeap(n, k, keep_max=True)
    step = _block_rows(dim)
    for start in range(0, rows, step):
        if cancel is not None and cancel.cancelled:
            yield Progress(start, rows, "cancelled; the previous index was kept")
            return None
        block = read_block(folder / VECTORS_NAME, np.float32, start, step, dim)
        codes = read_block(folder / SQ8_CODES_NAME, np.uint8, start, step, sq.code_size)
        scores, found = faiss.knn(queries, block, min(k, len(block)), faiss.METRIC_INNER_PRODUCT)
        heap.add_result(scores, np.where(found >= 0, found + start, -1))
        lo, hi = np.searchsorted(sorted_rows, [start, start + len(block)])
        for part in range(lo, hi, PAIRS_AT_ONCE):  # bounded memory on small galleries too
            end = min(hi, part + PAIRS_AT_ONCE)
            at, local, who = order[part:end], sorted_rows[part:end] - start, query_of[part:end]
            exact[at] = np.einsum("ij,ij->i", block[local], queries[who])
            approx[at] = np.einsum("ij,ij->i", sq.sa_decode(codes[local]), queries[who])
        yield Progress(start + len(block), rows, "measuring recall")
    heap.finalize()
    truth = heap.I
    exact_mates = _mate_recall(truth, pick_rows)
    exact, approx = exact.reshape(n, longest), approx.reshape(n, longest)
    tried: list[dict[str, Any]] = []
    for shortlist in sorted({min(s, longest) for s in SHORTLIST_CHOICES}):
        for rerank in sorted({min(r, shortlist) for r in RERANK_CHOICES}):
            found = _replay(proposed, approx, exact, shortlist, rerank, k)
            tried.append(
                {
                    "shortlist": shortlist,
                    "rerank": rerank,
                    "mate_recall": round(_mate_recall(found, pick_rows), 4),
                    "recall_at_20": round(float(knn_intersection_measure(found, truth)), 4),
                }
            )
    overlap_target = min(TARGET_RECALL_AT_20, max(t["recall_at_20"] for t in tried))
    fit = [
        t
        for t in tried
        if t["mate_recall"] >= exact_mates - TARGET_MATE_RECALL_LOSS
        and t["recall_at_20"] >= overlap_target
    ]
    chosen = min(fit or tried, key=lambda t: (t["rerank"], t["shortlist"], -t["recall_at_20"]))
    return {
        **chosen,
        "exact_mate_recall": round(exact_mates, 4),
        "calibration_mate_score": cos,
        "calibration_queries": n,
        "calibration": tried,
        "measured_at": utc_now(),
    }


def _replay(
    proposed: np.ndarray,
    approx: np.ndarray,
    exact: np.ndarray,
    shortlist: int,
    rerank: int,
    k: int,
) -> np.ndarray:
    """The rows a search returns with these lengths, for every calibration query."""
    found = np.full((len(proposed), k), -1, dtype=np.int64)
    for q in range(len(proposed)):
        rows = proposed[q, :shortlist]
        valid = rows >= 0
        kept = best_by_codes(approx[q, :shortlist][valid], rerank)
        best = kept[np.argsort(-exact[q, :shortlist][valid][kept], kind="stable")[:k]]
        found[q, : len(best)] = rows[valid][best]
    return found


def _mate_recall(found: np.ndarray, mates: np.ndarray) -> float:
    return float(np.mean(np.any(found == mates[:, None], axis=1))) if len(mates) else 1.0


def rebuild_index(
    gallery: IndexedGallery,
    reason: str = "requested",
    cancel: CancelToken | None = None,
    flat_max: int | None = None,
) -> Work[VectorIndex | None]:
    """Rebuild the index from SQLite embeddings; yields progress, returns the new VectorIndex.

    The rebuild is audited. Cancelling leaves the previous index files untouched. An agency
    gallery rebuilds its Milvus collection instead (workstation.gallery.milvus).
    """
    vectors = getattr(gallery, "vectors", None)
    if vectors is not None:
        return (yield from vectors.rebuild(gallery, reason, cancel))
    total = gallery.face_count()
    index = yield from build_index(
        gallery.folder,
        gallery.embeddings(),
        total,
        gallery.model_dim,
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
            for k in ("shortlist", "rerank", "mate_recall", "recall_at_20")
            if k in index.ann_meta
        }
    with gallery.change() as change:
        change.record(AuditAction.INDEX_REBUILD, details)
    gallery.use_index(index)
    return index


# ---------------------------------------------------------------------- open or rebuild
def open_index(
    gallery: IndexedGallery, on_message: Callable[[str], None] | None = None
) -> VectorIndex:
    """Load the saved index if it matches the database (catching it up with faces enrolled
    since it was saved); else rebuild it from the database and say why."""
    problem = check_saved(gallery)
    if problem in (None, STALE, OTHER_COUNT):
        loaded = VectorIndex.load(gallery.folder, expect_model=gallery.model_id)
        if isinstance(loaded, VectorIndex) and (problem is None or catch_up(loaded, gallery)):
            return loaded
        problem = loaded if isinstance(loaded, str) else problem
    if gallery.face_count() == 0 and not (gallery.folder / MANIFEST_NAME).exists():
        return VectorIndex(
            gallery.folder, gallery.model_dim or 1, gallery.generation, gallery.model_id
        )
    message = f"{gallery.folder / MANIFEST_NAME}: {problem}; rebuilding it from the database"
    if on_message is not None:
        on_message(message)
    index = drain(rebuild_index(gallery, reason=f"automatic: {problem}"))
    if index is None:  # no cancel token was given: a rebuild without one always finishes
        raise OSError(f"{gallery.folder}: the automatic index rebuild did not finish")
    return index


def check_saved(gallery: IndexedGallery) -> str | None:
    """Why the saved manifest does not describe the database now, or None."""
    try:
        manifest = read_manifest(gallery.folder)
    except FileNotFoundError:
        return "the index manifest is missing"
    except (OSError, ValueError) as exc:
        return f"the index manifest cannot be read ({exc})"
    if manifest.get("format") != FORMAT_VERSION:
        return "the index was written by another version"
    if manifest.get("model_id") != gallery.model_id:
        return "the index was built with another model"
    if manifest.get("generation") != gallery.generation:
        return STALE
    if manifest.get("count") != gallery.face_count():
        return OTHER_COUNT
    return None


def catch_up(index: VectorIndex, gallery: IndexedGallery) -> bool:
    """Bring a saved index that fell behind the database up to date by adding the faces
    enrolled since it was saved. False (and unchanged) when anything else changed (faces
    deleted, or row ids reused), which needs a rebuild."""
    recent_ids, recent_vectors = index.newest(64)
    top = int(recent_ids.max()) if len(recent_ids) else 0
    new_ids, new_vectors = gallery.faces_after(top)
    if index.count + len(new_ids) != gallery.face_count():
        return False
    # The newest faces kept here must still be the database's (ids reused after deletions).
    stored = gallery.face_vectors(recent_ids.tolist())
    for face_id, vector in zip(recent_ids.tolist(), recent_vectors, strict=True):
        kept = stored.get(face_id)
        if kept is None or kept.tobytes() != np.asarray(vector, dtype=np.float32).tobytes():
            return False
    if len(new_ids):
        index.add(new_ids, new_vectors.reshape(len(new_ids), index.dim))
    index.generation = gallery.generation
    return True
