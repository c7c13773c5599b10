"""Guard against a Qt binding that leaks references on signal emission.

PySide6 6.12.0's Signal.emit() returned Python's True without taking a reference, so every emit
lowered True's reference count by one; a long session (an enrolment of thousands of photos, a
scrolled gallery) then aborted with "Fatal Python error: bool_dealloc". pyproject.toml excludes
that release; this test fails on any binding that brings the bug back.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    bare = Signal()
    carrying = Signal(object)


def test_signal_emission_keeps_reference_counts(qapp) -> None:
    emitter = _Emitter()
    received: list[object] = []
    emitter.carrying.connect(received.append)
    before = sys.getrefcount(True)
    for _ in range(500):
        emitter.bare.emit()
        emitter.carrying.emit(1)
    after = sys.getrefcount(True)
    assert len(received) == 500
    assert abs(after - before) < 50, f"True lost {before - after} references in 1,000 emits"
