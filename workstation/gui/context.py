"""What every panel of the desktop app shares: gallery folder, examiner, case, engine, workers.

Panels receive one `AppContext` and talk to each other only through its signals, so the main
window composes panels without knowing their insides.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from workstation.gallery.examiners import RegisteredExaminer
from workstation.gallery.reads import ReadLedger
from workstation.gallery.store import Gallery, open_gallery
from workstation.gui.workers import WorkerPool
from workstation.identity import Examiner
from workstation.settings import Settings, UiHistory, load_history
from workstation.vision.engine import FaceEngine
from workstation.vision.registry import configuration_key_for_gallery, create_engine


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
    identity_changed = Signal()  # the examiner's registration in the gallery was read

    def __init__(
        self,
        gallery_dir: Path,
        user: str | None = None,
        settings: Settings | None = None,
        parent: QObject | None = None,
        examiner: Examiner | None = None,
        history: UiHistory | None = None,
    ) -> None:
        """Args:
        gallery_dir: the gallery folder.
        user: a test hook: the name to act under instead of the OS login (it must be the
            name registered for the profile's key).
        examiner: who acts (name and profile with the key); default: the OS login.
        """
        super().__init__(parent)
        self.gallery_dir = Path(gallery_dir)
        self.examiner = examiner or Examiner.current(user)
        # The examiner's registration in the gallery (name, roles), read by
        # `refresh_identity`; or why they may not act there.
        self.registration: RegisteredExaminer | None = None
        self.identity_problem: str | None = None
        self.settings = settings or Settings()
        # Recent cases and photos: the examiner's history, kept apart from audited settings.
        self.history = history if history is not None else load_history()
        self.pool = WorkerPool(self)
        self._case: CaseInfo | None = None
        # Asks the examiner for a case (the main window's case dialog, Ctrl+K); None in a
        # panel built alone, which then says a case is needed.
        self.case_asker: Callable[[], CaseInfo | None] | None = None
        # Reads recorded lately in this session (a repeat within minutes is not recorded again).
        self.reads = ReadLedger()
        self._engine: FaceEngine | None = None
        self._engine_lock = threading.Lock()

    # ------------------------------------------------------------------ examiner
    @property
    def user(self) -> str:
        """The examiner's name: as registered for their key, once read; else their login."""
        return self.registration.name if self.registration is not None else self.examiner.name

    def refresh_identity(self) -> None:
        """Read who the examiner is in the gallery (registered name and roles) on a worker;
        `identity_changed` follows. Never fails: a problem is kept in `identity_problem`."""

        def work(_cancel: object) -> tuple[RegisteredExaminer | None, str | None]:
            from workstation.errors import WorkstationError

            try:
                with self.open_gallery() as gallery:
                    return gallery.acting_examiner(), None
            except WorkstationError as exc:
                return None, str(exc)

        self.pool.start(work, owner=self, on_result=self._on_identity)

    def _on_identity(self, found: tuple[RegisteredExaminer | None, str | None]) -> None:
        self.registration, self.identity_problem = found
        self.identity_changed.emit()

    # ------------------------------------------------------------------ case
    @property
    def case(self) -> CaseInfo | None:
        return self._case

    def set_case(self, case: CaseInfo | None) -> None:
        self._case = case
        self.case_changed.emit(case)

    def ensure_case(self) -> CaseInfo | None:
        """The current case, asking for one (the case dialog) when none is set, as a search
        does before it runs; None when the examiner declines (the panel then says why)."""
        if self._case is None and self.case_asker is not None:
            self.case_asker()
        return self._case

    # ------------------------------------------------------------------ core access
    def engine(self) -> FaceEngine:
        """The face engine, loaded on first use. Loading takes a second: call it from a worker."""
        with self._engine_lock:
            if self._engine is None:
                model_dir = Path(self.settings.model_dir) if self.settings.model_dir else None
                # The gallery's own configuration, when it has one (see the core's rule).
                key = configuration_key_for_gallery(
                    Gallery.bound_model_of(self.gallery_dir), self.settings.backend
                )
                self._engine = create_engine(
                    key,
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
        return open_gallery(self.gallery_dir, examiner=self.examiner, create=True)
