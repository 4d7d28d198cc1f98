"""facecluster: turn a photo library into people.

The library (docs/api.md)::

    from facecluster import FaceIndex
    with FaceIndex("faces.db") as index:
        index.scan(["~/Photos"])
        result = index.group()

Importing the package is cheap: the names below load their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "FaceIndex": "api",
    "Match": "api",
    "Verification": "api",
    "verify": "api",
    "load_encoder": "api",
    "load_models": "api",
    "available_encoders": "api",
    "GroupSettings": "cluster",
    "FaceclusterError": "errors",
}

__all__ = [
    "FaceIndex",
    "FaceclusterError",
    "GroupSettings",
    "Match",
    "Verification",
    "__version__",
    "available_encoders",
    "load_encoder",
    "load_models",
    "verify",
]

if TYPE_CHECKING:
    from .api import (
        FaceIndex,
        Match,
        Verification,
        available_encoders,
        load_encoder,
        load_models,
        verify,
    )
    from .cluster import GroupSettings
    from .errors import FaceclusterError


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
