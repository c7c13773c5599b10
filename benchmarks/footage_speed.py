"""Footage scan speed as a multiple of real time, on a 25 fps clip made from real photos.

How the clip is made: four people's photos (the first photo of four identities in
../shared/faces/labels.csv, or the tests/fixtures photos when that folder is missing) are cropped
around their face and pasted, at four sizes (face widths about 60 to 150 px), onto a 1280x720
textured background with mild per-frame sensor noise (`--scale 1.5`: 1,920x1,080, everything
1.5 times larger). Each face pans across the frame at its own speed and enters and leaves at
staggered times, so faces overlap in time and tracks open and close. The clip is written with
cv2.VideoWriter (mp4v, 25 fps) into a temporary folder and deleted afterwards.

Run:  python benchmarks/footage_speed.py [--seconds 30] [--every 0.2] [--min-face 40 60]
      [--configs accurate,fast]   (each configuration scans the same clip in turn; each smallest
      face to look for sets the copy the detector sees: footage/scan.py `detection_side`)
Speed = seconds of video scanned / wall-clock seconds of scan_video (hashing, decoding,
detection, linking and template embedding included; model loading excluded).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def photos() -> list[Path]:
    labels = REPO.parent / "shared" / "faces" / "labels.csv"
    if labels.exists():
        chosen: dict[str, Path] = {}
        with open(labels, newline="") as handle:
            for row in csv.DictReader(handle):
                if row["set"] == "deepface" and row["identity"] not in chosen:
                    chosen[row["identity"]] = labels.parent / row["path"]
        if len(chosen) >= 4:
            return list(chosen.values())[:4]
    fixtures = REPO / "tests" / "fixtures"
    return [fixtures / n for n in ("obama.jpg", "biden.jpg", "obama2.jpg", "biden.jpg")]


def make_clip(engine, path: Path, seconds: float, scale: float = 1.0) -> int:
    """The clip at 1280x720 times `scale` (1.5: 1080p, the same scene with every face and move
    1.5 times larger)."""
    from workstation.vision.cvcompat import cv2_module
    from workstation.vision.images import load_image

    cv2 = cv2_module()
    width, height, fps = round(1280 * scale), round(720 * scale), 25
    rng = np.random.default_rng(7)
    background = cv2.GaussianBlur(
        rng.integers(40, 200, (height, width, 3), dtype=np.uint8), (0, 0), 6
    )
    noise = [rng.normal(0, 3, (height, width, 3)).astype(np.int16) for _ in range(8)]
    # (crop width, y, speed px/s, start s, stay s): faces about 0.55 x crop width wide.
    layout = [
        (270, 60, 90, 0.0, 12.0),
        (200, 380, -120, 4.0, 10.0),
        (150, 120, 60, 9.0, 14.0),
        (110, 450, 150, 15.0, 8.0),
    ]
    sprites = []
    for photo, (crop_w, y, speed, start, stay) in zip(photos(), layout, strict=True):
        crop_w, y, speed = round(crop_w * scale), round(y * scale), speed * scale
        bgr = load_image(photo).bgr
        box = engine.detect(bgr)[0].box
        side = max(box.w, box.h) * 1.8
        cx, cy = box.center
        x0, y0 = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
        crop = bgr[y0 : int(y0 + side), x0 : int(x0 + side)]
        crop = cv2.resize(crop, (crop_w, round(crop.shape[0] * crop_w / crop.shape[1])))
        x_start = 40 if speed > 0 else width - crop_w - 40
        sprites.append((crop, x_start, y, speed, start, stay))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    frames = round(seconds * fps)
    for index in range(frames):
        t = index / fps
        frame = background.copy()
        for crop, x_start, y, speed, start, stay in sprites:
            # Repeat each face's visit every 24 s so long clips keep faces coming.
            local = (t - start) % 24.0 if t >= start else -1
            if not 0 <= local < stay:
                continue
            h, w = crop.shape[:2]
            x = int(x_start + speed * local) % (width - w)
            frame[y : y + h, x : x + w] = crop[: min(h, height - y)]
        frame = np.clip(frame.astype(np.int16) + noise[index % 8], 0, 255).astype(np.uint8)
        writer.write(frame)
    writer.release()
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=0.2)
    parser.add_argument("--min-face", type=int, nargs="+", default=[40])
    parser.add_argument("--scale", type=float, default=1.0, help="1.5 for a 1080p clip")
    parser.add_argument(
        "--configs",
        default="",
        help="registry configurations, comma-separated (default: the default)",
    )
    args = parser.parse_args()

    from workstation.footage import ScanOptions, scan_video
    from workstation.progress import drain
    from workstation.vision.cvcompat import cv2_module
    from workstation.vision.registry import create_engine

    cv2 = cv2_module()
    engines = [create_engine(key or None) for key in args.configs.split(",")]
    engine = engines[0]
    print(f"cores: {os.cpu_count()}, OpenCV {cv2.__version__} threads {cv2.getNumThreads()}")
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "bench_clip.mp4"
        started = time.perf_counter()
        frames = make_clip(engine, clip, args.seconds, args.scale)
        print(
            f"clip: {frames} frames {round(1280 * args.scale)}x{round(720 * args.scale)} @ 25 fps "
            f"({args.seconds:.0f} s, mp4v, "
            f"{clip.stat().st_size / 2**20:.1f} MB) made in {time.perf_counter() - started:.1f} s"
        )
        capture = cv2.VideoCapture(str(clip))
        started = time.perf_counter()
        while capture.grab():
            pass
        decode = time.perf_counter() - started
        print(f"decode only (grab every frame): {args.seconds / decode:.1f}x real time")
        for min_face, scanner in ((m, e) for m in args.min_face for e in engines):
            options = ScanOptions(every_s=args.every, min_face_px=min_face)
            result = drain(scan_video(scanner, clip, options))
            print(
                f"{scanner.description}: "
                f"scan every {args.every} s ({1 / args.every:.0f} samples/s), faces from "
                f"{min_face} px (detect side {result.options.detect_side}, reliably from "
                f"{result.smallest_face_px} px): "
                f"{result.speed_x_realtime:.1f}x real time ({result.elapsed_s:.1f} s for "
                f"{result.scanned_s:.0f} s of video; {result.samples} samples, "
                f"{result.faces_detected} faces, {result.embeddings_computed} embeddings, "
                f"{len(result.tracks)} tracks)"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
