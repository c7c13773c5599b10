"""The score in context: the data and the geometry of the small plot shown in Compare and in the
case report (issue 15 item 6).

Two distributions on one score axis: the strangers' scores (the impostor table the candidate's
false-match rate was read from: the search's stored calibration, or its group's table when the
rate is a group's) and the same person's scores (the shipped mated reference table of the model
configuration, when one is shipped). This candidate's score is marked with its FMR in the words
every surface shows (`columns.cell("fmr")`); the search's other candidates are marked faintly.

Qt-free, and one drawing: `ScorePlot.layout` turns the data into shapes in a given pixel box
(bars, lines, labels, each with a role); the app's painter (gui/score_plot.py) draws those shapes
on screen, and the PDF renderer draws the same shapes with the same painter into the report's
image (`ScorePlot.to_bytes` hands the data to the renderer by name, as face crops are handed as
PNG). Tests check the geometry here and the pixels there.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from workstation.calibration.histogram import BIN_WIDTH, LOW, N_BINS, ImpostorHistogram
from workstation.calibration.record import Calibration, reference_only
from workstation.calibration.reference import load_mated_reference
from workstation.domain import Candidate
from workstation.errors import CalibrationError
from workstation.gallery.calibration import stored_calibration
from workstation.gallery.records import SearchRecord
from workstation.gallery.store import Gallery
from workstation.reports.columns import cell

# Display bins of 0.01: about 100 bars over a typical axis, fine enough to show both humps'
# shape and coarse enough that 44 mated pairs still draw a visible hump.
DISPLAY_BIN = 0.01
_FINE_PER_DISPLAY = round(DISPLAY_BIN / BIN_WIDTH)
# The axis covers the middle 99.8% of each distribution and every candidate, with a margin.
_TAIL = 0.001
_MARGIN = 0.05

PLOT_KEY_PREFIX = "scoreplot-"  # names of plots among the report's images

# Roles of the shapes (the painter chooses colours by role; tests find shapes by role).
IMPOSTOR = "impostor"
IMPOSTOR_TAIL = "impostor-tail"  # strangers' bars at or above the candidate's score
MATED = "mated"
CANDIDATE = "candidate"
OTHER = "other"
AXIS = "axis"
TICK = "tick"
LEGEND = "legend"


@dataclass(frozen=True)
class Shape:
    """One thing to draw, in pixels of the plot's box: a rectangle (`bar`), a line (`line`: from
    (x, y) to (x2, y2)) or a text (`text`, on the baseline y: starting at x, or ending there when
    `align` is "right", or centred on it when "center"; kept inside the box by the painter)."""

    kind: str
    role: str
    x: float
    y: float
    x2: float = 0.0
    y2: float = 0.0
    text: str = ""
    align: str = "left"


@dataclass(frozen=True)
class ScorePlot:
    """What the plot shows for one candidate of one search."""

    search_id: int
    subject_id: str
    rank: int
    score: float
    fmr_words: str  # the FMR column's words for this candidate, as every surface shows them
    impostor_label: str  # which strangers' table, in words
    mated_label: str | None  # which same-person table, or None when none is shipped
    low: float  # the axis
    high: float
    impostor_share: tuple[float, ...]  # share of the strangers' pairs in each display bin
    mated_share: tuple[float, ...] | None
    others: tuple[float, ...] = field(default_factory=tuple)  # the other candidates' scores

    # ------------------------------------------------------------------ words
    @property
    def caption(self) -> str:
        """The plot in one sentence (under it in the report, its tooltip in the app)."""
        same = (
            f"; green outline: two photos of the same person ({self.mated_label})"
            if self.mated_label
            else "; no same-person table is shipped for this model"
        )
        return (
            f"Grey bars: how often strangers score each value ({self.impostor_label}){same}. "
            f"Each distribution is scaled to its own peak. The red line is candidate "
            f"{self.subject_id}'s score {self.score:.4f}: strangers reach it {self.fmr_words} "
            f"(FMR, shaded). Faint ticks: the search's other candidates."
        )

    def x_fraction(self, score: float) -> float:
        """Where a score sits along the axis (0 at `low`, 1 at `high`)."""
        return (min(max(score, self.low), self.high) - self.low) / (self.high - self.low)

    # ------------------------------------------------------------------ geometry
    def layout(self, width: float, height: float) -> list[Shape]:
        """The shapes of the plot in a `width` x `height` pixel box (origin top left)."""
        unit = height / 100.0  # text and margins scale with the box
        left, right = 4 * unit, width - 4 * unit
        top, bottom = 16 * unit, height - 26 * unit
        span = right - left

        def x_of(score: float) -> float:
            return left + self.x_fraction(score) * span

        shapes: list[Shape] = []
        bins = len(self.impostor_share)
        peak = max(self.impostor_share) or 1.0
        bar_width = span / bins
        for index, share in enumerate(self.impostor_share):
            if share <= 0:
                continue
            bar_low = self.low + index * DISPLAY_BIN
            role = IMPOSTOR_TAIL if bar_low + DISPLAY_BIN > self.score else IMPOSTOR
            bar_height = max(share / peak * (bottom - top), unit * 0.4)
            shapes.append(
                Shape("bar", role, x_of(bar_low), bottom - bar_height, bar_width, bar_height)
            )
        if self.mated_share is not None:
            mated_peak = max(self.mated_share) or 1.0
            points = [
                (x_of(self.low + index * DISPLAY_BIN), bottom - share / mated_peak * (bottom - top))
                for index, share in enumerate(self.mated_share)
            ]
            # A step outline: across each bar's top, then down or up to the next.
            previous_y = bottom
            for index, (x, y) in enumerate(points):
                shapes.append(Shape("line", MATED, x, previous_y, x, y))
                shapes.append(Shape("line", MATED, x, y, x + bar_width, y))
                previous_y = y
                if index == len(points) - 1:
                    shapes.append(Shape("line", MATED, x + bar_width, y, x + bar_width, bottom))
        shapes.append(Shape("line", AXIS, left, bottom, right, bottom))
        first_tick = math.ceil(self.low * 10 - 1e-9) / 10
        tick = first_tick
        while tick <= self.high + 1e-9:
            x = x_of(tick)
            shapes.append(Shape("line", TICK, x, bottom, x, bottom + 2 * unit))
            shapes.append(
                Shape("text", TICK, x, bottom + 10 * unit, text=f"{tick:.1f}", align="center")
            )
            tick = round(tick + 0.1, 6)
        for other in self.others:
            x = x_of(other)
            shapes.append(Shape("line", OTHER, x, top - 4 * unit, x, top + 8 * unit))
        marker = x_of(self.score)
        shapes.append(Shape("line", CANDIDATE, marker, top - 6 * unit, marker, bottom))
        words = f"score {self.score:.3f} · FMR {self.fmr_words}"
        right_half = self.x_fraction(self.score) > 0.55
        shapes.append(
            Shape(
                "text",
                CANDIDATE,
                marker - unit if right_half else marker + unit,
                top - 7 * unit,
                text=words,
                align="right" if right_half else "left",
            )
        )
        legend = [
            (LEGEND, "score →"),
            (IMPOSTOR, "■ strangers"),
            (IMPOSTOR_TAIL, "■ as high"),
            (MATED, "▭ same person" if self.mated_share is not None else ""),
            (OTHER, "| other candidates" if self.others else ""),
        ]
        for index, (role, text) in enumerate(legend):
            if text:
                x = left + span * (0.0, 0.15, 0.36, 0.53, 0.76)[index]
                shapes.append(Shape("text", role, x, height - 2 * unit, text=text))
        return shapes

    # ------------------------------------------------------------------ storage
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_bytes(self) -> bytes:
        """The plot's data as UTF-8 JSON: how the report hands it to the renderer."""
        return json.dumps(self.to_dict(), sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> ScorePlot:
        values = json.loads(data.decode("utf-8"))
        values["impostor_share"] = tuple(values["impostor_share"])
        if values["mated_share"] is not None:
            values["mated_share"] = tuple(values["mated_share"])
        values["others"] = tuple(values["others"])
        return cls(**values)


def search_calibration(gallery: Gallery, record: SearchRecord) -> Calibration | None:
    """The calibration a search's FMRs were read from, checked against the SHA-256 the search
    recorded (None when the search recorded none, or it can no longer be found as it was)."""
    summary = record.calibration or {}
    model_id = summary.get("model_id")
    if not model_id:
        return None
    try:
        if summary.get("id") is not None:
            calibration = stored_calibration(gallery, int(summary["id"]))
        else:
            calibration = reference_only(str(model_id))
    except CalibrationError:
        return None
    return calibration if calibration.sha256 == summary.get("sha256") else None


def _display_shares(histogram: ImpostorHistogram, low: float, high: float) -> tuple[float, ...]:
    """Each display bin's share of all pairs, over [low, high)."""
    start = round((low - LOW) / BIN_WIDTH)
    stop = min(round((high - LOW) / BIN_WIDTH), N_BINS)
    window = histogram.counts[start:stop].astype(np.float64)
    sums = window.reshape(-1, _FINE_PER_DISPLAY).sum(axis=1)
    total = max(histogram.pairs, 1)
    return tuple(float(f"{value / total:.6g}") for value in sums)


def _quantile(histogram: ImpostorHistogram, share: float) -> float:
    cumulative = np.cumsum(histogram.counts)
    index = int(np.searchsorted(cumulative, share * histogram.pairs))
    return LOW + index * BIN_WIDTH


def score_plot(gallery: Gallery, record: SearchRecord, candidate: Candidate) -> ScorePlot | None:
    """The plot of one candidate of a search: None when its FMR is unknown (no calibration with
    enough pairs), since there is then no strangers' distribution to show."""
    if candidate.fmr is None:
        return None
    calibration = search_calibration(gallery, record)
    if calibration is None or not calibration.usable:
        return None
    group_table = calibration.groups.get(candidate.fmr_group) if candidate.fmr_group else None
    impostors = group_table if group_table is not None else calibration.histogram
    if group_table is not None:
        impostor_label = (
            f"{candidate.fmr_group} strangers, {calibration.label}: {impostors.pairs:,} pairs"
        )
    else:
        impostor_label = f"{calibration.label}: {impostors.pairs:,} stranger pairs"
    mated_table = load_mated_reference(calibration.model_id)
    mated = mated_table.histogram if mated_table is not None else None
    scores = [c.score for c in record.candidates]
    low_end = min([_quantile(impostors, _TAIL), *scores])
    high_end = max([_quantile(impostors, 1 - _TAIL), *scores])
    if mated is not None and mated.pairs:
        low_end = min(low_end, _quantile(mated, _TAIL))
        high_end = max(high_end, _quantile(mated, 1 - _TAIL))
    low = max(LOW, math.floor((low_end - _MARGIN) * 10) / 10)
    high = min(1.0, math.ceil((high_end + _MARGIN) * 10) / 10)
    return ScorePlot(
        search_id=record.search_id,
        subject_id=candidate.subject_id,
        rank=candidate.rank,
        score=float(candidate.score),
        fmr_words=cell("fmr", candidate, record),
        impostor_label=impostor_label,
        mated_label=(
            f"shipped table {mated_table.name}: {mated_table.histogram.pairs:,} same-person pairs"
            if mated_table is not None
            else None
        ),
        low=low,
        high=high,
        impostor_share=_display_shares(impostors, low, high),
        mated_share=_display_shares(mated, low, high) if mated is not None else None,
        others=tuple(
            float(c.score) for c in record.candidates if c.subject_id != candidate.subject_id
        ),
    )
