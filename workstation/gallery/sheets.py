"""The vocabulary and the stored form of an ACE-V comparison sheet (issue 15 item 1): the
features, findings, limitations, the conclusion scale and its source, annotations, and
`ComparisonSheet` (one stored version), and the blind-verification rule (`blind_view`), which the
gallery applies to every read of sheets (`Gallery.comparison_sheets`, and the sheets a
`SearchRecord` carries). Pure; the acts are in workstation.gallery.comparisons.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from workstation.domain import DecisionRecord, same_examiner
from workstation.errors import WorkstationError

# The components of the face, top to bottom as FISWG orders them (key, words).
FEATURES: tuple[tuple[str, str], ...] = (
    ("face_shape", "Overall face shape and proportions"),
    ("hairline_forehead", "Hairline and forehead"),
    ("eyebrows", "Eyebrows"),
    ("eyes", "Eyes"),
    ("nose", "Nose"),
    ("ears", "Ears"),
    ("mouth_lips", "Mouth and lips"),
    ("chin_jaw", "Chin and jaw"),
    ("cheeks", "Cheeks"),
    ("facial_hair", "Facial hair"),
    ("marks", "Marks: scars, moles, tattoos, piercings"),
)
FEATURE_WORDS = dict(FEATURES)
FEATURE_SOURCE = (
    "components after FISWG, Facial Image Comparison Feature List for Morphological Analysis, "
    "version 2.0 (2018-09-11; ASTM E3149), condensed; no anthropometric measurement"
)


class Finding(str, Enum):
    """How one feature compares."""

    SIMILAR = "similar"
    DISSIMILAR = "dissimilar"
    NOT_VISIBLE = "not_visible"
    NOT_COMPARABLE = "not_comparable"

    @property
    def words(self) -> str:
        return self.value.replace("_", " ")


# What limits a comparison (the analysis); the examiner ticks any and may add words.
LIMITATIONS: tuple[tuple[str, str], ...] = (
    ("resolution", "low resolution"),
    ("pose", "pose (face turned or tilted)"),
    ("lighting", "lighting (shadow, glare, colour cast)"),
    ("occlusion", "occlusion (glasses, mask, hat, hair, hand)"),
    ("compression", "compression artefacts"),
    ("blur", "blur (motion or focus)"),
    ("expression", "expression"),
    ("age", "age difference between the photos"),
)
LIMITATION_WORDS = dict(LIMITATIONS)


class Conclusion(str, Enum):
    """The evaluation, on a seven-step verbal scale (CONCLUSION_SCALE_SOURCE says whose)."""

    STRONG_SAME = "strong_support_same"
    SAME = "support_same"
    LIMITED_SAME = "limited_support_same"
    INCONCLUSIVE = "inconclusive"
    LIMITED_DIFFERENT = "limited_support_different"
    DIFFERENT = "support_different"
    STRONG_DIFFERENT = "strong_support_different"

    @property
    def words(self) -> str:
        return CONCLUSION_WORDS[self]


CONCLUSION_WORDS: dict[Conclusion, str] = {
    Conclusion.STRONG_SAME: "strong support for same source",
    Conclusion.SAME: "support for same source",
    Conclusion.LIMITED_SAME: "limited support for same source",
    Conclusion.INCONCLUSIVE: "inconclusive",
    Conclusion.LIMITED_DIFFERENT: "limited support for different sources",
    Conclusion.DIFFERENT: "support for different sources",
    Conclusion.STRONG_DIFFERENT: "strong support for different sources",
}
CONCLUSION_SCALE = tuple(CONCLUSION_WORDS[c] for c in Conclusion)
CONCLUSION_SCALE_SOURCE = (
    "a seven-step verbal scale in the style of the ENFSI Guideline for Evaluative Reporting in "
    "Forensic Science (2015) and the ENFSI Best Practice Manual for Facial Image Comparison "
    "(ENFSI-BPM-DI-01, 2018), as used in FISWG-trained facial comparison: the strength of the "
    "observations for one proposition (same source) against the other (different sources); it "
    "is the examiner's opinion, not a measured probability, and the software's score is not "
    "part of it"
)

ANNOTATION_KINDS = ("arrow", "circle", "label")
ANNOTATION_IMAGES = ("probe", "candidate")
# The compare view's aligned crop: the ArcFace five-point template scaled from 112 to 256 px
# (or, for a face without landmarks, its box scaled to 256 x 256); both are redone from the
# photo (checked by SHA-256) and its recorded landmarks, so the coordinates stay meaningful.
ANNOTATION_SIDE = 256
ANNOTATION_SPACE = (
    f"pixels of the {ANNOTATION_SIDE} x {ANNOTATION_SIDE} aligned crop shown in Compare and "
    "printed in the report (x right, y down, from its top-left corner)"
)
MAX_LABEL = 40  # a label names a feature; a note belongs in the feature's note

EXAMINATION = "examination"
VERIFICATION = "verification"


@dataclass(frozen=True)
class Annotation:
    """An arrow (from (x1, y1) to (x2, y2)), a circle (centre (x1, y1), radius x2) or a label
    (text at (x1, y1)) on the probe's or the candidate's aligned crop (ANNOTATION_SPACE)."""

    image: str
    kind: str
    x1: float
    y1: float
    x2: float = 0.0
    y2: float = 0.0
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "kind": self.kind,
            "x1": round(self.x1, 1),
            "y1": round(self.y1, 1),
            "x2": round(self.x2, 1),
            "y2": round(self.y2, 1),
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Annotation:
        return cls(
            image=str(data["image"]),
            kind=str(data["kind"]),
            x1=float(data["x1"]),
            y1=float(data["y1"]),
            x2=float(data.get("x2", 0.0)),
            y2=float(data.get("y2", 0.0)),
            text=str(data.get("text", "")),
        )

    def problem(self) -> str | None:
        if self.image not in ANNOTATION_IMAGES:
            return f"an annotation is on the probe or the candidate, not {self.image!r}"
        if self.kind not in ANNOTATION_KINDS:
            return f"an annotation is an arrow, a circle or a label, not {self.kind!r}"
        values = (self.x1, self.y1, self.x2, self.y2)
        if not all(-ANNOTATION_SIDE <= v <= 2 * ANNOTATION_SIDE for v in values):
            return f"an annotation lies outside the {ANNOTATION_SIDE}-pixel crop"
        if self.kind == "label" and not self.text.strip():
            return "a label needs its words"
        if len(self.text) > MAX_LABEL:
            return f"a label is at most {MAX_LABEL} characters (put the rest in the note)"
        return None


@dataclass(frozen=True)
class FeatureMark:
    feature: str
    finding: Finding
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "finding": self.finding.value, "note": self.note}


@dataclass(frozen=True)
class SheetInput:
    """What the examiner fills in: the analysis, the features, the conclusion, annotations."""

    features: Mapping[str, Finding | str]  # every key of FEATURES
    conclusion: Conclusion | str
    visible: str = ""  # what of the face the probe shows
    limitations: Sequence[str] = ()  # keys of LIMITATIONS
    limitations_note: str = ""
    feature_notes: Mapping[str, str] = field(default_factory=dict)
    conclusion_note: str = ""
    annotations: Sequence[Annotation] = ()

    def checked(self) -> dict[str, Any]:
        """The sheet's stored body; WorkstationError naming the first thing that is wrong."""
        missing = [words for key, words in FEATURES if key not in self.features]
        if missing:
            raise WorkstationError(f"the comparison sheet has no finding for: {', '.join(missing)}")
        unknown = sorted(set(self.features) - set(FEATURE_WORDS)) + sorted(
            set(self.feature_notes) - set(FEATURE_WORDS)
        )
        if unknown:
            raise WorkstationError(f"not a feature of the sheet: {', '.join(unknown)}")
        marks = []
        for key, _words in FEATURES:
            try:
                finding = Finding(self.features[key])
            except ValueError:
                allowed = ", ".join(f.words for f in Finding)
                raise WorkstationError(
                    f"{FEATURE_WORDS[key]}: the finding is one of {allowed}, not "
                    f"{self.features[key]!r}"
                ) from None
            marks.append(FeatureMark(key, finding, self.feature_notes.get(key, "").strip()))
        try:
            conclusion = Conclusion(self.conclusion)
        except ValueError:
            raise WorkstationError(
                f"the conclusion is one of: {'; '.join(CONCLUSION_SCALE)} (not {self.conclusion!r})"
            ) from None
        bad = sorted(set(self.limitations) - set(LIMITATION_WORDS))
        if bad:
            raise WorkstationError(f"not a limitation the sheet knows: {', '.join(bad)}")
        for annotation in self.annotations:
            problem = annotation.problem()
            if problem is not None:
                raise WorkstationError(problem)
        return {
            "analysis": {
                "visible": self.visible.strip(),
                "limitations": [key for key, _ in LIMITATIONS if key in set(self.limitations)],
                "limitations_note": self.limitations_note.strip(),
            },
            "features": [mark.to_dict() for mark in marks],
            "conclusion": conclusion.value,
            "conclusion_note": self.conclusion_note.strip(),
            "annotations": [a.to_dict() for a in self.annotations],
            "annotation_space": ANNOTATION_SPACE,
            "feature_source": FEATURE_SOURCE,
            "conclusion_scale": list(CONCLUSION_SCALE),
            "conclusion_scale_source": CONCLUSION_SCALE_SOURCE,
        }


