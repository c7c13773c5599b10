"""Import OpenCV without letting it break Qt.

insightface depends on the GUI wheel `opencv-python`, which shares the `cv2/` folder with
`opencv-python-headless`. When the GUI wheel's files win, importing cv2 points
QT_QPA_PLATFORM_PLUGIN_PATH and QT_QPA_FONTDIR at its own bundled Qt 5, and PySide6 then fails
with "Could not load the Qt platform plugin". Every module imports cv2 through here, so the
variables are removed before any QApplication can exist.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

_QT_VARIABLES_SET_BY_CV2 = ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR")
_cv2: ModuleType | None = None


def cv2_module() -> ModuleType:
    """Return cv2, imported once, with OpenCV's own Qt environment variables undone."""
    global _cv2
    if _cv2 is None:
        saved = {name: os.environ.get(name) for name in _QT_VARIABLES_SET_BY_CV2}
        import cv2

        cv2_dir = Path(cv2.__file__).resolve().parent
        for name in _QT_VARIABLES_SET_BY_CV2:
            value = os.environ.get(name)
            if value is None or not Path(value).resolve().is_relative_to(cv2_dir):
                continue
            # Undone even when cv2 was imported before this guard (by a library or a script
            # that imported it directly): nobody means Qt 6 to load OpenCV's bundled Qt 5.
            previous = saved[name]
            if previous is None or previous == value:
                del os.environ[name]
            else:
                os.environ[name] = previous
        # Two threads: inference is the bottleneck and the target PCs have few cores.
        cv2.setNumThreads(_default_threads())
        _cv2 = cv2
    return _cv2


def _default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


_serial_lock = threading.Lock()
_serial_users = 0


@contextmanager
def serial_inference(active: bool = True) -> Iterator[None]:
    """OpenCV runs each call on one thread while this is open (when `active`), then goes back
    to its default thread count once no one holds it any more.

    For work that already runs one inference per core on threads of its own (the enrolment
    pipeline): OpenCV's pool is one for the whole process, and its threads spin while they wait
    for work, so two inference threads each asking it for two cores burnt CPU the other could
    use. Measured on the 140 development photos, 2 cores (benchmarks/enroll_speed.py
    --baseline, issue 10 part 5): 8% less process CPU per photo with one OpenCV thread each,
    same embeddings. A search made meanwhile (the GUI) runs on one thread too, on cores the
    enrolment keeps busy anyway.
    """
    global _serial_users
    if not active:
        yield
        return
    cv2 = cv2_module()
    with _serial_lock:
        _serial_users += 1
        cv2.setNumThreads(1)
    try:
        yield
    finally:
        with _serial_lock:
            _serial_users -= 1
            if _serial_users == 0:
                cv2.setNumThreads(_default_threads())
