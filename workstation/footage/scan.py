"""Scan a video for faces: sample frames, detect, link into tracks; a generator with progress.

Where the time goes, and how it is kept down (measured in benchmarks/footage_speed.py):
- Decoding: a reader thread decodes ahead while the detector works (both release the GIL);
  frames between samples are only `grab()`bed (decoded, never converted to BGR).
- Detection runs on every sample, on a copy just large enough for the smallest face the
  examiner asked for (`min_face_px`, in the video's own pixels: see `detection_side`), and on a
  320 px copy for faces too large for it (a close-up filling the frame). Its cost grows with the
  copy's pixels (a 1080p clip: 3.0x real time at 640 px, 2.5x at 896, 1.3x at 1,344, 0.7x at
  its own 1,920, 0.3x enlarged to 2,688), so the examiner trades speed for small faces, and the
  scan's record says which faces it did not look for. A fixed copy size would do the opposite
  of what a better camera should: the old 640 px copy found faces from about 56 px in 720p
  footage, 84 px in 1080p and 168 px in 4K. Landmarks are mapped back and faces are aligned
  from the full-resolution frame.
- Embedding (the most expensive step per face) runs only where linking needs it and, when a
  track closes, on its best few frames for the template.

A damaged or truncated file stops the scan where decoding fails: the tracks found until then are
kept and `ScanResult.damage` says where and why.
"""

from __future__ import annotations

import math
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
# The detector finds a face reliably from about this width (px) in the copy it sees, shrunk or
# enlarged. Measured on CFP faces with their surroundings pasted into 1,920x1,080 frames
# (benchmarks/cfp_closeups.py --footage, 40 people): 90-100% found where a face is 27-30 px in
# the copy, 55-60% at 19-21 px, under 10% at 14 px and less.
RELIABLE_FACE_IN_COPY = 28
# The smallest face (px wide in the video's own frame) a scan looks for unless told otherwise.
# A 720p video is then searched at 640 px, as every video was before (4.3-4.4x real time at 5
# samples/s on 2 cores: issue 5's goal of 4x holds); a 1080p one at 896 px (2.5x; faces from 60
# px, where the old fixed 640 px copy found them only from about 84 px), a 4K one at 1,792. The
# examiner asks for smaller faces when the footage needs it (40 px: 1.3x real time on 1080p).
DEFAULT_MIN_FACE_PX = 60
# The smallest face a scan may be asked for. Faces under RELIABLE_FACE_IN_COPY are looked for on
# the frame enlarged (bicubic) until they are that size: at 1.4 times, 20 px faces of a 1080p
# frame were found 39 times in 40 against 24 at the frame's own size, 24 px 40 against 35, and
# no other detection was made (benchmarks/cfp_closeups.py --footage). Below 20 px a face holds
# too little for a search to mean anything.
SMALLEST_MIN_FACE_PX = 20
# A scan never detects on a copy smaller than this (or than the frame): a 640 px pass is cheap,
# and a small video (640x480, a D1 camera's 704x576) is then searched at about its own size,
# for every face the detector can find in it, whatever smallest face was asked for.
SMALLEST_SCAN_SIDE = 640
# A file that stops decoding this far before its declared frame count is reported as damaged.
_EARLY_END_TOLERANCE = 0.02


def detection_side(frame_width: int, frame_height: int, min_face_px: int) -> int:
    """The longer side of the copy a scan detects on, so that a face `min_face_px` wide in the
    frame is RELIABLE_FACE_IN_COPY px there: at least SMALLEST_SCAN_SIDE (or the frame), and
    larger than the frame (enlarged) for faces smaller than the detector finds at its size."""
    longer = max(1, frame_width, frame_height)
    wanted = math.ceil(longer * RELIABLE_FACE_IN_COPY / max(1, min_face_px))
    return wanted if wanted > longer else min(longer, max(wanted, SMALLEST_SCAN_SIDE))


def smallest_face_seen(frame_width: int, frame_height: int, detect_side: int) -> int:
    """The smallest face (px wide in the frame) a scan at `detect_side` finds reliably."""
    longer = max(1, frame_width, frame_height)
    return max(
        SMALLEST_MIN_FACE_PX, math.ceil(RELIABLE_FACE_IN_COPY * longer / max(1, detect_side))
    )


@dataclass(frozen=True)
class ScanOptions:
    every_s: float = DEFAULT_EVERY_S  # sample a frame this often (seconds of video)
    # The smallest face to look for, px wide in the video's own frame (see detection_side).
    min_face_px: int = DEFAULT_MIN_FACE_PX
    min_detector_score: float = 0.6
    link: LinkOptions = field(default_factory=LinkOptions)
    # Set by scan_video from the video's size and `min_face_px`: what the detector saw.
    detect_side: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "every_s": self.every_s,
            "min_face_px": self.min_face_px,
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
    def smallest_face_px(self) -> int:
        """The narrowest face (px, in the video's frame) this scan finds reliably: narrower
        ones were not looked for, and a report must say so."""
        width, height = self.video.width, self.video.height
        return smallest_face_seen(width, height, self.options.detect_side or max(width, height))

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
            "smallest_face_px": self.smallest_face_px,
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


def check_scan_options(options: ScanOptions) -> None:
    """Refuse settings a scan cannot honour (ValueError, in words); a surface calls it before
    the slow work of opening and hashing the video."""
    if options.every_s <= 0:
        raise ValueError(
            f"the sampling interval must be a positive number of seconds, got {options.every_s}"
        )
    if options.min_face_px < SMALLEST_MIN_FACE_PX:
        raise ValueError(
            f"the smallest face to look for must be at least {SMALLEST_MIN_FACE_PX} px (the "
            f"detector's limit at full resolution), got {options.min_face_px}"
        )


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
    check_scan_options(options)
    cancel = cancel or CancelToken()
    started = time.perf_counter()
    if info is None:
        info = probe_video(path, compute_hash=False)
        yield Progress(0, info.frame_count, f"hashing {info.path.name}")
        info = VideoInfo(**{**info.__dict__, "sha256": sha256_file(info.path)})
    step = max(1, round(options.every_s * info.fps))
    total = info.frame_count
    linker = TrackLinker(engine, options.link)
    # Record the linking threshold actually used (it depends on the model when not given) and
    # the size of the copy the detector sees in this video.
    options = replace(
        options,
        link=replace(options.link, similarity_min=linker.similarity_min),
        # (a video that declares no frame size is sized from each frame instead: `_detect`)
        detect_side=(
            detection_side(info.width, info.height, options.min_face_px)
            if info.width and info.height
            else None
        ),
    )
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
    height, width = frame.shape[:2]
    side = options.detect_side or detection_side(width, height, options.min_face_px)
    enlarge = side > max(width, height)
    pending = []
    for det in engine.detect(frame, max_side=side, full_resolution=False, enlarge=enlarge):
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
