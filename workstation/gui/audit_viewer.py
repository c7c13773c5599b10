"""Audit viewer: the hash-chained audit log as a read-only table, a case filter, and a verifier.

The table is a thin read-only model over `AuditEvent`s loaded by a worker. Verify walks the whole
chain on a worker (`verify_chain`) and shows whether it holds; when it does not, the first bad
event and the reason, and that row is marked. The head hash is selectable and can be copied, so
an examiner can write it into their notes or a report: it anchors every event before it.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QGuiApplication, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workstation.audit.log import AuditEvent
from workstation.audit.verify import ChainReport
from workstation.gallery.reads import Read, record_read_once
from workstation.gui.context import AppContext
from workstation.gui.table_base import RowsTableModel
from workstation.gui.tasks import TaskWidget
from workstation.gui.text import make_plain, tooltip
from workstation.progress import CancelToken

_Index = QModelIndex | QPersistentModelIndex
ALL_CASES = "All events"
_SUMMARY_LIMIT = 140
_BAD_ROW = QColor(255, 205, 205)


# What an examiner scans for first; the rest follows in key order.
_FIRST_KEYS = (
    "subject_id",
    "keep_subject_id",
    "merged_subject_id",
    "name",
    "decision",
    "reason",
    "note",
    "changes",
    "search_id",
    "decision_id",
    "face_id",
    "quality",
    "file",
    "path",
)
# Technical values that make a one-line summary unreadable; the details pane shows them all.
_NOT_SUMMARISED = frozenset({"box", "landmarks", "model_id", "image_sha256", "calibration"})


def summarise_details(details: dict[str, Any]) -> str:
    """One line of an event's details: the telling values first, long lists counted."""
    keys = [k for k in _FIRST_KEYS if k in details]
    keys += [k for k in details if k not in keys and k not in _NOT_SUMMARISED]
    parts: list[str] = []
    for key in keys:
        value = details[key]
        if isinstance(value, dict):
            if key == "changes":
                parts.extend(f"{k}: {v[0]!r} → {v[1]!r}" for k, v in value.items())
            else:
                parts.append(f"{key}: {{{len(value)} fields}}")
        elif isinstance(value, list):
            if len(value) <= 4 and all(not isinstance(v, (list, dict)) for v in value):
                parts.append(f"{key}: {', '.join(str(v) for v in value)}")
            else:
                parts.append(f"{key}: {len(value)} items")
        elif value is None or value == "":
            continue
        elif isinstance(value, str) and len(value) == 64 and key.endswith(("sha256", "hash")):
            parts.append(f"{key}: {value[:12]}…")
        else:
            parts.append(f"{key}: {value}")
    text = "; ".join(parts)
    return text if len(text) <= _SUMMARY_LIMIT else text[: _SUMMARY_LIMIT - 1] + "…"


