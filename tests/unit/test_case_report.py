"""The case report's HTML (Qt-free): built from the bundle's records, untrusted text escaped,
face images encoded by the core; the PDF needs a renderer handed in from above."""

from __future__ import annotations

import html
import io
import json
import re
from pathlib import Path

import pytest
from examiners import open_as

from workstation.cli import main as cli_main
from workstation.errors import WorkstationError
from workstation.gallery.decisions import record_decision
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.search import search_image
from workstation.progress import drain
from workstation.reports.bundle import build_case_bundle
from workstation.reports.case_report import (
    STRUT,
    PageSetup,
    bundle_path_for,
    export_case_report,
    report_html,
    report_images,
)
from workstation.reports.columns import Surface, columns_for
from workstation.reports.score_plot import PLOT_KEY_PREFIX
from workstation.vision.images import load_image

HOSTILE_NAME = "<s></s>bob"
HOSTILE_PURPOSE = "<b>CONFIRMED MATCH</b> & more"
HOSTILE_NOTE = "<table><tr><td>CONFIRMED MATCH</td></tr></table>"
HOSTILE_CASE = "C-<i>9</i>"
HOSTILE_EXAMINER = "<u>mallory</u>"


@pytest.fixture
def hostile_case(tmp_path: Path, engine, photo_paths) -> Path:
    """A real search whose every free-text field is markup."""
    folder = tmp_path / "gallery"
    with open_as(folder, HOSTILE_EXAMINER) as gallery:
        items = items_for_subject("P-1", [photo_paths["obama"]], HOSTILE_NAME)
        items += items_for_subject("P-2", [photo_paths["biden"]], "Joe Biden")
        drain(enroll(gallery, engine, items))
        record = search_image(
            gallery, engine, load_image(photo_paths["obama2"]), HOSTILE_CASE, HOSTILE_PURPOSE
        )
        record_decision(gallery, record.search_id, "P-1", "possible_lead", HOSTILE_NOTE)
    return folder


def _visible_text(markup: str) -> str:
    """What a reader sees: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def test_untrusted_text_shows_literally(hostile_case: Path) -> None:
    with open_as(hostile_case, "reviewer") as gallery:
        bundle = build_case_bundle(gallery, HOSTILE_CASE)
        images = report_images(gallery, bundle)
    page = report_html(bundle, "case.json", "0" * 64, images)
    for text in (HOSTILE_NAME, HOSTILE_PURPOSE, HOSTILE_NOTE, HOSTILE_CASE, HOSTILE_EXAMINER):
        assert text not in page, f"{text!r} went into the HTML as markup"
        assert html.escape(text, quote=False) in page or html.escape(text) in page
        assert text in _visible_text(page)
    # The report's own markup is still there: headings, tables, the candidate columns.
    assert page.count("<h2") >= 5
    for column in columns_for(Surface.REPORT):
        assert f">{html.escape(column.header)}</th>" in page


def test_images_are_png_made_by_the_core(hostile_case: Path) -> None:
    with open_as(hostile_case, "reviewer") as gallery:
        bundle = build_case_bundle(gallery, HOSTILE_CASE)
        images = report_images(gallery, bundle)
    (record,) = bundle.records
    expected = {STRUT, f"probe-{record.search_id}", f"probephoto-{record.search_id}"} | {
        f"face-{c.face_id}" for c in record.candidates
    }
    plots = {key for key in images if key.startswith(PLOT_KEY_PREFIX)}  # data, drawn by Qt
    assert set(images) - plots == expected
    assert all(images[key].startswith(b"\x89PNG\r\n\x1a\n") for key in expected)
    by_name = report_html(bundle, "case.json", "0" * 64, images)
    assert f"src='face-{record.candidates[0].face_id}'" in by_name and "data:" not in by_name
    inline = report_html(bundle, "case.json", "0" * 64, images, inline_images=True)
    assert "src='data:image/png;base64," in inline and "src='face-" not in inline


def test_export_hands_the_html_to_the_renderer_it_is_given(hostile_case: Path, tmp_path) -> None:
    drawn: dict[str, object] = {}

    def renderer(html_text: str, pdf_path: Path, images, page: PageSetup) -> int:
        drawn.update(html=html_text, images=dict(images), page=page)
        pdf_path.write_bytes(b"%PDF-1.4 drawn by the test renderer\n")
        return 3

    pdf = tmp_path / "out" / "report.pdf"
    with open_as(hostile_case, "reviewer") as gallery:
        report = export_case_report(gallery, HOSTILE_CASE, pdf, renderer)
    assert report.pages == 3 and report.json_path == bundle_path_for(pdf)
    bundle = json.loads(report.json_path.read_text(encoding="utf-8"))
    with open_as(hostile_case, "reviewer") as gallery:
        export = gallery.audit_events()[-1]
    assert export.action == "export" and export.details["extra_files"] == [str(pdf)]
    assert export.prev_hash == bundle["audit"]["head_hash"]
    page = drawn["page"]
    assert isinstance(page, PageSetup) and bundle["audit"]["head_hash"][:16] in page.footer
    assert HOSTILE_CASE in page.title  # plain text for the PDF's metadata, not HTML
    with open_as(hostile_case, "reviewer") as gallery, pytest.raises(WorkstationError):
        export_case_report(gallery, HOSTILE_CASE, tmp_path / "x.json", renderer)


def test_cli_without_the_program_entry_cannot_draw_a_pdf(hostile_case: Path, tmp_path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = cli_main(
        [
            "--gallery",
            str(hostile_case),
            "export",
            "--case",
            HOSTILE_CASE,
            "--pdf",
            str(tmp_path / "r.pdf"),
        ],
        out,
        err,
    )
    assert code == 1 and "PDF writer" in err.getvalue() and not (tmp_path / "r.pdf").exists()
    code = cli_main(["--gallery", str(hostile_case), "export", "--case", HOSTILE_CASE], out, err)
    assert code == 1 and "--out FILE.json, --pdf FILE.pdf" in err.getvalue()
