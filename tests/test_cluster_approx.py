"""The FAISS path for large sets (cluster/approx.py) against the exact pass, on small
synthetic sets forced through it by lowering the cut-over (fast, no models)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facecluster import cluster
from facecluster.cluster import GroupSettings, agglomerative, approx, cluster_faces, hdbscan_labels
from facecluster.cluster.neighbours import nearest_neighbours

from .test_cluster import faces, sq_dists


def overlapping(n_ids=120, seed=0, dim=64):
    """Identities that overlap the way dlib's do (same person d2 ~0.09, others ~0.3, some
    pairs of different people inside the 0.155 threshold), with heavy-tailed sizes."""
    rng = np.random.default_rng(seed)
    sizes = np.minimum(1 + rng.pareto(1.0, n_ids).astype(int), 200)
    common = rng.standard_normal(dim)
    common /= np.linalg.norm(common)
    offsets = 0.37 * rng.standard_normal((n_ids, dim)) / np.sqrt(dim)
    truth = np.repeat(np.arange(n_ids), sizes)
    spread = np.sqrt(rng.uniform(0.02, 0.08, n_ids))[truth]
    x = common + offsets[truth] + spread[:, None] * rng.standard_normal((len(truth), dim)) / 8
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    perm = rng.permutation(len(truth))
    return x[perm].astype(np.float32), truth[perm]


def pair_f1(a, b):
    """Pairwise F1 between two labellings, each -1 a face of its own."""
    a = np.where(a < 0, a.max(initial=0) + 1 + np.arange(len(a)), a)
    b = np.where(b < 0, b.max(initial=0) + 1 + np.arange(len(b)), b)

    def pairs(counts):
        return (counts * (counts - 1) / 2).sum()

    both = pairs(np.unique(np.stack([a, b]), axis=1, return_counts=True)[1])
    pa, pb = pairs(np.unique(a, return_counts=True)[1]), pairs(np.unique(b, return_counts=True)[1])
    return 2 * both / (pa + pb)


def test_overlapping_helper_is_realistic():
    x, truth = overlapping()
    d, same = sq_dists(x), truth[:, None] == truth[None, :]
    off = ~np.eye(len(x), dtype=bool)
    assert 0.05 < np.median(d[same & off]) < 0.13 and 0.25 < np.median(d[~same]) < 0.4
    assert (d[~same] <= 0.155).any()  # look-alikes inside the threshold


def test_searching_every_cell_finds_the_exact_neighbours():
    x, _ = overlapping(seed=1)
    comp, kd, ki = approx.approx_neighbours(x, 0.155, 20, nprobe=10_000)  # nprobe >= nlist
    comp0, kd0, _ = nearest_neighbours(x, 0.155, 20)
    np.testing.assert_allclose(kd, kd0, atol=1e-5)
    assert np.array_equal(cluster.relabel(comp), cluster.relabel(comp0))


def test_found_neighbours_are_true_distances_within_the_cut():
    x, _ = overlapping(seed=2)
    _, kd, ki = approx.approx_neighbours(x, 0.155, 20, nprobe=2)  # few cells: low recall
    d = sq_dists(x)
    found = ki >= 0
    assert found.mean() > 0.5
    rows = np.nonzero(found)[0]
    np.testing.assert_allclose(kd[found], d[rows, ki[found]], atol=1e-5)  # never a false one
    assert (kd[found] <= 0.155).all() and (ki != np.arange(len(x))[:, None]).all()
    assert (kd[:, :-1] <= kd[:, 1:]).all()  # ascending, inf-padded


def test_a_person_with_many_more_faces_than_k_stays_one_component():
    x, truth = faces([1500, 40, 30], spread=0.23, seed=3)  # 1500 faces, k = 10
    comp, _, _ = approx.approx_neighbours(x, 0.155 * 3, 10)
    assert np.array_equal(cluster.relabel(comp), cluster.relabel(truth))


@pytest.mark.parametrize("linkage", ["weighted", "average", "complete"])
def test_approx_grouping_agrees_with_the_exact_path(linkage):
    x, truth = overlapping(seed=4)
    # max_dense=0: the kNN-graph linkage on every component, as in the huge sets
    exact = agglomerative(x, 0.155, linkage, method="sparse", max_dense=0)
    fast = agglomerative(x, 0.155, linkage, method="approx", max_dense=0)
    assert pair_f1(exact, fast) >= 0.99
    assert pair_f1(truth, fast) > 0.6  # a real grouping (complete linkage splits most)


def test_single_linkage_components_only_split_never_join():
    # Single linkage is the threshold component: above the cut-over it links faces only
    # through kNN edges, so two big groups joined by one far pair can come apart.
    x, _ = overlapping(seed=4)
    exact = agglomerative(x, 0.155, "single", 1, method="sparse")
    fast = agglomerative(x, 0.155, "single", 1, method="approx")
    pairs = np.unique(np.stack([exact, fast]), axis=1)
    assert len(np.unique(pairs[1])) == pairs.shape[1]  # each approx group inside one exact
    assert pair_f1(exact, fast) > 0.9


def test_the_cut_over_switches_group_to_the_approximate_path(monkeypatch):
    x, _ = overlapping(seed=5)
    calls = []
    real = approx.approx_neighbours
    spy = lambda *a, **k: calls.append(1) or real(*a, **k)  # noqa: E731
    monkeypatch.setattr(approx, "approx_neighbours", spy)
    below = cluster_faces(x, GroupSettings(threshold=0.155))
    assert calls == []  # at most APPROX_LIMIT faces: the exact pass
    monkeypatch.setattr(approx, "APPROX_LIMIT", len(x) - 1)
    above = cluster_faces(x, GroupSettings(threshold=0.155))
    assert calls == [1] and pair_f1(below, above) >= 0.99
    from facecluster.cluster import density

    monkeypatch.setattr(density, "HDBSCAN_DENSE_LIMIT", 0)  # the kNN-MST path
    hdb = cluster_faces(x, GroupSettings(method="hdbscan"))
    assert calls == [1, 1]
    assert pair_f1(hdbscan_labels(x, 2, method="knn", approx_limit=len(x)), hdb) > 0.95


def test_hdbscan_on_the_approximate_graph_recovers_clusters():
    x, truth = faces([60, 50, 40, 30], seed=6, common=1.5)
    labels = hdbscan_labels(x, 5, approx_limit=0)
    assert pair_f1(truth, labels) > 0.95


@pytest.mark.model
def test_group_on_real_faces_is_the_same_above_the_cut_over(scanned_sample, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from facecluster.cli import app

    from .conftest import db_copy

    def persons(db, report):
        result = CliRunner().invoke(app, ["group", "--db", str(db), "--report", str(report)])
        assert result.exit_code == 0, result.output
        data = json.loads(report.read_text())
        return sorted(sorted(f["photo"] for f in p["faces"]) for p in data["persons"])

    exact = persons(db_copy(scanned_sample, tmp_path / "a.db"), tmp_path / "a.json")
    monkeypatch.setattr(approx, "APPROX_LIMIT", 0)
    assert persons(db_copy(scanned_sample, tmp_path / "b.db"), tmp_path / "b.json") == exact
    assert len(exact) == 4
