"""Decisions through the window (first and second examiner), and the exported case report."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from examiners import open_as

from tests.gui.analyst_support import CASE, WAIT_MS, drop_files, enrol_gallery, make_context
from workstation.gui.decisions import DecisionPanelWidget, pending_confirmation
from workstation.gui.main_window import MainWindowWidget

OPENED: list[MainWindowWidget] = []


@pytest.fixture(autouse=True)
def finish_workers():
    """Let every window's background work finish before its widgets are deleted."""
    yield
    while OPENED:
        context = OPENED.pop().context
        context.pool.cancel_all()
        context.pool.wait()


def open_window(qtbot, folder: Path, engine, user: str) -> MainWindowWidget:
    win = MainWindowWidget(make_context(folder, engine, user))
    qtbot.addWidget(win)
    OPENED.append(win)
    win.show()
    return win


def searched_window(qtbot, tmp_path, engine, photo_paths) -> MainWindowWidget:
    folder = enrol_gallery(tmp_path / "gallery", engine, photo_paths)
    win = open_window(qtbot, folder, engine, "examiner1")
    win.context.set_case(CASE)
    page = win.search_page
    with qtbot.waitSignal(page.probe.probe_loaded, timeout=WAIT_MS):
        drop_files(win, [photo_paths["obama2"]])
    with qtbot.waitSignal(page.search_recorded, timeout=WAIT_MS):
        win.actions["search"].trigger()
    qtbot.waitUntil(lambda: page.candidates.model.rowCount() == 2, timeout=WAIT_MS)
    return win


def record(qtbot, panel: DecisionPanelWidget, decision: str, note: str) -> list:
    qtbot.waitUntil(panel.buttons[decision].isEnabled, timeout=WAIT_MS)  # earlier work done
    panel.note_edit.setText(note)
    outcome: list = []
    panel.decisions_changed.connect(lambda _search, decisions: outcome.append(decisions))
    panel.decision_failed.connect(lambda message: outcome.append(message))
    panel.buttons[decision].click()
    qtbot.waitUntil(lambda: bool(outcome), timeout=WAIT_MS)
    assert isinstance(outcome[0], list), f"recording the decision failed: {outcome[0]}"
    return outcome[0]


def test_decisions_and_second_examiner_confirmation(qtbot, tmp_path, engine, photo_paths) -> None:
    first = searched_window(qtbot, tmp_path, engine, photo_paths)
    page = first.search_page
    panel = page.decisions
    page.candidates.select_candidate_row(0)
    assert panel.candidate.subject_id == "obama"
    decisions = record(qtbot, panel, "possible_lead", "same ear shape and scar on the chin")
    assert [d.decision for d in decisions] == ["possible_lead"]
    assert not panel.confirm_button.isEnabled(), "the first examiner cannot confirm their own lead"
    model = page.candidates.model
    assert model.data(model.index(0, model.COL_DECISION)) == "possible lead (examiner1)"
    page.candidates.select_candidate_row(1)
    assert panel.candidate.subject_id == "biden"
    record(qtbot, panel, "excluded", "different nose and hairline")

    # A second examiner opens the same case on their own login and confirms the lead.
    second = open_window(qtbot, first.context.gallery_dir, engine, "examiner2")
    candidates2 = second.search_page.candidates
    with qtbot.waitSignal(candidates2.searches_loaded, timeout=WAIT_MS):
        second.context.set_case(CASE)
    assert len(candidates2.searches) == 1
    probe2 = second.search_page.probe
    qtbot.waitUntil(lambda: probe2.image is not None and not probe2.busy, timeout=WAIT_MS)
    assert probe2.image.sha256 == candidates2.searches[0].probe.sha256  # the recorded probe
    candidates2.select_candidate_row(candidates2.model.row_of("obama"))
    panel2 = second.search_page.decisions
    assert panel2.confirm_button.isEnabled()
    panel2.note_edit.setText("agree: ear and chin scar match")
    with qtbot.waitSignal(panel2.decisions_changed, timeout=WAIT_MS) as blocker:
        panel2.confirm_button.click()
    confirmed = [d for d in blocker.args[1] if d.decision == "confirmed"]
    assert len(confirmed) == 1 and confirmed[0].user == "examiner2"
    assert pending_confirmation(blocker.args[1], "examiner2") is None
    text = candidates2.model.data(candidates2.model.index(candidates2.model.row_of("obama"), 8))
    assert text == "possible lead (examiner1); confirmed by examiner2"

    with open_as(first.context.gallery_dir, "check") as gallery:
        events = [e for e in gallery.audit_events(case_id=CASE.case_id) if e.action == "decision"]
        assert gallery.verify_audit().intact
    assert [(e.user, e.details["decision"]) for e in events] == [
        ("examiner1", "possible_lead"),
        ("examiner1", "excluded"),
        ("examiner2", "confirmed"),
    ]


