"""Triplet loss on L2-normalised embeddings with online mining inside each mini-batch.

``L = max(d(a, p) - d(a, n) + margin, 0)`` with ``d`` the squared L2 distance, as in the
FaceNet paper. Triplets are chosen on the batch's distance matrix (``mine``):

- every anchor-positive pair (a, p), a != p, of the batch's anchors is used, both ways round;
- ``semi-hard``: for each pair, the closest negative n with ``d(a,p) < d(a,n) <
  d(a,p) + margin`` (the paper's semi-hard band); when the batch has none, the hardest
  negative (smallest ``d(a,n)``) instead. That fallback is active when ``d(a,n) <= d(a,p)``
  and contributes zero loss when every negative is already beyond the margin;
- ``hard``: the hardest negative for every pair;
- ``all``: every negative for every pair (batch-all); the loss is the mean over the active
  triplets only, so that the many satisfied ones do not dilute it.

Torch is imported inside the functions (the package must stay cheap to import).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

MINING = ("semi-hard", "hard", "all")


@dataclass(frozen=True)
class BatchLoss:
    loss: torch.Tensor  # scalar, differentiable
    triplets: int  # triplets mined
    active: int  # triplets with a positive loss


def squared_distances(emb: torch.Tensor) -> torch.Tensor:
    """(n, n) squared L2 distances between the rows of ``emb``, clamped at 0."""
    sq = (emb * emb).sum(1)
    d = sq[:, None] + sq[None, :] - 2.0 * emb @ emb.T
    return d.clamp_min(0.0)


def mine(
    dist: torch.Tensor,
    labels: torch.Tensor,
    margin: float,
    mining: str = "semi-hard",
    anchors: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices (a, p, n) of the mined triplets.

    ``anchors``: only the first ``anchors`` rows may be anchors or positives (the P x K
    part of a batch); the rest are extra negatives. Default: every row.
    """
    import torch

    if mining not in MINING:
        raise ValueError(f"mining must be one of {', '.join(MINING)}, not {mining!r}")
    n_rows = dist.shape[0]
    k = n_rows if anchors is None else anchors
    dist = dist.detach()
    same = labels[:, None] == labels[None, :]
    pos = same[:k, :k] & ~torch.eye(k, dtype=torch.bool, device=dist.device)
    a, p = pos.nonzero(as_tuple=True)
    if a.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=dist.device)
        return empty, empty, empty
    neg = ~same[a]  # (T, n_rows): candidate negatives of each pair
    if mining == "all":
        t, n = neg.nonzero(as_tuple=True)
        return a[t], p[t], n
    dan = dist[a]  # (T, n_rows)
    inf = torch.full_like(dan, float("inf"))
    hardest = torch.where(neg, dan, inf).min(1)
    keep = torch.isfinite(hardest.values)  # pairs with at least one negative
    n_idx = hardest.indices
    if mining == "semi-hard":
        dap = dist[a, p][:, None]
        band = neg & (dan > dap) & (dan < dap + margin)
        semi = torch.where(band, dan, inf).min(1)
        has = torch.isfinite(semi.values)
        n_idx = torch.where(has, semi.indices, n_idx)
    return a[keep], p[keep], n_idx[keep]


def triplet_loss(
    dist: torch.Tensor, a: torch.Tensor, p: torch.Tensor, n: torch.Tensor, margin: float
) -> torch.Tensor:
    """Per-triplet loss ``max(d(a,p) - d(a,n) + margin, 0)``."""
    return (dist[a, p] - dist[a, n] + margin).clamp_min(0.0)


def batch_loss(
    emb: torch.Tensor,
    labels: torch.Tensor,
    margin: float,
    mining: str = "semi-hard",
    anchors: int | None = None,
) -> BatchLoss:
    """Mine the batch and average the triplet loss (see the module docstring)."""
    dist = squared_distances(emb)
    a, p, n = mine(dist, labels, margin, mining, anchors)
    if a.numel() == 0:
        return BatchLoss(emb.sum() * 0.0, 0, 0)
    losses = triplet_loss(dist, a, p, n, margin)
    active = losses > 0
    n_active = int(active.sum())
    if mining == "all":
        loss = losses.sum() / max(n_active, 1)
    else:
        loss = losses.mean()
    return BatchLoss(loss, int(a.numel()), n_active)
