"""dlib's ResNet face recogniser (128-d): dlib's alignment, its network run by onnxruntime.

Weights: `dlib_face_recognition_resnet_model_v1.dat` and the 5-point landmark model
`shape_predictor_5_face_landmarks.dat`, from the `face-recognition-models` package (Davis King's
models, public domain / CC0). That package also holds a 68-point landmark model whose training
data forbids commercial use: it is never located, loaded or bundled (the manifest does not name
it, and only manifest files are ever opened).

Input: dlib's own alignment. The 5-point model finds the eye corners and the base of the nose
inside the face box (YuNet's box, or a drawn one), and `dlib.get_face_chip` cuts the 150 px chip
(padding 0.25) the network was trained on. Measured against the alternative of feeding it the
ArcFace-template crop used for SFace (resized to 150 px), on CFP folds 1-2 (first 91
frontal-frontal and 85 frontal-profile pairs): frontal-frontal accuracy 100% vs 93.4% (d' 4.50 vs
2.04), frontal-profile 90.6% vs 87.1%. The ArcFace crop is framed much tighter than the chips dlib
was trained on.

The network: read from the verified bytes of the weights file and run by OpenCV's DNN module
(vision/dlib_network.py: the same descriptors as dlib's own for about an eighth of the CPU).

Loading the landmark model: dlib reads a model only from a file path. To load exactly the bytes
whose SHA-256 was checked (no window in which the file on disk could be swapped between the check
and the load), the verified bytes held in memory are written to a new private folder (mode 0700,
file 0600), dlib loads that copy, and the copy is deleted at once. A process running as the same
user could still interfere, but such a process could as well alter this program.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from workstation.domain import BBox, Landmarks, ModelId
from workstation.errors import ModelError
from workstation.vision.cvcompat import cv2_module
from workstation.vision.dlib_network import DlibResNetRunner
from workstation.vision.engine import PreparedFace
from workstation.vision.models import ModelFile

DLIB_RECOGNIZER = "dlib-resnet-v1"
DLIB_LANDMARKS = "dlib-shape-5pt"
CHIP_SIZE = 150  # the network's input
CHIP_PADDING = 0.25  # dlib's default for this network
# The region around the box handed to dlib: the chip with padding 0.25 reaches about 0.75 of the
# face size beyond the landmarks on every side.
_REGION_MARGIN = 1.0


def dlib_module() -> Any:
    try:
        import dlib
    except ImportError as exc:
        raise ModelError(
            "the dlib package is not installed, so the 'accurate' configuration cannot run; "
            "install workstation with its dependencies (dlib-bin) or choose the 'fast' one"
        ) from exc
    return dlib


def dlib_model_id(recogniser_sha256: str, landmarks_sha256: str) -> ModelId:
    """The recogniser's weights hash is the id's hash; the landmark model, which decides the
    alignment, is named with its own hash prefix."""
    return ModelId(
        name=f"{DLIB_RECOGNIZER}/{DLIB_LANDMARKS}#{landmarks_sha256[:12]}",
        sha256=recogniser_sha256,
        dim=128,
    )


@contextmanager
def verified_copy(model: ModelFile) -> Iterator[Path]:
    """A private file holding exactly the verified bytes, deleted on exit."""
    folder = Path(tempfile.mkdtemp(prefix="workstation-model-"))  # mode 0700
    try:
        path = folder / model.path.name
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(model.data)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class DlibResNetEmbedder:
    """dlib's 5-point alignment + ResNet descriptor over the verified model bytes."""

    parts = 1

    def __init__(self, recogniser: ModelFile, landmarks: ModelFile) -> None:
        dlib = dlib_module()
        self._dlib = dlib
        try:
            self._network = DlibResNetRunner(recogniser.data)
        except ModelError as exc:
            raise ModelError(f"{recogniser.path}: {exc}") from exc
        try:
            with verified_copy(landmarks) as path:
                self._shape = dlib.shape_predictor(str(path))
        except RuntimeError as exc:
            raise ModelError(f"{landmarks.path}: dlib cannot load this model ({exc})") from exc
        self.model = dlib_model_id(recogniser.sha256, landmarks.sha256)

    def prepare(self, bgr: np.ndarray, box: BBox, landmarks: Landmarks | None) -> PreparedFace:
        """dlib's 150 px chip: its 5-point landmarks found inside the box (the detector's
        landmarks are not used: dlib's chip is defined by its own points)."""
        cv2 = cv2_module()
        height, width = bgr.shape[:2]
        margin = _REGION_MARGIN * max(box.w, box.h)
        left, top = max(0, int(box.x - margin)), max(0, int(box.y - margin))
        right = min(width, int(box.x + box.w + margin) + 1)
        bottom = min(height, int(box.y + box.h + margin) + 1)
        # Only the region around the face is converted (a 4K frame has many more pixels).
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr[top:bottom, left:right], cv2.COLOR_BGR2RGB))
        rect = self._dlib.rectangle(
            round(box.x - left),
            round(box.y - top),
            round(box.x + box.w - left),
            round(box.y + box.h - top),
        )
        shape = self._shape(rgb, rect)
        chip = self._dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        return (np.ascontiguousarray(chip),)

    def embed(self, faces: list[PreparedFace]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.model.dim), dtype=np.float32)
        return self._network.descriptors(np.stack([chip for (chip,) in faces]))
