"""The decision panel of a verifier in blind verification says the first examiner's decision is
withheld until they record their own sheet, and shows none of it (the core withholds it)."""

from __future__ import annotations

from examiners import open_as

from tests.gui.analyst_support import make_context
from tests.unit.test_blind_decisions import NOTE, examined  # noqa: F401 (the fixture)
from tests.unit.test_comparison_sheets import sheet
from workstation.gallery.comparisons import record_sheet
from workstation.gui.decisions import DecisionPanelWidget


def _history(panel: DecisionPanelWidget) -> list[str]:
    return [panel.history.item(i).text() for i in range(panel.history.count())]


def test_decision_panel_withholds_the_first_decision_until_the_own_sheet(
    qtbot,
    examined,  # noqa: F811
    engine,
) -> None:
    folder, search_id, _, _ = examined
    with open_as(folder, "examiner2", roles=["reviewer", "analyst"]) as gallery:
        record = gallery.search_record(search_id)
    context = make_context(folder, engine, "examiner2")
    panel = DecisionPanelWidget(context)
    qtbot.addWidget(panel)
    candidate = next(c for c in record.candidates if c.subject_id == "obama")
    panel.set_target(record, candidate)
    lines = _history(panel)
    assert any("withheld until you record your own" in line for line in lines)
    assert not any(NOTE in line or "examiner1" in line for line in lines)
    assert not panel.confirm_button.isEnabled()
    with open_as(folder, "examiner2", roles=["reviewer", "analyst"]) as gallery:
        record_sheet(gallery, search_id, "obama", sheet())
        record = gallery.search_record(search_id)
    panel.set_target(record, candidate)
    lines = _history(panel)
    assert any(NOTE in line for line in lines)
    assert panel.confirm_button.isEnabled()
    context.pool.wait()
