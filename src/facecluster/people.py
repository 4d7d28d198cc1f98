"""Stable person ids and names across re-grouping, and the user's corrections.

Grouping is re-run from scratch whenever the user likes; :mod:`facecluster.regroup` maps
the new clusters onto the persons of the previous run so that ids, names and corrections
survive (named persons keep their faces and are never merged), and every change first
stores the state before it as a generation (:mod:`facecluster.generations`), so that
``people undo`` can go back. Person ids are never reused (SQLite AUTOINCREMENT).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import generations, regroup
from .cache import FaceCache
from .errors import FaceclusterError
from .generations import Generation
from .pathcodec import from_db


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

    def faces_with_photos(self, person_id: int) -> list[tuple[int, str]]:
        """(face id, photo path) of a person's faces, by path."""
        rows = self.db.execute(
            "SELECT f.id, ph.path FROM assignments a JOIN faces f ON f.id = a.face_id "
            "JOIN photos ph ON ph.id = f.photo_id WHERE a.person_id = ? ORDER BY ph.path, f.id",
            (person_id,),
        ).fetchall()
        return [(r[0], from_db(r[1])) for r in rows]

    # -- regrouping -----------------------------------------------------------------------
    def _state(self) -> tuple[regroup.Prev, set[int], set[tuple[int, int]]]:
        prev = {
            r[0]: (r[1], bool(r[2]))
            for r in self.db.execute(
                "SELECT face_id, person_id, manual FROM assignments WHERE encoder_id = ?",
                (self.encoder_id,),
            )
        }
        kept = {
            r[0]
            for r in self.db.execute(
                "SELECT id FROM persons WHERE encoder_id = ? "
                "AND (confirmed = 1 OR name IS NOT NULL)",
                (self.encoder_id,),
            )
        }
        rejected = set(self.db.execute("SELECT face_id, person_id FROM rejections").fetchall())
        return prev, kept, rejected

    def plan_regroup(
        self, face_ids: np.ndarray, labels: np.ndarray, vectors: np.ndarray | None = None
    ) -> tuple[dict[int, int], regroup.Changes]:
        """What :meth:`regroup` would store (new persons as negative placeholders), and
        how that changes the persons. Writes nothing."""
        prev, kept, rejected = self._state()
        result = regroup.plan(face_ids, labels, vectors, prev, kept, rejected)
        return result, regroup.changes(prev, result, kept)

    def regroup(
        self,
        face_ids: np.ndarray,
        labels: np.ndarray,
        vectors: np.ndarray | None = None,
        action: str = "group",
    ) -> dict[int, int]:
        """Store a new clustering (labels -1 = unknown) as persons; returns face -> person."""
        with self.cache.transaction() as db:
            planned, _ = self.plan_regroup(face_ids, labels, vectors)
            generations.snapshot(db, self.encoder_id, action)
            now = time.time()
            created: dict[int, int] = {}
            for placeholder in sorted({p for p in planned.values() if p < 0}, reverse=True):
                cur = db.execute(
                    "INSERT INTO persons (encoder_id, name, confirmed, created) "
                    "VALUES (?, NULL, 0, ?)",
                    (self.encoder_id, now),
                )
                created[placeholder] = int(cur.lastrowid or 0)
            result = {f: created.get(p, p) for f, p in planned.items()}
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

    # -- history --------------------------------------------------------------------------
    def history(self) -> list[Generation]:
        return generations.history(self.db, self.encoder_id)

    def undo(self) -> Generation:
        """Go back to the state before the last saved grouping or correction."""
        with self.cache.transaction() as db:
            gen = generations.restore_latest(db, self.encoder_id)
        if gen is None:
            raise PersonError("nothing to undo: no earlier grouping or correction is stored")
        return gen

    # -- corrections ----------------------------------------------------------------------
    def rename(self, person_id: int, name: str) -> Person:
        self.get(person_id)
        clean = " ".join(name.split())
        if not clean:
            raise PersonError("a name cannot be empty")
        with self.cache.transaction() as db:
            generations.snapshot(db, self.encoder_id, f"name {person_id} {clean}")
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
            ids = " ".join(str(s.id) for s in sources)
            generations.snapshot(db, self.encoder_id, f"merge {into} {ids}")
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
            generations.snapshot(db, self.encoder_id, f"remove-face {_ids(face_ids)}")
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
            action = f"move-face {person_id} {_ids(face_ids)}"
            generations.snapshot(db, self.encoder_id, action)
            self._place(db, owners, person_id)
        return self.get(person_id)

    def _place(self, db: sqlite3.Connection, owners: dict[int, int | None], person_id: int) -> None:
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

    def split(self, person_id: int, face_ids: Sequence[int], name: str | None = None) -> Person:
        """Move some faces of a person to a new person."""
        self.get(person_id)
        owners = self._check_faces(face_ids)
        stray = [f for f, p in owners.items() if p != person_id]
        if stray:
            raise PersonError(f"face {stray[0]} does not belong to person {person_id}")
        with self.cache.transaction() as db:
            generations.snapshot(db, self.encoder_id, f"split {person_id} {_ids(face_ids)}")
            cur = db.execute(
                "INSERT INTO persons (encoder_id, name, confirmed, created) VALUES (?, ?, 1, ?)",
                (self.encoder_id, name, time.time()),
            )
            new_id = int(cur.lastrowid or 0)
            self._place(db, owners, new_id)
        return self.get(new_id)


def _ids(face_ids: Sequence[int]) -> str:
    return " ".join(str(f) for f in face_ids)
