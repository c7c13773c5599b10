"""Detection at one scale (before) and at several scales (now): cost and what is found.

Before, the detector saw one copy of a photo, at most 1,920 px (search) or 1,280 px (enrolment)
on its longer side; now it also sees smaller copies down to 320 px (vision/detection.py) and
the detections are merged. Both run here in the same process, photo by photo, so that the
shared machine's load hits both alike. "single" below is the old code path, rebuilt from the
detector (one copy, the detector's own non-maximum suppression, largest face first).

Prints:
1. Cost, ms per photo (p50 and mean of `--repeat` runs): detection alone at the search and the
   enrolment sides, and detection + embedding of every face found (what search and enrolment
   pay), on the labelled photos of ../shared/faces and on its large photos (>= 1,500 px).
2. Close-ups: each labelled photo cropped tight around its face (10% margin) and scaled to
   150...4,000 px, plus a 1,950x2,600 portrait crop: how often the main face is the true face
   (IoU >= 0.5 with the box found at normal size), how often a second, phantom face appears,
   and the cosine between the main face's embedding and the one at normal size.
3. Small faces: a face 24-60 px wide pasted into a 3,840x2,160 frame: found or not.
4. Crowds: recall of the 43 hand-boxed small faces of dlib_faces_det (IoU >= 0.4) and how many
   other detections each method adds.

Run: python benchmarks/detect_scales.py [FACES_DIR] [--repeat 3] [--photos 140]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from pathlib import Path

import numpy as np

from workstation.domain import BBox
from workstation.vision.cvcompat import cv2_module
from workstation.vision.detection import Detection, rescale_detection
from workstation.vision.engine import ENROL_DETECTION_SIDE, MAX_DETECTION_SIDE, FaceEngine
from workstation.vision.images import load_image
from workstation.vision.registry import create_engine

DEFAULT_FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"
CLOSEUP_SIDES = (150, 400, 800, 1200, 1800, 2400, 4000)
CLOSEUP_MARGIN = 0.1  # of the face box, on every side: a tight mugshot crop
SMALL_FACE_WIDTHS = (24, 32, 40, 60)

Detect = Callable[[np.ndarray], list[Detection]]


def single_scale(engine: FaceEngine, bgr: np.ndarray, max_side: int) -> list[Detection]:
    """The detection before this change: one copy at most `max_side` long."""
    cv2 = cv2_module()
    height, width = bgr.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    small = (
        cv2.resize(bgr, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        if scale < 1.0
        else bgr
    )
    found = engine.detector.detect(small)
    if scale < 1.0:
        found = [rescale_detection(d, 1.0 / scale) for d in found]
    return sorted(found, key=lambda d: d.box.area, reverse=True)


def methods(engine: FaceEngine, max_side: int) -> dict[str, Detect]:
    return {
        "single": lambda bgr: single_scale(engine, bgr, max_side),
        "multi": lambda bgr: engine.detect(bgr, max_side=max_side),
    }


def embed_all(engine: FaceEngine, bgr: np.ndarray, found: list[Detection]) -> np.ndarray:
    return engine.embed_faces(bgr, [(d.box, d.landmarks) for d in found])


def summary(samples: list[float]) -> str:
    return (
        f"p50 {statistics.median(samples) * 1000:7.1f}  mean {statistics.mean(samples) * 1000:7.1f}"
    )


def labelled(faces: Path, limit: int) -> list[tuple[str, str]]:
    with open(faces / "labels.csv", newline="", encoding="utf-8") as handle:
        rows = [(r["path"], r["identity"]) for r in csv.DictReader(handle) if r.get("identity")]
    return rows[:limit]


def cost(engine: FaceEngine, faces: Path, rows: list[tuple[str, str]], repeat: int) -> None:
    photos = [load_image(faces / path).bgr for path, _ in rows]
    every = sorted({p for p in faces.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")})
    large = [b for b in (load_image(p).bgr for p in every) if max(b.shape[:2]) >= 1500]
    print("\n1. Cost, ms per photo (both methods photo by photo in the same run)")
    for title, images in (
        (
            f"labelled photos ({len(photos)}, median side "
            f"{statistics.median(max(b.shape[:2]) for b in photos):.0f} px)",
            photos,
        ),
        (f"large photos ({len(large)}, >= 1,500 px)", large),
    ):
        print(f"  {title}")
        for label, side in (("search", MAX_DETECTION_SIDE), ("enrolment", ENROL_DETECTION_SIDE)):
            times: dict[str, list[float]] = {}
            for _ in range(repeat):
                for bgr in images:
                    for name, detect in methods(engine, side).items():
                        start = time.perf_counter()
                        found = detect(bgr)
                        detected = time.perf_counter()
                        embed_all(engine, bgr, found)
                        done = time.perf_counter()
                        times.setdefault(f"{name} detect", []).append(detected - start)
                        times.setdefault(f"{name} detect+embed", []).append(done - start)
            for what in ("detect", "detect+embed"):
                before, after = times[f"single {what}"], times[f"multi {what}"]
                extra = statistics.mean(after) / statistics.mean(before) - 1
                print(
                    f"    {label:9} ({side} px) {what:13} single {summary(before)}   "
                    f"multi {summary(after)}   ({extra:+.0%} mean)"
                )


def tight_crop(bgr: np.ndarray, box: BBox, aspect: float | None = None) -> tuple[np.ndarray, BBox]:
    """The photo cropped around the face box with CLOSEUP_MARGIN on every side (or to `aspect`
    = width/height around it), and the face box in the crop's pixels."""
    height, width = bgr.shape[:2]
    w, h = box.w * (1 + 2 * CLOSEUP_MARGIN), box.h * (1 + 2 * CLOSEUP_MARGIN)
    if aspect is not None:
        w, h = max(w, h * aspect), max(h, w / aspect)
    cx, cy = box.center
    left, top = max(0, round(cx - w / 2)), max(0, round(cy - h / 2))
    right, bottom = min(width, round(cx + w / 2)), min(height, round(cy + h / 2))
    return bgr[top:bottom, left:right], BBox(box.x - left, box.y - top, box.w, box.h)


