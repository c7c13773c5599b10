"""The one record of a search: what was searched, how, against which gallery and calibration,
which candidates came back with which false-match words, and what the examiners decided.

The gallery builds it from the stored rows (`Gallery.search_record`,
`Gallery.case_search_records`), and `search_face` returns the record of the row it has just
written, so a fresh search and a reloaded one are the same object. Every surface renders from it
(CLI text and JSON, the Search tab, the footage tab, Compare, the evidence bundle and the PDF);
its JSON is derived here, once.

Data minimisation: a stored search keeps subject ids, face ids and scores, never names. Names
(and whether the subject still exists) are looked up when the record is built, so deleting a
subject removes their name from every past search; the record then says "deleted subject".
Rows written before this rule still carry names; those stored names are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from workstation.calibration.histogram import one_in
from workstation.domain import (
    BBox,
    Candidate,
    DecisionRecord,
    Face,
    FaceSource,
    Landmarks,
    Quality,
    face_fields,
)
from workstation.gallery.sheets import SheetsView
from workstation.vision.enhancement import Enhancement
from workstation.vision.video import FRAME_LINEAGE_KEYS

if TYPE_CHECKING:
    from workstation.vision.images import LoadedImage

DELETED_SUBJECT = "deleted subject"

# Facts about a search that are not search parameters (when it started, the gallery's subject
# count, the probe's size and video lineage) are kept in the row's params JSON under this key,
# apart from the parameters; records written before it existed simply lack them.
FACTS_KEY = "recorded"


@dataclass(frozen=True)
class ProbeInfo:
    """Where a probe face came from: enough to trace it back to the exact file (and frame)."""

    path: str
    sha256: str
    width: int | None = None
    height: int | None = None
    frame: dict[str, Any] | None = None  # video lineage (frame index, timecode) when from footage
    # When the face was searched on an enhanced working copy: the original's SHA-256 (the file's,
    # as `sha256` above, or a video frame's pixels), the ordered steps, the working copy's
    # SHA-256 and the OpenCV version (workstation.vision.enhancement). The box is then in the
    # working copy's pixels; width and height above stay the original's.
    enhancement: Enhancement | None = None

    @classmethod
    def from_image(
        cls,
        image: LoadedImage,
        path_as_given: str | None = None,
        enhancement: Enhancement | None = None,
    ) -> ProbeInfo:
        return cls(
            path_as_given or str(image.path),
            image.sha256,
            image.width,
            image.height,
            enhancement=enhancement,
        )

    @property
    def enhancement_dict(self) -> dict[str, Any] | None:
        """The lineage as JSON (None: searched as it was, "no enhancement")."""
        return self.enhancement.to_dict() if self.enhancement else None

    @property
    def file_name(self) -> str:
        return self.path.replace("\\", "/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class SearchedFace:
    """The probe face as it was searched: where, how it was chosen, its quality."""

    index: int
    box: BBox
    landmarks: Landmarks | None
    source: FaceSource
    aligned: bool
    quality: Quality
    faces_found: int = 1

    @property
    def low_confidence(self) -> bool:
        """A drawn box with no face found inside it was embedded unaligned."""
        return not self.aligned

    @property
    def how_chosen(self) -> str:
        """How the face was chosen, in words (for the report and Compare)."""
        box = ", ".join(f"{v:g}" for v in self.box.as_list())
        if self.source is FaceSource.MANUAL:
            how = f"drawn by hand by the examiner, box [x, y, w, h] = [{box}]"
            if not self.aligned:
                how += "; no landmarks found inside it: searched unaligned (low confidence)"
            return how
        return (
            f"found by the detector: face {self.index + 1} of {self.faces_found} (largest "
            f"first), box [x, y, w, h] = [{box}]"
        )

    @classmethod
    def from_face(cls, face: Face, faces_found: int) -> SearchedFace:
        return cls.from_dict({**face.to_dict(), "faces_found": faces_found})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchedFace:
        landmarks = data.get("landmarks")
        return cls(
            index=int(data.get("index", 0)),
            box=BBox(*(float(v) for v in data["box"])),
            landmarks=tuple((float(x), float(y)) for x, y in landmarks) if landmarks else None,
            source=FaceSource(data.get("source", FaceSource.DETECTED.value)),
            aligned=bool(data.get("aligned", True)),
            quality=Quality.from_dict(data.get("quality") or {}),
            faces_found=int(data.get("faces_found", 1)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON the searches table keeps and `search --json` prints (as Face.to_dict)."""
        return {
            **face_fields(self),
            "faces_found": self.faces_found,
        }


