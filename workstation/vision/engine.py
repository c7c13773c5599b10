"""The face engine: detect, align, embed and assess faces, for any detector + recogniser pair.

Model families plug in behind two small protocols (`Detector`, `Embedder`); the engine owns what
is common to all of them: scaling big photos for detection, ordering faces, the manual-box path
and quality. Each recogniser cuts its own input from the photo (`Embedder.prepare`): SFace wants
the 112 px ArcFace-template crop, dlib its own 150 px chip from its 5-point landmarks, a fused
ensemble one input per member. Nothing here imports Qt, and nothing here imports a backend: the
configurations that build engines live in `workstation.vision.registry`, above both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from workstation.domain import BBox, Face, FaceSource, Landmarks, ModelId
from workstation.errors import NoFaceError
from workstation.vision.alignment import align_face, crop_box
from workstation.vision.cvcompat import cv2_module
from workstation.vision.detection import (
    Detection,
    first_copy_scale,
    full_resolution_tiles,
    image_pyramid,
    merge_detections,
    rescale_detection,
    scaled_detections,
    tile_detections,
)
from workstation.vision.quality import assess_quality, inter_eye_px

# Detection runs on a copy whose longer side is at most this, and on smaller copies for faces
# too large for it (vision/detection.py); landmarks are mapped back and the face is aligned from
# the full-resolution pixels.
MAX_DETECTION_SIDE = 1920
# Enrolment keeps the largest face only, so it detects on a smaller copy than search does
# (detection cost grows with pixels: 2.3x less than at 1920 px on large photos); the face is
# still aligned and embedded from the full-resolution pixels. Measured on the 58 photos of
# ../shared/faces larger than this: the embedding moves from the 1920 px one by as much as
# rescaling the photo by 0.9 does (median cosine 0.975 both); at 960 px it moved further (0.965).
# A configuration may choose a smaller side (vision/registry.py, `enrol_detection_side`).
ENROL_DETECTION_SIDE = 1280
# A drawn box is searched for a face in a crop this much larger on every side (fraction of side).
MANUAL_BOX_MARGIN = 0.5
# A drawn box is scaled, enlarged or shrunk without limit, to this many pixels before the
# detector looks for landmarks in it, so that the face inside is of a size the detector knows
# (20-400 px: vision/detection.py). Measured on boxes drawn around close-ups of 29 development
# photos (1,950x2,600 px, boxes 0.9-1.6x the face): cosine to the face at its own size, median
# (minimum), 0.932 (0.717) at 192 px, 0.939 (0.699) at 256, 0.945 (0.848) at 320, 0.942
# (0.834) at 384; on boxes around faces 16-80 px wide, 192 and 320 did equally well. The old
# limit (shrink at most 4x) left a 2,000 px box at 500 px, too large: cosines down to 0.63.
MANUAL_BOX_TARGET_SIDE = 320
# A detected face smaller than this (px, its box's longer side in the photo) is detected again on
# a crop of its surroundings scaled up so the face is SMALL_FACE_TARGET_SIDE px: the detector
# places landmarks on a face of 20 px far less well than on the same pixels enlarged, and the
# alignment follows the landmarks. Measured (benchmarks/enhancement_gain.py: 300 CFP frontal
# probes shrunk until the face is about 20 px, 500-person gallery, `fast`): rank-1 63.3% with
# the landmarks found at 20 px, 86.3% with those found on the enlarged copy and mapped back (of
# the 271 faces found: 70% -> 96%; the face is still aligned from the photo's own pixels).
# Larger faces are not touched (every main face of the 140 development photos embeds exactly
# as before), so the reference tables and the CFP figures, whose faces are larger, stand.
SMALL_FACE_SIDE = 48
SMALL_FACE_TARGET_SIDE = 96
# At most this many small faces per photo are detected again (a crowd's faces, largest first):
# each costs a detector pass on a crop of about 200 px.
MAX_REFINED_FACES = 64


# A face found on a photo decoded at a reduced size (enrolment's large JPEGs) is aligned from that
# decode when its eyes are at least this far apart there: the recogniser's input is smaller
# still (SFace's 112 px crop puts the eyes 35 px apart), so the reduced decode holds all the
# detail the crop can keep. A smaller face is aligned from the photo decoded in full.
REDUCED_MIN_INTER_EYE_PX = 64


class Detector(Protocol):
    name: str

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        """All faces in a BGR image, in that image's pixel coordinates."""
        ...