def scaled(bgr: np.ndarray, box: BBox, size: tuple[int, int]) -> tuple[np.ndarray, BBox]:
    cv2 = cv2_module()
    fx, fy = size[0] / bgr.shape[1], size[1] / bgr.shape[0]
    interpolation = cv2.INTER_CUBIC if fx > 1 else cv2.INTER_AREA
    out = cv2.resize(bgr, size, interpolation=interpolation)
    return out, BBox(box.x * fx, box.y * fy, box.w * fx, box.h * fy)


def closeups(engine: FaceEngine, faces: Path, rows: list[tuple[str, str]]) -> None:
    print(
        "\n2. Close-ups (tight crop, 10% margin; found = main face IoU >= 0.5 with the face at "
        "normal size; cosine = main face vs the face at normal size)"
    )
    table: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    sides = (("search", MAX_DETECTION_SIDE), ("enrol", ENROL_DETECTION_SIDE))
    for path, _ in rows:
        bgr = load_image(faces / path).bgr
        found = engine.detect(bgr)
        if not found:
            continue
        reference = embed_all(engine, bgr, found[:1])[0]
        crop, box = tight_crop(bgr, found[0].box)
        portrait, portrait_box = tight_crop(bgr, found[0].box, aspect=1950 / 2600)
        cases = [(str(side), *scaled(crop, box, _fit(crop, side))) for side in CLOSEUP_SIDES] + [
            ("1950x2600", *scaled(portrait, portrait_box, (1950, 2600)))
        ]
        for label, image, truth in cases:
            for side_label, side in sides:
                for name, detect in methods(engine, side).items():
                    got = detect(image)
                    ok = bool(got) and got[0].box.iou(truth) >= 0.5
                    cosine = float(embed_all(engine, image, got[:1])[0] @ reference) if got else 0
                    cell = table.setdefault((side_label, label, name), {})
                    cell.setdefault("found", []).append(ok)
                    cell.setdefault("phantom", []).append(len(got) > 1)
                    cell.setdefault("cosine", []).append(cosine)
    for side_label in ("search", "enrol"):
        print(f"  {side_label} side; columns: found, phantom, cosine median (10th percentile)")
        for label in [str(s) for s in CLOSEUP_SIDES] + ["1950x2600"]:
            cells = []
            for name in ("single", "multi"):
                cell = table[(side_label, label, name)]
                cos = cell["cosine"]
                cells.append(
                    f"{name} {np.mean(cell['found']):5.0%} {np.mean(cell['phantom']):4.0%} "
                    f"{np.median(cos):.3f} ({np.percentile(cos, 10):.3f})"
                )
            print(f"    {label:>9} px: " + "   ".join(cells) + f"   n={len(cos)}")


