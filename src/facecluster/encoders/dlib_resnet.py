"""dlib's ResNet face descriptor (128-D, LFW 99.38%): the encoder that works offline.

Model files come from the PyPI package ``face-recognition-models`` (CC0); dlib itself from
``dlib-bin``. Alignment: MTCNN's box is mapped to the geometry of dlib's own detector box,
which is what the 5-point landmark predictor was trained on; the predictor's landmarks
then give dlib's standard 150 px chip. Each chip is embedded together with its mirror
image and the two descriptors are averaged (test-time flip), then L2-normalised. The
network runs in torch (``dlib_torch``: the same weights and descriptors, 14x faster than
dlib's runtime), with dlib's runtime as the fallback.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelUnavailable
from ..records import Face
from .base import file_sha256, l2_normalize

if TYPE_CHECKING:
    from . import EncoderSpec

PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150
CHIP_PADDING = 0.25
# MTCNN box -> dlib HOG-detector box, fitted on ../shared/data/dev (docs/design.md):
# x shifts by -3.5% of the width, y by +4.6% of the height, w x1.129, h x0.836.
BOX_MAP = (-0.035, 0.046, 1.129, 0.836)


def models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            "dlib-resnet needs the face-recognition-models package: "
            "pip install face-recognition-models dlib-bin"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def map_box(box: np.ndarray) -> tuple[int, int, int, int]:
    """An MTCNN box mapped to the box dlib's detector would draw around the same face."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    dx, dy, sw, sh = BOX_MAP
    nx, ny = x1 + dx * w, y1 + dy * h
    return round(nx), round(ny), round(nx + w * sw), round(ny + h * sh)


@lru_cache(maxsize=4)
def _weights_hash(path: Path) -> str:
    return file_sha256(path)[:16]


def dlib_identity(flip: bool = True) -> dict[str, object]:
    """What defines this encoder's embedding space (cheap: no dlib import)."""
    return {
        "name": "dlib-resnet",
        "weights": DESCRIPTOR_FILE,
        "weights_sha256": _weights_hash(models_dir() / DESCRIPTOR_FILE),
        "dim": 128,
        "preprocessing": (
            f"mtcnn box mapped {BOX_MAP} -> dlib 5-point landmarks -> "
            f"get_face_chip {CHIP_SIZE}px padding {CHIP_PADDING}"
            + (" + horizontal flip average" if flip else "")
        ),
    }


# --- the hooks of this encoder's spec (encoders/__init__.py) -----------------------------


def load(spec: EncoderSpec, weights: Path | None = None, device: str = "cpu") -> DlibResnetEncoder:
    return DlibResnetEncoder(device=device)


def spec_identity(spec: EncoderSpec, weights: Path | None) -> dict[str, object]:
    return dlib_identity()


def spec_available(spec: EncoderSpec, weights: Path | None) -> bool:
    return (
        importlib.util.find_spec("dlib") is not None
        and importlib.util.find_spec("face_recognition_models") is not None
    )


def spec_location(spec: EncoderSpec, weights: Path | None) -> str:
    return "face-recognition-models package"


class DlibResnetEncoder:
    name = "dlib-resnet"
    dim = 128

    def __init__(self, flip: bool = True, device: str = "cpu") -> None:
        d = models_dir()
        pred, desc = d / PREDICTOR_FILE, d / DESCRIPTOR_FILE
        for f in (pred, desc):
            if not f.is_file():
                raise ModelUnavailable(
                    f"dlib model file missing: {f} (reinstall face-recognition-models)"
                )
        import dlib

        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(pred))
        self._net = dlib.face_recognition_model_v1(str(desc))
        self.flip = flip
        # The same network run by torch (encoders/dlib_torch.py): identical descriptors
        # (within 1e-6), 14x faster on two cores, batched, and on the GPU when there is one.
        # dlib's own runtime stays as the fallback for a model file we cannot read.
        try:
            from .dlib_torch import load

            self._torch_net: object | None = load(desc, device)
        except ModelUnavailable:
            self._torch_net = None

    @property
    def identity(self) -> dict[str, object]:
        return dlib_identity(self.flip)

    def prepare(self, image: np.ndarray, face: Face) -> np.ndarray:
        x1, y1, x2, y2 = map_box(face.box)
        shape = self._predictor(image, self._dlib.rectangle(x1, y1, x2, y2))
        return np.asarray(
            self._dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        )

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.dim), np.float32)
        if self._torch_net is not None:
            return l2_normalize(self._embed_torch(np.stack(chips)))
        chips = [np.ascontiguousarray(c) for c in chips]
        vecs = np.asarray(self._net.compute_face_descriptor(chips), dtype=np.float32)
        if self.flip:
            mirrored = [np.ascontiguousarray(c[:, ::-1]) for c in chips]
            vecs = vecs + np.asarray(self._net.compute_face_descriptor(mirrored), np.float32)
        return l2_normalize(vecs)

    def _embed_torch(self, chips: np.ndarray, batch: int = 64) -> np.ndarray:
        import torch

        net: Any = self._torch_net
        device = net.mean.device
        out = []
        with torch.inference_mode():
            for i in range(0, len(chips), batch):
                x = torch.from_numpy(chips[i : i + batch]).to(device)
                vecs = net(x)
                if self.flip:
                    vecs = vecs + net(x.flip(2))
                out.append(vecs.float().cpu().numpy())
        return np.concatenate(out)
