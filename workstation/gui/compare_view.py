"""Compare a probe face with one candidate: aligned crops and full photos side by side with zoom
and pan linked, an overlay of the aligned crops with an opacity slider and flicker, landmarks on
or off, and a metadata table. Page Up / Page Down step through the candidates.

Photos are read and cropped on a worker; this dialog only shows what arrives.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QImage, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workstation.domain import Candidate, FaceSource
from workstation.errors import ImageError
from workstation.gallery.probe_source import is_recorded_probe, recorded_probe_image
from workstation.gallery.reads import Read, record_read_once
from workstation.gallery.records import SearchRecord
from workstation.gallery.sheets import ANNOTATION_SIDE, Annotation
from workstation.gallery.store import Gallery
from workstation.gui.candidates import HIDDEN, CandidatesWidget
from workstation.gui.comparison_sheet import ComparisonSheetWidget
from workstation.gui.context import AppContext
from workstation.gui.decisions import DecisionPanelWidget
from workstation.gui.image_views import LinkedImageView, OverlayView, link_views
from workstation.gui.imaging import bgr_to_qimage
from workstation.gui.score_plot import ScorePlotWidget
from workstation.gui.text import make_plain, tooltip
from workstation.progress import CancelToken
from workstation.reports.columns import cell, name_words
from workstation.reports.score_plot import ScorePlot, score_plot
from workstation.vision.alignment import face_view
from workstation.vision.enhancement import working_copy_of
from workstation.vision.images import LoadedImage

# Aligned crops are rendered larger than the model's 112 px for viewing; the ACE-V sheet's
# annotations are in these pixels (the report redraws the same crop: sheets.ANNOTATION_SPACE).
CROP_SIDE = ANNOTATION_SIDE


@dataclass
class FaceSide:
    """One side of the comparison, prepared on a worker."""

    role: str  # "Probe" or "Candidate"
    photo: QImage
    crop: QImage
    box: list[float]
    landmarks: list[tuple[float, float]] | None
    crop_landmarks: list[tuple[float, float]] | None
    metadata: dict[str, str]


def _quality_rows(quality: dict[str, Any]) -> dict[str, str]:
    def num(key: str, unit: str = "") -> str:
        value = quality.get(key)
        return "n/a" if value is None else f"{float(value):.1f}{unit}"

    return {
        "Quality": str(quality.get("verdict", "n/a")).upper(),
        "Quality reasons": "; ".join(quality.get("reasons") or []) or "none",
        "Inter-eye distance": num("inter_eye_px", " px"),
        "Sharpness": num("sharpness"),
        "Pose (yaw / pitch / roll)": " / ".join(
            num(k, "°") for k in ("yaw_deg", "pitch_deg", "roll_deg")
        ),
    }


def _file_date(path: str) -> str:
    try:
        stamp = os.stat(path).st_mtime
    except OSError:
        return "file not available"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M UTC (modified)")


def probe_side(search: SearchRecord, image: LoadedImage | None) -> FaceSide:
    """The probe as it was searched: the photo or frame open if it is the one searched, else
    read again from its file (a frame from its video), checked by SHA-256."""
    probe = search.probe
    if image is None or not is_recorded_probe(search, image):
        image = recorded_probe_image(search)
    face = search.face
    box = face.box.as_list()
    # An enhanced search's box is in its working copy: made again from the original, checked.
    lineage = probe.enhancement
    bgr = working_copy_of(image.bgr, lineage) if lineage else image.bgr
    view = face_view(bgr, box, face.landmarks, size=CROP_SIDE)
    how = "drawn by hand" if face.source is FaceSource.MANUAL else "found by the detector"
    metadata = {
        "Source file": probe.path,
        "SHA-256": probe.sha256
        + (
            f" (the video's; frame {probe.frame['frame_index']} at {probe.frame.get('timecode')})"
            if probe.frame
            else ""
        )
        + (f" (original); working copy {lineage.working_sha256}" if lineage else ""),
        "Date": _file_date(str(probe.frame["video_path"]) if probe.frame else probe.path),
        "Face": f"{how}, box {box}, {face.faces_found} face(s) in photo"
        + (
            f"; searched on an enhanced working copy ({lineage.summary}, OpenCV "
            f"{lineage.opencv}: " + "; ".join(lineage.step_lines) + "); the box is in its pixels"
            if lineage
            else ""
        ),
        **_quality_rows(face.quality.to_dict()),
        "Subject": "(probe)",
    }
    return FaceSide(
        "Probe",
        bgr_to_qimage(bgr),
        bgr_to_qimage(view.bgr),
        box,
        [(float(x), float(y)) for x, y in face.landmarks] if face.landmarks else None,
        view.landmarks,
        metadata,
    )


def candidate_side(gallery: Gallery, candidate: Candidate) -> FaceSide:
    record = gallery.face(candidate.face_id)
    if record is None:
        raise ImageError(
            f"gallery face {candidate.face_id} of subject {candidate.subject_id} is no longer in "
            "the gallery (deleted after the search)"
        )
    # Checked against its recorded SHA-256: an altered or replaced copy is refused in words.
    image = gallery.load_photo(record)
    view = face_view(image.bgr, record.box, record.landmarks, size=CROP_SIDE)
    how = "drawn by hand" if record.source == "manual" else "found by the detector"
    metadata = {
        "Source file": record.original_path,
        "SHA-256": record.image_sha256,
        "Date": f"enrolled {record.imported_at[:16].replace('T', ' ')} by {record.imported_by}"
        if record.imported_at
        else "n/a",
        "Face": f"{how}, box {[round(v, 1) for v in record.box]}, gallery face {record.id}",
        **_quality_rows(record.quality),
        "Subject": f"{candidate.subject_id} ({name_words(candidate) or 'no name'})",
    }
    return FaceSide(
        "Candidate",
        bgr_to_qimage(image.bgr),
        bgr_to_qimage(view.bgr),
        list(record.box),
        [(float(x), float(y)) for x, y in record.landmarks] if record.landmarks else None,
        view.landmarks,
        metadata,
    )


METADATA_ROWS = (
    "Subject",
    "Source file",
    "SHA-256",
    "Date",
    "Face",
    "Quality",
    "Quality reasons",
    "Inter-eye distance",
    "Sharpness",
    "Pose (yaw / pitch / roll)",
)


_OPENINGS = itertools.count(1)


def record_compare_view(
    gallery: Gallery,
    context: AppContext,
    search: SearchRecord,
    candidate: Candidate,
    opening: int,
) -> None:
    """Record a candidate opened side by side with the probe, against its search's case and
    purpose, before it shows: once per candidate per opening of the view (stepping back and
    forth within one opening is not recorded again)."""
    record_read_once(
        gallery,
        context.reads,
        Read.COMPARE,
        {
            "search_id": search.search_id,
            "subject_id": candidate.subject_id,
            "face_id": candidate.face_id,
        },
        search.case_id,
        search.purpose,
        what=(opening, search.search_id, candidate.subject_id, candidate.face_id),
    )


class CompareDialog(QDialog):
    """Probe vs the current candidate of the candidates widget; steps through the candidates."""

    candidate_shown = Signal(object)  # Candidate, once both sides are on screen
    load_failed = Signal(str)

    def __init__(
        self,
        context: AppContext,
        candidates: CandidatesWidget,
        probe_image: LoadedImage | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare probe and candidate")
        self.context = context
        self.candidates = candidates
        self._probe_image = probe_image
        self._probe: FaceSide | None = None
        self._probe_search_id: int | None = None
        self._request = 0
        self._opening = next(_OPENINGS)  # this opening of the view (its reads are recorded once)

        self.header = QLabel(self)
        self.header.setStyleSheet("font-size: 14px; font-weight: bold;")
        self.caveat = QLabel(
            "Similar faces are leads, not identifications: look for differences as hard as for "
            "likenesses.",
            self,
        )
        self.caveat.setStyleSheet("color: #5c4400;")
        self.previous_button = QPushButton("◀ Previous (PgUp)", self)
        self.next_button = QPushButton("Next (PgDn) ▶", self)
        self.landmarks_box = QCheckBox("Landmarks (L)", self)
        self.landmarks_box.setChecked(True)
        self.error_label = QLabel(self)
        self.error_label.setStyleSheet("color: #b00020; font-weight: bold;")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        make_plain(self.header, self.error_label)  # subject names and file names, as stored

        self.probe_crop, self.cand_crop = LinkedImageView(self), LinkedImageView(self)
        self.probe_photo, self.cand_photo = LinkedImageView(self), LinkedImageView(self)
        link_views(self.probe_crop, self.cand_crop)
        link_views(self.probe_photo, self.cand_photo)
        side = QWidget(self)
        grid = QGridLayout(side)
        grid.addWidget(QLabel("<b>Probe</b> (aligned)", side), 0, 0)
        grid.addWidget(QLabel("<b>Candidate</b> (aligned)", side), 0, 1)
        grid.addWidget(self.probe_crop, 1, 0)
        grid.addWidget(self.cand_crop, 1, 1)
        grid.addWidget(QLabel("Probe photo", side), 2, 0)
        grid.addWidget(QLabel("Candidate photo", side), 2, 1)
        grid.addWidget(self.probe_photo, 3, 0)
        grid.addWidget(self.cand_photo, 3, 1)

        self.overlay = OverlayView(self)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(50)
        self.flicker_box = QCheckBox("Flicker (F)", self)
        overlay_page = QWidget(self)
        overlay_layout = QVBoxLayout(overlay_page)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Candidate opacity:", overlay_page))
        controls.addWidget(self.opacity_slider, 1)
        controls.addWidget(self.flicker_box)
        overlay_layout.addWidget(self.overlay, 1)
        overlay_layout.addLayout(controls)
        self.modes = QTabWidget(self)
        self.modes.addTab(side, "Side by side")
        self.modes.addTab(overlay_page, "Overlay")

        self.table = QTableWidget(len(METADATA_ROWS), 2, self)
        self.table.setHorizontalHeaderLabels(["Probe", "Candidate"])
        self.table.setVerticalHeaderLabels(list(METADATA_ROWS))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setWordWrap(True)
        self.decisions = DecisionPanelWidget(context, self)
        # The score in context (issue 15 item 6): strangers' and same-person scores, this
        # candidate's marked with its FMR; hidden with the scores in blind review.
        self.score_plot = ScorePlotWidget(self)
        self._plot: ScorePlot | None = None
        self._plot_message = ""
        # ACE-V (issue 15 item 1): this examiner's sheet, and the others' once theirs is in.
        self.sheet = ComparisonSheetWidget(context, self)
        for view in (self.probe_crop, self.cand_crop):
            view.drawing = lambda: self.sheet.tool != "none"
        self.probe_crop.drawn.connect(lambda a, b: self._on_drawn("probe", a, b))
        self.cand_crop.drawn.connect(lambda a, b: self._on_drawn("candidate", a, b))
        self.sheet.annotations_changed.connect(self._draw_annotations)
        self.decisions.scores_hidden = lambda: candidates.model.scores_hidden

        top = QHBoxLayout()
        top.addWidget(self.previous_button)
        top.addWidget(self.header, 1)
        top.addWidget(self.landmarks_box)
        top.addWidget(self.next_button)
        details = QSplitter(Qt.Orientation.Vertical, self)
        details.addWidget(self.table)
        details.addWidget(self.score_plot)
        self.right_tabs = QTabWidget(self)
        self.right_tabs.addTab(details, "Details")
        self.right_tabs.addTab(self.sheet, "ACE-V sheet")
        right = QSplitter(Qt.Orientation.Vertical, self)
        right.addWidget(self.right_tabs)
        right.addWidget(self.decisions)
        body = QSplitter(Qt.Orientation.Horizontal, self)
        body.addWidget(self.modes)
        body.addWidget(right)
        body.setStretchFactor(0, 3)
        body.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.caveat)
        layout.addWidget(self.error_label)
        layout.addWidget(body, 1)

        self._add_action("Next candidate", ["PgDown", "N"], lambda: self.step(1))
        self._add_action("Previous candidate", ["PgUp", "P"], lambda: self.step(-1))
        self._add_action("Landmarks", ["L"], self.landmarks_box.toggle)
        self._add_action("Flicker", ["F"], self.flicker_box.toggle)
        self._add_action("Overlay", ["O"], self._on_toggle_mode)
        self.previous_button.clicked.connect(lambda: self.step(-1))
        self.next_button.clicked.connect(lambda: self.step(1))
        self.landmarks_box.toggled.connect(self._on_landmarks_toggled)
        self.opacity_slider.valueChanged.connect(self.overlay.set_opacity)
        self.flicker_box.toggled.connect(self.overlay.set_flicker)
        self.decisions.decisions_changed.connect(candidates.set_decisions)
        self.decisions.decisions_changed.connect(lambda *_: self._update_header())
        self.decisions.decisions_changed.connect(lambda *_: self._show_plot())
        candidates.model.modelReset.connect(self._show_plot)  # blind review on or off
        self.resize(1280, 820)
        self.show_current()

    def _add_action(self, text: str, keys: list[str], slot: Any) -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(k) for k in keys])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    # ------------------------------------------------------------------ navigation
    @property
    def candidate(self) -> Candidate | None:
        return self.candidates.current_candidate()

    def step(self, delta: int) -> None:
        self.candidates.step(delta)
        self.show_current()

    def show_current(self) -> None:
        """Load both sides for the candidates widget's current row (on a worker)."""
        search, candidate = self.candidates.current_search, self.candidates.current_candidate()
        self.decisions.set_target(search, candidate)
        self.sheet.set_target(search, candidate)
        self._update_header()
        if search is None or candidate is None:
            return
        self._request += 1
        request, context = self._request, self.context
        need_probe = self._probe is None or self._probe_search_id != search.search_id
        probe_image = self._probe_image

        opening = self._opening

        def work(
            cancel: CancelToken,
        ) -> tuple[int, int, FaceSide | None, FaceSide, Candidate, ScorePlot | None]:
            probe = probe_side(search, probe_image) if need_probe else None
            with context.open_gallery() as gallery:
                side = candidate_side(gallery, candidate)
                record_compare_view(gallery, context, search, candidate, opening)
                plot = score_plot(gallery, search, candidate)
                return request, search.search_id, probe, side, candidate, plot

        context.pool.start(
            work, owner=self, on_result=self._on_sides_ready, on_error=self._on_load_failed
        )

    def _on_load_failed(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()
        self.load_failed.emit(message)

    def _on_sides_ready(
        self, result: tuple[int, int, Any, FaceSide, Candidate, ScorePlot | None]
    ) -> None:
        request, search_id, probe, cand, candidate, plot = result
        if request != self._request:
            return  # the examiner has already stepped on
        self.error_label.hide()
        self._plot = plot
        self._plot_message = (
            "" if plot is not None else f"No score plot: {candidate.fmr_text or 'FMR unknown'}"
        )
        self._show_plot()
        if probe is not None:
            self._probe, self._probe_search_id = probe, search_id
            self._show_side(probe, self.probe_crop, self.probe_photo, 0)
        assert self._probe is not None
        self._show_side(cand, self.cand_crop, self.cand_photo, 1)
        self.overlay.set_crops(self._probe.crop, cand.crop)
        self._on_landmarks_toggled(self.landmarks_box.isChecked())
        self._draw_annotations(self.sheet.annotations)
        self.candidate_shown.emit(candidate)

    def _show_side(
        self, side: FaceSide, crop_view: LinkedImageView, photo_view: LinkedImageView, column: int
    ) -> None:
        crop_view.set_content(side.crop, QRectF(0, 0, CROP_SIDE, CROP_SIDE), side.crop_landmarks)
        x, y, w, h = side.box
        photo_view.set_content(side.photo, QRectF(x, y, w, h), side.landmarks)
        for row, key in enumerate(METADATA_ROWS):
            item = QTableWidgetItem(side.metadata.get(key, ""))
            item.setToolTip(tooltip(side.metadata.get(key, "")))
            self.table.setItem(row, column, item)
        self.table.resizeRowsToContents()

    def _update_header(self) -> None:
        search, candidate = self.candidates.current_search, self.candidates.current_candidate()
        if search is None or candidate is None:
            self.header.setText("No candidate")
            return
        model = self.candidates.model
        row, count = model.row_of(candidate.subject_id), model.rowCount()
        hidden = model.scores_hidden
        score = HIDDEN if hidden else cell("score", candidate, search)
        fmr = HIDDEN if hidden else cell("fmr", candidate, search)
        rank = "" if hidden else f", rank {candidate.rank}"
        name = cell("name", candidate, search)
        name = f" ({name})" if name else ""
        self.header.setText(
            f"Candidate {row + 1} of {count}: {candidate.subject_id}{name} · score {score} · "
            f"FMR {fmr}{rank}"
        )

    def _on_drawn(self, image: str, start: QPointF, end: QPointF) -> None:
        """A drag on an aligned crop with a tool chosen: one annotation for the sheet."""
        tool, dx, dy = self.sheet.tool, end.x() - start.x(), end.y() - start.y()
        if tool == "circle":
            annotation = Annotation(image, "circle", start.x(), start.y(), math.hypot(dx, dy))
        elif tool == "label":
            text = self.sheet.label_edit.text().strip()
            annotation = Annotation(image, "label", start.x(), start.y(), text=text)
        else:
            annotation = Annotation(image, "arrow", start.x(), start.y(), end.x(), end.y())
        self.sheet.add_annotation(annotation)

    def _draw_annotations(self, annotations: list[Annotation]) -> None:
        for image, view in (("probe", self.probe_crop), ("candidate", self.cand_crop)):
            view.set_annotations(
                [(a.kind, a.x1, a.y1, a.x2, a.y2, a.text) for a in annotations if a.image == image]
            )

    def _show_plot(self) -> None:
        """The plot, unless blind review hides the scores (it would show them)."""
        if self.candidates.model.scores_hidden:
            self.score_plot.set_plot(
                None,
                f"Score plot {HIDDEN} in blind review: it shows once you have recorded a "
                "decision on every candidate",
            )
        else:
            self.score_plot.set_plot(self._plot, self._plot_message)

    def _on_landmarks_toggled(self, on: bool) -> None:
        for view in (self.probe_crop, self.cand_crop, self.probe_photo, self.cand_photo):
            view.show_landmarks(on)

    def _on_toggle_mode(self) -> None:
        self.modes.setCurrentIndex(1 - self.modes.currentIndex())

    def done(self, result: int) -> None:
        self.overlay.set_flicker(False)
        super().done(result)
