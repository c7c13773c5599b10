"""Gallery manager: enrol real photos with real models, browse, search as you type, delete."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon

from workstation.audit.log import list_events, verify_chain
from workstation.gallery.enroll import FAILED, SKIPPED, EnrollReport
from workstation.gallery.store import Gallery
from workstation.gui.context import AppContext
from workstation.gui.enrol_panel import (
    MODE_MANIFEST,
    MODE_ONE_SUBJECT,
    MODE_SUBFOLDERS,
    EnrolProblemsModel,
    plan_folder,
)
from workstation.gui.face_thumbnails import FaceThumbnailCache
from workstation.gui.gallery_manager import (
    GalleryManagerWidget,
    SubjectFacesModel,
    SubjectListModel,
)

WAIT_MS = 120_000


@pytest.fixture
def context(tmp_path: Path, qtbot):  # type: ignore[no-untyped-def]
    ctx = AppContext(tmp_path / "gallery", user="examiner1")
    yield ctx
    ctx.pool.cancel_all()
    ctx.pool.wait()


@pytest.fixture
def photo_folder(tmp_path: Path, photo_paths: dict[str, Path]) -> Path:
    """Two subjects in sub-folders, plus a text file named like a photo and a plain text file."""
    root = tmp_path / "to_enrol"
    (root / "obama").mkdir(parents=True)
    (root / "biden").mkdir()
    shutil.copy(photo_paths["obama"], root / "obama" / "obama.jpg")
    shutil.copy(photo_paths["obama2"], root / "obama" / "obama2.jpg")
    shutil.copy(photo_paths["biden"], root / "biden" / "biden.jpg")
    (root / "biden" / "notes.jpg").write_text("this is not a photo", encoding="utf-8")
    (root / "biden" / "readme.txt").write_text("case notes", encoding="utf-8")
    return root


def _enrol(
    qtbot, widget: GalleryManagerWidget, mode: int, path: Path, subject: str = ""
) -> EnrollReport:
    enrol = widget.enrol_widget
    enrol.set_mode(mode)
    enrol.path_edit.setText(str(path))
    enrol.subject_edit.setText(subject)
    with qtbot.waitSignal(enrol.enrolment_finished, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(enrol.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not enrol.running and not widget.loading, timeout=WAIT_MS)
    return blocker.args[0]


def _subject_ids(widget: GalleryManagerWidget) -> list[str]:
    return [row.subject.id for row in widget.subjects_model.rows()]


def test_enrol_subfolders_shows_progress_summary_and_failures(
    qtbot, context: AppContext, photo_folder: Path
) -> None:
    widget = GalleryManagerWidget(context)
    qtbot.addWidget(widget)
    enrol = widget.enrol_widget
    seen: list[int] = []
    enrol.progress_bar.valueChanged.connect(seen.append)

    report = _enrol(qtbot, widget, MODE_SUBFOLDERS, photo_folder)

    assert report.enrolled == 3
    # Four photo-named files were attempted, so the bar ran up to 4 through each step.
    assert enrol.progress_bar.maximum() == 4 and enrol.progress_bar.value() == 4
    assert seen[-4:] == [1, 2, 3, 4]
    assert "3 enrolled, 1 skipped, 1 failed" in enrol.summary_label.text()
    problems = {o.path.split("/")[-1]: o for o in enrol.problems_model.outcomes()}
    assert problems["notes.jpg"].status == FAILED
    assert "not an image file" in problems["notes.jpg"].message
    assert problems["readme.txt"].status == SKIPPED
    assert "not a photo file type" in problems["readme.txt"].message
    # The table shows the file and the reason in plain words.
    model = enrol.problems_model
    texts = [
        (
            model.index(r, EnrolProblemsModel.COL_SOURCE).data(),
            model.index(r, EnrolProblemsModel.COL_REASON).data(),
        )
        for r in range(model.rowCount())
    ]
    assert any(src == "biden/notes.jpg" and "not an image" in why for src, why in texts)

    # The subject list refreshed by itself (gallery_changed) with both sub-folder subjects.
    qtbot.waitUntil(lambda: _subject_ids(widget) == ["biden", "obama"], timeout=WAIT_MS)
    assert widget.count_label.text() == "2 subjects"
    with Gallery(context.gallery_dir) as gallery:
        enrols = [e for e in list_events(gallery.conn) if e.action == "enrol"]
        assert {e.details["subject_id"] for e in enrols} == {"obama", "biden"}
        assert len(enrols) == 3
        assert verify_chain(gallery.conn).intact


def test_thumbnails_and_subject_detail(qtbot, context: AppContext, photo_folder: Path) -> None:
    widget = GalleryManagerWidget(context)
    qtbot.addWidget(widget)
    _enrol(qtbot, widget, MODE_SUBFOLDERS, photo_folder)
    qtbot.waitUntil(lambda: _subject_ids(widget) == ["biden", "obama"], timeout=WAIT_MS)

    model = widget.subjects_model
    for row in range(model.rowCount()):
        model.index(row, 0).data(Qt.ItemDataRole.DecorationRole)  # asks for the thumbnails
    first_faces = [r.face for r in model.rows()]
    qtbot.waitUntil(lambda: all(widget.thumbnails.has(f) for f in first_faces), timeout=WAIT_MS)
    icon = model.index(0, 0).data(Qt.ItemDataRole.DecorationRole)
    assert isinstance(icon, QIcon)
    pixmap = icon.pixmap(96, 96)
    assert pixmap.width() == 96
    # A real face crop, not the flat grey placeholder: many distinct colours.
    image = pixmap.toImage()
    colours = {image.pixel(x, y) for x in range(0, 96, 8) for y in range(0, 96, 8)}
    assert len(colours) > 20

    widget.subjects_view.setCurrentIndex(model.index(model.row_of("obama"), 0))
    qtbot.waitUntil(lambda: widget.faces_model.rowCount() == 2, timeout=WAIT_MS)
    assert "obama" in widget.subject_title.text() and "2 face(s)" in widget.subject_title.text()
    face_text = widget.faces_model.index(0, 0).data()
    assert face_text.startswith("face ") and "quality" in face_text
    widget.faces_view.setCurrentIndex(widget.faces_model.index(1, 0))
    assert "SHA-256" in widget.face_details.text() and "obama2.jpg" in widget.face_details.text()


def test_search_as_you_type_filters_subjects(
    qtbot, context: AppContext, photo_folder: Path
) -> None:
    widget = GalleryManagerWidget(context)
    qtbot.addWidget(widget)
    _enrol(qtbot, widget, MODE_SUBFOLDERS, photo_folder)
    qtbot.waitUntil(lambda: _subject_ids(widget) == ["biden", "obama"], timeout=WAIT_MS)

    qtbot.keyClicks(widget.search_edit, "bid")
    qtbot.waitUntil(lambda: _subject_ids(widget) == ["biden"], timeout=WAIT_MS)
    assert widget.count_label.text().startswith("1 of 2 subjects")
    widget.search_edit.clear()
    qtbot.keyClicks(widget.search_edit, "zzz")
    qtbot.waitUntil(lambda: _subject_ids(widget) == [], timeout=WAIT_MS)
    widget.search_edit.clear()
    qtbot.waitUntil(lambda: _subject_ids(widget) == ["biden", "obama"], timeout=WAIT_MS)


def test_delete_needs_a_reason_and_is_audited(
    qtbot, context: AppContext, photo_folder: Path
) -> None:
    widget = GalleryManagerWidget(context)
    qtbot.addWidget(widget)
    _enrol(qtbot, widget, MODE_SUBFOLDERS, photo_folder)
    qtbot.waitUntil(lambda: _subject_ids(widget) == ["biden", "obama"], timeout=WAIT_MS)
    widget.subjects_view.setCurrentIndex(widget.subjects_model.index(0, 0))  # biden
    assert widget.delete_button.isEnabled()

    qtbot.mouseClick(widget.delete_button, Qt.MouseButton.LeftButton)
    dialog = widget.delete_dialog
    assert dialog is not None and dialog.isVisible()
    assert not dialog.ok_button.isEnabled()  # no reason yet
    qtbot.keyClicks(dialog.reason_edit, "   ")
    assert not dialog.ok_button.isEnabled()  # blanks are not a reason
    dialog.reason_edit.clear()
    qtbot.keyClicks(dialog.reason_edit, "enrolled under the wrong case by mistake")
    assert dialog.ok_button.isEnabled()
    with qtbot.waitSignal(context.audit_changed, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: _subject_ids(widget) == ["obama"], timeout=WAIT_MS)
    assert "deleted" in widget.message_label.text()
    with Gallery(context.gallery_dir) as gallery:
        deletes = [e for e in list_events(gallery.conn) if e.action == "delete"]
        assert len(deletes) == 1
        assert deletes[0].details["subject_id"] == "biden"
        assert deletes[0].details["reason"] == "enrolled under the wrong case by mistake"
        assert deletes[0].user == "examiner1"
        assert gallery.subject("biden") is None


def test_cancel_stops_enrolment_and_keeps_what_was_done(
    qtbot, context: AppContext, shared_faces: Path
) -> None:
    widget = GalleryManagerWidget(context)
    qtbot.addWidget(widget)
    enrol = widget.enrol_widget
    enrol.set_mode(MODE_ONE_SUBJECT)
    enrol.path_edit.setText(str(shared_faces))
    enrol.subject_edit.setText("everyone")

    def on_progress_value(done: int) -> None:
        # The first photo is done: the examiner presses Cancel.
        if done >= 1 and enrol.cancel_button.isEnabled():
            qtbot.mouseClick(enrol.cancel_button, Qt.MouseButton.LeftButton)

    enrol.progress_bar.valueChanged.connect(on_progress_value)
    with qtbot.waitSignal(enrol.enrolment_finished, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(enrol.start_button, Qt.MouseButton.LeftButton)
    report: EnrollReport = blocker.args[0]
    qtbot.waitUntil(lambda: not enrol.running, timeout=WAIT_MS)

    total = enrol.progress_bar.maximum()
    assert report.cancelled
    assert total > 100
    attempted = len([o for o in report.outcomes if not o.message.startswith("not a photo")])
    assert 1 <= attempted < total
    assert "cancelled" in enrol.summary_label.text()
    assert enrol.start_button.isEnabled() and not enrol.cancel_button.isEnabled()
    with Gallery(context.gallery_dir) as gallery:
        assert gallery.face_count() == report.enrolled
        assert verify_chain(gallery.conn).intact


def test_manifest_with_bad_rows_names_each_row(
    qtbot, context: AppContext, tmp_path: Path, photo_paths: dict[str, Path]
) -> None:
    manifest = tmp_path / "people.csv"
    manifest.write_text(
        "subject_id,image,name\n"
        f"P1,{photo_paths['obama']},Person One\n"
        f",{photo_paths['biden']},nobody\n"
        "P2,missing.jpg,Person Two\n",
        encoding="utf-8",
    )
    widget = GalleryManagerWidget(context)
    qtbot.addWidget(widget)
    report = _enrol(qtbot, widget, MODE_MANIFEST, manifest)
    assert report.enrolled == 1
    reasons = {o.source: o.message for o in widget.enrol_widget.problems_model.outcomes()}
    assert reasons["people.csv line 3"] == "subject_id is empty"
    assert "file not found" in reasons["people.csv line 4"]
    qtbot.waitUntil(lambda: _subject_ids(widget) == ["P1"], timeout=WAIT_MS)
    assert "Person One" in widget.subjects_model.index(0, 0).data()


def test_enrol_errors_are_plain_words(qtbot, context: AppContext, tmp_path: Path) -> None:
    widget = GalleryManagerWidget(context)
    qtbot.addWidget(widget)
    enrol = widget.enrol_widget
    enrol.set_mode(MODE_ONE_SUBJECT)
    enrol.path_edit.setText(str(tmp_path / "photos"))
    qtbot.mouseClick(enrol.start_button, Qt.MouseButton.LeftButton)
    assert "subject ID" in enrol.status_label.text()  # asked before anything runs
    enrol.subject_edit.setText("S1")
    qtbot.mouseClick(enrol.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not enrol.running, timeout=WAIT_MS)
    assert "folder not found" in enrol.status_label.text()
    assert str(tmp_path / "photos") in enrol.status_label.text()
    assert "Traceback" not in enrol.status_label.text()


def test_plan_folder_lists_what_is_left_out(photo_folder: Path) -> None:
    items, left_out = plan_folder(photo_folder, None)
    assert sorted((i.subject_id, i.image.name) for i in items) == [
        ("biden", "biden.jpg"),
        ("biden", "notes.jpg"),
        ("obama", "obama.jpg"),
        ("obama", "obama2.jpg"),
    ]
    assert [o.path.split("/")[-1] for o in left_out] == ["readme.txt"]
    (photo_folder / "loose.jpg").write_bytes(b"x")
    _, left_out = plan_folder(photo_folder, None)
    assert any("not inside a sub-folder" in o.message for o in left_out)


def test_models_pass_qtmodeltester(
    qtbot, qtmodeltester, context: AppContext, photo_folder: Path
) -> None:
    widget = GalleryManagerWidget(context)
    qtbot.addWidget(widget)
    _enrol(qtbot, widget, MODE_SUBFOLDERS, photo_folder)
    qtbot.waitUntil(lambda: _subject_ids(widget) == ["biden", "obama"], timeout=WAIT_MS)
    widget.subjects_view.setCurrentIndex(widget.subjects_model.index(1, 0))
    qtbot.waitUntil(lambda: widget.faces_model.rowCount() == 2, timeout=WAIT_MS)
    # Check models that outlive the widget (pytest-qt closes widgets before the tester's cleanup)
    # holding the same rows the widget shows, thumbnails included.
    thumbnails = FaceThumbnailCache(context)
    subjects = SubjectListModel(thumbnails)
    subjects.set_rows(widget.subjects_model.rows())
    faces = SubjectFacesModel(thumbnails)
    faces.set_rows(widget.faces_model.rows())
    problems = EnrolProblemsModel()
    problems.set_outcomes(widget.enrol_widget.problems_model.outcomes())
    assert problems.rowCount() == 2
    for model in (subjects, faces, problems):
        qtmodeltester.check(model, force_py=True)
    qtbot.waitUntil(lambda: not thumbnails.busy, timeout=WAIT_MS)
    qtmodeltester.check(subjects, force_py=True)  # again, after thumbnails changed the data
