"""Approximate k nearest neighbours with FAISS, for sets too large for the exact pass.

The exact blockwise pass in ``neighbours`` costs n^2 * dim multiply-adds: 200,000 x 512-D
faces take ~6.6 minutes on 2 cores, so 1M would take ~3 hours. Above :data:`APPROX_LIMIT`
faces an inverted-file index (FAISS ``IndexIVFScalarQuantizer``, 8-bit codes) finds each
face's candidate neighbours among the faces of the ``nprobe`` cells nearest to it; their
squared distances are then recomputed exactly from the float32 vectors, so the threshold
keeps its meaning (squared L2 on unit vectors) and only recall is approximate: a true
neighbour may be missed, a false one never enters.

Threshold components are the connected components of the kNN graph restricted to edges
with d2 <= cut. A person with more faces than k is still one component: each face links
to k of its own, and those links chain through the whole group (a random k-NN graph with
k = 40 is connected). Two faces within the threshold that share no chain of kNN edges stay
apart, where the exact pass would join them: that is the approximation, measured in
docs/scale.md (pairwise F1 against the exact path).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .neighbours import KNN, nearest_neighbours

APPROX_LIMIT = 100_000  # above this many faces the exact n^2 pass (~100 s here) is replaced
NPROBE = 16  # cells searched per face (recall/time trade-off measured in docs/scale.md)
OVERFETCH = 1.25  # candidates fetched per neighbour kept: 8-bit codes misrank near ties
TRAIN_PER_CELL, TRAIN_ROUNDS = 40, 10  # k-means of the cells: sample size a cell, rounds
_QUERY_BLOCK = 2048  # faces searched per call: bounds the gathered (block, k, dim) vectors


def threads() -> int:
    """Cores this process may use (CPU affinity, so a container's limit is respected)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _index(x: np.ndarray, nlist: int, gpu: bool) -> Any:  # a faiss.Index
    import faiss

    d = x.shape[1]
    index: Any
    if gpu:  # exact brute force is cheap on a GPU: 1M x 1M x 512 is seconds there
        res = faiss.StandardGpuResources()
        index = faiss.GpuIndexFlatL2(res, d)
        index.add(x)
        return index
    quantizer = faiss.IndexFlatL2(d)
    # 8-bit codes: a quarter of IVF-Flat's memory (0.5 GB at 1M x 512) and twice its speed
    # here (memory bound); the candidates are re-scored exactly, so only ranking suffers.
    index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit)
    # k-means on 40 faces a cell (FAISS wants >= 39), 10 rounds: at 1M x 512 training took
    # 103 s with 64 faces and 25 rounds, with no better neighbours (docs/scale.md)
    rng = np.random.default_rng(0)
    sample = x[np.sort(rng.choice(len(x), min(len(x), TRAIN_PER_CELL * nlist), replace=False))]
    index.cp.max_points_per_centroid = TRAIN_PER_CELL
    index.cp.niter = TRAIN_ROUNDS
    index.train(sample)
    index.add(x)
    return index


def _exact_d2(x: np.ndarray, sq: np.ndarray, ki: np.ndarray, start: int) -> np.ndarray:
    """Squared L2 (float32) from faces ``start..`` to their candidates ``ki``; sq = |x|^2."""
    rows = x[start : start + len(ki)]
    safe = np.maximum(ki, 0)
    dots = np.matmul(x[safe], rows[:, :, None])[:, :, 0]
    d2 = sq[start : start + len(ki), None] + sq[safe] - 2 * dots
    np.maximum(d2, 0, out=d2)
    d2[ki < 0] = np.inf
    return d2


def approx_neighbours(
    x: np.ndarray, cut: float, k: int, *, nprobe: int | None = None, gpu: bool | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Same contract as :func:`neighbours.nearest_neighbours`, from a FAISS index.

    Returns ``comp`` (components of the kNN graph restricted to d2 <= cut, or each face
    alone when ``cut`` is infinite), and each face's ``k`` nearest found neighbours with
    d2 <= cut: exact float32 squared distances ascending (inf-padded) and indices
    (-1-padded). ``gpu``: None = use a GPU when FAISS sees one (exact search there).
    """
    import faiss

    n = len(x)
    x = np.ascontiguousarray(x, dtype=np.float32)
    faiss.omp_set_num_threads(threads())
    if gpu is None:
        gpu = hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0
    kk = max(1, min(k, n - 1))
    nlist = int(np.clip(4 * np.sqrt(n), 1, n // 39 or 1))  # FAISS wants >= 39 points a cell
    index = _index(x, nlist, gpu)
    if not gpu:
        index.nprobe = min(nprobe or NPROBE, nlist)
    sq = np.einsum("ij,ij->i", x, x)
    kd = np.full((n, k), np.inf, np.float32)
    ki = np.full((n, k), -1, np.int32)
    for s in range(0, n, _QUERY_BLOCK):
        q = x[s : s + _QUERY_BLOCK]
        _, found = index.search(q, min(n, int(OVERFETCH * kk) + 1))
        found = found.astype(np.int32)
        found[found == (s + np.arange(len(q)))[:, None]] = -1  # the face itself
        d2 = _exact_d2(x, sq, found, s)
        if np.isfinite(cut):
            far = d2 > cut
            d2[far], found[far] = np.inf, -1
        order = np.argsort(d2, axis=1, kind="stable")[:, :kk]
        kd[s : s + len(q), :kk] = np.take_along_axis(d2, order, axis=1)
        ki[s : s + len(q), :kk] = np.take_along_axis(found, order, axis=1)
    del index
    if not np.isfinite(cut):
        return np.arange(n), kd, ki
    return _components(ki), kd, ki


def neighbours(
    x: np.ndarray, cut: float, k: int, approx_limit: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact pass up to ``approx_limit`` faces, FAISS above (then always with >= KNN
    neighbours, since the components come from the kNN edges)."""
    if len(x) <= approx_limit:
        return nearest_neighbours(x, cut, k)
    return approx_neighbours(x, cut, max(k, KNN))


def _components(ki: np.ndarray) -> np.ndarray:
    """Connected components of the graph of kNN edges kept in ``ki`` (labels = min member)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n, k = ki.shape
    ok = ki >= 0
    rows = np.repeat(np.arange(n, dtype=np.int32), k)[ok.ravel()]
    g = coo_matrix((np.ones(len(rows), np.int8), (rows, ki[ok])), shape=(n, n)).tocsr()
    _, cc = connected_components(g, directed=False)
    _, first = np.unique(cc, return_index=True)  # first index of each label = its min member
    return first[cc]
