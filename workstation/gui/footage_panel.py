"""The footage tab: open a video, scan it for faces on a worker, and put the player (frames,
stepping, timeline: `footage_player.py`) beside the track sidebar (tracks, searching a track,
the probe frame: `footage_tracks.py`).

Opening (hashing the whole file), scanning and searching a track run on the worker pool through
the tab's one task runner (`gui/tasks.py`): one at a time, with progress, and Cancel for a scan.
Frames for the player decode on the player's own thread.

"Use this frame as probe" emits `probe_frame_chosen(LoadedImage)`; `lineage_for(image)` gives
its lineage (video hash, frame index, timecode) for `ProbeInfo.frame` (see `footage_tracks`).
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workstation.footage import (
    DEFAULT_MIN_FACE_PX,
    SMALLEST_MIN_FACE_PX,
    ScanOptions,
    ScanResult,
    VideoInfo,
    probe_video,
    record_scan,
    scan_video,
    timecode,
)
from workstation.footage.scan import detection_side, smallest_face_seen
from workstation.gui.context import AppContext
from workstation.gui.footage_player import FootagePlayerWidget
from workstation.gui.footage_tracks import FootageTracksWidget
from workstation.gui.tasks import TaskWidget
from workstation.gui.text import make_plain, tooltip
from workstation.progress import CancelToken, Progress
from workstation.vision.images import LoadedImage

VIDEO_FILTER = "Videos (*.mp4 *.m4v *.avi *.mov *.mkv *.webm *.mpg *.mpeg);;All files (*)"


class FootagePanelWidget(QWidget):
    """Opens and scans one video; composes the player and the track sidebar."""

    probe_frame_chosen = Signal(object)  # LoadedImage of the frame in view (footage_tracks)
    case_needed = Signal()  # a scan or a search was asked for but no case is open
    search_recorded = Signal(int)  # search id, for the candidates view
    video_opened = Signal(object)  # VideoInfo
    scan_finished = Signal(object)  # ScanResult

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.open_button = QPushButton("Open video…", self)
        self.file_label = QLabel("No video open.", self)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.every_spin = QDoubleSpinBox(self)
        self.every_spin.setRange(0.04, 10.0)
        self.every_spin.setSingleStep(0.1)
        self.every_spin.setDecimals(2)
        self.every_spin.setValue(0.2)
        self.every_spin.setSuffix(" s")
        self.every_spin.setToolTip("Look for faces in one frame this often")
        self.min_face_spin = QSpinBox(self)
        # The smallest face to look for sets how large a copy of each frame the detector sees:
        # the examiner trades speed for small faces, and the scan's record says which were
        # not looked for.
        self.min_face_spin.setRange(SMALLEST_MIN_FACE_PX, 400)
        self.min_face_spin.setSingleStep(10)
        self.min_face_spin.setValue(DEFAULT_MIN_FACE_PX)
        self.min_face_spin.setSuffix(" px")
        self.scan_button = QPushButton("Scan for faces", self)
        self.status_label = QLabel(self)
        self.status_label.setWordWrap(True)
        # File names and messages naming them: shown as typed, never as markup.
        make_plain(self.file_label, self.status_label)
        self.task = TaskWidget(
            context.pool,
            self,
            cancel_tip="Stop the scan; the tracks found so far are kept (Esc)",
            show_status=self.show_message,
            hold=[self.open_button, self.every_spin, self.min_face_spin],
        )
        self.cancel_button = self.task.cancel_button
        self.player = FootagePlayerWidget(self)
        self.tracks = FootageTracksWidget(context, self.player, self.task, self.show_message, self)
        self._min_face_hint()

        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.file_label, 1)
        top.addWidget(QLabel("Sample every", self))
        top.addWidget(self.every_spin)
        top.addWidget(QLabel("Faces from", self))
        top.addWidget(self.min_face_spin)
        top.addWidget(self.scan_button)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.task, 1)
        progress_row.addWidget(self.status_label, 2)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.player)
        splitter.addWidget(self.tracks)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        self.tracks.setMinimumWidth(330)
        splitter.setSizes([880, 400])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(progress_row)
        layout.addWidget(splitter, 1)

        self.open_button.clicked.connect(self._on_open_clicked)
        self.min_face_spin.valueChanged.connect(lambda _value: self._min_face_hint())
        self.scan_button.clicked.connect(self._on_scan_clicked)
        self.player.frame_failed.connect(lambda message: self.show_message(message, True))
        self.tracks.probe_frame_chosen.connect(self.probe_frame_chosen)
        self.tracks.case_needed.connect(self.case_needed)
        self.tracks.search_recorded.connect(self.search_recorded)
        self.task.busy_changed.connect(lambda _busy: self._update_enabled())
        # Arrow keys step frames wherever the focus is in the tab (as before the split).
        for key, slot in (
            (Qt.Key.Key_Right, self.player.next_frame),
            (Qt.Key.Key_Left, self.player.previous_frame),
        ):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
        self._update_enabled()

    # ------------------------------------------------------------------ state
    @property
    def busy(self) -> bool:
        return self.task.running

    @property
    def info(self) -> VideoInfo | None:
        return self.player.info

    @property
    def scan(self) -> ScanResult | None:
        return self.player.scan

    def lineage_for(self, image: LoadedImage) -> dict[str, Any] | None:
        """The frame lineage (for ProbeInfo.frame) of an image this tab emitted, else None."""
        return self.tracks.lineage_for(image)

    def show_message(self, text: str, error: bool = False) -> None:
        self.status_label.setStyleSheet("color: #b00020; font-weight: bold;" if error else "")
        self.status_label.setText(text)

    def _on_error(self, message: str) -> None:
        self.show_message(message, error=True)

    def _update_enabled(self) -> None:
        self.scan_button.setEnabled(self.info is not None and not self.busy)

    def _min_face_hint(self) -> None:
        """The smallest face's tooltip, with what it costs on the open video."""
        text = (
            "Smallest face to look for, px wide in the video's own frame. Smaller faces need a "
            "larger copy of every sampled frame: the scan is slower (a 1080p video: about twice "
            "as slow at 40 px as at 60 px; under 28 px the frame is enlarged). The scan reports "
            "which faces it did not look for."
        )
        info = self.info
        if info is not None:
            side = detection_side(info.width, info.height, self.min_face_spin.value())
            seen = smallest_face_seen(info.width, info.height, side)
            enlarged = " (enlarged)" if side > max(info.width, info.height) else ""
            text += (
                f"\n\nThis video ({info.width}x{info.height}): the detector sees each frame at "
                f"{side} px on its longer side{enlarged} and finds faces reliably from about "
                f"{seen} px."
            )
        self.min_face_spin.setToolTip(tooltip(text))

    # ------------------------------------------------------------------ opening
    def _on_open_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video", "", VIDEO_FILTER)
        if path:
            self.open_video(Path(path))

    def open_video(self, path: Path | str) -> None:
        """Read the video's facts and hash it on a worker, then show its first frame."""
        path = Path(path)
        self.show_message(f"Opening {path.name} (hashing the file)…")
        self.task.start(
            lambda _token: probe_video(path),
            on_result=self._on_video_probed,
            on_error=self._on_error,
        )

    def _on_video_probed(self, info: VideoInfo) -> None:
        self.player.set_video(info)
        self.tracks.clear()
        self.file_label.setText(
            f"{info.path.name} — {info.width}x{info.height}, {info.fps:.2f} fps, "
            f"{timecode(info.duration_s)}, sha256 {info.sha256[:12]}…"
        )
        self.file_label.setToolTip(
            tooltip(f"{info.path}\nSHA-256 {info.sha256}\ncodec {info.codec}")
        )
        self.show_message("Press “Scan for faces” to find and follow the faces in this video.")
        self._min_face_hint()
        self._update_enabled()
        self.video_opened.emit(info)

    # ------------------------------------------------------------------ scanning
    def _on_scan_clicked(self) -> None:
        self.start_scan(self.every_spin.value())

    def start_scan(self, every_s: float | None = None) -> None:
        """Scan the open video on a worker; progress and Cancel show while it runs."""
        info = self.info
        if info is None or self.busy:
            return
        options = ScanOptions(
            every_s=every_s or self.every_spin.value(), min_face_px=self.min_face_spin.value()
        )
        # Scanning consults the video (the people in it): recorded against a case, asked for
        # now when none is set, as a search does.
        case = self.context.ensure_case()
        if case is None:
            self.show_message(
                "Open or create a case first: a scan is recorded against one (Ctrl+K).", True
            )
            self.case_needed.emit()
            return
        context = self.context

        def work(token: CancelToken) -> Generator[Progress, None, ScanResult]:
            result = yield from scan_video(context.engine(), info.path, options, token, info)
            with context.open_gallery() as gallery:
                record_scan(gallery, result, case.case_id, case.purpose)
            return result

        self.show_message(f"Scanning {info.path.name}…")
        self.task.start(
            work,
            on_result=self._on_scan_result,
            on_error=self._on_error,
            cancel_message="Cancelling… the tracks found so far are kept.",
            bar_text="%p%  {message}",
            total=max(info.frame_count, 1),
        )

    def _on_scan_result(self, result: ScanResult) -> None:
        self.context.audit_changed.emit()
        self.player.set_scan(result)
        self.tracks.set_scan(result)
        summary = (
            f"{len(result.tracks)} track(s) in {timecode(result.scanned_s)} of video "
            f"({result.samples} frames sampled, {result.speed_x_realtime:.1f}x real time); "
            f"faces narrower than {result.smallest_face_px} px were not looked for."
        )
        if result.cancelled:
            self.show_message(f"Scan cancelled. {summary}")
        elif result.damage:
            self.show_message(f"{result.damage}. {summary}", error=True)
        else:
            self.show_message(summary)
        self.scan_finished.emit(result)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.task.cancel()
        self.player.close_video()
        super().closeEvent(event)
