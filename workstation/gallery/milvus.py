"""The agency gallery's vectors: one Milvus collection, derived from the PostgreSQL database.

PostgreSQL is the source of truth; the collection holds each face's embedding under its face id
(the `faces` row id) and nothing else, so it can always be rebuilt from the database
(`workstation index rebuild`). Milvus may be a server (`http://host:19530`: standalone or a
distributed cluster) or Milvus Lite (a local path ending in `.db`, for one process: tests and
trials).

Keeping the two in step:

- **Writes** happen inside the gallery's write transaction, just before it commits, while the
  write lock is held (`before_commit`): the faces a change added are inserted (their ids are
  new: PostgreSQL's sequence never gives an id twice, even to an act that died) and the faces it
  removed are deleted. Every workstation's writes are therefore serialised, as Milvus Lite's
  server requires, and a deletion the law requires takes the face out of searches before its
  rows are gone. If the process dies between the Milvus write and the commit, or the commit
  fails, the collection holds vectors with no row or lacks vectors of rows that stayed.
- **Repair on open**: the first search of a gallery compares the collection with the database
  (counts, the newest face id, and no vector above it); when they differ it compares every id,
  under the write lock, re-inserts the missing vectors from the stored embeddings and deletes
  the ones with no row, and records the repair in the audit log. A repair upserts (same id,
  same vector: idempotent), and writers insert only ids never given before, so a repair and a
  writer never duplicate a face.
- **Search** asks Milvus for the nearest face ids and re-scores them exactly against the
  embeddings in the database, so a score never depends on the index type (HNSW, IVF, DiskANN):
  as in the embedded gallery, the index proposes and the stored embedding decides. Ids with no
  row (a repair pending) are dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from workstation.audit.actions import AuditAction
from workstation.errors import GalleryError
from workstation.progress import CancelToken, Progress

if TYPE_CHECKING:
    from workstation.gallery.index import IndexInfo
    from workstation.gallery.store import Gallery

# Added faces of a change: (face ids, embeddings) chunks, in the order they were written.
Added = list[tuple[np.ndarray, np.ndarray]]

# Milvus refuses a search limit above this (its `topk` maximum).
MILVUS_MAX_TOPK = 16_384
# Rows per insert request (Milvus caps a request at 64 MB: 512-d float32 is 2 KB a row).
INSERT_BATCH = 10_000
# Vectors written in one act from which the act seals them (flush) so Milvus indexes them at
# once. Unsealed ("growing") vectors are searched without the index: measured on Milvus Lite
# 3.2 (2 shared cores), 20,000 growing vectors took 5.5 s a search, the same sealed and indexed
# 0.1-0.2 s. A flush costs about 1 s, so small acts (one enrolment) leave sealing to Milvus.
FLUSH_AT = 5_000
DEFAULT_INDEX = "HNSW"
# HNSW graph degree and build breadth: Milvus's own defaults for recall near 0.99.
DEFAULT_INDEX_PARAMS: dict[str, dict[str, Any]] = {
    "HNSW": {"M": 16, "efConstruction": 200},
    "IVF_FLAT": {"nlist": 1024},
    "IVF_SQ8": {"nlist": 1024},
    "FLAT": {},
    "DISKANN": {},
}
# Rows Milvus proposes for each search, whatever the number of candidates asked for: all of them
# are scored exactly from the database's embeddings and the best k kept, as the embedded
# gallery's short list does. Asking Milvus for only k rows left its approximate order to decide
# which mates were seen: at 1M faces on Milvus Lite (HNSW, ef 256, k 20) the top 20 held 0.950
# of the mates exact search finds (docs/PERFORMANCE.md). 400 embeddings are 200 KB read from
# the database per search.
PROPOSALS = 400
# Search breadth: HNSW's ef (at least the number of rows proposed), IVF's nprobe.
DEFAULT_SEARCH_PARAMS: dict[str, dict[str, Any]] = {
    "HNSW": {"ef": 256},
    "IVF_FLAT": {"nprobe": 64},
    "IVF_SQ8": {"nprobe": 64},
    "FLAT": {},
    "DISKANN": {"search_list": 256},
}


@dataclass(frozen=True)
class MilvusSettings:
    """The [vectors] section of an agency gallery's gallery.toml."""

    uri: str
    collection: str = "faces"
    index_type: str = DEFAULT_INDEX
    index_params: dict[str, Any] = field(default_factory=dict)
    search_params: dict[str, Any] = field(default_factory=dict)

    def build_params(self) -> dict[str, Any]:
        return {**DEFAULT_INDEX_PARAMS.get(self.index_type, {}), **self.index_params}

    def query_params(self) -> dict[str, Any]:
        return {**DEFAULT_SEARCH_PARAMS.get(self.index_type, {}), **self.search_params}

    @property
    def where(self) -> str:
        return f"Milvus collection {self.collection!r} at {self.uri}"


