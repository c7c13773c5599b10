"""Build the shipped reference impostor table from the labelled development photos.

Only a histogram of scores between photos of different people (pairs within one source
set, as in pairs.csv) is written (counts per 0.0005 of
cosine similarity): no photo, crop, embedding, file name, identity or pair label. See
docs/ACCURACY.md for why that may be shipped while the photos may not.

Run: python benchmarks/build_calibration_reference.py [FACES_DIR]
Then paste the printed SHA-256 into workstation/calibration/reference.py (REFERENCE_TABLES).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from faceset import DEFAULT_FACES, embed_labelled, impostor_scores

from workstation.calibration.histogram import ImpostorHistogram
from workstation.vision.engine import create_engine

OUT = Path(__file__).resolve().parents[1] / "resources" / "calibration"


def main() -> None:
    faces_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FACES
    engine = create_engine()
    data = embed_labelled(engine, faces_dir.resolve())
    scores = impostor_scores(data)
    histogram = ImpostorHistogram.from_scores(scores)
    model = engine.model
    identities = {i for i, ok in zip(data.identities, data.ok, strict=True) if ok}
    table = {
        "schema": 1,
        "name": "dev-faces-v1",
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
    out = OUT / f"{model.name}.impostors.json"
    out.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {out}: {histogram.pairs} impostor pairs, max score {scores.max():.4f}")
    print(f"sha256 {table['sha256']}")


if __name__ == "__main__":
    main()
