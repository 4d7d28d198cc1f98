"""facenet-pytorch's InceptionResnetV1 (512-D), the FaceNet network of the product.

Weights come from ``--weights``, ``$FACECLUSTER_WEIGHTS`` or facenet-pytorch's own cache
(``$TORCH_HOME/checkpoints/``); with internet access facenet-pytorch's download is used.
Preprocessing is the one the network was trained with: MTCNN box plus margin, square
resize to 160 px, fixed standardisation ``(x - 127.5) / 128``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from ..errors import ModelUnavailable
from ..records import Face
from .base import l2_normalize
from .facenet_paths import IMAGE_SIZE, MARGIN, facenet_identity, weights_for

if TYPE_CHECKING:
    from . import EncoderSpec


def load(spec: EncoderSpec, weights: Path | None = None, device: str = "cpu") -> FacenetEncoder:
    """The ``load`` hook of the facenet specs (encoders/__init__.py)."""
    return FacenetEncoder(spec.name, spec.variant, weights=weights, device=device)


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelUnavailable(
            f"cannot load weights {path}: {str(exc).splitlines()[0][:120]}"
        ) from None
    if not isinstance(state, dict):
        raise ModelUnavailable(f"{path} is not a state dict of InceptionResnetV1")
    return {k: v for k, v in state.items() if not k.startswith("logits.")}


class FacenetEncoder:
    dim = 512

    def __init__(
        self, name: str, variant: str, weights: Path | None = None, device: str = "cpu"
    ) -> None:
        from .facenet_net import InceptionResnetV1

        self.name = name
        self.variant = variant
        path = weights_for(name, variant, weights)
        state = load_state_dict(path)
        net = InceptionResnetV1()
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0][:120]
            raise ModelUnavailable(f"{path} does not fit InceptionResnetV1: {first}") from None
        self.weights_path = path
        self.device = torch.device(device)
        self._net = net.eval().to(self.device)

    @property
    def identity(self) -> dict[str, object]:
        return facenet_identity(self.name, self.weights_path)

    def prepare(self, image: np.ndarray, face: Face) -> np.ndarray:
        return crop_face(image, face.box, IMAGE_SIZE, MARGIN)

    def embed(self, chips: list[np.ndarray], batch: int = 64) -> np.ndarray:
        return embed_chips(self._net, self.device, chips, self.dim, batch)


def embed_chips(
    net: torch.nn.Module, device: torch.device, chips: list[np.ndarray], dim: int, batch: int
) -> np.ndarray:
    """InceptionResnetV1's forward on 160 px RGB chips with facenet's fixed
    standardisation ``(x - 127.5) / 128``, in batches; L2-normalised (n, dim) vectors."""
    if not chips:
        return np.zeros((0, dim), np.float32)
    out = []
    for i in range(0, len(chips), batch):
        x = torch.from_numpy(np.stack(chips[i : i + batch])).to(device)
        x = (x.permute(0, 3, 1, 2).float() - 127.5) / 128.0
        with torch.inference_mode():
            out.append(net(x).float().cpu().numpy())
    return l2_normalize(np.concatenate(out))


def crop_face(image: np.ndarray, box: np.ndarray, size: int, margin: int) -> np.ndarray:
    """facenet-pytorch's ``extract_face``: box plus margin (in output pixels), clipped to the
    image, resized to ``size`` x ``size``."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    mx = margin * (x2 - x1) / (size - margin)
    my = margin * (y2 - y1) / (size - margin)
    left, top = int(max(x1 - mx / 2, 0)), int(max(y1 - my / 2, 0))
    right, bottom = int(min(x2 + mx / 2, w)), int(min(y2 + my / 2, h))
    crop = Image.fromarray(image[top : max(bottom, top + 1), left : max(right, left + 1)])
    return np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR))
