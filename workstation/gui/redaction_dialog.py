"""The Redaction step before an export: each search's probe image as the report will show it,
with its redaction boxes; the examiner un-redacts one box (with a note) or adds a box by hand.

What is redacted, and the acts, are the Qt-free core's (workstation.reports.redaction,
workstation.gallery.redactions); detection runs on a worker, never on the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workstation.domain import BBox
from workstation.gallery.records import SearchRecord
from workstation.gallery.redactions import add_redaction_box, unredact
from workstation.gui.canvas import ProbeCanvasView
from workstation.gui.context import AppContext
from workstation.gui.imaging import bgr_to_qimage
from workstation.gui.reason_dialog import ReasonRequiredDialog
from workstation.progress import CancelToken
from workstation.reports.redaction import (
    FOUND_IN_WORKING_COPY,
    REDACTION_MARGIN,
    SOURCE_DRAWN,
    ProbeRedaction,
    RedactionBox,
    probe_pixels,
    redacted_original,
    search_redaction,
)

REDACTED_COLOR = QColor(220, 40, 40)
UNREDACTED_COLOR = QColor(40, 170, 70)
DRAWN_COLOR = QColor(170, 60, 200)


@dataclass(frozen=True)
class RedactionPreview:
    """One search's redaction and its image as the report will show it (None: not shown)."""

    plan: ProbeRedaction
    shown: np.ndarray | None


def load_preview(context: AppContext, search_id: int) -> RedactionPreview:
    """On a worker: the redaction of one search's probe and the redacted image."""
    with context.open_gallery() as gallery:
        plan = search_redaction(gallery, search_id)
        record = gallery.search_record(search_id)
    bgr, _, _ = probe_pixels(record)
    return RedactionPreview(plan, None if bgr is None else redacted_original(bgr, plan))


class UnredactDialog(ReasonRequiredDialog):
    """Asks why one redaction box may be shown; the note goes into the report and the log."""

    def __init__(self, box: RedactionBox, parent: QWidget | None = None) -> None:
        super().__init__(
            "Un-redact this box",
            "Un-redact",
            "Why this face may be shown in the exported report (printed there and audited)",
            parent,
        )
        where = ", ".join(f"{v:.0f}" for v in box.box.as_list())
        label = QLabel(
            f"The box at ({where}) ({box.source}) will be shown unredacted in every export of "
            "this case. The probe file itself is never changed."
        )
        label.setWordWrap(True)
        self.body.addWidget(label)


