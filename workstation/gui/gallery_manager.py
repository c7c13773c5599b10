"""Gallery manager: enrol photos, browse subjects with thumbnails, see their faces, delete.

Every read of the gallery runs on a worker (each opens its own SQLite connection); results come
back as plain core objects and fill thin item models. Deleting a subject asks for a reason, which
the core writes to the audit log in the same transaction as the deletion.
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
)
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workstation.gallery.admin import delete_subject
from workstation.gallery.store import FaceRecord, SubjectInfo
from workstation.gui.context import AppContext
from workstation.gui.enrol_panel import EnrolWidget
from workstation.gui.face_thumbnails import FaceThumbnailCache, ThumbKey, thumb_key
from workstation.gui.imaging import verdict_color
from workstation.progress import CancelToken

_Index = QModelIndex | QPersistentModelIndex
SEARCH_DELAY_MS = 150  # typing pauses shorter than this do not each start a query


@dataclass(frozen=True)
class SubjectRow:
    subject: SubjectInfo
    face: FaceRecord | None  # the first face, for the thumbnail
    image_path: Path | None


@dataclass(frozen=True)
class FaceRow:
    face: FaceRecord
    image_path: Path


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
        thumbnails.thumbnails_ready.connect(self._on_thumbnails_ready)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt signature)
        return 0 if parent.isValid() else len(self._rows)

    def set_rows(self, rows: list[Any]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def rows(self) -> list[Any]:
        return list(self._rows)

    def _face_at(self, row: int) -> tuple[FaceRecord | None, Path | None]:
        raise NotImplementedError

    def _decoration(self, row: int) -> Any:
        face, path = self._face_at(row)
        if face is None or path is None:
            return None
        # An icon, not a pixmap: views scale icons to their icon size, pixmaps they do not.
        return QIcon(self._thumbnails.pixmap(face, path))

    def _on_thumbnails_ready(self, keys: list[ThumbKey]) -> None:
        wanted = set(keys)
        for row in range(len(self._rows)):
            face, _ = self._face_at(row)
            if face is not None and thumb_key(face) in wanted:
                index = self.index(row, 0)
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class SubjectListModel(_ThumbnailListModel):
    """Subjects of the gallery, each with the thumbnail of its first face."""

    SubjectRole = Qt.ItemDataRole.UserRole + 1
    SubjectIdRole = Qt.ItemDataRole.UserRole + 2

    def _face_at(self, row: int) -> tuple[FaceRecord | None, Path | None]:
        item: SubjectRow = self._rows[row]
        return item.face, item.image_path

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
            return f"Subject {subject.id}\nenrolled {subject.created_at[:19].replace('T', ' ')}"
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

    def _face_at(self, row: int) -> tuple[FaceRecord | None, Path | None]:
        item: FaceRow = self._rows[row]
        return item.face, item.image_path

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        item: FaceRow = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"face {item.face.id}\n{_quality_line(item.face).replace(', ', chr(10))}"
        if role == Qt.ItemDataRole.ToolTipRole:
            problem = self._thumbnails.failure(item.face)
            return _face_tooltip(item.face) + (f"\n\n{problem}" if problem else "")
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


class DeleteSubjectDialog(QDialog):
    """Confirms a deletion and asks why; OK stays disabled until a reason is written."""

    def __init__(self, subject: SubjectInfo, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Delete subject {subject.id}")
        self.setMinimumWidth(460)
        self.subject = subject
        name = f" ({subject.name})" if subject.name else ""
        warning = QLabel(
            f"Delete subject <b>{subject.id}</b>{name} and its {subject.face_count} face(s) "
            "from the gallery?<br>Their stored photos are removed too. The deletion and your "
            "reason are kept in the audit log."
        )
        warning.setWordWrap(True)
        self.reason_edit = QPlainTextEdit()
        self.reason_edit.setPlaceholderText(
            "Reason (required), e.g. enrolled under the wrong subject ID; retention period ended"
        )
        self.reason_edit.setMaximumHeight(90)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Delete")
        self.ok_button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addWidget(warning)
        layout.addWidget(self.reason_edit)
        layout.addWidget(self.buttons)
        self.reason_edit.textChanged.connect(self._on_reason_changed)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    @property
    def reason(self) -> str:
        return self.reason_edit.toPlainText().strip()

    def _on_reason_changed(self) -> None:
        self.ok_button.setEnabled(bool(self.reason))


class GalleryManagerWidget(QWidget):
    """Enrolment on the left, subjects in the middle, the chosen subject's faces on the right."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._context = context
        self._load_seq = 0
        self._faces_seq = 0
        self._selected_id: str | None = None
        self.loading = False
        self.delete_dialog: DeleteSubjectDialog | None = None
        self.thumbnails = FaceThumbnailCache(context, parent=self)

        self.enrol_widget = EnrolWidget(context)

        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search subject ID or name…")
        self.search_edit.setClearButtonEnabled(True)
        self.count_label = QLabel("")
        self.subjects_model = SubjectListModel(self.thumbnails, self)
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
        self.message_label = QLabel("")
        self.message_label.setWordWrap(True)

        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(0, 0, 0, 0)
        middle_layout.addWidget(self.search_edit)
        middle_layout.addWidget(self.subjects_view, 1)
        middle_layout.addWidget(self.count_label)
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
        self._search_timer.timeout.connect(self.reload_subjects)
        self.subjects_view.selectionModel().currentChanged.connect(self._on_subject_chosen)
        self.faces_view.selectionModel().currentChanged.connect(self._on_face_chosen)
        self.delete_button.clicked.connect(self._on_delete_clicked)
        context.gallery_changed.connect(self._on_gallery_changed)
        self.reload_subjects()

    # ------------------------------------------------------------------ loading
    def reload_subjects(self) -> None:
        """Query subjects matching the search box on a worker; stale answers are dropped."""
        self._load_seq += 1
        seq = self._load_seq
        query = self.search_edit.text().strip() or None
        context = self._context
        self.loading = True

        def work(cancel: CancelToken) -> tuple[int, list[SubjectRow], int]:
            rows: list[SubjectRow] = []
            with context.open_gallery() as gallery:
                for subject in gallery.subjects(query):
                    if cancel.cancelled:
                        break
                    faces = gallery.faces_of(subject.id)[:1]
                    face = faces[0] if faces else None
                    path = gallery.image_file(face) if face else None
                    rows.append(SubjectRow(subject, face, path))
                total = gallery.subject_count()
            return seq, rows, total

        context.pool.start(work, on_result=self._on_subjects_loaded, on_error=self._on_load_failed)

    def _on_subjects_loaded(self, loaded: tuple[int, list[SubjectRow], int]) -> None:
        seq, rows, total = loaded
        if seq != self._load_seq:
            return
        self.loading = False
        self.subjects_model.set_rows(rows)
        query = self.search_edit.text().strip()
        self.count_label.setText(
            f"{len(rows)} of {total} subjects match “{query}”" if query else f"{total} subjects"
        )
        row = self.subjects_model.row_of(self._selected_id) if self._selected_id else -1
        if row >= 0:
            self.subjects_view.setCurrentIndex(self.subjects_model.index(row, 0))
        else:
            self._show_subject(None)

    def _on_load_failed(self, message: str) -> None:
        self.loading = False
        self._show_message(f"Cannot read the gallery: {message}", error=True)

    def _on_search_text_changed(self, _text: str) -> None:
        self._search_timer.start()

    def _on_gallery_changed(self) -> None:
        self.reload_subjects()

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
        name = f" — {subject.name}" if subject.name else ""
        attributes = ", ".join(f"{k}: {v}" for k, v in sorted(subject.attributes.items()))
        self.subject_title.setText(
            f"<b>{subject.id}</b>{name}<br>{subject.face_count} face(s), enrolled "
            f"{subject.created_at[:19].replace('T', ' ')} UTC"
            + (f"<br>{attributes}" if attributes else "")
        )
        seq, context, subject_id = self._faces_seq, self._context, subject.id

        def work(_cancel: CancelToken) -> tuple[int, list[FaceRow]]:
            with context.open_gallery() as gallery:
                faces = gallery.faces_of(subject_id)
                return seq, [FaceRow(f, gallery.image_file(f)) for f in faces]

        context.pool.start(work, on_result=self._on_faces_loaded, on_error=self._on_load_failed)

    def _on_faces_loaded(self, loaded: tuple[int, list[FaceRow]]) -> None:
        seq, rows = loaded
        if seq == self._faces_seq:
            self.faces_model.set_rows(rows)

    def _on_face_chosen(self, current: QModelIndex, _previous: QModelIndex) -> None:
        face = current.data(SubjectFacesModel.FaceRole) if current.isValid() else None
        self.face_details.setText(_face_tooltip(face) if face else "")

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

        context.pool.start(work, on_result=self._on_deleted, on_error=self._on_delete_failed)

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

    def _show_message(self, text: str, error: bool = False) -> None:
        self.message_label.setStyleSheet("color: #b00020;" if error else "color: #1b6e20;")
        self.message_label.setText(text)
