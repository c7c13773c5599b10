"""Face detection at several scales: which copies of a photo the detector sees, and how their
detections become one face each.

Why several scales (measured with YuNet 2023mar on 35 faces of ../shared/faces, cropped and
rescaled; benchmarks/detect_scales.py): the detector finds faces whose box is about 20 to 400 px
wide in the image it is given (found 97-100%, median score 0.83-0.95), loses them above that
(score 0.69 at 640 px, found 0-9% at 800 px) and then reports a *partial* face inside the real
one instead (score 0.60-0.71, lying wholly inside it). A close-up in a large photo (a phone
selfie, a mugshot scanned at 1,200 px or more, a 4K still) is therefore only seen on a small
copy, and a crowd's small faces only on a large one: the detector sees both, and the merge keeps
one box per face.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from workstation.domain import BBox, Landmarks
from workstation.vision.cvcompat import cv2_module

# The longest face box (px, in the copy the detector saw) that the detector finds reliably:
# median score 0.90 at 400 px, 0.85 at 480, 0.69 at 640 (measured, see above). A detection
# larger than this is out of the range the model was trained on: it is trusted only when no
# copy saw the face at a size inside the range.
RELIABLE_FACE_SIDE = 400
# The smallest copy's longer side: a face filling the whole photo is at most this large there,
# inside the reliable range (scores 0.93-0.95 for faces of 256-320 px).
SMALLEST_DETECTION_SIDE = 320
# Consecutive copies differ by at most this factor: a face too large for one copy (over
# RELIABLE_FACE_SIDE) is at least 400 / 6 = 67 px in the next, inside the range, and a face at
# the bottom of the range in the next (20 px) is 120 px in the first. For search (1,920 px)
# that is one extra copy of 320 px (+3% of the pixels). A middle copy (1,920, 784, 320; +20%)
# placed landmarks on close-ups a little better, not enough to pay for it: median cosine to the
# face at its own size 0.946 against 0.943, 10th percentile 0.910 both (47 photos x 3 margins x
# 5 sizes 800-4,000 px).
MAX_SCALE_STEP = 6.0
# Copies whose longer side is within this factor of the smallest one are not worth a pass.
_SMALLEST_SLACK = 1.25
# Two detections of one face, seen on different copies, overlap by at least this IoU.
SAME_FACE_IOU = 0.3
# A detection lying this much inside another (intersection over the smaller box) is a part of
# that face (a partial face inside a close-up lies 0.79-1.0 inside the whole one, with an IoU
# of only 0.27-0.55): one of the two is dropped. Two real faces cannot nest like that.
NESTED_FRACTION = 0.6
# On a copy where a face is too large to be seen whole, the detector also fires on pieces of it
# that stick out of its box or sit just beside it (measured on close-ups: 0.57-0.63 inside it,
# or centred up to 11% of its width outside, scores 0.61-0.75). A weak detection is taken as
# such a fragment when its centre lies within the face's box grown by this fraction on every
# side and its own copy saw that face larger than RELIABLE_FACE_SIDE. Real small faces score
# higher (median 0.83-0.95 from 20 px up), and one large enough to be seen on the smaller
# copy too (about 120 px at 1,920) is kept from there.
FRAGMENT_MARGIN = 0.15
FRAGMENT_MAX_SCORE = 0.8
# A detection that only a smaller copy saw (no detection of the same face on the first copy)
# must score at least this. A face is looked for on the smaller copies because it was too large
# for the first one, and such a face scores 0.91-0.96 there; on the 173 photos of
# ../shared/faces the smaller copies' other detections, found nowhere on the first copy, scored
# 0.62-0.79 (texture, a shoulder between two joined portraits: phantom faces). Real faces that
# small are left to the first copy, which sees them larger.
EXTRA_COPY_MIN_SCORE = 0.8


# A photo larger than the first copy's side (`max_side`) is shrunk for it, and its small faces
# with it: a face of 24 px in a 3,840x2,160 frame is 12 px in the 1,920 px copy, below what the
# detector finds. Measured (CFP faces with their surroundings pasted into a 4K frame, 40 people):
# found at 20 px 0/40, 24 px 2/40, 28 px 9/40, 32 px 16/40, 40 px 29/40. Such a photo is then
# also seen at its own resolution, in overlapping tiles; a tile's detection counts only for a
# face too small for the first copy (under TILE_FACE_SIDE there): larger faces are seen whole on
# the copies, and a tile's edge would cut them into fragments.
# Tiles bound the memory the detector needs for a very large photo (a 48-megapixel one); their
# overlap costs pixels, so they are as large as that allows (a 4K frame: 4 tiles, 1.1 times its
# pixels; 1,024 px tiles were 15, 1.9 times).
TILE_SIDE = 2048
# A photo at most this much larger than the first copy keeps most of its small faces' pixels
# there (a 2,400 px photo's 20 px face is 16 px in the 1,920 px copy): no tiles.
TILE_ABOVE = 1.25
# Neighbouring tiles share this many pixels, so a face up to this size lies whole in one tile.
TILE_OVERLAP = 128
TILE_FACE_SIDE = 48
# A tile's detection must score at least this (the detector's own threshold is 0.6): the 24
# photos of ../shared/faces over 1,920 px gained one "face" at 0.65 with tiles, on the fingers of
# a raised hand, and none at 0.7; the small faces tiles find score 0.81-0.93 (benchmarks/
# cfp_closeups.py --small). Cost: detection of those 24 photos 389 -> 1,139 ms of CPU each
# (search and probe analysis only; enrolment and footage scans do not tile).
TILE_MIN_SCORE = 0.7
# A detection on a copy enlarged beyond the photo (`image_pyramid(..., enlarge=True)`: a footage
# scan asked for faces under the detector's reliable size) must score at least this. Enlarging
# the 140 development photos 1.4 times added 7 detections found nowhere at their own size, all
# scoring 0.61-0.66 (pieces of large faces, a patch of texture); the small faces enlarging finds
# score 0.80 and more (benchmarks/cfp_closeups.py --footage: 320 faces of 20-80 px).
ENLARGED_MIN_SCORE = 0.7


@dataclass(frozen=True)
class Detection:
    box: BBox
    landmarks: Landmarks
    score: float


def rescale_detection(
    detection: Detection, factor: float, shift: tuple[float, float] = (0, 0)
) -> Detection:
    """The detection in another image's pixels: multiplied by `factor`, then shifted."""
    dx, dy = shift
    box = detection.box
    return Detection(
        box=BBox(box.x * factor + dx, box.y * factor + dy, box.w * factor, box.h * factor),
        landmarks=tuple((x * factor + dx, y * factor + dy) for x, y in detection.landmarks),
        score=detection.score,
    )


