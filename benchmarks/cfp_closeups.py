"""Close-ups of people the team never tuned on: is the whole face found, and the mate ranked first?

Issue 10 part 1's defect was close-up faces (a face filling a large photo) found as a partial face
and searched misaligned. tests/unit/test_closeups.py and benchmarks/detect_scales.py check the
fix on the development photos; this checks it on CFP (research use only), whose people and
photos played no part in choosing the detection scales:

- gallery: frontal/01 of all 500 people, analysed as enrolment would (largest face);
- probes: frontal/02 of `--people` people (seeded sample), each cropped tight around its face
  (10% margin, like a mugshot) and scaled to 150...4,000 px on its longer side, and cut to two
  portrait frames (1,950x2,600, a phone close-up; 1,080x1,920, a phone video still) around it;
- per size: the main face found (IoU >= 0.5 with the face found at the photo's own size,
  mapped into the close-up), a second "face" reported besides it (a phantom), the mate ranked
  first among the 500 for the detected face and for a box drawn around the true face (the
  app's "draw a box").

CFP photos are small (about 250 px), so every close-up above that is an enlargement: softer than
a real high-resolution close-up, which makes detection harder, not easier.

With --small, the other end: each face with its surroundings (one face width each side) shrunk
to a face of 20-40 px and pasted into a 3,840x2,160 frame (a 4K still), searched with and without
the frame's full-resolution tiles (vision/detection.py TILE_SIDE), same run: found (IoU >= 0.4),
mate first, the detector's score of the faces found, other detections, CPU per frame.

With --footage, the same in a 1,920x1,080 frame (a CCTV camera's) with faces of 20-80 px, detected
as a footage scan does (workstation/footage/scan.py: one copy sized for the smallest face asked
for, no tiles) for several smallest-face settings and the old fixed 640 px copy.

Run: python benchmarks/cfp_closeups.py --cfp /work/datasets/cfp [--people 100] [--config accurate]
     [--small | --footage]
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from detect_scales import _fit, scaled, tight_crop

from workstation.domain import BBox
from workstation.vision.cvcompat import cv2_module
from workstation.vision.images import load_image
from workstation.vision.registry import DEFAULT_CONFIGURATION, create_engine

SIDES = (150, 400, 800, 1200, 1800, 2400, 4000)
PORTRAITS = ((1950, 2600), (1080, 1920))
SMALL_WIDTHS = (20, 24, 28, 32, 40)
FOOTAGE_WIDTHS = (20, 24, 28, 32, 40, 48, 60, 80)
FOOTAGE_MIN_FACES = (60, 40, 28, 20)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfp", type=Path, required=True, help="folder cfp.sh installed")
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--config", default=DEFAULT_CONFIGURATION)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--small", action="store_true", help="small faces in a 4K frame")
    parser.add_argument("--footage", action="store_true", help="small faces in a 1080p frame")
    args = parser.parse_args()

    engine = create_engine(args.config)
    started = time.perf_counter()
    subject_ids, vectors = [], []
    with open(args.cfp / "gallery.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            faces = engine.analyze(load_image(Path(row["image"])).bgr)
            if faces:
                subject_ids.append(row["subject_id"])
                vectors.append(_unit(faces[0].embedding))
    gallery = np.array(vectors, dtype=np.float32)
    seconds = time.perf_counter() - started
    print(f"{args.config}: gallery of {len(subject_ids)} people in {seconds:.0f} s")

    with open(args.cfp / "probes_frontal.csv", newline="") as handle:
        probes = list(csv.DictReader(handle))
    sample = random.Random(args.seed).sample(probes, args.people)
    if args.small:
        modes = {
            "copies only (before)": lambda frame: engine.analyze(frame, full_resolution=False),
            "with tiles": lambda frame: engine.analyze(frame, full_resolution=True),
        }
        small_faces(engine, sample, subject_ids, gallery, (3840, 2160), SMALL_WIDTHS, modes)
        return
    if args.footage:
        modes = footage_modes(engine)
        small_faces(engine, sample, subject_ids, gallery, (1920, 1080), FOOTAGE_WIDTHS, modes)
        return
    labels = ["own size"] + [f"{side} px" for side in SIDES] + [f"{w}x{h}" for w, h in PORTRAITS]
    tally = {
        label: {"found": 0, "phantom": 0, "rank1": 0, "box_rank1": 0, "n": 0} for label in labels
    }
    lowest_iou = dict.fromkeys(labels, 1.0)
    misses: list[str] = []

    def first(vector: np.ndarray) -> str:
        return subject_ids[int(np.argmax(gallery @ _unit(vector)))]

    for done, row in enumerate(sample, 1):
        bgr = load_image(Path(row["image"])).bgr
        at_own_size = engine.analyze(bgr)
        if not at_own_size:
            misses.append(f"{row['image']}: no face at its own size")
            continue
        face = at_own_size[0].box
        crop, box = tight_crop(bgr, face)
        cases = [("own size", bgr, face)]
        cases += [(f"{side} px", *scaled(crop, box, _fit(crop, side))) for side in SIDES]
        for width, height in PORTRAITS:
            portrait, portrait_box = tight_crop(bgr, face, aspect=width / height)
            cases.append((f"{width}x{height}", *scaled(portrait, portrait_box, (width, height))))
        for label, image, truth in cases:
            cell = tally[label]
            cell["n"] += 1
            found = engine.analyze(image)
            if found:
                overlap = found[0].box.iou(truth)
                lowest_iou[label] = min(lowest_iou[label], overlap)
                cell["found"] += overlap >= 0.5
                cell["phantom"] += len(found) > 1
                if first(found[0].embedding) == row["subject_id"]:
                    cell["rank1"] += 1
                else:
                    misses.append(f"{row['image']} {label}: another person first")
            else:
                misses.append(f"{row['image']} {label}: no face found")
            if first(engine.analyze_box(image, truth).embedding) == row["subject_id"]:
                cell["box_rank1"] += 1
            else:
                misses.append(f"{row['image']} {label}: drawn box, another person first")
        if done % 20 == 0:
            print(f"  {done} probes", flush=True)

    print(
        f"\n{args.config}, {args.people} CFP people (frontal/02 against a gallery of "
        f"{len(subject_ids)} frontal/01 photos):"
    )
    print(
        "| close-up | main face found | phantom face | mate first | drawn box: mate first "
        "| lowest IoU |"
    )
    print("|---|---|---|---|---|---|")
    for label in labels:
        cell = tally[label]
        n = cell["n"]
        print(
            f"| {label} | {cell['found']}/{n} | {cell['phantom']}/{n} | {cell['rank1']}/{n} | "
            f"{cell['box_rank1']}/{n} | {lowest_iou[label]:.2f} |"
        )
    print(f"\n{len(misses)} misses" + ("" if not misses else ":"))
    for line in misses:
        print("  " + line)


def footage_modes(engine) -> dict[str, Callable[[np.ndarray], list]]:
    """A footage scan's detection (scan.py `_detect`: one copy, no tiles, the frame enlarged for
    faces under 28 px) at the old fixed 640 px and at the copy each smallest-face setting gives
    a 1080p frame."""
    from workstation.footage.scan import detection_side

    sides = {"fixed 640 px (before)": 640}
    for min_face in FOOTAGE_MIN_FACES:
        side = detection_side(1920, 1080, min_face)
        sides[f"faces from {min_face} px ({side} px copy)"] = side
    return {
        label: (
            lambda frame, side=side: engine.analyze(
                frame, side, full_resolution=False, enlarge=side > max(frame.shape[:2])
            )
        )
        for label, side in sides.items()
    }


def small_faces(
    engine,
    sample: list[dict[str, str]],
    subject_ids: list[str],
    gallery: np.ndarray,
    frame_size: tuple[int, int],
    widths: tuple[int, ...],
    modes: dict[str, Callable[[np.ndarray], list]],
) -> None:
    cv2 = cv2_module()
    rng = np.random.default_rng(5)
    frame = cv2.resize(
        cv2.GaussianBlur(rng.integers(60, 190, (540, 960, 3), dtype=np.uint8), (0, 0), 2),
        frame_size,
    )
    # Where the faces go (a few px apart from one person to the next): the same for a frame size.
    left, top = (1000, 700) if frame_size[0] > 2000 else (500, 300)
    keys = [(mode, width) for mode in modes for width in widths]
    found, first, others = dict.fromkeys(keys, 0), dict.fromkeys(keys, 0), dict.fromkeys(keys, 0)
    scores: dict[tuple[str, int], list[float]] = {key: [] for key in keys}
    seconds: dict[str, list[float]] = {mode: [] for mode in modes}
    for done, row in enumerate(sample, 1):
        bgr = load_image(Path(row["image"])).bgr
        at_own_size = engine.detect(bgr)
        if not at_own_size:
            continue
        face = at_own_size[0].box
        around = BBox(face.x - face.w, face.y - face.h, face.w * 3, face.h * 3)
        crop, inner = tight_crop(bgr, around)
        face_in_crop = BBox(inner.x + face.w, inner.y + face.h, face.w, face.h)
        for width in widths:
            factor = width / face.w
            size = (max(1, round(crop.shape[1] * factor)), max(1, round(crop.shape[0] * factor)))
            small, truth = scaled(crop, face_in_crop, size)
            x, y = left + 37 * (done % 20), top + 23 * (done % 15)
            canvas = frame.copy()
            canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
            truth = BBox(truth.x + x, truth.y + y, truth.w, truth.h)
            for mode, analyse in modes.items():
                started = time.process_time()  # OpenCV's own threads included
                faces = analyse(canvas)
                seconds[mode].append(time.process_time() - started)
                matches = [f for f in faces if f.box.iou(truth) >= 0.4]
                others[(mode, width)] += len(faces) - len(matches)
                if matches:
                    found[(mode, width)] += 1
                    scores[(mode, width)].append(matches[0].quality.detector_score or 0.0)
                    first[(mode, width)] += (
                        subject_ids[int(np.argmax(gallery @ _unit(matches[0].embedding)))]
                        == row["subject_id"]
                    )
        if done % 10 == 0:
            print(f"  {done} probes", flush=True)
    n = len(sample)
    print(
        f"\nSmall faces in a {frame_size[0]:,}x{frame_size[1]:,} frame, {n} CFP people, against "
        f"{len(subject_ids)}:"
    )
    print("| face width | detection | found | mate first | lowest score | other detections |")
    print("|---|---|---|---|---|---|")
    for width in widths:
        for mode in modes:
            key = (mode, width)
            low = f"{min(scores[key]):.2f}" if scores[key] else "-"
            print(
                f"| {width} px | {mode} | {found[key]}/{n} | {first[key]}/{n} | {low} | "
                f"{others[key]} |"
            )
    for mode in modes:
        print(
            f"{mode}: analysis of a frame, median {np.median(seconds[mode]) * 1000:.0f} ms CPU "
            "(the process's, all threads)"
        )


if __name__ == "__main__":
    main()
