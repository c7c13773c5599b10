"""A stored photo that no longer matches its recorded SHA-256 is never shown as the enrolled
photo: thumbnails, the candidate table, Compare, the gallery manager and the report say so."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from examiners import open_as
from PySide6.QtCore import Qt

from tests.gui.analyst_support import CASE, WAIT_MS, enrol_gallery, make_context
from workstation.gallery.search import ProbeInfo, search_face
from workstation.gui.candidates import CandidatesWidget, CandidateTableModel
from workstation.gui.compare_view import CompareDialog
from workstation.gui.gallery_manager import GalleryManagerWidget
from workstation.vision.images import load_image

ALTERED = "does not match its recorded SHA-256: altered or replaced"


@pytest.fixture
def altered(tmp_path: Path, qtbot, engine, photo_paths):
    """obama and biden enrolled, a search recorded, then obama's stored copy swapped for
    biden's photo (as someone with file access could)."""
    folder = enrol_gallery(tmp_path / "gallery", engine, photo_paths)
    image = load_image(photo_paths["obama2"])
    with open_as(folder, "examiner1") as gallery:
        search_face(
            gallery,
            engine.analyze(image.bgr)[0],
            ProbeInfo.from_image(image),
            CASE.case_id,
            CASE.purpose,
        )
        obama = gallery.faces_of("obama")[0]
        stored = folder / obama.stored_path
    shutil.copyfile(photo_paths["biden"], stored)
    context = make_context(folder, engine)
    context.set_case(CASE)
    yield context, obama
    context.pool.cancel_all()
    context.pool.wait()


def test_candidate_table_and_compare_say_so(qtbot, altered) -> None:
    context, obama = altered
    candidates = CandidatesWidget(context)
    qtbot.addWidget(candidates)
    with qtbot.waitSignal(candidates.searches_loaded, timeout=WAIT_MS):
        candidates.reload()
    model = candidates.model
    row = model.row_of("obama")
    thumb = model.index(row, CandidateTableModel.COL_THUMB)
    qtbot.waitUntil(lambda: thumb.data(Qt.ItemDataRole.DecorationRole) is not None, timeout=WAIT_MS)
    # In place of the photo: the pink "ALTERED" square, never the photo now on disk.
    notice = thumb.data(Qt.ItemDataRole.DecorationRole).toImage()
    assert notice.pixelColor(2, 2).name() == "#f3d6d6"
    other = model.index(model.row_of("biden"), CandidateTableModel.COL_THUMB)
    qtbot.waitUntil(lambda: other.data(Qt.ItemDataRole.DecorationRole) is not None, timeout=WAIT_MS)
    assert other.data(Qt.ItemDataRole.DecorationRole).toImage().pixelColor(2, 2).name() != (
        "#f3d6d6"
    )

    candidates.select_candidate_row(row)
    dialog = CompareDialog(context, candidates, None)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.load_failed, timeout=WAIT_MS) as failed:
        dialog.show()
    assert f"stored photo of face {obama.id} {ALTERED}" in failed.args[0]
    assert ALTERED in dialog.error_label.text() and not dialog.error_label.isHidden()


def test_gallery_manager_says_so(qtbot, altered) -> None:
    context, obama = altered
    manager = GalleryManagerWidget(context)
    qtbot.addWidget(manager)
    manager.show()  # the list is read when the tab is in view
    manager.reload_subjects()
    qtbot.waitUntil(lambda: manager.subjects_model.rowCount() == 2, timeout=WAIT_MS)
    manager.subjects_view.setCurrentIndex(
        manager.subjects_model.index(manager.subjects_model.row_of("obama"), 0)
    )
    qtbot.waitUntil(lambda: manager.faces_model.rowCount() == 1, timeout=WAIT_MS)
    face = manager.faces_model.index(0, 0)
    face.data(Qt.ItemDataRole.DecorationRole)  # asks for the thumbnail, as the view does
    qtbot.waitUntil(lambda: manager.thumbnails.failure(obama) is not None, timeout=WAIT_MS)
    manager.faces_view.setCurrentIndex(face)
    assert ALTERED in manager.face_details.text()
    assert ALTERED in face.data(Qt.ItemDataRole.ToolTipRole)
    # In place of the photo: the red-lettered "ALTERED" square, not the photo now on disk.
    shown = manager.thumbnails.pixmap(obama, context.gallery_dir / obama.stored_path)
    assert shown.cacheKey() == manager.thumbnails._altered.cacheKey()


def test_report_says_so_in_place_of_the_photo(altered, tmp_path: Path) -> None:
    context, obama = altered
    pdf = tmp_path / "report.pdf"
    code, _, err = run_cli(
        "--gallery", str(context.gallery_dir), "export", "--case", CASE.case_id, "--pdf", str(pdf)
    )
    assert code == 0, err
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    flat = " ".join(text.split())
    assert f"Photos not shown: stored photo of face {obama.id} {ALTERED}" in flat


def run_cli(*argv: str) -> tuple[int, str, str]:
    import io

    from workstation.cli import main
    from workstation.entry import HOOKS

    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err, hooks=HOOKS)
    return code, out.getvalue(), err.getvalue()
