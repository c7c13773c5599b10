"""Duplicates page: subjects that may be one person enrolled twice, and an audited merge.

The scan (`hygiene.scan_duplicate_subjects`) runs on a worker with progress and cancel, at the
core's strict threshold (or one the examiner sets). Each pair shows both best-matching faces,
the score and how often a stranger scores that high. The list is for review only: a merge is a
person's decision, needs a reason, and is written to the audit log by `merge_subjects`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QRadioButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workstation.gallery.hygiene import (
    DuplicatePair,
    duplicate_threshold,
    merge_subjects,
    scan_duplicate_subjects,
)
from workstation.gallery.reads import Read, duplicates_consulted, record_read_once
from workstation.gallery.subject_reads import FaceRecord
from workstation.gui.context import AppContext
from workstation.gui.face_thumbnails import FaceThumbnailCache, ThumbKey, thumb_key
from workstation.gui.reason_dialog import ReasonRequiredDialog
from workstation.gui.table_base import RowsTableModel
from workstation.gui.tasks import TaskWidget
from workstation.gui.text import escaped, make_plain, tooltip
from workstation.progress import CancelToken, Work

_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class PairRow:
    pair: DuplicatePair
    face_a: FaceRecord
    path_a: Path
    face_b: FaceRecord
    path_b: Path
    fmr_text: str


@dataclass(frozen=True)
class ScanResult:
    rows: list[PairRow]
    threshold: float
    why: str
    cancelled: bool = False


class DuplicatePairsModel(RowsTableModel):
    """Read-only table of likely duplicate subject pairs, best score first."""

    COL_SUBJECT_A, COL_SUBJECT_B, COL_SCORE, COL_FMR = range(4)
    HEADERS = (
        "Subject A (best face)",
        "Subject B (best face)",
        "Score",
        "Stranger scores this high",
    )
    PairRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, thumbnails: FaceThumbnailCache, parent: Any = None) -> None:
        super().__init__(parent)
        self._thumbnails = thumbnails
        self._rows: list[PairRow] = []
        thumbnails.thumbnails_ready.connect(self._on_thumbnails_ready)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = self.row_at(index)
        if row is None:
            return None
        pair, col = row.pair, index.column()
        if role == self.PairRole:
            return row
        side = {self.COL_SUBJECT_A: "a", self.COL_SUBJECT_B: "b"}.get(col)
        if side is not None:
            subject = pair.subject_a if side == "a" else pair.subject_b
            name = pair.name_a if side == "a" else pair.name_b
            face = row.face_a if side == "a" else row.face_b
            path = row.path_a if side == "a" else row.path_b
            if role == Qt.ItemDataRole.DisplayRole:
                title = f"{subject} — {name}" if name else subject
                return f"{title}\nface {face.id} · quality {face.quality.get('verdict', '?')}"
            if role == Qt.ItemDataRole.DecorationRole:
                return self._thumbnails.pixmap(face, path)
            if role == Qt.ItemDataRole.ToolTipRole:
                return tooltip(
                    f"Subject {subject}\nPhoto: {face.original_path}\nSHA-256: {face.image_sha256}"
                )
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            if col == self.COL_SCORE:
                return f"{pair.score:.3f}"
            if col == self.COL_FMR:
                return row.fmr_text
        if role == Qt.ItemDataRole.TextAlignmentRole and col == self.COL_SCORE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and col == self.COL_FMR:
            return "How often two different people score at least this high (false-match rate)"
        return None

    def _on_thumbnails_ready(self, keys: list[ThumbKey]) -> None:
        wanted = set(keys)
        for r, row in enumerate(self._rows):
            if thumb_key(row.face_a) in wanted or thumb_key(row.face_b) in wanted:
                self.dataChanged.emit(
                    self.index(r, self.COL_SUBJECT_A),
                    self.index(r, self.COL_SUBJECT_B),
                    [Qt.ItemDataRole.DecorationRole],
                )


class MergeSubjectsDialog(ReasonRequiredDialog):
    """Choose which subject id stays, and give the reason; OK needs a reason."""

    def __init__(
        self,
        row: PairRow,
        faces: tuple[QPixmap, QPixmap] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        pair = row.pair
        super().__init__(
            f"Merge subjects {pair.subject_a} and {pair.subject_b}",
            "Merge",
            "Reason (required), e.g. same person: same date of birth and custody record",
            parent,
        )
        self.setMinimumWidth(560)
        self.pair = pair
        faces_row = QHBoxLayout()
        for pixmap, subject, name, face in (
            (faces[0] if faces else None, pair.subject_a, pair.name_a, row.face_a),
            (faces[1] if faces else None, pair.subject_b, pair.name_b, row.face_b),
        ):
            picture = QLabel()
            if pixmap is not None:
                picture.setPixmap(pixmap)
            caption = QLabel(
                f"<b>{escaped(subject)}</b><br>{escaped(name)}<br>face {face.id}, "
                f"quality {escaped(face.quality.get('verdict', '?'))}"
            )
            caption.setTextFormat(Qt.TextFormat.RichText)
            caption.setWordWrap(True)
            faces_row.addWidget(picture)
            faces_row.addWidget(caption, 1)
        explain = QLabel(
            f"The best faces of these subjects score <b>{pair.score:.3f}</b> (a stranger scores "
            f"this high: {escaped(row.fmr_text)}). Merge them only if you are satisfied they are "
            "the same person: all faces move to the subject you keep, the other subject id is "
            "removed, and the merge and your reason are kept in the audit log."
        )
        explain.setTextFormat(Qt.TextFormat.RichText)
        explain.setWordWrap(True)
        self.keep_a_radio = QRadioButton(f"Keep {pair.subject_a}, merge {pair.subject_b} into it")
        self.keep_b_radio = QRadioButton(f"Keep {pair.subject_b}, merge {pair.subject_a} into it")
        self.keep_a_radio.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.keep_a_radio)
        group.addButton(self.keep_b_radio)
        self.body.addLayout(faces_row)
        self.body.addWidget(explain)
        self.body.addWidget(self.keep_a_radio)
        self.body.addWidget(self.keep_b_radio)

    @property
    def keep_and_merge(self) -> tuple[str, str]:
        a, b = self.pair.subject_a, self.pair.subject_b
        return (a, b) if self.keep_a_radio.isChecked() else (b, a)


class DuplicatesWidget(QWidget):
    """Find likely duplicate subjects and merge a reviewed pair."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._context = context
        self.merge_dialog: MergeSubjectsDialog | None = None
        self.last_scan: ScanResult | None = None
        self.thumbnails = FaceThumbnailCache(context, parent=self)

        intro = QLabel(
            "Pairs of different subjects whose faces match above a strict threshold: possibly "
            "one person enrolled twice. Each pair needs a person's review; nothing is merged "
            "automatically."
        )
        intro.setWordWrap(True)
        self.custom_threshold_check = QCheckBox("Threshold")
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.30, 0.99)
        self.threshold_spin.setSingleStep(0.01)
        self.threshold_spin.setDecimals(2)
        self.threshold_spin.setValue(0.60)
        self.threshold_spin.setEnabled(False)
        self.custom_threshold_check.setToolTip("Unticked: the strict default (FMR at most 1e-5)")
        self.scan_button = QPushButton("Find duplicates")
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.thumbnails_size = QSize(72, 72)
        self.model = DuplicatePairsModel(self.thumbnails, self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setIconSize(self.thumbnails_size)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(84)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.setColumnWidth(DuplicatePairsModel.COL_SUBJECT_A, 280)
        self.table.setColumnWidth(DuplicatePairsModel.COL_SUBJECT_B, 280)
        self.table.setColumnWidth(DuplicatePairsModel.COL_SCORE, 70)
        self.merge_button = QPushButton("Merge…")
        self.merge_button.setEnabled(False)
        self.message_label = QLabel("")
        self.message_label.setWordWrap(True)
        make_plain(self.status_label, self.message_label)  # they name subjects and files
        self.task = TaskWidget(
            context.pool,
            self,
            cancel_tip="Stop the search for duplicates (Esc)",
            hold=[self.scan_button],
        )
        self.cancel_button = self.task.cancel_button
        self.progress_bar = self.task.progress_bar

        controls = QHBoxLayout()
        controls.addWidget(self.custom_threshold_check)
        controls.addWidget(self.threshold_spin)
        controls.addWidget(self.scan_button)
        controls.addWidget(self.task, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.message_label, 1)
        bottom.addWidget(self.merge_button)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(controls)
        layout.addWidget(self.status_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(bottom)

        self.custom_threshold_check.toggled.connect(self.threshold_spin.setEnabled)
        self.scan_button.clicked.connect(self.scan)
        self.merge_button.clicked.connect(self._on_merge_clicked)
        self.table.selectionModel().currentRowChanged.connect(self._on_pair_chosen)
        context.gallery_changed.connect(self._on_gallery_changed)

    @property
    def scanning(self) -> bool:
        return self.task.running

    def scan(self) -> None:
        """Look for duplicate pairs on a worker."""
        if self.scanning:
            return
        chosen = self.threshold_spin.value() if self.custom_threshold_check.isChecked() else None
        context = self._context
        # The list shows subjects' faces: it is recorded against a case, asked for now when none
        # is set, as a search does.
        case = context.ensure_case()
        if case is None:
            self.status_label.setText(
                "Set a case first (Ctrl+K): the list of duplicates is recorded against a case "
                "number and a purpose."
            )
            self.status_label.setStyleSheet("color: #b00020;")
            return

        def work(cancel: CancelToken) -> Work[ScanResult]:
            with context.open_gallery() as gallery:
                if chosen is None:
                    threshold, why = duplicate_threshold(gallery)
                else:
                    threshold, why = chosen, "set by the examiner"
                pairs = yield from scan_duplicate_subjects(gallery, threshold, cancel)
                if pairs is None:
                    return ScanResult([], threshold, why, cancelled=True)
                # Recorded before the list shows (a repeat of the same list is not).
                record_read_once(
                    gallery,
                    context.reads,
                    Read.DUPLICATES,
                    duplicates_consulted(pairs, threshold),
                    case.case_id,
                    case.purpose,
                    what=(threshold, tuple((p.face_a, p.face_b) for p in pairs)),
                )
                return ScanResult(_pair_rows(gallery, pairs), threshold, why)

        self.merge_button.setEnabled(False)
        self.status_label.setText("Comparing every face with every other subject's faces…")
        self.task.start(
            work,
            on_result=self._on_scanned,
            on_error=self._on_scan_failed,
            cancel_message="",
            bar_text="%p%",
        )

    # ------------------------------------------------------------------ slots
    def _on_scanned(self, result: ScanResult) -> None:
        self.last_scan = result
        self.status_label.setStyleSheet("")
        self.model.set_rows(result.rows)
        if result.cancelled:
            self.status_label.setText("Search for duplicates cancelled; nothing was changed.")
            return
        found = len(result.rows)
        self.status_label.setText(
            f"{found} possible duplicate pair{'s' if found != 1 else ''} at or above "
            f"{result.threshold:.3f} ({result.why})."
        )

    def _on_scan_failed(self, message: str) -> None:
        self.status_label.setText(f"Could not look for duplicates: {message}")
        self.status_label.setStyleSheet("color: #b00020;")

    def _on_gallery_changed(self) -> None:
        # Not rescanned automatically (a big gallery takes a while); the list says it is old.
        if self.last_scan is not None and not self.scanning:
            self.status_label.setText(
                self.status_label.text().split("  The gallery changed")[0]
                + "  The gallery changed since this list was made: search again."
            )

    def _on_pair_chosen(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.merge_button.setEnabled(current.isValid() and not self.scanning)

    def _on_merge_clicked(self) -> None:
        current = self.table.currentIndex()
        row = current.data(DuplicatePairsModel.PairRole) if current.isValid() else None
        if row is None:
            return
        faces = (
            self.thumbnails.pixmap(row.face_a, row.path_a),
            self.thumbnails.pixmap(row.face_b, row.path_b),
        )
        self.merge_dialog = MergeSubjectsDialog(row, faces, self)
        self.merge_dialog.accepted.connect(self._on_merge_confirmed)
        self.merge_dialog.open()

    def _on_merge_confirmed(self) -> None:
        dialog = self.merge_dialog
        if dialog is None:
            return
        (keep, merge), reason, context = dialog.keep_and_merge, dialog.reason, self._context
        self.merge_button.setEnabled(False)

        def work(_cancel: CancelToken) -> dict[str, Any]:
            with context.open_gallery() as gallery:
                return merge_subjects(gallery, keep, merge, reason)

        context.pool.start(
            work, owner=self, on_result=self._on_merged, on_error=self._on_merge_failed
        )

    def _on_merged(self, details: dict[str, Any]) -> None:
        text = (
            f"Subject {details['merged_subject_id']} merged into {details['keep_subject_id']} "
            f"({len(details['face_ids_moved'])} face(s) moved); the reason is in the audit log."
        )
        self.message_label.setStyleSheet("color: #1b6e20;")
        self.message_label.setText(text)
        self._context.status_message.emit(text)
        self._context.gallery_changed.emit()
        self._context.audit_changed.emit()
        self.scan()  # the merged pair, and pairs naming the removed id, are gone now

    def _on_merge_failed(self, message: str) -> None:
        self.message_label.setStyleSheet("color: #b00020;")
        self.message_label.setText(f"The subjects were not merged: {message}")
        self.merge_button.setEnabled(self.table.currentIndex().isValid())


def _pair_rows(gallery: Any, pairs: list[DuplicatePair]) -> list[PairRow]:
    """Add the face records, photo paths and the FMR at each score (worker side)."""
    from workstation.gallery.calibration import calibration_for, fmr_excluding_pair

    calibration = calibration_for(gallery, gallery.model_id) if gallery.model_id else None
    rows = []
    for pair in pairs:
        face_a, face_b = gallery.face(pair.face_a), gallery.face(pair.face_b)
        if face_a is None or face_b is None:
            continue  # changed since the scan; the next scan is exact
        estimate = (
            fmr_excluding_pair(gallery, calibration, pair.subject_a, pair.subject_b, pair.score)
            if calibration
            else None
        )
        fmr = estimate.text if estimate else "unknown (too few subjects to calibrate)"
        rows.append(
            PairRow(
                pair, face_a, gallery.image_file(face_a), face_b, gallery.image_file(face_b), fmr
            )
        )
    return rows
