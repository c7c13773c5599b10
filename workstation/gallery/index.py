"""The vector index: derived from SQLite, never the source of truth.

Scores are inner products of L2-normalised embeddings (cosine similarity) and are always exact:
every candidate is re-scored against its float32 embedding before it is returned.

Files beside the database (all rebuildable from it)::

    faces.vectors.f32   float32 embeddings, one row per face, appended as faces are enrolled;
                        memory-mapped, never read whole at start-up
    faces.ids.i64       the faces-table row id of each row (-1 = deleted, awaiting compaction)
    faces.pq.faiss      large galleries only: FAISS product-quantisation codes (16 bytes a face,
                        4-bit fast scan) over row numbers; proposes a short list that is
                        re-ranked exactly against faces.vectors.f32
    faces.faiss.json    manifest: kind, count, dim, model, generation, per-file checksums,
                        and for the approximate kind its training size, short-list length and
                        measured recall

Strategy by size (measured on 2 cores, see docs/PERFORMANCE.md): up to `FLAT_MAX_FACES` faces the
search is an exact scan of the memory-mapped matrix with FAISS's single-query kernel on one
thread (OpenMP fan-out made a single query three times slower here; numpy's BLAS matrix-vector
product was slower still). Above it a product quantiser trained on the stored embeddings scans
every face's 16-byte code (FAISS PQ fast scan: 10 million faces in 160 MB) and proposes a short
list; its length is chosen at build time from the recall measured on the stored embeddings and
written to the manifest. IVF (SQ8) was measured first: on embeddings spread like the default
model's it needed a quarter of its lists probed to keep mates, and was slower than the full
fast scan (docs/PERFORMANCE.md).

Faces added after the approximate index was built are kept in a "tail" searched exactly, and deleted
faces are masked; both without a rebuild. When the tail or the deleted share grows too large,
`rebuild_advice()` says so and enrolment rebuilds at its end.

When the manifest disagrees with the database (model, generation, count) or a file fails its
checksum, the index is rebuilt from the embeddings stored in SQLite and the reason is reported.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workstation.audit.log import utc_now
from workstation.hashing import sha256_file
from workstation.progress import CancelToken, Progress, drain

if TYPE_CHECKING:
    from workstation.gallery.store import Gallery

VECTORS_NAME = "faces.vectors.f32"
IDS_NAME = "faces.ids.i64"
ANN_NAME = "faces.pq.faiss"
MANIFEST_NAME = "faces.faiss.json"
INDEX_NAME = VECTORS_NAME  # the file whose presence means "an index was built here"
FLAT_KIND = "flat-ip"
APPROX_KIND = "pq-fastscan+exact-rerank"
INDEX_KIND = FLAT_KIND  # kind of a new, empty index
FORMAT_VERSION = 2
STALE = "the index is out of date with the database"
OTHER_COUNT = "the index holds a different number of faces than the database"

# Up to this many faces the exact scan is fast enough (300k: p95 ~6 ms, 500k ~11 ms on one
# core here); above it the PQ fast scan keeps 1M-10M searches well under 100 ms.
FLAT_MAX_FACES = 500_000
# Product quantiser: PQ_M sub-vectors of 4 bits each (PQ_M / 2 bytes a face).
PQ_M = 32
PQ_TRAIN_MAX = 200_000
# Short-list lengths tried at build time, smallest first; the first meeting the target is kept
# (and never fewer than RERANK_FACTOR x k rows are re-ranked).
SHORTLIST_CHOICES = (250, 500, 1000, 2000, 4000)
RERANK_FACTOR = 10
TARGET_MATE_RECALL_LOSS = 0.002
CALIBRATION_MATE_SCORE = 0.55
CALIBRATION_QUERIES = 500
# Files at most this big are hashed whole; bigger ones by size and sampled blocks so that
# opening a 5 GB gallery does not read 5 GB (full verification: `verify_files(full=True)`).
FULL_HASH_MAX_BYTES = 16 << 20
# Advise a rebuild when the un-indexed tail or the deleted rows pass these shares.
TAIL_MAX_SHARE = 0.2
DELETED_MAX_SHARE = 0.1
FLAT_COMPACT_DELETED = 1000


def _faiss() -> Any:
    import faiss

    return faiss


@contextmanager
def _single_thread() -> Iterator[None]:
    """One OpenMP thread for a single query (the setting is per calling thread)."""
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


@dataclass
class IndexInfo:
    kind: str
    count: int
    dim: int | None
    model_id: str | None
    generation: int
    built_at: str | None
    index_sha256: str | None
    path: str
    ann: dict[str, Any] | None = None
    tail: int = 0
    deleted: int = 0
    rebuild_advised: str | None = None
    files: dict[str, Any] = field(default_factory=dict)
    recall: str = ""  # in words, for `workstation index info`

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def file_fingerprint(path: Path) -> dict[str, Any]:
    """SHA-256 of a file: whole when small, else of its size plus sampled blocks."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    if size <= FULL_HASH_MAX_BYTES:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        return {"bytes": size, "sha256": digest.hexdigest(), "sampled": False}
    digest.update(str(size).encode())
    block = 1 << 16
    with open(path, "rb") as handle:
        for offset in np.linspace(0, size - block, 64).astype(np.int64):
            handle.seek(int(offset))
            digest.update(handle.read(block))
    return {"bytes": size, "sha256": digest.hexdigest(), "sampled": True}


