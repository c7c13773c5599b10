"""What the GUI adds to a case's recorded searches: gallery-face thumbnails (QImage, made on a
worker thread) and the score-independent order of blind review.

The searches themselves are `workstation.gallery.records.SearchRecord`s, read by the core
(`Gallery.case_search_records`); their words come from `workstation.reports.columns`. Showing
them is a consultation of the case's records, recorded against the case (`read_case_searches`).
"""

from __future__ import annotations

import hashlib

from PySide6.QtGui import QImage

from workstation.domain import Candidate
from workstation.errors import ImageError
from workstation.gallery.reads import Read, ReadLedger, case_searches_consulted, record_read_once
from workstation.gallery.records import SearchRecord
from workstation.gallery.store import Gallery
from workstation.gui.imaging import bgr_to_qimage

THUMB_SIDE = 56


def load_case_searches(gallery: Gallery, case_id: str) -> list[SearchRecord]:
    """Every search of a case, oldest first, with its decisions (run on a worker)."""
    return gallery.case_search_records(case_id)


def read_case_searches(
    gallery: Gallery, ledger: ReadLedger, case_id: str, purpose: str
) -> list[SearchRecord]:
    """A case's searches as the Search tab shows them (worker side), the reading recorded
    before they show: one event naming the searches, their candidates' subjects and faces, the
    decisions and sheets, against the case and purpose; not again while the same searches are
    shown for the same case within minutes. A case with no search shows nothing: no event."""
    searches = load_case_searches(gallery, case_id)
    if searches:
        record_read_once(
            gallery,
            ledger,
            Read.CASE_SEARCHES,
            case_searches_consulted(case_id, searches),
            case_id,
            purpose,
            what=tuple(s.search_id for s in searches),
        )
    return searches


def blind_order_key(search_id: int, subject_id: str) -> str:
    """A fixed, score-independent order for blind review."""
    return hashlib.sha256(f"{search_id}:{subject_id}".encode()).hexdigest()


def _notice_image(text: str, side: int) -> QImage:
    """A pink square with a word on it, in place of a photo that must not be shown."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QPainter

    image = QImage(side, side, QImage.Format.Format_RGB32)
    image.fill(QColor("#f3d6d6"))
    painter = QPainter(image)
    painter.setPen(QColor("#8b0000"))
    painter.drawText(image.rect(), int(Qt.AlignmentFlag.AlignCenter), text)
    painter.end()
    return image


def load_thumbnails(gallery: Gallery, candidates: tuple[Candidate, ...]) -> dict[int, QImage]:
    """Aligned gallery-face thumbnails by face id (worker side)."""
    from workstation.vision.alignment import face_view
    from workstation.vision.cvcompat import cv2_module

    cv2 = cv2_module()
    thumbs: dict[int, QImage] = {}
    for candidate in candidates:
        record = gallery.face(candidate.face_id)
        if record is None:
            continue
        try:
            bgr = gallery.load_photo(record).bgr  # checked against its recorded SHA-256
        except ImageError as exc:
            if getattr(exc, "altered", False):
                # Said in words where the photo would be: never shown as the enrolled photo.
                thumbs[candidate.face_id] = _notice_image("ALTERED", THUMB_SIDE)
            continue
        crop = face_view(bgr, record.box, record.landmarks).bgr
        crop = cv2.resize(crop, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA)
        thumbs[candidate.face_id] = bgr_to_qimage(crop)
    return thumbs
