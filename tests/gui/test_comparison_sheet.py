"""The ACE-V sheet in Compare (issue 15 item 1): an examiner fills and records a sheet with an
annotation drawn on the aligned crop; reopened, it comes back with its annotation; a second
examiner sees neither the first sheet nor its conclusion until they have recorded their own,
then both side by side with the differences highlighted."""

from __future__ import annotations

from pathlib import Path

import pytest
from examiners import open_as
from PySide6.QtCore import Qt

from tests.gui.analyst_support import CASE, WAIT_MS, enrol_gallery, make_context
from workstation.gallery.search import ProbeInfo, search_face
from workstation.gallery.sheets import FEATURES, Conclusion, Finding
from workstation.gui.candidates import CandidatesWidget
from workstation.gui.compare_view import CompareDialog
from workstation.vision.images import load_image


@pytest.fixture
def searched(tmp_path: Path, engine, photo_paths):
    folder = enrol_gallery(tmp_path / "gallery", engine, photo_paths)
    image = load_image(photo_paths["obama2"])
    face = engine.analyze(image.bgr)[0]
    with open_as(folder, "examiner1") as gallery:
        search_face(gallery, face, ProbeInfo.from_image(image), CASE.case_id, CASE.purpose)
    return folder, image


def open_compare(qtbot, folder, engine, image, user):
    context = make_context(folder, engine, user)
    context.set_case(CASE)
    candidates = CandidatesWidget(context)
    qtbot.addWidget(candidates)
    with qtbot.waitSignal(candidates.searches_loaded, timeout=WAIT_MS):
        candidates.reload()
    dialog = CompareDialog(context, candidates, image)
    qtbot.addWidget(dialog)
    with qtbot.waitSignals([dialog.candidate_shown, dialog.sheet.sheets_loaded], timeout=WAIT_MS):
        dialog.show()
    dialog.right_tabs.setCurrentWidget(dialog.sheet)
    return context, dialog


def fill(dialog: CompareDialog, conclusion: Conclusion, ears: Finding) -> None:
    sheet = dialog.sheet
    for key, _ in FEATURES:
        combo = sheet.finding_boxes[key]
        combo.setCurrentIndex(combo.findData((ears if key == "ears" else Finding.SIMILAR).value))
    sheet.note_edits["ears"].setText("attached lobes")
    sheet.visible_edit.setText("frontal, both ears")
    sheet.limitation_boxes["compression"].setChecked(True)
    sheet.conclusion_box.setCurrentIndex(sheet.conclusion_box.findData(conclusion.value))
    sheet.conclusion_note.setText("ears weigh most")


def record(qtbot, dialog: CompareDialog):
    with qtbot.waitSignal(dialog.sheet.sheet_recorded, timeout=WAIT_MS) as blocker:
        dialog.sheet.record_button.click()
    return blocker.args[0]


def test_sheet_with_a_drawn_annotation_saves_and_reloads(qtbot, searched, engine) -> None:
    folder, image = searched
    context, dialog = open_compare(qtbot, folder, engine, image, "examiner1")
    assert "not recorded a sheet" in dialog.sheet.status.text()
    dialog.sheet.record_button.click()  # nothing marked yet: refused in words, nothing stored
    assert "mark every feature" in dialog.sheet.status.text()
    fill(dialog, Conclusion.SAME, Finding.SIMILAR)
    # Draw an arrow on the probe's aligned crop with the mouse.
    dialog.sheet.tool_buttons["arrow"].setChecked(True)
    view = dialog.probe_crop
    start = view.mapFromScene(100, 120)
    end = view.mapFromScene(140, 150)
    qtbot.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=end)
    (arrow,) = dialog.sheet.annotations
    assert arrow.image == "probe" and arrow.kind == "arrow"
    assert (arrow.x1, arrow.y1) == pytest.approx((100, 120), abs=3)
    assert (arrow.x2, arrow.y2) == pytest.approx((140, 150), abs=3)
    assert view.annotation_items == 3  # the shaft and the two strokes of its head
    stored = record(qtbot, dialog)
    assert stored.role == "examination" and stored.annotations == [arrow]
    context.pool.wait()
    dialog.close()

    _context, again = open_compare(qtbot, folder, engine, image, "examiner1")
    assert again.sheet.annotations == [arrow] and again.probe_crop.annotation_items == 3
    assert again.sheet.conclusion_box.currentData() == Conclusion.SAME.value
    assert again.sheet.note_edits["ears"].text() == "attached lobes"
    assert "examination sheet" in again.sheet.status.text()
    _context.pool.wait()
    with open_as(folder, "check") as gallery:
        events = gallery.audit_events(case_id=CASE.case_id)
    actions = [e.action for e in events]
    assert actions.count("comparison_sheet") == 1
    # The sheet shown on reopening is a recorded read (its id, never its findings); the first
    # opening showed none, so recorded none.
    sheet_reads = [e.details for e in events if e.details.get("read") == "comparison_sheets"]
    assert sheet_reads == [
        {
            "read": "comparison_sheets",
            "search_id": stored.search_id,
            "subject_id": stored.subject_id,
            "sheets": {"count": 1, "ids": [stored.id]},
            "withheld": 0,
        }
    ]


