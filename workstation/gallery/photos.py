"""Stored photos are shown and exported only after checking they are the photos enrolled.

Each enrolled photo's SHA-256 is recorded with it. Before a stored copy is shown (thumbnails,
Compare, the gallery manager) or drawn into a report, its bytes are hashed again; a copy that
has been altered or replaced (or, with no copy, an original file that changed) is refused with
the reason in words, never shown silently as if it were the enrolled photo.

The check costs no extra read: `load_image` hashes the very bytes it decodes, so the verdict is
about the pixels shown (a file swapped between a separate check and the decoding could not slip
through), and no verdict cache is needed: `benchmarks/photo_check.py` measured SHA-256 at 0.1-4.6
ms for JPEGs of 0.14-2.3 MB against 23-450 ms to decode them (about 1% of a load, 2 shared
cores).
"""

from __future__ import annotations

from pathlib import Path

from workstation.errors import ImageError
from workstation.vision.images import LoadedImage, load_image

ALTERED = "does not match its recorded SHA-256: altered or replaced"


class StoredPhotoError(ImageError):
    """A stored photo cannot be used: missing, unreadable, or not the photo enrolled."""

    def __init__(self, message: str, altered: bool = False) -> None:
        super().__init__(message)
        self.altered = altered


def load_verified_photo(path: Path, expected_sha256: str, face_id: int) -> LoadedImage:
    """Decode a face's stored photo after checking its bytes against the recorded SHA-256.

    Raises:
        StoredPhotoError: naming the face: the photo is missing or unreadable, or its content
            is not the enrolled photo ("... does not match its recorded SHA-256: altered or
            replaced"; `altered` is True).
    """
    try:
        image = load_image(path)
    except ImageError as exc:
        raise StoredPhotoError(f"stored photo of face {face_id} cannot be read: {exc}") from exc
    if image.sha256 != expected_sha256:
        raise StoredPhotoError(
            f"stored photo of face {face_id} {ALTERED} ({path}: SHA-256 {image.sha256[:16]}…, "
            f"enrolled {expected_sha256[:16]}…)",
            altered=True,
        )
    return image
