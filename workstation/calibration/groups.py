"""False-match rates per demographic group: which attributes count, and which rate a candidate gets.

Why: strangers of some groups resemble each other more, to the model, than strangers of others.
Measured on UTKFace (benchmarks/demographics.py, docs/ACCURACY.md), at the score where the pooled
false-match rate (FMR) is 1 in 1,000, single groups reach several times that rate. One pooled
rate then understates the risk for the people of those groups.

The rules (docs/ACCURACY.md, "False-match rates by group"):

- Attributes that count: `sex` (or `gender` when there is no `sex`) and `race` (or `ethnicity`),
  matched without regard to case or spaces in the attribute name. Sex values are normalised
  ("F", "female", "Woman" -> female; "M", "male", "Man" -> male); any other value is kept as
  given. Race labels differ between agencies, so they are taken as given: grouped by exact value
  after trimming, collapsing spaces and ignoring case. Empty, "unknown", "n/a" and the like
  mean not recorded.
- A subject's group is its race and sex together ("white female"); when only one of the two is
  recorded, that one alone ("female"). Subjects with neither belong to no group.
- A group's rate counts the gallery's impostor pairs *within* the group (two different subjects of
  the same group): strangers of one group resemble each other more than strangers across groups,
  so within-group pairs are the cautious count for a probe of that group. The shipped reference
  table is not mixed in: it carries no group labels, and adding its pairs would pull every
  group's rate towards the pooled one, the very error this corrects.
- A group has its own rate only from MIN_GROUP_PAIRS within-group pairs. A candidate whose group
  is known and has that many pairs gets its group's rate. Any other candidate (group not
  recorded, or too few pairs) gets the highest rate at that score of the groups that have enough
  pairs and of the pooled table: the cautious choice, named in the words.
- A gallery with no group attributes shows the pooled rate, saying in words that it is pooled and
  that rates differ by group, with the spread measured on UTKFace (`pooled_words`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workstation.calibration.histogram import FmrEstimate, ImpostorHistogram
from workstation.vision.registry import (
    DEFAULT_CONFIGURATION,
    configuration,
    configuration_for_model,
)

# With fewer within-group impostor pairs than this, a group's rate is not used on its own: its
# floor would be worse than 1 in 1,000 (the pooled table's own minimum, MIN_IMPOSTOR_PAIRS), too
# coarse for the rates examiners act on. About 46 subjects of one group with one photo each.
MIN_GROUP_PAIRS = 1_000

# The pooled rate at which each group's rate is compared (calibration report and case report).
REFERENCE_FMR = 1e-3

SEX_KEYS = ("sex", "gender")
RACE_KEYS = ("race", "ethnicity")
_SEX_VALUES = {
    "f": "female",
    "female": "female",
    "woman": "female",
    "women": "female",
    "m": "male",
    "male": "male",
    "man": "male",
    "men": "male",
}
_NOT_RECORDED = {"", "unknown", "unk", "u", "n/a", "na", "none", "not known", "not stated", "?"}

# For galleries whose subjects carry no group attributes: the pooled rate, and how far rates
# differed by group for the gallery's configuration (the registry's `group_spread`, measured on
# UTKFace; aggregate figures only).
_POOLED = (
    "pooled over all strangers: the gallery's subjects carry no sex or race, so no group's own "
    "rate is known. Rates differ by group: "
)


def pooled_words(model_id: str | None) -> str:
    """The words shown with a pooled rate, for the configuration that made `model_id`."""
    config = configuration_for_model(model_id) if model_id else None
    if config is not None and config.group_spread:
        return _POOLED + config.group_spread
    default = configuration(DEFAULT_CONFIGURATION)
    return _POOLED + "not measured for this model; " + default.group_spread


def _clean(value: Any) -> str | None:
    text = " ".join(str(value).split()).casefold() if value is not None else ""
    return None if text in _NOT_RECORDED else text


def _first(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    named = {" ".join(str(k).split()).casefold(): v for k, v in attributes.items()}
    for key in keys:
        if key in named and (value := _clean(named[key])) is not None:
            return value
    return None


def group_of(attributes: Mapping[str, Any] | None) -> str | None:
    """A subject's group from its attributes ("white female", "female", "black"), or None."""
    if not attributes:
        return None
    sex = _first(attributes, SEX_KEYS)
    if sex is not None:
        sex = _SEX_VALUES.get(sex, sex)
    race = _first(attributes, RACE_KEYS)
    parts = [p for p in (race, sex) if p]
    return " ".join(parts) if parts else None


