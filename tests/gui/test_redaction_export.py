"""Redaction in the exported PDF (rasterised with pdftoppm and read with the product's own
detector and SFace), and the Redaction dialog (pytest-qt)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from group_photos import CASE, PURPOSE, group_photo, inside

from tests.gui.analyst_support import WAIT_MS, make_context
from workstation.calibration.reference import same_person_score
from workstation.cli import main as cli_main
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.redactions import unredact
from workstation.gallery.search import search_image
from workstation.gui.redaction_dialog import RedactionDialog
from workstation.gui.report_pdf import render_pdf
from workstation.progress import drain
from workstation.reports.case_report import export_case_report
from workstation.reports.redaction import search_redaction
from workstation.vision.cvcompat import cv2_module
from workstation.vision.images import load_image

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
    reason="poppler-utils (pdftoppm, pdftotext) not installed",
)


@pytest.fixture
def group_search(gallery, engine, photo_paths, tmp_path):
    """Obama enrolled; Biden (twice in the photo, one small) is a bystander, never enrolled."""
    drain(enroll(gallery, engine, items_for_subject("P-OBAMA", [photo_paths["obama"]], "Obama")))
    path = tmp_path / "group.png"
    spots = group_photo(engine, photo_paths, path)
    record = search_image(gallery, engine, load_image(path), CASE, PURPOSE)
    return gallery, record, spots


def _page_faces(engine, pdf: Path, folder: Path) -> list[np.ndarray]:
    """Embeddings of every face the product's detector finds on the PDF's pages (150 dpi)."""
    folder.mkdir()
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(pdf), str(folder / "page")], check=True)
    found = []
    for page in sorted(folder.glob("page*.png")):
        bgr = cv2_module().imread(str(page))
        detections = engine.detect(bgr)
        if detections:
            found += list(engine.embed_faces(bgr, [(d.box, d.landmarks) for d in detections]))
    return found


def _best(faces: list[np.ndarray], reference: np.ndarray) -> float:
    return max((float(np.dot(face, reference)) for face in faces), default=-1.0)


@needs_poppler
def test_pdf_shows_the_searched_face_sharp_and_bystanders_redacted(
    group_search, engine, photo_paths, tmp_path
) -> None:
    gallery, record, spots = group_search
    biden = engine.analyze(load_image(photo_paths["biden"]).bgr)[0].embedding
    obama = engine.analyze(load_image(photo_paths["obama2"]).bgr)[0].embedding
    same_person, _ = same_person_score(str(engine.model))

    pdf = tmp_path / "redacted.pdf"
    export_case_report(gallery, CASE, pdf, render_pdf)
    faces = _page_faces(engine, pdf, tmp_path / "pages")
    # The searched face is in the report, recognisable (baseline for the reading below).
    assert _best(faces, obama) >= same_person
    # No face on any page is recognisable as the bystander.
    assert _best(faces, biden) < same_person
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    # Both Biden faces and a face half hidden behind Obama's shoulder in obama2.jpg.
    count = search_redaction(gallery, record.search_id).bystander_faces_redacted
    assert count == 3 and f"{count} bystander faces redacted" in " ".join(text.split())

    # Un-redacting the near bystander with a note: the face is shown, the note is printed.
    plan = search_redaction(gallery, record.search_id)
    near = next(b for b in plan.boxes if inside(b.box, spots["biden_near"]))
    unredact(gallery, record.search_id, near.box, "witness; consented to be shown")
    shown_pdf = tmp_path / "unredacted.pdf"
    report = export_case_report(gallery, CASE, shown_pdf, render_pdf)
    assert _best(_page_faces(engine, shown_pdf, tmp_path / "pages2"), biden) >= same_person
    text = subprocess.run(["pdftotext", str(shown_pdf), "-"], capture_output=True, text=True)
    words = " ".join(text.stdout.split())
    assert f"{count - 1} bystander faces redacted" in words
    assert "un-redacted by" in words and "witness; consented to be shown" in words
    listed = report.bundle.data["searches"][0]["redaction"]["boxes"]
    assert sum(1 for item in listed if not item["redacted"]) == 1
    export = gallery.audit_events(case_id=CASE)[-1]
    assert export.action == "export" and export.details["redaction"]["boxes_unredacted"] == 1
    assert export.details["redaction"]["bystander_faces_redacted"] == count - 1
    assert cli_main(["--gallery", str(gallery.folder), "audit", "verify"]) == 0


@needs_poppler
def test_pdf_of_an_enhanced_search_redacts_both_previews(
    gallery, engine, photo_paths, tmp_path
) -> None:
    """A search on a working copy (crop leaving the small Biden out, rotate, upscale, gamma):
    the PDF shows the original and the working copy with the bystanders blurred in both, and
    the searched face sharp; un-redacting the near bystander shows him (the reading's
    baseline)."""
    from workstation.vision.enhancement_steps import parse_steps

    drain(enroll(gallery, engine, items_for_subject("P-OBAMA", [photo_paths["obama"]], "Obama")))
    path = tmp_path / "group.png"
    spots = group_photo(engine, photo_paths, path)
    steps = parse_steps(
        [
            {"step": "crop", "x": 20, "y": 60, "width": 920, "height": 620},
            {"step": "rotate", "angle": 8.0},
            {"step": "upscale", "factor": 1.5},
            {"step": "gamma", "gamma": 1.2},
        ]
    )
    record = search_image(gallery, engine, load_image(path), CASE, PURPOSE, steps=steps)
    biden = engine.analyze(load_image(photo_paths["biden"]).bgr)[0].embedding
    obama = engine.analyze(load_image(photo_paths["obama2"]).bgr)[0].embedding
    same_person, _ = same_person_score(str(engine.model))

    pdf = tmp_path / "enhanced.pdf"
    export_case_report(gallery, CASE, pdf, render_pdf)
    faces = _page_faces(engine, pdf, tmp_path / "pages")
    assert _best(faces, obama) >= same_person
    assert _best(faces, biden) < same_person
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    words = " ".join(text.split())
    assert "in the original and in the working copy" in words
    assert "bystanders redacted by carrying the original's boxes through the steps" in words

    plan = search_redaction(gallery, record.search_id)
    near = next(b for b in plan.boxes if inside(b.box, spots["biden_near"]))
    unredact(gallery, record.search_id, near.box, "witness; consented to be shown")
    shown_pdf = tmp_path / "enhanced-unredacted.pdf"
    export_case_report(gallery, CASE, shown_pdf, render_pdf)
    assert _best(_page_faces(engine, shown_pdf, tmp_path / "pages2"), biden) >= same_person


def test_redaction_dialog_lists_boxes_unredacts_and_adds(
    qtbot, group_search, engine, tmp_path
) -> None:
    gallery, _, spots = group_search
    context = make_context(gallery.folder, engine, gallery.user)
    dialog = RedactionDialog(context, CASE)
    qtbot.addWidget(dialog)
    dialog.show()
    try:
        qtbot.waitUntil(lambda: dialog.preview is not None, timeout=WAIT_MS)
        plan = dialog.preview.plan
        assert dialog.box_list.count() == len(plan.boxes) >= 2
        assert "bystander faces redacted" in dialog.statement_label.text()
        # The image shown is the redacted one: the near bystander's pixels differ from the file.
        near_row = next(i for i, b in enumerate(plan.boxes) if inside(b.box, spots["biden_near"]))
        dialog.box_list.setCurrentRow(near_row)
        assert dialog.unredact_button.isEnabled()
        with qtbot.waitSignal(dialog.changed, timeout=WAIT_MS):
            dialog.unredact_box(near_row, "named witness")
        qtbot.waitUntil(
            lambda: dialog.preview is not None and dialog.preview.plan.unredacted_count == 1,
            timeout=WAIT_MS,
        )
        assert "SHOWN" in dialog.box_list.item(near_row).text()
        count = dialog.box_list.count()
        with qtbot.waitSignal(dialog.changed, timeout=WAIT_MS):
            dialog.canvas.box_drawn.emit(type(plan.boxes[0].box)(300, 620, 160, 50))
        qtbot.waitUntil(lambda: dialog.box_list.count() == count + 1, timeout=WAIT_MS)
        events = [e.action for e in gallery.audit_events(case_id=CASE)]
        assert events[-2:] == ["unredact", "redaction_box"]
    finally:
        dialog.close()
        context.pool.cancel_all()
        context.pool.wait()
