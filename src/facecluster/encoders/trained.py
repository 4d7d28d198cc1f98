"""Encoders made by ``facecluster train``: model files, their identity, and loading.

A model file is ``torch.save`` of a plain dict that ``torch.load(weights_only=True)``
reads back (strings and tensors only)::

    {"format": "facecluster-model", "version": 1,
     "meta": JSON text: name, architecture, base, base_identity, dim, threshold,
             preprocessing, training (mode, margin, mining, P, K, epochs, ...), metrics,
     "state_dict": {parameter name: tensor}}

Architectures: ``residual-head`` (a projection over a frozen base encoder's embeddings:
``normalize(x + W2 relu(W1 x + b1) + b2)``, or ``normalize(x + W x + b)`` without a hidden
layer; the last layer starts at zero so an untrained head is the base encoder) and
``inception-resnet-v1`` (facenet-pytorch's network, fine-tuned or trained from scratch).

A trained encoder is named ``<base>+<name>`` (``scratch+<name>`` without a base). It is
used by file (``--model path/to/file.pt``) or by name, from ``$XDG_DATA_HOME/facecluster/
models/<base>+<name>.pt``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import config
from ..errors import ModelUnavailable
from ..records import Face
from .base import Encoder, file_sha256, l2_normalize

if TYPE_CHECKING:
    from . import EncoderSpec

FORMAT = "facecluster-model"
VERSION = 1
ARCH_HEAD = "residual-head"
ARCH_FACENET = "inception-resnet-v1"


def models_dir() -> Path:
    return config.data_dir() / "models"


def is_model_path(name: str) -> bool:
    return name.endswith(".pt") or os.sep in name


def path_for(name: str) -> Path:
    """The file a trained encoder's name or path refers to."""
    if is_model_path(name):
        return Path(name).expanduser()
    return models_dir() / f"{name}.pt"


@dataclass(frozen=True)
class ModelFile:
    path: Path
    meta: dict[str, Any]
    state: dict[str, torch.Tensor] = field(repr=False)
    sha256: str

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def architecture(self) -> str:
        return str(self.meta["architecture"])

    @property
    def base(self) -> str:
        return str(self.meta.get("base") or "")

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"])

    def identity(self) -> dict[str, object]:
        return {
            "name": self.name,
            "architecture": self.architecture,
            "base": self.meta.get("base_identity"),
            "weights": self.path.name,
            "weights_sha256": self.sha256,
            "dim": self.dim,
            "preprocessing": self.meta.get("preprocessing", ""),
        }


def save_model(path: Path, meta: dict[str, Any], state: dict[str, torch.Tensor]) -> None:
    """Write a model file atomically (a crash never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "format": FORMAT,
        "version": VERSION,
        "meta": json.dumps(meta, sort_keys=True),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in state.items()},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)


def read_model(path: Path) -> ModelFile:
    """Load a model file with ``torch.load(weights_only=True)``. Raises ModelUnavailable.

    The last few files read are kept (keyed by path, mtime and size: a rewritten file is
    read again); a fine-tuned network is ~100 MB, so only a few."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        raise ModelUnavailable(f"model file not found: {path}") from None
    return _read_model(path, str(path.resolve()), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=4)
def _read_model(path: Path, resolved: str, mtime_ns: int, size: int) -> ModelFile:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise ModelUnavailable(f"cannot load model file {path}: {first}") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ModelUnavailable(f"{path} is not a facecluster model file (facecluster train)")
    if int(blob.get("version", 0)) > VERSION:
        raise ModelUnavailable(f"{path} was written by a newer facecluster; upgrade")
    meta = json.loads(blob["meta"])
    return ModelFile(path, meta, dict(blob["state_dict"]), file_sha256(path)[:16])


def installed() -> list[Path]:
    """Model files in the models folder (usable by name)."""
    d = models_dir()
    return sorted(d.glob("*.pt")) if d.is_dir() else []


