"""Gallery manager: enrol real photos with real models, browse, search as you type, delete."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QIcon
from synthetic_subjects import add_synthetic_subjects, faces_for

from workstation.gallery.admin import delete_subject
from workstation.gallery.enroll import FAILED, SKIPPED, EnrollReport
from workstation.gallery.store import Gallery
from workstation.gui.context import AppContext, CaseInfo
from workstation.gui.enrol_panel import (
    MODE_MANIFEST,
    MODE_ONE_SUBJECT,
    MODE_SUBFOLDERS,
    EnrolProblemsModel,
    plan_folder,
)
from workstation.gui.face_thumbnails import FaceThumbnailCache
from workstation.gui.gallery_manager import GalleryManagerWidget
from workstation.gui.subject_models import PAGE_SIZE, SubjectFacesModel, SubjectListModel

WAIT_MS = 120_000


@pytest.fixture
def context(tmp_path: Path, qtbot):
    ctx = AppContext(tmp_path / "gallery", user="examiner1")
    ctx.set_case(CaseInfo("C-G", "gallery maintenance"))  # browsing is recorded against it
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
    widget.show()  # the list is read when the tab is in view
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
    context.pool.wait()  # every read of the list recorded before the chain is checked
    with Gallery(context.gallery_dir) as gallery:
        enrols = [e for e in gallery.audit_events() if e.action == "enrol"]
        assert {e.details["subject_id"] for e in enrols} == {"obama", "biden"}
        assert len(enrols) == 3
        assert gallery.verify_audit().intact


def test_thumbnails_and_subject_detail(qtbot, context: AppContext, photo_folder: Path) -> None:
    widget = GalleryManagerWidget(context)
    qtbot.addWidget(widget)
    widget.show()  # the list is read when the tab is in view
    _enrol(qtbot, widget, MODE_SUBFOLDERS, photo_folder)
    qtbot.waitUntil(lambda: _subject_ids(widget) == ["biden", "obama"], timeout=WAIT_MS)

    model = widget.subjects_model
    for row in range(model.rowCount()):
        model.index(row, 0).data(Qt.ItemDataRole.DecorationRole)  # asks for the thumbnails
    first_faces = [r.face_id for r in model.rows()]
    with Gallery(context.gallery_dir) as gallery:
        assert first_faces == [gallery.faces_of(s)[0].id for s in ("biden", "obama")]
    qtbot.waitUntil(
        lambda: all(widget.thumbnails.has_face_id(f) for f in first_faces), timeout=WAIT_MS
    )
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
    widget.show()  # the list is read when the tab is in view
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
    widget.show()  # the list is read when the tab is in view
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
        deletes = [e for e in gallery.audit_events() if e.action == "delete"]
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
    widget.show()  # the list is read when the tab is in view
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
    # The list re-read after the enrolment records its page: let that act finish before the
    # chain is checked (a head witnessed between verify's read of the chain and of the witness
    # would look like a rollback).
    context.pool.wait()
    with Gallery(context.gallery_dir) as gallery:
        assert gallery.face_count() == report.enrolled
        assert gallery.verify_audit().intact


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
    widget.show()  # the list is read when the tab is in view
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
    widget.show()  # the list is read when the tab is in view
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
    widget.show()  # the list is read when the tab is in view
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


# ---------------------------------------------------------------------- a large gallery, paged
MANY = 1_500  # subjects: several pages


@pytest.fixture
def many_subjects(context: AppContext, photo_paths: dict[str, Path]) -> AppContext:
    """A gallery of MANY synthetic subjects (SQL inserts); their faces show the Obama photo."""
    with Gallery(context.gallery_dir) as gallery:
        add_synthetic_subjects(gallery, MANY, photo_paths["obama"])
    return context


def _ids(numbers: range) -> list[str]:
    return [f"SYN-{i:05d}" for i in numbers]


def _loaded_widget(qtbot, context: AppContext) -> GalleryManagerWidget:
    widget = GalleryManagerWidget(context)
    qtbot.addWidget(widget)
    widget.reload_subjects()  # as the tab does when it comes into view (never painted here)
    qtbot.waitUntil(lambda: widget.subjects_model.rowCount() > 0, timeout=WAIT_MS)
    return widget


def _fetch_all(qtbot, model: SubjectListModel) -> None:
    """Ask for pages, as a view scrolling to the end would, until there are no more."""
    while True:
        qtbot.waitUntil(lambda: not model.loading, timeout=WAIT_MS)
        if not model.canFetchMore(QModelIndex()):
            return
        model.fetchMore(QModelIndex())


def test_large_gallery_shows_a_first_page_then_fetches_more(
    qtbot, many_subjects: AppContext
) -> None:
    widget = _loaded_widget(qtbot, many_subjects)
    model = widget.subjects_model
    assert _subject_ids(widget) == _ids(range(PAGE_SIZE))
    assert widget.count_label.text() == "1,500 subjects"
    assert model.total == MANY and model.canFetchMore(QModelIndex())
    # Each row knows its first face (for the thumbnail) and its face count, from one query.
    with Gallery(many_subjects.gallery_dir) as gallery:
        for row in model.rows()[:20]:
            faces = gallery.faces_of(row.subject.id)
            assert row.face_id == (faces[0].id if faces else None)
            assert row.subject.face_count == len(faces)
    assert "1 face\n" not in model.index(0, 0).data() and model.index(0, 0).data().endswith(
        f"{faces_for(0)} faces"
    )

    inserted: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _parent, first, last: inserted.append((first, last)))
    model.fetchMore(QModelIndex())
    qtbot.waitUntil(lambda: model.rowCount() == 2 * PAGE_SIZE, timeout=WAIT_MS)
    assert inserted == [(PAGE_SIZE, 2 * PAGE_SIZE - 1)]  # appended, not a reset
    assert _subject_ids(widget) == _ids(range(2 * PAGE_SIZE))

    _fetch_all(qtbot, model)
    assert _subject_ids(widget) == _ids(range(MANY))
    assert not model.canFetchMore(QModelIndex())


def test_scrolling_the_view_to_the_end_loads_the_next_page(
    qtbot, many_subjects: AppContext
) -> None:
    widget = _loaded_widget(qtbot, many_subjects)
    widget.resize(900, 500)
    widget.show()
    qtbot.waitExposed(widget)
    qtbot.waitUntil(lambda: not widget.loading, timeout=WAIT_MS)
    shown = widget.subjects_model.rowCount()
    assert shown < MANY
    widget.subjects_view.scrollToBottom()
    qtbot.waitUntil(lambda: widget.subjects_model.rowCount() > shown, timeout=WAIT_MS)
    assert _subject_ids(widget) == _ids(range(widget.subjects_model.rowCount()))


def test_search_filters_across_pages(qtbot, many_subjects: AppContext) -> None:
    widget = _loaded_widget(qtbot, many_subjects)
    widget.show()  # in view: searches, changes and cases reload it
    qtbot.keyClicks(widget.search_edit, "moreno")
    morenos = _ids(range(0, MANY, 3))  # every third subject is an "Ana Moreno"
    qtbot.waitUntil(lambda: _subject_ids(widget) == morenos[:PAGE_SIZE], timeout=WAIT_MS)
    assert widget.count_label.text() == "500 of 1,500 subjects match “moreno”"
    _fetch_all(qtbot, widget.subjects_model)
    assert _subject_ids(widget) == morenos
    assert all("Ana Moreno" in row.subject.name for row in widget.subjects_model.rows())

    widget.search_edit.clear()
    qtbot.keyClicks(widget.search_edit, "SYN-0142")
    qtbot.waitUntil(lambda: _subject_ids(widget) == _ids(range(1420, 1430)), timeout=WAIT_MS)
    assert not widget.subjects_model.canFetchMore(QModelIndex())
    assert widget.count_label.text().startswith("10 of 1,500 subjects")


def test_answers_to_an_older_search_are_dropped(qtbot, many_subjects: AppContext) -> None:
    widget = _loaded_widget(qtbot, many_subjects)
    model = widget.subjects_model
    qtbot.waitUntil(lambda: not model.loading, timeout=WAIT_MS)
    changes: list[str] = []
    model.rowsInserted.connect(lambda *_: changes.append("insert"))
    model.modelReset.connect(lambda: changes.append("reset"))

    model.fetchMore(QModelIndex())  # a page for "all subjects" is on its way...
    model.load("SYN-0001")  # ...and two newer searches replace it
    model.load("SYN-014")
    qtbot.waitUntil(lambda: not model.loading, timeout=WAIT_MS)
    many_subjects.pool.wait()
    qtbot.wait(50)  # let any queued (stale) answers arrive
    assert _subject_ids(widget) == _ids(range(1400, 1500))
    assert changes == ["reset"]  # only the newest answer changed the model
    assert model.query == "SYN-014" and model.total == 100


def test_subject_thumbnails_come_from_the_first_face_id(qtbot, many_subjects: AppContext) -> None:
    widget = _loaded_widget(qtbot, many_subjects)
    model = widget.subjects_model
    assert model.rows()[3].face_id is None  # subject 3 has no face: no thumbnail, no lookup
    assert model.index(3, 0).data(Qt.ItemDataRole.DecorationRole) is None
    for row in range(3):
        model.index(row, 0).data(Qt.ItemDataRole.DecorationRole)
    face_ids = [r.face_id for r in model.rows()[:3]]
    qtbot.waitUntil(
        lambda: all(widget.thumbnails.has_face_id(f) for f in face_ids), timeout=WAIT_MS
    )
    qtbot.waitUntil(lambda: not widget.thumbnails.busy, timeout=WAIT_MS)
    image = model.index(0, 0).data(Qt.ItemDataRole.DecorationRole).pixmap(96, 96).toImage()
    colours = {image.pixel(x, y) for x in range(0, 96, 8) for y in range(0, 96, 8)}
    assert len(colours) > 20  # a crop of the real photo, not the grey placeholder
    # Only the faces asked for were looked up.
    assert not any(widget.thumbnails.has_face_id(r.face_id) for r in model.rows()[4:] if r.face_id)


def test_gallery_change_keeps_the_loaded_rows_and_selection(
    qtbot, many_subjects: AppContext
) -> None:
    widget = _loaded_widget(qtbot, many_subjects)
    widget.show()  # in view: searches, changes and cases reload it
    model = widget.subjects_model
    model.fetchMore(QModelIndex())
    qtbot.waitUntil(lambda: model.rowCount() == 2 * PAGE_SIZE, timeout=WAIT_MS)
    widget.subjects_view.setCurrentIndex(model.index(350, 0))
    assert "SYN-00350" in widget.subject_title.text()

    with Gallery(many_subjects.gallery_dir) as gallery:
        delete_subject(gallery, "SYN-00010", "test: enrolled twice")
    reloaded: list[bool] = []
    model.loaded.connect(lambda: reloaded.append(True))
    many_subjects.gallery_changed.emit()
    qtbot.waitUntil(lambda: bool(reloaded), timeout=WAIT_MS)
    assert model.rowCount() == 2 * PAGE_SIZE  # as many rows as before, one subject fewer
    assert "SYN-00010" not in _subject_ids(widget)
    assert _subject_ids(widget)[-1] == "SYN-00400"
    assert widget.subjects_view.currentIndex().data(SubjectListModel.SubjectIdRole) == "SYN-00350"
    assert widget.count_label.text() == "1,499 subjects"


def test_paged_model_passes_qtmodeltester(qtbot, qtmodeltester, many_subjects: AppContext) -> None:
    thumbnails = FaceThumbnailCache(many_subjects)
    model = SubjectListModel(thumbnails, context=many_subjects)
    with qtbot.waitSignal(model.loaded, timeout=WAIT_MS):
        model.load("moreno")
    qtmodeltester.check(model, force_py=True)  # also calls fetchMore: the next page arrives
    qtbot.waitUntil(lambda: model.rowCount() == 2 * PAGE_SIZE, timeout=WAIT_MS)
    _fetch_all(qtbot, model)  # each page inserted is checked too
    assert model.rowCount() == 500
    for row in range(0, 500, 50):
        model.index(row, 0).data(Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(lambda: not thumbnails.busy, timeout=WAIT_MS)
    with qtbot.waitSignal(model.loaded, timeout=WAIT_MS):
        model.load(None)  # a reset, checked as well
    assert model.rowCount() == PAGE_SIZE


# ---------------------------------------------------------------------- reads are recorded
def _views(context: AppContext, read: str) -> list:
    with Gallery(context.gallery_dir, read_only=True) as gallery:
        return [
            e
            for e in gallery.audit_events()
            if e.action == "view" and e.details.get("read") == read
        ]


def test_browsing_records_one_event_per_page_and_per_subject(
    qtbot, many_subjects: AppContext
) -> None:
    widget = _loaded_widget(qtbot, many_subjects)
    model = widget.subjects_model
    qtbot.waitUntil(lambda: not model.loading, timeout=WAIT_MS)
    (first,) = _views(many_subjects, "subject_list")
    assert (first.case_id, first.purpose, first.user) == ("C-G", "gallery maintenance", "examiner1")
    assert first.details["offset"] == 0 and first.details["filtered"] is False
    assert first.details["subjects"]["ids"] == _ids(range(PAGE_SIZE))
    # Painting thumbnails (rows scrolled into view) records nothing more.
    for row in range(40):
        model.index(row, 0).data(Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(lambda: not widget.thumbnails.busy, timeout=WAIT_MS)
    assert len(_views(many_subjects, "subject_list")) == 1
    model.fetchMore(QModelIndex())
    qtbot.waitUntil(lambda: model.rowCount() == 2 * PAGE_SIZE, timeout=WAIT_MS)
    pages = _views(many_subjects, "subject_list")
    assert [e.details["offset"] for e in pages] == [0, PAGE_SIZE]
    assert pages[1].details["subjects"]["ids"] == _ids(range(PAGE_SIZE, 2 * PAGE_SIZE))

    # A subject's photos: one event when chosen; back and forth records no repeat.
    for row in (5, 6, 5, 6):
        widget.subjects_view.setCurrentIndex(model.index(row, 0))
        qtbot.waitUntil(lambda: not many_subjects.pool.busy, timeout=WAIT_MS)
    photos = _views(many_subjects, "subject_photos")
    assert [e.details["subject_id"] for e in photos] == ["SYN-00005", "SYN-00006"]
    with Gallery(many_subjects.gallery_dir, read_only=True) as gallery:
        face_ids = [f.id for f in gallery.faces_of("SYN-00005")]
    assert photos[0].details["face_ids"] == {"count": len(face_ids), "ids": face_ids}
    assert photos[0].case_id == "C-G"


def test_without_a_case_the_gallery_shows_nothing_and_asks_for_one(
    qtbot, many_subjects: AppContext
) -> None:
    widget = _loaded_widget(qtbot, many_subjects)
    widget.show()  # in view: searches, changes and cases reload it
    qtbot.waitUntil(lambda: not widget.loading, timeout=WAIT_MS)
    before = len(_views(many_subjects, "subject_list"))
    many_subjects.set_case(None)  # the examiner closes the case
    assert widget.subjects_model.rowCount() == 0 and widget.faces_model.rowCount() == 0
    assert not widget.case_button.isHidden()
    assert "Set a case to browse the gallery" in widget.count_label.text()
    asked: list[int] = []
    many_subjects.case_asker = lambda: asked.append(1)
    qtbot.mouseClick(widget.case_button, Qt.MouseButton.LeftButton)
    assert asked == [1]  # the case dialog is asked for
    assert len(_views(many_subjects, "subject_list")) == before  # nothing read, nothing logged
    # Another case: the list is read (and recorded) again, against it.
    many_subjects.set_case(CaseInfo("C-H", "duplicate review"))
    qtbot.waitUntil(lambda: widget.subjects_model.rowCount() == PAGE_SIZE, timeout=WAIT_MS)
    assert widget.case_button.isHidden()
    assert _views(many_subjects, "subject_list")[-1].case_id == "C-H"
