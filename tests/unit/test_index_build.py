"""Building the vector index in streamed blocks, the approximate kind's measured recall, and
deletion overwriting every copy of a face in the index files. Real FAISS, real files; synthetic
identities (a centre plus noise, mated cosine about 0.75 like the default model's)."""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np
import pytest
from faiss.contrib.evaluation import knn_intersection_measure
from faiss.contrib.exhaustive_search import knn_ground_truth

from workstation.gallery import index_build
from workstation.gallery.index import VectorIndex
from workstation.gallery.index_approx import scaled_lengths
from workstation.gallery.index_build import build_index
from workstation.gallery.index_files import (
    APPROX_FILES,
    APPROX_KIND,
    FLAT_KIND,
    IDS_NAME,
    PQ_NAME,
    SQ8_CODES_NAME,
    VECTORS_NAME,
    read_manifest,
)
from workstation.progress import drain

DIM = 128
FACES = 4000


def _identities(n: int, rng: np.random.Generator, dim: int = DIM) -> np.ndarray:
    centres = rng.standard_normal((n, dim)).astype(np.float32)
    return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def _photo(centres: np.ndarray, rng: np.random.Generator, noise: float = 0.55) -> np.ndarray:
    dim = centres.shape[1]
    x = centres + noise * rng.standard_normal(centres.shape).astype(np.float32) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _chunks(vectors: np.ndarray, size: int):
    for start in range(0, len(vectors), size):
        stop = min(len(vectors), start + size)
        yield np.arange(start + 1, stop + 1, dtype=np.int64), vectors[start:stop]


@pytest.fixture(scope="module")
def synthetic() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    centres = _identities(FACES, rng)
    return centres, _photo(centres, rng)


def test_streamed_build_equals_one_shot_build(
    tmp_path: Path, synthetic, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, gallery = synthetic
    one_shot = drain(
        build_index(tmp_path / "one", _chunks(gallery, FACES), FACES, DIM, 3, "m", 1000)
    )
    # Streamed: odd-sized chunks from the database and blocks of 37 rows (not a multiple of
    # the fast scan's 32-face blocks) through every pass.
    monkeypatch.setattr(index_build, "BLOCK_BYTES", 37 * DIM * 4)
    streamed = drain(
        build_index(tmp_path / "many", _chunks(gallery, 113), FACES, DIM, 3, "m", 1000)
    )
    assert one_shot.kind == streamed.kind == APPROX_KIND
    for name in APPROX_FILES:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "many" / name).read_bytes(), (
            name
        )
    a, b = read_manifest(tmp_path / "one"), read_manifest(tmp_path / "many")
    assert a["files"] == b["files"] and a["index_sha256"] == b["index_sha256"]
    for key in ("shortlist", "rerank", "mate_recall", "recall_at_20", "calibration"):
        assert a["ann"][key] == b["ann"][key], key
    assert not (tmp_path / "many" / index_build.STAGING_NAME).exists()


def test_cold_started_short_list_against_exact_search(tmp_path: Path, synthetic) -> None:
    centres, gallery = synthetic
    built = drain(build_index(tmp_path, _chunks(gallery, 1000), FACES, DIM, 0, "m", 1000))
    assert built.kind == APPROX_KIND and 0 < built.rerank <= built.shortlist
    # A cold start: the files dropped from the OS cache (what a restarted workstation finds),
    # then opened afresh; its first searches are the ones checked against exact search.
    del built
    for path in tmp_path.iterdir():
        if path.is_file() and hasattr(os, "posix_fadvise"):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    index = VectorIndex.load(tmp_path)
    assert isinstance(index, VectorIndex)
    rng = np.random.default_rng(5)
    picks = rng.choice(FACES, size=300, replace=False)
    queries = _photo(centres[picks], rng)
    blocks = (gallery[s : s + 500] for s in range(0, FACES, 500))
    exact_scores, exact_rows = knn_ground_truth(
        queries, blocks, 20, metric_type=faiss.METRIC_INNER_PRODUCT
    )
    found = np.full((len(queries), 20), -1, dtype=np.int64)
    for n, query in enumerate(queries):
        scores, ids = index.search(query, 20)
        found[n] = ids - 1  # face ids are rows + 1 here
        # Reported scores are the exact cosine similarities, best first.
        np.testing.assert_allclose(scores, gallery[ids - 1] @ query, rtol=1e-5, atol=1e-6)
        assert np.all(np.diff(scores) <= 0)
    exact_mates = np.mean(np.any(exact_rows == picks[:, None], axis=1))
    mates = np.mean(np.any(found == picks[:, None], axis=1))
    assert exact_mates >= 0.99 and mates >= exact_mates - 0.005
    overlap = knn_intersection_measure(found, exact_rows)
    assert overlap >= 0.9, overlap
    # The best hit is exact search's best hit, with its exact score.
    assert np.array_equal(found[:, 0], exact_rows[:, 0])
    np.testing.assert_allclose(
        [index.search(q, 1)[0][0] for q in queries[:20]], exact_scores[:20, 0], rtol=1e-5
    )
    # What calibration recorded is what this search does on its own kind of query.
    meta = index.ann_meta
    assert meta is not None and meta["calibration_queries"] == 500
    assert meta["mate_recall"] >= meta["exact_mate_recall"] - 0.002


def test_longer_searches_scale_the_lists() -> None:
    assert scaled_lengths(2000, 100, 20) == (2000, 100)
    assert scaled_lengths(2000, 100, 5) == (2000, 100)
    assert scaled_lengths(2000, 100, 100) == (10000, 500)


