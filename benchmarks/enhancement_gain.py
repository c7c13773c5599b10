"""Does probe enhancement help? Rank-1 of degraded probes searched as they are and after the
enhancement steps an examiner would apply (issue 15 item 2 left this unmeasured).

Gallery: frontal/01 of CFP's 500 people (research use only: never copied into the repository).
Probes: frontal/02 of a seeded sample of them, each degraded in one of the ways poor probes are
poor, then searched (a) as degraded and (b) through `vision.enhancement.apply` with the steps an
examiner would choose for that degradation. Every face goes through the product's own engine
(`create_engine`, largest face of the photo), and candidates are ranked by the exact inner
product over the 500 gallery embeddings (what the embedded gallery's exact search returns).

Degradations (each its own row; seeded, deterministic):
- dark: pixels x 0.06 (the brightest 15 of 255) plus Gaussian noise (sigma 3): an
  underexposed night still;
- small: the photo shrunk until the face is about 20 px wide: a face far from a CCTV camera;
- blurred: Gaussian blur (sigma 3): motion or focus blur;
- tilted: turned 40 degrees: a head leaning into the frame.

Prints, per degradation and step chain: probes with a face found, rank-1 and rank-20 (a probe
with no face found counts as missed), and the median score of the mate.

Run: python benchmarks/enhancement_gain.py --cfp /work/datasets/cfp [--probes 300] [--config fast]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from workstation.vision.cvcompat import cv2_module
from workstation.vision.engine import FaceEngine
from workstation.vision.enhancement import apply
from workstation.vision.enhancement_steps import Step, parse_steps
from workstation.vision.images import load_image
from workstation.vision.registry import create_engine

FACE_SIDE_SMALL = 20  # px: the face's width after shrinking ("small")
TILT = 40.0  # degrees


def dark(bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noisy = bgr.astype(np.float32) * 0.06 + rng.normal(0.0, 3.0, bgr.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def blurred(bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return cv2_module().GaussianBlur(bgr, (0, 0), 3.0)


def tilted(bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return apply(bgr, parse_steps([{"step": "rotate", "angle": TILT}]))


Degrade = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def shrink_to_small_face(face_width: float) -> Degrade:
    def small(bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        scale = min(1.0, FACE_SIDE_SMALL / max(face_width, 1.0))
        height, width = bgr.shape[:2]
        size = (max(8, round(width * scale)), max(8, round(height * scale)))
        return cv2_module().resize(bgr, size, interpolation=cv2_module().INTER_AREA)

    return small


# What an examiner would do for each degradation (one or two plausible chains each).
CHAINS: dict[str, dict[str, list[dict]]] = {
    "dark": {
        "gamma 2.5": [{"step": "gamma", "gamma": 2.5}],
        "equalise (CLAHE) + denoise": [{"step": "equalise"}, {"step": "denoise"}],
    },
    "small": {
        "upscale x4": [{"step": "upscale", "factor": 4.0}],
        "upscale x4 + sharpen": [{"step": "upscale", "factor": 4.0}, {"step": "sharpen"}],
    },
    "blurred": {"sharpen 1.5": [{"step": "sharpen", "sigma": 1.5, "amount": 1.5}]},
    "tilted": {"rotate back": [{"step": "rotate", "angle": -TILT}]},
}


def largest_face(engine: FaceEngine, bgr: np.ndarray) -> tuple[np.ndarray | None, float]:
    faces = engine.analyze(bgr)
    if not faces:
        return None, 0.0
    return faces[0].embedding, float(faces[0].box.w)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfp", type=Path, required=True)
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--config", default="fast")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    engine = create_engine(args.config)
    with open(args.cfp / "gallery.csv", newline="") as handle:
        gallery_rows = list(csv.DictReader(handle))
    with open(args.cfp / "probes_frontal.csv", newline="") as handle:
        probe_rows = list(csv.DictReader(handle))
    started = time.perf_counter()
    ids, vectors = [], []
    for row in gallery_rows:
        vector, _ = largest_face(engine, load_image(Path(row["image"])).bgr)
        if vector is not None:
            ids.append(row["subject_id"])
            vectors.append(vector)
    gallery = np.stack(vectors)
    print(f"gallery: {len(ids)} of {len(gallery_rows)} frontal/01 photos with a face "
          f"({time.perf_counter() - started:.0f} s)")  # fmt: skip

    rng = np.random.default_rng(args.seed)
    chosen = rng.choice(len(probe_rows), size=min(args.probes, len(probe_rows)), replace=False)
    probes = [probe_rows[i] for i in sorted(chosen) if probe_rows[i]["subject_id"] in ids]
    print(f"probes: {len(probes)} frontal/02 photos of people in the gallery (seed {args.seed})")

    def rank_of(vector: np.ndarray | None, subject: str) -> tuple[int | None, float | None]:
        if vector is None:
            return None, None
        scores = gallery @ vector
        mate = scores[ids.index(subject)]
        return int((scores > mate).sum()) + 1, float(mate)

    results: dict[tuple[str, str], list[tuple[int | None, float | None]]] = {}
    for number, row in enumerate(probes, 1):
        original = load_image(Path(row["image"])).bgr
        _, face_width = largest_face(engine, original)
        degrade = {
            "dark": dark,
            "small": shrink_to_small_face(face_width or original.shape[1] / 3),
            "blurred": blurred,
            "tilted": tilted,
        }
        for name, make in degrade.items():
            poor = make(original, rng)
            results.setdefault((name, "as degraded"), []).append(
                rank_of(largest_face(engine, poor)[0], row["subject_id"])
            )
            for chain, steps in CHAINS[name].items():
                parsed: tuple[Step, ...] = parse_steps(steps)
                enhanced = apply(poor, parsed)
                results.setdefault((name, chain), []).append(
                    rank_of(largest_face(engine, enhanced)[0], row["subject_id"])
                )
        if number % 50 == 0:
            print(f"  {number}/{len(probes)} probes ({time.perf_counter() - started:.0f} s)")

    print(f"\nconfiguration {args.config}; {len(probes)} probes; gallery of {len(ids)}")
    print("| degradation | steps | face found | rank-1 | rank-20 | median mate score |")
    print("|---|---|---|---|---|---|")
    for (name, chain), found in results.items():
        ranks = [r for r, _ in found]
        scores = [s for _, s in found if s is not None]
        n = len(found)
        hit1 = sum(1 for r in ranks if r is not None and r <= 1) / n
        hit20 = sum(1 for r in ranks if r is not None and r <= 20) / n
        median = f"{statistics.median(scores):.3f}" if scores else "-"
        print(
            f"| {name} | {chain} | {sum(r is not None for r in ranks)}/{n} | "
            f"{hit1:.1%} | {hit20:.1%} | {median} |"
        )


if __name__ == "__main__":
    main()
