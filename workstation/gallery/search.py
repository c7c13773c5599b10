"""1:N search of the gallery and 1:1 comparison, each recorded with its audit event.

A search needs a case number and a purpose. Its result is a ranked list of candidate subjects
(one row per subject, scored by its best face): investigative leads for human review, never
identifications.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from workstation.audit.actions import AuditAction
from workstation.audit.log import utc_now
from workstation.domain import LARGEST_FACE, BBox, Candidate, CaseAuthorisation, Face, FaceChoice
from workstation.errors import CaseRequiredError
from workstation.gallery.cases import require_case_open_for
from workstation.gallery.gate import check_quality_gate
from workstation.gallery.reads import Read, require_read_case
from workstation.gallery.records import (
    FACTS_KEY,
    ProbeInfo,
    SearchedFace,
    SearchRecord,
    facts_for,
)
from workstation.gallery.store import Gallery
from workstation.vision.engine import FaceEngine, select_face
from workstation.vision.enhancement import enhance
from workstation.vision.enhancement_steps import Step
from workstation.vision.images import LoadedImage

__all__ = [
    "DEFAULT_TOP_K",
    "Comparison",
    "ProbeInfo",
    "SearchRecord",
    "compare_images",
    "rank_candidates",
    "record_comparison",
    "require_case",
    "search_face",
    "search_image",
]

DEFAULT_TOP_K = 20  # what the FBI's face service returns to an investigator


def require_case(case_id: str | None, purpose: str | None) -> tuple[str, str]:
    case_id, purpose = (case_id or "").strip(), (purpose or "").strip()
    if not case_id or not purpose:
        raise CaseRequiredError(
            "a search needs a case number and a purpose (every search is recorded against them "
            "in the audit log)"
        )
    return case_id, purpose


def rank_candidates(gallery: Gallery, embedding: np.ndarray, top_k: int) -> list[Candidate]:
    """Top-k subjects by their best face's cosine similarity (ids and scores; no names).

    Scores are exact; above the index's size threshold the short list they are computed for
    comes from the approximate index (its measured recall is in `workstation index info`).
    """
    index = gallery.index()
    if index.count == 0 or top_k <= 0:
        return []
    best: dict[str, tuple[float, int]] = {}
    k = min(index.count, top_k * 4)
    while True:
        scores, ids = index.search(embedding, k)
        best.clear()
        subject_of = gallery.face_subjects([int(i) for i in ids])
        for score, face_id in zip(scores, ids, strict=True):
            subject = subject_of.get(int(face_id))
            if subject is not None and subject not in best:
                best[subject] = (float(score), int(face_id))
        if len(best) >= top_k or k >= index.count:
            break
        k = min(index.count, k * 4)
    ranked = sorted(best.items(), key=lambda item: -item[1][0])[:top_k]
    return [
        Candidate(rank=rank, subject_id=subject, face_id=face_id, score=score)
        for rank, (subject, (score, face_id)) in enumerate(ranked, start=1)
    ]


def search_face(
    gallery: Gallery,
    face: Face,
    probe: ProbeInfo,
    case_id: str | None,
    purpose: str | None,
    top_k: int = DEFAULT_TOP_K,
    faces_found: int = 1,
    note: str | None = None,
    extra_params: dict[str, Any] | None = None,
    authorisation: CaseAuthorisation | None = None,
) -> SearchRecord:
    """Search the gallery with an already analysed face, record the search, return its record.

    Each candidate carries the false-match rate at its score (how often a stranger scores that
    high, in words made once by the calibration) and the expected number of strangers at or
    above it in this gallery. A poor-quality probe is refused with QualityGateError unless
    `note` says why it is searched anyway. The record returned is read back from the stored
    row, so it is the same object a later `gallery.search_record(search_id)` gives.
    `authorisation` (who approved the case's searches, when, the reference) is recorded on the
    case with the search, in the same act.
    """
    from workstation.calibration.groups import group_of
    from workstation.calibration.record import fmr_fields
    from workstation.gallery.calibration import calibration_for, store_calibration

    case_id, purpose = require_case(case_id, purpose)
    gallery.require(AuditAction.SEARCH)  # before any work: an examiner who may not search
    require_case_open_for(gallery, case_id, AuditAction.SEARCH)  # nor a closed case
    assert face.model is not None
    gallery.check_model(face.model)
    gate = check_quality_gate(face, note, probe.path)
    started_at = utc_now()
    calibration = calibration_for(gallery, str(face.model))
    faces_now = gallery.face_count()
    ranked = rank_candidates(gallery, face.embedding, top_k)
    attributes = gallery.subject_attributes([c.subject_id for c in ranked])
    candidates = [
        replace(
            c,
            **fmr_fields(calibration, c.score, faces_now, group_of(attributes.get(c.subject_id))),
        )
        for c in ranked
    ]
    params = {
        "top_k": top_k,
        "index": gallery.index().kind,  # "flat-ip" (exact) or "pq-fastscan+exact-rerank"
        **(extra_params or {}),
        "quality_gate": gate,
    }
    searched = SearchedFace.from_face(face, faces_found)
    created_at = utc_now()
    with gallery.change() as change:
        # A calibration computed for this search is stored with it (its id goes in the params).
        calibration = store_calibration(change, calibration)
        params["calibration"] = calibration.summary()
        new_case = change.ensure_case(case_id, purpose)
        if authorisation is not None:
            change.authorise_case(case_id, authorisation)
        gallery_faces, gallery_subjects = gallery.face_count(), gallery.subject_count()
        search_id = change.add_search(
            case_id=case_id,
            purpose=purpose,
            created_at=created_at,
            probe_path=probe.path,
            probe_sha256=probe.sha256,
            face=searched.to_dict(),
            model_id=str(face.model),
            params={
                **params,
                FACTS_KEY: facts_for(
                    probe,
                    started_at,
                    gallery_subjects,
                    gallery.gallery_id,
                    str(gallery.folder.resolve()),
                ),
            },
            gallery_faces=gallery_faces,
            candidates=[c.stored_dict() for c in candidates],
            note=note,
        )
        change.record(
            AuditAction.SEARCH,
            {
                "search_id": search_id,
                "new_case": new_case,
                "authorisation": authorisation.to_dict() if authorisation else None,
                "probe_path": probe.path,
                "probe_sha256": probe.sha256,
                "probe_frame": probe.frame,
                # The working copy's lineage (original and working SHA-256, steps, OpenCV
                # version) or None: the audit chain covers it as it covers the row.
                "probe_enhancement": probe.enhancement_dict,
                "face_source": face.source.value,
                "box": face.box.as_list(),
                "aligned": face.aligned,
                "quality": face.quality.verdict.value,
                "quality_reasons": list(face.quality.reasons),
                "model_id": str(face.model),
                "params": params,
                "started_at": started_at,
                "gallery_id": gallery.gallery_id,
                "gallery_faces": gallery_faces,
                "gallery_subjects": gallery_subjects,
                "note": note,
                "quality_gate": gate,
                "candidates": [
                    {
                        "rank": c.rank,
                        "subject_id": c.subject_id,
                        "face_id": c.face_id,
                        "score": round(c.score, 5),
                        "fmr": c.fmr,
                        "expected_strangers": c.expected_strangers,
                    }
                    for c in candidates
                ],
            },
            case_id=case_id,
            purpose=purpose,
        )
    return gallery.search_record(search_id)


def search_image(
    gallery: Gallery,
    engine: FaceEngine,
    image: LoadedImage,
    case_id: str | None,
    purpose: str | None,
    top_k: int = DEFAULT_TOP_K,
    box: BBox | None = None,
    face_index: int | None = None,
    path_as_given: str | None = None,
    note: str | None = None,
    authorisation: CaseAuthorisation | None = None,
    steps: Sequence[Step] = (),
) -> SearchRecord:
    """Pick the probe face in a photo (drawn box, face number, or the largest) and search.

    With enhancement `steps`, the face is found and searched on the working copy they make
    (a drawn `box` is in the working copy's pixels) and the search records the lineage.
    """
    case_id, purpose = require_case(case_id, purpose)
    require_case_open_for(gallery, case_id, AuditAction.SEARCH)  # before detection's work
    gallery.check_model(engine.model)
    bgr, lineage = image.bgr, None
    if steps:
        working = enhance(image.bgr, steps, image.sha256)
        bgr, lineage = working.bgr, working.lineage
    face, faces = select_face(engine, bgr, path_as_given or str(image.path), box, face_index)
    params = {"face_index": face_index if box is None else None}
    return search_face(
        gallery,
        face,
        ProbeInfo.from_image(image, path_as_given, lineage),
        case_id,
        purpose,
        top_k,
        faces_found=len(faces),
        note=note,
        extra_params=params,
        authorisation=authorisation,
    )


@dataclass(frozen=True)
class Comparison:
    image_a: ProbeInfo
    image_b: ProbeInfo
    face_a: Face
    face_b: Face
    score: float
    model_id: str
    fmr: float | None = None
    fmr_text: str | None = None
    calibration: dict[str, Any] | None = None  # summary of the calibration the FMR came from
    fmr_basis: str | None = None  # which rate it is, in the calibration's words
    choice_a: FaceChoice = LARGEST_FACE
    choice_b: FaceChoice = LARGEST_FACE

    def face_summary(self, which: str) -> dict[str, Any]:
        """Which face of photo `which` ("a" or "b") was compared, and how it was found."""
        face, choice = (
            (self.face_a, self.choice_a) if which == "a" else (self.face_b, self.choice_b)
        )
        return {
            **choice.to_dict(),
            "chosen": choice.describe(),
            "found_box": face.box.as_list(),
            "source": face.source.value,
            "aligned": face.aligned,
            "low_confidence": not face.aligned,
            "quality": face.quality.verdict.value,
            "quality_reasons": list(face.quality.reasons),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_a": self.image_a.path,
            "image_b": self.image_b.path,
            "sha256_a": self.image_a.sha256,
            "sha256_b": self.image_b.sha256,
            "face_a": self.face_summary("a"),
            "face_b": self.face_summary("b"),
            "score": round(self.score, 5),
            "fmr": self.fmr,
            "fmr_text": self.fmr_text,
            "fmr_basis": self.fmr_basis,
            "calibration": self.calibration,
            "model_id": self.model_id,
            "quality_a": self.face_a.quality.verdict.value,
            "quality_b": self.face_b.quality.verdict.value,
            "error": None,
        }


def compare_images(
    engine: FaceEngine,
    image_a: LoadedImage,
    image_b: LoadedImage,
    name_a: str,
    name_b: str,
    calibration: Any = None,
    choice_a: FaceChoice = LARGEST_FACE,
    choice_b: FaceChoice = LARGEST_FACE,
) -> Comparison:
    """1:1 comparison of one face in each photo: the one each `choice` names (a drawn box, whose
    landmarks are looked for inside it, else the box unaligned and marked low-confidence; a face
    number; by default the largest face).

    With a `calibration` (workstation.calibration.record.Calibration, e.g. from
    `calibration_for(gallery, str(engine.model))`), the FMR at the score is filled in.
    """
    face_a, _ = select_face(engine, image_a.bgr, name_a, choice_a.box, choice_a.index)
    face_b, _ = select_face(engine, image_b.bgr, name_b, choice_b.box, choice_b.index)
    score = float(np.dot(face_a.embedding, face_b.embedding))
    fmr = fmr_text = summary = basis = None
    if calibration is not None:
        from workstation.calibration.record import fmr_fields

        # Neither face is a gallery subject: no group is known, so the highest group's rate
        # (or the pooled one) is shown, as for a candidate whose group is not recorded.
        fields = fmr_fields(calibration, score, 0)
        fmr, fmr_text, summary = fields["fmr"], fields["fmr_text"], calibration.summary()
        basis = fields["fmr_basis"]
    return Comparison(
        ProbeInfo.from_image(image_a, name_a),
        ProbeInfo.from_image(image_b, name_b),
        face_a,
        face_b,
        score,
        str(engine.model),
        fmr=fmr,
        fmr_text=fmr_text,
        calibration=summary,
        fmr_basis=basis,
        choice_a=choice_a,
        choice_b=choice_b,
    )


def record_comparison(
    gallery: Gallery, comparison: Comparison, case_id: str | None, purpose: str | None
) -> None:
    """Audit a 1:1 comparison, against the case and purpose it serves (required: comparing
    two photos of people is a consultation of personal data, recorded like a search)."""
    case_id, purpose = require_read_case(case_id, purpose, Read.COMPARE)
    with gallery.transaction():
        gallery.audit(
            AuditAction.COMPARE,
            {
                "image_a": comparison.image_a.path,
                "sha256_a": comparison.image_a.sha256,
                "image_b": comparison.image_b.path,
                "sha256_b": comparison.image_b.sha256,
                "face_a": comparison.face_summary("a"),
                "face_b": comparison.face_summary("b"),
                "score": round(comparison.score, 5),
                "fmr": comparison.fmr,
                "calibration": comparison.calibration,
                "model_id": comparison.model_id,
            },
            case_id=case_id,
            purpose=purpose,
        )
