"""How long deleting a subject takes now that deleted means deleted (issue 12 item 1), beside
the old way, measured in the same run on the same gallery.

A gallery of N synthetic faces (one per subject, 128-dimensional like SFace, each on a photo row
of its own) is built through the bulk unit-of-work API and its vector index built. Then
subjects are deleted one by one through `delete_subject`, alternating:

- ``scrubbed``: the product as it is: secure_delete on, the faces removed from the index, the
  index saved, the WAL checkpointed and truncated after the commit;
- ``baseline``: the same act with secure_delete off and no WAL checkpoint (what a deletion did
  before issue 12: the rows' bytes left in free pages and in the -wal file).

Printed: median and 95th percentile milliseconds of each, and the -wal size after each kind.

Run: python benchmarks/delete_speed.py --faces 300000 [--deletions 20] [--workdir /tmp/x]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
from synthetic_gallery import CHUNK, add_synthetic_faces, random_unit_vectors

from workstation.audit.actions import AuditAction
from workstation.domain import ModelId
from workstation.gallery.admin import delete_subject
from workstation.gallery.store import Gallery

DIM = 128


def build(folder: Path, faces: int) -> None:
    rng = np.random.default_rng(7)
    model = ModelId("synthetic", "0" * 64, DIM)
    with Gallery(folder, user="bench") as gallery:
        for start in range(0, faces, CHUNK):
            n = min(CHUNK, faces - start)
            ids = [f"S{start + i:08d}" for i in range(n)]
            with gallery.change(AuditAction.ENROL, {"bulk": n}, save_index=False) as change:
                add_synthetic_faces(
                    change,
                    ids,
                    random_unit_vectors(rng, n, DIM),
                    [f"{start + i:064x}" for i in range(n)],
                    model,
                    names=[f"Name {i}" for i in ids],
                )
        gallery.forget_index()
        gallery.index()  # built from the database and saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=300_000)
    parser.add_argument("--deletions", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ws-delete-speed"))
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--gallery",
        type=Path,
        help="an existing gallery to delete from instead (e.g. search_scale.py --keep's 10M one: "
        "its subjects are deleted, so use a copy you can lose); --faces is then its size",
    )
    args = parser.parse_args()
    folder = args.gallery or args.workdir / f"g{args.faces}"
    if args.gallery is None and not (folder / "gallery.sqlite").exists():
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        build(folder, args.faces)
        print(f"built {args.faces} faces in {time.perf_counter() - started:.0f} s")
    times: dict[str, list[float]] = {"scrubbed": [], "baseline": []}
    wal: dict[str, list[int]] = {"scrubbed": [], "baseline": []}
    wal_path = folder / "gallery.sqlite-wal"
    with Gallery(folder, user="bench") as gallery:
        gallery.index()
        step = max(1, args.faces // (args.deletions + 1))
        for n in range(args.deletions):
            kind = "scrubbed" if n % 2 == 0 else "baseline"
            # Spread over the gallery; by row, so any gallery's subject ids do.
            row = gallery.conn.execute(
                "SELECT id FROM subjects WHERE rowid = ?", ((n + 1) * step,)
            ).fetchone()
            subject = row[0]
            if kind == "baseline":
                gallery.conn.execute("PRAGMA secure_delete = OFF")
                gallery.checkpoint_wal = lambda: True
            started = time.perf_counter()
            delete_subject(gallery, subject, "benchmark")
            times[kind].append((time.perf_counter() - started) * 1000)
            wal[kind].append(wal_path.stat().st_size if wal_path.exists() else 0)
            if kind == "baseline":
                gallery.conn.execute("PRAGMA secure_delete = ON")
                del gallery.checkpoint_wal
    result = {
        "faces": args.faces,
        **{
            kind: {
                "deletions": len(values),
                "p50_ms": round(statistics.median(values), 1),
                "p95_ms": round(float(np.percentile(values, 95)), 1),
                "wal_bytes_after_median": int(statistics.median(wal[kind])),
            }
            for kind, values in times.items()
        },
    }
    print(json.dumps(result))
    if not args.keep and args.gallery is None:
        shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
