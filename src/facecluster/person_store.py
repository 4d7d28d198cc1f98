"""The persons' tables (persons, assignments, rejections): every read and write of them,
as SQL in one place. :mod:`facecluster.people` holds the rules and the transactions."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .dbfile import id_chunks
from .pathcodec import from_db
from .placement import Box


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


@dataclass(frozen=True)
class AssignedFace:
    """A face with a person, and its photo (the upright size, as scanned)."""

    photo: str
    size: tuple[int, int]
    face_id: int
    box: tuple[float, ...]
    person_id: int
    name: str | None


class PersonStore:
    """The persons of one encoder in one database connection."""

    def __init__(self, db: sqlite3.Connection, encoder_id: int) -> None:
        self.db = db
        self.encoder_id = encoder_id

    # -- reads ----------------------------------------------------------------------------
    def persons(self) -> list[Person]:
        """Every person, largest first."""
        rows = self.db.execute(
            "SELECT p.id, p.name, COUNT(a.face_id), COUNT(DISTINCT f.photo_id), p.confirmed "
            "FROM persons p LEFT JOIN assignments a ON a.person_id = p.id "
            "LEFT JOIN faces f ON f.id = a.face_id WHERE p.encoder_id = ? "
            "GROUP BY p.id ORDER BY COUNT(a.face_id) DESC, p.id",
            (self.encoder_id,),
        ).fetchall()
        return [Person(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def assignments(self) -> dict[int, int]:
        """face id -> person id."""
        rows = self.db.execute(
            "SELECT face_id, person_id FROM assignments WHERE encoder_id = ?", (self.encoder_id,)
        )
        return {r[0]: r[1] for r in rows}

    def placed(self) -> dict[int, tuple[int, bool]]:
        """face id -> (person id, placed by the user)."""
        rows = self.db.execute(
            "SELECT face_id, person_id, manual FROM assignments WHERE encoder_id = ?",
            (self.encoder_id,),
        )
        return {r[0]: (r[1], bool(r[2])) for r in rows}

    def kept(self) -> set[int]:
        """Persons the user named or corrected."""
        rows = self.db.execute(
            "SELECT id FROM persons WHERE encoder_id = ? AND (confirmed = 1 OR name IS NOT NULL)",
            (self.encoder_id,),
        )
        return {r[0] for r in rows}

    def rejections(self) -> set[tuple[int, int]]:
        return set(self.db.execute("SELECT face_id, person_id FROM rejections").fetchall())

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

    # -- names from the photos' XMP (xmp_regions) ------------------------------------------
    def imported_names(self) -> dict[int, str]:
        """face id -> the name a face region of its photo's XMP gives it."""
        rows = self.db.execute(
            "SELECT face_id, name FROM xmp_regions WHERE face_id IS NOT NULL ORDER BY id"
        )
        return {r[0]: r[1] for r in rows}

    def lone_regions(self) -> list[tuple[str, str, tuple[float, ...], str]]:
        """(photo path, name, box, source) of the named XMP regions no detected face
        matched, by path."""
        rows = self.db.execute(
            "SELECT p.path, r.name, r.x1, r.y1, r.x2, r.y2, r.source FROM xmp_regions r "
            "JOIN photos p ON p.id = r.photo_id WHERE r.face_id IS NULL ORDER BY p.path, r.id"
        ).fetchall()
        return [(from_db(r[0]), r[1], tuple(r[2:6]), r[6]) for r in rows]

    def assigned_faces(self) -> list[AssignedFace]:
        """Every face that has a person, with its photo (for export-xmp), by path."""
        rows = self.db.execute(
            "SELECT ph.path, ph.width, ph.height, f.id, f.x1, f.y1, f.x2, f.y2, p.id, p.name "
            "FROM assignments a JOIN persons p ON p.id = a.person_id "
            "JOIN faces f ON f.id = a.face_id JOIN photos ph ON ph.id = f.photo_id "
            "WHERE a.encoder_id = ? ORDER BY ph.path, f.idx",
            (self.encoder_id,),
        ).fetchall()
        return [
            AssignedFace(from_db(r[0]), (r[1] or 0, r[2] or 0), r[3], tuple(r[4:8]), r[8], r[9])
            for r in rows
        ]

    def photo_paths(self) -> list[str]:
        return [from_db(r[0]) for r in self.db.execute("SELECT path FROM photos ORDER BY path")]

    def faces_beside(self, person_id: int) -> list[tuple[int, int, str, Box]]:
        """(face id, photo id, photo path, box) of every face in the photos that hold a
        face of the person (theirs and the others), by path."""
        rows = self.db.execute(
            "SELECT f.id, f.photo_id, ph.path, f.x1, f.y1, f.x2, f.y2 FROM faces f "
            "JOIN photos ph ON ph.id = f.photo_id WHERE f.photo_id IN (SELECT g.photo_id "
            "FROM assignments a JOIN faces g ON g.id = a.face_id WHERE a.person_id = ?) "
            "ORDER BY ph.path, f.id",
            (person_id,),
        ).fetchall()
        return [(r[0], r[1], from_db(r[2]), (r[3], r[4], r[5], r[6])) for r in rows]

    def existing_faces(self, face_ids: Sequence[int]) -> set[int]:
        found: set[int] = set()
        for chunk, marks in id_chunks(face_ids):
            q = f"SELECT id FROM faces WHERE id IN ({marks})"
            found |= {r[0] for r in self.db.execute(q, chunk)}
        return found

    # -- writes (inside the caller's transaction) ------------------------------------------
    def new_person(self, name: str | None = None, confirmed: bool = False) -> int:
        cur = self.db.execute(
            "INSERT INTO persons (encoder_id, name, confirmed, created) VALUES (?, ?, ?, ?)",
            (self.encoder_id, name, int(confirmed), time.time()),
        )
        return int(cur.lastrowid or 0)

    def replace_clustered(self, assigned: dict[int, int]) -> None:
        """Replace every assignment the clustering made (the user's stay) and drop the
        unnamed persons left without faces."""
        self.db.execute(
            "DELETE FROM assignments WHERE encoder_id = ? AND manual = 0", (self.encoder_id,)
        )
        self.db.executemany(
            "INSERT OR IGNORE INTO assignments (face_id, encoder_id, person_id, manual) "
            "VALUES (?, ?, ?, 0)",
            [(f, self.encoder_id, p) for f, p in assigned.items()],
        )
        self.db.execute(
            "DELETE FROM persons WHERE encoder_id = ? AND name IS NULL AND id NOT IN "
            "(SELECT DISTINCT person_id FROM assignments)",
            (self.encoder_id,),
        )

    def set_name(self, person_id: int, name: str | None) -> None:
        """Name a person (None: keep it unnamed) and mark it as the user's."""
        self.db.execute(
            "UPDATE persons SET name = ?, confirmed = 1 WHERE id = ?", (name, person_id)
        )

    def absorb(self, into: int, source: int) -> None:
        """Move every face and rejection of ``source`` to ``into`` and delete ``source``."""
        self.db.execute(
            "UPDATE OR REPLACE assignments SET person_id = ? WHERE person_id = ?", (into, source)
        )
        self.db.execute(
            "UPDATE OR IGNORE rejections SET person_id = ? WHERE person_id = ?", (into, source)
        )
        self.db.execute("DELETE FROM persons WHERE id = ?", (source,))

    def reject(self, face_id: int, person_id: int, *, confirm: bool = True) -> None:
        """Take the face away from the person, for good (``confirm``: the person counts
        as corrected by the user from now on)."""
        self.db.execute(
            "DELETE FROM assignments WHERE face_id = ? AND encoder_id = ? AND person_id = ?",
            (face_id, self.encoder_id, person_id),
        )
        self.db.execute("INSERT OR IGNORE INTO rejections VALUES (?, ?)", (face_id, person_id))
        if confirm:
            self.db.execute("UPDATE persons SET confirmed = 1 WHERE id = ?", (person_id,))

    def place(self, face_id: int, person_id: int) -> None:
        """Put the face on the person, for good (the user's placement)."""
        self.db.execute(
            "DELETE FROM rejections WHERE face_id = ? AND person_id = ?", (face_id, person_id)
        )
        self.db.execute(
            "INSERT OR REPLACE INTO assignments (face_id, encoder_id, person_id, manual) "
            "VALUES (?, ?, ?, 1)",
            (face_id, self.encoder_id, person_id),
        )
        self.db.execute("UPDATE persons SET confirmed = 1 WHERE id = ?", (person_id,))

    # -- another encoder's persons --------------------------------------------------------
    def carry_source(self) -> tuple[int, str] | None:
        """When this encoder has no persons yet: the encoder of this database whose persons
        hold the most of the user's work (named or corrected persons), if any."""
        if self.db.execute(
            "SELECT 1 FROM persons WHERE encoder_id = ? LIMIT 1", (self.encoder_id,)
        ).fetchone():
            return None
        row = self.db.execute(
            "SELECT e.id, e.name FROM persons p JOIN encoders e ON e.id = p.encoder_id "
            "WHERE p.encoder_id != ? AND (p.confirmed = 1 OR p.name IS NOT NULL) "
            "GROUP BY e.id ORDER BY COUNT(*) DESC, MAX(p.id) DESC LIMIT 1",
            (self.encoder_id,),
        ).fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def copy_kept_from(self, source: int) -> int:
        """Copy the named or corrected persons of encoder ``source`` (name, confirmed, their
        faces with the user's placements, their rejections) to this encoder, as new
        persons. Returns how many."""
        kept = self.db.execute(
            "SELECT id, name, confirmed FROM persons WHERE encoder_id = ? "
            "AND (confirmed = 1 OR name IS NOT NULL) ORDER BY id",
            (source,),
        ).fetchall()
        for old, name, confirmed in kept:
            new = self.new_person(name, bool(confirmed))
            self.db.execute(
                "INSERT OR IGNORE INTO assignments (face_id, encoder_id, person_id, manual) "
                "SELECT face_id, ?, ?, manual FROM assignments "
                "WHERE encoder_id = ? AND person_id = ?",
                (self.encoder_id, new, source, old),
            )
            self.db.execute(
                "INSERT OR IGNORE INTO rejections SELECT face_id, ? FROM rejections "
                "WHERE person_id = ?",
                (new, old),
            )
        return len(kept)

    def other_encoders_with_persons(self) -> list[str]:
        rows = self.db.execute(
            "SELECT DISTINCT e.name FROM persons p JOIN encoders e ON e.id = p.encoder_id "
            "WHERE p.encoder_id != ? ORDER BY e.name",
            (self.encoder_id,),
        )
        return [r[0] for r in rows]
