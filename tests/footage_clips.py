"""Make small test videos from real face photos (for the footage tests).

A clip is a plain grey background on which face photos appear during given time spans, at given
places (optionally moving), written with cv2.VideoWriter. Each photo is cropped around its face
(found by the real detector) so the face has a known size in the clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workstation.vision.cvcompat import cv2_module
from workstation.vision.images import load_image


@dataclass(frozen=True)
class Appearance:
    photo: Path
    start_s: float
    end_s: float  # exclusive
    x: int  # top-left of the pasted crop at start_s
    y: int
    dx_per_s: float = 0.0  # movement, pixels per second
    width: int = 150  # pasted crop width (the face is about 55% of it)


def face_crop(engine, photo: Path, width: int) -> np.ndarray:
    """The photo cropped around its largest face (box grown by 40% per side), `width` wide."""
    cv2 = cv2_module()
    bgr = load_image(photo).bgr
    box = engine.detect(bgr)[0].box
    side = max(box.w, box.h) * 1.8
    cx, cy = box.center
    x0, y0 = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
    crop = bgr[y0 : int(y0 + side), x0 : int(x0 + side)]
    height = round(crop.shape[0] * width / crop.shape[1])
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)


def make_clip(
    engine,
    path: Path,
    appearances: list[Appearance],
    seconds: float,
    fps: float = 10.0,
    size: tuple[int, int] = (480, 360),
    fourcc: str = "mp4v",
) -> int:
    """Write the clip; returns its frame count."""
    cv2 = cv2_module()
    width, height = size
    crops = {a: face_crop(engine, a.photo, a.width) for a in appearances}
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"cannot write {path}"
    frames = round(seconds * fps)
    for index in range(frames):
        t = index / fps
        frame = np.full((height, width, 3), 96, dtype=np.uint8)
        for a in appearances:
            if not a.start_s <= t < a.end_s:
                continue
            crop = crops[a]
            x = round(a.x + a.dx_per_s * (t - a.start_s))
            h, w = crop.shape[:2]
            x0, y0 = max(0, x), max(0, a.y)
            x1, y1 = min(width, x + w), min(height, a.y + h)
            if x1 > x0 and y1 > y0:
                frame[y0:y1, x0:x1] = crop[y0 - a.y : y1 - a.y, x0 - x : x1 - x]
        writer.write(frame)
    writer.release()
    return frames
