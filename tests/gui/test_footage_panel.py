"""Footage panel: open and scan a real clip on the worker, see tracks, step frames, search a
track, and send a frame to the photo search with its lineage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from examiners import open_as
from footage_clips import Appearance, make_clip
from PySide6.QtCore import QPoint, Qt

from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.store import Gallery
from workstation.gui.context import AppContext, CaseInfo
from workstation.gui.footage_panel import FootagePanelWidget
from workstation.gui.footage_views import FRAME_FORMAT
from workstation.progress import drain

WAIT_MS = 60_000


@pytest.fixture(scope="module")
def clip(engine, photo_paths, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("clips") / "lobby.avi"
    make_clip(
        engine,
        path,
        [
            Appearance(photo_paths["obama2"], 0.0, 1.6, 20, 60, dx_per_s=50),
            Appearance(photo_paths["biden"], 1.0, 2.4, 300, 80),
        ],
        seconds=3.0,
        fourcc="MJPG",
    )
    return path


@pytest.fixture
def context(tmp_path: Path, engine, photo_paths, qtbot):  # type: ignore[no-untyped-def]
    folder = tmp_path / "gallery"
    with open_as(folder, "examiner1") as gallery:
        items = items_for_subject("S-OBAMA", [photo_paths["obama"]], "B. Obama")
        items += items_for_subject("S-BIDEN", [photo_paths["biden"]], "J. Biden")
        assert drain(enroll(gallery, engine, items)).enrolled == 2
    ctx = AppContext(folder, user="examiner1")
    ctx._engine = engine  # the session's already loaded real engine (loading is slow)
    yield ctx
    ctx.pool.wait()


def _scanned_panel(qtbot, context: AppContext, clip: Path) -> FootagePanelWidget:  # type: ignore[no-untyped-def]
    panel = FootagePanelWidget(context)
    qtbot.addWidget(panel)
    panel.resize(1100, 650)
    panel.show()
    with qtbot.waitSignal(panel.video_opened, timeout=WAIT_MS):
        panel.open_video(clip)
    qtbot.waitUntil(lambda: not panel.busy, timeout=WAIT_MS)
    with qtbot.waitSignal(panel.scan_finished, timeout=WAIT_MS):
        qtbot.mouseClick(panel.scan_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.busy, timeout=WAIT_MS)
    return panel


def test_scan_shows_tracks_thumbnails_and_timeline(qtbot, context, clip) -> None:  # type: ignore[no-untyped-def]
    panel = _scanned_panel(qtbot, context, clip)
    assert panel.info is not None and panel.info.frame_count == 30
    assert panel.track_list.count() == 2
    first = panel.track_list.item(0)
    assert "Track 1" in first.text() and "00:00:00.000 – 00:00:01.400" in first.text()
    assert not first.icon().isNull()
    assert {b.track_id for b in panel.timeline.bars} == {1, 2}
    assert panel.timeline.lanes == 2  # the two tracks overlap in time
    assert "2 track(s)" in panel.status_label.text()
    # The scan is in the audit log.
    with Gallery(context.gallery_dir) as gallery:
        assert gallery.audit_events()[-1].action == "footage_scan"


def test_step_frames_seek_and_click_the_timeline(qtbot, context, clip) -> None:  # type: ignore[no-untyped-def]
    panel = _scanned_panel(qtbot, context, clip)
    panel.seek(0)
    first = panel.frame_bgr.copy()
    qtbot.mouseClick(panel.next_button, Qt.MouseButton.LeftButton)
    assert panel.frame_index == 1
    assert "frame 1 / 29" in panel.position_label.text()
    assert "00:00:00.100" in panel.position_label.text()
    qtbot.mouseClick(panel.prev_button, Qt.MouseButton.LeftButton)
    assert panel.frame_index == 0
    assert np.array_equal(panel.frame_bgr, first)  # back to exactly the same pixels
    panel.seek(25)
    assert panel.frame_index == 25 and panel.slider.value() == 25
    panel.seek(10_000)
    assert panel.frame_index == 29  # clamped to the last frame
    # Click Biden's bar on the timeline: jumps there and selects his track.
    bar = next(b for b in panel.timeline.bars if b.track_id == 2)
    centre = panel.timeline.bar_rect(bar).center()
    qtbot.mouseClick(
        panel.timeline, Qt.MouseButton.LeftButton, pos=QPoint(int(centre.x()), int(centre.y()))
    )
    assert panel.selected_track() is not None and panel.selected_track().track_id == 2
    assert 10 <= panel.frame_index <= 24


def test_search_a_track_needs_a_case_then_finds_the_right_person(qtbot, context, clip) -> None:  # type: ignore[no-untyped-def]
    panel = _scanned_panel(qtbot, context, clip)
    panel.select_track(2)
    with qtbot.waitSignal(panel.case_needed, timeout=1000):
        qtbot.mouseClick(panel.search_button, Qt.MouseButton.LeftButton)
    context.set_case(CaseInfo("C-77", "lobby footage review"))
    recorded: list[int] = []
    panel.search_recorded.connect(recorded.append)
    qtbot.mouseClick(panel.search_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.busy, timeout=WAIT_MS)
    assert len(recorded) == 1, panel.status_label.text()
    assert panel.results.item(0, 1).text().startswith("S-BIDEN")
    with Gallery(context.gallery_dir) as gallery:
        event = gallery.audit_events(case_id="C-77")[-1]
    assert event.details["search_id"] == recorded[0]
    assert event.details["probe_frame"]["track_id"] == 2
    assert event.details["probe_frame"]["video_sha256"] == panel.info.sha256


def test_use_this_frame_as_probe_emits_the_frame_with_lineage(qtbot, context, clip) -> None:  # type: ignore[no-untyped-def]
    panel = _scanned_panel(qtbot, context, clip)
    panel.seek(12)
    with qtbot.waitSignal(panel.probe_frame_chosen, timeout=1000) as signal:
        qtbot.mouseClick(panel.probe_button, Qt.MouseButton.LeftButton)
    image = signal.args[0]
    assert str(image.path).endswith("lobby.avi#frame=12")
    assert image.sha256 == panel.info.sha256 and image.format == FRAME_FORMAT
    assert np.array_equal(image.bgr, panel.frame_bgr)
    assert (image.width, image.height) == (480, 360)
    lineage = panel.lineage_for(image)
    assert lineage == panel.probe_lineage
    assert lineage["frame_index"] == 12 and lineage["timecode"] == "00:00:01.200"
    # The emitted frame really holds the two faces seen at 1.2 s.
    assert len(context.engine().detect(image.bgr)) == 2


def test_cancel_keeps_the_partial_scan_and_bad_files_show_an_error(  # type: ignore[no-untyped-def]
    qtbot, context, clip, tmp_path
) -> None:
    panel = FootagePanelWidget(context)
    qtbot.addWidget(panel)
    bad = tmp_path / "camera3.mp4"
    bad.write_text("not a video")
    panel.open_video(bad)
    qtbot.waitUntil(lambda: not panel.busy, timeout=WAIT_MS)
    assert "camera3.mp4" in panel.status_label.text()
    assert "not a video" in panel.status_label.text()
    assert not panel.scan_button.isEnabled()

    with qtbot.waitSignal(panel.video_opened, timeout=WAIT_MS):
        panel.open_video(clip)
    qtbot.waitUntil(lambda: not panel.busy, timeout=WAIT_MS)
    # Hold the engine's inference lock so the scan cannot finish before Cancel is pressed.
    with context.engine()._lock:
        panel.start_scan(0.1)
        assert panel.cancel_button.isEnabled()
        with qtbot.waitSignal(panel.scan_finished, timeout=WAIT_MS) as signal:
            qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
            context.engine()._lock.release()
            try:
                qtbot.waitUntil(lambda: not panel.busy, timeout=WAIT_MS)
            finally:
                context.engine()._lock.acquire()
    result = signal.args[0]
    assert result.cancelled and result.frames_decoded < 30
    assert panel.track_list.count() == len(result.tracks)
    assert "cancelled" in panel.status_label.text().lower()
