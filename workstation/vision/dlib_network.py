"""dlib's face-recognition ResNet, read from its own weights file and run by OpenCV's DNN module.

Why not dlib itself: the `dlib-bin` wheel is built without BLAS, and its network took about
123 ms of CPU a view (two views a face in `accurate`: more than half of that configuration's
cost per photo). The same weights as an ONNX graph (vision/onnx_writer.py) run by OpenCV, which
already runs the detector and SFace, give the same descriptor (cosine 1.0 to dlib's own,
tests/unit/test_dlib_network.py) for about 14-18 ms a view (docs/PERFORMANCE.md). onnxruntime
ran it in 9-10 ms but is not in the installer (only the optional insightface backend needs it).
dlib still finds the five landmarks and cuts the 150 px chip; only the network moved.

The weights file is dlib's own serialisation of its network (`dlib::serialize` of `anet_type` in
dlib's dnn_face_recognition_ex.cpp). Reading it needs the network's structure, which dlib does
not write (its tag and skip layers leave only a version number), so the structure is written out
here and every record of the file is checked against it: the layer kinds and order, filter
counts, kernel sizes, strides and padding, tensor sizes, and the end of the file. A file of any
other network is refused with the reason; nothing is guessed. The bytes read are the verified
bytes whose SHA-256 matched the manifest (vision/models.py), so the model id is unchanged.

Arithmetic that is dlib's, not ONNX's defaults, and is built explicitly:
- the input is (pixel - channel mean) / 256 in R, G, B planes, means read from the file;
- a residual sum of two tensors of different sizes (more channels after a downsampling block, or
  4x4 against 3x3 in the last blocks) is taken over the larger size, the smaller one counting as
  zero beyond its edge (dlib's `add_prev`): the smaller operand is zero-padded at the end;
- the fully connected layer multiplies by a (inputs x outputs) matrix, without bias.
Each `affine` layer (a frozen batch normalisation) is folded into the convolution before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from workstation.errors import ModelError
from workstation.vision.cvcompat import cv2_module
from workstation.vision.onnx_writer import OnnxGraph

CHIP_SIDE = 150
DESCRIPTOR_DIM = 128


# --- the network's structure (dlib's anet_type, in forward order) -------------------------------


@dataclass(frozen=True)
class Op:
    """One layer of the network in forward order. `tag` names a tagged output (tag1, tag2) for
    `tag`, `skip` and `add` ops; `size`/`stride` describe convolutions and pools."""

    kind: str  # con, affine, relu, max_pool, avg_pool, mean, fc, tag, skip, add
    filters: int = 0
    size: int = 0
    stride: int = 1
    tag: int = 0

    @property
    def is_layer(self) -> bool:
        """Layers with details in the file (tags and skips have none)."""
        return self.kind not in ("tag", "skip")


def _block(filters: int, stride: int) -> list[Op]:
    return [
        Op("con", filters, 3, stride),
        Op("affine"),
        Op("relu"),
        Op("con", filters, 3, 1),
        Op("affine"),
    ]


def _residual(filters: int) -> list[Op]:
    # relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
    return [Op("tag", tag=1), *_block(filters, 1), Op("add", tag=1), Op("relu")]


def _residual_down(filters: int) -> list[Op]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
    return [
        Op("tag", tag=1),
        *_block(filters, 2),
        Op("tag", tag=2),
        Op("skip", tag=1),
        Op("avg_pool", size=2, stride=2),
        Op("add", tag=2),
        Op("relu"),
    ]


def network_ops() -> list[Op]:
    """dlib_face_recognition_resnet_model_v1's layers, input first."""
    ops = [Op("con", 32, 7, 2), Op("affine"), Op("relu"), Op("max_pool", size=3, stride=2)]
    ops += _residual(32) * 3
    for filters, repeats in ((64, 3), (128, 2), (256, 2)):
        ops += _residual_down(filters) + _residual(filters) * repeats
    ops += _residual_down(256)
    ops += [Op("mean"), Op("fc", DESCRIPTOR_DIM)]
    return ops


# --- reading dlib's serialisation --------------------------------------------------------------


