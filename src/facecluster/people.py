"""Stable person ids and names across re-grouping, and the user's corrections.

Grouping is re-run from scratch whenever the user likes; :mod:`facecluster.regroup` maps
the new clusters onto the persons of the previous run so that ids, names and corrections
survive (named persons keep their faces and are never merged), and every change first
stores the state before it as a generation (:mod:`facecluster.generations`), so that
``people undo`` can go back. Person ids are never reused (SQLite AUTOINCREMENT). The SQL
lives in :mod:`facecluster.person_store`; this module holds the rules and transactions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import generations, regroup, xmp_names
from .cache import FaceCache
from .errors import FaceclusterError
from .generations import Generation
from .person_store import Person, PersonStore
from .placement import PlacedFace, place_faces
from .suggest import SUGGEST_FACTOR, Suggestion, suggest_merges

__all__ = ["People", "Person", "PersonError", "Suggestion"]


class PersonError(FaceclusterError):
    """A people command named a person or face that does not exist."""


class People:
    """The persons of one encoder. ``threshold``: the encoder's calibrated threshold
    (FaceIndex gives it), the default scale of :meth:`suggest`."""

    def __init__(self, cache: FaceCache, encoder_id: int, threshold: float | None = None) -> None:
        self.cache = cache
        self.encoder_id = encoder_id
        self.threshold = threshold
        self.store = PersonStore(cache.db, encoder_id)

    # -- reading --------------------------------------------------------------------------
    def persons(self, include_empty: bool = False) -> list[Person]:
        people = self.store.persons()
        return people if include_empty else [p for p in people if p.faces]

    def get(self, person_id: int) -> Person:
        for p in self.store.persons():
            if p.id == person_id:
                return p
        raise PersonError(f"no person {person_id}; 'facecluster people' lists them")

    def assignments(self) -> dict[int, int]:
        """face id -> person id, for this encoder."""
        return self.store.assignments()

    def faces_of(self, person_id: int) -> list[int]:
        return self.store.faces_of(person_id)

    def faces_with_photos(self, person_id: int) -> list[tuple[int, str]]:
        """(face id, photo path) of a person's faces, by path."""
        return self.store.faces_with_photos(person_id)

    def suggest(
        self, max_distance: float | None = None, limit: int | None = None
    ) -> list[Suggestion]:
        """Pairs of persons that may be one, nearest first: their two nearest faces are
        within ``max_distance`` (squared L2; default SUGGEST_FACTOR x the encoder's
        calibrated threshold). Persons named differently are never suggested."""
        if max_distance is None:
            if self.threshold is None:
                raise FaceclusterError("suggest needs max_distance: no threshold is known")
            max_distance = SUGGEST_FACTOR * self.threshold
        faces, vectors = self.cache.face_vectors(self.encoder_id)
        owner = self.assignments()
        owners = np.array([owner.get(f.id, -1) for f in faces], dtype=np.int64)
        ids = np.array([f.id for f in faces], dtype=np.int64)
        persons = {p.id: (p.name, p.faces) for p in self.persons()}
        return suggest_merges(vectors, owners, ids, persons, max_distance, limit)
    def placed_faces(self, person_id: int) -> list[PlacedFace]:
        """A person's faces with their boxes and where each sits among the faces of its
        photo ("left of 3"), by path."""
        return place_faces(self.store.faces_beside(person_id), set(self.store.faces_of(person_id)))

    def unknown(self) -> int:
        """How many faces of this encoder belong to no person."""
        return self.cache.count_faces(self.encoder_id) - len(self.store.assignments())

    # -- regrouping -----------------------------------------------------------------------
    def plan_regroup(
        self, face_ids: np.ndarray, labels: np.ndarray, vectors: np.ndarray | None = None
    ) -> tuple[dict[int, int], regroup.Changes]:
        """What :meth:`regroup` would store (new persons as negative placeholders), and
        how that changes the persons. Writes nothing."""
        prev, kept = self.store.placed(), self.store.kept()
        result = regroup.plan(face_ids, labels, vectors, prev, kept, self.store.rejections())
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
            created = {
                placeholder: self.store.new_person()
                for placeholder in sorted({p for p in planned.values() if p < 0}, reverse=True)
            }
            result = {f: created.get(p, p) for f, p in planned.items()}
            self.store.replace_clustered(result)
        return result

    # -- names from the photos' XMP (xmp_names.py) ----------------------------------------
    def plan_xmp_names(
        self, face_ids: Sequence[int], assigned: dict[int, int]
    ) -> xmp_names.NamePlan:
        """What the names read from the photos' XMP would do to ``assigned``."""
        names = {p.id: p.name for p in self.store.persons()}
        imported = self.store.imported_names()
        return xmp_names.plan(face_ids, assigned, imported, names, self.store.rejections())

    def name_from_xmp(
        self, face_ids: Sequence[int], assigned: dict[int, int]
    ) -> xmp_names.NamePlan:
        """Name persons (and place unknown faces) from the names in the photos' XMP, as
        corrections of the user's (call it after :meth:`regroup`: its generation covers
        both)."""
        with self.cache.transaction():
            plan = self.plan_xmp_names(face_ids, assigned)
            for pid, name in plan.names.items():
                self.store.set_name(pid, name)
            for fid, pid in plan.placed.items():
                self.store.place(fid, pid)
            for name, fids in plan.new.items():
                new_id = self.store.new_person(name, confirmed=True)
                for fid in fids:
                    self.store.place(fid, new_id)
        return plan

    def lone_regions(self) -> list[tuple[str, str, tuple[float, ...], str]]:
        """Named XMP regions with no detected face: (photo, name, box, source)."""
        return self.store.lone_regions()

    # -- a change of encoder ---------------------------------------------------------------
    def carry_over(self) -> tuple[str, int] | None:
        """When this encoder has no persons yet and another encoder of the database has
        named or corrected ones (the default encoder changed, or ``--model`` did), copy
        them here with their faces, placements and rejections: names and corrections
        survive a change of encoder. The next ``group`` keeps them (they are the user's).
        Returns (the other encoder's name, persons copied), or None."""
        source = self.store.carry_source()
        if source is None:
            return None
        with self.cache.transaction() as db:
            generations.snapshot(db, self.encoder_id, f"carry over from {source[1]}")
            n = self.store.copy_kept_from(source[0])
        return source[1], n

    # -- history --------------------------------------------------------------------------
    def history(self) -> list[Generation]:
        return generations.history(self.cache.db, self.encoder_id)

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
            self.store.set_name(person_id, clean)
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
                self.store.absorb(into, s.id)
            self.store.set_name(into, name)
        return self.get(into)

    def _check_faces(self, face_ids: Sequence[int]) -> dict[int, int | None]:
        known = self.store.existing_faces(face_ids)
        missing = [f for f in face_ids if f not in known]
        if missing:
            raise PersonError(f"no face {missing[0]}; 'facecluster people show ID' lists faces")
        current = self.store.assignments()
        return {f: current.get(f) for f in face_ids}

    def remove_faces(self, face_ids: Sequence[int]) -> int:
        """Take faces away from their person for good; they become unknown."""
        owners = self._check_faces(face_ids)
        with self.cache.transaction() as db:
            generations.snapshot(db, self.encoder_id, f"remove-face {_ids(face_ids)}")
            for fid, pid in owners.items():
                if pid is not None:
                    self.store.reject(fid, pid)
        return sum(1 for p in owners.values() if p is not None)

    def move_faces(self, face_ids: Sequence[int], person_id: int) -> Person:
        """Put faces on a person for good (a manual assignment wins over clustering)."""
        self.get(person_id)
        owners = self._check_faces(face_ids)
        with self.cache.transaction() as db:
            action = f"move-face {person_id} {_ids(face_ids)}"
            generations.snapshot(db, self.encoder_id, action)
            self._place(owners, person_id)
        return self.get(person_id)

    def _place(self, owners: dict[int, int | None], person_id: int) -> None:
        for fid, pid in owners.items():
            if pid is not None and pid != person_id:
                self.store.reject(fid, pid, confirm=False)
            self.store.place(fid, person_id)

    def split(self, person_id: int, face_ids: Sequence[int], name: str | None = None) -> Person:
        """Move some faces of a person to a new person."""
        self.get(person_id)
        owners = self._check_faces(face_ids)
        stray = [f for f, p in owners.items() if p != person_id]
        if stray:
            raise PersonError(f"face {stray[0]} does not belong to person {person_id}")
        with self.cache.transaction() as db:
            generations.snapshot(db, self.encoder_id, f"split {person_id} {_ids(face_ids)}")
            new_id = self.store.new_person(name, confirmed=True)
            self._place(owners, new_id)
        return self.get(new_id)


def _ids(face_ids: Sequence[int]) -> str:
    return " ".join(str(f) for f in face_ids)
