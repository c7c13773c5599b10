"""Plain, frozen records shared by the core, the CLI and the GUI (no Qt, no I/O)."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BBox:
    """An axis-aligned box in image pixels (x, y is the top-left corner)."""

    x: float
    y: float
    w: float
    h: float

    @property
    def area(self) -> float:
        return max(self.w, 0.0) * max(self.h, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)

    def iou(self, other: BBox) -> float:
        left, top = max(self.x, other.x), max(self.y, other.y)
        right = min(self.x + self.w, other.x + other.w)
        bottom = min(self.y + self.h, other.y + other.h)
        inter = max(0.0, right - left) * max(0.0, bottom - top)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def contains(self, point: tuple[float, float]) -> bool:
        px, py = point
        return self.x <= px <= self.x + self.w and self.y <= py <= self.y + self.h

    def as_list(self) -> list[float]:
        return [round(self.x, 1), round(self.y, 1), round(self.w, 1), round(self.h, 1)]

    @classmethod
    def parse(cls, text: str) -> BBox:
        """Parse "X,Y,W,H" as typed on a command line."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 4:
            raise ValueError(f"a box is X,Y,W,H (four numbers), got {text!r}")
        try:
            x, y, w, h = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"a box is X,Y,W,H (four numbers), got {text!r}") from None
        if not all(math.isfinite(v) for v in (x, y, w, h)):
            raise ValueError(f"a box needs four finite numbers, got {text!r}")
        if w <= 0 or h <= 0:
            raise ValueError(f"a box needs a positive width and height, got {text!r}")
        return cls(x, y, w, h)


@dataclass(frozen=True)
class FaceChoice:
    """Which face of a photo to use: a box drawn by a person (its landmarks are looked for inside
    it), else face `index` as detected (0 = largest), else the largest face."""

    box: BBox | None = None
    index: int | None = None

    @classmethod
    def parse(cls, box: str | None = None, index: str | int | None = None) -> FaceChoice:
        """From a command line's or a CSV file's text ("X,Y,W,H"; a face number); both given is
        an error, since they could name different faces."""
        box_text = box.strip() if isinstance(box, str) else box
        index_text = index.strip() if isinstance(index, str) else index
        if box_text and index_text not in (None, ""):
            raise ValueError("give a box or a face number, not both")
        if box_text:
            return cls(box=BBox.parse(box_text))
        if not index_text:  # None or empty
            return cls()
        try:
            number = int(index_text)
        except ValueError:
            raise ValueError(f"a face number is 0, 1, 2... (0 = largest), got {index!r}") from None
        if number < 0:
            raise ValueError(f"a face number is 0, 1, 2... (0 = largest), got {index!r}")
        return cls(index=number)

    def describe(self) -> str:
        if self.box is not None:
            x, y, w, h = self.box.as_list()
            return f"the face inside the box drawn at {x:g},{y:g} ({w:g}x{h:g} px)"
        if self.index:
            return f"face {self.index} (0 = largest)"
        return "the largest face"

    def to_dict(self) -> dict[str, Any]:
        return {"box": self.box.as_list() if self.box else None, "face_index": self.index}


# The choice made when nobody says which face: the largest one.
LARGEST_FACE = FaceChoice()


# Five points in the order the ArcFace template uses: the eye on the image's left, the eye on
# the image's right, nose tip, mouth corner on the image's left, mouth corner on the right.
Landmarks = tuple[tuple[float, float], ...]


class FaceSource(str, Enum):
    """How a face was chosen: found by the detector, or drawn by a person."""

    DETECTED = "detected"
    MANUAL = "manual"


class Verdict(str, Enum):
    GOOD = "good"
    WARN = "warn"
    POOR = "poor"


