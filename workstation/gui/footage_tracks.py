"""The footage tab's track sidebar: the tracks of a scan, searching one against the gallery,
"Where else?" on the timeline, and sending the frame in view to the photo search.

"Use this frame as probe" emits `probe_frame_chosen(LoadedImage)`. The image's `path` is the
video path plus "#frame=N" and its `sha256` is the video file's SHA-256 (a frame has no file of
its own: the video is the evidence, the frame index locates the pixels in it), `format` is
"video frame". The frame's lineage (video hash, frame index, timecode) is in `probe_lineage` and
`lineage_for(image)`; pass it as `ProbeInfo.frame` when searching, so the audit log and reports
record it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workstation.footage import ScanResult, Track, find_person, search_track, timecode
from workstation.gallery.gate import note_request
from workstation.gallery.records import SearchRecord
from workstation.gui.context import AppContext
from workstation.gui.footage_player import FootagePlayerWidget
from workstation.gui.imaging import bgr_to_qimage
from workstation.gui.tasks import TaskWidget
from workstation.gui.text import make_plain, tooltip
from workstation.progress import CancelToken
from workstation.reports.columns import Align, Surface, columns_for
from workstation.vision.images import LoadedImage
from workstation.vision.video import frame_image

ROLE_TRACK_ID = Qt.ItemDataRole.UserRole + 1
FOOTAGE_COLUMNS = columns_for(Surface.FOOTAGE_TAB)
RIGHT_ALIGNED = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


class FootageTracksWidget(QWidget):
    """Track list, track search and its candidates, "Where else?", and the probe frame."""

    probe_frame_chosen = Signal(object)  # LoadedImage of the frame in view (see module doc)
    case_needed = Signal()  # a search was asked for but no case is open
    search_recorded = Signal(int)  # search id

    def __init__(
        self,
        context: AppContext,
        player: FootagePlayerWidget,
        task: TaskWidget,
        show_message: Callable[[str, bool], None],
        parent: QWidget | None = None,
    ) -> None:
        """
        Args:
            context: the app's shared state (case, settings, gallery, pool).
            player: the player whose frame and timeline the tracks go with.
            task: the footage tab's task runner (one piece of work at a time in the tab).
            show_message: how the tab shows a line of status (text, is it an error).
        """
        super().__init__(parent)
        self.context = context
        self.player = player
        self.task = task
        self.show_message = show_message
        self.scan: ScanResult | None = None
        self.probe_lineage: dict[str, Any] | None = None
        self.last_search: SearchRecord | None = None
        self._lineages: dict[str, dict[str, Any]] = {}

        self.track_list = QListWidget(self)
        self.track_list.setIconSize(QSize(56, 56))
        self.track_list.setToolTip("Faces followed through the video. Click one to go to it.")
        self.note_edit = QLineEdit(self)
        self.note_edit.setPlaceholderText("Note (required to search a poor-quality track)")
        self.search_button = QPushButton("Search this track", self)
        self.find_button = QPushButton("Where else?", self)
        self.find_button.setToolTip(
            "Mark on the timeline every track that looks like this track's person"
        )
        self.probe_button = QPushButton("Use this frame as probe", self)
        self.probe_button.setToolTip(
            "Send the frame in view to the photo search; its video hash, frame number and "
            "timecode are recorded with the search"
        )
        self.results = QTableWidget(0, len(FOOTAGE_COLUMNS), self)
        self.results.setHorizontalHeaderLabels([c.header for c in FOOTAGE_COLUMNS])
        for position, column in enumerate(FOOTAGE_COLUMNS):
            header = self.results.horizontalHeaderItem(position)
            if header is not None:  # set just above by setHorizontalHeaderLabels
                header.setToolTip(tooltip(column.tooltip))
        self.results.verticalHeader().hide()
        self.results.horizontalHeader().setStretchLastSection(True)
        self.results.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.results_label = QLabel("Leads for human review, never identifications.", self)
        self.results_label.setWordWrap(True)
        make_plain(self.results_label)  # case numbers: shown as typed, never as markup

        buttons = QHBoxLayout()
        buttons.addWidget(self.search_button)
        buttons.addWidget(self.find_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        # Says, for as long as the tracks show, which faces the scan did not look for.
        self.tracks_label = QLabel("Tracks", self)
        layout.addWidget(self.tracks_label)
        layout.addWidget(self.track_list, 3)
        layout.addWidget(self.note_edit)
        layout.addLayout(buttons)
        layout.addWidget(self.probe_button)
        layout.addWidget(self.results_label)
        layout.addWidget(self.results, 2)

        self.track_list.currentItemChanged.connect(self._on_track_selected)
        self.track_list.itemActivated.connect(lambda _item: self._on_search_clicked())
        self.search_button.clicked.connect(self._on_search_clicked)
        self.find_button.clicked.connect(self._on_find_clicked)
        self.probe_button.clicked.connect(self._on_probe_clicked)
        player.track_clicked.connect(self._on_timeline_track_clicked)
        task.busy_changed.connect(lambda _busy: self._update_enabled())
        self._update_enabled()

    # ------------------------------------------------------------------ tracks
    def clear(self) -> None:
        """A new video: no tracks, no candidates."""
        self.scan = None
        self.tracks_label.setText("Tracks")
        self.track_list.clear()
        self.results.setRowCount(0)
        self._update_enabled()

    def set_scan(self, scan: ScanResult) -> None:
        self.scan = scan
        self.tracks_label.setText(
            f"Tracks (faces narrower than {scan.smallest_face_px} px not looked for)"
        )
        self.track_list.clear()
        for track in scan.tracks:
            self.track_list.addItem(self._track_item(track))
        self._update_enabled()

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

    def selected_track(self) -> Track | None:
        item = self.track_list.currentItem()
        if item is None or self.scan is None:
            return None
        return self.scan.track(int(item.data(ROLE_TRACK_ID)))

    def select_track(self, track_id: int) -> None:
        """Choose a track: the player goes to its best frame."""
        row = self._row_of(track_id)
        if row is not None:
            self.track_list.setCurrentRow(row)

    def _row_of(self, track_id: int) -> int | None:
        for row in range(self.track_list.count()):
            if self.track_list.item(row).data(ROLE_TRACK_ID) == track_id:
                return row
        return None

    def _on_track_selected(self, _current: QListWidgetItem | None, _previous: Any) -> None:
        track = self.selected_track()
        self.player.set_selected_track(track.track_id if track else None)
        self.player.set_highlighted_tracks(set())
        if track is not None:
            self.player.seek(track.best_frame)
        self._update_enabled()

    def _on_timeline_track_clicked(self, track_id: int) -> None:
        """Its bar was clicked: the player already goes to the time clicked, not the best frame."""
        row = self._row_of(track_id)
        if row is None:
            return
        self.track_list.blockSignals(True)
        self.track_list.setCurrentRow(row)
        self.track_list.blockSignals(False)
        self.player.set_selected_track(track_id)
        self._update_enabled()

    def _on_find_clicked(self) -> None:
        track = self.selected_track()
        if track is None or self.scan is None or track.template is None:
            return
        segments = find_person(self.scan, track.template)
        ids = {i for s in segments for i in s.track_ids}
        self.player.set_highlighted_tracks(ids)
        spans = ", ".join(f"{timecode(s.start_s)}–{timecode(s.end_s)}" for s in segments)
        self.show_message(
            f"Track {track.track_id}'s person may also appear in tracks "
            f"{', '.join(str(i) for i in sorted(ids))}: {spans} (leads for review).",
            False,
        )

    # ------------------------------------------------------------------ searching a track
    def _on_search_clicked(self) -> None:
        track = self.selected_track()
        if track is None or self.scan is None or self.task.running:
            return
        case = self.context.ensure_case()
        if case is None:
            self.show_message(
                "Open or create a case first: every search is recorded against one.", True
            )
            self.case_needed.emit()
            return
        scan, context = self.scan, self.context
        note = self.note_edit.text().strip() or None
        probe = [(str(track.track_id), track.probe_face())] if track.template is not None else []
        request = note_request(probe, note, kind="Track")  # the core's rule and words
        if request is not None:
            self.show_message(request, True)
            self.note_edit.setFocus()
            return
        top_k = int(context.settings.top_k)

        def work(_token: CancelToken) -> SearchRecord:
            with context.open_gallery() as gallery:
                return search_track(
                    gallery, scan, track, case.case_id, case.purpose, top_k=top_k, note=note
                )

        self.show_message(f"Searching track {track.track_id}…", False)
        self.task.start(
            work, on_result=self._on_search_result, on_error=lambda m: self.show_message(m, True)
        )

    def _on_search_result(self, result: SearchRecord) -> None:
        self.show_search(result)
        self.show_message(f"Search {result.search_id} recorded.", False)
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
        """Emit the frame in view as a probe image (see the module doc for its path and hash)."""
        info, index, bgr = self.player.info, self.player.frame_index, self.player.frame_bgr
        if info is None or bgr is None:
            return None
        image = frame_image(info, index, bgr)
        lineage = info.lineage(index)
        self.probe_lineage = lineage
        self._lineages[str(image.path)] = lineage
        self.show_message(f"Frame {index} ({lineage['timecode']}) sent to the photo search.", False)
        self.probe_frame_chosen.emit(image)
        return image

    def lineage_for(self, image: LoadedImage) -> dict[str, Any] | None:
        """The frame lineage (for ProbeInfo.frame) of an image this sidebar emitted, else None."""
        return self._lineages.get(str(image.path))

    # ------------------------------------------------------------------ state
    def _update_enabled(self) -> None:
        has_track = self.selected_track() is not None
        self.search_button.setEnabled(has_track and not self.task.running)
        self.find_button.setEnabled(has_track)
        self.probe_button.setEnabled(self.player.info is not None)
