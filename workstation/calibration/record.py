"""A score calibration: the impostor score table a search's false-match rates come from.

Pure (no storage): `Calibration` is what a calibration is (model, pooled histogram, sources,
what it was computed from) and how it is written to and read back from a stored row;
`fmr_fields` turns a score into the FMR fields a candidate shows. Computing a gallery's
histogram from embeddings is in `workstation.calibration.impostors`; storing and loading
calibrations, and choosing which one a search uses, is the gallery's
(`workstation.gallery.calibration`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workstation.audit.log import canonical_json
from workstation.calibration.groups import GroupRate, choose_rate, group_spread
from workstation.calibration.histogram import FmrEstimate, ImpostorHistogram
from workstation.calibration.reference import ReferenceTable, load_reference
from workstation.errors import CalibrationError

# Below this many impostor pairs in all, the FMR is reported as unknown: a rate from fewer pairs
# says almost nothing (its floor would be 1 in a few hundred).
MIN_IMPOSTOR_PAIRS = 1_000
# The within-group tables are kept in the stored row's details under this key (no schema change).
GROUPS_KEY = "group_histograms"


@dataclass(frozen=True)
class Calibration:
    """The impostor score distribution used to turn scores into false-match rates."""

    model_id: str
    histogram: ImpostorHistogram
    gallery_pairs: int
    reference: ReferenceTable | None
    calibration_id: int | None = None  # row in the gallery's calibrations table
    created_at: str | None = None
    created_by: str | None = None
    generation: int | None = None
    gallery_faces: int = 0
    gallery_subjects: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    stale: bool = False  # the gallery changed since this was computed
    pending: bool = False  # computed but not yet stored (see store_calibration)
    # Within-group impostor tables of the gallery's pairs, by group (calibration.groups): empty
    # when its subjects carry no sex or race. Stored in the row's details under GROUPS_KEY.
    groups: Mapping[str, ImpostorHistogram] = field(default_factory=dict)

    @property
    def impostor_pairs(self) -> int:
        return self.histogram.pairs

    @property
    def reference_pairs(self) -> int:
        return self.reference.histogram.pairs if self.reference else 0

    @property
    def sources(self) -> list[str]:
        found = []
        if self.gallery_pairs:
            found.append("gallery")
        if self.reference is not None:
            found.append(f"reference:{self.reference.name}")
        return found

    @property
    def usable(self) -> bool:
        return self.impostor_pairs >= MIN_IMPOSTOR_PAIRS

    @property
    def sha256(self) -> str:
        """Hash of what the FMR depends on: the model, the sources and the histogram."""
        body = {
            "model_id": self.model_id,
            "sources": self.sources,
            "gallery_pairs": self.gallery_pairs,
            "reference_sha256": self.reference.sha256 if self.reference else None,
            "histogram": self.histogram.to_json(),
        }
        if self.groups:  # only when present, so calibrations stored before groups keep their hash
            body["groups"] = {name: h.to_json() for name, h in sorted(self.groups.items())}
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()

    @property
    def label(self) -> str:
        """Short id for people: 'calibration 7' or 'reference only'."""
        if self.calibration_id is not None:
            return f"calibration {self.calibration_id}"
        if self.pending:
            return "new calibration (not yet stored)"
        return "reference table only" if self.reference else "none"

    def estimate(self, score: float) -> FmrEstimate | None:
        """FMR at a score, or None when too few impostor pairs are known (FMR unknown)."""
        if not self.usable:
            return None
        return self.histogram.fmr(score)

    def rate(self, score: float, candidate_group: str | None = None) -> GroupRate | None:
        """The FMR a candidate of `candidate_group` is shown at `score`, with the group it
        refers to and the words saying so (calibration.groups has the rules); None when unknown.
        """
        if not self.usable:
            return None
        return choose_rate(self.histogram, self.groups, score, candidate_group, self.model_id)

    def group_spread(self) -> dict[str, Any] | None:
        """Each group's rate at the score of a pooled 1 in 1,000 (None without groups)."""
        if not self.usable:
            return None
        return group_spread(self.histogram, self.groups)

    def unknown_reason(self) -> str:
        return (
            f"FMR unknown: only {self.impostor_pairs:,} impostor pairs to calibrate from (at "
            f"least {MIN_IMPOSTOR_PAIRS:,} are needed); enrol more subjects and run "
            "`workstation calibrate`"
        )

    def summary(self) -> dict[str, Any]:
        """What a search records about the calibration it used."""
        return {
            "id": self.calibration_id,
            "label": self.label,
            "sha256": self.sha256,
            "model_id": self.model_id,
            "sources": self.sources,
            "impostor_pairs": self.impostor_pairs,
            "gallery_pairs": self.gallery_pairs,
            "reference_pairs": self.reference_pairs,
            "reference_sha256": self.reference.sha256 if self.reference else None,
            "created_at": self.created_at,
            "reason": self.details.get("reason"),
            "gallery_faces_at_calibration": self.gallery_faces,
            "stale": self.stale,
            "usable": self.usable,
            "groups": self.group_spread(),
        }

    def to_row(self) -> dict[str, Any]:
        """The stored form (columns of the gallery's calibrations table; JSON as text)."""
        return {
            "sha256": self.sha256,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "model_id": self.model_id,
            "sources": json.dumps(self.sources),
            "impostor_pairs": self.impostor_pairs,
            "gallery_pairs": self.gallery_pairs,
            "reference_pairs": self.reference_pairs,
            "generation": self.generation,
            "gallery_faces": self.gallery_faces,
            "gallery_subjects": self.gallery_subjects,
            "histogram": json.dumps(self.histogram.to_json(), sort_keys=True),
            "details": json.dumps(
                {
                    **self.details,
                    **(
                        {GROUPS_KEY: {n: h.to_json() for n, h in self.groups.items()}}
                        if self.groups
                        else {}
                    ),
                },
                sort_keys=True,
            ),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any], current_generation: int, where: str) -> Calibration:
        """A stored calibration (see `to_row`), checked against its stored SHA-256.

        Args:
            row: the stored row, with its "id".
            current_generation: the gallery's faces generation now (older rows are stale).
            where: the gallery, for messages.
        """
        model_id = row["model_id"]
        details = json.loads(row["details"])
        groups = {
            name: ImpostorHistogram.from_json(data)
            for name, data in (details.pop(GROUPS_KEY, None) or {}).items()
        }
        calibration = cls(
            model_id=model_id,
            histogram=ImpostorHistogram.from_json(json.loads(row["histogram"])),
            gallery_pairs=int(row["gallery_pairs"]),
            reference=load_reference(model_id) if row["reference_pairs"] else None,
            calibration_id=int(row["id"]),
            created_at=row["created_at"],
            created_by=row["created_by"],
            generation=int(row["generation"]),
            gallery_faces=int(row["gallery_faces"]),
            gallery_subjects=int(row["gallery_subjects"]),
            details=details,
            stale=int(row["generation"]) != current_generation,
            groups=groups,
        )
        if calibration.sha256 != row["sha256"]:
            raise CalibrationError(
                f"{where}: stored calibration {row['id']} does not match its checksum "
                "(altered or damaged); run `workstation calibrate`"
            )
        return calibration


