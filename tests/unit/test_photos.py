"""A stored photo is checked against its recorded SHA-256 before it is used."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from workstation.errors import GalleryError
from workstation.gallery.admin import reembed
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.photos import StoredPhotoError
from workstation.gallery.store import Gallery
from workstation.progress import drain

ALTERED = "stored photo of face 1 does not match its recorded SHA-256: altered or replaced"


@pytest.fixture
def enrolled(gallery: Gallery, engine, photo_paths: dict[str, Path], tmp_path: Path):
    original = tmp_path / "originals" / "obama.jpg"
    original.parent.mkdir()
    original.write_bytes(photo_paths["obama"].read_bytes())
    assert drain(enroll(gallery, engine, items_for_subject("P-1", [original]))).enrolled == 1
    record = gallery.face(1)
    assert record is not None and record.stored_path
    return gallery, record, gallery.folder / record.stored_path, original


def test_the_enrolled_photo_loads(enrolled) -> None:
    gallery, record, _stored, _original = enrolled
    image = gallery.load_photo(record)
    assert image.sha256 == record.image_sha256


@pytest.mark.parametrize("how", ["replaced", "one byte added", "re-encoded"])
def test_an_altered_copy_is_refused_in_words(enrolled, photo_paths, how: str) -> None:
    gallery, record, stored, _original = enrolled
    if how == "replaced":
        stored.write_bytes(photo_paths["biden"].read_bytes())
    elif how == "one byte added":
        stored.write_bytes(stored.read_bytes() + b"\0")
    else:
        Image.open(photo_paths["obama"]).save(stored, "JPEG", quality=90)
    with pytest.raises(StoredPhotoError) as raised:
        gallery.load_photo(record)
    assert str(raised.value).startswith(ALTERED)
    assert raised.value.altered


def test_a_missing_copy_falls_back_to_the_unchanged_original_only(enrolled, photo_paths) -> None:
    gallery, record, stored, original = enrolled
    stored.unlink()
    assert gallery.load_photo(record).sha256 == record.image_sha256
    original.write_bytes(photo_paths["biden"].read_bytes())  # the original changed since
    with pytest.raises(StoredPhotoError, match=ALTERED):
        gallery.load_photo(record)
    original.unlink()
    with pytest.raises(
        StoredPhotoError, match=r"stored photo of face 1 cannot be read: .*not found"
    ):
        gallery.load_photo(record)


def test_reembedding_refuses_an_altered_photo(enrolled, engine, photo_paths) -> None:
    gallery, _record, stored, _original = enrolled
    stored.write_bytes(photo_paths["biden"].read_bytes())
    before = gallery.conn.execute("SELECT embedding FROM faces WHERE id = 1").fetchone()[0]
    with pytest.raises(GalleryError, match=f"cannot re-embed face 1 of subject P-1: {ALTERED}"):
        drain(reembed(gallery, engine))
    after = gallery.conn.execute("SELECT embedding FROM faces WHERE id = 1").fetchone()[0]
    assert after == before
