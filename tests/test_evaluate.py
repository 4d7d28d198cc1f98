"""Tests for facecluster.evaluate: hand-computed cases and brute-force references."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest

from facecluster import evaluate as ev
from facecluster.evaluate import (
    PRF,
    bcubed_prf,
    best_by,
    cluster_report,
    nmi,
    pair_distances,
    pairwise_prf,
    roc_auc,
    sweep,
    tar_at_far,
    verification_accuracy,
    verification_report,
)

# Items a, b, c, d, e.
TRUE = np.array([0, 0, 0, 1, 1])  # classes {a,b,c}, {d,e}
PRED = np.array([0, 0, 1, 1, 1])  # clusters {a,b}, {c,d,e}


def assert_prf(got: PRF, precision: float, recall: float) -> None:
    assert got.precision == pytest.approx(precision)
    assert got.recall == pytest.approx(recall)
    s = precision + recall
    assert got.f1 == pytest.approx(2 * precision * recall / s if s else 0.0)


# --------------------------------------------------------------------------- references


def brute_pairwise(true: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """O(n^2) pairwise precision/recall; -1 predictions never pair with anything."""
    tp = pp = tpairs = 0
    for i, j in itertools.combinations(range(len(true)), 2):
        same_pred = pred[i] == pred[j] and pred[i] != -1
        same_true = true[i] == true[j]
        pp += same_pred
        tpairs += same_true
        tp += same_pred and same_true
    return (tp / pp if pp else 1.0), (tp / tpairs if tpairs else 1.0)


def brute_bcubed(true: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """O(n^2) BCubed precision/recall; a -1 item's cluster is just itself."""
    n = len(true)
    ps, rs = [], []
    for i in range(n):
        cluster = [i] if pred[i] == -1 else [j for j in range(n) if pred[j] == pred[i]]
        klass = [j for j in range(n) if true[j] == true[i]]
        both = len(set(cluster) & set(klass))
        ps.append(both / len(cluster))
        rs.append(both / len(klass))
    return float(np.mean(ps)), float(np.mean(rs))


def singletons(pred: np.ndarray) -> list[object]:
    """Give each -1 item a label of its own."""
    return [("unknown", i) if p == -1 else p for i, p in enumerate(pred)]


def brute_nmi(true: np.ndarray, pred: np.ndarray) -> float:
    """NMI from the definition (natural log, arithmetic mean of entropies), with the same
    limit cases as scikit-learn: 1 when both sides are one group, 0 when MI is 0."""
    t, p = [int(x) for x in true], singletons(pred)
    n = len(t)
    ct, cp, cij = Counter(t), Counter(p), Counter(zip(t, p, strict=True))
    if len(ct) == len(cp) == 1:
        return 1.0
    mi = sum(v / n * math.log(n * v / (ct[i] * cp[j])) for (i, j), v in cij.items())
    if mi <= 1e-15:
        return 0.0

    def h(c: Counter) -> float:
        return -sum(v / n * math.log(v / n) for v in c.values())

    return mi / ((h(ct) + h(cp)) / 2)


def brute_auc(d: np.ndarray, same: np.ndarray) -> float:
    """P(d_same < d_diff) over all (same, diff) pairs, ties counting half."""
    wins = [1.0 if a < b else 0.5 if a == b else 0.0 for a in d[same] for b in d[~same]]
    return float(np.mean(wins))


# --------------------------------------------------------------------------- clustering


def test_pairwise_hand_case() -> None:
    # Predicted pairs: {a,b} -> 1, {c,d,e} -> 3: 4 in all.
    # True pairs: {a,b,c} -> 3, {d,e} -> 1: 4 in all.
    # TP pairs: (a,b) and (d,e) = 2.  P = 2/4, R = 2/4.
    assert_prf(pairwise_prf(TRUE, PRED), 0.5, 0.5)


def test_bcubed_hand_case() -> None:
    # item  cluster  class    |both|  precision  recall
    # a     {a,b}    {a,b,c}  2       2/2        2/3
    # b     {a,b}    {a,b,c}  2       2/2        2/3
    # c     {c,d,e}  {a,b,c}  1       1/3        1/3
    # d     {c,d,e}  {d,e}    2       2/3        2/2
    # e     {c,d,e}  {d,e}    2       2/3        2/2
    # P = (1 + 1 + 1/3 + 2/3 + 2/3) / 5 = 11/15;  R = (2/3 + 2/3 + 1/3 + 1 + 1) / 5 = 11/15
    assert_prf(bcubed_prf(TRUE, PRED), 11 / 15, 11 / 15)