class AuditEventsModel(RowsTableModel):
    """Read-only table of audit events (nothing here can change the log)."""

    COL_SEQ, COL_TIME, COL_USER, COL_ACTION, COL_CASE, COL_PURPOSE, COL_DETAILS = range(7)
    HEADERS = ("#", "Time (UTC)", "User", "Action", "Case", "Purpose", "Details")
    EventRole = Qt.ItemDataRole.UserRole + 1
    SeqRole = Qt.ItemDataRole.UserRole + 2

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[AuditEvent] = []
        self._bad_seq: int | None = None

    def set_events(self, events: list[AuditEvent]) -> None:
        self.set_rows(events)

    def events(self) -> list[AuditEvent]:
        return list(self._rows)

    def row_of(self, seq: int) -> int:
        for row, event in enumerate(self._rows):
            if event.seq == seq:
                return row
        return -1

    def set_bad_seq(self, seq: int | None) -> None:
        """Mark the first event the verifier rejected (None clears the mark)."""
        changed = [s for s in (self._bad_seq, seq) if s is not None]
        self._bad_seq = seq
        last = self.columnCount() - 1
        for s in changed:
            row = self.row_of(s)
            if row >= 0:
                self.dataChanged.emit(
                    self.index(row, 0), self.index(row, last), [Qt.ItemDataRole.BackgroundRole]
                )

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        event = self.row_at(index)
        if event is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(event, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == self.COL_DETAILS:
                return tooltip(json.dumps(event.details, indent=2, ensure_ascii=False))
            if col == self.COL_TIME:
                return tooltip(event.time)
            return tooltip(self._display(event, col))
        if role == Qt.ItemDataRole.BackgroundRole and event.seq == self._bad_seq:
            return _BAD_ROW
        if role == Qt.ItemDataRole.TextAlignmentRole and col == self.COL_SEQ:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == self.EventRole:
            return event
        if role == self.SeqRole:
            return event.seq
        return None

    def _display(self, event: AuditEvent, col: int) -> Any:
        if col == self.COL_SEQ:
            return str(event.seq)
        if col == self.COL_TIME:
            return event.time[:19].replace("T", " ")
        if col == self.COL_USER:
            return event.user
        if col == self.COL_ACTION:
            return event.action
        if col == self.COL_CASE:
            return event.case_id or ""
        if col == self.COL_PURPOSE:
            return event.purpose or ""
        if col == self.COL_DETAILS:
            return summarise_details(event.details)
        return None


def event_text(event: AuditEvent) -> str:
    """The full event as an examiner would quote it: every hashed field plus both hashes.

    Indented JSON, except that lists of plain values (boxes, id lists) stay on one line.
    """
    return _readable_json(event.to_dict(), 0)


def _readable_json(value: Any, depth: int) -> str:
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, dict) and value:
        items = [
            f"{inner}{json.dumps(k, ensure_ascii=False)}: {_readable_json(v, depth + 1)}"
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = [f"{inner}{_readable_json(v, depth + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(value, ensure_ascii=False)


class AuditViewerWidget(QWidget):
    """Browse, filter and verify the audit log of the current gallery. Read-only."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._context = context
        self._load_seq = 0
        self.loading = False
        self.last_report: ChainReport | None = None

        self.case_combo = QComboBox()
        self.case_combo.setMinimumContentsLength(18)
        self.case_combo.addItem(ALL_CASES, None)
        self.refresh_button = QPushButton("Refresh")
        self.verify_button = QPushButton("Verify chain")
        self.verify_button.setToolTip(
            "Recompute every event's hash from the first to the last and check the links"
        )
        self.count_label = QLabel("")
        # Reading the log is itself recorded against a case: without one, this asks for it.
        self.case_button = QPushButton("Set case…")
        self.case_button.setToolTip("Reading the audit log is recorded against a case (Ctrl+K)")
        self.case_button.hide()
        # The events are read (and the reading recorded) only when the tab is in view: a tab
        # behind another is not consulted, so new events elsewhere only mark it stale.
        self._stale = True
        self.model = AuditEventsModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for col, width in (
            (AuditEventsModel.COL_SEQ, 48),
            (AuditEventsModel.COL_TIME, 150),
            (AuditEventsModel.COL_USER, 90),
            (AuditEventsModel.COL_ACTION, 110),
            (AuditEventsModel.COL_CASE, 110),
            (AuditEventsModel.COL_PURPOSE, 160),
        ):
            self.table.setColumnWidth(col, width)
        self.details_text = QPlainTextEdit()
        self.details_text.setReadOnly(True)
        self.details_text.setPlaceholderText("Select an event to see all its fields and hashes.")

        # Verifying reads every event once; it cannot be cancelled half-way (no Cancel).
        self.verify_task = TaskWidget(
            context.pool,
            self,
            hide_when_idle=True,
            bar_width=120,
            hold=[self.verify_button],
            with_cancel=False,
        )
        self.verify_progress = self.verify_task.progress_bar
        self.result_label = QLabel("The chain has not been verified in this session.")
        self.result_label.setWordWrap(True)
        make_plain(self.count_label, self.result_label)  # case ids and stored messages
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.head_hash_edit = QLineEdit()
        self.head_hash_edit.setReadOnly(True)
        self.head_hash_edit.setPlaceholderText("head hash appears after verification")
        mono = self.head_hash_edit.font()
        mono.setFamily("monospace")
        mono.setStyleHint(mono.StyleHint.Monospace)
        self.head_hash_edit.setFont(mono)
        self.details_text.setFont(mono)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setEnabled(False)

        top = QHBoxLayout()
        top.addWidget(QLabel("Case:"))
        top.addWidget(self.case_combo)
        top.addWidget(self.refresh_button)
        top.addWidget(self.count_label, 1)
        top.addWidget(self.case_button)
        top.addWidget(self.verify_task)
        top.addWidget(self.verify_button)
        head_row = QHBoxLayout()
        self.head_label = QLabel("Head hash:")
        head_row.addWidget(self.head_label)
        head_row.addWidget(self.head_hash_edit, 1)
        head_row.addWidget(self.copy_button)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.details_text)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.result_label)
        layout.addLayout(head_row)

        self.case_combo.currentIndexChanged.connect(self._on_case_filter_changed)
        self.refresh_button.clicked.connect(self.reload)
        self.verify_button.clicked.connect(self._on_verify_clicked)
        self.copy_button.clicked.connect(self._on_copy_clicked)
        self.table.selectionModel().currentRowChanged.connect(self._on_event_chosen)
        context.audit_changed.connect(self._on_audit_changed)
        context.case_changed.connect(self._on_context_case_changed)
        self.case_button.clicked.connect(context.ensure_case)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale:
            self.reload()

    # ------------------------------------------------------------------ public
    @property
    def case_filter(self) -> str | None:
        return self.case_combo.currentData()

    def set_case_filter(self, case_id: str | None) -> None:
        """Show one case's events (None: all); the case is added to the list if new."""
        if case_id is None:
            self.case_combo.setCurrentIndex(0)
            return
        found = self.case_combo.findData(case_id)
        if found < 0:
            self.case_combo.addItem(case_id, case_id)
            found = self.case_combo.count() - 1
        self.case_combo.setCurrentIndex(found)

    def reload(self) -> None:
        """Load the events (of the chosen case) and the list of cases on a worker; the reading
        is recorded (the case filter, how many events, their range) against the open case."""
        self._load_seq += 1
        self._stale = False
        seq, case_id, context = self._load_seq, self.case_filter, self._context
        served = context.case
        if served is None:
            self.loading = False
            self.model.set_events([])
            self.details_text.clear()
            self.count_label.setText(
                "Set a case to read the audit log: reading it is recorded against a case "
                "number and a purpose."
            )
            self.case_button.show()
            return
        self.case_button.hide()
        self.loading = True

        def work(_cancel: CancelToken) -> tuple[int, list[AuditEvent], list[str]]:
            with context.open_gallery() as gallery:
                with gallery.read_snapshot():
                    events = gallery.audit_events(case_id=case_id)
                    cases = sorted(
                        {str(c["id"]) for c in gallery.cases()}
                        | {e.case_id for e in events if e.case_id}
                    )
                first, last = (events[0].seq, events[-1].seq) if events else (None, None)
                record_read_once(
                    gallery,
                    context.reads,
                    Read.AUDIT_LOG,
                    {
                        "case_filter": case_id,
                        "events": len(events),
                        "first_seq": first,
                        "last_seq": last,
                    },
                    served.case_id,
                    served.purpose,
                    what=(case_id, len(events), first, last),
                )
            return seq, events, cases

        context.pool.start(
            work, owner=self, on_result=self._on_events_loaded, on_error=self._on_load_failed
        )

    # ------------------------------------------------------------------ slots
    def _on_events_loaded(self, loaded: tuple[int, list[AuditEvent], list[str]]) -> None:
        seq, events, cases = loaded
        if seq != self._load_seq:
            return
        self.loading = False
        self.model.set_events(events)
        if self.last_report is not None and not self.last_report.intact:
            self.model.set_bad_seq(self.last_report.first_bad_seq)
        self.case_combo.blockSignals(True)
        for case_id in cases:
            if self.case_combo.findData(case_id) < 0:
                self.case_combo.addItem(case_id, case_id)
        self.case_combo.blockSignals(False)
        scope = f"for case {self.case_filter}" if self.case_filter else "in the log"
        self.count_label.setText(f"{len(events)} event{'s' if len(events) != 1 else ''} {scope}")
        self.details_text.clear()
        if events:
            self.table.scrollToBottom()

    def _on_load_failed(self, message: str) -> None:
        self.loading = False
        self._show_result(f"Cannot read the audit log: {message}", ok=False)

    def _on_case_filter_changed(self, _index: int) -> None:
        self._reload_when_seen()

    def _on_context_case_changed(self, case: Any) -> None:
        if case is not None and self.case_combo.findData(case.case_id) < 0:
            self.case_combo.addItem(case.case_id, case.case_id)
        self._reload_when_seen()  # read (and recorded) again for the case now served

    def _reload_when_seen(self) -> None:
        if self.isVisible():
            self.reload()
        else:
            self._stale = True

    def _on_audit_changed(self) -> None:
        stale = "verify again"
        if self.last_report is not None and stale not in self.result_label.text():
            self.result_label.setText(
                self.result_label.text() + "  (New events were written since; verify again.)"
            )
        self._reload_when_seen()

    def _on_event_chosen(self, current: QModelIndex, _previous: QModelIndex) -> None:
        event = current.siblingAtColumn(0).data(AuditEventsModel.EventRole)
        self.details_text.setPlainText(event_text(event) if event else "")

    @property
    def verifying(self) -> bool:
        return self.verify_task.running

    def _on_verify_clicked(self) -> None:
        if self.verifying:
            return
        self._show_result("Verifying the whole chain…", ok=None)
        context = self._context

        def work(_cancel: CancelToken) -> ChainReport:
            with context.open_gallery() as gallery:
                return gallery.verify_audit()

        self.verify_task.start(work, on_result=self._on_verified, on_error=self._on_verify_failed)

    def _on_verified(self, report: ChainReport) -> None:
        self.last_report = report
        self.head_hash_edit.setText(report.head_hash)
        self.copy_button.setEnabled(True)
        if report.intact:
            self.head_label.setText(f"Head hash (event {report.head_seq}):")
            self.model.set_bad_seq(None)
            self._show_result(
                f"Chain intact: all {report.events} events verified, from the first to event "
                f"{report.head_seq}.",
                ok=True,
            )
            return
        self.head_label.setText(f"Last good hash (event {report.head_seq}):")
        self.model.set_bad_seq(report.first_bad_seq)
        self._show_result(
            f"Chain BROKEN at event {report.first_bad_seq}: {report.problem}. Events 1 to "
            f"{report.head_seq} verify; from event {report.first_bad_seq} on the log cannot be "
            "trusted. Keep this copy of the gallery unchanged and report it.",
            ok=False,
        )
        row = self.model.row_of(report.first_bad_seq or -1)
        if row >= 0:
            self.table.selectRow(row)
            self.table.scrollTo(self.model.index(row, 0))

    def _on_verify_failed(self, message: str) -> None:
        self.last_report = None
        self._show_result(f"The chain could not be verified: {message}", ok=False)

    def _on_copy_clicked(self) -> None:
        text = self.head_hash_edit.text()
        if text:
            QGuiApplication.clipboard().setText(text)
            self._context.status_message.emit("Head hash copied to the clipboard.")

    def _show_result(self, text: str, ok: bool | None) -> None:
        colour = {True: "#1b6e20", False: "#b00020", None: ""}[ok]
        weight = "font-weight: bold;" if ok is not None else ""
        self.result_label.setStyleSheet(f"color: {colour}; {weight}" if colour else "")
        self.result_label.setText(text)
