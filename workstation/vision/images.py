"""Load images safely: hash every byte read, honour EXIF orientation, refuse decompression bombs.

Pillow decodes because it reads EXIF orientation and lets us check the declared pixel count
before decoding; the pixels are then handed to OpenCV as BGR.

Only a fixed list of formats is decoded (ALLOWED_FORMATS), recognised from the file's content and
never from its name: Pillow knows some 40 formats, several with decoders that are rarely
exercised, and one (EPS/PostScript) that runs Ghostscript, an interpreter, on the file. A photo
that is really PostScript, PDF, SVG or anything else is refused with the format its content
shows. A file holding several frames (TIFF pages, animated GIF, WebP or PNG) is decoded from its
first frame, and LoadedImage.frame_note says so in words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

import hashlib
import io
import math
import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workstation.errors import ImageError
from workstation.vision.cvcompat import cv2_module

# The formats an examiner meets in mugshot exports, camera files and CCTV stills. GIF stays for
# old booking-system exports (first frame only). JPEG includes phone pictures Pillow reads as MPO
# (a JPEG plus the camera's companion images: depth map, preview), whose first image is the photo.
# Left out on purpose: EPS/PS/PDF (interpreted, not decoded), JPEG 2000 and AVIF (large codec
# libraries for formats no source here produces), and Pillow's legacy formats (PCX, TGA, ICO, PSD,
# FITS, ...).
ALLOWED_FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP", "GIF")
IMAGE_FORMATS_TEXT = "JPEG, PNG, BMP, TIFF, WebP, GIF"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"})
# Companion images of a JPEG (MPO) are not frames of the photo: no note for them.
_SINGLE_PICTURE_FORMATS = frozenset({"JPEG", "MPO"})
# 100 megapixels: larger than any camera or CCTV frame an examiner meets, small enough that a
# crafted file cannot exhaust memory (a 100 MP RGB image is 300 MB decoded).
MAX_PIXELS = 100_000_000
MAX_FILE_BYTES = 512 * 1024 * 1024
# EXIF orientations that turn or mirror the stored pixels (1 is upright); of them, those that
# turn the photo a quarter (its width becomes its height).
_TURNED = frozenset(range(2, 9))
_SWAPS_SIDES = frozenset(range(5, 9))


@dataclass(frozen=True)
class LoadedImage:
    """Decoded pixels plus the facts an examiner needs to trace them back to the file."""

    path: Path
    sha256: str
    bgr: np.ndarray = field(repr=False, compare=False)
    format: str
    exif_rotated: bool
    file_bytes: int
    # Frames (pages) in the file; only the first is decoded.
    frames: int = 1
    # The photo's own (upright) size when a large JPEG was decoded at a reduced size
    # (decode_image's `at_least`); None when `bgr` is the photo at its own size.
    own_size: tuple[int, int] | None = None

    @property
    def frame_note(self) -> str | None:
        """A warning naming the file when only the first of several frames was used."""
        if self.frames <= 1:
            return None
        return (
            f"{self.path}: the file holds {self.frames} frames ({self.format}); only the first "
            "was used"
        )

    @property
    def width(self) -> int:
        return int(self.bgr.shape[1])

    @property
    def height(self) -> int:
        return int(self.bgr.shape[0])

    @property
    def photo_size(self) -> tuple[int, int]:
        """(width, height) of the photo itself, whatever size it was decoded at."""
        return self.own_size or (self.width, self.height)

    @property
    def scale(self) -> float:
        """Decoded pixels per pixel of the photo (below 1 for a reduced decode)."""
        return self.width / self.photo_size[0]


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def load_image(path: Path | str, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Read, hash and decode one image file.

    Raises:
        ImageError: naming the file and the reason (missing, not a regular file, not an image,
            truncated, too large).
    """
    path = Path(path)
    return decode_image(read_input_file(path), path, max_pixels=max_pixels)


