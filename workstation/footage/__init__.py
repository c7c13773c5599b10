"""Footage: open videos, scan them for faces, follow faces as tracks, search and find people.

Qt-free, like the rest of the core; the GUI's footage panel and the `footage` CLI command are
built on it.
"""

from workstation.footage.scan import ScanOptions, ScanResult, scan_video
from workstation.footage.search import (
    FIND_THRESHOLD,
    Appearance,
    find_person,
    find_subject,
    record_scan,
    search_frame,
    search_track,
)
from workstation.footage.tracks import Track
from workstation.footage.video import FrameReader, VideoError, VideoInfo, probe_video, timecode

__all__ = [
    "FIND_THRESHOLD",
    "Appearance",
    "FrameReader",
    "ScanOptions",
    "ScanResult",
    "Track",
    "VideoError",
    "VideoInfo",
    "find_person",
    "find_subject",
    "probe_video",
    "record_scan",
    "scan_video",
    "search_frame",
    "search_track",
    "timecode",
]
