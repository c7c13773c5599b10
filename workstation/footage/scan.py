"""Scan a video for faces: sample frames, detect, link into tracks; a generator with progress.

Where the time goes, and how it is kept down (measured in benchmarks/footage_speed.py):
- Decoding: a reader thread decodes ahead while the detector works (both release the GIL);
  frames between samples are only `grab()`bed (decoded, never converted to BGR).
- Detection runs on every sample, on a copy whose longer side is at most `detect_side`
  (640 px by default: YuNet at 1280x720 costs about 4x as much as at 640x360 and still finds
  faces down to about 20 px in the full frame), and on a 320 px copy for faces too large for
  it (a close-up filling the frame). Landmarks are mapped back and faces are aligned from the
  full-resolution frame.
- Embedding (the most expensive step per face) runs only where linking needs it and, when a
  track closes, on its best few frames for the template.

A damaged or truncated file stops the scan where decoding fails: the tracks found until then are
kept and `ScanResult.damage` says where and why.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from workstation.footage.tracks import (
    LinkOptions,
    Observation,
    PendingFace,
    Track,
    TrackLinker,
    quality_weight,
)
from workstation.hashing import sha256_file
from workstation.progress import CancelToken, Progress
from workstation.vision.alignment import align_face
from workstation.vision.engine import FaceEngine
from workstation.vision.quality import assess_quality
from workstation.vision.video import VideoError, VideoInfo, open_capture, probe_video, timecode

DEFAULT_EVERY_S = 0.2
DEFAULT_DETECT_SIDE = 640
# A file that stops decoding this far before its declared frame count is reported as damaged.
_EARLY_END_TOLERANCE = 0.02


@dataclass(frozen=True)
class ScanOptions:
    every_s: float = DEFAULT_EVERY_S  # sample a frame this often (seconds of video)
    detect_side: int = DEFAULT_DETECT_SIDE  # longer side of the copy the detector sees
    min_detector_score: float = 0.6
    link: LinkOptions = field(default_factory=LinkOptions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "every_s": self.every_s,
            "detect_side": self.detect_side,
            "min_detector_score": self.min_detector_score,
            "iou_min": self.link.iou_min,
            "link_similarity_min": self.link.similarity_min,
            "max_gap_s": self.link.max_gap_s,
            "best_frames": self.link.best_frames,
        }


@dataclass
class ScanResult:
    video: VideoInfo
    options: ScanOptions
    tracks: list[Track]
    step_frames: int  # frames between samples
    frames_decoded: int
    samples: int
    faces_detected: int
    embeddings_computed: int
    elapsed_s: float
    damage: str | None = None  # why decoding stopped early, naming the file
    cancelled: bool = False

    @property
    def sample_interval_s(self) -> float:
        return self.step_frames / self.video.fps

    @property
    def scanned_s(self) -> float:
        return self.frames_decoded / self.video.fps

    @property
    def speed_x_realtime(self) -> float:
        return self.scanned_s / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def track(self, track_id: int) -> Track:
        for track in self.tracks:
            if track.track_id == track_id:
                return track
        raise KeyError(f"no track {track_id} in the scan of {self.video.path}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "video": self.video.to_dict(),
            "options": self.options.to_dict(),
            "frames_decoded": self.frames_decoded,
            "samples": self.samples,
            "faces_detected": self.faces_detected,
            "embeddings_computed": self.embeddings_computed,
            "elapsed_s": round(self.elapsed_s, 3),
            "damage": self.damage,
            "cancelled": self.cancelled,
            "tracks": [t.summary() for t in self.tracks],
        }


_END = object()


def _reader(
    capture: Any, step: int, out: queue.Queue, stop: threading.Event
) -> None:  # pragma: no cover - runs on a thread; exercised through scan_video
    """Decode every frame, hand every `step`-th (index, BGR) to the queue; then (_END, count)."""
    index = 0
    try:
        while not stop.is_set():
            if index % step == 0:
                ok, frame = capture.read()
                if not ok or frame is None:
                    break
                while not stop.is_set():
                    try:
                        out.put((index, frame), timeout=0.2)
                        break
                    except queue.Full:
                        continue
            elif not capture.grab():
                break
            index += 1
    finally:
        out.put((_END, index))


def scan_video(
    engine: FaceEngine,
    path: Path | str,
    options: ScanOptions | None = None,
    cancel: CancelToken | None = None,
    info: VideoInfo | None = None,
) -> Generator[Progress, None, ScanResult]:
    """Scan a video; yields Progress (frames done / frames declared), returns the ScanResult.

    Args:
        engine: the face engine (its lock serialises inference; safe from a worker thread).
        path: the video file.
        options: sampling and linking settings.
        cancel: set to stop early; the result then holds what was scanned, `cancelled=True`.
        info: facts already read by `probe_video` (skips hashing the file again).

    Raises:
        VideoError: the file is missing, empty, not a video, or no frame decodes.
    """
    options = options or ScanOptions()
    if options.every_s <= 0:
        raise ValueError(f"the sampling interval must be positive, got {options.every_s}")
    cancel = cancel or CancelToken()
    started = time.perf_counter()
    if info is None:
        info = probe_video(path, compute_hash=False)
        yield Progress(0, info.frame_count, f"hashing {info.path.name}")
        info = VideoInfo(**{**info.__dict__, "sha256": sha256_file(info.path)})
    step = max(1, round(options.every_s * info.fps))
    total = info.frame_count
    linker = TrackLinker(engine, options.link)
    # Record the linking threshold actually used (it depends on the model when not given).
    options = replace(options, link=replace(options.link, similarity_min=linker.similarity_min))
    capture = open_capture(info.path)
    frames: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()
    thread = threading.Thread(
        target=_reader, args=(capture, step, frames, stop), name="footage-reader", daemon=True
    )
    thread.start()
    samples = faces = decoded = 0
    cancelled = False
    try:
        while True:
            index, frame = frames.get()
            if index is _END:
                decoded = frame
                break
            if cancel.cancelled:
                cancelled = True
                decoded = index
                break
            time_s = info.time_of(index)
            pending = _detect(engine, frame, index, time_s, options)
            faces += len(pending)
            samples += 1
            linker.add_sample(time_s, pending)
            open_now = len(linker.open)
            yield Progress(
                index + 1,
                max(total, index + 1),
                f"{timecode(time_s)}: {len(pending)} face(s); "
                f"{len(linker.closed) + open_now} track(s)",
            )
    finally:
        stop.set()
        while thread.is_alive():  # unblock a reader waiting on a full queue
            try:
                frames.get_nowait()
            except queue.Empty:
                thread.join(0.05)
        capture.release()
    tracks = linker.finish()
    damage = None
    if not cancelled and decoded == 0:
        raise VideoError(f"{info.path}: no frame could be decoded")
    if not cancelled and total and decoded < total * (1 - _EARLY_END_TOLERANCE) - 2:
        damage = (
            f"{info.path}: decoding stopped at frame {decoded} ({timecode(info.time_of(decoded))}) "
            f"of {total} declared ({timecode(info.duration_s)}): the file is truncated or damaged "
            f"there; the {len(tracks)} track(s) found before that point are kept"
        )
    return ScanResult(
        video=info,
        options=options,
        tracks=tracks,
        step_frames=step,
        frames_decoded=decoded,
        samples=samples,
        faces_detected=faces,
        embeddings_computed=linker.embeddings_computed,
        elapsed_s=time.perf_counter() - started,
        damage=damage,
        cancelled=cancelled,
    )


def _detect(
    engine: FaceEngine, frame: np.ndarray, index: int, time_s: float, options: ScanOptions
) -> list[PendingFace]:
    """Detect on reduced copies (the engine's several scales, the largest `detect_side` long, so
    that a close-up filling the frame is found whole); align and assess each face from the
    full-resolution frame."""
    pending = []
    for det in engine.detect(frame, max_side=options.detect_side, full_resolution=False):
        if det.score < options.min_detector_score:
            continue
        crop = align_face(frame, det.landmarks)
        quality = assess_quality(crop, det.landmarks, det.score, aligned=True)
        observation = Observation(
            frame_index=index,
            time_s=time_s,
            box=det.box,
            landmarks=det.landmarks,
            detector_score=det.score,
            quality=quality,
            weight=quality_weight(quality),
        )
        prepared = engine.prepare(frame, det.box, det.landmarks)
        pending.append(PendingFace(observation, crop, prepared))
    return pending
