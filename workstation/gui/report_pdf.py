"""The case report: a PDF drawn by Qt's own PDF writer from the evidence bundle, written beside
the JSON bundle it summarises.

The bundle is exported first through the core (which audits the export and names the PDF among
its files); the PDF is then rendered from exactly that bundle, so the two carry the same audit
head hash, and the PDF quotes the SHA-256 of the JSON file.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMarginsF, QObject, QRectF, QSizeF, Qt, QUrl
from PySide6.QtGui import (
    QFont,
    QImage,
    QPageLayout,
    QPageSize,
    QPainter,
    QPdfWriter,
    QTextDocument,
)

from workstation.errors import WorkstationError
from workstation.gui.context import AppContext
from workstation.gui.imaging import bgr_to_qimage
from workstation.gui.search_records import fmr_text
from workstation.permissions import make_export_private
from workstation.progress import CancelToken
from workstation.reports.bundle import export_case_bundle

RESOLUTION = 300  # dots per inch of the PDF's coordinate system
MARGIN_MM = 18

STYLE = """
body { font-family: 'DejaVu Serif', 'Times New Roman', serif; font-size: 10pt; color: #000; }
h1 { font-size: 17pt; margin: 0; }
h2 { font-size: 12.5pt; margin-top: 14pt; margin-bottom: 4pt; border-bottom: 1px solid #000; }
h3 { font-size: 11pt; margin-top: 10pt; margin-bottom: 3pt; }
table { border-collapse: collapse; }
td, th { padding: 3px 5px; vertical-align: top; }
th { background: #e6e6e6; text-align: left; font-weight: bold; }
.kv td.k { font-weight: bold; width: 28%; background: #f3f3f3; }
.mono { font-family: 'DejaVu Sans Mono', 'Courier New', monospace; font-size: 8pt; }
.caveat { border: 2px solid #000; padding: 6px; background: #f3f3f3; }
.small { font-size: 8.5pt; color: #333; }
table.dense td, table.dense th { font-size: 8.5pt; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _kv(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><td class='k'>{_e(k)}</td><td>{v}</td></tr>" for k, v in rows)
    return f"<table class='kv' width='100%' border='1' cellspacing='0'>{body}</table>"


STRUT = "strut"  # a transparent image resource, stretched to hold text lines to a row height


def _table(
    headers: list[str],
    rows: list[list[str]],
    widths: list[int] | None = None,
    css_class: str = "",
    row_height: int = 0,
) -> str:
    head = "".join(
        f"<th width='{widths[i]}%'>{_e(h)}</th>" if widths else f"<th>{_e(h)}</th>"
        for i, h in enumerate(headers)
    )
    # Qt splits a table row at a page break cell by cell; when every cell starts with a line as
    # tall as the row's face image, the whole row moves to the next page together.
    strut = (
        f"<img src='{STRUT}' width='1' height='{row_height}' style='vertical-align: middle'>"
        if row_height
        else ""
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td>{c if c.startswith('<img') else strut + c}</td>" for c in row)
        + "</tr>"
        for row in rows
    )
    if not rows:
        body = f"<tr><td colspan='{len(headers)}'><i>none</i></td></tr>"
    # <thead> repeats the header row at the top of every page the table runs onto.
    return (
        f"<table class='{css_class}' width='100%' border='1' cellspacing='0'>"
        f"<thead><tr>{head}</tr></thead>"
        f"{body}</table>"
    )


def _face_text(face: dict[str, Any]) -> str:
    box = ", ".join(f"{v:g}" for v in face.get("box", []))
    if face.get("source") == "manual":
        how = f"drawn by hand by the examiner, box [x, y, w, h] = [{box}]"
        if not face.get("aligned", True):
            how += "; no landmarks found inside it: searched unaligned (low confidence)"
    else:
        how = (
            f"found by the detector: face {face.get('index', 0) + 1} of "
            f"{face.get('faces_found', 1)} (largest first), box [x, y, w, h] = [{box}]"
        )
    return _e(how)


def _param_text(params: dict[str, Any]) -> str:
    """Search parameters in words; nested records (the calibration) by their id and hash."""
    parts = []
    for key, value in params.items():
        if isinstance(value, dict):
            label = value.get("label") or value.get("id") or key
            digest = str(value.get("sha256") or "")[:16]
            pairs = value.get("impostor_pairs")
            extra = f", {pairs} impostor pairs" if pairs else ""
            value = f"{label} (SHA-256 {digest}…{extra})" if digest else label
        parts.append(f"{key} = {value}")
    return "; ".join(parts)


def _fmt(value: Any, spec: str = ".2g") -> str:
    return "n/a" if value is None else format(value, spec)


def report_images(gallery: Any, bundle: dict[str, Any]) -> dict[str, QImage]:
    """Face crops for the report (worker side): each probe face as searched, when its file is
    still there unchanged, and the best-matching gallery face of every candidate."""
    from workstation.domain import BBox
    from workstation.errors import WorkstationError
    from workstation.vision.alignment import align_face, crop_box
    from workstation.vision.images import load_image

    def crop(bgr: Any, box: list[float], landmarks: Any) -> QImage:
        if landmarks:
            return bgr_to_qimage(align_face(bgr, tuple((x, y) for x, y in landmarks)))
        return bgr_to_qimage(crop_box(bgr, BBox(*box)))

    images: dict[str, QImage] = {}
    for search in bundle["searches"]:
        face, probe = search["face"], search["probe"]
        try:
            loaded = load_image(probe["path"])
            if loaded.sha256 == probe["sha256"]:
                images[f"probe-{search['search_id']}"] = crop(
                    loaded.bgr, face["box"], face.get("landmarks")
                )
        except WorkstationError:
            pass  # the report says the probe file is not available
        for candidate in search["candidates"]:
            key = f"face-{candidate['face_id']}"
            record = gallery.face(int(candidate["face_id"]))
            if key in images or record is None:
                continue
            try:
                bgr = load_image(gallery.image_file(record)).bgr
            except WorkstationError:
                continue
            images[key] = crop(bgr, record.box, record.landmarks)
    return images


def _img(images: dict[str, QImage], key: str, width: int) -> str:
    if key not in images:
        return "<i>image not available</i>"
    return f"<img src='{key}' width='{width}' height='{width}'>"


def _decision_cell(decisions: list[dict[str, Any]], subject_id: str) -> str:
    mine = [d for d in decisions if d["subject_id"] == subject_id]
    return (
        "<br>".join(f"{_e(d['decision'].replace('_', ' '))} ({_e(d['user'])})" for d in mine)
        or "<i>no decision</i>"
    )


def report_html(
    bundle: dict[str, Any],
    bundle_name: str,
    bundle_sha256: str,
    images: dict[str, QImage] | None = None,
) -> str:
    """The report as HTML for QTextDocument (tables, no scripts, no external resources)."""
    case, gallery, audit = bundle["case"], bundle["gallery"], bundle["audit"]
    images = images or {}
    parts = [
        f"<html><head><style>{STYLE}</style></head><body>",
        "<p class='small'>FACE SEARCH CASE REPORT · INVESTIGATIVE LEADS, NOT IDENTIFICATIONS</p>",
        f"<h1>Case {_e(case['id'])}</h1>",
        f"<p><b>Purpose:</b> {_e(case['purpose'])}</p>",
        "<table width='100%' border='2' cellspacing='0' cellpadding='6'><tr><td "
        f"style='background:#f3f3f3'><b>Caveat.</b> {_e(bundle['caveat'])}</td></tr></table>",
        "<h2>1. Case</h2>",
        _kv(
            [
                ("Case number", _e(case["id"])),
                ("Purpose", _e(case["purpose"])),
                ("Case opened", f"{_e(case['opened_at'])} by {_e(case['opened_by'])}"),
                ("Examiners", _e(", ".join(case["examiners"]))),
                (
                    "Report generated",
                    f"{_e(bundle['generated_at'])} by {_e(bundle['generated_by'])}",
                ),
                ("Software", _e(bundle["software"])),
            ]
        ),
        "<h2>2. Gallery and model</h2>",
        _kv(
            [
                ("Gallery folder", _e(gallery["folder"])),
                (
                    "Gallery size at export",
                    f"{gallery['faces']} faces of {gallery['subjects']} subjects",
                ),
                (
                    "Recognition model (name@weights SHA-256)",
                    f"<span class='mono'>{_e(gallery['model_id'])}</span>",
                ),
            ]
        ),
    ]
    for number, search in enumerate(bundle["searches"], start=1):
        face = search["face"]
        quality = face.get("quality", {})
        reasons = "; ".join(quality.get("reasons") or []) or "no concerns found"
        parts += [
            # Each search starts on a new page, so its tables are never split at the bottom.
            f"<h2 style='page-break-before: always'>3.{number} Search {search['search_id']}</h2>",
            _kv(
                [
                    ("Time (UTC)", _e(search["time"])),
                    ("Examiner", _e(search["examiner"])),
                    ("Purpose", _e(search["purpose"])),
                    ("Probe file", _e(search["probe"]["path"])),
                    ("Probe SHA-256", f"<span class='mono'>{_e(search['probe']['sha256'])}</span>"),
                    ("How the face was chosen", _face_text(face)),
                    (
                        "Probe quality",
                        f"{_e(str(quality.get('verdict', 'n/a')).upper())}: {_e(reasons)}",
                    ),
                    ("Model", f"<span class='mono'>{_e(search['model_id'])}</span>"),
                    ("Gallery size at search", f"{search['gallery_faces']} faces"),
                    ("Parameters", _e(_param_text(search["params"]))),
                    ("Examiner's note", _e(search.get("note") or "none")),
                ]
            ),
            "<table cellspacing='0' cellpadding='4'><tr><td>"
            + _img(images, f"probe-{search['search_id']}", 96)
            + "</td><td valign='middle'>Probe face as searched (aligned crop the model "
            "compared; drawn from the probe file after checking its SHA-256).</td></tr></table>",
            f"<h3>Candidates ({len(search['candidates'])}), best score first</h3>",
            _table(
                ["#", "Face", "Subject", "Name", "Score", "FMR", "Strangers", "Decision"],
                [
                    [
                        str(c["rank"]),
                        _img(images, f"face-{c['face_id']}", 44),
                        _e(c["subject_id"]),
                        _e(c.get("name") or ""),
                        f"{c['score']:.4f}",
                        fmr_text(c.get("fmr")),
                        _fmt(c.get("expected_strangers")),
                        _decision_cell(search["decisions"], c["subject_id"]),
                    ]
                    for c in search["candidates"]
                ],
                [5, 8, 18, 17, 9, 12, 12, 19],
                css_class="dense",
                row_height=44,
            ),
            "<p class='small'>#: rank. Score: cosine similarity of the two faces' embeddings "
            "(higher is more alike; it is not a probability). FMR: the false-match rate at "
            "that score, how "
            "often two different people score at least as high. Strangers: how many different "
            "people a gallery of this size is expected to hold at or above that score. n/a: not "
            "calibrated.</p>",
            "<h3>Decisions and notes</h3>",
            _table(
                ["Time (UTC)", "Examiner", "Subject", "Decision", "Note"],
                [
                    [
                        _e(d["created_at"][:19].replace("T", " ")),
                        _e(d["user"]),
                        _e(d["subject_id"]),
                        _e(d["decision"].replace("_", " "))
                        + (f" (confirms decision {d['confirms']})" if d.get("confirms") else ""),
                        _e(d.get("note") or ""),
                    ]
                    for d in search["decisions"]
                ],
                [17, 12, 20, 19, 32],
                css_class="dense",
            ),
        ]
    parts += [
        "<h2 style='page-break-before: always'>4. Audit trail</h2>",
        _kv(
            [
                (
                    "Audit chain",
                    "intact" if audit["chain_intact"] else "<b>BROKEN: do not rely on this log</b>",
                ),
                ("Events in the whole log", str(audit["chain_events"])),
                ("Chain head (sequence)", str(audit["head_seq"])),
                ("Chain head hash", f"<span class='mono'>{_e(audit['head_hash'])}</span>"),
                ("Evidence bundle", _e(bundle_name)),
                ("Evidence bundle SHA-256", f"<span class='mono'>{_e(bundle_sha256)}</span>"),
            ]
        ),
        "<p class='small'>The head hash covers every audit event up to and including this "
        "export. Anyone holding the gallery can re-verify it with "
        "<span class='mono'>workstation audit verify</span>.</p>",
        "<h3>Events of this case</h3>",
        _table(
            ["Seq", "Time (UTC)", "User", "Action", "Event hash"],
            [
                [
                    str(ev["seq"]),
                    _e(ev["time"][:19].replace("T", " ")),
                    _e(ev["user"]),
                    _e(ev["action"]),
                    f"<span class='mono'>{_e(ev['hash'][:32])}…</span>",
                ]
                for ev in audit["events"]
            ],
            [7, 22, 14, 14, 43],
        ),
        "<h2>5. Signatures</h2>",
        _table(
            ["Examiner", "Signature", "Date"],
            [[_e(name), "<br><br>", ""] for name in case["examiners"]],
            [30, 45, 25],
        ),
        "</body></html>",
    ]
    return "".join(parts)


def write_report_pdf(
    bundle: dict[str, Any],
    pdf_path: Path,
    bundle_name: str,
    bundle_sha256: str,
    images: dict[str, QImage] | None = None,
) -> int:
    """Render the report to `pdf_path` (any thread); returns the number of pages."""
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
    case_id = bundle["case"]["id"]
    writer.setTitle(f"Face search case report: case {case_id}")
    writer.setCreator(bundle["software"])
    document = QTextDocument()
    document.documentLayout().setPaintDevice(writer)
    document.setDefaultFont(QFont("DejaVu Serif", 10))
    strut = QImage(1, 1, QImage.Format.Format_ARGB32)
    strut.fill(0)
    document.addResource(QTextDocument.ResourceType.ImageResource, QUrl(STRUT), strut)
    for key, image in (images or {}).items():
        document.addResource(QTextDocument.ResourceType.ImageResource, QUrl(key), image)
    document.setHtml(report_html(bundle, bundle_name, bundle_sha256, images))
    page = writer.pageLayout().paintRectPixels(RESOLUTION)
    footer_height = RESOLUTION * 0.35
    body = QSizeF(page.width(), page.height() - footer_height)
    document.setPageSize(body)
    pages = document.pageCount()
    head = bundle["audit"]["head_hash"]
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
            painter.drawText(
                QRectF(0, body.height() + 20, body.width(), footer_height - 20),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"Case {case_id} · investigative leads, not identifications · "
                f"audit head {head[:16]}…",
            )
            painter.drawText(
                QRectF(0, body.height() + 20, body.width(), footer_height - 20),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"Page {number + 1} of {pages}",
            )
    finally:
        painter.end()
    return pages


def bundle_path_for(pdf_path: Path) -> Path:
    return Path(pdf_path).with_suffix(".json")


def export_case_report(
    context: AppContext,
    owner: QObject,
    case_id: str,
    pdf_path: Path,
    on_done: Callable[[Path, Path, int], None],
    on_error: Callable[[str], None],
) -> None:
    """On a worker: export the JSON bundle (audited), then draw the PDF from it.

    `owner` is the widget the callbacks belong to: when it is closed first, they are not called.
    """
    pdf_path = Path(pdf_path)
    json_path = bundle_path_for(pdf_path)

    def work(cancel: CancelToken) -> int:
        # Everything here (QTextDocument, QImage, QPainter on a QPdfWriter) is allowed off the
        # GUI thread, so a long report never freezes the window.
        with context.open_gallery() as gallery:
            bundle = export_case_bundle(gallery, case_id, json_path, extra_files=[pdf_path])
            images = report_images(gallery, bundle)
        digest = hashlib.sha256(json_path.read_bytes()).hexdigest()
        try:
            pages = write_report_pdf(bundle, pdf_path, json_path.name, digest, images)
        except OSError as exc:
            raise WorkstationError(f"{pdf_path}: the PDF could not be written ({exc})") from exc
        if not pdf_path.exists() or pdf_path.stat().st_size == 0:
            raise WorkstationError(
                f"{pdf_path}: the PDF could not be written (check the folder is writable)"
            )
        make_export_private(pdf_path)
        return pages

    def on_written(pages: int) -> None:
        context.audit_changed.emit()
        on_done(pdf_path, json_path, pages)

    context.pool.start(work, owner=owner, on_result=on_written, on_error=on_error)
