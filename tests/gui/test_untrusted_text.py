"""Text people typed (subject names and ids, case numbers, purposes, examiner names, notes, file
names) is shown as text in every panel, never as markup: a subject named
"<b>CONFIRMED MATCH</b>" shows its tags, and "<s></s>bobzilla" does not shrink to "bobzilla".

The check reads what Qt would draw: a label's text through its text format (rich text rendered
to plain text by QTextDocument), tooltips and item-view tooltips through Qt's own rich-text test
(Qt.mightBeRichText), and the cells of every item view.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from examiners import open_as
from PySide6.QtCore import QAbstractItemModel, QModelIndex, Qt
from PySide6.QtGui import Qt as GuiQt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QAbstractItemView, QApplication, QLabel, QWidget

from tests.footage_clips import make_clip
from tests.gui.analyst_support import WAIT_MS, main_window
from workstation.gallery.decisions import record_decision
from workstation.gallery.enroll import EnrollItem, enroll
from workstation.gallery.search import ProbeInfo, search_face
from workstation.gui.audit_viewer import AuditViewerWidget
from workstation.gui.compare_view import CompareDialog
from workstation.gui.context import CaseInfo
from workstation.gui.duplicates_page import DuplicatesWidget, MergeSubjectsDialog
from workstation.gui.footage_panel import FootagePanelWidget
from workstation.gui.gallery_manager import DeleteSubjectDialog, GalleryManagerWidget
from workstation.gui.main_window import MainWindowWidget
from workstation.gui.text import escaped, plain_label, tooltip
from workstation.progress import drain
from workstation.vision.images import load_image

NAME_BOLD = "<b>CONFIRMED MATCH</b>"
NAME_STRUCK = "<s></s>bobzilla"
SUBJECT_ID = "<i>P-77</i>"
EXAMINER = "<u>det.mallory</u> & co"
SECOND_EXAMINER = "<b>examiner2</b>"
CASE = CaseInfo("<u>2026-0099</u>", "<s>routine</s> <b>URGENT: ARREST NOW</b>")
NOTE = "<h1>match certain</h1>"
PHOTO_NAME = "<b>mugshot<b>.jpg"  # file names cannot hold "/"
ATTRIBUTE = "<a href='x'>warrant 7</a>"
# What each hostile string shrinks to when taken as markup.
SHRUNK = {
    NAME_BOLD: "CONFIRMED MATCH",
    NAME_STRUCK: "bobzilla",
    SUBJECT_ID: "P-77",
    EXAMINER: "det.mallory",
    SECOND_EXAMINER: "examiner2",
    CASE.case_id: "2026-0099",
    CASE.purpose: "URGENT: ARREST NOW",
    NOTE: "match certain",
    PHOTO_NAME: "mugshot",
    ATTRIBUTE: "warrant 7",
}


def rendered(text: str, text_format: Qt.TextFormat = Qt.TextFormat.AutoText) -> str:
    """What Qt draws for `text` in a label (or tooltip) of this format, as plain text."""
    rich = text_format == Qt.TextFormat.RichText or (
        text_format == Qt.TextFormat.AutoText and GuiQt.mightBeRichText(text)
    )
    if not rich:
        return text
    document = QTextDocument()
    document.setHtml(text)
    return document.toPlainText()


def _model_texts(model: QAbstractItemModel) -> Iterator[tuple[str, str]]:
    """Cells and item tooltips of a list or table model (the app has no tree views)."""
    try:
        columns = model.columnCount(QModelIndex())
    except TypeError:  # QAbstractListModel keeps columnCount private: one column
        columns = 1
    for row in range(model.rowCount(QModelIndex())):
        for column in range(columns):
            index = model.index(row, column, QModelIndex())
            display = index.data(Qt.ItemDataRole.DisplayRole)
            if isinstance(display, str):  # item delegates draw DisplayRole as plain text
                yield "cell", display
            tip = index.data(Qt.ItemDataRole.ToolTipRole)
            if isinstance(tip, str):
                yield "item tooltip", rendered(tip)


def shown_texts(*roots: QWidget) -> list[tuple[str, str]]:
    """(where, what the user sees) for every label, tooltip and item-view cell under roots."""
    texts: list[tuple[str, str]] = []
    for root in roots:
        for widget in [root, *root.findChildren(QWidget)]:
            name = f"{type(widget).__name__} {widget.objectName()}".strip()
            if isinstance(widget, QLabel) and widget.text():
                texts.append((f"{name} label", rendered(widget.text(), widget.textFormat())))
            if widget.toolTip():
                texts.append((f"{name} tooltip", rendered(widget.toolTip())))
            if isinstance(widget, QAbstractItemView) and widget.model() is not None:
                texts += [(f"{name} {kind}", text) for kind, text in _model_texts(widget.model())]
    return texts


def assert_shown_literally(texts: list[tuple[str, str]], *expected: str) -> None:
    """Every hostile string appears somewhere whole, and nowhere shrunk to its inner text."""
    for where, text in texts:
        for hostile, inner in SHRUNK.items():
            if inner in text:
                assert text.count(inner) == text.count(hostile), (
                    f"{where} shows {inner!r} without its tags: {text!r}"
                )
    everything = "\n".join(text for _, text in texts)
    for hostile in expected:
        assert hostile in everything, f"{hostile!r} is not shown anywhere"


# ---------------------------------------------------------------------- the helpers themselves
def test_helpers_show_markup_as_text(qtbot) -> None:
    label = plain_label(NAME_BOLD)
    qtbot.addWidget(label)
    assert rendered(label.text(), label.textFormat()) == NAME_BOLD
    for hostile in SHRUNK:
        assert rendered(f"<b>Subject:</b> {escaped(hostile)}", Qt.TextFormat.RichText) == (
            f"Subject: {hostile}"
        )
        assert rendered(tooltip(hostile)) == hostile
    assert rendered(tooltip("two\nlines <b>x</b>")) == "two\nlines <b>x</b>"
    assert rendered(tooltip("a & b")) == "a & b"  # not shown as "a &amp; b"
    assert tooltip("") == ""


# ---------------------------------------------------------------------- every panel
@pytest.fixture
def hostile_gallery(tmp_path: Path, engine, photo_paths: dict[str, Path]) -> Path:
    """Names, ids, a file name and an attribute with markup; a search with a marked-up case,
    purpose and note; a decision by an examiner whose name is markup."""
    folder = tmp_path / "gallery"
    photos = tmp_path / "photos"
    photos.mkdir()
    mugshot = Path(shutil.copy(photo_paths["obama"], photos / PHOTO_NAME))
    items = [
        EnrollItem("S-100", mugshot, "test", NAME_BOLD, {"booking": ATTRIBUTE}),
        EnrollItem("S-207", photo_paths["obama2"], "test", NAME_STRUCK),
        EnrollItem(SUBJECT_ID, photo_paths["biden"], "test", None),
    ]
    with open_as(folder, EXAMINER) as gallery:
        assert drain(enroll(gallery, engine, items)).enrolled == 3
        image = load_image(photo_paths["obama2"])
        face = engine.analyze(image.bgr)[0]
        result = search_face(
            gallery, face, ProbeInfo.from_image(image), CASE.case_id, CASE.purpose, note=NOTE
        )
    with open_as(folder, SECOND_EXAMINER) as gallery:
        record_decision(gallery, result.search_id, "S-100", "possible_lead", NOTE)
    return folder


@pytest.fixture
def window(hostile_gallery: Path, qtbot, engine):
    yield from main_window(qtbot, hostile_gallery, engine, user=EXAMINER, case=CASE)


def _tab(window: MainWindowWidget, kind: type) -> QWidget:
    for number in range(window.tabs.count()):
        widget = window.tabs.widget(number)
        if isinstance(widget, kind):
            return widget
    raise AssertionError(f"no {kind.__name__} tab")


def test_search_page_case_bar_decisions_and_compare(qtbot, window) -> None:
    page = window.search_page
    candidates = page.candidates
    with qtbot.waitSignal(candidates.searches_loaded, timeout=WAIT_MS):
        candidates.reload()
    qtbot.waitUntil(lambda: candidates.model.rowCount() == 3, timeout=WAIT_MS)
    row = candidates.model.row_of("S-100")
    candidates.select_candidate_row(row)
    decision_panel = page.decisions
    label = decision_panel.target_label
    qtbot.waitUntil(lambda: "S-100" in label.text(), timeout=WAIT_MS)
    target = rendered(label.text(), label.textFormat())
    assert f"subject S-100 ({NAME_BOLD})" in target
    assert f"You are recording as {EXAMINER}." in target
    bar = window.case_bar
    assert rendered(bar.case_label.text(), bar.case_label.textFormat()) == (f"Case: {CASE.case_id}")
    assert rendered(bar.purpose_label.text(), bar.purpose_label.textFormat()) == (
        f"Purpose: {CASE.purpose}"
    )
    # The name registered for the examiner's key, with their roles.
    assert rendered(bar.user_label.text(), bar.user_label.textFormat()) == (
        f"Examiner: {EXAMINER} (administrator, analyst, enroller, reviewer)"
    )
    assert_shown_literally(
        shown_texts(window),
        NAME_BOLD,
        NAME_STRUCK,
        SUBJECT_ID,
        EXAMINER,
        SECOND_EXAMINER,
        CASE.case_id,
        CASE.purpose,
        NOTE,
    )

    dialog = CompareDialog(window.context, candidates, None, window)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.candidate_shown, timeout=WAIT_MS):
        dialog.show()
    header = rendered(dialog.header.text(), dialog.header.textFormat())
    assert f"S-100 ({NAME_BOLD})" in header
    assert_shown_literally(shown_texts(dialog), NAME_BOLD, PHOTO_NAME)


def test_gallery_manager_and_its_delete_dialog(qtbot, window) -> None:
    manager = _tab(window, GalleryManagerWidget)
    manager.reload_subjects()
    qtbot.waitUntil(lambda: manager.subjects_model.rowCount() == 3, timeout=WAIT_MS)
    manager.subjects_view.setCurrentIndex(
        manager.subjects_model.index(manager.subjects_model.row_of("S-100"), 0)
    )
    qtbot.waitUntil(lambda: manager.faces_model.rowCount() == 1, timeout=WAIT_MS)
    manager.faces_view.setCurrentIndex(manager.faces_model.index(0, 0))
    title = rendered(manager.subject_title.text(), manager.subject_title.textFormat())
    assert title.startswith(f"S-100 — {NAME_BOLD}\n") and f"booking: {ATTRIBUTE}" in title
    assert_shown_literally(shown_texts(manager), NAME_BOLD, NAME_STRUCK, SUBJECT_ID, ATTRIBUTE)

    subject = manager.subjects_model.index(manager.subjects_model.row_of("S-100"), 0).data(
        manager.subjects_model.SubjectRole
    )
    dialog = DeleteSubjectDialog(subject, window)
    qtbot.addWidget(dialog)
    assert_shown_literally(shown_texts(dialog), NAME_BOLD)


def test_audit_viewer(qtbot, window) -> None:
    viewer = _tab(window, AuditViewerWidget)
    window.tabs.setCurrentWidget(viewer)  # the log is read when its tab is in view
    qtbot.waitUntil(lambda: viewer.model.rowCount() >= 5, timeout=WAIT_MS)
    viewer.case_combo.setCurrentIndex(viewer.case_combo.findData(CASE.case_id))
    # The case's search and decision, the Search tab's reading of the case's searches, and
    # the reading of the whole log just recorded.
    qtbot.waitUntil(lambda: not viewer.loading and viewer.model.rowCount() == 4, timeout=WAIT_MS)
    events = viewer.model.events()
    assert [e.details.get("read") for e in events if e.action == "view"] == [
        "case_searches",
        "audit_log",
    ]
    assert rendered(viewer.count_label.text(), viewer.count_label.textFormat()) == (
        f"4 events for case {CASE.case_id}"
    )
    assert_shown_literally(
        shown_texts(viewer), EXAMINER, SECOND_EXAMINER, CASE.case_id, CASE.purpose, NOTE
    )


def test_duplicates_page_and_merge_dialog(qtbot, window) -> None:
    page = _tab(window, DuplicatesWidget)
    page.scan()
    qtbot.waitUntil(lambda: not page.scanning and page.last_scan is not None, timeout=WAIT_MS)
    assert page.model.rowCount() == 1  # the two Obama photos
    assert_shown_literally(shown_texts(page), NAME_BOLD, NAME_STRUCK, PHOTO_NAME)
    dialog = MergeSubjectsDialog(page.model.rows()[0], None, window)
    qtbot.addWidget(dialog)
    assert_shown_literally(shown_texts(dialog), NAME_BOLD, NAME_STRUCK)


def test_footage_panel_file_names(qtbot, window, engine, tmp_path: Path) -> None:
    panel = _tab(window, FootagePanelWidget)
    clip = tmp_path / "<b>camera 3<b>.mp4"
    make_clip(engine, clip, [], seconds=1.0)
    with qtbot.waitSignal(panel.video_opened, timeout=WAIT_MS):
        panel.open_video(clip)
    texts = [text for _, text in shown_texts(panel)]
    assert any(text.startswith("<b>camera 3<b>.mp4 — ") for text in texts)
    assert any(str(clip) in text for text in texts)  # the file label's tooltip
    assert not any("camera 3" in text and "<b>camera 3<b>" not in text for text in texts)
    broken = tmp_path / "<s>carjacker.mp4"
    broken.write_text("not a video")
    panel.open_video(broken)
    qtbot.waitUntil(lambda: "carjacker" in panel.status_label.text(), timeout=WAIT_MS)
    texts = [text for _, text in shown_texts(panel)]
    assert any("<s>carjacker.mp4" in text for text in texts)
    assert not any("carjacker" in text and "<s>carjacker" not in text for text in texts)


def test_status_bar_and_message_boxes_are_plain(qtbot, window) -> None:
    from PySide6.QtWidgets import QMessageBox

    window.context.status_message.emit(f"Case {CASE.case_id}: {CASE.purpose}")
    assert window.statusBar().currentMessage() == f"Case {CASE.case_id}: {CASE.purpose}"
    boxes: list[QMessageBox] = []

    def close_box() -> None:
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, QMessageBox) and widget.isVisible():
                boxes.append(widget)
                widget.accept()

    from PySide6.QtCore import QTimer

    QTimer.singleShot(200, close_box)
    window.show_about()
    (box,) = boxes
    assert EXAMINER in rendered(box.text(), box.textFormat())
