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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

UNKNOWN = -1

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


@dataclass(frozen=True)
class VerificationReport:
    """Pair-verification summary for the rule "same iff d <= t"."""

    n_same: int
    n_diff: int
    best_threshold: float
    best_accuracy: float
    far: float  # target false-accept rate
    tar: float  # true-accept rate at tar_threshold (nan without same pairs)
    tar_threshold: float  # largest threshold whose false-accept rate is <= far
    roc_auc: float  # nan unless both kinds of pairs are present

    def as_dict(self) -> dict[str, float | int]:
        """Flat dict of plain Python numbers (floats rounded to 4 decimals)."""
        return {
            k: int(v) if k.startswith("n_") else round(float(v), 4) for k, v in asdict(self).items()
        }


# --------------------------------------------------------------------------- labels


def _as_labels(x: ArrayLike, name: str) -> NDArray[np.int64]:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _pair_labels(true: ArrayLike, pred: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    t, p = _as_labels(true, "true"), _as_labels(pred, "pred")
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


# --------------------------------------------------------------------------- verification


def _pair_index(k: NDArray[np.int64], n: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Map row-major linear indices of the pairs i < j of n items to (i, j)."""
    starts = np.arange(n, dtype=np.int64)
    starts = starts * (2 * n - starts - 1) // 2  # pairs before row i
    i = np.searchsorted(starts, k, side="right") - 1
    return i, k - starts[i] + i + 1


def pair_distances(
    emb: ArrayLike,
    labels: ArrayLike,
    max_pairs: int | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Squared L2 distances and same-label flags for all pairs i < j (row-major order).

    When n(n-1)/2 exceeds ``max_pairs``, ``max_pairs`` distinct pairs are drawn uniformly
    (``rng`` defaults to ``np.random.default_rng(0)``), returned in row-major order.
    """
    x = np.asarray(emb, dtype=np.float32)
    y = _as_labels(labels, "labels")
    if x.ndim != 2 or x.shape[0] != y.size:
        raise ValueError(f"emb must be (n, d) with n == len(labels), got {x.shape}")
    n = y.size
    total = n * (n - 1) // 2
    if max_pairs is None or total <= max_pairs:
        step = max(1, (1 << 22) // max(n, 1))  # ~4M gram entries per block
        dots, same = [], []
        cols = np.arange(n)
        for s in range(0, n, step):
            rows = np.arange(s, min(n, s + step))
            upper = cols[None, :] > rows[:, None]
            dots.append((x[rows] @ x.T)[upper])
            same.append((y[rows, None] == y[None, :])[upper])
        dot = np.concatenate(dots) if dots else np.empty(0, np.float32)
        flags = np.concatenate(same) if same else np.empty(0, bool)
    else:
        rng = np.random.default_rng(0) if rng is None else rng
        i, j = _pair_index(np.sort(rng.choice(total, size=int(max_pairs), replace=False)), n)
        dot = np.empty(i.size, dtype=np.float32)
        for s in range(0, i.size, 1 << 16):
            sl = slice(s, s + (1 << 16))
            dot[sl] = np.einsum("ij,ij->i", x[i[sl]], x[j[sl]])
        flags = y[i] == y[j]
    dist = np.clip(2.0 - 2.0 * dot, 0.0, 4.0).astype(np.float32, copy=False)
    return dist, flags


def _verification_inputs(
    distances: ArrayLike, same: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    d = np.asarray(distances, dtype=np.float64)
    s = np.asarray(same, dtype=bool)
    if d.ndim != 1 or d.shape != s.shape:
        raise ValueError(f"distances and same must be 1-D of equal length: {d.shape}, {s.shape}")
    if d.size == 0:
        raise ValueError("no pairs")
    return d, s


def verification_accuracy(distances: ArrayLike, same: ArrayLike, t: float) -> float:
    """Accuracy of the rule "same iff d <= t"."""
    d, s = _verification_inputs(distances, same)
    return float(np.mean((d <= t) == s))


@dataclass(frozen=True)
class _Runs:
    """Distinct distances (ascending) with cumulative same / different counts at d <= t."""

    thr: NDArray[np.float64]
    cum_same: NDArray[np.int64]
    cum_diff: NDArray[np.int64]

    @property
    def n_same(self) -> int:
        return int(self.cum_same[-1])

    @property
    def n_diff(self) -> int:
        return int(self.cum_diff[-1])


def _runs(distances: ArrayLike, same: ArrayLike) -> _Runs:
    d, s = _verification_inputs(distances, same)
    order = np.argsort(d, kind="stable")
    ds = d[order]
    cum_same = np.cumsum(s[order], dtype=np.int64)
    cum_diff = np.arange(1, d.size + 1, dtype=np.int64) - cum_same
    ends = np.r_[ds[1:] != ds[:-1], True]
    return _Runs(ds[ends], cum_same[ends], cum_diff[ends])


def _below(x: float) -> float:
    """A threshold that accepts nothing at or above x."""
    return float(np.nextafter(x, -np.inf))


def _best_threshold(r: _Runs) -> tuple[float, float]:
    n = r.n_same + r.n_diff
    acc = np.r_[r.n_diff, r.cum_same + (r.n_diff - r.cum_diff)] / n  # [0]: accept nothing
    k = int(np.argmax(acc))
    return (_below(r.thr[0]) if k == 0 else float(r.thr[k - 1])), float(acc[k])


def _tar_at_far(r: _Runs, far: float) -> tuple[float, float]:
    ok = np.flatnonzero(r.cum_diff <= far * r.n_diff * (1 + 1e-9))
    if ok.size == 0:
        t, accepted = _below(r.thr[0]), 0
    else:
        t, accepted = float(r.thr[ok[-1]]), int(r.cum_same[ok[-1]])
    return (accepted / r.n_same if r.n_same else float("nan")), t


def _roc_auc(r: _Runs) -> float:
    if r.n_same == 0 or r.n_diff == 0:
        return float("nan")
    same_k = np.diff(r.cum_same, prepend=0)  # same pairs at each distinct distance
    diff_k = np.diff(r.cum_diff, prepend=0)
    wins = np.sum(same_k * ((r.n_diff - r.cum_diff) + 0.5 * diff_k))  # diff pairs farther
    return float(wins) / (r.n_same * r.n_diff)


def tar_at_far(distances: ArrayLike, same: ArrayLike, far: float = 1e-3) -> tuple[float, float]:
    """(TAR, threshold): the fraction of same pairs with d <= t, where t is the largest
    distance whose false-accept rate (different pairs with d <= t) is <= ``far``.

    If even the smallest distance is over budget, t is just below it and TAR is 0.
    TAR is nan when there are no same pairs.
    """
    return _tar_at_far(_runs(distances, same), far)


def roc_auc(distances: ArrayLike, same: ArrayLike) -> float:
    """Area under the ROC curve for score -d, i.e. P(d_same < d_diff) with ties counting
    half (as scikit-learn's ``roc_auc_score``); nan unless both kinds of pairs exist."""
    return _roc_auc(_runs(distances, same))


def verification_report(
    distances: ArrayLike, same: ArrayLike, far: float = 1e-3
) -> VerificationReport:
    """Best-accuracy threshold, TAR at a target FAR, and ROC AUC for pair distances."""
    r = _runs(distances, same)
    best_t, best_acc = _best_threshold(r)
    tar, tar_t = _tar_at_far(r, far)
    return VerificationReport(
        n_same=r.n_same,
        n_diff=r.n_diff,
        best_threshold=best_t,
        best_accuracy=best_acc,
        far=float(far),
        tar=tar,
        tar_threshold=tar_t,
        roc_auc=_roc_auc(r),
    )


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
