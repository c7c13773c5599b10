"""What every panel of the desktop app shares: gallery folder, examiner, case, engine, workers.

Panels receive one `AppContext` and talk to each other only through its signals, so the main
window composes panels without knowing their insides.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from workstation.gallery.store import Gallery
from workstation.gui.workers import WorkerPool
from workstation.settings import Settings
from workstation.vision.engine import FaceEngine
from workstation.vision.registry import create_engine


@dataclass(frozen=True)
class CaseInfo:
    """The case every search is recorded against."""

    case_id: str
    purpose: str


class AppContext(QObject):
    case_changed = Signal(object)  # CaseInfo | None
    gallery_changed = Signal()  # subjects or faces added, deleted or merged
    audit_changed = Signal()  # a new audit event was written
    status_message = Signal(str)

    def __init__(
        self,
        gallery_dir: Path,
        user: str,
        settings: Settings | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.gallery_dir = Path(gallery_dir)
        self.user = user
        self.settings = settings or Settings()
        self.pool = WorkerPool(self)
        self._case: CaseInfo | None = None
        self._engine: FaceEngine | None = None
        self._engine_lock = threading.Lock()

    # ------------------------------------------------------------------ case
    @property
    def case(self) -> CaseInfo | None:
        return self._case

    def set_case(self, case: CaseInfo | None) -> None:
        self._case = case
        self.case_changed.emit(case)

    # ------------------------------------------------------------------ core access
    def engine(self) -> FaceEngine:
        """The face engine, loaded on first use. Loading takes a second: call it from a worker."""
        with self._engine_lock:
            if self._engine is None:
                model_dir = Path(self.settings.model_dir) if self.settings.model_dir else None
                self._engine = create_engine(
                    self.settings.backend,
                    model_dir=model_dir,
                    insightface_pack=self.settings.insightface_pack,
                )
            return self._engine

    def reset_engine(self) -> None:
        """Forget the engine (after a settings change); the next use loads the new one."""
        with self._engine_lock:
            self._engine = None

    def open_gallery(self) -> Gallery:
        """A new connection for the calling thread; the caller closes it (use `with`)."""
        return Gallery(self.gallery_dir, user=self.user)
