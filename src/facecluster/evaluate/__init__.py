"""Clustering and face-verification metrics, implemented once and reused everywhere.

Conventions:

* Labels are 1-D integer arrays of equal length. A *predicted* label of ``-1`` means
  "unknown / noise": such an item is treated as its own singleton cluster, so it never
  forms a predicted pair but still counts against recall. True labels are taken as given.
* Embeddings are L2-normalised ``(n, d)`` float32 arrays; distance is the squared L2
  distance between unit vectors, ``2 - 2 * dot`` (0 = identical, 4 = opposite).
* Verification uses the rule "same person iff ``d <= t``".

Everything is vectorised numpy (no O(n^2) work on labels), so 200k items are cheap, and
nothing heavier than numpy is imported (NMI and ROC AUC follow scikit-learn's definitions).

Modules: ``clustering`` (labels against identities), ``verification`` (pairs and
thresholds); sweeps over thresholds are here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from numpy.typing import ArrayLike

from .clustering import (
    PRF,
    UNKNOWN,
    ClusterReport,
    bcubed_prf,
    cluster_report,
    nmi,
    pairwise_prf,
)
from .verification import (
    VerificationReport,
    pair_distances,
    roc_auc,
    tar_at_far,
    verification_accuracy,
    verification_report,
)
from .verification import pair_index as pair_index  # noqa: F401  (tests use it)

__all__ = [
    "UNKNOWN",
    "PRF",
    "ClusterReport",
    "VerificationReport",
    "pairwise_prf",
    "bcubed_prf",
    "nmi",
    "cluster_report",
    "pair_distances",
    "verification_accuracy",
    "tar_at_far",
    "roc_auc",
    "verification_report",
    "sweep",
    "best_by",
]


# --------------------------------------------------------------------------- sweeps


def sweep(
    thresholds: Iterable[float],
    cluster_fn: Callable[[float], ArrayLike],
    true: ArrayLike,
    min_size: int = 3,
) -> list[dict[str, Any]]:
    """For each threshold t: ``cluster_report(true, cluster_fn(t)).as_dict()`` plus 't'."""
    rows = []
    for t in thresholds:
        row: dict[str, Any] = {"threshold": float(t)}
        row.update(cluster_report(true, cluster_fn(t), min_size).as_dict())
        rows.append(row)
    return rows


def best_by(rows: Iterable[dict[str, Any]], key: str = "pairwise_f1") -> dict[str, Any]:
    """The row with the largest ``row[key]`` (the first one on ties)."""
    rows = list(rows)
    if not rows:
        raise ValueError("no rows")
    return max(rows, key=lambda r: r[key])
