"""The vector index: derived from SQLite, never the source of truth.

Scores are inner products of L2-normalised embeddings (cosine similarity) and are always exact:
every candidate is re-scored against its float32 embedding before it is returned.

Up to `FLAT_MAX_FACES` faces the search is an exact scan of the memory-mapped float32 matrix.
Above it a short list is proposed from compressed copies held in memory (16-byte PQ codes, then
8-bit codes: workstation/gallery/index_approx.py) and only its best few hundred rows are read
from the float32 file and scored exactly. The files are listed in
workstation/gallery/index_files.py; building them and deciding when to rebuild is
workstation/gallery/index_build.py, which uses this module (never the other way round).

Faces added after the approximate index was built are kept in a "tail" searched exactly.
Deleted faces are overwritten in place in every file at once (zeros, id -1, fsync) and their rows
reclaimed lazily (compaction of the exact kind, or a rebuild). When the tail or the deleted share
grows too large, `rebuild_advice()` says so and enrolment rebuilds at its end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workstation.audit.log import utc_now
from workstation.gallery.index_approx import ShortList
from workstation.gallery.index_files import (
    ANN_NAME,
    APPROX_FILES,
    APPROX_KIND,
    FLAT_FILES,
    FLAT_KIND,
    FORMAT_VERSION,
    IDS_NAME,
    INDEX_NAME,
    MANIFEST_NAME,
    VECTORS_NAME,
    append_file,
    atomic_write,
    faiss_module,
    fingerprints,
    fingerprints_sha256,
    inner_products,
    overwrite_in_place,
    read_manifest,
    read_rows,
    single_thread,
    verify_fingerprints,
    write_manifest,
    zero_rows,
)

__all__ = [
    "ANN_NAME",
    "APPROX_KIND",
    "FLAT_KIND",
    "FLAT_MAX_FACES",
    "INDEX_NAME",
    "MANIFEST_NAME",
    "VECTORS_NAME",
    "IndexInfo",
    "VectorIndex",
]

INDEX_KIND = FLAT_KIND  # kind of a new, empty index

# Up to this many faces the exact scan is fast enough (300k: p95 ~6 ms, 500k ~11 ms on one
# core here, 128-d; the scan reads dim x 4 bytes a face); above it the approximate kind keeps
# 1M-10M searches well under 100 ms.
FLAT_MAX_FACES = 500_000
# Advise a rebuild when the un-indexed tail or the deleted rows pass these shares.
TAIL_MAX_SHARE = 0.2
DELETED_MAX_SHARE = 0.1
FLAT_COMPACT_DELETED = 1000
DELETED_ID = np.int64(-1)
UNKNOWN_GENERATION = -1  # never a gallery's generation: the next use reopens the index


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


class VectorIndex:
    """The index of one gallery folder: exact for small galleries, short list + exact above.

    One instance per thread (like `Gallery`); several instances share the memory-mapped files.
    """

    def __init__(self, folder: Path, dim: int, generation: int, model_id: str | None) -> None:
        self.folder = Path(folder)
        self.dim = int(dim)
        self.generation = generation
        self._files_generation = generation  # what the saved files show (manifest)
        self.model_id = model_id
        self.built_at: str | None = None
        self.file_sha256: str | None = None
        self.kind = FLAT_KIND
        self.ann_meta: dict[str, Any] | None = None
        self.files: dict[str, Any] = {}
        self._vectors = np.zeros((0, self.dim), dtype=np.float32)  # saved rows (memory-mapped)
        # Face id per saved row, -1 when deleted.
        self._ids: np.ndarray = np.zeros(0, dtype=np.int64)
        self._approx: ShortList | None = None
        self._pending_vectors: list[np.ndarray] = []
        self._pending_ids: list[np.ndarray] = []
        self._deleted_rows: np.ndarray = np.zeros(0, dtype=np.int64)  # sorted rows whose id is -1
        self._removed: set[int] = set()  # face ids removed through this instance
        self._fd: int | None = None  # the vector file, for reading rows to re-rank
        self._file_ident: tuple[int, int] | None = None  # (device, inode) of the mapped file

    def __del__(self) -> None:
        self._close()

    def _close(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)  # type: ignore[arg-type]
            self._fd = None

    # ------------------------------------------------------------------ state
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
    def _ann_rows(self) -> int:
        return self._approx.rows if self._approx is not None else 0

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

    @property
    def shortlist(self) -> int:
        """Rows the approximate kind proposes for a top-20 search (0 for the exact kind)."""
        return self._approx.shortlist if self._approx is not None else 0

    @property
    def rerank(self) -> int:
        """Rows of the short list scored exactly for a top-20 search (0 for the exact kind)."""
        return self._approx.rerank if self._approx is not None else 0

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
            f"overlap with exact {meta.get('recall_at_20')}; short list {meta.get('shortlist')}, "
            f"{meta.get('rerank')} scored exactly; measured {meta.get('measured_at')}"
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

    def newest(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(face ids, embeddings) of the `n` most recently added faces still here."""
        ids = np.concatenate([self._ids, *self._pending_ids])
        live = np.flatnonzero(ids >= 0)[-n:] if n > 0 else np.zeros(0, dtype=np.int64)
        saved = live[live < self.saved_rows]
        pending = np.concatenate([np.zeros((0, self.dim), np.float32), *self._pending_vectors])[
            live[live >= self.saved_rows] - self.saved_rows
        ]
        vectors = np.concatenate([self._read_rows(saved), pending])
        return ids[live], vectors

    # ------------------------------------------------------------------ files
    def save(self) -> None:
        """Append new rows, compact if due, then write the manifest (last, atomically: a crash
        in between leaves a manifest that no longer matches, so the next open rebuilds)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._changed_elsewhere() and not self._reload_keeping_changes():
            return
        if self.kind == FLAT_KIND and self.deleted > FLAT_COMPACT_DELETED:
            self._compact_flat()
        ids_path = self.folder / IDS_NAME
        if self._pending_ids or not self.path.exists() or not ids_path.exists():
            new_vectors = np.concatenate(
                [np.zeros((0, self.dim), np.float32), *self._pending_vectors]
            )
            new_ids = np.concatenate([np.zeros(0, np.int64), *self._pending_ids])
            append_file(self.path, new_vectors.tobytes(), self.saved_rows * self.dim * 4)
            append_file(ids_path, new_ids.tobytes(), self.saved_rows * 8)
            self._ids = np.concatenate([self._ids, new_ids])
            self._pending_vectors.clear()
            self._pending_ids.clear()
        self._map_vectors()
        self._write_manifest(self.generation)

    def _changed_elsewhere(self) -> bool:
        """Whether another connection replaced or extended the files since they were read."""
        try:
            vectors, ids = self.path.stat(), (self.folder / IDS_NAME).stat()
        except FileNotFoundError:
            return self.saved_rows > 0
        if self._file_ident is not None and self._file_ident != (vectors.st_dev, vectors.st_ino):
            return True
        return vectors.st_size != self.saved_rows * self.dim * 4 or ids.st_size != (
            self.saved_rows * 8
        )

    def _reload_keeping_changes(self) -> bool:
        """Take the files as another connection left them, then re-apply this instance's
        unsaved additions and its removals. The generation becomes the files' own, so a
        gallery that moved on meanwhile catches the index up (or rebuilds it) on next use.

        False when the files cannot be opened (another connection is rebuilding them, or left
        them damaged): then nothing is written and the generation is marked unknown, so that
        the next `open_index` of the gallery catches up or rebuilds from the database, which
        holds every change."""
        pending = list(zip(self._pending_ids, self._pending_vectors, strict=True))
        removed = sorted(self._removed)
        loaded = VectorIndex.load(self.folder, expect_model=self.model_id)
        if isinstance(loaded, str):
            self._pending_ids.clear()
            self._pending_vectors.clear()
            self.generation = UNKNOWN_GENERATION
            return False
        self._take_state(loaded)
        if removed:
            self.remove(removed)
        for ids, vectors in pending:
            keep = ~np.isin(ids, self._ids)
            self.add(ids[keep], vectors[keep])
        return True

    def _take_state(self, other: VectorIndex) -> None:
        self._close()
        for name in (
            "dim",
            "generation",
            "_files_generation",
            "model_id",
            "built_at",
            "file_sha256",
            "kind",
            "ann_meta",
            "files",
            "_vectors",
            "_ids",
            "_approx",
            "_pending_vectors",
            "_pending_ids",
            "_deleted_rows",
            "_fd",
            "_file_ident",
        ):
            setattr(self, name, getattr(other, name))
        other._fd = None

    def _write_manifest(self, generation: int) -> None:
        """Describe the files as they are now: their rows, the faces in them (not the unsaved
        ones), and `generation`, the gallery generation they show."""
        self.built_at = self.built_at or utc_now()
        names = APPROX_FILES if self.kind == APPROX_KIND else FLAT_FILES
        self.files = fingerprints(self.folder, names)
        self.file_sha256 = fingerprints_sha256(self.files)
        manifest = {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "count": self.saved_rows - self.deleted,
            "rows": self.saved_rows,
            "dim": self.dim,
            "model_id": self.model_id,
            "generation": generation,
            "built_at": self.built_at,
            "index_sha256": self.file_sha256,
            "files": self.files,
            "ann": self.ann_meta,
        }
        write_manifest(self.folder, manifest)
        self._files_generation = generation

    def verify_files(self) -> str | None:
        """Check the files against the manifest's checksums. None when fine."""
        return verify_fingerprints(self.folder, self.files)

    def _map_vectors(self) -> None:
        self._close()
        rows = self.saved_rows
        if self.path.exists():
            info = self.path.stat()
            self._file_ident = (info.st_dev, info.st_ino)
        if rows == 0:
            self._vectors = np.zeros((0, self.dim), dtype=np.float32)
            return
        self._vectors = np.memmap(self.path, dtype=np.float32, mode="r", shape=(rows, self.dim))
        if hasattr(os, "pread"):
            self._fd = os.open(self.path, os.O_RDONLY)
            if hasattr(os, "posix_fadvise"):
                # Exact kind: every search reads the whole file, so have the OS read it into
                # its cache in the background now. Approximate kind: searches read a few
                # hundred random rows, so no read-ahead around them.
                advice = os.POSIX_FADV_RANDOM if self._approx else os.POSIX_FADV_WILLNEED
                os.posix_fadvise(self._fd, 0, 0, advice)

    def _compact_flat(self) -> None:
        """Drop deleted rows from an exact index (rewrites the vector and id files)."""
        keep = self._ids >= 0
        vectors = np.ascontiguousarray(self._vectors[keep])
        self._ids = np.ascontiguousarray(self._ids[keep])
        self._refresh_deleted()
        self._vectors = np.zeros((0, self.dim), dtype=np.float32)  # release the old mapping
        self._close()
        atomic_write(self.path, vectors.tobytes())
        atomic_write(self.folder / IDS_NAME, self._ids.tobytes())

    def _refresh_deleted(self) -> None:
        self._deleted_rows = np.flatnonzero(self._ids < 0).astype(np.int64)

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
        """Remove faces by id, from memory and from every file at once.

        Their rows are overwritten in place (zero vectors and codes, id -1) and the files
        fsynced, then the manifest rewritten, before this returns: no copy of a removed
        embedding is left in the index files (issue 12), and the files stay consistent with
        their manifest (still stamped with the generation they were saved at, so that a crash
        before `save()` is caught up from the database on the next open, not rebuilt). Rows are
        reclaimed at compaction or rebuild.
        """
        if not ids:
            return
        wanted = np.asarray(list(ids), dtype=np.int64)
        self._removed.update(wanted.tolist())
        for n, pending in enumerate(self._pending_ids):
            keep = ~np.isin(pending, wanted)
            self._pending_ids[n] = pending[keep]
            self._pending_vectors[n] = self._pending_vectors[n][keep]
        if self.saved_rows and self._changed_elsewhere():
            self._reload_keeping_changes()  # applies this removal to the current files
            return
        rows = np.flatnonzero(np.isin(self._ids, wanted))
        if not len(rows):
            return
        zero_rows(self.path, rows, self.dim * 4)
        if self._approx is not None:
            self._approx.erase(rows)
        tombstone = DELETED_ID.tobytes()
        overwrite_in_place(self.folder / IDS_NAME, ((int(r) * 8, tombstone) for r in rows))
        self._ids = self._ids.copy()
        self._ids[rows] = DELETED_ID
        self._refresh_deleted()
        self._write_manifest(self._files_generation)

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
            if self.kind == APPROX_KIND and self._approx is not None:
                deleted = int(np.searchsorted(self._deleted_rows, self._ann_rows))
                rows = np.sort(self._approx.candidates(query, k, self._ids, deleted))
                found_scores.append(inner_products(self._read_rows(rows), query[0]))
                found_ids.append(self._ids[rows])
                tail_start = self._ann_rows
            else:
                tail_start = 0
            if self.saved_rows > tail_start:
                scores, rows = self._scan(query, tail_start, k)
                found_scores.append(scores)
                found_ids.append(self._ids[rows])
        for vectors, ids in zip(self._pending_vectors, self._pending_ids, strict=True):
            found_scores.append(inner_products(vectors, query[0]))
            found_ids.append(ids)
        scores = np.concatenate(found_scores)
        ids = np.concatenate(found_ids)
        live = ids >= 0
        scores, ids = scores[live], ids[live]
        order = np.argsort(-scores, kind="stable")[:k]
        return scores[order].astype(np.float32), ids[order]

    def _scan(self, query: np.ndarray, start: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact scan of saved rows from `start`; deleted rows are over-fetched and dropped."""
        faiss = faiss_module()
        block = self._vectors[start:]
        masked = len(self._deleted_rows) - int(np.searchsorted(self._deleted_rows, start))
        want = min(len(block), k + masked)
        scores, rows = faiss.knn(query, block, want, metric=faiss.METRIC_INNER_PRODUCT)
        keep = rows[0] >= 0
        return scores[0][keep], rows[0][keep] + start

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows of the vector file. Read with pread, not through the memory map, so that
        re-ranking random rows search after search does not make the whole multi-gigabyte file
        resident in this process (it stays in the OS cache, which the OS may drop)."""
        if self._fd is None:
            return np.asarray(self._vectors[rows], dtype=np.float32).reshape(-1, self.dim)
        data = read_rows(self._fd, rows, self.dim * 4)
        return np.frombuffer(data, dtype=np.float32).reshape(len(rows), self.dim)

    def search_exact(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over every row, whatever the kind (reference for recall checks)."""
        kind, self.kind = self.kind, FLAT_KIND
        try:
            return self.search(vector, k)
        finally:
            self.kind = kind

    # ------------------------------------------------------------------ open
    @classmethod
    def load(cls, folder: Path, expect_model: str | None = None) -> VectorIndex | str:
        """Open saved files (memory-mapped) after checking them; a reason string when unusable."""
        folder = Path(folder)
        try:
            manifest = read_manifest(folder)
        except (OSError, ValueError) as exc:
            return f"the index manifest cannot be read ({exc})"
        if manifest.get("format") != FORMAT_VERSION:
            return "the index was written by another version"
        try:
            index = cls(folder, int(manifest["dim"]), int(manifest["generation"]), expect_model)
            rows = int(manifest["rows"])
        except (KeyError, TypeError, ValueError) as exc:
            return f"the index manifest is incomplete ({exc})"
        index.model_id = manifest.get("model_id")
        index.kind = manifest.get("kind", FLAT_KIND)
        index.built_at = manifest.get("built_at")
        index.files = manifest.get("files") or {}
        index.file_sha256 = manifest.get("index_sha256")
        index.ann_meta = manifest.get("ann")
        if index.kind not in (FLAT_KIND, APPROX_KIND):
            return f"unknown index kind {index.kind!r}"
        expected = APPROX_FILES if index.kind == APPROX_KIND else FLAT_FILES
        if sorted(index.files) != sorted(expected):
            return "the index manifest does not list its files"
        try:
            problem = index.verify_files()
            if problem is None and (
                (folder / IDS_NAME).stat().st_size != rows * 8
                or index.path.stat().st_size != rows * index.dim * 4
            ):
                problem = "the index files' sizes do not match the manifest"
        except OSError as exc:
            problem = f"the index files cannot be read ({exc})"
        if problem is not None:
            return problem
        index._ids = np.fromfile(folder / IDS_NAME, dtype=np.int64)
        index._refresh_deleted()
        if index.count != manifest.get("count"):
            return "the index files' contents do not match the manifest"
        if index.kind == APPROX_KIND:
            approx = ShortList.load(folder, index.ann_meta or {})
            if isinstance(approx, str):
                return approx
            if approx.rows > rows:
                return f"{ANN_NAME} does not match the manifest"
            index._approx = approx
        index._map_vectors()
        return index


def remove_from_saved(folder: Path, ids: list[int]) -> bool:
    """Overwrite `ids` in the index files saved in `folder`, whatever gallery generation they
    show (a saved index that is behind the database still holds the deleted faces' vectors
    until its next rebuild; issue 12: a delete removes them from every file in the same act).
    The manifest keeps the generation it had, so the next open catches the files up or
    rebuilds them as before. False when there are no usable files to change (none saved, or
    damaged: the rebuild that follows replaces them)."""
    loaded = VectorIndex.load(folder)
    if isinstance(loaded, str):
        return False
    try:
        loaded.remove(ids)
    finally:
        loaded._close()
    return True
