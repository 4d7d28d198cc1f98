"""Average and weighted linkage on a kNN graph, compiled with numba.

The same algorithm as ``hierarchical._graph`` (which stays as the readable reference and
runs complete linkage), as one loop over int32 edges compiled by numba: on a million
faces the threshold joins nearly every face into one component with 25-40M kNN edges, and
the Python loop over them took longer than the rest of the grouping together
(docs/scale.md, "Grouping a million faces").

Edges are read in ascending order of their kNN distance and merged through a lazy binary
heap of candidate cluster pairs whose keys are exact linkage values (from centroids and
variances: ``mean d2(A, B) = |mu_A - mu_B|^2 + var_A + var_B``). A merged cluster keeps
its float64 centroid in a pool of rows reused as clusters are absorbed; a face that was
never merged is its own vector, read in place. Every comparison, tie and merge follows
the reference's order, so the labels are the same (tests/test_cluster.py). numba comes
with this module, which ``hierarchical`` imports only when a component is that large.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.typed import Dict

WEIGHTED, AVERAGE = 0, 1
_MEMO_LIMIT = 1 << 21  # pairs remembered as evaluated; cleared when full (it only saves work)


def _jit(fn):  # type: ignore[no-untyped-def]
    """Compile once and keep the machine code (numba's cache: beside this file, or in the
    user's cache directory when the package is read-only); without any writable place,
    compile in each process instead of failing."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return njit(nogil=True)(fn)


def graph_linkage(
    x: np.ndarray,
    rows: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    w: np.ndarray,
    threshold: float,
    linkage: str,
) -> np.ndarray:
    """Roots (labels 0..m-1, not renumbered) of average / weighted linkage on the edges.

    ``a < b`` (int32, faces 0..m-1, de-duplicated) sorted by ``w`` (float64, their kNN
    squared distances), face i's vector is ``x[rows[i]]``.
    """
    code = WEIGHTED if linkage == "weighted" else AVERAGE
    m = len(rows)
    return np.asarray(
        _kernel(
            x,
            rows.astype(np.int64),
            a.astype(np.int32),
            b.astype(np.int32),
            w.astype(np.float64),
            float(threshold),
            code,
            m,
        ),
        dtype=np.int64,
    )


@_jit
def _grown(arr, n):  # type: ignore[no-untyped-def]
    """A copy of ``arr`` in an array of length ``n`` (the rest uninitialised)."""
    out = np.empty(n, arr.dtype)
    out[: len(arr)] = arr
    return out


@_jit
def _find(parent, i):  # type: ignore[no-untyped-def]
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:  # path compression
        nxt = parent[i]
        parent[i] = root
        i = nxt
    return root


@_jit
def _less(k1, p1, q1, u1, v1, k2, p2, q2, u2, v2):  # type: ignore[no-untyped-def]
    # Python's tuple order: (key, p, q, ver p, ver q)
    if k1 != k2:
        return k1 < k2
    if p1 != p2:
        return p1 < p2
    if q1 != q2:
        return q1 < q2
    if u1 != u2:
        return u1 < u2
    return v1 < v2


@_jit
def _value(x, rows, slot, pool, var, p, q):  # type: ignore[no-untyped-def]
    sp, sq = slot[p], slot[q]
    rp, rq = rows[p], rows[q]
    s = 0.0
    for j in range(x.shape[1]):
        cp = pool[sp, j] if sp >= 0 else np.float64(x[rp, j])
        cq = pool[sq, j] if sq >= 0 else np.float64(x[rq, j])
        d = cp - cq
        s += d * d
    return s + var[p] + var[q]


@_jit
def _kernel(x, rows, a, b, w, threshold, code, m):  # type: ignore[no-untyped-def]
    dim = x.shape[1]
    parent = np.arange(m).astype(np.int64)
    size = np.ones(m, np.int64)
    ver = np.zeros(m, np.int64)
    var = np.zeros(m, np.float64)
    slot = np.full(m, -1, np.int64)  # row of the centroid pool, -1 = the face itself
    cap = 64  # pool rows, doubled when full (small, so that the tests grow it too)
    pool = np.empty((cap, dim), np.float64)
    free = np.empty(cap, np.int64)
    nfree, used = 0, 0
    # binary min-heap of (key, p, q, ver p, ver q) in parallel arrays
    hcap = 64
    hk = np.empty(hcap, np.float64)
    hp = np.empty(hcap, np.int64)
    hq = np.empty(hcap, np.int64)
    hu = np.empty(hcap, np.int64)
    hv = np.empty(hcap, np.int64)
    hn = 0
    seen = Dict.empty(key_type=types.int64, value_type=types.int64)
    e, n_edges = 0, len(a)
    while True:
        if hn > 0 and (
            e >= n_edges or not _less(w[e], a[e], b[e], 0, 0, hk[0], hp[0], hq[0], hu[0], hv[0])
        ):
            key, p, q, vp, vq = hk[0], hp[0], hq[0], hu[0], hv[0]
            hn -= 1  # pop: move the last entry to the root and sift it down
            lk, lp, lq, lu, lv = hk[hn], hp[hn], hq[hn], hu[hn], hv[hn]
            i = 0
            while True:
                c = 2 * i + 1
                if c >= hn:
                    break
                if c + 1 < hn and _less(
                    hk[c + 1],
                    hp[c + 1],
                    hq[c + 1],
                    hu[c + 1],
                    hv[c + 1],
                    hk[c],
                    hp[c],
                    hq[c],
                    hu[c],
                    hv[c],
                ):
                    c += 1
                if not _less(hk[c], hp[c], hq[c], hu[c], hv[c], lk, lp, lq, lu, lv):
                    break
                hk[i], hp[i], hq[i], hu[i], hv[i] = hk[c], hp[c], hq[c], hu[c], hv[c]
                i = c
            if hn > 0:
                hk[i], hp[i], hq[i], hu[i], hv[i] = lk, lp, lq, lu, lv
        elif e < n_edges:
            key, p, q, vp, vq = w[e], np.int64(a[e]), np.int64(b[e]), 0, 0
            e += 1
        else:
            break
        if key > threshold:
            break
        if parent[p] == p and parent[q] == q and ver[p] == vp and ver[q] == vq:
            # the key is exact, except float32 kNN distances: recheck those near the cut
            if key > threshold - 1e-5 and _value(x, rows, slot, pool, var, p, q) > threshold:
                continue
            if size[p] > size[q] or (size[p] == size[q] and p <= q):
                r, o = p, q
            else:
                r, o = q, p
            nr, no = size[r], size[o]
            fr = 0.5 if code == 0 else nr / (nr + no)
            if slot[r] < 0:
                if nfree > 0:
                    nfree -= 1
                    s = free[nfree]
                else:
                    if used == cap:
                        grown = np.empty((2 * cap, dim), np.float64)
                        grown[:cap] = pool
                        pool = grown
                        free = _grown(free, 2 * cap)
                        cap *= 2
                    s = used
                    used += 1
                for j in range(dim):
                    pool[s, j] = x[rows[r], j]
                slot[r] = s
            sr, so = slot[r], slot[o]
            gap = 0.0
            for j in range(dim):
                cr = pool[sr, j]
                co = pool[so, j] if so >= 0 else np.float64(x[rows[o], j])
                gap += (cr - co) * (cr - co)
                pool[sr, j] = fr * cr + (1 - fr) * co
            var[r] = fr * var[r] + (1 - fr) * var[o] + fr * (1 - fr) * gap
            var[o] = 0.0
            if so >= 0:
                free[nfree] = so
                nfree += 1
                slot[o] = -1
            parent[o] = r
            size[r] += size[o]
            ver[r] += 1
            continue
        p, q = _find(parent, p), _find(parent, q)
        if p == q:
            continue
        if p > q:
            p, q = q, p
        pair, vers = p * m + q, (ver[p] << 32) | ver[q]
        if seen.get(pair, -1) == vers:
            continue
        if len(seen) > _MEMO_LIMIT:
            seen.clear()
        seen[pair] = vers
        exact = _value(x, rows, slot, pool, var, p, q)
        if exact > threshold:
            continue
        if hn == hcap:  # push, growing the arrays when full
            hcap *= 2
            hk, hp, hq = _grown(hk, hcap), _grown(hp, hcap), _grown(hq, hcap)
            hu, hv = _grown(hu, hcap), _grown(hv, hcap)
        i = hn
        hn += 1
        up, uq = ver[p], ver[q]
        while i > 0:
            par = (i - 1) // 2
            if not _less(exact, p, q, up, uq, hk[par], hp[par], hq[par], hu[par], hv[par]):
                break
            hk[i], hp[i], hq[i], hu[i], hv[i] = hk[par], hp[par], hq[par], hu[par], hv[par]
            i = par
        hk[i], hp[i], hq[i], hu[i], hv[i] = exact, p, q, up, uq
    out = np.empty(m, np.int64)
    for i in range(m):
        out[i] = _find(parent, i)
    return out
