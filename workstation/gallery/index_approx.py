"""The approximate kind's short list (galleries above `FLAT_MAX_FACES`), in three steps:

1. A product quantiser scans every face's 16-byte code (FAISS PQ 4-bit fast scan, in memory:
   160 MB at 10 million faces) and proposes `shortlist` rows.
2. Those rows are scored again from their 8-bit codes (FAISS scalar quantiser, one byte a
   dimension, memory-mapped from faces.sq8.u8: 1.3 GB at 10 million 128-d faces, 2.6 GB at
   256-d), and the best `rerank` are kept.
3. Only those are read from the float32 file and scored exactly (workstation/gallery/index.py):
   a few hundred rows instead of thousands, which is what makes a search fast before the OS has
   cached the multi-gigabyte vector file (docs/PERFORMANCE.md).

`shortlist` and `rerank` are chosen at build time from the recall measured on the stored
embeddings (workstation/gallery/index_build.py). `best_by_codes` is the selection both the search
and that measurement use, so that what was measured is what runs.

Deleting faces overwrites their codes in place in both files (`erase`): the fast-scan codes sit
at the end of faces.pq.faiss, at an offset checked when the file is written and when it is read.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from workstation.gallery.index_files import (
    PQ_NAME,
    SQ8_CODES_NAME,
    SQ8_QUANTIZER_NAME,
    faiss_module,
    inner_products,
    overwrite_in_place,
    zero_rows,
)

PQ_BITS = 4
PQ_MAX_SUBQUANTIZERS = 32
# Lengths are calibrated for top-20 searches; a longer list asked for scales them.
CALIBRATION_K = 20


def pq_subquantizers(dim: int) -> int:
    """Sub-vectors of the fast-scan quantiser: 32 (16 bytes a face) where the dimension allows
    (128-d: 4 dimensions each; 256-d: 8), else the largest divisor of `dim` below 32."""
    return next(m for m in range(min(PQ_MAX_SUBQUANTIZERS, dim), 0, -1) if dim % m == 0)


def train_quantizers(sample: np.ndarray) -> tuple[Any, Any]:
    """(fast-scan PQ, 8-bit scalar quantiser), both trained on `sample` and still empty."""
    faiss = faiss_module()
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    dim = sample.shape[1]
    pq = faiss.IndexPQFastScan(dim, pq_subquantizers(dim), PQ_BITS, faiss.METRIC_INNER_PRODUCT)
    pq.train(sample)
    sq = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    sq.train(sample)
    return pq, sq


def _packed_codes(pq: Any) -> np.ndarray:
    """The fast-scan index's packed codes as a writable numpy view (no copy)."""
    faiss = faiss_module()
    return faiss.rev_swig_ptr(pq.codes.get(), pq.codes.size())


def write_quantizers(folder: Path, pq: Any, sq: Any) -> dict[str, Any]:
    """Write faces.pq.faiss (with its codes) and faces.sq8.faiss (ranges only); returns the
    facts the manifest keeps, among them where the fast-scan codes are in the file."""
    faiss = faiss_module()
    path = Path(folder) / PQ_NAME
    faiss.write_index(pq, str(path))
    codes = _packed_codes(pq)
    offset = path.stat().st_size - codes.size
    # FAISS writes an IndexPQFastScan's packed codes last: check it, since deleting a face
    # overwrites its code at this offset.
    tail = np.fromfile(path, dtype=np.uint8, offset=offset)
    if offset <= 0 or not np.array_equal(tail, codes):
        raise RuntimeError(f"FAISS wrote {path} in an unexpected layout (codes not at its end)")
    faiss.write_index(sq, str(Path(folder) / SQ8_QUANTIZER_NAME))
    return {
        "pq_subquantizers": int(pq.M),
        "pq_bits": int(pq.nbits),
        "pq_codes_offset": int(offset),
        "pq_block_bytes": int(pq.get_CodePacker().block_size),
        "sq8_bytes_per_face": int(sq.code_size),
    }


def best_by_codes(approx: np.ndarray, rerank: int) -> np.ndarray:
    """Positions of the `rerank` best 8-bit scores, best first (ties: the earlier proposal)."""
    return np.argsort(-approx, kind="stable")[:rerank]