# What a recogniser needs of one face, cut from the photo by `Embedder.prepare`: one image per
# network it runs (a single model: one crop; a fused ensemble: one per member). Kept instead of the
# photo where embedding happens later (footage tracks embed their best frames when they close).
PreparedFace = tuple[np.ndarray, ...]


class Embedder(Protocol):
    model: ModelId
    parts: int  # how many images `prepare` returns per face

    def prepare(self, bgr: np.ndarray, box: BBox, landmarks: Landmarks | None) -> PreparedFace:
        """This model's input for the face at `box` / `landmarks` (None: a drawn box in which no
        landmarks were found; the model then uses the box, unaligned)."""
        ...

    def embed(self, faces: list[PreparedFace]) -> np.ndarray:
        """Embeddings (n x dim, float32) of prepared faces."""
        ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


@dataclass(frozen=True)
class MainFace:
    """A photo's main (largest) face, analysed, and how many other faces it shows."""

    face: Face
    others: int


class FaceEngine:
    """Detects and embeds faces. One instance is safe to share: inference is serialised."""

    def __init__(self, detector: Detector, embedder: Embedder, description: str = "") -> None:
        self.detector = detector
        self.embedder = embedder
        self.description = description or f"{detector.name} + {embedder.model.name}"
        self._lock = threading.Lock()
        # The registry key of the configuration that built this engine (None when built by hand).
        self.configuration: str | None = None
        # The longer side of the copy enrolment detects on (the configuration's choice).
        self.enrol_detection_side = ENROL_DETECTION_SIDE
        # How to load another instance of the same models (set by create_engine), and the
        # instances loaded so far: parallel inference needs one instance per thread.
        self.factory: Callable[[], FaceEngine] | None = None
        self._replicas: list[FaceEngine] = []
        self._replicas_lock = threading.Lock()

    def replicas(self, count: int) -> list[FaceEngine]:
        """This engine plus up to `count - 1` more instances of the same models, loaded once
        and kept, so `count` threads can run inference at the same time (one engine serialises
        its own). Fewer when the engine cannot be re-created (no factory)."""
        with self._replicas_lock:
            while self.factory is not None and len(self._replicas) < count - 1:
                replica = self.factory()
                if replica.model != self.model:  # the model files changed on disk meanwhile
                    break
                self._replicas.append(replica)
            return [self, *self._replicas[: max(0, count - 1)]]

    @property
    def model(self) -> ModelId:
        return self.embedder.model

    def detect(
        self,
        bgr: np.ndarray,
        max_side: int = MAX_DETECTION_SIDE,
        full_resolution: bool = True,
        enlarge: bool = False,
    ) -> list[Detection]:
        """Faces in the image, largest first (face 0 is the main face).

        Detection runs on a copy at most `max_side` pixels on its longer side and on smaller
        copies down to about 320 px, so that close-ups are found whole (see
        vision/detection.py); the detections are merged into one per face and mapped back to
        the full image. A photo larger than `max_side` is also seen at its own resolution in
        tiles, for the faces too small to be found on the first copy (`full_resolution`; see
        TILE_SIDE). Enrolment passes a smaller side than search and no tiles, since it only
        wants the main face and detection cost grows with the pixel count; so does a footage
        scan, which detects on every sampled frame; a scan asked for faces smaller than the
        detector finds at the frame's own size `enlarge`s it to `max_side` instead.
        """
        found = []
        with self._lock:
            for copy, scale in image_pyramid(bgr, max_side, enlarge):
                found += scaled_detections(self.detector.detect(copy), scale)
            if full_resolution:
                first_scale = first_copy_scale(bgr, max_side)
                for tile, corner in full_resolution_tiles(bgr, max_side):
                    found += tile_detections(self.detector.detect(tile), corner, first_scale)
        faces = sorted(merge_detections(found), key=lambda d: d.box.area, reverse=True)
        return self._refine_small_faces(bgr, faces)

    def _refine_small_faces(self, bgr: np.ndarray, faces: list[Detection]) -> list[Detection]:
        """Each small face detected again, enlarged (see SMALL_FACE_SIDE); largest first."""
        refined, budget = [], MAX_REFINED_FACES
        for face in faces:
            if budget and max(face.box.w, face.box.h) < SMALL_FACE_SIDE:
                budget -= 1
                face = self._detection_in_box(bgr, face.box, SMALL_FACE_TARGET_SIDE) or face
            refined.append(face)
        return sorted(refined, key=lambda d: d.box.area, reverse=True)

    def prepare(self, bgr: np.ndarray, box: BBox, landmarks: Landmarks | None) -> PreparedFace:
        """The recogniser's input for one face (see `Embedder.prepare`)."""
        with self._lock:
            return self.embedder.prepare(bgr, box, landmarks)

    def embed_prepared(self, faces: list[PreparedFace]) -> np.ndarray:
        """L2-normalised embeddings (n x dim, float32) of prepared faces."""
        with self._lock:
            return l2_normalise(self.embedder.embed(faces))

    def embed_faces(
        self, bgr: np.ndarray, faces: list[tuple[BBox, Landmarks | None]]
    ) -> np.ndarray:
        """L2-normalised embeddings of the faces at these (box, landmarks) in one photo."""
        with self._lock:
            prepared = [self.embedder.prepare(bgr, box, points) for box, points in faces]
            return l2_normalise(self.embedder.embed(prepared))

    def analyze(
        self,
        bgr: np.ndarray,
        max_side: int = MAX_DETECTION_SIDE,
        full_resolution: bool = True,
        enlarge: bool = False,
    ) -> list[Face]:
        """Every detected face, embedded and assessed, largest first (see `detect`)."""
        detections = self.detect(bgr, max_side, full_resolution, enlarge)
        return self._analysed(bgr, detections)

    def analyze_main_face(
        self,
        bgr: np.ndarray,
        max_side: int,
        scale: float = 1.0,
        full_pixels: Callable[[], np.ndarray] | None = None,
    ) -> MainFace | None:
        """The main face analysed, the others only counted (None: no face). Enrolment keeps
        the main face alone, so embedding the others would be spent for nothing.

        `bgr` may be the photo decoded at `scale` of its size (a large JPEG, see decode_image's
        `at_least`): faces are found on it, and the main face is aligned from it when its eyes
        are at least REDUCED_MIN_INTER_EYE_PX apart there, else from `full_pixels()` (the photo
        decoded in full). Either way the face's box and landmarks, and its quality, are in the
        photo's own pixels.
        """
        detections = self.detect(bgr, max_side, full_resolution=False)
        if not detections:
            return None
        main, others = detections[0], len(detections) - 1
        too_small = inter_eye_px(main.landmarks) < REDUCED_MIN_INTER_EYE_PX
        if scale != 1.0 and full_pixels is not None and too_small:
            return MainFace(
                self._analysed(full_pixels(), [rescale_detection(main, 1 / scale)])[0], others
            )
        return MainFace(self._analysed(bgr, [main], scale)[0], others)

    def _analysed(
        self, bgr: np.ndarray, detections: list[Detection], scale: float = 1.0
    ) -> list[Face]:
        """Each detection aligned, embedded and assessed, in the given order; `bgr` is the
        photo at `scale` of its size, and the faces are returned in the photo's own pixels."""
        if not detections:
            return []
        crops = [align_face(bgr, d.landmarks) for d in detections]
        embeddings = self.embed_faces(bgr, [(d.box, d.landmarks) for d in detections])
        in_photo = (
            [rescale_detection(d, 1 / scale) for d in detections] if scale != 1.0 else detections
        )
        return [
            Face(
                index=i,
                box=d.box,
                landmarks=d.landmarks,
                source=FaceSource.DETECTED,
                aligned=True,
                # In the photo's pixels: the eye distance it reports is the photo's own.
                quality=assess_quality(crop, d.landmarks, d.score, aligned=True),
                embedding=embeddings[i],
                model=self.model,
            )
            for i, (d, crop) in enumerate(zip(in_photo, crops, strict=True))
        ]

    def analyze_box(self, bgr: np.ndarray, box: BBox) -> Face:
        """A face a person boxed by hand.

        The detector looks for landmarks in a crop around the box (with a margin, enlarged when
        small); the detection best overlapping the box whose eyes lie inside it is aligned. When
        there is none, the box is embedded unaligned and marked low-confidence.
        """
        height, width = bgr.shape[:2]
        clipped = _clip_box(box, width, height)
        if clipped is None:
            raise NoFaceError(f"the box {box.as_list()} lies outside the {width}x{height} image")
        detection = self._detection_in_box(bgr, clipped)
        if detection is not None:
            crop = align_face(bgr, detection.landmarks)
            landmarks: Landmarks | None = detection.landmarks
            score: float | None = detection.score
        else:
            crop = crop_box(bgr, clipped)
            landmarks, score = None, None
        embedding = self.embed_faces(bgr, [(clipped, landmarks)])[0]
        return Face(
            index=0,
            box=clipped,
            landmarks=landmarks,
            source=FaceSource.MANUAL,
            aligned=detection is not None,
            quality=assess_quality(crop, landmarks, score, aligned=detection is not None),
            embedding=embedding,
            model=self.model,
        )

    def _detection_in_box(
        self, bgr: np.ndarray, box: BBox, target_side: float = MANUAL_BOX_TARGET_SIDE
    ) -> Detection | None:
        """The face inside a box (drawn, or a small detected face): looked for in a crop around
        the box, scaled so that the box is about `target_side` px, whatever its size."""
        cv2 = cv2_module()
        height, width = bgr.shape[:2]
        margin = MANUAL_BOX_MARGIN * max(box.w, box.h)
        left, top = max(0, int(box.x - margin)), max(0, int(box.y - margin))
        right = min(width, int(box.x + box.w + margin + 1))
        bottom = min(height, int(box.y + box.h + margin + 1))
        crop = bgr[top:bottom, left:right]
        zoom = target_side / max(box.w, box.h)
        if abs(zoom - 1.0) > 0.05:
            crop = cv2.resize(
                crop,
                (max(1, round(crop.shape[1] * zoom)), max(1, round(crop.shape[0] * zoom))),
                interpolation=cv2.INTER_CUBIC if zoom > 1 else cv2.INTER_AREA,
            )
        else:
            zoom = 1.0
        with self._lock:
            found = self.detector.detect(np.ascontiguousarray(crop))
        best: Detection | None = None
        best_overlap = 0.0
        for detection in merge_detections(scaled_detections(found, 1.0)):
            mapped = rescale_detection(detection, 1.0 / zoom, shift=(left, top))
            eyes_inside = all(box.contains(p) for p in mapped.landmarks[:2])
            overlap = mapped.box.iou(box)
            if eyes_inside and overlap > best_overlap:
                best, best_overlap = mapped, overlap
        return best


