"""Reads in the app that came after the first ones (issue 11 item 5, what was left): the Cases
tab's list, a case's searches in the Search tab, the watch notice and the retention list. Each
is one signed `view` event with its case, purpose and the ids shown (never names), written
before it shows; shown again within minutes it is not recorded twice; without a case the app
asks for one and shows nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from examiners import open_as

from tests.gui.analyst_support import CASE, WAIT_MS, enrol_gallery, make_context
from workstation.domain import Decision
from workstation.gallery.decisions import record_decision
from workstation.gallery.enroll import EnrollItem, enroll
from workstation.gallery.search import search_image
from workstation.gallery.store import Gallery
from workstation.gallery.watches import add_watch
from workstation.gui.candidates import CandidatesWidget
from workstation.gui.cases_panel import CasesPanelWidget
from workstation.gui.context import CaseInfo
from workstation.gui.retention_dialog import RetentionDialog
from workstation.gui.watch_panel import WatchNoticeBar
from workstation.progress import drain
from workstation.vision.images import load_image

SUPERVISION = CaseInfo("SUPERVISION-2026", "case supervision")


@pytest.fixture
def gallery_dir(tmp_path: Path, engine, photo_paths) -> Path:
    """obama and biden enrolled; obama2 searched in CASE by examiner1, a possible lead on
    obama recorded, the search left on watch, then obama2 itself enrolled as P-NEW (a hit)."""
    folder = enrol_gallery(tmp_path / "gallery", engine, photo_paths)
    with open_as(folder, "examiner1") as gallery:
        search = search_image(
            gallery, engine, load_image(photo_paths["obama2"]), CASE.case_id, CASE.purpose
        )
        record_decision(gallery, search.search_id, "obama", Decision.POSSIBLE_LEAD, "same man")
        add_watch(gallery, engine, search.search_id, "unresolved")
        report = drain(enroll(gallery, engine, [EnrollItem("P-NEW", photo_paths["obama2"], "t")]))
    assert [h.subject_id for h in report.watch_hits] == ["P-NEW"]
    return folder


@pytest.fixture
def context(gallery_dir: Path, engine):
    ctx = make_context(gallery_dir, engine)
    yield ctx
    ctx.pool.cancel_all()
    ctx.pool.wait()


def head(folder: Path) -> int:
    with Gallery(folder, read_only=True) as gallery:
        return gallery.audit_head()[0]


def views_since(folder: Path, before: int) -> list:
    with Gallery(folder, read_only=True) as gallery:
        written = [e for e in gallery.audit_events() if e.seq > before]
    assert all(e.action == "view" for e in written), written  # a read writes nothing else
    return written


def test_the_cases_tab_lists_only_with_a_case_and_records_the_list(qtbot, context) -> None:
    folder = context.gallery_dir
    before = head(folder)
    panel = CasesPanelWidget(context)
    qtbot.addWidget(panel)
    panel.show()
    context.pool.wait()
    assert panel.model.rowCount() == 0 and panel.case_button.isVisible()
    assert panel.case_note.isVisible() and "Set a case to list the cases" in panel.case_note.text()
    assert views_since(folder, before) == []

    asked: list[bool] = []

    def ask() -> CaseInfo | None:  # the case dialog, answered with the standing reference
        asked.append(True)
        context.set_case(SUPERVISION)
        return SUPERVISION

    context.case_asker = ask
    with qtbot.waitSignal(panel.cases_loaded, timeout=WAIT_MS):
        panel.case_button.click()
    assert asked and [s.case_id for s in panel.summaries()] == [CASE.case_id]
    (event,) = views_since(folder, before)
    assert (event.case_id, event.purpose, event.user) == (
        SUPERVISION.case_id,
        SUPERVISION.purpose,
        "examiner1",
    )
    assert event.signature and event.details == {
        "read": "case_list",
        "past_retention_only": False,
        "cases": {"count": 1, "ids": [CASE.case_id]},
    }
    # The same list for the same case again within minutes: not recorded twice.
    with qtbot.waitSignal(panel.cases_loaded, timeout=WAIT_MS):
        panel.reload()
    assert len(views_since(folder, before)) == 1


def test_a_case_s_searches_are_recorded_before_they_show(qtbot, context) -> None:
    folder = context.gallery_dir
    candidates = CandidatesWidget(context)
    qtbot.addWidget(candidates)
    before = head(folder)
    candidates.reload()  # no case: nothing read, nothing recorded
    assert candidates.searches == [] and views_since(folder, before) == []

    with qtbot.waitSignal(candidates.searches_loaded, timeout=WAIT_MS) as loaded:
        context.set_case(CASE)
        candidates.reload()
    assert loaded.args[0] == 2  # the search and the watch's re-search that found P-NEW
    (event,) = views_since(folder, before)
    assert (event.case_id, event.purpose) == (CASE.case_id, CASE.purpose)
    details = event.details
    searches = candidates.searches
    assert details["read"] == "case_searches" and details["case_id"] == CASE.case_id
    assert details["searches"]["ids"] == [s.search_id for s in searches]
    shown_subjects = {c.subject_id for s in searches for c in s.candidates}
    assert set(details["subjects"]["ids"]) == shown_subjects >= {"obama", "P-NEW"}
    assert set(details["face_ids"]["ids"]) == {c.face_id for s in searches for c in s.candidates}
    (decision,) = [d for s in searches for d in s.decisions]
    assert details["decisions"] == {"count": 1, "ids": [decision.id]}
    assert "Barack Obama" not in str(details)  # ids only, never names

    with qtbot.waitSignal(candidates.searches_loaded, timeout=WAIT_MS):
        candidates.reload()  # F5 within minutes: the same searches, not recorded again
    assert len(views_since(folder, before)) == 1


def test_the_watch_notice_is_recorded_against_the_watched_case(qtbot, context) -> None:
    folder = context.gallery_dir
    before = head(folder)
    bar = WatchNoticeBar(context)
    qtbot.addWidget(bar)
    with qtbot.waitSignal(bar.notices_shown, timeout=WAIT_MS) as shown:
        bar.check()
    assert shown.args[0] == 1 and "P-NEW" in bar.label.text()
    (event,) = views_since(folder, before)
    (hit, _case) = bar.hits[0]
    assert (event.case_id, event.purpose) == (CASE.case_id, CASE.purpose)
    assert event.details == {
        "read": "watches",
        "watches": {"count": 1, "ids": [hit.watch_id]},
        "hits": 1,
        "searches": {"count": 1, "ids": [hit.search_id]},
        "subjects": {"count": 1, "ids": ["P-NEW"]},
        "face_ids": {"count": 1, "ids": [hit.face_id]},
    }
    with qtbot.waitSignal(bar.notices_shown, timeout=WAIT_MS):
        bar.check()  # after the next enrolment, the same hit: not recorded again
    assert len(views_since(folder, before)) == 1


def test_the_retention_list_asks_for_a_case_and_is_recorded(qtbot, context) -> None:
    folder = context.gallery_dir
    before = head(folder)
    dialog = RetentionDialog(context)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.days_spin.setValue(0)
    asked: list[bool] = []
    context.case_asker = lambda: asked.append(True)  # the case dialog, declined
    dialog.list_button.click()
    context.pool.wait()
    assert asked and dialog.listed is None and "Set a case" in dialog.summary_label.text()
    assert views_since(folder, before) == []

    maintenance = CaseInfo("MAINT-2026", "gallery maintenance")
    context.set_case(maintenance)
    dialog.list_button.click()
    qtbot.waitUntil(lambda: dialog.listed is not None, timeout=WAIT_MS)
    assert sorted(dialog.listed[1]) == ["P-NEW", "biden", "obama"]
    (event,) = views_since(folder, before)
    assert (event.case_id, event.purpose) == (maintenance.case_id, maintenance.purpose)
    assert event.details["read"] == "retention_list" and event.details["older_than_days"] == 0
    assert sorted(event.details["subjects"]["ids"]) == ["P-NEW", "biden", "obama"]
    assert event.details["faces"] == 3
    with Gallery(folder, read_only=True) as gallery:
        assert gallery.subject_count() == 3 and gallery.verify_audit().intact
