"""dlib's face descriptor network run by torch, from the same model file.

dlib's own runtime (``compute_face_descriptor``) is single-threaded, holds the GIL and
takes about 135 ms per 150 px chip on this project's CPU; the same ResNet (29 conv
layers, 128-D output) in torch uses every core and batches. This module reads dlib's
serialised network (``dlib_face_recognition_resnet_model_v1.dat``) directly:

- integers are dlib's compact encoding (a byte whose low nibble is the length and whose
  high bit is the sign, then that many little-endian bytes), floats a mantissa and an
  exponent, strings a length and bytes, tensors ``version n k nr nc`` and raw float32;
- the network is serialised bottom-up; only the named layers carry parameters (tags
  and skips do not), so reading them in file order gives the stem (con, affine, relu,
  max_pool), 14 residual blocks (con, affine, relu, con, affine, [avg_pool,] add_prev,
  relu) and the head (avg_pool over everything, fc without bias).

The topology is dlib's ``dnn_face_recognition_ex.cpp``; ``add_prev`` adds tensors of
different sizes over their overlap (zero elsewhere), as dlib does where a strided 3x3
conv and a 2x2 average pool of an even-sized map disagree by one pixel. The port is
checked against dlib's own output (tests/test_dlib_torch.py: max difference ~1e-5).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ModelUnavailable


@dataclass
class _Layer:
    kind: str
    params: np.ndarray | None = None
    ints: tuple[int, ...] = ()


class _Reader:
    def __init__(self, data: bytes, at: int = 0) -> None:
        self.data, self.at = data, at

    def int(self) -> int:
        head = self.data[self.at]
        n = head & 0x0F
        value = int.from_bytes(self.data[self.at + 1 : self.at + 1 + n], "little")
        self.at += 1 + n
        return -value if head & 0x80 else value

    def float(self) -> float:
        mantissa = self.int()
        return float(mantissa * 2.0 ** self.int())

    def str(self) -> str:
        n = self.int()
        text = self.data[self.at : self.at + n]
        self.at += n
        return text.decode("latin-1")

    def tensor(self) -> np.ndarray:
        self.int()  # version
        n, k, nr, nc = self.int(), self.int(), self.int(), self.int()
        count = n * k * nr * nc
        out = np.frombuffer(self.data, "<f4", count, self.at).astype(np.float32)
        self.at += 4 * count
        return out.reshape(n, k, nr, nc) if count else out


_NAMES = (b"con_4", b"affine_", b"relu_", b"max_pool_2", b"avg_pool_2", b"add_prev_", b"fc_2")


def read_layers(path: Path) -> tuple[tuple[float, float, float], list[_Layer]]:
    """The input averages and the parameter-carrying layers, bottom-up."""
    data = path.read_bytes()
    start = data.find(b"input_rgb_image_sized")
    if start < 0 or not data.startswith(b"loss_metric_", 4):
        raise ModelUnavailable(f"{path} is not dlib's face recognition network")
    r = _Reader(data, start + len("input_rgb_image_sized"))
    mean = (r.float(), r.float(), r.float())
    layers: list[_Layer] = []
    at = r.at
    while True:
        hits = [(data.find(name, at), name) for name in _NAMES]
        hits = [(i, name) for i, name in hits if i >= 0]
        if not hits:
            break
        i, name = min(hits)
        # A layer name is a serialised string: one length byte pair right before it.
        r = _Reader(data, i - 2)
        kind = r.str()
        if kind.startswith("add_prev_"):
            layers.append(_Layer("add_prev"))
        elif kind.startswith("relu_"):
            layers.append(_Layer("relu"))
        elif kind == "con_4":
            params = r.tensor()
            layers.append(_Layer("con", params.reshape(-1), tuple(r.int() for _ in range(7))))
        elif kind == "affine_":
            layers.append(_Layer("affine", r.tensor().reshape(-1)))
        elif kind in ("max_pool_2", "avg_pool_2"):
            layers.append(_Layer(kind[:8], None, tuple(r.int() for _ in range(6))))
        elif kind == "fc_2":
            outputs, inputs = r.int(), r.int()
            layers.append(_Layer("fc", r.tensor().reshape(inputs, outputs), (outputs, inputs)))
        at = r.at
    return mean, layers


class DlibResNet(torch.nn.Module):
    """The descriptor network: (B, 150, 150, 3) uint8 RGB chips -> (B, 128) descriptors."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        mean, layers = read_layers(path)
        self.mean: torch.Tensor
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        convs = [x for x in layers if x.kind == "con"]
        affines = [x for x in layers if x.kind == "affine"]
        pools = [x for x in layers if x.kind in ("max_pool", "avg_pool")]
        fcs = [x for x in layers if x.kind == "fc"]
        if len(convs) != 29 or len(affines) != 29 or len(fcs) != 1 or len(pools) != 6:
            raise ModelUnavailable(f"{path}: unexpected layers for dlib's ResNet")
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        self.conv_args: list[tuple[int, int]] = []  # stride, padding
        for c in convs:
            nf, nr, nc, sy, sx, py, px = c.ints
            assert c.params is not None and sy == sx and py == px
            k = (c.params.size - nf) // (nf * nr * nc)
            w = c.params[: nf * k * nr * nc].reshape(nf, k, nr, nc)
            self.weights.append(torch.nn.Parameter(torch.from_numpy(w), requires_grad=False))
            b = c.params[nf * k * nr * nc :]
            self.biases.append(torch.nn.Parameter(torch.from_numpy(b), requires_grad=False))
            self.conv_args.append((sy, py))
        self.gammas = torch.nn.ParameterList()
        self.betas = torch.nn.ParameterList()
        for a in affines:
            assert a.params is not None
            g, b = np.split(a.params, 2)
            self.gammas.append(torch.nn.Parameter(torch.from_numpy(g).view(1, -1, 1, 1), False))
            self.betas.append(torch.nn.Parameter(torch.from_numpy(b).view(1, -1, 1, 1), False))
        self.max_pool = pools[0].ints
        # Block layout from the layer sequence: a block is "down" when an avg_pool precedes
        # its add_prev.
        self.down: list[bool] = []
        pending_pool = False
        for x in layers[4:]:
            if x.kind == "avg_pool":
                pending_pool = True
            elif x.kind == "add_prev":
                self.down.append(pending_pool)
                pending_pool = False
        self.block_pools = [p.ints for p in pools[1:-1]]
        assert fcs[0].params is not None
        self.fc = torch.nn.Parameter(torch.from_numpy(fcs[0].params.T.copy()), False)

    def _conv(self, x: torch.Tensor, i: int) -> torch.Tensor:
        stride, pad = self.conv_args[i]
        y = F.conv2d(x, self.weights[i], self.biases[i], stride=stride, padding=pad)
        return y * self.gammas[i] + self.betas[i]

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = (chips.permute(0, 3, 1, 2).float() - self.mean) / 256.0
        x = F.relu(self._conv(x, 0))
        nr, _, s, _, p, _ = self.max_pool
        x = F.max_pool2d(x, nr, s, p)
        conv, pool = 1, 0
        for down in self.down:
            y = F.relu(self._conv(x, conv))
            y = self._conv(y, conv + 1)
            conv += 2
            if down:
                nr, _, s, _, p, _ = self.block_pools[pool]
                x = F.avg_pool2d(x, nr, s, p)
                pool += 1
            x = F.relu(_add_overlap(y, x))
        return x.mean(dim=(2, 3)) @ self.fc.T


def _add_overlap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: the sum over the larger of both shapes, each zero outside itself."""
    if a.shape == b.shape:
        return a + b
    shape = [max(x, y) for x, y in zip(a.shape, b.shape, strict=True)]
    out = a.new_zeros(shape)
    out[: a.shape[0], : a.shape[1], : a.shape[2], : a.shape[3]] += a
    out[: b.shape[0], : b.shape[1], : b.shape[2], : b.shape[3]] += b
    return out


def load(path: Path, device: str = "cpu") -> Any:
    return DlibResNet(path).eval().to(device)