def detection_sides(longer_side: int, max_side: int, enlarge: bool = False) -> list[int]:
    """Longer sides of the copies the detector sees, largest first.

    The first copy is the photo itself, or a copy `max_side` long when the photo is larger (or,
    with `enlarge`, smaller: a footage scan asked for faces smaller than the detector finds at
    the frame's own size).
    Smaller copies follow, in equal steps of at most MAX_SCALE_STEP, down to
    SMALLEST_DETECTION_SIDE, so that every face from about 20 px in the first copy to the whole
    photo is inside the detector's reliable range on at least one copy.
    """
    first = max(1, max_side if enlarge else min(longer_side, max_side))
    if first <= SMALLEST_DETECTION_SIDE * _SMALLEST_SLACK:
        return [first]
    ratio = first / SMALLEST_DETECTION_SIDE
    steps = max(1, math.ceil(math.log(ratio) / math.log(MAX_SCALE_STEP) - 1e-9))
    step = ratio ** (1.0 / steps)
    return [first] + [round(first / step**i) for i in range(1, steps + 1)]


def image_pyramid(
    bgr: np.ndarray, max_side: int, enlarge: bool = False
) -> Iterator[tuple[np.ndarray, float]]:
    """(copy, scale) for each side of `detection_sides`; scale maps the photo onto the copy.

    Each copy is shrunk from the previous one (area averaging), which costs far less than
    shrinking the full photo each time. With `enlarge`, a photo smaller than `max_side` is first
    enlarged to it (bicubic), so that its smallest faces reach a size the detector finds.
    """
    cv2 = cv2_module()
    height, width = bgr.shape[:2]
    longer = max(height, width)
    previous = bgr
    for side in detection_sides(longer, max_side, enlarge):
        scale = side / longer if enlarge else min(1.0, side / longer)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if size != (previous.shape[1], previous.shape[0]):
            larger = size[0] > previous.shape[1]
            interpolation = cv2.INTER_CUBIC if larger else cv2.INTER_AREA
            previous = cv2.resize(previous, size, interpolation=interpolation)
        yield previous, scale


def full_resolution_tiles(
    bgr: np.ndarray, max_side: int
) -> Iterator[tuple[np.ndarray, tuple[int, int]]]:
    """(tile, its top-left corner) covering a photo over TILE_ABOVE times `max_side` at its own
    resolution, in equal tiles of at most TILE_SIDE sharing TILE_OVERLAP px with their
    neighbours; nothing for a photo the first copy sees whole or nearly so."""
    height, width = bgr.shape[:2]
    if max(height, width) <= max_side * TILE_ABOVE:
        return
    for top, tile_height in _tile_spans(height):
        for left, tile_width in _tile_spans(width):
            yield bgr[top : top + tile_height, left : left + tile_width], (left, top)


def _tile_spans(length: int) -> list[tuple[int, int]]:
    """(start, length) of equal tiles along one side, at most TILE_SIDE long, each sharing
    TILE_OVERLAP px with the next: the detector sees about as many pixels as the photo has."""
    if length <= TILE_SIDE:
        return [(0, length)]
    count = math.ceil((length - TILE_OVERLAP) / (TILE_SIDE - TILE_OVERLAP))
    span = math.ceil((length + (count - 1) * TILE_OVERLAP) / count)
    return [(min(i * (span - TILE_OVERLAP), length - span), span) for i in range(count)]


