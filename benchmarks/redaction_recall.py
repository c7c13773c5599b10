"""How many bystander faces redaction finds, by detector score threshold (issue 15 item 5).

Ground truth: the 43 hand-drawn boxes of small faces (37-109 px) in the crowd photos of
../shared/faces/dlib_faces_det (training.xml and testing.xml), at their own size and shrunk to
half (faces of 18-55 px, as in a wide CCTV frame). A face counts as redacted when at least
COVERED of its hand box lies inside the blurred area (a detection grown by the redaction
margin). Other detections are counted as extra boxes (blurred background: harmless but shown).
The search's detector (threshold 0.6 and its merge) is printed first as the baseline.

    nice -n 19 .venv/bin/python benchmarks/redaction_recall.py [../shared/faces]
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from workstation.domain import BBox
from workstation.reports.redaction import REDACTION_MARGIN, detect_faces_for_redaction, grown
from workstation.vision.cvcompat import cv2_module
from workstation.vision.detection import Detection
from workstation.vision.models import load_verified
from workstation.vision.opencv_backend import YuNetDetector
from workstation.vision.registry import YUNET, create_engine

COVERED = 0.8
THRESHOLDS = (0.6, 0.5, 0.4, 0.3, 0.2)
SCALES = (1.0, 0.5, 0.35)
# CCTV-like copies: blurred (sigma 1.5 px), darkened (gamma 2) and JPEG quality 30.
DEGRADED = (False, True)


def hand_boxes(folder: Path) -> dict[Path, list[BBox]]:
    boxes: dict[Path, list[BBox]] = {}
    for name in ("training.xml", "testing.xml"):
        for image in ET.parse(folder / name).getroot().iter("image"):
            path = folder / image.get("file", "")
            for box in image.iter("box"):
                if box.get("ignore") == "1":
                    continue
                boxes.setdefault(path, []).append(
                    BBox(*(float(box.get(k, 0)) for k in ("left", "top", "width", "height")))
                )
    return boxes


def covered(face: BBox, found: list[BBox], width: int, height: int) -> bool:
    mask = np.zeros((height, width), dtype=bool)
    for box in found:
        left, top, right, bottom = grown(box, REDACTION_MARGIN, width, height)
        mask[top:bottom, left:right] = True
    left, top, right, bottom = grown(face, 0.0, width, height)
    area = max(1, (right - left) * (bottom - top))
    return mask[top:bottom, left:right].sum() / area >= COVERED


def degrade(bgr: np.ndarray) -> np.ndarray:
    cv2 = cv2_module()
    out = cv2.GaussianBlur(bgr, (0, 0), 1.5)
    out = (255 * (out / 255.0) ** 2).astype(np.uint8)
    _, jpeg = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 30])
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)


def score(
    truth: dict[Path, list[BBox]], detect, scale: float, degraded: bool = False
) -> tuple[int, int, int]:  # (found, faces, extra boxes)
    cv2 = cv2_module()
    found_faces = faces = extra = 0
    for path, boxes in truth.items():
        bgr = cv2.imread(str(path))
        if degraded:
            bgr = degrade(bgr)
        if scale != 1.0:
            bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            boxes = [BBox(b.x * scale, b.y * scale, b.w * scale, b.h * scale) for b in boxes]
        height, width = bgr.shape[:2]
        found = [d.box for d in detect(bgr)]
        faces += len(boxes)
        found_faces += sum(covered(b, found, width, height) for b in boxes)
        extra += sum(1 for d in found if all(d.iou(b) < 0.2 for b in boxes))
    return found_faces, faces, extra


def profile_scores(
    cfp: Path, detector_threshold: float, count: int = 200, side: int = 110
) -> tuple[list[float], list[float]]:
    """For `count` CFP profile photos pasted small (longer side `side` px) on a 640 x 480
    frame: the best score of a redaction detection on the paste (0: none), and the same for
    the search's detector. Bystanders are often seen from the side: YuNet scores them lower."""
    import csv

    cv2 = cv2_module()
    engine = create_engine()
    detector = YuNetDetector(load_verified(YUNET), score_threshold=detector_threshold)
    with open(cfp / "probes_profile.csv", newline="") as handle:
        paths = [Path(row["image"]) for row in csv.DictReader(handle)][:count]
    redaction, search = [], []
    for path in paths:
        photo = cv2.imread(str(path))
        scale = side / max(photo.shape[:2])
        photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frame = np.full((480, 640, 3), 110, dtype=np.uint8)
        h, w = photo.shape[:2]
        frame[200 : 200 + h, 300 : 300 + w] = photo
        paste = BBox(300, 200, w, h)

        def best(found: list[Detection], paste: BBox = paste) -> float:
            return max((d.score for d in found if paste.contains(d.box.center)), default=0.0)

        redaction.append(best(detect_faces_for_redaction(frame, detector)))
        search.append(best(engine.detect(frame)))
    return redaction, search


def main() -> None:
    shared = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/faces")
    truth = hand_boxes(shared / "dlib_faces_det")
    engine = create_engine()
    model = load_verified(YUNET)
    print(f"{sum(map(len, truth.values()))} hand-boxed faces in {len(truth)} photos")
    print("detector                          scale degraded redacted  extra boxes")
    for degraded in DEGRADED:
        for scale in SCALES:
            hit, total, extra = score(truth, engine.detect, scale, degraded)
            label = "search (0.6, search merge)"
            print(f"{label:34s}{scale:4.2f}  {degraded!s:5s}  {hit:3d}/{total}    {extra}")
            for threshold in THRESHOLDS:
                detector = YuNetDetector(model, score_threshold=threshold)

                def detect(bgr: np.ndarray, detector=detector) -> list[Detection]:
                    return detect_faces_for_redaction(bgr, detector)

                hit, total, extra = score(truth, detect, scale, degraded)
                label = f"redaction {threshold:.1f} (all copies)"
                print(f"{label:34s}{scale:4.2f}  {degraded!s:5s}  {hit:3d}/{total}    {extra}")
    cfp = Path(sys.argv[2] if len(sys.argv) > 2 else "../datasets/cfp")
    if (cfp / "probes_profile.csv").exists():
        redaction, search = profile_scores(cfp, min(THRESHOLDS))
        print(f"\n{len(search)} CFP profile photos pasted at 110 px on a 640 x 480 frame:")
        found = sum(score > 0 for score in search)
        print(f"search (0.6, search merge): found {found}/{len(search)}")
        for threshold in THRESHOLDS:
            found = sum(score >= threshold for score in redaction)
            print(f"redaction {threshold:.1f}: found {found}/{len(redaction)}")


if __name__ == "__main__":
    main()
