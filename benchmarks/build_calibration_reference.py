"""Build the shipped reference impostor table from the labelled development photos.

Only a histogram of scores between photos of different people (pairs within one source
set, as in pairs.csv) is written (counts per 0.0005 of
cosine similarity): no photo, crop, embedding, file name, identity or pair label. See
docs/ACCURACY.md for why that may be shipped while the photos may not.

One table per configuration of workstation/vision/registry.py (a fused ensemble's scores are on
their own scale). Tables keep the names and files they were first published under (TABLE_STEMS),
so calibrations stored with them stay verifiable.

With `--table mated` it writes the same configuration's mated table instead: the scores of the
pairs of two photos of one person (every same-identity pair), shown beside the strangers' in the
score plot (issue 15 item 6); counts only, like the impostor table.

Run: python benchmarks/build_calibration_reference.py [--config KEY] [--table mated] [FACES_DIR]
Then paste the printed resource and SHA-256 into that configuration's `reference` (or
`mated_reference`) entry in workstation/vision/registry.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from faceset import DEFAULT_FACES, Embedded, embed_labelled, impostor_scores, mated_scores

from workstation.calibration.histogram import ImpostorHistogram
from workstation.vision.registry import DEFAULT_CONFIGURATION, create_engine

OUT = Path(__file__).resolve().parents[1] / "resources" / "calibration"


# Shipped tables keep the names they were published under, which stored calibrations cite:
# SFace alone ('fast' since 1 December 2026, 'opencv' before) and SFace with its mirror image
# ('fast-mirror' now, 'fast' before).
TABLE_STEMS = {"fast": "opencv", "fast-mirror": "fast"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("faces", nargs="?", type=Path, default=DEFAULT_FACES)
    parser.add_argument("--config", default=DEFAULT_CONFIGURATION)
    parser.add_argument("--table", choices=("impostors", "mated"), default="impostors")
    args = parser.parse_args()
    faces_dir = args.faces
    stem = TABLE_STEMS.get(args.config, args.config)
    engine = create_engine(args.config)
    data = embed_labelled(engine, faces_dir.resolve())
    if args.table == "mated":
        write_mated(stem, engine.model, data)
        return
    scores = impostor_scores(data)
    histogram = ImpostorHistogram.from_scores(scores)
    model = engine.model
    identities = {i for i, ok in zip(data.identities, data.ok, strict=True) if ok}
    table = {
        "schema": 1,
        "name": "dev-faces-v1" if stem == "opencv" else f"dev-faces-v1:{stem}",
        "configuration": stem,
        "model_id": str(model),
        "description": (
            "Scores between photos of different people: the different-identity pairs within "
            f"each source set of the {int(data.ok.sum())} labelled development photos "
            f"({len(identities)} identities; pairs across sets left out as too easy). "
            "Histogram only; nothing that identifies a person."
        ),
        "photos": int(data.ok.sum()),
        "identities": len(identities),
        "histogram": histogram.to_json(),
        "sha256": histogram.sha256(),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    # Named by configuration: a fused model's name is long and full of punctuation.
    out = OUT / (f"{model.name}.impostors.json" if stem == "opencv" else f"{stem}.impostors.json")
    out.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {out}: {histogram.pairs} impostor pairs, max score {scores.max():.4f}")
    print(f"resource calibration/{out.name} sha256 {table['sha256']}")


def write_mated(config: str, model: object, data: Embedded) -> None:
    """The mated table: same-identity pair scores of the development photos, counts only."""
    scores = mated_scores(data)
    histogram = ImpostorHistogram.from_scores(scores)  # the same bins, whatever the pairs are
    identities = {i for i, ok in zip(data.identities, data.ok, strict=True) if ok}
    table = {
        "schema": 1,
        "name": f"dev-faces-v1-mated:{config}",
        "configuration": config,
        "model_id": str(model),
        "description": (
            "Scores between two photos of the same person: every same-identity pair of the "
            f"{int(data.ok.sum())} labelled development photos ({len(identities)} identities). "
            "Histogram only; nothing that identifies a person."
        ),
        "photos": int(data.ok.sum()),
        "identities": len(identities),
        "histogram": histogram.to_json(),
        "sha256": histogram.sha256(),
    }
    out = OUT / f"{config}.mated.json"
    out.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {out}: {histogram.pairs} mated pairs, median {np.median(scores):.4f}")
    print(f"resource calibration/{out.name} sha256 {table['sha256']}")


if __name__ == "__main__":
    main()