class Decision(str, Enum):
    """An examiner's decision on one candidate of a search (the one list: the database's CHECK
    constraint on decisions.decision is built from it).

    An examiner records one of the first three; CONFIRMED is only ever written by a second
    examiner confirming someone else's POSSIBLE_LEAD (see workstation.gallery.decisions).
    """

    POSSIBLE_LEAD = "possible_lead"
    EXCLUDED = "excluded"
    INCONCLUSIVE = "inconclusive"
    CONFIRMED = "confirmed"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def recordable(cls) -> tuple[Decision, ...]:
        """The decisions an examiner records directly (a confirmation is its own act)."""
        return (cls.POSSIBLE_LEAD, cls.EXCLUDED, cls.INCONCLUSIVE)


@dataclass(frozen=True)
class DecisionRecord:
    """A stored decision: who decided what on which candidate of which search, and when."""

    id: int
    search_id: int
    subject_id: str
    decision: Decision
    note: str | None
    user: str
    created_at: str
    confirms: int | None  # the possible lead a confirmation confirms
    # The examiner's key that recorded it (None for decisions recorded before keys existed).
    key_fingerprint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "decision": self.decision.value}


@dataclass(frozen=True)
class CaseAuthorisation:
    """Who approved the searches of a case, when, and the approval's reference (e.g. a
    prosecutor's or judge's order number): optional, shown in the case dialog and the report."""

    by: str
    at: str
    reference: str

    def to_dict(self) -> dict[str, str]:
        return {"by": self.by, "at": self.at, "reference": self.reference}

    @classmethod
    def from_case_row(cls, row: dict[str, Any] | None) -> CaseAuthorisation | None:
        if not row or not row.get("authorised_by"):
            return None
        return cls(
            row["authorised_by"], row.get("authorised_at") or "", row.get("authorisation") or ""
        )


class CaseStatus(str, Enum):
    """Where a case stands (the cases table stores NULL for open, so that the column added by
    a migration changes no earlier case row's audited hash).

    Open: searches, decisions and watches may be added. Closed: the investigation is over; no new
    work until it is reopened (an audited act). Archived: read-only for good; the case's
    records may be read and exported (a read, logged) but never changed.
    """

    OPEN = "open"
    CLOSED = "closed"
    ARCHIVED = "archived"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of_row(cls, row: dict[str, Any] | None) -> CaseStatus:
        """The status of a stored case row (NULL status: open)."""
        value = (row or {}).get("status")
        return cls(value) if value else cls.OPEN


def examiner_key(name: str) -> str:
    """An examiner's name as compared: Unicode NFKC, case folded, white space collapsed.

    "ALICE", "alice " and "Alice" (or "Ａｌｉｃｅ" in full-width letters) are one examiner, so
    no spelling of one's own name passes for a second examiner.
    """
    folded = unicodedata.normalize("NFKC", name or "").casefold()
    # Case folding can leave text that NFKC changes again (e.g. "ǅ"): normalise once more.
    return " ".join(unicodedata.normalize("NFKC", folded).split())


def same_examiner(a: str, b: str) -> bool:
    """True when two examiner names name the same person (see `examiner_key`)."""
    return examiner_key(a) == examiner_key(b)


@dataclass(frozen=True)
class Quality:
    """Measured probe quality and a verdict with its reasons in words."""

    detector_score: float | None
    inter_eye_px: float | None
    sharpness: float
    yaw_deg: float | None
    pitch_deg: float | None
    roll_deg: float | None
    verdict: Verdict
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict.value
        data["reasons"] = list(self.reasons)
        for key, value in data.items():
            if isinstance(value, float):
                data[key] = round(value, 3)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Quality:
        return cls(
            detector_score=data.get("detector_score"),
            inter_eye_px=data.get("inter_eye_px"),
            sharpness=float(data.get("sharpness", 0.0)),
            yaw_deg=data.get("yaw_deg"),
            pitch_deg=data.get("pitch_deg"),
            roll_deg=data.get("roll_deg"),
            verdict=Verdict(data.get("verdict", "poor")),
            reasons=tuple(data.get("reasons", ())),
        )


