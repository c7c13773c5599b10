"""Print the sharpness measure (variance of the Laplacian on the aligned crop) on the photos of
../shared/faces and on blurred copies of them.

Used to set QualityThresholds.sharpness_poor and sharpness_warn.
Run: python benchmarks/quality_thresholds.py [FACES_DIR]
"""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path

from workstation.vision.cvcompat import cv2_module
from workstation.vision.images import load_image
from workstation.vision.registry import create_engine

FACES = (
    Path(sys.argv[1])
    if len(sys.argv) > 1
    else Path(__file__).resolve().parents[1] / "../shared/faces"
)


def main() -> None:
    cv2 = cv2_module()
    engine = create_engine()
    with open(FACES / "labels.csv", newline="") as handle:
        paths = [FACES / row["path"] for row in csv.DictReader(handle)][::3]
    by_sigma: dict[float, list[float]] = {}
    for path in paths:
        image = load_image(path)
        detections = engine.detect(image.bgr)
        if not detections:
            continue
        # Blur relative to face size so that sigma means the same on every photo.
        inter_eye = abs(detections[0].landmarks[1][0] - detections[0].landmarks[0][0])
        for sigma in (0.0, 0.03, 0.06, 0.12):
            blurred = (
                image.bgr
                if sigma == 0
                else cv2.GaussianBlur(image.bgr, (0, 0), sigma * inter_eye * 3)
            )
            faces = engine.analyze(blurred)
            if faces:
                by_sigma.setdefault(sigma, []).append(faces[0].quality.sharpness)
    for sigma, values in sorted(by_sigma.items()):
        values.sort()
        print(
            f"blur {sigma:.2f} x face: n={len(values)} min={values[0]:.0f} "
            f"p10={values[len(values) // 10]:.0f} median={statistics.median(values):.0f}"
        )


if __name__ == "__main__":
    main()
