"""The FAISS vector index: derived from SQLite, never the source of truth.

Exact inner-product search over L2-normalised embeddings (so the score is the cosine
similarity). FAISS ids are the faces table's row ids. A manifest beside the index records the
model, the face count, the gallery generation it was built at and the SHA-256 of the index
file; when any of these disagree with the database, or the file cannot be read, the index is
rebuilt from the embeddings stored in SQLite and the reason is reported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workstation.audit.log import utc_now
from workstation.progress import CancelToken, Progress, drain
from workstation.vision.models import sha256_bytes

if TYPE_CHECKING:
    from workstation.gallery.store import Gallery

INDEX_NAME = "faces.faiss"
MANIFEST_NAME = "faces.faiss.json"
INDEX_KIND = "flat-ip"


def _faiss() -> Any:
    import faiss

    return faiss


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

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class VectorIndex:
    """An in-memory FAISS index bound to one gallery folder."""

    def __init__(self, folder: Path, dim: int, generation: int, model_id: str | None) -> None:
        faiss = _faiss()
        self.folder = folder
        self.dim = dim
        self.generation = generation
        self.model_id = model_id
        self.built_at: str | None = None
        self.file_sha256: str | None = None
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    # ------------------------------------------------------------------ files
    @property
    def path(self) -> Path:
        return self.folder / INDEX_NAME

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST_NAME

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    def info(self) -> IndexInfo:
        return IndexInfo(
            kind=INDEX_KIND,
            count=self.count,
            dim=self.dim,
            model_id=self.model_id,
            generation=self.generation,
            built_at=self.built_at,
            index_sha256=self.file_sha256,
            path=str(self.path),
        )

    def save(self) -> None:
        """Write index then manifest, each atomically (a crash between them forces a rebuild)."""
        faiss = _faiss()
        data = faiss.serialize_index(self._index).tobytes()
        self.file_sha256 = sha256_bytes(data)
        self.built_at = self.built_at or utc_now()
        _atomic_write(self.path, data)
        manifest = {
            "kind": INDEX_KIND,
            "count": self.count,
            "dim": self.dim,
            "model_id": self.model_id,
            "generation": self.generation,
            "built_at": self.built_at,
            "index_sha256": self.file_sha256,
        }
        _atomic_write(self.manifest_path, json.dumps(manifest, indent=2).encode())

    # ------------------------------------------------------------------ changes
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: list[int]) -> None:
        if ids:
            self._index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, face ids) for one query vector; fewer when the index is smaller."""
        k = min(k, self.count)
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, self.dim)
        scores, ids = self._index.search(query, k)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    # ------------------------------------------------------------------ open / rebuild
    @classmethod
    def open_for(
        cls, gallery: Gallery, on_message: Callable[[str], None] | None = None
    ) -> VectorIndex:
        """Load the saved index if it matches the database; else rebuild it and say why."""
        problem = cls._check_saved(gallery)
        if problem is None:
            loaded = cls._load(gallery)
            if isinstance(loaded, VectorIndex):
                return loaded
            problem = loaded
        if gallery.face_count() == 0 and not (gallery.folder / INDEX_NAME).exists():
            return cls(gallery.folder, gallery.model_dim or 1, gallery.generation, gallery.model_id)
        message = f"{gallery.folder / INDEX_NAME}: {problem}; rebuilding it from the database"
        if on_message is not None:
            on_message(message)
        index: VectorIndex = drain(rebuild_index(gallery, reason=f"automatic: {problem}"))
        return index

    @classmethod
    def _check_saved(cls, gallery: Gallery) -> str | None:
        manifest_path = gallery.folder / MANIFEST_NAME
        if not (gallery.folder / INDEX_NAME).exists():
            return "the index file is missing"
        try:
            manifest = json.loads(manifest_path.read_text())
        except FileNotFoundError:
            return "the index manifest is missing"
        except (OSError, ValueError) as exc:
            return f"the index manifest cannot be read ({exc})"
        if manifest.get("model_id") != gallery.model_id:
            return "the index was built with another model"
        if manifest.get("generation") != gallery.generation:
            return "the index is out of date with the database"
        if manifest.get("count") != gallery.face_count():
            return "the index holds a different number of faces than the database"
        return None

    @classmethod
    def _load(cls, gallery: Gallery) -> VectorIndex | str:
        faiss = _faiss()
        manifest = json.loads((gallery.folder / MANIFEST_NAME).read_text())
        try:
            data = (gallery.folder / INDEX_NAME).read_bytes()
        except OSError as exc:
            return f"the index file cannot be read ({exc})"
        digest = sha256_bytes(data)
        if digest != manifest.get("index_sha256"):
            return "the index file does not match its manifest checksum (damaged or altered)"
        try:
            loaded = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as exc:
            return f"FAISS cannot read the index file ({exc})"
        if loaded.d != (gallery.model_dim or loaded.d) or loaded.ntotal != gallery.face_count():
            return "the index file's contents do not match the database"
        index = cls(gallery.folder, int(loaded.d), gallery.generation, gallery.model_id)
        index._index = loaded
        index.built_at = manifest.get("built_at")
        index.file_sha256 = digest
        return index


def rebuild_index(
    gallery: Gallery, reason: str = "requested", cancel: CancelToken | None = None
) -> Iterator[Progress]:
    """Rebuild the index from SQLite embeddings; yields progress, returns the new VectorIndex.

    The rebuild is audited. Cancelling leaves the previous index files untouched.
    """
    total = gallery.face_count()
    index = VectorIndex(
        gallery.folder, gallery.model_dim or 1, gallery.generation, gallery.model_id
    )
    done = 0
    yield Progress(0, total, "reading embeddings from the database")
    for ids, matrix in gallery.embeddings():
        if cancel is not None and cancel.cancelled:
            yield Progress(done, total, "cancelled; the previous index was kept")
            return None
        index.add(ids, matrix)
        done += len(ids)
        yield Progress(done, total, f"indexed {done} of {total} faces")
    index.built_at = utc_now()
    index.save()
    with gallery.transaction():
        gallery.audit(
            "index_rebuild",
            {
                "reason": reason,
                "faces": index.count,
                "kind": INDEX_KIND,
                "model_id": gallery.model_id,
                "index_sha256": index.file_sha256,
            },
        )
    gallery._index = index
    return index


def _atomic_write(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".part")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)