@dataclass(frozen=True)
class ModelId:
    """Which recognition model made an embedding: a name plus the SHA-256 of its weights."""

    name: str
    sha256: str
    dim: int

    def __str__(self) -> str:
        return f"{self.name}@{self.sha256}"

    @property
    def short(self) -> str:
        return f"{self.name}@{self.sha256[:12]}"


@dataclass(frozen=True)
class Face:
    """One face in an image: where it is, how it was chosen, its quality and its embedding."""

    index: int
    box: BBox
    landmarks: Landmarks | None
    source: FaceSource
    aligned: bool
    quality: Quality
    embedding: np.ndarray = field(repr=False, compare=False)
    model: ModelId | None = None

    @property
    def low_confidence(self) -> bool:
        """A drawn box with no face found inside it was embedded unaligned."""
        return not self.aligned

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (without the embedding)."""
        return face_fields(self)


@dataclass(frozen=True)
class Candidate:
    """One ranked lead from a search: a gallery subject and its best-matching face.

    What a search stores (`stored_dict`) is ids, the score and its false-match rate; never the
    subject's name: the name is looked up when a search record is read (`SearchRecord`), so a
    deleted subject's name leaves every past search with it.
    """

    rank: int
    subject_id: str
    face_id: int
    score: float
    fmr: float | None = None
    # The FMR in words, made once by calibration.histogram.FmrEstimate.text ("1 in 2,300",
    # "< 1 in 9,301") or the reason it is unknown; every surface shows these words as they are.
    fmr_text: str | None = None
    # True when no stranger pair reached the score: `fmr` (and `expected_strangers`) are then
    # upper bounds ("< 1 in N"), not point estimates.
    fmr_upper_bound: bool = False
    expected_strangers: float | None = None
    # The group whose rate `fmr` is ("white female"; None: the pooled rate) and, in the words the
    # calibration made once (calibration.groups.choose_rate), which rate this is and why.
    fmr_group: str | None = None
    fmr_basis: str | None = None
    # Resolved from the gallery when the record is read (never stored with the search):
    name: str | None = None
    subject_deleted: bool = False  # the subject was deleted after the search
    face_quality: str | None = None  # verdict of the gallery face, None when it is gone

    def stored_dict(self) -> dict[str, Any]:
        """What the searches table keeps for this candidate (ids and numbers, no name)."""
        return {
            "rank": self.rank,
            "subject_id": self.subject_id,
            "face_id": self.face_id,
            "score": round(self.score, 5),
            "fmr": self.fmr,
            "fmr_text": self.fmr_text,
            "fmr_upper_bound": self.fmr_upper_bound,
            "expected_strangers": self.expected_strangers,
            "fmr_group": self.fmr_group,
            "fmr_basis": self.fmr_basis,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON for `search --json` and the evidence bundle (flat: one object per candidate)."""
        return {
            "rank": self.rank,
            "subject_id": self.subject_id,
            "name": self.name,
            "subject_deleted": self.subject_deleted,
            "face_id": self.face_id,
            "score": round(self.score, 5),
            "fmr": self.fmr,
            "expected_strangers": self.expected_strangers,
            "fmr_text": self.fmr_text,
            "fmr_upper_bound": self.fmr_upper_bound,
            "fmr_group": self.fmr_group,
            "fmr_basis": self.fmr_basis,
        }


def face_fields(face: Face | Any) -> dict[str, Any]:
    """The JSON of where a face is and how it was chosen, for a `Face` and for a stored
    search's face alike (anything with these attributes): written once, so both read the same."""
    return {
        "index": face.index,
        "box": face.box.as_list(),
        "landmarks": (
            [[round(x, 1), round(y, 1)] for x, y in face.landmarks] if face.landmarks else None
        ),
        "source": face.source.value,
        "aligned": face.aligned,
        "low_confidence": not face.aligned,
        "quality": face.quality.to_dict(),
    }
