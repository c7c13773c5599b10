"""Search at scale, measured beside a baseline: cold start, warm latency, recall, building the
index from the database (time and peak memory) and deleting a subject's faces.

Synthetic identities stand in for real faces: each identity is a centre on the unit sphere and
each photo of it the centre plus noise, L2-normalised. The generator's four parameters are fitted
so that the mated and non-mated cosine-similarity distributions (mean and standard deviation)
match those the default configuration (`accurate` since 1 December 2026, `fast` before) gives
on the labelled photos of ../shared/faces; the fitted figures are printed first. Nothing here
assumes 128 dimensions (`--dim 256` for the default's fused SFace + dlib vector).

For each size a real gallery is made: one face per identity, written to SQLite in bulk. Then,
for the product (this checkout) and, with `--baseline COMMIT`, for the code at that commit
(exported with `git archive` and run in the same way, in the same run, so that both see the same
machine load), each step in a fresh process of its own:

- ``build``: `rebuild_index(gallery)`, the production path from the database (what a re-embed
  or a damaged index runs); wall time and peak resident memory of that process
  (VmHWM of that process, which counts pages of memory-mapped files too; see step_build).
- ``cold``: the index files evicted from the OS cache (`posix_fadvise(POSIX_FADV_DONTNEED)` on
  each file: needs no root and leaves the rest of the machine's cache alone), then the index
  opened and searched for `--cold-seconds` (60): p50/p95 over that first minute and over its
  first 10 s, the first search, the opening time.
- ``warm``: the files read into the OS cache, then the `--queries` queries: p50/p95,
  mate recall (own identity in the top 20) and overlap with the exact top 20
  (faiss.contrib.evaluation.knn_intersection_measure), resident memory after the queries.
- ``delete``: `--deletes` single-face subjects removed from the opened index and the change
  saved (remove + save: what the gallery's delete does after its transaction), each timed; then
  every index file is searched for the deleted embeddings' bytes.

Optional extra methods (`--methods numpy-bruteforce,sqlite-reload`): the whole float32 matrix in
memory (`X @ q`), and every embedding read back from SQLite for every search.

Output: JSON lines. Run (10M needs ~25 GB of disk under --workdir, and about an hour):
    python benchmarks/search_scale.py --sizes 300000,10000000 --baseline a824277 --keep
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from synthetic_gallery import add_synthetic_faces

K = 20
CHUNK = 250_000
FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"
REPO = Path(__file__).resolve().parents[1]
MODEL_NAME = "synthetic-benchmark"


# ---------------------------------------------------------------------- synthetic identities
class Generator:
    """Identity centres with a decaying spectrum (a random rotation of it) plus a common mean.

    params: a = weight of the common mean direction (sets the non-mated mean), beta = spectrum
    decay (sets the non-mated spread), s0 and s_sigma = median and log-spread of the per-photo
    noise scale (set the mated mean and spread).
    """

    def __init__(self, params: dict[str, float], dim: int = 128, seed: int = 7) -> None:
        self.p = params
        self.dim = dim
        rng = np.random.default_rng(seed)
        rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        spectrum = np.arange(1, dim + 1, dtype=np.float64) ** (-params["beta"])
        spectrum /= spectrum.sum()
        self.transform = (rotation * np.sqrt(spectrum)[None, :]).T.astype(np.float32)
        mean = rng.standard_normal(dim)
        self.mean = (mean / np.linalg.norm(mean)).astype(np.float32)

    def centres(self, n: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal((n, self.dim), dtype=np.float32) @ self.transform
        c = z + np.float32(self.p["a"]) * self.mean
        return c / np.linalg.norm(c, axis=1, keepdims=True)

    def samples(self, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = len(centres)
        scale = self.p["s0"] * np.exp(self.p["s_sigma"] * rng.standard_normal(n))
        noise = rng.standard_normal((n, self.dim), dtype=np.float32) / np.sqrt(self.dim)
        x = centres + noise * scale[:, None].astype(np.float32)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def synthetic_stats(params: dict[str, float], n: int = 4000) -> dict[str, float]:
    gen = Generator(params)
    rng = np.random.default_rng(1)
    c = gen.centres(n, rng)
    a, b = gen.samples(c, rng), gen.samples(c, rng)
    mated = np.sum(a * b, axis=1)
    non = np.sum(a * np.roll(b, 1, axis=0), axis=1)
    return {
        "mated_mean": float(mated.mean()),
        "mated_sd": float(mated.std()),
        "nonmated_mean": float(non.mean()),
        "nonmated_sd": float(non.std()),
    }


def real_stats(faces: Path) -> dict[str, float]:
    """Mated / non-mated cosine similarity of the default model on ../shared/faces."""
    from workstation.vision.images import load_image
    from workstation.vision.registry import create_engine

    engine = create_engine()
    embeddings, labels = [], []
    with open(faces / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            found = engine.analyze(load_image(faces / row["path"]).bgr)
            if found:
                embeddings.append(found[0].embedding)
                labels.append(row["identity"])
    e = np.asarray(embeddings, dtype=np.float32)
    sims = e @ e.T
    same = np.equal.outer(labels, labels)
    upper = np.triu(np.ones_like(same), 1).astype(bool)
    mated, non = sims[same & upper], sims[~same & upper]
    return {
        "photos": len(labels),
        "identities": len(set(labels)),
        "mated_pairs": int(mated.size),
        "nonmated_pairs": int(non.size),
        "mated_mean": float(mated.mean()),
        "mated_sd": float(mated.std()),
        "nonmated_mean": float(non.mean()),
        "nonmated_sd": float(non.std()),
    }


def fit(real: dict[str, float]) -> dict[str, float]:
    from scipy.optimize import minimize

    keys = ("mated_mean", "mated_sd", "nonmated_mean", "nonmated_sd")

    def loss(x: np.ndarray) -> float:
        params = {"a": abs(x[0]), "beta": abs(x[1]), "s0": abs(x[2]), "s_sigma": abs(x[3])}
        got = synthetic_stats(params)
        return float(sum(((got[k] - real[k]) / 0.01) ** 2 for k in keys))

    best = minimize(
        loss,
        np.array([0.3, 0.5, 0.9, 0.3]),
        method="Nelder-Mead",
        options={"maxiter": 300, "xatol": 1e-3, "fatol": 1e-3},
    )
    x = best.x
    return {"a": abs(x[0]), "beta": abs(x[1]), "s0": abs(x[2]), "s_sigma": abs(x[3])}


# ---------------------------------------------------------------------- data per size
def make_data(folder: Path, size: int, dim: int, params: dict[str, float], queries: int) -> None:
    """data.f32 (size x dim), queries.npy, qlabels.npy (identity = row), truth.npy (exact top K,
    by faiss.contrib.exhaustive_search.knn_ground_truth over blocks of the file)."""
    import faiss
    from faiss.contrib.exhaustive_search import knn_ground_truth

    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "truth.npy").exists():
        return
    if not (folder / "qlabels.npy").exists():  # else made by an interrupted run
        gen = Generator(params, dim=dim)
        rng = np.random.default_rng(size)
        qlabels = np.sort(rng.choice(size, size=queries, replace=False))
        qvecs = np.zeros((queries, dim), dtype=np.float32)
        with open(folder / "data.f32", "wb") as out:
            for start in range(0, size, CHUNK):
                stop = min(size, start + CHUNK)
                crng = np.random.default_rng([size, start])
                centres = gen.centres(stop - start, crng)
                out.write(gen.samples(centres, crng).tobytes())
                pick = (qlabels >= start) & (qlabels < stop)
                if pick.any():
                    qvecs[pick] = gen.samples(centres[qlabels[pick] - start], crng)
        np.save(folder / "queries.npy", qvecs)
        np.save(folder / "qlabels.npy", qlabels)
    qvecs = np.load(folder / "queries.npy")
    _, truth = knn_ground_truth(
        qvecs, data_blocks(folder, size, dim), K, metric_type=faiss.METRIC_INNER_PRODUCT
    )
    np.save(folder / "truth.npy", truth)


def data_blocks(folder: Path, size: int, dim: int):
    for start in range(0, size, CHUNK):
        count = min(CHUNK, size - start)
        yield np.fromfile(
            folder / "data.f32", dtype=np.float32, count=count * dim, offset=start * dim * 4
        ).reshape(count, dim)


def make_gallery(folder: Path, data: Path, size: int, dim: int) -> float:
    """A real gallery: subject S<row> with one face (id row + 1) on a photo row of its own,
    written through the gallery's bulk API, one audited unit of work per chunk. Returns the
    seconds taken."""
    from workstation.audit.actions import AuditAction
    from workstation.domain import ModelId
    from workstation.gallery.store import Gallery

    if (folder / "filled").exists():
        return 0.0
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    model = ModelId(MODEL_NAME, "0" * 64, dim)
    with Gallery(folder, user="bench") as gallery:
        for start, block in zip(range(0, size, CHUNK), data_blocks(data, size, dim), strict=True):
            rows = range(start, start + len(block))
            details = {"synthetic_faces": len(block), "purpose": "search_scale benchmark"}
            # The index is built by the benchmark's own steps, not kept in step here.
            with gallery.change(AuditAction.ENROL, details, save_index=False) as change:
                face_ids = add_synthetic_faces(
                    change,
                    [f"S{i}" for i in rows],
                    block,
                    [f"synthetic-{i}" for i in rows],
                    model,
                )
            gallery.forget_index()
            if face_ids[0] != start + 1:
                raise SystemExit(f"{folder}: face ids do not follow the rows (a used gallery?)")
    (folder / "filled").touch()
    return time.perf_counter() - t0


def index_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.startswith("faces."))


def evict(folder: Path) -> None:
    """Drop the index files' pages from the OS cache (POSIX_FADV_DONTNEED; no root needed)."""
    for path in index_files(folder):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def read_through(folder: Path) -> None:
    """Read the index files once, so that they are in the OS cache."""
    for path in index_files(folder):
        with open(path, "rb") as handle:
            while handle.read(8 << 20):
                pass


