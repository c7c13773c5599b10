"""Image views for the compare dialog: two views that follow each other's zoom and pan
relative to the face in each photo, and an overlay of two aligned crops with flicker."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPen, QPixmap
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QWidget,
)

FLICKER_MS = 500


ANNOTATION_COLOUR = QColor(255, 200, 0)


class LinkedImageView(QGraphicsView):
    """An image with optional landmarks; its zoom and pan are expressed relative to a reference
    rectangle (the face), so two views of different photos can follow each other.

    Annotations (arrows, circles, labels: the ACE-V sheet's) are drawn over the image in its
    pixels; while `drawing` says a tool is chosen, a drag draws one (`drawn` gives its start
    and end in image pixels) instead of panning."""

    view_changed = Signal()
    drawn = Signal(QPointF, QPointF)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setBackgroundBrush(QBrush(QColor(40, 40, 44)))
        self._reference = QRectF(0, 0, 1, 1)
        self._dots: list[QGraphicsEllipseItem] = []
        self._pixmap: QGraphicsPixmapItem | None = None
        self._applying = False
        self._marks: list[QGraphicsItem] = []
        self._drag_start: QPointF | None = None
        self.drawing: Callable[[], bool] = lambda: False
        self.horizontalScrollBar().valueChanged.connect(self._on_scrolled)
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)

    def set_content(self, image: QImage, reference: QRectF, landmarks: Any) -> None:
        scene = self.scene()
        scene.clear()
        self._pixmap = scene.addPixmap(QPixmap.fromImage(image))
        self._pixmap.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        scene.setSceneRect(QRectF(0, 0, image.width(), image.height()))
        self._reference = reference
        self._dots = []
        self._marks = []  # cleared with the scene
        for x, y in landmarks or ():
            dot = scene.addEllipse(QRectF(-3, -3, 6, 6), QPen(QColor("black")), QColor(0, 230, 255))
            dot.setPos(QPointF(x, y))
            dot.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            self._dots.append(dot)
        self.reset_view()

    def set_annotations(self, marks: list[tuple[str, float, float, float, float, str]]) -> None:
        """Draw (kind, x1, y1, x2, y2, text) annotations in image pixels, replacing any drawn:
        an arrow from (x1, y1) to (x2, y2), a circle of radius x2 around (x1, y1), a label."""
        scene = self.scene()
        for item in self._marks:
            scene.removeItem(item)
        self._marks = []
        pen = QPen(ANNOTATION_COLOUR, 2.0)
        pen.setCosmetic(True)  # the same width at any zoom
        for kind, x1, y1, x2, y2, text in marks:
            if kind == "arrow":
                self._marks.append(scene.addLine(x1, y1, x2, y2, pen))
                angle = math.atan2(y2 - y1, x2 - x1)
                for turn in (2.6, -2.6):
                    head = QPointF(x2 + 8 * math.cos(angle + turn), y2 + 8 * math.sin(angle + turn))
                    self._marks.append(scene.addLine(x2, y2, head.x(), head.y(), pen))
            elif kind == "circle":
                self._marks.append(scene.addEllipse(QRectF(x1 - x2, y1 - x2, 2 * x2, 2 * x2), pen))
            else:
                label = scene.addSimpleText(text)
                label.setBrush(ANNOTATION_COLOUR)
                label.setPos(QPointF(x1, y1))
                self._marks.append(label)
        for item in self._marks:
            item.setZValue(2)

    @property
    def annotation_items(self) -> int:
        return len(self._marks)

    def mousePressEvent(self, event: Any) -> None:
        if self.drawing() and event.button() == Qt.MouseButton.LeftButton:
            self._drag_start = self.mapToScene(event.position().toPoint())
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: Any) -> None:
        if self._drag_start is not None and event.button() == Qt.MouseButton.LeftButton:
            start, self._drag_start = self._drag_start, None
            self.drawn.emit(start, self.mapToScene(event.position().toPoint()))
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def show_landmarks(self, on: bool) -> None:
        for dot in self._dots:
            dot.setVisible(on)

    @property
    def landmarks_visible(self) -> bool:
        return any(dot.isVisible() for dot in self._dots)

    def _fit_zoom(self) -> float:
        ref, port = self._reference, self.viewport().rect()
        return 0.8 * min(port.width() / max(ref.width(), 1), port.height() / max(ref.height(), 1))

    def state(self) -> tuple[float, float, float]:
        """(zoom relative to the face fitting the view, centre offset in face widths x, y)."""
        center = self.mapToScene(self.viewport().rect().center())
        ref = self._reference
        return (
            self.transform().m11() / max(self._fit_zoom(), 1e-9),
            (center.x() - ref.center().x()) / max(ref.width(), 1),
            (center.y() - ref.center().y()) / max(ref.height(), 1),
        )

    def apply_state(self, state: tuple[float, float, float]) -> None:
        relative, dx, dy = state
        self._applying = True
        try:
            zoom = relative * self._fit_zoom()
            self.resetTransform()
            self.scale(zoom, zoom)
            ref = self._reference
            self.centerOn(ref.center().x() + dx * ref.width(), ref.center().y() + dy * ref.height())
        finally:
            self._applying = False

    def reset_view(self) -> None:
        self.apply_state((1.0, 0.0, 0.0))
        self.view_changed.emit()

    def zoom_by(self, factor: float) -> None:
        self.scale(factor, factor)
        self.view_changed.emit()

    def wheelEvent(self, event: Any) -> None:
        self.zoom_by(1.25 ** (event.angleDelta().y() / 120))
        event.accept()

    def _on_scrolled(self, _value: int) -> None:
        if not self._applying:
            self.view_changed.emit()


def link_views(a: LinkedImageView, b: LinkedImageView) -> None:
    """Make two views follow each other's zoom and pan."""
    a.view_changed.connect(lambda: b.apply_state(a.state()))
    b.view_changed.connect(lambda: a.apply_state(b.state()))


class OverlayView(QGraphicsView):
    """The candidate's aligned crop over the probe's, with adjustable opacity and flicker."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QBrush(QColor(40, 40, 44)))
        self.under = self.scene().addPixmap(QPixmap())
        self.over = self.scene().addPixmap(QPixmap())
        self.over.setOpacity(0.5)
        self.timer = QTimer(self)
        self.timer.setInterval(FLICKER_MS)
        self.timer.timeout.connect(self._on_flicker_tick)

    def set_crops(self, probe: QImage, candidate: QImage) -> None:
        self.under.setPixmap(QPixmap.fromImage(probe))
        self.over.setPixmap(QPixmap.fromImage(candidate))
        self.scene().setSceneRect(QRectF(0, 0, probe.width(), probe.height()))
        self.fitInView(self.under, Qt.AspectRatioMode.KeepAspectRatio)

    def set_opacity(self, percent: int) -> None:
        self.over.setOpacity(percent / 100)

    def set_flicker(self, on: bool) -> None:
        if on:
            self.timer.start()
        else:
            self.timer.stop()
            self.over.setVisible(True)

    def _on_flicker_tick(self) -> None:
        self.over.setVisible(not self.over.isVisible())

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self.fitInView(self.under, Qt.AspectRatioMode.KeepAspectRatio)
