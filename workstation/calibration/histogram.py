"""Impostor score histograms and the false-match rate (FMR) read from them.

An impostor pair is two faces of two different people. The FMR at a score s is the share of
impostor pairs that score s or more: how often a stranger scores that high. It is estimated by
counting, never by a fitted curve, and it is never reported as 0: when no impostor pair reached s
the estimate is "fewer than 1 in n" (n = impostor pairs counted), with its one-sided 95% upper
bound (Clopper-Pearson; about 3 in n when none reached it).

Scores (cosine similarities, -1 to 1) are kept as counts in bins of BIN_WIDTH. A score is
counted against every impostor in its own bin as well as above it, so binning can only make the
FMR look higher (more cautious), never lower; the error is at most one bin (0.0005).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

BIN_WIDTH = 0.0005
LOW = -1.0
N_BINS = round(2.0 / BIN_WIDTH) + 1  # the last bin holds exactly 1.0
CONFIDENCE = 0.95


def bin_of(scores: np.ndarray | float) -> np.ndarray:
    """Bin index of each score (clipped to [-1, 1])."""
    values = np.clip(np.asarray(scores, dtype=np.float64), LOW, 1.0)
    # The small epsilon keeps exact bin edges (e.g. 0.5) in their own bin despite float error.
    return np.floor((values - LOW) / BIN_WIDTH + 1e-9).astype(np.int64)


def bin_low_edge(index: int) -> float:
    return round(LOW + index * BIN_WIDTH, 6)


def upper_bound(exceed: int, pairs: int, confidence: float = CONFIDENCE) -> float:
    """One-sided Clopper-Pearson upper bound of a rate seen `exceed` times in `pairs` trials."""
    if pairs <= 0:
        return 1.0
    if exceed >= pairs:
        return 1.0
    if exceed == 0:
        return 1.0 - (1.0 - confidence) ** (1.0 / pairs)
    # The beta quantile through scipy.special alone: scipy.stats would pull 70 MB more into the
    # frozen installer for the same number.
    from scipy.special import betaincinv

    return float(betaincinv(exceed + 1, pairs - exceed, confidence))


def one_in(rate: float) -> str:
    """A rate in words people read: '1 in 2,300' (rounded to 2 significant figures)."""
    if rate <= 0:
        return "0"
    if rate >= 0.5:
        return f"{rate:.0%}"
    n = 1.0 / rate
    digits = max(0, math.floor(math.log10(n)) - 1)
    rounded = int(round(n / 10**digits) * 10**digits)
    return f"1 in {rounded:,}"


@dataclass(frozen=True)
class FmrEstimate:
    """The FMR at one score, with what it rests on.

    `fmr` is exceed / pairs, or 1 / pairs when no impostor reached the score (then `below_floor`
    is True and the text reads "< 1 in N"): never 0. `upper95` is the one-sided 95% upper bound.
    """

    score: float
    exceed: int
    pairs: int
    fmr: float
    upper95: float
    below_floor: bool

    @classmethod
    def counted(cls, score: float, exceed: int, pairs: int) -> FmrEstimate:
        """`exceed` of `pairs` impostor pairs scored at least `score` (pairs > 0)."""
        return cls(
            score=float(score),
            exceed=exceed,
            pairs=pairs,
            fmr=(exceed if exceed else 1) / pairs,
            upper95=upper_bound(exceed, pairs),
            below_floor=exceed == 0,
        )

    @property
    def text(self) -> str:
        if self.below_floor:
            return f"< 1 in {self.pairs:,}"
        return one_in(self.fmr)

    def expected_strangers(self, gallery_faces: int) -> float:
        """About how many gallery faces of other people score this high (gallery_faces x FMR).

        Counted per face, not per subject: a subject with several photos has several chances,
        so this errs on the high side.
        """
        return gallery_faces * self.fmr

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 5),
            "fmr": _sig(self.fmr),
            "fmr_upper95": _sig(self.upper95),
            "fmr_text": self.text,
            "impostors_at_or_above": self.exceed,
            "impostor_pairs": self.pairs,
            "below_floor": self.below_floor,
        }


def _sig(value: float, digits: int = 3) -> float:
    """Round to significant figures (FMRs span many orders of magnitude)."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


