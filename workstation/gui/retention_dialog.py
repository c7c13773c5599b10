"""The retention purge from the Gallery tab: list who is past the period, then delete them in
one audited act (workstation.gallery.admin.apply_retention), with a reason.

The delete button stays disabled until the list for the period shown has been made (the dry
run) and a reason written; changing the period clears the list. The list names subjects, so
making it is a recorded read (`retention_list`) against the current case (for maintenance, the
agency's standing reference); without a case it asks for one (the case dialog).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from workstation.gallery.admin import apply_retention, retention_list
from workstation.gallery.subject_reads import SubjectInfo
from workstation.gui.context import AppContext
from workstation.gui.reason_dialog import ReasonRequiredDialog
from workstation.gui.text import make_plain
from workstation.progress import CancelToken

DEFAULT_DAYS = 365
MAX_DAYS = 100 * 365
LISTED_MAX = 2000  # ids shown in the list; the count is always complete


class RetentionDialog(ReasonRequiredDialog):
    """Lists the subjects enrolled more than N days ago; deletes them when confirmed."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(
            "Retention: delete subjects past the retention period",
            "Delete",
            "Reason (required), e.g. the retention rule that applies",
            parent,
        )
        self.setMinimumWidth(640)
        self._context = context
        self.listed: tuple[int, list[str]] | None = None  # (days, subject ids) of the dry run
        self.days_spin = QSpinBox()
        self.days_spin.setRange(0, MAX_DAYS)
        self.days_spin.setValue(DEFAULT_DAYS)
        self.days_spin.setSuffix(" days")
        self.list_button = QPushButton("Show who would be deleted")
        row = QHBoxLayout()
        row.addWidget(QLabel("Subjects enrolled more than"))
        row.addWidget(self.days_spin)
        row.addWidget(QLabel("ago"))
        row.addStretch(1)
        row.addWidget(self.list_button)
        self.days_spin.setMinimumWidth(110)
        self.summary_label = QLabel("Make the list first: nothing is deleted until you confirm.")
        self.summary_label.setWordWrap(True)
        make_plain(self.summary_label)
        self.list_view = QPlainTextEdit()
        self.list_view.setReadOnly(True)
        self.list_view.setMinimumHeight(140)
        self.body.addLayout(row)
        self.body.addWidget(self.summary_label)
        self.body.addWidget(self.list_view)
        self.days_spin.valueChanged.connect(self._on_days_changed)
        self.list_button.clicked.connect(self._on_list_clicked)
        self._refresh_ok()

    @property
    def days(self) -> int:
        return int(self.days_spin.value())

    def _on_days_changed(self, _value: int) -> None:
        self.listed = None
        self.list_view.clear()
        self.summary_label.setText("The period changed: make the list again.")
        self._refresh_ok()

    def _on_list_clicked(self) -> None:
        days, context = self.days, self._context
        case = context.ensure_case()  # the case dialog when none is set
        if case is None:
            self.summary_label.setText(
                "Set a case to make the list: it names subjects, so making it is recorded "
                "against a case number and a purpose (for maintenance, the agency's standing "
                "reference)."
            )
            return
        self.list_button.setEnabled(False)
        self.summary_label.setText("Listing…")

        def work(_cancel: CancelToken) -> tuple[int, list[SubjectInfo]]:
            with context.open_gallery() as gallery:
                going = retention_list(gallery, days, case.case_id, case.purpose)
            return days, going

        context.pool.start(work, owner=self, on_result=self._on_listed, on_error=self._on_failed)

    def _on_listed(self, result: tuple[int, list[SubjectInfo]]) -> None:
        days, going = result
        self.list_button.setEnabled(True)
        if days != self.days:
            return  # the period changed meanwhile
        self.listed = (days, [subject.id for subject in going])
        faces = sum(subject.face_count for subject in going)
        self.summary_label.setText(
            f"{len(going)} subject(s), {faces} face(s), were enrolled more than {days} day(s) "
            "ago. Deleting removes their faces, photos and names; one audit event lists their "
            "ids and your reason."
        )
        lines = [f"{s.id}\tenrolled {s.created_at}" for s in going[:LISTED_MAX]]
        if len(going) > LISTED_MAX:
            lines.append(f"… and {len(going) - LISTED_MAX} more")
        self.list_view.setPlainText("\n".join(lines))
        self._refresh_ok()

    def _on_failed(self, message: str) -> None:
        self.list_button.setEnabled(True)
        self.summary_label.setText(f"The list could not be made: {message}")

    def _on_reason_changed(self) -> None:
        self._refresh_ok()

    def _refresh_ok(self) -> None:
        count = len(self.listed[1]) if self.listed else 0
        self.ok_button.setText(f"Delete {count} subject(s)" if self.listed else "Delete")
        self.ok_button.setEnabled(bool(self.reason) and self.listed is not None and count > 0)

    def run_purge(self, on_done: Any, on_error: Any, owner: QWidget) -> None:
        """Delete the subjects past the period (on a worker), audited with the reason."""
        days, reason, context = self.days, self.reason, self._context

        def work(_cancel: CancelToken) -> dict[str, Any] | None:
            with context.open_gallery() as gallery:
                _, details = apply_retention(gallery, days, reason)
            return details

        context.pool.start(work, owner=owner, on_result=on_done, on_error=on_error)
