"""Where facenet weights live. No torch import here: ``facecluster models`` uses it."""

from __future__ import annotations

import os
from pathlib import Path

from .. import config

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
