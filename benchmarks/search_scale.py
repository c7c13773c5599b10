"""Search latency, memory and recall from 10 thousand to 10 million faces, side by side.

Synthetic identities stand in for real faces: each identity is a centre on the unit sphere and
each photo of it the centre plus noise, L2-normalised, in the default model's dimension. The
generator's four parameters are fitted so that the mated and non-mated cosine-similarity
distributions (mean and standard deviation) match those the default model (YuNet + SFace) gives
on the labelled photos of ../shared/faces; the fitted figures are printed first.

For each size the gallery holds one face per identity; queries are fresh samples of enrolled
identities. Methods, each measured in a fresh process (so resident memory is its own):

- ``product``: workstation.gallery.index (exact scan up to FLAT_MAX_FACES, IVF-SQ8 + exact
  re-rank above; files memory-mapped), single queries, top 20.
- ``numpy-bruteforce``: the whole float32 matrix in memory, ``X @ q`` + argpartition.
- ``sqlite-reload``: every embedding read back from SQLite for every search (as InsightFace
  Studio does); small sizes only.

Fields: size, method, build_s, rss_mb (resident after the queries), peak_rss_mb, p50_ms, p95_ms,
mate_recall (share of queries whose identity is in the top 20) and recall_at_20 (overlap with
the exact top 20).

Run: python benchmarks/search_scale.py --sizes 10000,300000,1000000,10000000 --json
Data goes under --workdir (default /tmp/ws-search-scale; 10M needs ~11 GB of disk) and is
deleted at the end unless --keep.
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

DIM = 128
K = 20
CHUNK = 250_000
FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"


# ---------------------------------------------------------------------- synthetic identities
class Generator:
    """Identity centres with a decaying spectrum (a random rotation of it) plus a common mean.

    params: a = weight of the common mean direction (sets the non-mated mean), beta = spectrum
    decay (sets the non-mated spread), s0 and s_sigma = median and log-spread of the per-photo
    noise scale (set the mated mean and spread).
    """

    def __init__(self, params: dict[str, float], dim: int = DIM, seed: int = 7) -> None:
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


def real_stats() -> dict[str, float]:
    """Mated / non-mated cosine similarity of the default model on ../shared/faces."""
    from workstation.vision.images import load_image
    from workstation.vision.registry import create_engine

    engine = create_engine()
    embeddings, labels = [], []
    with open(FACES / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            faces = engine.analyze(load_image(FACES / row["path"]).bgr)
            if faces:
                embeddings.append(faces[0].embedding)
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
def make_data(folder: Path, size: int, params: dict[str, float], queries: int) -> None:
    """data.f32 (size x DIM), queries.npy, qlabels.npy (identity = row), truth.npy (exact top K)."""
    import faiss

    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "truth.npy").exists():
        return
    gen = Generator(params)
    rng = np.random.default_rng(size)
    qlabels = np.sort(rng.choice(size, size=queries, replace=False))
    qvecs = np.zeros((queries, DIM), dtype=np.float32)
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
    data = np.memmap(folder / "data.f32", dtype=np.float32, mode="r", shape=(size, DIM))
    truth = np.zeros((queries, K), dtype=np.int64)
    for start in range(0, queries, 100):
        _, truth[start : start + 100] = faiss.knn(
            qvecs[start : start + 100], data, K, metric=faiss.METRIC_INNER_PRODUCT
        )
    np.save(folder / "truth.npy", truth)


def rss() -> tuple[float, float]:
    """(resident now, peak resident) in MB; file-backed pages of memory maps included."""
    fields = memory()
    return fields["VmRSS"], fields["VmHWM"]


def memory() -> dict[str, float]:
    """VmRSS / VmHWM / RssAnon (private heap) / RssFile (mapped files, reclaimable), in MB."""
    fields = {"VmRSS": 0.0, "VmHWM": 0.0, "RssAnon": 0.0, "RssFile": 0.0}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in fields:
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


# ---------------------------------------------------------------------- workers (own process)
def worker(method: str, folder: Path, size: int, nq: int, flat_max: int | None) -> dict:
    queries = np.load(folder / "queries.npy")[:nq]
    qlabels = np.load(folder / "qlabels.npy")[:nq]
    truth = np.load(folder / "truth.npy")[:nq]
    extra: dict = {}
    if method == "product-build":
        from workstation.gallery.index_build import build_index
        from workstation.progress import drain

        data = np.memmap(folder / "data.f32", dtype=np.float32, mode="r", shape=(size, DIM))
        chunks = (
            (np.arange(s, min(size, s + CHUNK), dtype=np.int64), data[s : s + CHUNK])
            for s in range(0, size, CHUNK)
        )
        t0 = time.perf_counter()
        index = drain(build_index(folder / "product", chunks, size, DIM, flat_max=flat_max))
        build_s = time.perf_counter() - t0
        _, peak = rss()
        return {
            "build_s": round(build_s, 2),
            "build_peak_rss_mb": peak,
            "kind": index.kind,
            "ann": {k: v for k, v in (index.ann_meta or {}).items() if k != "calibration"},
        }
    if method == "product":
        from workstation.gallery.index import VectorIndex

        t0 = time.perf_counter()
        index = VectorIndex.load(folder / "product")
        assert not isinstance(index, str), index
        extra = {
            "load_s": round(time.perf_counter() - t0, 3),
            "kind": index.kind,
            "shortlist": index.shortlist or None,
        }

        def search(q: np.ndarray) -> np.ndarray:
            return index.search(q, K)[1]

        build_s = None
    elif method == "numpy-bruteforce":
        t0 = time.perf_counter()
        matrix = np.fromfile(folder / "data.f32", dtype=np.float32).reshape(size, DIM)
        build_s = time.perf_counter() - t0

        def search(q: np.ndarray) -> np.ndarray:
            scores = matrix @ q
            top = np.argpartition(-scores, K)[:K]
            return top[np.argsort(-scores[top])]

    elif method == "sqlite-reload":
        db = folder / "reload.sqlite"
        t0 = time.perf_counter()
        if not db.exists():
            conn = sqlite3.connect(db)
            conn.execute("CREATE TABLE faces (id INTEGER PRIMARY KEY, embedding BLOB)")
            data = np.memmap(folder / "data.f32", dtype=np.float32, mode="r", shape=(size, DIM))
            for s in range(0, size, CHUNK):
                block = data[s : s + CHUNK]
                conn.executemany(
                    "INSERT INTO faces VALUES (?, ?)",
                    ((s + i, block[i].tobytes()) for i in range(len(block))),
                )
            conn.commit()
            conn.close()
        build_s = time.perf_counter() - t0
        conn = sqlite3.connect(db)

        def search(q: np.ndarray) -> np.ndarray:
            rows = conn.execute("SELECT id, embedding FROM faces").fetchall()
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
            scores = matrix.reshape(-1, DIM) @ q
            top = np.argpartition(-scores, K)[:K]
            return ids[top[np.argsort(-scores[top])]]

    else:
        raise SystemExit(f"unknown method {method}")
    warm = min(10, nq // 5)
    times, results = [], []
    for n, q in enumerate(queries):
        t = time.perf_counter()
        got = search(q)
        elapsed = (time.perf_counter() - t) * 1000
        if n >= warm:
            times.append(elapsed)
        results.append(got)
    mate = np.mean([label in set(r.tolist()) for label, r in zip(qlabels, results, strict=True)])
    overlap = np.mean(
        [len(set(r.tolist()) & set(t.tolist())) / K for r, t in zip(results, truth, strict=True)]
    )
    exact_mate = np.mean(
        [label in set(t.tolist()) for label, t in zip(qlabels, truth, strict=True)]
    )
    mem = memory()
    return {
        "build_s": None if build_s is None else round(build_s, 2),
        "rss_mb": mem["VmRSS"],
        "peak_rss_mb": mem["VmHWM"],
        "rss_anon_mb": mem["RssAnon"],
        "rss_file_mb": mem["RssFile"],
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
        "queries": len(times),
        "mate_recall": round(float(mate), 4),
        "exact_mate_recall": round(float(exact_mate), 4),  # exact search, same queries
        "recall_at_20": round(float(overlap), 4),
        **extra,
    }


def run_worker(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,300000,1000000,10000000")
    ap.add_argument("--json", action="store_true", help="JSON lines (the only output format)")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--methods", default="product,numpy-bruteforce,sqlite-reload")
    ap.add_argument("--sqlite-max", type=int, default=300_000, help="largest sqlite-reload size")
    ap.add_argument("--flat-max", type=int, default=None, help="override FLAT_MAX_FACES")
    ap.add_argument("--workdir", default="/tmp/ws-search-scale")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--worker", nargs=5, metavar=("METHOD", "DIR", "SIZE", "NQ", "FLATMAX"))
    args = ap.parse_args()
    if args.worker:
        method, folder, size, nq, flat_max = args.worker
        result = worker(
            method, Path(folder), int(size), int(nq), None if flat_max == "-" else int(flat_max)
        )
        print(json.dumps(result))
        return
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    fit_file = workdir / "fit.json"
    if fit_file.exists():
        fitted = json.loads(fit_file.read_text())
    else:
        real = real_stats()
        params = fit(real)
        fitted = {"real": real, "params": params, "synthetic": synthetic_stats(params, 20000)}
        fit_file.write_text(json.dumps(fitted))
    print(json.dumps({"fit": fitted}), flush=True)
    methods = args.methods.split(",")
    flat_max = "-" if args.flat_max is None else str(args.flat_max)
    for size in (int(s) for s in args.sizes.split(",")):
        folder = workdir / f"n{size}"
        t0 = time.perf_counter()
        make_data(folder, size, fitted["params"], args.queries)
        gen_s = round(time.perf_counter() - t0, 1)
        print(json.dumps({"size": size, "method": "data", "generate_s": gen_s}), flush=True)
        for method in methods:
            nq = args.queries
            if method == "sqlite-reload":
                if size > args.sqlite_max:
                    continue
                nq = min(nq, max(20, 2_000_000 // size))
            if method == "numpy-bruteforce" and size >= 5_000_000:
                nq = min(nq, 100)
            line: dict = {"size": size, "method": method}
            if method == "product":
                built = run_worker(["product-build", str(folder), str(size), str(nq), flat_max])
                line["method"] = f"product ({built.get('kind', '?')})"
                searched = run_worker(["product", str(folder), str(size), str(nq), flat_max])
                line.update(searched)
                line["build_s"] = built.get("build_s")
                line["build_peak_rss_mb"] = built.get("build_peak_rss_mb")
                if built.get("ann"):
                    line["ann"] = built["ann"]
                if "error" in built:
                    line["error"] = built["error"]
            else:
                line.update(run_worker([method, str(folder), str(size), str(nq), flat_max]))
            print(json.dumps(line), flush=True)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    os.sync()


if __name__ == "__main__":
    main()
