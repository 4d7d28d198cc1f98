"""Persons that may be one: pairs whose nearest faces lie within a looser distance than the
grouping's threshold (``people suggest``, and the page's "maybe the same person" list).

Clustering splits one person in two when the faces of each half are closer to each other
than to the other half, yet the two halves usually still hold a pair of faces nearer than
most faces of different people: the single-linkage distance, which picks the candidates.
Blurred, tiny or turned-away faces lie near many persons at once (hubs), so a pair is
ranked by its distance against each one's usual distance to its five nearest persons
(CSLS, Conneau et al. 2018): pairs near each other rather than near everyone come first.
Two persons named differently are never suggested: the user has said they are two
people. Everything here is numpy on the vectors given; nothing is read or stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

# Suggestions reach this many times the encoder's calibrated threshold (squared L2).
SUGGEST_FACTOR = 1.5
_HUB_K = 5  # ranking: a pair's distance against each one's 5 nearest persons (suggest_merges)
_CHUNK = 1024  # rows a block: 1024 x 50,000 float32 similarities is 200 MB at most


@dataclass(frozen=True)
class Suggestion:
    """Two persons that may be one; ``into`` is the one to keep (named, else larger)."""

    into: int
    other: int
    distance: float  # squared L2 between the two nearest faces, one of each person
    face_into: int  # those two faces
    face_other: int
    name_into: str | None = None
    name_other: str | None = None
    faces_into: int = 0  # how many faces each person has
    faces_other: int = 0

    @property
    def command(self) -> str:
        return f"facecluster people merge {self.into} {self.other}"

    def as_dict(self) -> dict[str, object]:
        return {
            "into": {
                "id": self.into,
                "name": self.name_into,
                "faces": self.faces_into,
                "face_id": self.face_into,
            },
            "other": {
                "id": self.other,
                "name": self.name_other,
                "faces": self.faces_other,
                "face_id": self.face_other,
            },
            "distance": round(self.distance, 4),
            "command": self.command,
        }


def nearest_between(
    vectors: np.ndarray, owners: np.ndarray, max_distance: float, chunk: int = _CHUNK
) -> dict[tuple[int, int], tuple[float, int, int]]:
    """For each pair of owners ``(a, b)``, ``a < b``, with a face of each within
    ``max_distance`` (squared L2 between unit vectors): ``(distance, row of a's face, row
    of b's face)`` of their nearest two faces. Rows whose owner is negative are left out.
    Works in blocks of ``chunk`` rows, so memory stays at ``chunk`` x rows."""
    rows = np.flatnonzero(np.asarray(owners) >= 0)
    if len(rows) < 2:
        return {}
    vecs = np.ascontiguousarray(vectors[rows], dtype=np.float32)
    own = np.asarray(owners)[rows].astype(np.int64)
    min_sim = 1.0 - max_distance / 2.0  # d = 2 - 2 cos
    best: dict[tuple[int, int], tuple[float, int, int]] = {}
    for start in range(0, len(rows), chunk):
        block = vecs[start : start + chunk] @ vecs[start:].T  # the upper triangle only
        ii, jj = np.nonzero(block >= min_sim)
        sims = block[ii, jj]
        ii, jj = ii + start, jj + start
        keep = (jj > ii) & (own[ii] != own[jj])
        ii, jj, sims = ii[keep], jj[keep], sims[keep]
        if not len(ii):
            continue
        swap = own[ii] > own[jj]
        a_rows, b_rows = np.where(swap, jj, ii), np.where(swap, ii, jj)
        order = np.argsort(-sims, kind="stable")  # nearest first: the first of a key wins
        keys = np.stack([own[a_rows], own[b_rows]], axis=1)[order]
        _, first = np.unique(keys, axis=0, return_index=True)
        for k in first:
            i = order[k]
            key = (int(own[a_rows[i]]), int(own[b_rows[i]]))
            d = float(max(0.0, 2.0 - 2.0 * float(sims[i])))
            if key not in best or d < best[key][0]:
                best[key] = (d, int(rows[a_rows[i]]), int(rows[b_rows[i]]))
    return best


def suggest_merges(
    vectors: np.ndarray,
    owners: np.ndarray,
    face_ids: np.ndarray,
    persons: Mapping[int, tuple[str | None, int]],
    max_distance: float,
    limit: int | None = None,
) -> list[Suggestion]:
    """Pairs of persons with two faces within ``max_distance``, most likely one person
    first (see above): ``vectors`` (unit rows), the person of each row (``owners``, -1:
    unknown) and its face id; ``persons`` maps each person id to its name and face
    count. Persons named differently (case aside) are left out."""
    pairs = nearest_between(vectors, owners, max_distance)
    usual = _usual_distance(pairs, max_distance)
    out, score = [], {}
    for (a, b), (d, ra, rb) in pairs.items():
        (name_a, n_a), (name_b, n_b) = persons.get(a, (None, 0)), persons.get(b, (None, 0))
        if name_a and name_b and name_a.casefold() != name_b.casefold():
            continue
        # Keep the named one, else the larger one, else the older one.
        if (not name_a and name_b) or (bool(name_a) == bool(name_b) and n_b > n_a):
            a, b, ra, rb, name_a, name_b, n_a, n_b = b, a, rb, ra, name_b, name_a, n_b, n_a
        fa, fb = int(face_ids[ra]), int(face_ids[rb])
        out.append(Suggestion(a, b, d, fa, fb, name_a, name_b, n_a, n_b))
        score[a, b] = 2 * d - usual[a] - usual[b]
    out.sort(key=lambda s: (score[s.into, s.other], s.distance, s.into, s.other))
    return out if limit is None else out[:limit]


def _usual_distance(
    pairs: Mapping[tuple[int, int], tuple[float, int, int]], cap: float, k: int = _HUB_K
) -> dict[int, float]:
    """Each person's mean distance to its ``k`` nearest persons (``cap`` where it has
    fewer within it): small for a person near everyone."""
    near: dict[int, list[float]] = {}
    for (a, b), (d, _, _) in pairs.items():
        near.setdefault(a, []).append(d)
        near.setdefault(b, []).append(d)
    return {
        p: (sum(sorted(ds)[:k]) + cap * max(0, k - len(ds))) / k for p, ds in near.items()
    }