_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def milvus_client(uri: str) -> Any:
    """One client per server (or Milvus Lite file) per process: gRPC clients are thread-safe,
    and Milvus Lite serves one file from one process only."""
    with _clients_lock:
        client = _clients.get(uri)
        if client is None:
            try:
                from pymilvus import MilvusClient
            except ImportError as exc:  # pragma: no cover - the agency extra is not installed
                raise GalleryError(
                    "this is an agency gallery (Milvus), but the Milvus client library is not "
                    "installed: pip install 'workstation[agency]'"
                ) from exc
            # pymilvus logs a warning per query iterator on Milvus Lite, whose in-process server
            # logs the unimplemented timestamp call it falls back from: both expected.
            logging.getLogger("pymilvus").setLevel(logging.ERROR)
            if uri.endswith(".db"):
                logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
            try:
                client = MilvusClient(uri)
            except Exception as exc:
                raise GalleryError(f"{uri}: cannot reach the agency's Milvus ({exc})") from exc
            _clients[uri] = client
        return client


class MilvusVectors:
    """The `VectorStore` of an agency gallery (see the module docstring)."""

    def __init__(self, settings: MilvusSettings) -> None:
        self.settings = settings
        self.description = settings.where
        self._client: Any = None
        self._loaded = False

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = milvus_client(self.settings.uri)
        return self._client

    # ------------------------------------------------------------------ collection
    def collection_dim(self) -> int | None:
        """The collection's vector dimension, or None when it does not exist."""
        name = self.settings.collection
        if not self.client.has_collection(name):
            return None
        for spec in self.client.describe_collection(name)["fields"]:
            if spec["name"] == "vector":
                return int(spec["params"]["dim"])
        return None

    def create_collection(self, dim: int) -> None:
        """A new, empty collection for `dim`-dimensional vectors (an existing one is dropped)."""
        from pymilvus import DataType, MilvusClient

        client, name = self.client, self.settings.collection
        if client.has_collection(name):
            client.drop_collection(name)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(dim))
        index_params = client.prepare_index_params()
        index_params.add_index(
            field_name="vector",
            index_type=self.settings.index_type,
            metric_type="IP",
            params=self.settings.build_params(),
        )
        # Strong: a search sees every vector written before it, from any workstation.
        client.create_collection(
            name, schema=schema, index_params=index_params, consistency_level="Strong"
        )
        self._loaded = True  # made with its index: Milvus loads it

    def ensure_collection(self, dim: int) -> None:
        existing = self.collection_dim()
        if existing != dim:
            self.create_collection(dim)
        else:
            self.ensure_loaded()

    def ensure_loaded(self) -> None:
        """Load the collection into memory if it is not (a restarted Milvus, or Milvus Lite
        in a new process, holds collections it already had as 'released': measured, a search
        or query then fails until it is loaded). Checked once per store."""
        if self._loaded:
            return
        name = self.settings.collection
        state = str(self.client.get_load_state(name).get("state", ""))
        if "Loaded" not in state:
            self.client.load_collection(name)
        self._loaded = True

    def count(self) -> int:
        rows = self.client.query(self.settings.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def has_ids(self, ids: list[int]) -> set[int]:
        if not ids:
            return set()
        listed = ", ".join(str(int(i)) for i in ids)
        rows = self.client.query(
            self.settings.collection, filter=f"id in [{listed}]", output_fields=["id"]
        )
        return {int(r["id"]) for r in rows}

    def all_ids(self, batch: int = 10_000) -> np.ndarray:
        if not self.client.has_collection(self.settings.collection):
            return np.zeros(0, dtype=np.int64)
        iterator = self.client.query_iterator(
            self.settings.collection, batch_size=batch, filter="id >= 0", output_fields=["id"]
        )
        parts: list[np.ndarray] = []
        try:
            while rows := iterator.next():
                parts.append(np.fromiter((r["id"] for r in rows), dtype=np.int64))
        finally:
            iterator.close()
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Write vectors whose ids the collection may already hold (a repair, a rebuild)."""
        self._write(self.client.upsert, ids, vectors)

    def insert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Write vectors of new faces: ids the database's sequence never gave before, so no
        vector with them can be in the collection. An upsert is a delete and an insert in
        Milvus (the delete marks stay until compaction; Milvus Lite also looks each id up in
        every segment first): an act's new faces are inserted."""
        self._write(self.client.insert, ids, vectors)

    def _write(self, call: Callable[..., Any], ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        for start in range(0, len(ids), INSERT_BATCH):
            stop = min(len(ids), start + INSERT_BATCH)
            # One tolist() per batch, not one per row (the rows are built in Python either way).
            rows = zip(ids[start:stop].tolist(), vectors[start:stop].tolist(), strict=True)
            call(self.settings.collection, [{"id": i, "vector": v} for i, v in rows])

    def delete(self, ids: list[int]) -> None:
        for start in range(0, len(ids), INSERT_BATCH):
            self.client.delete(self.settings.collection, ids=ids[start : start + INSERT_BATCH])

    # ------------------------------------------------------------------ VectorStore
    def index(
        self, gallery: Gallery, loaded: Any, on_message: Callable[[str], None] | None
    ) -> MilvusIndex:
        if isinstance(loaded, MilvusIndex):
            return loaded
        dim = gallery.model_dim
        if dim and self.collection_dim() != dim:
            if gallery.read_only:
                raise GalleryError(
                    f"{self.description}: the collection does not hold this gallery's vectors; "
                    "an examiner with write access runs `workstation index rebuild`"
                )
            reason = "the collection is missing or was made for another model"
            if on_message is not None:
                on_message(f"{self.description}: {reason}; rebuilding it from the database")
            from workstation.progress import drain

            rebuilt: MilvusIndex | None = drain(
                self.rebuild(gallery, reason=f"automatic: {reason}")
            )
            assert isinstance(rebuilt, MilvusIndex)
            return rebuilt
        if dim and self.collection_dim() is not None:
            self.ensure_loaded()
        if dim and not gallery.read_only:
            self.repair(gallery, on_message)
        return MilvusIndex(self, gallery)

    def before_commit(self, gallery: Gallery, added: Added, removed: list[int]) -> None:
        dim = gallery.model_dim
        if removed and self.collection_dim() is not None:
            self.delete(sorted(removed))
        if added and dim:
            self.ensure_collection(dim)
            for ids, vectors in added:
                self.insert(ids, vectors)
            if sum(len(ids) for ids, _ in added) >= FLUSH_AT:
                self.client.flush(self.settings.collection)

    def rebuild(
        self, gallery: Gallery, reason: str = "requested", cancel: CancelToken | None = None
    ) -> Generator[Progress, None, MilvusIndex | None]:
        """Drop and refill the collection from the stored embeddings, under the write lock (no
        writer can add a face the refill would miss), audited in the same change; yields
        progress, returns the new index (None when cancelled: the next open completes it)."""
        dim = gallery.model_dim
        total = gallery.face_count()
        yield Progress(0, total, f"rebuilding {self.description}")
        done = 0
        with gallery.change() as change:
            if dim:
                self.create_collection(dim)
                for ids, vectors in gallery.embeddings(batch=INSERT_BATCH):
                    if cancel is not None and cancel.cancelled:
                        yield Progress(done, total, "cancelled; the next open completes the index")
                        return None
                    self.upsert(ids, vectors)
                    done += len(ids)
                    yield Progress(done, total, f"wrote {done} of {total} vectors to Milvus")
                self.client.flush(self.settings.collection)  # sealed, so that it is indexed
            details = {
                "reason": reason,
                "faces": done,
                "kind": self.kind,
                "collection": self.settings.collection,
                "model_id": gallery.model_id,
            }
            change.record(AuditAction.INDEX_REBUILD, details)
        if dim:
            self.client.load_collection(self.settings.collection)
        index = MilvusIndex(self, gallery)
        gallery.use_index(index)
        return index

    @property
    def kind(self) -> str:
        return f"milvus-{self.settings.index_type.lower()}+exact-rescore"

    # ------------------------------------------------------------------ repair
    def repair(
        self, gallery: Gallery, on_message: Callable[[str], None] | None
    ) -> dict[str, Any] | None:
        """Compare the collection with the database and mend it (see the module docstring).

        Returns the repair's audit details, or None when nothing needed mending.
        """
        if self._looks_consistent(gallery):
            return None
        with gallery.change() as change:
            # Under the write lock: no writer is between its Milvus write and its commit.
            rows = gallery.face_ids()
            held = self.all_ids()
            missing = np.setdiff1d(rows, held, assume_unique=True)
            orphans = np.setdiff1d(held, rows, assume_unique=True)
            if not len(missing) and not len(orphans):
                return None
            for start in range(0, len(missing), INSERT_BATCH):
                chunk = [int(i) for i in missing[start : start + INSERT_BATCH]]
                found = gallery.face_vectors(chunk)
                ids = np.asarray(sorted(found), dtype=np.int64)
                self.upsert(ids, np.stack([found[int(i)] for i in ids]))
            self.delete([int(i) for i in orphans])
            details = {
                "reason": "repair: the vector collection differed from the database",
                "collection": self.settings.collection,
                "vectors_reinserted": len(missing),
                "vectors_without_row_deleted": len(orphans),
                "faces": len(rows),
            }
            change.record(AuditAction.INDEX_REBUILD, details)
        if on_message is not None:
            on_message(
                f"{self.description}: repaired from the database (an interrupted write): "
                f"{len(missing)} missing vector(s) re-inserted, {len(orphans)} without a face "
                "deleted"
            )
        return details

    def _looks_consistent(self, gallery: Gallery) -> bool:
        if self.collection_dim() is None:
            return gallery.face_count() == 0
        if self.count() != gallery.face_count():
            return False
        newest = gallery.newest_face_id()
        if newest is None:
            return True
        # Writers are serialised and ids only grow, so an act that died between its Milvus
        # write and its commit left vectors above the newest committed face: any is found here,
        # even when a lost delete keeps the counts equal.
        above = self.client.query(
            self.settings.collection, filter=f"id > {int(newest)}", output_fields=["id"], limit=1
        )
        return not above and self.has_ids([newest]) == {newest}


class MilvusIndex:
    """The `SearchIndex` of an agency gallery: Milvus proposes, the database's embeddings score."""

    def __init__(self, store: MilvusVectors, gallery: Gallery) -> None:
        self.store = store
        self.gallery = gallery
        self.kind = store.kind
        self.generation = gallery.generation
        self.model_id = gallery.model_id
        self._count: tuple[int, int] | None = None  # (generation, faces)
        self._collection_seen = False

    # Milvus compacts deleted rows and indexes new ones itself: nothing waits for a rebuild.
    deleted = 0
    tail = 0
    file_sha256 = None  # no index file: `workstation index rebuild` names none

    @property
    def count(self) -> int:
        generation = self.gallery.generation
        if self._count is None or self._count[0] != generation:
            self._count = (generation, self.gallery.face_count())
        return self._count[1]

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (exact scores, face ids) for one query vector, best first."""
        k = min(int(k), self.count, MILVUS_MAX_TOPK)
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        # Checked once per loaded index, not per search (a round trip to the server each).
        if not self._collection_seen:
            if self.store.collection_dim() is None:
                return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
            self._collection_seen = True
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        proposals = min(max(k, PROPOSALS), self.count, MILVUS_MAX_TOPK)
        params = self.store.settings.query_params()
        if "ef" in params:
            params["ef"] = max(int(params["ef"]), proposals)
        if "search_list" in params:  # DiskANN's breadth, likewise at least the rows proposed
            params["search_list"] = max(int(params["search_list"]), proposals)
        try:
            hits = self.store.client.search(
                self.store.settings.collection,
                data=[query.tolist()],
                limit=proposals,
                search_params={"metric_type": "IP", "params": params},
                output_fields=["id"],
            )[0]
        except Exception as exc:  # pymilvus's errors share no base class worth naming here
            raise GalleryError(
                f"{self.store.description}: the search failed ({exc}); open the gallery again "
                "(a missing or damaged collection is rebuilt from the database)"
            ) from exc
        proposed = [int(hit["id"]) for hit in hits]
        stored = self.gallery.face_vectors(proposed)
        ids = np.asarray([i for i in proposed if i in stored], dtype=np.int64)
        if not len(ids):
            return np.zeros(0, dtype=np.float32), ids
        scores = np.stack([stored[int(i)] for i in ids]) @ query
        order = np.argsort(-scores, kind="stable")[:k]
        return scores[order].astype(np.float32), ids[order]

    def rebuild_advice(self) -> str | None:
        return None  # Milvus builds and compacts its segment indexes itself

    def info(self) -> IndexInfo:
        from workstation.gallery.index import IndexInfo

        settings = self.store.settings
        return IndexInfo(
            kind=self.kind,
            count=self.count,
            dim=self.store.collection_dim(),
            model_id=self.gallery.model_id,
            generation=self.gallery.generation,
            built_at=None,
            index_sha256=None,
            path=settings.where,
            ann={
                "type": f"Milvus {settings.index_type} (inner product), exact re-score",
                "build_params": settings.build_params(),
                "search_params": settings.query_params(),
            },
            recall=(
                f"Milvus {settings.index_type} proposes, the stored embeddings score "
                "(benchmarks/agency_scale.py measures its mate recall)"
            ),
        )
