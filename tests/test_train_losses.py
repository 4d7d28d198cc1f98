"""Triplet loss, miner and P x K sampler against hand computations and brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from facecluster.errors import TrainingError
from facecluster.train.losses import batch_loss, mine, squared_distances, triplet_loss
from facecluster.train.sampler import PKSampler, split


def test_loss_hand_computed() -> None:
    # a = (1, 0), p = (0.6, 0.8), n = (0, 1): d(a,p) = 0.16 + 0.64 = 0.8, d(a,n) = 2
    emb = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    d = squared_distances(emb)
    assert d[0, 1].item() == pytest.approx(0.8)
    assert d[0, 2].item() == pytest.approx(2.0)
    a, p, n = torch.tensor([0]), torch.tensor([1]), torch.tensor([2])
    assert triplet_loss(d, a, p, n, 0.2).item() == pytest.approx(0.0)  # 0.8 - 2 + 0.2 < 0
    assert triplet_loss(d, a, p, n, 1.5).item() == pytest.approx(0.3)  # 0.8 - 2 + 1.5
    # the same as the formula with anchor/positive swapped: d(p,a) = 0.8, d(p,n) = 0.4
    assert triplet_loss(d, p, a, n, 0.2).item() == pytest.approx(0.6)


def test_batch_loss_hand_computed() -> None:
    # labels 0,0,1: pairs (0,1) and (1,0); the only negative is row 2
    emb = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], requires_grad=True)
    out = batch_loss(emb, torch.tensor([0, 0, 1]), margin=1.5, mining="semi-hard")
    # (0,1,2): 0.8 - 2 + 1.5 = 0.3 (semi-hard: 0.8 < 2 < 2.3); (1,0,2): 0.8 - 0.4 + 1.5 = 1.9
    # (hard: 0.4 < 0.8, the fallback)
    assert out.triplets == 2 and out.active == 2
    assert out.loss.item() == pytest.approx((0.3 + 1.9) / 2)
    out.loss.backward()
    assert emb.grad is not None and torch.isfinite(emb.grad).all()


def _random_batch(seed: int, n_ids: int = 6, k: int = 4, extra: int = 5, dim: int = 8):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_ids).repeat_interleave(k)
    labels = torch.cat([labels, torch.arange(n_ids, n_ids + extra)])
    emb = torch.nn.functional.normalize(torch.randn(len(labels), dim, generator=g), dim=1)
    return emb, labels, n_ids * k


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("margin", [0.1, 0.5, 2.0])
def test_semi_hard_miner_matches_brute_force(seed: int, margin: float) -> None:
    emb, labels, anchors = _random_batch(seed)
    d = squared_distances(emb)
    a, p, n = mine(d, labels, margin, "semi-hard", anchors)
    chosen = {(int(x), int(y)): int(z) for x, y, z in zip(a, p, n, strict=True)}
    lab = labels.tolist()
    pairs = [(i, j) for i, j in itertools.permutations(range(anchors), 2) if lab[i] == lab[j]]
    assert sorted(chosen) == sorted(pairs)  # every anchor-positive pair, once
    for (i, j), k in chosen.items():
        assert lab[k] != lab[i]
        dap, dan = d[i, j].item(), d[i, k].item()
        band = [
            m for m in range(len(lab)) if lab[m] != lab[i] and dap < d[i, m].item() < dap + margin
        ]
        if band:  # a semi-hard negative exists: the closest one is chosen
            assert dap < dan < dap + margin
            assert dan == pytest.approx(min(d[i, m].item() for m in band))
        else:  # documented fallback: the hardest negative
            hardest = min(d[i, m].item() for m in range(len(lab)) if lab[m] != lab[i])
            assert dan == pytest.approx(hardest)


def test_hard_and_all_miners() -> None:
    emb, labels, anchors = _random_batch(3)
    d = squared_distances(emb)
    lab = labels.tolist()
    a, p, n = mine(d, labels, 0.2, "hard", anchors)
    for i, k in zip(a.tolist(), n.tolist(), strict=True):
        assert d[i, k].item() == pytest.approx(
            min(d[i, m].item() for m in range(len(lab)) if lab[m] != lab[i])
        )
    a, p, n = mine(d, labels, 0.2, "all", anchors)
    n_pairs = sum(1 for i, j in itertools.permutations(range(anchors), 2) if lab[i] == lab[j])
    negatives_each = len(lab) - 4  # K = 4 faces share the anchor's label
    assert a.numel() == n_pairs * negatives_each
    assert all(lab[x] != lab[z] for x, z in zip(a.tolist(), n.tolist(), strict=True))
    out = batch_loss(emb, labels, 0.2, "all", anchors)
    losses = triplet_loss(d, a, p, n, 0.2)
    assert out.active == int((losses > 0).sum())
    assert out.loss.item() == pytest.approx(losses.sum().item() / out.active, rel=1e-5)


def test_extra_rows_are_never_anchors_and_no_pairs_gives_zero() -> None:
    emb, labels, anchors = _random_batch(1)
    a, p, n = mine(squared_distances(emb), labels, 0.2, "semi-hard", anchors)
    assert int(a.max()) < anchors and int(p.max()) < anchors
    out = batch_loss(emb[:3], torch.tensor([0, 1, 2]), 0.2)
    assert out.triplets == 0 and out.loss.item() == 0.0


def test_sampler_batches_hold_k_faces_of_p_identities() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(30), rng.integers(1, 12, size=30))
    sampler = PKSampler(labels, p=8, k=4, extra=6, seed=5)
    eligible = {int(i) for i in sampler.eligible}
    seen: set[int] = set()
    for epoch in range(1, 4):
        batches = list(sampler.epoch(epoch))
        assert len(batches) == sampler.batches_per_epoch
        for b in batches:
            core, extra = labels[b.index[: b.anchors]], labels[b.index[b.anchors :]]
            ids, counts = np.unique(core, return_counts=True)
            assert ids.size == 8 and (counts == 4).all()
            assert set(ids.tolist()) <= eligible
            assert len(set(b.index[: b.anchors].tolist())) == 32  # K distinct faces each
            assert extra.size == 6 and not set(extra.tolist()) & set(ids.tolist())
            seen |= set(ids.tolist())
    assert seen == eligible
    # an epoch is a function of (seed, epoch): resuming replays it exactly
    again = PKSampler(labels, p=8, k=4, extra=6, seed=5)
    for x, y in zip(sampler.epoch(2), again.epoch(2), strict=True):
        assert (x.index == y.index).all()


def test_sampler_needs_two_identities_with_k_faces() -> None:
    with pytest.raises(TrainingError, match="at least 2 identities with 4"):
        PKSampler(np.array([0, 0, 0, 0, 1, 1, 2]), p=4, k=4)
    s = PKSampler(np.array([0, 0, 1, 1, 2]), p=16, k=2)
    assert s.p == 2  # capped at the identities available


def test_split_by_photo_and_identity() -> None:
    labels = np.repeat(np.arange(10), [1, 2, 3, 5, 10, 10, 4, 2, 8, 20])
    val = split(labels, 0.2, "photo", seed=0)
    for i in range(10):
        rows = labels == i
        assert (~val[rows]).sum() >= 2 or rows.sum() < 2
    assert val[labels == 9].sum() == 4 and val[labels == 0].sum() == 0
    val = split(labels, 0.3, "identity", seed=0)
    held = set(labels[val].tolist())
    assert len(held) == 3 and 0 not in held
    assert all(val[labels == i].all() for i in held)
    assert not split(labels, 0.0).any()
