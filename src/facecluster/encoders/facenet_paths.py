"""Where facenet weights live. No torch import here: ``facecluster models`` uses it."""

from __future__ import annotations

import os
import tempfile
import urllib.request
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from .. import config
from ..errors import ModelUnavailable
from .base import file_sha256

if TYPE_CHECKING:
    from . import EncoderSpec

IMAGE_SIZE = 160
MARGIN = 32  # pixels of the 160 px chip, in facenet-pytorch's margin convention

RELEASE = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
WEIGHT_FILES = {
    "vggface2": "20180402-114759-vggface2.pt",
    "casia-webface": "20180408-102900-casia-webface.pt",
}


def cache_path(variant: str) -> Path:
    """facenet-pytorch's own cache file: ``$TORCH_HOME/checkpoints/<file>``."""
    return config.torch_home() / "checkpoints" / WEIGHT_FILES[variant]


def find_weights(variant: str, explicit: Path | None = None) -> Path | None:
    """The weights file to use, without downloading: an explicit file, then
    $FACECLUSTER_WEIGHTS, then facenet-pytorch's cache. None when there is none."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(config.ENV_WEIGHTS)
    if env:
        return Path(env).expanduser()
    cached = cache_path(variant)
    return cached if cached.is_file() else None


def missing_message(model: str, variant: str) -> str:
    return (
        f"{model} weights not found: put {WEIGHT_FILES[variant]} (facenet-pytorch release "
        f"v2.2.9) at {cache_path(variant)}, or pass --weights FILE / set "
        f"{config.ENV_WEIGHTS}; --model dlib-resnet works offline"
    )


def download(variant: str) -> Path | None:
    """facenet-pytorch's own download into its cache; None when offline or it fails."""
    if config.offline():
        return None
    dest = cache_path(variant)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(RELEASE + WEIGHT_FILES[variant], timeout=30) as resp:
            with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp:
                while block := resp.read(1 << 20):
                    tmp.write(block)
        os.replace(tmp.name, dest)
    except Exception:  # no network, proxy, disk: all mean "not available"
        return None
    return dest


def weights_for(model: str, variant: str, explicit: Path | None = None) -> Path:
    """The weights file, downloaded if need be; ModelUnavailable when there is none."""
    path = find_weights(variant, explicit) or download(variant)
    if path is None:
        raise ModelUnavailable(missing_message(model, variant))
    if not path.is_file():
        raise ModelUnavailable(
            f"weights file not found: {path} ({missing_message(model, variant)})"
        )
    return path


@lru_cache(maxsize=8)
def _weights_hash(path: Path) -> str:
    return file_sha256(path)[:16]


def facenet_identity(model: str, path: Path) -> dict[str, object]:
    """What defines a facenet encoder's embedding space (cheap: no torch import)."""
    return {
        "name": model,
        "weights": path.name,
        "weights_sha256": _weights_hash(path.resolve()),
        "dim": 512,
        "preprocessing": f"mtcnn box + margin {MARGIN} -> {IMAGE_SIZE}px, (x-127.5)/128",
    }


# --- the hooks of the facenet encoders' specs (encoders/__init__.py) ---------------------


def spec_identity(spec: EncoderSpec, weights: Path | None) -> dict[str, object]:
    return facenet_identity(spec.name, weights_for(spec.name, spec.variant, weights))


def spec_available(spec: EncoderSpec, weights: Path | None) -> bool:
    path = find_weights(spec.variant, weights)
    return path is not None and path.is_file()


def spec_location(spec: EncoderSpec, weights: Path | None) -> str:
    return str(cache_path(spec.variant))
