"""The one QApplication, created the one safe way (below every other GUI module: the app, the
main window and the PDF renderer all create it through here)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication


def create_application(argv: Sequence[str] | None = None) -> QApplication:
    """The QApplication, created after cv2 is imported through the guard.

    OpenCV's GUI wheel points Qt at its own bundled Qt 5 plugins when cv2 is imported; the guard
    removes those variables, so it must run before the QApplication exists.
    """
    from workstation.vision.cvcompat import cv2_module

    cv2_module()
    from PySide6.QtWidgets import QApplication

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else None
    if app is None:
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setApplicationName("workstation")
    app.setOrganizationName("workstation")
    return app
