"""Face thumbnails for item views, made off the GUI thread and cached.

A view asks `FaceThumbnailCache.pixmap(face)`; a miss schedules the face, and all faces asked
for in one event-loop turn are cropped together by one worker (photos are decoded with the
core's safe loader, each photo once per batch). When they arrive `thumbnails_ready` is emitted
with their keys and models repaint. Only `QImage`/`QPixmap` conversion happens on the GUI
thread; decoding and cropping never do.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QPixmap

from workstation.domain import BBox
from workstation.errors import WorkstationError
from workstation.gallery.store import FaceRecord
from workstation.gui.context import AppContext
from workstation.gui.imaging import bgr_to_qimage
from workstation.progress import CancelToken
from workstation.vision.alignment import crop_box
from workstation.vision.images import load_image

ThumbKey = tuple[int, str]  # (face id, photo SHA-256): face ids can be reused after a delete
THUMB_SIZE = 96
# The detector's box is tight around the face; a little context helps a reviewer recognise it.
MARGIN = 1.35


def thumb_key(face: FaceRecord) -> ThumbKey:
    return (face.id, face.image_sha256)


def face_crop(image_path: Path, box: list[float], size: int = THUMB_SIZE) -> np.ndarray:
    """A square BGR crop around a face box, with some margin; runs on any thread."""
    image = load_image(image_path)
    x, y, w, h = box
    side = max(w, h) * MARGIN
    cx, cy = x + w / 2, y + h / 2
    return crop_box(image.bgr, BBox(cx - side / 2, cy - side / 2, side, side), size=size)


def placeholder_pixmap(size: int = THUMB_SIZE, text: str = "") -> QPixmap:
    """A neutral grey square shown while a thumbnail loads or when its photo is unreadable."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QPainter

    pixmap = QPixmap(size, size)
    pixmap.fill(QColor("#d8d8d8"))
    if text:
        painter = QPainter(pixmap)
        painter.setPen(QColor("#606060"))
        painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, text)
        painter.end()
    return pixmap


class FaceThumbnailCache(QObject):
    """Least-recently-used cache of face thumbnails, filled by background workers."""

    thumbnails_ready = Signal(list)  # list[ThumbKey]

    def __init__(
        self,
        context: AppContext,
        size: int = THUMB_SIZE,
        capacity: int = 600,  # about 22 MB of 96 px thumbnails
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._context = context
        self.size = size
        self._capacity = capacity
        self._pixmaps: OrderedDict[ThumbKey, QPixmap] = OrderedDict()
        self._failed: dict[ThumbKey, str] = {}
        self._pending: dict[ThumbKey, tuple[Path, list[float]]] = {}
        self._in_flight: set[ThumbKey] = set()
        self._loading = placeholder_pixmap(size)
        self._broken = placeholder_pixmap(size, "no photo")

    def pixmap(self, face: FaceRecord, image_path: Path) -> QPixmap:
        """The thumbnail if cached; otherwise a placeholder, and the face is scheduled."""
        key = thumb_key(face)
        cached = self._pixmaps.get(key)
        if cached is not None:
            self._pixmaps.move_to_end(key)
            return cached
        if key in self._failed:
            return self._broken
        if key not in self._in_flight and key not in self._pending:
            if not self._pending:
                QTimer.singleShot(0, self._on_batch_due)
            self._pending[key] = (image_path, list(face.box))
        return self._loading

    def failure(self, face: FaceRecord) -> str | None:
        """Why a face's thumbnail could not be made (None if it could, or is still loading)."""
        return self._failed.get(thumb_key(face))

    def has(self, face: FaceRecord) -> bool:
        return thumb_key(face) in self._pixmaps

    @property
    def busy(self) -> bool:
        return bool(self._pending or self._in_flight)

    def _on_batch_due(self) -> None:
        batch = dict(self._pending)
        self._pending.clear()
        if not batch:
            return
        self._in_flight.update(batch)
        size = self.size

        def work(cancel: CancelToken) -> dict[ThumbKey, np.ndarray | str]:
            made: dict[ThumbKey, np.ndarray | str] = {}
            for key, (path, box) in batch.items():
                if cancel.cancelled:
                    break
                try:
                    made[key] = face_crop(path, box, size)
                except WorkstationError as exc:
                    made[key] = str(exc)
                except Exception as exc:  # one bad photo must not lose the whole batch
                    made[key] = f"{path}: cannot make a thumbnail ({exc})"
            return made

        self._context.pool.start(
            work,
            on_result=self._on_batch_made,
            on_finished=lambda: self._in_flight.difference_update(batch),
        )

    def _on_batch_made(self, made: dict[ThumbKey, np.ndarray | str]) -> None:
        for key, value in made.items():
            if isinstance(value, str):
                self._failed[key] = value
            else:
                self._pixmaps[key] = QPixmap.fromImage(bgr_to_qimage(value))
        while len(self._pixmaps) > self._capacity:
            self._pixmaps.popitem(last=False)
        self._in_flight.difference_update(made)
        self.thumbnails_ready.emit(list(made))
