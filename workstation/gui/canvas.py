"""The probe canvas: the photo, every face boxed with its landmarks and quality badge, a draw
tool for a hand-drawn box, zoom (wheel, fit, 1:1) and pan.

The canvas only shows and reports: it emits `face_clicked(index)` and `box_drawn(BBox)`; the
probe panel decides what they mean. Coordinates in the scene are image pixels.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QImage,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QWidget,
)

from workstation.domain import BBox, Face, FaceSource
from workstation.gui.imaging import MANUAL_COLOR, SELECTED_COLOR, verdict_color

ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 0.02, 40.0
MIN_DRAWN_SIDE = 8  # image pixels; smaller drags are taken as clicks


def face_label(face: Face) -> str:
    """The short text on a face's badge, e.g. "1 · good" or "2 · drawn · poor"."""
    parts = [str(face.index + 1)]
    if face.source is FaceSource.MANUAL:
        parts.append("drawn")
    parts.append(face.quality.verdict.value)
    return " · ".join(parts)


class FaceBoxItem(QGraphicsRectItem):
    """One face: its box, five landmark dots and a badge that stays readable at any zoom."""

    def __init__(self, face: Face) -> None:
        box = face.box
        super().__init__(QRectF(box.x, box.y, box.w, box.h))
        self.face = face
        self.setZValue(1)
        self._dots: list[QGraphicsEllipseItem] = []
        for x, y in face.landmarks or ():
            dot = QGraphicsEllipseItem(QRectF(-3, -3, 6, 6), self)
            dot.setPos(QPointF(x, y))
            dot.setBrush(QBrush(QColor(0, 230, 255)))
            dot.setPen(QPen(QColor(0, 0, 0), 1))
            dot.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            self._dots.append(dot)
        self._badge_bg = QGraphicsRectItem(self)
        self._badge_bg.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        # A drawn box often overlaps a detected one: its badge goes under the box, not on top.
        drawn = face.source is FaceSource.MANUAL
        self._badge_bg.setPos(QPointF(box.x, box.y + box.h if drawn else box.y))
        self._badge = QGraphicsSimpleTextItem(face_label(face), self._badge_bg)
        font = QFont()
        font.setPointSize(10)
        font.setBold(True)
        self._badge.setFont(font)
        self._badge.setBrush(QBrush(QColor("white")))
        text = self._badge.boundingRect()
        top = 0 if drawn else -text.height() - 4
        self._badge_bg.setRect(QRectF(0, top, text.width() + 8, text.height() + 4))
        self._badge.setPos(4, top + 2)
        self.set_selected(False)

    @property
    def badge_text(self) -> str:
        return self._badge.text()

    @property
    def landmark_count(self) -> int:
        return len(self._dots)

    def set_selected(self, selected: bool) -> None:
        verdict = verdict_color(self.face.quality.verdict.value)
        edge = MANUAL_COLOR if self.face.source is FaceSource.MANUAL else verdict
        color = SELECTED_COLOR if selected else edge
        pen = QPen(color, 4 if selected else 2)
        pen.setCosmetic(True)  # same thickness at every zoom
        if not selected:
            pen.setStyle(Qt.PenStyle.DashLine)
        self.setPen(pen)
        self._badge_bg.setBrush(QBrush(verdict))
        self._badge_bg.setPen(QPen(color, 2 if selected else 0))


