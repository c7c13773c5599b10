"""The gallery manager's item models: the paged subject list and a subject's faces, each row
with its face thumbnail (from `FaceThumbnailCache`, looked up only when the row is painted).

Their reads run on the app's worker pool and are recorded as consultation (`gallery.reads`)
against the open case before they show: one event per page of the list, never per thumbnail or
scroll step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap

from workstation.gallery.reads import Read, id_list, record_read_once
from workstation.gallery.store import Gallery
from workstation.gallery.subject_reads import FaceRecord, SubjectInfo
from workstation.gui.context import AppContext, CaseInfo
from workstation.gui.face_thumbnails import FaceThumbnailCache, ThumbKey
from workstation.gui.imaging import verdict_color
from workstation.gui.text import tooltip
from workstation.progress import CancelToken

_Index = QModelIndex | QPersistentModelIndex
PAGE_SIZE = 200  # subjects per page of the list: one indexed query, a few ms at 300k subjects


@dataclass(frozen=True)
class SubjectRow:
    subject: SubjectInfo  # with first_face_id (the thumbnail), from Gallery.subject_page

    @property
    def face_id(self) -> int | None:
        return self.subject.first_face_id


@dataclass(frozen=True)
class FaceRow:
    face: FaceRecord
    image_path: Path


def _record_page(
    gallery: Gallery,
    context: AppContext,
    case: CaseInfo,
    query: str | None,
    offset: int,
    page: list[SubjectInfo],
) -> None:
    """Record a page of the subject list as read (once: a reload showing the same subjects for
    the same case within minutes is not recorded again). The typed query is not recorded (it
    may be a name); the ids shown are."""
    ids = [s.id for s in page]
    record_read_once(
        gallery,
        context.reads,
        Read.SUBJECT_LIST,
        {"filtered": bool(query), "offset": offset, "subjects": id_list(ids)},
        case.case_id,
        case.purpose,
        what=(query, offset, tuple(ids)),
    )


def _quality_line(face: FaceRecord) -> str:
    q = face.quality
    line = f"quality {q.get('verdict', '?')}"
    if q.get("inter_eye_px") is not None:
        line += f", eyes {q['inter_eye_px']:.0f} px apart"
    return line


def face_tooltip(face: FaceRecord) -> str:
    q = face.quality
    lines = [
        f"Face {face.id} of subject {face.subject_id}",
        f"Photo: {face.original_path}",
        f"SHA-256: {face.image_sha256}",
        f"Box (x, y, w, h): {', '.join(f'{v:.0f}' for v in face.box)}",
        f"Chosen by: {face.source}{'' if face.aligned else ' (not aligned)'}",
        f"Quality: {q.get('verdict', '?')}",
    ]
    for label, key, unit in (
        ("Detector score", "detector_score", ""),
        ("Inter-eye distance", "inter_eye_px", " px"),
        ("Sharpness", "sharpness", ""),
        ("Yaw", "yaw_deg", "°"),
        ("Pitch", "pitch_deg", "°"),
    ):
        if q.get(key) is not None:
            lines.append(f"{label}: {q[key]:.2f}{unit}")
    lines.extend(f"  - {reason}" for reason in q.get("reasons", []))
    return "\n".join(lines)


class _ThumbnailListModel(QAbstractListModel):
    """Shared part of the two list models: rows with a face thumbnail from the cache."""

    def __init__(self, thumbnails: FaceThumbnailCache, parent: Any = None) -> None:
        super().__init__(parent)
        self._thumbnails = thumbnails
        self._rows: list[Any] = []
        self._row_of_face: dict[int, int] = {}  # face id -> row, to repaint arrived thumbnails
        thumbnails.thumbnails_ready.connect(self._on_thumbnails_ready)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt signature)
        return 0 if parent.isValid() else len(self._rows)

    def set_rows(self, rows: list[Any]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self._row_of_face.clear()
        self._index_faces(0)
        self.endResetModel()

    def rows(self) -> list[Any]:
        return list(self._rows)

    def _append_rows(self, rows: list[Any]) -> None:
        if not rows:
            return
        start = len(self._rows)
        self.beginInsertRows(QModelIndex(), start, start + len(rows) - 1)
        self._rows.extend(rows)
        self._index_faces(start)
        self.endInsertRows()

    def _index_faces(self, start: int) -> None:
        for row in range(start, len(self._rows)):
            face_id = self._face_id_at(row)
            if face_id is not None:
                self._row_of_face[face_id] = row

    def _face_id_at(self, row: int) -> int | None:
        raise NotImplementedError

    def _thumbnail(self, row: int) -> QPixmap | None:
        raise NotImplementedError

    def _decoration(self, row: int) -> Any:
        pixmap = self._thumbnail(row)
        # An icon, not a pixmap: views scale icons to their icon size, pixmaps they do not.
        return None if pixmap is None else QIcon(pixmap)

    def _on_thumbnails_ready(self, keys: list[ThumbKey]) -> None:
        rows = [self._row_of_face[k[0]] for k in keys if k[0] in self._row_of_face]
        if rows:
            # One signal for the batch (they are usually the rows on screen, side by side).
            first, last = self.index(min(rows), 0), self.index(max(rows), 0)
            self.dataChanged.emit(first, last, [Qt.ItemDataRole.DecorationRole])


class SubjectListModel(_ThumbnailListModel):
    """Subjects of the gallery matching a search, each with the thumbnail of its first face.

    With a context, `load(query)` reads the first page on a worker and views ask for the next
    pages as they scroll (`canFetchMore`/`fetchMore`); each page arrives from a worker and is
    appended. Answers to an older `load` are dropped. Without a context the model shows what
    `set_rows` gives it.
    """

    SubjectRole = Qt.ItemDataRole.UserRole + 1
    SubjectIdRole = Qt.ItemDataRole.UserRole + 2

    loaded = Signal()  # the first page of a `load` is in, with the totals
    load_failed = Signal(str)
    case_needed = Signal()  # a load was asked for with no case open: nothing is read

    def __init__(
        self,
        thumbnails: FaceThumbnailCache,
        parent: Any = None,
        context: AppContext | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        super().__init__(thumbnails, parent)
        self._context = context
        self.page_size = page_size
        self.query: str | None = None
        self.total = 0  # subjects matching the query
        self.gallery_total = 0  # subjects in the gallery
        self._seq = 0  # bumped by every load: answers carrying an older number are stale
        self._busy = False  # a load or a page is on its way (one at a time)

    @property
    def loading(self) -> bool:
        return self._busy

    def load(self, query: str | None, rows: int = 0) -> None:
        """Show the subjects matching `query`: the first page, or the first `rows` if more."""
        if self._context is None:
            raise RuntimeError("SubjectListModel.load needs a context")
        self._seq += 1
        seq, context, limit = self._seq, self._context, max(self.page_size, rows)
        case = context.case
        if case is None:
            self._busy = False
            self.query, self.total, self.gallery_total = query, 0, 0
            self.set_rows([])
            self.case_needed.emit()
            return
        self._busy = True

        def work(_cancel: CancelToken) -> tuple[int, str | None, list[SubjectRow], int, int]:
            with context.open_gallery() as gallery:
                # One read snapshot, so that the page and both counts agree.
                with gallery.read_snapshot():
                    page = gallery.subject_page(query, 0, limit)
                    everyone = gallery.subject_count()
                    matching = gallery.subject_total(query) if query else everyone
                _record_page(gallery, context, case, query, 0, page)
            return seq, query, [SubjectRow(s) for s in page], matching, everyone

        context.pool.start(
            work, owner=self, on_result=self._on_loaded, on_error=self._make_on_error(seq)
        )

    def _on_loaded(self, loaded: tuple[int, str | None, list[SubjectRow], int, int]) -> None:
        seq, query, rows, matching, everyone = loaded
        if seq != self._seq:
            return
        self.query, self.gallery_total = query, everyone
        self.total = max(matching, len(rows))
        self.set_rows(rows)
        # Not busy only now: a view may ask for more while the reset is being announced.
        self._busy = False
        self.loaded.emit()

    def canFetchMore(self, parent: _Index) -> bool:
        return (
            not parent.isValid()
            and self._context is not None
            and not self._busy
            and len(self._rows) < self.total
        )

    def fetchMore(self, parent: _Index) -> None:
        if not self.canFetchMore(parent):
            return
        assert self._context is not None
        seq, context, query = self._seq, self._context, self.query
        offset, limit = len(self._rows), self.page_size
        case = context.case
        if case is None:  # the case was closed: the list was cleared with it
            return
        self._busy = True

        def work(_cancel: CancelToken) -> tuple[int, int, list[SubjectRow]]:
            with context.open_gallery() as gallery:
                page = gallery.subject_page(query, offset, limit)
                _record_page(gallery, context, case, query, offset, page)
            return seq, offset, [SubjectRow(s) for s in page]

        context.pool.start(
            work, owner=self, on_result=self._on_page, on_error=self._make_on_error(seq)
        )

    def _on_page(self, loaded: tuple[int, int, list[SubjectRow]]) -> None:
        seq, offset, rows = loaded
        if seq != self._seq:
            return  # a page of an older search; the newer load is still busy
        if offset == len(self._rows):
            if len(rows) < self.page_size:
                # Fewer than asked: the end (subjects may have been deleted since the count).
                self.total = offset + len(rows)
            self._append_rows(rows)
        # Not busy only now: a view may ask for more while the insertion is being announced.
        self._busy = False

    def _make_on_error(self, seq: int) -> Any:
        def on_error(message: str) -> None:
            if seq == self._seq:
                self._busy = False
                self.load_failed.emit(message)

        return on_error

    def _face_id_at(self, row: int) -> int | None:
        item: SubjectRow = self._rows[row]
        return item.face_id

    def _thumbnail(self, row: int) -> QPixmap | None:
        face_id = self._face_id_at(row)
        return None if face_id is None else self._thumbnails.pixmap_of_face_id(face_id)

    def row_of(self, subject_id: str) -> int:
        for row, item in enumerate(self._rows):
            if item.subject.id == subject_id:
                return row
        return -1

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        item: SubjectRow = self._rows[index.row()]
        subject = item.subject
        if role == Qt.ItemDataRole.DisplayRole:
            title = f"{subject.id} — {subject.name}" if subject.name else subject.id
            faces = f"{subject.face_count} face{'s' if subject.face_count != 1 else ''}"
            return f"{title}\n{faces}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(
                f"Subject {subject.id}\nenrolled {subject.created_at[:19].replace('T', ' ')}"
            )
        if role == Qt.ItemDataRole.DecorationRole:
            return self._decoration(index.row())
        if role == self.SubjectRole:
            return subject
        if role == self.SubjectIdRole:
            return subject.id
        return None


class SubjectFacesModel(_ThumbnailListModel):
    """All faces of one subject, with their quality."""

    FaceRole = Qt.ItemDataRole.UserRole + 1
    FaceIdRole = Qt.ItemDataRole.UserRole + 2

    def _face_id_at(self, row: int) -> int | None:
        item: FaceRow = self._rows[row]
        return item.face.id

    def _thumbnail(self, row: int) -> QPixmap | None:
        item: FaceRow = self._rows[row]
        return self._thumbnails.pixmap(item.face, item.image_path)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        item: FaceRow = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"face {item.face.id}\n{_quality_line(item.face).replace(', ', chr(10))}"
        if role == Qt.ItemDataRole.ToolTipRole:
            problem = self._thumbnails.failure(item.face)
            return tooltip(face_tooltip(item.face) + (f"\n\n{problem}" if problem else ""))
        if role == Qt.ItemDataRole.DecorationRole:
            return self._decoration(index.row())
        if role == Qt.ItemDataRole.ForegroundRole:
            verdict = item.face.quality.get("verdict")
            return verdict_color(verdict) if verdict in ("warn", "poor") else None
        if role == self.FaceRole:
            return item.face
        if role == self.FaceIdRole:
            return item.face.id
        return None
