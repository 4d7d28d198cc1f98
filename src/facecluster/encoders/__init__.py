"""Encoder registry. Importing this package is cheap: backends load torch or dlib lazily.

Besides the built-in encoders, ``resolve`` accepts encoders made by ``facecluster train``:
a model file (``path/to/file.pt``) or the name of one in the models folder
(``dlib-resnet+friends``); it registers them in ``ENCODERS`` so that callers look them up
like the others.
"""

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
    path: str = ""  # model file of a trained encoder (facecluster train)


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
    if info.path:
        from .trained import ARCH_HEAD, read_model

        mf = read_model(Path(info.path))
        return mf.architecture != ARCH_HEAD or available(mf.base, weights)
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
    if name in ENCODERS:  # built in, or a trained model this process already resolved
        return name
    if "+" in name or name.endswith(".pt") or "/" in name:
        return register_trained(name)
    known = ", ".join(["auto", *(n for n, i in ENCODERS.items() if not i.path)])
    raise UnknownModel(
        f"unknown model {name!r}; choose one of: {known}, a trained model "
        "(BASE+NAME) or a model file"
    )


def register_trained(name: str) -> str:
    """Read a trained model (by file or name), add it to ENCODERS, return its name."""
    from .trained import is_model_path, path_for, read_model

    path = path_for(name)
    if not path.is_file():
        where = "" if is_model_path(name) else f" (looked for {path})"
        raise UnknownModel(f"no trained model {name!r}{where}")
    mf = read_model(path)
    if mf.base and mf.base in ENCODERS and ENCODERS[mf.base].path:
        raise UnknownModel(f"{path}: base {mf.base!r} is itself a trained model")
    desc = f"trained by facecluster train ({mf.meta.get('mode', mf.architecture)})"
    ENCODERS[mf.name] = EncoderInfo(mf.name, mf.dim, mf.threshold, desc, "", str(path.resolve()))
    return mf.name


def encoder_identity(name: str, weights: Path | None = None) -> dict[str, object]:
    """The identity (name, weights hash, preprocessing) of an encoder, without loading it:
    enough to tell which cached faces need embedding. Raises ModelUnavailable."""
    name = resolve(name, weights)
    info = ENCODERS[name]
    if info.path:
        from .trained import ARCH_HEAD, read_model

        mf = read_model(Path(info.path))
        if mf.architecture == ARCH_HEAD:
            check_base(mf.meta.get("base_identity"), encoder_identity(mf.base, weights), mf.path)
        return mf.identity()
    if info.variant:
        from .facenet_paths import facenet_identity, weights_for

        return facenet_identity(name, weights_for(name, info.variant, weights))
    from .dlib_resnet import dlib_identity

    return dlib_identity()


def check_base(trained_on: object, current: dict[str, object], path: Path) -> None:
    """A head only fits the exact base encoder (weights, preprocessing) it was trained on."""
    if trained_on != current:
        raise UnknownModel(
            f"{path} was trained over another {current.get('name')} (weights or "
            "preprocessing differ); pass the --weights it was trained with"
        )


def load_encoder(name: str, weights: Path | None = None, device: str = "cpu") -> Encoder:
    name = resolve(name, weights)
    info = ENCODERS[name]
    if info.path:
        from .trained import ARCH_HEAD, HeadEncoder, TrainedFacenetEncoder, read_model

        mf = read_model(Path(info.path))
        if mf.architecture == ARCH_HEAD:
            base = load_encoder(mf.base, weights, device)
            check_base(mf.meta.get("base_identity"), base.identity, mf.path)
            return HeadEncoder(mf, base, device)
        return TrainedFacenetEncoder(mf, device)
    if info.variant:
        from .facenet import FacenetEncoder

        return FacenetEncoder(name, info.variant, weights=weights, device=device)
    from .dlib_resnet import DlibResnetEncoder

    return DlibResnetEncoder(device=device)
