"""Enrol and search on an agency gallery (PostgreSQL + Milvus Lite) beside the embedded gallery
(SQLite + FAISS files), same faces, same queries, same run.

The faces are benchmarks/search_scale.py's synthetic identities (fitted to the default model's
mated / non-mated score distributions on ../shared/faces; the fit is cached in the workdir): one
face per identity, queries are fresh samples of enrolled identities, and the exact top 20 (FAISS
brute force over all vectors) is the reference.

For each size and each kind of gallery, through the program's own calls:

- enrol: `Gallery.change` + `GalleryChange.add_subjects` / `add_faces_bulk` in batches of
  BATCH faces (rows, audit event and vectors in one act each: for the agency gallery the vectors
  go to Milvus inside the act), then `Gallery.index()` (embedded: the FAISS index is built;
  agency: Milvus loads the collection and builds its segment indexes): faces_per_s, ready_s;
- search: `Gallery.index().search(q, 20)` (agency: Milvus proposes, PostgreSQL's stored
  embeddings re-score exactly), single queries: p50_ms, p95_ms, mate_recall (share of queries
  whose identity is in the top 20), exact_mate_recall (the same with exact search) and
  recall_at_20 (overlap with the exact top 20).

The servers are local and share the benchmark's 2 cores: PostgreSQL 16 from the pgserver wheel
(one private server under --workdir) and Milvus Lite (the embedded Milvus in milvus-lite; a
Milvus standalone or cluster serves the same API, docs/DEPLOYMENT.md sizes them).

The examiner is "bench", whose key profile is made under --workdir (WORKSTATION_CONFIG_DIR),
never in the user's own config folder; the agency database is opened as the role "bench".

Run: python benchmarks/agency_scale.py --sizes 100000,1000000 --queries 300 [--index HNSW]
Output: JSON lines. Data under --workdir (default /tmp/ws-agency-scale), deleted unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from workstation.domain import ModelId

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search_scale

K = search_scale.K
DIM = 128  # the default model's (SFace) embedding size
BATCH = 50_000
# A model id of the default model's shape (128-d); the faces are synthetic.
MODEL = ModelId("synthetic-sface-like", "0" * 64, DIM)
# search_scale.py's fit to the default model on ../shared/faces (docs/PERFORMANCE.md, "Search at
# scale"): the same synthetic faces as the FAISS figures there. --refit measures them again.
FITTED = {"a": 0.361, "beta": 0.352, "s0": 0.551, "s_sigma": 0.281}


def enrol(gallery: Any, data: np.ndarray) -> float:
    """Enrol every row of `data` as one face of its own subject; returns the seconds taken."""
    from workstation.audit.actions import AuditAction

    t0 = time.perf_counter()
    for start in range(0, len(data), BATCH):
        if start:  # progress, so that a long run shows its rate before it ends
            elapsed = time.perf_counter() - t0
            progress = {
                "enrolled": start,
                "s": round(elapsed, 1),
                "faces_per_s": round(start / elapsed),
            }
            print(json.dumps({**progress, "load": os.getloadavg()[0]}), file=sys.stderr, flush=True)
        stop = min(len(data), start + BATCH)
        subjects = [f"S{i:08d}" for i in range(start, stop)]
        with gallery.change(AuditAction.ENROL, {"benchmark": f"faces {start}-{stop}"}) as change:
            change.bind_model(MODEL)
            change.add_subjects((s, None, {}) for s in subjects)
            change.add_faces_bulk(
                subjects,
                np.ascontiguousarray(data[start:stop]),
                [f"{i:064x}" for i in range(start, stop)],
                model_id=str(MODEL),
                original_path="/benchmark/synthetic.jpg",
                width=112,
                height=112,
                box=(0, 0, 112, 112),
            )
    return time.perf_counter() - t0


def server_cpu_s(pg_dir: Path | None) -> float:
    """CPU seconds used so far by the PostgreSQL server whose data folder is `pg_dir`: the
    postmaster, its live backends and those that exited (Linux /proc; 0 elsewhere)."""
    if pg_dir is None or not Path("/proc").exists():
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    procs: dict[int, tuple[str, int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime: its own CPU and its reaped children's.
        procs[int(entry.name)] = (cmd, int(stat[1]), sum(int(x) for x in stat[11:15]) / tick)
    roots = {pid for pid, (cmd, _, _) in procs.items() if f"-D {pg_dir}" in cmd}
    return sum(cpu for pid, (_, parent, cpu) in procs.items() if pid in roots or parent in roots)


def measure(
    gallery: Any, folder: Path, size: int, nq: int, pg_dir: Path | None = None
) -> dict[str, Any]:
    data = np.memmap(folder / "data.f32", dtype=np.float32, mode="r", shape=(size, DIM))
    queries = np.load(folder / "queries.npy")[:nq]
    qlabels = np.load(folder / "qlabels.npy")[:nq]
    truth = np.load(folder / "truth.npy")[:nq]
    # CPU, not only wall time: on a shared machine the wall time of a niced run follows the
    # load; the CPU each face costs does not. This process's CPU includes Milvus Lite (it runs
    # in-process, in threads).
    cpu0, server0 = time.process_time(), server_cpu_s(pg_dir)
    enrol_s = enrol(gallery, data)
    enrol_cpu_s, server_enrol_s = time.process_time() - cpu0, server_cpu_s(pg_dir) - server0
    t0 = time.perf_counter()
    index = gallery.index()
    index.search(queries[0], K)
    ready_s = time.perf_counter() - t0
    return {
        "kind": index.kind,
        "enrol_s": round(enrol_s, 1),
        "faces_per_s": round(size / enrol_s),
        "enrol_cpu_ms_per_face": round(1000 * enrol_cpu_s / size, 2),
        "postgres_cpu_ms_per_face": round(1000 * server_enrol_s / size, 2),
        "ready_s": round(ready_s, 1),
        **search_figures(index, queries, qlabels, truth),
    }


def search_figures(
    index: Any, queries: np.ndarray, qlabels: np.ndarray, truth: np.ndarray
) -> dict[str, Any]:
    """Single searches of the top K: latency, and recall against the exact top K."""
    warm = min(10, len(queries) // 5)
    times, results = [], []
    for n, query in enumerate(queries):
        t = time.perf_counter()
        _, ids = index.search(query, K)
        elapsed = (time.perf_counter() - t) * 1000
        if n >= warm:
            times.append(elapsed)
        results.append(set((ids - 1).tolist()))  # face ids count from 1, data rows from 0
    mate = np.mean([label in got for label, got in zip(qlabels, results, strict=True)])
    exact_mate = np.mean(
        [label in set(t.tolist()) for label, t in zip(qlabels, truth, strict=True)]
    )
    overlap = np.mean(
        [len(got & set(t.tolist())) / K for got, t in zip(results, truth, strict=True)]
    )
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
        "queries": len(times),
        "mate_recall": round(float(mate), 4),
        "exact_mate_recall": round(float(exact_mate), 4),
        "recall_at_20": round(float(overlap), 4),
        "load_1min": round(os.getloadavg()[0], 1),
    }


def proposal_lengths(gallery: Any, folder: Path, nq: int, lengths: list[int]) -> list[dict]:
    """The same agency gallery searched again with each number of rows Milvus proposes
    (milvus.PROPOSALS; K = the old behaviour, Milvus's own top K), in one run."""
    from workstation.gallery import milvus

    queries = np.load(folder / "queries.npy")[:nq]
    qlabels = np.load(folder / "qlabels.npy")[:nq]
    truth = np.load(folder / "truth.npy")[:nq]
    index = gallery.index()
    shipped = milvus.PROPOSALS
    lines = []
    try:
        for length in lengths:
            milvus.PROPOSALS = length
            lines.append({"proposals": length, **search_figures(index, queries, qlabels, truth)})
    finally:
        milvus.PROPOSALS = shipped
    return lines


def start_postgres(workdir: Path) -> Any:
    import pgserver

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # XDG_RUNTIME_DIR unset: harmless
        return pgserver.get_server(workdir / "pg", cleanup_mode="stop")


def agency_gallery(server: Any, workdir: Path, size: int, index_type: str) -> Path:
    """A fresh database and collection for this size, set up by `init_agency` (as `agency
    init` does), opened by the examiner "bench" (a role of that name)."""
    import psycopg

    from workstation.gallery.agency import init_agency

    name = f"bench_{size}"
    admin_url = f"postgresql://postgres@/postgres?host={workdir / 'pg'}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
        # The examiner "bench" connects as the role named as them (gallery.agency.open_agency).
        conn.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench') "
            "THEN CREATE ROLE bench LOGIN SUPERUSER; END IF; END $$"
        )
    folder = workdir / f"agency-{size}"
    shutil.rmtree(folder, ignore_errors=True)
    init_agency(
        folder,
        f"postgresql://postgres@/{name}?host={workdir / 'pg'}",
        str(workdir / "milvus.db"),
        collection=name,
        index_type=index_type,
        dim=DIM,  # the collection (and Milvus Lite) made now, not inside the timed enrolment
    )
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--index", default="HNSW", help="Milvus index type (HNSW, IVF_FLAT, FLAT)")
    ap.add_argument("--kinds", default="embedded,agency")
    ap.add_argument("--workdir", default="/tmp/ws-agency-scale")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--refit", action="store_true", help="fit the generator to ../shared/faces")
    ap.add_argument(
        "--proposals",
        default="",
        help="agency: search again proposing each of these numbers of rows (e.g. 20,400)",
    )
    args = ap.parse_args()
    from workstation.gallery.store import open_gallery

    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ["WORKSTATION_CONFIG_DIR"] = str(workdir / "profile")
    fit_file = workdir / "fit.json"
    if not args.refit:
        fitted = {"params": FITTED, "synthetic": search_scale.synthetic_stats(FITTED, 20000)}
    elif fit_file.exists():
        fitted = json.loads(fit_file.read_text())
    else:
        params = search_scale.fit(search_scale.real_stats(search_scale.FACES))
        fitted = {"params": params, "synthetic": search_scale.synthetic_stats(params, 20000)}
        fit_file.write_text(json.dumps(fitted))
    print(json.dumps({"fit": fitted}), flush=True)
    kinds = args.kinds.split(",")
    server = start_postgres(workdir) if "agency" in kinds else None
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            data_folder = workdir / f"n{size}"
            t0 = time.perf_counter()
            search_scale.make_data(data_folder, size, DIM, fitted["params"], args.queries)
            line = {"size": size, "data_s": round(time.perf_counter() - t0, 1)}
            print(json.dumps(line), flush=True)
            for kind in kinds:
                if kind == "agency":
                    folder = agency_gallery(server, workdir, size, args.index)
                else:
                    folder = workdir / f"embedded-{size}"
                    shutil.rmtree(folder, ignore_errors=True)
                pg_dir = workdir / "pg" if kind == "agency" else None
                with open_gallery(folder, user="bench", create=True) as gallery:
                    result = measure(gallery, data_folder, size, args.queries, pg_dir)
                    print(json.dumps({"size": size, "gallery": kind, **result}), flush=True)
                    if kind == "agency" and args.proposals:
                        lengths = [int(n) for n in args.proposals.split(",")]
                        for line in proposal_lengths(gallery, data_folder, args.queries, lengths):
                            print(json.dumps({"size": size, "gallery": kind, **line}), flush=True)
                if not args.keep and kind == "embedded":
                    shutil.rmtree(folder, ignore_errors=True)
            if not args.keep:
                shutil.rmtree(data_folder, ignore_errors=True)
    finally:
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
