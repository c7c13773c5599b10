"""insightface model packs the user already has on disk (never downloaded).

A pack is a folder of ONNX files such as `~/.insightface/models/buffalo_l/`. insightface's own
model router (onnxruntime) tells the recogniser from the detector by their input and output
shapes. The recogniser's weights are hashed and that hash becomes the model id, so a gallery
built with one pack refuses another. If the pack has no detector the default YuNet finds faces.

Licence: the weights of insightface's published packs (buffalo_l and others) are for
non-commercial research only; the user must hold a licence that fits their use.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from workstation.domain import BBox, Landmarks, ModelId
from workstation.errors import ModelError
from workstation.hashing import sha256_file
from workstation.vision.alignment import align_face, crop_box
from workstation.vision.detection import Detection
from workstation.vision.engine import PreparedFace

INSIGHTFACE_LICENCE_NOTE = (
    "insightface pack weights are licensed by their authors for non-commercial research only"
)


def insightface_models_root() -> Path:
    home = os.environ.get("INSIGHTFACE_HOME")
    return (Path(home) if home else Path.home() / ".insightface") / "models"


def list_packs(root: Path | None = None) -> list[Path]:
    """Folders under the insightface models root that hold at least one ONNX file."""
    root = root or insightface_models_root()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and any(p.glob("*.onnx")))


def resolve_pack(pack: Path | str | None) -> Path:
    """A pack given as a folder path or as a name under ~/.insightface/models."""
    if pack is None:
        packs = list_packs()
        if not packs:
            raise ModelError(
                f"no insightface pack found under {insightface_models_root()}; copy a pack "
                "folder there or name one with --insightface-pack (nothing is downloaded)"
            )
        return packs[0]
    candidate = Path(pack).expanduser()
    if candidate.is_dir():
        return candidate
    named = insightface_models_root() / str(pack)
    if named.is_dir():
        return named
    raise ModelError(
        f"insightface pack {pack!r} not found (looked for the folder {candidate} and {named}); "
        "nothing is downloaded: copy the pack folder onto this PC first"
    )


class InsightFaceEmbedder:
    """An ArcFace-style recogniser from a pack, run by insightface on onnxruntime (CPU)."""

    parts = 1

    def __init__(self, model: object, path: Path, pack_name: str) -> None:
        self._model = model
        shape = model.input_shape  # type: ignore[attr-defined]
        self.input_size = int(shape[2])
        probe = np.zeros((self.input_size, self.input_size, 3), dtype=np.uint8)
        dim = int(np.asarray(model.get_feat([probe])).reshape(1, -1).shape[1])  # type: ignore[attr-defined]
        self.model = ModelId(
            name=f"insightface:{pack_name}/{path.name}", sha256=sha256_file(path), dim=dim
        )

    def prepare(self, bgr: np.ndarray, box: BBox, landmarks: Landmarks | None) -> PreparedFace:
        """The crop aligned to the ArcFace template at the network's input size."""
        if landmarks is None:
            return (crop_box(bgr, box, self.input_size),)
        return (align_face(bgr, landmarks, self.input_size),)

    def embed(self, faces: list[PreparedFace]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.model.dim), dtype=np.float32)
        crops = [crop for (crop,) in faces]
        features = self._model.get_feat(crops)  # type: ignore[attr-defined]
        return np.asarray(features, dtype=np.float32).reshape(len(crops), -1)


class InsightFaceDetector:
    """A pack's SCRFD/RetinaFace detector."""

    def __init__(self, model: object, path: Path) -> None:
        self._model = model
        self.name = f"insightface:{path.parent.name}/{path.name}"
        model.prepare(ctx_id=-1, input_size=(640, 640), det_thresh=0.5)  # type: ignore[attr-defined]

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        boxes, points = self._model.detect(bgr, input_size=(640, 640))  # type: ignore[attr-defined]
        found = []
        for i, row in enumerate(boxes):
            x1, y1, x2, y2, score = (float(v) for v in row[:5])
            if points is None:
                continue
            landmarks = tuple((float(px), float(py)) for px, py in points[i][:5])
            found.append(Detection(BBox(x1, y1, x2 - x1, y2 - y1), landmarks, score))
        return found


def load_pack(pack: Path | str | None) -> tuple[InsightFaceEmbedder, InsightFaceDetector | None]:
    """The recogniser of a pack on disk, and its detector when it has one."""
    from workstation.vision.cvcompat import cv2_module

    cv2_module()  # import cv2 through the guard before insightface imports it
    try:
        from insightface.model_zoo import get_model
    except ImportError as exc:
        if getattr(sys, "frozen", False):
            raise ModelError(
                "this installed copy of workstation does not include the optional insightface "
                "backend; use the shipped models, or install workstation with pip, which brings "
                "insightface, on a PC where that is allowed"
            ) from exc
        raise ModelError(f"the insightface package is not installed ({exc})") from exc

    folder = resolve_pack(pack)
    embedder: InsightFaceEmbedder | None = None
    detector: InsightFaceDetector | None = None
    for path in sorted(folder.glob("*.onnx")):
        try:
            model = get_model(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # insightface raises many kinds on a bad file
            raise ModelError(f"{path}: insightface cannot load this model ({exc})") from exc
        kind = type(model).__name__
        if kind == "ArcFaceONNX" and embedder is None:
            embedder = InsightFaceEmbedder(model, path, folder.name)
        elif kind in ("SCRFD", "RetinaFace") and detector is None:
            detector = InsightFaceDetector(model, path)
    if embedder is None:
        raise ModelError(f"{folder}: no recognition model (ArcFace-style ONNX) in this pack")
    return embedder, detector