def reference_only(model_id: str) -> Calibration:
    """The calibration of a gallery that has none of its own yet."""
    reference = load_reference(model_id)
    histogram = reference.histogram if reference else ImpostorHistogram()
    return Calibration(model_id, histogram, gallery_pairs=0, reference=reference)


def fmr_fields(
    calibration: Calibration,
    score: float,
    gallery_faces: int,
    candidate_group: str | None = None,
) -> dict[str, Any]:
    """The FMR fields a candidate or comparison shows, with words when it is unknown.

    `candidate_group` is the candidate subject's group (calibration.groups.group_of), None when
    not recorded or for a comparison; the fields say which group's rate is shown and why.
    """
    rate = calibration.rate(score, candidate_group)
    if rate is None:
        return {
            "fmr": None,
            "fmr_text": calibration.unknown_reason(),
            "fmr_upper_bound": False,
            "expected_strangers": None,
            "fmr_group": None,
            "fmr_basis": None,
        }
    estimate = rate.estimate
    strangers = estimate.expected_strangers(gallery_faces) if gallery_faces else None
    return {
        "fmr": float(f"{estimate.fmr:.3g}"),
        "fmr_text": estimate.text,
        # No stranger reached the score: the rate (and the strangers) are upper bounds.
        "fmr_upper_bound": estimate.below_floor,
        "expected_strangers": None if strangers is None else float(f"{strangers:.3g}"),
        "fmr_group": rate.group,
        "fmr_basis": rate.basis,
    }
