"""Option declarations shared by several commands, declared once."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import config
from ..cluster import LINKAGES, METHODS
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


# The options that say which face database and encoder a command uses.
STORE_OPTIONS: list[tuple[str, Any, Any]] = [
    ("db", DbOption, None),
    ("model", ModelOption, "auto"),
    ("weights", WeightsOption, None),
    ("as_json", JsonOption, False),
]


def store_parameters() -> list[inspect.Parameter]:
    """The store options as keyword-only parameters of a command's signature."""
    return [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann)
        for name, ann, default in STORE_OPTIONS
    ]


def pop_store(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Take the store options out of a command's keyword arguments."""
    return {name: kwargs.pop(name) for name, _, _ in STORE_OPTIONS}


def command_signature(
    fn: Callable[..., Any], drop: str, lead: list[inspect.Parameter] | None = None
) -> inspect.Signature:
    """``fn``'s parameters without ``drop``, after ``lead`` and before the store options:
    the signature Typer reads to build the command line."""
    own = []
    for name, p in inspect.signature(fn).parameters.items():
        if name == drop:  # given by the caller, not the command line (may be a type-only name)
            continue
        ann = p.annotation
        if isinstance(ann, str):
            ann = eval(ann, fn.__globals__)  # noqa: S307  (our own annotations, as Typer does)
        own.append(p.replace(annotation=ann))
    return inspect.Signature([*(lead or []), *own, *store_parameters()])
