"""One exact blockwise pass over all pairs: threshold components and k nearest neighbours,
in O(n*k) memory (used by the agglomerative and HDBSCAN paths for large sets)."""

from __future__ import annotations

import numpy as np

KNN = 40  # neighbours kept per face by the memory-linear paths
_BLOCK = 2048  # tile edge of the blockwise all-pairs pass (16 MB float32 tiles)
SLACK = 1e-4  # added to the threshold when finding components (float32 rounding margin)


def _union(comp: np.ndarray, lut: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> None:
    """Merge the components joined by edges rows-cols; ``comp`` holds each point's root label."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a, b = comp[rows], comp[cols]
    cross = a != b
    if not cross.any():
        return
    a, b = a[cross], b[cross]
    labs, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    inv = inv.ravel()
    g = coo_matrix(
        (np.ones(len(a), np.int8), (inv[: len(a)], inv[len(a) :])), shape=(len(labs), len(labs))
    )
    _, cc = connected_components(g, directed=False)
    _, first = np.unique(cc, return_index=True)
    lut[labs] = labs[first][cc]  # labs is sorted, so each component's first label is its min
    comp[:] = lut[comp]
    lut[labs] = labs


def _offer(kd: np.ndarray, ki: np.ndarray, r: np.ndarray, c: np.ndarray, v: np.ndarray) -> None:
    """Merge candidate neighbours (row r, column c, squared distance v) into the top-k lists."""
    keep = v < kd[r, -1]
    r, c, v = r[keep], c[keep], v[keep]
    if len(r) == 0:
        return
    k = kd.shape[1]
    o = np.lexsort((v, r))
    r, c, v = r[o], c[o], v[o]
    rows, start, counts = np.unique(r, return_index=True, return_counts=True)
    rank = np.arange(len(r)) - np.repeat(start, counts)
    keep = rank < k
    pos, rank = np.searchsorted(rows, r[keep]), rank[keep]
    nd = np.full((len(rows), k), np.inf, np.float32)
    ni = np.full((len(rows), k), -1, np.int32)
    nd[pos, rank], ni[pos, rank] = v[keep], c[keep]
    alld = np.concatenate([kd[rows], nd], axis=1)
    alli = np.concatenate([ki[rows], ni], axis=1)
    best = np.argsort(alld, axis=1, kind="stable")[:, :k]
    kd[rows] = np.take_along_axis(alld, best, axis=1)
    ki[rows] = np.take_along_axis(alli, best, axis=1)


def _candidates(d: np.ndarray, kth: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Entries of tile ``d`` closer than their row's current k-th neighbour (at most k a row)."""
    mask = d < kth[:, None]
    if np.count_nonzero(mask) > 2 * k * len(d) and d.shape[1] > k:
        c = np.argpartition(d, k - 1, axis=1)[:, :k].ravel()
        r = np.repeat(np.arange(len(d)), k)
        keep = mask[r, c]
        return r[keep], c[keep]
    return np.divmod(np.flatnonzero(mask), d.shape[1])


def nearest_neighbours(
    x: np.ndarray, cut: float, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One exact blockwise pass over all pairs (upper-triangle float32 tiles, O(n*k) memory).

    Returns ``comp`` (connected-component label of each point in the graph of pairs with
    d2 <= cut; only computed when ``cut`` is finite) and each point's ``k`` nearest
    neighbours among those pairs: squared distances ascending (inf-padded) and indices
    (-1-padded). Diagonal tiles go first so every row has a k-th distance to filter with.
    """
    n = len(x)
    sq = np.einsum("ij,ij->i", x, x)
    comp, lut = np.arange(n), np.arange(n)
    kd = np.full((n, k), np.inf, np.float32)
    ki = np.full((n, k), -1, np.int32)
    starts = range(0, n, _BLOCK)
    tiles = [(i, i) for i in starts] + [(i, j) for i in starts for j in starts if j > i]
    for i0, j0 in tiles:
        sqi = sq[i0 : i0 + _BLOCK]
        g = x[i0 : i0 + _BLOCK] @ x[j0 : j0 + _BLOCK].T
        g -= 0.5 * sq[None, j0 : j0 + _BLOCK]  # now d2 = sqi - 2 g
        if i0 == j0:
            np.fill_diagonal(g, -np.inf)
        if np.isfinite(cut):  # only the hits: d2 <= cut  <=>  g >= (sqi - cut) / 2
            flat = np.flatnonzero(g >= 0.5 * (sqi - cut)[:, None])
            r, c = np.divmod(flat, g.shape[1])
            v = sqi[r] - 2 * g.ravel()[flat]
            r += i0
            c += j0
            _union(comp, lut, r, c)
            if k:
                _offer(kd, ki, r, c, v)
                if i0 != j0:
                    _offer(kd, ki, c, r, v)
        elif k:
            d = sqi[:, None] - 2 * g
            for dd, a0, b0 in ((d, i0, j0), (d.T, j0, i0))[: 1 + (i0 != j0)]:
                r, c = _candidates(dd, kd[a0 : a0 + len(dd), -1], k)
                _offer(kd, ki, r + a0, c + b0, dd[r, c])
    return comp, kd, ki
