"""YuNet detection + SFace recognition through OpenCV's DNN module (the default backend).

Why OpenCV DNN and not onnxruntime, measured by benchmarks/backend_speed.py on 30 photos of
../shared/faces (640 px, 2 busy cores, OpenCV 4.12, onnxruntime 1.32): OpenCV runs both shipped
int8 files as they are; SFace embedding took 20.6 ms (p50) with OpenCV and 88.6 ms with
onnxruntime on the cleaned graph (same output, cosine 1.0). onnxruntime 1.32 does load YuNet, but
would need our own anchor decoder and alignment around it for no gain. onnxruntime remains the
runtime of the insightface pack backend.
"""

from __future__ import annotations

import numpy as np

from workstation.domain import BBox, Landmarks, ModelId
from workstation.errors import ModelError
from workstation.vision.alignment import align_face, crop_box
from workstation.vision.cvcompat import cv2_module
from workstation.vision.detection import Detection
from workstation.vision.engine import PreparedFace
from workstation.vision.models import ModelFile

DETECTION_SCORE_THRESHOLD = 0.6
NMS_THRESHOLD = 0.3


# YuNet's largest stride: OpenCV's FaceDetectorYN pads its input to a multiple of it, and with
# some sizes that padding reads memory left from the image before (measured: the same 29x26 px
# image gave a face, none, or a box of infinite size, depending on the size of the image
# detected before it). The image is padded here (right and bottom, black: the coordinates and,
# for other sizes, the network's input are unchanged), so OpenCV's padding has nothing to do and
# a search gives the same result whatever was detected before it.
STRIDE = 32
MIN_SIDE = 2 * STRIDE


class YuNetDetector:
    """OpenCV's FaceDetectorYN over the verified YuNet bytes."""

    def __init__(
        self, model: ModelFile, score_threshold: float = DETECTION_SCORE_THRESHOLD
    ) -> None:
        cv2 = cv2_module()
        self.name = model.key
        self.model_file = model
        try:
            self._detector = cv2.FaceDetectorYN.create(
                "ONNX",
                np.frombuffer(model.data, dtype=np.uint8),
                np.array([], dtype=np.uint8),
                (320, 320),
                score_threshold,
                NMS_THRESHOLD,
                5000,
            )
        except cv2.error as exc:
            raise ModelError(f"{model.path}: OpenCV cannot load this detector ({exc})") from exc

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        height, width = bgr.shape[:2]
        bottom = max(MIN_SIDE, height + (-height % STRIDE)) - height
        right = max(MIN_SIDE, width + (-width % STRIDE)) - width
        if bottom or right:
            cv2 = cv2_module()
            bgr = cv2.copyMakeBorder(bgr, 0, bottom, 0, right, cv2.BORDER_CONSTANT, value=(0, 0, 0))
            height, width = bgr.shape[:2]
        self._detector.setInputSize((width, height))
        _, rows = self._detector.detect(bgr)
        if rows is None:
            return []
        found = []
        for row in rows:
            x, y, w, h = (float(v) for v in row[:4])
            points = tuple((float(row[4 + 2 * i]), float(row[5 + 2 * i])) for i in range(5))
            found.append(Detection(box=BBox(x, y, w, h), landmarks=points, score=float(row[14])))
        return found


class SFaceEmbedder:
    """OpenCV's FaceRecognizerSF over the verified SFace bytes: 128-d embeddings."""

    input_size = 112
    parts = 1

    def __init__(self, model: ModelFile) -> None:
        cv2 = cv2_module()
        self.model_file = model
        try:
            self._recognizer = cv2.FaceRecognizerSF.create(
                "ONNX", np.frombuffer(model.data, dtype=np.uint8), np.array([], dtype=np.uint8)
            )
        except cv2.error as exc:
            raise ModelError(f"{model.path}: OpenCV cannot load this recogniser ({exc})") from exc
        self.model = ModelId(name=model.key, sha256=model.sha256, dim=128)

    def prepare(self, bgr: np.ndarray, box: BBox, landmarks: Landmarks | None) -> PreparedFace:
        """The 112 px crop aligned to the ArcFace template (the box, unaligned, without
        landmarks)."""
        if landmarks is None:
            return (crop_box(bgr, box, self.input_size),)
        return (align_face(bgr, landmarks, self.input_size),)

    def embed(self, faces: list[PreparedFace]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.model.dim), dtype=np.float32)
        rows = [self._recognizer.feature(crop).reshape(-1) for (crop,) in faces]
        return np.vstack(rows).astype(np.float32)
