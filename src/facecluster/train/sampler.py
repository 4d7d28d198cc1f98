"""P x K batches and the train / validation split (numpy only).

A batch holds K faces of each of P identities (the paper's "minimal number of exemplars of
any one identity" per mini-batch), then ``extra`` faces of other identities that serve as
negatives only. Identities with fewer than K faces are never among the P, but their faces
can be extra negatives.

Each epoch is drawn from its own generator, ``default_rng([seed, epoch])``, so the batches
of epoch e are the same whether the run went straight through or was resumed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import TrainingError


@dataclass(frozen=True)
class Batch:
    index: np.ndarray  # (P*K + extra,) row numbers into the training set
    anchors: int  # the first ``anchors`` rows are the P x K part


class PKSampler:
    def __init__(self, labels: np.ndarray, p: int, k: int, extra: int = 0, seed: int = 0) -> None:
        if k < 2:
            raise TrainingError("--faces-per-identity must be at least 2")
        if p < 2:
            raise TrainingError("--identities-per-batch must be at least 2")
        self.labels = np.asarray(labels, dtype=np.int64)
        ids, counts = np.unique(self.labels, return_counts=True)
        self.eligible = ids[counts >= k]
        if self.eligible.size < 2:
            raise TrainingError(
                f"need at least 2 identities with {k} or more training faces, found "
                f"{self.eligible.size} (lower --faces-per-identity or add photos)"
            )
        self.p = min(p, int(self.eligible.size))
        self.k = k
        self.extra = extra
        self.seed = seed
        self._rows = {int(i): np.flatnonzero(self.labels == i) for i in self.eligible}
        faces = sum(r.size for r in self._rows.values())
        self.batches_per_epoch = max(1, -(-faces // (self.p * self.k)))

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """The batches of one epoch: every eligible face is drawn about once."""
        rng = np.random.default_rng([self.seed, epoch])
        queues = {i: rng.permutation(r) for i, r in self._rows.items()}
        used = dict.fromkeys(queues, 0)
        order: list[int] = []
        for _ in range(self.batches_per_epoch):
            if len(order) < self.p:
                # identities in a fresh random order; never twice in one batch
                rest = set(order)
                order += [int(i) for i in rng.permutation(self.eligible) if int(i) not in rest]
            chosen, order = order[: self.p], order[self.p :]
            rows = []
            for i in chosen:
                q = queues[i]
                if used[i] + self.k > q.size:  # identity exhausted: reshuffle its faces
                    q = queues[i] = rng.permutation(self._rows[i])
                    used[i] = 0
                rows.append(q[used[i] : used[i] + self.k])
                used[i] += self.k
            index = np.concatenate(rows)
            extra = self._extra(rng, chosen)
            yield Batch(np.concatenate([index, extra]).astype(np.int64), index.size)

    def _extra(self, rng: np.random.Generator, chosen: list[int]) -> np.ndarray:
        if not self.extra:
            return np.zeros(0, np.int64)
        others = np.flatnonzero(~np.isin(self.labels, chosen))
        if others.size == 0:
            return np.zeros(0, np.int64)
        return rng.choice(others, size=min(self.extra, others.size), replace=False)


def split(labels: np.ndarray, fraction: float, by: str = "photo", seed: int = 0) -> np.ndarray:
    """A boolean validation mask.

    ``photo``: each identity gives ``round(n * fraction)`` of its n faces to validation,
    as long as at least 2 stay for training (so singletons and pairs stay in training).
    ``identity``: ``round(m * fraction)`` whole identities of the m with 2+ faces are held
    out (they test faces of people never seen in training).
    """
    labels = np.asarray(labels, dtype=np.int64)
    val = np.zeros(labels.size, dtype=bool)
    if fraction <= 0:
        return val
    rng = np.random.default_rng([seed, 1])
    ids, counts = np.unique(labels, return_counts=True)
    if by == "identity":
        pool = ids[counts >= 2]
        n = int(round(pool.size * fraction))
        held = rng.choice(pool, size=min(n, pool.size), replace=False)
        val[np.isin(labels, held)] = True
        return val
    if by != "photo":
        raise ValueError(f"split by photo or identity, not {by!r}")
    for i in ids:
        rows = np.flatnonzero(labels == i)
        n = int(round(rows.size * fraction))
        if n and rows.size - n >= 2:
            val[rng.choice(rows, size=n, replace=False)] = True
    return val
