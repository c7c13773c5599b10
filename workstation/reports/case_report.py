"""The case report: HTML built from the evidence bundle and its search records, drawn to PDF by
a renderer the caller hands in (the app's Qt PDF writer), written beside the JSON bundle.

Qt-free. The bundle is written first, the report is drawn from exactly that bundle (the two
carry the same audit head hash, and the report quotes the SHA-256 of the JSON file), and only
then is the export audited, naming both files with their SHA-256 (workstation.reports.bundle).

The HTML comes from one Jinja2 template with autoescaping (resources/reports/
case_report.html.j2): subject names, case numbers, purposes, notes and examiner names are
untrusted text and always show literally. Face images are encoded here (PNG, by OpenCV) and
handed to the renderer by name, or embedded as data: URIs for a stand-alone HTML file.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from workstation.domain import Candidate, Decision
from workstation.errors import WorkstationError
from workstation.gallery.records import SearchRecord
from workstation.gallery.sheets import DECISIONS_WITHHELD
from workstation.gallery.store import Gallery
from workstation.reports.bundle import (
    BUNDLE_KIND,
    REPORT_KIND,
    CaseBundle,
    ProbeRedaction,
    build_case_bundle,
    record_export,
    write_bundle_json,
)
from workstation.reports.columns import Align, Surface, columns_for, legend
from workstation.reports.enhancement_report import (
    enhancement_images,
    enhancement_rows,
    enhancement_view,
    searched_pixels,
    working_key,
)
from workstation.reports.export_files import check_targets, discard, stage
from workstation.reports.redaction import (
    REPORT_IMAGE_SIDE,
    probe_pixels,
    redacted_original,
    redacted_searched,
)
from workstation.reports.score_plot import PLOT_KEY_PREFIX, ScorePlot, score_plot
from workstation.reports.sheet_report import SCALE_WORDS, sheet_images, sheet_views

TEMPLATE = "reports/case_report.html.j2"
STRUT = "strut"  # a transparent 1x1 image, stretched to hold text lines to a row height
ROW_IMAGE_PX = 44  # the gallery face in each candidate row
PROBE_IMAGE_PX = 96
PLOT_WIDTH_PX, PLOT_HEIGHT_PX = 540, 168  # the score plot (its image is drawn at 1800 x 560)
MAX_PLOTS = 3  # score plots per search in the report

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


def bundle_path_for(pdf_path: Path) -> Path:
    """The JSON bundle written beside a PDF report (same name, .json)."""
    return Path(pdf_path).with_suffix(".json")


# ---------------------------------------------------------------------- images
def png_bytes(bgr: np.ndarray) -> bytes:
    """An image as PNG bytes (lossless: the report shows the pixels the model compared)."""
    from workstation.vision.cvcompat import cv2_module

    ok, encoded = cv2_module().imencode(".png", np.ascontiguousarray(bgr))
    if not ok:
        raise WorkstationError("an image for the report could not be encoded as PNG")
    return encoded.tobytes()


def report_images(gallery: Gallery, bundle: CaseBundle) -> dict[str, bytes]:
    """Face crops for the report as PNG bytes, by name: each probe face as searched (when its
    file is still there unchanged: `probe-<search id>`), and the best-matching gallery face of
    every candidate (`face-<face id>`), once its stored photo is checked against its recorded
    SHA-256; for a photo that fails the check, `problem-face-<face id>` holds the reason as
    UTF-8 text instead (the report prints it; renderers skip `problem-` entries)."""
    from workstation.gallery.photos import StoredPhotoError
    from workstation.vision.alignment import face_view

    def crop(bgr: np.ndarray, box: list[float], landmarks: Any) -> bytes:
        return png_bytes(face_view(bgr, box, landmarks).bgr)

    images: dict[str, bytes] = {STRUT: png_bytes(np.zeros((1, 1, 4), dtype=np.uint8))}
    for record in bundle.records:
        for candidate in plotted_candidates(record):
            plot = score_plot(gallery, record, candidate)
            if plot is not None:  # the renderer draws it (gui/score_plot.py), as in Compare
                images[_plot_key(record, candidate)] = plot.to_bytes()
        # The probe (a photo, or a video frame) checked against its recorded SHA-256, with the
        # bystanders' faces the bundle lists obscured: no image of the report is drawn from the
        # unredacted pixels (reports/redaction.py). An enhanced search's box is in its working
        # copy, made again from the original and checked (enhancement_report.searched_pixels).
        probe_bgr = None
        original_bgr, _, _ = probe_pixels(record)
        redaction = bundle.redactions.get(record.search_id)
        if original_bgr is not None and redaction is not None and redaction.problem is None:
            searched_bgr, problem = searched_pixels(record, original_bgr)
            if searched_bgr is None:
                images[_problem_key(working_key(record))] = problem.encode("utf-8")
            else:
                shown_original = redacted_original(original_bgr, redaction)
                probe_bgr = redacted_searched(searched_bgr, redaction)
                images[_probe_key(record)] = crop(
                    probe_bgr, record.face.box.as_list(), record.face.landmarks
                )
                images[_probe_photo_key(record)] = png_bytes(_report_sized(shown_original))
                images.update(enhancement_images(record, shown_original, probe_bgr, png_bytes))
        # ACE-V sheets' annotations, drawn on the crops Compare showed (sheet_report.py).
        images.update(sheet_images(gallery, record, probe_bgr, png_bytes))
        for candidate in record.candidates:
            key = _face_key(candidate.face_id)
            face = gallery.face(candidate.face_id)
            if key in images or face is None:
                continue
            try:
                bgr = gallery.load_photo(face).bgr  # checked against its recorded SHA-256
            except StoredPhotoError as exc:
                # Never drawn: the report says why in words (`problem-face-<id>`).
                images[_problem_key(key)] = str(exc).encode("utf-8")
                continue
            images[key] = crop(bgr, face.box, face.landmarks)
    return images


def plotted_candidates(record: SearchRecord) -> list[Candidate]:
    """The candidates whose score plot the report draws: those an examiner called a lead (or
    confirmed), else the first; the other candidates are marked faintly on each plot."""
    leads = {Decision.POSSIBLE_LEAD, Decision.CONFIRMED}
    chosen = [
        c
        for c in record.candidates
        if any(d.decision in leads for d in record.decisions_of(c.subject_id))
    ]
    return chosen[:MAX_PLOTS] or list(record.candidates[:1])


def _plot_key(record: SearchRecord, candidate: Candidate) -> str:
    return f"{PLOT_KEY_PREFIX}{record.search_id}-{candidate.rank}"


def _problem_key(image_key: str) -> str:
    """Where `report_images` keeps, as UTF-8 text, why an image is not shown."""
    return f"problem-{image_key}"


def _probe_key(record: SearchRecord) -> str:
    return f"probe-{record.search_id}"


def _probe_photo_key(record: SearchRecord) -> str:
    return f"probephoto-{record.search_id}"


def _report_sized(bgr: np.ndarray) -> np.ndarray:
    """The whole (redacted) probe image at most REPORT_IMAGE_SIDE long, for the report."""
    from workstation.vision.cvcompat import cv2_module

    height, width = bgr.shape[:2]
    scale = REPORT_IMAGE_SIDE / max(height, width)
    if scale >= 1:
        return bgr
    cv2 = cv2_module()
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)


def _face_key(face_id: int) -> str:
    return f"face-{face_id}"


PROBE_PHOTO_MAX_PX = 420  # the whole redacted probe image's width in the report (layout px)


def _photo_width_px(png: bytes | None) -> int:
    """The width the whole probe image is drawn at: its own, at most PROBE_PHOTO_MAX_PX."""
    if not png or len(png) < 24:
        return PROBE_PHOTO_MAX_PX
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    if height > width:  # a portrait image: keep it from filling the page's height
        return max(1, min(PROBE_PHOTO_MAX_PX, round(PROBE_PHOTO_MAX_PX * width / height)))
    return min(PROBE_PHOTO_MAX_PX, width)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# ---------------------------------------------------------------------- HTML
@cache
def _template() -> Any:
    import jinja2

    text = resources.files("workstation.resources").joinpath(TEMPLATE).read_text("utf-8")
    environment = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    return environment.from_string(text)


def _param_text(params: Mapping[str, Any]) -> str:
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


def _scan_limits(frame: Mapping[str, Any] | None) -> str | None:
    """What the footage scan behind a track's search looked at, and what it did not look for
    (None for a photo, or a frame chosen by hand)."""
    if not frame or frame.get("track_id") is None:
        return None
    text = (
        f"track {frame['track_id']}, {frame.get('track_start_s')} to {frame.get('track_end_s')} s "
        f"of the video, one frame in every {frame.get('sample_every_s')} s searched for faces"
    )
    if frame.get("smallest_face_px"):
        text += f"; faces narrower than {frame['smallest_face_px']} px were not looked for"
    return text


def _row(label: str, value: Any, mono: bool = False, strong: bool = False) -> dict[str, Any]:
    return {
        "label": label,
        "value": "" if value is None else str(value),
        "mono": mono,
        "strong": strong,
    }


def _time(text: str) -> str:
    return text[:19].replace("T", " ")


def _search_view(
    record: SearchRecord, images: Mapping[str, bytes], redaction: ProbeRedaction | None
) -> dict[str, Any]:
    face, probe = record.face, record.probe
    reasons = "; ".join(face.quality.reasons) or "no concerns found"
    rows = [
        _row("Time (UTC)", record.created_at),
        *([_row("Started (UTC)", record.started_at)] if record.started_at else []),
        _row("Examiner", record.examiner),
        _row("Purpose", record.purpose),
        _row("Probe file", probe.path),
        _row("Probe SHA-256", probe.sha256, mono=True),
        *(
            [_row("Probe image size", f"{probe.width} × {probe.height} pixels")]
            if probe.width and probe.height
            else []
        ),
        *(
            [
                _row(
                    "Video frame",
                    f"frame {probe.frame.get('frame_index')} at {probe.frame.get('timecode')} "
                    f"of {probe.frame.get('video_path')} (SHA-256 "
                    f"{str(probe.frame.get('video_sha256'))[:16]}…)",
                )
            ]
            if probe.frame
            else []
        ),
        *([_row("Footage scan", scan)] if (scan := _scan_limits(probe.frame)) else []),
        *[_row(label, value, mono=mono) for label, value, mono in enhancement_rows(record)],
        _row("How the face was chosen", face.how_chosen),
        _row("Probe quality", f"{face.quality.verdict.value.upper()}: {reasons}"),
        _row("Model", record.model_id, mono=True),
        _row(
            "Gallery size at search",
            f"{record.gallery_faces} faces"
            + (
                f" of {record.gallery_subjects} subjects"
                if record.gallery_subjects is not None
                else ""
            ),
        ),
        *(
            [_row("Gallery searched (id, folder)", f"{record.gallery_id}, {record.gallery_folder}")]
            if record.gallery_id
            else []
        ),
        _row("Parameters", _param_text(record.params)),
        # Which rate the FMR column is (the candidate's group, the highest group's, or pooled)
        # and how rates differ by group, in the calibration's own words.
        *[_row("False-match rate", basis) for basis in record.fmr_bases],
        *([_row("Rates by group", record.group_spread)] if record.group_spread else []),
        _row("Examiner's note", record.note or "none"),
        _row("Lead verified by", ", ".join(record.verified_by) or "no second examiner yet"),
    ]
    columns = columns_for(Surface.REPORT)
    candidates = [
        [
            {
                "image": _face_key(candidate.face_id) if column.image else None,
                "text": "" if column.image else column.text(candidate, record),
                "right": column.align is Align.RIGHT,
            }
            for column in columns
        ]
        for candidate in record.candidates
    ]
    decisions = [
        [
            _time(d.created_at),
            d.user,
            d.subject_id,
            d.decision.replace("_", " ")
            + (f" (confirms decision {d.confirms})" if d.confirms else ""),
            d.note or "",
        ]
        for d in record.decisions
    ] + [
        ["", "", subject, "withheld", DECISIONS_WITHHELD.format(count=count)]
        for subject, count in sorted(record.decisions_withheld.items())
    ]
    problems = dict.fromkeys(
        images[_problem_key(_face_key(c.face_id))].decode("utf-8")
        for c in record.candidates
        if _problem_key(_face_key(c.face_id)) in images
    )
    plots = [
        {"key": key, "caption": ScorePlot.from_bytes(images[key]).caption}
        for key in (_plot_key(record, c) for c in plotted_candidates(record))
        if key in images
    ]
    return {
        "search_id": record.search_id,
        "rows": rows,
        "plots": plots,
        "sheets": sheet_views(record, images),
        "probe_image": _probe_key(record),
        "enhancement": {
            **enhancement_view(record, images),
            "problem": images.get(_problem_key(working_key(record)), b"").decode("utf-8"),
        },
        "probe_photo": _probe_photo_key(record),
        "probe_photo_px": _photo_width_px(images.get(_probe_photo_key(record))),
        "redaction_statement": (
            redaction.statement() if redaction else "no redaction recorded for this search"
        ),
        "candidates": candidates,
        "decisions": decisions,
        "photo_problems": list(problems),
    }


def report_html(
    bundle: CaseBundle,
    bundle_name: str,
    bundle_sha256: str,
    images: Mapping[str, bytes] | None = None,
    inline_images: bool = False,
) -> str:
    """The report as HTML (tables, no scripts, no external resources).

    Images are referred to by name (`probe-<search id>`, `face-<face id>`, `strut`) for a
    renderer that is handed `images`, or embedded as data: URIs with `inline_images`; score
    plots (`scoreplot-<search id>-<rank>`) are data the renderer draws, shown only by it.
    """
    data = bundle.data
    case, gallery, audit = data["case"], data["gallery"], data["audit"]
    images = dict(images or {})
    image_src: Callable[[str], str] = (
        (lambda key: data_uri(images[key])) if inline_images else (lambda key: key)
    )
    case_rows = [
        _row("Case number", case["id"]),
        _row("Purpose", case["purpose"]),
        _row("Case opened", f"{case['opened_at']} by {case['opened_by']}"),
        _row("Examiners", ", ".join(case["examiners"])),
        _row("Authorisation", _authorisation_text(case.get("authorisation"))),
        _row("Report generated", f"{data['generated_at']} by {data['generated_by']}"),
        _row("Software", data["software"]),
    ]
    gallery_rows = [
        _row("Gallery folder", gallery["folder"]),
        _row("Gallery id", gallery.get("id") or "none (made by an older version)", mono=True),
        _row(
            "Gallery size at export", f"{gallery['faces']} faces of {gallery['subjects']} subjects"
        ),
        _row("Recognition model (name@weights SHA-256)", gallery["model_id"], mono=True),
    ]
    audit_rows = [
        _row(
            "Audit chain",
            "intact" if audit["chain_intact"] else "BROKEN: do not rely on this log",
            strong=not audit["chain_intact"],
        ),
        _row("Events in the whole log", audit["chain_events"]),
        _row("Chain head (sequence)", audit["head_seq"]),
        _row("Chain head hash", audit["head_hash"], mono=True),
        _row(
            "Check later",  # fails after a rollback or a rewrite (docs/ACCOUNTABILITY.md)
            f"workstation audit verify --head {audit['head_seq']}:{audit['head_hash']}",
            mono=True,
        ),
        _row(
            "Records",
            audit.get("records_statement") or "not checked (bundle made by an older version)",
            strong=not audit.get("records_verified", False),
        ),
        _row("Evidence bundle", bundle_name),
        _row("Evidence bundle SHA-256", bundle_sha256, mono=True),
    ]
    events = [
        [
            str(event["seq"]),
            _time(event["time"]),
            event["user"],
            event["action"],
            {"text": f"{event['hash'][:32]}…", "mono": True},
        ]
        for event in audit["events"]
    ]
    columns = columns_for(Surface.REPORT)
    total = sum(c.report_width for c in columns) or 1
    return _template().render(
        style=STYLE,
        case=case,
        caveat=data["caveat"],
        case_rows=case_rows,
        gallery_rows=gallery_rows,
        searches=[
            _search_view(record, images, bundle.redactions.get(record.search_id))
            for record in bundle.records
        ],
        columns=columns,
        # Shares of the table's width; scaled to 100%, so adding a column needs no arithmetic.
        column_widths=[round(c.report_width * 100 / total) for c in columns],
        legend=legend(Surface.REPORT),
        audit_rows=audit_rows,
        events=events,
        images=images,
        image_src=image_src,
        # A stand-alone HTML file has no painter to draw the score plots: their words stay.
        plots_drawn=not inline_images,
        sheet_scale_words=SCALE_WORDS,
        plot_width_px=PLOT_WIDTH_PX,
        plot_height_px=PLOT_HEIGHT_PX,
        strut_key=STRUT,
        row_image_px=ROW_IMAGE_PX,
        probe_image_px=PROBE_IMAGE_PX,
    )


# ---------------------------------------------------------------------- PDF
@dataclass(frozen=True)
class PageSetup:
    """What a renderer prints besides the HTML: document metadata and the page footer."""

    title: str
    creator: str
    footer: str  # left-hand footer on every page; the renderer adds "Page N of M"


def _authorisation_text(authorisation: dict[str, str] | None) -> str:
    if not authorisation:
        return "none recorded"
    return (
        f"approved by {authorisation['by']} on {authorisation['at']} "
        f"(reference {authorisation['reference']})"
    )


def page_setup(bundle: CaseBundle) -> PageSetup:
    head = str(bundle.head_hash or "")
    return PageSetup(
        title=f"Face search case report: case {bundle.case_id}",
        creator=str(bundle.data["software"]),
        footer=(
            f"Case {bundle.case_id} · investigative leads, not identifications · "
            f"audit head {head[:16]}…"
        ),
    )


class PdfRenderer(Protocol):
    """Draws report HTML to a PDF file; returns the number of pages. The app hands in Qt's
    (workstation.gui.report_pdf.render_pdf); the core never imports the GUI."""

    def __call__(
        self, html: str, pdf_path: Path, images: Mapping[str, bytes], page: PageSetup
    ) -> int: ...


@dataclass(frozen=True)
class ExportedReport:
    pdf_path: Path
    json_path: Path
    pages: int
    bundle: CaseBundle


def export_case_report(
    gallery: Gallery,
    case_id: str,
    pdf_path: Path,
    render_pdf: PdfRenderer,
    json_path: Path | None = None,
    overwrite: bool = False,
) -> ExportedReport:
    """Write the case's JSON bundle and the PDF drawn from it, then audit the export naming
    both files with their SHA-256 (the PDF quotes the bundle's). Refuses existing files
    unless `overwrite`, and a PDF and bundle that would be one file; a failed export leaves no
    file and no event (see reports.export_files)."""
    pdf_path = Path(pdf_path)
    json_path = Path(json_path) if json_path is not None else bundle_path_for(pdf_path)
    check_targets([json_path, pdf_path], overwrite)
    bundle = build_case_bundle(gallery, case_id)
    staged_json = stage(json_path, lambda temp: write_bundle_json(bundle, temp))
    pages = 0
    try:
        images = report_images(gallery, bundle)
        html = report_html(bundle, json_path.name, staged_json.sha256, images)

        def draw(temp: Path) -> None:
            nonlocal pages
            pages = render_pdf(html, temp, images, page_setup(bundle))

        staged_pdf = stage(pdf_path, draw)
    except BaseException:
        discard([staged_json])
        raise
    files = [(BUNDLE_KIND, staged_json), (REPORT_KIND, staged_pdf)]
    record_export(gallery, bundle, files, "case-report-pdf+evidence-bundle-json", overwrite)
    return ExportedReport(pdf_path, json_path, pages, bundle)
