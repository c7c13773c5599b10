"""A group photo for the redaction tests, made at run time from the public-domain fixtures
(tests/fixtures/README.md): the searched face and two bystanders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workstation.domain import BBox
from workstation.vision.cvcompat import cv2_module
from workstation.vision.images import load_image

CASE, PURPOSE = "C-RED-1", "robbery, bystanders in the probe"


def _face_crop(engine, path: Path, width: int) -> np.ndarray:
    """A photo cropped around its face (box grown 60% per side), `width` pixels wide."""
    cv2 = cv2_module()
    bgr = load_image(path).bgr
    box = engine.detect(bgr)[0].box
    side = max(box.w, box.h) * 2.2
    cx, cy = box.center
    x0, y0 = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
    crop = bgr[y0 : int(y0 + side), x0 : int(x0 + side)]
    return cv2.resize(crop, (width, width), interpolation=cv2.INTER_AREA)


def group_photo(engine, photo_paths, path: Path) -> dict[str, BBox]:
    """A group photo made from the public-domain fixtures: Obama (obama2.jpg, the searched face,
    largest), Biden beside him at half the size and Biden again small (a face about 35 px wide)
    in the background. Returns where each face was pasted (the paste's square)."""
    canvas = np.full((700, 1100, 3), 120, dtype=np.uint8)
    canvas[:, :, 1] = 135
    spots = {
        "obama": (60, 120, 480),
        "biden_near": (620, 260, 260),
        "biden_small": (960, 80, 80),
    }
    photos = {"obama": "obama2", "biden_near": "biden", "biden_small": "biden"}
    for name, (x, y, width) in spots.items():
        canvas[y : y + width, x : x + width] = _face_crop(engine, photo_paths[photos[name]], width)
    cv2_module().imwrite(str(path), canvas)
    return {name: BBox(x, y, width, width) for name, (x, y, width) in spots.items()}


def inside(box: BBox, square: BBox) -> bool:
    cx, cy = box.center
    return square.contains((cx, cy))


STREET_FRAME = 5  # the frame of street_frame's clip that the footage redaction tests search


def street_frame(engine, photo_paths, folder: Path):
    """A one-second street clip (obama2 large on the left, Biden a bystander on the right) made
    under `folder`: (the probed video, its frame STREET_FRAME's pixels)."""
    from footage_clips import Appearance, make_clip

    from workstation.footage import probe_video
    from workstation.vision.video import read_frame

    clip = folder / "street.mp4"
    make_clip(
        engine,
        clip,
        [
            Appearance(photo_paths["obama2"], 0.0, 1.0, 20, 60, width=220),
            Appearance(photo_paths["biden"], 0.0, 1.0, 320, 120, width=120),
        ],
        seconds=1.0,
    )
    video = probe_video(clip)
    return video, read_frame(video, STREET_FRAME)
