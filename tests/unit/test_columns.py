"""The candidate column spec: one list read by every table of candidates."""

from __future__ import annotations

from dataclasses import replace

import pytest

from workstation.domain import (
    BBox,
    Candidate,
    Decision,
    DecisionRecord,
    FaceSource,
    Quality,
    Verdict,
)
from workstation.gallery.records import ProbeInfo, SearchedFace, SearchRecord
from workstation.reports import columns
from workstation.reports.columns import (
    CANDIDATE_COLUMNS,
    NA,
    NO_DECISION,
    Align,
    CandidateColumn,
    Surface,
    column_index,
    columns_for,
    decision_text,
    legend,
    text_table,
)


def _record(*candidates: Candidate, decisions: tuple[DecisionRecord, ...] = ()) -> SearchRecord:
    quality = Quality(0.9, 80.0, 300.0, 0.0, 0.0, 0.0, Verdict.GOOD, ())
    return SearchRecord(
        search_id=3,
        case_id="C-1",
        purpose="lead",
        examiner="ana",
        created_at="2026-05-01T10:12:00+00:00",
        probe=ProbeInfo("/cases/probe.jpg", "ab" * 32, 640, 480),
        face=SearchedFace(0, BBox(1, 2, 30, 40), None, FaceSource.DETECTED, True, quality),
        model_id="sface@abc",
        gallery_faces=1000,
        candidates=candidates,
        decisions=decisions,
    )


BOUND = Candidate(
    1, "P-1", 11, 0.73041, 1.21e-5, "< 1 in 82,940", True, 0.0121, name="Ann", face_quality="good"
)
POINT = Candidate(2, "P-22", 12, 0.2387, 0.071, "1 in 14", False, 71.0, name=None)
UNKNOWN = Candidate(3, "P-3", 13, 0.1, None, "FMR unknown: only 12 impostor pairs", False, None)


def test_every_surface_reads_the_one_list_in_its_order() -> None:
    keys = [c.key for c in CANDIDATE_COLUMNS]
    assert len(set(keys)) == len(keys)
    for surface in Surface:
        shown = [c.key for c in columns_for(surface)]
        assert shown == [
            k for k in keys if surface in next(c for c in CANDIDATE_COLUMNS if c.key == k).surfaces
        ]
        assert {"rank", "subject", "name", "score", "fmr"} <= set(shown)
    assert column_index(Surface.CLI, "face") == -1
    assert column_index(Surface.SEARCH_TAB, "face") == 1


def test_cells_show_the_stored_words() -> None:
    record = _record(BOUND, POINT, UNKNOWN)
    by_key = {c.key: c for c in CANDIDATE_COLUMNS}
    assert by_key["fmr"].text(BOUND, record) == "< 1 in 82,940"
    assert "upper bound" in by_key["fmr"].tip(BOUND, record)
    assert by_key["strangers"].text(BOUND, record) == "< 0.012"
    assert by_key["fmr"].text(POINT, record) == "1 in 14"
    assert by_key["strangers"].text(POINT, record) == "71"
    assert by_key["fmr"].text(UNKNOWN, record) == NA
    assert by_key["fmr"].tip(UNKNOWN, record).startswith("FMR unknown")
    assert by_key["strangers"].text(UNKNOWN, record) == NA
    assert by_key["score"].text(BOUND, record) == "0.7304"
    assert by_key["name"].text(POINT, record) == ""
    deleted = replace(POINT, subject_deleted=True)
    assert by_key["name"].text(deleted, record) == "deleted subject"
    assert by_key["decision"].text(BOUND, record) == NO_DECISION


def test_decisions_in_words() -> None:
    lead = DecisionRecord(
        1, 3, "P-1", Decision.POSSIBLE_LEAD, "scar", "ana", "2026-05-01T10:20:00", None
    )
    later = DecisionRecord(2, 3, "P-1", Decision.EXCLUDED, None, "ana", "2026-05-01T10:30:00", None)
    confirmed = DecisionRecord(
        3, 3, "P-1", Decision.CONFIRMED, None, "ben", "2026-05-01T11:00:00", 1
    )
    assert decision_text([]) == ""
    assert decision_text([lead]) == "possible lead (ana)"
    assert decision_text([lead, confirmed]) == "possible lead (ana); confirmed by ben"
    assert decision_text([lead, later]) == "excluded (ana)"
    record = _record(BOUND, decisions=(lead, confirmed))
    decision = next(c for c in CANDIDATE_COLUMNS if c.key == "decision")
    assert decision.text(BOUND, record) == "possible lead (ana); confirmed by ben"


def test_text_table_aligns_numbers_right() -> None:
    lines = text_table(_record(BOUND, POINT, UNKNOWN), Surface.CLI)
    header, first, second, third = lines
    assert header.split() == [c.header for c in columns_for(Surface.CLI)]
    assert "< 1 in 82,940" in first and "Ann" in first
    # Right-aligned: the FMR column ends at the same place on every line.
    end = header.index("FMR") + len("FMR")
    assert first[:end].endswith("< 1 in 82,940") and second[:end].endswith("1 in 14")
    assert third[:end].endswith(NA)
    assert legend(Surface.CLI).startswith("Rank: ")


def test_adding_a_column_is_one_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = CandidateColumn(
        "face_id",
        "Face id",
        "The gallery face that matched best",
        lambda c, _r: str(c.face_id),
        align=Align.RIGHT,
    )
    monkeypatch.setattr(columns, "CANDIDATE_COLUMNS", (*CANDIDATE_COLUMNS, extra))
    for surface in Surface:
        assert columns_for(surface)[-1] is extra
    lines = text_table(_record(BOUND), Surface.CLI)
    assert lines[0].endswith("Face id") and lines[1].endswith("11")
    assert "Face id: The gallery face that matched best." in legend(Surface.REPORT)
