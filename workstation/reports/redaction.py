"""Redaction on export: bystanders' faces in a probe photo or video frame are blurred in the
exported report, and the bundle lists what was redacted (issue 15 item 5). Qt-free.

A **bystander** is every face detected in the probe image other than the searched one (a face
overlapping the searched box, detected or drawn by the examiner, is the searched face). The
examiner may add a redaction box by hand (a missed face, a tattoo, a name badge) and may
un-redact one box with a note; both are audited acts stored in the gallery
(workstation.gallery.redactions). The probe file on disk is never changed: redaction is applied
to the pixels drawn into the report, which contains only redacted images unless the examiner
explicitly un-redacted a box.

Detection here favours recall over precision: a missed bystander is disclosed in a document
that leaves the agency; a false detection only blurs a patch of background. So the product's
multi-scale detector (vision/detection.py: small faces on the large copy, close-ups on the
small ones) runs with REDACTION_SCORE_THRESHOLD instead of the search's 0.6, and every
detection from every copy is kept (merged into one box per face, the union of the boxes),
instead of the search's merge, which drops weak detections seen only on a smaller copy.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from workstation.domain import BBox
from workstation.errors import WorkstationError
from workstation.gallery.records import SearchRecord
from workstation.gallery.redactions import RedactionMark, redaction_marks, same_box
from workstation.gallery.store import Gallery
from workstation.reports.enhancement_report import searched_pixels
from workstation.vision.detection import (
    NESTED_FRACTION,
    SAME_FACE_IOU,
    Detection,
    first_copy_scale,
    full_resolution_tiles,
    image_pyramid,
    nested_fraction,
    scaled_detections,
    tile_detections,
)
from workstation.vision.enhancement import Geometry, geometry

# YuNet's score threshold for redaction (search uses 0.6, vision/opencv_backend.py). Missing a
# bystander is the worse error (their face leaves the agency in the report); a false detection
# costs a blurred patch of background, which the examiner sees and can un-redact with a note.
# Measured by benchmarks/redaction_recall.py. Faces seen from the side decide it: of 200 CFP
# profile photos pasted 48 px long on a 640 x 480 frame, the search's detector found 147; the
# redaction detector found 153 at 0.5, 163 at 0.4, 171 at 0.3, 179 at 0.2; at 32 px, 75 against
# 92, 109, 129, 146. Frontal crowd faces are found at any threshold (the 43 hand-boxed faces of
# ../shared/faces/dlib_faces_det: 43/43 from 0.6 to 0.2, also at 0.35x and blurred, darkened and
# JPEG-compressed), while the extra boxes (background) grew from 4 (0.6) to 20 (0.3) and 47
# (0.2) at full size. 0.3 finds most of what 0.2 does at less than half its false boxes; the
# examiner draws a box over a face it misses. In obama2.jpg a face half hidden behind the
# speaker's shoulder scores 0.61, seen only on a smaller copy, and the search drops it; redaction
# blurs it (tests/unit/test_redaction.py).
REDACTION_SCORE_THRESHOLD = 0.3
# The searched face is the detection that overlaps its box this much (IoU), or lies this much
# inside it / holds it (the detection rule's own "same face" test, vision/detection.py).
SEARCHED_FACE_IOU = SAME_FACE_IOU
# YuNet's box is tight around the eyes, nose and mouth; hair, ears and jaw line identify too.
# The blurred area is the box grown by this fraction of its width/height on every side.
REDACTION_MARGIN = 0.25
# The face is shrunk to this many blocks across (pixelated), then smoothed with a Gaussian of
# this many blocks' width: at 8 blocks, SFace's cosine between the redacted face and the
# original fell from 1.0 to stranger level (tests/unit/test_redaction.py measures it on real
# photos: below the calibration's 1-in-1,000 threshold).
PIXEL_BLOCKS = 8
GAUSSIAN_BLOCKS = 1.0
# A whole probe image drawn into the report at most this long (px), after redaction.
REPORT_IMAGE_SIDE = 1200
# Largest copy the redaction detector sees (the search's MAX_DETECTION_SIDE).
REDACTION_DETECTION_SIDE = 1920

# What the bundle says of redaction (the command line has no switch to turn it off: see
# docs/ACCOUNTABILITY.md "Redaction on export").
REDACTION_POLICY = (
    "Faces in probe images other than the searched face are blurred in this report by default; "
    "an examiner may add boxes and may un-redact one box with a note (each an audited act). "
    "The probe files themselves are never changed."
)

SOURCE_DETECTED = "detected"
FOUND_IN_ORIGINAL = "original"
FOUND_IN_WORKING_COPY = "working copy"
# How an enhanced search's working copy is redacted (the bundle says it).
WORKING_COPY_METHOD = (
    "each box above (in the original's pixels) mapped through the recorded steps' geometry "
    "(crop: a shift; rotate and straighten: the rotation applied; upscale: the scale; the "
    "photometric steps move no pixel) to the bounding box of its four mapped corners, grown by "
    "the same margin and obscured the same way on the working copy made again from the "
    "unredacted original; the searched face's box in the working copy is left as searched"
)
SOURCE_DRAWN = "drawn by examiner"


_DETECTOR_LOCK = threading.Lock()


@cache
def redaction_detector() -> Any:
    """YuNet (the product's detector, verified against the manifest) with the redaction
    threshold; loaded once per process."""
    from workstation.vision.models import load_verified
    from workstation.vision.opencv_backend import YuNetDetector
    from workstation.vision.registry import YUNET

    return YuNetDetector(load_verified(YUNET), score_threshold=REDACTION_SCORE_THRESHOLD)


def _same_face(a: BBox, b: BBox) -> bool:
    return a.iou(b) >= SAME_FACE_IOU or nested_fraction(a, b) >= NESTED_FRACTION


def _union(a: BBox, b: BBox) -> BBox:
    left, top = min(a.x, b.x), min(a.y, b.y)
    right, bottom = max(a.x + a.w, b.x + b.w), max(a.y + a.h, b.y + b.h)
    return BBox(left, top, right - left, bottom - top)


def detect_faces_for_redaction(bgr: np.ndarray, detector: Any = None) -> list[Detection]:
    """Every face the redaction detector finds in the image, one box per face (the union of
    what each copy of the pyramid saw), highest score first."""
    found = []
    # One shared detector per process: OpenCV's FaceDetectorYN keeps its input size between
    # calls, so two threads (the Redaction dialog's worker and an export) take turns.
    with _DETECTOR_LOCK:
        detector = detector or redaction_detector()
        for copy, scale in image_pyramid(bgr, REDACTION_DETECTION_SIDE):
            found += scaled_detections(detector.detect(copy), scale)
        # A large frame's small faces are found on its full-resolution tiles (see TILE_SIDE), at
        # the redaction threshold: a face missed here would be shown unredacted.
        first_scale = first_copy_scale(bgr, REDACTION_DETECTION_SIDE)
        for tile, corner in full_resolution_tiles(bgr, REDACTION_DETECTION_SIDE):
            found += tile_detections(detector.detect(tile), corner, first_scale, min_score=0.0)
    merged: list[Detection] = []
    for candidate in sorted(found, key=lambda c: c.detection.score, reverse=True):
        box = candidate.detection.box
        for i, kept in enumerate(merged):
            if _same_face(box, kept.box):
                merged[i] = Detection(_union(kept.box, box), kept.landmarks, kept.score)
                break
        else:
            merged.append(candidate.detection)
    return merged


@dataclass(frozen=True)
class RedactionBox:
    """One box of a probe image that the report blurs (unless un-redacted)."""

    box: BBox  # the face (or drawn) box in the probe image's pixels, before the margin
    source: str  # SOURCE_DETECTED or SOURCE_DRAWN
    score: float | None = None  # the detector's, for a detected box
    drawn: RedactionMark | None = None  # the examiner's mark, for a drawn box
    unredacted: RedactionMark | None = None  # the examiner's un-redaction, if any
    # Where the detector found it: the original, or (only) an enhanced search's working copy.
    found_in: str = FOUND_IN_ORIGINAL

    @property
    def redacted(self) -> bool:
        return self.unredacted is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [round(v, 1) for v in self.box.as_list()],
            "source": self.source,
            "found_in": self.found_in if self.source == SOURCE_DETECTED else None,
            "detector_score": None if self.score is None else round(self.score, 3),
            "drawn": self.drawn.to_dict() if self.drawn else None,
            "redacted": self.redacted,
            "unredacted": self.unredacted.to_dict() if self.unredacted else None,
        }


@dataclass(frozen=True)
class ProbeRedaction:
    """What the report redacts in one search's probe image."""

    search_id: int
    image_sha256: str | None  # of the file (a photo) or of the decoded frame's pixels
    image_ref: str  # the probe's SHA-256, with #frame=N for a video frame
    boxes: tuple[RedactionBox, ...] = ()
    problem: str | None = None  # why the image could not be checked (then none is shown)
    searched_box: BBox | None = None  # in the original's pixels (an enhanced search's mapped)
    unmatched_unredactions: tuple[RedactionMark, ...] = field(default_factory=tuple)
    # An enhanced search: where the steps move the original's pixels in the working copy, the
    # searched face's box there (as searched) and the working copy's SHA-256.
    geometry: Geometry | None = None
    searched_box_working: BBox | None = None
    working_sha256: str | None = None

    def working_boxes(self) -> list[BBox]:
        """The redacted boxes carried into an enhanced search's working copy (before margin)."""
        if self.geometry is None:
            return []
        return [self.geometry.forward_box(b.box) for b in self.boxes if b.redacted]

    @property
    def redacted_count(self) -> int:
        return sum(1 for b in self.boxes if b.redacted)

    @property
    def unredacted_count(self) -> int:
        return sum(1 for b in self.boxes if not b.redacted)

    @property
    def bystander_faces_redacted(self) -> int:
        return sum(1 for b in self.boxes if b.redacted and b.source == SOURCE_DETECTED)

    def statement(self) -> str:
        """The words the report prints beside the image."""
        if self.problem:
            return f"Probe image not shown: {self.problem}"
        faces = self.bystander_faces_redacted
        words = [f"{faces} bystander face{'' if faces == 1 else 's'} redacted"]
        if self.geometry is not None:
            words[0] += (
                " in the original and in the working copy (boxes carried through the recorded "
                "steps; the searched face left as searched)"
            )
            revealed = sum(
                1 for b in self.boxes if b.redacted and b.found_in == FOUND_IN_WORKING_COPY
            )
            if revealed:
                words.append(f"{revealed} of them found only on the working copy")
        drawn = sum(1 for b in self.boxes if b.redacted and b.source == SOURCE_DRAWN)
        if drawn:
            words.append(f"{drawn} area{'' if drawn == 1 else 's'} redacted by the examiner")
        for box in self.boxes:
            if box.unredacted is not None:
                mark = box.unredacted
                words.append(
                    f"box {_box_text(box.box)} un-redacted by {mark.user} on "
                    f"{mark.created_at[:10]}: {mark.note}"
                )
        return "; ".join(words)

    def to_bundle_dict(self) -> dict[str, Any]:
        return {
            "applied": True,
            "image_sha256": self.image_sha256,
            "image_ref": self.image_ref,
            "problem": self.problem,
            "detector": "yunet-2023mar (multi-scale)",
            "detector_score_threshold": REDACTION_SCORE_THRESHOLD,
            "margin": REDACTION_MARGIN,
            "method": f"pixelated to {PIXEL_BLOCKS} blocks across, then Gaussian blur",
            "coordinates": "pixels of the original image named by image_sha256",
            "searched_box": (
                [round(v, 1) for v in self.searched_box.as_list()] if self.searched_box else None
            ),
            "working_copy": self._working_copy_dict(),
            "bystander_faces_redacted": self.bystander_faces_redacted,
            "boxes": [b.to_dict() for b in self.boxes],
            "unmatched_unredactions": [m.to_dict() for m in self.unmatched_unredactions],
            "statement": self.statement(),
        }

    def _working_copy_dict(self) -> dict[str, Any] | None:
        """How an enhanced search's working copy was redacted (None: not an enhanced search)."""
        if self.geometry is None:
            return None
        return {
            "working_sha256": self.working_sha256,
            "redacted_by": WORKING_COPY_METHOD,
            "original_to_working_matrix": [
                [round(float(v), 6) for v in row] for row in self.geometry.matrix[:2]
            ],
            "searched_box": (
                [round(v, 1) for v in self.searched_box_working.as_list()]
                if self.searched_box_working
                else None
            ),
            "boxes": [[round(v, 1) for v in b.as_list()] for b in self.working_boxes()],
        }


def _box_text(box: BBox) -> str:
    return "(" + ", ".join(f"{v:.0f}" for v in box.as_list()) + ")"


def image_ref(record: SearchRecord) -> str:
    """How redaction marks name a search's probe image: its SHA-256 (#frame=N for a frame)."""
    frame = record.probe.frame
    if frame:
        return f"{record.probe.sha256}#frame={frame.get('frame_index')}"
    return record.probe.sha256


def probe_pixels(record: SearchRecord) -> tuple[np.ndarray | None, str | None, str | None]:
    """(the probe image's pixels, their SHA-256, None) once checked against the search's recorded
    SHA-256, or (None, None, why not). A video frame is read from the video after checking the
    video's SHA-256; its own hash is that of its raw pixels."""
    from workstation.gallery.probe_source import recorded_probe_image

    try:
        image = recorded_probe_image(record)
    except WorkstationError as exc:
        return None, None, str(exc)
    if not record.probe.frame:
        return image.bgr, image.sha256, None
    return image.bgr, hashlib.sha256(image.bgr.tobytes()).hexdigest(), None


def plan_redaction(
    record: SearchRecord,
    bgr: np.ndarray | None,
    image_sha256: str | None,
    marks: Sequence[RedactionMark],
    problem: str | None = None,
    detector: Any = None,
) -> ProbeRedaction:
    """The boxes to redact in a search's probe image: every detected face but the searched one,
    plus the examiner's drawn boxes, each un-redacted only by an examiner's un-redaction of that
    box (same image, IoU at least redactions.SAME_BOX_IOU)."""
    searched = record.face.box
    ref = image_ref(record)
    lineage = record.probe.enhancement
    moved: Geometry | None = None
    working: np.ndarray | None = None
    if bgr is not None and lineage is not None:
        # An enhanced search's face box is in its working copy's pixels; the marks and the
        # boxes are in the original's. The working copy is made again (and checked) to find
        # the faces it shows and to carry boxes between the two.
        working, why = searched_pixels(record, bgr)
        if working is None:
            bgr, problem = None, why
        else:
            moved = geometry(lineage.steps, (bgr.shape[1], bgr.shape[0]))
            searched = moved.backward_box(record.face.box)
    if bgr is None:
        return ProbeRedaction(record.search_id, None, ref, problem=problem, searched_box=searched)
    boxes: list[RedactionBox] = []
    for detection in detect_faces_for_redaction(bgr, detector):
        if _same_face(detection.box, searched):
            continue  # the searched face stays sharp
        boxes.append(RedactionBox(detection.box, SOURCE_DETECTED, score=detection.score))
    if moved is not None and working is not None:
        boxes = _with_working_copy_faces(boxes, working, record.face.box, searched, moved, detector)
    drawn = [m for m in marks if m.kind == "drawn" and m.image_ref == ref]
    boxes += [RedactionBox(m.box, SOURCE_DRAWN, drawn=m) for m in drawn]
    unredactions = [m for m in marks if m.kind == "unredact" and m.image_ref == ref]
    matched: set[int] = set()
    final: list[RedactionBox] = []
    for box in boxes:
        undo = next((m for m in unredactions if same_box(m.box, box.box)), None)
        if undo is not None:
            matched.add(undo.id)
            box = RedactionBox(box.box, box.source, box.score, box.drawn, undo, box.found_in)
        final.append(box)
    return ProbeRedaction(
        record.search_id,
        image_sha256,
        ref,
        tuple(final),
        searched_box=searched,
        unmatched_unredactions=tuple(m for m in unredactions if m.id not in matched),
        geometry=moved,
        searched_box_working=record.face.box if moved is not None else None,
        working_sha256=lineage.working_sha256 if moved is not None and lineage else None,
    )


def _with_working_copy_faces(
    boxes: list[RedactionBox],
    working: np.ndarray,
    searched_working: BBox,
    searched_original: BBox,
    moved: Geometry,
    detector: Any,
) -> list[RedactionBox]:
    """The original's detected boxes plus the faces found on an enhanced search's working copy
    (upscaling, brightening or straightening may reveal a face the original hides), each carried
    back to the original's pixels; a face found on both is one box (the union), as the pyramid's
    copies are merged. The searched face, found on the working copy where it was searched, is
    left out."""
    merged = list(boxes)
    for detection in detect_faces_for_redaction(working, detector):
        if _same_face(detection.box, searched_working):
            continue
        back = moved.backward_box(detection.box)
        if _same_face(back, searched_original):
            continue
        for i, kept in enumerate(merged):
            if _same_face(back, kept.box):
                merged[i] = RedactionBox(_union(kept.box, back), kept.source, kept.score)
                break
        else:
            merged.append(
                RedactionBox(
                    back, SOURCE_DETECTED, score=detection.score, found_in=FOUND_IN_WORKING_COPY
                )
            )
    return merged


def search_redaction(gallery: Gallery, search_id: int, detector: Any = None) -> ProbeRedaction:
    """What an export redacts in one search's probe image now (for `redaction show` and the
    app's Redaction dialog; the export computes the same through build_case_bundle)."""
    record = gallery.search_record(search_id)
    marks = redaction_marks(gallery, [search_id]).get(search_id, [])
    bgr, digest, problem = probe_pixels(record)
    return plan_redaction(record, bgr, digest, marks, problem, detector)


def grown(box: BBox, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of `box` grown by `margin` of its size, inside the image."""
    dx, dy = box.w * margin, box.h * margin
    left = max(0, int(np.floor(box.x - dx)))
    top = max(0, int(np.floor(box.y - dy)))
    right = min(width, int(np.ceil(box.x + box.w + dx)))
    bottom = min(height, int(np.ceil(box.y + box.h + dy)))
    return left, top, right, bottom


def obscure(region: np.ndarray) -> np.ndarray:
    """A region made unrecognisable: pixelated to PIXEL_BLOCKS across, then smoothed."""
    from workstation.vision.cvcompat import cv2_module

    cv2 = cv2_module()
    height, width = region.shape[:2]
    if height < 2 or width < 2:
        return region.copy()
    blocks_x = max(1, min(width, PIXEL_BLOCKS))
    blocks_y = max(1, min(height, round(PIXEL_BLOCKS * height / width)))
    small = cv2.resize(region, (blocks_x, blocks_y), interpolation=cv2.INTER_AREA)
    blocky = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
    sigma = max(1.0, GAUSSIAN_BLOCKS * width / blocks_x / 2)
    return cv2.GaussianBlur(blocky, (0, 0), sigmaX=sigma, sigmaY=sigma)


def apply_redaction(
    bgr: np.ndarray, boxes: Iterable[BBox], keep: BBox | None = None, keep_whole: bool = False
) -> np.ndarray:
    """A copy of the image with each box (grown by REDACTION_MARGIN) obscured; the pixels of
    `keep` (the searched face) that only a margin reached stay as they were, and with
    `keep_whole` every pixel of `keep` does (an enhanced search's working copy: boxes carried
    into it are bounding boxes, larger than the faces, and the searched face must stay the
    pixels searched). The input is not changed."""
    out = bgr.copy()
    height, width = bgr.shape[:2]
    for box in boxes:
        left, top, right, bottom = grown(box, REDACTION_MARGIN, width, height)
        if right - left < 1 or bottom - top < 1:
            continue
        region = out[top:bottom, left:right]
        blurred = obscure(region)
        if keep is not None:
            # Margin pixels inside the searched face's box keep their values; the bystander's
            # own box is obscured even where the two overlap (privacy first), unless the whole
            # searched box is kept.
            mask = np.zeros(region.shape[:2], dtype=bool)
            kl, kt, kr, kb = grown(keep, 0.0, width, height)
            mask[max(0, kt - top) : max(0, kb - top), max(0, kl - left) : max(0, kr - left)] = True
            if not keep_whole:
                bl, bt, br, bb = grown(box, 0.0, width, height)
                rows = slice(max(0, bt - top), max(0, bb - top))
                mask[rows, max(0, bl - left) : max(0, br - left)] = False
            blurred[mask] = region[mask]
        out[top:bottom, left:right] = blurred
    return out


def redacted_image(bgr: np.ndarray, redaction: ProbeRedaction) -> np.ndarray:
    """The probe image as the report shows it."""
    return apply_redaction(
        bgr, [b.box for b in redaction.boxes if b.redacted], keep=redaction.searched_box
    )


def redacted_original(original: np.ndarray, redaction: ProbeRedaction) -> np.ndarray:
    """The original probe image (file or video frame) as the report shows it."""
    return redacted_image(original, redaction)


def redacted_searched(searched: np.ndarray, redaction: ProbeRedaction) -> np.ndarray:
    """The pixels the face was searched on as the report shows them: the original redacted,
    or an enhanced search's working copy (made again from the UNREDACTED original, so the
    searched face is exactly what was searched) with every redacted box carried into it; the
    searched face's box there is never changed."""
    if redaction.geometry is None:
        return redacted_image(searched, redaction)
    return apply_redaction(
        searched, redaction.working_boxes(), keep=redaction.searched_box_working, keep_whole=True
    )


def plan_case_redactions(
    records: Iterable[SearchRecord],
    marks_of: Mapping[int, Sequence[RedactionMark]],
    detector: Any = None,
) -> dict[int, ProbeRedaction]:
    """The redaction of every search's probe (the bundle lists them, the report applies them)."""
    plans: dict[int, ProbeRedaction] = {}
    for record in records:
        bgr, digest, problem = probe_pixels(record)
        plans[record.search_id] = plan_redaction(
            record, bgr, digest, marks_of.get(record.search_id, ()), problem, detector
        )
    return plans


__all__ = [
    "PIXEL_BLOCKS",
    "REDACTION_MARGIN",
    "REDACTION_SCORE_THRESHOLD",
    "ProbeRedaction",
    "RedactionBox",
    "apply_redaction",
    "detect_faces_for_redaction",
    "image_ref",
    "obscure",
    "plan_case_redactions",
    "plan_redaction",
    "probe_pixels",
    "redacted_image",
    "redacted_original",
    "redacted_searched",
    "redaction_detector",
    "search_redaction",
]
