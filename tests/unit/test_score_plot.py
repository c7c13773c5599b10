"""The score in context (issue 15 item 6): the plot's data comes from the search's own stored
calibration and the shipped same-person table; its geometry marks the candidate's score where
the axis puts it, with the FMR words every surface shows; the report hands it to the renderer."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from examiners import open_as
from lobby_search import enrol_and_search

from workstation.calibration.reference import load_mated_reference, load_reference
from workstation.gallery.decisions import record_decision
from workstation.reports import score_plot as plot_data
from workstation.reports.bundle import build_case_bundle
from workstation.reports.case_report import report_html, report_images
from workstation.reports.columns import cell
from workstation.reports.score_plot import ScorePlot, score_plot, search_calibration
from workstation.vision.registry import CONFIGURATIONS, DEFAULT_CONFIGURATION, configuration

CASE = "2026-0601"


@pytest.fixture
def searched(tmp_path: Path, engine, photo_paths, shared_faces):
    folder = tmp_path / "gallery"
    with open_as(folder, "examiner1") as gallery:
        others = sorted((shared_faces / "deepface").glob("*.jpg"))[:4]
        record = enrol_and_search(
            gallery, engine, photo_paths, CASE, "find the man in the lobby", others
        )
        record_decision(gallery, record.search_id, "obama", "possible_lead", "ears agree")
    return folder, record.search_id


def test_every_shipped_configuration_has_a_pinned_mated_table() -> None:
    assert configuration(DEFAULT_CONFIGURATION).mated_reference is not None
    for config in CONFIGURATIONS:
        if config.reference is None:
            assert config.mated_reference is None  # the plot says none is shipped
            continue
        assert config.mated_reference is not None, config.key
        model_id = str(config.expected_model_id())
        table = load_mated_reference(model_id)
        strangers = load_reference(model_id)
        assert table is not None and strangers is not None, config.key
        assert table.histogram.pairs >= 300, config.key
        # Same-person pairs score far above strangers: the two humps are apart.
        assert table.histogram.mean_and_sd()[0] > strangers.histogram.mean_and_sd()[0] + 0.2


def test_plot_data_comes_from_the_search_and_its_calibration(searched) -> None:
    folder, search_id = searched
    with open_as(folder, "examiner1") as gallery:
        record = gallery.search_record(search_id)
        top = record.candidates[0]
        plot = score_plot(gallery, record, top)
        calibration = search_calibration(gallery, record)
    assert plot is not None and calibration is not None
    assert calibration.sha256 == record.calibration["sha256"]
    assert plot.subject_id == top.subject_id == "obama" and plot.score == top.score
    assert plot.fmr_words == cell("fmr", top, record) and plot.fmr_words in plot.caption
    assert sorted(plot.others) == sorted(c.score for c in record.candidates[1:])
    assert plot.low <= min(c.score for c in record.candidates) < plot.high
    assert plot.low < top.score < plot.high <= 1.0
    # The bars are the calibration's own counts: their shares add up to the pairs on the axis.
    inside = calibration.histogram.pairs - calibration.histogram.exceeding(plot.high)
    inside -= calibration.histogram.pairs - calibration.histogram.exceeding(plot.low)
    assert sum(plot.impostor_share) == pytest.approx(inside / calibration.histogram.pairs, 1e-4)
    assert plot.mated_share is not None and plot.mated_label and "same-person" in plot.mated_label
    assert ScorePlot.from_bytes(plot.to_bytes()) == plot


def test_geometry_marks_the_candidate_and_shades_the_strangers_above_it(searched) -> None:
    folder, search_id = searched
    with open_as(folder, "examiner1") as gallery:
        record = gallery.search_record(search_id)
        # A low candidate, so strangers' bars lie on both sides of its mark.
        low = record.candidates[-1]
        plot = score_plot(gallery, record, low)
    assert plot is not None
    width, height = 900.0, 300.0
    shapes = plot.layout(width, height)
    (marker,) = [s for s in shapes if s.kind == "line" and s.role == plot_data.CANDIDATE]
    left, right = 4 * height / 100, width - 4 * height / 100
    assert marker.x == pytest.approx(
        left + (low.score - plot.low) / (plot.high - plot.low) * (right - left)
    )
    (words,) = [s for s in shapes if s.kind == "text" and s.role == plot_data.CANDIDATE]
    assert f"FMR {cell('fmr', low, record)}" in words.text and f"{low.score:.3f}" in words.text
    others = [s for s in shapes if s.kind == "line" and s.role == plot_data.OTHER]
    assert len(others) == len(record.candidates) - 1
    bars = [s for s in shapes if s.kind == "bar"]
    tail = [b for b in bars if b.role == plot_data.IMPOSTOR_TAIL]
    body = [b for b in bars if b.role == plot_data.IMPOSTOR]
    assert tail and body
    assert all(b.x + b.x2 > marker.x - 1e-6 for b in tail)
    assert all(b.x + b.x2 <= marker.x + b.x2 + 1e-6 for b in body)
    assert all(0 <= s.x <= width and 0 <= s.y <= height for s in shapes)
    assert any(s.role == plot_data.MATED for s in shapes)


def test_the_report_hands_the_plot_to_the_renderer_for_the_lead(searched) -> None:
    folder, search_id = searched
    with open_as(folder, "reviewer") as gallery:
        bundle = build_case_bundle(gallery, CASE)
        images = report_images(gallery, bundle)
    (record,) = bundle.records
    lead = next(c for c in record.candidates if c.subject_id == "obama")
    key = f"{plot_data.PLOT_KEY_PREFIX}{search_id}-{lead.rank}"
    assert [k for k in images if k.startswith(plot_data.PLOT_KEY_PREFIX)] == [key]
    plot = ScorePlot.from_bytes(images[key])
    page = report_html(bundle, "case.json", "0" * 64, images)
    assert f"src='{key}'" in page and "Score in context" in page
    assert html.escape(plot.fmr_words, quote=False) in page
    inline = report_html(bundle, "case.json", "0" * 64, images, inline_images=True)
    assert f"src='{key}'" not in inline and "Score in context" in inline
