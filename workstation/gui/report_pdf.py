"""Qt's part of the case report: drawing the report's HTML into a PDF (QPdfWriter and
QTextDocument), and running the export on a worker for the app.

What the report says, its images and the bundle beside it are built by the Qt-free core
(workstation.reports.case_report); `render_pdf` is the renderer the core is handed, by the app
and by `workstation export --pdf` (through workstation.entry), so the core never imports Qt.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from PySide6.QtCore import QByteArray, QMarginsF, QObject, QRectF, QSizeF, Qt, QUrl
from PySide6.QtGui import (
    QFont,
    QGuiApplication,
    QImage,
    QPageLayout,
    QPageSize,
    QPainter,
    QPdfWriter,
    QTextDocument,
)

from workstation.gui.application import create_application
from workstation.gui.context import AppContext
from workstation.gui.score_plot import score_plot_image
from workstation.progress import CancelToken
from workstation.reports.case_report import ExportedReport, PageSetup, export_case_report
from workstation.reports.score_plot import PLOT_KEY_PREFIX, ScorePlot

RESOLUTION = 300  # dots per inch of the PDF's coordinate system
MARGIN_MM = 18

__all__ = ["ensure_gui_application", "export_case_report_in_app", "render_pdf"]


def ensure_gui_application() -> None:
    """Qt lays out text only inside an application object: make one for the command line.

    With no display (a server, the packaging smoke test's empty environment) Qt's offscreen
    platform draws the PDF just the same.
    """
    if QGuiApplication.instance() is not None:
        return
    if (
        sys.platform.startswith("linux")
        and not os.environ.get("QT_QPA_PLATFORM")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    create_application([sys.argv[0] if sys.argv else "workstation"])


def render_pdf(html: str, pdf_path: Path, images: Mapping[str, bytes], page: PageSetup) -> int:
    """Draw report HTML to `pdf_path` (any thread, once an application exists); returns the
    number of pages. `images` are PNG bytes by the names the HTML uses."""
    ensure_gui_application()
    writer = QPdfWriter(str(pdf_path))
    writer.setResolution(RESOLUTION)
    writer.setPageLayout(
        QPageLayout(
            QPageSize(QPageSize.PageSizeId.A4),
            QPageLayout.Orientation.Portrait,
            QMarginsF(MARGIN_MM, MARGIN_MM, MARGIN_MM, MARGIN_MM),
            QPageLayout.Unit.Millimeter,
        )
    )
    writer.setTitle(page.title)
    writer.setCreator(page.creator)
    document = QTextDocument()
    document.documentLayout().setPaintDevice(writer)
    document.setDefaultFont(QFont("DejaVu Serif", 10))
    # QImage, not QPixmap: this may run on a worker thread, where pixmaps are not allowed.
    for key, png in images.items():
        if key.startswith("problem-"):  # why a photo is not shown: text, printed by the HTML
            continue
        if key.startswith(PLOT_KEY_PREFIX):  # a score plot's data: drawn as Compare draws it
            image = score_plot_image(ScorePlot.from_bytes(png))
        else:
            image = QImage.fromData(QByteArray(png))  # PNG, found from its header
        document.addResource(QTextDocument.ResourceType.ImageResource, QUrl(key), image)
    document.setHtml(html)
    area = writer.pageLayout().paintRectPixels(RESOLUTION)
    footer_height = RESOLUTION * 0.35
    body = QSizeF(area.width(), area.height() - footer_height)
    document.setPageSize(body)
    pages = document.pageCount()
    painter = QPainter(writer)
    try:
        footer_font = QFont("DejaVu Sans", 7)
        for number in range(pages):
            if number:
                writer.newPage()
            painter.save()
            painter.translate(0, -number * body.height())
            document.drawContents(
                painter, QRectF(0, number * body.height(), body.width(), body.height())
            )
            painter.restore()
            painter.setFont(footer_font)
            painter.drawLine(0, int(body.height() + 10), int(body.width()), int(body.height() + 10))
            footer = QRectF(0, body.height() + 20, body.width(), footer_height - 20)
            painter.drawText(
                footer, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, page.footer
            )
            painter.drawText(
                footer,
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"Page {number + 1} of {pages}",
            )
    finally:
        painter.end()
    return pages


def export_case_report_in_app(
    context: AppContext,
    owner: QObject,
    case_id: str,
    pdf_path: Path,
    on_done: Callable[[Path, Path, int], None],
    on_error: Callable[[str], None],
    overwrite: bool = False,
) -> None:
    """On a worker: write the JSON bundle and the PDF drawn from it, then audit the export
    (existing files are replaced only with `overwrite`: the caller has asked).

    `owner` is the widget the callbacks belong to: when it is closed first, they are not called.
    """

    def work(cancel: CancelToken) -> ExportedReport:
        # Everything here (QTextDocument, QImage, QPainter on a QPdfWriter) is allowed off the
        # GUI thread, so a long report never freezes the window.
        with context.open_gallery() as gallery:
            return export_case_report(
                gallery, case_id, Path(pdf_path), render_pdf, overwrite=overwrite
            )

    def on_written(report: ExportedReport) -> None:
        context.audit_changed.emit()
        on_done(report.pdf_path, report.json_path, report.pages)

    context.pool.start(work, owner=owner, on_result=on_written, on_error=on_error)
