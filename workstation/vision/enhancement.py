"""Probe enhancement with lineage: a working copy of a probe, made by recorded steps
(the steps and their bounds: `vision/enhancement_steps.py`).

An examiner may improve a poor probe (a dark CCTV still, a tilted face, a small face) before it is
searched; a court then asks what was done to it. The original is never changed: the steps make a
*working copy*, and the search records the original's SHA-256, the ordered steps with their
parameters, the working copy's SHA-256 and the OpenCV version, so anyone holding the original can
redo the steps and check they get the same pixels (`workstation enhance replay`).

A step is a small typed value: its name and its parameters, every one checked against fixed
bounds in the core (`enhancement_steps.py`), whichever surface asks; a bad step is refused with
a message naming the step (its number and name) and the parameter. Only OpenCV's own functions
are used (no learned super-resolution: a network invents detail that was never in the photo,
and an examiner could not say which pixels came from where).

`apply(image, steps)` is pure and deterministic: the same original pixels and steps give the same
bytes. The working copy's SHA-256 is over a canonical encoding of its pixels, not over a file
(PNG and JPEG encoders differ between library versions): the ASCII header
``"BGR8 <height> <width> <channels>\\n"`` followed by the raw 8-bit BGR array in row-major
order (`pixels_sha256`). Interpolation, denoising and colour conversion may differ between OpenCV
versions, so the version that made the copy is recorded with the steps; a replay under another
version that does not match says so instead of calling the copy altered.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workstation.domain import BBox
from workstation.vision.enhancement_steps import EnhancementError, Step, parse_step, parse_steps

# A working copy may not grow beyond this (an 8x upscale of a 12 MP photo would be 770 MP): 50 MP
# is larger than any probe an examiner needs and 150 MB of pixels at most.
MAX_WORKING_PIXELS = 50_000_000
# How the box of an enhanced search is given: in the pixels of the working copy.
BOX_COORDINATES = "working copy"


# ---------------------------------------------------------------------- pixels
def pixels_sha256(bgr: np.ndarray) -> str:
    """SHA-256 of an 8-bit image's canonical encoding (see the module docstring)."""
    array = np.ascontiguousarray(bgr)
    if array.dtype != np.uint8:
        raise EnhancementError(f"an image to hash must be 8-bit (got {array.dtype})")
    channels = array.shape[2] if array.ndim == 3 else 1
    header = f"BGR8 {array.shape[0]} {array.shape[1]} {channels}\n".encode("ascii")
    return hashlib.sha256(header + array.tobytes()).hexdigest()


def opencv_version() -> str:
    from workstation.vision.cvcompat import cv2_module

    return str(cv2_module().__version__)


