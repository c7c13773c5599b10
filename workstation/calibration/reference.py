"""The shipped reference impostor table: a starting point for galleries too small to calibrate.

What is shipped, and why it may be: see docs/ACCURACY.md ("The shipped reference table"). In
short: only a histogram of similarity scores between photos of *different* people is shipped
(counts per 0.0005 of score), built by `benchmarks/build_calibration_reference.py` from the
project's development photos. No photo, face crop, embedding, file name, identity or pair label
leaves the development machine; a count of how many stranger pairs scored 0.2150 to 0.2155 cannot
reproduce, identify or describe anyone, so it is neither a copy of a photo nor biometric data.

Each shipped configuration of workstation.vision.registry has its own table (a fused ensemble's
scores are not on any single model's scale). A table is valid only for the exact model id it was
computed with (names, weights hashes and, for an ensemble, weights and sigmas); with any other
model the product calibrates from the gallery alone. Its SHA-256 is pinned in the registry entry,
as the model hashes are in the manifest, so an altered table is refused rather than silently used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from workstation.calibration.histogram import ImpostorHistogram, one_in
from workstation.errors import CalibrationError
from workstation.vision.registry import configuration_for_model

# Thresholds that say "probably the same person" without a gallery (linking a face across video
# frames, finding a person in footage) are taken at one false-match rate, read from the model's
# own reference table, never as a fixed cosine: a fused score between strangers sits near 0.6,
# where an SFace cosine of 0.6 is a strong match. The rate is the one of the cosine OpenCV
# publishes as SFace's same-person threshold (0.363): 5 of the 3,140 stranger pairs of SFace's
# reference table reach it, 1 in 630.
SAME_PERSON_FMR = 5 / 3140
# For a model with no shipped table (an insightface pack: ArcFace-style cosines, on about SFace's
# scale) the published SFace value is the only guide there is; it is reported as such.
UNCALIBRATED_SAME_PERSON_SCORE = 0.363


@dataclass(frozen=True)
class ReferenceTable:
    name: str
    model_id: str
    resource: str
    sha256: str
    histogram: ImpostorHistogram
    description: str
    photos: int
    identities: int

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "resource": self.resource,
            "sha256": self.sha256,
            "impostor_pairs": self.histogram.pairs,
            "photos": self.photos,
            "identities": self.identities,
        }


def load_reference(model_id: str) -> ReferenceTable | None:
    """The shipped table for this model, or None when none is shipped for it.

    Raises CalibrationError when the shipped file is missing, unreadable or altered.
    """
    config = configuration_for_model(model_id)
    if config is None or config.reference is None:
        return None
    return _load_table(model_id, config.reference.resource, config.reference.sha256)


def load_mated_reference(model_id: str) -> ReferenceTable | None:
    """The shipped same-person (mated) score table for this model, or None when none is
    shipped: scores of two photos of one person, drawn beside the strangers' in the score plot
    (never used for a rate). Raises CalibrationError when the file is missing or altered."""
    config = configuration_for_model(model_id)
    if config is None or config.mated_reference is None:
        return None
    spec = config.mated_reference
    return _load_table(model_id, spec.resource, spec.sha256)


def _load_table(model_id: str, resource: str, expected: str) -> ReferenceTable:
    where = f"workstation/resources/{resource}"
    try:
        text = resources.files("workstation.resources").joinpath(resource).read_text("utf-8")
        data = json.loads(text)
        histogram = ImpostorHistogram.from_json(data["histogram"])
    except (OSError, ValueError, KeyError) as exc:
        raise CalibrationError(
            f"{where}: the shipped reference score table cannot be read ({exc}); reinstall "
            "workstation"
        ) from exc
    if data.get("model_id") != model_id:
        raise CalibrationError(f"{where}: the reference score table is for another model")
    digest = histogram.sha256()
    if digest != expected:
        raise CalibrationError(
            f"{where}: the reference score table does not match its pinned checksum (altered or "
            "damaged); reinstall workstation"
        )
    return ReferenceTable(
        name=str(data.get("name", resource)),
        model_id=model_id,
        resource=resource,
        sha256=digest,
        histogram=histogram,
        description=str(data.get("description", "")),
        photos=int(data.get("photos", 0)),
        identities=int(data.get("identities", 0)),
    )


def same_person_score(model_id: str) -> tuple[float, str]:
    """The score read as "probably the same person" for this model, and where it comes from."""
    reference = load_reference(model_id)
    if reference is not None:
        score = reference.histogram.score_at_fmr(SAME_PERSON_FMR, use_upper_bound=False)
        if score is not None:
            return score, (
                f"score {score:.4f}: strangers reach it {one_in(SAME_PERSON_FMR)} in the shipped "
                f"reference table {reference.name}"
            )
    return UNCALIBRATED_SAME_PERSON_SCORE, (
        f"fixed {UNCALIBRATED_SAME_PERSON_SCORE}: OpenCV's published SFace threshold; no reference "
        "table is shipped for this model"
    )


def score_like_sface(model_id: str, sface_score: float) -> tuple[float, str] | None:
    """The score of this model that lies as many standard deviations above its strangers' mean
    as `sface_score` lies above SFace's, both read from the shipped reference tables.

    For fixed fallbacks chosen on SFace's scale (the duplicate threshold) when a gallery has too
    few pairs to measure the rate they stand for. None when this model has no shipped table.
    """
    from workstation.vision.registry import configuration

    own = load_reference(model_id)
    sface_id = configuration("fast").expected_model_id()  # SFace, one view
    sface = load_reference(str(sface_id)) if sface_id is not None else None
    if own is None or sface is None:
        return None
    own_mean, own_sd = own.histogram.mean_and_sd()
    sface_mean, sface_sd = sface.histogram.mean_and_sd()
    sigmas = (sface_score - sface_mean) / sface_sd
    score = min(1.0, own_mean + sigmas * own_sd)
    return score, (
        f"{score:.4f}: {sigmas:.1f} standard deviations above the strangers' mean in the shipped "
        f"reference table {own.name}, as {sface_score:.2f} is for SFace"
    )
