"""Image loading: formats, EXIF orientation, damaged and hostile files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workstation.errors import ImageError
from workstation.vision.images import iter_image_files, load_image


@pytest.mark.parametrize(
    "fmt,suffix",
    [("PNG", ".png"), ("BMP", ".bmp"), ("TIFF", ".tif"), ("WEBP", ".webp"), ("JPEG", ".jpg")],
)
def test_formats_decode_to_bgr(
    tmp_path: Path, photo_paths: dict[str, Path], fmt: str, suffix: str
) -> None:
    target = tmp_path / f"copy{suffix}"
    Image.open(photo_paths["obama"]).save(target, fmt)
    image = load_image(target)
    assert image.bgr.shape == (image.height, image.width, 3)
    assert image.bgr.dtype == np.uint8
    assert image.sha256 == hashlib.sha256(target.read_bytes()).hexdigest()


def test_exif_orientation_is_honoured(tmp_path: Path) -> None:
    # A 40x20 image whose EXIF says "rotate 90 degrees": upright it is 20 wide, 40 high.
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0)  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(pixels).save(path, exif=exif.tobytes(), quality=95)
    image = load_image(path)
    assert (image.width, image.height) == (20, 40)
    assert image.exif_rotated


def test_png_with_transparency_becomes_white(tmp_path: Path) -> None:
    path = tmp_path / "alpha.png"
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(path)
    assert load_image(path).bgr.min() == 255


def test_sixteen_bit_png_keeps_its_brightness(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)).save(path)
    assert load_image(path).bgr.max() == round(40000 / 257)


def test_truncated_jpeg_is_reported(tmp_path: Path, photo_paths: dict[str, Path]) -> None:
    data = photo_paths["obama"].read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageError, match=r"cut\.jpg: .*truncated"):
        load_image(path)


def test_non_image_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("not a picture")
    with pytest.raises(ImageError, match=r"notes\.jpg: not an image"):
        load_image(path)


def test_empty_missing_and_folder(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(tmp_path / "empty.png")
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    Image.new("1", (12_000, 10_000)).save(path)  # 120 MP of zeros: a few KB on disk
    assert path.stat().st_size < 200_000
    with pytest.raises(ImageError, match="megapixel safety limit"):
        load_image(path)


def test_folders_are_expanded_recursively_in_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    for name in ("b/2.jpg", "1.png", "b/readme.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in iter_image_files([tmp_path])] == ["1.png", "2.jpg"]