class ProbeCanvasView(QGraphicsView):
    """Shows the probe photo and its faces; click a face to choose it, or draw a box."""

    face_clicked = Signal(int)
    box_drawn = Signal(object)  # BBox in image pixels
    draw_mode_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(
            QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform
        )
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setBackgroundBrush(QBrush(QColor(48, 48, 52)))
        # Drops are handled by the main window, wherever they land.
        self.setAcceptDrops(False)
        self.viewport().setAcceptDrops(False)
        self.setMinimumSize(320, 240)
        self._pixmap_item: QGraphicsPixmapItem | None = None
        self._face_items: list[FaceBoxItem] = []
        self._selected: int | None = None
        self._draw_mode = False
        self._drag_origin: QPointF | None = None
        self._rubber: QGraphicsRectItem | None = None
        self._show_placeholder()

    # ------------------------------------------------------------------ content
    def _show_placeholder(self) -> None:
        scene = self.scene()
        scene.clear()
        self._pixmap_item = None
        self._face_items = []
        text = scene.addSimpleText(
            "Drop a photo or a folder anywhere on this window,\nor use File > Open (Ctrl+O)."
        )
        text.setBrush(QBrush(QColor(210, 210, 210)))
        font = QFont()
        font.setPointSize(14)
        text.setFont(font)
        scene.setSceneRect(text.boundingRect().adjusted(-40, -40, 40, 40))

    def clear(self) -> None:
        self._selected = None
        self._show_placeholder()

    def set_image(self, image: QImage) -> None:
        """Show a new photo (no faces yet) fitted to the view."""
        scene = self.scene()
        scene.clear()
        self._face_items = []
        self._selected = None
        self._rubber = None
        self._pixmap_item = scene.addPixmap(QPixmap.fromImage(image))
        self._pixmap_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        scene.setSceneRect(QRectF(0, 0, image.width(), image.height()))
        self.fit_to_window()

    @property
    def has_image(self) -> bool:
        return self._pixmap_item is not None

    def set_faces(self, faces: list[Face], selected: int | None = None) -> None:
        for item in self._face_items:
            self.scene().removeItem(item)
        self._face_items = [FaceBoxItem(face) for face in faces]
        for item in self._face_items:
            self.scene().addItem(item)
        self.select_face(selected)

    @property
    def face_items(self) -> list[FaceBoxItem]:
        return list(self._face_items)

    @property
    def selected_index(self) -> int | None:
        return self._selected

    def select_face(self, index: int | None) -> None:
        self._selected = index
        for i, item in enumerate(self._face_items):
            item.set_selected(i == index)
            item.setZValue(2 if i == index else 1)

    def face_at(self, scene_point: QPointF) -> int | None:
        """The smallest face box under a point (so a face inside another's box stays clickable)."""
        hits = [
            (item.face.box.area, i)
            for i, item in enumerate(self._face_items)
            if item.face.box.contains((scene_point.x(), scene_point.y()))
        ]
        return min(hits)[1] if hits else None

    # ------------------------------------------------------------------ zoom
    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, factor: float) -> None:
        factor = min(max(factor, MIN_ZOOM), MAX_ZOOM)
        current = self.zoom or 1.0
        self.scale(factor / current, factor / current)

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom / ZOOM_STEP)

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def fit_to_window(self) -> None:
        if self._pixmap_item is not None:
            self.fitInView(self._pixmap_item, Qt.AspectRatioMode.KeepAspectRatio)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if steps:
            self.set_zoom(self.zoom * (ZOOM_STEP**steps))
        event.accept()

    # ------------------------------------------------------------------ draw tool
    @property
    def draw_mode(self) -> bool:
        return self._draw_mode

    def set_draw_mode(self, on: bool) -> None:
        if on == self._draw_mode:
            return
        self._draw_mode = on
        self.setDragMode(
            QGraphicsView.DragMode.NoDrag if on else QGraphicsView.DragMode.ScrollHandDrag
        )
        self.viewport().setCursor(
            Qt.CursorShape.CrossCursor if on else Qt.CursorShape.OpenHandCursor
        )
        self.draw_mode_changed.emit(on)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self._pixmap_item is None:
            super().mousePressEvent(event)
            return
        point = self.mapToScene(event.position().toPoint())
        if self._draw_mode:
            self._drag_origin = point
            self._rubber = QGraphicsRectItem(QRectF(point, point))
            pen = QPen(MANUAL_COLOR, 2, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            self._rubber.setPen(pen)
            self._rubber.setZValue(5)
            self.scene().addItem(self._rubber)
            event.accept()
            return
        hit = self.face_at(point)
        if hit is not None:
            self.select_face(hit)
            self.face_clicked.emit(hit)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._draw_mode and self._drag_origin is not None and self._rubber is not None:
            point = self.mapToScene(event.position().toPoint())
            self._rubber.setRect(QRectF(self._drag_origin, point).normalized())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._draw_mode and self._drag_origin is not None and self._rubber is not None:
            rect = self._rubber.rect().intersected(self.sceneRect())
            self.scene().removeItem(self._rubber)
            self._rubber, self._drag_origin = None, None
            event.accept()
            if rect.width() >= MIN_DRAWN_SIDE and rect.height() >= MIN_DRAWN_SIDE:
                self.set_draw_mode(False)
                self.box_drawn.emit(BBox(rect.x(), rect.y(), rect.width(), rect.height()))
            return
        super().mouseReleaseEvent(event)
