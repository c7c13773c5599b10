"""Numpy pixels to Qt images, and the small picture helpers the panels share."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QImage, QPixmap

from workstation.domain import Verdict

VERDICT_COLORS = {
    Verdict.GOOD.value: QColor(46, 160, 67),
    Verdict.WARN.value: QColor(214, 150, 0),
    Verdict.POOR.value: QColor(200, 40, 40),
}
SELECTED_COLOR = QColor(0, 120, 215)
MANUAL_COLOR = QColor(170, 60, 200)


def bgr_to_qimage(bgr: np.ndarray) -> QImage:
    """A deep-copied RGB QImage of a BGR (or grey) uint8 array; safe to build on any thread."""
    array = np.ascontiguousarray(bgr)
    if array.ndim == 2:
        height, width = array.shape
        image = QImage(array.data, width, height, width, QImage.Format.Format_Grayscale8)
        return image.copy()
    height, width = array.shape[:2]
    rgb = np.ascontiguousarray(array[:, :, ::-1])
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return image.copy()


def bgr_to_pixmap(bgr: np.ndarray) -> QPixmap:
    """A pixmap for display (GUI thread only)."""
    return QPixmap.fromImage(bgr_to_qimage(bgr))


def verdict_color(verdict: str) -> QColor:
    return VERDICT_COLORS.get(verdict, QColor(120, 120, 120))
