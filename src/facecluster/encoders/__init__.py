"""Encoder registry. Importing this package is cheap: backends load torch or dlib lazily."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UnknownModel
from .base import Encoder, l2_normalize

__all__ = [
    "Encoder",
    "EncoderInfo",
    "ENCODERS",
    "available",
    "encoder_identity",
    "load_encoder",
    "resolve",
    "l2_normalize",
]


@dataclass(frozen=True)
class EncoderInfo:
    name: str
    dim: int
    default_threshold: float  # squared L2 between unit vectors
    description: str
    variant: str = ""


ENCODERS: dict[str, EncoderInfo] = {
    "facenet-vggface2": EncoderInfo(
        "facenet-vggface2",
        512,
        1.1,
        "FaceNet InceptionResnetV1 trained on VGGFace2 (LFW 99.65%)",
        "vggface2",
    ),
    "facenet-casia": EncoderInfo(
        "facenet-casia",
        512,
        1.1,
        "FaceNet InceptionResnetV1 trained on CASIA-WebFace (LFW 99.05%)",
        "casia-webface",
    ),
    # 0.155: best pairwise F1 of `facecluster eval` on ../shared/data/dev (docs/design.md).
    "dlib-resnet": EncoderInfo(
        "dlib-resnet", 128, 0.155, "dlib ResNet descriptor (LFW 99.38%), offline"
    ),
}


def available(name: str, weights: Path | None = None) -> bool:
    """Whether the encoder can be loaded without a download."""
    info = ENCODERS[name]
    if info.variant:
        from .facenet_paths import find_weights

        path = find_weights(info.variant, weights)
        return path is not None and path.is_file()
    import importlib.util

    return (
        importlib.util.find_spec("dlib") is not None
        and importlib.util.find_spec("face_recognition_models") is not None
    )


def resolve(name: str, weights: Path | None = None) -> str:
    """'auto' becomes facenet-vggface2 when its weights are at hand, else dlib-resnet."""
    if name == "auto":
        return "facenet-vggface2" if available("facenet-vggface2", weights) else "dlib-resnet"
    if name not in ENCODERS:
        known = ", ".join(["auto", *ENCODERS])
        raise UnknownModel(f"unknown model {name!r}; choose one of: {known}")
    return name


def encoder_identity(name: str, weights: Path | None = None) -> dict[str, object]:
    """The identity (name, weights hash, preprocessing) of an encoder, without loading it:
    enough to tell which cached faces need embedding. Raises ModelUnavailable."""
    name = resolve(name, weights)
    info = ENCODERS[name]
    if info.variant:
        from .facenet_paths import facenet_identity, weights_for

        return facenet_identity(name, weights_for(name, info.variant, weights))
    from .dlib_resnet import dlib_identity

    return dlib_identity()


def load_encoder(name: str, weights: Path | None = None, device: str = "cpu") -> Encoder:
    name = resolve(name, weights)
    info = ENCODERS[name]
    if info.variant:
        from .facenet import FacenetEncoder

        return FacenetEncoder(name, info.variant, weights=weights, device=device)
    from .dlib_resnet import DlibResnetEncoder

    return DlibResnetEncoder()
