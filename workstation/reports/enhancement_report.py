"""The enhancement lineage of a search in the report: the original, the working copy, both
SHA-256s and the steps in order, with one sentence saying how to redo them.

The working copy is never stored: it is made again here from the original (checked against its
recorded SHA-256) and the recorded steps, and shown only when its SHA-256 is the recorded one, so
the report's working copy is provably the one that was searched. An enhanced search's face box is
in the working copy's pixels: its face crop is cut from the working copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from workstation.errors import WorkstationError
from workstation.gallery.records import SearchRecord
from workstation.vision.enhancement import working_copy_of

NO_ENHANCEMENT = "no enhancement (the probe was searched as it was)"
# The longest side of the original and the working copy drawn side by side in the report.
REPORT_PREVIEW_SIDE = 320


def searched_pixels(record: SearchRecord, original: np.ndarray) -> tuple[np.ndarray | None, str]:
    """The pixels the face was searched on: the original itself, or the working copy made again
    from it and checked. Returns (pixels or None, problem in words or "")."""
    lineage = record.probe.enhancement
    if lineage is None:
        return original, ""
    try:
        return working_copy_of(original, lineage), ""
    except WorkstationError as exc:
        return None, str(exc)


def enhancement_rows(record: SearchRecord) -> list[tuple[str, str, bool]]:
    """(label, value, monospaced) rows for the search's table in the report."""
    lineage = record.probe.enhancement
    if lineage is None:
        return [("Probe enhancement", NO_ENHANCEMENT, False)]
    original = (
        "the video frame's pixels (SHA-256 of its raw BGR bytes)"
        if lineage.original_kind == "video frame"
        else "the probe file"
    )
    return [
        (
            "Probe enhancement",
            f"searched an enhanced working copy, never the original: {len(lineage.steps)} "
            f"step(s) with OpenCV {lineage.opencv}; the face box is in the working copy's "
            f"pixels ({lineage.working_width} × {lineage.working_height})",
            False,
        ),
        (f"Original SHA-256 ({original})", lineage.original_sha256, True),
        ("Enhancement steps, in order", "; ".join(lineage.step_lines), False),
        ("Working copy SHA-256", lineage.working_sha256, True),
        ("How to redo them", lineage.redo_sentence, False),
    ]


def enhancement_images(
    record: SearchRecord,
    original: np.ndarray,
    working: np.ndarray,
    encode: Callable[[np.ndarray], bytes],
) -> dict[str, bytes]:
    """The original and the working copy, each at most REPORT_PREVIEW_SIDE long, by name."""
    if record.probe.enhancement is None:
        return {}
    return {
        original_key(record): encode(_preview(original)),
        working_key(record): encode(_preview(working)),
    }


def original_key(record: SearchRecord) -> str:
    return f"enh-original-{record.search_id}"


def working_key(record: SearchRecord) -> str:
    return f"enh-working-{record.search_id}"


def preview_size(bgr_shape: tuple[int, ...]) -> tuple[int, int]:
    """(width, height) of an image drawn at most REPORT_PREVIEW_SIDE long."""
    height, width = bgr_shape[:2]
    scale = min(1.0, REPORT_PREVIEW_SIDE / max(height, width))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _preview(bgr: np.ndarray) -> np.ndarray:
    from workstation.vision.cvcompat import cv2_module

    cv2 = cv2_module()
    size = preview_size(bgr.shape)
    if size == (bgr.shape[1], bgr.shape[0]):
        return bgr
    return cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)


def enhancement_view(record: SearchRecord, images: dict[str, bytes] | Any) -> dict[str, Any]:
    """What the template draws: the two images (when made) with their sizes, or nothing."""
    lineage = record.probe.enhancement
    if lineage is None or original_key(record) not in images:
        return {"shown": False}
    return {
        "shown": True,
        "original": original_key(record),
        "working": working_key(record),
        "original_size": _png_size(images[original_key(record)]),
        "working_size": _png_size(images[working_key(record)]),
    }


def _png_size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