def scaled_lengths(shortlist: int, rerank: int, k: int) -> tuple[int, int]:
    """Short-list and re-rank lengths for a top-k search (calibrated for top 20)."""
    scale = max(1.0, k / CALIBRATION_K)
    return math.ceil(shortlist * scale), max(k, math.ceil(rerank * scale))


class ShortList:
    """The loaded approximate stage of one index (steps 1 and 2 above)."""

    def __init__(self, folder: Path, pq: Any, sq: Any, rows: int, meta: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.pq = pq
        self.sq = sq
        self.rows = rows
        self.shortlist = int(meta.get("shortlist", 0))
        self.rerank = int(meta.get("rerank", 0))
        self.codes_offset = int(meta["pq_codes_offset"])
        self.block_bytes = int(meta["pq_block_bytes"])
        path = self.folder / SQ8_CODES_NAME
        self.codes = np.memmap(path, dtype=np.uint8, mode="r", shape=(rows, sq.code_size))
        if hasattr(os, "posix_fadvise"):
            # Ask the OS to read the 8-bit codes into its cache in the background (1.3 GB at
            # 10M faces: 1.5 s at the 850 MB/s measured here); searches meanwhile fault in the
            # rows they need. Nothing waits for it.
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
            finally:
                os.close(fd)

    @classmethod
    def load(cls, folder: Path, meta: dict[str, Any]) -> ShortList | str:
        """Read the quantisers and map the codes; a reason string when they do not fit."""
        faiss = faiss_module()
        folder = Path(folder)
        try:
            # The fast-scan codes are read whole: 16 bytes a face (160 MB at 10 million).
            pq = faiss.read_index(str(folder / PQ_NAME))
            sq = faiss.read_index(str(folder / SQ8_QUANTIZER_NAME))
        except RuntimeError as exc:
            return f"FAISS cannot read the approximate index ({exc})"
        rows = int(meta.get("rows", -1))
        try:
            if pq.ntotal != rows or int(meta.get("shortlist", 0)) <= 0:
                return f"{PQ_NAME} does not match the manifest"
            pq_size = (folder / PQ_NAME).stat().st_size
            if pq_size - int(meta["pq_codes_offset"]) != pq.codes.size():
                return f"{PQ_NAME} does not have its codes where the manifest says"
            if (folder / SQ8_CODES_NAME).stat().st_size != rows * sq.code_size:
                return f"{SQ8_CODES_NAME} does not match the manifest"
        except (KeyError, TypeError, ValueError) as exc:
            return f"the manifest does not describe the approximate index ({exc})"
        return cls(folder, pq, sq, rows, meta)

    def candidates(self, query: np.ndarray, k: int, ids: np.ndarray, deleted: int) -> np.ndarray:
        """Rows to score exactly for a top-k search of `query` (shape (1, dim)), best first.

        `ids` maps rows to face ids (-1 for deleted rows, which the fast scan cannot skip: it
        is asked for `deleted` more rows and they are dropped here).
        """
        shortlist, rerank = scaled_lengths(self.shortlist, self.rerank, k)
        fetch = min(self.rows, shortlist + deleted)
        _, found = self.pq.search(query, fetch)
        rows = found[0]
        rows = rows[rows >= 0]
        rows = rows[ids[rows] >= 0][:shortlist]
        return rows[best_by_codes(self.code_scores(query[0], rows), rerank)]

    def code_scores(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Inner products of `query` with the 8-bit codes of `rows`."""
        return inner_products(self.sq.sa_decode(np.take(self.codes, rows, axis=0)), query)

    def erase(self, rows: np.ndarray) -> None:
        """Overwrite the codes of `rows` with zeros in both files (and in memory); fsynced."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        rows = rows[(rows >= 0) & (rows < self.rows)]
        if not len(rows):
            return
        zero_rows(self.folder / SQ8_CODES_NAME, rows, self.sq.code_size)
        packer = self.pq.get_CodePacker()
        blocks = _packed_codes(self.pq).reshape(-1, self.block_bytes)
        zero_code = np.zeros(packer.code_size, dtype=np.uint8)
        for row in rows.tolist():
            block = row // packer.nvec
            packer.pack_1(zero_code, row % packer.nvec, blocks[block : block + 1])
        changed = np.unique(rows // packer.nvec)
        overwrite_in_place(
            self.folder / PQ_NAME,
            ((self.codes_offset + int(b) * self.block_bytes, blocks[b].tobytes()) for b in changed),
        )