class ImpostorHistogram:
    """Counts of impostor scores in fixed bins over [-1, 1]."""

    def __init__(self, counts: np.ndarray | None = None) -> None:
        if counts is None:
            counts = np.zeros(N_BINS, dtype=np.int64)
        counts = np.asarray(counts, dtype=np.int64)
        if counts.shape != (N_BINS,):
            raise ValueError(f"an impostor histogram has {N_BINS} bins, got shape {counts.shape}")
        if (counts < 0).any():
            raise ValueError("impostor counts cannot be negative")
        self.counts = counts
        # tail[i] = impostors in bin i or above
        self._tail = np.cumsum(counts[::-1])[::-1]

    @classmethod
    def from_scores(cls, scores: np.ndarray | list[float]) -> ImpostorHistogram:
        values = np.asarray(scores, dtype=np.float64).ravel()
        if values.size and not np.isfinite(values).all():
            raise ValueError("impostor scores must be finite numbers")
        return cls(np.bincount(bin_of(values), minlength=N_BINS))

    def add_scores(self, scores: np.ndarray) -> ImpostorHistogram:
        return self + ImpostorHistogram.from_scores(scores)

    def __add__(self, other: ImpostorHistogram) -> ImpostorHistogram:
        return ImpostorHistogram(self.counts + other.counts)

    @property
    def pairs(self) -> int:
        return int(self._tail[0])

    @property
    def max_score(self) -> float | None:
        """The upper edge of the highest occupied bin (None when empty)."""
        occupied = np.flatnonzero(self.counts)
        return None if occupied.size == 0 else bin_low_edge(int(occupied[-1])) + BIN_WIDTH

    def mean_and_sd(self) -> tuple[float, float]:
        """Mean and standard deviation of the scores (bin centres), for describing a table."""
        if self.pairs == 0:
            return 0.0, 0.0
        centres = LOW + (np.arange(N_BINS) + 0.5) * BIN_WIDTH
        mean = float((centres * self.counts).sum() / self.pairs)
        variance = float((self.counts * (centres - mean) ** 2).sum() / self.pairs)
        return mean, variance**0.5

    def exceeding(self, score: float) -> int:
        """Impostor pairs scoring at least `score` (counting the whole bin `score` falls in)."""
        return int(self._tail[int(bin_of(score))])

    def fmr(self, score: float) -> FmrEstimate | None:
        """The FMR at `score`, or None when there are no impostor pairs at all."""
        n = self.pairs
        if n == 0:
            return None
        return FmrEstimate.counted(score, self.exceeding(score), n)

    def score_at_fmr(self, target: float, use_upper_bound: bool = True) -> float | None:
        """The lowest score (bin edge) whose FMR is at most `target`.

        With `use_upper_bound` the 95% upper bound must be at most `target`, so the answer is
        None when there are too few impostor pairs to show a rate that low (about 3 / target
        pairs are needed).
        """
        n = self.pairs
        if n == 0:
            return None
        for index in range(N_BINS):
            k = int(self._tail[index])
            rate = upper_bound(k, n) if use_upper_bound else k / n
            if rate <= target:
                return bin_low_edge(index)
        return None

    # ------------------------------------------------------------------ storage
    def to_json(self) -> dict[str, Any]:
        """Sparse, canonical form: {"bin_width", "low", "bins": {index: count}}."""
        nonzero = np.flatnonzero(self.counts)
        return {
            "bin_width": BIN_WIDTH,
            "low": LOW,
            "pairs": self.pairs,
            "bins": {str(int(i)): int(self.counts[i]) for i in nonzero},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImpostorHistogram:
        if float(data.get("bin_width", -1)) != BIN_WIDTH or float(data.get("low", 0)) != LOW:
            raise ValueError("impostor histogram stored with a different binning")
        counts = np.zeros(N_BINS, dtype=np.int64)
        for key, value in data.get("bins", {}).items():
            counts[int(key)] = int(value)
        histogram = cls(counts)
        if "pairs" in data and int(data["pairs"]) != histogram.pairs:
            raise ValueError("impostor histogram's pair count does not match its bins")
        return histogram

    def sha256(self) -> str:
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()
