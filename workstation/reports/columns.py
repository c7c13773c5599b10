"""The candidate columns, declared once: every table of candidates reads this list.

The Search tab's candidate table (gui/candidates.py), the footage tab's table
(gui/footage_tracks.py), the command line's text table (`search` and `footage`) and the case
report (reports/case_report.py) all take their columns, headers, words, alignment and tooltips
from `CANDIDATE_COLUMNS`. Each cell is rendered from the search record (`SearchRecord`) and its
candidate, never re-formatted by a surface, so every surface says the same words for the same
candidate. Adding a column is one entry here (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

from workstation.domain import Candidate, DecisionRecord
from workstation.gallery.records import DELETED_SUBJECT, SearchRecord

NA = "n/a"  # not calibrated: the FMR (and so the strangers) are unknown
HIDDEN = "hidden"  # blind review: not shown until every candidate has a decision
NO_DECISION = "no decision"


class Surface(str, Enum):
    """Where a table of candidates is shown."""

    SEARCH_TAB = "search_tab"
    FOOTAGE_TAB = "footage_tab"
    CLI = "cli"
    REPORT = "report"


class Align(str, Enum):
    LEFT = "left"
    RIGHT = "right"


ALL_SURFACES = frozenset(Surface)

CellText = Callable[[Candidate, SearchRecord], str]


@dataclass(frozen=True)
class CandidateColumn:
    """One column of every candidate table.

    Attributes:
        key: stable id ("fmr"), for code that must find a column.
        header: the column title.
        tooltip: what the column means (the header's tooltip; the legend under the report's
            table and the command line's).
        text: the cell's words for a candidate of a search record.
        align: numbers are right-aligned.
        surfaces: where the column is shown.
        hidden_in_blind_review: reads HIDDEN during blind review (rank and numbers).
        image: the cell shows the candidate's gallery face (thumbnail, report crop); `text` is
            then its tooltip.
        report_width: share of the report table's width (scaled so the shares add up to 100%).
        cell_tip: the cell's tooltip when it says more than the cell (default: the cell text).
    """

    key: str
    header: str
    tooltip: str
    text: CellText
    align: Align = Align.LEFT
    surfaces: frozenset[Surface] = ALL_SURFACES
    hidden_in_blind_review: bool = False
    image: bool = False
    report_width: int = 10
    cell_tip: CellText | None = None

    def tip(self, candidate: Candidate, record: SearchRecord) -> str:
        return (self.cell_tip or self.text)(candidate, record)


# ---------------------------------------------------------------------- the words of each cell
def fmr_words(candidate: Candidate) -> str:
    """The FMR as the calibration wrote it ("1 in 2,300", "< 1 in 82,940"), or n/a when unknown.

    The words are made once, by calibration.histogram.FmrEstimate.text, and stored with the
    search; here they are only shown.
    """
    if candidate.fmr is None or not candidate.fmr_text:
        return NA
    return candidate.fmr_text


def fmr_tip(candidate: Candidate) -> str:
    if candidate.fmr is None:
        return candidate.fmr_text or "FMR unknown: the search was not calibrated"
    if candidate.fmr_upper_bound:
        tip = (
            f"{candidate.fmr_text}: no stranger pair in the calibration scored this high, so "
            "this is an upper bound, not an estimate"
        )
    else:
        tip = f"{candidate.fmr_text} (false-match rate {candidate.fmr:.3g})"
    # Which rate it is (the candidate's group, the highest group's, or pooled), as the
    # calibration worded it; searches recorded before groups carry no such words.
    return f"{tip}; {candidate.fmr_basis}" if candidate.fmr_basis else tip


def strangers_words(candidate: Candidate) -> str:
    """Expected strangers at or above the score ("< 0.0012" when the FMR is an upper bound)."""
    if candidate.expected_strangers is None:
        return NA
    value = f"{candidate.expected_strangers:.2g}"
    return f"< {value}" if candidate.fmr_upper_bound else value


def name_words(candidate: Candidate) -> str:
    if candidate.subject_deleted:
        return DELETED_SUBJECT
    return candidate.name or ""


def decision_text(decisions: Iterable[DecisionRecord]) -> str:
    """The state of one candidate in words, e.g. "possible lead (examiner1); confirmed by X"."""
    decisions = list(decisions)
    if not decisions:
        return ""
    own = [d for d in decisions if d.decision != "confirmed"]
    confirmations = [d for d in decisions if d.decision == "confirmed"]
    text = ""
    if own:
        last = own[-1]
        text = f"{last.decision.replace('_', ' ')} ({last.user})"
    if confirmations:
        who = ", ".join(sorted({d.user for d in confirmations}))
        text += f"; confirmed by {who}"
    return text


# ---------------------------------------------------------------------- the columns
CANDIDATE_COLUMNS: tuple[CandidateColumn, ...] = (
    CandidateColumn(
        "rank",
        "Rank",
        "Rank by score (1 = most similar)",
        lambda c, _r: str(c.rank),
        align=Align.RIGHT,
        hidden_in_blind_review=True,
        report_width=7,
    ),
    CandidateColumn(
        "face",
        "Face",
        "The candidate's best-matching gallery face",
        lambda c, _r: f"best-matching gallery face {c.face_id}",
        surfaces=frozenset({Surface.SEARCH_TAB, Surface.REPORT}),
        image=True,
        report_width=8,
    ),
    CandidateColumn(
        "subject",
        "Subject",
        "Gallery subject id",
        lambda c, _r: c.subject_id,
        report_width=18,
    ),
    CandidateColumn(
        "name",
        "Name",
        f"Name recorded for the subject now ('{DELETED_SUBJECT}' when it has been deleted "
        "since the search)",
        lambda c, _r: name_words(c),
        report_width=15,
    ),
    CandidateColumn(
        "score",
        "Score",
        "Cosine similarity of the two faces (higher is more alike; not a probability)",
        lambda c, _r: f"{c.score:.4f}",
        align=Align.RIGHT,
        hidden_in_blind_review=True,
        report_width=9,
    ),
    CandidateColumn(
        "fmr",
        "FMR",
        "False-match rate at this score: how often two different people score this high "
        "('< 1 in N': no stranger pair reached it, an upper bound; n/a: not calibrated)",
        lambda c, _r: fmr_words(c),
        align=Align.RIGHT,
        hidden_in_blind_review=True,
        report_width=15,
        cell_tip=lambda c, _r: fmr_tip(c),
    ),
    CandidateColumn(
        "strangers",
        "Strangers",
        "How many different people a gallery of this size is expected to hold at or above "
        "this score",
        lambda c, _r: strangers_words(c),
        align=Align.RIGHT,
        hidden_in_blind_review=True,
        report_width=12,
    ),
    CandidateColumn(
        "quality",
        "Quality",
        "Quality of the gallery face",
        lambda c, _r: c.face_quality or "",
        surfaces=frozenset({Surface.SEARCH_TAB}),
    ),
    CandidateColumn(
        "decision",
        "Decision",
        "Decisions recorded on this candidate",
        lambda c, r: decision_text(r.decisions_of(c.subject_id)) or NO_DECISION,
        surfaces=frozenset({Surface.SEARCH_TAB, Surface.REPORT}),
        report_width=16,
    ),
)


def columns_for(surface: Surface) -> tuple[CandidateColumn, ...]:
    """The columns a surface shows, in order."""
    return tuple(c for c in CANDIDATE_COLUMNS if surface in c.surfaces)


def column_index(surface: Surface, key: str) -> int:
    """Position of the column `key` on a surface (-1 when the surface does not show it)."""
    for position, column in enumerate(columns_for(surface)):
        if column.key == key:
            return position
    return -1


def cell(key: str, candidate: Candidate, record: SearchRecord) -> str:
    """One column's words for a candidate, for a surface that shows a single candidate (Compare)."""
    column = next(c for c in CANDIDATE_COLUMNS if c.key == key)
    return column.text(candidate, record)


def legend(surface: Surface) -> str:
    """What each column of a surface means, one sentence each (under tables without tooltips)."""
    return " ".join(f"{c.header}: {c.tooltip}." for c in columns_for(surface) if not c.image)


def text_table(
    record: SearchRecord,
    surface: Surface = Surface.CLI,
    escape: Callable[[str], str] = str,
) -> list[str]:
    """The candidates of a search as lines of a plain-text table (the command line's).

    `escape` is applied to each cell before the columns are laid out (the command line passes
    its terminal escaping, so a name cannot move the cursor or start a fake line).
    """
    columns = [c for c in columns_for(surface) if not c.image]
    rows = [[c.header for c in columns]] + [
        [escape(c.text(candidate, record)) for c in columns] for candidate in record.candidates
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if column.align is Align.RIGHT else cell.ljust(width)
            for cell, width, column in zip(row, widths, columns, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines
