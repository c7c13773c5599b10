"""Search the gallery with footage, and find a person in footage.

Lineage: every footage search records the video's SHA-256, the frame index and its timecode (and
the track id when a track is searched) in the audit event (`probe_frame`) and in the search's
params, so a lead can be traced back to the exact frame.

Finding a person: a track is a match when the score between the probe and the track (its
template, or any of its embedded best frames, whichever is highest) reaches `find_threshold`:
the score at which strangers match 1 in 630 times in the model's own reference table (for SFace
alone that is OpenCV's published same-person cosine, 0.363; a fused ensemble's scores lie on
another scale, so no fixed number can serve every model). Like every search result, a marked
segment is a lead for human review, not an identification.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workstation.audit.actions import AuditAction
from workstation.calibration.reference import same_person_score
from workstation.domain import BBox, Face, ModelId
from workstation.errors import GalleryError, NoFaceError
from workstation.footage.scan import ScanResult
from workstation.footage.tracks import Track
from workstation.gallery.reads import Read, require_read_case
from workstation.gallery.search import (
    DEFAULT_TOP_K,
    ProbeInfo,
    SearchRecord,
    require_case,
    search_face,
)
from workstation.gallery.store import Gallery
from workstation.vision.engine import FaceEngine, l2_normalise, select_face
from workstation.vision.enhancement import Enhancement, enhance, pixels_sha256
from workstation.vision.enhancement_steps import Step
from workstation.vision.video import VideoInfo, timecode


def find_threshold(model: ModelId | str | None) -> tuple[float, str]:
    """The score a track must reach to be marked for this model, and where it comes from."""
    return same_person_score(str(model) if model is not None else "")


def track_lineage(scan: ScanResult, track: Track) -> dict[str, Any]:
    """The track's lineage: the best frame's video facts plus the track's span."""
    return {
        **scan.video.lineage(track.best_frame),
        "track_id": track.track_id,
        "track_start_s": round(track.start_s, 3),
        "track_end_s": round(track.end_s, 3),
        "track_frames": track.frame_count,
        "template_frames": [
            b.observation.frame_index for b in track.best if b.embedding is not None
        ],
        "sample_every_s": scan.options.every_s,
        "smallest_face_px": scan.smallest_face_px,
    }


def record_scan(
    gallery: Gallery, scan: ScanResult, case_id: str | None, purpose: str | None
) -> None:
    """Audit that a video was scanned: its hash, the settings, what was found, any damage.

    The scan consults the video (the people in it), so it is recorded against the case and
    purpose it serves (required, CaseRequiredError otherwise): this event is the read's record.
    """
    case_id, purpose = require_read_case(case_id, purpose, Read.FOOTAGE)
    with gallery.change() as change:
        change.record(
            AuditAction.FOOTAGE_SCAN,
            {
                "video": scan.video.to_dict(),
                "options": scan.options.to_dict(),
                "smallest_face_px": scan.smallest_face_px,
                "frames_decoded": scan.frames_decoded,
                "samples": scan.samples,
                "damage": scan.damage,
                "cancelled": scan.cancelled,
                "model_id": str(scan.tracks[0].model) if scan.tracks else None,
                "tracks": [t.summary() for t in scan.tracks],
            },
            case_id=case_id,
            purpose=purpose,
        )


def _probe_info(
    video: VideoInfo, lineage: dict[str, Any], enhancement: Enhancement | None = None
) -> ProbeInfo:
    return ProbeInfo(
        path=f"{video.path}#frame={lineage['frame_index']}",
        sha256=video.sha256,
        width=video.width,
        height=video.height,
        frame=lineage,
        enhancement=enhancement,
    )


def search_track(
    gallery: Gallery,
    scan: ScanResult,
    track: Track,
    case_id: str | None,
    purpose: str | None,
    top_k: int = DEFAULT_TOP_K,
    note: str | None = None,
) -> SearchRecord:
    """Search the gallery with a track's template; recorded with the video lineage."""
    lineage = track_lineage(scan, track)
    return search_face(
        gallery,
        track.probe_face(),
        _probe_info(scan.video, lineage),
        case_id,
        purpose,
        top_k,
        faces_found=1,
        note=note,
        extra_params={"probe_kind": "footage_track", **lineage},
    )


