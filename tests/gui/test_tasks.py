"""The one task runner: progress, Cancel, errors, held controls; work ends with its panel."""

from __future__ import annotations

import threading
from collections.abc import Generator

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton, QWidget

from workstation.errors import WorkstationError
from workstation.gui.tasks import TaskWidget
from workstation.gui.workers import WorkerPool
from workstation.progress import CancelToken, Progress

WAIT_MS = 10_000


def _panel(qtbot, pool: WorkerPool, **options) -> tuple[QWidget, TaskWidget, QPushButton, list]:
    panel = QWidget()
    qtbot.addWidget(panel)
    start_button = QPushButton("Start", panel)
    said: list[str] = []
    task = TaskWidget(pool, panel, show_status=said.append, hold=[start_button], **options)
    return panel, task, start_button, said


def test_progress_result_and_held_controls(qtbot) -> None:
    pool = WorkerPool()
    _panel_widget, task, start_button, _said = _panel(qtbot, pool, idle_text="not started")
    assert task.progress_bar.format() == "not started" and not task.cancel_button.isEnabled()
    release = threading.Event()
    results: list[object] = []
    busy: list[bool] = []
    steps: list[str] = []
    task.busy_changed.connect(busy.append)

    def work(cancel: CancelToken) -> Generator[Progress, None, str]:
        yield Progress(1, 3, "first")
        release.wait(WAIT_MS / 1000)
        yield Progress(3, 3, "last")
        return "done"

    assert task.start(
        work,
        on_result=results.append,
        on_error=results.append,
        on_progress=lambda step: steps.append(step.message),
        bar_text="{message}: %v of %m",
    )
    assert task.running and busy == [True]
    assert not start_button.isEnabled(), "held while the work runs"
    assert not task.start(work, on_result=results.append, on_error=results.append)
    qtbot.waitUntil(lambda: task.progress_bar.value() == 1, timeout=WAIT_MS)
    assert task.progress_bar.maximum() == 3 and task.progress_bar.text() == "first: 1 of 3"
    assert not task.cancel_button.isEnabled(), "no cancel_message: the work cannot be cancelled"
    release.set()
    qtbot.waitUntil(lambda: not task.running, timeout=WAIT_MS)
    assert results == ["done"] and steps == ["first", "last"] and busy == [True, False]
    assert start_button.isEnabled()
    # The bar keeps how far the work got.
    assert task.progress_bar.value() == 3 and task.progress_bar.text() == "last: 3 of 3"


def test_cancel_stops_the_work_and_says_what_is_kept(qtbot) -> None:
    pool = WorkerPool()
    _panel_widget, task, start_button, said = _panel(qtbot, pool)
    started = threading.Event()
    results: list[object] = []

    def work(cancel: CancelToken) -> Generator[Progress, None, int]:
        done = 0
        started.set()
        while not cancel.cancelled and done < 10_000:
            done += 1
            yield Progress(done, 10_000, "")
            cancel_seen.wait(0.01)
        return done

    cancel_seen = threading.Event()
    task.start(
        work,
        on_result=results.append,
        on_error=results.append,
        cancel_message="Cancelling; what is done is kept.",
    )
    assert started.wait(WAIT_MS / 1000)
    assert task.cancel_button.isEnabled() and task.cancellable
    qtbot.mouseClick(task.cancel_button, Qt.MouseButton.LeftButton)
    assert said == ["Cancelling; what is done is kept."]
    assert not task.cancel_button.isEnabled(), "pressed once"
    qtbot.waitUntil(lambda: not task.running, timeout=WAIT_MS)
    assert len(results) == 1 and isinstance(results[0], int) and results[0] < 10_000
    assert start_button.isEnabled() and not task.cancel_button.isEnabled()


def test_errors_arrive_in_words_and_the_bar_goes_idle(qtbot) -> None:
    pool = WorkerPool()
    _panel_widget, task, _start_button, _said = _panel(qtbot, pool, idle_text="ready")
    errors: list[str] = []

    def work(cancel: CancelToken) -> None:
        raise WorkstationError("camera3.mp4: not a video")

    task.start(work, on_result=errors.append, on_error=errors.append)
    assert task.progress_bar.maximum() == 0, "busy bar while the total is unknown"
    qtbot.waitUntil(lambda: not task.running, timeout=WAIT_MS)
    assert errors == ["camera3.mp4: not a video"]
    assert task.progress_bar.maximum() == 1 and task.progress_bar.format() == "ready"

    def broken(cancel: CancelToken) -> None:
        raise KeyError("x")

    task.start(broken, on_result=errors.append, on_error=errors.append)
    qtbot.waitUntil(lambda: not task.running, timeout=WAIT_MS)
    assert errors[-1].startswith("unexpected error: KeyError")


def test_hidden_when_idle(qtbot) -> None:
    pool = WorkerPool()
    panel, task, _start_button, _said = _panel(qtbot, pool, hide_when_idle=True, with_cancel=False)
    panel.show()
    assert not task.isVisible()
    release = threading.Event()
    task.start(lambda cancel: release.wait(WAIT_MS / 1000), on_result=print, on_error=print)
    assert task.isVisible() and task.progress_bar.isVisible()
    assert not task.cancel_button.isVisible()
    release.set()
    qtbot.waitUntil(lambda: not task.running, timeout=WAIT_MS)
    assert not task.isVisible()


def test_closing_the_panel_cancels_its_work_and_drops_the_result(qtbot) -> None:
    pool = WorkerPool()
    panel = QWidget()
    task = TaskWidget(pool, panel)
    started, release = threading.Event(), threading.Event()
    tokens: list[CancelToken] = []
    delivered: list[object] = []

    def work(cancel: CancelToken) -> str:
        tokens.append(cancel)
        started.set()
        release.wait(WAIT_MS / 1000)
        return "late"

    task.start(
        work,
        on_result=delivered.append,
        on_error=delivered.append,
        on_finished=lambda: delivered.append("finished"),
    )
    assert started.wait(WAIT_MS / 1000)
    shiboken6.delete(panel)  # the tab is closed while its work runs
    assert tokens[0].cancelled
    release.set()
    assert pool.wait(WAIT_MS)
    qtbot.waitUntil(lambda: not pool.busy, timeout=WAIT_MS)
    qtbot.wait(50)
    assert delivered == []


def test_a_bar_that_does_not_keep_its_count_goes_back_to_idle(qtbot) -> None:
    pool = WorkerPool()
    _panel_widget, task, _start_button, _said = _panel(
        qtbot, pool, idle_text="ready", keep_count=False
    )

    def work(cancel: CancelToken) -> Generator[Progress, None, int]:
        yield Progress(2, 2, "2 search(es) recorded")
        return 2

    task.start(work, on_result=print, on_error=print, bar_text="{message}")
    qtbot.waitUntil(lambda: not task.running, timeout=WAIT_MS)
    assert task.progress_bar.format() == "ready" and task.progress_bar.value() == 0
