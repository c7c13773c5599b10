"""The footage panel: open a video, scan it for faces on a worker, step through it frame by frame,
see each face's track on a timeline, search a track, or send one frame to the photo search.

Frames for the player are decoded on the GUI thread: one frame forward is a couple of
milliseconds; a seek decodes from the previous key frame (tens of milliseconds on typical CCTV
and phone files). Opening (hashing the whole file) and scanning run on the worker pool.

"Use this frame as probe" emits `probe_frame_chosen(LoadedImage)`. The image's `path` is the
video path plus "#frame=N" and its `sha256` is the video file's SHA-256 (a frame has no file of
its own: the video is the evidence, the frame index locates the pixels in it), `format` is
"video frame". The frame's lineage (video hash, frame index, timecode) is in
`probe_lineage` and `lineage_for(image)`; pass it as `ProbeInfo.frame` when searching, so the
audit log and reports record it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import (
    QIcon,
    QKeySequence,
    QPixmap,
    QShortcut,
)
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workstation.footage import (
    FrameReader,
    ScanOptions,
    ScanResult,
    Track,
    VideoError,
    VideoInfo,
    find_person,
    probe_video,
    record_scan,
    scan_video,
    search_track,
    timecode,
)
from workstation.gallery.records import SearchRecord
from workstation.gui.context import AppContext
from workstation.gui.footage_views import (
    FootageTimelineWidget,
    FrameViewWidget,
    frame_probe_image,
)
from workstation.gui.imaging import bgr_to_qimage
from workstation.gui.text import make_plain, tooltip
from workstation.progress import CancelToken, Progress
from workstation.reports.columns import Align, Surface, columns_for
from workstation.vision.images import LoadedImage

VIDEO_FILTER = "Videos (*.mp4 *.m4v *.avi *.mov *.mkv *.webm *.mpg *.mpeg);;All files (*)"
ROLE_TRACK_ID = Qt.ItemDataRole.UserRole + 1
FOOTAGE_COLUMNS = columns_for(Surface.FOOTAGE_TAB)
RIGHT_ALIGNED = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


class FootagePanelWidget(QWidget):
    """Player + timeline + track list for one video; scan, search tracks, pick probe frames."""

    probe_frame_chosen = Signal(object)  # LoadedImage of the current frame (see module doc)
    case_needed = Signal()  # a search was asked for but no case is open
    search_recorded = Signal(int)  # search id, for the candidates view
    video_opened = Signal(object)  # VideoInfo
    scan_finished = Signal(object)  # ScanResult

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.info: VideoInfo | None = None
        self.scan: ScanResult | None = None
        self.frame_index = 0
        self.frame_bgr: np.ndarray | None = None
        self.probe_lineage: dict[str, Any] | None = None
        self.last_search: SearchRecord | None = None
        self.busy = False
        self._reader: FrameReader | None = None
        self._worker: Any = None
        self._lineages: dict[str, dict[str, Any]] = {}
        self._build()
        self._update_enabled()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.open_button = QPushButton("Open video…", self)
        self.open_button.clicked.connect(self._on_open_clicked)
        self.file_label = QLabel("No video open.", self)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.every_spin = QDoubleSpinBox(self)
        self.every_spin.setRange(0.04, 10.0)
        self.every_spin.setSingleStep(0.1)
        self.every_spin.setDecimals(2)
        self.every_spin.setValue(0.2)
        self.every_spin.setSuffix(" s")
        self.every_spin.setToolTip("Look for faces in one frame this often")
        self.scan_button = QPushButton("Scan for faces", self)
        self.scan_button.clicked.connect(self._on_scan_clicked)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.status_label = QLabel(self)
        self.status_label.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.file_label, 1)
        top.addWidget(QLabel("Sample every", self))
        top.addWidget(self.every_spin)
        top.addWidget(self.scan_button)
        top.addWidget(self.cancel_button)

        self.view = FrameViewWidget(self)
        self.prev_button = QPushButton("◀ Frame", self)
        self.prev_button.setToolTip("Previous frame (Left arrow)")
        self.prev_button.clicked.connect(self.previous_frame)
        self.next_button = QPushButton("Frame ▶", self)
        self.next_button.setToolTip("Next frame (Right arrow)")
        self.next_button.clicked.connect(self.next_frame)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setTracking(False)
        self.slider.valueChanged.connect(self.seek)
        self.slider.sliderMoved.connect(self._on_slider_moved)
        self.position_label = QLabel("–", self)
        self.position_label.setMinimumWidth(190)
        self.position_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.probe_button = QPushButton("Use this frame as probe", self)
        self.probe_button.setToolTip(
            "Send this frame to the photo search; its video hash, frame number and timecode "
            "are recorded with the search"
        )
        self.probe_button.clicked.connect(self._on_probe_clicked)
        controls = QHBoxLayout()
        controls.addWidget(self.prev_button)
        controls.addWidget(self.next_button)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.position_label)
        controls.addWidget(self.probe_button)
        self.timeline = FootageTimelineWidget(self)
        self.timeline.seek_requested.connect(self._on_timeline_seek)
        self.timeline.track_clicked.connect(self._on_timeline_track_clicked)

        player = QWidget(self)
        player_layout = QVBoxLayout(player)
        player_layout.setContentsMargins(0, 0, 0, 0)
        player_layout.addWidget(self.view, 1)
        player_layout.addLayout(controls)
        player_layout.addWidget(self.timeline)

        self.track_list = QListWidget(self)
        self.track_list.setIconSize(QSize(56, 56))
        self.track_list.setToolTip("Faces followed through the video. Click one to go to it.")
        self.track_list.currentItemChanged.connect(self._on_track_selected)
        self.track_list.itemActivated.connect(lambda _item: self._on_search_clicked())
        self.note_edit = QLineEdit(self)
        self.note_edit.setPlaceholderText("Note (required to search a poor-quality track)")
        self.search_button = QPushButton("Search this track", self)
        self.search_button.clicked.connect(self._on_search_clicked)
        self.find_button = QPushButton("Where else?", self)
        self.find_button.setToolTip(
            "Mark on the timeline every track that looks like this track's person"
        )
        self.find_button.clicked.connect(self._on_find_clicked)
        self.results = QTableWidget(0, len(FOOTAGE_COLUMNS), self)
        self.results.setHorizontalHeaderLabels([c.header for c in FOOTAGE_COLUMNS])
        for position, column in enumerate(FOOTAGE_COLUMNS):
            self.results.horizontalHeaderItem(position).setToolTip(tooltip(column.tooltip))
        self.results.verticalHeader().hide()
        self.results.horizontalHeader().setStretchLastSection(True)
        self.results.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.results_label = QLabel("Leads for human review, never identifications.", self)
        self.results_label.setWordWrap(True)
        # File names, case numbers and messages naming them: shown as typed, never as markup.
        make_plain(self.file_label, self.status_label, self.position_label, self.results_label)
        buttons = QHBoxLayout()
        buttons.addWidget(self.search_button)
        buttons.addWidget(self.find_button)
        side = QWidget(self)
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(QLabel("Tracks", self))
        side_layout.addWidget(self.track_list, 3)
        side_layout.addWidget(self.note_edit)
        side_layout.addLayout(buttons)
        side_layout.addWidget(self.results_label)
        side_layout.addWidget(self.results, 2)

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(player)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        side.setMinimumWidth(330)
        splitter.setSizes([880, 400])

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.status_label, 2)
        layout.addLayout(progress_row)
        layout.addWidget(splitter, 1)

        for key, slot in (
            (Qt.Key.Key_Right, self.next_frame),
            (Qt.Key.Key_Left, self.previous_frame),
        ):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    def _update_enabled(self) -> None:
        has_video = self.info is not None
        has_track = self.selected_track() is not None
        self.open_button.setEnabled(not self.busy)
        self.scan_button.setEnabled(has_video and not self.busy)
        self.every_spin.setEnabled(not self.busy)
        self.cancel_button.setEnabled(self.busy and self._worker is not None)
        for widget in (self.prev_button, self.next_button, self.slider, self.probe_button):
            widget.setEnabled(has_video)
        self.search_button.setEnabled(has_track and not self.busy)
        self.find_button.setEnabled(has_track)

    def show_message(self, text: str, error: bool = False) -> None:
        self.status_label.setStyleSheet("color: #b00020; font-weight: bold;" if error else "")
        self.status_label.setText(text)

    # ------------------------------------------------------------------ opening
    def _on_open_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video", "", VIDEO_FILTER)
        if path:
            self.open_video(Path(path))

    def open_video(self, path: Path | str) -> None:
        """Read the video's facts and hash it on a worker, then show its first frame."""
        path = Path(path)
        self._set_busy(True, f"Opening {path.name} (hashing the file)…")
        self.progress.setRange(0, 0)
        self._worker = None
        self.context.pool.start(
            lambda _token: probe_video(path),
            owner=self,
            on_result=self._on_video_probed,
            on_error=self._on_error,
            on_finished=self._on_work_finished,
        )

    def _on_video_probed(self, info: VideoInfo) -> None:
        if self._reader is not None:
            self._reader.close()
        self.info = info
        self.scan = None
        self._reader = FrameReader(info)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(info.frame_count - 1, 0))
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self.file_label.setText(
            f"{info.path.name} — {info.width}x{info.height}, {info.fps:.2f} fps, "
            f"{timecode(info.duration_s)}, sha256 {info.sha256[:12]}…"
        )
        self.file_label.setToolTip(
            tooltip(f"{info.path}\nSHA-256 {info.sha256}\ncodec {info.codec}")
        )
        self.track_list.clear()
        self.results.setRowCount(0)
        self.timeline.set_tracks(info.duration_s, [], 1.0)
        self.show_message("Press “Scan for faces” to find and follow the faces in this video.")
        self.seek(0)
        self.video_opened.emit(info)

    # ------------------------------------------------------------------ player
    def seek(self, frame_index: int) -> None:
        """Show frame `frame_index` (clamped to the video)."""
        if self.info is None or self._reader is None:
            return
        last = max(self.info.frame_count - 1, 0)
        frame_index = min(max(int(frame_index), 0), last)
        try:
            bgr = self._reader.read(frame_index)
        except VideoError as exc:
            self.show_message(str(exc), error=True)
            return
        self.frame_index = frame_index
        self.frame_bgr = bgr
        if self.slider.value() != frame_index:
            self.slider.blockSignals(True)
            self.slider.setValue(frame_index)
            self.slider.blockSignals(False)
        seconds = self.info.time_of(frame_index)
        self.position_label.setText(f"frame {frame_index} / {last}   {timecode(seconds)}")
        self.timeline.set_position(seconds)
        self.view.show_frame(bgr_to_qimage(bgr), self._boxes_at(frame_index))

    def next_frame(self) -> None:
        self.seek(self.frame_index + 1)

    def previous_frame(self) -> None:
        self.seek(self.frame_index - 1)

    def _on_slider_moved(self, value: int) -> None:
        if self.info is not None:
            self.position_label.setText(f"frame {value}   {timecode(self.info.time_of(value))}")

    def _boxes_at(self, frame_index: int) -> list[tuple[int, Any, bool]]:
        """Boxes from each track's latest sample at or before this frame (within one step)."""
        if self.scan is None:
            return []
        step = self.scan.step_frames
        boxes = []
        for track in self.scan.tracks:
            if not track.first.frame_index <= frame_index < track.last.frame_index + step:
                continue
            for obs in reversed(track.observations):
                if obs.frame_index <= frame_index:
                    if frame_index - obs.frame_index < step:
                        boxes.append((track.track_id, obs.box, obs.frame_index == frame_index))
                    break
        return boxes

    def _on_timeline_seek(self, seconds: float) -> None:
        if self.info is not None:
            self.seek(self.info.frame_at(seconds))

    def _on_timeline_track_clicked(self, track_id: int) -> None:
        for row in range(self.track_list.count()):
            item = self.track_list.item(row)
            if item.data(ROLE_TRACK_ID) == track_id:
                self.track_list.blockSignals(True)
                self.track_list.setCurrentItem(item)
                self.track_list.blockSignals(False)
                self.timeline.set_selected(track_id)
                self._update_enabled()
                break

    # ------------------------------------------------------------------ scanning
    def _on_scan_clicked(self) -> None:
        self.start_scan(self.every_spin.value())

    def start_scan(self, every_s: float | None = None) -> None:
        """Scan the open video on a worker; progress and Cancel show while it runs."""
        if self.info is None or self.busy:
            return
        info = self.info
        options = ScanOptions(every_s=every_s or self.every_spin.value())
        case = self.context.case
        context = self.context

        def work(token: CancelToken) -> Any:
            result = yield from scan_video(context.engine(), info.path, options, token, info)
            with context.open_gallery() as gallery:
                record_scan(
                    gallery, result, case.case_id if case else None, case.purpose if case else None
                )
            return result

        self._set_busy(True, f"Scanning {info.path.name}…")
        self.progress.setRange(0, max(info.frame_count, 1))
        self.progress.setValue(0)
        self._worker = self.context.pool.start(
            work,
            owner=self,
            on_result=self._on_scan_result,
            on_error=self._on_error,
            on_progress=self._on_scan_progress,
            on_finished=self._on_work_finished,
        )
        self._update_enabled()

    def _on_cancel_clicked(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self.show_message("Cancelling… the tracks found so far are kept.")

    def _on_scan_progress(self, step: Progress) -> None:
        if step.total:
            self.progress.setRange(0, step.total)
            self.progress.setValue(step.done)
            self.progress.setFormat(f"%p%  {step.message}")

    def _on_scan_result(self, result: ScanResult) -> None:
        self.scan = result
        self.context.audit_changed.emit()
        self.timeline.set_tracks(result.video.duration_s, result.tracks, result.sample_interval_s)
        self.track_list.clear()
        for track in result.tracks:
            self.track_list.addItem(self._track_item(track))
        summary = (
            f"{len(result.tracks)} track(s) in {timecode(result.scanned_s)} of video "
            f"({result.samples} frames sampled, {result.speed_x_realtime:.1f}x real time)."
        )
        if result.cancelled:
            self.show_message(f"Scan cancelled. {summary}")
        elif result.damage:
            self.show_message(f"{result.damage}. {summary}", error=True)
        else:
            self.show_message(summary)
        self.seek(self.frame_index)
        self.scan_finished.emit(result)

    def _track_item(self, track: Track) -> QListWidgetItem:
        quality = track.best_observation.quality.verdict.value
        item = QListWidgetItem(
            f"Track {track.track_id}\n{timecode(track.start_s)} – {timecode(track.end_s)}\n"
            f"{track.frame_count} frames · quality {quality}"
        )
        item.setData(ROLE_TRACK_ID, track.track_id)
        if track.thumbnail is not None:
            item.setIcon(QIcon(QPixmap.fromImage(bgr_to_qimage(track.thumbnail))))
        item.setForeground(self.palette().text())
        item.setToolTip(
            f"Best frame {track.best_frame} ({timecode(track.best_observation.time_s)})"
        )
        return item

    # ------------------------------------------------------------------ tracks
    def selected_track(self) -> Track | None:
        item = self.track_list.currentItem()
        if item is None or self.scan is None:
            return None
        return self.scan.track(int(item.data(ROLE_TRACK_ID)))

    def select_track(self, track_id: int) -> None:
        for row in range(self.track_list.count()):
            if self.track_list.item(row).data(ROLE_TRACK_ID) == track_id:
                self.track_list.setCurrentRow(row)
                return

    def _on_track_selected(self, current: QListWidgetItem | None, _previous: Any) -> None:
        track = self.selected_track()
        self.timeline.set_selected(track.track_id if track else None)
        self.timeline.set_highlighted(set())
        if track is not None:
            self.seek(track.best_frame)
        self._update_enabled()

    def _on_find_clicked(self) -> None:
        track = self.selected_track()
        if track is None or self.scan is None or track.template is None:
            return
        segments = find_person(self.scan, track.template)
        ids = {i for s in segments for i in s.track_ids}
        self.timeline.set_highlighted(ids)
        spans = ", ".join(f"{timecode(s.start_s)}–{timecode(s.end_s)}" for s in segments)
        self.show_message(
            f"Track {track.track_id}'s person may also appear in tracks "
            f"{', '.join(str(i) for i in sorted(ids))}: {spans} (leads for review)."
        )

    def _on_search_clicked(self) -> None:
        track = self.selected_track()
        if track is None or self.scan is None or self.busy:
            return
        case = self.context.case
        if case is None:
            self.show_message(
                "Open or create a case first: every search is recorded against one.", error=True
            )
            self.case_needed.emit()
            return
        scan, context = self.scan, self.context
        note = self.note_edit.text().strip() or None
        top_k = int(getattr(context.settings, "top_k", 20))

        def work(_token: CancelToken) -> Any:
            with context.open_gallery() as gallery:
                return search_track(
                    gallery, scan, track, case.case_id, case.purpose, top_k=top_k, note=note
                )

        self._set_busy(True, f"Searching track {track.track_id}…")
        self.progress.setRange(0, 0)
        self._worker = None
        self.context.pool.start(
            work,
            owner=self,
            on_result=self._on_search_result,
            on_error=self._on_error,
            on_finished=self._on_work_finished,
        )

    def _on_search_result(self, result: SearchRecord) -> None:
        self.show_search(result)
        self.show_message(f"Search {result.search_id} recorded.")
        self.context.audit_changed.emit()
        self.search_recorded.emit(result.search_id)

    def show_search(self, result: SearchRecord) -> None:
        """Show a recorded search's candidates (columns and words from the one column spec)."""
        self.last_search = result
        self.results.setRowCount(len(result.candidates))
        for row, candidate in enumerate(result.candidates):
            for position, column in enumerate(FOOTAGE_COLUMNS):
                item = QTableWidgetItem(column.text(candidate, result))
                item.setToolTip(tooltip(column.tip(candidate, result)))
                if column.align is Align.RIGHT:
                    item.setTextAlignment(RIGHT_ALIGNED)
                self.results.setItem(row, position, item)
        self.results.resizeColumnsToContents()
        frame = result.probe.frame or {}
        self.results_label.setText(
            f"Search {result.search_id} (case {result.case_id}): track "
            f"{frame.get('track_id')}, frame {frame.get('frame_index')} at "
            f"{frame.get('timecode')}. Leads for human review, never identifications."
        )

    # ------------------------------------------------------------------ probe frame
    def _on_probe_clicked(self) -> None:
        self.use_frame_as_probe()

    def use_frame_as_probe(self) -> LoadedImage | None:
        """Emit the current frame as a probe image (see the module doc for its path and hash)."""
        if self.info is None or self.frame_bgr is None:
            return None
        image = frame_probe_image(self.info, self.frame_index, self.frame_bgr)
        lineage = self.info.lineage(self.frame_index)
        self.probe_lineage = lineage
        self._lineages[str(image.path)] = lineage
        self.show_message(
            f"Frame {self.frame_index} ({lineage['timecode']}) sent to the photo search."
        )
        self.probe_frame_chosen.emit(image)
        return image

    def lineage_for(self, image: LoadedImage) -> dict[str, Any] | None:
        """The frame lineage (for ProbeInfo.frame) of an image this panel emitted, else None."""
        return self._lineages.get(str(image.path))

    # ------------------------------------------------------------------ common
    def _set_busy(self, busy: bool, message: str = "") -> None:
        self.busy = busy
        if message:
            self.show_message(message)
        if not busy:
            self.progress.setRange(0, 1)
            self.progress.setValue(1 if self.scan else 0)
            self.progress.setFormat("")
        self._update_enabled()

    def _on_error(self, message: str) -> None:
        self.show_message(message, error=True)

    def _on_work_finished(self) -> None:
        self._worker = None
        self._set_busy(False)

    def closeEvent(self, event: Any) -> None:
        if self._worker is not None:
            self._worker.cancel()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        super().closeEvent(event)
