"""MTCNN (Zhang et al. 2016) with facenet-pytorch's trained P-, R- and O-nets.

The three stages and their thresholds are facenet-pytorch's ``detect_face``; what differs
is how the work is done (docs/performance.md measures each change):

- Faces cut by the frame: each pyramid level gets a fixed border of black pixels
  (``LEVEL_PAD``, about one face of that level) instead of padding the whole photo, and
  the R-/O-net crops are taken with zero fill outside the photo instead of being clipped
  and stretched. Same effect on cut faces, a fraction of the pixels.
- R-/O-net inputs are cut with one batched ``roi_align`` call per stage instead of one
  ``interpolate`` call per candidate box (thousands on a textured photo).
- Pyramid levels come from an antialiased bilinear resize (3x cheaper than the area
  resize of facenet-pytorch).
- Every stage runs on the whole batch of equal-size images at once, in channels-last
  layout (twice as fast on the CPU).

- The networks are declared in ``mtcnn_nets`` (facenet-pytorch's layers and weight files)
  and NMS and RoI-align come from torchvision's compiled operators, so loading MTCNN
  imports neither the facenet_pytorch nor the torchvision package (1.7 s saved at start).

Torch is imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from .records import Timings

if TYPE_CHECKING:
    import torch

THRESHOLDS = (0.6, 0.7, 0.7)
FACTOR = 0.709
# Black border around each pyramid level, in that level's pixels. P-net sees 12-17 px
# faces at a level, so 10 px lets it find a face with up to half of it outside the frame.
LEVEL_PAD = 10
_CHUNK = 512  # R-/O-net batch: bounds memory on photos with thousands of candidates



class Mtcnn:
    """The three networks on one device."""

    def __init__(self, device: str = "cpu") -> None:
        import torch

        from .mtcnn_nets import load_nets

        self.device = torch.device(device)
        # Channels-last convolutions are twice as fast on the CPU (oneDNN) for these small
        # nets (docs/performance.md); MPS keeps the default layout.
        self.layout = (
            torch.channels_last if self.device.type in ("cpu", "cuda") else torch.contiguous_format
        )
        self.pnet, self.rnet, self.onet = load_nets(self.device, self.layout)

    def detect(
        self, images: np.ndarray, min_face: float, timings: Timings | None = None
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Faces in a batch of equal-size RGB uint8 images, shape (B, H, W, 3).

        Returns per image ``(boxes (n, 4) x1 y1 x2 y2, probs (n,), landmarks (n, 5, 2))``
        in the image's pixels; ``min_face`` (>= 12) is the smallest face side searched."""
        import torch

        t = timings if timings is not None else {}
        with torch.inference_mode():
            arr = np.ascontiguousarray(images)
            if not arr.flags.writeable:  # a view of a decoded PIL image: torch wants to own it
                arr = arr.copy()
            x = torch.from_numpy(arr).to(self.device)
            x = x.permute(0, 3, 1, 2).float()
            start = time.perf_counter()
            boxes, inds = self._stage1(x, max(12.0, float(min_face)))
            _tick(t, "detect.pnet", start)
            start = time.perf_counter()
            boxes, inds = self._stage2(x, boxes, inds)
            _tick(t, "detect.rnet", start)
            start = time.perf_counter()
            boxes, inds, points = self._stage3(x, boxes, inds)
            _tick(t, "detect.onet", start)
            b, ind, pts = boxes.cpu().numpy(), inds.cpu().numpy(), points.cpu().numpy()
        return [(b[ind == i, :4], b[ind == i, 4], pts[ind == i]) for i in range(len(images))]

    # -- stages ---------------------------------------------------------------------------
    def _stage1(self, x: torch.Tensor, min_face: float) -> tuple[torch.Tensor, torch.Tensor]:
        import torch
        import torch.nn.functional as F

        from .mtcnn_nets import batched_nms

        h, w = x.shape[2:]
        scales = pyramid(h, w, min_face)
        boxes, inds = [], []
        for scale in scales:
            size = (int(h * scale + 1), int(w * scale + 1))
            level = F.interpolate(
                x, size=size, mode="bilinear", antialias=True, align_corners=False
            )
            level = F.pad((level - 127.5) * 0.0078125, (LEVEL_PAD,) * 4, value=-127.5 * 0.0078125)
            reg, probs = self.pnet(level.contiguous(memory_format=self.layout))
            found = candidates(reg, probs[:, 1], scale, THRESHOLDS[0])
            if found[0].shape[0]:
                keep = batched_nms(found[0][:, :4], found[0][:, 4], found[1], 0.5)
                boxes.append(found[0][keep])
                inds.append(found[1][keep])
        if not boxes:
            return torch.zeros((0, 9), device=x.device), torch.zeros(0, dtype=torch.long)
        box, ind = torch.cat(boxes), torch.cat(inds)
        keep = batched_nms(box[:, :4], box[:, 4], ind, 0.7)
        box, ind = box[keep], ind[keep]
        bw, bh = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
        reg = box[:, 5:9] * torch.stack([bw, bh, bw, bh], dim=1)
        return square(torch.cat([box[:, :4] + reg, box[:, 4:5]], dim=1)), ind

    def _stage2(
        self, x: torch.Tensor, boxes: torch.Tensor, inds: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        from .mtcnn_nets import batched_nms

        if boxes.shape[0] == 0:
            return boxes, inds
        reg, prob = _run(self.rnet, crops(x, boxes, inds, 24).contiguous(memory_format=self.layout))
        score = prob[:, 1]
        ok = score > THRESHOLDS[1]
        boxes = _with_score(boxes[ok], score[ok])
        inds, reg = inds[ok], reg[ok]
        keep = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        return square(regress(boxes[keep], reg[keep])), inds[keep]

    def _stage3(
        self, x: torch.Tensor, boxes: torch.Tensor, inds: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        import torch

        if boxes.shape[0] == 0:
            return boxes, inds, torch.zeros((0, 5, 2), device=x.device)
        chips = crops(x, boxes, inds, 48).contiguous(memory_format=self.layout)
        reg, marks, prob = _run(self.onet, chips)
        score = prob[:, 1]
        ok = score > THRESHOLDS[2]
        boxes, inds, reg, marks = _with_score(boxes[ok], score[ok]), inds[ok], reg[ok], marks[ok]
        bw = (boxes[:, 2] - boxes[:, 0] + 1).unsqueeze(1)
        bh = (boxes[:, 3] - boxes[:, 1] + 1).unsqueeze(1)
        px = bw * marks[:, :5] + boxes[:, 0:1] - 1
        py = bh * marks[:, 5:10] + boxes[:, 1:2] - 1
        points = torch.stack([px, py], dim=2)
        boxes = regress(boxes, reg)
        keep = torch.as_tensor(
            nms_min(boxes[:, :4].cpu().numpy(), boxes[:, 4].cpu().numpy(), inds.cpu().numpy())
        ).to(boxes.device)
        return boxes[keep], inds[keep], points[keep]


# -- pure helpers -----------------------------------------------------------------------------
def pyramid(h: int, w: int, min_face: float) -> list[float]:
    """Scales at which P-net (12 px window) sees faces from ``min_face`` px upwards."""
    m = 12.0 / min_face
    scales, side = [], min(h, w) * m
    scale = m
    while side >= 12:
        scales.append(scale)
        scale *= FACTOR
        side *= FACTOR
    return scales


def candidates(
    reg: torch.Tensor, prob: torch.Tensor, scale: float, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """P-net cells over ``threshold`` as boxes (x1 y1 x2 y2 score dx1 dy1 dx2 dy2) in the
    unpadded image's pixels, with the index of their image."""
    import torch

    mask = prob >= threshold
    where = mask.nonzero()
    inds = where[:, 0]
    score = prob[mask]
    offsets = reg.permute(0, 2, 3, 1)[mask]
    cell = where[:, [2, 1]].to(reg.dtype)  # x, y of the 12 px window, stride 2
    q1 = ((2 * cell + 1 - LEVEL_PAD) / scale).floor()
    q2 = ((2 * cell + 12 - LEVEL_PAD) / scale).floor()
    return torch.cat([q1, q2, score.unsqueeze(1), offsets], dim=1), inds


def square(boxes: torch.Tensor) -> torch.Tensor:
    """Each box grown to a square about its centre (facenet-pytorch's ``rerec``)."""
    boxes = boxes.clone()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = w.maximum(h)
    boxes[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    boxes[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    boxes[:, 2] = boxes[:, 0] + side
    boxes[:, 3] = boxes[:, 1] + side
    return boxes


def regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Apply R-/O-net box offsets (facenet-pytorch's ``bbreg``)."""
    import torch

    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out = boxes.clone()
    out[:, :4] = boxes[:, :4] + reg[:, :4] * torch.stack([w, h, w, h], dim=1)
    return out


def crops(x: torch.Tensor, boxes: torch.Tensor, inds: torch.Tensor, size: int) -> torch.Tensor:
    """``size`` x ``size`` crops of each box, averaged over the box like an area resize;
    outside the image they read black. Normalised for the networks.

    A box is sampled, one bilinear sample per output pixel, from the level of a 2x
    average-pooled pyramid of ``x`` where it is ``size`` to ``2 * size`` pixels wide (or
    level 0 when smaller): close to an area resize, at a fixed cost per box whatever its
    size. (Sampling the next level, where the box is under ``size``, blurs: it cost the
    edge selfie a face cut by the frame.)"""
    import torch
    import torch.nn.functional as F

    from .mtcnn_nets import roi_align

    out = torch.empty((boxes.shape[0], x.shape[1], size, size), device=x.device)
    side = (boxes[:, 2:4] - boxes[:, 0:2]).amax(dim=1)
    level_of = (side / size).clamp(min=1).log2().floor().long()
    image, level = x, 0
    while True:
        pick = (level_of == level).nonzero().squeeze(1)
        if pick.numel():
            # facenet-pytorch crops pixels [trunc(x1) - 1, trunc(x2)): the box, unclipped.
            b = boxes[pick]
            rois = torch.cat([inds[pick].to(x.dtype).unsqueeze(1), b[:, :2] - 1, b[:, 2:4]], 1)
            scale = 1.0 / 2**level
            out[pick] = roi_align(image, rois, size, scale, 1, aligned=True)
        if level >= int(level_of.max()) or min(image.shape[2:]) < 2:
            break
        image, level = F.avg_pool2d(image, 2, ceil_mode=True), level + 1
    return (out - 127.5) * 0.0078125


def nms_min(boxes: np.ndarray, scores: np.ndarray, inds: np.ndarray, threshold: float = 0.7):
    """Non-maximum suppression per image with overlap = intersection / smaller area."""
    keep: list[int] = []
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    for image in np.unique(inds):
        order = np.flatnonzero(inds == image)
        order = order[np.argsort(-scores[order], kind="stable")]
        while order.size:
            i, rest = order[0], order[1:]
            keep.append(int(i))
            xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
            yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
            xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
            yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
            inter = np.maximum(0.0, xx2 - xx1 + 1) * np.maximum(0.0, yy2 - yy1 + 1)
            order = rest[inter / np.minimum(area[i], area[rest]) <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _with_score(boxes: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.cat([boxes[:, :4], score.unsqueeze(1)], dim=1)


def _run(net: Any, data: torch.Tensor) -> tuple[torch.Tensor, ...]:
    import torch

    outs = [net(data[i : i + _CHUNK]) for i in range(0, data.shape[0], _CHUNK)]
    return tuple(torch.cat(parts) for parts in zip(*outs, strict=True))


def _tick(timings: Timings, key: str, start: float) -> None:
    timings[key] = timings.get(key, 0.0) + time.perf_counter() - start