@dataclass(frozen=True)
class GroupRate:
    """The FMR a candidate is shown, with the group it refers to and why, in words."""

    estimate: FmrEstimate
    group: str | None  # the group whose rate this is; None: the pooled table's
    basis: str  # the words every surface shows, made here once


def choose_rate(
    pooled: ImpostorHistogram,
    groups: Mapping[str, ImpostorHistogram],
    score: float,
    candidate_group: str | None,
    model_id: str | None = None,
) -> GroupRate | None:
    """The FMR at `score` for a candidate of `candidate_group` (None: not recorded).

    `pooled` is the calibration's pooled table, `groups` the within-group tables, `model_id` the
    model they were counted with (it chooses the measured spread quoted with a pooled rate).
    None when the pooled table is empty.
    """
    pooled_estimate = pooled.fmr(score)
    if pooled_estimate is None:
        return None
    usable = {g: h for g, h in groups.items() if h.pairs >= MIN_GROUP_PAIRS}
    if not usable:
        return GroupRate(pooled_estimate, None, pooled_words(model_id))
    own = usable.get(candidate_group) if candidate_group is not None else None
    if own is not None:
        estimate = own.fmr(score)
        assert estimate is not None
        return GroupRate(
            estimate,
            candidate_group,
            f"rate among {candidate_group} strangers in this gallery ({own.pairs:,} pairs of "
            "different subjects of that group)",
        )
    if candidate_group is None:
        why = "the subject's sex and race are not recorded"
    else:
        have = groups[candidate_group].pairs if candidate_group in groups else 0
        why = (
            f"the subject's group ({candidate_group}) has too few pairs in this gallery for a "
            f"rate of its own ({have:,}; {MIN_GROUP_PAIRS:,} needed)"
        )
    estimates = {g: h.fmr(score) for g, h in usable.items()}
    highest_group, highest = max(
        ((g, e) for g, e in estimates.items() if e is not None), key=lambda item: item[1].fmr
    )
    if pooled_estimate.fmr >= highest.fmr:
        return GroupRate(
            pooled_estimate,
            None,
            f"{why}: the pooled rate, which at this score is at least as high as every group's",
        )
    return GroupRate(
        highest,
        highest_group,
        f"{why}: the highest group's rate at this score ({highest_group}, "
        f"{usable[highest_group].pairs:,} pairs), the cautious choice",
    )


def group_spread(
    pooled: ImpostorHistogram, groups: Mapping[str, ImpostorHistogram]
) -> dict[str, Any] | None:
    """Each group's rate at the score where the pooled rate is REFERENCE_FMR, in numbers and
    words (the calibration report and the case report show it). None without group tables."""
    if not groups:
        return None
    score = pooled.score_at_fmr(REFERENCE_FMR, use_upper_bound=False)
    if score is None:
        return None
    reference = pooled.fmr(score)
    assert reference is not None
    rows = []
    for name in sorted(groups):
        histogram = groups[name]
        estimate = histogram.fmr(score)
        enough = histogram.pairs >= MIN_GROUP_PAIRS
        ratio = estimate.fmr / reference.fmr if estimate is not None else None
        rows.append(
            {
                "group": name,
                "pairs": histogram.pairs,
                "fmr": None if estimate is None else float(f"{estimate.fmr:.3g}"),
                "fmr_text": "no pairs" if estimate is None else estimate.text,
                "ratio_to_pooled": None if ratio is None else round(ratio, 2),
                # No pair of the group reached the score: rate and ratio are upper bounds.
                "upper_bound": bool(estimate is not None and estimate.below_floor),
                "own_rate_used": enough,
            }
        )
    words = "; ".join(
        f"{r['group']} {r['fmr_text']} ({r['pairs']:,} pairs"
        + (
            f", {'at most ' if r['upper_bound'] else ''}{r['ratio_to_pooled']:g}x pooled"
            if r["ratio_to_pooled"] is not None
            else ""
        )
        + ("" if r["own_rate_used"] else ", too few pairs: not used on its own")
        + ")"
        for r in rows
    )
    return {
        "reference_score": round(score, 5),
        "pooled_fmr": float(f"{reference.fmr:.3g}"),
        "pooled_fmr_text": reference.text,
        "min_group_pairs": MIN_GROUP_PAIRS,
        "groups": rows,
        "text": (
            f"At score {score:.4f}, where strangers of all groups together score this high "
            f"{reference.text}, strangers within each group do: {words}"
        ),
    }