class HeadNet(torch.nn.Module):
    """Residual projection of unit embeddings; an identity map until trained."""

    def __init__(self, dim: int, hidden: int = 0) -> None:
        super().__init__()
        self.dim, self.hidden = dim, hidden
        if hidden:
            self.body: torch.nn.Module = torch.nn.Sequential(
                torch.nn.Linear(dim, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, dim)
            )
            last = self.body[2]
        else:
            self.body = last = torch.nn.Linear(dim, dim)
        assert isinstance(last, torch.nn.Linear)
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(x + self.body(x), dim=1)


def head_from(mf: ModelFile) -> HeadNet:
    net = HeadNet(mf.dim, int(mf.meta.get("hidden", 0)))
    try:
        net.load_state_dict(mf.state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0][:120]
        raise ModelUnavailable(f"{mf.path} does not fit its head: {first}") from None
    return net.eval()


class HeadEncoder:
    """A base encoder followed by a trained projection."""

    def __init__(self, mf: ModelFile, base: Encoder, device: str = "cpu") -> None:
        self.name = mf.name
        self.dim = mf.dim
        self.model = mf
        self.base = base
        self.device = torch.device(device)
        self._net = head_from(mf).to(self.device)
        self._identity = mf.identity()

    @property
    def identity(self) -> dict[str, object]:
        return self._identity

    def prepare(self, image: np.ndarray, face: Face) -> np.ndarray:
        return self.base.prepare(image, face)

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        return self.project(self.base.embed(chips))

    def project(self, vectors: np.ndarray) -> np.ndarray:
        """The head applied to base embeddings (e.g. those already in the cache)."""
        if len(vectors) == 0:
            return np.zeros((0, self.dim), np.float32)
        x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(self.device)
        with torch.inference_mode():
            return l2_normalize(self._net(x).float().cpu().numpy())


class TrainedFacenetEncoder:
    """InceptionResnetV1 with weights from ``facecluster train --mode finetune|scratch``."""

    def __init__(self, mf: ModelFile, device: str = "cpu") -> None:
        from facenet_pytorch import InceptionResnetV1

        self.name, self.dim, self.model = mf.name, mf.dim, mf
        net = InceptionResnetV1(pretrained=None, classify=False)
        try:
            net.load_state_dict(mf.state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0][:120]
            raise ModelUnavailable(f"{mf.path} does not fit InceptionResnetV1: {first}") from None
        self.device = torch.device(device)
        self._net = net.eval().to(self.device)
        self._identity = mf.identity()

    @property
    def identity(self) -> dict[str, object]:
        return self._identity

    def prepare(self, image: np.ndarray, face: Face) -> np.ndarray:
        from .facenet import crop_face
        from .facenet_paths import IMAGE_SIZE, MARGIN

        return crop_face(image, face.box, IMAGE_SIZE, MARGIN)

    def embed(self, chips: list[np.ndarray], batch: int = 64) -> np.ndarray:
        from .facenet import embed_chips

        return embed_chips(self._net, self.device, chips, self.dim, batch)


# --- the hooks of a trained model's spec (encoders/__init__.py) --------------------------


def load(spec: EncoderSpec, weights: Path | None = None, device: str = "cpu") -> Encoder:
    """A head over its base encoder, or a trained InceptionResnetV1."""
    from . import check_base, load_encoder

    mf = read_model(Path(spec.path))
    if mf.architecture == ARCH_HEAD:
        base = load_encoder(mf.base, weights, device)
        check_base(mf.meta.get("base_identity"), base.identity, mf.path)
        return HeadEncoder(mf, base, device)
    return TrainedFacenetEncoder(mf, device)


def spec_identity(spec: EncoderSpec, weights: Path | None) -> dict[str, object]:
    from . import check_base, encoder_identity

    mf = read_model(Path(spec.path))
    if mf.architecture == ARCH_HEAD:
        check_base(mf.meta.get("base_identity"), encoder_identity(mf.base, weights), mf.path)
    return mf.identity()


def spec_available(spec: EncoderSpec, weights: Path | None) -> bool:
    from . import available

    mf = read_model(Path(spec.path))
    return mf.architecture != ARCH_HEAD or available(mf.base, weights)


def spec_location(spec: EncoderSpec, weights: Path | None) -> str:
    return spec.path
