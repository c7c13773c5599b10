"""The Cases tab: every case of the gallery as a list (the core's `case_summaries`, the same
facts `workstation cases` prints), opening one in the Search tab, and closing, reopening or
archiving it (audited acts with a reason, refused by the core when the case's status forbids).

The list is read on a worker; double-click or Enter on a row opens the case: it becomes the
current case and the Search tab shows its searches, decisions and reports.

Listing the cases is a consultation (their numbers, purposes, examiners and counts): it is
recorded (`gallery.reads`, one event naming the case numbers shown) against the current case
before it shows, and read only while the tab is in view. Without a case the list stays empty
and offers *Set case…*: a supervisor browsing every case uses the agency's standing
supervision reference (docs/ACCOUNTABILITY.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtGui import QColor, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workstation.domain import CaseStatus
from workstation.errors import WorkstationError
from workstation.gallery.cases import (
    DEFAULT_RETENTION_DAYS,
    CaseSummary,
    archive_case,
    authorise_case,
    case_authorisation,
    case_summaries,
    close_case,
    reopen_case,
)
from workstation.gallery.reads import Read, cases_consulted, record_read_once
from workstation.gui.context import AppContext, CaseInfo
from workstation.gui.reason_dialog import ReasonRequiredDialog, ok_cancel_buttons
from workstation.gui.table_base import Index, RowsTableModel
from workstation.gui.text import plain_label, tooltip
from workstation.progress import CancelToken

ALL = "All cases"
PAST_RETENTION = "Past retention date"
_FILTERS = (ALL, "Open", "Closed", "Archived", PAST_RETENTION)
_ARCHIVED_ROW = QColor(232, 232, 232)
_PAST_RETENTION_ROW = QColor(255, 222, 200)


def _authorisation_text(summary: CaseSummary) -> str:
    a = summary.authorisation
    return f"{a.by}, {a.at} ({a.reference})" if a else "—"


def _kept_text(summary: CaseSummary) -> str:
    if summary.retain_until is None:
        return "while open"
    return summary.retain_until + ("  PAST" if summary.past_retention else "")


class CasesTableModel(RowsTableModel):
    HEADERS = (
        "Case",
        "Status",
        "Purpose",
        "Examiners",
        "Searches",
        "Leads",
        "Confirmed",
        "Last activity (UTC)",
        "Authorised",
        "Kept until",
    )
    HEADER_TIPS = (
        "The case number",
        "Open: work goes on. Closed: no new work until reopened. Archived: read-only for good",
        "The purpose recorded with the case's first search",
        "Everyone who acted on the case (searches, decisions, exports), in order",
        "Searches recorded in the case",
        "Candidates whose standing decision is a possible lead",
        "Leads confirmed by a second examiner",
        "The time of the case's latest audited act",
        "Who approved the case's searches, when, and the approval's reference",
        "The date the case's records are kept until (set when it is closed or archived)",
    )
    _CELLS: tuple[Callable[[CaseSummary], Any], ...] = (
        lambda s: s.case_id,
        lambda s: s.status.value,
        lambda s: s.purpose,
        lambda s: ", ".join(s.examiners),
        lambda s: s.searches,
        lambda s: s.leads,
        lambda s: s.confirmations,
        lambda s: s.last_activity.replace("T", " ")[:19],
        _authorisation_text,
        _kept_text,
    )

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        summary: CaseSummary | None = self.row_at(index)
        if summary is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._CELLS[index.column()](summary)
        if role == Qt.ItemDataRole.TextAlignmentRole and 4 <= index.column() <= 6:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole:
            if summary.past_retention:
                return _PAST_RETENTION_ROW
            if summary.status is CaseStatus.ARCHIVED:
                return _ARCHIVED_ROW
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [f"{summary.case_id}: {summary.status.value}"]
            if summary.status_changed_at:
                lines.append(
                    f"{summary.status.value} by {summary.status_changed_by} at "
                    f"{summary.status_changed_at}: {summary.status_reason}"
                )
            if summary.past_retention:
                lines.append(f"past its retention date ({summary.retain_until})")
            return tooltip("\n".join(lines))
        return None


class CaseStatusDialog(ReasonRequiredDialog):
    """Close, reopen or archive a case: a reason (audited) and, for close and archive, the date
    the case's records are kept until."""

    def __init__(self, action: str, summary: CaseSummary, parent: QWidget | None = None) -> None:
        words = {
            "close": "No new searches, decisions or watches on it until it is reopened.",
            "reopen": "Work on the case may go on; its retention date is cleared while open.",
            "archive": "Read-only for good: it can be read and exported, never changed again.",
        }[action]
        super().__init__(
            f"{action.capitalize()} case {summary.case_id}",
            f"{action.capitalize()} case",
            f"Reason (required, recorded in the audit log), e.g. "
            f"{'suspect charged' if action == 'close' else 'court case concluded'}",
            parent,
        )
        self.action = action
        self.case_id = summary.case_id
        intro = plain_label(f"Case {summary.case_id} ({summary.purpose}): {words}", self)
        intro.setWordWrap(True)
        self.body.addWidget(intro)
        self.until_edit: QDateEdit | None = None
        if action != "reopen":
            kept = summary.retain_until
            start = (
                date.fromisoformat(kept)
                if kept
                else datetime.now(UTC).date() + timedelta(days=DEFAULT_RETENTION_DAYS)
            )
            self.until_edit = QDateEdit(QDate(start.year, start.month, start.day), self)
            self.until_edit.setCalendarPopup(True)
            self.until_edit.setDisplayFormat("yyyy-MM-dd")
            form = QFormLayout()
            form.addRow("Keep records until:", self.until_edit)
            self.body.addLayout(form)
        self.setMinimumWidth(460)

    @property
    def retain_until(self) -> str | None:
        if self.until_edit is None:
            return None
        return self.until_edit.date().toString("yyyy-MM-dd")


