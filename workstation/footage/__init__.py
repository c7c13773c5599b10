"""Footage: open videos, scan them for faces, follow faces as tracks, search and find people.

Qt-free, like the rest of the core; the GUI's footage panel and the `footage` CLI command are
built on it.
"""

from workstation.footage.scan import (
    DEFAULT_MIN_FACE_PX,
    SMALLEST_MIN_FACE_PX,
    ScanOptions,
    ScanResult,
    check_scan_options,
    scan_video,
)
from workstation.footage.search import (
    Appearance,
    find_person,
    find_subject,
    find_threshold,
    record_scan,
    search_frame,
    search_track,
)
from workstation.footage.tracks import Track
from workstation.vision.video import FrameReader, VideoError, VideoInfo, probe_video, timecode

__all__ = [
    "DEFAULT_MIN_FACE_PX",
    "SMALLEST_MIN_FACE_PX",
    "Appearance",
    "FrameReader",
    "ScanOptions",
    "ScanResult",
    "Track",
    "VideoError",
    "VideoInfo",
    "check_scan_options",
    "find_person",
    "find_subject",
    "find_threshold",
    "probe_video",
    "record_scan",
    "scan_video",
    "search_frame",
    "search_track",
    "timecode",
]
