"""The ACE-V sheet in Compare (issue 15 item 1): the probe's analysis, each facial feature marked
similar / dissimilar / not visible / not comparable with a note, a conclusion on the written
scale, annotations drawn on the aligned crops, and the other examiners' sheets side by side once
this examiner has recorded theirs (blind verification, enforced by the core:
workstation.gallery.comparisons).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workstation.domain import Candidate
from workstation.gallery.comparisons import record_sheet, sheets_for
from workstation.gallery.reads import Read, record_read_once, sheets_consulted
from workstation.gallery.records import SearchRecord
from workstation.gallery.sheets import (
    CONCLUSION_SCALE_SOURCE,
    CONCLUSION_WORDS,
    FEATURE_SOURCE,
    FEATURES,
    LIMITATION_WORDS,
    LIMITATIONS,
    MAX_LABEL,
    VERIFICATION,
    Annotation,
    ComparisonSheet,
    Conclusion,
    Finding,
    SheetInput,
    SheetsView,
    differences,
)
from workstation.gui.context import AppContext
from workstation.gui.text import make_plain
from workstation.progress import CancelToken

CHOOSE = "choose…"
DIFFERENT_BACKGROUND = QColor(255, 214, 214)
TOOLS = ("none", "arrow", "circle", "label")


class ComparisonSheetWidget(QWidget):
    """The sheet of the examiner using the app on the candidate shown in Compare."""

    sheets_loaded = Signal(object)  # SheetsView
    sheet_recorded = Signal(object)  # ComparisonSheet
    annotations_changed = Signal(list)  # list[Annotation]: the compare view draws them
    failed = Signal(str)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.search: SearchRecord | None = None
        self.candidate: Candidate | None = None
        self.view: SheetsView | None = None
        self.annotations: list[Annotation] = []

        self.status = QLabel(self)
        self.status.setWordWrap(True)
        make_plain(self.status)
        self.visible_edit = QLineEdit(self)
        self.visible_edit.setPlaceholderText("what of the face the probe shows")
        self.limitation_boxes = {key: QCheckBox(words, self) for key, words in LIMITATIONS}
        self.limitations_note = QLineEdit(self)
        self.limitations_note.setPlaceholderText("other limits, or details")
        analysis = QGroupBox("Analysis of the probe", self)
        analysis_form = QFormLayout(analysis)
        analysis_form.addRow("Visible:", self.visible_edit)
        limits = QGridLayout()
        for index, box in enumerate(self.limitation_boxes.values()):
            limits.addWidget(box, index // 2, index % 2)
        analysis_form.addRow("Limits:", limits)
        analysis_form.addRow("", self.limitations_note)

        self.features = QTableWidget(len(FEATURES), 3, self)
        self.features.setHorizontalHeaderLabels(["Feature", "Finding", "Note"])
        self.features.verticalHeader().hide()
        self.features.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.finding_boxes: dict[str, QComboBox] = {}
        self.note_edits: dict[str, QLineEdit] = {}
        for row, (key, words) in enumerate(FEATURES):
            item = QTableWidgetItem(words)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.features.setItem(row, 0, item)
            combo = QComboBox(self.features)
            combo.addItem(CHOOSE, None)
            for finding in Finding:
                combo.addItem(finding.words, finding.value)
            self.features.setCellWidget(row, 1, combo)
            note = QLineEdit(self.features)
            self.features.setCellWidget(row, 2, note)
            self.finding_boxes[key], self.note_edits[key] = combo, note
        self.features.resizeColumnsToContents()
        self.features.setToolTip(FEATURE_SOURCE)
        # Every feature in view at once: the sheet scrolls as a whole, the table never alone.
        self.features.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.features.setFixedHeight(
            self.features.horizontalHeader().sizeHint().height()
            + sum(self.features.rowHeight(r) for r in range(len(FEATURES)))
            + 4
        )

        self.conclusion_box = QComboBox(self)
        self.conclusion_box.addItem(CHOOSE, None)
        for conclusion in Conclusion:
            self.conclusion_box.addItem(CONCLUSION_WORDS[conclusion], conclusion.value)
        self.conclusion_box.setToolTip(CONCLUSION_SCALE_SOURCE)
        self.conclusion_note = QLineEdit(self)
        self.conclusion_note.setPlaceholderText("why: the features that weigh most")
        evaluation = QGroupBox("Evaluation (written scale; hover for its source)", self)
        evaluation_form = QFormLayout(evaluation)
        evaluation_form.addRow("Conclusion:", self.conclusion_box)
        evaluation_form.addRow("Reasons:", self.conclusion_note)

        self.tool_buttons: dict[str, QPushButton] = {}
        tools = QHBoxLayout()
        tools.addWidget(QLabel("Annotate the aligned crops:", self))
        group = QButtonGroup(self)
        for tool in TOOLS[1:]:
            button = QPushButton(tool.capitalize(), self)
            button.setCheckable(True)
            group.addButton(button)
            self.tool_buttons[tool] = button
            tools.addWidget(button)
        group.setExclusive(False)
        for tool, button in self.tool_buttons.items():
            button.toggled.connect(lambda on, t=tool: self._on_tool(t, on))
        self.label_edit = QLineEdit(self)
        self.label_edit.setMaxLength(MAX_LABEL)
        self.label_edit.setPlaceholderText("label text")
        tools.addWidget(self.label_edit)
        self.clear_button = QPushButton("Clear", self)
        self.clear_button.clicked.connect(self.clear_annotations)
        tools.addWidget(self.clear_button)
        self.annotation_count = QLabel(self)
        tools.addWidget(self.annotation_count)

        self.record_button = QPushButton("Record my sheet", self)
        self.record_button.clicked.connect(self.record)

        self.others_label = QLabel(self)
        self.others_label.setWordWrap(True)
        make_plain(self.others_label)
        self.others = QTableWidget(0, 0, self)
        self.others.verticalHeader().hide()
        self.others.setWordWrap(True)
        self.others.setMinimumHeight(420)
        self.others.hide()

        body = QWidget(self)
        layout = QVBoxLayout(body)
        layout.addWidget(self.status)
        layout.addWidget(analysis)
        layout.addWidget(
            QLabel("<b>Comparison</b> (no measurements: FISWG advises against them)", body)
        )
        layout.addWidget(self.features)
        layout.addWidget(evaluation)
        layout.addLayout(tools)
        layout.addWidget(self.record_button)
        layout.addWidget(QLabel("<b>Verification</b>", body))
        layout.addWidget(self.others_label)
        layout.addWidget(self.others)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self._update_count()

    # ------------------------------------------------------------------ target
    def set_target(self, search: SearchRecord | None, candidate: Candidate | None) -> None:
        """Show the sheets on this candidate (read on a worker, as the core allows)."""
        self.search, self.candidate = search, candidate
        self._clear_form()
        self.view = None
        self.others.hide()
        self.others_label.setText("")
        if search is None or candidate is None:
            self.status.setText("No candidate")
            self.record_button.setEnabled(False)
            return
        self.status.setText(f"Loading the sheets on {candidate.subject_id}…")
        self.record_button.setEnabled(False)
        context, search_id, subject_id = self.context, search.search_id, candidate.subject_id
        case_id, purpose = search.case_id, search.purpose

        def work(cancel: CancelToken) -> SheetsView:
            with context.open_gallery() as gallery:
                view = sheets_for(gallery, search_id, subject_id)
                if view.own is not None or view.others:
                    # Sheets shown are records consulted: recorded (ids only) against the
                    # search's case before they show, once within minutes.
                    consulted = sheets_consulted(view, search_id)
                    record_read_once(
                        gallery,
                        context.reads,
                        Read.SHEETS,
                        consulted,
                        case_id,
                        purpose,
                        what=(search_id, subject_id, tuple(consulted["sheets"].get("ids", ()))),
                    )
                return view

        context.pool.start(work, owner=self, on_result=self._on_loaded, on_error=self._on_failed)

    def _on_loaded(self, view: SheetsView) -> None:
        if self.candidate is None or view.subject_id != self.candidate.subject_id:
            return
        self.view = view
        self.record_button.setEnabled(True)
        if view.own is not None:
            self._fill(view.own)
            self.status.setText(
                f"Your {view.own.role} sheet, recorded {view.own.created_at[:16].replace('T', ' ')}"
                " UTC. Recording again adds a new version; the earlier one stays on record."
            )
        else:
            self.status.setText(
                f"You ({view.viewer}) have not recorded a sheet on {view.subject_id} yet."
            )
        self._show_others(view)
        self.annotations_changed.emit(list(self.annotations))
        self.sheets_loaded.emit(view)

    def _on_failed(self, message: str) -> None:
        self.status.setText(message)
        self.failed.emit(message)

    # ------------------------------------------------------------------ form
    def _clear_form(self) -> None:
        self.visible_edit.clear()
        self.limitations_note.clear()
        for box in self.limitation_boxes.values():
            box.setChecked(False)
        for key, _ in FEATURES:
            self.finding_boxes[key].setCurrentIndex(0)
            self.note_edits[key].clear()
        self.conclusion_box.setCurrentIndex(0)
        self.conclusion_note.clear()
        self.annotations = []
        self._update_count()
        self.annotations_changed.emit([])

    def _fill(self, sheet: ComparisonSheet) -> None:
        analysis = sheet.body["analysis"]
        self.visible_edit.setText(analysis["visible"])
        self.limitations_note.setText(analysis["limitations_note"])
        for key, box in self.limitation_boxes.items():
            box.setChecked(key in analysis["limitations"])
        for mark in sheet.body["features"]:
            combo = self.finding_boxes[mark["feature"]]
            combo.setCurrentIndex(combo.findData(mark["finding"]))
            self.note_edits[mark["feature"]].setText(mark["note"])
        self.conclusion_box.setCurrentIndex(self.conclusion_box.findData(sheet.body["conclusion"]))
        self.conclusion_note.setText(sheet.body["conclusion_note"])
        self.annotations = sheet.annotations
        self._update_count()

    def sheet_input(self) -> SheetInput | str:
        """The form as the core takes it, or what is missing in words."""
        features = {key: combo.currentData() for key, combo in self.finding_boxes.items()}
        missing = [words for key, words in FEATURES if features[key] is None]
        if missing:
            return f"mark every feature (missing: {', '.join(missing)})"
        if self.conclusion_box.currentData() is None:
            return "choose a conclusion on the scale"
        return SheetInput(
            features=features,
            conclusion=self.conclusion_box.currentData(),
            visible=self.visible_edit.text(),
            limitations=[k for k, box in self.limitation_boxes.items() if box.isChecked()],
            limitations_note=self.limitations_note.text(),
            feature_notes={k: edit.text() for k, edit in self.note_edits.items() if edit.text()},
            conclusion_note=self.conclusion_note.text(),
            annotations=tuple(self.annotations),
        )

    def record(self) -> None:
        if self.search is None or self.candidate is None:
            return
        sheet = self.sheet_input()
        if isinstance(sheet, str):
            self.status.setText(f"Not recorded: {sheet}.")
            return
        self.record_button.setEnabled(False)
        context = self.context
        search_id, subject_id = self.search.search_id, self.candidate.subject_id

        def work(cancel: CancelToken) -> tuple[ComparisonSheet, SheetsView]:
            with context.open_gallery() as gallery:
                stored = record_sheet(gallery, search_id, subject_id, sheet)
                return stored, sheets_for(gallery, search_id, subject_id)

        def done(result: tuple[ComparisonSheet, SheetsView]) -> None:
            stored, view = result
            self.context.audit_changed.emit()
            self._on_loaded(view)
            self.sheet_recorded.emit(stored)

        def failed(message: str) -> None:
            self.record_button.setEnabled(True)
            self._on_failed(f"Not recorded: {message}")

        context.pool.start(work, owner=self, on_result=done, on_error=failed)

    # ------------------------------------------------------------------ annotations
    @property
    def tool(self) -> str:
        return next((t for t, b in self.tool_buttons.items() if b.isChecked()), "none")

    def _on_tool(self, tool: str, on: bool) -> None:
        if on:
            for other, button in self.tool_buttons.items():
                if other != tool:
                    button.setChecked(False)

    def add_annotation(self, annotation: Annotation) -> str | None:
        """Add one drawn annotation; returns why not, in words, when it is refused."""
        problem = annotation.problem()
        if problem is not None:
            self.status.setText(f"Annotation not added: {problem}.")
            return problem
        # As it will be stored (to a tenth of a pixel), so the sheet on screen is the sheet kept.
        self.annotations.append(Annotation.from_dict(annotation.to_dict()))
        self._update_count()
        self.annotations_changed.emit(list(self.annotations))
        return None

    def clear_annotations(self) -> None:
        self.annotations = []
        self._update_count()
        self.annotations_changed.emit([])

    def _update_count(self) -> None:
        self.annotation_count.setText(f"{len(self.annotations)} annotation(s)")

    # ------------------------------------------------------------------ verification
    def _show_others(self, view: SheetsView) -> None:
        if view.blind:
            self.others.hide()
            self.others_label.setText(
                f"Blind verification: {view.why}. Record your own sheet to see theirs."
            )
            return
        if not view.others:
            self.others.hide()
            self.others_label.setText("No other examiner has recorded a sheet on this candidate.")
            return
        sheets = [view.own, *view.others] if view.own is not None else list(view.others)
        rows = [words for _, words in FEATURES] + ["Limits", "Conclusion", "Reasons"]
        self.others.clear()
        self.others.setRowCount(len(rows))
        self.others.setColumnCount(len(sheets) + 1)
        self.others.setHorizontalHeaderLabels(
            ["Feature"]
            + [f"{s.examiner} ({'you, ' if s is view.own else ''}{s.role})" for s in sheets]
        )
        base = sheets[0]
        differing_features: set[str] = set()
        conclusion_differs = False
        limits_differ = False
        for other in sheets[1:]:
            found = differences(base, other)
            differing_features.update(found["features"])
            conclusion_differs |= found["conclusion"]
            limits_differ |= bool(found["limitations"])
        for row, label in enumerate(rows):
            self._cell(row, -1, label, False)
        for column, sheet in enumerate(sheets):
            notes = {m["feature"]: m["note"] for m in sheet.body["features"]}
            for row, (key, _words) in enumerate(FEATURES):
                text = sheet.findings[key].words + (f": {notes[key]}" if notes[key] else "")
                self._cell(row, column, text, key in differing_features)
            limits = ", ".join(LIMITATION_WORDS[k] for k in sheet.body["analysis"]["limitations"])
            self._cell(len(FEATURES), column, limits or "none", limits_differ)
            self._cell(len(FEATURES) + 1, column, sheet.conclusion.words, conclusion_differs)
            self._cell(len(FEATURES) + 2, column, sheet.body["conclusion_note"], False)
        header = self.others.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.others.resizeRowsToContents()
        self.others.show()
        count = len(differing_features) + int(conclusion_differs) + int(limits_differ)
        verifying = any(s.role == VERIFICATION for s in sheets)
        self.others_label.setText(
            ("Examination and verification side by side" if verifying else "Sheets side by side")
            + (f": {count} difference(s), highlighted." if count else ": no differences.")
        )

    def _cell(self, row: int, column: int, text: str, differs: bool) -> None:
        """A cell of sheet `column` (-1: the row's label); a differing row is highlighted."""
        column += 1
        item = QTableWidgetItem(text)
        item.setFlags(Qt.ItemFlag.ItemIsEnabled)
        item.setToolTip(text)
        if differs:
            item.setBackground(DIFFERENT_BACKGROUND)
            item.setData(Qt.ItemDataRole.UserRole, "differs")
        self.others.setItem(row, column, item)
