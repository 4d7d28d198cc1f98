"""Clustering core: L2-normalised face embeddings in, integer labels out.

Every threshold here is a *squared* L2 distance between unit vectors (the FaceNet
paper's scale, ``d2 = 2 - 2 cos``, range 0..4). Labels are ``-1`` for unknown (noise,
or a cluster smaller than ``min_cluster_size``) and ``0..k-1`` for clusters, numbered
by decreasing size, ties broken by smallest member index, so output is deterministic.

Pure functions, no printing. This package's ``__init__`` imports nothing but the standard
library (the CLI reads :data:`METHODS` and :data:`LINKAGES` for its help); numpy comes with
the algorithms, and scipy, scikit-learn and hdbscan inside the functions that need them.

Modules: ``common`` (label numbering, centroids), ``neighbours`` (the blockwise all-pairs
pass), ``approx`` (the same from a FAISS index, for large sets), ``hierarchical`` (the
``agglomerative`` method), ``graphlink`` (its kNN-graph linkage compiled with numba, for
very large components), ``density`` (``hdbscan``).

Adding a method: a module with ``run(embeddings, settings) -> labels`` and one
``METHODS.register(ClusterMethod(...))`` line below.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..registry import Ref, Registry, load_ref

if TYPE_CHECKING:
    import numpy as np

    from .approx import APPROX_LIMIT
    from .common import apply_min_size, centroids, distance_to_centroid, relabel
    from .density import HDBSCAN_DENSE_LIMIT, hdbscan_labels
    from .hierarchical import DENSE_LIMIT, agglomerative
    from .neighbours import KNN

__all__ = [
    "APPROX_LIMIT",
    "DEFAULT_METHOD",
    "DENSE_LIMIT",
    "HDBSCAN_DENSE_LIMIT",
    "KNN",
    "LINKAGES",
    "METHODS",
    "ClusterMethod",
    "GroupSettings",
    "agglomerative",
    "apply_min_size",
    "centroids",
    "cluster_faces",
    "distance_to_centroid",
    "hdbscan_labels",
    "relabel",
]

# How the agglomerative method measures the distance between two groups (the first is the
# default of `group` and `eval`): weighted = WPGMA, average = UPGMA.
LINKAGES = ("weighted", "average", "complete", "single")


@dataclass(frozen=True)
class ClusterMethod:
    """A clustering method: ``run(embeddings, settings) -> labels`` (-1 = unknown).

    ``uses``: the :class:`GroupSettings` fields it reads, in the order reports show them
    (``settings`` in `eval` and the report); ``options``: those that name a run in
    'people history' (``group --method NAME --option VALUE ...``).
    """

    name: str
    description: str
    uses: tuple[str, ...]
    run: Ref
    options: tuple[str, ...] = ()


METHODS: Registry[ClusterMethod] = Registry("clustering method")
METHODS.register(
    ClusterMethod(
        "agglomerative",
        "merges faces while the distance between groups stays under --threshold",
        ("min_cluster_size", "threshold", "linkage"),
        "facecluster.cluster.hierarchical:run",
        ("threshold", "linkage"),
    )
)
METHODS.register(
    ClusterMethod(
        "hdbscan",
        "finds dense groups and leaves the rest unknown",
        ("min_cluster_size", "min_samples"),
        "facecluster.cluster.density:run",
        ("min_cluster_size",),
    )
)
DEFAULT_METHOD = "agglomerative"


@dataclass(frozen=True)
class GroupSettings:
    method: str = DEFAULT_METHOD
    threshold: float = 0.155
    linkage: str = LINKAGES[0]
    min_cluster_size: int = 2
    min_samples: int | None = None

    @property
    def spec(self) -> ClusterMethod:
        return METHODS.get(self.method)

    def with_threshold(self, t: float) -> GroupSettings:
        return replace(self, threshold=t)

    def as_dict(self) -> dict[str, object]:
        """The method and the settings it uses."""
        return {"method": self.method} | {f: getattr(self, f) for f in self.spec.uses}

    def command(self) -> str:
        """The ``group`` options that give this grouping ('people history')."""
        words = ["group"] if self.method == DEFAULT_METHOD else ["group", "--method", self.method]
        for f in self.spec.options:
            value = getattr(self, f)
            if value is not None:
                shown = f"{value:g}" if isinstance(value, float) else str(value)
                words += [f"--{f.replace('_', '-')}", shown]
        return " ".join(words)


def cluster_faces(emb: np.ndarray, settings: GroupSettings) -> np.ndarray:
    """The one entry point `group` and `eval` use: labels for every face, -1 = unknown."""
    if settings.method not in METHODS:
        raise ValueError(
            f"unknown clustering method {settings.method!r}; "
            f"choose one of {', '.join(METHODS.names())}"
        )
    labels: np.ndarray = load_ref(settings.spec.run)(emb, settings)
    return labels


_LAZY = {
    "relabel": "common",
    "apply_min_size": "common",
    "centroids": "common",
    "distance_to_centroid": "common",
    "as_2d": "common",
    "APPROX_LIMIT": "approx",
    "approx_neighbours": "approx",
    "KNN": "neighbours",
    "nearest_neighbours": "neighbours",
    "DENSE_LIMIT": "hierarchical",
    "agglomerative": "hierarchical",
    "HDBSCAN_DENSE_LIMIT": "density",
    "hdbscan_labels": "density",
}


def __getattr__(name: str) -> Any:  # the algorithms (and numpy) load on first use
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
