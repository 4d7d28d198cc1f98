"""Stable person ids and names across re-grouping, and the user's corrections.

Grouping is re-run from scratch whenever the user likes; this module maps the new clusters
onto the persons of the previous run, so ids, names and corrections survive:

* each new cluster goes to the previous person most of its faces belonged to;
* when several clusters point at one person, a person the user has touched (named, merged,
  split, corrected) takes them all (merged people stay merged); an untouched person keeps
  only the cluster with the largest overlap and the others become new persons;
* a face the user moved to a person stays there whatever the clustering says;
* a face removed from a person never comes back to it (it becomes unknown instead);
* persons left without faces disappear unless they have a name.

Person ids are never reused (SQLite AUTOINCREMENT).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .cache import FaceCache
from .errors import FaceclusterError


class PersonError(FaceclusterError):
    """A people command named a person or face that does not exist."""


@dataclass(frozen=True)
class Person:
    id: int
    name: str | None
    faces: int
    photos: int
    confirmed: bool

    @property
    def label(self) -> str:
        return self.name or f"person_{self.id:04d}"


class People:
    def __init__(self, cache: FaceCache, encoder_id: int) -> None:
        self.cache = cache
        self.db = cache.db
        self.encoder_id = encoder_id

    # -- reading --------------------------------------------------------------------------
    def persons(self, include_empty: bool = False) -> list[Person]:
        rows = self.db.execute(
            "SELECT p.id, p.name, COUNT(a.face_id), COUNT(DISTINCT f.photo_id), p.confirmed "
            "FROM persons p LEFT JOIN assignments a ON a.person_id = p.id "
            "LEFT JOIN faces f ON f.id = a.face_id WHERE p.encoder_id = ? "
            "GROUP BY p.id ORDER BY COUNT(a.face_id) DESC, p.id",
            (self.encoder_id,),
        ).fetchall()
        people = [Person(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]
        return people if include_empty else [p for p in people if p.faces]

    def get(self, person_id: int) -> Person:
        for p in self.persons(include_empty=True):
            if p.id == person_id:
                return p
        raise PersonError(f"no person {person_id}; 'facecluster people' lists them")

    def assignments(self) -> dict[int, int]:
        """face id -> person id, for this encoder."""
        rows = self.db.execute(
            "SELECT face_id, person_id FROM assignments WHERE encoder_id = ?", (self.encoder_id,)
        )
        return {r[0]: r[1] for r in rows}

    def faces_of(self, person_id: int) -> list[int]:
        rows = self.db.execute(
            "SELECT face_id FROM assignments WHERE person_id = ? ORDER BY face_id", (person_id,)
        )
        return [r[0] for r in rows]

    # -- regrouping -----------------------------------------------------------------------
    def regroup(self, face_ids: np.ndarray, labels: np.ndarray) -> dict[int, int]:
        """Store a new clustering (labels -1 = unknown) as persons; returns face -> person."""
        prev = {
            r[0]: (r[1], bool(r[2]))
            for r in self.db.execute(
                "SELECT face_id, person_id, manual FROM assignments WHERE encoder_id = ?",
                (self.encoder_id,),
            )
        }
        touched = {
            r[0]
            for r in self.db.execute(
                "SELECT id FROM persons WHERE encoder_id = ? "
                "AND (confirmed = 1 OR name IS NOT NULL)",
                (self.encoder_id,),
            )
        }
        rejected = set(self.db.execute("SELECT face_id, person_id FROM rejections").fetchall())

        members: dict[int, list[int]] = defaultdict(list)
        for fid, lab in zip(face_ids.tolist(), labels.tolist(), strict=True):
            if lab >= 0:
                members[lab].append(fid)
        votes = []
        for lab, fids in members.items():
            counts = Counter(prev[f][0] for f in fids if f in prev)
            if counts:
                pid, n = counts.most_common(1)[0]
                votes.append((n, -lab, lab, pid))
        owner: dict[int, int] = {}
        taken: set[int] = set()
        for _, _, lab, pid in sorted(votes, reverse=True):
            if pid not in taken or pid in touched:
                owner[lab] = pid
                taken.add(pid)

        with self.cache.transaction() as db:
            now = time.time()
            for lab in sorted(set(members) - set(owner)):
                cur = db.execute(
                    "INSERT INTO persons (encoder_id, name, confirmed, created) "
                    "VALUES (?, NULL, 0, ?)",
                    (self.encoder_id, now),
                )
                owner[lab] = int(cur.lastrowid or 0)
            result: dict[int, int] = {}
            for fid, lab in zip(face_ids.tolist(), labels.tolist(), strict=True):
                if fid in prev and prev[fid][1]:
                    result[fid] = prev[fid][0]  # the user put it there
                elif lab >= 0 and (fid, owner[lab]) not in rejected:
                    result[fid] = owner[lab]
            db.execute(
                "DELETE FROM assignments WHERE encoder_id = ? AND manual = 0", (self.encoder_id,)
            )
            db.executemany(
                "INSERT OR IGNORE INTO assignments (face_id, encoder_id, person_id, manual) "
                "VALUES (?, ?, ?, 0)",
                [(f, self.encoder_id, p) for f, p in result.items()],
            )
            db.execute(
                "DELETE FROM persons WHERE encoder_id = ? AND name IS NULL AND id NOT IN "
                "(SELECT DISTINCT person_id FROM assignments)",
                (self.encoder_id,),
            )
        return result

    # -- corrections ----------------------------------------------------------------------
    def rename(self, person_id: int, name: str) -> Person:
        self.get(person_id)
        clean = " ".join(name.split())
        if not clean:
            raise PersonError("a name cannot be empty")
        with self.cache.transaction() as db:
            db.execute(
                "UPDATE persons SET name = ?, confirmed = 1 WHERE id = ?", (clean, person_id)
            )
        return self.get(person_id)

    def merge(self, into: int, others: Sequence[int]) -> Person:
        target = self.get(into)
        sources = [self.get(o) for o in others if o != into]
        if not sources:
            raise PersonError("merge needs at least two different persons")
        name = target.name or next((s.name for s in sources if s.name), None)
        with self.cache.transaction() as db:
            for s in sources:
                db.execute(
                    "UPDATE OR REPLACE assignments SET person_id = ? WHERE person_id = ?",
                    (into, s.id),
                )
                db.execute(
                    "UPDATE OR IGNORE rejections SET person_id = ? WHERE person_id = ?",
                    (into, s.id),
                )
                db.execute("DELETE FROM persons WHERE id = ?", (s.id,))
            db.execute("UPDATE persons SET name = ?, confirmed = 1 WHERE id = ?", (name, into))
        return self.get(into)

    def _check_faces(self, face_ids: Sequence[int]) -> dict[int, int | None]:
        current = self.assignments()
        known = (
            {
                r[0]
                for r in self.db.execute(
                    f"SELECT id FROM faces WHERE id IN ({','.join('?' * len(face_ids))})",
                    list(face_ids),
                )
            }
            if face_ids
            else set()
        )
        missing = [f for f in face_ids if f not in known]
        if missing:
            raise PersonError(f"no face {missing[0]}; 'facecluster people show ID' lists faces")
        return {f: current.get(f) for f in face_ids}

    def remove_faces(self, face_ids: Sequence[int]) -> int:
        """Take faces away from their person for good; they become unknown."""
        owners = self._check_faces(face_ids)
        with self.cache.transaction() as db:
            for fid, pid in owners.items():
                if pid is None:
                    continue
                db.execute(
                    "DELETE FROM assignments WHERE face_id = ? AND encoder_id = ?",
                    (fid, self.encoder_id),
                )
                db.execute("INSERT OR IGNORE INTO rejections VALUES (?, ?)", (fid, pid))
                db.execute("UPDATE persons SET confirmed = 1 WHERE id = ?", (pid,))
        return sum(1 for p in owners.values() if p is not None)

    def move_faces(self, face_ids: Sequence[int], person_id: int) -> Person:
        """Put faces on a person for good (a manual assignment wins over clustering)."""
        self.get(person_id)
        owners = self._check_faces(face_ids)
        with self.cache.transaction() as db:
            for fid, pid in owners.items():
                if pid is not None and pid != person_id:
                    db.execute("INSERT OR IGNORE INTO rejections VALUES (?, ?)", (fid, pid))
                db.execute(
                    "DELETE FROM rejections WHERE face_id = ? AND person_id = ?", (fid, person_id)
                )
                db.execute(
                    "INSERT OR REPLACE INTO assignments (face_id, encoder_id, person_id, manual) "
                    "VALUES (?, ?, ?, 1)",
                    (fid, self.encoder_id, person_id),
                )
            db.execute("UPDATE persons SET confirmed = 1 WHERE id = ?", (person_id,))
        return self.get(person_id)

    def split(self, person_id: int, face_ids: Sequence[int], name: str | None = None) -> Person:
        """Move some faces of a person to a new person."""
        self.get(person_id)
        owners = self._check_faces(face_ids)
        stray = [f for f, p in owners.items() if p != person_id]
        if stray:
            raise PersonError(f"face {stray[0]} does not belong to person {person_id}")
        with self.cache.transaction() as db:
            cur = db.execute(
                "INSERT INTO persons (encoder_id, name, confirmed, created) VALUES (?, ?, 1, ?)",
                (self.encoder_id, name, time.time()),
            )
            new_id = int(cur.lastrowid or 0)
        self.move_faces(face_ids, new_id)
        return self.get(new_id)
