"""The candidate list: one row per gallery subject a search returned, with a permanent reminder
that these are investigative leads, not identifications, and a blind-review mode.

In blind review the rows are shown in an order derived from the search and subject ids (not the
score order), and rank, score and false-match columns read "hidden" until the examiner has
recorded a decision on every candidate: the examiner judges faces, not numbers.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workstation.domain import Candidate, DecisionRecord
from workstation.gallery.records import SearchRecord
from workstation.gui.context import AppContext
from workstation.gui.search_records import (
    THUMB_SIDE,
    blind_order_key,
    load_case_searches,
    load_thumbnails,
    read_case_searches,
)
from workstation.gui.table_base import RowsTableModel
from workstation.gui.text import tooltip as plain_tooltip
from workstation.progress import CancelToken
from workstation.reports.columns import (
    HIDDEN,
    NA,
    Align,
    Surface,
    column_index,
    columns_for,
    decision_text,
)

__all__ = [
    "HIDDEN",
    "NA",
    "decision_text",
    "load_case_searches",
]

Index = QModelIndex | QPersistentModelIndex
COLUMNS = columns_for(Surface.SEARCH_TAB)


class CandidateTableModel(RowsTableModel):
    """Rows are the candidates of one search record; read-only. Columns, headers and words come
    from the one candidate column spec (workstation.reports.columns)."""

    COLUMNS = COLUMNS
    # Columns this model treats specially (the thumbnail); the others are only read from the spec.
    COL_RANK = column_index(Surface.SEARCH_TAB, "rank")
    COL_THUMB = column_index(Surface.SEARCH_TAB, "face")
    COL_SUBJECT = column_index(Surface.SEARCH_TAB, "subject")
    COL_NAME = column_index(Surface.SEARCH_TAB, "name")
    COL_SCORE = column_index(Surface.SEARCH_TAB, "score")
    COL_FMR = column_index(Surface.SEARCH_TAB, "fmr")
    COL_STRANGERS = column_index(Surface.SEARCH_TAB, "strangers")
    COL_QUALITY = column_index(Surface.SEARCH_TAB, "quality")
    COL_DECISION = column_index(Surface.SEARCH_TAB, "decision")
    NUMBERED_ROWS = True
    HEADERS = tuple(c.header for c in COLUMNS)
    HEADER_TIPS = tuple(c.tooltip for c in COLUMNS)
    CandidateRole = Qt.ItemDataRole.UserRole + 1
    SortKeyRole = Qt.ItemDataRole.UserRole + 2
    _RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    _LEFT = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)

    def __init__(self, user: str, parent: Any = None) -> None:
        super().__init__(parent)
        self.user = user
        self._search: SearchRecord | None = None
        self._rows: list[Candidate] = []
        self._thumbs: dict[int, QPixmap] = {}
        self._blind = False
        self._rows_hidden = False

    # ------------------------------------------------------------------ content
    @property
    def search(self) -> SearchRecord | None:
        return self._search

    def set_search(self, search: SearchRecord | None) -> None:
        self.beginResetModel()
        self._search = search
        self._thumbs.clear()
        self._rows = self._ordered()
        self.endResetModel()

    def _ordered(self) -> list[Candidate]:
        if self._search is None:
            return []
        candidates = list(self._search.candidates)
        self._rows_hidden = self.scores_hidden
        if self._rows_hidden:
            sid = self._search.search_id
            return sorted(candidates, key=lambda c: blind_order_key(sid, c.subject_id))
        return sorted(candidates, key=lambda c: c.rank)

    def set_thumbnails(self, search_id: int, thumbs: dict[int, QImage]) -> None:
        """Face thumbnails by face id (arrive from a worker)."""
        if self._search is None or self._search.search_id != search_id:
            return
        for face_id, image in thumbs.items():
            self._thumbs[face_id] = QPixmap.fromImage(image)
        if self._rows:
            self.dataChanged.emit(
                self.index(0, self.COL_THUMB), self.index(len(self._rows) - 1, self.COL_THUMB)
            )

    def set_decisions(self, search_id: int, decisions: list[DecisionRecord]) -> None:
        if self._search is None or self._search.search_id != search_id:
            return
        # Compare with how the rows were last laid out: the decisions decide blind review.
        self._search = self._search.with_decisions(decisions)
        if self._rows_hidden != self.scores_hidden:
            self.beginResetModel()
            self._rows = self._ordered()
            self.endResetModel()
        elif self._rows:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._rows) - 1, self.columnCount() - 1)
            )

    # ------------------------------------------------------------------ blind review
    @property
    def blind(self) -> bool:
        return self._blind

    def set_blind(self, on: bool) -> None:
        self.beginResetModel()
        self._blind = on
        self._rows = self._ordered()
        self.endResetModel()

    def decisions_of(self, subject_id: str) -> list[DecisionRecord]:
        return [] if self._search is None else self._search.decisions_of(subject_id)

    @property
    def undecided(self) -> int:
        """Candidates on which this examiner has recorded no decision yet."""
        if self._search is None:
            return 0
        decided = {
            d.subject_id
            for d in self._search.decisions
            if d.user == self.user and d.decision != "confirmed"
        }
        return sum(1 for c in self._search.candidates if c.subject_id not in decided)

    @property
    def scores_hidden(self) -> bool:
        return self._blind and self.undecided > 0

    # ------------------------------------------------------------------ Qt model API
    def candidate(self, row: int) -> Candidate | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, subject_id: str) -> int:
        for row, candidate in enumerate(self._rows):
            if candidate.subject_id == subject_id:
                return row
        return -1

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        candidate = self.row_at(index)
        if candidate is None or self._search is None:
            return None
        column = self.COLUMNS[index.column()]
        if role == self.CandidateRole:
            return candidate
        if role == self.SortKeyRole:
            return candidate.rank
        if column.image:
            if role == Qt.ItemDataRole.DecorationRole:
                return self._thumbs.get(candidate.face_id)
            if role == Qt.ItemDataRole.SizeHintRole:
                return QSize(THUMB_SIDE + 4, THUMB_SIDE + 4)
            if role == Qt.ItemDataRole.ToolTipRole:
                return plain_tooltip(column.tip(candidate, self._search))
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self._RIGHT if column.align is Align.RIGHT else self._LEFT
        hidden = column.hidden_in_blind_review and self.scores_hidden
        if role == Qt.ItemDataRole.DisplayRole:
            return HIDDEN if hidden else column.text(candidate, self._search)
        if role == Qt.ItemDataRole.ToolTipRole:
            # Names and ids are stored text: shown as text, never as markup.
            return HIDDEN if hidden else plain_tooltip(column.tip(candidate, self._search))
        return None


# ---------------------------------------------------------------------- widget

LEADS_NOT_IDENTIFICATIONS = (
    "Candidates are investigative leads, not identifications. A trained examiner must review "
    "every candidate before anyone acts on it."
)


class CandidatesWidget(QWidget):
    """The leads line, the case's searches, and the candidate table."""

    candidate_selected = Signal(object, object)  # SearchRecord, Candidate | None
    search_chosen = Signal(object)  # SearchRecord | None
    compare_requested = Signal()
    searches_loaded = Signal(int)  # number of searches in the case

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.model = CandidateTableModel(context.user, self)
        self.caveat_label = QLabel(LEADS_NOT_IDENTIFICATIONS, self)
        self.caveat_label.setWordWrap(True)
        self.caveat_label.setStyleSheet(
            "background: #fff4ce; color: #5c4400; border: 1px solid #e0c060; padding: 6px;"
            "font-weight: bold;"
        )
        self.search_combo = QComboBox(self)
        self.search_combo.setToolTip("Searches recorded in this case (yours and other examiners')")
        self.search_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.blind_box = QCheckBox("Blind review", self)
        self.blind_box.setToolTip(
            "Hide ranks and scores, and mix the order, until you have recorded a decision on "
            "every candidate (Ctrl+B)"
        )
        self.blind_label = QLabel(self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setIconSize(QSize(THUMB_SIDE, THUMB_SIDE))
        self.table.verticalHeader().setDefaultSectionSize(THUMB_SIDE + 6)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

        row = QHBoxLayout()
        row.addWidget(QLabel("Search:", self))
        row.addWidget(self.search_combo, 1)
        row.addWidget(self.blind_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caveat_label)
        layout.addLayout(row)
        layout.addWidget(self.blind_label)
        layout.addWidget(self.table, 1)

        self._searches: list[SearchRecord] = []
        self.search_combo.currentIndexChanged.connect(self._on_search_chosen)
        self.blind_box.toggled.connect(self._on_blind_toggled)
        self.table.selectionModel().currentRowChanged.connect(self._on_row_changed)
        # Enter or double-click on a row opens the compare view.
        self.table.activated.connect(lambda _index: self.compare_requested.emit())
        self.model.modelReset.connect(self._update_blind_label)
        self.model.dataChanged.connect(self._update_blind_label)
        self._update_blind_label()

    # ------------------------------------------------------------------ searches
    @property
    def searches(self) -> list[SearchRecord]:
        return list(self._searches)

    @property
    def current_search(self) -> SearchRecord | None:
        return self.model.search

    def current_candidate(self) -> Candidate | None:
        index = self.table.currentIndex()
        return self.model.candidate(index.row()) if index.isValid() else None

    def reload(self, select_search_id: int | None = None) -> None:
        """Re-read the current case's searches on a worker; optionally show one of them."""
        case = self.context.case
        if case is None:
            self._on_searches_loaded(([], None))
            return
        context = self.context

        def work(cancel: CancelToken) -> tuple[list[SearchRecord], int | None]:
            with context.open_gallery() as gallery:
                # Recorded before they show (a read of the case's records); a failure to
                # record (an examiner not registered here) shows nothing.
                searches = read_case_searches(gallery, context.reads, case.case_id, case.purpose)
                return searches, select_search_id

        context.pool.start(
            work, owner=self, on_result=self._on_searches_loaded, on_error=self._on_failed
        )

    def _on_failed(self, message: str) -> None:
        # Nothing read could be recorded: nothing is shown (not even the previous case's list).
        self._on_searches_loaded(([], None))
        self.context.status_message.emit(f"The case's searches are not shown: {message}")

    def _on_searches_loaded(self, loaded: tuple[list[SearchRecord], int | None]) -> None:
        searches, wanted = loaded
        previous = self.model.search.search_id if self.model.search else None
        self._searches = searches
        target = wanted if wanted is not None else previous
        self.search_combo.blockSignals(True)
        self.search_combo.clear()
        for search in searches:
            self.search_combo.addItem(search.title, search.search_id)
        position = self.search_combo.findData(target) if target is not None else -1
        if position < 0 and searches:
            position = len(searches) - 1
        self.search_combo.setCurrentIndex(position)
        self.search_combo.blockSignals(False)
        self._on_search_chosen(position)
        self.searches_loaded.emit(len(searches))

    def _on_search_chosen(self, position: int) -> None:
        search = self._searches[position] if 0 <= position < len(self._searches) else None
        self.model.set_search(search)
        self.search_chosen.emit(search)
        if search is not None and search.candidates:
            self.table.selectRow(0)
            self._load_thumbnails(search)
        else:
            self.candidate_selected.emit(search, None)

    def _load_thumbnails(self, search: SearchRecord) -> None:
        context = self.context

        def work(cancel: CancelToken) -> tuple[int, dict[int, QImage]]:
            with context.open_gallery() as gallery:
                return search.search_id, load_thumbnails(gallery, search.candidates)

        # Bound methods (not lambdas) so Qt drops the call if this widget is gone by then.
        context.pool.start(work, owner=self, on_result=self._on_thumbnails_ready)

    def _on_thumbnails_ready(self, result: tuple[int, dict[int, QImage]]) -> None:
        self.model.set_thumbnails(*result)

    def set_decisions(self, search_id: int, decisions: list[DecisionRecord]) -> None:
        current = self.current_candidate()
        self.model.set_decisions(search_id, decisions)
        # Keep the case's list in step, so choosing this search again shows its decisions.
        self._searches = [
            s.with_decisions(decisions) if s.search_id == search_id else s for s in self._searches
        ]
        if current is not None:
            row = self.model.row_of(current.subject_id)
            if row >= 0 and row != self.table.currentIndex().row():
                self.table.selectRow(row)

    def select_candidate_row(self, row: int) -> None:
        if 0 <= row < self.model.rowCount():
            self.table.selectRow(row)

    def step(self, delta: int) -> Candidate | None:
        """Move to the next (+1) or previous (-1) candidate; returns it."""
        count = self.model.rowCount()
        if not count:
            return None
        row = self.table.currentIndex().row()
        self.select_candidate_row(min(max(row + delta, 0), count - 1))
        return self.current_candidate()

    # ------------------------------------------------------------------ blind review
    def _on_blind_toggled(self, on: bool) -> None:
        current = self.current_candidate()
        self.model.set_blind(on)
        if on or current is None:
            # Start at the top of the mixed order: keeping the old row would point at rank 1.
            self.select_candidate_row(0)
        else:
            self.select_candidate_row(self.model.row_of(current.subject_id))

    def _update_blind_label(self, *_args: object) -> None:
        if not self.model.blind:
            self.blind_label.hide()
            return
        self.blind_label.show()
        if self.model.scores_hidden:
            self.blind_label.setText(
                f"Blind review: ranks and scores are hidden until you record a decision on "
                f"every candidate ({self.model.undecided} to go)."
            )
        else:
            self.blind_label.setText("Blind review complete: ranks and scores are shown.")

    def _on_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.candidate_selected.emit(self.model.search, self.model.candidate(current.row()))