class RedactionDialog(QDialog):
    """Review what an export of the case redacts, search by search (see the module docstring)."""

    changed = Signal()  # a box was added or un-redacted (an audited act)

    def __init__(self, context: AppContext, case_id: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.case_id = case_id
        self.setWindowTitle(f"Redaction before export: case {case_id}")
        self.preview: RedactionPreview | None = None
        self._box_items: list[QGraphicsRectItem] = []
        self.search_combo = QComboBox()
        self.canvas = ProbeCanvasView()
        self.canvas.setMinimumSize(560, 400)
        self.box_list = QListWidget()
        self.box_list.setMinimumWidth(300)
        self.statement_label = QLabel("Finding faces …")
        self.statement_label.setWordWrap(True)
        self.draw_button = QPushButton("Add a box…")
        self.draw_button.setToolTip(
            "Draw a box on the image to redact (a missed face, a tattoo, a name badge)"
        )
        self.note_edit = QLineEdit()
        self.note_edit.setPlaceholderText("what the drawn box hides (optional, audited)")
        self.unredact_button = QPushButton("Un-redact…")
        self.unredact_button.setEnabled(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        side = QVBoxLayout()
        side.addWidget(QLabel("Redaction boxes (red: redacted, green: shown)"))
        side.addWidget(self.box_list, 1)
        side.addWidget(self.unredact_button)
        side.addWidget(self.draw_button)
        side.addWidget(self.note_edit)
        middle = QHBoxLayout()
        middle.addWidget(self.canvas, 1)
        middle.addLayout(side)
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Search:"))
        top.addWidget(self.search_combo, 1)
        layout.addLayout(top)
        layout.addLayout(middle, 1)
        layout.addWidget(self.statement_label)
        layout.addWidget(buttons)
        self.search_combo.currentIndexChanged.connect(self._on_search_chosen)
        self.box_list.currentRowChanged.connect(self._on_box_chosen)
        self.unredact_button.clicked.connect(self._on_unredact_clicked)
        self.draw_button.clicked.connect(lambda: self.canvas.set_draw_mode(True))
        self.canvas.box_drawn.connect(self._on_box_drawn)
        self.resize(980, 640)
        self._load_searches()

    # ------------------------------------------------------------------ loading
    def _load_searches(self) -> None:
        def work(cancel: CancelToken) -> list[SearchRecord]:
            with self.context.open_gallery() as gallery:
                return gallery.case_search_records(self.case_id)

        self.context.pool.start(
            work, owner=self, on_result=self._on_searches_loaded, on_error=self._on_error
        )

    def _on_searches_loaded(self, records: list[SearchRecord]) -> None:
        self.search_combo.blockSignals(True)
        self.search_combo.clear()
        for record in records:
            self.search_combo.addItem(
                f"search {record.search_id} · {record.created_at[:16]} · {record.probe.path}",
                record.search_id,
            )
        self.search_combo.blockSignals(False)
        if records:
            self._on_search_chosen(0)
        else:
            self.statement_label.setText("This case has no searches: nothing to redact.")

    @property
    def search_id(self) -> int | None:
        value = self.search_combo.currentData()
        return None if value is None else int(value)

    def _on_search_chosen(self, _index: int) -> None:
        search_id = self.search_id
        if search_id is None:
            return
        self.statement_label.setText(f"Finding faces in the probe of search {search_id} …")
        self.unredact_button.setEnabled(False)
        self.context.pool.start(
            lambda cancel: load_preview(self.context, search_id),
            owner=self,
            on_result=self._on_preview_loaded,
            on_error=self._on_error,
        )

    def _on_preview_loaded(self, preview: RedactionPreview) -> None:
        if preview.plan.search_id != self.search_id:
            return  # another search was chosen meanwhile
        self.preview = preview
        if preview.shown is not None:
            self.canvas.set_image(bgr_to_qimage(preview.shown))
        else:
            self.canvas.clear()
        self._box_items = []
        self.box_list.clear()
        for number, box in enumerate(preview.plan.boxes, start=1):
            self._box_items.append(self._draw_box(box))
            if box.score is None:
                origin = "drawn by examiner"
            else:
                origin = f"detected, score {box.score:.2f}"
                if box.found_in == FOUND_IN_WORKING_COPY:
                    origin += " (on the working copy only)"
            state = "redacted" if box.redacted else "SHOWN (un-redacted)"
            item = QListWidgetItem(f"{number}. {origin} · {state}")
            if box.unredacted is not None:
                item.setToolTip(f"{box.unredacted.user}: {box.unredacted.note}")
            self.box_list.addItem(item)
        self.statement_label.setText(preview.plan.statement() + ".")

    def _draw_box(self, box: RedactionBox) -> QGraphicsRectItem:
        color = (
            UNREDACTED_COLOR
            if not box.redacted
            else DRAWN_COLOR
            if box.source == SOURCE_DRAWN
            else REDACTED_COLOR
        )
        dx, dy = box.box.w * REDACTION_MARGIN, box.box.h * REDACTION_MARGIN
        item = QGraphicsRectItem(
            QRectF(box.box.x - dx, box.box.y - dy, box.box.w + 2 * dx, box.box.h + 2 * dy)
        )
        pen = QPen(color, 2, Qt.PenStyle.SolidLine if box.redacted else Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        item.setPen(pen)
        item.setBrush(QBrush(Qt.BrushStyle.NoBrush))
        item.setZValue(3)
        self.canvas.scene().addItem(item)
        return item

    def _on_box_chosen(self, row: int) -> None:
        boxes = self.preview.plan.boxes if self.preview else ()
        chosen = boxes[row] if 0 <= row < len(boxes) else None
        self.unredact_button.setEnabled(chosen is not None and chosen.redacted)
        for i, item in enumerate(self._box_items):
            pen = item.pen()
            pen.setWidth(4 if i == row else 2)
            item.setPen(pen)

    # ------------------------------------------------------------------ acts
    def _on_unredact_clicked(self) -> None:
        row = self.box_list.currentRow()
        if self.preview is None or not 0 <= row < len(self.preview.plan.boxes):
            return
        box = self.preview.plan.boxes[row]
        dialog = UnredactDialog(box, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        self.unredact_box(row, dialog.reason)

    def unredact_box(self, row: int, note: str) -> None:
        """Un-redact box `row` of the current search with `note` (an audited act, on a worker)."""
        assert self.preview is not None
        search_id, box = self.preview.plan.search_id, self.preview.plan.boxes[row].box

        def work(cancel: CancelToken) -> None:
            with self.context.open_gallery() as gallery:
                unredact(gallery, search_id, box, note)

        self.context.pool.start(
            work, owner=self, on_result=self._on_changed, on_error=self._on_error
        )

    def _on_box_drawn(self, box: BBox) -> None:
        self.add_box(box, self.note_edit.text().strip() or None)

    def add_box(self, box: BBox, note: str | None) -> None:
        """Add a redaction box to the current search's probe (an audited act, on a worker)."""
        search_id = self.search_id
        if search_id is None:
            return

        def work(cancel: CancelToken) -> None:
            with self.context.open_gallery() as gallery:
                add_redaction_box(gallery, search_id, box, note)

        self.note_edit.clear()
        self.context.pool.start(
            work, owner=self, on_result=self._on_changed, on_error=self._on_error
        )

    def _on_changed(self, _result: object) -> None:
        self.context.audit_changed.emit()
        self.changed.emit()
        self._on_search_chosen(self.search_combo.currentIndex())

    def _on_error(self, message: str) -> None:
        self.statement_label.setText(f"Redaction: {message}")