def test_perfect_clustering() -> None:
    pred = np.array([5, 5, 5, 9, 9])  # same partition, different ids
    for prf in (pairwise_prf(TRUE, pred), bcubed_prf(TRUE, pred)):
        assert_prf(prf, 1.0, 1.0)
    assert nmi(TRUE, pred) == pytest.approx(1.0)


def test_everything_in_one_cluster() -> None:
    pred = np.full(5, 7)
    # Predicted pairs C(5,2) = 10, TP = true pairs = 4: P = 0.4, R = 1.
    assert_prf(pairwise_prf(TRUE, pred), 0.4, 1.0)
    # BCubed precision: 3 items at 3/5, 2 items at 2/5 -> (9/5 + 4/5) / 5 = 13/25.
    assert_prf(bcubed_prf(TRUE, pred), 13 / 25, 1.0)


@pytest.mark.parametrize("pred", [np.arange(5), np.full(5, -1)])
def test_all_singletons_and_all_unknown(pred: np.ndarray) -> None:
    # No predicted pairs -> precision 1; TP = 0 of 4 true pairs -> recall 0; f1 = 0.
    assert_prf(pairwise_prf(TRUE, pred), 1.0, 0.0)
    # BCubed recall = mean 1/|class| = (3 * 1/3 + 2 * 1/2) / 5 = 0.4.
    assert_prf(bcubed_prf(TRUE, pred), 1.0, 0.4)


def test_unknown_items_are_singletons_not_a_cluster() -> None:
    true = np.array([0, 0, 1, 1])
    pred = np.array([-1, -1, 5, 5])
    # If -1 were one cluster this would be perfect; as singletons only (c,d) pairs.
    assert_prf(pairwise_prf(true, pred), 1.0, 0.5)
    # Recall: a, b -> 1/2 each; c, d -> 1 each: 3/4.
    assert_prf(bcubed_prf(true, pred), 1.0, 0.75)
    assert nmi(true, pred) < 1.0


def test_label_permutation_invariance() -> None:
    rng = np.random.default_rng(1)
    true = rng.integers(0, 6, 80)
    pred = rng.integers(-1, 8, 80)
    perm_t = rng.permutation(100) + 3  # relabel classes
    perm_p = rng.permutation(100) + 3  # relabel clusters, keeping -1 as -1
    true2 = perm_t[true]
    pred2 = np.where(pred == -1, -1, perm_p[np.maximum(pred, 0)])
    order = rng.permutation(80)  # and shuffle the items
    for fn in (pairwise_prf, bcubed_prf):
        a, b = fn(true, pred), fn(true2[order], pred2[order])
        assert a.precision == pytest.approx(b.precision)
        assert a.recall == pytest.approx(b.recall)
    assert nmi(true, pred) == pytest.approx(nmi(true2[order], pred2[order]))


@pytest.mark.parametrize("seed", range(6))
def test_against_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 60
    true = rng.integers(0, rng.integers(1, 12), n)
    pred = rng.integers(-1, rng.integers(1, 12), n)  # includes -1
    assert_prf(pairwise_prf(true, pred), *brute_pairwise(true, pred))
    assert_prf(bcubed_prf(true, pred), *brute_bcubed(true, pred))
    assert nmi(true, pred) == pytest.approx(brute_nmi(true, pred))


def test_nmi_hand_case() -> None:
    # true {a,b},{c,d}; pred {a,b},{c},{d} (c, d unknown -> singletons).
    # H(true) = ln 2; H(pred) = -(1/2 ln 1/2 + 2 * 1/4 ln 1/4) = 1.5 ln 2.
    # MI = H(true) - H(true | pred) = ln 2 (pred refines true).
    # NMI = ln 2 / ((ln 2 + 1.5 ln 2) / 2) = 0.8.
    true = np.array([0, 0, 1, 1])
    pred = np.array([4, 4, -1, -1])
    assert nmi(true, pred) == pytest.approx(0.8)
    assert nmi(true, [4, 4, -1, -1]) == pytest.approx(brute_nmi(true, pred))