@dataclass(frozen=True)
class ComparisonSheet:
    """A recorded sheet (one version), as stored."""

    id: int
    search_id: int
    subject_id: str
    role: str  # EXAMINATION or VERIFICATION
    verifies: int | None  # the examination sheet a verification verifies
    examiner: str
    key_fingerprint: str | None
    created_at: str
    body: Mapping[str, Any]

    @property
    def conclusion(self) -> Conclusion:
        return Conclusion(self.body["conclusion"])

    @property
    def findings(self) -> dict[str, Finding]:
        return {m["feature"]: Finding(m["finding"]) for m in self.body["features"]}

    @property
    def annotations(self) -> list[Annotation]:
        return [Annotation.from_dict(a) for a in self.body.get("annotations", [])]

    def to_dict(self) -> dict[str, Any]:
        """The sheet as the evidence bundle carries it (words beside every code)."""
        body = dict(self.body)
        return {
            "id": self.id,
            "search_id": self.search_id,
            "subject_id": self.subject_id,
            "role": self.role,
            "verifies": self.verifies,
            "examiner": self.examiner,
            "key_fingerprint": self.key_fingerprint,
            "created_at": self.created_at,
            **body,
            "conclusion_words": self.conclusion.words,
            "features": [
                {**m, "words": FEATURE_WORDS[m["feature"]]} for m in self.body["features"]
            ],
        }


