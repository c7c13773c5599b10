"""A case's recorded searches as the GUI shows them, and the words and order used for them.

Qt-free except for the thumbnails (QImage may be built on a worker thread).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtGui import QImage

from workstation.domain import Candidate, DecisionRecord
from workstation.gallery.decisions import decisions_for
from workstation.gallery.store import Gallery
from workstation.gui.imaging import bgr_to_qimage

THUMB_SIDE = 56
NA = "n/a"


@dataclass
class SearchSummary:
    """A recorded search as stored in the gallery, with its decisions so far."""

    search_id: int
    case_id: str
    purpose: str
    user: str
    created_at: str
    probe_path: str
    probe_sha256: str
    face: dict[str, Any]
    model_id: str
    gallery_faces: int
    candidates: list[Candidate]
    note: str | None = None
    decisions: list[DecisionRecord] = field(default_factory=list)

    @property
    def title(self) -> str:
        face = self.face
        how = "drawn box" if face.get("source") == "manual" else f"face {face.get('index', 0) + 1}"
        name = self.probe_path.replace("\\", "/").rsplit("/", 1)[-1]
        return f"Search {self.search_id}: {name}, {how} ({self.user}, {self.created_at[:16]})"


def _candidate_from_dict(data: dict[str, Any]) -> Candidate:
    return Candidate(
        rank=int(data["rank"]),
        subject_id=str(data["subject_id"]),
        name=data.get("name"),
        face_id=int(data["face_id"]),
        image_id=int(data.get("image_id") or 0),
        score=float(data["score"]),
        fmr=data.get("fmr"),
        expected_strangers=data.get("expected_strangers"),
    )


def load_case_searches(gallery: Gallery, case_id: str) -> list[SearchSummary]:
    """Every search of a case, oldest first, with its decisions (run on a worker)."""
    rows = gallery.searches_of_case(case_id)
    return [
        SearchSummary(
            search_id=int(row["id"]),
            case_id=row["case_id"],
            purpose=row["purpose"],
            user=row["user"],
            created_at=row["created_at"],
            probe_path=row["probe_path"] or "",
            probe_sha256=row["probe_sha256"],
            face=json.loads(row["face"]),
            model_id=row["model_id"],
            gallery_faces=int(row["gallery_size"]),
            candidates=[_candidate_from_dict(c) for c in json.loads(row["candidates"])],
            note=row["note"],
            decisions=decisions_for(gallery, int(row["id"])),
        )
        for row in rows
    ]


def decision_text(decisions: list[DecisionRecord]) -> str:
    """The state of one candidate in words, e.g. "possible lead (examiner1), confirmed by X"."""
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


def fmr_text(fmr: float | None) -> str:
    """A false-match rate as people read it: "1 in 9,100" (two significant digits)."""
    if fmr is None:
        return NA
    if fmr <= 0:
        return "below measurable"
    one_in = float(f"{1 / fmr:.2g}")
    return "1 in 1" if one_in <= 1 else f"1 in {one_in:,.0f}"


def blind_order_key(search_id: int, subject_id: str) -> str:
    """A fixed, score-independent order for blind review."""
    return hashlib.sha256(f"{search_id}:{subject_id}".encode()).hexdigest()


def load_thumbnails(gallery: Gallery, candidates: list[Candidate]) -> dict[int, tuple[QImage, str]]:
    """Aligned gallery-face thumbnails and their quality verdict, by face id (worker side)."""
    from workstation.domain import BBox
    from workstation.errors import ImageError
    from workstation.vision.alignment import align_face, crop_box
    from workstation.vision.cvcompat import cv2_module
    from workstation.vision.images import load_image

    cv2 = cv2_module()
    thumbs: dict[int, tuple[QImage, str]] = {}
    for candidate in candidates:
        record = gallery.face(candidate.face_id)
        if record is None:
            continue
        try:
            bgr = load_image(gallery.image_file(record)).bgr
        except ImageError:
            continue
        if record.landmarks:
            crop = align_face(bgr, tuple((x, y) for x, y in record.landmarks))
        else:
            crop = crop_box(bgr, BBox(*record.box))
        crop = cv2.resize(crop, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA)
        thumbs[candidate.face_id] = (bgr_to_qimage(crop), record.quality.get("verdict", ""))
    return thumbs
