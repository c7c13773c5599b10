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

Up to `FLAT_MAX_FACES` faces the search is an exact scan of the memory-mapped matrix; above it a
product quantiser proposes a short list that is re-ranked exactly (why, and how the short list
is sized: workstation/gallery/index_build.py and docs/PERFORMANCE.md).

Faces added after the approximate index was built are kept in a "tail" searched exactly, and deleted
faces are masked; both without a rebuild. When the tail or the deleted share grows too large,
`rebuild_advice()` says so and enrolment rebuilds at its end.

When the manifest disagrees with the database (model, generation, count) or a file fails its
checksum, the index is rebuilt from the embeddings stored in SQLite and the reason is reported.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workstation.audit.log import utc_now
from workstation.hashing import sha256_file
from workstation.progress import drain

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
# Never fewer than RERANK_FACTOR x k short-list rows are re-ranked (lengths: index_build.py).
RERANK_FACTOR = 10
# Files at most this big are hashed whole; bigger ones by size and sampled blocks so that
# opening a 5 GB gallery does not read 5 GB (full verification: `verify_files(full=True)`).
FULL_HASH_MAX_BYTES = 16 << 20
# Advise a rebuild when the un-indexed tail or the deleted rows pass these shares.
TAIL_MAX_SHARE = 0.2
DELETED_MAX_SHARE = 0.1
FLAT_COMPACT_DELETED = 1000


def faiss_module() -> Any:
    import faiss

    return faiss


@contextmanager
def single_thread() -> Iterator[None]:
    """One OpenMP thread for a single query (the setting is per calling thread)."""
    faiss = faiss_module()
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
            atomic_write(self.folder / IDS_NAME, self._ids.tobytes())
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
        atomic_write(self.path, np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        atomic_write(self.folder / IDS_NAME, ids.astype(np.int64).tobytes())
        if self.kind == APPROX_KIND and self._ann is not None:
            faiss = faiss_module()
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
        atomic_write(self.manifest_path, json.dumps(manifest, indent=2).encode())

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
        atomic_write(self.path, vectors.tobytes())
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
        with single_thread():
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
        faiss = faiss_module()
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
        from workstation.gallery.index_build import rebuild_index  # builds on this module

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
        faiss = faiss_module()
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


def _append(path: Path, array: np.ndarray, expected_size: int) -> None:
    """Append rows to a file that must hold exactly `expected_size` bytes (else rewrite)."""
    if path.exists() and path.stat().st_size != expected_size:
        raise OSError(f"{path} has {path.stat().st_size} bytes, expected {expected_size}")
    with open(path, "ab") as handle:
        handle.write(np.ascontiguousarray(array).tobytes())
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".part")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)