def test_nmi_limit_cases() -> None:
    assert nmi([0, 0, 0], [5, 5, 5]) == 1.0  # both one group
    assert nmi([0, 0, 1, 1], [3, 3, 3, 3]) == 0.0  # one cluster: no information
    assert nmi([0, 1, 0, 1], [0, 0, 1, 1]) == pytest.approx(0.0)  # independent


def test_cluster_report() -> None:
    true = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([3, 3, 3, -1, 4, 4])
    rep = cluster_report(true, pred, min_size=3)
    assert rep.n_items == 6
    assert rep.n_clusters == 2  # {3, 4}; -1 is not a cluster
    assert rep.n_identities == 3
    assert rep.clusters_ge_min == 1  # cluster 3 has 3 members
    assert rep.identities_ge_min == 1  # identity 0 has 3 members
    assert rep.unknown_rate == pytest.approx(1 / 6)
    assert rep.pairwise == pairwise_prf(true, pred)
    assert rep.bcubed == bcubed_prf(true, pred)
    d = rep.as_dict()
    assert d["unknown_rate"] == 0.1667
    assert d["n_clusters"] == 2
    assert d["pairwise_f1"] == round(rep.pairwise.f1, 4)
    assert {"bcubed_precision", "bcubed_recall", "nmi", "min_size"} <= d.keys()
    assert all(type(v) in (int, float) for v in d.values())


def test_bad_labels_rejected() -> None:
    with pytest.raises(ValueError):
        pairwise_prf([0, 1], [0, 1, 2])
    with pytest.raises(ValueError):
        bcubed_prf([], [])
    with pytest.raises(TypeError):
        pairwise_prf([0.0, 1.0], [0, 1])


def test_sweep_and_best_by() -> None:
    def cluster_fn(t: float) -> np.ndarray:
        return PRED if t < 0.5 else TRUE  # the larger threshold is perfect

    rows = sweep([0.3, 0.7], cluster_fn, TRUE)
    assert [r["threshold"] for r in rows] == [0.3, 0.7]
    assert rows[0]["pairwise_f1"] == 0.5
    assert best_by(rows)["threshold"] == 0.7
    assert best_by(rows, key="unknown_rate")["threshold"] == 0.3  # tie -> first
    with pytest.raises(ValueError):
        best_by([])


# --------------------------------------------------------------------------- verification


def test_verification_hand_case() -> None:
    d = np.array([0.1, 0.2, 0.3, 0.5, 0.6])
    same = np.array([True, True, False, True, False])
    # t=0.1: 3/5, t=0.2: 4/5, t=0.3: 3/5, t=0.5: 4/5, t=0.6: 3/5, accept none: 2/5.
    assert verification_accuracy(d, same, 0.2) == pytest.approx(0.8)
    assert verification_accuracy(d, same, 0.3) == pytest.approx(0.6)
    rep = verification_report(d, same)
    assert rep.best_accuracy == pytest.approx(0.8)
    assert rep.best_threshold in (0.2, 0.5)
    assert verification_accuracy(d, same, rep.best_threshold) == pytest.approx(rep.best_accuracy)
    assert (rep.n_same, rep.n_diff) == (3, 2)
    # (same, diff) comparisons with d_same < d_diff: 0.1 and 0.2 beat 0.3 and 0.6, 0.5 beats
    # 0.6 only -> 5 of 6.
    assert rep.roc_auc == pytest.approx(5 / 6)
    assert rep.as_dict()["n_same"] == 3


def test_best_threshold_can_accept_nothing() -> None:
    d = np.array([0.1, 0.2, 0.3])
    same = np.array([False, False, True])
    rep = verification_report(d, same)
    # Accept nothing: 2/3; t=0.1: 1/3; t=0.2: 0/3; t=0.3: 1/3 -> best is below every d.
    assert rep.best_accuracy == pytest.approx(2 / 3)
    assert rep.best_threshold < 0.1
    assert verification_accuracy(d, same, rep.best_threshold) == pytest.approx(2 / 3)


def test_best_threshold_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    d = np.round(rng.uniform(0, 4, 300), 1)  # many ties
    same = rng.random(300) < 0.4 + 0.1 * (d < 2)
    rep = verification_report(d, same)
    best = max(verification_accuracy(d, same, t) for t in np.r_[-1.0, d])
    assert rep.best_accuracy == pytest.approx(best)
    assert verification_accuracy(d, same, rep.best_threshold) == pytest.approx(best)


