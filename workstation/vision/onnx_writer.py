"""Write a small ONNX model (the protobuf bytes) without the `onnx` package.

Why not `onnx`: the only model built here is dlib's ResNet (vision/dlib_network.py), run by
OpenCV's DNN module, which reads ONNX bytes itself. `onnx` and onnxruntime are not in the
installer (109 MB together, only the optional insightface backend uses them), and what a
graph of convolutions, pools, additions and one matrix product needs from the format is a
dozen protobuf fields. Field numbers are those of onnx.proto (ONNX IR version 8); the tests
parse the bytes with the real `onnx` package and run its checker.

Protobuf wire format used: varint fields (wire type 0) and length-delimited fields (wire type 2,
for strings, bytes and nested messages); repeated integers are written packed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

IR_VERSION = 8
OPSET = 13
_FLOAT = 1  # TensorProto.DataType
_INT64 = 7
_ATTRIBUTE_INTS = 7  # AttributeProto.AttributeType


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 in two's complement, as protobuf writes it
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _text_field(number: int, text: str) -> bytes:
    return _bytes_field(number, text.encode("utf-8"))


def _packed_ints(number: int, values: list[int]) -> bytes:
    return _bytes_field(number, b"".join(_varint(v) for v in values))


def _tensor(name: str, array: np.ndarray) -> bytes:
    if array.dtype == np.float32:
        data_type = _FLOAT
    elif array.dtype == np.int64:
        data_type = _INT64
    else:
        raise TypeError(f"{name}: no ONNX type for {array.dtype}")
    return b"".join(
        [
            _packed_ints(1, [int(d) for d in array.shape]),  # dims
            _int_field(2, data_type),
            _text_field(8, name),
            _bytes_field(
                9, np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
            ),
        ]
    )


def _value_info(name: str, dims: list[int | str]) -> bytes:
    shape = b"".join(
        _bytes_field(1, _text_field(2, d) if isinstance(d, str) else _int_field(1, d)) for d in dims
    )
    tensor_type = _int_field(1, _FLOAT) + _bytes_field(2, shape)
    return _text_field(1, name) + _bytes_field(2, _bytes_field(1, tensor_type))


@dataclass
class OnnxGraph:
    """Nodes and weights added in order; `model_bytes` gives the serialised ModelProto."""

    name: str
    nodes: list[bytes] = field(default_factory=list)
    initialisers: list[bytes] = field(default_factory=list)
    _count: int = 0

    def fresh(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def constant(self, prefix: str, array: np.ndarray) -> str:
        name = self.fresh(prefix)
        self.initialisers.append(_tensor(name, array))
        return name

    def node(self, op_type: str, inputs: list[str], **attributes: list[int]) -> str:
        """Add a node with integer-list attributes; returns the name of its one output."""
        output = self.fresh(op_type.lower())
        parts = [_text_field(1, name) for name in inputs]
        parts += [_text_field(2, output), _text_field(3, output), _text_field(4, op_type)]
        for key, values in attributes.items():
            attribute = _text_field(1, key) + _packed_ints(8, values)
            parts.append(_bytes_field(5, attribute + _int_field(20, _ATTRIBUTE_INTS)))
        self.nodes.append(b"".join(parts))
        return output

    def model_bytes(
        self,
        input_name: str,
        input_dims: list[int | str],
        output: str,
        output_dims: list[int | str],
    ) -> bytes:
        graph = b"".join(
            [
                *(_bytes_field(1, node) for node in self.nodes),
                _text_field(2, self.name),
                *(_bytes_field(5, tensor) for tensor in self.initialisers),
                _bytes_field(11, _value_info(input_name, input_dims)),
                _bytes_field(12, _value_info(output, output_dims)),
            ]
        )
        opset = _text_field(1, "") + _int_field(2, OPSET)
        return _int_field(1, IR_VERSION) + _bytes_field(8, opset) + _bytes_field(7, graph)