def memory() -> dict[str, float]:
    """VmRSS / VmHWM / RssAnon (private heap) / RssFile (mapped files, reclaimable), in MB."""
    fields = {"VmRSS": 0.0, "VmHWM": 0.0, "RssAnon": 0.0, "RssFile": 0.0}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in fields:
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


def percentiles(times: list[float]) -> dict[str, float | None]:
    if not times:
        return {"p50_ms": None, "p95_ms": None}
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
    }


def recall(results: np.ndarray, qlabels: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    from faiss.contrib.evaluation import knn_intersection_measure

    return {
        "mate_recall": round(float(np.mean(np.any(results == qlabels[:, None], axis=1))), 4),
        "exact_mate_recall": round(float(np.mean(np.any(truth == qlabels[:, None], axis=1))), 4),
        "recall_at_20": round(float(knn_intersection_measure(results, truth)), 4),
    }


# ---------------------------------------------------------------------- steps (own process)
def step_build(gallery_dir: Path, flat_max: int | None) -> dict:
    from workstation.gallery.index_build import rebuild_index
    from workstation.gallery.store import Gallery
    from workstation.progress import drain

    with Gallery(gallery_dir, user="bench") as gallery:
        t0 = time.perf_counter()
        index = drain(rebuild_index(gallery, reason="search_scale benchmark", flat_max=flat_max))
        build_s = time.perf_counter() - t0
    ann = {
        k: v
        for k, v in (index.ann_meta or {}).items()
        if k in ("shortlist", "rerank", "mate_recall", "exact_mate_recall", "recall_at_20")
    }
    return {
        "build_s": round(build_s, 1),
        # VmHWM, not getrusage: a child started by subprocess (vfork + exec) inherits the
        # parent's ru_maxrss (measured: 1,261 MB reported for both codes at 1M, the size of the
        # parent), while VmHWM belongs to the process's own address space.
        "build_peak_rss_mb": memory()["VmHWM"],
        "kind": index.kind,
        "ann": ann,
    }


def step_cold(index_dir: Path, data: Path, seconds: float) -> dict:
    """Search from a cold OS cache for `seconds`, cycling through the queries."""
    from workstation.gallery.index import VectorIndex

    queries = np.load(data / "queries.npy")
    t0 = time.perf_counter()
    index = VectorIndex.load(index_dir)
    assert not isinstance(index, str), index
    load_s = time.perf_counter() - t0
    start = time.perf_counter()
    stamps: list[tuple[float, float]] = []
    n = 0
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        index.search(queries[n % len(queries)], K)
        stamps.append((t - start, (time.perf_counter() - t) * 1000))
        n += 1
    all_times = [ms for _, ms in stamps]
    first_10s = [ms for at, ms in stamps if at < 10]
    return {
        "load_s": round(load_s, 2),
        "searches": len(stamps),
        "first_ms": round(all_times[0], 1),
        **percentiles(all_times),
        "max_ms": round(max(all_times), 1),
        "first_10s": percentiles(first_10s),
        "after_10s": percentiles([ms for at, ms in stamps if at >= 10]),
    }


def step_warm(index_dir: Path, data: Path, nq: int) -> dict:
    from workstation.gallery.index import VectorIndex

    queries = np.load(data / "queries.npy")[:nq]
    qlabels = np.load(data / "qlabels.npy")[:nq]
    truth = np.load(data / "truth.npy")[:nq]
    read_through(index_dir)
    index = VectorIndex.load(index_dir)
    assert not isinstance(index, str), index
    for q in queries[:10]:
        index.search(q, K)  # not timed
    times, results = [], np.full((len(queries), K), -1, dtype=np.int64)
    for n, q in enumerate(queries):
        t = time.perf_counter()
        _, ids = index.search(q, K)
        times.append((time.perf_counter() - t) * 1000)
        results[n, : len(ids)] = ids - 1  # face id = row + 1
    mem = memory()
    return {
        **percentiles(times),
        **recall(results, qlabels, truth),
        "rss_mb": mem["VmRSS"],
        "rss_anon_mb": mem["RssAnon"],
        "rss_file_mb": mem["RssFile"],
        "shortlist": getattr(index, "shortlist", None),
        "rerank": getattr(index, "rerank", None),
    }


def step_delete(index_dir: Path, data: Path, size: int, dim: int, deletes: int) -> dict:
    """Remove single-face subjects one at a time (remove + save), then look for their bytes."""
    from workstation.gallery.index import VectorIndex

    index = VectorIndex.load(index_dir)
    assert not isinstance(index, str), index
    rng = np.random.default_rng(99)
    rows = rng.choice(size, size=deletes, replace=False)
    needles = []
    with open(data / "data.f32", "rb") as handle:
        for row in rows:
            handle.seek(int(row) * dim * 4)
            needles.append(handle.read(dim * 4))
    times = []
    for row in rows:
        t = time.perf_counter()
        index.remove([int(row) + 1])
        index.generation += 1
        index.save()
        times.append((time.perf_counter() - t) * 1000)
    still = sorted({path.name for path in index_files(index_dir) if contains(path, needles)})
    return {
        "deletes": deletes,
        "delete_ms_median": round(float(np.median(times)), 1),
        "delete_ms_max": round(max(times), 1),
        "embedding_bytes_left_in": still,
    }


def contains(path: Path, needles: list[bytes]) -> bool:
    overlap = max(len(n) for n in needles)
    tail = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(64 << 20):
            window = tail + chunk
            if any(n in window for n in needles):
                return True
            tail = window[-overlap:]
    return False


def step_numpy(data: Path, size: int, dim: int, nq: int) -> dict:
    queries = np.load(data / "queries.npy")[:nq]
    qlabels = np.load(data / "qlabels.npy")[:nq]
    truth = np.load(data / "truth.npy")[:nq]
    t0 = time.perf_counter()
    matrix = np.fromfile(data / "data.f32", dtype=np.float32).reshape(size, dim)
    load_s = time.perf_counter() - t0
    times, results = [], np.zeros((len(queries), K), dtype=np.int64)
    for n, q in enumerate(queries):
        t = time.perf_counter()
        scores = matrix @ q
        top = np.argpartition(-scores, K)[:K]
        results[n] = top[np.argsort(-scores[top])]
        times.append((time.perf_counter() - t) * 1000)
    mem = memory()
    return {
        "load_s": round(load_s, 2),
        **percentiles(times[5:]),
        **recall(results, qlabels, truth),
        "rss_mb": mem["VmRSS"],
    }


def step_sqlite(gallery_dir: Path, data: Path, dim: int, nq: int) -> dict:
    queries = np.load(data / "queries.npy")[:nq]
    qlabels = np.load(data / "qlabels.npy")[:nq]
    truth = np.load(data / "truth.npy")[:nq]
    conn = sqlite3.connect(f"file:{gallery_dir / 'gallery.sqlite'}?mode=ro", uri=True)
    times, results = [], np.zeros((len(queries), K), dtype=np.int64)
    for n, q in enumerate(queries):
        t = time.perf_counter()
        rows = conn.execute("SELECT id, embedding FROM faces").fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(-1, dim)
        scores = matrix @ q
        top = np.argpartition(-scores, K)[:K]
        results[n] = ids[top[np.argsort(-scores[top])]] - 1
        times.append((time.perf_counter() - t) * 1000)
    return {**percentiles(times), **recall(results, qlabels, truth)}


def run_step(code: Path | None, *args: str) -> dict:
    """One step in a fresh process: this checkout's code, or the baseline's export."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH")]))
    load_before = os.getloadavg()[0]
    out = subprocess.run(
        [sys.executable, __file__, "--step", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["load"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    return result


def export_code(commit: str, workdir: Path, repo: Path = REPO) -> Path:
    """The `workstation` package as it was at `commit` (git archive), for the runs of it."""
    target = workdir / f"code-{commit}"
    if not (target / "workstation").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", commit, "workstation"],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def move_index(src: Path, dst: Path) -> None:
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    for path in index_files(src):
        path.replace(dst / path.name)


def do_step(args: list[str]) -> dict:
    import workstation

    name, rest = args[0], args[1:]
    where = {"code": str(Path(workstation.__file__).parent.parent)}
    if name == "build":
        flat_max = None if rest[1] == "-" else int(rest[1])
        return {**where, **step_build(Path(rest[0]), flat_max)}
    if name == "cold":
        return {**where, **step_cold(Path(rest[0]), Path(rest[1]), float(rest[2]))}
    if name == "warm":
        return {**where, **step_warm(Path(rest[0]), Path(rest[1]), int(rest[2]))}
    if name == "delete":
        size, dim, deletes = (int(x) for x in rest[2:5])
        return {**where, **step_delete(Path(rest[0]), Path(rest[1]), size, dim, deletes)}
    if name == "numpy-bruteforce":
        return step_numpy(Path(rest[0]), int(rest[1]), int(rest[2]), int(rest[3]))
    if name == "sqlite-reload":
        return step_sqlite(Path(rest[0]), Path(rest[1]), int(rest[2]), int(rest[3]))
    raise SystemExit(f"unknown step {name}")


def emit(size: int, method: str, step: str, result: dict) -> None:
    print(json.dumps({"size": size, "method": method, "step": step, **result}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="300000,10000000")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--cold-seconds", type=float, default=60.0)
    ap.add_argument("--deletes", type=int, default=5)
    ap.add_argument("--baseline", default=None, help="commit whose code is measured beside")
    ap.add_argument("--product", default=None, help="measure this commit, not the checkout")
    ap.add_argument("--repo", type=Path, default=REPO, help="where the commits are")
    ap.add_argument("--methods", default="", help="extra: numpy-bruteforce,sqlite-reload")
    ap.add_argument("--sqlite-max", type=int, default=300_000, help="largest sqlite-reload size")
    ap.add_argument("--flat-max", type=int, default=None, help="override FLAT_MAX_FACES")
    ap.add_argument("--faces", type=Path, default=FACES, help="labelled photos to fit to")
    ap.add_argument("--workdir", default="/tmp/ws-search-scale")
    ap.add_argument("--keep", action="store_true", help="keep data and galleries for re-runs")
    ap.add_argument("--step", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    if args.step:
        print(json.dumps(do_step(args.step)))
        return
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    fit_file = workdir / "fit.json"
    if fit_file.exists():
        fitted = json.loads(fit_file.read_text())
    else:
        real = real_stats(args.faces)
        params = fit(real)
        fitted = {"real": real, "params": params, "synthetic": synthetic_stats(params, 20000)}
        fit_file.write_text(json.dumps(fitted))
    print(json.dumps({"fit": fitted, "cores": os.cpu_count()}), flush=True)
    codes: dict[str, Path | None] = {"product": None}
    if args.product:
        codes = {f"product {args.product}": export_code(args.product, workdir, args.repo)}
    if args.baseline:
        codes = {
            f"baseline {args.baseline}": export_code(args.baseline, workdir, args.repo),
            **codes,
        }
    extra = [m for m in args.methods.split(",") if m]
    dim = args.dim
    flat_max = "-" if args.flat_max is None else str(args.flat_max)
    for size in (int(s) for s in args.sizes.split(",")):
        folder = workdir / f"n{size}-d{dim}"
        data, gallery = folder / "data", folder / "gallery"
        t0 = time.perf_counter()
        make_data(data, size, dim, fitted["params"], args.queries)
        line = {
            "size": size,
            "dim": dim,
            "step": "data",
            "generate_s": round(time.perf_counter() - t0),
        }
        line["gallery_s"] = round(make_gallery(gallery, data, size, dim))
        print(json.dumps(line), flush=True)
        for method, code in codes.items():
            index_dir = folder / ("index-" + method.split()[0])

            where, sizes = (str(index_dir), str(data)), (str(size), str(dim))
            emit(size, method, "build", run_step(code, "build", str(gallery), flat_max))
            move_index(gallery, index_dir)
            evict(index_dir)
            emit(size, method, "cold", run_step(code, "cold", *where, str(args.cold_seconds)))
            emit(size, method, "warm", run_step(code, "warm", *where, str(args.queries)))
            deletes = str(args.deletes)
            emit(size, method, "delete", run_step(code, "delete", *where, *sizes, deletes))
        for method in extra:
            if method == "sqlite-reload" and size > args.sqlite_max:
                continue
            nq = min(args.queries, 100 if size >= 5_000_000 else args.queries)
            if method == "sqlite-reload":
                nq = min(nq, max(20, 2_000_000 // size))
                result = run_step(None, method, str(gallery), str(data), str(dim), str(nq))
            else:
                result = run_step(None, method, str(data), str(size), str(dim), str(nq))
            print(json.dumps({"size": size, "method": method, **result}), flush=True)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