class VectorIndex:
    """The index of one gallery folder: exact for small galleries, PQ + exact re-rank above.

    One instance per thread (like `Gallery`); several instances share the memory-mapped files.
    """

    def __init__(self, folder: Path, dim: int, generation: int, model_id: str | None) -> None:
        self.folder = Path(folder)
        self.dim = int(dim)
        self.generation = generation
        self.model_id = model_id
        self.built_at: str | None = None
        self.file_sha256: str | None = None
        self.kind = FLAT_KIND
        self.ann_meta: dict[str, Any] | None = None
        self.shortlist = 0
        self.files: dict[str, Any] = {}
        self._vectors = np.zeros((0, self.dim), dtype=np.float32)  # saved rows (memory-mapped)
        self._ids = np.zeros(0, dtype=np.int64)  # face id per saved row, -1 when deleted
        self._ann: Any = None
        self._ann_rows = 0  # rows covered by the PQ index; later rows are the exact tail
        self._pending_vectors: list[np.ndarray] = []
        self._pending_ids: list[np.ndarray] = []
        self._ids_dirty = False
        self._deleted_rows = np.zeros(0, dtype=np.int64)  # sorted saved rows whose id is -1
        self._fd: int | None = None  # the vector file, for re-ranking reads (approximate kind)
        self._file_ident: tuple[int, int] | None = None  # (device, inode) of the mapped file

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)  # type: ignore[arg-type]
            self._fd = None

    def _refresh_deleted(self) -> None:
        self._deleted_rows = np.flatnonzero(self._ids < 0).astype(np.int64)

    # ------------------------------------------------------------------ files
    @property
    def path(self) -> Path:
        return self.folder / VECTORS_NAME

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST_NAME

    @property
    def saved_rows(self) -> int:
        return int(self._ids.shape[0])

    @property
    def deleted(self) -> int:
        return len(self._deleted_rows)

    @property
    def tail(self) -> int:
        """Faces not covered by the approximate index (searched exactly)."""
        if self.kind != APPROX_KIND:
            return 0
        return self.saved_rows - self._ann_rows + sum(len(p) for p in self._pending_ids)

    @property
    def count(self) -> int:
        pending = sum(len(p) for p in self._pending_ids)
        return self.saved_rows - self.deleted + pending

    def info(self) -> IndexInfo:
        return IndexInfo(
            kind=self.kind,
            count=self.count,
            dim=self.dim,
            model_id=self.model_id,
            generation=self.generation,
            built_at=self.built_at,
            index_sha256=self.file_sha256,
            path=str(self.folder),
            ann=self.ann_meta,
            tail=self.tail,
            deleted=self.deleted,
            rebuild_advised=self.rebuild_advice(),
            files=self.files,
            recall=self.recall_text(),
        )

    def recall_text(self) -> str:
        """The measured recall in words (the figures are in `ann`)."""
        if self.kind == FLAT_KIND:
            return "exact search (every face scored)"
        meta = self.ann_meta or {}
        return (
            f"approximate short list, exact scores: mate recall {meta.get('mate_recall')} "
            f"(exact search {meta.get('exact_mate_recall')}) on {meta.get('calibration_queries')} "
            f"simulated weak mates (cosine {meta.get('calibration_mate_score')}); top-20 "
            f"overlap with exact {meta.get('recall_at_20')}; short list {meta.get('shortlist')}; "
            f"measured {meta.get('measured_at')}"
        )

    def rebuild_advice(self, flat_max: int | None = None) -> str | None:
        """Why a rebuild would now pay off (kind no longer fits the size, long tail), or None."""
        flat_max = FLAT_MAX_FACES if flat_max is None else flat_max
        if self.kind == FLAT_KIND and self.count > flat_max:
            return f"{self.count} faces: above {flat_max}, an approximate index is faster"
        if self.kind == APPROX_KIND:
            if self.count <= flat_max // 2:
                return f"{self.count} faces: exact search is fast enough"
            if self.tail > max(50_000, TAIL_MAX_SHARE * self._ann_rows):
                return f"{self.tail} faces were added after the approximate index was built"
            if self.deleted > min(20_000, DELETED_MAX_SHARE * self.saved_rows):
                return f"{self.deleted} deleted faces still occupy the index"
        return None

    def save(self) -> None:
        """Append new rows, write the ids if faces were deleted, then the manifest.

        Each file is replaced or extended before the manifest, which is written last and
        atomically: a crash in between leaves a manifest that no longer matches, so the next
        open rebuilds from the database.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._files_replaced():
            # Another connection rebuilt or rewrote the files since this index mapped them:
            # write this index's complete state instead of appending to files it did not make.
            self._rewrite_all()
            self._write_manifest()
            return
        if self.kind == FLAT_KIND and self.deleted > FLAT_COMPACT_DELETED:
            self._compact_flat()
        if self._pending_ids or not self.path.exists():
            new_vectors = (
                np.concatenate(self._pending_vectors)
                if self._pending_vectors
                else np.zeros((0, self.dim), np.float32)
            )
            new_ids = (
                np.concatenate(self._pending_ids)
                if self._pending_ids
                else np.zeros(0, dtype=np.int64)
            )
            _append(self.path, new_vectors, self.saved_rows * self.dim * 4)
            if not self._ids_dirty:
                _append(self.folder / IDS_NAME, new_ids, self.saved_rows * 8)
            self._ids = np.concatenate([self._ids, new_ids])
            self._pending_vectors.clear()
            self._pending_ids.clear()
        if self._ids_dirty or not (self.folder / IDS_NAME).exists():
            _atomic_write(self.folder / IDS_NAME, self._ids.tobytes())
            self._ids_dirty = False
        self._map_vectors()
        self._write_manifest()

    def _files_replaced(self) -> bool:
        try:
            vectors, ids = self.path.stat(), (self.folder / IDS_NAME).stat()
        except FileNotFoundError:
            return self.saved_rows > 0
        if self._file_ident is not None and self._file_ident != (vectors.st_dev, vectors.st_ino):
            return True
        return vectors.st_size != self.saved_rows * self.dim * 4 or (
            not self._ids_dirty and ids.st_size != self.saved_rows * 8
        )

    def _rewrite_all(self) -> None:
        vectors = np.concatenate([np.asarray(self._vectors), *self._pending_vectors])
        ids = np.concatenate([self._ids, *self._pending_ids])
        self._vectors = np.zeros((0, self.dim), dtype=np.float32)
        _atomic_write(self.path, np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        _atomic_write(self.folder / IDS_NAME, ids.astype(np.int64).tobytes())
        if self.kind == APPROX_KIND and self._ann is not None:
            faiss = _faiss()
            partial = self.folder / (ANN_NAME + ".part")
            faiss.write_index(self._ann, str(partial))
            partial.replace(self.folder / ANN_NAME)
            if self.ann_meta is not None:
                self.ann_meta["file_sha256"] = sha256_file(self.folder / ANN_NAME)
        self._ids = ids.astype(np.int64)
        self._pending_vectors.clear()
        self._pending_ids.clear()
        self._ids_dirty = False
        self._refresh_deleted()
        self._map_vectors()

    def catch_up(self, gallery: Gallery) -> bool:
        """Bring a saved index that fell behind the database up to date by adding the faces
        enrolled since it was saved. False (and unchanged) when anything else changed (faces
        deleted, or row ids reused), which needs a rebuild."""
        saved_ids = np.concatenate([self._ids, *self._pending_ids])
        live = saved_ids[saved_ids >= 0]
        top = int(live.max()) if len(live) else 0
        new = list(
            gallery.conn.execute("SELECT id, embedding FROM faces WHERE id > ? ORDER BY id", (top,))
        )
        if self.count + len(new) != gallery.face_count():
            return False
        # SQLite reuses the highest row ids after deletions: check the newest faces kept here
        # are still the database's.
        recent = live[-64:]
        if len(recent):
            marks = ",".join("?" * len(recent))
            stored = dict(
                gallery.conn.execute(
                    f"SELECT id, embedding FROM faces WHERE id IN ({marks})",
                    [int(i) for i in recent],
                ).fetchall()
            )
            vectors = np.concatenate([np.asarray(self._vectors), *self._pending_vectors])[
                saved_ids >= 0
            ][-64:]
            for face_id, vector in zip(recent.tolist(), vectors, strict=True):
                if stored.get(face_id) != np.asarray(vector, dtype=np.float32).tobytes():
                    return False
        if new:
            ids = np.fromiter((r[0] for r in new), dtype=np.int64, count=len(new))
            matrix = np.frombuffer(b"".join(r[1] for r in new), dtype=np.float32)
            self.add(ids, matrix.reshape(len(new), self.dim))
        self.generation = gallery.generation
        return True

    def _write_manifest(self) -> None:
        self.built_at = self.built_at or utc_now()
        names = [VECTORS_NAME, IDS_NAME] + ([ANN_NAME] if self.kind == APPROX_KIND else [])
        files = {name: file_fingerprint(self.folder / name) for name in names}
        if self.kind == APPROX_KIND and self.ann_meta is not None:
            # The PQ file never changes after its build: keep the full hash taken then.
            files[ANN_NAME]["full_sha256"] = self.ann_meta.get("file_sha256")
        self.files = files
        self.file_sha256 = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
        manifest = {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "count": self.count,
            "rows": self.saved_rows,
            "dim": self.dim,
            "model_id": self.model_id,
            "generation": self.generation,
            "built_at": self.built_at,
            "index_sha256": self.file_sha256,
            "files": files,
            "ann": self.ann_meta,
        }
        _atomic_write(self.manifest_path, json.dumps(manifest, indent=2).encode())

    def verify_files(self, full: bool = False) -> str | None:
        """Check the files against the manifest; `full` hashes big files whole. None when fine."""
        for name, expected in self.files.items():
            path = self.folder / name
            if not path.exists():
                return f"{name} is missing"
            if file_fingerprint(path) != {k: expected[k] for k in ("bytes", "sha256", "sampled")}:
                return f"{name} does not match its manifest checksum (damaged or altered)"
            if (
                full
                and expected.get("full_sha256")
                and sha256_file(path) != expected["full_sha256"]
            ):
                return f"{name} does not match its full SHA-256 (damaged or altered)"
        return None

    def _map_vectors(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        rows = self.saved_rows
        if self.path.exists():
            info = self.path.stat()
            self._file_ident = (info.st_dev, info.st_ino)
        if rows and self.kind == APPROX_KIND:
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            if hasattr(os, "posix_fadvise"):
                # Ask the OS to read the file into its cache in the background: re-ranking
                # reads thousands of random rows per search, cheap from the cache, slow from
                # disk. Nothing waits for it and it does not count as this process's memory.
                os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_WILLNEED)
        if rows == 0:
            self._vectors = np.zeros((0, self.dim), dtype=np.float32)
            return
        self._vectors = np.memmap(self.path, dtype=np.float32, mode="r", shape=(rows, self.dim))

    def _compact_flat(self) -> None:
        """Drop deleted rows from a flat index (rewrites the vector file)."""
        keep = self._ids >= 0
        vectors = np.ascontiguousarray(self._vectors[keep])
        self._ids = np.ascontiguousarray(self._ids[keep])
        self._refresh_deleted()
        self._vectors = np.zeros((0, self.dim), dtype=np.float32)  # release the old mapping
        _atomic_write(self.path, vectors.tobytes())
        self._ids_dirty = True

    # ------------------------------------------------------------------ changes
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add faces (searchable at once; written to disk by `save`)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(ids):
            self._pending_vectors.append(vectors.copy())
            self._pending_ids.append(ids.copy())

    def remove(self, ids: list[int]) -> None:
        """Remove faces by id (masked at once; rows reclaimed at compaction or rebuild)."""
        if not ids:
            return
        wanted = np.asarray(ids, dtype=np.int64)
        hit = np.isin(self._ids, wanted)
        if hit.any():
            self._ids = self._ids.copy()
            self._ids[hit] = -1
            self._ids_dirty = True
            self._refresh_deleted()
        for n, pending in enumerate(self._pending_ids):
            keep = ~np.isin(pending, wanted)
            self._pending_ids[n] = pending[keep]
            self._pending_vectors[n] = self._pending_vectors[n][keep]

    # ------------------------------------------------------------------ search
    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (exact scores, face ids) for one query vector, best first."""
        k = min(int(k), self.count)
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, self.dim)
        found_scores: list[np.ndarray] = []
        found_ids: list[np.ndarray] = []
        with _single_thread():
            if self.kind == APPROX_KIND and self._ann is not None:
                scores, rows = self._search_ann(query, k)
                found_scores.append(scores)
                found_ids.append(self._ids[rows])
                tail_start = self._ann_rows
            else:
                tail_start = 0
            if self.saved_rows > tail_start:
                scores, rows = self._scan(query, tail_start, k)
                found_scores.append(scores)
                found_ids.append(self._ids[rows])
        for vectors, ids in zip(self._pending_vectors, self._pending_ids, strict=True):
            found_scores.append(vectors @ query[0])
            found_ids.append(ids)
        scores = np.concatenate(found_scores)
        ids = np.concatenate(found_ids)
        live = ids >= 0
        scores, ids = scores[live], ids[live]
        order = np.argsort(-scores, kind="stable")[:k]
        return scores[order].astype(np.float32), ids[order]

    def _scan(self, query: np.ndarray, start: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact scan of saved rows from `start`; masked rows are over-fetched and dropped."""
        faiss = _faiss()
        block = self._vectors[start:]
        masked = len(self._deleted_rows) - int(np.searchsorted(self._deleted_rows, start))
        want = min(len(block), k + masked)
        scores, rows = faiss.knn(query, block, want, metric=faiss.METRIC_INNER_PRODUCT)
        keep = rows[0] >= 0
        return scores[0][keep], rows[0][keep] + start

    def _search_ann(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        short = max(self.shortlist, RERANK_FACTOR * k)
        # Fast scan takes no id filter: deleted rows are over-fetched, then dropped as -1 ids.
        deleted = int(np.searchsorted(self._deleted_rows, self._ann_rows))
        short = min(self._ann_rows, short + deleted)
        _, rows = self._ann.search(query, short)
        rows = rows[0][rows[0] >= 0]
        return self._rerank(query[0], rows)

    def _rerank(self, query: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores of candidate rows from the float32 embeddings (sorted rows: fewer seeks)."""
        rows = np.sort(rows)
        return self._read_rows(rows) @ query, rows

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows of the vector file. Read with pread, not through the memory map, so that
        re-ranking a few thousand random rows per search does not, search after search, make
        the whole multi-gigabyte file resident in this process (it stays in the OS cache)."""
        if self._fd is None or not hasattr(os, "pread"):
            return np.asarray(self._vectors[rows])
        size = self.dim * 4
        fd = self._fd
        data = b"".join([os.pread(fd, size, row * size) for row in rows.tolist()])
        return np.frombuffer(data, dtype=np.float32).reshape(len(rows), self.dim)

    def search_exact(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over every row, whatever the kind (reference for recall checks)."""
        kind, self.kind = self.kind, FLAT_KIND
        try:
            return self.search(vector, k)
        finally:
            self.kind = kind

    # ------------------------------------------------------------------ open / rebuild
    @classmethod
    def open_for(
        cls, gallery: Gallery, on_message: Callable[[str], None] | None = None
    ) -> VectorIndex:
        """Load the saved index if it matches the database; else rebuild it and say why."""
        problem = cls._check_saved(gallery)
        if problem in (None, STALE, OTHER_COUNT):
            loaded = cls.load(gallery.folder, expect_model=gallery.model_id)
            if isinstance(loaded, VectorIndex) and (problem is None or loaded.catch_up(gallery)):
                return loaded
            problem = loaded if isinstance(loaded, str) else problem
        if gallery.face_count() == 0 and not (gallery.folder / MANIFEST_NAME).exists():
            return cls(gallery.folder, gallery.model_dim or 1, gallery.generation, gallery.model_id)
        message = f"{gallery.folder / MANIFEST_NAME}: {problem}; rebuilding it from the database"
        if on_message is not None:
            on_message(message)
        index: VectorIndex = drain(rebuild_index(gallery, reason=f"automatic: {problem}"))
        return index

    @classmethod
    def _check_saved(cls, gallery: Gallery) -> str | None:
        try:
            manifest = json.loads((gallery.folder / MANIFEST_NAME).read_text())
        except FileNotFoundError:
            return "the index manifest is missing"
        except (OSError, ValueError) as exc:
            return f"the index manifest cannot be read ({exc})"
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
            return "the index was written by another version"
        if manifest.get("model_id") != gallery.model_id:
            return "the index was built with another model"
        if manifest.get("generation") != gallery.generation:
            return STALE
        if manifest.get("count") != gallery.face_count():
            return OTHER_COUNT
        return None

    @classmethod
    def load(cls, folder: Path, expect_model: str | None = None) -> VectorIndex | str:
        """Open saved files (memory-mapped) after checking them; a reason string when unusable."""
        faiss = _faiss()
        folder = Path(folder)
        try:
            manifest = json.loads((folder / MANIFEST_NAME).read_text())
        except (OSError, ValueError) as exc:
            return f"the index manifest cannot be read ({exc})"
        index = cls(folder, int(manifest["dim"]), int(manifest["generation"]), expect_model)
        index.model_id = manifest.get("model_id")
        index.kind = manifest.get("kind", FLAT_KIND)
        index.built_at = manifest.get("built_at")
        index.files = manifest.get("files") or {}
        index.file_sha256 = manifest.get("index_sha256")
        index.ann_meta = manifest.get("ann")
        if not index.files:
            return "the index manifest lists no files"
        try:
            problem = index.verify_files()
        except OSError as exc:
            problem = f"the index files cannot be read ({exc})"
        if problem is not None:
            return problem
        rows = int(manifest.get("rows", -1))
        ids_bytes = (folder / IDS_NAME).stat().st_size
        vec_bytes = (folder / VECTORS_NAME).stat().st_size
        if ids_bytes != rows * 8 or vec_bytes != rows * index.dim * 4:
            return "the index files' sizes do not match the manifest"
        index._ids = np.fromfile(folder / IDS_NAME, dtype=np.int64)
        index._refresh_deleted()
        index._map_vectors()
        if index.count != manifest.get("count"):
            return "the index files' contents do not match the manifest"
        if index.kind == APPROX_KIND:
            meta = index.ann_meta or {}
            try:
                # 16 bytes a face: read whole (160 MB at 10 million faces).
                index._ann = faiss.read_index(str(folder / ANN_NAME))
            except RuntimeError as exc:
                return f"FAISS cannot read {ANN_NAME} ({exc})"
            index._ann_rows = int(meta.get("rows", -1))
            index.shortlist = int(meta.get("shortlist", 0))
            if index._ann.ntotal != index._ann_rows or index.shortlist <= 0:
                return f"{ANN_NAME} does not match the manifest"
        elif index.kind != FLAT_KIND:
            return f"unknown index kind {index.kind!r}"
        return index


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
    flat_max = FLAT_MAX_FACES if flat_max is None else flat_max
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
    faiss = _faiss()
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
    faiss = _faiss()
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
    with gallery.transaction():
        gallery.audit("index_rebuild", details)
    gallery._index = index
    return index


def _append(path: Path, array: np.ndarray, expected_size: int) -> None:
    """Append rows to a file that must hold exactly `expected_size` bytes (else rewrite)."""
    if path.exists() and path.stat().st_size != expected_size:
        raise OSError(f"{path} has {path.stat().st_size} bytes, expected {expected_size}")
    with open(path, "ab") as handle:
        handle.write(np.ascontiguousarray(array).tobytes())
        handle.flush()
        os.fsync(handle.fileno())


def _atomic_write(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".part")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)