def _clip_box(box: BBox, width: int, height: int) -> BBox | None:
    if box.x >= 0 and box.y >= 0 and box.x + box.w <= width and box.y + box.h <= height:
        return box if box.w >= 4 and box.h >= 4 else None  # inside: kept exactly as drawn
    left, top = max(0.0, box.x), max(0.0, box.y)
    right, bottom = min(float(width), box.x + box.w), min(float(height), box.y + box.h)
    if right - left < 4 or bottom - top < 4:
        return None
    return BBox(left, top, right - left, bottom - top)


def select_face(
    engine: FaceEngine,
    bgr: np.ndarray,
    source_name: str,
    box: BBox | None = None,
    face_index: int | None = None,
) -> tuple[Face, list[Face]]:
    """The face to search with, plus every face found (for the caller to report or offer).

    A drawn box wins; else face `face_index` (0 = largest); else the largest face.
    """
    if box is not None:
        face = engine.analyze_box(bgr, box)
        return face, [face]
    faces = engine.analyze(bgr)
    if not faces:
        raise NoFaceError(
            f"{source_name}: no face found; draw a box around the face (--box X,Y,W,H) to "
            "search it by hand"
        )
    index = 0 if face_index is None else face_index
    if not 0 <= index < len(faces):
        raise NoFaceError(
            f"{source_name}: face {index} asked for, but only {len(faces)} face(s) found "
            f"(numbered 0 to {len(faces) - 1}, largest first)"
        )
    return faces[index], faces
