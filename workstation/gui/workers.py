"""Run core work off the GUI thread.

`GeneratorWorker` runs a callable on Qt's thread pool. If the callable returns a generator of
`Progress` (the core's long-work protocol), each step is emitted as `progress`, and the
generator's return value as `result`; a plain return value is emitted as `result` too. Errors a
user caused arrive as `error` with their plain message. Signals cross threads queued, so slots run
on the GUI thread; workers never touch widgets.

The callable runs on a pool thread: it must open its own `Gallery` there (SQLite connections
belong to one thread). The shared `FaceEngine` serialises its own inference and may be used from
any thread.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Generator
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from workstation.errors import WorkstationError
from workstation.progress import CancelToken, Progress, drain

log = logging.getLogger(__name__)


class WorkerSignals(QObject):
    progress = Signal(object)  # Progress
    result = Signal(object)
    error = Signal(str)
    finished = Signal()


class GeneratorWorker(QRunnable):
    """One piece of background work. Keep a reference until `finished` (see WorkerPool)."""

    def __init__(self, work: Callable[[CancelToken], Any]) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.signals = WorkerSignals()
        self.cancel_token = CancelToken()
        self._work = work

    def cancel(self) -> None:
        self.cancel_token.cancel()

    def run(self) -> None:
        try:
            outcome = self._work(self.cancel_token)
            if isinstance(outcome, Generator):
                outcome = drain(outcome, self.signals.progress.emit)
            self.signals.result.emit(outcome)
        except WorkstationError as exc:
            self.signals.error.emit(str(exc))
        except Exception as exc:  # report, never crash the app from a pool thread
            log.error("background work failed:\n%s", traceback.format_exc())
            self.signals.error.emit(f"unexpected error: {type(exc).__name__}: {exc}")
        finally:
            self.signals.finished.emit()


def _while_alive(owner: QObject, callback: Callable[..., None] | None) -> Callable[..., None]:
    """`callback`, called only while `owner` still exists (a closed panel gets no results)."""

    def call(*args: Any) -> None:
        if callback is not None and shiboken6.isValid(owner):
            callback(*args)

    return call


class WorkerPool(QObject):
    """Starts workers, keeps them alive until they finish, and ties each to an owner.

    Every worker has an owner (the panel, dialog or object whose callbacks it calls). When the
    owner is destroyed its workers are cancelled and their results are dropped, so closing a
    panel, a tab or the app never leaves work that calls into something gone ("Signal source
    has been deleted" from a thumbnail batch that outlived its gallery page).
    """

    def __init__(self, parent: QObject | None = None, max_threads: int = 2) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._running: set[GeneratorWorker] = set()

    def start(
        self,
        work: Callable[[CancelToken], Any],
        *,
        owner: QObject,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> GeneratorWorker:
        """Run `work` on a pool thread; its callbacks run on the GUI thread while `owner` lives.

        An owner already gone starts nothing: the worker is returned cancelled and never runs.
        """
        worker = GeneratorWorker(work)
        if not shiboken6.isValid(owner):
            worker.cancel()
            return worker
        # Closing the owner cancels its work; once the work is over the link is cut again, so
        # long-lived owners do not collect one connection per worker they ever started.
        cancel = worker.cancel_token.cancel
        owner.destroyed.connect(cancel)
        signals = worker.signals
        signals.result.connect(_while_alive(owner, on_result))
        signals.error.connect(_while_alive(owner, on_error))
        signals.progress.connect(_while_alive(owner, on_progress))
        signals.finished.connect(_while_alive(owner, on_finished))

        def finished() -> None:
            self._running.discard(worker)
            if shiboken6.isValid(owner):
                owner.destroyed.disconnect(cancel)

        # The pool's own bookkeeping belongs to the pool, which outlives every owner.
        signals.finished.connect(finished)
        self._running.add(worker)
        self._pool.start(worker)
        return worker

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def cancel_all(self) -> None:
        for worker in list(self._running):
            worker.cancel()

    def wait(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)
