"""The case bar: case number, purpose and examiner, always in view; and the dialog that asks
for a case number and a purpose before any search (recent cases are offered).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workstation.domain import CaseStatus
from workstation.errors import WorkstationError
from workstation.gui.context import AppContext, CaseInfo
from workstation.gui.text import escaped, tooltip
from workstation.progress import CancelToken
from workstation.settings import save_history


def remember_recent(context: AppContext, key: str, value: str) -> None:
    """Put `value` first in the examiner's history (recent_cases / recent_files) and save it.

    Recent lists are the examiner's own history, not configuration: they are saved to their own
    file, apart from the audited settings; the searches themselves are audited.
    """
    context.history.remember(key, value)
    try:
        save_history(context.history)
    except (OSError, WorkstationError) as exc:
        context.status_message.emit(f"recent list not saved: {exc}")


class CaseDialog(QDialog):
    """Asks for the case number and the purpose of the searches."""

    def __init__(
        self,
        recent_cases: list[str],
        known_purposes: dict[str, str],
        current: CaseInfo | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Case for this search")
        self._purposes = known_purposes
        intro = QLabel(
            "Every search is recorded against a case number and a purpose in the audit log. "
            "Enter them, or choose a recent case.",
            self,
        )
        intro.setWordWrap(True)
        self.case_combo = QComboBox(self)
        self.case_combo.setEditable(True)
        self.case_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.case_combo.addItems(recent_cases)
        editor = self.case_combo.lineEdit()
        if editor is not None:  # an editable combo always has one
            editor.setPlaceholderText("e.g. 2026-004512")
        self.purpose_edit = QLineEdit(self)
        self.purpose_edit.setPlaceholderText("e.g. identify the robbery suspect in CCTV still 3")
        if current is not None:
            self.case_combo.setEditText(current.case_id)
            self.purpose_edit.setText(current.purpose)
        else:
            self.case_combo.setEditText("")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Case number:", self.case_combo)
        form.addRow("Purpose:", self.purpose_edit)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self.case_combo.currentTextChanged.connect(self._on_case_text_changed)
        self.purpose_edit.textChanged.connect(self._update_ok)
        self.setMinimumWidth(480)
        self._update_ok()

    def _on_case_text_changed(self, text: str) -> None:
        purpose = self._purposes.get(text.strip())
        if purpose and not self.purpose_edit.text().strip():
            self.purpose_edit.setText(purpose)
        self._update_ok()

    def _update_ok(self, *_args: object) -> None:
        ok = bool(self.case_combo.currentText().strip() and self.purpose_edit.text().strip())
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)

    def case_info(self) -> CaseInfo:
        return CaseInfo(self.case_combo.currentText().strip(), self.purpose_edit.text().strip())


class CaseBarWidget(QFrame):
    """Shows the current case, purpose and examiner; opens the case dialog."""

    case_dialog_opened = Signal(object)  # the CaseDialog, before exec (tests and tours use it)
    case_status_shown = Signal(object)  # the current case's CaseStatus, as last read

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("caseBar")
        self.setStyleSheet("#caseBar { background: #eef2f7; } QLabel { padding: 0 6px; }")
        # Rich text: a bold caption, then the stored value escaped (it may hold "<", "&").
        self.case_label = QLabel(self)
        self.purpose_label = QLabel(self)
        self.purpose_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.user_label = QLabel(self)
        for label in (self.case_label, self.purpose_label, self.user_label):
            label.setTextFormat(Qt.TextFormat.RichText)
        self.change_button = QPushButton("Set case…", self)
        self.change_button.setToolTip("Set the case number and purpose (Ctrl+K)")
        self.change_button.clicked.connect(self.ask_case)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.case_label)
        layout.addWidget(self.purpose_label, 1)
        layout.addWidget(self.user_label)
        layout.addWidget(self.change_button)
        self._purposes: dict[str, str] = {}
        self._statuses: dict[str, CaseStatus] = {}
        context.case_changed.connect(self._on_case_changed)
        # A case's status may have changed elsewhere (closed or archived here, or by another
        # examiner): read again when the case changes and after each act.
        context.case_changed.connect(lambda _case: self.refresh_known_cases())
        context.audit_changed.connect(self.refresh_known_cases)
        context.identity_changed.connect(self._show_examiner)
        self._on_case_changed(context.case)
        self.refresh_known_cases()
        context.refresh_identity()

    def refresh_known_cases(self) -> None:
        """Read the gallery's cases (for their purposes) on a worker."""
        context = self.context

        def work(cancel: CancelToken) -> list[dict[str, Any]]:
            with context.open_gallery() as gallery:
                return gallery.cases()

        context.pool.start(work, owner=self, on_result=self._on_cases_loaded)

    def _on_cases_loaded(self, cases: list[dict[str, Any]]) -> None:
        self._purposes = {str(c["id"]): str(c["purpose"]) for c in cases}
        self._statuses = {str(c["id"]): CaseStatus.of_row(c) for c in cases}
        self._on_case_changed(self.context.case)

    def case_status(self, case_id: str) -> CaseStatus:
        """The status of a case as last read (a new case is open)."""
        return self._statuses.get(case_id, CaseStatus.OPEN)

    def _on_case_changed(self, case: CaseInfo | None) -> None:
        if case is None:
            self.case_status_shown.emit(CaseStatus.OPEN)  # a new case is open
            self.case_label.setText("<b>Case:</b> <span style='color:#b00020'>none set</span>")
            self.purpose_label.setText("<b>Purpose:</b> —")
            self.change_button.setText("Set case…")
        else:
            status = self.case_status(case.case_id)
            badge = {
                CaseStatus.OPEN: "",
                CaseStatus.CLOSED: " <span style='color:#8a5a00'>(closed: reopen to search)</span>",
                CaseStatus.ARCHIVED: " <span style='color:#b00020'>(archived: read-only)</span>",
            }[status]
            self.case_label.setText(f"<b>Case:</b> {escaped(case.case_id)}{badge}")
            self.case_status_shown.emit(status)
            self.purpose_label.setText(f"<b>Purpose:</b> {escaped(case.purpose)}")
            self.change_button.setText("Change case…")
        self._show_examiner()

    def _show_examiner(self) -> None:
        """The examiner (the name registered for their key) and their roles; in red when they
        may not act in this gallery, with the reason in the tooltip."""
        context = self.context
        registration = context.registration
        if registration is not None:
            self.user_label.setText(
                f"<b>Examiner:</b> {escaped(registration.name)} "
                f"<span style='color:#555'>({escaped(registration.roles_text)})</span>"
            )
            self.user_label.setToolTip("")
        elif context.identity_problem:
            self.user_label.setText(
                f"<b>Examiner:</b> {escaped(context.examiner.name)} "
                "<span style='color:#b00020'>(not registered here)</span>"
            )
            self.user_label.setToolTip(tooltip(context.identity_problem))
        else:
            self.user_label.setText(f"<b>Examiner:</b> {escaped(context.examiner.name)}")

    def make_dialog(self) -> CaseDialog:
        recent = list(self.context.history.recent_cases)
        for case_id in self._purposes:
            if case_id not in recent:
                recent.append(case_id)
        return CaseDialog(recent, self._purposes, self.context.case, self.window())

    def ask_case(self) -> CaseInfo | None:
        """Open the case dialog; set and return the case when the examiner confirms it."""
        dialog = self.make_dialog()
        self.case_dialog_opened.emit(dialog)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return self.apply(dialog.case_info())

    def apply(self, case: CaseInfo) -> CaseInfo:
        self._purposes.setdefault(case.case_id, case.purpose)
        remember_recent(self.context, "recent_cases", case.case_id)
        self.context.set_case(case)
        self.context.status_message.emit(f"Case {case.case_id}: {case.purpose}")
        return case

    def ensure_case(self) -> CaseInfo | None:
        """The current case, asking for one first when none is set."""
        return self.context.case or self.ask_case()
