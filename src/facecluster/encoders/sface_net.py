"""SFace's network read into torch from its ONNX file, without the onnx package.

onnxruntime refuses the int8 block-quantised graph as shipped (29 declared graph inputs no
node uses). The file is parsed by a small protobuf reader (ModelProto.graph: nodes and
initializers; TensorProto: dims, data type, raw or typed data); the quantised weights are
dequantised once (ONNX DequantizeLinear, ``(q - zero_point) * scale`` per tensor, axis or
block), Reshape and Constant nodes are folded, and each BatchNormalization is folded into
the layer next to it. The graph must be a plain chain -- input normalisation, 27
Conv/PReLU layers (depthwise and pointwise), BN, Flatten, a 50176->128 Gemm and a final
BN (Dropout is the identity at inference) -- and anything else is refused.
tests/test_sface.py checks it against OpenCV's own run of the original graph.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelUnavailable

_DTYPES = {1: np.float32, 3: np.int8, 6: np.int32, 7: np.int64}


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[at]
        at += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, at
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """The (field number, value) pairs of one protobuf message: ints for varints and fixed
    32/64-bit fields (raw bits), bytes for length-delimited fields."""
    out: list[tuple[int, int | bytes]] = []
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        field, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 2:
            n, at = _varint(data, at)
            value, at = data[at : at + n], at + n
        elif wire == 5:
            value, at = int.from_bytes(data[at : at + 4], "little"), at + 4
        elif wire == 1:
            value, at = int.from_bytes(data[at : at + 8], "little"), at + 8
        else:
            raise ValueError(f"protobuf wire type {wire}")
        out.append((field, value))
    return out


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _ints(values: list[int | bytes]) -> list[int]:
    """A repeated int64 field, packed or not."""
    out: list[int] = []
    for v in values:
        if isinstance(v, bytes):
            at = 0
            while at < len(v):
                x, at = _varint(v, at)
                out.append(_signed(x))
        else:
            out.append(_signed(v))
    return out


def _tensor(data: bytes) -> tuple[str, np.ndarray]:
    f: dict[int, list[int | bytes]] = {}
    for k, v in _fields(data):
        f.setdefault(k, []).append(v)
    name = bytes(f.get(8, [b""])[0]).decode()  # type: ignore[arg-type]
    dims = _ints(f.get(1, []))
    dtype = _DTYPES.get(int(f.get(2, [0])[0]))  # type: ignore[arg-type]
    if dtype is None:
        raise ValueError(f"tensor {name}: unsupported data type")
    if 9 in f:
        arr = np.frombuffer(bytes(f[9][0]), np.dtype(dtype).newbyteorder("<"))  # type: ignore[arg-type]
    elif dtype == np.float32:
        raw = b"".join(v if isinstance(v, bytes) else struct.pack("<I", v) for v in f.get(4, []))
        arr = np.frombuffer(raw, "<f4")
    else:
        arr = np.array(_ints(f.get(5, []) + f.get(7, [])), dtype)
    return name, arr.astype(dtype).reshape(dims)


def _attribute(data: bytes) -> tuple[str, object]:
    f: dict[int, list[int | bytes]] = {}
    for k, v in _fields(data):
        f.setdefault(k, []).append(v)
    name = bytes(f[1][0]).decode()  # type: ignore[arg-type]
    if 2 in f:
        return name, struct.unpack("<f", struct.pack("<I", f[2][0]))[0]
    if 3 in f:
        return name, _signed(int(f[3][0]))  # type: ignore[arg-type]
    if 5 in f:
        return name, _tensor(bytes(f[5][0]))[1]  # type: ignore[arg-type]
    return name, _ints(f.get(8, []))


def read_onnx(path: Path) -> tuple[list[tuple[str, list[str], str, dict[str, Any]]], dict]:
    """The nodes (op type, inputs, output, attributes) in order, and the initializers."""
    model = dict((k, v) for k, v in _fields(path.read_bytes()) if k == 7)
    graph = model.get(7)
    if not isinstance(graph, bytes):
        raise ValueError("no graph")
    nodes, consts = [], {}
    for k, v in _fields(graph):
        if k == 5 and isinstance(v, bytes):
            name, arr = _tensor(v)
            consts[name] = arr
        elif k == 1 and isinstance(v, bytes):
            nf: dict[int, list[int | bytes]] = {}
            for fk, fv in _fields(v):
                nf.setdefault(fk, []).append(fv)
            inputs = [bytes(x).decode() for x in nf.get(1, [])]  # type: ignore[arg-type]
            output = bytes(nf[2][0]).decode()  # type: ignore[arg-type]
            op = bytes(nf[4][0]).decode()  # type: ignore[arg-type]
            attrs = dict(_attribute(bytes(a)) for a in nf.get(5, []))  # type: ignore[arg-type]
            nodes.append((op, inputs, output, attrs))
    return nodes, consts


def _dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, attrs: dict) -> Any:
    """ONNX DequantizeLinear: ``(q - zero_point) * scale``, per tensor, axis or block."""
    axis, block = int(attrs.get("axis", 1)) % max(q.ndim, 1), int(attrs.get("block_size", 0))
    zp = np.zeros_like(scale) if zero is None else zero.astype(np.float32)
    if block:
        scale = np.repeat(scale, block, axis=axis).take(range(q.shape[axis]), axis=axis)
        zp = np.repeat(zp, block, axis=axis).take(range(q.shape[axis]), axis=axis)
    elif scale.ndim == 1 and scale.size > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return ((q.astype(np.float32) - zp) * scale).astype(np.float32)


def _layers(nodes: list, consts: dict) -> list[tuple[str, ...]]:
    """The graph as a chain of layers, constant parts folded: ('norm', sub, mul),
    ('conv', weight, bias, stride, pad, groups), ('prelu', slope), ('flatten',),
    ('linear', weight, bias); BatchNormalization folded into its neighbour."""
    out: list[Any] = []
    for op, inputs, output, attrs in nodes:
        arg: list[Any] = [consts.get(i) for i in inputs]
        if op == "Constant":
            consts[output] = attrs["value"]
        elif op == "DequantizeLinear" and all(a is not None for a in arg):
            consts[output] = _dequantize(arg[0], arg[1], arg[2] if len(arg) > 2 else None, attrs)
        elif op == "Reshape" and all(a is not None for a in arg):
            consts[output] = arg[0].reshape([int(d) for d in arg[1]])
        elif op == "Sub" and arg[1] is not None and not out:
            out.append(["norm", float(arg[1].ravel()[0]), 1.0])
        elif op == "Mul" and arg[1] is not None and out and out[-1][0] == "norm":
            out[-1][2] *= float(arg[1].ravel()[0])
        elif op == "Conv" and arg[1] is not None and set(attrs.get("dilations", [1])) == {1}:
            w = arg[1]
            bias = arg[2] if len(arg) > 2 else np.zeros(len(w), np.float32)
            stride, pad = attrs.get("strides", [1, 1]), attrs.get("pads", [0, 0, 0, 0])
            if len(set(stride)) != 1 or len(set(pad)) != 1:
                raise ValueError("asymmetric Conv")
            out.append(["conv", w, bias, stride[0], pad[0], int(attrs.get("group", 1))])
        elif op == "BatchNormalization" and all(a is not None for a in arg[1:]):
            gamma, beta, mean, var = arg[1:5]
            s = gamma / np.sqrt(var + float(attrs.get("epsilon", 1e-5)))
            _fold_affine(out, s.astype(np.float32), (beta - mean * s).astype(np.float32))
        elif op == "PRelu" and arg[1] is not None:
            out.append(["prelu", arg[1].reshape(-1)])
        elif op == "Flatten" and int(attrs.get("axis", 1)) == 1:
            out.append(["flatten"])
        elif op == "Gemm" and arg[1] is not None and attrs.get("transB") == 1:
            if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
                raise ValueError("Gemm with alpha or beta")
            w, b = arg[1], arg[2] if len(arg) > 2 else np.zeros(len(arg[1]), np.float32)
            if len(out) >= 2 and out[-1][0] == "flatten" and out[-2][0] == "affine":
                _, s, t = out.pop(-2)  # BN before the flatten: into the linear layer's input
                reps = w.shape[1] // len(s)
                w, b = w * np.repeat(s, reps)[None], b + w @ np.repeat(t, reps)
            out.append(["linear", w.astype(np.float32), b.astype(np.float32)])
        elif op == "Dropout":  # identity at inference
            pass
        else:
            raise ValueError(f"unexpected {op} node")
    return [tuple(x) for x in out]


def _fold_affine(out: list, s: np.ndarray, t: np.ndarray) -> None:
    """A per-channel ``x * s + t`` after the last layer: into a conv or linear layer's
    weights when it follows one, else kept as its own layer."""
    last = out[-1] if out else None
    if last is not None and last[0] in ("conv", "linear"):
        w = last[1]
        last[1] = (w * s.reshape([-1] + [1] * (w.ndim - 1))).astype(np.float32)
        last[2] = (last[2] * s + t).astype(np.float32)
    else:
        out.append(["affine", s, t])


class SfaceNet:
    """The chain of layers on one device: (B, 3, 112, 112) float RGB 0..255 -> (B, 128)."""

    def __init__(self, layers: list[tuple[str, ...]], device: str = "cpu") -> None:
        import torch

        kinds = [x[0] for x in layers]
        if (
            kinds[:1] != ["norm"]
            or kinds[-2:] != ["flatten", "linear"]
            or kinds[1:-2] != ["conv", "prelu"] * ((len(kinds) - 3) // 2)
            or len(kinds) < 5
        ):
            raise ValueError("not the SFace layer chain")
        self.device = torch.device(device)
        # Depthwise and pointwise convolutions run ~2x faster channels-last on the CPU.
        self.layout = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format

        def t(a: Any) -> Any:
            x = torch.from_numpy(np.ascontiguousarray(a)).to(self.device)
            return x.contiguous(memory_format=self.layout) if x.ndim == 4 else x

        self.mean, self.scale = float(layers[0][1]), float(layers[0][2])
        self.convs = [
            (t(c[1]), t(c[2]), int(c[3]), int(c[4]), int(c[5]), t(p[1]))
            for c, p in zip(layers[1:-2:2], layers[2:-2:2], strict=True)
        ]
        self.fc_w, self.fc_b = t(layers[-1][1]), t(layers[-1][2])
        if self.fc_w.shape[0] != 128:
            raise ValueError("not a 128-D embedding")

    def __call__(self, x: Any) -> Any:
        import torch.nn.functional as F

        x = ((x - self.mean) * self.scale).contiguous(memory_format=self.layout)
        for w, b, stride, pad, groups, slope in self.convs:
            x = F.prelu(F.conv2d(x, w, b, stride, pad, 1, groups), slope)
        return F.linear(x.flatten(1), self.fc_w, self.fc_b)


@lru_cache(maxsize=2)
def load_network(path: Path, device: str = "cpu") -> SfaceNet:
    """The network of the SFace model file. Raises ModelUnavailable for a file that is not
    the chain this module knows."""
    try:
        nodes, consts = read_onnx(path)
        return SfaceNet(_layers(nodes, consts), device)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ModelUnavailable(f"{path}: not a readable SFace model ({exc})") from None
