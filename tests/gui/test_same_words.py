"""One candidate below the calibration floor, rendered through every surface, says the same words.

The defect this guards against: for a score no stranger pair reached, the CLI, the JSON bundle
and the footage tab said "< 1 in 82,940" (an upper bound) while the Search tab and the
court-facing PDF re-formatted the number as "1 in 83,000" (a point estimate).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from examiners import open_as

from tests.gui.analyst_support import WAIT_MS, enrol_gallery, make_context
from workstation.calibration.histogram import one_in
from workstation.cli import main as cli_main
from workstation.entry import HOOKS
from workstation.gui.candidates import CandidatesWidget
from workstation.gui.context import CaseInfo
from workstation.gui.footage_panel import FootagePanelWidget
from workstation.gui.footage_tracks import FOOTAGE_COLUMNS

CASE = CaseInfo("2026-0501", "same words on every surface")


def _cli(folder: Path, *args: str, hooks=None) -> str:
    out, err = io.StringIO(), io.StringIO()
    code = cli_main(["--gallery", str(folder), "--user", "examiner1", *args], out, err, hooks)
    assert code == 0, err.getvalue()
    return out.getvalue()


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_a_below_floor_candidate_reads_the_same_everywhere(
    qtbot, tmp_path, engine, photo_paths
) -> None:
    folder = enrol_gallery(tmp_path / "gallery", engine, photo_paths)
    probe = str(photo_paths["obama2"])
    case = ["--case", CASE.case_id, "--purpose", CASE.purpose]

    # CLI --json: the search's own record.
    line = json.loads(_cli(folder, "search", *case, "--json", probe))
    top = line["candidates"][0]
    words = top["fmr_text"]
    assert top["subject_id"] == "obama" and top["fmr_upper_bound"] is True
    assert words == f"< 1 in {line['calibration']['impostor_pairs']:,}"
    point_estimate = one_in(top["fmr"])  # what the old Search tab and PDF printed instead
    assert point_estimate != words

    # CLI text (a second search of the same probe and gallery: same calibration, same words).
    text = _cli(folder, "search", *case, probe)
    (row,) = [r for r in text.splitlines() if " obama " in f" {r} "]
    assert words in row and point_estimate not in row

    # Search tab: the candidate table of each recorded search.
    context = make_context(folder, engine)
    context.set_case(CASE)
    widget = CandidatesWidget(context)
    qtbot.addWidget(widget)
    with qtbot.waitSignal(widget.searches_loaded, timeout=WAIT_MS):
        widget.reload()
    assert len(widget.searches) == 2
    model = widget.model
    for search in widget.searches:
        model.set_search(search)
        assert model.data(model.index(model.row_of("obama"), model.COL_FMR)) == words

    # Footage tab: its candidate table shows a recorded search the same way.
    panel = FootagePanelWidget(context)
    qtbot.addWidget(panel)
    with open_as(folder, "examiner1") as gallery:
        record = gallery.search_record(line["search_id"])
    panel.tracks.show_search(record)
    fmr_column = next(i for i, c in enumerate(FOOTAGE_COLUMNS) if c.key == "fmr")
    assert panel.tracks.results.item(0, fmr_column).text() == words

    # JSON bundle and PDF, written from the command line through the program entry's Qt
    # renderer (offscreen); the HTML the PDF is drawn from is kept to check it too.
    drawn: list[str] = []

    def keep_html(html, pdf_path, images, page):
        drawn.append(html)
        return HOOKS.render_pdf(html, pdf_path, images, page)

    pdf = tmp_path / "out" / "case.pdf"
    hooks = type(HOOKS)(run_gui=None, render_pdf=keep_html)
    said = _cli(folder, "export", "--case", CASE.case_id, "--pdf", str(pdf), hooks=hooks)
    assert "case report written" in said and pdf.read_bytes().startswith(b"%PDF")
    bundle = json.loads(pdf.with_suffix(".json").read_text(encoding="utf-8"))
    for search in bundle["searches"]:
        candidate = next(c for c in search["candidates"] if c["subject_id"] == "obama")
        assert candidate["fmr_text"] == words and candidate["fmr_upper_bound"] is True
    (html,) = drawn
    # One per search in the candidates table and one in the caption of its score plot (the
    # plot draws the same words as a picture), escaped as text.
    assert html.count(words.replace("<", "&lt;")) == 2 * 2
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    pdf_text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert _squeeze(pdf_text).count(words) == 2 * 2
    assert point_estimate not in pdf_text
