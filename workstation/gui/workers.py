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
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from workstation.errors import WorkstationError
from workstation.progress import CancelToken, Progress

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
            if isinstance(outcome, Iterator):
                outcome = self._drain(outcome)
            self.signals.result.emit(outcome)
        except WorkstationError as exc:
            self.signals.error.emit(str(exc))
        except Exception as exc:  # report, never crash the app from a pool thread
            log.error("background work failed:\n%s", traceback.format_exc())
            self.signals.error.emit(f"unexpected error: {type(exc).__name__}: {exc}")
        finally:
            self.signals.finished.emit()

    def _drain(self, steps: Iterator[Progress]) -> Any:
        while True:
            try:
                step = next(steps)
            except StopIteration as stop:
                return stop.value
            self.signals.progress.emit(step)


class WorkerPool(QObject):
    """Starts workers and keeps them alive until they finish."""

    def __init__(self, parent: QObject | None = None, max_threads: int = 2) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._running: set[GeneratorWorker] = set()

    def start(
        self,
        work: Callable[[CancelToken], Any],
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> GeneratorWorker:
        worker = GeneratorWorker(work)
        if on_result is not None:
            worker.signals.result.connect(on_result)
        if on_error is not None:
            worker.signals.error.connect(on_error)
        if on_progress is not None:
            worker.signals.progress.connect(on_progress)
        worker.signals.finished.connect(lambda: self._running.discard(worker))
        if on_finished is not None:
            worker.signals.finished.connect(on_finished)
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
