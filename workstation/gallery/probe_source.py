"""The probe of a recorded search, read again from the very file it searched.

A search records its probe by the file's SHA-256 (and, for a face chosen in footage, the video's
SHA-256 and the frame's index: a frame has no file of its own). Whatever shows or reuses that
probe later (Compare and the Search tab, a cold-case watch, redaction on export) reads it here,
so each holds the file to the same hash and reads a frame the same way: a changed or missing
file is said in words, never shown or searched in its place.
"""

from __future__ import annotations

from pathlib import Path

from workstation.errors import WorkstationError
from workstation.gallery.records import SearchRecord
from workstation.vision.images import LoadedImage, load_image
from workstation.vision.video import frame_image, probe_video, read_frame


def is_recorded_probe(record: SearchRecord, image: LoadedImage) -> bool:
    """Whether `image` (a photo or frame already open) is the probe `record` searched: the same
    file by SHA-256 and, for a video, the same frame (another frame of the same video shares
    the video's hash)."""
    if image.sha256 != record.probe.sha256:
        return False
    return not record.probe.frame or str(image.path) == record.probe.path


def recorded_probe_image(record: SearchRecord) -> LoadedImage:
    """The original pixels the search's face was found in: the photo, or the recorded frame of
    the video (read again at its index), each file checked against its recorded SHA-256.

    An enhanced search's face is in a working copy made from these pixels
    (`vision.enhancement.working_copy_of`).

    Raises:
        WorkstationError: in words, naming the file, when it is gone, unreadable or changed.
    """
    probe = record.probe
    frame = probe.frame
    if frame:
        video = probe_video(Path(str(frame["video_path"])))
        if video.sha256 != probe.sha256:
            raise WorkstationError(
                f"{video.path}: this is not the video search {record.search_id} searched (its "
                "SHA-256 differs); the recorded probe cannot be used"
            )
        index = int(frame["frame_index"])
        return frame_image(video, index, read_frame(video, index))
    image = load_image(Path(probe.path))
    if image.sha256 != probe.sha256:
        raise WorkstationError(
            f"{probe.path}: this is not the photo search {record.search_id} searched (its "
            "SHA-256 differs); the recorded probe cannot be used"
        )
    return image
