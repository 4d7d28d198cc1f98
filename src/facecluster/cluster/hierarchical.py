"""The ``agglomerative`` method: hierarchical clustering cut at a squared-L2 threshold,
exact (scipy) per threshold component, kNN-graph linkage inside very large components."""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

import numpy as np

from . import LINKAGES, approx
from .approx import neighbours
from .common import apply_min_size, as_2d, relabel
from .neighbours import KNN, SLACK

if TYPE_CHECKING:
    from . import GroupSettings

DENSE_LIMIT = 20_000  # largest group clustered exactly: n(n-1)/2 float64 = 1.6 GB, x2 in scipy


def run(emb: np.ndarray, settings: GroupSettings) -> np.ndarray:
    """The method as ``group`` and ``eval`` run it (registered in cluster/__init__.py)."""
    return agglomerative(
        emb, settings.threshold, settings.linkage, min_cluster_size=settings.min_cluster_size
    )


def _condensed(x: np.ndarray) -> np.ndarray:
    """Condensed (scipy pdist order) float64 squared-L2 matrix, built from BLAS row blocks."""
    x = x.astype(np.float64)
    n = len(x)
    sq = np.einsum("ij,ij->i", x, x)
    out = np.empty(n * (n - 1) // 2)
    step = max(1, (1 << 24) // max(n, 1))
    for i0 in range(0, n - 1, step):
        i1 = min(i0 + step, n - 1)
        d = x[i0:i1] @ x[i0:].T
        d *= -2
        d += sq[i0:i1, None]
        d += sq[None, i0:]
        np.maximum(d, 0, out=d)
        upper = np.arange(n - i0)[None, :] > np.arange(i1 - i0)[:, None]
        start = i0 * n - i0 * (i0 + 1) // 2
        vals = d[upper]
        out[start : start + len(vals)] = vals
    return out


def _dense(x: np.ndarray, threshold: float, linkage: str) -> np.ndarray:
    """Exact scipy hierarchical clustering cut at ``threshold``; labels 0..k-1 (no noise)."""
    from scipy.cluster.hierarchy import fcluster
    from scipy.cluster.hierarchy import linkage as scipy_linkage

    if len(x) < 2:
        return np.zeros(len(x), dtype=np.int64)
    z = scipy_linkage(_condensed(x), method=linkage)
    return fcluster(z, t=threshold, criterion="distance").astype(np.int64) - 1


def _graph(
    x: np.ndarray,
    nbr: np.ndarray,
    nd: np.ndarray,
    threshold: float,
    linkage: str,
    rows: np.ndarray | None = None,
    compiled: bool = True,
) -> np.ndarray:
    """Average / weighted / complete linkage restricted to the kNN graph (labels 0..m-1 roots).

    Candidate pairs are clusters joined by a kNN edge; each is merged only if its *exact*
    linkage value is <= threshold: average and weighted from (weighted) centroids and
    variances, ``mean d2(A, B) = |mu_A - mu_B|^2 + var_A + var_B``, complete from the members.
    A lazy heap holds possibly stale keys, which are lower bounds of the current value
    because these linkages never drop below the smaller of the two merged clusters' values.
    ``rows``: point i is ``x[rows[i]]`` (no copy of a huge component's vectors).
    Average and weighted run the same loop compiled (``graphlink``, the same labels) unless
    ``compiled`` is False; this Python loop is the reference and runs complete linkage.
    """
    m, k = nbr.shape
    if rows is None:
        rows = np.arange(m)
    u = np.repeat(np.arange(m, dtype=np.int32), k)
    v, w = nbr.ravel().astype(np.int32), nd.ravel()
    ok = v >= 0
    a, b, w = np.minimum(u, v)[ok], np.maximum(u, v)[ok], w[ok]
    _, idx = np.unique(a.astype(np.int64) * m + b, return_index=True)
    a, b, w = a[idx], b[idx], w[idx].astype(np.float64)
    order = np.argsort(w, kind="stable")
    if compiled and linkage in ("average", "weighted"):
        from .graphlink import graph_linkage

        return graph_linkage(x, rows, a[order], b[order], w[order], threshold, linkage)
    parent, size, ver = list(range(m)), [1] * m, [0] * m
    cent: dict[int, np.ndarray] = {}
    var: dict[int, float] = {}
    members: dict[int, list[int]] = {}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def mu(i: int) -> np.ndarray:
        c = cent.get(i)
        return np.asarray(x[rows[i]], dtype=np.float64) if c is None else c

    def value(p: int, q: int) -> float:
        if linkage == "complete":
            xa = x[rows[members.get(p, [p])]].astype(np.float64)
            xb = x[rows[members.get(q, [q])]].astype(np.float64)
            d = -2 * xa @ xb.T
            d += np.einsum("ij,ij->i", xa, xa)[:, None]
            return float((d + np.einsum("ij,ij->i", xb, xb)).max())
        diff = mu(p) - mu(q)
        return float(diff @ diff) + var.get(p, 0.0) + var.get(q, 0.0)

    def merge(p: int, q: int) -> None:
        r, o = (p, q) if (size[p], -p) >= (size[q], -q) else (q, p)
        if linkage == "complete":
            members[r] = members.pop(r, [r]) + members.pop(o, [o])
        else:
            cr, co, nr, no = mu(r), mu(o), size[r], size[o]
            gap = float((cr - co) @ (cr - co))
            fr = 0.5 if linkage == "weighted" else nr / (nr + no)
            cent[r] = fr * cr + (1 - fr) * co
            var[r] = fr * var.get(r, 0.0) + (1 - fr) * var.pop(o, 0.0) + fr * (1 - fr) * gap
            cent.pop(o, None)
        parent[o] = r
        size[r] += size[o]
        ver[r] += 1

    def stream():
        for s in range(0, len(order), 1 << 16):
            o = order[s : s + (1 << 16)]
            zeros = [0] * len(o)
            yield from zip(w[o].tolist(), a[o].tolist(), b[o].tolist(), zeros, zeros, strict=True)

    heap: list[tuple[float, int, int, int, int]] = []
    # Pairs already evaluated at these versions (p * m + q -> versions): only saves work, so
    # it is cleared when large (on a million faces it would otherwise hold ~20M entries).
    seen: dict[int, int] = {}
    edges = stream()
    nxt = next(edges, None)
    while True:
        if heap and (nxt is None or heap[0] <= nxt):
            key, p, q, vp, vq = heapq.heappop(heap)
        elif nxt is not None:
            (key, p, q, vp, vq), nxt = nxt, next(edges, None)
        else:
            break
        if key > threshold:
            break
        if parent[p] == p and parent[q] == q and ver[p] == vp and ver[q] == vq:
            # Current key is exact, except float32 kNN distances: recheck those near the cut.
            if key <= threshold - 1e-5 or value(p, q) <= threshold:
                merge(p, q)
            continue
        p, q = sorted((find(p), find(q)))
        pair, vers = p * m + q, (ver[p] << 32) | ver[q]
        if p == q or seen.get(pair) == vers:
            continue
        if len(seen) > 1 << 21:
            seen.clear()
        seen[pair] = vers
        exact = value(p, q)
        if exact <= threshold:
            heapq.heappush(heap, (exact, p, q, ver[p], ver[q]))
    return np.array([find(i) for i in range(m)], dtype=np.int64)


def _sparse(
    x: np.ndarray, threshold: float, linkage: str, knn: int, max_dense: int, approx_limit: int
) -> np.ndarray:
    """Memory-linear path: threshold components, then exact or kNN-graph linkage inside each.

    No linkage merges two groups whose every cross pair is farther than the threshold, so
    clusters never span two components of the graph "d2 <= threshold" and each component
    can be clustered on its own: exactly (``_dense``, float64) up to ``max_dense`` points,
    on its kNN graph (``_graph``) above. Components are found from float32 products with
    ``SLACK`` added to the cut so rounding can only make them larger, never split one.
    Above ``approx_limit`` faces, components and neighbours come from FAISS (``approx``).
    """
    n = len(x)
    need_knn = linkage != "single" and n > max_dense
    comp, kd, ki = neighbours(x, threshold + SLACK, knn if need_knn else 0, approx_limit)
    labels = np.empty(n, dtype=np.int64)
    order = np.argsort(comp, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(comp[order])) + 1)
    local = np.full(n, -1, dtype=np.int64)
    offset = 0
    for g in groups:
        if len(g) == 1 or (len(g) > max_dense and linkage == "single"):
            sub = np.zeros(len(g), dtype=np.int64)  # single linkage = the component
        elif len(g) <= max_dense:
            sub = _dense(x[g], threshold, linkage)
        else:
            local[g] = np.arange(len(g))
            nbr = np.where(ki[g] >= 0, local[ki[g]], -1)
            sub = _graph(x, nbr, kd[g], threshold, linkage, rows=g)
        labels[g] = sub + offset
        offset += int(sub.max()) + 1
    return labels


def agglomerative(
    emb: np.ndarray,
    threshold: float,
    linkage: str = "average",
    min_cluster_size: int = 2,
    *,
    method: str = "auto",
    knn: int = KNN,
    max_dense: int = DENSE_LIMIT,
    approx_limit: int | None = None,
) -> np.ndarray:
    """Hierarchical agglomerative clustering cut at a squared-L2 ``threshold``.

    ``linkage``: "average" (UPGMA on squared L2: merge while the mean pairwise d2 <=
    threshold), "complete", "single" or "weighted" (WPGMA). ``method``: "dense" runs scipy
    on the full condensed matrix (O(n^2) memory, reference); "sparse" (= "auto") splits the
    faces into threshold components in one blockwise pass (O(n*knn) memory) and clusters
    each exactly when it has at most ``max_dense`` faces, so it equals "dense" whenever
    n <= max_dense, only much faster. Larger components use kNN-graph linkage (``knn``
    neighbours a face): every merge it makes has an exact linkage value <= threshold, but
    it can miss merges between clusters with no kNN edge between them (single linkage
    there is the component itself, within float32 rounding of the threshold). Above
    ``approx_limit`` faces (default ``approx.APPROX_LIMIT``; "approx" = 0) the
    components and neighbours come from an approximate FAISS index instead of the exact
    n^2 pass ("sparse" stays exact at any size, for comparison).
    """
    if linkage not in LINKAGES:
        raise ValueError(f"unknown linkage {linkage!r}; choose from {', '.join(LINKAGES)}")
    if method not in ("auto", "dense", "sparse", "approx"):
        raise ValueError(f"unknown method {method!r}; choose auto, dense, sparse or approx")
    if not 0 <= threshold < np.inf:
        raise ValueError(f"threshold must be a finite squared L2 distance >= 0, got {threshold}")
    if min_cluster_size < 1 or knn < 1:
        raise ValueError("min_cluster_size and knn must be >= 1")
    x = as_2d(emb)
    if len(x) < 2:
        labels = np.zeros(len(x), dtype=np.int64)
    elif method == "dense":
        labels = _dense(x, float(threshold), linkage)
    else:
        auto = approx.APPROX_LIMIT if approx_limit is None else int(approx_limit)
        limit = {"sparse": len(x), "approx": 0}.get(method, auto)
        labels = _sparse(x, float(threshold), linkage, int(knn), int(max_dense), limit)
    return relabel(apply_min_size(labels, min_cluster_size))