class _Reader:
    """dlib's `serialize` formats: integers as a size byte (bit 7 the sign) then that many
    little-endian bytes; floating-point scalars as an integer mantissa and exponent; strings as
    a length then the bytes; booleans as '0'/'1'; tensors as 4-byte little-endian floats."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def fail(self, reason: str) -> ModelError:
        return ModelError(f"not dlib's face-recognition ResNet: {reason} at byte {self.pos}")

    def integer(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("the file ends early")
        head = self.data[self.pos]
        size = head & 0x0F
        if size == 0 or size > 8 or self.pos + 1 + size > len(self.data):
            raise self.fail("an integer of impossible size")
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if head & 0x80 else value

    def scalar(self) -> float:
        mantissa, exponent = self.integer(), self.integer()
        return float(mantissa * 2.0**exponent)

    def text(self) -> str:
        length = self.integer()
        if length < 0 or length > 64 or self.pos + length > len(self.data):
            raise self.fail("a version string of impossible length")
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail("a version string that is not text") from None

    def flag(self) -> bool:
        byte = self.data[self.pos : self.pos + 1]
        if byte not in (b"0", b"1"):
            raise self.fail("a boolean that is not '0' or '1'")
        self.pos += 1
        return byte == b"1"

    def shape(self, version: int) -> tuple[int, int, int, int]:
        if self.integer() != version:
            raise self.fail("an unexpected tensor version")
        dims = (self.integer(), self.integer(), self.integer(), self.integer())
        if min(dims) < 0:
            raise self.fail("a tensor of negative size")
        return dims

    def tensor(self) -> np.ndarray:
        dims = self.shape(2)
        count = int(np.prod(dims))
        end = self.pos + 4 * count
        if end > len(self.data):
            raise self.fail("a tensor longer than the file")
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos = end
        return values.astype(np.float32).reshape(dims)

    def expect(self, versions: tuple[str, ...]) -> str:
        version = self.text()
        if version not in versions:
            raise self.fail(f"layer {version!r} where {' or '.join(versions)} belongs")
        return version


@dataclass
class Layer:
    """A layer read from the file: its op and the weights it carries."""

    op: Op
    weights: np.ndarray | None = None  # con: (filters, channels, k, k); fc: (inputs, outputs)
    bias: np.ndarray | None = None
    scale: np.ndarray | None = None  # affine: gamma
    shift: np.ndarray | None = None  # affine: beta


@dataclass
class DlibNetwork:
    channel_means: tuple[float, float, float]  # red, green, blue
    layers: list[Layer] = field(default_factory=list)


def _read_con(reader: _Reader, op: Op) -> Layer:
    version = reader.expect(("con_4", "con_5", "con_6"))
    params = reader.tensor().reshape(-1)
    filters = reader.integer()
    rows, cols, stride_y, stride_x = (reader.integer() for _ in range(4))
    pad_y, pad_x = reader.integer(), reader.integer()
    weights_shape = reader.shape(1)
    bias_shape = reader.shape(1)
    for _ in range(4):  # learning-rate and weight-decay multipliers
        reader.scalar()
    use_bias = reader.flag() if version in ("con_5", "con_6") else True
    if version == "con_6":
        reader.flag()  # use_relu: only for a fused relu, which this network does not have
    expected_pad = 0 if op.stride != 1 else op.size // 2
    if (filters, rows, cols, stride_y, stride_x, pad_y, pad_x) != (
        op.filters,
        op.size,
        op.size,
        op.stride,
        op.stride,
        expected_pad,
        expected_pad,
    ):
        raise reader.fail(
            f"a convolution of {filters} {rows}x{cols} filters, stride {stride_y}, padding "
            f"{pad_y} where {op.filters} {op.size}x{op.size}, stride {op.stride} belong"
        )
    weight_count = int(np.prod(weights_shape))
    bias_count = int(np.prod(bias_shape)) if use_bias else 0
    if weights_shape[0] != filters or bias_count not in (0, filters):
        raise reader.fail("convolution weights of the wrong shape")
    if params.size != weight_count + bias_count:
        raise reader.fail("convolution parameters of the wrong size")
    bias = params[weight_count:] if bias_count else np.zeros(filters, dtype=np.float32)
    return Layer(op, weights=params[:weight_count].reshape(weights_shape), bias=bias)


def _read_affine(reader: _Reader, op: Op) -> Layer:
    version = reader.expect(("affine_", "affine_2"))
    params = reader.tensor().reshape(-1)
    gamma_shape, beta_shape = reader.shape(1), reader.shape(1)
    if reader.integer() != 0:  # CONV_MODE: one scale and shift per channel
        raise reader.fail("an affine layer that is not per channel")
    if version == "affine_2" and reader.flag():
        raise reader.fail("a disabled affine layer")
    gamma_count, beta_count = int(np.prod(gamma_shape)), int(np.prod(beta_shape))
    if gamma_count != beta_count or params.size != gamma_count + beta_count:
        raise reader.fail("affine parameters of the wrong size")
    return Layer(op, scale=params[:gamma_count], shift=params[gamma_count:])


def _read_pool(reader: _Reader, op: Op, versions: tuple[str, ...]) -> Layer:
    reader.expect(versions)
    rows, cols, stride_y, stride_x = (reader.integer() for _ in range(4))
    pad_y, pad_x = reader.integer(), reader.integer()
    size, stride = (0, 1) if op.kind == "mean" else (op.size, op.stride)
    if (rows, cols, stride_y, stride_x, pad_y, pad_x) != (size, size, stride, stride, 0, 0):
        raise reader.fail(f"a {rows}x{cols} pool with stride {stride_y}, padding {pad_y}")
    return Layer(op)


def _read_fc(reader: _Reader, op: Op, inputs: int) -> Layer:
    version = reader.expect(("fc_2", "fc_3"))
    outputs, declared_inputs = reader.integer(), reader.integer()
    params = reader.tensor().reshape(-1)
    reader.shape(1)  # weights alias
    reader.shape(1)  # biases alias
    if reader.integer() != 1:  # FC_NO_BIAS
        raise reader.fail("a fully connected layer with a bias")
    for _ in range(4):
        reader.scalar()
    if version == "fc_3":
        reader.flag()
    if (outputs, declared_inputs) != (op.filters, inputs) or params.size != outputs * inputs:
        raise reader.fail(f"a fully connected layer {declared_inputs} -> {outputs}")
    return Layer(op, weights=params.reshape(inputs, outputs))


def _read_details(reader: _Reader, op: Op, channels: int) -> Layer:
    if op.kind == "con":
        return _read_con(reader, op)
    if op.kind == "affine":
        return _read_affine(reader, op)
    if op.kind == "relu":
        if reader.expect(("relu_", "relu_2")) == "relu_2" and reader.flag():
            raise reader.fail("a disabled relu")
        return Layer(op)
    if op.kind == "max_pool":
        return _read_pool(reader, op, ("max_pool_2",))
    if op.kind in ("avg_pool", "mean"):
        return _read_pool(reader, op, ("avg_pool_2",))
    if op.kind == "add":
        reader.expect(("add_prev_",))
        return Layer(op)
    if op.kind == "fc":
        return _read_fc(reader, op, channels)
    raise AssertionError(op.kind)


def read_network(data: bytes) -> DlibNetwork:
    """Parse dlib_face_recognition_resnet_model_v1.dat, checking it is that network."""
    reader = _Reader(data)
    ops = network_ops()
    if reader.integer() != 1:
        raise reader.fail("an unknown loss-layer version")
    if reader.expect(("loss_metric_", "loss_metric_2")) == "loss_metric_2":
        reader.scalar(), reader.scalar()  # margin and distance threshold: training only
    # Each wrapper writes its version then its inner network, so the versions come outermost
    # first: 2 for a layer, 1 for a tag or skip, 3 for the layer over the input.
    for index, op in enumerate(reversed(ops)):
        expected = (3,) if index == len(ops) - 1 else ((2,) if op.is_layer else (1,))
        if reader.integer() not in expected:
            raise reader.fail("a layer stack of another shape")
    reader.expect(("input_rgb_image_sized",))
    means = (reader.scalar(), reader.scalar(), reader.scalar())
    if (reader.integer(), reader.integer()) != (CHIP_SIDE, CHIP_SIDE):
        raise reader.fail(f"an input that is not {CHIP_SIDE}x{CHIP_SIDE}")
    network = DlibNetwork(channel_means=means)
    channels = 3
    for index, op in enumerate(ops):
        if not op.is_layer:
            network.layers.append(Layer(op))
            continue
        network.layers.append(_read_details(reader, op, channels))
        if op.kind == "con":
            channels = op.filters
        # What the layer object wrote after its details: three flags, then its training-time
        # buffers (empty in a saved model, read and dropped).
        for _ in range(3):
            reader.flag()
        reader.tensor(), reader.tensor(), reader.tensor()
        if index == 0:
            reader.integer()  # the input layer's sample expansion factor (version 3)
    if reader.pos != len(data):
        raise reader.fail("bytes after the last layer")
    return network


# --- the ONNX graph -----------------------------------------------------------------------------


def _output_side(side: int, size: int, stride: int, padding: int) -> int:
    return 1 + (side + 2 * padding - size) // stride


def onnx_model(network: DlibNetwork) -> bytes:
    """The network as serialised ONNX: input `chips` (n, 3, 150, 150) float32 already
    normalised, output (n, 128) descriptors."""
    graph = OnnxGraph("dlib_face_recognition_resnet_model_v1")
    current, shape = "chips", (3, CHIP_SIDE, CHIP_SIDE)  # (channels, rows, cols)
    tagged: dict[int, tuple[str, tuple[int, int, int]]] = {}
    layers = network.layers
    index = 0
    while index < len(layers):
        layer, op = layers[index], layers[index].op
        index += 1
        if op.kind == "con":
            assert layer.weights is not None and layer.bias is not None
            weights, bias = layer.weights, layer.bias
            # Every convolution of this network is followed by a frozen batch normalisation
            # (network_ops), which is the same convolution with scaled filters and shifted bias.
            following = layers[index]
            assert following.op.kind == "affine"
            assert following.scale is not None and following.shift is not None
            weights = weights * following.scale[:, None, None, None]
            bias = bias * following.scale + following.shift
            index += 1
            padding = 0 if op.stride != 1 else op.size // 2
            current = graph.node(
                "Conv",
                [current, graph.constant("w", weights), graph.constant("b", bias)],
                kernel_shape=[op.size, op.size],
                strides=[op.stride, op.stride],
                pads=[padding] * 4,
            )
            side = _output_side(shape[1], op.size, op.stride, padding)
            shape = (op.filters, side, side)
        elif op.kind == "relu":
            current = graph.node("Relu", [current])
        elif op.kind in ("max_pool", "avg_pool"):
            kind = "MaxPool" if op.kind == "max_pool" else "AveragePool"
            current = graph.node(
                kind, [current], kernel_shape=[op.size] * 2, strides=[op.stride] * 2
            )
            side = _output_side(shape[1], op.size, op.stride, 0)
            shape = (shape[0], side, side)
        elif op.kind == "tag":
            tagged[op.tag] = (current, shape)
        elif op.kind == "skip":
            current, shape = tagged[op.tag]
        elif op.kind == "add":
            other, other_shape = tagged[op.tag]
            target = (
                max(shape[0], other_shape[0]),
                max(shape[1], other_shape[1]),
                max(shape[2], other_shape[2]),
            )
            operands = []
            for operand, operand_shape in ((current, shape), (other, other_shape)):
                if operand_shape != target:
                    # dlib adds tensors of different sizes over the larger one, the smaller
                    # counting as zero beyond its edge: pad it with zeros at the end.
                    grow = [t - s for t, s in zip(target, operand_shape, strict=True)]
                    pads = np.array([0, 0, 0, 0, 0, *grow], dtype=np.int64)
                    operand = graph.node("Pad", [operand, graph.constant("pads", pads)])
                operands.append(operand)
            current = graph.node("Add", operands)
            shape = target
        elif op.kind == "mean":
            current = graph.node("Flatten", [graph.node("GlobalAveragePool", [current])])
            shape = (shape[0], 1, 1)
        elif op.kind == "fc":
            assert layer.weights is not None
            current = graph.node("MatMul", [current, graph.constant("fc", layer.weights)])
        else:
            raise AssertionError(op.kind)
    return graph.model_bytes(
        "chips", ["n", 3, CHIP_SIDE, CHIP_SIDE], current, ["n", DESCRIPTOR_DIM]
    )


@lru_cache(maxsize=2)
def _compiled(data: bytes) -> tuple[bytes, tuple[float, float, float]]:
    """The ONNX bytes and channel means of a weights file, read and written once a process:
    enrolment builds one engine per worker from the same verified bytes."""
    network = read_network(data)
    return onnx_model(network), network.channel_means


class DlibResNetRunner:
    """The network on OpenCV's DNN module, like the detector and SFace: it follows OpenCV's
    thread count (one thread a worker during enrolment, vision/cvcompat.serial_inference)."""

    def __init__(self, data: bytes) -> None:
        model, means = _compiled(data)
        self._means = np.array(means, dtype=np.float32).reshape(1, 1, 1, 3)
        cv2 = cv2_module()
        try:
            self._net = cv2.dnn.readNetFromONNX(np.frombuffer(model, np.uint8))
        except cv2.error as exc:
            raise ModelError(f"OpenCV cannot run dlib's network ({exc})") from exc

    def descriptors(self, chips: np.ndarray) -> np.ndarray:
        """(n, 150, 150, 3) RGB uint8 chips -> (n, 128) float32 descriptors, as dlib's
        `compute_face_descriptor` gives them (not normalised)."""
        planes = (chips.astype(np.float32) - self._means) / 256.0
        self._net.setInput(np.ascontiguousarray(planes.transpose(0, 3, 1, 2)))
        return np.asarray(self._net.forward(), dtype=np.float32).reshape(len(chips), -1)