def apply(image: np.ndarray, steps: Sequence[Step]) -> np.ndarray:
    """The working copy: `steps` applied in order to an 8-bit BGR image (never changed).

    Pure and deterministic. Raises EnhancementError naming the step when a step cannot apply to
    this image (a crop beyond its edges, a result over MAX_WORKING_PIXELS).
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise EnhancementError("enhancement needs an 8-bit colour (BGR) image")
    current = np.ascontiguousarray(image)
    for number, step in enumerate(steps, start=1):
        step = parse_step(step.to_dict(), number)  # a stored step read back is checked again
        current = _apply_one(current, step, f"step {number} '{step.name}'")
        if current.shape[0] * current.shape[1] > MAX_WORKING_PIXELS:
            raise EnhancementError(
                f"step {number} '{step.name}': the working copy would be "
                f"{current.shape[1]}x{current.shape[0]} pixels, over the "
                f"{MAX_WORKING_PIXELS // 1_000_000} megapixel limit"
            )
    return current if current is not image else current.copy()


def _apply_one(bgr: np.ndarray, step: Step, where: str) -> np.ndarray:
    from workstation.vision.cvcompat import cv2_module

    cv2 = cv2_module()
    p = dict(step.params)
    height, width = bgr.shape[:2]
    if step.name == "crop":
        x, y, w, h = p["x"], p["y"], p["width"], p["height"]
        if x + w > width or y + h > height:
            raise EnhancementError(
                f"{where}: the rectangle [{x}, {y}, {w}, {h}] reaches beyond the image "
                f"({width}x{height} pixels at this step)"
            )
        return np.ascontiguousarray(bgr[y : y + h, x : x + w])
    if step.name == "rotate":
        return _rotate(bgr, float(p["angle"]), (width / 2.0, height / 2.0))
    if step.name == "straighten":
        eyes = sorted([(p["eye1_x"], p["eye1_y"]), (p["eye2_x"], p["eye2_y"])])
        (x1, y1), (x2, y2) = eyes
        if math.hypot(x2 - x1, y2 - y1) < 2.0:
            raise EnhancementError(f"{where}: the two eye points are less than 2 pixels apart")
        angle, centre = _straighten_rotation(step)
        return _rotate(bgr, angle, centre)
    if step.name == "brightness_contrast":
        return cv2.addWeighted(bgr, p["contrast"], bgr, 0.0, p["brightness"])
    if step.name == "gamma":
        levels = np.arange(256, dtype=np.float64) / 255.0
        table = np.clip(np.rint(255.0 * levels ** (1.0 / p["gamma"])), 0, 255).astype(np.uint8)
        return cv2.LUT(bgr, table)
    if step.name == "equalise":
        lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2LAB)
        lightness, a, b = cv2.split(lab)
        if p["method"] == "clahe":
            tiles = int(p["tiles"])
            clahe = cv2.createCLAHE(clipLimit=p["clip_limit"], tileGridSize=(tiles, tiles))
            lightness = clahe.apply(lightness)
        else:
            lightness = cv2.equalizeHist(lightness)
        return cv2.cvtColor(cv2.merge((lightness, a, b)), cv2.COLOR_LAB2BGR)
    if step.name == "denoise":
        return cv2.fastNlMeansDenoisingColored(
            bgr, None, p["h"], p["h_color"], p["template_window"], p["search_window"]
        )
    if step.name == "sharpen":
        blurred = cv2.GaussianBlur(bgr, (0, 0), p["sigma"])
        return cv2.addWeighted(bgr, 1.0 + p["amount"], blurred, -p["amount"], 0.0)
    if step.name == "upscale":
        size = (round(width * p["factor"]), round(height * p["factor"]))
        if size[0] * size[1] > MAX_WORKING_PIXELS:
            raise EnhancementError(
                f"{where}: parameter 'factor' {p['factor']:g} would make {size[0]}x{size[1]} "
                f"pixels, over the {MAX_WORKING_PIXELS // 1_000_000} megapixel limit"
            )
        interpolation = cv2.INTER_LANCZOS4 if p["interpolation"] == "lanczos4" else cv2.INTER_CUBIC
        return cv2.resize(bgr, size, interpolation=interpolation)
    raise EnhancementError(f"{where}: unknown step")  # parse_step never lets one through


def _quarter_turns(angle: float) -> int | None:
    """0-3 counter-clockwise quarter turns when `angle` is a multiple of 90 degrees, else None."""
    turns = angle / 90.0
    return int(turns) % 4 if turns == int(turns) else None


def _rotation(
    angle: float, centre: tuple[float, float], width: int, height: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """The 2x3 matrix cv2.warpAffine is given to rotate a `width` x `height` image by `angle`
    degrees about `centre` onto a canvas holding it all, and that canvas's (width, height)."""
    from workstation.vision.cvcompat import cv2_module

    matrix = cv2_module().getRotationMatrix2D(centre, angle, 1.0)
    corners = np.array([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]], float)
    moved = corners @ matrix.T
    left, top = np.floor(moved.min(axis=0))
    right, bottom = np.ceil(moved.max(axis=0))
    matrix[0, 2] -= left
    matrix[1, 2] -= top
    return matrix, (int(right - left), int(bottom - top))


