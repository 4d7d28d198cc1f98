"""Option declarations shared by several commands, declared once."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import config
from ..cluster import DEFAULT_METHOD, LINKAGES, METHODS
from ..detect import AUTO_DETECTOR, DETECTORS, LEGACY_DETECTOR
from ..encoders import AUTO, ENCODERS
from ..registry import or_list


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help=f"Face database (default: ${config.ENV_DB} or $XDG_DATA_HOME/facecluster/faces.db).",
        show_default=False,
    ),
]
ModelOption = Annotated[
    str,
    typer.Option(
        help=f"Encoder: auto, {', '.join(ENCODERS.names())}, or one made by "
        f"'facecluster train' (BASE+NAME or a .pt file). 'auto' uses {AUTO[0]} when "
        f"its weights are present, else {AUTO[1]} (offline)."
    ),
]
WeightsOption = Annotated[
    Path | None,
    typer.Option(help=f"FaceNet weights file (or ${config.ENV_WEIGHTS}).", show_default=False),
]
DeviceOption = Annotated[Device, typer.Option(help="Where the networks run.")]
DetectorOption = Annotated[
    str,
    typer.Option(
        help=f"Face detector: auto, {', '.join(DETECTORS.names())}. 'auto' keeps the one that "
        f"found the database's faces ({LEGACY_DETECTOR} for a database made before this was "
        f"recorded), else {AUTO_DETECTOR}. yunet detects about 3x faster, mtcnn's faces group "
        "best. Another one is refused while the database holds faces."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
ThresholdOption = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=4.0,
        show_default=False,
        help="Squared L2 distance between unit embeddings (0-4) at or below which two faces "
        "are the same person [default: the encoder's calibrated value, see "
        "'facecluster models'].",
    ),
]

# Clustering settings (group and eval).
MethodOption = Annotated[str, typer.Option(help=f"{or_list(METHODS.names())}.")]
LinkageOption = Annotated[
    str,
    typer.Option(help=f"How cluster distance is measured: {or_list(LINKAGES)} (weighted = WPGMA)."),
]
MinClusterOption = Annotated[
    int,
    typer.Option(min=1, help="Smaller groups go to 'unknown'; 1 gives every face a person."),
]
MinSamplesOption = Annotated[
    int | None, typer.Option(min=1, help="HDBSCAN's min_samples.", show_default=False)
]
DEFAULT_LINKAGE = LINKAGES[0]


def check_method(method: str, linkage: str) -> None:
    from ..errors import FaceclusterError

    if method not in METHODS:
        raise FaceclusterError(f"--method must be {or_list(METHODS.names())}, not {method!r}")
    if linkage not in LINKAGES:
        raise FaceclusterError(f"--linkage must be {or_list(LINKAGES)}")


# Every option more than one command takes, declared once: name -> (declaration, default).
CATALOG: dict[str, tuple[Any, Any]] = {
    "db": (DbOption, None),
    "method": (MethodOption, DEFAULT_METHOD),
    "threshold": (ThresholdOption, None),
    "linkage": (LinkageOption, DEFAULT_LINKAGE),
    "min_cluster_size": (MinClusterOption, 2),
    "min_samples": (MinSamplesOption, None),
    "model": (ModelOption, "auto"),
    "weights": (WeightsOption, None),
    "device": (DeviceOption, Device.auto),
    "detector": (DetectorOption, "auto"),
    "as_json": (JsonOption, False),
    "quiet": (QuietOption, False),
}
STORE = ("db", "model", "weights", "as_json", "quiet")
CLUSTERING = ("method", "threshold", "linkage", "min_cluster_size", "min_samples")


@dataclass
class Shared:
    """The shared options a command was given (see :func:`shared`)."""

    db: Path | None = None
    method: str = DEFAULT_METHOD
    threshold: float | None = None
    linkage: str = DEFAULT_LINKAGE
    min_cluster_size: int = 2
    min_samples: int | None = None
    model: str = "auto"
    weights: Path | None = None
    device: str = "auto"
    detector: str = "auto"
    as_json: bool = False
    quiet: bool = False

    def clustering(self) -> dict[str, Any]:
        """The clustering settings given (FaceIndex.settings takes them)."""
        check_method(self.method, self.linkage)
        return {name: getattr(self, name) for name in CLUSTERING}


def shared(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command the shared options ``names`` (after its own), passed to it as one
    ``opts: Shared`` argument: each is declared once, in CATALOG."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        def command(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in names}
            if isinstance(given.get("device"), Device):
                given["device"] = given["device"].value
            return fn(*args, opts=Shared(**given), **kwargs)

        command.__signature__ = command_signature(fn, names)  # type: ignore[attr-defined]
        command.__annotations__ = {}
        command.__name__, command.__doc__ = fn.__name__, fn.__doc__
        command.__module__ = fn.__module__
        return command

    return decorate


def command_signature(fn: Callable[..., Any], names: tuple[str, ...]) -> inspect.Signature:
    """``fn``'s own parameters (not ``opts``, nor ``people`` which the people commands
    get from their caller), then the shared options ``names``: what Typer reads."""
    own = []
    for name, p in inspect.signature(fn).parameters.items():
        if name in ("opts", "people") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        ann = p.annotation
        if isinstance(ann, str):
            ann = eval(ann, fn.__globals__)  # noqa: S307  (our own annotations, as Typer does)
        own.append(p.replace(annotation=ann))
    extra = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=CATALOG[name][1],
            annotation=CATALOG[name][0],
        )
        for name in names
    ]
    return inspect.Signature([*own, *extra])
