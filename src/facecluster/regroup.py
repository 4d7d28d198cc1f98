"""How a new clustering becomes persons without undoing the user's work (pure functions).

The rules, in order:

1. A face the user placed (``people move-face``, ``split``) stays where they put it.
2. A face of a *kept* person (one the user named or corrected) stays with that person:
   a regroup never takes a named person's faces away and never merges two named persons.
   To take a face away, use ``people remove-face``.
3. The other faces of a cluster that holds faces of kept persons join the kept person
   they are nearest to (one kept person: all of them join it). Faces the user placed do
   not count here: they are exceptions to their cluster.
4. A cluster with no kept person goes to the previous person most of its faces had; when
   several clusters point at one such person it keeps the largest, the others become new
   persons.
5. A face never goes back to a person it was removed from; unclustered faces with no
   kept person are unknown.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

Prev = dict[int, tuple[int, bool]]  # face id -> (person id, placed by the user)


def new_person(label: int) -> int:
    """The placeholder (a negative number) for the new person of cluster ``label``."""
    return -1 - label


def plan(
    face_ids: np.ndarray,
    labels: np.ndarray,
    vectors: np.ndarray | None,
    prev: Prev,
    kept: set[int],
    rejected: set[tuple[int, int]],
) -> dict[int, int]:
    """face id -> person id (or a :func:`new_person` placeholder); unknown faces absent."""
    fids = face_ids.tolist()
    result: dict[int, int] = {}
    for fid in fids:
        if fid in prev and (prev[fid][1] or prev[fid][0] in kept):
            result[fid] = prev[fid][0]
    members: dict[int, list[int]] = defaultdict(list)
    for i, lab in enumerate(labels.tolist()):
        if lab >= 0:
            members[lab].append(i)
    votes = []
    free_of: dict[int, list[int]] = {}
    for lab, rows in members.items():
        free = [i for i in rows if fids[i] not in result]
        anchors: dict[int, list[int]] = defaultdict(list)
        for i in rows:  # a face the user placed is an exception, not an anchor
            pid = result.get(fids[i])
            if pid is not None and pid in kept and not prev[fids[i]][1]:
                anchors[pid].append(i)
        if anchors:
            _join_nearest(free, anchors, fids, vectors, rejected, result)
            continue
        free_of[lab] = free
        counts = Counter(prev[fids[i]][0] for i in free if fids[i] in prev)
        if counts:
            pid, n = counts.most_common(1)[0]
            votes.append((n, -lab, lab, pid))
    owner: dict[int, int] = {}
    taken: set[int] = set()
    for _, _, lab, pid in sorted(votes, reverse=True):
        if pid not in taken:
            owner[lab] = pid
            taken.add(pid)
    for lab, free in free_of.items():
        pid = owner.get(lab, new_person(lab))
        for i in free:
            if (fids[i], pid) not in rejected:
                result[fids[i]] = pid
    return result


def _join_nearest(
    free: list[int],
    anchors: dict[int, list[int]],
    fids: list[int],
    vectors: np.ndarray | None,
    rejected: set[tuple[int, int]],
    result: dict[int, int],
) -> None:
    persons = sorted(anchors)
    if len(persons) == 1 or vectors is None:
        choices = [persons] * len(free)
    else:
        choices = []
        for start in range(0, len(free), 1024):
            chunk = vectors[free[start : start + 1024]]
            best = np.stack(
                [(chunk @ vectors[anchors[p]].T).max(axis=1) for p in persons], axis=1
            )  # highest cosine = smallest squared L2 on unit vectors
            choices += [[persons[j] for j in np.argsort(-row, kind="stable")] for row in best]
    for i, ranked in zip(free, choices, strict=True):
        pid = next((p for p in ranked if (fids[i], p) not in rejected), None)
        if pid is not None:
            result[fids[i]] = pid


@dataclass
class Changes:
    """What a regroup does to the persons, for ``group --dry-run`` and its summary."""

    faces_moved: int = 0  # faces whose person changes (to another, a new one or unknown)
    new_persons: int = 0
    removed_persons: list[int] = field(default_factory=list)
    merged: list[tuple[int, list[int]]] = field(default_factory=list)  # into, absorbed
    split: list[tuple[int, int]] = field(default_factory=list)  # person, parts
    kept: dict[int, tuple[int, int]] = field(default_factory=dict)  # person: faces before/after

    def as_dict(self, names: dict[int, str | None]) -> dict[str, object]:
        def who(pid: int) -> dict[str, object]:
            return {"id": pid if pid > 0 else None, "name": names.get(pid)}

        return {
            "faces_moved": self.faces_moved,
            "new_persons": self.new_persons,
            "removed_persons": [who(p) for p in self.removed_persons],
            "merged": [
                {"into": who(o), "absorbed": [who(p) for p in ps]} for o, ps in self.merged
            ],
            "split": [{"person": who(p), "parts": n} for p, n in self.split],
            "kept_persons_changed": [
                {**who(p), "faces_before": a, "faces_after": b} for p, (a, b) in self.kept.items()
            ],
        }


def changes(prev: Prev, result: dict[int, int], kept: set[int]) -> Changes:
    """Compare the assignments before (``prev``) and after (``result``)."""
    out = Changes()
    before: dict[int, list[int]] = defaultdict(list)
    after: dict[int, list[int]] = defaultdict(list)
    for fid, (pid, _) in prev.items():
        before[pid].append(fid)
    for fid, pid in result.items():
        after[pid].append(fid)
    out.faces_moved = sum(1 for fid, (pid, _) in prev.items() if result.get(fid) != pid)
    out.new_persons = sum(1 for p in after if p < 0)
    out.removed_persons = sorted(p for p in before if p not in after)
    goes_to: dict[int, list[int]] = defaultdict(list)  # owner -> persons whose most went there
    for pid, fids in before.items():
        dest = Counter(result[f] for f in fids if f in result)
        if dest:
            top, n = dest.most_common(1)[0]
            if 2 * n > len(fids):
                goes_to[top].append(pid)
        parts = [d for d, n in dest.items() if n >= 2]
        if len(parts) >= 2:
            out.split.append((pid, len(parts)))
    out.merged = [
        (o, sorted(p for p in ps if p != o)) for o, ps in goes_to.items() if len(ps) >= 2
    ]
    for pid in sorted(kept):
        a, b = len(before.get(pid, ())), len(after.get(pid, ()))
        if a != b:
            out.kept[pid] = (a, b)
    return out
