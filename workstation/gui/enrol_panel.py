"""Enrolment panel of the gallery manager: a folder or a CSV manifest into the gallery.

Enrolment runs on a worker (the core's `enroll` generator) with a progress bar and a Cancel
button. When it ends, a summary line and a table list every photo or manifest row that was not
enrolled, naming the file or row and the reason, so the examiner can fix and re-run it (photos
already enrolled are recognised by their SHA-256 and skipped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workstation.errors import WorkstationError
from workstation.gallery.enroll import (
    ENROLLED,
    FAILED,
    SKIPPED,
    EnrollItem,
    EnrollOutcome,
    EnrollReport,
    enroll,
    items_for_subject,
    read_manifest,
)
from workstation.gui.context import AppContext
from workstation.gui.table_base import RowsTableModel
from workstation.gui.tasks import TaskWidget
from workstation.gui.text import escaped, make_plain, tooltip
from workstation.progress import CancelToken, Progress, Work
from workstation.vision.images import is_image_path

MODE_ONE_SUBJECT, MODE_SUBFOLDERS, MODE_MANIFEST = 0, 1, 2

_Index = QModelIndex | QPersistentModelIndex


def plan_folder(
    folder: Path, subject_id: str | None, name: str | None = None
) -> tuple[list[EnrollItem], list[EnrollOutcome]]:
    """Photos to enrol from a folder, and the files that will not be (with why).

    With `subject_id`, every photo in the folder (recursively) belongs to that subject. Without
    it, each sub-folder's name is the subject of the photos inside it. Files that are not photos
    are listed as skipped rather than silently ignored, so the examiner sees what was left out.
    """
    if not folder.is_dir():
        raise WorkstationError(f"{folder}: folder not found")
    items: list[EnrollItem] = []
    left_out: list[EnrollOutcome] = []
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for path in files:
        if path.name.startswith("."):
            continue
        if not is_image_path(path):
            left_out.append(
                EnrollOutcome(
                    str(path),
                    str(path),
                    subject_id,
                    SKIPPED,
                    f"not a photo file type ({path.suffix or 'no extension'}); not enrolled",
                )
            )
    if subject_id:
        items = items_for_subject(subject_id, [folder], name)
        return items, left_out
    for path in files:
        if path.name.startswith(".") or not is_image_path(path):
            continue
        relative = path.relative_to(folder)
        if len(relative.parts) < 2:
            left_out.append(
                EnrollOutcome(
                    str(path),
                    str(path),
                    None,
                    FAILED,
                    "the photo is not inside a sub-folder, so its subject is unknown",
                )
            )
            continue
        subject = relative.parts[0].strip()
        items.append(EnrollItem(subject, path, str(path), None))
    return items, left_out


def _short_source(outcome: EnrollOutcome) -> str:
    """A manifest row as "people.csv line 4"; a file as its last two path parts."""
    if outcome.source != outcome.path:
        return outcome.source
    parts = Path(outcome.source).parts
    return "/".join(parts[-2:]) if len(parts) > 1 else outcome.source


class EnrolProblemsModel(RowsTableModel):
    """Read-only table of photos and manifest rows that were not enrolled."""

    COL_SOURCE, COL_STATUS, COL_SUBJECT, COL_REASON = range(4)
    NUMBERED_ROWS = True
    HEADERS = ("File or manifest row", "Result", "Subject", "Reason")
    OutcomeRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[EnrollOutcome] = []

    def set_outcomes(self, outcomes: list[EnrollOutcome]) -> None:
        self.set_rows(o for o in outcomes if o.status != ENROLLED)

    def outcomes(self) -> list[EnrollOutcome]:
        return self.rows()

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        outcome = self.row_at(index)
        if outcome is None:
            return None
        if role == self.OutcomeRole:
            return outcome
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(outcome, index.column(), full=False)
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(self._text(outcome, index.column(), full=True))
        return None

    def _text(self, outcome: EnrollOutcome, col: int, full: bool) -> str | None:
        if col == self.COL_SOURCE:
            if not full:
                return _short_source(outcome)
            if outcome.source != outcome.path and outcome.path:
                return f"{outcome.source}: {outcome.path}"
            return outcome.source
        if col == self.COL_SUBJECT:
            return outcome.subject_id or ""
        if col == self.COL_STATUS:
            return outcome.status
        if col == self.COL_REASON:
            return outcome.message
        return None


class EnrolWidget(QWidget):
    """Choose what to enrol, run it with progress and cancel, and show what failed and why."""

    enrolment_finished = Signal(object)  # EnrollReport (also sent when cancelled)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._context = context
        self.last_report: EnrollReport | None = None

        self.one_subject_radio = QRadioButton("Folder of one subject")
        self.subfolders_radio = QRadioButton("Folder: each sub-folder is a subject")
        self.manifest_radio = QRadioButton("CSV manifest (subject_id, image, name)")
        self._modes = QButtonGroup(self)
        for mode, radio in enumerate(
            (self.one_subject_radio, self.subfolders_radio, self.manifest_radio)
        ):
            self._modes.addButton(radio, mode)
        self.one_subject_radio.setChecked(True)

        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("folder or CSV file")
        self.browse_button = QPushButton("Browse…")
        self.subject_edit = QLineEdit()
        self.subject_edit.setPlaceholderText("e.g. S-2024-0012")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("optional")
        self.start_button = QPushButton("Enrol")
        self.task = TaskWidget(
            context.pool,
            self,
            idle_text="not started",
            cancel_tip="Stop after the current photo (Esc)",
            show_status=self._show_status,
            hold=[self.start_button],
        )
        self.cancel_button = self.task.cancel_button
        self.progress_bar = self.task.progress_bar
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary_label = QLabel("")
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)  # coloured; the text escaped
        self.summary_label.setWordWrap(True)
        make_plain(self.status_label)  # messages naming files and subjects
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problems_model = EnrolProblemsModel(self)
        self.problems_view = QTableView()
        self.problems_view.setModel(self.problems_model)
        self.problems_view.setWordWrap(False)
        self.problems_view.verticalHeader().setVisible(False)
        header = self.problems_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.problems_view.setColumnWidth(EnrolProblemsModel.COL_SOURCE, 170)
        self.problems_view.setColumnWidth(EnrolProblemsModel.COL_STATUS, 55)
        self.problems_view.setColumnWidth(EnrolProblemsModel.COL_SUBJECT, 70)

        form = QFormLayout()
        modes_box = QVBoxLayout()
        for radio in (self.one_subject_radio, self.subfolders_radio, self.manifest_radio):
            modes_box.addWidget(radio)
        form.addRow("Enrol from", modes_box)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)
        form.addRow("Source", path_row)
        form.addRow("Subject ID", self.subject_edit)
        form.addRow("Name", self.name_edit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.task, 1)

        box = QGroupBox("Enrol photos")
        inner = QVBoxLayout(box)
        inner.addLayout(form)
        inner.addLayout(buttons)
        inner.addWidget(self.status_label)
        inner.addWidget(self.summary_label)
        inner.addWidget(QLabel("Not enrolled:"))
        inner.addWidget(self.problems_view, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(box)

        self._modes.idToggled.connect(self._on_mode_toggled)
        self.browse_button.clicked.connect(self._on_browse_clicked)
        self.start_button.clicked.connect(self._on_start_clicked)
        self._on_mode_toggled(MODE_ONE_SUBJECT, True)

    # ------------------------------------------------------------------ public
    @property
    def mode(self) -> int:
        return self._modes.checkedId()

    def set_mode(self, mode: int) -> None:
        button = self._modes.button(mode)
        if button is not None:
            button.setChecked(True)

    @property
    def running(self) -> bool:
        return self.task.running

    # ------------------------------------------------------------------ slots
    def _on_mode_toggled(self, mode: int, checked: bool) -> None:
        if not checked:
            return
        one = mode == MODE_ONE_SUBJECT
        self.subject_edit.setEnabled(one)
        self.name_edit.setEnabled(one)
        self.path_edit.setPlaceholderText(
            "CSV file with columns subject_id, image" if mode == MODE_MANIFEST else "folder"
        )

    def _on_browse_clicked(self) -> None:
        if self.mode == MODE_MANIFEST:
            chosen, _ = QFileDialog.getOpenFileName(
                self, "Choose a CSV manifest", "", "CSV files (*.csv);;All files (*)"
            )
        else:
            chosen = QFileDialog.getExistingDirectory(self, "Choose a folder of photos")
        if chosen:
            self.path_edit.setText(chosen)

    def _on_start_clicked(self) -> None:
        if self.running:
            return
        text = self.path_edit.text().strip()
        mode = self.mode
        subject = self.subject_edit.text().strip()
        name = self.name_edit.text().strip() or None
        problem = None
        if not text:
            problem = "Choose a folder or a CSV manifest first."
        elif mode == MODE_ONE_SUBJECT and not subject:
            problem = "Enter the subject ID the photos in this folder belong to."
        if problem:
            self._show_status(problem, error=True)
            return
        source = Path(text).expanduser()
        context = self._context

        def work(cancel: CancelToken) -> Work[EnrollReport]:
            yield Progress(0, 0, f"reading {source}")
            if mode == MODE_MANIFEST:
                items, bad = read_manifest(source)
            else:
                items, bad = plan_folder(
                    source, subject if mode == MODE_ONE_SUBJECT else None, name
                )
            if not items and not bad:
                raise WorkstationError(f"{source}: no photos found to enrol")
            yield Progress(0, len(items), "loading the face model")
            engine = context.engine()
            with context.open_gallery() as gallery:
                report = yield from enroll(gallery, engine, items, cancel, already_failed=bad)
            return report

        self.problems_model.set_outcomes([])
        self.summary_label.setText("")
        self._show_status(f"Enrolling from {source}…")
        self.task.start(
            work,
            on_result=self._on_enrolment_done,
            on_error=self._on_enrolment_failed,
            on_progress=self._on_enrolment_progress,
            cancel_message="Cancelling after the current photo…",
        )

    def _on_enrolment_progress(self, step: Progress) -> None:
        if step.message:
            self._show_status(step.message, error=step.message.startswith(FAILED))

    def _on_enrolment_done(self, report: EnrollReport) -> None:
        self.last_report = report
        self.problems_model.set_outcomes(report.outcomes)
        colour = "#a15c00" if report.failed or report.cancelled else "#1b6e20"
        self.summary_label.setText(f"<b style='color:{colour}'>{escaped(report.summary())}</b>")
        self._show_status(
            "Enrolment cancelled; the photos enrolled before it stay in the gallery."
            if report.cancelled
            else "Enrolment finished."
        )
        self.enrolment_finished.emit(report)
        if report.enrolled:
            self._context.gallery_changed.emit()
        if report.outcomes:
            self._context.audit_changed.emit()
        self._context.status_message.emit(f"Enrolment: {report.summary()}")

    def _on_enrolment_failed(self, message: str) -> None:
        self.summary_label.setText("")
        self._show_status(f"Enrolment did not run: {message}", error=True)

    def _show_status(self, text: str, error: bool = False) -> None:
        self.status_label.setStyleSheet("color: #b00020;" if error else "")
        self.status_label.setText(text)
