"""The gallery many core tests start from: Obama and Biden enrolled, another photo of Obama
searched in a case (the fixtures' three public-domain photos)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.records import SearchRecord
from workstation.gallery.search import search_image
from workstation.gallery.store import Gallery
from workstation.progress import drain
from workstation.vision.engine import FaceEngine
from workstation.vision.images import load_image


def enrol_and_search(
    gallery: Gallery,
    engine: FaceEngine,
    photo_paths: dict[str, Path],
    case: str,
    purpose: str,
    others: Iterable[Path] = (),
) -> SearchRecord:
    """Enrol obama and biden (and each of `others` as a subject named after its file), then
    search obama2 in `case` for `purpose`."""
    items = items_for_subject("obama", [photo_paths["obama"]], "Barack Obama")
    items += items_for_subject("biden", [photo_paths["biden"]], "Joe Biden")
    for path in others:
        items += items_for_subject(path.stem, [path], None)
    drain(enroll(gallery, engine, items))
    return search_image(gallery, engine, load_image(photo_paths["obama2"]), case, purpose)
