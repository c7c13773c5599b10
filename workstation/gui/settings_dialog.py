"""Settings dialog: gallery folder, face model backend, default number of candidates.

Saving goes through the core's one settings act (`apply_settings_change` in
workstation/gallery/settings_change.py): validated, audited in the current gallery and put in
place together, on a worker. When the model changes, the shared engine is dropped and the next
search loads the new one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from workstation.gallery.settings_change import apply_settings_change
from workstation.gui.context import AppContext
from workstation.gui.text import make_plain, tooltip
from workstation.paths import default_gallery_dir
from workstation.progress import CancelToken
from workstation.settings import Settings, engine_keys
from workstation.vision.insightface_backend import (
    INSIGHTFACE_LICENCE_NOTE,
    insightface_models_root,
    list_packs,
)
from workstation.vision.registry import CONFIGURATIONS, configuration


class SettingsDialog(QDialog):
    """Edit and save the user's settings; every saved change is audited."""

    gallery_folder_changed = Signal(str)  # the new folder ("" for the default); used next start
    settings_saved = Signal(dict)  # the changes, {key: [old, new]}

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        self._context = context
        self.saving = False
        self.saved_changes: dict[str, Any] | None = None
        self._pending = context.settings
        settings = context.settings

        self.gallery_edit = QLineEdit(settings.gallery or "")
        self.gallery_edit.setPlaceholderText(f"default: {default_gallery_dir()}")
        self.browse_button = QPushButton("Browse…")
        self.backend_combo = QComboBox()
        for config in CONFIGURATIONS:
            if config.offered:
                self.backend_combo.addItem(config.label, config.key)
                self.backend_combo.setItemData(
                    self.backend_combo.count() - 1, config.summary, Qt.ItemDataRole.ToolTipRole
                )
        # The chosen configuration's trade-off in words (speed against accuracy).
        self.backend_summary = QLabel("")
        self.backend_summary.setWordWrap(True)
        self.pack_combo = QComboBox()
        self.pack_combo.setEditable(True)
        self.pack_combo.setToolTip(
            tooltip(f"A pack name under {insightface_models_root()}, or the path of a pack folder")
        )
        for pack in list_packs():
            self.pack_combo.addItem(pack.name, pack.name)
        if settings.insightface_pack:
            if self.pack_combo.findData(settings.insightface_pack) < 0:
                self.pack_combo.addItem(settings.insightface_pack, settings.insightface_pack)
            self.pack_combo.setCurrentIndex(self.pack_combo.findData(settings.insightface_pack))
        self.pack_label = QLabel("Model pack")
        self.licence_label = QLabel(
            f"<b>Licence:</b> {INSIGHTFACE_LICENCE_NOTE}. Use a pack only if you hold a licence "
            "that covers your use. Nothing is downloaded."
        )
        self.licence_label.setWordWrap(True)
        self.licence_label.setStyleSheet("color: #8a4b00;")
        self.model_note = QLabel(
            "A gallery remembers the model that built it and keeps using it: this choice "
            "applies to new galleries, and to an existing one once it is re-embedded "
            "(workstation reembed)."
        )
        self.model_note.setWordWrap(True)
        self.top_k_spin = QSpinBox()
        self.top_k_spin.setRange(1, 1000)
        self.top_k_spin.setValue(int(settings.top_k))
        self.top_k_spin.setSuffix(" candidates")
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b00020;")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        make_plain(self.error_label)  # messages naming folders and files
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        audit_note = QLabel(
            f"Saved changes are recorded in the audit log of the gallery {context.gallery_dir} "
            f"under your name ({context.user})."
        )
        audit_note.setWordWrap(True)
        audit_note.setStyleSheet("color: #555;")

        gallery_row = QHBoxLayout()
        gallery_row.addWidget(self.gallery_edit, 1)
        gallery_row.addWidget(self.browse_button)
        form = QFormLayout()
        form.addRow("Gallery folder", gallery_row)
        gallery_hint = QLabel("A new gallery folder is used from the next start of the program.")
        gallery_hint.setStyleSheet("color: #555;")
        form.addRow("", gallery_hint)
        form.addRow("Default candidates", self.top_k_spin)
        form.addRow("Face model", self.backend_combo)
        form.addRow(self.pack_label, self.pack_combo)
        # Wrapped notes sit outside the form: QFormLayout sizes word-wrapped labels badly.
        notes = QVBoxLayout()
        spacing = form.horizontalSpacing()
        if spacing < 0:  # "use the style's spacing"
            spacing = self.style().pixelMetric(QStyle.PixelMetric.PM_LayoutHorizontalSpacing)
        indent = form.labelForField(self.top_k_spin).sizeHint().width() + max(spacing, 0)
        notes.setContentsMargins(indent, 0, 0, 0)
        notes.addWidget(self.backend_summary)
        notes.addWidget(self.licence_label)
        notes.addWidget(self.model_note)
        layout = QVBoxLayout(self)
        # Grow and shrink with the rows shown (the pack and licence rows come and go), so that
        # wrapped notes are never clipped.
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        layout.addLayout(form)
        layout.addLayout(notes)
        layout.addWidget(audit_note)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

        self.backend_combo.currentIndexChanged.connect(self._on_backend_changed)
        self.browse_button.clicked.connect(self._on_browse_clicked)
        self.buttons.accepted.connect(self._on_save_clicked)
        self.buttons.rejected.connect(self.reject)
        self.backend_combo.setCurrentIndex(max(0, self.backend_combo.findData(settings.backend)))
        self._on_backend_changed(self.backend_combo.currentIndex())

    # ------------------------------------------------------------------ public
    def edited_settings(self) -> Settings:
        """The settings as edited in the dialog (not yet saved)."""
        backend = self.backend_combo.currentData()
        pack = self.pack_combo.currentText().strip() or None
        gallery = self.gallery_edit.text().strip() or None
        return dataclasses.replace(
            self._context.settings,
            gallery=gallery,
            backend=backend,
            insightface_pack=pack if configuration(backend).needs_pack else None,
            top_k=self.top_k_spin.value(),
        )

    # ------------------------------------------------------------------ slots
    def _on_backend_changed(self, _index: int) -> None:
        chosen = configuration(self.backend_combo.currentData())
        self.backend_summary.setText(chosen.summary)
        insightface = chosen.needs_pack
        for widget in (self.pack_label, self.pack_combo, self.licence_label):
            widget.setVisible(insightface)
        # A wrapped label's minimum height is its height at its narrowest: one longer summary
        # than the one the dialog opened with was clipped. Ask for the height at the width it
        # has, and again once the dialog has resized (its width, and so the wrapping, may move).
        label, layout = self.backend_summary, self.layout()
        for _ in range(3):
            needed = label.heightForWidth(max(label.width(), 300))
            if needed == label.minimumHeight():
                break
            label.setMinimumHeight(needed)
            if layout is not None:
                layout.activate()
            self.adjustSize()
        editor = self.pack_combo.lineEdit()  # None unless the combo is editable
        if insightface and self.pack_combo.count() == 0 and editor is not None:
            editor.setPlaceholderText(f"no pack found under {insightface_models_root()}")

    def _on_browse_clicked(self) -> None:
        start = self.gallery_edit.text().strip() or str(default_gallery_dir())
        chosen = QFileDialog.getExistingDirectory(self, "Choose the gallery folder", start)
        if chosen:
            self.gallery_edit.setText(chosen)

    def _on_save_clicked(self) -> None:
        if self.saving:
            return
        new = self.edited_settings()
        problem = self._problem_with(new)
        if problem:
            self.error_label.setText(problem)
            return
        self.error_label.setText("")
        self.saving = True
        self.save_button.setEnabled(False)
        context = self._context

        def work(_cancel: CancelToken) -> dict[str, Any]:
            return save_and_audit(context, new)

        self._pending = new
        context.pool.start(
            work,
            owner=self,
            on_result=self._on_saved,
            on_error=self._on_save_failed,
            on_finished=self._on_save_finished,
        )

    def _on_saved(self, changes: dict[str, Any]) -> None:
        context, new = self._context, self._pending
        context.settings = new
        self.saved_changes = changes
        if engine_keys() & set(changes):
            context.reset_engine()
        if changes:
            context.audit_changed.emit()
            context.status_message.emit(
                f"Settings saved ({', '.join(sorted(changes))} changed); the change is audited."
            )
        if "gallery" in changes:
            self.gallery_folder_changed.emit(new.gallery or "")
        self.settings_saved.emit(changes)
        self.accept()

    def _on_save_failed(self, message: str) -> None:
        self.error_label.setText(f"The settings were not saved: {message}")

    def _on_save_finished(self) -> None:
        self.saving = False
        self.save_button.setEnabled(True)

    def _problem_with(self, new: Settings) -> str | None:
        if configuration(new.backend).needs_pack and not new.insightface_pack:
            return (
                "Choose an insightface model pack, or keep a shipped model. No pack was "
                f"found under {insightface_models_root()}."
            )
        if new.gallery:
            folder = Path(new.gallery).expanduser()
            if folder.exists() and not folder.is_dir():
                return f"{folder}: this is a file, not a folder; choose a folder for the gallery."
        return None


def save_and_audit(context: AppContext, new: Settings) -> dict[str, Any]:
    """Save settings with their audit event in the current gallery (runs on a worker).

    Returns the changes ({key: [old, new]}); nothing is written or audited when nothing changed.
    """
    with context.open_gallery() as gallery:
        return apply_settings_change(gallery, new)
