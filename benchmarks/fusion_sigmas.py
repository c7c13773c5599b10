"""Measure the spread (sigma) of each fusion member's impostor cosines on the development photos.

Fusion (workstation/vision/embedders.py) scales each member's unit vector by sqrt(w / sigma);
sigma is the standard deviation of that member's cosines between photos of different people. It
is measured here on the different-identity pairs within each source set of ../shared/faces (the
pairs the shipped reference tables use), never on the test sets (CFP, UTKFace).

Run: python benchmarks/fusion_sigmas.py [FACES_DIR]
Then copy the printed values into workstation/vision/registry.py (SIGMA_*).
"""

from __future__ import annotations

import sys
from pathlib import Path

from faceset import DEFAULT_FACES, embed_labelled, impostor_scores

from workstation.vision.embedders import MirrorAveraged
from workstation.vision.engine import FaceEngine
from workstation.vision.registry import EngineOptions, _detector, _dlib, _sface


def main() -> None:
    faces_dir = (Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FACES).resolve()
    options = EngineOptions()
    detector = _detector(options)
    sface, dlib = _sface(options), _dlib(options)
    members = {
        "SIGMA_SFACE": sface,
        "SIGMA_SFACE_FLIP": MirrorAveraged(sface),
        "SIGMA_DLIB": dlib,
        "SIGMA_DLIB_FLIP": MirrorAveraged(dlib),
    }
    print(f"faces: {faces_dir}")
    for name, embedder in members.items():
        data = embed_labelled(FaceEngine(detector, embedder), faces_dir)
        scores = impostor_scores(data)
        print(
            f"{name} = {scores.std():.4f}  # mean {scores.mean():.4f}, {len(scores):,} impostor "
            f"pairs, {int(data.ok.sum())} photos ({embedder.model.name})"
        )


if __name__ == "__main__":
    main()
