"""Enhance… on the real window: add steps, edit a parameter, the preview appears (computed on a
worker), reset; the probe panel says the working copy is searched; the search records the
lineage; a footage frame enhanced the same way records the frame's own SHA-256."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from examiners import open_as
from PySide6.QtCore import QTimer

from tests.gui.analyst_support import CASE, WAIT_MS, enrol_gallery, main_window
from workstation.gui.compare_view import probe_side
from workstation.gui.enhance_dialog import EnhanceDialog
from workstation.vision.enhancement import apply, pixels_sha256
from workstation.vision.enhancement_steps import parse_steps
from workstation.vision.video import frame_image


@pytest.fixture
def window(tmp_path: Path, qtbot, engine, photo_paths):
    folder = enrol_gallery(tmp_path / "gallery", engine, photo_paths)
    yield from main_window(qtbot, folder, engine)


def _edit_steps(qtbot, dialog: EnhanceDialog) -> None:
    """What an examiner does: add three steps, change a parameter, remove one, reorder."""
    for name in ("gamma", "equalise", "sharpen", "upscale"):
        dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData(name))
        with qtbot.waitSignal(dialog.preview_ready, timeout=WAIT_MS):
            dialog.add_button.click()
    dialog.step_list.setCurrentRow(0)
    with qtbot.waitSignal(dialog.preview_ready, timeout=WAIT_MS):
        dialog.set_param("gamma", 1.5)
    dialog.step_list.setCurrentRow(2)  # sharpen: removed
    with qtbot.waitSignal(dialog.preview_ready, timeout=WAIT_MS):
        dialog.remove_button.click()
    assert [s.name for s in dialog.steps] == ["gamma", "equalise", "upscale"]
    assert dialog.steps[0]["gamma"] == 1.5
    assert dialog.working_view.pixmap() is not None and not dialog.working_view.pixmap().isNull()
    assert "3 steps" in dialog.working_caption.text()


def test_enhance_dialog_preview_reset_and_search_uses_the_working_copy(
    qtbot, window, photo_paths
) -> None:
    window.context.set_case(CASE)
    probe = window.search_page.probe
    with qtbot.waitSignal(probe.probe_loaded, timeout=WAIT_MS):
        probe.load_path(photo_paths["obama2"])
    assert probe.enhance_button.isEnabled() and not probe.enhancement_label.isVisible()
    dialog = probe.make_enhance_dialog()
    qtbot.addWidget(dialog)
    dialog.show()
    with qtbot.waitSignal(dialog.preview_ready, timeout=WAIT_MS):
        pass  # the first preview: the original (no steps)
    assert "Original" in dialog.working_caption.text()
    with qtbot.waitSignal(dialog.preview_ready, timeout=WAIT_MS):
        dialog.add_step("gamma")
    with qtbot.waitSignal(dialog.preview_ready, timeout=WAIT_MS):
        dialog.reset_button.click()
    assert dialog.steps == ()
    _edit_steps(qtbot, dialog)
    with qtbot.waitSignal(probe.enhancement_changed, timeout=WAIT_MS):
        probe.set_enhancement(dialog.steps)
    assert probe.enhancement_label.isVisible()
    assert probe.enhancement_label.text().startswith("Enhanced: 3 steps")
    working = apply(probe.image.bgr, dialog.steps)
    assert np.array_equal(probe.searched_bgr, working)
    assert probe.canvas.face_items  # faces found in the working copy
    page = window.search_page
    with qtbot.waitSignal(page.search_recorded, timeout=WAIT_MS) as recorded:
        page.search_selected()
    with open_as(window.context.gallery_dir, "check") as gallery:
        record = gallery.search_record(recorded.args[0])
        assert record.candidates[0].subject_id == "obama"
        lineage = record.probe.enhancement
        assert lineage is not None and lineage.steps == dialog.steps
        assert lineage.original_sha256 == probe.image.sha256 == record.probe.sha256
        assert lineage.working_sha256 == pixels_sha256(working)
        assert record.face.box.x + record.face.box.w <= working.shape[1]
        assert gallery.verify_audit().intact
    # Compare shows the working copy (the box is in its pixels), saying so.
    side = probe_side(record, None)  # read again from the file, checked, enhanced again
    assert (side.photo.width(), side.photo.height()) == (working.shape[1], working.shape[0])
    assert "enhanced working copy (Enhanced: 3 steps" in side.metadata["Face"]
    assert lineage.working_sha256 in side.metadata["SHA-256"]
    # Back to the original: the label goes, the next search is unenhanced.
    with qtbot.waitSignal(probe.enhancement_changed, timeout=WAIT_MS):
        probe.set_enhancement(())
    assert not probe.enhancement_label.isVisible() and probe.enhancement is None


def test_the_enhance_button_opens_the_dialog_and_straighten_finds_the_eyes(
    qtbot, window, photo_paths
) -> None:
    probe = window.search_page.probe
    with qtbot.waitSignal(probe.probe_loaded, timeout=WAIT_MS):
        probe.load_path(photo_paths["obama2"])
    seen: list[EnhanceDialog] = []

    def opened(dialog: EnhanceDialog) -> None:
        seen.append(dialog)

        def close() -> None:
            dialog.add_step("straighten")  # eye points found on a worker
            qtbot.waitUntil(lambda: dialog.steps[0]["eye2_x"] > 1.0, timeout=WAIT_MS)
            dialog.accept()

        QTimer.singleShot(0, close)

    probe.enhance_dialog_opened.connect(opened)
    with qtbot.waitSignal(probe.enhancement_changed, timeout=WAIT_MS):
        probe.enhance_button.click()
    (step,) = probe.enhancement.steps
    left, right = probe._original.faces[0].landmarks[:2]
    assert abs(step["eye1_x"] - left[0]) < 3 and abs(step["eye2_x"] - right[0]) < 3
    assert seen and probe.enhancement_label.text().startswith("Enhanced: 1 step:")


def test_a_footage_frame_enhanced_records_the_frames_own_sha256(qtbot, window, photo_paths) -> None:
    from workstation.vision.images import load_image

    window.context.set_case(CASE)
    probe = window.search_page.probe
    # A frame as the footage tab sends it (its file name and SHA-256 are the video's).
    bgr = load_image(photo_paths["obama2"]).bgr[:700]
    info = type(
        "Info", (), {"path": Path("/videos/lobby.mp4"), "sha256": "ab" * 32, "file_bytes": 9}
    )()
    frame = frame_image(info, 42, bgr)
    lineage = {"video_path": "/videos/lobby.mp4", "video_sha256": "ab" * 32, "frame_index": 42}
    with qtbot.waitSignal(probe.probe_loaded, timeout=WAIT_MS):
        probe.load_frame(frame, lineage)
    steps = parse_steps([{"step": "denoise"}, {"step": "upscale", "factor": 1.5}])
    with qtbot.waitSignal(probe.enhancement_changed, timeout=WAIT_MS):
        probe.set_enhancement(steps)
    page = window.search_page
    with qtbot.waitSignal(page.search_recorded, timeout=WAIT_MS) as recorded:
        page.search_selected()
    with open_as(window.context.gallery_dir, "check") as gallery:
        record = gallery.search_record(recorded.args[0])
        enhanced = record.probe.enhancement
        assert enhanced is not None and enhanced.original_kind == "video frame"
        assert enhanced.original_sha256 == pixels_sha256(bgr)
        assert record.probe.sha256 == "ab" * 32 and record.probe.frame["frame_index"] == 42
        # The search event itself: the Search tab records its reading of the case's searches
        # (a `view` event) after it.
        event = [e for e in gallery.audit_events(case_id=CASE.case_id) if e.action == "search"][-1]
        assert event.details["probe_enhancement"]["original_kind"] == "video frame"