def _fit(image: np.ndarray, side: int) -> tuple[int, int]:
    height, width = image.shape[:2]
    scale = side / max(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def small_faces(engine: FaceEngine, faces: Path, rows: list[tuple[str, str]]) -> None:
    print("\n3. Small faces in a 3,840x2,160 frame (found = a face with IoU >= 0.4)")
    cv2 = cv2_module()
    rng = np.random.default_rng(3)
    background = cv2.resize(
        cv2.GaussianBlur(rng.integers(40, 200, (540, 960, 3), dtype=np.uint8), (0, 0), 3),
        (3840, 2160),
    )
    hits: dict[tuple[int, str], list[bool]] = {}
    for path, _ in rows:
        bgr = load_image(faces / path).bgr
        found = engine.detect(bgr)
        if not found:
            continue
        box = found[0].box
        crop, inner = tight_crop(bgr, BBox(box.x - box.w, box.y - box.h, box.w * 3, box.h * 3))
        face_in_crop = BBox(inner.x + box.w, inner.y + box.h, box.w, box.h)
        for width in SMALL_FACE_WIDTHS:
            factor = width / box.w
            size = (max(1, round(crop.shape[1] * factor)), max(1, round(crop.shape[0] * factor)))
            small, truth = scaled(crop, face_in_crop, size)
            frame = background.copy()
            x, y = int(rng.integers(0, 3840 - size[0])), int(rng.integers(0, 2160 - size[1]))
            frame[y : y + size[1], x : x + size[0]] = small
            truth = BBox(truth.x + x, truth.y + y, truth.w, truth.h)
            for name, detect in methods(engine, MAX_DETECTION_SIDE).items():
                got = detect(frame)
                hits.setdefault((width, name), []).append(any(d.box.iou(truth) >= 0.4 for d in got))
    for width in SMALL_FACE_WIDTHS:
        single, multi = hits[(width, "single")], hits[(width, "multi")]
        print(
            f"  face {width:3d} px wide: single {np.mean(single):5.0%}   multi "
            f"{np.mean(multi):5.0%}   n={len(single)}"
        )


def crowds(engine: FaceEngine, faces: Path) -> None:
    folder = faces / "dlib_faces_det"
    boxes: dict[str, list[BBox]] = {}
    for name in ("training.xml", "testing.xml"):
        if not (folder / name).exists():
            return
        for image in ElementTree.parse(folder / name).getroot().iter("image"):
            boxes[image.get("file", "")] = [
                BBox(*(float(b.get(k, 0)) for k in ("left", "top", "width", "height")))
                for b in image.iter("box")
            ]
    print(f"\n4. Crowds: {sum(map(len, boxes.values()))} hand-boxed faces in {len(boxes)} photos")
    for name, detect in methods(engine, MAX_DETECTION_SIDE).items():
        found = missed = extra = 0
        for file, truths in boxes.items():
            got = detect(load_image(folder / file).bgr)
            matched = [any(d.box.iou(t) >= 0.4 for d in got) for t in truths]
            found += sum(matched)
            missed += len(truths) - sum(matched)
            extra += sum(1 for d in got if not any(d.box.iou(t) >= 0.4 for t in truths))
        print(f"  {name:6}: found {found}, missed {missed}, other detections {extra}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("faces", nargs="?", type=Path, default=DEFAULT_FACES)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--photos", type=int, default=140, help="labelled photos to use")
    parser.add_argument("--only", choices=("cost", "closeups", "small", "crowds"), action="append")
    args = parser.parse_args()
    engine = create_engine()
    rows = labelled(args.faces, args.photos)
    parts = args.only or ["cost", "closeups", "small", "crowds"]
    print(f"{engine.description}; {len(rows)} labelled photos from {args.faces.resolve()}")
    if "cost" in parts:
        cost(engine, args.faces, rows, args.repeat)
    if "closeups" in parts:
        closeups(engine, args.faces, rows)
    if "small" in parts:
        small_faces(engine, args.faces, rows)
    if "crowds" in parts:
        crowds(engine, args.faces)


if __name__ == "__main__":
    main()