def search_frame(
    gallery: Gallery,
    engine: FaceEngine,
    video: VideoInfo,
    frame_index: int,
    bgr: np.ndarray,
    case_id: str | None,
    purpose: str | None,
    top_k: int = DEFAULT_TOP_K,
    box: BBox | None = None,
    face_index: int | None = None,
    note: str | None = None,
    steps: Sequence[Step] = (),
) -> SearchRecord:
    """Search one chosen face (largest, face N, or a drawn box) in one frame of a video.

    With enhancement `steps`, the frame is the original (named by its pixels' SHA-256 beside the
    video's SHA-256 and the frame index) and the face is searched on the working copy.
    """
    gallery.check_model(engine.model)
    lineage = video.lineage(frame_index)
    enhancement = None
    if steps:
        working = enhance(bgr, steps, pixels_sha256(bgr), original_kind="video frame")
        bgr, enhancement = working.bgr, working.lineage
    face, faces = select_face(
        engine, bgr, f"{video.path} frame {frame_index}", box=box, face_index=face_index
    )
    return search_face(
        gallery,
        face,
        _probe_info(video, lineage, enhancement),
        case_id,
        purpose,
        top_k,
        faces_found=len(faces),
        note=note,
        extra_params={"probe_kind": "footage_frame", "face_index": face_index, **lineage},
    )


@dataclass(frozen=True)
class Appearance:
    """A time segment where the person appears (one or more overlapping matching tracks)."""

    start_s: float
    end_s: float
    start_frame: int
    end_frame: int
    track_ids: tuple[int, ...]
    score: float  # the best matching track's similarity

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "tracks": list(self.track_ids),
            "score": round(self.score, 5),
        }


def track_similarity(track: Track, probes: np.ndarray) -> float:
    """Best cosine similarity between any probe and the track's template or best frames."""
    probes = l2_normalise(np.atleast_2d(probes))
    rows = [track.template] if track.template is not None else []
    extra = track.embeddings()
    if extra.size:
        rows.extend(extra)
    if not rows:
        return -1.0
    return float((np.vstack(rows) @ probes.T).max())


def find_person(
    scan: ScanResult, probes: np.ndarray, threshold: float | None = None
) -> list[Appearance]:
    """Time segments where a probe (one or more embeddings of one person) appears.

    `threshold` None: `find_threshold` of the scan's model.

    Each matching track contributes its runs of consecutive samples; runs from different tracks
    that overlap or touch (within one sample interval) merge into one segment.
    """
    if threshold is None:
        threshold = find_threshold(scan.tracks[0].model if scan.tracks else None)[0]
    interval = scan.sample_interval_s
    runs: list[tuple[float, float, int, float]] = []
    for track in scan.tracks:
        score = track_similarity(track, probes)
        if score >= threshold:
            runs.extend((s, e, track.track_id, score) for s, e in track.appearances(interval))
    runs.sort()
    merged: list[list[Any]] = []
    for start, end, track_id, score in runs:
        if merged and start - merged[-1][1] <= interval * 1.5:
            last = merged[-1]
            last[1] = max(last[1], end)
            last[2].add(track_id)
            last[3] = max(last[3], score)
        else:
            merged.append([start, end, {track_id}, score])
    video = scan.video
    return [
        Appearance(
            start_s=start,
            end_s=end,
            start_frame=video.frame_at(start),
            end_frame=video.frame_at(end),
            track_ids=tuple(sorted(ids)),
            score=score,
        )
        for start, end, ids, score in merged
    ]


def probe_embeddings_from_face(face: Face) -> np.ndarray:
    return np.atleast_2d(face.embedding).astype(np.float32)


def subject_embeddings(gallery: Gallery, subject_id: str) -> np.ndarray:
    """Every enrolled embedding of a gallery subject (n x d), to find them in footage."""
    embeddings = gallery.subject_embeddings(subject_id)
    if not len(embeddings):
        if gallery.subject(subject_id) is None:
            raise GalleryError(f"subject {subject_id!r} is not in the gallery {gallery.folder}")
        raise NoFaceError(f"subject {subject_id!r} has no enrolled faces to look for")
    return embeddings


def find_subject(
    gallery: Gallery,
    scan: ScanResult,
    subject_id: str,
    case_id: str | None,
    purpose: str | None,
    threshold: float | None = None,
) -> list[Appearance]:
    """Where a gallery subject appears in a scanned video (see `find_person`).

    Looking for an enrolled person in footage is a search: it needs a case and a purpose and is
    recorded ("footage_find") with the video's hash, the threshold and the segments found.
    """
    case_id, purpose = require_case(case_id, purpose)
    model = scan.tracks[0].model if scan.tracks else None
    if model is not None:
        gallery.check_model(model)
    basis = "given by the caller"
    if threshold is None:
        threshold, basis = find_threshold(model if model is not None else gallery.model_id)
    segments = find_person(scan, subject_embeddings(gallery, subject_id), threshold)
    with gallery.change() as change:
        change.ensure_case(case_id, purpose)
        change.record(
            AuditAction.FOOTAGE_FIND,
            {
                "subject_id": subject_id,
                "video_path": str(scan.video.path),
                "video_sha256": scan.video.sha256,
                "threshold": threshold,
                "threshold_basis": basis,
                "model_id": str(model) if model else None,
                "segments": [
                    {**s.to_dict(), "start_tc": timecode(s.start_s), "end_tc": timecode(s.end_s)}
                    for s in segments
                ],
            },
            case_id=case_id,
            purpose=purpose,
        )
    return segments
