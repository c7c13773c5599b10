"""Probe enhancement steps: what an examiner may do to a probe, each step a small typed value
whose parameters are checked against fixed bounds (`STEP_SPECS`), whichever surface asks. A bad
step is refused with a message naming the step (its number and name) and the parameter.

How the steps are applied, where they move each point, and the lineage a search records:
`vision/enhancement.py`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workstation.errors import WorkstationError

MAX_STEPS = 32  # far more than any examiner chains; bounds the work a pasted list can ask for


class EnhancementError(WorkstationError):
    """A step or its parameters were refused (the message names the step and the parameter)."""


@dataclass(frozen=True)
class Param:
    """One parameter of a step: its kind, bounds, default and meaning."""

    name: str
    kind: str  # "int", "float" or "choice"
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    odd: bool = False  # OpenCV's window sizes must be odd
    help: str = ""

    def bounds_text(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        word = "a whole number" if self.kind == "int" else "a number"
        odd = " (odd)" if self.odd else ""
        return f"{word}{odd} from {self.low:g} to {self.high:g}"

    def check(self, value: Any, where: str) -> Any:
        """The value, normalised (int or float or str), or EnhancementError naming it."""
        bad = EnhancementError(
            f"{where}: parameter '{self.name}' must be {self.bounds_text()} (got {value!r})"
        )
        if self.kind == "choice":
            if not isinstance(value, str) or value.strip().lower() not in self.choices:
                raise bad
            return value.strip().lower()
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        if not math.isfinite(float(value)):
            raise bad
        if self.kind == "int":
            if float(value) != int(value):
                raise bad
            value = int(value)
            if self.odd and value % 2 == 0:
                raise bad
        else:
            value = float(value)
        assert self.low is not None and self.high is not None
        if not self.low <= value <= self.high:
            raise bad
        return value


@dataclass(frozen=True)
class StepSpec:
    """A kind of step: its name, what it does (in words for the report) and its parameters."""

    name: str
    label: str
    does: str
    params: tuple[Param, ...]

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


STEP_SPECS: dict[str, StepSpec] = {
    spec.name: spec
    for spec in (
        StepSpec(
            "crop",
            "Crop",
            "keeps the rectangle [x, y, width, height] (pixels of the image at this step)",
            (
                Param("x", "int", 0, 0, 100_000, help="left edge"),
                Param("y", "int", 0, 0, 100_000, help="top edge"),
                Param("width", "int", 256, 8, 100_000, help="width in pixels"),
                Param("height", "int", 256, 8, 100_000, help="height in pixels"),
            ),
        ),
        StepSpec(
            "rotate",
            "Rotate",
            "rotates by the angle in degrees, counter-clockwise when positive (cv2.rotate for "
            "multiples of 90 degrees, which is exact; otherwise cv2.warpAffine, bicubic, on a "
            "canvas enlarged to hold the whole image, new corners black)",
            (Param("angle", "float", 0.0, -360.0, 360.0, help="degrees, + = counter-clockwise"),),
        ),
        StepSpec(
            "straighten",
            "Straighten (eye line)",
            "rotates about the eyes' midpoint so the line between the two eye points is "
            "level (cv2.warpAffine, bicubic, canvas enlarged, new corners black)",
            (
                Param("eye1_x", "float", 0.0, 0.0, 100_000.0, help="one eye, x"),
                Param("eye1_y", "float", 0.0, 0.0, 100_000.0, help="one eye, y"),
                Param("eye2_x", "float", 1.0, 0.0, 100_000.0, help="other eye, x"),
                Param("eye2_y", "float", 0.0, 0.0, 100_000.0, help="other eye, y"),
            ),
        ),
        StepSpec(
            "brightness_contrast",
            "Brightness / contrast",
            "multiplies every pixel by the contrast and adds the brightness, clipped to 0-255 "
            "(cv2.addWeighted)",
            (
                Param("brightness", "float", 0.0, -127.0, 127.0, help="added to every pixel"),
                Param("contrast", "float", 1.0, 0.1, 4.0, help="multiplies every pixel"),
            ),
        ),
        StepSpec(
            "gamma",
            "Gamma",
            "maps each value v to 255 * (v / 255) ^ (1 / gamma) (cv2.LUT): above 1 brightens "
            "the shadows, below 1 darkens them",
            (Param("gamma", "float", 1.0, 0.1, 5.0, help="above 1 brightens"),),
        ),
        StepSpec(
            "equalise",
            "Histogram equalisation",
            "equalises the lightness channel (L of CIELAB; colours kept): 'clahe' is contrast-"
            "limited adaptive equalisation (cv2.createCLAHE), 'global' is cv2.equalizeHist",
            (
                Param("method", "choice", "clahe", choices=("clahe", "global")),
                Param("clip_limit", "float", 2.0, 0.1, 40.0, help="CLAHE only"),
                Param("tiles", "int", 8, 1, 32, help="CLAHE grid, tiles per side"),
            ),
        ),
        StepSpec(
            "denoise",
            "Denoise",
            "non-local means denoising (cv2.fastNlMeansDenoisingColored)",
            (
                Param("h", "float", 5.0, 1.0, 30.0, help="strength on lightness"),
                Param("h_color", "float", 5.0, 1.0, 30.0, help="strength on colour"),
                Param("template_window", "int", 7, 3, 15, odd=True, help="patch size"),
                Param("search_window", "int", 21, 5, 35, odd=True, help="search area"),
            ),
        ),
        StepSpec(
            "sharpen",
            "Sharpen (unsharp mask)",
            "adds back the difference from a Gaussian blur: (1 + amount) * image - amount * "
            "blur (cv2.GaussianBlur, cv2.addWeighted)",
            (
                Param("sigma", "float", 1.5, 0.3, 20.0, help="blur radius (pixels)"),
                Param("amount", "float", 1.0, 0.1, 5.0, help="strength"),
            ),
        ),
        StepSpec(
            "upscale",
            "Upscale",
            "enlarges by the factor (cv2.resize, bicubic or Lanczos-4 interpolation; no "
            "learned super-resolution: nothing is invented, pixels are interpolated)",
            (
                Param("factor", "float", 2.0, 1.0, 8.0, help="size multiplier"),
                Param("interpolation", "choice", "cubic", choices=("cubic", "lanczos4")),
            ),
        ),
    )
}


@dataclass(frozen=True)
class Step:
    """One enhancement step: its name and its checked parameters (every one, defaults filled)."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    def __getitem__(self, key: str) -> Any:
        return dict(self.params)[key]

    @property
    def spec(self) -> StepSpec:
        return STEP_SPECS[self.name]

    def to_dict(self) -> dict[str, Any]:
        """The step as JSON: {"step": name, parameter: value, ...} (the CLI takes the same)."""
        return {"step": self.name, **dict(self.params)}

    @property
    def values_text(self) -> str:
        """ "gamma=1.4": the parameters in one line."""
        return ", ".join(f"{k}={_value_text(v)}" for k, v in self.params)

    def describe(self) -> str:
        """ "gamma (gamma=1.4)": the step and its parameters in one line."""
        return f"{self.name} ({self.values_text})" if self.params else self.name

    @classmethod
    def make(cls, name: str, number: int = 1, **params: Any) -> Step:
        """A checked step (EnhancementError names step `number` and the parameter)."""
        return parse_step({"step": name, **params}, number)


