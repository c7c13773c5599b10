"""One task runner for every panel: core work on the worker pool, with progress, Cancel and errors.

Core long work is a generator yielding `Progress` and honouring a `CancelToken`
(`workstation.progress`); quick work is a plain callable. A panel that runs such work puts one
`TaskWidget` (a progress bar and a Cancel button) in its layout and calls
`task.start(work, on_result=..., on_error=...)`. The widget then

- runs the work on the app's worker pool, owned by itself: closing the panel cancels the work
  and drops its results (`WorkerPool`), so no panel keeps worker bookkeeping of its own;
- shows the progress: a busy bar while the total is unknown, then `done / total` (or the text
  asked for); when the work ends the bar keeps the last count (how far it got, also after a
  Cancel), or goes back to `idle_text` if there never was a count (or `keep_count` is False);
- enables Cancel while work that can be cancelled runs; pressing it (or Esc in the main window,
  which cancels the tasks of the tab in view: `MainWindowWidget.cancel_current_task`) asks the
  work to stop at its next check and says what is kept (`cancel_message`);
- disables the controls it holds (`hold`) while work runs, and says `busy_changed` as work
  starts and ends for panels whose other controls depend on more than that;
- delivers the result, or the error in words (`WorkerPool` turns a `WorkstationError` into its
  message and anything else into "unexpected error: ...", logged with its traceback).

One task at a time per widget: `start` refuses while one runs. napari's `_qt/qthreading.py` is
the model: one worker factory owns the progress bar and cancellation for every panel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QWidget

from workstation.gui.workers import GeneratorWorker, WorkerPool
from workstation.progress import CancelToken, Progress

COUNT_TEXT = "%v / %m"  # QProgressBar placeholders: value / maximum


class TaskWidget(QWidget):
    """A progress bar and a Cancel button that run one piece of core work at a time."""

    busy_changed = Signal(bool)

    def __init__(
        self,
        pool: WorkerPool,
        parent: QWidget,
        *,
        idle_text: str = "",
        cancel_tip: str = "Stop (Esc)",
        show_status: Callable[[str], None] | None = None,
        hold: Iterable[QWidget] = (),
        hide_when_idle: bool = False,
        bar_width: int | None = None,
        with_cancel: bool = True,
        keep_count: bool = True,
    ) -> None:
        """
        Args:
            pool: the app's worker pool (`AppContext.pool`).
            parent: the panel; the work belongs to this widget and so ends with the panel.
            idle_text: what the bar says before any work, and after work that gave no count.
            cancel_tip: the Cancel button's tooltip.
            show_status: how the panel shows a line of status (for the cancel message).
            hold: controls disabled while work runs and enabled again when it ends.
            hide_when_idle: show the bar and button only while work runs.
            bar_width: the bar's maximum width in pixels (None: it stretches).
            with_cancel: False for a panel whose work is never cancelled (no Cancel button).
            keep_count: when work ends the bar keeps its last count (False: back to
                `idle_text`, for a narrow bar whose panel says the outcome elsewhere).
        """
        super().__init__(parent)
        self._pool = pool
        self._idle_text = idle_text
        self._show_status = show_status
        self._hold = list(hold)
        self._hide_when_idle = hide_when_idle
        self._keep_count = keep_count
        self._worker: GeneratorWorker | None = None
        self._cancel_message: str | None = None
        self._bar_text = COUNT_TEXT
        self._counted = False
        self._on_progress: Callable[[Progress], None] | None = None
        self._on_finished: Callable[[], None] | None = None

        self.progress_bar = QProgressBar(self)
        self.progress_bar.setTextVisible(True)
        if bar_width is not None:
            self.progress_bar.setMaximumWidth(bar_width)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip(cancel_tip)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setVisible(with_cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.progress_bar, 1)
        layout.addWidget(self.cancel_button)
        self._show_idle()
        self.setVisible(not hide_when_idle)

    # ------------------------------------------------------------------ state
    @property
    def running(self) -> bool:
        return self._worker is not None

    @property
    def cancellable(self) -> bool:
        """True while work that can be cancelled runs and Cancel has not been pressed yet."""
        return self.running and self.cancel_button.isEnabled()

    # ------------------------------------------------------------------ running
    def start(
        self,
        work: Callable[[CancelToken], Any],
        *,
        on_result: Callable[[Any], None],
        on_error: Callable[[str], None],
        on_progress: Callable[[Progress], None] | None = None,
        on_finished: Callable[[], None] | None = None,
        cancel_message: str | None = None,
        bar_text: str = COUNT_TEXT,
        total: int = 0,
        message: str = "",
    ) -> bool:
        """Run `work` on the pool and show it; False (nothing started) while other work runs.

        Args:
            work: called on a pool thread with a `CancelToken`; a generator of `Progress` or
                a plain function. It opens its own gallery connection (see `workers`).
            on_result, on_error, on_progress, on_finished: called on the GUI thread while
                this widget lives; `on_finished` after the result or the error, once this
                widget is idle again.
            cancel_message: what Cancel says is kept, e.g. "Cancelling after the current
                photo…"; None: the work cannot be cancelled (Cancel stays disabled).
            bar_text: the bar's text while counting; QProgressBar's `%v`, `%m`, `%p` and
                `{message}` (the latest progress message) are filled in.
            total, message: the first step to show (total 0: unknown, a busy bar).
        """
        if self.running:
            return False
        self._cancel_message = cancel_message
        self._bar_text = bar_text
        self._counted = False
        self._on_finished = on_finished
        self._on_progress = on_progress
        for control in self._hold:
            control.setEnabled(False)
        self.cancel_button.setEnabled(cancel_message is not None)
        self.show_progress(Progress(0, total, message))
        self.setVisible(True)
        self._worker = self._pool.start(
            work,
            owner=self,
            on_result=on_result,
            on_error=on_error,
            on_progress=self._on_progress_step,
            on_finished=self._on_work_finished,
        )
        self.busy_changed.emit(True)
        return True

    def cancel(self) -> None:
        """Ask the running work to stop at its next check (nothing happens when none runs)."""
        if self._worker is None or self._cancel_message is None:
            return
        self._worker.cancel()
        self.cancel_button.setEnabled(False)
        if self._cancel_message and self._show_status is not None:
            self._show_status(self._cancel_message)

    def show_progress(self, step: Progress) -> None:
        """Show one step: a count when its total is known, else a busy bar."""
        bar = self.progress_bar
        if step.total:
            self._counted = True
            bar.setRange(0, step.total)
            bar.setValue(step.done)
            text = self._bar_text.replace("{message}", step.message)
            bar.setFormat(text.strip() or COUNT_TEXT)
        else:
            bar.setRange(0, 0)

    # ------------------------------------------------------------------ slots
    def _on_progress_step(self, step: Progress) -> None:
        self.show_progress(step)
        if self._on_progress is not None:
            self._on_progress(step)

    def _on_work_finished(self) -> None:
        self._worker = None
        self.cancel_button.setEnabled(False)
        for control in self._hold:
            control.setEnabled(True)
        if not (self._counted and self._keep_count):
            self._show_idle()
        if self._hide_when_idle:
            self.hide()
        self.busy_changed.emit(False)
        if self._on_finished is not None:
            self._on_finished()

    def _show_idle(self) -> None:
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat(self._idle_text)
