"""Enhance…: build the ordered steps that make a working copy of the probe, with a live preview.

The steps are an ordered, editable list; the selected step's parameters have one control each,
bounded as the core bounds them (workstation.vision.enhancement). The preview (the original
beside the working copy) is computed on the worker pool, never on the GUI thread; a newer edit
makes an older preview's result be dropped. The dialog only edits steps: the probe panel makes
the working copy from them (the same core function the search and `enhance replay` use).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workstation.errors import WorkstationError
from workstation.gui.context import AppContext
from workstation.gui.imaging import bgr_to_qimage
from workstation.gui.text import make_plain
from workstation.progress import CancelToken
from workstation.vision.enhancement import apply
from workstation.vision.enhancement_steps import STEP_SPECS, Param, Step, parse_step

PREVIEW_SIDE = 360  # each preview's longest side on screen, in pixels

# Finds the two eye points of the largest face in an image (or None): what "Straighten" uses.
EyeFinder = Callable[[np.ndarray], tuple[tuple[float, float], tuple[float, float]] | None]


class EnhanceDialog(QDialog):
    """The steps list, the selected step's controls, and the original beside the working copy."""

    preview_ready = Signal()  # a preview of the current steps is shown (tests, tours)

    def __init__(
        self,
        context: AppContext,
        original: np.ndarray,
        steps: Sequence[Step] = (),
        find_eyes: EyeFinder | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Enhance the probe (working copy)")
        self.context = context
        self.original = original
        self.find_eyes = find_eyes
        self._steps: list[Step] = list(steps)
        self._generation = 0
        self._controls: dict[str, QWidget] = {}
        self.working_shape: tuple[int, ...] | None = None

        self.step_list = QListWidget(self)
        self.step_list.setToolTip("The steps, applied in this order to the original")
        self.step_list.setWordWrap(True)
        self.step_list.setMinimumWidth(330)
        self.kind_combo = QComboBox(self)
        for spec in STEP_SPECS.values():
            self.kind_combo.addItem(spec.label, spec.name)
        self.add_button = QPushButton("Add step", self)
        self.remove_button = QPushButton("Remove", self)
        self.up_button = QPushButton("Up", self)
        self.down_button = QPushButton("Down", self)
        self.reset_button = QPushButton("Reset", self)
        self.reset_button.setToolTip("Remove every step: the working copy is the original")
        self.params_box = QGroupBox("Parameters", self)
        self.params_form = QFormLayout(self.params_box)
        self.does_label = QLabel(self)
        self.does_label.setWordWrap(True)
        self.error_label = QLabel(self)
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b00020; font-weight: bold;")
        self.original_view = QLabel(self)
        self.working_view = QLabel(self)
        for view in (self.original_view, self.working_view):
            view.setMinimumSize(PREVIEW_SIDE, PREVIEW_SIDE)
            view.setAlignment(Qt.AlignmentFlag.AlignCenter)
            view.setStyleSheet("background: #202020;")
        self.original_caption = QLabel(self._size_words("Original (never changed)", original), self)
        self.working_caption = QLabel("Working copy", self)
        make_plain(self.does_label, self.error_label, self.original_caption, self.working_caption)
        buttons = QDialogButtonBox(self)
        self.use_button = buttons.addButton(
            "Use working copy", QDialogButtonBox.ButtonRole.AcceptRole
        )
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)

        add_row = QHBoxLayout()
        add_row.addWidget(self.kind_combo, 1)
        add_row.addWidget(self.add_button)
        move_row = QHBoxLayout()
        for button in (self.remove_button, self.up_button, self.down_button, self.reset_button):
            move_row.addWidget(button)
        left = QVBoxLayout()
        left.addLayout(add_row)
        left.addWidget(self.step_list, 1)
        left.addLayout(move_row)
        left.addWidget(self.params_box)
        left.addWidget(self.does_label)
        previews = QHBoxLayout()
        for view, caption in (
            (self.original_view, self.original_caption),
            (self.working_view, self.working_caption),
        ):
            column = QVBoxLayout()
            column.addWidget(view, 1)
            column.addWidget(caption)
            previews.addLayout(column)
        body = QHBoxLayout()
        body.addLayout(left, 2)
        body.addLayout(previews, 5)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(self.error_label)
        note = QLabel(
            "The original is never changed. The search runs on the working copy and records the "
            "original's SHA-256, these steps in order with their parameters, the working copy's "
            "SHA-256 and the OpenCV version, so anyone can redo them.",
            self,
        )
        note.setWordWrap(True)
        layout.addWidget(note)
        layout.addWidget(buttons)

        self.original_view.setPixmap(self._scaled(bgr_to_qimage(original)))
        self.add_button.clicked.connect(self._on_add_clicked)
        self.remove_button.clicked.connect(self._on_remove_clicked)
        self.up_button.clicked.connect(lambda: self._move(-1))
        self.down_button.clicked.connect(lambda: self._move(+1))
        self.reset_button.clicked.connect(self.reset)
        self.step_list.currentRowChanged.connect(self._on_row_changed)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self._refresh_list(len(self._steps) - 1)
        self._schedule_preview()

    # ------------------------------------------------------------------ steps
    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(self._steps)

    def add_step(self, name: str, **params: Any) -> None:
        """Add a step after the selected one (or at the end), checked by the core."""
        try:
            step = parse_step({"step": name, **params}, len(self._steps) + 1)
        except WorkstationError as exc:
            self.error_label.setText(str(exc))
            return
        row = self.step_list.currentRow()
        at = len(self._steps) if row < 0 else row + 1
        self._steps.insert(at, step)
        self._refresh_list(at)
        if name == "straighten" and not params:
            self._fill_eyes(at)
        self._schedule_preview()

    def reset(self) -> None:
        self._steps.clear()
        self._refresh_list(-1)
        self._schedule_preview()

    def _on_add_clicked(self) -> None:
        self.add_step(str(self.kind_combo.currentData()))

    def _on_remove_clicked(self) -> None:
        row = self.step_list.currentRow()
        if 0 <= row < len(self._steps):
            del self._steps[row]
            self._refresh_list(min(row, len(self._steps) - 1))
            self._schedule_preview()

    def _move(self, delta: int) -> None:
        row = self.step_list.currentRow()
        target = row + delta
        if 0 <= row < len(self._steps) and 0 <= target < len(self._steps):
            self._steps[row], self._steps[target] = self._steps[target], self._steps[row]
            self._refresh_list(target)
            self._schedule_preview()

    def _refresh_list(self, selected: int) -> None:
        self.step_list.blockSignals(True)
        self.step_list.clear()
        for number, step in enumerate(self._steps, start=1):
            self.step_list.addItem(self._item_text(number, step))
        self.step_list.setCurrentRow(selected)
        self.step_list.blockSignals(False)
        self._on_row_changed(selected)

    def _fill_eyes(self, at: int) -> None:
        """Find the eyes on the image as it is before step `at` (on a worker) and level them."""
        if self.find_eyes is None:
            self.error_label.setText("Straighten: set the two eye points by hand (no detector).")
            return
        before, find_eyes, original = self._steps[:at], self.find_eyes, self.original
        step = self._steps[at]

        def work(cancel: CancelToken) -> tuple[Step, Any]:
            return step, find_eyes(apply(original, before) if before else original)

        def done(result: tuple[Step, Any]) -> None:
            step, eyes = result
            if step not in self._steps:
                return
            if eyes is None:
                self.error_label.setText(
                    "Straighten: no face found to level; set the two eye points by hand."
                )
                return
            (x1, y1), (x2, y2) = eyes
            self._replace(
                self._steps.index(step),
                {"eye1_x": x1, "eye1_y": y1, "eye2_x": x2, "eye2_y": y2},
            )

        self.context.pool.start(work, owner=self, on_result=done, on_error=self._on_failed)

    # ------------------------------------------------------------------ parameters
    def _on_row_changed(self, row: int) -> None:
        while self.params_form.rowCount():
            self.params_form.removeRow(0)
        self._controls = {}
        valid = 0 <= row < len(self._steps)
        for button in (self.remove_button, self.up_button, self.down_button):
            button.setEnabled(valid)
        if not valid:
            self.does_label.setText("Add a step: it applies after the selected one.")
            return
        step = self._steps[row]
        self.does_label.setText(f"{step.spec.label}: {step.spec.does}.")
        for param in step.spec.params:
            control = self._control(param, step[param.name])
            control.setToolTip(f"{param.help}; {param.bounds_text()}".strip("; "))
            self._controls[param.name] = control
            self.params_form.addRow(param.name.replace("_", " "), control)

    def _control(self, param: Param, value: Any) -> QWidget:
        if param.kind == "choice":
            combo = QComboBox(self)
            combo.addItems(list(param.choices))
            combo.setCurrentText(str(value))
            combo.currentTextChanged.connect(lambda v, n=param.name: self._on_param(n, v))
            return combo
        assert param.low is not None and param.high is not None
        if param.kind == "int":
            spin = QSpinBox(self)
            spin.setRange(int(param.low), int(param.high))
            spin.setSingleStep(2 if param.odd else 1)
            spin.setValue(int(value))
            spin.valueChanged.connect(lambda v, n=param.name: self._on_param(n, int(v)))
            return spin
        real = QDoubleSpinBox(self)
        real.setDecimals(2)
        real.setRange(param.low, param.high)
        real.setSingleStep(0.1 if param.high - param.low <= 50 else 1.0)
        real.setValue(float(value))
        real.valueChanged.connect(lambda v, n=param.name: self._on_param(n, float(v)))
        return real

    def set_param(self, name: str, value: Any) -> None:
        """Set one parameter of the selected step through its control (as a user would)."""
        control = self._controls[name]
        if isinstance(control, QComboBox):
            control.setCurrentText(str(value))
        elif isinstance(control, QSpinBox | QDoubleSpinBox):
            control.setValue(value)

    def _on_param(self, name: str, value: Any) -> None:
        row = self.step_list.currentRow()
        if 0 <= row < len(self._steps):
            self._replace(row, {name: value})

    def _replace(self, row: int, changes: dict[str, Any]) -> None:
        step = self._steps[row]
        try:
            new = parse_step({**step.to_dict(), **changes}, row + 1)
        except WorkstationError as exc:
            self.error_label.setText(str(exc))
            return
        self._steps[row] = new
        item = self.step_list.item(row)
        if item is not None:
            item.setText(self._item_text(row + 1, new))
        if row == self.step_list.currentRow():  # values set by the program: show them
            for name, value in changes.items():
                control = self._controls.get(name)
                if isinstance(control, QDoubleSpinBox) and control.value() != value:
                    control.blockSignals(True)
                    control.setValue(float(value))
                    control.blockSignals(False)
        self._schedule_preview()

    # ------------------------------------------------------------------ preview
    def _schedule_preview(self) -> None:
        """Compute the working copy of the current steps on the pool; older results dropped."""
        self._generation += 1
        generation, steps, original = self._generation, tuple(self._steps), self.original
        self.error_label.setText("")
        self.working_caption.setText("Working copy: computing…")

        def work(cancel: CancelToken) -> tuple[int, QImage, tuple[int, ...]]:
            working = apply(original, steps) if steps else original
            return generation, bgr_to_qimage(working), working.shape

        self.context.pool.start(
            work, owner=self, on_result=self._on_preview, on_error=self._on_failed
        )

    def _on_preview(self, result: tuple[int, QImage, tuple[int, ...]]) -> None:
        generation, image, shape = result
        if generation != self._generation:
            return  # a newer edit is being previewed
        self.working_shape = shape
        self.working_view.setPixmap(self._scaled(image))
        count = len(self._steps)
        label = f"Working copy: {count} step{'s' if count != 1 else ''}" if count else "Original"
        self.working_caption.setText(f"{label}, {shape[1]}×{shape[0]} pixels")
        self.preview_ready.emit()

    def _on_failed(self, message: str) -> None:
        self.error_label.setText(message)
        self.working_caption.setText("Working copy: not made (see the message)")

    @staticmethod
    def _item_text(number: int, step: Step) -> str:
        return f"{number}. {step.spec.label} ({step.values_text})"

    @staticmethod
    def _scaled(image: QImage) -> QPixmap:
        return QPixmap.fromImage(image).scaled(
            PREVIEW_SIDE,
            PREVIEW_SIDE,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )

    @staticmethod
    def _size_words(label: str, bgr: np.ndarray) -> str:
        return f"{label}, {bgr.shape[1]}×{bgr.shape[0]} pixels"
