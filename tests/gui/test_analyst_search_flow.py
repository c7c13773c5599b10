"""The analyst's main flow on the real window: drop a photo, see its faces, search, read the
candidates; draw a box; several faces; the poor-probe note; the saved window layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from examiners import open_as
from sqlite_file import WriteLock

from tests.gui.analyst_support import (
    CASE,
    WAIT_MS,
    drop_files,
    enrol_gallery,
    main_window,
    make_context,
    two_face_photo,
)
from workstation.gui.candidates import LEADS_NOT_IDENTIFICATIONS
from workstation.gui.main_window import MainWindowWidget


@pytest.fixture
def window(tmp_path: Path, qtbot, engine, photo_paths):
    folder = enrol_gallery(tmp_path / "gallery", engine, photo_paths)
    yield from main_window(qtbot, folder, engine)


def load_by_drop(qtbot, win: MainWindowWidget, path: Path) -> None:
    probe = win.search_page.probe
    with qtbot.waitSignal(probe.probe_loaded, timeout=WAIT_MS):
        drop_files(win, [path])


def test_drop_photo_shows_its_faces(qtbot, window, photo_paths) -> None:
    load_by_drop(qtbot, window, photo_paths["obama2"])
    probe = window.search_page.probe
    assert probe.image is not None and probe.image.path == photo_paths["obama2"]
    items = probe.canvas.face_items
    assert len(items) == 1
    assert items[0].landmark_count == 5
    assert items[0].badge_text.startswith("1 · ")
    assert probe.canvas.selected_index == 0
    assert "quality" in probe.quality_label.text()
    assert str(photo_paths["obama2"]) in (window.context.history.recent_files)


def test_search_records_and_lists_candidates(qtbot, window, photo_paths, tmp_path) -> None:
    window.context.set_case(CASE)
    load_by_drop(qtbot, window, photo_paths["obama2"])
    page = window.search_page
    with qtbot.waitSignal(page.search_recorded, timeout=WAIT_MS) as recorded:
        window.actions["search"].trigger()
    qtbot.waitUntil(lambda: page.candidates.model.rowCount() == 2, timeout=WAIT_MS)
    top = page.candidates.model.candidate(0)
    assert top is not None and top.subject_id == "obama"
    assert page.candidates.caveat_label.text() == LEADS_NOT_IDENTIFICATIONS
    assert page.candidates.caveat_label.isVisible()
    model = page.candidates.model
    fmr = model.data(model.index(0, model.COL_FMR))
    with open_as(window.context.gallery_dir, "check") as gallery:
        stored = gallery.search_record(recorded.args[0]).candidates[0]
        # The calibration's own words, as stored: no stranger pair scores as high as the
        # probe's own subject here, so they read as an upper bound, never re-formatted.
        assert stored.fmr_upper_bound and stored.fmr_text.startswith("< 1 in ")
        assert fmr == stored.fmr_text
        events = [e for e in gallery.audit_events(case_id=CASE.case_id) if e.action == "search"]
        assert gallery.verify_audit().intact
    assert len(events) == 1
    assert events[0].details["face_source"] == "detected"
    assert events[0].details["probe_sha256"] == page.probe.image.sha256


def test_draw_box_makes_a_manual_face_and_searches_it(qtbot, window, photo_paths) -> None:
    from PySide6.QtCore import QPoint, Qt

    window.context.set_case(CASE)
    load_by_drop(qtbot, window, photo_paths["obama"])
    probe = window.search_page.probe
    canvas = probe.canvas
    face = probe.faces[0].box
    window.actions["draw"].trigger()
    assert canvas.draw_mode
    start = canvas.mapFromScene(face.x - 5, face.y - 5)
    end = canvas.mapFromScene(face.x + face.w + 5, face.y + face.h + 5)
    viewport = canvas.viewport()
    with qtbot.waitSignal(
        probe.face_selected,
        timeout=WAIT_MS,
        check_params_cb=lambda f: f is not None and f.source.value == "manual",
    ):
        qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
        qtbot.mouseMove(
            viewport, pos=QPoint((start.x() + end.x()) // 2, (start.y() + end.y()) // 2)
        )
        qtbot.mouseMove(viewport, pos=end)
        qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=end)
    assert not canvas.draw_mode
    assert len(probe.faces) == 2
    manual = probe.selected_face
    assert manual.source.value == "manual" and manual.aligned
    assert canvas.face_items[1].badge_text.startswith("2 · drawn")
    page = window.search_page
    with qtbot.waitSignal(page.search_recorded, timeout=WAIT_MS):
        window.actions["search"].trigger()
    qtbot.waitUntil(lambda: page.candidates.model.rowCount() == 2, timeout=WAIT_MS)
    assert page.candidates.current_search.face.source.value == "manual"
    assert page.candidates.model.candidate(0).subject_id == "obama"


def test_each_face_in_turn(qtbot, window, photo_paths, tmp_path) -> None:
    window.context.set_case(CASE)
    load_by_drop(qtbot, window, two_face_photo(tmp_path, photo_paths))
    page = window.search_page
    assert len(page.probe.faces) == 2
    window.actions["next_face"].trigger()
    assert page.probe.canvas.selected_index == 1
    progress: list[int] = []
    page.progress.valueChanged.connect(progress.append)
    with qtbot.waitSignal(page.busy_changed, timeout=WAIT_MS, check_params_cb=lambda b: not b):
        window.actions["search_each"].trigger()
    qtbot.waitUntil(lambda: len(page.candidates.searches) == 2, timeout=WAIT_MS)
    tops = {s.face.index: s.candidates[0].subject_id for s in page.candidates.searches}
    assert set(tops.values()) == {"obama", "biden"}
    assert progress, "the progress bar moved"


def test_poor_probe_needs_a_note(qtbot, window, photo_paths) -> None:
    from workstation.domain import BBox

    window.context.set_case(CASE)
    load_by_drop(qtbot, window, photo_paths["obama"])
    probe = window.search_page.probe
    # A box on the shoulder: no face inside, so it is searched unaligned and rated poor.
    image = probe.image
    with qtbot.waitSignal(
        probe.face_selected,
        timeout=WAIT_MS,
        check_params_cb=lambda f: f is not None and f.source.value == "manual",
    ):
        probe.canvas.box_drawn.emit(BBox(5, image.height - 60, 50, 50))
    face = probe.selected_face
    assert face.quality.verdict.value == "poor"
    page = window.search_page
    page.search_selected()
    assert not page.searching
    assert "poor quality" in page.message_label.text()
    page.note_edit.setText("only image of the suspect; low confidence accepted")
    with qtbot.waitSignal(page.search_recorded, timeout=WAIT_MS):
        page.search_selected()
    qtbot.waitUntil(lambda: page.candidates.current_search is not None, timeout=WAIT_MS)
    assert page.candidates.current_search.note.startswith("only image")


def test_unreadable_file_is_reported_and_app_keeps_running(qtbot, window, tmp_path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not really a jpeg")
    probe = window.search_page.probe
    with qtbot.waitSignal(probe.busy_changed, timeout=WAIT_MS, check_params_cb=lambda b: not b):
        drop_files(window, [bad])
    assert "broken.jpg" in probe.error_label.text()
    assert "Traceback" not in probe.error_label.text()
    assert probe.image is None


def test_folder_drop_queues_its_photos(qtbot, window, photo_paths, tmp_path) -> None:
    from tests.gui.analyst_support import copy_photo

    folder = tmp_path / "stills"
    for key in ("obama", "biden"):
        copy_photo(photo_paths[key], folder)
    probe = window.search_page.probe
    with qtbot.waitSignal(probe.probe_loaded, timeout=WAIT_MS):
        drop_files(window, [folder])
    assert probe.queue_label.text() == "photo 1 of 2"
    assert probe.image.path.name == "biden.jpg"
    with qtbot.waitSignal(probe.probe_loaded, timeout=WAIT_MS):
        window.actions["next_photo"].trigger()
    assert probe.image.path.name == "obama.jpg"


def test_zoom_fit_and_actual_size(qtbot, window, photo_paths) -> None:
    load_by_drop(qtbot, window, photo_paths["obama"])
    canvas = window.search_page.probe.canvas
    window.actions["actual"].trigger()
    assert canvas.zoom == pytest.approx(1.0)
    window.actions["zoom_in"].trigger()
    assert canvas.zoom == pytest.approx(1.25)
    window.actions["fit"].trigger()
    image = window.search_page.probe.image
    shown = canvas.mapFromScene(0, 0), canvas.mapFromScene(image.width, image.height)
    assert shown[1].x() - shown[0].x() <= canvas.viewport().width() + 2


def test_window_layout_is_saved_in_the_config_dir(qtbot, window, tmp_path) -> None:
    window.close()
    stored = tmp_path / "user-config" / "window.ini"
    text = stored.read_text()
    assert all(key in text for key in ("geometry", "state", "search_splitter"))
    from workstation.gui.main_window import window_settings

    saved = window_settings().value("geometry")
    assert bytes(saved) == bytes(window.saveGeometry())
    again = MainWindowWidget(window.context)
    qtbot.addWidget(again)
    assert again.restoreGeometry(saved)


def test_every_action_has_a_shortcut(window) -> None:
    missing = [k for k, a in window.actions.items() if not a.shortcuts() and k != "close_case"]
    assert missing == []


def test_no_two_actions_share_a_shortcut(window) -> None:
    owners: dict[str, list[str]] = {}
    for key, action in window.actions.items():
        for shortcut in action.shortcuts():
            owners.setdefault(shortcut.toString(), []).append(key)
    shared = {shortcut: keys for shortcut, keys in owners.items() if len(keys) > 1}
    assert shared == {}


def test_footage_frame_becomes_the_probe(qtbot, window, photo_paths) -> None:
    from workstation.vision.images import load_image

    footage = window.footage_panel
    frame = load_image(photo_paths["biden"])
    probe = window.search_page.probe
    with qtbot.waitSignal(probe.probe_loaded, timeout=WAIT_MS):
        footage.probe_frame_chosen.emit(frame)
    assert window.tabs.currentWidget() is window.search_page
    assert probe.image is frame and len(probe.faces) == 1
    assert str(frame.path) not in (window.context.history.recent_files)


def test_switching_gallery_folder_in_settings(qtbot, window, tmp_path) -> None:
    other = tmp_path / "other-gallery"
    with qtbot.waitSignal(window.context.gallery_changed, timeout=WAIT_MS):
        window._on_gallery_folder_changed(str(other))
    assert window.context.gallery_dir == other
    assert str(other) in window.gallery_label.text()


def test_cancel_stops_search_each_between_faces(qtbot, window, photo_paths, tmp_path) -> None:
    window.context.set_case(CASE)
    load_by_drop(qtbot, window, two_face_photo(tmp_path, photo_paths))
    page = window.search_page
    # Another connection holds the write lock, so the first search waits inside its transaction
    # while Cancel is pressed; no timing is involved.
    blocker = WriteLock(window.context.gallery_dir)
    window.actions["search_each"].trigger()
    assert page.searching and page.cancel_button.isEnabled()
    window.actions["cancel"].trigger()
    with qtbot.waitSignal(page.busy_changed, timeout=WAIT_MS, check_params_cb=lambda b: not b):
        blocker.release()
    with open_as(window.context.gallery_dir, "check") as gallery:
        recorded = gallery.counts()["searches"]
    assert recorded <= 1, "the second face was not searched after Cancel"
    assert not page.searching and not page.cancel_button.isEnabled()


def test_recent_files_menu_reopens_a_photo(qtbot, window, photo_paths) -> None:
    load_by_drop(qtbot, window, photo_paths["biden"])
    load_by_drop(qtbot, window, photo_paths["obama"])
    window.recent_menu.aboutToShow.emit()
    entries = [a.text() for a in window.recent_menu.actions()]
    assert entries[:2] == [str(photo_paths["obama"]), str(photo_paths["biden"])]
    probe = window.search_page.probe
    with qtbot.waitSignal(probe.probe_loaded, timeout=WAIT_MS):
        window.recent_menu.actions()[1].trigger()
    assert probe.image.path == photo_paths["biden"]


def test_search_on_an_empty_gallery_says_so(qtbot, tmp_path, engine, photo_paths) -> None:
    context = make_context(tmp_path / "empty-gallery", engine)
    win = MainWindowWidget(context)
    qtbot.addWidget(win)
    context.set_case(CASE)
    load_by_drop(qtbot, win, photo_paths["obama"])
    page = win.search_page
    with qtbot.waitSignal(page.search_recorded, timeout=WAIT_MS):
        win.actions["search"].trigger()
    assert "holds no faces yet" in page.message_label.text()
    qtbot.waitUntil(lambda: page.candidates.current_search is not None, timeout=WAIT_MS)
    assert page.candidates.model.rowCount() == 0
    context.pool.wait()


def test_search_without_a_case_asks_for_one_first(qtbot, window, photo_paths) -> None:
    from PySide6.QtCore import QTimer

    assert window.context.case is None
    load_by_drop(qtbot, window, photo_paths["obama2"])
    asked = []

    def answer(dialog) -> None:
        asked.append(dialog)

        def fill_and_accept() -> None:
            dialog.case_combo.setEditText(CASE.case_id)
            dialog.purpose_edit.setText(CASE.purpose)
            dialog.accept()

        QTimer.singleShot(0, fill_and_accept)  # once the dialog's own event loop runs

    window.case_bar.case_dialog_opened.connect(answer)
    page = window.search_page
    with qtbot.waitSignal(page.search_recorded, timeout=WAIT_MS):
        window.actions["search"].trigger()
    assert len(asked) == 1
    assert window.context.case == CASE
    assert CASE.case_id in window.case_bar.case_label.text()


def test_cancelled_case_dialog_means_no_search(qtbot, window, photo_paths) -> None:
    from PySide6.QtCore import QTimer

    load_by_drop(qtbot, window, photo_paths["obama2"])
    window.case_bar.case_dialog_opened.connect(lambda d: QTimer.singleShot(0, d.reject))
    window.actions["search"].trigger()
    page = window.search_page
    assert not page.searching
    assert "case number and a purpose" in page.message_label.text()
    with open_as(window.context.gallery_dir, "check") as gallery:
        assert gallery.counts()["searches"] == 0
