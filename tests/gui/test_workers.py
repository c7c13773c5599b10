"""The worker pool ties every worker to an owner: work outliving its owner reaches nobody."""

from __future__ import annotations

import threading

import shiboken6
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from workstation.gui.workers import WorkerPool
from workstation.progress import CancelToken, Progress


def test_callbacks_run_on_the_owner_while_it_lives(qtbot) -> None:
    pool = WorkerPool()
    owner = QWidget()
    qtbot.addWidget(owner)
    seen: list[object] = []

    def work(cancel: CancelToken):
        yield Progress(1, 2, "half")
        return "done"

    worker = pool.start(
        work,
        owner=owner,
        on_result=seen.append,
        on_progress=lambda step: seen.append(step.message),
        on_finished=lambda: seen.append("finished"),
    )
    qtbot.waitUntil(lambda: "finished" in seen, timeout=10_000)
    assert seen == ["half", "done", "finished"]
    assert not worker.cancel_token.cancelled
    assert pool.wait(5_000)


def test_a_destroyed_owner_cancels_its_worker_and_gets_no_callbacks(qtbot) -> None:
    pool = WorkerPool()
    owner = QObject()
    started, release = threading.Event(), threading.Event()
    seen: list[object] = []
    token_seen: list[CancelToken] = []

    def work(cancel: CancelToken) -> str:
        token_seen.append(cancel)
        started.set()
        release.wait(10)
        return "late result"

    pool.start(
        work,
        owner=owner,
        on_result=seen.append,
        on_error=seen.append,
        on_finished=lambda: seen.append("finished"),
    )
    assert started.wait(10)
    shiboken6.delete(owner)  # the panel is closed while its work still runs
    assert token_seen[0].cancelled, "destroying the owner must cancel its work"
    release.set()
    assert pool.wait(10_000)
    qtbot.waitUntil(lambda: not pool.busy, timeout=10_000)
    qtbot.wait(50)  # let any queued delivery arrive, if one were (wrongly) still connected
    assert seen == []


def test_an_owner_already_gone_starts_nothing(qtbot) -> None:
    pool = WorkerPool()
    owner = QObject()
    shiboken6.delete(owner)
    ran: list[bool] = []
    worker = pool.start(lambda cancel: ran.append(True), owner=owner)
    assert worker.cancel_token.cancelled
    assert pool.wait(5_000)
    assert ran == []
