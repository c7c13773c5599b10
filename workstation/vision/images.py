"""Load images safely: hash every byte read, honour EXIF orientation, refuse decompression bombs.

Pillow decodes (JPEG, PNG, BMP, TIFF, WebP and more) because it reads EXIF orientation and lets us
check the declared pixel count before decoding; the pixels are then handed to OpenCV as BGR.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workstation.errors import ImageError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
# 100 megapixels: larger than any camera or CCTV frame an examiner meets, small enough that a
# crafted file cannot exhaust memory (a 100 MP RGB image is 300 MB decoded).
MAX_PIXELS = 100_000_000
MAX_FILE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class LoadedImage:
    """Decoded pixels plus the facts an examiner needs to trace them back to the file."""

    path: Path
    sha256: str
    bgr: np.ndarray = field(repr=False, compare=False)
    format: str
    exif_rotated: bool
    file_bytes: int

    @property
    def width(self) -> int:
        return int(self.bgr.shape[1])

    @property
    def height(self) -> int:
        return int(self.bgr.shape[0])


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def load_image(path: Path | str, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Read, hash and decode one image file.

    Raises:
        ImageError: naming the file and the reason (missing, not an image, truncated, too large).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise ImageError(f"{path}: is a folder, not an image file")
        if size > MAX_FILE_BYTES:
            raise ImageError(f"{path}: file is {size / 2**20:.0f} MB, over the 512 MB limit")
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ImageError(f"{path}: file not found") from exc
    except PermissionError as exc:
        raise ImageError(f"{path}: permission denied") from exc
    except IsADirectoryError as exc:
        raise ImageError(f"{path}: is a folder, not an image file") from exc
    except OSError as exc:
        raise ImageError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return decode_image(data, path, max_pixels=max_pixels)


def decode_image(data: bytes, path: Path, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Decode bytes already read from `path` (the path is used for messages and lineage)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    digest = hashlib.sha256(data).hexdigest()
    if not data:
        raise ImageError(f"{path}: file is empty")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; we enforce our own limit below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageError(
                        f"{path}: image declares {width}x{height} pixels, over the "
                        f"{max_pixels // 1_000_000} megapixel safety limit (a possible "
                        f"decompression bomb); refusing to decode it"
                    )
                image_format = image.format or "unknown"
                orientation = image.getexif().get(0x0112, 1)
                image.load()
                upright = ImageOps.exif_transpose(image) or image
                rgb = _to_rgb(upright)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(f"{path}: not an image file this program can read") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: image is too large to decode safely ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason.lower():
            reason = "the file is truncated (cut off before the end of the image data)"
        raise ImageError(f"{path}: image is damaged: {reason}") from exc
    array = np.asarray(rgb, dtype=np.uint8)
    bgr = np.ascontiguousarray(array[:, :, ::-1])
    return LoadedImage(
        path=path,
        sha256=digest,
        bgr=bgr,
        format=image_format,
        exif_rotated=orientation not in (None, 1),
        file_bytes=len(data),
    )


def _to_rgb(image):  # type: ignore[no-untyped-def]
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
    return image.convert("RGB")


def iter_image_files(paths: list[Path]) -> list[Path]:
    """Expand files and folders (recursively) into image files, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and is_image_path(p)))
        else:
            found.append(path)
    return found
