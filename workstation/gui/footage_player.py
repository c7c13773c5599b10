"""The footage tab's player: the frame in view with its face boxes, frame stepping, the position
slider and the track timeline.

Frames decode on the player's own thread (`_FrameDecoder`), never on the GUI thread: a step
forward decodes one frame (a few ms), a seek decodes from the previous key frame (tens of ms on
typical CCTV and phone files; benchmarks/footage_player.py measures both). Only the latest frame
asked for is decoded: steps asked for faster than frames decode add up, and the frames in between
are skipped. `frame_index` and `frame_bgr` are always the frame on screen; `settled` says it is
the frame last asked for.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any

import numpy as np
import shiboken6
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from workstation.footage import FrameReader, ScanResult, VideoError, VideoInfo, timecode
from workstation.gui.footage_views import FootageTimelineWidget, FrameViewWidget
from workstation.gui.imaging import bgr_to_qimage
from workstation.gui.text import make_plain

log = logging.getLogger(__name__)

Box = tuple[int, Any, bool]  # track id, box, is the box sampled at exactly this frame


class _DecoderSignals(QObject):
    decoded = Signal(int, object, object)  # frame index, BGR array, QImage
    failed = Signal(int, str)  # frame index, message naming the file and the reason


class _FrameDecoder:
    """Decodes frames of one video on its own thread; only the latest request is decoded.

    The reader is opened, used and closed on that thread (`FrameReader` is not thread-safe).
    The signals object has no Qt parent and lives as long as this decoder, so a frame finished
    after the player is gone is emitted from an object that still exists; the player's slots
    check that the player does.
    """

    def __init__(self, info: VideoInfo) -> None:
        self.info = info
        self.signals = _DecoderSignals()
        self._wanted: int | None = None
        self._stopped = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="frame-decoder", daemon=True)
        self._thread.start()

    def request(self, index: int) -> None:
        with self._wake:
            self._wanted = index
            self._wake.notify()

    def stop(self, wait_s: float = 0.0) -> None:
        """Stop after the frame being decoded (waiting up to `wait_s` for the thread to end)."""
        with self._wake:
            self._stopped = True
            self._wake.notify()
        if wait_s and self._thread is not threading.current_thread():
            self._thread.join(wait_s)

    def _next_request(self) -> int | None:
        with self._wake:
            while self._wanted is None and not self._stopped:
                self._wake.wait()
            if self._stopped:
                return None
            index, self._wanted = self._wanted, None
            return index

    def _run(self) -> None:
        reader: FrameReader | None = None
        try:
            while (index := self._next_request()) is not None:
                try:
                    if reader is None:
                        reader = FrameReader(self.info)
                    bgr = reader.read(index)
                    image = bgr_to_qimage(bgr)
                except VideoError as exc:  # a damaged or cut-off file: say so, keep playing
                    self.signals.failed.emit(index, str(exc))
                    continue
                except Exception as exc:  # report, never end the thread silently
                    log.error("frame %d could not be shown:\n%s", index, traceback.format_exc())
                    why = f"unexpected error: {type(exc).__name__}: {exc}"
                    self.signals.failed.emit(index, f"frame {index} cannot be shown ({why})")
                    continue
                self.signals.decoded.emit(index, bgr, image)
        finally:
            if reader is not None:
                reader.close()


class FootagePlayerWidget(QWidget):
    """Frame view, stepping, slider and timeline for one video (and its scan, once scanned)."""

    frame_shown = Signal(int)  # index of the frame now on screen
    frame_failed = Signal(str)  # a frame could not be decoded: the message names file and frame
    track_clicked = Signal(int)  # a track's bar on the timeline was clicked (track id)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.info: VideoInfo | None = None
        self.scan: ScanResult | None = None
        self.frame_index = 0
        self.frame_bgr: np.ndarray | None = None
        self._image: QImage | None = None
        self._target = 0  # the frame last asked for
        self._pending = False  # the frame last asked for is not on screen (or failed) yet
        self._decoder: _FrameDecoder | None = None
        # A player destroyed without being closed (its tab or window went) still ends its
        # decoder thread: the cell outlives the player, which cannot be called by then.
        decoder_cell: list[_FrameDecoder | None] = [None]
        self._decoder_cell = decoder_cell

        def stop_decoding(*_args: object) -> None:
            if decoder_cell[0] is not None:
                decoder_cell[0].stop()

        self.destroyed.connect(stop_decoding)

        self.view = FrameViewWidget(self)
        self.prev_button = QPushButton("◀ Frame", self)
        self.prev_button.setToolTip("Previous frame (Left arrow)")
        self.next_button = QPushButton("Frame ▶", self)
        self.next_button.setToolTip("Next frame (Right arrow)")
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setTracking(False)
        self.position_label = QLabel("–", self)
        self.position_label.setMinimumWidth(190)
        self.position_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        make_plain(self.position_label)
        self.timeline = FootageTimelineWidget(self)

        controls = QHBoxLayout()
        controls.addWidget(self.prev_button)
        controls.addWidget(self.next_button)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.position_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addLayout(controls)
        layout.addWidget(self.timeline)

        self.prev_button.clicked.connect(self.previous_frame)
        self.next_button.clicked.connect(self.next_frame)
        self.slider.valueChanged.connect(self.seek)
        self.slider.sliderMoved.connect(self._on_slider_moved)
        self.timeline.seek_requested.connect(self._on_timeline_seek)
        self.timeline.track_clicked.connect(self.track_clicked)
        self._update_enabled()

    # ------------------------------------------------------------------ video
    def set_video(self, info: VideoInfo) -> None:
        """Show a newly opened video from its first frame (no scan yet)."""
        self.close_video()
        self.info = info
        self.scan = None
        self.frame_index = self._target = 0
        self.frame_bgr = self._image = None
        decoder = _FrameDecoder(info)
        # A frame decoded after the player is gone is dropped.
        decoder.signals.decoded.connect(self._while_alive(self._on_decoded))
        decoder.signals.failed.connect(self._while_alive(self._on_failed))
        self._decoder = self._decoder_cell[0] = decoder
        self.slider.blockSignals(True)
        self.slider.setRange(0, self.last_frame)
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self.timeline.set_tracks(info.duration_s, [], 1.0)
        self._update_enabled()
        self.seek(0)

    def set_scan(self, scan: ScanResult) -> None:
        """Show a scan's tracks on the timeline and its boxes on the frame in view."""
        self.scan = scan
        self.timeline.set_tracks(scan.video.duration_s, scan.tracks, scan.sample_interval_s)
        if self._image is not None:
            self.view.show_frame(self._image, self._boxes_at(self.frame_index))

    def close_video(self) -> None:
        """Stop decoding (the file is closed by the decoder thread as it ends)."""
        if self._decoder is not None:
            self._decoder.stop(wait_s=2.0)
            self._decoder = self._decoder_cell[0] = None

    @property
    def last_frame(self) -> int:
        return max(self.info.frame_count - 1, 0) if self.info is not None else 0

    @property
    def settled(self) -> bool:
        """True when the frame on screen is the frame last asked for (or there is no video)."""
        return self.info is None or not self._pending

    # ------------------------------------------------------------------ stepping
    def seek(self, frame_index: int) -> None:
        """Ask for frame `frame_index` (clamped to the video); it shows once decoded."""
        if self.info is None or self._decoder is None:
            return
        self._target = min(max(int(frame_index), 0), self.last_frame)
        self._pending = True
        self._decoder.request(self._target)

    def next_frame(self) -> None:
        self.seek(self._target + 1)

    def previous_frame(self) -> None:
        self.seek(self._target - 1)

    def set_selected_track(self, track_id: int | None) -> None:
        self.timeline.set_selected(track_id)

    def set_highlighted_tracks(self, track_ids: set[int]) -> None:
        self.timeline.set_highlighted(track_ids)

    # ------------------------------------------------------------------ slots
    def _while_alive(self, slot: Any) -> Any:
        def call(*args: Any) -> None:
            if shiboken6.isValid(self):
                slot(*args)

        return call

    def _on_decoded(self, index: int, bgr: np.ndarray, image: QImage) -> None:
        if self.info is None or self._decoder is None:
            return
        self.frame_index, self.frame_bgr, self._image = index, bgr, image
        if index == self._target:
            self._pending = False
        if self.slider.value() != index:
            self.slider.blockSignals(True)
            self.slider.setValue(index)
            self.slider.blockSignals(False)
        seconds = self.info.time_of(index)
        self.position_label.setText(f"frame {index} / {self.last_frame}   {timecode(seconds)}")
        self.timeline.set_position(seconds)
        self.view.show_frame(image, self._boxes_at(index))
        self.frame_shown.emit(index)

    def _on_failed(self, index: int, message: str) -> None:
        if index == self._target:  # nothing newer asked for: stay on the frame in view
            self._target = self.frame_index
            self._pending = False
        self.frame_failed.emit(message)

    def _on_slider_moved(self, value: int) -> None:
        if self.info is not None:
            self.position_label.setText(f"frame {value}   {timecode(self.info.time_of(value))}")

    def _on_timeline_seek(self, seconds: float) -> None:
        if self.info is not None:
            self.seek(self.info.frame_at(seconds))

    def _update_enabled(self) -> None:
        for widget in (self.prev_button, self.next_button, self.slider):
            widget.setEnabled(self.info is not None)

    def _boxes_at(self, frame_index: int) -> list[Box]:
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
