"""Open video files: facts for the record (duration, frame rate, size, SHA-256) and frame access.

OpenCV's FFmpeg backend decodes (mp4, avi, mov, mkv and whatever else FFmpeg reads). Frames are
numbered from 0 in decoding order; a frame's time is `index / fps`. For variable-frame-rate phone
video that time is nominal (the container's own timestamps can differ slightly); the frame index
is the exact reference and is what lineage records first.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workstation.errors import WorkstationError
from workstation.hashing import sha256_file
from workstation.vision.cvcompat import cv2_module
from workstation.vision.images import LoadedImage, is_image_path

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg"})

# FFmpeg's own log lines ("moov atom not found") would reach the terminal beside our one-line
# messages; quiet them unless the user asked for a level.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


class VideoError(WorkstationError):
    """A video file cannot be opened or decoded (the message names the file and the reason)."""


@dataclass(frozen=True)
class VideoInfo:
    """What an examiner needs to know about a video, and to trace a frame back to it."""

    path: Path
    sha256: str
    fps: float
    frame_count: int  # as declared by the container; 0 when unknown
    width: int
    height: int
    codec: str
    file_bytes: int

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0

    def time_of(self, frame_index: int) -> float:
        """Seconds from the start of the video to this frame (nominal, index / fps)."""
        return frame_index / self.fps

    def frame_at(self, seconds: float) -> int:
        """The frame shown at this time."""
        frame = math.floor(seconds * self.fps + 1e-6)
        if self.frame_count:
            frame = min(frame, self.frame_count - 1)
        return max(0, frame)

    def lineage(self, frame_index: int) -> dict[str, Any]:
        """The frame's lineage as written to the audit log and reports."""
        seconds = self.time_of(frame_index)
        return {
            "video_path": str(self.path),
            "video_sha256": self.sha256,
            "frame_index": int(frame_index),
            "time_s": round(seconds, 3),
            "timecode": timecode(seconds),
            "fps": round(self.fps, 3),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "fps": round(self.fps, 3),
            "frame_count": self.frame_count,
            "duration_s": round(self.duration_s, 3),
            "width": self.width,
            "height": self.height,
            "codec": self.codec,
            "file_bytes": self.file_bytes,
        }


