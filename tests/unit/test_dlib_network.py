"""dlib's ResNet read from its weights file and run by OpenCV: the same descriptors as dlib's own
network, and a file of any other network refused with its reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from workstation.errors import ModelError
from workstation.vision.dlib_backend import DlibResNetEmbedder, dlib_module, verified_copy
from workstation.vision.dlib_network import (
    CHIP_SIDE,
    DlibResNetRunner,
    _Reader,
    network_ops,
    onnx_model,
    read_network,
)
from workstation.vision.images import load_image
from workstation.vision.models import ModelFile, load_verified
from workstation.vision.onnx_writer import OnnxGraph
from workstation.vision.registry import DLIB_LANDMARKS, DLIB_RESNET, create_engine


@pytest.fixture(scope="module")
def weights() -> ModelFile:
    return load_verified(DLIB_RESNET)


@pytest.fixture(scope="module")
def chips(photo_paths: dict[str, Path], weights: ModelFile) -> np.ndarray:
    """dlib's own 150 px chips of every face in the test photos, cut by the product."""
    detector = create_engine("fast")
    embedder = DlibResNetEmbedder(weights, load_verified(DLIB_LANDMARKS))
    found = []
    for path in sorted(photo_paths.values()):
        bgr = load_image(path).bgr
        for face in detector.detect(bgr):
            (chip,) = embedder.prepare(bgr, face.box, face.landmarks)
            found.append(chip)
    assert len(found) >= 3
    return np.stack(found)


def test_the_file_is_read_as_dlibs_published_network(weights: ModelFile) -> None:
    network = read_network(weights.data)
    assert len(network.layers) == len(network_ops()) == 130
    convolutions = [layer for layer in network.layers if layer.op.kind == "con"]
    assert len(convolutions) == 29
    assert convolutions[0].weights is not None and convolutions[0].weights.shape == (32, 3, 7, 7)
    fc = network.layers[-1]
    assert fc.op.kind == "fc" and fc.weights is not None and fc.weights.shape == (256, 128)
    # The channel means dlib's input layer subtracts, as dlib's example network declares them.
    assert np.allclose(network.channel_means, (122.782, 117.001, 104.298), atol=1e-3)


def test_descriptors_are_dlibs_own(weights: ModelFile, chips: np.ndarray) -> None:
    with verified_copy(weights) as path:
        reference_network = dlib_module().face_recognition_model_v1(str(path))
    expected = np.array(
        [np.asarray(d) for d in reference_network.compute_face_descriptor(list(chips))],
        dtype=np.float32,
    )
    runner = DlibResNetRunner(weights.data)
    batch = runner.descriptors(chips)
    one_by_one = np.concatenate([runner.descriptors(chip[None]) for chip in chips])
    for got in (batch, one_by_one):
        assert got.shape == expected.shape == (len(chips), 128)
        cosines = np.sum(got * expected, axis=1) / (
            np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1)
        )
        assert cosines.min() > 0.99999
        assert np.abs(got - expected).max() < 1e-4


def test_the_model_bytes_are_valid_onnx(weights: ModelFile) -> None:
    model = onnx.load_from_string(onnx_model(read_network(weights.data)))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["chips"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["n", 3, CHIP_SIDE, CHIP_SIDE]
    assert sum(node.op_type == "Conv" for node in model.graph.node) == 29
    # Every batch normalisation was folded into its convolution.
    assert not any(node.op_type == "Mul" for node in model.graph.node)


def test_onnx_writer_encodes_integers_and_tensors_as_onnx_reads_them() -> None:
    graph = OnnxGraph("probe")
    weights = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) - 7.5
    pads = np.array([0, 0, -1, 300, 0, 0, 1 << 40, 0], dtype=np.int64)
    padded = graph.node("Pad", ["x", graph.constant("pads", pads)])
    out = graph.node("Conv", [padded, graph.constant("w", weights)], strides=[1, 2], pads=[0] * 4)
    model = onnx.load_from_string(graph.model_bytes("x", ["n", 3, 9, 9], out, ["n", 2, 4, 4]))
    initialisers = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    assert np.array_equal(initialisers["pads1"], pads)
    assert np.array_equal(initialisers["w3"], weights)
    conv = model.graph.node[1]
    assert conv.op_type == "Conv" and list(conv.input) == [padded, "w3"]
    assert {a.name: list(a.ints) for a in conv.attribute} == {"strides": [1, 2], "pads": [0] * 4}
    assert model.ir_version == 8 and model.opset_import[0].version == 13


def _first_stride_set_to_one(data: bytes) -> bytes:
    """The first convolution's stride (2, written b"\\x01\\x02") rewritten as 1."""
    reader = _Reader(data)
    reader.pos = data.index(b"con_4") + len(b"con_4")
    reader.tensor()  # its weights
    filters, rows, cols = reader.integer(), reader.integer(), reader.integer()
    assert (filters, rows, cols) == (32, 7, 7)
    at = reader.pos
    assert data[at : at + 4] == b"\x01\x02\x01\x02"  # stride_y, stride_x
    return data[:at] + b"\x01\x01" + data[at + 2 :]


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda data: data[: len(data) // 2], "ends early|longer than the file|impossible"),
        (lambda data: data + b"\x00", "bytes after the last layer"),
        (lambda data: data.replace(b"con_4", b"con_9", 1), "'con_9' where"),
        (lambda data: _first_stride_set_to_one(data), "7x7 filters, stride 1, padding 0 where"),
    ],
    ids=["truncated", "extra bytes", "unknown layer version", "another stride"],
)
def test_a_file_of_another_network_is_refused(weights: ModelFile, damage, reason: str) -> None:
    with pytest.raises(ModelError, match=reason):
        read_network(damage(weights.data))


def test_another_dlib_model_is_refused_in_words() -> None:
    landmarks = load_verified(DLIB_LANDMARKS)
    with pytest.raises(ModelError, match="not dlib's face-recognition ResNet"):
        read_network(landmarks.data)