def tile_detections(
    found: Iterable[Detection],
    corner: tuple[int, int],
    first_scale: float,
    min_score: float = TILE_MIN_SCORE,
) -> list[ScaledDetection]:
    """Detections made on a full-resolution tile, in the photo's pixels: those of faces too
    small for the first copy (at `first_scale` of the photo), scoring `min_score` or more."""
    return [
        ScaledDetection(rescale_detection(d, 1.0, corner), 1.0, tile=True)
        for d in found
        if max(d.box.w, d.box.h) * first_scale < TILE_FACE_SIDE and d.score >= min_score
    ]


def first_copy_scale(bgr: np.ndarray, max_side: int) -> float:
    """The scale of the first (largest) copy the detector sees: 1 unless the photo is larger."""
    return min(1.0, max_side / max(1, *bgr.shape[:2]))


@dataclass(frozen=True)
class ScaledDetection:
    """A detection mapped back to the photo, with the size it had in the copy it came from."""

    detection: Detection
    scale: float  # of the copy it was made on, relative to the photo
    tile: bool = False  # made on a full-resolution tile (see TILE_SIDE)

    @property
    def side_in_copy(self) -> float:
        return max(self.detection.box.w, self.detection.box.h) * self.scale

    @property
    def in_reliable_range(self) -> bool:
        return self.side_in_copy <= RELIABLE_FACE_SIDE

    def is_fragment_of(self, face: Detection) -> bool:
        """A weak detection beside or across a face its copy saw too large to find whole."""
        box = face.box
        if self.detection.score >= FRAGMENT_MAX_SCORE or max(box.w, box.h) * self.scale <= (
            RELIABLE_FACE_SIDE
        ):
            return False
        cx, cy = self.detection.box.center
        grow_x, grow_y = FRAGMENT_MARGIN * box.w, FRAGMENT_MARGIN * box.h
        return (
            box.x - grow_x <= cx <= box.x + box.w + grow_x
            and box.y - grow_y <= cy <= box.y + box.h + grow_y
        )


def scaled_detections(found: Iterable[Detection], scale: float) -> list[ScaledDetection]:
    """Detections made on a copy at `scale`, mapped back to the photo's pixels (on an enlarged
    copy, those scoring ENLARGED_MIN_SCORE or more)."""
    return [
        ScaledDetection(rescale_detection(d, 1.0 / scale) if scale != 1.0 else d, scale)
        for d in found
        if scale <= 1.0 or d.score >= ENLARGED_MIN_SCORE
    ]


def nested_fraction(a: BBox, b: BBox) -> float:
    """How much of the smaller box lies inside the other (0 to 1)."""
    left, top = max(a.x, b.x), max(a.y, b.y)
    right, bottom = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    smaller = min(a.area, b.area)
    return inter / smaller if smaller > 0 else 0.0


def _same_face(a: BBox, b: BBox) -> bool:
    return a.iou(b) >= SAME_FACE_IOU or nested_fraction(a, b) >= NESTED_FRACTION


def merge_detections(candidates: Iterable[ScaledDetection]) -> list[Detection]:
    """One detection per face from detections made on several copies.

    A detection only a smaller copy saw is kept when it scores EXTRA_COPY_MIN_SCORE or more.
    Detections seen at a size inside the detector's reliable range come first, higher scores
    first; then a detection is dropped when it overlaps a kept one (same face, seen on another
    copy), when one of the two lies mostly inside the other (a partial face inside the whole
    one), or when it is a fragment of a kept face its copy saw too large (see FRAGMENT_MARGIN).
    Measured on close-ups: the whole face, seen on a small copy, scores 0.94-0.96 and the
    partial one, seen too large on a big copy, 0.60-0.71; its landmarks look as sane as the
    whole face's (eye distance 0.42-0.57 of the box width, against 0.45-0.55), so it is the size
    at which a detection was made, then its score, that decides.
    """
    candidates = list(candidates)
    copies = [c for c in candidates if not c.tile]
    first_scale = max((c.scale for c in copies), default=1.0)
    on_first = [c.detection.box for c in copies if c.scale == first_scale]
    ranked = sorted(
        (
            c
            for c in candidates
            if c.tile  # kept by `tile_detections` only for faces too small for the first copy
            or c.scale == first_scale
            or c.detection.score >= EXTRA_COPY_MIN_SCORE
            or any(_same_face(c.detection.box, box) for box in on_first)
        ),
        key=lambda c: (c.in_reliable_range, not c.tile, c.detection.score),
        reverse=True,
    )
    kept: list[Detection] = []
    for candidate in ranked:
        box = candidate.detection.box
        if not any(_same_face(box, other.box) or candidate.is_fragment_of(other) for other in kept):
            kept.append(candidate.detection)
    return kept
