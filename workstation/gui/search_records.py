"""What the GUI adds to a case's recorded searches: gallery-face thumbnails (QImage, made on a
worker thread) and the score-independent order of blind review.

The searches themselves are `workstation.gallery.records.SearchRecord`s, read by the core
(`Gallery.case_search_records`); their words come from `workstation.reports.columns`.
"""

from __future__ import annotations

import hashlib

from PySide6.QtGui import QImage

from workstation.domain import BBox, Candidate
from workstation.errors import ImageError
from workstation.gallery.records import SearchRecord
from workstation.gallery.store import Gallery
from workstation.gui.imaging import bgr_to_qimage

THUMB_SIDE = 56


def load_case_searches(gallery: Gallery, case_id: str) -> list[SearchRecord]:
    """Every search of a case, oldest first, with its decisions (run on a worker)."""
    return gallery.case_search_records(case_id)


def blind_order_key(search_id: int, subject_id: str) -> str:
    """A fixed, score-independent order for blind review."""
    return hashlib.sha256(f"{search_id}:{subject_id}".encode()).hexdigest()


def load_thumbnails(gallery: Gallery, candidates: tuple[Candidate, ...]) -> dict[int, QImage]:
    """Aligned gallery-face thumbnails by face id (worker side)."""
    from workstation.vision.alignment import align_face, crop_box
    from workstation.vision.cvcompat import cv2_module
    from workstation.vision.images import load_image

    cv2 = cv2_module()
    thumbs: dict[int, QImage] = {}
    for candidate in candidates:
        record = gallery.face(candidate.face_id)
        if record is None:
            continue
        try:
            bgr = load_image(gallery.image_file(record)).bgr
        except ImageError:
            continue
        if record.landmarks:
            crop = align_face(bgr, tuple((x, y) for x, y in record.landmarks))
        else:
            crop = crop_box(bgr, BBox(*record.box))
        crop = cv2.resize(crop, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA)
        thumbs[candidate.face_id] = bgr_to_qimage(crop)
    return thumbs
