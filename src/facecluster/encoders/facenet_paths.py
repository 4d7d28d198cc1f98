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


class DownloadFailed(Exception):
    """Why facenet-pytorch's weights could not be downloaded (one line, for the error)."""


def download(variant: str) -> Path | None:
    """facenet-pytorch's own download into its cache; None when offline (FACECLUSTER_OFFLINE).

    Raises :class:`DownloadFailed` with the reason (no network, HTTP status, a short read,
    disk) so the error can say why; a partial file never takes the cache's name."""
    if config.offline():
        return None
    dest = cache_path(variant)
    url = RELEASE + WEIGHT_FILES[variant]
    tmp_name = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=30) as resp:
            expected = int(resp.headers.get("Content-Length") or -1)
            fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".facecluster-", suffix=".part")
            got = 0
            with os.fdopen(fd, "wb") as tmp:
                while block := resp.read(1 << 20):
                    tmp.write(block)
                    got += len(block)
        if 0 <= expected != got:
            raise DownloadFailed(f"the download stopped after {got} of {expected} bytes")
        os.replace(tmp_name, dest)
        tmp_name = None
    except DownloadFailed:
        raise
    except Exception as exc:  # no network, proxy, HTTP error, disk: say which
        reason = getattr(exc, "reason", None) or exc
        raise DownloadFailed(f"{type(exc).__name__}: {reason}") from exc
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
    return dest


def weights_for(model: str, variant: str, explicit: Path | None = None) -> Path:
    """The weights file, downloaded if need be; ModelUnavailable when there is none."""
    path = find_weights(variant, explicit)
    if path is None:
        try:
            path = download(variant)
        except DownloadFailed as exc:
            raise ModelUnavailable(
                f"{missing_message(model, variant)} (downloading {RELEASE}"
                f"{WEIGHT_FILES[variant]} failed: {exc})"
            ) from None
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
