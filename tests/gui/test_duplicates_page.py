"""Duplicates page: a person enrolled twice is found on real photos and merged with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from examiners import open_as
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap

from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.store import Gallery
from workstation.gui.context import AppContext, CaseInfo
from workstation.gui.duplicates_page import DuplicatePairsModel, DuplicatesWidget
from workstation.gui.face_thumbnails import FaceThumbnailCache
from workstation.progress import drain

WAIT_MS = 60_000


@pytest.fixture
def gallery_dir(tmp_path: Path, engine, photo_paths: dict[str, Path]) -> Path:
    """Obama enrolled twice under different ids (two different photos), and Biden once."""
    folder = tmp_path / "gallery"
    with open_as(folder, "examiner1") as gallery:
        items = items_for_subject("S-100", [photo_paths["obama"]], "Barack Obama")
        items += items_for_subject("S-207", [photo_paths["obama2"]], "B. H. Obama")
        items += items_for_subject("S-300", [photo_paths["biden"]], "Joe Biden")
        assert drain(enroll(gallery, engine, items)).enrolled == 3
    return folder


@pytest.fixture
def context(gallery_dir: Path, qtbot):
    ctx = AppContext(gallery_dir, user="examiner1")
    ctx.set_case(CaseInfo("C-DUP", "gallery maintenance"))  # the list is recorded against it
    yield ctx
    ctx.pool.cancel_all()
    ctx.pool.wait()


def _scan(qtbot, widget: DuplicatesWidget) -> None:
    qtbot.mouseClick(widget.scan_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not widget.scanning, timeout=WAIT_MS)


def test_finds_the_person_enrolled_twice_with_faces_and_score(qtbot, context: AppContext) -> None:
    widget = DuplicatesWidget(context)
    qtbot.addWidget(widget)
    _scan(qtbot, widget)
    model = widget.model
    assert model.rowCount() == 1  # Biden matches neither Obama record
    row = model.rows()[0]
    assert {row.pair.subject_a, row.pair.subject_b} == {"S-100", "S-207"}
    assert row.pair.score >= widget.last_scan.threshold >= 0.5
    assert model.index(0, DuplicatePairsModel.COL_SCORE).data() == f"{row.pair.score:.3f}"
    assert "Barack Obama" in model.index(0, DuplicatePairsModel.COL_SUBJECT_A).data()
    assert model.index(0, DuplicatePairsModel.COL_FMR).data()  # says how rare this score is
    assert "1 possible duplicate pair at or above" in widget.status_label.text()
    # Both faces are shown as thumbnails once the worker has cropped them.
    for col in (DuplicatePairsModel.COL_SUBJECT_A, DuplicatePairsModel.COL_SUBJECT_B):
        model.index(0, col).data(Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(
        lambda: widget.thumbnails.has(row.face_a) and widget.thumbnails.has(row.face_b),
        timeout=WAIT_MS,
    )
    pixmap = model.index(0, DuplicatePairsModel.COL_SUBJECT_B).data(Qt.ItemDataRole.DecorationRole)
    assert isinstance(pixmap, QPixmap) and not pixmap.isNull()


def test_a_strict_custom_threshold_finds_nothing(qtbot, context: AppContext) -> None:
    widget = DuplicatesWidget(context)
    qtbot.addWidget(widget)
    widget.custom_threshold_check.setChecked(True)
    widget.threshold_spin.setValue(0.99)
    _scan(qtbot, widget)
    assert widget.model.rowCount() == 0
    assert "0 possible duplicate pairs at or above 0.990 (set by the examiner)" in (
        widget.status_label.text()
    )


def test_merge_needs_a_reason_and_is_audited(qtbot, context: AppContext, gallery_dir: Path) -> None:
    widget = DuplicatesWidget(context)
    qtbot.addWidget(widget)
    _scan(qtbot, widget)
    widget.table.selectRow(0)
    assert widget.merge_button.isEnabled()
    qtbot.mouseClick(widget.merge_button, Qt.MouseButton.LeftButton)
    dialog = widget.merge_dialog
    assert dialog is not None and dialog.isVisible()
    assert not dialog.ok_button.isEnabled()
    dialog.keep_b_radio.setChecked(True)
    keep, merge = dialog.keep_and_merge
    qtbot.keyClicks(dialog.reason_edit, "same person: same custody record number")
    assert dialog.ok_button.isEnabled()
    with qtbot.waitSignal(context.gallery_changed, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not widget.scanning and widget.model.rowCount() == 0, timeout=WAIT_MS)

    assert f"Subject {merge} merged into {keep}" in widget.message_label.text()
    with Gallery(gallery_dir) as gallery:
        assert gallery.subject(merge) is None
        assert gallery.subject(keep).face_count == 2
        merges = [e for e in gallery.audit_events() if e.action == "merge"]
        assert len(merges) == 1
        assert merges[0].details["keep_subject_id"] == keep
        assert merges[0].details["merged_subject_id"] == merge
        assert merges[0].details["reason"] == "same person: same custody record number"
        assert merges[0].user == "examiner1"
        assert gallery.verify_audit().intact


def test_model_passes_qtmodeltester(qtbot, qtmodeltester, context: AppContext) -> None:
    widget = DuplicatesWidget(context)
    qtbot.addWidget(widget)
    _scan(qtbot, widget)
    thumbnails = FaceThumbnailCache(context)
    model = DuplicatePairsModel(thumbnails)
    model.set_rows(widget.model.rows())
    assert model.rowCount() == 1
    qtmodeltester.check(model, force_py=True)
    qtbot.waitUntil(lambda: not thumbnails.busy, timeout=WAIT_MS)
    qtmodeltester.check(model, force_py=True)


def test_list_says_when_the_gallery_changed_since(
    qtbot, context: AppContext, gallery_dir: Path
) -> None:
    widget = DuplicatesWidget(context)
    qtbot.addWidget(widget)
    _scan(qtbot, widget)
    context.gallery_changed.emit()  # as the gallery manager does after an enrolment or delete
    assert "The gallery changed since this list was made" in widget.status_label.text()
    context.gallery_changed.emit()
    assert widget.status_label.text().count("The gallery changed") == 1
    _scan(qtbot, widget)
    assert "The gallery changed" not in widget.status_label.text()


def _duplicate_reads(context: AppContext) -> list:
    with Gallery(context.gallery_dir, read_only=True) as gallery:
        return [
            e
            for e in gallery.audit_events()
            if e.action == "view" and e.details.get("read") == "duplicates"
        ]


def test_the_list_is_recorded_once_and_needs_a_case(qtbot, context: AppContext) -> None:
    widget = DuplicatesWidget(context)
    qtbot.addWidget(widget)
    context.set_case(None)
    asked: list[int] = []
    context.case_asker = lambda: asked.append(1)  # the examiner cancels the case dialog
    qtbot.mouseClick(widget.scan_button, Qt.MouseButton.LeftButton)
    assert asked == [1] and not widget.scanning and widget.model.rowCount() == 0
    assert "Set a case first" in widget.status_label.text()
    assert _duplicate_reads(context) == []

    context.case_asker = lambda: context.set_case(CaseInfo("C-DUP", "gallery maintenance"))
    _scan(qtbot, widget)
    (event,) = _duplicate_reads(context)
    assert (event.case_id, event.purpose, event.user) == (
        "C-DUP",
        "gallery maintenance",
        "examiner1",
    )
    pair = widget.model.rows()[0].pair
    assert event.details["pairs"] == 1
    assert sorted(event.details["subjects"]["ids"]) == sorted([pair.subject_a, pair.subject_b])
    assert event.details["face_ids"]["ids"] == [pair.face_a, pair.face_b]
    assert event.details["threshold"] == round(widget.last_scan.threshold, 5)
    _scan(qtbot, widget)  # the same list again, at once: one consultation
    assert len(_duplicate_reads(context)) == 1