def read_input_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of an outside file, refusing anything that is not a regular file.

    A named pipe (FIFO) would block the reader until some other program writes into it, and a
    device file (/dev/zero, a tape, a terminal) never ends or acts on being opened: both are
    refused by name before they are opened (stat), and again after opening without blocking
    (fstat), so a file swapped for a pipe in between is refused too.

    Raises:
        ImageError: naming the file and the reason.
    """
    try:
        _require_regular(path, os.stat(path).st_mode)
        descriptor = os.open(path, os.O_RDONLY | _NONBLOCK | _NOCTTY | _BINARY)
    except FileNotFoundError as exc:
        raise ImageError(f"{path}: file not found") from exc
    except PermissionError as exc:
        raise ImageError(f"{path}: permission denied") from exc
    except OSError as exc:
        raise ImageError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    try:
        status = os.fstat(descriptor)
        _require_regular(path, status.st_mode)
        if status.st_size > max_bytes:
            raise ImageError(
                f"{path}: file is {status.st_size / 2**20:.0f} MB, over the "
                f"{max_bytes // 2**20} MB limit"
            )
        if _NONBLOCK:
            os.set_blocking(descriptor, True)  # a regular file: reads never wait on a writer
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:  # grew while being read
            raise ImageError(f"{path}: file is over the {max_bytes // 2**20} MB limit")
        return data
    except OSError as exc:
        raise ImageError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    finally:
        os.close(descriptor)


# Opening without blocking matters for FIFOs only (POSIX); Windows has neither flag.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_NOCTTY = getattr(os, "O_NOCTTY", 0)
_BINARY = getattr(os, "O_BINARY", 0)


def _require_regular(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        kind = "is a folder"
    elif stat.S_ISFIFO(mode):
        kind = "is a named pipe (FIFO)"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "is a device file"
    elif stat.S_ISSOCK(mode):
        kind = "is a socket"
    else:
        kind = "is a special file"
    raise ImageError(f"{path}: {kind}, not an image file; only regular files are read")


def decode_image(
    data: bytes,
    path: Path,
    max_pixels: int = MAX_PIXELS,
    at_least: int | None = None,
    sha256: str | None = None,
) -> LoadedImage:
    """Decode bytes already read from `path` (the path is used for messages and lineage).

    With `at_least`, a JPEG at least twice that size on its longer side is decoded at 1/2, 1/4
    or 1/8 of its size (JPEG's own DCT scaling, several times cheaper than decoding in full and
    shrinking), its longer side still at least `at_least`; `scale` and `photo_size` say so.
    Enrolment uses it: it detects on a copy of that size anyway (see
    FaceEngine.analyze_main_face for when it still needs the full pixels). `sha256`: the
    bytes' digest when the caller has it already (a large photo is not hashed twice).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    digest = sha256 or hashlib.sha256(data).hexdigest()
    if not data:
        raise ImageError(f"{path}: file is empty")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; we enforce our own limit below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageError(
                        f"{path}: image declares {width}x{height} pixels, over the "
                        f"{max_pixels // 1_000_000} megapixel safety limit (a possible "
                        f"decompression bomb); refusing to decode it"
                    )
                image_format = image.format or "unknown"
                frames = _frame_count(image)
                orientation = image.getexif().get(0x0112, 1)
                if at_least is not None and image_format == "JPEG":
                    _reduce_while_decoding(image, at_least)
                image.load()
                # exif_transpose copies the whole photo even when there is nothing to turn
                # (orientation 1 or none): asked only when the tag says to turn or flip.
                upright = (
                    ImageOps.exif_transpose(image) or image if orientation in _TURNED else image
                )
                rgb = _to_rgb(upright)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(_refusal(path, data)) from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: image is too large to decode safely ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason.lower():
            reason = "the file is truncated (cut off before the end of the image data)"
        raise ImageError(f"{path}: image is damaged: {reason}") from exc
    # One copy out of Pillow, one swap of the channels by OpenCV: numpy's reversed-stride copy
    # (array[:, :, ::-1]) took several times longer on large photos (issue 10 part 5).
    bgr = cv2_module().cvtColor(np.asarray(rgb, dtype=np.uint8), cv2_module().COLOR_RGB2BGR)
    own_size = (height, width) if orientation in _SWAPS_SIDES else (width, height)
    return LoadedImage(
        path=path,
        sha256=digest,
        bgr=bgr,
        format=image_format,
        exif_rotated=orientation not in (None, 1),
        file_bytes=len(data),
        frames=frames,
        own_size=own_size if own_size != (bgr.shape[1], bgr.shape[0]) else None,
    )


