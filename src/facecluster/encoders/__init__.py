"""Encoders: the registry of built-in encoders, and the functions that find, identify and
load one. Importing this package is cheap (no numpy, torch or dlib): a spec names its
backend's functions by ``"module:attribute"`` and they are imported when first called.

Adding an encoder: one module with its three functions (load, identity, available; see
:class:`EncoderSpec`) and one ``ENCODERS.register(EncoderSpec(...))`` line below.

Besides the built-ins, ``encoder_spec`` accepts encoders made by ``facecluster train``: a
model file (``path/to/file.pt``) or the name of one in the models folder
(``dlib-resnet+friends``). Their spec is made from the file (a small cache of parsed files
is kept, keyed by path, mtime and size); no process-wide table is changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FaceclusterError, UnknownModel
from ..registry import Ref, Registry, load_ref

if TYPE_CHECKING:
    from .base import Encoder, l2_normalize

__all__ = [
    "ENCODERS",
    "Encoder",
    "EncoderSpec",
    "EncoderStatus",
    "available",
    "available_encoders",
    "encoder_identity",
    "encoder_spec",
    "l2_normalize",
    "load_encoder",
    "resolve",
]


@dataclass(frozen=True)
class EncoderSpec:
    """An encoder: what it is, and where its code is (lazy ``"module:attribute"`` refs).

    ``load(spec, weights, device) -> Encoder``; ``identity(spec, weights) -> dict`` (what
    defines its embedding space, cheaply: no network is loaded; the cache keys vectors by
    it); ``available(spec, weights) -> bool`` (loadable without a download);
    ``location(spec, weights) -> str`` (where its weights are, for ``facecluster models``).
    """

    name: str
    dim: int
    default_threshold: float  # squared L2 between unit vectors
    description: str
    load: Ref
    identity: Ref
    available: Ref
    location: Ref = ""
    variant: str = ""  # backend option: FaceNet's set of pretrained weights
    path: str = ""  # model file of a trained encoder (facecluster train)
    # What `facecluster models` shows: accuracy measured by `facecluster eval` on
    # ../shared/data/dev at the default threshold (pairwise F1, TAR at FAR 1e-3), or the
    # published LFW figure where the weights cannot be had here; and the time to embed a
    # face, batched, on two CPU cores (docs/models.md says how both were measured).
    accuracy: str = ""
    speed: str = ""


@dataclass(frozen=True)
class EncoderStatus:
    """An encoder as ``facecluster models`` lists it."""

    spec: EncoderSpec
    available: bool
    auto: bool  # the one 'auto' picks
    location: str


ENCODERS: Registry[EncoderSpec] = Registry("encoder", UnknownModel)

_FACENET = "facecluster.encoders.facenet_paths"
ENCODERS.register(
    EncoderSpec(
        "facenet-vggface2",
        512,
        1.1,
        "FaceNet InceptionResnetV1 trained on VGGFace2 (LFW 99.65%)",
        load="facecluster.encoders.facenet:load",
        identity=f"{_FACENET}:spec_identity",
        available=f"{_FACENET}:spec_available",
        location=f"{_FACENET}:spec_location",
        variant="vggface2",
        accuracy="LFW 99.65% (published)",
        speed="20 ms/face",
    )
)
ENCODERS.register(
    EncoderSpec(
        "facenet-casia",
        512,
        1.1,
        "FaceNet InceptionResnetV1 trained on CASIA-WebFace (LFW 99.05%)",
        load="facecluster.encoders.facenet:load",
        identity=f"{_FACENET}:spec_identity",
        available=f"{_FACENET}:spec_available",
        location=f"{_FACENET}:spec_location",
        variant="casia-webface",
        accuracy="LFW 99.05% (published)",
        speed="20 ms/face",
    )
)
# 1.24: the middle of the thresholds at which `facecluster eval` on ../shared/data/dev
# meets every target (pairwise and BCubed F1 >= 0.99, no merged look-alikes): 1.20-1.28
# (docs/models.md).
ENCODERS.register(
    EncoderSpec(
        "sface",
        128,
        1.24,
        "SFace MobileFaceNet from OpenCV Zoo (LFW 99.40%), offline",
        load="facecluster.encoders.sface:load",
        identity="facecluster.encoders.sface:spec_identity",
        available="facecluster.encoders.sface:spec_available",
        location="facecluster.encoders.sface:spec_location",
        accuracy="dev F1 0.992, TAR@FAR1e-3 0.984",
        speed="16 ms/face",
    )
)
# 0.155: best pairwise F1 of `facecluster eval` on ../shared/data/dev (docs/design.md).
ENCODERS.register(
    EncoderSpec(
        "dlib-resnet",
        128,
        0.155,
        "dlib ResNet descriptor (LFW 99.38%), offline",
        load="facecluster.encoders.dlib_resnet:load",
        identity="facecluster.encoders.dlib_resnet:spec_identity",
        available="facecluster.encoders.dlib_resnet:spec_available",
        location="facecluster.encoders.dlib_resnet:spec_location",
        accuracy="dev F1 0.971, TAR@FAR1e-3 0.938",
        speed="7 ms/face",
    )
)
# 'auto': the first of these that is available. FaceNet (VGGFace2) leads on published LFW
# accuracy (99.65%) and needs its weights; offline, SFace beats dlib on every measurement
# of the dev set (docs/models.md).
AUTO = ("facenet-vggface2", "sface", "dlib-resnet")


def __getattr__(name: str) -> Any:  # the protocol and helpers without importing numpy early
    if name in ("Encoder", "l2_normalize"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def encoder_spec(name: str | EncoderSpec, weights: Path | None = None) -> EncoderSpec:
    """The spec of a built-in encoder, of 'auto', or of a trained model (file or
    BASE+NAME). Raises UnknownModel, or ModelUnavailable for an unreadable model file."""
    if isinstance(name, EncoderSpec):
        return name
    if name == "auto":
        for candidate in AUTO[:-1]:
            if available(candidate, weights):
                return ENCODERS.get(candidate)
        return ENCODERS.get(AUTO[-1])
    if name in ENCODERS:
        return ENCODERS.get(name)
    if "+" in name or name.endswith(".pt") or "/" in name:
        return _trained(name)
    known = ", ".join(["auto", *ENCODERS.names()])
    raise UnknownModel(
        f"unknown model {name!r}; choose one of: {known}, a trained model "
        "(BASE+NAME) or a model file"
    )


def _trained(name: str) -> EncoderSpec:
    from .trained import is_model_path, path_for

    path = path_for(name)
    if not path.is_file():
        where = "" if is_model_path(name) else f" (looked for {path})"
        raise UnknownModel(f"no trained model {name!r}{where}")
    st = path.stat()
    return _trained_spec(str(path.resolve()), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=16)
def _trained_spec(path: str, mtime_ns: int, size: int) -> EncoderSpec:
    """The spec of one model file (cached by path, mtime and size: a rewritten file is
    read again)."""
    from .trained import read_model

    mf = read_model(Path(path))
    if mf.base and mf.base not in ENCODERS and ("+" in mf.base or mf.base.endswith(".pt")):
        raise UnknownModel(f"{path}: base {mf.base!r} is itself a trained model")
    trained = "facecluster.encoders.trained"
    return EncoderSpec(
        mf.name,
        mf.dim,
        mf.threshold,
        f"trained by facecluster train ({mf.meta.get('mode', mf.architecture)})",
        load=f"{trained}:load",
        identity=f"{trained}:spec_identity",
        available=f"{trained}:spec_available",
        location=f"{trained}:spec_location",
        path=path,
    )


def resolve(name: str | EncoderSpec, weights: Path | None = None) -> str:
    """The encoder's name: 'auto' becomes the first available of :data:`AUTO`
    (facenet-vggface2 when its weights are at hand, else sface); a trained model's file
    gives the name it was trained under."""
    return encoder_spec(name, weights).name


def available(name: str | EncoderSpec, weights: Path | None = None) -> bool:
    """Whether the encoder can be loaded without a download."""
    spec = encoder_spec(name, weights)
    return bool(load_ref(spec.available)(spec, weights))


def encoder_identity(name: str | EncoderSpec, weights: Path | None = None) -> dict[str, object]:
    """The identity (name, weights hash, preprocessing) of an encoder, without loading it:
    enough to tell which cached faces need embedding. Raises ModelUnavailable."""
    spec = encoder_spec(name, weights)
    return dict(load_ref(spec.identity)(spec, weights))


def load_encoder(
    name: str | EncoderSpec, weights: Path | None = None, device: str = "cpu"
) -> Encoder:
    """The encoder, ready to embed. Raises UnknownModel or ModelUnavailable."""
    spec = encoder_spec(name, weights)
    encoder: Encoder = load_ref(spec.load)(spec, weights, device)
    return encoder


def available_encoders(weights: Path | None = None) -> list[EncoderStatus]:
    """Every built-in encoder and every trained model in the models folder, with whether
    it loads without a download and where its weights are."""
    from .trained import installed

    auto = resolve("auto", weights)
    specs = list(ENCODERS)
    for path in installed():  # trained models usable by name
        try:
            spec = encoder_spec(str(path))
        except FaceclusterError:
            continue
        if spec.name not in {s.name for s in specs}:
            specs.append(spec)
    out = []
    for spec in specs:
        location = str(load_ref(spec.location)(spec, weights)) if spec.location else ""
        out.append(EncoderStatus(spec, available(spec, weights), spec.name == auto, location))
    return out


def check_base(trained_on: object, current: dict[str, object], path: Path) -> None:
    """A head only fits the exact base encoder (weights, preprocessing) it was trained on."""
    if trained_on != current:
        raise UnknownModel(
            f"{path} was trained over another {current.get('name')} (weights or "
            "preprocessing differ); pass the --weights it was trained with"
        )
