"""Helpers for the analyst-flow GUI tests: a real gallery enrolled with the real engine, and an
AppContext that shares the session's engine (loading models once keeps the suite quick)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from examiners import as_examiner, open_as
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication, QWidget

from workstation.gallery.enroll import EnrollItem, enroll
from workstation.gui.context import AppContext, CaseInfo
from workstation.gui.main_window import MainWindowWidget
from workstation.progress import drain

WAIT_MS = 60_000
CASE = CaseInfo("2026-0415", "identify the man in the bank lobby photo")


def enrol_gallery(folder: Path, engine, photo_paths: dict[str, Path], extra: list[Path] = ()):
    """obama (obama.jpg), biden (biden.jpg), plus any extra photos each as their own subject."""
    items = [
        EnrollItem("obama", photo_paths["obama"], "test", "Barack Obama"),
        EnrollItem("biden", photo_paths["biden"], "test", "Joe Biden"),
    ]
    items += [EnrollItem(p.stem, p, "test", None) for p in extra]
    # Enrolled by the test's own login (examiner1), who creates the gallery and so is its first
    # administrator: command lines run in the test act as them.
    with open_as(folder, "examiner1") as gallery:
        report = drain(enroll(gallery, engine, items))
    assert report.enrolled == len(items), report.summary()
    return folder


def make_context(folder: Path, engine, user: str = "examiner1") -> AppContext:
    # Each examiner from their own profile (registered in the gallery by its administrator).
    context = AppContext(folder, examiner=as_examiner(folder, user))
    context._engine = engine  # share the session's models instead of loading them again
    return context


def main_window(
    qtbot, folder: Path, engine, user: str = "examiner1", case: CaseInfo | None = None
) -> Iterator[MainWindowWidget]:
    """The main window on `folder` as `user`, shown (with `case` set, if given); its workers are
    stopped after the test. A fixture yields from it."""
    context = make_context(folder, engine, user)
    win = MainWindowWidget(context)
    qtbot.addWidget(win)
    win.show()
    if case is not None:
        context.set_case(case)
    yield win
    context.pool.cancel_all()
    context.pool.wait()


def shared_extras(shared_faces: Path, count: int = 4) -> list[Path]:
    names = sorted((shared_faces / "deepface").glob("*.jpg"))
    return names[:count]


def drop_files(target: QWidget, paths: list[Path]) -> None:
    """Deliver a real drop event of local files onto a widget."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    point = QPointF(target.rect().center())
    for event_type in (QDropEvent.Type.DragEnter, QDropEvent.Type.Drop):
        if event_type == QDropEvent.Type.DragEnter:
            from PySide6.QtGui import QDragEnterEvent

            event = QDragEnterEvent(
                point.toPoint(),
                Qt.DropAction.CopyAction,
                mime,
                Qt.MouseButton.LeftButton,
                Qt.KeyboardModifier.NoModifier,
            )
        else:
            event = QDropEvent(
                point,
                Qt.DropAction.CopyAction,
                mime,
                Qt.MouseButton.LeftButton,
                Qt.KeyboardModifier.NoModifier,
            )
        QApplication.sendEvent(target, event)
        assert event.isAccepted()


def two_face_photo(tmp_path: Path, photo_paths: dict[str, Path]) -> Path:
    """A photo with two people: obama2 and biden side by side."""
    left = Image.open(photo_paths["obama2"]).convert("RGB")
    right = Image.open(photo_paths["biden"]).convert("RGB")
    height = min(left.height, right.height)
    left = left.resize((left.width * height // left.height, height))
    right = right.resize((right.width * height // right.height, height))
    joined = np.concatenate([np.asarray(left), np.asarray(right)], axis=1)
    path = tmp_path / "two_people.png"
    Image.fromarray(joined).save(path)
    return path


def copy_photo(src: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(src, folder / src.name))