def _rotate(bgr: np.ndarray, angle: float, centre: tuple[float, float]) -> np.ndarray:
    """Rotate counter-clockwise by `angle` degrees about `centre`, on a canvas holding it all."""
    from workstation.vision.cvcompat import cv2_module

    cv2 = cv2_module()
    quarter = _quarter_turns(angle)
    if quarter is not None:  # exact: no interpolation for quarter turns
        codes = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}
        return bgr.copy() if quarter == 0 else cv2.rotate(bgr, codes[quarter])
    height, width = bgr.shape[:2]
    matrix, size = _rotation(angle, centre, width, height)
    return cv2.warpAffine(
        bgr, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def _straighten_rotation(step: Step) -> tuple[float, tuple[float, float]]:
    """(angle, centre) of a straighten step: the eye line made level, about the eyes' midpoint."""
    p = dict(step.params)
    (x1, y1), (x2, y2) = sorted([(p["eye1_x"], p["eye1_y"]), (p["eye2_x"], p["eye2_y"])])
    return math.degrees(math.atan2(y2 - y1, x2 - x1)), ((x1 + x2) / 2.0, (y1 + y2) / 2.0)


# ---------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Geometry:
    """Where the steps move each point: a 3x3 affine matrix from the original's pixels to the
    working copy's, composed over the geometric steps (crop: a translation; rotate and
    straighten: the matrix cv2.warpAffine was given, canvas shift included, or the exact
    quarter turn; upscale: the scale cv2.resize applied, new size over old); the photometric
    steps move no pixel. Coordinates are continuous with pixel (i, j) covering [i, i + 1) x
    [j, j + 1), as boxes are; OpenCV's warpAffine works on pixel centres, converted here.

    Redaction marks live in the original's pixels (what the examiner sees); an enhanced
    search's face box is in the working copy's: `backward_box` and `forward_box` carry a box
    across (reports/redaction.py)."""

    matrix: np.ndarray = field(repr=False, compare=False)  # 3x3, original -> working copy
    original_size: tuple[int, int]  # (width, height)
    working_size: tuple[int, int]

    @property
    def inverse(self) -> np.ndarray:
        return np.linalg.inv(self.matrix)

    def forward_point(self, x: float, y: float) -> tuple[float, float]:
        """An original pixel position in the working copy."""
        u, v, _ = self.matrix @ np.array([x, y, 1.0])
        return float(u), float(v)

    def backward_point(self, x: float, y: float) -> tuple[float, float]:
        """A working-copy pixel position in the original."""
        u, v, _ = self.inverse @ np.array([x, y, 1.0])
        return float(u), float(v)

    def forward_box(self, box: BBox) -> BBox:
        """An original box in the working copy: the bounding box of its four mapped corners."""
        return _bounding_box(self.matrix, box)

    def backward_box(self, box: BBox) -> BBox:
        """A working-copy box in the original: the bounding box of its four mapped corners."""
        return _bounding_box(self.inverse, box)


def _bounding_box(matrix: np.ndarray, box: BBox) -> BBox:
    x0, y0, x1, y1 = box.x, box.y, box.x + box.w, box.y + box.h
    corners = np.array([[x0, y0, 1.0], [x1, y0, 1.0], [x0, y1, 1.0], [x1, y1, 1.0]]) @ matrix.T
    left, top = corners[:, 0].min(), corners[:, 1].min()
    right, bottom = corners[:, 0].max(), corners[:, 1].max()
    return BBox(float(left), float(top), float(right - left), float(bottom - top))


def _translation(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def _step_geometry(step: Step, width: int, height: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The 3x3 matrix of one step (its input's pixels to its output's) and its output size,
    exactly as `_apply_one` moves the pixels."""
    p = dict(step.params)
    if step.name == "crop":
        return _translation(-p["x"], -p["y"]), (int(p["width"]), int(p["height"]))
    if step.name in ("rotate", "straighten"):
        if step.name == "rotate":
            angle, centre = float(p["angle"]), (width / 2.0, height / 2.0)
        else:
            angle, centre = _straighten_rotation(step)
        quarter = _quarter_turns(angle)
        if quarter is not None:  # cv2.rotate: pixel (i, j) goes to another whole pixel
            turns = {
                0: (np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]), (width, height)),
                1: (np.array([[0, 1.0, 0], [-1.0, 0, width], [0, 0, 1.0]]), (height, width)),
                2: (np.array([[-1.0, 0, width], [0, -1.0, height], [0, 0, 1.0]]), (width, height)),
                3: (np.array([[0, -1.0, height], [1.0, 0, 0], [0, 0, 1.0]]), (height, width)),
            }
            return turns[quarter]
        affine, size = _rotation(angle, centre, width, height)
        centres = np.vstack([affine, [0.0, 0.0, 1.0]])  # warpAffine maps pixel centres
        return _translation(0.5, 0.5) @ centres @ _translation(-0.5, -0.5), size
    if step.name == "upscale":
        size = (round(width * p["factor"]), round(height * p["factor"]))
        scale = np.array([[size[0] / width, 0, 0], [0, size[1] / height, 0], [0, 0, 1.0]])
        return scale, size
    return np.eye(3), (width, height)  # photometric: no pixel moves


def geometry(steps: Sequence[Step], original_size: tuple[int, int]) -> Geometry:
    """The geometry of `steps` applied to an original of (width, height) pixels."""
    matrix = np.eye(3)
    width, height = original_size
    for step in steps:
        step_matrix, (width, height) = _step_geometry(step, width, height)
        matrix = step_matrix @ matrix
    return Geometry(matrix, (int(original_size[0]), int(original_size[1])), (width, height))


# ---------------------------------------------------------------------- lineage
@dataclass(frozen=True)
class Enhancement:
    """The lineage of an enhanced probe, as the search records it.

    `original_sha256` names the original as the search's probe does: the file's SHA-256 for a
    photo; for a video frame, the decoded frame's pixels (`pixels_sha256`; the video's own
    SHA-256 and the frame index are in the search's frame lineage). `original_pixels_sha256` is
    the decoded original the steps started from, so a replay can tell a different decoder from
    different steps.
    """

    original_sha256: str
    original_pixels_sha256: str
    steps: tuple[Step, ...]
    working_sha256: str
    working_width: int
    working_height: int
    opencv: str
    original_kind: str = "file"  # "file" or "video frame"
    box_coordinates: str = BOX_COORDINATES
    encoding: str = "SHA-256 of 'BGR8 <height> <width> <channels>\\n' + raw BGR bytes"

    @property
    def step_lines(self) -> list[str]:
        """ "1. gamma (gamma=1.4)", one per step in order."""
        return [f"{n}. {s.describe()}" for n, s in enumerate(self.steps, start=1)]

    @property
    def summary(self) -> str:
        """ "Enhanced: 3 steps" (the probe panel's words)."""
        count = len(self.steps)
        return f"Enhanced: {count} step{'s' if count != 1 else ''}"

    @property
    def redo_sentence(self) -> str:
        """One sentence saying how to redo the steps and check the result."""
        return (
            "To redo: apply these steps in order to the original with OpenCV "
            f"{self.opencv} (`workstation enhance replay --search ID ORIGINAL`), then compare "
            "the SHA-256 of the result's raw BGR pixels (header 'BGR8 <height> <width> 3' and a "
            "newline first) with the working copy's."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "original_sha256": self.original_sha256,
            "original_kind": self.original_kind,
            "original_pixels_sha256": self.original_pixels_sha256,
            "steps": [s.to_dict() for s in self.steps],
            "working_sha256": self.working_sha256,
            "working_width": self.working_width,
            "working_height": self.working_height,
            "opencv": self.opencv,
            "box_coordinates": self.box_coordinates,
            "encoding": self.encoding,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Enhancement:
        """Read a stored lineage. A step outside the bounds (a row edited outside the program:
        `audit verify` names it) is kept as stored, so the record still reads; `apply` refuses
        it with the step's number and parameter when the working copy is made again."""
        try:
            steps = parse_steps(list(data["steps"]))
        except EnhancementError:
            steps = tuple(
                Step(str(s.get("step")), tuple((k, v) for k, v in s.items() if k != "step"))
                for s in data["steps"]
            )
        return cls(
            original_sha256=str(data["original_sha256"]),
            original_pixels_sha256=str(data["original_pixels_sha256"]),
            steps=steps,
            working_sha256=str(data["working_sha256"]),
            working_width=int(data["working_width"]),
            working_height=int(data["working_height"]),
            opencv=str(data["opencv"]),
            original_kind=str(data.get("original_kind", "file")),
            box_coordinates=str(data.get("box_coordinates", BOX_COORDINATES)),
            encoding=str(data.get("encoding", cls.encoding)),
        )


@dataclass(frozen=True)
class WorkingCopy:
    """A working copy's pixels with their lineage."""

    bgr: np.ndarray = field(repr=False, compare=False)
    lineage: Enhancement


def enhance(
    original: np.ndarray, steps: Sequence[Step], original_sha256: str, original_kind: str = "file"
) -> WorkingCopy:
    """Make the working copy of `original` (decoded BGR pixels) and its lineage."""
    if not steps:
        raise EnhancementError("no enhancement steps given")
    working = apply(original, steps)
    return WorkingCopy(
        working,
        Enhancement(
            original_sha256=original_sha256,
            original_pixels_sha256=pixels_sha256(original),
            steps=tuple(steps),
            working_sha256=pixels_sha256(working),
            working_width=int(working.shape[1]),
            working_height=int(working.shape[0]),
            opencv=opencv_version(),
            original_kind=original_kind,
        ),
    )


@dataclass(frozen=True)
class Replay:
    """What replaying a recorded lineage on an original gave."""

    lineage: Enhancement
    original_sha256: str  # of the original given (file bytes, or frame pixels)
    original_pixels_sha256: str
    working_sha256: str
    opencv: str

    @property
    def original_matches(self) -> bool:
        return self.original_sha256 == self.lineage.original_sha256

    @property
    def matches(self) -> bool:
        return self.working_sha256 == self.lineage.working_sha256

    @property
    def verdict(self) -> str:
        """The outcome in words (what `enhance replay` prints)."""
        if not self.original_matches:
            return (
                f"NOT THE ORIGINAL: the file's SHA-256 {self.original_sha256} is not the "
                f"recorded original's {self.lineage.original_sha256}"
            )
        if self.matches:
            return (
                f"MATCH: replaying the {len(self.lineage.steps)} recorded step(s) on the "
                f"original gives the recorded working copy (SHA-256 {self.working_sha256})"
            )
        if self.original_pixels_sha256 != self.lineage.original_pixels_sha256:
            return (
                "DIFFERENT: the original file is the same but it decodes to other pixels here "
                f"(pixels SHA-256 {self.original_pixels_sha256}, recorded "
                f"{self.lineage.original_pixels_sha256}): another image decoder version"
            )
        if self.opencv != self.lineage.opencv:
            return (
                f"DIFFERENT: the working copy's SHA-256 is {self.working_sha256}, recorded "
                f"{self.lineage.working_sha256}; the copy was made with OpenCV "
                f"{self.lineage.opencv} and replayed with {self.opencv}: results may differ "
                "between OpenCV versions; replay with the recorded version"
            )
        return (
            f"DIFFERENT: the working copy's SHA-256 is {self.working_sha256}, recorded "
            f"{self.lineage.working_sha256}, with the same OpenCV {self.opencv}"
        )


def replay(original: np.ndarray, original_sha256: str, lineage: Enhancement) -> Replay:
    """Redo a recorded lineage on an original and compare the working copy's SHA-256."""
    working = apply(original, lineage.steps)
    return Replay(
        lineage=lineage,
        original_sha256=original_sha256,
        original_pixels_sha256=pixels_sha256(original),
        working_sha256=pixels_sha256(working),
        opencv=opencv_version(),
    )


def working_copy_of(original: np.ndarray, lineage: Enhancement) -> np.ndarray:
    """The recorded working copy, made again from the original's pixels and checked against its
    recorded SHA-256 (what Compare and the report show: an enhanced search's box is in it).

    Raises:
        EnhancementError: in words, when the copy made again is not the one searched.
    """
    working = apply(original, lineage.steps)
    if pixels_sha256(working) != lineage.working_sha256:
        made = Replay(
            lineage,
            lineage.original_sha256,
            pixels_sha256(original),
            pixels_sha256(working),
            opencv_version(),
        )
        raise EnhancementError(
            f"the working copy made again is not the one searched ({made.verdict})"
        )
    return working
