"""Progress reports and cancellation for long work run as generators.

Core work (enrolling a folder, rebuilding an index, re-embedding) is a generator that yields
`Progress` and checks a `CancelToken` between items; the CLI prints it and the GUI runs it on a
worker thread. Nothing here knows about Qt.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

Result = TypeVar("Result")


@dataclass(frozen=True)
class Progress:
    """How far long work has come. `total` is 0 while unknown."""

    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


# Long work: a generator that yields Progress and returns its result (StopIteration.value).
Work: TypeAlias = Generator[Progress, None, Result]


class CancelToken:
    """A thread-safe flag the caller sets and the worker polls between items."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


def drain(
    work: Generator[Progress, None, Result],
    on_progress: Callable[[Progress], None] | None = None,
) -> Result:
    """Run a progress generator to its end; returns the generator's return value."""
    while True:
        try:
            step = next(work)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(step)
