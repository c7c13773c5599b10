"""The candidate table model and widget: real searches on a real gallery; blind review."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from examiners import open_as

from tests.gui.analyst_support import CASE, WAIT_MS, enrol_gallery, make_context, shared_extras
from workstation.gallery.decisions import decisions_for, record_decision
from workstation.gallery.search import ProbeInfo, search_face
from workstation.gui.candidates import (
    HIDDEN,
    LEADS_NOT_IDENTIFICATIONS,
    CandidatesWidget,
    CandidateTableModel,
    load_case_searches,
)
from workstation.vision.images import load_image


@pytest.fixture
def searched(tmp_path: Path, engine, photo_paths, shared_faces):
    """A gallery of 6 subjects and one recorded search of obama2.jpg in CASE."""
    folder = enrol_gallery(
        tmp_path / "gallery", engine, photo_paths, shared_extras(shared_faces, 4)
    )
    image = load_image(photo_paths["obama2"])
    face = engine.analyze(image.bgr)[0]
    with open_as(folder, "examiner1") as gallery:
        result = search_face(
            gallery, face, ProbeInfo.from_image(image), CASE.case_id, CASE.purpose, top_k=20
        )
    return folder, result


def test_model_passes_qtmodeltester(qtmodeltester, searched) -> None:
    folder, _ = searched
    with open_as(folder, "examiner1") as gallery:
        searches = load_case_searches(gallery, CASE.case_id)
    model = CandidateTableModel("examiner1")
    model.set_search(searches[0])
    qtmodeltester.check(model, force_py=True)
    assert model.rowCount() == 6
    assert model.data(model.index(0, model.COL_SUBJECT)) == "obama"
    assert model.data(model.index(0, model.COL_RANK)) == "1"
    scores = [float(model.data(model.index(r, model.COL_SCORE))) for r in range(6)]
    assert scores == sorted(scores, reverse=True)
    model.set_blind(True)
    qtmodeltester.check(model, force_py=True)


def test_false_match_columns_show_the_stored_words_or_na(searched) -> None:
    """The FMR cell shows the words the calibration wrote, as they are (a bound stays a bound);
    n/a, with the reason as its tooltip, when the search was not calibrated."""
    from PySide6.QtCore import Qt

    folder, _ = searched
    with open_as(folder, "examiner1") as gallery:
        search = load_case_searches(gallery, CASE.case_id)[0]
    model = CandidateTableModel("examiner1")
    first, second, *rest = search.candidates
    unknown = "FMR unknown: only 12 impostor pairs to calibrate from"
    search = replace(
        search,
        candidates=(
            replace(first, fmr=None, fmr_text=unknown, expected_strangers=None),
            replace(
                second,
                fmr=1.21e-5,
                fmr_text="< 1 in 82,940",
                fmr_upper_bound=True,
                expected_strangers=0.00012,
            ),
            *(replace(c, fmr=1e-4, fmr_text="1 in 10,000", expected_strangers=0.02) for c in rest),
        ),
    )
    model.set_search(search)
    tip = Qt.ItemDataRole.ToolTipRole
    assert model.data(model.index(0, model.COL_FMR)) == "n/a"
    assert unknown in model.data(model.index(0, model.COL_FMR), tip)
    assert model.data(model.index(0, model.COL_STRANGERS)) == "n/a"
    assert model.data(model.index(1, model.COL_FMR)) == "< 1 in 82,940"
    assert "upper bound" in model.data(model.index(1, model.COL_FMR), tip)
    assert model.data(model.index(1, model.COL_STRANGERS)) == "< 0.00012"
    assert model.data(model.index(2, model.COL_FMR)) == "1 in 10,000"
    assert model.data(model.index(2, model.COL_STRANGERS)) == "0.02"


def test_columns_come_from_the_one_spec() -> None:
    from PySide6.QtCore import Qt

    from workstation.reports.columns import Surface, columns_for

    model = CandidateTableModel("examiner1")
    spec = columns_for(Surface.SEARCH_TAB)
    assert model.columnCount() == len(spec)
    headers = [model.headerData(i, Qt.Orientation.Horizontal) for i in range(len(spec))]
    assert headers == [c.header for c in spec]


def test_blind_review_hides_scores_until_every_candidate_is_decided(qtbot, searched, engine):
    folder, result = searched
    context = make_context(folder, engine)
    context.set_case(CASE)
    widget = CandidatesWidget(context)
    qtbot.addWidget(widget)
    assert widget.caveat_label.text() == LEADS_NOT_IDENTIFICATIONS
    with qtbot.waitSignal(widget.searches_loaded, timeout=WAIT_MS):
        widget.reload()
    model = widget.model
    ranked = [model.candidate(r).subject_id for r in range(model.rowCount())]
    widget.blind_box.setChecked(True)
    blind = [model.candidate(r).subject_id for r in range(model.rowCount())]
    assert sorted(blind) == sorted(ranked) and blind != ranked
    assert widget.current_candidate().subject_id == blind[0], "selection must not point at rank 1"
    for column in (model.COL_RANK, model.COL_SCORE, model.COL_FMR, model.COL_STRANGERS):
        assert {model.data(model.index(r, column)) for r in range(6)} == {HIDDEN}
    assert "6 to go" in widget.blind_label.text()

    # A decision taken while scores are hidden says so in its recorded note.
    from workstation.gui.decisions import BLIND_MARK, DecisionPanelWidget

    panel = DecisionPanelWidget(context)
    qtbot.addWidget(panel)
    panel.scores_hidden = lambda: model.scores_hidden
    panel.set_target(widget.current_search, widget.current_candidate())
    panel.note_edit.setText("nose differs")
    with qtbot.waitSignal(panel.decisions_changed, timeout=WAIT_MS) as blocker:
        panel.buttons["excluded"].click()
    assert blocker.args[1][0].note == f"nose differs {BLIND_MARK}"
    widget.set_decisions(result.search_id, blocker.args[1])
    assert "5 to go" in widget.blind_label.text()
    with open_as(folder, "examiner1") as gallery:
        for candidate in result.candidates[:-1]:
            if candidate.subject_id == widget.current_candidate().subject_id:
                continue  # decided above, through the panel
            record_decision(gallery, result.search_id, candidate.subject_id, "excluded", "differs")
        decisions = decisions_for(gallery, result.search_id)
    widget.set_decisions(result.search_id, decisions)
    assert model.scores_hidden and "1 to go" in widget.blind_label.text()
    with open_as(folder, "examiner1") as gallery:
        record_decision(gallery, result.search_id, result.candidates[-1].subject_id, "inconclusive")
        decisions = decisions_for(gallery, result.search_id)
    widget.set_decisions(result.search_id, decisions)
    assert not model.scores_hidden
    assert model.data(model.index(0, model.COL_RANK)) == "1"
    assert [model.candidate(r).subject_id for r in range(6)] == ranked
    assert "excluded (examiner1)" in model.data(model.index(0, model.COL_DECISION))


def test_thumbnails_arrive_from_the_worker(qtbot, searched, engine) -> None:
    from PySide6.QtCore import Qt

    folder, _ = searched
    context = make_context(folder, engine)
    context.set_case(CASE)
    widget = CandidatesWidget(context)
    qtbot.addWidget(widget)
    with qtbot.waitSignal(widget.searches_loaded, timeout=WAIT_MS):
        widget.reload()
    model = widget.model
    qtbot.waitUntil(
        lambda: (
            model.data(model.index(0, model.COL_THUMB), Qt.ItemDataRole.DecorationRole) is not None
        ),
        timeout=WAIT_MS,
    )
    pixmap = model.data(model.index(0, model.COL_THUMB), Qt.ItemDataRole.DecorationRole)
    assert pixmap.width() == 56
    assert model.data(model.index(0, model.COL_QUALITY)) in ("good", "warn", "poor")
