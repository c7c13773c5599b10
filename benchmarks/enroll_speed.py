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
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from workstation.gallery.enroll import EnrollItem, enroll
from workstation.gallery.store import Gallery
from workstation.progress import drain
from workstation.vision.alignment import align_face
from workstation.vision.images import load_image
from workstation.vision.quality import assess_quality
from workstation.vision.registry import create_engine

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"


def items_of(faces: Path) -> list[EnrollItem]:
    with open(faces / "labels.csv", newline="") as handle:
        return [
            EnrollItem(row["identity"], faces / row["path"], row["path"])
            for row in csv.DictReader(handle)
        ]


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
    for item in items:
        t0 = time.perf_counter()
        image = load_image(item.image)
        t1 = time.perf_counter()
        detections = engine.detect(image.bgr)
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
    args = ap.parse_args()
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
