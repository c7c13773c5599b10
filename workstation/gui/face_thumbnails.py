"""Face thumbnails for item views, made off the GUI thread and cached.

A view asks `FaceThumbnailCache.pixmap(face)`, or `pixmap_of_face_id(face_id)` when it holds
only the face's id (a long subject list does not load a face record per row); a miss schedules
the face, and all faces asked for in one event-loop turn are looked up and cropped together by
one worker (photos are decoded with the core's safe loader, each photo once per batch). When
they arrive `thumbnails_ready` is emitted with their keys and models repaint. Only
`QImage`/`QPixmap` conversion happens on the GUI thread; lookups, decoding and cropping never do.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QPixmap

from workstation.domain import BBox
from workstation.errors import WorkstationError
from workstation.gallery.photos import ALTERED, load_verified_photo
from workstation.gallery.subject_reads import FaceRecord
from workstation.gui.context import AppContext
from workstation.gui.imaging import bgr_to_qimage
from workstation.progress import CancelToken
from workstation.vision.alignment import crop_box

ThumbKey = tuple[int, str]  # (face id, photo SHA-256): the photo is checked against the hash
THUMB_SIZE = 96
# The detector's box is tight around the face; a little context helps a reviewer recognise it.
MARGIN = 1.35


def thumb_key(face: FaceRecord) -> ThumbKey:
    return (face.id, face.image_sha256)


@dataclass(frozen=True)
class _Batch:
    """What one worker made: face ids looked up (or why not), and crops (or why not)."""

    generation: int
    resolved: dict[int, tuple[ThumbKey, Path, list[float]] | str]
    made: dict[ThumbKey, np.ndarray | str]


def face_crop(
    key: ThumbKey, image_path: Path, box: list[float], size: int = THUMB_SIZE
) -> np.ndarray:
    """A square BGR crop around a face box, with some margin; runs on any thread.

    The photo is checked against the face's recorded SHA-256 first (StoredPhotoError when it
    was altered or replaced: the thumbnail then says so instead of showing it).
    """
    face_id, sha256 = key
    image = load_verified_photo(image_path, sha256, face_id)
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


def _look_up_faces(
    context: AppContext,
    face_ids: list[int],
    resolved: dict[int, tuple[ThumbKey, Path, list[float]] | str],
    cancel: CancelToken,
) -> None:
    """Resolve face ids to (key, photo, box), one indexed lookup each, on a worker thread."""
    with context.open_gallery() as gallery:
        for face_id in face_ids:
            if cancel.cancelled:
                return
            face = gallery.face(face_id)
            if face is None:
                resolved[face_id] = f"face {face_id} is no longer in the gallery"
            else:
                resolved[face_id] = (thumb_key(face), gallery.image_file(face), list(face.box))


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
        # Faces known only by id: what the id resolved to (key, photo, box) or why it did not.
        # Face ids can be reused after a delete, so these are forgotten when the gallery changes.
        self._resolved: dict[int, tuple[ThumbKey, Path, list[float]]] = {}
        self._unresolved: dict[int, str] = {}
        self._pending_ids: set[int] = set()
        self._ids_in_flight: set[int] = set()
        self._generation = 0
        self._loading = placeholder_pixmap(size)
        self._broken = placeholder_pixmap(size, "no photo")
        self._altered = placeholder_pixmap(size, "ALTERED")
        context.gallery_changed.connect(self.forget_face_ids)

    def pixmap(self, face: FaceRecord, image_path: Path) -> QPixmap:
        """The thumbnail if cached; otherwise a placeholder, and the face is scheduled."""
        return self._cached_or_scheduled(thumb_key(face), image_path, list(face.box))

    def _cached_or_scheduled(self, key: ThumbKey, image_path: Path, box: list[float]) -> QPixmap:
        """The cached thumbnail, or a placeholder while the crop is (re)made on a worker."""
        cached = self._pixmaps.get(key)
        if cached is not None:
            self._pixmaps.move_to_end(key)
            return cached
        if key in self._failed:
            return self._altered if ALTERED in self._failed[key] else self._broken
        if key not in self._in_flight and key not in self._pending:
            self._schedule()
            self._pending[key] = (image_path, box)
        return self._loading

    def pixmap_of_face_id(self, face_id: int) -> QPixmap:
        """Like `pixmap`, for a face known by id only: the worker looks the face up first."""
        resolved = self._resolved.get(face_id)
        if resolved is not None:
            key, path, box = resolved
            # Made before and perhaps dropped from the cache since: then it is cropped again.
            return self._cached_or_scheduled(key, path, box)
        if face_id in self._unresolved:
            return self._broken
        if face_id not in self._ids_in_flight and face_id not in self._pending_ids:
            self._schedule()
            self._pending_ids.add(face_id)
        return self._loading

    def forget_face_ids(self) -> None:
        """Drop what face ids resolved to (the gallery changed, and face ids can be reused)."""
        self._generation += 1
        self._resolved.clear()
        self._unresolved.clear()

    def _schedule(self) -> None:
        if not self._pending and not self._pending_ids:
            # Bound to self: a batch due after this cache is gone is dropped, not delivered.
            QTimer.singleShot(0, self, self._on_batch_due)

    def failure(self, face: FaceRecord) -> str | None:
        """Why a face's thumbnail could not be made (None if it could, or is still loading)."""
        return self._failed.get(thumb_key(face))

    def has(self, face: FaceRecord) -> bool:
        return thumb_key(face) in self._pixmaps

    def has_face_id(self, face_id: int) -> bool:
        """True when the thumbnail of the face with this id is cached."""
        resolved = self._resolved.get(face_id)
        return resolved is not None and resolved[0] in self._pixmaps

    @property
    def busy(self) -> bool:
        return bool(self._pending or self._in_flight or self._pending_ids or self._ids_in_flight)

    def _on_batch_due(self) -> None:
        batch = dict(self._pending)
        face_ids = sorted(self._pending_ids)
        self._pending.clear()
        self._pending_ids.clear()
        if not batch and not face_ids:
            return
        self._in_flight.update(batch)
        self._ids_in_flight.update(face_ids)
        size, context, generation = self.size, self._context, self._generation

        def work(cancel: CancelToken) -> _Batch:
            made: dict[ThumbKey, np.ndarray | str] = {}
            resolved: dict[int, tuple[ThumbKey, Path, list[float]] | str] = {}
            to_crop = dict(batch)
            if face_ids:
                try:
                    _look_up_faces(context, face_ids, resolved, cancel)
                except WorkstationError as exc:  # the gallery cannot be read: say so per face
                    resolved.update((face_id, str(exc)) for face_id in face_ids)
                for outcome in resolved.values():
                    if not isinstance(outcome, str):
                        to_crop.setdefault(outcome[0], (outcome[1], outcome[2]))
            for key, (path, box) in to_crop.items():
                if cancel.cancelled:
                    break
                try:
                    made[key] = face_crop(key, path, box, size)
                except WorkstationError as exc:
                    made[key] = str(exc)
                except Exception as exc:  # one bad photo must not lose the whole batch
                    made[key] = f"{path}: cannot make a thumbnail ({exc})"
            return _Batch(generation, resolved, made)

        def on_finished() -> None:
            self._in_flight.difference_update(batch)
            self._ids_in_flight.difference_update(face_ids)

        self._context.pool.start(
            work, owner=self, on_result=self._on_batch_made, on_finished=on_finished
        )

    def _on_batch_made(self, batch: _Batch) -> None:
        made = batch.made
        ready: list[ThumbKey] = list(made)
        for face_id, outcome in batch.resolved.items():
            self._ids_in_flight.discard(face_id)
            if batch.generation != self._generation:
                continue  # resolved before the gallery changed: the id may mean another face now
            if isinstance(outcome, str):
                self._unresolved[face_id] = outcome
                ready.append((face_id, ""))
            else:
                self._resolved[face_id] = outcome
        for key, value in made.items():
            if isinstance(value, str):
                self._failed[key] = value
            else:
                self._pixmaps[key] = QPixmap.fromImage(bgr_to_qimage(value))
        while len(self._pixmaps) > self._capacity:
            self._pixmaps.popitem(last=False)
        self._in_flight.difference_update(made)
        self.thumbnails_ready.emit(ready)
