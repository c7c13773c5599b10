"""Compare view on a real search: both sides load, linked zoom and pan, overlay and flicker,
landmarks on/off, metadata, stepping through candidates, a decision from inside the view."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from examiners import open_as

from tests.gui.analyst_support import CASE, WAIT_MS, enrol_gallery, make_context, shared_extras
from workstation.gallery.search import ProbeInfo, search_face
from workstation.gui.candidates import CandidatesWidget
from workstation.gui.compare_view import METADATA_ROWS, CompareDialog
from workstation.vision.images import load_image


@pytest.fixture
def setup(tmp_path: Path, qtbot, engine, photo_paths, shared_faces):
    folder = enrol_gallery(
        tmp_path / "gallery", engine, photo_paths, shared_extras(shared_faces, 2)
    )
    image = load_image(photo_paths["obama2"])
    face = engine.analyze(image.bgr)[0]
    with open_as(folder, "examiner1") as gallery:
        search_face(gallery, face, ProbeInfo.from_image(image), CASE.case_id, CASE.purpose)
    yield from _case_searches(qtbot, folder, engine, image)


def _case_searches(qtbot, folder: Path, engine, extra):
    """The app's context on the case and its searches' candidate list (yields them, `extra`)."""
    context = make_context(folder, engine)
    context.set_case(CASE)
    candidates = CandidatesWidget(context)
    qtbot.addWidget(candidates)
    with qtbot.waitSignal(candidates.searches_loaded, timeout=WAIT_MS):
        candidates.reload()
    yield context, candidates, extra
    context.pool.cancel_all()
    context.pool.wait()


def open_dialog(qtbot, context, candidates, image) -> CompareDialog:
    dialog = CompareDialog(context, candidates, image)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.candidate_shown, timeout=WAIT_MS):
        dialog.show()
    return dialog


def metadata(dialog: CompareDialog, row_name: str, column: int) -> str:
    return dialog.table.item(METADATA_ROWS.index(row_name), column).text()


def test_both_sides_and_metadata(qtbot, setup) -> None:
    context, candidates, image = setup
    dialog = open_dialog(qtbot, context, candidates, image)
    assert "Candidate 1 of 4: obama" in dialog.header.text()
    assert metadata(dialog, "SHA-256", 0) == image.sha256
    assert metadata(dialog, "Source file", 0).endswith("obama2.jpg")
    assert metadata(dialog, "Source file", 1).endswith("obama.jpg")
    assert metadata(dialog, "Inter-eye distance", 0).endswith(" px")
    assert metadata(dialog, "Quality", 1) in ("GOOD", "WARN", "POOR")
    assert "enrolled" in metadata(dialog, "Date", 1)
    assert dialog.probe_crop.scene().items() and dialog.cand_photo.scene().items()


def test_step_through_candidates_with_keys(qtbot, setup) -> None:
    from PySide6.QtCore import Qt

    context, candidates, image = setup
    dialog = open_dialog(qtbot, context, candidates, image)
    seen = [candidates.current_candidate().subject_id]
    for _ in range(3):
        with qtbot.waitSignal(dialog.candidate_shown, timeout=WAIT_MS):
            qtbot.keyClick(dialog, Qt.Key.Key_PageDown)
        seen.append(candidates.current_candidate().subject_id)
        assert metadata(dialog, "Subject", 1).startswith(seen[-1])
    assert len(set(seen)) == 4
    assert "Candidate 4 of 4" in dialog.header.text()
    with qtbot.waitSignal(dialog.candidate_shown, timeout=WAIT_MS):
        qtbot.keyClick(dialog, Qt.Key.Key_PageUp)
    assert candidates.current_candidate().subject_id == seen[2]


def test_linked_zoom_pan_landmarks_overlay_and_flicker(qtbot, setup) -> None:
    context, candidates, image = setup
    dialog = open_dialog(qtbot, context, candidates, image)
    dialog.probe_photo.zoom_by(2.0)
    probe_state, cand_state = dialog.probe_photo.state(), dialog.cand_photo.state()
    assert probe_state[0] == pytest.approx(2.0, rel=0.05)
    assert cand_state == pytest.approx(probe_state, rel=0.05, abs=0.02)
    dialog.cand_photo.horizontalScrollBar().setValue(
        dialog.cand_photo.horizontalScrollBar().value() + 40
    )
    assert dialog.probe_photo.state() == pytest.approx(dialog.cand_photo.state(), abs=0.03)

    assert dialog.probe_crop.landmarks_visible
    dialog.landmarks_box.setChecked(False)
    assert not dialog.probe_crop.landmarks_visible and not dialog.cand_photo.landmarks_visible

    dialog.modes.setCurrentIndex(1)
    dialog.opacity_slider.setValue(80)
    assert dialog.overlay.over.opacity() == pytest.approx(0.8)
    dialog.flicker_box.setChecked(True)
    assert dialog.overlay.timer.isActive()
    visible = dialog.overlay.over.isVisible()
    dialog.overlay.timer.timeout.emit()
    assert dialog.overlay.over.isVisible() is not visible
    dialog.flicker_box.setChecked(False)
    assert not dialog.overlay.timer.isActive() and dialog.overlay.over.isVisible()


def test_decision_from_the_compare_view_updates_the_list(qtbot, setup) -> None:
    context, candidates, image = setup
    dialog = open_dialog(qtbot, context, candidates, image)
    dialog.decisions.note_edit.setText("eyebrows and ears differ")
    with qtbot.waitSignal(dialog.decisions.decisions_changed, timeout=WAIT_MS):
        dialog.decisions.buttons["excluded"].click()
    model = candidates.model
    assert model.data(model.index(0, model.COL_DECISION)) == "excluded (examiner1)"


def test_probe_file_changed_since_search_is_reported(qtbot, setup, tmp_path) -> None:
    context, candidates, _image = setup
    search = candidates.current_search
    moved = tmp_path / "gone.jpg"
    # The recorded probe file is no longer there.
    candidates.model.set_search(replace(search, probe=replace(search.probe, path=str(moved))))
    candidates.select_candidate_row(0)
    dialog = CompareDialog(context, candidates, None)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.load_failed, timeout=WAIT_MS) as blocker:
        dialog.show()
    assert "gone.jpg" in blocker.args[0]
    assert dialog.error_label.isVisibleTo(dialog)


def _compare_views(context) -> list:
    from workstation.gallery.store import Gallery

    with Gallery(context.gallery_dir, read_only=True) as gallery:
        return [
            e
            for e in gallery.audit_events()
            if e.action == "view" and e.details.get("read") == "compare"
        ]


def test_each_candidate_opened_is_recorded_once_per_opening(qtbot, setup) -> None:
    from PySide6.QtCore import Qt

    context, candidates, image = setup
    assert _compare_views(context) == []
    dialog = open_dialog(qtbot, context, candidates, image)
    first = candidates.current_candidate()
    search = candidates.current_search
    (event,) = _compare_views(context)
    assert (event.case_id, event.purpose, event.user) == (CASE.case_id, CASE.purpose, "examiner1")
    assert event.details == {
        "read": "compare",
        "search_id": search.search_id,
        "subject_id": first.subject_id,
        "face_id": first.face_id,
    }
    # Zoom, overlay and landmarks are the same consultation: nothing more is recorded.
    dialog.landmarks_box.setChecked(not dialog.landmarks_box.isChecked())
    for key in (Qt.Key.Key_PageDown, Qt.Key.Key_PageUp):  # the next candidate, then back
        with qtbot.waitSignal(dialog.candidate_shown, timeout=WAIT_MS):
            qtbot.keyClick(dialog, key)
    shown = [e.details["subject_id"] for e in _compare_views(context)]
    assert shown[0] == first.subject_id and len(shown) == 2 and shown[1] != first.subject_id
    dialog.close()
    open_dialog(qtbot, context, candidates, image)  # a new opening is a new consultation
    assert [e.details["subject_id"] for e in _compare_views(context)][2:] == [first.subject_id]


def test_score_plot_marks_this_candidate_and_hides_in_blind_review(qtbot, setup) -> None:
    from PySide6.QtGui import QColor

    from workstation.reports.columns import cell
    from workstation.reports.score_plot import CANDIDATE

    context, candidates, image = setup
    dialog = open_dialog(qtbot, context, candidates, image)
    search, candidate = candidates.current_search, candidates.current_candidate()
    plot = dialog.score_plot.plot
    assert plot is not None and plot.subject_id == candidate.subject_id
    assert plot.score == candidate.score and plot.fmr_words == cell("fmr", candidate, search)
    assert cell("fmr", candidate, search) in dialog.score_plot.toolTip()
    # The painted widget has the candidate's red line where the geometry puts it.
    dialog.score_plot.resize(600, 180)
    picture = dialog.score_plot.grab().toImage()
    (line,) = [s for s in plot.layout(600, 180) if s.kind == "line" and s.role == CANDIDATE]
    column, row = round(line.x), round((line.y + line.y2) / 2)
    reds = [
        QColor(picture.pixel(x, row)).red() - QColor(picture.pixel(x, row)).green()
        for x in range(column - 1, column + 2)
    ]
    assert max(reds) > 100, "the candidate's line is not drawn at its score"
    with qtbot.waitSignal(dialog.candidate_shown, timeout=WAIT_MS):
        dialog.step(1)
    assert dialog.score_plot.plot.subject_id == candidates.current_candidate().subject_id
    # Blind review hides scores, so it hides the plot too.
    candidates.model.set_blind(True)
    assert dialog.score_plot.plot is None and "blind review" in dialog.score_plot.message


@pytest.fixture
def frame_setup(tmp_path: Path, qtbot, engine, photo_paths, shared_faces):
    """A face chosen in frame 5 of lobby footage (obama2's face), searched in the case."""
    from footage_clips import Appearance, make_clip

    from workstation.footage import search_frame
    from workstation.vision.video import probe_video, read_frame

    folder = enrol_gallery(
        tmp_path / "gallery", engine, photo_paths, shared_extras(shared_faces, 2)
    )
    clip = tmp_path / "lobby.mp4"
    make_clip(engine, clip, [Appearance(photo_paths["obama2"], 0.0, 2.0, 40, 60, 60)], 2.0)
    video = probe_video(clip)
    with open_as(folder, "examiner1") as gallery:
        search_frame(gallery, engine, video, 5, read_frame(video, 5), CASE.case_id, CASE.purpose)
    yield from _case_searches(qtbot, folder, engine, video)


def test_a_footage_search_compares_against_its_own_frame(qtbot, frame_setup) -> None:
    """A search of a face in a video frame, reopened later: Compare reads that frame again from
    the video (it was refused as a missing photo). With another frame of the same video open
    (it carries the same video hash; the face has moved 60 px a second), Compare still shows
    the frame searched."""
    from workstation.gui.compare_view import probe_side
    from workstation.gui.imaging import bgr_to_qimage
    from workstation.vision.video import frame_image, read_frame

    context, candidates, video = frame_setup
    search = candidates.current_search
    assert search.probe.frame["frame_index"] == 5
    dialog = open_dialog(qtbot, context, candidates, None)
    assert "Candidate 1 of" in dialog.header.text()
    assert metadata(dialog, "Source file", 0) == f"{video.path}#frame=5"
    assert "(the video's; frame 5 at" in metadata(dialog, "SHA-256", 0)
    assert "modified" in metadata(dialog, "Date", 0)

    searched = probe_side(search, None).photo
    other = frame_image(video, 15, read_frame(video, 15))
    assert (
        probe_side(search, other).photo
        == searched
        != probe_side(search, None).photo.copy(0, 0, 9, 9)
    )

    assert searched != bgr_to_qimage(other.bgr)  # the frames differ: the check means something