def test_export_writes_pdf_and_bundle_with_the_case(qtbot, tmp_path, engine, photo_paths) -> None:
    win = searched_window(qtbot, tmp_path, engine, photo_paths)
    page = win.search_page
    page.candidates.select_candidate_row(0)
    record(qtbot, page.decisions, "possible_lead", "ears and chin agree")
    pdf = tmp_path / "out" / "case report.pdf"
    pdf.parent.mkdir()
    with qtbot.waitSignal(win.context.audit_changed, timeout=WAIT_MS):
        win.export_report(pdf)
    assert pdf.exists() and pdf.read_bytes().startswith(b"%PDF")
    bundle = json.loads(pdf.with_suffix(".json").read_text(encoding="utf-8"))
    assert bundle["case"]["id"] == CASE.case_id
    assert (
        "Report written" in win.statusBar().currentMessage()
        or "written" in win.statusBar().currentMessage()
    )
    with open_as(win.context.gallery_dir, "check") as gallery:
        exports = [e for e in gallery.audit_events(case_id=CASE.case_id) if e.action == "export"]
    assert len(exports) == 1 and str(pdf) in exports[0].details["extra_files"][0]
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert f"Case {CASE.case_id}" in text
    assert CASE.purpose in text
    assert bundle["audit"]["head_hash"] in text.replace("\n", "")
    assert bundle["searches"][0]["probe"]["sha256"] in text
    assert "examiner1" in text and "ears and chin agree" in text
    assert "investigative leads, not identifications" in text.lower()
    assert "Page 1 of" in text


def test_export_dialog_asks_before_replacing_the_report_or_its_bundle(
    qtbot, tmp_path, engine, photo_paths, monkeypatch
) -> None:
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    win = searched_window(qtbot, tmp_path, engine, photo_paths)
    pdf = tmp_path / "report.pdf"
    pdf.with_suffix(".json").write_text("an earlier bundle", encoding="utf-8")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(pdf), "PDF (*.pdf)"))
    asked: list[str] = []

    def answer(reply: QMessageBox.StandardButton):
        def exec_(box: QMessageBox) -> int:
            asked.append(box.text())
            return reply

        return exec_

    monkeypatch.setattr(QMessageBox, "exec", answer(QMessageBox.StandardButton.No))
    win.export_dialog()
    assert asked and str(pdf.with_suffix(".json")) in asked[0]
    assert not pdf.exists()
    assert pdf.with_suffix(".json").read_text(encoding="utf-8") == "an earlier bundle"
    monkeypatch.setattr(QMessageBox, "exec", answer(QMessageBox.StandardButton.Yes))
    with qtbot.waitSignal(win.context.audit_changed, timeout=WAIT_MS):
        win.export_dialog()
    assert pdf.read_bytes().startswith(b"%PDF")
    assert json.loads(pdf.with_suffix(".json").read_text(encoding="utf-8"))["case"]["id"]
    # Without the question (export_report called directly), existing files are refused.
    win.export_report(pdf)
    qtbot.waitUntil(lambda: "already exists" in win.statusBar().currentMessage(), timeout=WAIT_MS)
    with open_as(win.context.gallery_dir, "check") as gallery:
        exports = [e for e in gallery.audit_events(case_id=CASE.case_id) if e.action == "export"]
    assert len(exports) == 1
    assert all(f["replaced_existing"] for f in exports[0].details["files"] if "json" in f["kind"])
