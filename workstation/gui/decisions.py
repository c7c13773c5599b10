"""Decisions on one candidate: possible lead, excluded or inconclusive, each with a note, and the
second examiner's confirmation of a possible lead. Every write goes through the core, which
records it with its audit event; this panel only collects the examiner's choice.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workstation.domain import Candidate, Decision, DecisionRecord
from workstation.gallery.decisions import (
    confirm_lead,
    decisions_for,
    lead_to_confirm,
    record_decision,
    why_no_lead_to_confirm,
)
from workstation.gallery.records import SearchRecord
from workstation.gallery.sheets import DECISIONS_WITHHELD
from workstation.gui.context import AppContext
from workstation.gui.text import escaped, make_plain
from workstation.progress import CancelToken
from workstation.reports.columns import name_words

DECISION_LABELS = {
    Decision.POSSIBLE_LEAD: "Possible lead",
    Decision.EXCLUDED: "Excluded",
    Decision.INCONCLUSIVE: "Inconclusive",
    Decision.CONFIRMED: "Confirmed (second examiner)",
}
DECISION_KEYS = {
    Decision.POSSIBLE_LEAD: "Alt+L",
    Decision.EXCLUDED: "Alt+X",
    Decision.INCONCLUSIVE: "Alt+I",
}
CONFIRM_KEY = "Alt+C"
BLIND_MARK = "[blind review: rank and score were hidden when this was decided]"


def with_blind_mark(note: str | None, blind: bool) -> str | None:
    """The note as recorded: in blind review it says so, for whoever reads the record later."""
    if not blind:
        return note
    return f"{note} {BLIND_MARK}" if note else BLIND_MARK


def pending_confirmation(decisions: list[DecisionRecord], user: str) -> DecisionRecord | None:
    """The possible lead on a candidate that `user` may confirm, as the core rules it
    (`workstation.gallery.decisions.lead_to_confirm`): someone else's, latest, not confirmed."""
    return lead_to_confirm(decisions, user)