@dataclass(frozen=True)
class SearchRecord:
    """One recorded search with its candidates and decisions (see the module docstring)."""

    search_id: int
    case_id: str
    purpose: str
    examiner: str
    created_at: str  # when the search was recorded (its end)
    probe: ProbeInfo
    face: SearchedFace
    model_id: str
    gallery_faces: int
    candidates: tuple[Candidate, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    decisions: tuple[DecisionRecord, ...] = ()
    note: str | None = None
    started_at: str | None = None  # None for searches recorded before it was kept
    gallery_subjects: int | None = None  # likewise
    # The gallery searched (the EU AI Act's "reference database"): its id and folder, as the
    # search recorded them (None for searches recorded before they were kept).
    gallery_id: str | None = None
    gallery_folder: str | None = None
    # The ACE-V comparison sheets on its candidates, as the examiner reading the record may see
    # them (blind verification withholds others' sheets until they have recorded their own):
    # filled by the gallery's read, one view per candidate that has sheets.
    sheets: tuple[SheetsView, ...] = ()
    # Other examiners' decisions withheld from the reader by blind verification (the same rule
    # as the sheets', sheets.withhold_decisions), per subject: `decisions` holds the rest.
    decisions_withheld: Mapping[str, int] = field(default_factory=dict)

    # ------------------------------------------------------------------ derived facts
    @property
    def user(self) -> str:
        """The examiner who ran the search (the searches table's `user`)."""
        return self.examiner

    @property
    def faces_found(self) -> int:
        return self.face.faces_found

    @property
    def quality_gate(self) -> str | None:
        """ "passed", or searched despite poor quality with the examiner's note."""
        return self.params.get("quality_gate")

    @property
    def calibration(self) -> dict[str, Any] | None:
        """Summary of the score calibration the FMRs came from (id, sha256, sources, pairs)."""
        return self.params.get("calibration")

    @property
    def fmr_bases(self) -> list[str]:
        """Which rate the candidates' FMRs are, in the calibration's words: each distinct
        sentence once, in rank order (empty for searches recorded before the words were kept)."""
        return list(dict.fromkeys(c.fmr_basis for c in self.candidates if c.fmr_basis))

    @property
    def group_spread(self) -> str | None:
        """The calibration's words on how rates differ by group in this gallery (or None)."""
        calibration = self.calibration or {}
        spread = calibration.get("groups") or {}
        return spread.get("text")

    @property
    def title(self) -> str:
        """One line naming the search: "Search 3: probe.jpg, face 1 (ana, 2026-05-01T10:12)"."""
        how = (
            "drawn box" if self.face.source is FaceSource.MANUAL else f"face {self.face.index + 1}"
        )
        return (
            f"Search {self.search_id}: {self.probe.file_name}, {how} "
            f"({self.examiner}, {self.created_at[:16]})"
        )

    def candidate(self, subject_id: str) -> Candidate | None:
        return next((c for c in self.candidates if c.subject_id == subject_id), None)

    def decisions_of(self, subject_id: str) -> list[DecisionRecord]:
        return [d for d in self.decisions if d.subject_id == subject_id]

    def with_decisions(self, decisions: Iterable[DecisionRecord]) -> SearchRecord:
        """The same search with its decisions as they are now."""
        return replace(self, decisions=tuple(decisions))

    def with_blind_decisions(
        self, decisions: Iterable[DecisionRecord], withheld: Mapping[str, int]
    ) -> SearchRecord:
        """The same search with the decisions its reader may see, and how many are withheld."""
        return replace(self, decisions=tuple(decisions), decisions_withheld=dict(withheld))

    def with_sheets(self, sheets: Iterable[SheetsView]) -> SearchRecord:
        """The same search with the comparison sheets its reader may see."""
        return replace(self, sheets=tuple(sheets))

    def sheets_of(self, subject_id: str) -> SheetsView | None:
        return next((v for v in self.sheets if v.subject_id == subject_id), None)

    @property
    def verified_by(self) -> list[str]:
        """The examiners who verified (confirmed) a lead of this search, in order, read from its
        decisions as confirmations arrive."""
        names: list[str] = []
        for decision in self.decisions:
            if decision.confirms is not None and decision.user not in names:
                names.append(decision.user)
        return names

    @property
    def searched_gallery(self) -> dict[str, Any]:
        """The gallery searched: id, folder, size and model (the EU AI Act's log fields)."""
        return {
            "id": self.gallery_id,
            "folder": self.gallery_folder,
            "faces": self.gallery_faces,
            "subjects": self.gallery_subjects,
            "model_id": self.model_id,
        }

    @property
    def examiners(self) -> set[str]:
        """Who ran the search and who decided on its candidates."""
        return {self.examiner} | {d.user for d in self.decisions}

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """One line of `search --json` (README documents its keys; extend, do not break)."""
        return {
            "probe": self.probe.path,
            "sha256": self.probe.sha256,
            "probe_width": self.probe.width,
            "probe_height": self.probe.height,
            "probe_frame": self.probe.frame,
            "probe_enhancement": self.probe.enhancement_dict,  # None: no enhancement
            "search_id": self.search_id,
            "case": self.case_id,
            "purpose": self.purpose,
            "examiner": self.examiner,
            "started_at": self.started_at,
            "created_at": self.created_at,
            "ended_at": self.created_at,
            "gallery": self.searched_gallery,
            "verified_by": self.verified_by,
            "face": self.face.to_dict(),
            "model_id": self.model_id,
            "gallery_faces": self.gallery_faces,
            "gallery_subjects": self.gallery_subjects,
            "params": dict(self.params),
            "candidates": [c.to_dict() for c in self.candidates],
            "calibration": self.calibration,
            "quality_gate": self.quality_gate,
            "note": self.note,
            "decisions": [d.to_dict() for d in self.decisions],
            "error": None,
        }

    def to_bundle_dict(self) -> dict[str, Any]:
        """The search as the evidence bundle (bundle_version 1) carries it."""
        return {
            "search_id": self.search_id,
            "time": self.created_at,
            "started_at": self.started_at,
            "ended_at": self.created_at,
            "gallery": self.searched_gallery,
            "verified_by": self.verified_by,
            "examiner": self.examiner,
            "purpose": self.purpose,
            "probe": {
                "path": self.probe.path,
                "sha256": self.probe.sha256,
                "width": self.probe.width,
                "height": self.probe.height,
                "frame": self.probe.frame,
                # The working copy's lineage and how to redo it, or "no enhancement".
                "enhancement": (
                    {
                        "enhanced": True,
                        **self.probe.enhancement.to_dict(),
                        "how_to_redo": self.probe.enhancement.redo_sentence,
                    }
                    if self.probe.enhancement
                    else {"enhanced": False, "text": "no enhancement"}
                ),
            },
            "face": self.face.to_dict(),
            "model_id": self.model_id,
            "params": dict(self.params),
            "gallery_faces": self.gallery_faces,
            "gallery_subjects": self.gallery_subjects,
            "note": self.note,
            # "passed", or searched despite poor quality with the examiner's note above
            "quality_gate": self.quality_gate,
            # what the candidates' false-match rates came from (id, sha256, sources, pairs)
            "calibration": self.calibration,
            "candidates": [c.to_dict() for c in self.candidates],
            "decisions": [d.to_dict() for d in self.decisions],
            # Decisions by other examiners withheld from the exporting examiner (blind
            # verification: they have not recorded their own sheet on that candidate).
            "decisions_withheld": dict(self.decisions_withheld),
            # ACE-V sheets (issue 15): those the exporting examiner may see, per candidate,
            # with what blind verification withheld from them and where the sheets disagree.
            "comparison_sheets": [view.to_dict() for view in self.sheets],
        }


# ---------------------------------------------------------------------- from and to the row
def facts_for(
    probe: ProbeInfo,
    started_at: str,
    gallery_subjects: int,
    gallery_id: str | None = None,
    gallery_folder: str | None = None,
) -> dict[str, Any]:
    """The record facts kept in a new row's params under FACTS_KEY."""
    return {
        "started_at": started_at,
        "gallery_id": gallery_id,
        "gallery_folder": gallery_folder,
        "gallery_subjects": gallery_subjects,
        "probe_width": probe.width,
        "probe_height": probe.height,
        "probe_frame": probe.frame,
        # Kept only for an enhanced probe, so rows of plain searches are as they always were.
        **({"probe_enhancement": probe.enhancement_dict} if probe.enhancement else {}),
    }


def record_from_row(
    row: Mapping[str, Any],
    decisions: Iterable[DecisionRecord],
    subject_names: Mapping[str, str | None],
    face_quality: Mapping[int, str | None],
) -> SearchRecord:
    """Build the record of one stored search.

    Args:
        row: the searches row (column name -> value).
        decisions: its decisions, oldest first.
        subject_names: name by subject id for the candidates' subjects that still exist.
        face_quality: quality verdict by face id for the candidates' faces that still exist.
    """
    params = dict(json.loads(row["params"]))
    facts = params.pop(FACTS_KEY, None) or {}
    frame = facts.get("probe_frame")
    enhancement = facts.get("probe_enhancement")
    if frame is None and "frame_index" in params and "video_sha256" in params:
        # Older rows kept the frame's lineage among the search's params (the same keys).
        frame = {k: params[k] for k in FRAME_LINEAGE_KEYS if k in params}
    return SearchRecord(
        search_id=int(row["id"]),
        case_id=row["case_id"],
        purpose=row["purpose"],
        examiner=row["user"],
        created_at=row["created_at"],
        started_at=facts.get("started_at"),
        probe=ProbeInfo(
            path=row["probe_path"] or "",
            sha256=row["probe_sha256"],
            width=facts.get("probe_width"),
            height=facts.get("probe_height"),
            frame=frame,
            enhancement=Enhancement.from_dict(enhancement) if enhancement else None,
        ),
        face=SearchedFace.from_dict(json.loads(row["face"])),
        model_id=row["model_id"],
        gallery_faces=int(row["gallery_size"]),
        gallery_subjects=facts.get("gallery_subjects"),
        gallery_id=facts.get("gallery_id"),
        gallery_folder=facts.get("gallery_folder"),
        params=params,
        candidates=tuple(
            _candidate(stored, subject_names, face_quality)
            for stored in json.loads(row["candidates"])
        ),
        decisions=tuple(decisions),
        note=row["note"],
    )


def _candidate(
    stored: Mapping[str, Any],
    subject_names: Mapping[str, str | None],
    face_quality: Mapping[int, str | None],
) -> Candidate:
    subject_id, face_id = str(stored["subject_id"]), int(stored["face_id"])
    fmr = stored.get("fmr")
    fmr_text = stored.get("fmr_text")
    upper_bound = stored.get("fmr_upper_bound")
    if upper_bound is None:  # rows written before the flag: "< 1 in N" is how a bound reads
        upper_bound = bool(fmr_text and str(fmr_text).startswith("<"))
    if fmr_text is None and fmr is not None:
        # Rows written before the words were stored: the calibration's own words for the value.
        fmr_text = one_in(float(fmr))
    return Candidate(
        rank=int(stored["rank"]),
        subject_id=subject_id,
        face_id=face_id,
        score=float(stored["score"]),
        fmr=fmr,
        fmr_text=fmr_text,
        fmr_upper_bound=bool(upper_bound),
        expected_strangers=stored.get("expected_strangers"),
        fmr_group=stored.get("fmr_group"),  # rows written before groups: None (pooled)
        fmr_basis=stored.get("fmr_basis"),
        name=subject_names.get(subject_id),
        subject_deleted=subject_id not in subject_names,
        face_quality=face_quality.get(face_id),
    )
