"""The footage panel's drawing pieces: the frame view with tracked boxes, the timeline
strip of track appearances, and the colours and conversions they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QLabel,
    QSizePolicy,
    QWidget,
)

from workstation.footage import (
    Track,
    timecode,
)

TRACK_COLORS = [
    QColor(31, 119, 180),
    QColor(255, 127, 14),
    QColor(44, 160, 44),
    QColor(214, 39, 40),
    QColor(148, 103, 189),
    QColor(140, 86, 75),
    QColor(227, 119, 194),
    QColor(23, 190, 207),
]


def track_color(track_id: int) -> QColor:
    return TRACK_COLORS[(track_id - 1) % len(TRACK_COLORS)]


# ---------------------------------------------------------------------- timeline
@dataclass(frozen=True)
class _Bar:
    track_id: int
    lane: int
    start_s: float
    end_s: float


class FootageTimelineWidget(QWidget):
    """Each track's appearances as bars on lanes under a time axis; click to jump there."""

    seek_requested = Signal(float)  # seconds
    track_clicked = Signal(int)  # track id

    LANE_HEIGHT = 16
    AXIS_HEIGHT = 18

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.duration_s = 1.0  # until a video is open (never zero: it divides)
        self.position_s = 0.0
        self.bars: list[_Bar] = []
        self.lanes = 0
        self.selected: int | None = None
        self.highlighted: set[int] = set()
        self.setMinimumHeight(self.AXIS_HEIGHT + 2 * self.LANE_HEIGHT + 6)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Each bar is one face track. Click to jump there.")
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def set_tracks(self, duration_s: float, tracks: list[Track], sample_interval_s: float) -> None:
        """Lay tracks out on as few lanes as possible (overlapping tracks on separate lanes)."""
        self.duration_s = max(duration_s, 1e-3)
        self.bars = []
        lane_end: list[float] = []
        for track in sorted(tracks, key=lambda t: t.start_s):
            lane = next(
                (i for i, end in enumerate(lane_end) if end < track.start_s - 1e-6),
                len(lane_end),
            )
            if lane == len(lane_end):
                lane_end.append(track.end_s)
            lane_end[lane] = track.end_s + sample_interval_s
            for start, end in track.appearances(sample_interval_s):
                self.bars.append(_Bar(track.track_id, lane, start, end + sample_interval_s))
        self.lanes = len(lane_end)
        self.setFixedHeight(self.AXIS_HEIGHT + max(2, self.lanes) * self.LANE_HEIGHT + 6)
        self.update()

    def set_position(self, seconds: float) -> None:
        self.position_s = seconds
        self.update()

    def set_selected(self, track_id: int | None) -> None:
        self.selected = track_id
        self.update()

    def set_highlighted(self, track_ids: set[int]) -> None:
        self.highlighted = set(track_ids)
        self.update()

    def _x(self, seconds: float) -> float:
        return 4 + (self.width() - 8) * min(max(seconds / self.duration_s, 0.0), 1.0)

    def _seconds(self, x: float) -> float:
        return min(max((x - 4) / max(self.width() - 8, 1), 0.0), 1.0) * self.duration_s

    def bar_rect(self, bar: _Bar) -> QRectF:
        top = self.AXIS_HEIGHT + bar.lane * self.LANE_HEIGHT + 2
        left = self._x(bar.start_s)
        return QRectF(left, top, max(self._x(bar.end_s) - left, 3.0), self.LANE_HEIGHT - 4)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), self.palette().base())
        painter.setPen(self.palette().text().color())
        font = QFont(painter.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        painter.setFont(font)
        if self.duration_s > 1e-3:
            step = _tick_step(self.duration_s, self.width())
            t = 0.0
            while t <= self.duration_s + 1e-6:
                x = self._x(t)
                painter.drawLine(QPointF(x, 2), QPointF(x, 6))
                # "MM:SS", or "MM:SS.s" when ticks are half a second apart (short clips).
                label = timecode(t)[3:10] if step < 1 else timecode(t)[3:8]
                painter.drawText(QPointF(x + 2, 14), label)
                t += step
        for bar in self.bars:
            color = QColor(track_color(bar.track_id))
            if self.highlighted and bar.track_id not in self.highlighted:
                color.setAlpha(70)
            rect = self.bar_rect(bar)
            painter.fillRect(rect, color)
            if bar.track_id == self.selected:
                painter.setPen(QPen(self.palette().text().color(), 2))
                painter.drawRect(rect)
            if rect.width() > 18:
                painter.setPen(QColor("white"))
                painter.drawText(
                    rect.adjusted(3, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter, str(bar.track_id)
                )
        x = self._x(self.position_s)
        painter.setPen(QPen(QColor(220, 0, 0), 2))
        painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        point = event.position()
        for bar in self.bars:
            if self.bar_rect(bar).adjusted(-2, -2, 2, 2).contains(point):
                self.track_clicked.emit(bar.track_id)
                break
        self.seek_requested.emit(self._seconds(point.x()))


def _tick_step(duration_s: float, width: int) -> float:
    wanted = duration_s / max(width / 70, 1)
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if step >= wanted:
            return float(step)
    return 7200.0


# ---------------------------------------------------------------------- player
class FrameViewWidget(QLabel):
    """Shows one frame scaled to fit, with the boxes of the faces tracked at that frame."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(320, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setStyleSheet("background: #202020; color: #c0c0c0;")
        self._image: QImage | None = None
        self._boxes: list[tuple[int, Any, bool]] = []

    def show_frame(self, image: QImage | None, boxes: list[tuple[int, Any, bool]]) -> None:
        """boxes: (track id, BBox, exact) — exact when detected in this very frame."""
        self._image = image
        self._boxes = boxes
        self._render()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._render()

    def _render(self) -> None:
        if self._image is None:
            self.setPixmap(QPixmap())
            return
        size = self.size()
        pixmap = QPixmap.fromImage(self._image).scaled(
            size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        scale = pixmap.width() / max(self._image.width(), 1)
        painter = QPainter(pixmap)
        for track_id, box, exact in self._boxes:
            pen = QPen(track_color(track_id), 2)
            if not exact:
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            rect = QRectF(box.x * scale, box.y * scale, box.w * scale, box.h * scale)
            painter.drawRect(rect)
            label = f"T{track_id}"
            width = painter.fontMetrics().horizontalAdvance(label) + 6
            height = painter.fontMetrics().height()
            tag = QRectF(rect.left(), max(rect.top() - height, 0.0), width, height)
            painter.fillRect(tag, track_color(track_id))
            painter.setPen(QColor("white"))
            painter.drawText(tag, Qt.AlignmentFlag.AlignCenter, label)
        painter.end()
        self.setPixmap(pixmap)


# ---------------------------------------------------------------------- panel