def timecode(seconds: float) -> str:
    """HH:MM:SS.mmm (what examiners read off a player)."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def is_video_path(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _check_file(path: Path) -> int:
    try:
        if path.is_dir():
            raise VideoError(f"{path}: is a folder, not a video file")
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise VideoError(f"{path}: file not found") from exc
    except PermissionError as exc:
        raise VideoError(f"{path}: permission denied") from exc
    except OSError as exc:
        raise VideoError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if size == 0:
        raise VideoError(f"{path}: file is empty (zero length)")
    if is_image_path(path):
        # FFmpeg would open a photo as a one-frame "video"; say what it is instead.
        raise VideoError(f"{path}: is a photo, not a video; search it as a photo")
    return size


def open_capture(path: Path) -> Any:
    """An opened cv2.VideoCapture, or VideoError naming the file and the reason."""
    cv2 = cv2_module()
    # OpenCV logs its own warning for files FFmpeg rejects; the VideoError below says it better.
    previous = cv2.setLogLevel(2)  # errors only
    try:
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    finally:
        cv2.setLogLevel(previous)
    if not capture.isOpened():
        capture.release()
        raise VideoError(
            f"{path}: not a video this program can read (not a video file, an unknown format, "
            "or the file is damaged, e.g. cut off before its index)"
        )
    return capture


def probe_video(path: Path | str, compute_hash: bool = True) -> VideoInfo:
    """Open a video, read its facts and decode its first frame (to prove it decodes).

    Args:
        path: the video file.
        compute_hash: hash the whole file (streamed); False leaves sha256 empty, for callers
            that hash separately with progress.

    Raises:
        VideoError: naming the file and the reason (missing, empty, not a video, unknown codec).
    """
    path = Path(path)
    size = _check_file(path)
    cv2 = cv2_module()
    capture = open_capture(path)
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        fourcc = int(capture.get(cv2.CAP_PROP_FOURCC) or 0)
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok or frame is None:
        raise VideoError(
            f"{path}: no frame could be decoded (zero-length video, a codec this program cannot "
            "decode, or a damaged file)"
        )
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        raise VideoError(f"{path}: the video does not declare a usable frame rate ({fps})")
    height, width = frame.shape[:2] if not (width and height) else (height, width)
    return VideoInfo(
        path=path,
        sha256=sha256_file(path) if compute_hash else "",
        fps=fps,
        frame_count=max(0, count),
        width=width,
        height=height,
        codec=_fourcc_text(fourcc),
        file_bytes=size,
    )


def _fourcc_text(fourcc: int) -> str:
    text = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4))
    return text if text.isprintable() and text.strip() else "unknown"


class FrameReader:
    """Frame-accurate access for a player: read the next frame, or seek to any frame.

    Reading forward decodes one frame; seeking asks FFmpeg for the frame (it decodes from the
    previous key frame), then checks the position it landed on and steps forward if needed.
    Not thread-safe: one reader per thread.
    """

    def __init__(self, info: VideoInfo) -> None:
        self.info = info
        self._capture = open_capture(info.path)
        self._next = 0  # index of the frame the next read() returns

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def read(self, index: int) -> np.ndarray:
        """The BGR pixels of frame `index`.

        Raises:
            VideoError: when the frame lies beyond the end or cannot be decoded.
        """
        cv2 = cv2_module()
        if index < 0 or (self.info.frame_count and index >= self.info.frame_count):
            raise VideoError(
                f"{self.info.path}: frame {index} asked for, but the video has frames 0 to "
                f"{self.info.frame_count - 1}"
            )
        if index != self._next:
            if self._next < index <= self._next + 50:
                while self._next < index:  # short skip forward: cheaper than a seek
                    if not self._capture.grab():
                        break
                    self._next += 1
            else:
                self._capture.set(cv2.CAP_PROP_POS_FRAMES, index)
                self._next = int(self._capture.get(cv2.CAP_PROP_POS_FRAMES))
                if self._next > index:  # landed past it: restart from the beginning
                    self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    self._next = 0
                while self._next < index:
                    if not self._capture.grab():
                        break
                    self._next += 1
        ok, frame = self._capture.read() if self._next == index else (False, None)
        if not ok or frame is None:
            self._next = -1  # position unknown: seek next time
            raise VideoError(
                f"{self.info.path}: frame {index} cannot be decoded (the file may be damaged "
                "or cut off there)"
            )
        self._next = index + 1
        return frame


# What a frame's lineage holds (`VideoInfo.lineage`): the video, the frame, its time.
FRAME_LINEAGE_KEYS = ("video_path", "video_sha256", "frame_index", "time_s", "timecode", "fps")
# The `format` of a video frame taken as a probe image (it has no file of its own).
FRAME_FORMAT = "video frame"


def frame_image(info: VideoInfo, frame_index: int, bgr: np.ndarray) -> LoadedImage:
    """A frame as a probe image: path "<video>#frame=N", sha256 = the video file's SHA-256 (the
    video is the evidence; the frame index locates the pixels in it), format FRAME_FORMAT."""
    return LoadedImage(
        path=Path(f"{info.path}#frame={frame_index}"),
        sha256=info.sha256,
        bgr=np.ascontiguousarray(bgr),
        format=FRAME_FORMAT,
        exif_rotated=False,
        file_bytes=info.file_bytes,
    )


def read_frame(info: VideoInfo, index: int) -> np.ndarray:
    """One frame's pixels (opens and closes the file; use FrameReader for many)."""
    with FrameReader(info) as reader:
        return reader.read(index)
