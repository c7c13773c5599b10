"""The probe side of the search page: load a photo (or a footage frame) on a worker, find its
faces, let the examiner choose one or draw a box, and show the chosen face's quality.

Everything slow (reading the file, detection, embedding a drawn box) runs on the worker pool;
this widget only shows results as they arrive.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workstation.domain import BBox, Face, FaceSource, Verdict
from workstation.gallery.probe_source import recorded_probe_image
from workstation.gallery.records import SearchRecord
from workstation.gui.canvas import ProbeCanvasView
from workstation.gui.context import AppContext
from workstation.gui.imaging import bgr_to_qimage, verdict_color
from workstation.gui.text import make_plain
from workstation.progress import CancelToken, Progress, Work
from workstation.vision.enhancement import Enhancement, enhance, pixels_sha256
from workstation.vision.enhancement_steps import Step
from workstation.vision.images import (
    IMAGE_FORMATS_TEXT,
    LoadedImage,
    iter_image_files,
    load_image,
)
from workstation.vision.video import FRAME_LINEAGE_KEYS


@dataclasses.dataclass
class LoadedProbe:
    """A photo and the faces found in it (built on a worker)."""

    image: LoadedImage
    faces: list[Face]
    qimage: Any  # QImage, built off the GUI thread
    from_file: bool = True  # False for a decoded video frame (not a file to reopen)


@dataclasses.dataclass
class EnhancedProbe:
    """A working copy of the probe, its lineage and the faces found in it (built on a worker)."""

    bgr: Any  # np.ndarray: the working copy's pixels
    lineage: Enhancement
    faces: list[Face]
    qimage: Any


def describe_quality(face: Face) -> str:
    """One line for an examiner: verdict, inter-eye distance, and the reasons."""
    q = face.quality
    how = "drawn by hand" if face.source is FaceSource.MANUAL else "found by the detector"
    bits = [f"Face {face.index + 1} ({how}): quality {q.verdict.value.upper()}"]
    if q.inter_eye_px is not None:
        bits.append(f"{q.inter_eye_px:.0f} px between the eyes")
    if face.low_confidence:
        bits.append("no landmarks found in the box: searched unaligned, low confidence")
    text = "; ".join(bits)
    if q.reasons:
        text += ". " + "; ".join(q.reasons)
    return text


class ProbePanelWidget(QWidget):
    """Canvas + face list + quality line for the current probe photo."""

    probe_loaded = Signal(object)  # LoadedProbe
    face_selected = Signal(object)  # Face | None
    busy_changed = Signal(bool)
    file_opened = Signal(str)  # a photo the examiner opened (for recent files)
    enhancement_changed = Signal(object)  # Enhancement | None (None: the original is searched)
    enhance_dialog_opened = Signal(object)  # the EnhanceDialog, before exec (tests, tours)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.canvas = ProbeCanvasView(self)
        self.face_list = QListWidget(self)
        self.face_list.setMaximumHeight(110)
        self.face_list.setToolTip("Faces in this photo, largest first. Click one to choose it.")
        self.quality_label = QLabel("No photo loaded.", self)
        self.quality_label.setWordWrap(True)
        self.quality_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label = QLabel(self)
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b00020; font-weight: bold;")
        self.error_label.hide()
        self.file_label = QLabel(self)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.queue_label = QLabel(self)
        self.enhance_button = QPushButton("Enhance…", self)
        self.enhance_button.setToolTip(
            "Make a working copy of the probe (crop, rotate, brightness, equalise, denoise, "
            "sharpen, upscale...): the original is never changed and every step is recorded"
        )
        self.enhance_button.setEnabled(False)
        # Says, whenever a working copy is shown, that it is what will be searched.
        self.enhancement_label = QLabel(self)
        self.enhancement_label.setStyleSheet(
            "background: #fff3cd; color: #5c3c00; font-weight: bold; padding: 2px 6px;"
        )
        self.enhancement_label.hide()
        # File names and messages naming them are shown as typed, never as markup.
        make_plain(
            self.quality_label,
            self.error_label,
            self.file_label,
            self.queue_label,
            self.enhancement_label,
        )

        top = QHBoxLayout()
        top.addWidget(self.file_label, 1)
        top.addWidget(self.enhancement_label)
        top.addWidget(self.queue_label)
        top.addWidget(self.enhance_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.error_label)
        layout.addWidget(self.quality_label)
        layout.addWidget(self.face_list)

        self.image: LoadedImage | None = None
        self.lineage: dict[str, Any] | None = None  # video frame lineage of the current image
        self._next_lineage: dict[str, Any] | None = None
        self.faces: list[Face] = []
        self.detected_count = 0
        # The working copy searched instead of the original, when the examiner enhanced it.
        self.enhanced: EnhancedProbe | None = None
        self._original: LoadedProbe | None = None
        self._queue: list[Path] = []
        self._queue_pos = -1
        self._busy = 0

        self.canvas.face_clicked.connect(self._on_canvas_face_clicked)
        self.canvas.box_drawn.connect(self._on_box_drawn)
        self.face_list.currentRowChanged.connect(self._on_face_row_changed)
        self.enhance_button.clicked.connect(self.ask_enhancement)

    # ------------------------------------------------------------------ state
    @property
    def selected_face(self) -> Face | None:
        index = self.canvas.selected_index
        return self.faces[index] if index is not None and index < len(self.faces) else None

    @property
    def busy(self) -> bool:
        return self._busy > 0

    def _set_busy(self, delta: int) -> None:
        was = self.busy
        self._busy = max(0, self._busy + delta)
        if was != self.busy:
            self.busy_changed.emit(self.busy)

    def _on_work_finished(self) -> None:
        self._set_busy(-1)

    def _start(
        self,
        work: Callable[[CancelToken], Any],
        on_result: Callable[[Any], None],
        on_error: Callable[[str], None],
    ) -> None:
        """Run `work` on the pool; the panel counts as busy until it finishes."""
        self._set_busy(+1)
        self.context.pool.start(
            work,
            owner=self,
            on_result=on_result,
            on_error=on_error,
            on_finished=self._on_work_finished,
        )

    def show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))
        if message:
            self.context.status_message.emit(message)

    # ------------------------------------------------------------------ opening photos
    def open_paths(self, paths: list[Path]) -> int:
        """Queue image files and folders (searched recursively), open the first; returns count."""
        files = iter_image_files([Path(p) for p in paths])
        if not files:
            names = ", ".join(str(p) for p in paths)
            self.show_error(f"{names}: no image files here (looked for {IMAGE_FORMATS_TEXT})")
            return 0
        self._queue, self._queue_pos = files, 0
        self._load_queue_item()
        return len(files)

    def next_photo(self) -> None:
        if self._queue_pos + 1 < len(self._queue):
            self._queue_pos += 1
            self._load_queue_item()

    def previous_photo(self) -> None:
        if self._queue_pos > 0:
            self._queue_pos -= 1
            self._load_queue_item()

    def _load_queue_item(self) -> None:
        path = self._queue[self._queue_pos]
        count = len(self._queue)
        self.queue_label.setText(f"photo {self._queue_pos + 1} of {count}" if count > 1 else "")
        self.load_path(path)

    def load_path(self, path: Path) -> None:
        """Read and analyse a photo on a worker; `probe_loaded` fires when its faces are known."""
        self.show_error("")
        self._next_lineage = None
        self.context.status_message.emit(f"Opening {path} ...")
        context = self.context

        def work(cancel: CancelToken) -> Work[LoadedProbe]:
            yield Progress(0, 2, f"reading {path.name}")
            image = load_image(path)
            yield Progress(1, 2, f"finding faces in {path.name}")
            faces = context.engine().analyze(image.bgr)
            return LoadedProbe(image, faces, bgr_to_qimage(image.bgr))

        self._start(work, self._on_probe_ready, self._on_load_failed)

    def load_recorded(self, search: SearchRecord) -> None:
        """Show the probe a recorded search searched (a second examiner reviewing it, a case
        reopened): its photo, or its frame read again from the video, checked by SHA-256 on a
        worker; a search made from a frame again records the frame's lineage."""
        self.show_error("")
        frame = search.probe.frame
        self._next_lineage = (
            {key: frame[key] for key in FRAME_LINEAGE_KEYS if key in frame} if frame else None
        )
        self._queue, self._queue_pos = [], -1
        self.queue_label.setText("")
        context = self.context
        where = f"the probe of search {search.search_id}"
        self.context.status_message.emit(f"Opening {where} ...")

        def work(cancel: CancelToken) -> Work[LoadedProbe]:
            yield Progress(0, 2, f"reading {where}")
            image = recorded_probe_image(search)
            yield Progress(1, 2, f"finding faces in {where}")
            faces = context.engine().analyze(image.bgr)
            return LoadedProbe(image, faces, bgr_to_qimage(image.bgr), from_file=frame is None)

        self._start(work, self._on_probe_ready, self._on_load_failed)

    def load_frame(self, frame: LoadedImage, lineage: dict[str, Any] | None = None) -> None:
        """Take a frame chosen in the footage panel (already decoded) and find its faces;
        `lineage` (video hash, frame index, timecode) is recorded with its searches."""
        self.show_error("")
        self._next_lineage = lineage
        self._queue, self._queue_pos = [], -1
        self.queue_label.setText("")
        context = self.context

        def work(cancel: CancelToken) -> LoadedProbe:
            faces = context.engine().analyze(frame.bgr)
            return LoadedProbe(frame, faces, bgr_to_qimage(frame.bgr), from_file=False)

        self._start(work, self._on_probe_ready, self._on_load_failed)

    def _on_load_failed(self, message: str) -> None:
        self.show_error(message)

    def _on_probe_ready(self, probe: LoadedProbe) -> None:
        self.image = probe.image
        self.lineage = self._next_lineage
        self._original = probe
        self._show_enhancement(None)
        self.faces = list(probe.faces)
        self.detected_count = len(self.faces)
        self.canvas.set_image(probe.qimage)
        self.file_label.setText(
            f"{probe.image.path}  ·  {probe.image.width}×{probe.image.height}  ·  "
            f"SHA-256 {probe.image.sha256[:16]}…"
        )
        self._refresh_faces(0 if self.faces else None)
        warnings = [probe.image.frame_note] if probe.image.frame_note else []
        if not self.faces:
            warnings.append(
                f"{probe.image.path.name}: no face found. Draw a box around the face "
                "(Face > Draw box, key D) to search it by hand."
            )
        if warnings:
            self.show_error("\n".join(warnings))
        self.context.status_message.emit(
            f"{probe.image.path.name}: {len(self.faces)} face(s) found"
        )
        if probe.from_file:
            self.file_opened.emit(str(probe.image.path))
        self.probe_loaded.emit(probe)

    # ------------------------------------------------------------------ faces
    def _refresh_faces(self, selected: int | None) -> None:
        self.canvas.set_faces(self.faces, selected)
        self.face_list.blockSignals(True)
        self.face_list.clear()
        for face in self.faces:
            item = QListWidgetItem(describe_quality(face))
            item.setForeground(verdict_color(face.quality.verdict.value))
            self.face_list.addItem(item)
        self.face_list.setCurrentRow(-1 if selected is None else selected)
        self.face_list.blockSignals(False)
        self._on_selection_changed()

    def select_face(self, index: int) -> None:
        if 0 <= index < len(self.faces):
            self.canvas.select_face(index)
            self.face_list.blockSignals(True)
            self.face_list.setCurrentRow(index)
            self.face_list.blockSignals(False)
            self._on_selection_changed()

    def select_next_face(self, step: int = 1) -> None:
        if self.faces:
            current = self.canvas.selected_index
            self.select_face(((current if current is not None else -step) + step) % len(self.faces))

    def _on_canvas_face_clicked(self, index: int) -> None:
        self.select_face(index)

    def _on_face_row_changed(self, row: int) -> None:
        if row >= 0:
            self.select_face(row)

    def _on_selection_changed(self) -> None:
        face = self.selected_face
        if face is None:
            self.quality_label.setText("Choose a face: click its box, or draw one (key D).")
            self.quality_label.setStyleSheet("")
        else:
            self.quality_label.setText(describe_quality(face))
            color = verdict_color(face.quality.verdict.value).name()
            weight = "bold" if face.quality.verdict is not Verdict.GOOD else "normal"
            self.quality_label.setStyleSheet(f"color: {color}; font-weight: {weight};")
        self.face_selected.emit(face)

    def start_drawing(self) -> None:
        if self.image is None:
            self.show_error("Open a photo first, then draw a box around the face.")
            return
        self.canvas.set_draw_mode(True)
        self.context.status_message.emit("Draw a box around the face with the mouse.")

    def _on_box_drawn(self, box: BBox) -> None:
        image = self.image
        if image is None:
            return
        context = self.context

        bgr = self.searched_bgr  # the box is drawn on the working copy when there is one

        def work(cancel: CancelToken) -> Face:
            return context.engine().analyze_box(bgr, box)

        self._start(work, self._on_manual_face_ready, self.show_error)

    def _on_manual_face_ready(self, face: Face) -> None:
        face = dataclasses.replace(face, index=len(self.faces))
        self.faces.append(face)
        self._refresh_faces(face.index)
        self.context.status_message.emit(
            "Drawn face added"
            + (
                " (no landmarks found: it will be searched unaligned)"
                if face.low_confidence
                else ""
            )
        )

    # ------------------------------------------------------------------ enhancement
    @property
    def enhancement(self) -> Enhancement | None:
        """The lineage of the working copy searched, or None (the original is searched)."""
        return self.enhanced.lineage if self.enhanced else None

    @property
    def searched_bgr(self) -> Any:
        """The pixels faces are found in and searched on: the working copy, else the original."""
        if self.enhanced is not None:
            return self.enhanced.bgr
        return self.image.bgr if self.image is not None else None

    def make_enhance_dialog(self) -> Any:
        """The Enhance… dialog on the original, holding the current steps (None: no photo)."""
        from workstation.gui.enhance_dialog import EnhanceDialog

        if self.image is None:
            return None
        steps = self.enhancement.steps if self.enhancement else ()
        engine = self.context.engine

        def find_eyes(bgr: Any) -> Any:
            faces = engine().detect(bgr)
            if not faces or faces[0].landmarks is None:
                return None
            return faces[0].landmarks[0], faces[0].landmarks[1]

        return EnhanceDialog(self.context, self.image.bgr, steps, find_eyes, self)

    def ask_enhancement(self) -> None:
        dialog = self.make_enhance_dialog()
        if dialog is None:
            self.show_error("Open a photo first, then enhance it.")
            return
        self.enhance_dialog_opened.emit(dialog)
        if dialog.exec():
            self.set_enhancement(dialog.steps)

    def set_enhancement(self, steps: tuple[Step, ...]) -> None:
        """Search a working copy made by `steps` (none: the original again). The copy is made
        and its faces found on a worker; a footage frame is named by its pixels' SHA-256."""
        image = self.image
        if image is None:
            return
        if not steps:
            self._restore_original()
            return
        self.show_error("")
        context, from_frame = self.context, self.lineage is not None
        original_sha256 = pixels_sha256(image.bgr) if from_frame else image.sha256
        kind = "video frame" if from_frame else "file"

        def work(cancel: CancelToken) -> Work[EnhancedProbe]:
            yield Progress(0, 2, "making the working copy")
            working = enhance(image.bgr, steps, original_sha256, kind)
            yield Progress(1, 2, "finding faces in the working copy")
            faces = context.engine().analyze(working.bgr)
            return EnhancedProbe(working.bgr, working.lineage, faces, bgr_to_qimage(working.bgr))

        def done(enhanced: EnhancedProbe) -> None:
            if self.image is not image:
                return  # another photo was opened meanwhile
            self._show_enhancement(enhanced)
            self._show_faces(enhanced.faces, enhanced.qimage)

        self._start(work, done, self.show_error)

    def _restore_original(self) -> None:
        original = self._original
        if original is None:
            return
        self._show_enhancement(None)
        self._show_faces(original.faces, original.qimage)

    def _show_faces(self, faces: list[Face], qimage: Any) -> None:
        self.faces = list(faces)
        self.detected_count = len(self.faces)
        self.canvas.set_image(qimage)
        self._refresh_faces(0 if self.faces else None)
        if not self.faces:
            self.show_error("No face found in the working copy. Draw a box around the face.")

    def _show_enhancement(self, enhanced: EnhancedProbe | None) -> None:
        self.enhanced = enhanced
        self.enhance_button.setEnabled(self.image is not None)
        if enhanced is None:
            self.enhancement_label.hide()
        else:
            lineage = enhanced.lineage
            self.enhancement_label.setText(
                f"{lineage.summary}: the working copy ({lineage.working_width}×"
                f"{lineage.working_height}) is searched, the original is unchanged"
            )
            self.enhancement_label.setToolTip(
                "\n".join(
                    [
                        *lineage.step_lines,
                        f"working copy SHA-256 {lineage.working_sha256}",
                        f"original SHA-256 {lineage.original_sha256}",
                    ]
                )
            )
            self.enhancement_label.show()
        self.enhancement_changed.emit(self.enhancement)
