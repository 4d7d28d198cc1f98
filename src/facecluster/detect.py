"""Face detection with facenet-pytorch's MTCNN, batched over photos of equal size."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from . import config
from .records import Face

# MTCNN's last stage outputs a face probability; below this we call it a false positive
# (textures, animal faces, drawn heads). Measured on ../shared/data/edge: see docs/design.md.
MIN_PROB = 0.92
# P-net cannot see faces smaller than 12 px in the image it is given.
_MTCNN_MIN_PX = 12
# Faces cut by the frame (selfies, group photos) are found far more often when the image
# is padded: on the edge selfie MTCNN finds 4 of 7 faces unpadded, 5 with 10% and 6 with
# 20% black padding on each side; no other edge photo changes (docs/design.md).
PAD_FRACTION = 0.2


def resolve_device(device: str = "auto") -> str:
    """'auto' picks CUDA, then Apple MPS, then the CPU."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


class Detector:
    """MTCNN over batches of RGB uint8 arrays. Faces come back in the array's coordinates."""

    name = "mtcnn"

    def __init__(self, device: str = "cpu", min_prob: float = MIN_PROB) -> None:
        import torch
        from facenet_pytorch import MTCNN

        self.device = device
        self.min_prob = min_prob
        self._torch = torch
        self._mtcnn = MTCNN(keep_all=True, device=torch.device(device), post_process=False)

    @property
    def identity(self) -> dict[str, object]:
        return {
            "detector": "facenet-pytorch MTCNN",
            "min_prob": self.min_prob,
            "detect_max_side": config.DETECT_MAX_SIDE,
            "pad_fraction": PAD_FRACTION,
        }

    def detect(
        self, images: Sequence[np.ndarray], min_sizes: Sequence[float] | None = None
    ) -> list[list[Face]]:
        """Detect faces in each image; images of equal size go through MTCNN as one batch.

        ``min_sizes[i]`` is the smallest face side to keep in image i, in its pixels
        (MTCNN itself cannot see faces under 12 px)."""
        sizes = list(min_sizes) if min_sizes is not None else [20.0] * len(images)
        out: list[list[Face]] = [[] for _ in images]
        groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, img in enumerate(images):
            groups[img.shape].append(i)
        for idxs in groups.values():
            smallest = min(sizes[i] for i in idxs)
            self._mtcnn.min_face_size = max(_MTCNN_MIN_PX, int(smallest))
            pad = int(round(max(images[idxs[0]].shape[:2]) * PAD_FRACTION))
            batch = np.stack([images[i] for i in idxs])
            if pad:
                batch = np.pad(batch, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
            with self._torch.inference_mode():
                boxes, probs, points = self._mtcnn.detect(batch, landmarks=True)
            for i, b, p, lm in zip(idxs, boxes, probs, points, strict=True):
                out[i] = self._faces(b, p, lm, sizes[i], pad)
        return out

    def _faces(self, boxes, probs, points, min_size: float, pad: int) -> list[Face]:
        if boxes is None:
            return []
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) - pad
        probs = np.asarray(probs, dtype=np.float32).reshape(-1)
        points = np.asarray(points, dtype=np.float32).reshape(-1, 5, 2) - pad
        faces = []
        for box, prob, lm in zip(boxes, probs, points, strict=True):
            side = min(box[2] - box[0], box[3] - box[1])
            if prob >= self.min_prob and side >= min_size:
                faces.append(Face(box=box, landmarks=lm, prob=float(prob)))
        return faces


def scale_face(face: Face, factor: float) -> Face:
    """The same face in an image ``factor`` times the size."""
    return Face(box=face.box * factor, landmarks=face.landmarks * factor, prob=face.prob)
