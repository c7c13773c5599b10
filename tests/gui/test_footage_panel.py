"""Footage panel: open and scan a real clip on the worker, see tracks, step frames, search a
track, and send a frame to the photo search with its lineage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from examiners import open_as
from footage_clips import Appearance, make_clip
from PySide6.QtCore import QPoint, Qt

from workstation.footage import DEFAULT_MIN_FACE_PX, FrameReader
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.store import Gallery
from workstation.gui.context import AppContext, CaseInfo
from workstation.gui.footage_panel import FootagePanelWidget
from workstation.progress import drain
from workstation.vision.video import FRAME_FORMAT

WAIT_MS = 60_000


@pytest.fixture(scope="module")
def clip(engine, photo_paths, tmp_path_factory) -> Path:
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
def context(tmp_path: Path, engine, photo_paths, qtbot):
    folder = tmp_path / "gallery"
    with open_as(folder, "examiner1") as gallery:
        items = items_for_subject("S-OBAMA", [photo_paths["obama"]], "B. Obama")
        items += items_for_subject("S-BIDEN", [photo_paths["biden"]], "J. Biden")
        assert drain(enroll(gallery, engine, items)).enrolled == 2
    ctx = AppContext(folder, user="examiner1")
    ctx._engine = engine  # the session's already loaded real engine (loading is slow)
    ctx.set_case(CaseInfo("C-76", "lobby footage scan"))  # a scan is recorded against a case
    yield ctx
    ctx.pool.wait()


def _settle(qtbot, panel: FootagePanelWidget) -> None:
    """Wait until the player shows the frame last asked for (frames decode on a worker)."""
    qtbot.waitUntil(lambda: panel.player.settled, timeout=WAIT_MS)


def _scanned_panel(qtbot, context: AppContext, clip: Path) -> FootagePanelWidget:
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
    _settle(qtbot, panel)
    return panel


def test_scan_shows_tracks_thumbnails_and_timeline(qtbot, context, clip) -> None:
    panel = _scanned_panel(qtbot, context, clip)
    assert panel.info is not None and panel.info.frame_count == 30
    tracks = panel.tracks
    assert tracks.track_list.count() == 2
    first = tracks.track_list.item(0)
    assert "Track 1" in first.text() and "00:00:00.000 – 00:00:01.400" in first.text()
    assert not first.icon().isNull()
    timeline = panel.player.timeline
    assert {b.track_id for b in timeline.bars} == {1, 2}
    assert timeline.lanes == 2  # the two tracks overlap in time
    assert "2 track(s)" in panel.status_label.text()
    # The scan is in the audit log.
    with Gallery(context.gallery_dir) as gallery:
        assert gallery.audit_events()[-1].action == "footage_scan"


def test_step_frames_seek_and_click_the_timeline(qtbot, context, clip) -> None:
    panel = _scanned_panel(qtbot, context, clip)
    player = panel.player
    player.seek(0)
    _settle(qtbot, panel)
    first = player.frame_bgr.copy()
    qtbot.mouseClick(player.next_button, Qt.MouseButton.LeftButton)
    _settle(qtbot, panel)
    assert player.frame_index == 1
    assert "frame 1 / 29" in player.position_label.text()
    assert "00:00:00.100" in player.position_label.text()
    qtbot.mouseClick(player.prev_button, Qt.MouseButton.LeftButton)
    _settle(qtbot, panel)
    assert player.frame_index == 0
    assert np.array_equal(player.frame_bgr, first)  # back to exactly the same pixels
    player.seek(25)
    _settle(qtbot, panel)
    assert player.frame_index == 25 and player.slider.value() == 25
    player.seek(10_000)
    _settle(qtbot, panel)
    assert player.frame_index == 29  # clamped to the last frame
    # Steps asked for faster than frames decode add up; only the last frame is shown.
    shown: list[int] = []
    player.frame_shown.connect(shown.append)
    player.seek(3)
    for _ in range(4):
        player.next_frame()
    _settle(qtbot, panel)
    assert player.frame_index == 7 and shown[-1] == 7 and len(shown) <= 2
    with FrameReader(panel.info) as reader:
        assert np.array_equal(player.frame_bgr, reader.read(7))
    # Click Biden's bar on the timeline: jumps there and selects his track.
    bar = next(b for b in player.timeline.bars if b.track_id == 2)
    centre = player.timeline.bar_rect(bar).center()
    qtbot.mouseClick(
        player.timeline, Qt.MouseButton.LeftButton, pos=QPoint(int(centre.x()), int(centre.y()))
    )
    _settle(qtbot, panel)
    track = panel.tracks.selected_track()
    assert track is not None and track.track_id == 2
    assert 10 <= player.frame_index <= 24


def test_search_a_track_needs_a_case_then_finds_the_right_person(qtbot, context, clip) -> None:
    panel = _scanned_panel(qtbot, context, clip)
    context.set_case(None)  # the case closed after the scan
    tracks = panel.tracks
    tracks.select_track(2)
    with qtbot.waitSignal(panel.case_needed, timeout=1000):
        qtbot.mouseClick(tracks.search_button, Qt.MouseButton.LeftButton)
    context.set_case(CaseInfo("C-77", "lobby footage review"))
    recorded: list[int] = []
    panel.search_recorded.connect(recorded.append)
    qtbot.mouseClick(tracks.search_button, Qt.MouseButton.LeftButton)
    assert panel.busy and not tracks.search_button.isEnabled()
    assert not panel.cancel_button.isEnabled()  # a search is not cancelled half-way
    qtbot.waitUntil(lambda: not panel.busy, timeout=WAIT_MS)
    assert len(recorded) == 1, panel.status_label.text()
    assert tracks.results.item(0, 1).text().startswith("S-BIDEN")
    with Gallery(context.gallery_dir) as gallery:
        event = gallery.audit_events(case_id="C-77")[-1]
    assert event.details["search_id"] == recorded[0]
    assert event.details["probe_frame"]["track_id"] == 2
    assert event.details["probe_frame"]["video_sha256"] == panel.info.sha256


def test_use_this_frame_as_probe_emits_the_frame_with_lineage(qtbot, context, clip) -> None:
    panel = _scanned_panel(qtbot, context, clip)
    panel.player.seek(12)
    _settle(qtbot, panel)
    with qtbot.waitSignal(panel.probe_frame_chosen, timeout=1000) as signal:
        qtbot.mouseClick(panel.tracks.probe_button, Qt.MouseButton.LeftButton)
    image = signal.args[0]
    assert str(image.path).endswith("lobby.avi#frame=12")
    assert image.sha256 == panel.info.sha256 and image.format == FRAME_FORMAT
    assert np.array_equal(image.bgr, panel.player.frame_bgr)
    assert (image.width, image.height) == (480, 360)
    lineage = panel.lineage_for(image)
    assert lineage == panel.tracks.probe_lineage
    assert lineage["frame_index"] == 12 and lineage["timecode"] == "00:00:01.200"
    # The emitted frame really holds the two faces seen at 1.2 s.
    assert len(context.engine().detect(image.bgr)) == 2


def test_cancel_keeps_the_partial_scan_and_bad_files_show_an_error(
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
    assert panel.tracks.track_list.count() == len(result.tracks)
    assert "cancelled" in panel.status_label.text().lower()


def test_a_scan_asks_for_a_case_first_and_is_recorded_against_it(qtbot, context, clip) -> None:
    context.set_case(None)
    panel = FootagePanelWidget(context)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.video_opened, timeout=WAIT_MS):
        panel.open_video(clip)
    qtbot.waitUntil(lambda: not panel.busy, timeout=WAIT_MS)
    with Gallery(context.gallery_dir) as gallery:
        before = gallery.audit_head()[0]
    asked: list[int] = []
    context.case_asker = lambda: asked.append(1)  # the examiner cancels the case dialog
    with qtbot.waitSignal(panel.case_needed, timeout=1000):
        qtbot.mouseClick(panel.scan_button, Qt.MouseButton.LeftButton)
    assert asked == [1] and not panel.busy
    assert "case" in panel.status_label.text()
    with Gallery(context.gallery_dir) as gallery:
        assert gallery.audit_head()[0] == before  # nothing scanned, nothing recorded

    context.case_asker = lambda: context.set_case(CaseInfo("C-78", "lobby camera 2"))
    with qtbot.waitSignal(panel.scan_finished, timeout=WAIT_MS):
        qtbot.mouseClick(panel.scan_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.busy, timeout=WAIT_MS)
    with Gallery(context.gallery_dir) as gallery:
        written = [e for e in gallery.audit_events() if e.seq > before]
    assert [e.action for e in written] == ["footage_scan"]
    assert (written[0].case_id, written[0].purpose) == ("C-78", "lobby camera 2")
    assert written[0].user == "examiner1"
    assert written[0].details["video"]["sha256"] == panel.info.sha256


def test_the_smallest_face_asked_for_is_scanned_recorded_and_shown(qtbot, context, clip) -> None:
    panel = FootagePanelWidget(context)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.video_opened, timeout=WAIT_MS):
        panel.open_video(clip)
    qtbot.waitUntil(lambda: not panel.busy, timeout=WAIT_MS)
    assert panel.min_face_spin.value() == DEFAULT_MIN_FACE_PX
    panel.min_face_spin.setValue(200)
    with qtbot.waitSignal(panel.scan_finished, timeout=WAIT_MS) as finished:
        qtbot.mouseClick(panel.scan_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.busy, timeout=WAIT_MS)
    result = finished.args[0]
    assert result.options.min_face_px == 200
    # The status says which faces were not looked for (a small clip: the detector's own limit).
    assert f"narrower than {result.smallest_face_px} px" in panel.status_label.text()
    # and the track list keeps saying it after the status has moved on
    assert f"narrower than {result.smallest_face_px} px" in panel.tracks.tracks_label.text()
    with Gallery(context.gallery_dir) as gallery:
        event = gallery.audit_events()[-1]
    assert event.action == "footage_scan"
    assert event.details["options"]["min_face_px"] == 200
    assert event.details["smallest_face_px"] == result.smallest_face_px


def test_the_smallest_face_tooltip_says_what_it_costs_on_the_open_video(
    qtbot, context, clip
) -> None:
    panel = FootagePanelWidget(context)
    qtbot.addWidget(panel)
    assert "Smallest face to look for" in panel.min_face_spin.toolTip()
    with qtbot.waitSignal(panel.video_opened, timeout=WAIT_MS):
        panel.open_video(clip)
    qtbot.waitUntil(lambda: not panel.busy, timeout=WAIT_MS)
    info = panel.info
    assert f"This video ({info.width}x{info.height})" in panel.min_face_spin.toolTip()
    assert "reliably from about 28 px" in panel.min_face_spin.toolTip()  # a small clip
    panel.min_face_spin.setValue(20)  # under the detector's reliable size: the frame enlarged
    assert "(enlarged)" in panel.min_face_spin.toolTip()
    assert "reliably from about 20 px" in panel.min_face_spin.toolTip()
