"""The Cases tab (issue 15 item 4) on the real window: the list, opening a case into the Search
tab with Enter, closing and archiving through the dialog, and an archived case refusing a
search in the app (the core refuses; the app says so and stores nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest
from examiners import open_as
from PySide6.QtCore import Qt, QTimer

from tests.gui.analyst_support import WAIT_MS, drop_files, enrol_gallery, main_window
from workstation.domain import CaseStatus, Decision
from workstation.gallery.cases import archive_case
from workstation.gallery.decisions import record_decision
from workstation.gallery.search import search_image
from workstation.gui.cases_panel import PAST_RETENTION, AuthorisationDialog, CaseStatusDialog
from workstation.gui.context import CaseInfo
from workstation.vision.images import load_image


@pytest.fixture
def window(tmp_path: Path, qtbot, engine, photo_paths):
    """Two cases searched by examiner1: C-1 (obama2, a lead on obama) and C-2 (biden)."""
    folder = enrol_gallery(tmp_path / "gallery", engine, photo_paths)
    with open_as(folder, "examiner1") as gallery:
        first = search_image(gallery, engine, load_image(photo_paths["obama2"]), "C-1", "robbery")
        record_decision(gallery, first.search_id, "obama", Decision.POSSIBLE_LEAD, "same man")
        search_image(gallery, engine, load_image(photo_paths["biden"]), "C-2", "fraud")
    # Listing the cases is a recorded read: under a standing supervision reference, in view.
    supervision = CaseInfo("SUPERVISION-2026", "case supervision")
    windows = main_window(qtbot, folder, engine, case=supervision)
    win = next(windows)
    win.tabs.setCurrentWidget(win.cases_panel)
    qtbot.waitUntil(lambda: win.cases_panel.model.rowCount() == 2, timeout=WAIT_MS)
    yield win
    next(windows, None)  # stops the window's workers


def _reload(qtbot, panel) -> None:
    with qtbot.waitSignal(panel.cases_loaded, timeout=WAIT_MS):
        panel.reload()


def test_the_list_shows_each_case_and_enter_opens_it_in_search(qtbot, window) -> None:
    panel = window.cases_panel
    window.tabs.setCurrentWidget(panel)
    model = panel.model
    rows = {s.case_id: s for s in panel.summaries()}
    assert rows["C-1"].searches == 1 and rows["C-1"].leads == 1
    assert rows["C-1"].examiners == ("examiner1",)
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert headers[:3] == ["Case", "Status", "Purpose"] and "Authorised" in headers
    row = [s.case_id for s in panel.summaries()].index("C-1")
    cells = [model.data(model.index(row, c)) for c in range(model.columnCount())]
    assert cells[:3] == ["C-1", "open", "robbery"] and cells[5] == 1
    assert cells[-1] == "while open"
    panel.search_edit.setText("fraud")
    assert [s.case_id for s in panel.summaries()] == ["C-2"]
    panel.search_edit.clear()

    panel.select_case("C-1")
    page = window.search_page
    with qtbot.waitSignal(page.candidates.searches_loaded, timeout=WAIT_MS):
        qtbot.keyClick(panel.table, Qt.Key.Key_Return)
    assert window.context.case is not None and window.context.case.case_id == "C-1"
    assert window.context.case.purpose == "robbery"
    assert window.tabs.currentWidget() is page
    qtbot.waitUntil(lambda: page.candidates.model.rowCount() == 2, timeout=WAIT_MS)
    assert page.candidates.current_search.case_id == "C-1"
    assert page.candidates.model.decisions_of("obama")[0].decision is Decision.POSSIBLE_LEAD
    assert "C-1" in window.context.history.recent_cases


def test_closing_and_archiving_through_the_dialog_are_audited(qtbot, window) -> None:
    panel = window.cases_panel
    panel.select_case("C-2")
    assert panel.close_button.isEnabled() and not panel.reopen_button.isEnabled()
    seen: list[CaseStatusDialog] = []

    def answer(dialog: CaseStatusDialog) -> None:
        seen.append(dialog)
        assert not dialog.ok_button.isEnabled()  # a reason is required
        dialog.reason_edit.setPlainText("no lead after review")
        if dialog.until_edit is not None:
            dialog.until_edit.setDate(
                dialog.until_edit.date().fromString("2026-01-31", "yyyy-MM-dd")
            )
        QTimer.singleShot(0, dialog.accept)

    panel.status_dialog_opened.connect(answer)
    with qtbot.waitSignal(panel.cases_loaded, timeout=WAIT_MS):
        panel.close_button.click()
    summary = next(s for s in panel.summaries() if s.case_id == "C-2")
    assert summary.status is CaseStatus.CLOSED and summary.retain_until == "2026-01-31"
    assert summary.past_retention  # the test runs after that date
    panel.filter_combo.setCurrentText(PAST_RETENTION)
    assert [s.case_id for s in panel.summaries()] == ["C-2"]
    assert "1 past their retention date" in panel.summary_label.text()
    panel.filter_combo.setCurrentIndex(0)

    panel.select_case("C-2")
    assert panel.reopen_button.isEnabled() and not panel.close_button.isEnabled()
    with qtbot.waitSignal(panel.cases_loaded, timeout=WAIT_MS):
        panel.archive_button.click()
    assert [d.action for d in seen] == ["close", "archive"]
    panel.select_case("C-2")
    summary = panel.current_summary()
    assert summary.status is CaseStatus.ARCHIVED and summary.read_only
    for button in (panel.close_button, panel.reopen_button, panel.archive_button):
        assert not button.isEnabled()
    assert panel.open_button.isEnabled()  # an archived case can still be opened and read
    with open_as(window.context.gallery_dir, "check") as gallery:
        actions = [e.action for e in gallery.audit_events(case_id="C-2")]
        assert actions[-2:] == ["case_close", "case_archive"]
        assert gallery.audit_events(case_id="C-2")[-1].details["reason"] == "no lead after review"
        assert gallery.verify_audit().intact


def test_an_archived_case_refuses_a_search_in_the_app(qtbot, window, photo_paths) -> None:
    folder = window.context.gallery_dir
    with open_as(folder, "examiner1") as gallery:
        archive_case(gallery, "C-1", "court case concluded")
    panel = window.cases_panel
    _reload(qtbot, panel)
    panel.select_case("C-1")
    with qtbot.waitSignal(window.search_page.candidates.searches_loaded, timeout=WAIT_MS):
        panel.open_current()
    qtbot.waitUntil(lambda: "archived" in window.case_bar.case_label.text(), timeout=WAIT_MS)
    page = window.search_page
    with qtbot.waitSignal(page.probe.probe_loaded, timeout=WAIT_MS):
        drop_files(window, [photo_paths["obama2"]])
    with qtbot.waitSignal(page.search_failed, timeout=WAIT_MS) as failed:
        window.actions["search"].trigger()
    assert "archived" in failed.args[0] and "read-only" in failed.args[0]
    with open_as(folder, "check") as gallery:
        assert len(gallery.searches_of_case("C-1")) == 1
        acts = [e for e in gallery.audit_events(case_id="C-1") if e.action != "view"]
        assert acts[-1].action == "case_archive"
        # Opening it read its searches: one recorded read, against the case opened.
        (read,) = [e for e in gallery.audit_events(case_id="C-1") if e.action == "view"]
        assert read.details["read"] == "case_searches" and read.purpose == "robbery"
    # Its searches and decisions are still there to read, and no decision can be added.
    assert page.candidates.model.rowCount() == 2
    page.candidates.select_candidate_row(0)
    assert page.decisions.candidate is not None
    assert not any(b.isEnabled() for b in page.decisions.buttons.values())
    assert "archived" in page.decisions.buttons[Decision.POSSIBLE_LEAD].toolTip()
    # Another case, open, takes decisions again.
    window.context.set_case(None)
    qtbot.waitUntil(lambda: page.decisions._locked is None, timeout=WAIT_MS)


def test_the_authorisation_is_recorded_from_the_cases_tab(qtbot, window) -> None:
    panel = window.cases_panel
    panel.select_case("C-1")
    assert panel.authorise_button.isEnabled()
    seen: list[AuthorisationDialog] = []

    def answer(dialog: AuthorisationDialog) -> None:
        seen.append(dialog)
        assert not dialog.ok_button.isEnabled()  # who and the reference are required
        dialog.by_edit.setText("J. Prosecutor")
        dialog.at_edit.setDate(dialog.at_edit.date().fromString("2026-05-01", "yyyy-MM-dd"))
        dialog.reference_edit.setText("order 17/2026")
        assert dialog.ok_button.isEnabled()
        QTimer.singleShot(0, dialog.accept)

    panel.authorisation_dialog_opened.connect(answer)
    with qtbot.waitSignal(panel.cases_loaded, timeout=WAIT_MS):
        panel.authorise_button.click()
    assert len(seen) == 1
    summary = next(s for s in panel.summaries() if s.case_id == "C-1")
    assert summary.authorisation is not None
    assert summary.authorisation.to_dict() == {
        "by": "J. Prosecutor",
        "at": "2026-05-01",
        "reference": "order 17/2026",
    }
    with open_as(window.context.gallery_dir, "check") as gallery:
        (event,) = [e for e in gallery.audit_events(case_id="C-1") if e.action == "case_authorise"]
        assert event.user == "examiner1" and event.details["previous"] is None
        assert gallery.verify_audit().intact
    # An archived case's authorisation cannot change: the button says so; the core refuses.
    with open_as(window.context.gallery_dir, "examiner1") as gallery:
        archive_case(gallery, "C-2", "court case concluded")
    _reload(qtbot, panel)
    panel.select_case("C-2")
    assert not panel.authorise_button.isEnabled()
    assert "not open" in panel.authorise_button.toolTip()
    panel.apply_authorisation("C-2", "X", "2026-01-01", "r")
    qtbot.waitUntil(lambda: "archived" in panel.summary_label.text(), timeout=WAIT_MS)