def _value_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_step(data: Mapping[str, Any], number: int = 1) -> Step:
    """Check one step given as {"step": name, parameter: value, ...}; missing parameters take
    their defaults, unknown ones are refused."""
    if not isinstance(data, Mapping):
        raise EnhancementError(f"step {number}: must be an object with a 'step' name")
    name = data.get("step")
    spec = STEP_SPECS.get(str(name).strip().lower()) if isinstance(name, str) else None
    if spec is None:
        raise EnhancementError(
            f"step {number}: unknown step {name!r}; the steps are " + ", ".join(STEP_SPECS)
        )
    where = f"step {number} '{spec.name}'"
    given = {k: v for k, v in data.items() if k != "step"}
    for key in given:
        if spec.param(key) is None:
            names = ", ".join(p.name for p in spec.params)
            raise EnhancementError(f"{where}: unknown parameter {key!r}; its parameters: {names}")
    values = tuple((p.name, p.check(given.get(p.name, p.default), where)) for p in spec.params)
    return Step(spec.name, values)


def parse_steps(data: str | Iterable[Mapping[str, Any]]) -> tuple[Step, ...]:
    """Steps from a JSON list (text, or already parsed), checked in order."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise EnhancementError(f"the steps are not valid JSON ({exc})") from exc
    if not isinstance(data, list):
        raise EnhancementError('the steps must be a JSON list, e.g. [{"step": "gamma"}]')
    if len(data) > MAX_STEPS:
        raise EnhancementError(f"{len(data)} steps given; at most {MAX_STEPS} are allowed")
    return tuple(parse_step(item, number) for number, item in enumerate(data, start=1))


def load_steps(argument: str) -> tuple[Step, ...]:
    """Steps from the CLI: a JSON list given inline, or the name of a file holding one."""
    text = argument.strip()
    if not text.startswith("["):
        path = Path(argument)
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise EnhancementError(
                f"{path}: the steps file cannot be read ({exc.strerror or exc}); give a JSON "
                "list or a file holding one"
            ) from exc
        try:
            return parse_steps(text)
        except EnhancementError as exc:
            raise EnhancementError(f"{path}: {exc}") from exc
    return parse_steps(text)


def steps_json(steps: Sequence[Step]) -> str:
    """The steps as canonical JSON (sorted keys, no spaces): what is hashed and stored."""
    return json.dumps(
        [s.to_dict() for s in steps], sort_keys=True, separators=(",", ":"), allow_nan=False
    )