class DecisionPanelWidget(QGroupBox):
    """Record and show decisions on the current candidate."""

    decisions_changed = Signal(int, object)  # search id, list[DecisionRecord]
    decision_failed = Signal(str)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__("Decision", parent)
        self.context = context
        self.target_label = QLabel("No candidate chosen.", self)
        # Bold subject and examiner: rich text, with both (stored, typed by people) escaped.
        self.target_label.setTextFormat(Qt.TextFormat.RichText)
        self.target_label.setWordWrap(True)
        self.history = QListWidget(self)
        self.history.setMaximumHeight(90)
        self.history.setWordWrap(True)
        self.history.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.note_edit = QLineEdit(self)
        self.note_edit.setPlaceholderText("Note: what you compared and why you decided so")
        self.buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        for decision in Decision.recordable():
            button = QPushButton(DECISION_LABELS[decision], self)
            button.setShortcut(QKeySequence(DECISION_KEYS[decision]))
            button.setToolTip(f"Record '{DECISION_LABELS[decision]}' ({DECISION_KEYS[decision]})")
            button.clicked.connect(lambda _=False, d=decision: self.record(d))
            row.addWidget(button)
            self.buttons[decision] = button
        self.confirm_button = QPushButton("Confirm lead as second examiner", self)
        self.confirm_button.setShortcut(QKeySequence(CONFIRM_KEY))
        self.confirm_button.setToolTip(
            "A possible lead counts as confirmed only when a second examiner, not the one who "
            f"recorded it, confirms it ({CONFIRM_KEY})"
        )
        self.confirm_button.clicked.connect(self.confirm)
        self.message_label = QLabel(self)
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        make_plain(self.message_label)

        layout = QVBoxLayout(self)
        layout.addWidget(self.target_label)
        layout.addWidget(self.history)
        layout.addWidget(self.note_edit)
        layout.addLayout(row)
        layout.addWidget(self.confirm_button)
        layout.addWidget(self.message_label)

        self._search: SearchRecord | None = None
        self._candidate: Candidate | None = None
        self._busy = False
        self._locked: str | None = None  # why no decision may be recorded now (case status)
        # Set by whoever shows the candidates: True while blind review hides ranks and scores.
        self.scores_hidden: Callable[[], bool] = lambda: False
        self._done_message = ""
        self._refresh()

    # ------------------------------------------------------------------ target
    @property
    def candidate(self) -> Candidate | None:
        return self._candidate

    def set_target(self, search: SearchRecord | None, candidate: Candidate | None) -> None:
        self._search, self._candidate = search, candidate
        self.message_label.setText("")
        self._refresh()

    def _decisions(self) -> list[DecisionRecord]:
        if self._search is None or self._candidate is None:
            return []
        subject = self._candidate.subject_id
        return [d for d in self._search.decisions if d.subject_id == subject]

    def set_locked(self, why: str | None) -> None:
        """No decision may be recorded while `why` is given (the case is closed or archived:
        the core refuses them too); the recorded decisions stay readable."""
        self._locked = why
        for button in (*self.buttons.values(), self.confirm_button):
            button.setToolTip(why or "")
        self._refresh()

    def _refresh(self) -> None:
        search, candidate = self._search, self._candidate
        enabled = search is not None and candidate is not None and not self._busy
        enabled = enabled and self._locked is None
        for button in self.buttons.values():
            button.setEnabled(enabled)
        self.note_edit.setEnabled(enabled)
        self.history.clear()
        if search is None or candidate is None:
            self.target_label.setText("No candidate chosen.")
            self.confirm_button.setEnabled(False)
            return
        name = name_words(candidate)
        name = f" ({escaped(name)})" if name else ""
        self.target_label.setText(
            f"Search {search.search_id}, subject <b>{escaped(candidate.subject_id)}</b>{name}. "
            f"You are recording as <b>{escaped(self.context.user)}</b>."
        )
        decisions = self._decisions()
        for d in decisions:
            note = f": {d.note}" if d.note else ""
            self.history.addItem(
                f"{d.created_at[:19].replace('T', ' ')}  {d.user}  "
                f"{DECISION_LABELS.get(d.decision, d.decision)}{note}"
            )
        withheld = search.decisions_withheld.get(candidate.subject_id, 0)
        if withheld:
            # Blind verification (the core withholds them: gallery/sheets.py).
            self.history.addItem(DECISIONS_WITHHELD.format(count=withheld))
        elif not decisions:
            self.history.addItem("No decision recorded yet.")
        pending = pending_confirmation(decisions, self.context.user)
        self.confirm_button.setEnabled(enabled and pending is not None)

    # ------------------------------------------------------------------ writes
    def record(self, decision: Decision | str) -> None:
        """Record a decision on the current candidate (on a worker, through the core)."""
        search, candidate = self._search, self._candidate
        if search is None or candidate is None or self._busy:
            return
        decision = Decision(decision)
        note = with_blind_mark(self.note_edit.text().strip() or None, self.scores_hidden())
        search_id, subject_id = search.search_id, candidate.subject_id
        context = self.context

        def work(cancel: CancelToken) -> tuple[int, list[DecisionRecord]]:
            with context.open_gallery() as gallery:
                record_decision(gallery, search_id, subject_id, decision, note)
                return search_id, decisions_for(gallery, search_id)

        self._start(work, f"{DECISION_LABELS[decision]} recorded for {subject_id}")

    def confirm(self) -> None:
        """Confirm someone else's possible lead as the second examiner."""
        search, candidate = self._search, self._candidate
        if search is None or candidate is None or self._busy:
            return
        decisions = self._decisions()
        pending = pending_confirmation(decisions, self.context.user)
        if pending is None:
            reason = why_no_lead_to_confirm(decisions, self.context.user)
            self._on_failed(
                f"There is no possible lead on {candidate.subject_id} for you to confirm: {reason}."
            )
            return
        note = self.note_edit.text().strip() or None
        search_id, decision_id = search.search_id, pending.id
        context = self.context

        def work(cancel: CancelToken) -> tuple[int, list[DecisionRecord]]:
            with context.open_gallery() as gallery:
                confirm_lead(gallery, decision_id, note)
                return search_id, decisions_for(gallery, search_id)

        self._start(work, f"Lead on {candidate.subject_id} confirmed by {context.user}")

    def _start(self, work: Callable[[CancelToken], object], done_message: str) -> None:
        self._busy = True
        self._done_message = done_message
        self._refresh()
        self.context.pool.start(
            work,
            owner=self,
            on_result=self._on_recorded,
            on_error=self._on_failed,
            on_finished=self._on_finished,
        )

    def _on_recorded(self, result: tuple[int, list[DecisionRecord]]) -> None:
        search_id, decisions = result
        message = self._done_message
        if self._search is not None and self._search.search_id == search_id:
            self._search = self._search.with_decisions(decisions)
        self.note_edit.clear()
        self.message_label.setStyleSheet("color: #1b6e2a;")
        self.message_label.setText(message + " (written to the audit log).")
        self.context.status_message.emit(message)
        self.context.audit_changed.emit()
        self.decisions_changed.emit(search_id, decisions)

    def _on_failed(self, message: str) -> None:
        self.message_label.setStyleSheet("color: #b00020; font-weight: bold;")
        self.message_label.setText(message)
        self.context.status_message.emit(message)
        self.decision_failed.emit(message)

    def _on_finished(self) -> None:
        self._busy = False
        self._refresh()