def _reduce_while_decoding(image: PILImage, at_least: int) -> None:
    """Ask Pillow's JPEG decoder for the smallest DCT scale (1/2, 1/4, 1/8) that keeps the
    longer side at least `at_least` (nothing when the photo is under twice that)."""
    width, height = image.size
    longer = max(width, height)
    if longer < 2 * at_least:
        return
    factor = at_least / longer
    image.draft(None, (math.ceil(width * factor), math.ceil(height * factor)))


def _frame_count(image: PILImage) -> int:
    if image.format in _SINGLE_PICTURE_FORMATS:
        return 1
    try:
        return max(1, int(getattr(image, "n_frames", 1)))
    except (OSError, ValueError, EOFError):
        # A damaged later frame: the first one still decodes (or fails with its own message).
        return 1


# What a refused file's content looks like, for the message: (magic bytes at offset 0, name).
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%!PS", "PostScript/EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS (DOS binary)"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"8BPS", "Photoshop (PSD)"),
    (b"\x00\x00\x01\x00", "Windows icon (ICO)"),
    (b"qoif", "QOI"),
    (b"DDS ", "DirectDraw surface (DDS)"),
    (b"SIMPLE  =", "FITS"),
    (b"PK\x03\x04", "ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "gzip archive"),
    (b"Rar!", "RAR archive"),
    (b"7z\xbc\xaf", "7-Zip archive"),
    (b"MZ", "Windows program (EXE/DLL)"),
    (b"\x7fELF", "Linux program (ELF)"),
    (b"RIFF", "RIFF media (not WebP)"),
)


def sniff_format(data: bytes) -> str:
    """Name the format a file's first bytes show, for the message about a refused file."""
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    text = data[:4096].removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if text.startswith((b"<?xml", b"<svg", b"<!doctype svg")) and b"<svg" in text:
        return "SVG"
    if text.startswith((b"<!doctype html", b"<html")):
        return "HTML"
    if text.startswith(b"<?xml"):
        return "XML"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypmsf1"):
        return "HEIC/HEIF"
    if data[4:12] in (b"ftypavif", b"ftypavis"):
        return "AVIF"
    if data[4:8] == b"ftyp":
        return "MP4/QuickTime video"
    sample = data[:512]
    if all(32 <= byte < 127 or byte in (9, 10, 13) for byte in sample):
        return "plain text"
    return "an unrecognised format"


def _refusal(path: Path, data: bytes) -> str:
    return (
        f"{path}: not an image file this program can read: its content is "
        f"{sniff_format(data)}; accepted formats are {IMAGE_FORMATS_TEXT}"
    )


def _to_rgb(image: PILImage) -> PILImage:
    """Convert any Pillow mode to 8-bit RGB; transparent areas become white, not black."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grey: map the full 16-bit range onto 8 bits (fixed scale, so brightness is kept).
        array = np.asarray(image, dtype=np.float64).clip(0, 65535)
        image = Image.fromarray(np.rint(array / 257.0).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode == "RGB":
        return image  # convert() would copy it
    return image.convert("RGB")


def iter_image_files(paths: list[Path]) -> list[Path]:
    """Expand files and folders (recursively) into image files, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            # Everything with an image suffix that is not a folder: pipes and devices among
            # them are then refused by name (read_input_file) instead of silently left out.
            found.extend(sorted(p for p in path.rglob("*") if is_image_path(p) and not p.is_dir()))
        else:
            found.append(path)
    return found
