"""The search page: probe panel on the left; candidates and the decision panel on the right;
a search bar with the examiner's note, progress and cancel.

Searches run on a worker through the core (`search_face`), which records each one with its
audit event; "search each face" runs the faces one after another and can be cancelled between
them. A poor-quality probe needs a note saying why it is searched anyway.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workstation.domain import Face
from workstation.gallery.gate import note_request
from workstation.gallery.records import SearchRecord
from workstation.gallery.search import ProbeInfo, search_face
from workstation.gallery.watches import Watch, add_watch
from workstation.gui.candidates import CandidatesWidget
from workstation.gui.context import AppContext, CaseInfo
from workstation.gui.decisions import DecisionPanelWidget
from workstation.gui.probe_panel import ProbePanelWidget
from workstation.gui.tasks import TaskWidget
from workstation.gui.text import plain_label
from workstation.gui.watch_panel import WatchDialog
from workstation.progress import CancelToken, Progress, Work
from workstation.vision.enhancement import Enhancement
from workstation.vision.images import LoadedImage


def probe_info_for(
    image: LoadedImage,
    lineage: dict[str, Any] | None = None,
    enhancement: Enhancement | None = None,
) -> ProbeInfo:
    """Where the probe came from; a footage frame carries its lineage (frame number, time); a
    working copy its enhancement lineage."""
    info = ProbeInfo.from_image(image, enhancement=enhancement)
    if lineage:
        return dataclasses.replace(info, frame=dict(lineage))
    return info


class SearchPageWidget(QWidget):
    """Composes the probe panel, candidate list and decision panel; runs searches."""

    search_recorded = Signal(int)  # search id
    search_failed = Signal(str)
    watch_dialog_opened = Signal(object)  # the WatchDialog, before exec (tests, tours)
    watch_added = Signal(object)  # the Watch
    watch_failed = Signal(str)
    busy_changed = Signal(bool)

    def __init__(
        self,
        context: AppContext,
        ensure_case: Callable[[], CaseInfo | None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.context = context
        self._ensure_case = ensure_case or (lambda: context.case)
        self.probe = ProbePanelWidget(context, self)
        self.candidates = CandidatesWidget(context, self)
        self.decisions = DecisionPanelWidget(context, self)
        self.decisions.scores_hidden = lambda: self.candidates.model.scores_hidden

        self.note_edit = QLineEdit(self)
        self.note_edit.setPlaceholderText(
            "Examiner's note for this search (required for a poor-quality probe)"
        )
        self.search_button = QPushButton("Search this face", self)
        self.search_button.setToolTip("Search the gallery with the chosen face (Ctrl+Return)")
        self.search_each_button = QPushButton("Search each face", self)
        self.search_each_button.setToolTip(
            "Search every face in the photo, one after another (Ctrl+Shift+Return)"
        )
        self.watch_button = QPushButton("Leave on watch…", self)
        self.watch_button.setToolTip(
            "Unresolved: search this probe again against every face enrolled from now on"
        )
        self.task = TaskWidget(
            context.pool,
            self,
            idle_text="ready",
            cancel_tip="Stop the search (Esc)",
            show_status=context.status_message.emit,
            bar_width=260,
            keep_count=False,  # the status bar and the candidates say how it went
        )
        self.cancel_button = self.task.cancel_button
        self.progress = self.task.progress_bar
        self.message_label = plain_label("", self)  # messages naming files, cases, subjects
        self.message_label.setWordWrap(True)
        self.message_label.setStyleSheet("color: #b00020; font-weight: bold;")
        self.message_label.hide()

        bar = QHBoxLayout()
        bar.addWidget(self.note_edit, 1)
        bar.addWidget(self.search_button)
        bar.addWidget(self.search_each_button)
        bar.addWidget(self.watch_button)
        bar.addWidget(self.task)
        left = QWidget(self)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.probe, 1)
        left_layout.addWidget(self.message_label)
        left_layout.addLayout(bar)
        right = QSplitter(Qt.Orientation.Vertical, self)
        right.addWidget(self.candidates)
        right.addWidget(self.decisions)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("searchSplitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([760, 640])  # the candidate table needs room for its columns
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.splitter)

        self.search_button.clicked.connect(self.search_selected)
        self.search_each_button.clicked.connect(self.search_each)
        self.watch_button.clicked.connect(self.ask_watch)
        self.task.busy_changed.connect(self._on_busy_changed)
        self.probe.face_selected.connect(self._on_face_selected)
        self.probe.busy_changed.connect(lambda _busy: self._update_buttons())
        self.candidates.candidate_selected.connect(self.decisions.set_target)
        self.candidates.search_chosen.connect(self._on_search_chosen)
        self.decisions.decisions_changed.connect(self.candidates.set_decisions)
        context.case_changed.connect(self._on_case_changed)
        self._update_buttons()

    # ------------------------------------------------------------------ state
    @property
    def searching(self) -> bool:
        return self.task.running

    def _update_buttons(self) -> None:
        ready = self.probe.selected_face is not None and not self.searching and not self.probe.busy
        self.search_button.setEnabled(ready)
        self.search_each_button.setEnabled(ready and len(self.probe.faces) > 1)
        self.watch_button.setEnabled(
            self.candidates.current_search is not None and not self.searching
        )

    def _on_busy_changed(self, busy: bool) -> None:
        self._update_buttons()
        self.busy_changed.emit(busy)

    def show_message(self, text: str) -> None:
        self.message_label.setText(text)
        self.message_label.setVisible(bool(text))
        if text:
            self.context.status_message.emit(text)

    def _on_face_selected(self, _face: Face | None) -> None:
        self._update_buttons()

    def _on_search_chosen(self, search: SearchRecord | None) -> None:
        """Show a recorded search's probe (its photo, or its frame of the video) when no photo
        is open, e.g. for the second examiner reviewing a colleague's search; a probe whose
        file is gone or changed is said in words, its record and candidates still shown."""
        self._update_buttons()
        if search is None or self.probe.image is not None or self.probe.busy:
            return
        self.probe.load_recorded(search)

    def _on_case_changed(self, _case: CaseInfo | None) -> None:
        self.candidates.reload()

    # ------------------------------------------------------------------ watch
    def make_watch_dialog(self) -> WatchDialog | None:
        search = self.candidates.current_search
        return None if search is None else WatchDialog(search, self.window())

    def ask_watch(self) -> None:
        """Leave the search shown on watch (the core checks the case, the probe and the rate)."""
        dialog = self.make_watch_dialog()
        if dialog is None:
            self.show_message("Choose a recorded search first: the watch searches its probe.")
            return
        self.watch_dialog_opened.emit(dialog)
        if dialog.exec() == WatchDialog.DialogCode.Accepted:
            self.start_watch(dialog.search_id, dialog.reason, dialog.until, dialog.fmr)

    def start_watch(self, search_id: int, reason: str, until: str, fmr: float) -> None:
        context = self.context

        def work(cancel: CancelToken) -> Watch:
            with context.open_gallery() as gallery:
                return add_watch(gallery, context.engine(), search_id, reason, until, fmr)

        self.task.start(
            work,
            on_result=self._on_watch_added,
            on_error=self._on_watch_failed,
            message="leaving the probe on watch",
        )

    def _on_watch_added(self, watch: Watch) -> None:
        self.context.audit_changed.emit()
        text = (
            f"Watch {watch.id}: the probe of search {watch.search_id} is searched against each "
            f"new enrolment until {watch.until} (score >= {watch.threshold:.3f})"
        )
        self.show_message("")
        self.context.status_message.emit(text)
        self.watch_added.emit(watch)

    def _on_watch_failed(self, message: str) -> None:
        self.show_message(message)
        self.watch_failed.emit(message)

    # ------------------------------------------------------------------ searching
    def search_selected(self) -> None:
        face = self.probe.selected_face
        if face is None:
            self.show_message("Choose a face first: click its box, or draw one (key D).")
            return
        self._start([face])

    def search_each(self) -> None:
        if not self.probe.faces:
            self.show_message("There are no faces to search in this photo.")
            return
        self._start(list(self.probe.faces))

    def _start(self, faces: list[Face]) -> None:
        image = self.probe.image
        if image is None or self.searching:
            return
        case = self._ensure_case()
        if case is None:
            self.show_message("A search needs a case number and a purpose: set them first.")
            return
        note = self.note_edit.text().strip() or None
        request = note_request([(str(f.index + 1), f) for f in faces], note)
        if request is not None:
            self.show_message(request)
            self.note_edit.setFocus()
            return
        self.show_message("")
        context, top_k = self.context, int(self.context.settings.top_k)
        faces_found = self.probe.detected_count
        probe = probe_info_for(image, self.probe.lineage, self.probe.enhancement)

        def work(cancel: CancelToken) -> Work[list[SearchRecord]]:
            results: list[SearchRecord] = []
            total = len(faces)
            with context.open_gallery() as gallery:
                for done, face in enumerate(faces):
                    if cancel.cancelled:
                        yield Progress(done, total, "cancelled")
                        break
                    yield Progress(done, total, f"searching face {face.index + 1}")
                    results.append(
                        search_face(
                            gallery,
                            face,
                            probe,
                            case.case_id,
                            case.purpose,
                            top_k=top_k,
                            faces_found=faces_found,
                            note=note,
                            extra_params={"face_index": face.index},
                        )
                    )
                yield Progress(len(results), total, f"{len(results)} search(es) recorded")
            return results

        self.task.start(
            work,
            on_result=self._on_searched,
            on_error=self._on_search_failed,
            cancel_message="Cancelling after the current face…",
            bar_text="{message}",
            total=len(faces),
            message="searching",
        )

    def cancel(self) -> None:
        self.task.cancel()

    def _on_searched(self, results: list[SearchRecord]) -> None:
        self.context.audit_changed.emit()
        if not results:
            self.context.status_message.emit(
                "Search cancelled before it started; nothing recorded."
            )
            return
        last = results[-1]
        self.note_edit.clear()
        if last.gallery_faces == 0:
            self.show_message(
                f"The gallery {self.context.gallery_dir} holds no faces yet, so the search found "
                "no candidates. Enrol photos in the Gallery tab first."
            )
        self.candidates.reload(select_search_id=last.search_id)
        self.context.status_message.emit(
            f"{len(results)} search(es) recorded in case {last.case_id}; "
            f"{len(last.candidates)} candidate(s) from {last.gallery_faces} gallery faces"
        )
        for result in results:
            self.search_recorded.emit(result.search_id)

    def _on_search_failed(self, message: str) -> None:
        self.show_message(message)
        self.search_failed.emit(message)