@dataclass(frozen=True)
class SheetsView:
    """The sheets on one candidate that one examiner may see now.

    `own`: their latest sheet (None when they have recorded none); `others`: every other
    examiner's latest sheet, empty while they are withheld; `withheld`: how many other
    examiners' sheets are withheld, and `why` in words.
    """

    subject_id: str
    viewer: str
    own: ComparisonSheet | None
    others: tuple[ComparisonSheet, ...]
    withheld: int
    why: str | None

    @property
    def blind(self) -> bool:
        return self.withheld > 0

    def to_dict(self) -> dict[str, Any]:
        """As the evidence bundle carries it: the sheets the exporting examiner may see, how
        many are withheld and why, and where the shown sheets disagree."""
        shown = ([self.own] if self.own is not None else []) + list(self.others)
        return {
            "subject_id": self.subject_id,
            "sheets": [s.to_dict() for s in shown],
            "withheld": self.withheld,
            "withheld_reason": self.why,
            "differences": [
                {"first": shown[0].id, "second": other.id, **differences(shown[0], other)}
                for other in shown[1:]
            ],
        }


def latest_by_examiner(sheets: Iterable[ComparisonSheet]) -> list[ComparisonSheet]:
    """Each examiner's latest sheet (examiner names compared as `same_examiner` does), in the
    order their first sheet was recorded."""
    latest: dict[str, ComparisonSheet] = {}
    order: list[str] = []
    for sheet in sorted(sheets, key=lambda s: s.id):
        key = next((k for k in order if same_examiner(k, sheet.examiner)), None)
        if key is None:
            order.append(sheet.examiner)
            key = sheet.examiner
        latest[key] = sheet
    return [latest[k] for k in order]


def blind_view(sheets: Sequence[ComparisonSheet], viewer: str, subject_id: str) -> SheetsView:
    """The blind-verification rule over a candidate's sheets (all versions, any order)."""
    current = latest_by_examiner(sheets)
    own = next((s for s in current if same_examiner(s.examiner, viewer)), None)
    others = tuple(s for s in current if not same_examiner(s.examiner, viewer))
    if own is None and others:
        return SheetsView(
            subject_id,
            viewer,
            None,
            (),
            len(others),
            f"{len(others)} other examiner's sheet(s) on this candidate are withheld from "
            f"{viewer} until they have recorded their own comparison (blind verification)",
        )
    return SheetsView(subject_id, viewer, own, others, 0, None)


def withhold_decisions(
    decisions: Iterable[DecisionRecord], blind_subjects: Iterable[str], viewer: str
) -> tuple[list[DecisionRecord], dict[str, int]]:
    """The blind rule applied to decisions: on a candidate where `viewer` is blind (other
    examiners' sheets withheld until they record their own, `blind_view`), other examiners'
    decisions and notes are withheld too, or the verifier would read the first examiner's lead
    or exclusion before comparing. Returns the decisions `viewer` may see and, per subject, how
    many were withheld."""
    blind = set(blind_subjects)
    shown: list[DecisionRecord] = []
    withheld: dict[str, int] = {}
    for decision in decisions:
        if decision.subject_id in blind and not same_examiner(decision.user, viewer):
            withheld[decision.subject_id] = withheld.get(decision.subject_id, 0) + 1
        else:
            shown.append(decision)
    return shown, withheld


DECISIONS_WITHHELD = (
    "{count} decision(s) by other examiners withheld until you record your own comparison "
    "sheet (blind verification)"
)


def differences(first: ComparisonSheet, second: ComparisonSheet) -> dict[str, Any]:
    """Where two sheets disagree: features whose findings differ, the conclusion, the
    limitations one saw and the other did not."""
    a, b = first.findings, second.findings
    limits_a = set(first.body["analysis"]["limitations"])
    limits_b = set(second.body["analysis"]["limitations"])
    return {
        "features": [key for key, _ in FEATURES if a.get(key) != b.get(key)],
        "conclusion": first.conclusion != second.conclusion,
        "limitations": sorted(limits_a ^ limits_b),
    }
