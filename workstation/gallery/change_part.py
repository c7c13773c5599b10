"""What the parts of the unit of work (`subject_writes`, `case_writes`) use of the whole.

`GalleryChange` (workstation.gallery.change) is one class made of those parts; each part is
written against the state and the two primitives declared here, which `GalleryChange` provides:
`_writing()` (the connection, marking the change as one that must be audited) and `_touch()`
(the rows written, whose hashes the next audit event carries).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from workstation.gallery.database import Database
    from workstation.gallery.examiners import RegisteredExaminer
    from workstation.gallery.store import Gallery


class ChangePart:
    """A part of `GalleryChange` (declarations for the type checker only)."""

    if TYPE_CHECKING:
        _conn: Database
        gallery: Gallery
        acting: RegisteredExaminer
        _added: list[tuple[np.ndarray, np.ndarray]]
        _removed: list[int]
        _files: list[str]
        _faces_changed: bool
        _scrub: bool
        _rows: dict[tuple[str, str], bool]

        def _writing(self) -> Database: ...

        def _touch(self, table: str, row_ids: Iterable[Any], removed: bool = False) -> None: ...
