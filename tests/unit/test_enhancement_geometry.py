"""Where the enhancement steps move each point (vision/enhancement.py `geometry`): a landmark
marked on a real photo, pushed through the real steps by `apply`, lands where the geometry says,
for every geometric step and chains of them; a box carried forward and back returns to itself."""

from __future__ import annotations

import numpy as np
import pytest

from workstation.domain import BBox
from workstation.vision.enhancement import apply, geometry
from workstation.vision.enhancement_steps import parse_steps
from workstation.vision.images import load_image

# A 5 x 5 white square with a black ring on a real photo: a landmark whose centre survives
# bicubic and Lanczos interpolation and the photometric steps.
MARK = 5


def _marked(photo: np.ndarray, x: int, y: int) -> np.ndarray:
    bgr = photo.copy()
    bgr[y - MARK : y + MARK + 1, x - MARK : x + MARK + 1] = 0
    bgr[y - 2 : y + 3, x - 2 : x + 3] = 255
    return bgr


def _found(photo, marked: np.ndarray, steps) -> tuple[float, float]:
    """The landmark's centre in the working copy: the centre of mass of what the white core
    adds over the same steps applied to the photo without the mark (the black ring takes
    away; the interpolation's small overshoot at its edges stays under the threshold)."""
    added = apply(marked, steps).astype(np.float64) - apply(photo, steps).astype(np.float64)
    weights = np.clip(added.mean(axis=2) - 40.0, 0, None)
    assert weights.sum() > 0, "the landmark is not in the working copy"
    rows, cols = np.indices(weights.shape)
    total = weights.sum()
    return float((cols * weights).sum() / total) + 0.5, float((rows * weights).sum() / total) + 0.5


CHAINS = [
    [{"step": "crop", "x": 100, "y": 150, "width": 420, "height": 520}],
    [{"step": "rotate", "angle": 17.0}],
    [{"step": "rotate", "angle": 90.0}],
    [{"step": "rotate", "angle": -90.0}],
    [{"step": "rotate", "angle": 180.0}],
    [{"step": "straighten", "eye1_x": 200, "eye1_y": 250, "eye2_x": 330, "eye2_y": 290}],
    [{"step": "upscale", "factor": 2.5, "interpolation": "cubic"}],
    [
        {"step": "crop", "x": 100, "y": 150, "width": 420, "height": 520},
        {"step": "rotate", "angle": -12.5},
        {"step": "upscale", "factor": 1.7, "interpolation": "lanczos4"},
    ],
    [
        {"step": "straighten", "eye1_x": 220, "eye1_y": 260, "eye2_x": 320, "eye2_y": 240},
        {"step": "crop", "x": 40, "y": 60, "width": 400, "height": 420},
        {"step": "upscale", "factor": 3.0, "interpolation": "cubic"},
        {"step": "rotate", "angle": 90.0},
    ],
]
# Photometric steps change values, never positions (their geometry is the identity; the
# landmark test uses geometric steps only, since equalisation and contrast move the values the
# landmark is found by).
PHOTOMETRIC = [
    {"step": "gamma", "gamma": 1.4},
    {"step": "equalise", "method": "clahe"},
    {"step": "brightness_contrast", "brightness": 20, "contrast": 1.3},
    {"step": "denoise"},
    {"step": "sharpen"},
]


@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: "+".join(s["step"] for s in c))
def test_a_landmark_lands_where_the_geometry_says(photo_paths, chain) -> None:
    steps = parse_steps(chain)
    photo = load_image(photo_paths["obama2"]).bgr
    moved = geometry(steps, photo.shape[1::-1])
    # One original pixel is this many working-copy pixels across (the upscale magnifies the
    # rounding of the mark's centre).
    scale = max(1.0, float(np.sqrt(abs(np.linalg.det(moved.matrix[:2, :2])))))
    width, height = moved.working_size
    tested = 0
    for x, y in ((260, 330), (180, 420), (400, 260), (300, 200)):
        expected = moved.forward_point(x + 0.5, y + 0.5)  # the centre of pixel (x, y)
        if not (20 <= expected[0] <= width - 20 and 20 <= expected[1] <= height - 20):
            continue  # cropped away
        tested += 1
        found = _found(photo, _marked(photo, x, y), steps)
        error = float(np.hypot(found[0] - expected[0], found[1] - expected[1]))
        assert error <= 0.5 * scale, (chain, (x, y), found, expected)
        back = moved.backward_point(*found)
        assert np.hypot(back[0] - x - 0.5, back[1] - y - 0.5) <= 0.5, (chain, (x, y), back)
    assert tested >= 2
    assert moved.working_size == apply(photo, steps).shape[1::-1]


def test_a_box_carried_forward_and_back_returns_and_holds_its_corners(photo_paths) -> None:
    steps = parse_steps(CHAINS[7])
    shape = load_image(photo_paths["obama2"]).bgr.shape
    moved = geometry(steps, shape[1::-1])
    box = BBox(210.0, 260.0, 90.0, 110.0)
    there = moved.forward_box(box)
    # The forward box holds every mapped corner; carried back, it holds the original box.
    for cx, cy in ((box.x, box.y), (box.x + box.w, box.y + box.h)):
        u, v = moved.forward_point(cx, cy)
        assert there.x - 1e-6 <= u <= there.x + there.w + 1e-6
        assert there.y - 1e-6 <= v <= there.y + there.h + 1e-6
    back = moved.backward_box(there)
    assert back.x <= box.x and back.y <= box.y
    assert back.x + back.w >= box.x + box.w and back.y + back.h >= box.y + box.h
    # Without a rotation a box goes forward and back exactly.
    plain = geometry(parse_steps([CHAINS[0][0], CHAINS[6][0]]), shape[1::-1])
    again = plain.backward_box(plain.forward_box(box))
    assert np.allclose(again.as_list(), box.as_list())
    # Photometric steps move nothing, alone or between geometric ones.
    assert np.allclose(geometry(parse_steps(PHOTOMETRIC), shape[1::-1]).matrix, np.eye(3))
    mixed = [CHAINS[7][0], PHOTOMETRIC[0], CHAINS[7][1], *PHOTOMETRIC[1:3], CHAINS[7][2]]
    assert np.allclose(geometry(parse_steps(mixed), shape[1::-1]).matrix, moved.matrix)
