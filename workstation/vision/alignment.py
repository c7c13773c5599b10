"""Face alignment to the standard 5-point template (the one ArcFace and SFace were trained on)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workstation.domain import BBox, Landmarks
from workstation.vision.cvcompat import cv2_module

ALIGNED_SIZE = 112
# Eye (image left), eye (image right), nose tip, mouth corner (left), mouth corner (right).
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift) mapping source onto target.

    Umeyama's closed form; returns a 2x3 matrix for cv2.warpAffine.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    src_mean, dst_mean = source.mean(axis=0), target.mean(axis=0)
    src_c, dst_c = source - src_mean, target - dst_mean
    covariance = dst_c.T @ src_c / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    variance = (src_c**2).sum() / len(source)
    scale = (singular * np.diag(sign)).sum() / variance if variance > 0 else 1.0
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]])


def align_face(bgr: np.ndarray, landmarks: Landmarks, size: int = ALIGNED_SIZE) -> np.ndarray:
    """Warp the face so its five landmarks sit on the template; returns size x size BGR."""
    cv2 = cv2_module()
    template = ARCFACE_TEMPLATE_112 * (size / ALIGNED_SIZE)
    matrix = similarity_transform(np.array(landmarks, dtype=np.float64), template)
    return cv2.warpAffine(bgr, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0.0)


def crop_box(bgr: np.ndarray, box: BBox, size: int = ALIGNED_SIZE) -> np.ndarray:
    """Square crop around a box's centre (side = the longer edge), resized; pads outside the image.

    Used for a drawn box in which no face could be found: the embedding is then unaligned.
    """
    cv2 = cv2_module()
    side = max(box.w, box.h)
    cx, cy = box.center
    scale = size / side
    matrix = np.array(
        [[scale, 0.0, size / 2 - scale * cx], [0.0, scale, size / 2 - scale * cy]],
        dtype=np.float64,
    )
    return cv2.warpAffine(bgr, matrix, (size, size), flags=cv2.INTER_AREA, borderValue=0.0)


@dataclass(frozen=True)
class FaceView:
    """A face shown to a person as the model saw it (compare view, candidate thumbnails, report).

    `aligned`: warped so its five landmarks sit on the template; otherwise the square crop of its
    box (a drawn box in which no landmarks were found: the embedding was unaligned too).
    `landmarks`: where the face's landmarks fall in `bgr` (None when unaligned).
    """

    bgr: np.ndarray
    aligned: bool
    landmarks: list[tuple[float, float]] | None


def face_view(
    bgr: np.ndarray,
    box: Sequence[float],
    landmarks: Sequence[Sequence[float]] | None,
    size: int = ALIGNED_SIZE,
) -> FaceView:
    """The one way a stored or detected face is cropped for display, at `size` pixels.

    Same geometry as the embedding's crop (`align_face`, `crop_box`), drawn with cubic
    interpolation because it is looked at, often larger than the 112 px the model reads.
    """
    if not landmarks:
        return FaceView(crop_box(bgr, BBox(*box), size=size), aligned=False, landmarks=None)
    cv2 = cv2_module()
    points = np.array([(float(x), float(y)) for x, y in landmarks], dtype=np.float64)
    matrix = similarity_transform(points, ARCFACE_TEMPLATE_112 * (size / ALIGNED_SIZE))
    crop = cv2.warpAffine(bgr, matrix, (size, size), flags=cv2.INTER_CUBIC, borderValue=0.0)
    mapped = points @ matrix[:, :2].T + matrix[:, 2]
    return FaceView(crop, aligned=True, landmarks=[(float(x), float(y)) for x, y in mapped])
