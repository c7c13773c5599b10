"""The shipped reference impostor table: a starting point for galleries too small to calibrate.

What is shipped, and why it may be: see docs/ACCURACY.md ("The shipped reference table"). In
short: only a histogram of similarity scores between photos of *different* people is shipped
(counts per 0.0005 of score), built by `benchmarks/build_calibration_reference.py` from the
project's development photos. No photo, face crop, embedding, file name, identity or pair label
leaves the development machine; a count of how many stranger pairs scored 0.2150 to 0.2155 cannot
reproduce, identify or describe anyone, so it is neither a copy of a photo nor biometric data.

The table is valid only for the exact model it was computed with (name + weights hash); with any
other model the product calibrates from the gallery alone. Its SHA-256 is pinned here, as the
model hashes are, so an altered table is refused rather than silently used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from workstation.calibration.histogram import ImpostorHistogram
from workstation.errors import CalibrationError

# model id -> (resource file, SHA-256 of its histogram's canonical JSON)
REFERENCE_TABLES: dict[str, tuple[str, str]] = {
    "sface-2021dec-int8bq@fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee": (
        "calibration/sface-2021dec-int8bq.impostors.json",
        "71e8d02e14626df099785ccbd82c445f78855753efa655d9ff3f3aa6332eb64d",
    ),
}


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
    entry = REFERENCE_TABLES.get(model_id)
    if entry is None:
        return None
    resource, expected = entry
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
