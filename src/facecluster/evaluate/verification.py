"""Verification metrics: pair distances, the best-accuracy threshold, TAR at a target FAR
and ROC AUC for the rule "same person iff d <= t" (conventions: evaluate/__init__.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .clustering import as_labels


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


# --------------------------------------------------------------------------- verification


def pair_index(k: NDArray[np.int64], n: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
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
    y = as_labels(labels, "labels")
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
        i, j = pair_index(np.sort(rng.choice(total, size=int(max_pairs), replace=False)), n)
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
