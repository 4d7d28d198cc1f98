"""MTCNN's three networks and the two box operations it needs, without importing the
facenet_pytorch and torchvision packages.

Importing ``facenet_pytorch`` imports torchvision's models, and those import torch's
compiler (``torch._dynamo``): 1.7 s of a cold ``facecluster verify`` spent on code it
never runs (docs/performance.md). So the P-, R- and O-net are declared here as
facenet-pytorch declares them (same layers, same parameter names: its weight files load
as they are, found without importing the package), and NMS and RoI-align come from
torchvision's compiled operator library, loaded by itself. Where that library cannot be
found, torchvision's Python functions are used: slower to import, same results.
tests/test_mtcnn.py checks the outputs against facenet-pytorch's own networks.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ModelUnavailable


class PNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


def package_dir(name: str) -> Path | None:
    """Where an installed package lives, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def load_nets(device: torch.device, layout: torch.memory_format) -> tuple[nn.Module, ...]:
    """P-, R- and O-net with facenet-pytorch's trained weights, in eval mode on ``device``."""
    root = package_dir("facenet_pytorch")
    if root is None:
        raise ModelUnavailable("MTCNN needs the facenet-pytorch package (its weight files)")
    nets = []
    for net, name in ((PNet(), "pnet"), (RNet(), "rnet"), (ONet(), "onet")):
        path = root / "data" / f"{name}.pt"
        if not path.is_file():
            raise ModelUnavailable(f"MTCNN weights missing: {path} (reinstall facenet-pytorch)")
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        nets.append(net.eval().to(device, memory_format=layout))  # type: ignore[call-overload]
    return tuple(nets)


@lru_cache(maxsize=1)
def _ops() -> bool:
    """Load torchvision's compiled operators (torch.ops.torchvision.*) by themselves, as
    torchvision's own extension.py finds them; False where they are not found."""
    if hasattr(torch.ops.torchvision, "nms"):  # torchvision is imported already
        return True
    root = package_dir("torchvision")
    if root is None:
        return False
    finder = importlib.machinery.FileFinder(
        str(root),
        (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
    )
    for name in ("_C_stable", "_C"):  # the library's name in recent and older releases
        spec = finder.find_spec(name)
        if spec is not None and spec.origin:
            try:
                torch.ops.load_library(spec.origin)
            except (OSError, RuntimeError):
                continue
            return hasattr(torch.ops.torchvision, "nms")
    return False


def _fallback(name: str) -> Callable[..., Any]:
    from torchvision import ops  # the slow import: only where the operators were not found

    fn: Callable[..., Any] = getattr(ops, name)
    return fn


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """torchvision.ops.batched_nms: NMS within each ``idxs`` group, kept indices by
    decreasing score (its two strategies, chosen as it chooses them)."""
    if not _ops():
        return _fallback("batched_nms")(boxes, scores, idxs, iou_threshold)  # type: ignore[no-any-return]
    nms = torch.ops.torchvision.nms
    if boxes.numel() > (4000 if boxes.device.type == "cpu" else 100_000):
        keep_mask = torch.zeros_like(scores, dtype=torch.bool)
        for group in torch.unique(idxs):
            members = torch.where(idxs == group)[0]
            keep_mask[members[nms(boxes[members], scores[members], iou_threshold)]] = True
        kept = torch.where(keep_mask)[0]
        return kept[scores[kept].sort(descending=True)[1]]
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
    return nms(boxes + offsets[:, None], scores, iou_threshold)  # type: ignore[no-any-return]


def roi_align(
    image: torch.Tensor,
    rois: torch.Tensor,
    size: int,
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> torch.Tensor:
    """torchvision.ops.roi_align with rois (K, 5): batch index, x1, y1, x2, y2."""
    if not _ops():
        fn = _fallback("roi_align")
        return fn(image, rois, (size, size), spatial_scale, sampling_ratio, aligned)  # type: ignore[no-any-return]
    return torch.ops.torchvision.roi_align(  # type: ignore[no-any-return]
        image, rois, spatial_scale, size, size, sampling_ratio, aligned
    )
