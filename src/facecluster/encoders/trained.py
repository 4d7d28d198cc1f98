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
import math
import os
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import config
from ..errors import ModelUnavailable, TrainingError
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
    tmp: Path | None = None
    try:
        # A new file of our own beside the target, then one atomic rename.
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        torch.save(blob, tmp)
        os.chmod(tmp, 0o644)  # as a file written the ordinary way (mkstemp makes 0600)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch reports a full disk as RuntimeError
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0][:120]
        raise TrainingError(f"cannot write the model file {path}: {reason}") from None


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
    version = blob.get("version", 0)
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise ModelUnavailable(f"{path} was written by a newer facecluster; upgrade")
    try:
        meta, state = _checked(blob)
    except ValueError as exc:
        raise ModelUnavailable(
            f"{path} is not a usable facecluster model file: {exc}; train it again with "
            "'facecluster train'"
        ) from None
    return ModelFile(path, meta, state, file_sha256(path)[:16])


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _checked(blob: dict[str, Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The meta and state dict of a model file, every field the loaders use checked
    (a hand-edited or truncated file is a ValueError saying what is wrong, never a
    KeyError or a network the size of the disk)."""
    if not _is_int(blob.get("version", 0)):
        raise ValueError("'version' is not a number")
    raw = blob.get("meta")
    if not isinstance(raw, str):
        raise ValueError("'meta' is missing or not JSON text")
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"'meta' is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError("'meta' is not a JSON object")
    name, arch = meta.get("name"), meta.get("architecture")
    if not isinstance(name, str) or not name or not name.isprintable():
        raise ValueError("meta 'name' is missing or not a printable string")
    if arch not in (ARCH_HEAD, ARCH_FACENET):
        raise ValueError(f"meta 'architecture' must be {ARCH_HEAD} or {ARCH_FACENET}")
    dim, hidden, threshold = meta.get("dim"), meta.get("hidden", 0), meta.get("threshold")
    if not (isinstance(dim, int) and _is_int(dim) and 1 <= dim <= 4096) or (
        arch == ARCH_FACENET and dim != 512
    ):
        raise ValueError("meta 'dim' is not a valid embedding size")
    if not (isinstance(hidden, int) and _is_int(hidden) and 0 <= hidden <= 65536):
        raise ValueError("meta 'hidden' is not a valid layer size")
    if (
        not isinstance(threshold, int | float)
        or isinstance(threshold, bool)
        or not math.isfinite(threshold)
        or not 0 < threshold <= 4
    ):
        raise ValueError("meta 'threshold' is not a squared L2 distance in (0, 4]")
    base, base_identity = meta.get("base"), meta.get("base_identity")
    if base is not None and not isinstance(base, str):
        raise ValueError("meta 'base' is not a string")
    if base_identity is not None and not isinstance(base_identity, dict):
        raise ValueError("meta 'base_identity' is not a JSON object")
    if arch == ARCH_HEAD and (not base or base_identity is None):
        raise ValueError("a head model needs meta 'base' and 'base_identity'")
    if not isinstance(meta.get("preprocessing", ""), str):
        raise ValueError("meta 'preprocessing' is not a string")
    state = blob.get("state_dict")
    if not isinstance(state, dict) or not state:
        raise ValueError("'state_dict' is missing or empty")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError("'state_dict' does not map parameter names to tensors")
    return meta, dict(state)


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
        from .facenet_net import InceptionResnetV1

        self.name, self.dim, self.model = mf.name, mf.dim, mf
        net = InceptionResnetV1()
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
