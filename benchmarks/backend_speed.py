"""OpenCV DNN vs onnxruntime for the default models, on real photos. Prints JSON lines.

Why: ../shared/MODELS.md reports that onnxruntime rejects the shipped YuNet's block-quantised
nodes and needs SFace's graph cleaned (its weights are declared as graph inputs), and that it ran
slower on these int8 files. This script re-measures that on our own code path:

- detection: cv2.FaceDetectorYN (what the product uses); onnxruntime on the shipped YuNet file is
  attempted and its error reported;
- embedding: cv2.FaceRecognizerSF.feature vs onnxruntime on the cleaned SFace graph, same aligned
  crops, with the cosine between the two outputs (they must agree).

Run: python benchmarks/backend_speed.py [FACES_DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

import numpy as np

from workstation.vision.alignment import align_face
from workstation.vision.cvcompat import cv2_module
from workstation.vision.images import load_image
from workstation.vision.models import DEFAULT_DETECTOR, DEFAULT_RECOGNIZER, load_verified
from workstation.vision.registry import create_engine

DEFAULT_FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"


def cleaned_sface_bytes(data: bytes) -> bytes:
    """Drop graph inputs that no node reads (leftover weight names of the float model) or that
    are initializers, as onnxruntime requires; only the image input stays."""
    import onnx

    model = onnx.load_from_string(data)
    produced = {init.name for init in model.graph.initializer}
    read = {name for node in model.graph.node for name in node.input}
    real_inputs = [i for i in model.graph.input if i.name in read and i.name not in produced]
    del model.graph.input[:]
    model.graph.input.extend(real_inputs)
    return model.SerializeToString()


def ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("faces", nargs="?", type=Path, default=DEFAULT_FACES)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--photos", type=int, default=30)
    args = parser.parse_args()
    import onnxruntime as ort

    cv2 = cv2_module()
    engine = create_engine()
    with open(args.faces / "labels.csv", newline="") as handle:
        paths = [args.faces / row["path"] for row in csv.DictReader(handle)][: args.photos]
    photos = []
    for path in paths:
        bgr = load_image(path).bgr
        scale = 640 / max(bgr.shape[:2])
        photos.append(cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))

    detect_times: list[float] = []
    crops: list[np.ndarray] = []
    for _ in range(args.repeat):
        for bgr in photos:
            start = time.perf_counter()
            found = engine.detector.detect(bgr)
            detect_times.append(time.perf_counter() - start)
            if found and len(crops) < len(photos):
                crops.append(align_face(bgr, found[0].landmarks))
    print(
        json.dumps(
            {
                "stage": "detect",
                "runtime": "opencv-dnn",
                "photos": len(photos),
                "size": "640 px long side",
                **ms(detect_times),
            }
        )
    )

    yunet = load_verified(DEFAULT_DETECTOR)
    try:
        quiet = ort.SessionOptions()
        quiet.log_severity_level = 3
        ort.InferenceSession(yunet.data, quiet, providers=["CPUExecutionProvider"])
        print(json.dumps({"stage": "detect", "runtime": "onnxruntime", "loads": True}))
    except Exception as exc:  # the point is to record what onnxruntime says
        print(
            json.dumps(
                {
                    "stage": "detect",
                    "runtime": "onnxruntime",
                    "loads": False,
                    "error": str(exc).splitlines()[0][:200],
                }
            )
        )

    cv_times: list[float] = []
    cv_features = []
    for _ in range(args.repeat):
        for crop in crops:
            start = time.perf_counter()
            cv_features.append(engine.embedder.embed([(crop,)])[0])
            cv_times.append(time.perf_counter() - start)
    print(
        json.dumps({"stage": "embed", "runtime": "opencv-dnn", "faces": len(crops), **ms(cv_times)})
    )

    sface = load_verified(DEFAULT_RECOGNIZER)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.log_severity_level = 3  # the cleaned graph still carries unused shape initializers
    session = ort.InferenceSession(
        cleaned_sface_bytes(sface.data), options, providers=["CPUExecutionProvider"]
    )
    input_name = session.get_inputs()[0].name
    ort_times: list[float] = []
    agreement = []
    for _ in range(args.repeat):
        for i, crop in enumerate(crops):
            blob = cv2.dnn.blobFromImage(crop, 1.0, (112, 112), (0, 0, 0), swapRB=True)
            start = time.perf_counter()
            feature = session.run(None, {input_name: blob})[0].reshape(-1)
            ort_times.append(time.perf_counter() - start)
            a, b = (
                feature / np.linalg.norm(feature),
                cv_features[i] / np.linalg.norm(cv_features[i]),
            )
            agreement.append(float(a @ b))
    print(
        json.dumps(
            {
                "stage": "embed",
                "runtime": "onnxruntime (cleaned graph)",
                "faces": len(crops),
                **ms(ort_times),
                "min_cosine_vs_opencv": round(min(agreement), 4),
            }
        )
    )


if __name__ == "__main__":
    main()