def test_verification_is_blind_until_the_verifier_records(qtbot, searched, engine) -> None:
    folder, image = searched
    context, first = open_compare(qtbot, folder, engine, image, "examiner1")
    fill(first, Conclusion.STRONG_SAME, Finding.SIMILAR)
    record(qtbot, first)
    context.pool.wait()
    first.close()

    _context, second = open_compare(qtbot, folder, engine, image, "examiner2")
    sheet = second.sheet
    assert sheet.view is not None and sheet.view.blind
    assert "Blind verification" in sheet.others_label.text()
    assert not sheet.others.isVisibleTo(second)
    # Nothing of the first sheet reached this examiner's form or screen.
    assert sheet.conclusion_box.currentData() is None
    assert sheet.note_edits["ears"].text() == "" and sheet.annotations == []
    fill(second, Conclusion.LIMITED_SAME, Finding.DISSIMILAR)
    stored = record(qtbot, second)
    assert stored.role == "verification"
    assert sheet.others.isVisibleTo(second) and sheet.others.columnCount() == 3
    differing = {
        sheet.others.item(row, 0).text()
        for row in range(sheet.others.rowCount())
        if sheet.others.item(row, 1).data(Qt.ItemDataRole.UserRole) == "differs"
    }
    assert differing == {"Ears", "Conclusion"}
    assert "2 difference(s)" in sheet.others_label.text()
    texts = {sheet.others.item(row, 2).text() for row in range(sheet.others.rowCount())}
    assert "strong support for same source" in texts


def test_the_pdf_prints_the_sheet_and_its_scale(qtbot, searched, engine, tmp_path) -> None:
    import shutil
    import subprocess
    import unicodedata

    from workstation.gallery.comparisons import record_sheet
    from workstation.gallery.sheets import CONCLUSION_SCALE, Annotation, SheetInput
    from workstation.gui.report_pdf import render_pdf
    from workstation.reports.case_report import export_case_report

    folder, _image = searched
    with open_as(folder, "examiner1") as gallery:
        record_sheet(
            gallery,
            gallery.case_search_records(CASE.case_id)[0].search_id,
            "obama",
            SheetInput(
                features={key: Finding.SIMILAR for key, _ in FEATURES},
                conclusion=Conclusion.STRONG_SAME,
                conclusion_note="ears and nose weigh most",
                annotations=(Annotation("probe", "circle", 128, 128, 30),),
            ),
        )
        pdf = tmp_path / "report.pdf"
        export_case_report(gallery, CASE.case_id, pdf, render_pdf)
    bundle = (tmp_path / "report.json").read_text(encoding="utf-8")
    assert "strong support for same source" in bundle and "conclusion_scale_source" in bundle
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    flat = " ".join(unicodedata.normalize("NFKC", text).split())  # "ﬀ" ligatures as "ff"
    assert "ACE-V comparison of obama" in flat and "ears and nose weigh most" in flat
    for words in CONCLUSION_SCALE:
        assert words in flat
    assert "circle on the probe" in flat
