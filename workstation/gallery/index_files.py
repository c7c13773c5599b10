"""The vector index's files: their names, the manifest, checksums, and the three ways they are
written (appended, replaced atomically, overwritten in place), each followed by fsync.

Files beside the database (all derived from it and rebuildable)::

    faces.vectors.f32   float32 embeddings, one row per face (exact scores come from here);
                        memory-mapped or read row by row, never read whole at start-up
    faces.ids.i64       the faces-table id of each row (-1: deleted, its vectors overwritten)
    faces.pq.faiss      approximate kind: FAISS product-quantisation codes (4-bit fast scan,
                        16 bytes a face) over row numbers; proposes the short list
    faces.sq8.faiss     approximate kind: the 8-bit scalar quantiser (ranges only, a few KB)
    faces.sq8.u8        approximate kind: every face's 8-bit codes (one byte a dimension),
                        memory-mapped; orders the short list before the exact re-rank
    faces.faiss.json    manifest: kind, count, dim, model, generation, per-file checksums, and
                        for the approximate kind its parameters and measured recall

Deleting a face overwrites its bytes in every file in place (zeros, id -1) and fsyncs them, so
that no copy of a deleted embedding is left in the index (issue 12); rows are reclaimed at the
next compaction or rebuild.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

VECTORS_NAME = "faces.vectors.f32"
IDS_NAME = "faces.ids.i64"
PQ_NAME = "faces.pq.faiss"
SQ8_QUANTIZER_NAME = "faces.sq8.faiss"
SQ8_CODES_NAME = "faces.sq8.u8"
MANIFEST_NAME = "faces.faiss.json"
ANN_NAME = PQ_NAME  # the file whose presence means "the approximate kind was built here"
INDEX_NAME = VECTORS_NAME  # the file whose presence means "an index was built here"
FLAT_FILES = (VECTORS_NAME, IDS_NAME)
APPROX_FILES = (*FLAT_FILES, PQ_NAME, SQ8_QUANTIZER_NAME, SQ8_CODES_NAME)
ALL_FILES = APPROX_FILES

FLAT_KIND = "flat-ip"
APPROX_KIND = "pq-fastscan+sq8+exact-rerank"
# 3: the 8-bit codes (faces.sq8.*) and in-place deletion (format 2 masked deleted rows only).
FORMAT_VERSION = 3

# Files at most this big are hashed whole; bigger ones by size and sampled blocks so that
# opening a 5 GB gallery does not read 5 GB.
FULL_HASH_MAX_BYTES = 16 << 20
SAMPLED_BLOCKS = 64
SAMPLED_BLOCK_BYTES = 1 << 16


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
    block = SAMPLED_BLOCK_BYTES
    with open(path, "rb") as handle:
        for offset in np.linspace(0, size - block, SAMPLED_BLOCKS).astype(np.int64):
            handle.seek(int(offset))
            digest.update(handle.read(block))
    return {"bytes": size, "sha256": digest.hexdigest(), "sampled": True}


def fingerprints(folder: Path, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    return {name: file_fingerprint(folder / name) for name in names}


def fingerprints_sha256(files: dict[str, Any]) -> str:
    """One SHA-256 over the files' fingerprints (the index's identity in audit events)."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def verify_fingerprints(folder: Path, files: dict[str, Any]) -> str | None:
    """None when every file matches its manifest entry, else what is wrong, in words."""
    for name, expected in files.items():
        path = folder / name
        if not path.exists():
            return f"{name} is missing"
        if file_fingerprint(path) != {k: expected.get(k) for k in ("bytes", "sha256", "sampled")}:
            return f"{name} does not match its manifest checksum (damaged or altered)"
    return None


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest as a dict; OSError or ValueError when missing or unreadable."""
    manifest = json.loads((Path(folder) / MANIFEST_NAME).read_text())
    if not isinstance(manifest, dict):
        raise ValueError("not a JSON object")
    return manifest


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    atomic_write(Path(folder) / MANIFEST_NAME, json.dumps(manifest, indent=2).encode())


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: written beside it, fsynced, then renamed over it."""
    partial = path.with_name(path.name + ".part")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)


def append_file(path: Path, data: bytes, expected_size: int) -> None:
    """Append to a file that must hold exactly `expected_size` bytes; fsynced."""
    if path.exists() and path.stat().st_size != expected_size:
        raise OSError(f"{path} has {path.stat().st_size} bytes, expected {expected_size}")
    with open(path, "ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def overwrite_in_place(path: Path, writes: Iterable[tuple[int, bytes]]) -> None:
    """Write each (offset, bytes) into the existing file, then fsync: the old bytes are gone
    from the file (not only unlinked), which is what deleting biometric data requires."""
    with open(path, "r+b") as handle:
        for offset, data in writes:
            handle.seek(offset)
            handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def zero_rows(path: Path, rows: Iterable[int], row_bytes: int, start: int = 0) -> None:
    """Overwrite whole rows of a fixed-width file (after `start` bytes of header) with zeros."""
    zeros = bytes(row_bytes)
    overwrite_in_place(path, ((start + int(row) * row_bytes, zeros) for row in rows))


def inner_products(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """`matrix @ query` on the calling thread. numpy's `@` hands a few thousand rows to
    OpenBLAS, which fans out to its own threads: 4,000 x 128 took 26 ms that way on the busy
    2-core machine here, 0.1 ms with einsum, which stays on this thread."""
    return np.einsum("ij,j->i", matrix, query)


def read_rows(fd: int, rows: np.ndarray, row_bytes: int) -> bytes:
    """The given rows of a fixed-width file, read with pread (sorted rows: fewer seeks).

    Each row's page is first announced to the kernel (POSIX_FADV_WILLNEED), which starts all
    the reads at once: from a cold cache 200 random rows took 11 ms here against 40 ms read one
    after another (virtio disk, 0.17 ms a random read).
    """
    offsets = [int(row) * row_bytes for row in rows.tolist()]
    if hasattr(os, "posix_fadvise") and len(offsets) > 1:
        for offset in offsets:
            os.posix_fadvise(fd, offset, row_bytes, os.POSIX_FADV_WILLNEED)
    return b"".join([os.pread(fd, row_bytes, offset) for offset in offsets])


def read_block(path: Path, dtype: Any, start: int, count: int, row_width: int) -> np.ndarray:
    """`count` rows from row `start` of a fixed-width file, read (not mapped) into memory.

    Reading rather than mapping keeps a streamed pass over a multi-gigabyte file from counting
    the whole file in the process's resident memory (pages of a mapping do; read pages sit in
    the OS cache, which the OS may drop).
    """
    item = np.dtype(dtype).itemsize
    data = np.fromfile(path, dtype=dtype, count=count * row_width, offset=start * row_width * item)
    return data.reshape(-1, row_width)
