"""Enrolment throughput (photos per second) through the real pipeline on real photos.

Enrols the labelled photos of ../shared/faces (one subject per identity) into a fresh gallery
under /tmp with each configuration given by --configs (default: fast, then accurate; the first is
the baseline, measured in the same run since the machine is shared), model loading excluded, and
prints one JSON line per run: the pipelined enrolment (decode/analyse threads + batched
transactions) and, for comparison, the same code with one worker and one photo per transaction
(the old sequential path). Then one line per configuration of per-stage times measured photo by
photo (decode, detect, align, embed, quality) so the split is visible, and the resumed run (every
photo already enrolled).

Run: python benchmarks/enroll_speed.py [--repeat 3] [--faces DIR] [--configs fast,accurate]

Old code against new on a shared machine: `--baseline SRC` (SRC: a tree exported with
`git archive <commit> | tar -x -C SRC`) runs the pipelined enrolment in child processes,
alternating the baseline's code and this tree's, each importing its own `workstation`, and
prints per run the process CPU seconds per photo (all threads; load inflates it far less than
wall time) beside the wall-clock photos/s and the load average. Then it compares what the two
enrolled: per photo, the cosine between the two embeddings (min, median) and the number of
faces found, and each code's same-person / stranger separation on the photos' labels.

Run: nice -n 19 python benchmarks/enroll_speed.py --baseline /tmp/base [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from workstation.gallery.enroll import EnrollItem, enroll
from workstation.gallery.store import Gallery
from workstation.progress import drain
from workstation.vision.alignment import align_face
from workstation.vision.images import decode_image, load_image, read_input_file
from workstation.vision.quality import assess_quality
from workstation.vision.registry import create_engine

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"


def items_of(faces: Path, every: int = 1) -> list[EnrollItem]:
    with open(faces / "labels.csv", newline="") as handle:
        return [
            EnrollItem(row["identity"], faces / row["path"], row["path"])
            for row in csv.DictReader(handle)
        ][::every]


def run(engine, items: list[EnrollItem], workers: int, batch: int, label: str) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="ws-enroll-speed-"))
    try:
        with Gallery(folder / "gallery", user="bench") as gallery:
            start = time.perf_counter()
            report = drain(enroll(gallery, engine, items, workers=workers, batch_size=batch))
            wall = time.perf_counter() - start
            again = time.perf_counter()
            resumed = drain(enroll(gallery, engine, items, workers=workers, batch_size=batch))
            resume_wall = time.perf_counter() - again
        photos = len(items)
        return {
            "method": label,
            "workers": workers,
            "batch": batch,
            "photos": photos,
            "enrolled": report.enrolled,
            "failed": report.failed,
            "seconds": round(wall, 2),
            "photos_per_s": round(photos / wall, 1),
            "stage_s": {k: round(v, 2) for k, v in sorted(report.timings.items())},
            "resume_skipped": resumed.skipped,
            "resume_photos_per_s": round(photos / resume_wall, 1),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def stages(engine, items: list[EnrollItem]) -> dict:
    """Per-photo stage times, one photo at a time (no overlap), in milliseconds."""
    times: dict[str, list[float]] = {
        k: [] for k in ("decode", "detect", "align", "embed", "quality")
    }
    side = engine.enrol_detection_side  # as enrolment does: its copy, its reduced decode
    for item in items:
        t0 = time.perf_counter()
        image = decode_image(read_input_file(item.image), item.image, at_least=side)
        t1 = time.perf_counter()
        detections = engine.detect(image.bgr, side, full_resolution=False)
        t2 = time.perf_counter()
        times["decode"].append(t1 - t0)
        times["detect"].append(t2 - t1)
        if not detections:
            continue
        crop = align_face(image.bgr, detections[0].landmarks)
        prepared = engine.prepare(image.bgr, detections[0].box, detections[0].landmarks)
        t3 = time.perf_counter()
        engine.embed_prepared([prepared])
        t4 = time.perf_counter()
        assess_quality(crop, detections[0].landmarks, detections[0].score, aligned=True)
        t5 = time.perf_counter()
        times["align"].append(t3 - t2)
        times["embed"].append(t4 - t3)
        times["quality"].append(t5 - t4)
    return {
        "method": "stages (sequential, per photo)",
        **{f"{k}_ms_median": round(1000 * statistics.median(v), 1) for k, v in times.items()},
        "sum_of_medians_ms": round(1000 * sum(statistics.median(v) for v in times.values()), 1),
    }


def child(config: str, faces: Path, out: Path, workers: int, every: int) -> None:
    """One pipelined enrolment with whichever `workstation` this process imports; prints its
    CPU and wall time and saves each photo's embedding and face count to `out` (.npz)."""
    import workstation

    items = items_of(faces, every)
    engine = create_engine(config)
    for replica in engine.replicas(workers + 1):  # load and warm every instance used
        replica.analyze(load_image(items[0].image).bgr)
    folder = Path(tempfile.mkdtemp(prefix="ws-enroll-cpu-"))
    try:
        with Gallery(folder / "gallery", user="bench") as gallery:
            load_before = os.getloadavg()[0]
            cpu, wall = time.process_time(), time.perf_counter()
            report = drain(enroll(gallery, engine, items, workers=workers, batch_size=16))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            load_after = os.getloadavg()[0]
            by_source = {o.source: o for o in report.outcomes}
            vectors = gallery.face_vectors(
                o.face_id for o in report.outcomes if o.face_id is not None
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    dim = engine.model.dim
    embeddings = np.zeros((len(items), dim), dtype=np.float32)
    faces_found = np.zeros(len(items), dtype=np.int32)
    for i, item in enumerate(items):
        outcome = by_source.get(item.source)
        if outcome is not None and outcome.face_id is not None:
            embeddings[i] = vectors[outcome.face_id]
            faces_found[i] = 1 + outcome.other_faces
    np.savez(out, embeddings=embeddings, faces=faces_found)
    print(
        json.dumps(
            {
                "code": str(Path(workstation.__file__).parents[1]),
                "photos": len(items),
                "enrolled": report.enrolled,
                "cpu_s": round(cpu, 2),
                "cpu_ms_per_photo": round(1000 * cpu / len(items), 1),
                "wall_s": round(wall, 2),
                "photos_per_s": round(len(items) / wall, 1),
                "load": [round(load_before, 1), round(load_after, 1)],
                "stage_s": {k: round(v, 2) for k, v in sorted(report.timings.items())},
            }
        ),
        flush=True,
    )


def separation(embeddings: np.ndarray, labels: list[str], found: np.ndarray) -> dict:
    """Same-person and stranger cosines over every pair of photos with a face."""
    keep = np.flatnonzero(found > 0)
    vectors = embeddings[keep]
    names = np.array([labels[i] for i in keep])
    scores = vectors @ vectors.T
    upper = np.triu_indices(len(keep), k=1)
    same = names[upper[0]] == names[upper[1]]
    mated, strangers = scores[upper][same], scores[upper][~same]
    return {
        "mated_pairs": int(mated.size),
        "mated_median": round(float(np.median(mated)), 4),
        "mated_min": round(float(mated.min()), 4),
        "stranger_pairs": int(strangers.size),
        "stranger_max": round(float(strangers.max()), 4),
        "stranger_99_9pct": round(float(np.quantile(strangers, 0.999)), 4),
        # The share of same-person pairs scoring above the highest stranger pair.
        "mated_above_every_stranger": round(float((mated > strangers.max()).mean()), 4),
    }


def compare_with_baseline(args: argparse.Namespace) -> None:
    """Alternate the baseline's code and this tree's in child processes (see the docstring)."""
    items = items_of(args.faces, args.every)
    labels = [item.subject_id for item in items]
    here = Path(__file__).resolve().parents[1]
    codes = {"baseline": Path(args.baseline).resolve(), "new": here}
    work = Path(tempfile.mkdtemp(prefix="ws-enroll-compare-"))
    runs: dict[str, list[dict]] = {"baseline": [], "new": []}
    print(json.dumps({"machine": {"cpus": os.cpu_count(), "load": os.getloadavg()}}), flush=True)
    try:
        for n in range(args.repeat):
            for label, code in codes.items():
                out = work / f"{label}.npz"
                env = {**os.environ, "PYTHONPATH": str(code)}
                result = subprocess.run(
                    [
                        *(sys.executable, __file__, "--child", str(out)),
                        *("--configs", args.configs, "--faces", str(args.faces)),
                        *("--workers", str(args.workers), "--every", str(args.every)),
                    ],
                    env=env,
                    cwd=work,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                line = json.loads(result.stdout.strip().splitlines()[-1])
                line = {"run": n + 1, "code_label": label, **line}
                runs[label].append(line)
                print(json.dumps(line), flush=True)
        old, new = (np.load(work / f"{label}.npz") for label in ("baseline", "new"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    both = np.flatnonzero((old["faces"] > 0) & (new["faces"] > 0))
    cosines = np.sum(old["embeddings"][both] * new["embeddings"][both], axis=1)
    changed = [
        {"photo": items[i].source, "faces_baseline": int(a), "faces_new": int(b)}
        for i, (a, b) in enumerate(zip(old["faces"], new["faces"], strict=True))
        if a != b
    ]
    summary = {
        "cpu_ms_per_photo_median": {
            label: statistics.median(r["cpu_ms_per_photo"] for r in runs[label]) for label in runs
        },
        "photos_per_s_median": {
            label: statistics.median(r["photos_per_s"] for r in runs[label]) for label in runs
        },
        "embedding_cosine_old_vs_new": {
            "photos": int(both.size),
            "min": round(float(cosines.min()), 6),
            "median": round(float(np.median(cosines)), 6),
            "below_0.999": int((cosines < 0.999).sum()),
        },
        "face_count_differences": changed,
        "separation_baseline": separation(old["embeddings"], labels, old["faces"]),
        "separation_new": separation(new["embeddings"], labels, new["faces"]),
    }
    print(json.dumps(summary), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--faces", type=Path, default=FACES)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--configs",
        default="fast,accurate",
        help="registry configurations to measure, comma-separated, in turn within one run "
        "(the first is the baseline the others are read against; the machine is shared)",
    )
    ap.add_argument(
        "--baseline",
        type=Path,
        help="a tree of the old code (git archive): alternate it with this tree in child "
        "processes and compare CPU per photo and embeddings (first of --configs only)",
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--every", type=int, default=1, help="every Nth photo only (quick looks)")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.configs.split(",")[0], args.faces, args.child, args.workers, args.every)
        return
    if args.baseline is not None:
        args.configs = args.configs.split(",")[0]
        compare_with_baseline(args)
        return
    items = items_of(args.faces)
    print(json.dumps({"machine": {"cpus": os.cpu_count(), "load": os.getloadavg()}}), flush=True)
    engines = {key: create_engine(key) for key in args.configs.split(",")}
    for engine in engines.values():
        engine.analyze(load_image(items[0].image).bgr)  # warm the models up
    for n in range(args.repeat):
        for key, engine in engines.items():
            for workers, batch, label in ((2, 16, "pipelined"), (1, 1, "sequential")):
                line = {"config": key, **run(engine, items, workers, batch, label)}
                line["run"] = n + 1
                print(json.dumps(line), flush=True)
    for key, engine in engines.items():
        print(json.dumps({"config": key, **stages(engine, items)}), flush=True)
    print(json.dumps({"machine_after": {"load": os.getloadavg()}}), flush=True)


if __name__ == "__main__":
    main()
