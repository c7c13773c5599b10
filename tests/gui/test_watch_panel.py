"""Cold-case watch in the app (issue 15 item 3): leaving a searched probe on watch from the
Search tab, and the notice bar telling the examiner when an enrolment matched it."""

from __future__ import annotations

from pathlib import Path

import pytest
from examiners import open_as
from PySide6.QtCore import QTimer

from tests.gui.analyst_support import WAIT_MS, main_window
from workstation.gallery.cases import case_summaries
from workstation.gallery.enroll import EnrollItem, enroll
from workstation.gallery.search import search_image
from workstation.gallery.watches import list_watches
from workstation.gui.context import CaseInfo
from workstation.gui.watch_panel import WatchDialog
from workstation.progress import drain
from workstation.vision.images import load_image


@pytest.fixture
def window(tmp_path: Path, qtbot, engine, photo_paths):
    """Biden enrolled; obama2 searched in case C-1 by examiner1 (no match there)."""
    folder = tmp_path / "gallery"
    with open_as(folder, "examiner1") as gallery:
        drain(enroll(gallery, engine, [EnrollItem("biden", photo_paths["biden"], "t", None)]))
        search_image(gallery, engine, load_image(photo_paths["obama2"]), "C-1", "robbery")
    yield from main_window(qtbot, folder, engine)


def test_leave_a_probe_on_watch_and_get_the_notice_when_he_is_enrolled(
    qtbot, window, engine, photo_paths
) -> None:
    page = window.search_page
    with qtbot.waitSignal(page.candidates.searches_loaded, timeout=WAIT_MS):
        window.context.set_case(CaseInfo("C-1", "robbery"))
    qtbot.waitUntil(lambda: page.watch_button.isEnabled(), timeout=WAIT_MS)
    assert window.watch_notices.isHidden()

    def answer(dialog: WatchDialog) -> None:
        assert not dialog.ok_button.isEnabled()  # a reason is required
        assert dialog.fmr == 1e-4  # the default: 1 in 10,000
        dialog.reason_edit.setPlainText("unknown man in the lobby")
        QTimer.singleShot(0, dialog.accept)

    page.watch_dialog_opened.connect(answer)
    with qtbot.waitSignal(page.watch_added, timeout=WAIT_MS) as added:
        page.watch_button.click()
    watch = added.args[0]
    assert watch.case_id == "C-1" and watch.reason == "unknown man in the lobby"
    folder = window.context.gallery_dir

    # Another examiner enrols the same man: the watch fires; the app says so.
    with open_as(folder, "enroller2", ["enroller"]) as gallery:
        report = drain(enroll(gallery, engine, [EnrollItem("P-NEW", photo_paths["obama"], "t")]))
    assert [h.subject_id for h in report.watch_hits] == ["P-NEW"]
    with qtbot.waitSignal(window.watch_notices.notices_shown, timeout=WAIT_MS) as shown:
        window.context.gallery_changed.emit()
    assert shown.args[0] == 1
    assert window.watch_notices.isVisible()
    text = window.watch_notices.label.text()
    assert f"Watch {watch.id} (case C-1)" in text and "P-NEW" in text

    window.tabs.setCurrentWidget(window.cases_panel)
    with qtbot.waitSignal(page.candidates.searches_loaded, timeout=WAIT_MS) as loaded:
        window.watch_notices.open_button.click()
    assert loaded.args[0] == 2  # the first search and the watch's re-search
    assert window.tabs.currentWidget() is page
    assert page.candidates.current_search.candidates[0].subject_id == "P-NEW"

    window.watch_notices.dismiss()
    assert window.watch_notices.isHidden()
    with qtbot.waitSignal(window.watch_notices.notices_shown, timeout=WAIT_MS) as shown:
        window.watch_notices.check()
    assert shown.args[0] == 0 and window.watch_notices.isHidden()  # seen: not shown again
    with open_as(folder, "check") as gallery:
        (listed,) = list_watches(gallery)
        assert [h.subject_id for h in listed.hits] == ["P-NEW"]
        # The enroller whose photo the watch searched did not act on the case.
        (case,) = case_summaries(gallery)
        assert case.examiners == ("examiner1",) and case.searches == 2
        assert gallery.verify_audit().intact


@pytest.fixture
def frame_window(tmp_path: Path, qtbot, engine, photo_paths):
    """Biden enrolled; a face in a frame of lobby footage (obama2's face) searched in case C-1."""
    from footage_clips import Appearance, make_clip

    from workstation.footage import search_frame
    from workstation.vision.video import probe_video, read_frame

    clip = tmp_path / "lobby.mp4"
    make_clip(engine, clip, [Appearance(photo_paths["obama2"], 0.0, 1.0, 100, 60)], 1.0)
    folder = tmp_path / "gallery"
    with open_as(folder, "examiner1") as gallery:
        drain(enroll(gallery, engine, [EnrollItem("biden", photo_paths["biden"], "t", None)]))
        video = probe_video(clip)
        search_frame(gallery, engine, video, 4, read_frame(video, 4), "C-1", "robbery")
    yield from main_window(qtbot, folder, engine)


def test_a_face_found_in_footage_is_left_on_watch_from_the_search_tab(qtbot, frame_window) -> None:
    page = frame_window.search_page
    with qtbot.waitSignal(page.candidates.searches_loaded, timeout=WAIT_MS):
        frame_window.context.set_case(CaseInfo("C-1", "robbery"))
    qtbot.waitUntil(lambda: page.watch_button.isEnabled(), timeout=WAIT_MS)
    assert page.candidates.current_search.probe.frame["frame_index"] == 4
    # The probe shown is the frame searched, read again from the video (it was said to be
    # "not on this PC" before), with its lineage for a new search from it.
    qtbot.waitUntil(lambda: page.probe.image is not None, timeout=WAIT_MS)
    assert str(page.probe.image.path).endswith("lobby.mp4#frame=4")
    assert page.probe.lineage["frame_index"] == 4 and len(page.probe.faces) == 1

    def answer(dialog: WatchDialog) -> None:
        dialog.reason_edit.setPlainText("man in the lobby footage")
        QTimer.singleShot(0, dialog.accept)

    page.watch_dialog_opened.connect(answer)
    with qtbot.waitSignal(page.watch_added, timeout=WAIT_MS) as added:
        page.watch_button.click()
    assert added.args[0].reason == "man in the lobby footage" and added.args[0].active
