"""Tests for facecluster.cluster on synthetic unit vectors (no models, fast)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from facecluster import cluster
from facecluster.cluster import (
    LINKAGES,
    agglomerative,
    apply_min_size,
    centroids,
    distance_to_centroid,
    hdbscan_labels,
    relabel,
)

# (method, extra kwargs): exact dense, memory-linear (exact per component), kNN-graph forced
PATHS = {
    "dense": {"method": "dense"},
    "sparse": {"method": "sparse"},
    "graph": {"method": "sparse", "max_dense": 0},
}


def faces(sizes, dim=128, spread=0.23, seed=0, common=0.0):
    """Unit vectors in clusters of the given sizes around random centres, shuffled.

    spread 0.23 gives within-cluster squared L2 ~ 0.1; random centres in 128-D are ~2 apart
    (``common`` > 0 pulls them towards one direction: 1.5 gives ~0.6 apart).
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(sizes), dim)) / np.sqrt(dim)
    centres[:, 0] += common
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    x = centres[truth] + spread * rng.standard_normal((len(truth), dim)) / np.sqrt(dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    perm = rng.permutation(len(truth))
    return x[perm].astype(np.float32), truth[perm]


def same_partition(a, b):
    """relabel() is canonical, so equal partitions give equal arrays."""
    return np.array_equal(relabel(a), relabel(b))


def sq_dists(x):
    x = x.astype(np.float64)
    return np.maximum((x * x).sum(1)[:, None] + (x * x).sum(1)[None, :] - 2 * x @ x.T, 0)


def test_synthetic_helper_scale():
    x, truth = faces([30, 30])
    d = sq_dists(x)
    same = truth[:, None] == truth[None, :]
    off = ~np.eye(len(x), dtype=bool)
    assert 0.05 < d[same & off].mean() < 0.15
    assert 1.7 < d[~same].mean() < 2.3


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("linkage", LINKAGES)
def test_every_linkage_recovers_clusters(linkage, path):
    x, truth = faces([25, 17, 9, 4, 2, 2])
    labels = agglomerative(x, 1.0, linkage, min_cluster_size=1, **PATHS[path])
    assert same_partition(labels, truth)
    assert labels.dtype.kind == "i" and labels.shape == truth.shape


def test_min_cluster_size_moves_small_clusters_to_unknown():
    x, truth = faces([10, 5, 2, 1])
    labels = agglomerative(x, 1.0, min_cluster_size=3)
    assert np.all(labels[truth == 0] == 0) and np.all(labels[truth == 1] == 1)
    assert np.all(labels[truth >= 2] == -1)
    assert same_partition(agglomerative(x, 1.0, min_cluster_size=1), truth)
    np.testing.assert_array_equal(
        apply_min_size([4, 4, 1, 2, 2, 2, -1], 3), [-1, -1, -1, 2, 2, 2, -1]
    )


def test_relabel_orders_by_size_then_first_member():
    np.testing.assert_array_equal(
        relabel([5, 5, 3, 3, 7, 7, 7, -1, 9, -4]), [1, 1, 2, 2, 0, 0, 0, -1, 3, -1]
    )
    assert relabel(np.array([], dtype=int)).shape == (0,)
    np.testing.assert_array_equal(relabel([-1, -1]), [-1, -1])


def test_output_is_deterministic_and_canonical():
    x, truth = faces([8, 8, 5, 3], seed=3)
    a = agglomerative(x, 1.0)
    np.testing.assert_array_equal(a, agglomerative(x, 1.0))
    # Same partition -> same numbers: sizes decreasing, ties by first member index.
    sizes = np.bincount(a[a >= 0])
    assert np.all(np.diff(sizes) <= 0)
    first = [np.flatnonzero(a == k)[0] for k in range(len(sizes))]
    assert first[0] < first[1]  # the two clusters of 8 tie on size


@pytest.mark.parametrize("linkage", LINKAGES)
def test_threshold_is_squared_l2_and_inclusive(linkage):
    # Two unit vectors with d2 = 2 - 2cos = 0.30 exactly, plus a far one.
    cos = 1 - 0.30 / 2
    x = np.zeros((3, 128), dtype=np.float32)
    x[0, 0] = 1
    x[1, 0], x[1, 1] = cos, np.sqrt(1 - cos**2)
    x[2, 2] = 1
    assert abs(sq_dists(x)[0, 1] - 0.30) < 1e-6
    for kwargs in PATHS.values():
        merged = agglomerative(x, 0.31, linkage, **kwargs)
        np.testing.assert_array_equal(merged, [0, 0, -1])
        apart = agglomerative(x, 0.29, linkage, **kwargs)
        np.testing.assert_array_equal(apart, [-1, -1, -1])
        np.testing.assert_array_equal(agglomerative(x, 0.29, linkage, 1, **kwargs), [0, 1, 2])


def overlapping(n=1500, seed=5):
    """Clusters that touch and chain at threshold ~0.8: components hold several clusters."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((60, 32))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(0, 60, n)] + 0.6 * rng.standard_normal((n, 32)) / np.sqrt(32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("linkage", LINKAGES)
def test_sparse_path_agrees_with_dense_on_separated_data(linkage):
    sizes = np.random.default_rng(1).integers(1, 60, 100)
    x, truth = faces(sizes, spread=0.4, seed=1)  # n ~ 3000, two tile rows
    assert 2500 < len(x) < 3500
    dense = agglomerative(x, 1.0, linkage, 1, method="dense")
    assert same_partition(dense, truth)
    for kwargs in (PATHS["sparse"], PATHS["graph"]):
        assert same_partition(agglomerative(x, 1.0, linkage, 1, **kwargs), dense)


@pytest.mark.parametrize("linkage", LINKAGES)
def test_sparse_components_are_exact_on_overlapping_data(linkage):
    x = overlapping()
    dense = agglomerative(x, 0.8, linkage, 1, method="dense")
    assert 1 < len(np.unique(dense)) < len(x) // 2  # a non-trivial cut
    assert same_partition(agglomerative(x, 0.8, linkage, 1, method="sparse"), dense)


@pytest.mark.parametrize("linkage", ["average", "weighted", "complete"])
def test_graph_linkage_is_exact_when_the_graph_is_complete(linkage):
    x = overlapping(600, seed=7)
    dense = agglomerative(x, 0.8, linkage, 1, method="dense")
    graph = agglomerative(x, 0.8, linkage, 1, method="sparse", max_dense=0, knn=len(x))
    assert same_partition(graph, dense)


def pair_f1(a, b):
    """Pairwise F1 between two partitions (contingency counts)."""

    def pairs(counts):
        return (counts * (counts - 1) / 2).sum()

    both = pairs(np.unique(np.stack([a, b]), axis=1, return_counts=True)[1])
    pa, pb = pairs(np.unique(a, return_counts=True)[1]), pairs(np.unique(b, return_counts=True)[1])
    return 2 * both / (pa + pb)


def test_graph_average_with_small_knn_stays_close_to_dense():
    x = overlapping(1200, seed=9)
    dense = agglomerative(x, 0.8, "average", 1, method="dense")
    graph = agglomerative(x, 0.8, "average", 1, method="sparse", max_dense=0, knn=15)
    assert pair_f1(dense, graph) > 0.95


@pytest.mark.parametrize("linkage", ["average", "weighted"])
def test_compiled_graph_linkage_gives_the_reference_labels(linkage):
    """The numba loop (graphlink) against the Python reference, on one big component of
    overlapping faces with a small k, where merge order and stale heap keys matter."""
    from facecluster.cluster import hierarchical
    from facecluster.cluster.neighbours import nearest_neighbours

    x = overlapping(1500, seed=13)
    comp, kd, ki = nearest_neighbours(x, 0.8, 12)
    assert np.bincount(comp).max() > 200  # components of many clusters chained together
    reference = hierarchical._graph(x, ki, kd, 0.8, linkage, compiled=False)
    compiled = hierarchical._graph(x, ki, kd, 0.8, linkage)
    assert 20 < len(np.unique(reference)) < len(x) // 3  # a cut with real merges
    np.testing.assert_array_equal(compiled, reference)
    # rows: faces addressed inside a larger array (a component of a bigger set), no copy
    big = np.concatenate([overlapping(300, seed=14), x])
    rows = np.arange(300, 300 + len(x))
    np.testing.assert_array_equal(
        hierarchical._graph(big, ki, kd, 0.8, linkage, rows=rows), reference
    )


def test_blockwise_neighbours_match_brute_force(monkeypatch):
    from scipy.sparse.csgraph import connected_components

    from facecluster.cluster import neighbours

    monkeypatch.setattr(neighbours, "_BLOCK", 64)  # many tiles, both orientations
    x = overlapping(400, seed=11)
    d = sq_dists(x)
    np.fill_diagonal(d, np.inf)
    comp, kd, ki = cluster.nearest_neighbours(x, 0.8, 10)
    _, expected = connected_components(d <= 0.8, directed=False)
    assert same_partition(comp, expected)
    want = np.sort(np.where(d <= 0.8, d, np.inf), axis=1)[:, :10]
    np.testing.assert_allclose(kd, want, atol=1e-5)
    got = np.where(ki >= 0, d[np.arange(len(x))[:, None], np.maximum(ki, 0)], np.inf)
    np.testing.assert_allclose(got, want, atol=1e-5)  # indices point at those distances
    _, kd_all, _ = cluster.nearest_neighbours(x, np.inf, 10)  # plain kNN (hdbscan)
    np.testing.assert_allclose(kd_all, np.sort(d, axis=1)[:, :10], atol=1e-5)


@pytest.mark.parametrize("method", ["exact", "knn"])
def test_hdbscan_recovers_clusters_and_marks_outliers(method):
    # Outliers must be farther from the clusters than the clusters are from each other.
    x, truth = faces([40, 30, 25, 20], seed=4, common=1.5)
    assert sq_dists(x).max() < 1.2
    rng = np.random.default_rng(4)
    outliers = rng.standard_normal((5, x.shape[1])).astype(np.float32)
    outliers /= np.linalg.norm(outliers, axis=1, keepdims=True)
    labels = hdbscan_labels(np.vstack([x, outliers]), min_cluster_size=5, method=method)
    assert np.all(labels[len(x) :] == -1)
    assert same_partition(labels[: len(x)], truth)


def test_hdbscan_small_inputs():
    assert hdbscan_labels(np.zeros((0, 128), np.float32)).shape == (0,)
    np.testing.assert_array_equal(hdbscan_labels(faces([1])[0]), [-1])
    np.testing.assert_array_equal(hdbscan_labels(faces([1, 1])[0]), [-1, -1])


@pytest.mark.parametrize("kwargs", list(PATHS.values()))
def test_empty_and_single_inputs(kwargs):
    empty = agglomerative(np.zeros((0, 128), np.float32), 1.0, **kwargs)
    assert empty.shape == (0,) and empty.dtype.kind == "i"
    one = faces([1])[0]
    np.testing.assert_array_equal(agglomerative(one, 1.0, **kwargs), [-1])
    np.testing.assert_array_equal(agglomerative(one, 1.0, min_cluster_size=1, **kwargs), [0])


def test_centroids_and_distance_to_centroid():
    x = np.array([[1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.float32)
    labels = np.array([3, 3, -1, 7])
    ids, cent = centroids(x, labels)
    np.testing.assert_array_equal(ids, [3, 7])
    np.testing.assert_allclose(cent, [[2**-0.5, 2**-0.5], [0, -1]], atol=1e-6)
    assert cent.dtype == np.float32
    d = distance_to_centroid(x, labels)
    np.testing.assert_allclose(d[[0, 1, 3]], [2 - np.sqrt(2), 2 - np.sqrt(2), 0], atol=1e-6)
    assert np.isnan(d[2])
    ids, cent = centroids(np.zeros((0, 4), np.float32), np.zeros(0, int))
    assert ids.shape == (0,) and cent.shape == (0, 4)
    assert (
        distance_to_centroid(x, [-1, -1, -1, -1]).tolist()
        == [pytest.approx(np.nan, nan_ok=True)] * 4
    )


def test_invalid_arguments():
    x, _ = faces([3, 3])
    with pytest.raises(ValueError, match="linkage"):
        agglomerative(x, 1.0, "ward")
    with pytest.raises(ValueError, match="threshold"):
        agglomerative(x, -0.1)
    with pytest.raises(ValueError, match="method"):
        agglomerative(x, 1.0, method="fast")
    with pytest.raises(ValueError, match="2-D"):
        agglomerative(x[0], 1.0)
    with pytest.raises(ValueError, match="NaN"):
        agglomerative(np.full((2, 4), np.nan, np.float32), 1.0)


def test_module_import_does_not_load_heavy_dependencies():
    code = (
        "import sys, facecluster.cluster; "
        "print(sorted(m for m in ('scipy', 'sklearn', 'hdbscan') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
