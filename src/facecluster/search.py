"""Identification: the indexed photos nearest to a query embedding (exact, vectorised)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Hit:
    photo: str
    distance: float  # squared L2 between unit vectors
    index: int  # row of the matching face in the searched matrix


def nearest_photos(
    query: np.ndarray,
    vectors: np.ndarray,
    photos: Sequence[str],
    k: int = 10,
    threshold: float = 4.0,
    chunk: int = 262_144,
) -> list[Hit]:
    """The ``k`` photos whose best face is nearest to ``query``, nearest first, within
    ``threshold``. One matrix-vector product per chunk and a partial sort: 0.1 s for a
    million 128-D faces on this 2-core machine (``bench/find.py``); memory is the matrix."""
    if len(vectors) == 0:
        return []
    q = np.asarray(query, np.float32)
    dist = np.empty(len(vectors), np.float32)
    for i in range(0, len(vectors), chunk):
        dist[i : i + chunk] = 2.0 - 2.0 * (vectors[i : i + chunk] @ q)
    np.clip(dist, 0.0, 4.0, out=dist)
    # Sort only the nearest few (a photo can hold several matching faces); fall back to a
    # full sort in the rare case that they hold fewer than k distinct photos.
    m = min(len(dist), max(8 * k, 64))
    while True:
        cand = np.argpartition(dist, m - 1)[:m] if m < len(dist) else np.arange(len(dist))
        hits = _distinct(cand[np.argsort(dist[cand], kind="stable")], dist, photos, k, threshold)
        if len(hits) >= k or m == len(dist) or dist[cand].max() > threshold:
            return hits
        m = len(dist)


def _distinct(
    order: np.ndarray, dist: np.ndarray, photos: Sequence[str], k: int, threshold: float
) -> list[Hit]:
    hits: list[Hit] = []
    seen: set[str] = set()
    for i in order:
        d = float(dist[i])
        if d > threshold or len(hits) >= k:
            break
        if photos[i] in seen:
            continue
        seen.add(photos[i])
        hits.append(Hit(photos[i], d, int(i)))
    return hits