def test_dimension_is_not_assumed(tmp_path: Path) -> None:
    """A 256-d model (e.g. fused SFace + dlib) and an odd dimension build and search."""
    rng = np.random.default_rng(2)
    for dim in (256, 100):
        centres = _identities(1500, rng, dim)
        vectors = _photo(centres, rng)
        index = drain(
            build_index(tmp_path / str(dim), _chunks(vectors, 700), 1500, dim, 0, "m", 500)
        )
        assert index.kind == APPROX_KIND and index.dim == dim
        query = _photo(centres[7:8], rng)[0]
        assert index.search(query, 5)[1][0] == 8


def test_small_build_is_exact_and_has_no_approximate_files(tmp_path: Path, synthetic) -> None:
    _, gallery = synthetic
    drain(build_index(tmp_path, _chunks(gallery, 1000), FACES, DIM, 0, "m", 1000))
    index = drain(build_index(tmp_path, _chunks(gallery[:900], 1000), 900, DIM, 1, "m", 1000))
    assert index.kind == FLAT_KIND
    assert not (tmp_path / PQ_NAME).exists() and not (tmp_path / SQ8_CODES_NAME).exists()
    assert isinstance(VectorIndex.load(tmp_path), VectorIndex)


def _occurrences(folder: Path, needle: bytes) -> list[str]:
    return [p.name for p in folder.iterdir() if p.is_file() and needle in p.read_bytes()]


@pytest.mark.parametrize("kind", [FLAT_KIND, APPROX_KIND])
def test_removal_overwrites_every_copy_in_the_files(tmp_path: Path, synthetic, kind: str) -> None:
    _, gallery = synthetic
    flat_max = 10_000 if kind == FLAT_KIND else 1000
    index = drain(build_index(tmp_path, _chunks(gallery, 1000), FACES, DIM, 0, "m", flat_max))
    assert index.kind == kind
    row = 1234
    gone = gallery[row].tobytes()
    assert _occurrences(tmp_path, gone) == [VECTORS_NAME]
    if kind == APPROX_KIND:
        sq = faiss.read_index(str(tmp_path / "faces.sq8.faiss"))
        sq8_code = sq.sa_encode(gallery[row : row + 1]).tobytes()
        codes = np.fromfile(tmp_path / SQ8_CODES_NAME, dtype=np.uint8).reshape(FACES, -1)
        assert codes[row].tobytes() == sq8_code
        pq = faiss.read_index(str(tmp_path / PQ_NAME))
        packer = pq.get_CodePacker()
        packed = faiss.rev_swig_ptr(pq.codes.get(), pq.codes.size()).reshape(-1, packer.block_size)
        assert packer.unpack_1(packed, row).any()
    index.remove([row + 1])
    # Gone from the files as soon as remove() returns, with no save() (as after a crash).
    assert _occurrences(tmp_path, gone) == []
    ids = np.fromfile(tmp_path / IDS_NAME, dtype=np.int64)
    assert ids[row] == -1 and (ids >= 0).sum() == FACES - 1
    vectors = np.fromfile(tmp_path / VECTORS_NAME, dtype=np.float32).reshape(FACES, DIM)
    assert not vectors[row].any() and np.array_equal(vectors[row + 1], gallery[row + 1])
    if kind == APPROX_KIND:
        codes = np.fromfile(tmp_path / SQ8_CODES_NAME, dtype=np.uint8).reshape(FACES, -1)
        assert not codes[row].any() and codes[row + 1].any()
        pq = faiss.read_index(str(tmp_path / PQ_NAME))
        packed = faiss.rev_swig_ptr(pq.codes.get(), pq.codes.size()).reshape(-1, packer.block_size)
        assert not packer.unpack_1(packed, row).any()
        assert (
            packer.unpack_1(packed, row + 1).tolist()
            == pq.pq.compute_codes(gallery[row + 1 : row + 2])[0].tolist()
        )
    # The files still match their manifest: another process opens them without a rebuild.
    reopened = VectorIndex.load(tmp_path)
    assert isinstance(reopened, VectorIndex) and reopened.count == FACES - 1
    assert row + 1 not in reopened.search(gallery[row], 20)[1].tolist()
    assert index.search(gallery[row + 1], 1)[1][0] == row + 2


def test_removal_reaches_every_fast_scan_block(tmp_path: Path) -> None:
    """Rows far into the file (FAISS's Python wrapper checks a row against one block's span)."""
    import faiss

    rng = np.random.default_rng(4)
    faces, dim = 20_000, 8
    vectors = _identities(faces, rng, dim)
    index = drain(build_index(tmp_path, _chunks(vectors, 5000), faces, dim, 0, "m", 1000))
    rows = [0, 16_383, 16_384, faces - 1]
    index.remove([r + 1 for r in rows])
    pq = faiss.read_index(str(tmp_path / PQ_NAME))
    packer = pq.get_CodePacker()
    packed = faiss.rev_swig_ptr(pq.codes.get(), pq.codes.size()).reshape(-1, packer.block_size)
    expected = pq.pq.compute_codes(vectors)
    stored = np.fromfile(tmp_path / VECTORS_NAME, dtype=np.float32).reshape(faces, dim)
    for row in [*rows, 1, 16_385, faces - 2]:
        block = packed[row // packer.nvec : row // packer.nvec + 1]
        code = packer.unpack_1(block, row % packer.nvec)
        if row in rows:
            assert not code.any() and not stored[row].any()
        else:
            assert code.tolist() == expected[row].tolist()
            assert np.array_equal(stored[row], vectors[row])