def test_tar_at_far_with_1000_different_pairs() -> None:
    diff = 1.0 + np.arange(1000) / 1000  # 1.000, 1.001, ..., 1.999
    same_d = np.array([0.5] * 5 + [1.0005] * 3 + [1.5] * 2)  # 10 same pairs
    d = np.r_[diff, same_d]
    same = np.r_[np.zeros(1000, bool), np.ones(10, bool)]
    # FAR <= 1e-3 allows 1 false accept: t = 1.0005 (accepts diff 1.000 only); TAR = 8/10.
    assert tar_at_far(d, same, 1e-3) == pytest.approx((0.8, 1.0005))
    # FAR <= 2e-3 allows 2: t = 1.001; TAR still 8/10.
    assert tar_at_far(d, same, 2e-3) == pytest.approx((0.8, 1.001))
    # FAR = 0: t = 0.5, the last distance below the first different pair; TAR 5/10.
    assert tar_at_far(d, same, 0.0) == pytest.approx((0.5, 0.5))
    rep = verification_report(d, same, far=1e-3)
    assert (rep.tar, rep.tar_threshold, rep.far) == pytest.approx((0.8, 1.0005, 1e-3))
    assert (rep.n_same, rep.n_diff) == (10, 1000)


def test_tar_at_far_nothing_acceptable() -> None:
    tar, t = tar_at_far([0.1, 0.2], [False, True], far=0.0)
    assert tar == 0.0
    assert t < 0.1


def test_roc_auc_matches_brute_force() -> None:
    rng = np.random.default_rng(4)
    d = np.round(rng.uniform(0, 4, 300), 1)  # many ties
    same = rng.random(300) < np.where(d < 1.5, 0.7, 0.2)
    assert roc_auc(d, same) == pytest.approx(brute_auc(d, same))
    assert roc_auc([0.1, 0.9], [True, False]) == 1.0
    assert np.isnan(roc_auc([0.1, 0.9], [True, True]))


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_pair_distances_all_pairs() -> None:
    rng = np.random.default_rng(5)
    emb = _unit(rng, 30, 16)
    labels = rng.integers(0, 5, 30)
    d, same = pair_distances(emb, labels)
    pairs = list(itertools.combinations(range(30), 2))
    assert d.shape == same.shape == (len(pairs),)
    expected = [np.sum((emb[i] - emb[j]) ** 2) for i, j in pairs]
    np.testing.assert_allclose(d, expected, atol=1e-5)
    np.testing.assert_array_equal(same, [labels[i] == labels[j] for i, j in pairs])
    assert d.dtype == np.float32


def test_pair_distances_clipped() -> None:
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
    d, same = pair_distances(emb, np.array([0, 0, 1]))
    np.testing.assert_allclose(d, [0.0, 4.0, 4.0])
    assert d.min() >= 0.0 and d.max() <= 4.0
    np.testing.assert_array_equal(same, [True, False, False])


def test_pair_index_matches_triu() -> None:
    for n in (2, 3, 7, 50):
        iu, ju = np.triu_indices(n, k=1)
        i, j = ev.pair_index(np.arange(n * (n - 1) // 2, dtype=np.int64), n)
        np.testing.assert_array_equal(i, iu)
        np.testing.assert_array_equal(j, ju)


def test_pair_distances_sampled() -> None:
    rng = np.random.default_rng(6)
    emb = _unit(rng, 50, 8)
    labels = rng.integers(0, 4, 50)
    full_d, _ = pair_distances(emb, labels)
    d, same = pair_distances(emb, labels, max_pairs=100)
    assert d.shape == same.shape == (100,)
    # Every sampled distance is one of the full set, and no pair is drawn twice.
    nearest = np.abs(d[:, None] - full_d[None, :]).argmin(axis=1)
    np.testing.assert_allclose(d, full_d[nearest], atol=1e-5)
    assert np.unique(nearest).size == 100
    # Default rng is seeded (deterministic); an explicit Generator is honoured.
    np.testing.assert_array_equal(d, pair_distances(emb, labels, max_pairs=100)[0])
    d2, _ = pair_distances(emb, labels, max_pairs=100, rng=np.random.default_rng(1))
    assert not np.array_equal(d, d2)
    # max_pairs at or above the total returns every pair.
    assert pair_distances(emb, labels, max_pairs=50 * 49 // 2)[0].size == 1225
