"""Link face detections from sampled frames into tracks (one person's continuous appearance).

Linking is cheap first, then careful: a detection that overlaps exactly one open track's predicted
box (and that track no other detection) joins it without any embedding. Only detections that are
ambiguous (two faces crossing, a face reappearing after a short occlusion) are embedded and matched
by appearance. A track closes when it has not been seen for `max_gap_s`.

Each track keeps its observations (frame, time, box, quality) and the aligned crops of its best
few frames by quality; its template (the quality-weighted mean of the best frames' embeddings,
re-normalised) is computed when the track closes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workstation.calibration.reference import same_person_score
from workstation.domain import BBox, Face, FaceSource, Landmarks, ModelId, Quality, Verdict
from workstation.vision.engine import FaceEngine, PreparedFace, l2_normalise

_VERDICT_WEIGHT = {Verdict.GOOD: 1.0, Verdict.WARN: 0.6, Verdict.POOR: 0.2}


def quality_weight(quality: Quality) -> float:
    """A face's usefulness for recognition in (0, 1]: verdict, eye distance, sharpness, pose."""
    weight = _VERDICT_WEIGHT[quality.verdict]
    if quality.inter_eye_px is not None:
        weight *= min(1.0, max(quality.inter_eye_px, 1.0) / 60.0)
    weight *= math.sqrt(min(1.0, max(quality.sharpness, 1.0) / 300.0))
    if quality.yaw_deg is not None:
        weight *= max(0.1, math.cos(math.radians(min(abs(quality.yaw_deg), 80.0))))
    if quality.detector_score is not None:
        weight *= max(0.1, min(1.0, quality.detector_score))
    return max(weight, 1e-4)


@dataclass(frozen=True)
class Observation:
    """One detection of the track's face in one sampled frame."""

    frame_index: int
    time_s: float
    box: BBox
    landmarks: Landmarks
    detector_score: float
    quality: Quality
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame_index": self.frame_index,
            "time_s": round(self.time_s, 3),
            "box": self.box.as_list(),
            "quality": self.quality.verdict.value,
            "weight": round(self.weight, 4),
        }


@dataclass
class BestFrame:
    """One of a track's best observations, with its aligned crop (and embedding once computed)."""

    observation: Observation
    crop: np.ndarray = field(repr=False)
    prepared: PreparedFace = field(repr=False)  # the recogniser's input (see Embedder.prepare)
    embedding: np.ndarray | None = field(default=None, repr=False)


@dataclass
class Track:
    """One face followed through the video."""

    track_id: int
    observations: list[Observation] = field(default_factory=list)
    best: list[BestFrame] = field(default_factory=list)  # best first
    template: np.ndarray | None = field(default=None, repr=False)
    model: ModelId | None = None
    # Linking state (not part of the result's meaning).
    last_prepared: PreparedFace | None = field(default=None, repr=False)
    ref_embedding: np.ndarray | None = field(default=None, repr=False)
    ref_frame: int = -1

    @property
    def first(self) -> Observation:
        return self.observations[0]

    @property
    def last(self) -> Observation:
        return self.observations[-1]

    @property
    def start_s(self) -> float:
        return self.first.time_s

    @property
    def end_s(self) -> float:
        return self.last.time_s

    @property
    def frame_count(self) -> int:
        """Sampled frames the face was detected in."""
        return len(self.observations)

    @property
    def best_observation(self) -> Observation:
        return self.best[0].observation if self.best else self.first

    @property
    def best_frame(self) -> int:
        return self.best_observation.frame_index

    @property
    def thumbnail(self) -> np.ndarray | None:
        """The aligned 112 px crop of the best frame (BGR)."""
        return self.best[0].crop if self.best else None

    def appearances(self, sample_interval_s: float) -> list[tuple[float, float]]:
        """Runs of consecutive samples, (start_s, end_s); a missed sample splits a run."""
        runs: list[tuple[float, float]] = []
        for obs in self.observations:
            if runs and obs.time_s - runs[-1][1] <= sample_interval_s * 1.5:
                runs[-1] = (runs[-1][0], obs.time_s)
            else:
                runs.append((obs.time_s, obs.time_s))
        return runs

    def embeddings(self) -> np.ndarray:
        """Every embedding computed for this track (best frames), n x d."""
        rows = [b.embedding for b in self.best if b.embedding is not None]
        return np.vstack(rows) if rows else np.zeros((0, 0), dtype=np.float32)

    def probe_face(self) -> Face:
        """The track as a searchable face: the template, with the best frame's box and quality."""
        if self.template is None:
            raise ValueError(f"track {self.track_id} has no template yet")
        best = self.best_observation
        return Face(
            index=0,
            box=best.box,
            landmarks=best.landmarks,
            source=FaceSource.DETECTED,
            aligned=True,
            quality=best.quality,
            embedding=self.template,
            model=self.model,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "track": self.track_id,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "frames": self.frame_count,
            "best_frame": self.best_frame,
            "template_frames": [
                b.observation.frame_index for b in self.best if b.embedding is not None
            ],
        }


@dataclass(frozen=True)
class LinkOptions:
    iou_min: float = 0.2  # overlap with a track's predicted box that links without embedding
    # Appearance linking needs "probably the same person": None takes the score of the model in
    # use at SAME_PERSON_FMR (workstation.calibration.reference.same_person_score).
    similarity_min: float | None = None
    max_gap_s: float = 1.0  # a track unseen this long is closed
    best_frames: int = 5  # crops kept (and embedded for the template) per track


@dataclass
class PendingFace:
    """A detection in the current sample, prepared for linking."""

    observation: Observation
    crop: np.ndarray  # the aligned 112 px crop (quality, thumbnails)
    prepared: PreparedFace  # the recogniser's input, cut while the frame is at hand
    embedding: np.ndarray | None = None


