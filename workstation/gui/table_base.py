"""The part every flat, read-mostly table model here shares: rows in a list, titled columns."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

Index = QModelIndex | QPersistentModelIndex


class RowsTableModel(QAbstractTableModel):
    """A table whose rows live in `self._rows` and whose column titles are `HEADERS`.

    Subclasses define HEADERS (and optionally HEADER_TIPS, NUMBERED_ROWS) and `data`; they change
    `self._rows` only between begin/end calls, as Qt requires.
    """

    HEADERS: tuple[str, ...] = ()
    HEADER_TIPS: tuple[str, ...] = ()
    NUMBERED_ROWS = False  # show 1, 2, 3... in the vertical header

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 (Qt signature)
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(self.HEADERS):
                return self.HEADERS[section]
            if role == Qt.ItemDataRole.ToolTipRole and 0 <= section < len(self.HEADER_TIPS):
                return self.HEADER_TIPS[section]
        elif self.NUMBERED_ROWS and role == Qt.ItemDataRole.DisplayRole:
            return section + 1
        return None

    def set_rows(self, rows: Iterable[Any]) -> None:
        """Replace every row (a model reset: views keep no stale indexes)."""
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def rows(self) -> list[Any]:
        return list(self._rows)

    def row_at(self, index: Index) -> Any | None:
        """The row object behind a valid index of this model, else None."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        return self._rows[index.row()]
