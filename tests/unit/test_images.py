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


@pytest.mark.parametrize("orientation", [1, 3, 6, 8, None])
@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_pixels_are_pillows_upright_rgb_in_bgr_order(
    tmp_path: Path, photo_paths: dict[str, Path], orientation: int | None, mode: str
) -> None:
    # The decoder skips Pillow's copies where it can (issue 10 part 5): the pixels must stay
    # exactly those of the plain recipe, EXIF orientation applied, for every orientation.
    from PIL import ImageOps

    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    Image.open(photo_paths["obama"]).convert(mode).save(path, exif=exif.tobytes(), quality=90)
    with Image.open(path) as plain:
        expected = np.asarray(ImageOps.exif_transpose(plain).convert("RGB"))[:, :, ::-1]
    image = load_image(path)
    assert image.exif_rotated == (orientation not in (None, 1))
    assert image.bgr.flags.c_contiguous
    assert np.array_equal(image.bgr, expected)


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


# ---------------------------------------------------------------------- formats from the content
EPS_TEXT = b"""%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 64 64
newpath 0 0 moveto 64 64 lineto stroke
showpage
%%EOF
"""
PDF_TEXT = b"""%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj
2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj
trailer << /Root 1 0 R >>
%%EOF
"""
SVG_TEXT = b"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">
  <rect width="64" height="64" fill="red"/>
</svg>
"""


@pytest.mark.parametrize(
    "name,content,found",
    [
        ("photo.jpg", EPS_TEXT, "PostScript/EPS"),
        ("scan.png", PDF_TEXT, "PDF"),
        ("face.jpg", SVG_TEXT, "SVG"),
    ],
)
def test_disguised_documents_are_refused_without_running_an_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, content: bytes, found: str
) -> None:
    import subprocess

    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"an image load started a program: {args!r}")

    # Pillow's EPS plugin runs Ghostscript through subprocess: make any such call fail the test.
    for attribute in ("Popen", "run", "call", "check_call", "check_output"):
        monkeypatch.setattr(subprocess, attribute, no_subprocess)
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageError) as raised:
        load_image(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    assert f"its content is {found}" in message
    assert "accepted formats are JPEG, PNG, BMP, TIFF, WebP, GIF" in message


def test_the_eps_test_file_is_one_pillow_would_otherwise_open() -> None:
    # Proves the test above is meaningful: unrestricted, Pillow takes this content as EPS (and
    # would hand it to Ghostscript to decode).
    import io

    with Image.open(io.BytesIO(EPS_TEXT)) as opened:
        assert opened.format == "EPS"


def test_a_format_pillow_knows_but_we_do_not_allow_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.jpg"
    Image.new("RGB", (16, 16), (10, 20, 30)).save(path, "PCX")
    with pytest.raises(ImageError, match=r"old\.jpg: not an image file .*accepted formats"):
        load_image(path)


def test_a_png_named_jpg_is_read_by_its_content(tmp_path: Path) -> None:
    path = tmp_path / "really_png.jpg"
    Image.new("RGB", (16, 16), (10, 20, 30)).save(path, "PNG")
    image = load_image(path)
    assert image.format == "PNG"
    assert image.frames == 1
    assert image.frame_note is None


# ---------------------------------------------------------------------- several frames
def _frames(count: int) -> list[Image.Image]:
    return [Image.new("RGB", (32, 24), (40 * i, 255 - 40 * i, 90)) for i in range(count)]


@pytest.mark.parametrize(
    "fmt,suffix", [("TIFF", ".tif"), ("GIF", ".gif"), ("WEBP", ".webp"), ("PNG", ".png")]
)
def test_multi_frame_files_say_that_only_the_first_frame_is_used(
    tmp_path: Path, fmt: str, suffix: str
) -> None:
    path = tmp_path / f"pages{suffix}"
    first, *rest = _frames(3)
    first.save(path, fmt, save_all=True, append_images=rest)
    image = load_image(path)
    assert image.frames == 3
    assert image.frame_note == f"{path}: the file holds 3 frames ({fmt}); only the first was used"
    # The first frame is what was decoded (WebP is lossy: a few levels of tolerance).
    assert np.abs(image.bgr[0, 0].astype(int) - (90, 255, 0)).max() <= 3


def test_a_phone_jpeg_with_companion_images_is_one_photo(tmp_path: Path) -> None:
    path = tmp_path / "phone.jpg"
    first, second = _frames(2)
    first.save(path, "MPO", save_all=True, append_images=[second])
    image = load_image(path)
    assert image.format == "MPO"
    assert image.frames == 1
    assert image.frame_note is None


def test_gif_is_an_image_suffix(tmp_path: Path) -> None:
    (tmp_path / "a.gif").write_bytes(b"x")
    (tmp_path / "b.eps").write_bytes(b"x")
    assert [p.name for p in iter_image_files([tmp_path])] == ["a.gif"]