class TrackLinker:
    """Feeds detections sample by sample; returns closed tracks as they close."""

    def __init__(self, engine: FaceEngine, options: LinkOptions) -> None:
        self.engine = engine
        self.options = options
        self.similarity_min = (
            options.similarity_min
            if options.similarity_min is not None
            else same_person_score(str(engine.model))[0]
        )
        self.open: list[Track] = []
        self.closed: list[Track] = []
        self.embeddings_computed = 0
        self._next_id = 1

    def add_sample(self, time_s: float, detections: list[PendingFace]) -> None:
        self._close_stale(time_s)
        tracks = self.open
        assigned: dict[int, Track] = {}
        if tracks and detections:
            predicted = [_predict(t, time_s) for t in tracks]
            iou = np.array(
                [[d.observation.box.iou(p) for p in predicted] for d in detections],
                dtype=np.float64,
            )
            linked = iou >= self.options.iou_min
            for di in range(len(detections)):
                ti = int(np.argmax(iou[di]))
                if linked[di].sum() == 1 and linked[:, ti].sum() == 1:
                    assigned[di] = tracks[ti]
            rest_d = [i for i in range(len(detections)) if i not in assigned]
            taken = {id(t) for t in assigned.values()}
            rest_t = [t for t in tracks if id(t) not in taken]
            if rest_d and rest_t:
                self._link_by_appearance(detections, rest_d, rest_t, iou, tracks, assigned)
        for di, det in enumerate(detections):
            track = assigned.get(di)
            if track is None:
                track = Track(track_id=self._next_id, model=self.engine.model)
                self._next_id += 1
                self.open.append(track)
            self._append(track, det)

    def finish(self) -> list[Track]:
        """Close every open track, compute templates; all tracks in order of first appearance."""
        for track in self.open:
            self._close(track)
        self.open = []
        return sorted(self.closed, key=lambda t: (t.start_s, t.track_id))

    # ------------------------------------------------------------------ internals
    def _link_by_appearance(
        self,
        detections: list[PendingFace],
        rest_d: list[int],
        rest_t: list[Track],
        iou: np.ndarray,
        tracks: list[Track],
        assigned: dict[int, Track],
    ) -> None:
        need = [detections[i] for i in rest_d if detections[i].embedding is None]
        self._embed_pending(need)
        for track in rest_t:
            stale = track.ref_embedding is None or track.ref_frame != track.last.frame_index
            if stale and track.last_prepared is not None:
                track.ref_embedding = self._embed([track.last_prepared])[0]
                track.ref_frame = track.last.frame_index
        pairs: list[tuple[float, int, Track]] = []
        for di in rest_d:
            emb = detections[di].embedding
            for track in rest_t:
                if track.ref_embedding is None or emb is None:
                    continue
                sim = float(np.dot(emb, track.ref_embedding))
                if sim >= self.similarity_min:
                    overlap = float(iou[di, tracks.index(track)])
                    pairs.append((sim + overlap, di, track))
        used: set[int] = set()
        for _, di, track in sorted(pairs, key=lambda p: -p[0]):
            if di in assigned or id(track) in used:
                continue
            assigned[di] = track
            used.add(id(track))

    def _embed(self, faces: list[PreparedFace]) -> np.ndarray:
        self.embeddings_computed += len(faces)
        return self.engine.embed_prepared(faces)

    def _embed_pending(self, pending: list[PendingFace]) -> None:
        if not pending:
            return
        vectors = self._embed([p.prepared for p in pending])
        for item, vector in zip(pending, vectors, strict=True):
            item.embedding = vector

    def _append(self, track: Track, det: PendingFace) -> None:
        track.observations.append(det.observation)
        track.last_prepared = det.prepared
        if det.embedding is not None:
            track.ref_embedding = det.embedding
            track.ref_frame = det.observation.frame_index
        keep = self.options.best_frames
        weight = det.observation.weight
        if len(track.best) < keep or weight > track.best[-1].observation.weight:
            track.best.append(BestFrame(det.observation, det.crop, det.prepared, det.embedding))
            track.best.sort(key=lambda b: -b.observation.weight)
            del track.best[keep:]

    def _close_stale(self, time_s: float) -> None:
        still_open = []
        for track in self.open:
            if time_s - track.last.time_s > self.options.max_gap_s:
                self._close(track)
            else:
                still_open.append(track)
        self.open = still_open

    def _close(self, track: Track) -> None:
        missing = [b for b in track.best if b.embedding is None]
        if missing:
            vectors = self._embed([b.prepared for b in missing])
            for best, vector in zip(missing, vectors, strict=True):
                best.embedding = vector
        weights = np.array([b.observation.weight for b in track.best], dtype=np.float32)
        matrix = np.vstack([b.embedding for b in track.best])  # type: ignore[misc]
        track.template = l2_normalise((weights[:, None] * matrix).sum(axis=0, keepdims=True))[0]
        track.last_prepared = None
        track.ref_embedding = None
        self.closed.append(track)


def _predict(track: Track, time_s: float) -> BBox:
    """Where the track's face should be now (constant velocity from its last two boxes)."""
    last = track.last
    if len(track.observations) < 2:
        return last.box
    prev = track.observations[-2]
    dt = last.time_s - prev.time_s
    if dt <= 0:
        return last.box
    ahead = (time_s - last.time_s) / dt
    (cx0, cy0), (cx1, cy1) = prev.box.center, last.box.center
    dx, dy = (cx1 - cx0) * ahead, (cy1 - cy0) * ahead
    return BBox(last.box.x + dx, last.box.y + dy, last.box.w, last.box.h)
