"""Confirmations that change the gallery for good (delete, merge) and so need a written reason."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


def ok_cancel_buttons(dialog: QDialog, ok_text: str) -> tuple[QDialogButtonBox, QPushButton]:
    """OK, named for the act it confirms, and Cancel, wired to the dialog's accept and reject."""
    buttons = QDialogButtonBox(
        QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, dialog
    )
    ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
    ok_button.setText(ok_text)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    return buttons, ok_button


class ReasonRequiredDialog(QDialog):
    """OK stays disabled until a reason is written; the reason goes into the audit log.

    Subclasses put what is being confirmed into `self.body`, above the reason box.
    """

    def __init__(
        self, title: str, ok_text: str, placeholder: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.body = QVBoxLayout()
        self.reason_edit = QPlainTextEdit()
        self.reason_edit.setPlaceholderText(placeholder)
        self.reason_edit.setMaximumHeight(90)
        self.buttons, self.ok_button = ok_cancel_buttons(self, ok_text)
        self.ok_button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addLayout(self.body)
        layout.addWidget(self.reason_edit)
        layout.addWidget(self.buttons)
        self.reason_edit.textChanged.connect(self._on_reason_changed)

    @property
    def reason(self) -> str:
        return self.reason_edit.toPlainText().strip()

    def _on_reason_changed(self) -> None:
        self.ok_button.setEnabled(bool(self.reason))
