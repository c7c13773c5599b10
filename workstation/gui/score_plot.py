"""The score-in-context plot drawn with Qt's painter: on screen in Compare, and into the case
report's PDF by the renderer (gui/report_pdf.py), from the same shapes
(workstation.reports.score_plot.ScorePlot.layout): one drawing, two surfaces.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from workstation.reports import score_plot as plot_data
from workstation.reports.score_plot import ScorePlot

# The report's picture: wide and short, at print resolution (drawn at 300 dpi into the PDF).
REPORT_IMAGE_SIZE = QSize(1800, 560)

_COLOURS = {
    plot_data.IMPOSTOR: QColor(150, 150, 150),
    plot_data.IMPOSTOR_TAIL: QColor(214, 96, 77),
    plot_data.MATED: QColor(27, 120, 55),
    plot_data.CANDIDATE: QColor(190, 0, 0),
    plot_data.OTHER: QColor(120, 120, 160),
    plot_data.AXIS: QColor(0, 0, 0),
    plot_data.TICK: QColor(60, 60, 60),
    plot_data.LEGEND: QColor(60, 60, 60),
}


def paint_score_plot(painter: QPainter, box: QRectF, plot: ScorePlot) -> None:
    """Draw the plot's shapes inside `box` (in the painter's coordinates)."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.translate(box.topLeft())
    painter.fillRect(QRectF(0, 0, box.width(), box.height()), QColor(255, 255, 255))
    unit = box.height() / 100.0
    font = QFont("DejaVu Sans")
    font.setPixelSize(max(8, round(7.5 * unit)))
    painter.setFont(font)
    metrics = painter.fontMetrics()
    for shape in plot.layout(box.width(), box.height()):
        colour = QColor(_COLOURS[shape.role])  # a copy: the faint one changes its alpha
        if shape.kind == "bar":
            painter.fillRect(QRectF(shape.x, shape.y, shape.x2, shape.y2), colour)
        elif shape.kind == "line":
            width = {plot_data.CANDIDATE: 0.9, plot_data.MATED: 0.7, plot_data.OTHER: 0.5}
            pen = QPen(colour, max(1.0, width.get(shape.role, 0.4) * unit))
            if shape.role == plot_data.OTHER:
                colour.setAlpha(150)
                pen.setColor(colour)
            painter.setPen(pen)
            painter.drawLine(QPointF(shape.x, shape.y), QPointF(shape.x2, shape.y2))
        else:
            painter.setPen(colour)
            advance = metrics.horizontalAdvance(shape.text)
            shift = {"right": advance, "center": advance / 2}.get(shape.align, 0.0)
            x = min(max(0.0, shape.x - shift), box.width() - advance)
            painter.drawText(QPointF(x, shape.y), shape.text)
    painter.restore()


def score_plot_image(plot: ScorePlot, size: QSize = REPORT_IMAGE_SIZE) -> QImage:
    """The plot as an image (QImage, not QPixmap: the PDF is drawn on a worker thread)."""
    image = QImage(size, QImage.Format.Format_RGB32)
    image.fill(QColor(255, 255, 255))
    painter = QPainter(image)
    try:
        paint_score_plot(painter, QRectF(0, 0, size.width(), size.height()), plot)
    finally:
        painter.end()
    return image


class ScorePlotWidget(QWidget):
    """The plot in Compare; shows a line of words instead when there is nothing to plot."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot: ScorePlot | None = None
        self.message = ""
        self.setMinimumHeight(130)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:
        return QSize(520, 150)

    def set_plot(self, plot: ScorePlot | None, message: str = "") -> None:
        self.plot, self.message = plot, message
        self.setToolTip(plot.caption if plot is not None else message)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            box = QRectF(self.rect())
            if self.plot is not None:
                paint_score_plot(painter, box, self.plot)
            else:
                painter.setPen(QColor(90, 90, 90))
                painter.drawText(
                    box.adjusted(6, 6, -6, -6),
                    int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
                    self.message,
                )
        finally:
            painter.end()
