"""Clustering metrics: pairwise and BCubed precision/recall/F1, NMI, and the counts of
one predicted labelling against true identities (conventions: evaluate/__init__.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

UNKNOWN = -1


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PRF:
    """Precision, recall and their harmonic mean."""

    precision: float
    recall: float
    f1: float

    @classmethod
    def from_pr(cls, precision: float, recall: float) -> PRF:
        """Build from precision and recall; f1 is 0 when both are 0."""
        s = precision + recall
        return cls(float(precision), float(recall), float(2 * precision * recall / s) if s else 0.0)


@dataclass(frozen=True)
class ClusterReport:
    """Summary of a predicted clustering against ground-truth identities."""

    pairwise: PRF
    bcubed: PRF
    nmi: float
    n_items: int
    n_clusters: int  # distinct predicted labels other than -1
    n_identities: int
    clusters_ge_min: int  # predicted clusters (not -1) with >= min_size members
    identities_ge_min: int
    unknown_rate: float  # fraction of items predicted -1
    min_size: int

    def as_dict(self) -> dict[str, float | int]:
        """Flat dict of plain Python numbers (floats rounded to 4 decimals)."""
        out: dict[str, float | int] = {}
        for prefix, prf in (("pairwise", self.pairwise), ("bcubed", self.bcubed)):
            for k, v in asdict(prf).items():
                out[f"{prefix}_{k}"] = round(float(v), 4)
        out["nmi"] = round(float(self.nmi), 4)
        for k in (
            "n_items",
            "n_clusters",
            "n_identities",
            "clusters_ge_min",
            "identities_ge_min",
            "min_size",
        ):
            out[k] = int(getattr(self, k))
        out["unknown_rate"] = round(float(self.unknown_rate), 4)
        return out


# --------------------------------------------------------------------------- labels


def as_labels(x: ArrayLike, name: str) -> NDArray[np.int64]:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _pair_labels(true: ArrayLike, pred: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    t, p = as_labels(true, "true"), as_labels(pred, "pred")
    if t.shape != p.shape:
        raise ValueError(f"true and pred differ in length: {t.size} != {p.size}")
    return t, p


def _codes(labels: NDArray[np.int64]) -> NDArray[np.int64]:
    """Dense codes 0..k-1 for the distinct labels."""
    return np.unique(labels, return_inverse=True)[1].reshape(-1).astype(np.int64)


def _pred_codes(pred: NDArray[np.int64]) -> NDArray[np.int64]:
    """Dense codes for predicted labels, each -1 item getting its own singleton code."""
    unknown = pred == UNKNOWN
    codes = np.empty(pred.size, dtype=np.int64)
    k = 0
    if not unknown.all():
        codes[~unknown] = _codes(pred[~unknown])
        k = int(codes[~unknown].max()) + 1
    codes[unknown] = k + np.arange(int(unknown.sum()), dtype=np.int64)
    return codes


@dataclass(frozen=True)
class _Contingency:
    """Sparse contingency table; -1 predictions are singleton clusters."""

    n_ij: NDArray[np.int64]  # items per non-empty (class, cluster) cell
    b_cell: NDArray[np.int64]  # size of the cell's true class
    a_cell: NDArray[np.int64]  # size of the cell's predicted cluster
    b: NDArray[np.int64]  # class sizes
    a: NDArray[np.int64]  # cluster sizes


def _contingency(t: NDArray[np.int64], p: NDArray[np.int64]) -> _Contingency:
    tc, pc = _codes(t), _pred_codes(p)
    kp = int(pc.max()) + 1
    cells, n_ij = np.unique(tc * kp + pc, return_counts=True)
    b, a = np.bincount(tc), np.bincount(pc)
    return _Contingency(n_ij, b[cells // kp], a[cells % kp], b, a)


def _comb2(x: NDArray[np.int64]) -> int:
    return int(np.sum(x * (x - 1) // 2))


# --------------------------------------------------------------------------- clustering


def pairwise_prf(true: ArrayLike, pred: ArrayLike) -> PRF:
    """Pairwise precision/recall/F1 over all unordered item pairs.

    TP = sum C(n_ij, 2) over contingency cells; predicted pairs = sum C(a_j, 2) over
    predicted clusters; true pairs = sum C(b_i, 2) over classes. Precision is 1 when no
    pairs are predicted, recall is 1 when there are no true pairs.
    """
    t, p = _pair_labels(true, pred)
    c = _contingency(t, p)
    tp, pred_pairs, true_pairs = _comb2(c.n_ij), _comb2(c.a), _comb2(c.b)
    precision = tp / pred_pairs if pred_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    return PRF.from_pr(precision, recall)


def bcubed_prf(true: ArrayLike, pred: ArrayLike) -> PRF:
    """BCubed precision/recall/F1: per-item |cluster & class| / |cluster| (precision) and
    / |class| (recall), averaged over items."""
    t, p = _pair_labels(true, pred)
    c = _contingency(t, p)
    sq = c.n_ij.astype(np.float64) ** 2  # n_ij items, each scoring n_ij / size
    return PRF.from_pr(float(np.sum(sq / c.a_cell)) / t.size, float(np.sum(sq / c.b_cell)) / t.size)


def nmi(true: ArrayLike, pred: ArrayLike) -> float:
    """Normalised mutual information, -1 predictions as singletons.

    Same definition and limit cases as scikit-learn's ``normalized_mutual_info_score``
    (natural log, arithmetic-mean normalisation; 1.0 when both sides are one group),
    computed from the sparse contingency so that scikit-learn is not imported.
    """
    t, p = _pair_labels(true, pred)
    c = _contingency(t, p)
    if c.a.size == c.b.size == 1:
        return 1.0
    n = float(t.size)
    nij = c.n_ij.astype(np.float64)
    mi = max(0.0, float(np.sum(nij / n * np.log(n * nij / (c.a_cell * c.b_cell.astype(float))))))
    if mi == 0.0:
        return 0.0

    def entropy(sizes: NDArray[np.int64]) -> float:
        q = sizes[sizes > 0] / n
        return float(-np.sum(q * np.log(q)))

    return mi / ((entropy(c.a) + entropy(c.b)) / 2.0)


def cluster_report(true: ArrayLike, pred: ArrayLike, min_size: int = 3) -> ClusterReport:
    """All clustering metrics and counts for one predicted labelling."""
    t, p = _pair_labels(true, pred)
    known = p[p != UNKNOWN]
    _, cluster_sizes = np.unique(known, return_counts=True)
    class_sizes = np.bincount(_codes(t))
    return ClusterReport(
        pairwise=pairwise_prf(t, p),
        bcubed=bcubed_prf(t, p),
        nmi=nmi(t, p),
        n_items=int(t.size),
        n_clusters=int(cluster_sizes.size),
        n_identities=int(class_sizes.size),
        clusters_ge_min=int(np.sum(cluster_sizes >= min_size)),
        identities_ge_min=int(np.sum(class_sizes >= min_size)),
        unknown_rate=float(1.0 - known.size / t.size),
        min_size=int(min_size),
    )
