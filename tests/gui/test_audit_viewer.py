"""Audit viewer: real events from real enrolments and searches, case filter, chain verification."""

from __future__ import annotations

from pathlib import Path

import pytest
from examiners import as_examiner, open_as
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from sqlite_file import edit_database

from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.search import search_image
from workstation.gallery.store import Gallery
from workstation.gui.audit_viewer import ALL_CASES, AuditEventsModel, AuditViewerWidget
from workstation.gui.context import AppContext, CaseInfo
from workstation.progress import drain
from workstation.vision.images import load_image

WAIT_MS = 60_000
READING = CaseInfo("C-AUD-7", "internal audit review")


@pytest.fixture
def gallery_dir(tmp_path: Path, engine, photo_paths: dict[str, Path]) -> Path:
    """A gallery with two enrolments and a search in each of two cases, all by the real core."""
    folder = tmp_path / "gallery"
    with open_as(folder, "examiner1") as gallery:
        items = items_for_subject("S-OBAMA", [photo_paths["obama"]], "B. Obama")
        items += items_for_subject("S-BIDEN", [photo_paths["biden"]], "J. Biden")
        report = drain(enroll(gallery, engine, items))
        assert report.enrolled == 2
        probe = load_image(photo_paths["obama2"])
        search_image(gallery, engine, probe, "C-2026-001", "robbery, lead for review")
        search_image(gallery, engine, probe, "C-2026-002", "missing person")
    return folder


@pytest.fixture
def context(gallery_dir: Path, qtbot):
    ctx = AppContext(gallery_dir, user="examiner1")
    ctx.set_case(READING)  # reading the log is recorded against a case
    yield ctx
    ctx.pool.wait()


def _viewer(qtbot, context: AppContext) -> AuditViewerWidget:
    viewer = AuditViewerWidget(context)
    qtbot.addWidget(viewer)
    viewer.show()  # the log is read when the tab is in view
    assert viewer.loading or context.case is None
    qtbot.waitUntil(lambda: not viewer.loading, timeout=WAIT_MS)
    return viewer


def _verify(qtbot, viewer: AuditViewerWidget) -> None:
    qtbot.mouseClick(viewer.verify_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not viewer.verifying, timeout=WAIT_MS)


def test_events_table_shows_the_log(qtbot, context: AppContext, gallery_dir: Path) -> None:
    viewer = _viewer(qtbot, context)
    with Gallery(gallery_dir) as gallery:
        stored = gallery.audit_events()
    # The reading itself was recorded after the events it showed.
    reading = stored.pop()
    assert (reading.action, reading.case_id) == ("view", READING.case_id)
    model = viewer.model
    assert model.rowCount() == len(stored) >= 4
    actions = [model.index(r, AuditEventsModel.COL_ACTION).data() for r in range(len(stored))]
    assert actions == [e.action for e in stored]
    assert actions[:3] == ["genesis", "enrol", "enrol"] and actions.count("search") == 2
    last = model.rowCount() - 1
    assert model.index(last, AuditEventsModel.COL_CASE).data() == "C-2026-002"
    assert model.index(last, AuditEventsModel.COL_PURPOSE).data() == "missing person"
    assert model.index(0, AuditEventsModel.COL_USER).data() == "examiner1"
    assert "S-OBAMA" in model.index(1, AuditEventsModel.COL_DETAILS).data()  # after genesis
    assert viewer.count_label.text() == f"{len(stored)} events in the log"
    # Selecting an event shows every field and both hashes, for quoting.
    viewer.table.selectRow(0)
    assert stored[0].hash in viewer.details_text.toPlainText()
    assert '"prev_hash": "' + "0" * 64 in viewer.details_text.toPlainText()


def test_filter_by_case(qtbot, context: AppContext) -> None:
    viewer = _viewer(qtbot, context)
    everything = viewer.model.rowCount()
    cases = [viewer.case_combo.itemText(i) for i in range(viewer.case_combo.count())]
    assert cases == [ALL_CASES, "C-2026-001", "C-2026-002"]
    viewer.case_combo.setCurrentIndex(1)
    qtbot.waitUntil(lambda: viewer.model.rowCount() == 1, timeout=WAIT_MS)
    event = viewer.model.index(0, 0).data(AuditEventsModel.EventRole)
    assert event.case_id == "C-2026-001" and event.action == "search"
    assert viewer.count_label.text() == "1 event for case C-2026-001"
    viewer.set_case_filter(None)
    # Everything, and the two readings since (all events, then case C-2026-001's).
    qtbot.waitUntil(lambda: viewer.model.rowCount() == everything + 2, timeout=WAIT_MS)


