"""Gallery manager: enrol photos, browse subjects with thumbnails, see their faces, delete.

Every read of the gallery runs on a worker (each opens its own SQLite connection); results come
back as plain core objects and fill thin item models. The subject list is paged: a gallery can
hold hundreds of thousands of subjects, so the list loads a page at a time as the view scrolls
(`canFetchMore`/`fetchMore`), filtered in SQL, and a thumbnail's face is looked up only when its
row is painted (the models: `gui/subject_models.py`). Deleting a subject asks for a reason, which
the core writes to the audit log in the same transaction as the deletion.

Browsing is consultation: each page of the list and each subject's photos are recorded (one
audit event each, `gallery.reads`) against the open case before they show, never per
thumbnail or scroll step; without a case the list stays empty and says how to set one.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QSize, Qt, QTimer
from PySide6.QtGui import QShowEvent
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
from workstation.gallery.subject_reads import SubjectInfo
from workstation.gui.context import AppContext, CaseInfo
from workstation.gui.enrol_panel import EnrolWidget
from workstation.gui.face_thumbnails import FaceThumbnailCache
from workstation.gui.reason_dialog import ReasonRequiredDialog
from workstation.gui.retention_dialog import RetentionDialog
from workstation.gui.subject_models import (
    FaceRow,
    SubjectFacesModel,
    SubjectListModel,
    face_tooltip,
)
from workstation.gui.text import escaped, make_plain
from workstation.progress import CancelToken

SEARCH_DELAY_MS = 150  # typing pauses shorter than this do not each start a query
# When the gallery changes, the list reloads as many rows as were shown (so the examiner keeps
# their place and selection), but never more than this: a reset of 2,000 rows is a few ms.
RELOAD_ROWS_MAX = 2_000


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
            (face_tooltip(face) + (f"\n\n{problem}" if problem else "")) if face else ""
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
