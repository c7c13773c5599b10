"""Gallery manager: enrol photos, browse subjects with thumbnails, see their faces, delete.

Every read of the gallery runs on a worker (each opens its own SQLite connection); results come
back as plain core objects and fill thin item models. The subject list is paged: a gallery can
hold hundreds of thousands of subjects, so the list loads a page at a time as the view scrolls
(`canFetchMore`/`fetchMore`), filtered in SQL, and a thumbnail's face is looked up only when its
row is painted. Deleting a subject asks for a reason, which
the core writes to the audit log in the same transaction as the deletion.

Browsing is consultation: each page of the list and each subject's photos are recorded (one
audit event each, `gallery.reads`) against the open case before they show, never per
thumbnail or scroll step; without a case the list stays empty and says how to set one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QIcon, QPixmap, QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workstation.audit.roles import Role
from workstation.gallery.admin import delete_subject
from workstation.gallery.reads import Read, id_list, record_read_once
from workstation.gallery.store import Gallery
from workstation.gallery.subject_reads import FaceRecord, SubjectInfo
from workstation.gui.context import AppContext, CaseInfo
from workstation.gui.enrol_panel import EnrolWidget
from workstation.gui.face_thumbnails import FaceThumbnailCache, ThumbKey
from workstation.gui.imaging import verdict_color
from workstation.gui.reason_dialog import ReasonRequiredDialog
from workstation.gui.retention_dialog import RetentionDialog
from workstation.gui.text import escaped, make_plain, tooltip
from workstation.progress import CancelToken

_Index = QModelIndex | QPersistentModelIndex
SEARCH_DELAY_MS = 150  # typing pauses shorter than this do not each start a query
PAGE_SIZE = 200  # subjects per page of the list: one indexed query, a few ms at 300k subjects
# When the gallery changes, the list reloads as many rows as were shown (so the examiner keeps
# their place and selection), but never more than this: a reset of 2,000 rows is a few ms.
RELOAD_ROWS_MAX = 2_000


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


def _face_tooltip(face: FaceRecord) -> str:
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
            return tooltip(_face_tooltip(item.face) + (f"\n\n{problem}" if problem else ""))
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


class DeleteSubjectDialog(ReasonRequiredDialog):
    """Confirms a deletion and asks why; OK stays disabled until a reason is written."""

    def __init__(self, subject: SubjectInfo, parent: QWidget | None = None) -> None:
        super().__init__(
            f"Delete subject {subject.id}",
            "Delete",
            "Reason (required), e.g. enrolled under the wrong subject ID; retention period ended",
            parent,
        )
        self.setMinimumWidth(460)
        self.subject = subject
        name = f" ({escaped(subject.name)})" if subject.name else ""
        warning = QLabel(
            f"Delete subject <b>{escaped(subject.id)}</b>{name} and its {subject.face_count} "
            "face(s) from the gallery?<br>Their stored photos are removed too. The deletion and "
            "your reason are kept in the audit log."
        )
        warning.setTextFormat(Qt.TextFormat.RichText)
        warning.setWordWrap(True)
        self.body.addWidget(warning)


class GalleryManagerWidget(QWidget):
    """Enrolment on the left, subjects in the middle, the chosen subject's faces on the right."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._context = context
        self._faces_seq = 0
        self._selected_id: str | None = None
        self.delete_dialog: DeleteSubjectDialog | None = None
        self.thumbnails = FaceThumbnailCache(context, parent=self)

        self.enrol_widget = EnrolWidget(context)

        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search subject ID or name…")
        self.search_edit.setClearButtonEnabled(True)
        self.count_label = QLabel("")
        # Shown when no case is open: browsing is recorded against one.
        self.case_button = QPushButton("Set case…")
        self.case_button.setToolTip(
            "Browsing the gallery is recorded against a case number and a purpose (Ctrl+K)"
        )
        self.case_button.hide()
        self.subjects_model = SubjectListModel(self.thumbnails, self, context=context)
        self.subjects_view = QListView()
        self.subjects_view.setModel(self.subjects_model)
        self.subjects_view.setIconSize(QSize(56, 56))
        self.subjects_view.setUniformItemSizes(True)
        self.subjects_view.setSpacing(2)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)

        self.subject_title = QLabel("No subject selected")
        self.subject_title.setWordWrap(True)
        self.subject_title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.faces_model = SubjectFacesModel(self.thumbnails, self)
        self.faces_view = QListView()
        self.faces_view.setModel(self.faces_model)
        self.faces_view.setViewMode(QListView.ViewMode.IconMode)
        self.faces_view.setIconSize(QSize(96, 96))
        self.faces_view.setGridSize(QSize(140, 150))
        self.faces_view.setResizeMode(QListView.ResizeMode.Adjust)
        self.faces_view.setMovement(QListView.Movement.Static)
        self.faces_view.setWordWrap(True)
        self.face_details = QLabel("")
        self.face_details.setWordWrap(True)
        self.face_details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.face_details.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.delete_button = QPushButton("Delete subject…")
        self.delete_button.setEnabled(False)
        self.retention_button = QPushButton("Retention…")
        self.retention_dialog: RetentionDialog | None = None
        self.message_label = QLabel("")
        self.message_label.setWordWrap(True)
        make_plain(self.count_label, self.face_details, self.message_label)
        # A bold subject id over its details: rich text, every stored value escaped.
        self.subject_title.setTextFormat(Qt.TextFormat.RichText)

        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(0, 0, 0, 0)
        middle_layout.addWidget(self.search_edit)
        middle_layout.addWidget(self.subjects_view, 1)
        count_row = QHBoxLayout()
        count_row.addWidget(self.count_label, 1)
        count_row.addWidget(self.retention_button)
        middle_layout.addLayout(count_row)
        middle_layout.addWidget(self.case_button)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        title_row = QHBoxLayout()
        title_row.addWidget(self.subject_title, 1)
        title_row.addWidget(self.delete_button, 0, Qt.AlignmentFlag.AlignTop)
        right_layout.addLayout(title_row)
        right_layout.addWidget(self.faces_view, 3)
        right_layout.addWidget(self.face_details, 1)
        right_layout.addWidget(self.message_label)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.enrol_widget)
        splitter.addWidget(middle)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 2)
        splitter.setStretchFactor(2, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

        self.search_edit.textChanged.connect(self._on_search_text_changed)
        self._search_timer.timeout.connect(self._reload_when_seen)
        self.subjects_model.loaded.connect(self._on_subjects_loaded)
        self.subjects_model.load_failed.connect(self._on_load_failed)
        self.subjects_model.case_needed.connect(self._on_case_needed)
        self.case_button.clicked.connect(context.ensure_case)
        context.case_changed.connect(self._on_case_changed)
        self.subjects_view.selectionModel().currentChanged.connect(self._on_subject_chosen)
        self.faces_view.selectionModel().currentChanged.connect(self._on_face_chosen)
        self.delete_button.clicked.connect(self._on_delete_clicked)
        self.retention_button.clicked.connect(self._on_retention_clicked)
        context.gallery_changed.connect(self._on_gallery_changed)
        context.identity_changed.connect(self._update_retention_button)
        self._update_retention_button()
        # The list is read (and the reading recorded) only when the tab is in view: a tab
        # behind another is not consulted, so changes meanwhile only mark it stale.
        self._stale = True

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale:
            self.reload_subjects(min(self.subjects_model.rowCount(), RELOAD_ROWS_MAX))

    # ------------------------------------------------------------------ loading
    @property
    def loading(self) -> bool:
        """True while subjects are being read (a search, a reload or the next page)."""
        return self.subjects_model.loading

    def reload_subjects(self, rows: int = 0) -> None:
        """Show the subjects matching the search box, from the first page (or `rows` rows)."""
        self._stale = False
        self.subjects_model.load(self.search_edit.text().strip() or None, rows)

    def _reload_when_seen(self, rows: int = 0) -> None:
        if self.isVisible():
            self.reload_subjects(rows)
        else:
            self._stale = True

    def _on_case_needed(self) -> None:
        self._show_subject(None)
        self.case_button.show()
        self.count_label.setText(
            "Set a case to browse the gallery: every consultation of its subjects is recorded "
            "against a case number and a purpose."
        )

    def _on_case_changed(self, _case: CaseInfo | None) -> None:
        # What was shown was read for the previous case: read (and record) again for this one.
        self._show_subject(None)
        self._reload_when_seen()

    def _on_subjects_loaded(self) -> None:
        self.case_button.hide()
        model = self.subjects_model
        self.count_label.setText(
            f"{model.total:,} of {model.gallery_total:,} subjects match “{model.query}”"
            if model.query
            else f"{model.gallery_total:,} subjects"
        )
        row = model.row_of(self._selected_id) if self._selected_id else -1
        if row >= 0:
            self.subjects_view.setCurrentIndex(model.index(row, 0))
        else:
            self._show_subject(None)

    def _on_load_failed(self, message: str) -> None:
        self._show_message(f"Cannot read the gallery: {message}", error=True)

    def _on_search_text_changed(self, _text: str) -> None:
        self._search_timer.start()

    def _on_gallery_changed(self) -> None:
        self._reload_when_seen(min(self.subjects_model.rowCount(), RELOAD_ROWS_MAX))

    # ------------------------------------------------------------------ detail
    def _on_subject_chosen(self, current: QModelIndex, _previous: QModelIndex) -> None:
        subject = current.data(SubjectListModel.SubjectRole) if current.isValid() else None
        self._show_subject(subject)

    def _show_subject(self, subject: SubjectInfo | None) -> None:
        self._faces_seq += 1
        self.face_details.setText("")
        if subject is None:
            self._selected_id = None
            self.subject_title.setText("No subject selected")
            self.faces_model.set_rows([])
            self.delete_button.setEnabled(False)
            return
        self._selected_id = subject.id
        self.delete_button.setEnabled(True)
        name = f" — {escaped(subject.name)}" if subject.name else ""
        attributes = escaped(", ".join(f"{k}: {v}" for k, v in sorted(subject.attributes.items())))
        self.subject_title.setText(
            f"<b>{escaped(subject.id)}</b>{name}<br>{subject.face_count} face(s), enrolled "
            f"{subject.created_at[:19].replace('T', ' ')} UTC"
            + (f"<br>{attributes}" if attributes else "")
        )
        seq, context, subject_id = self._faces_seq, self._context, subject.id
        case = context.case
        if case is None:
            self._on_case_needed()
            return

        def work(_cancel: CancelToken) -> tuple[int, list[FaceRow]]:
            with context.open_gallery() as gallery:
                faces = gallery.faces_of(subject_id)
                face_ids = [f.id for f in faces]
                # Recorded before the photos show (once per subject and case within minutes).
                record_read_once(
                    gallery,
                    context.reads,
                    Read.SUBJECT_PHOTOS,
                    {"subject_id": subject_id, "face_ids": id_list(face_ids)},
                    case.case_id,
                    case.purpose,
                    what=(subject_id, tuple(face_ids)),
                )
                return seq, [FaceRow(f, gallery.image_file(f)) for f in faces]

        context.pool.start(
            work, owner=self, on_result=self._on_faces_loaded, on_error=self._on_load_failed
        )

    def _on_faces_loaded(self, loaded: tuple[int, list[FaceRow]]) -> None:
        seq, rows = loaded
        if seq == self._faces_seq:
            self.faces_model.set_rows(rows)

    def _on_face_chosen(self, current: QModelIndex, _previous: QModelIndex) -> None:
        face = current.data(SubjectFacesModel.FaceRole) if current.isValid() else None
        problem = self.thumbnails.failure(face) if face else None  # e.g. an altered photo
        self.face_details.setText(
            (_face_tooltip(face) + (f"\n\n{problem}" if problem else "")) if face else ""
        )

    # ------------------------------------------------------------------ delete
    def _on_delete_clicked(self) -> None:
        current = self.subjects_view.currentIndex()
        subject = current.data(SubjectListModel.SubjectRole) if current.isValid() else None
        if subject is None:
            return
        self.delete_dialog = DeleteSubjectDialog(subject, self)
        self.delete_dialog.accepted.connect(self._on_delete_confirmed)
        self.delete_dialog.open()

    def _on_delete_confirmed(self) -> None:
        dialog = self.delete_dialog
        if dialog is None:
            return
        subject_id, reason, context = dialog.subject.id, dialog.reason, self._context
        self.delete_button.setEnabled(False)

        def work(_cancel: CancelToken) -> dict[str, Any]:
            with context.open_gallery() as gallery:
                return delete_subject(gallery, subject_id, reason)

        context.pool.start(
            work, owner=self, on_result=self._on_deleted, on_error=self._on_delete_failed
        )

    def _on_deleted(self, details: dict[str, Any]) -> None:
        text = (
            f"Subject {details['subject_id']} deleted ({len(details['face_ids'])} face(s)); "
            "the reason is in the audit log."
        )
        self._show_message(text)
        self._context.status_message.emit(text)
        self._context.gallery_changed.emit()
        self._context.audit_changed.emit()

    def _on_delete_failed(self, message: str) -> None:
        self.delete_button.setEnabled(self._selected_id is not None)
        self._show_message(f"The subject was not deleted: {message}", error=True)

    def _update_retention_button(self) -> None:
        """A retention purge is an administrator's act: an examiner registered without that
        role sees the button disabled, with the reason (the core refuses the act anyway)."""
        registration = self._context.registration
        if registration is None or Role.ADMINISTRATOR in registration.roles:
            self.retention_button.setEnabled(True)
            self.retention_button.setToolTip(
                "Delete every subject enrolled more than a number of days ago (listed first; "
                "one audited act with a reason)"
            )
            return
        self.retention_button.setEnabled(False)
        self.retention_button.setToolTip(
            f"A retention purge needs the administrator role; {registration.name} holds: "
            f"{registration.roles_text}"
        )

    def _on_retention_clicked(self) -> None:
        self.retention_dialog = RetentionDialog(self._context, self)
        self.retention_dialog.accepted.connect(self._on_retention_confirmed)
        self.retention_dialog.open()

    def _on_retention_confirmed(self) -> None:
        dialog = self.retention_dialog
        if dialog is None:
            return
        self.retention_button.setEnabled(False)
        dialog.run_purge(self._on_retention_done, self._on_retention_failed, owner=self)

    def _on_retention_done(self, details: dict[str, Any] | None) -> None:
        self._update_retention_button()
        gone = len(details["subject_ids"]) if details else 0
        text = (
            f"Retention: {gone} subject(s) deleted ({len(details['face_ids'])} face(s)); the ids "
            "and the reason are in the audit log."
            if details
            else "Retention: no subject is past the period any more; nothing was deleted."
        )
        self._show_message(text)
        self._context.status_message.emit(text)
        self._context.gallery_changed.emit()
        self._context.audit_changed.emit()

    def _on_retention_failed(self, message: str) -> None:
        self._update_retention_button()
        self._show_message(f"Retention: nothing was deleted: {message}", error=True)

    def _show_message(self, text: str, error: bool = False) -> None:
        self.message_label.setStyleSheet("color: #b00020;" if error else "color: #1b6e20;")
        self.message_label.setText(text)