def test_verify_intact_chain_shows_and_copies_head_hash(
    qtbot, context: AppContext, gallery_dir: Path
) -> None:
    viewer = _viewer(qtbot, context)
    _verify(qtbot, viewer)
    with Gallery(gallery_dir) as gallery:
        head = gallery.audit_events()[-1]
    assert viewer.last_report is not None and viewer.last_report.intact
    assert f"Chain intact: all {head.seq} events verified" in viewer.result_label.text()
    assert viewer.head_hash_edit.text() == head.hash
    assert viewer.head_hash_edit.isReadOnly()
    assert f"event {head.seq}" in viewer.head_label.text()
    qtbot.mouseClick(viewer.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == head.hash


def test_verify_reports_a_tampered_event(qtbot, context: AppContext, gallery_dir: Path) -> None:
    # Someone bypasses the append-only triggers and rewrites the purpose of the first search.
    with Gallery(gallery_dir) as gallery:
        events = gallery.audit_events()
    bad = next(e.seq for e in events if e.action == "search")
    edit_database(gallery_dir, "UPDATE audit SET purpose = 'routine check' WHERE seq = ?", (bad,))

    viewer = _viewer(qtbot, context)
    _verify(qtbot, viewer)
    report = viewer.last_report
    assert report is not None and not report.intact
    assert report.first_bad_seq == bad
    text = viewer.result_label.text()
    assert f"BROKEN at event {bad}" in text and "altered" in text
    # The last hash that still verifies is the one before, and the bad row is marked and selected.
    assert viewer.head_hash_edit.text() == events[bad - 2].hash
    assert f"event {bad - 1}" in viewer.head_label.text()
    row = viewer.model.row_of(bad)
    assert viewer.model.index(row, 0).data(Qt.ItemDataRole.BackgroundRole) is not None
    assert viewer.model.index(0, 0).data(Qt.ItemDataRole.BackgroundRole) is None
    assert viewer.table.currentIndex().row() == row


def test_verify_reports_a_deleted_event(qtbot, context: AppContext, gallery_dir: Path) -> None:
    edit_database(gallery_dir, "DELETE FROM audit WHERE seq = 2")
    viewer = _viewer(qtbot, context)
    _verify(qtbot, viewer)
    assert viewer.last_report is not None and viewer.last_report.first_bad_seq == 3
    assert "events are missing" in viewer.result_label.text()


def test_new_events_refresh_and_mark_verification_stale(
    qtbot, context: AppContext, gallery_dir: Path
) -> None:
    second = as_examiner(gallery_dir, "examiner2")  # registered (an event) before the viewer
    viewer = _viewer(qtbot, context)
    _verify(qtbot, viewer)
    before = viewer.model.rowCount()
    with Gallery(gallery_dir, examiner=second) as gallery, gallery.transaction():
        gallery.audit("export", {"file": "report.pdf"}, case_id="C-2026-003", purpose="court")
    context.audit_changed.emit()
    # The export, after the reading recorded when the viewer first showed the log.
    qtbot.waitUntil(lambda: viewer.model.rowCount() == before + 2, timeout=WAIT_MS)
    assert "verify again" in viewer.result_label.text()
    assert viewer.case_combo.findData("C-2026-003") > 0


def test_model_passes_qtmodeltester(qtbot, qtmodeltester, context: AppContext) -> None:
    viewer = _viewer(qtbot, context)
    model = AuditEventsModel()
    model.set_events(viewer.model.events())
    assert model.rowCount() >= 4
    qtmodeltester.check(model, force_py=True)
    model.set_bad_seq(2)
    qtmodeltester.check(model, force_py=True)


def _readings(gallery_dir: Path) -> list:
    with Gallery(gallery_dir, read_only=True) as gallery:
        return [e for e in gallery.audit_events() if e.action == "view"]


def test_reading_the_log_is_recorded_once_with_its_filter_and_range(
    qtbot, context: AppContext, gallery_dir: Path
) -> None:
    viewer = _viewer(qtbot, context)
    shown = viewer.model.events()
    (reading,) = _readings(gallery_dir)
    assert (reading.case_id, reading.purpose, reading.user) == (
        READING.case_id,
        READING.purpose,
        "examiner1",
    )
    assert reading.details == {
        "read": "audit_log",
        "case_filter": None,
        "events": len(shown),
        "first_seq": shown[0].seq,
        "last_seq": shown[-1].seq,
    }
    viewer.set_case_filter("C-2026-002")
    qtbot.waitUntil(lambda: viewer.model.rowCount() == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not viewer.loading, timeout=WAIT_MS)
    filtered = _readings(gallery_dir)[-1]
    assert filtered.details["case_filter"] == "C-2026-002" and filtered.details["events"] == 1
    # Refresh with nothing new in the filtered view is the same reading: not recorded again.
    qtbot.mouseClick(viewer.refresh_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not viewer.loading, timeout=WAIT_MS)
    assert len(_readings(gallery_dir)) == 2


def test_a_log_out_of_view_is_not_read_and_without_a_case_it_asks(
    qtbot, context: AppContext, gallery_dir: Path
) -> None:
    viewer = AuditViewerWidget(context)  # built, never shown (a tab behind another)
    qtbot.addWidget(viewer)
    context.audit_changed.emit()
    context.pool.wait()
    assert viewer.model.rowCount() == 0 and _readings(gallery_dir) == []
    context.set_case(None)
    viewer.show()
    assert viewer.model.rowCount() == 0 and not viewer.case_button.isHidden()
    assert "Set a case to read the audit log" in viewer.count_label.text()
    context.case_asker = lambda: context.set_case(READING)  # the case dialog, answered
    qtbot.mouseClick(viewer.case_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: viewer.model.rowCount() > 0, timeout=WAIT_MS)
    assert len(_readings(gallery_dir)) == 1 and viewer.case_button.isHidden()