class AuthorisationDialog(QDialog):
    """Who approved a case's searches, when, and the approval's reference (all three needed:
    the core's `case_authorisation` refuses a partial one). Recorded as an audited act on the
    case (`authorise_case`, as `workstation cases authorise`); the report shows it."""

    def __init__(self, summary: CaseSummary, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Authorisation of case {summary.case_id}")
        self.case_id = summary.case_id
        current = summary.authorisation
        intro = plain_label(
            f"Case {summary.case_id} ({summary.purpose}): who approved its searches (e.g. the "
            "prosecutor or judge), on what date, and the approval's reference. Recorded in the "
            "audit log and printed in the case report"
            + (f"; it replaces {_authorisation_text(summary)}." if current else "."),
            self,
        )
        intro.setWordWrap(True)
        self.by_edit = QLineEdit(current.by if current else "", self)
        self.by_edit.setPlaceholderText("e.g. J. Prosecutor")
        start = date.fromisoformat(current.at) if current and _is_iso(current.at) else None
        start = start or datetime.now(UTC).date()
        self.at_edit = QDateEdit(QDate(start.year, start.month, start.day), self)
        self.at_edit.setCalendarPopup(True)
        self.at_edit.setDisplayFormat("yyyy-MM-dd")
        self.reference_edit = QLineEdit(current.reference if current else "", self)
        self.reference_edit.setPlaceholderText("e.g. order 17/2026")
        form = QFormLayout()
        form.addRow("Authorised by:", self.by_edit)
        form.addRow("On:", self.at_edit)
        form.addRow("Reference:", self.reference_edit)
        self.buttons, self.ok_button = ok_cancel_buttons(self, "Record authorisation")
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self.by_edit.textChanged.connect(self._update)
        self.reference_edit.textChanged.connect(self._update)
        self.setMinimumWidth(480)
        self._update()

    @property
    def authorised_by(self) -> str:
        return self.by_edit.text().strip()

    @property
    def authorised_at(self) -> str:
        return self.at_edit.date().toString("yyyy-MM-dd")

    @property
    def reference(self) -> str:
        return self.reference_edit.text().strip()

    def _update(self, *_args: object) -> None:
        self.ok_button.setEnabled(bool(self.authorised_by and self.reference))


def _is_iso(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


class CasesPanelWidget(QWidget):
    """The list of cases, a filter, and the acts on the chosen case."""

    case_opened = Signal(object)  # CaseInfo: the main window shows the Search tab
    cases_loaded = Signal(int)
    status_dialog_opened = Signal(object)  # the CaseStatusDialog, before exec (tests, tours)
    authorisation_dialog_opened = Signal(object)  # the AuthorisationDialog, before exec

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.model = CasesTableModel(self)
        self.filter_combo = QComboBox(self)
        self.filter_combo.addItems(_FILTERS)
        self.search_edit = QLineEdit(self)
        self.search_edit.setPlaceholderText("Filter by case number, purpose or examiner")
        self.search_edit.setClearButtonEnabled(True)
        self.refresh_button = QPushButton("Refresh", self)
        self.open_button = QPushButton("Open in Search", self)
        self.open_button.setToolTip("Make it the current case and show its searches (Enter)")
        self.close_button = QPushButton("Close case…", self)
        self.reopen_button = QPushButton("Reopen…", self)
        self.archive_button = QPushButton("Archive…", self)
        self.authorise_button = QPushButton("Authorisation…", self)
        self.summary_label = plain_label("", self)
        # Shown when no case is open: listing the cases is recorded against one.
        self.case_button = QPushButton("Set case…", self)
        self.case_button.setToolTip(
            "Listing the cases is recorded against a case number and a purpose (Ctrl+K)"
        )
        self.case_button.hide()
        self.case_note = plain_label(
            "Set a case to list the cases: listing them is recorded against a case number and "
            "a purpose (for supervision, the agency's standing reference).",
            self,
        )
        self.case_note.setWordWrap(True)
        self.case_note.hide()
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)

        top = QHBoxLayout()
        top.addWidget(self.filter_combo)
        top.addWidget(self.search_edit, 1)
        top.addWidget(self.refresh_button)
        buttons = QHBoxLayout()
        for button in (self.open_button, self.close_button, self.reopen_button):
            buttons.addWidget(button)
        buttons.addWidget(self.archive_button)
        buttons.addWidget(self.authorise_button)
        buttons.addStretch(1)
        buttons.addWidget(self.summary_label)
        needs_case = QHBoxLayout()
        needs_case.addWidget(self.case_note, 1)
        needs_case.addWidget(self.case_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(needs_case)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

        self._all: list[CaseSummary] = []
        self.filter_combo.currentIndexChanged.connect(self._apply_filter)
        self.search_edit.textChanged.connect(self._apply_filter)
        self.refresh_button.clicked.connect(self.reload)
        self.case_button.clicked.connect(context.ensure_case)
        self.open_button.clicked.connect(self.open_current)
        self.close_button.clicked.connect(lambda: self.ask_status("close"))
        self.reopen_button.clicked.connect(lambda: self.ask_status("reopen"))
        self.archive_button.clicked.connect(lambda: self.ask_status("archive"))
        self.authorise_button.clicked.connect(self.ask_authorisation)
        # Enter or double-click on a row opens the case.
        self.table.activated.connect(lambda _index: self.open_current())
        self.table.selectionModel().currentRowChanged.connect(self._update_buttons)
        self.model.modelReset.connect(self._update_buttons)
        # Read (and the reading recorded) only while the tab is in view: changes elsewhere
        # and a new case only mark it stale.
        self._stale = True
        context.audit_changed.connect(self._reload_when_seen)
        context.gallery_changed.connect(self._reload_when_seen)
        context.case_changed.connect(self._on_case_changed)
        self._update_buttons()

    def _on_case_changed(self, case: CaseInfo | None) -> None:
        # A list already on screen was recorded for the case it was read under; it is read
        # again for the new case when next shown (opening a case from it sets the case and
        # leaves the tab: no second reading). An empty list (no case until now) reads at once.
        if case is not None and not self._all and self.isVisible():
            self.reload()
        else:
            self._stale = True

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale:
            self.reload()

    def _reload_when_seen(self, *_args: object) -> None:
        if self.isVisible():
            self.reload()
        else:
            self._stale = True

    # ------------------------------------------------------------------ list
    def reload(self) -> None:
        """Read the list of cases on a worker, the reading recorded against the current case
        before it shows (once while the same cases are listed for it within minutes)."""
        self._stale = False
        context, served = self.context, self.context.case
        if served is None:
            self._all = []
            self.model.set_rows([])
            self.summary_label.setText("No case set: nothing listed")
            self.case_note.show()
            self.case_button.show()
            return
        self.case_note.hide()
        self.case_button.hide()

        def work(cancel: CancelToken) -> list[CaseSummary]:
            with context.open_gallery() as gallery:
                summaries = case_summaries(gallery)
                ids = tuple(s.case_id for s in summaries)
                record_read_once(
                    gallery,
                    context.reads,
                    Read.CASE_LIST,
                    cases_consulted(ids),
                    served.case_id,
                    served.purpose,
                    what=ids,
                )
                return summaries

        context.pool.start(
            work, owner=self, on_result=self._on_loaded, on_error=self._on_load_failed
        )

    def _on_load_failed(self, message: str) -> None:
        # The reading could not be recorded (or made): nothing is shown.
        self._all = []
        self.model.set_rows([])
        self._failed(f"The cases are not listed: {message}")

    def _failed(self, message: str) -> None:
        self.summary_label.setText(message)
        self.context.status_message.emit(message)

    def _on_loaded(self, summaries: list[CaseSummary]) -> None:
        self._all = summaries
        self._apply_filter()
        self.cases_loaded.emit(len(summaries))

    def _apply_filter(self, *_args: object) -> None:
        chosen = self.filter_combo.currentText()
        words = self.search_edit.text().strip().casefold()
        current = self.current_summary()
        shown = []
        for summary in self._all:
            if chosen == PAST_RETENTION and not summary.past_retention:
                continue
            if chosen not in (ALL, PAST_RETENTION) and summary.status.value != chosen.lower():
                continue
            haystack = " ".join((summary.case_id, summary.purpose, *summary.examiners))
            if words and words not in haystack.casefold():
                continue
            shown.append(summary)
        self.model.set_rows(shown)
        if current is not None:
            self.select_case(current.case_id)
        past = sum(s.past_retention for s in self._all)
        text = f"{len(shown)} of {len(self._all)} case(s)"
        if past:
            text += f"; {past} past their retention date"
        self.summary_label.setText(text)

    def summaries(self) -> list[CaseSummary]:
        """The rows shown, in order."""
        return self.model.rows()

    def current_summary(self) -> CaseSummary | None:
        return self.model.row_at(self.table.currentIndex())

    def select_case(self, case_id: str) -> bool:
        for row, summary in enumerate(self.model.rows()):
            if summary.case_id == case_id:
                self.table.selectRow(row)
                return True
        return False

    def _update_buttons(self, *_args: object) -> None:
        summary = self.current_summary()
        status = summary.status if summary else None
        self.open_button.setEnabled(summary is not None)
        self.close_button.setEnabled(status is CaseStatus.OPEN)
        self.reopen_button.setEnabled(status is CaseStatus.CLOSED)
        self.archive_button.setEnabled(status in (CaseStatus.OPEN, CaseStatus.CLOSED))
        # The core refuses an authorisation change on a closed or archived case.
        self.authorise_button.setEnabled(status is CaseStatus.OPEN)
        self.authorise_button.setToolTip(
            "Record who approved the case's searches, when, and the reference (audited)"
            if status is not CaseStatus.ARCHIVED and status is not CaseStatus.CLOSED
            else "The case is not open: its authorisation cannot change (reopen it first)"
        )
        if status is CaseStatus.ARCHIVED:
            why = "Archived: the case is read-only; it can be opened, read and exported"
            for button in (self.close_button, self.reopen_button, self.archive_button):
                button.setToolTip(why)
        else:
            self.close_button.setToolTip("Close the case: no new work until it is reopened")
            self.reopen_button.setToolTip("Reopen a closed case")
            self.archive_button.setToolTip("Archive the case: read-only for good")

    # ------------------------------------------------------------------ acts
    def open_current(self) -> None:
        """Make the chosen case the current one; the Search tab shows its searches."""
        summary = self.current_summary()
        if summary is None:
            return
        case = CaseInfo(summary.case_id, summary.purpose)
        self.context.set_case(case)
        words = {
            CaseStatus.OPEN: "",
            CaseStatus.CLOSED: " (closed: reopen it to search again)",
            CaseStatus.ARCHIVED: " (archived: read-only)",
        }[summary.status]
        self.context.status_message.emit(f"Case {summary.case_id} opened{words}")
        self.case_opened.emit(case)

    def make_status_dialog(self, action: str) -> CaseStatusDialog | None:
        summary = self.current_summary()
        return None if summary is None else CaseStatusDialog(action, summary, self.window())

    def ask_status(self, action: str) -> None:
        dialog = self.make_status_dialog(action)
        if dialog is None:
            return
        self.status_dialog_opened.emit(dialog)
        if dialog.exec() != CaseStatusDialog.DialogCode.Accepted:
            return
        self.apply_status(action, dialog.case_id, dialog.reason, dialog.retain_until)

    def ask_authorisation(self) -> None:
        summary = self.current_summary()
        if summary is None:
            return
        dialog = AuthorisationDialog(summary, self.window())
        self.authorisation_dialog_opened.emit(dialog)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        self.apply_authorisation(
            dialog.case_id, dialog.authorised_by, dialog.authorised_at, dialog.reference
        )

    def apply_authorisation(self, case_id: str, by: str, at: str, reference: str) -> None:
        """Record who authorised `case_id`'s searches, on a worker (the core checks the role
        and the case's status, and audits it, as `workstation cases authorise` does)."""
        context = self.context

        def work(cancel: CancelToken) -> str:
            authorisation = case_authorisation(by, at, reference)
            if authorisation is None:
                raise WorkstationError(
                    "give who authorised the searches, when, and the approval's reference"
                )
            with context.open_gallery() as gallery:
                authorise_case(gallery, case_id, authorisation)
            return (
                f"Case {case_id}: authorised by {authorisation.by} on {authorisation.at} "
                f"({authorisation.reference}); recorded in the audit log"
            )

        context.pool.start(work, owner=self, on_result=self._on_status_done, on_error=self._failed)

    def apply_status(
        self, action: str, case_id: str, reason: str, retain_until: str | None
    ) -> None:
        """Close, reopen or archive `case_id` on a worker (the core checks and audits it)."""
        context = self.context

        def work(cancel: CancelToken) -> str:
            with context.open_gallery() as gallery:
                if action == "close":
                    close_case(gallery, case_id, reason, retain_until)
                elif action == "reopen":
                    reopen_case(gallery, case_id, reason)
                else:
                    archive_case(gallery, case_id, reason, retain_until)
            return f"Case {case_id}: {action} recorded in the audit log"

        context.pool.start(work, owner=self, on_result=self._on_status_done, on_error=self._failed)

    def _on_status_done(self, message: str) -> None:
        self.context.status_message.emit(message)
        self.summary_label.setText(message)
        self.context.audit_changed.emit()  # reloads this list and the audit viewer
