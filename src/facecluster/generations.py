"""Generations: the persons, names and corrections as they were before each change, so
that ``people undo`` can go back one step at a time.

Every change to the persons of an encoder (a ``group`` that saves, and each ``people``
correction) first stores the current state as a generation, in the same transaction as
the change. The last :data:`KEEP` generations of each encoder are kept.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

KEEP = 20


@dataclass(frozen=True)
class Generation:
    id: int
    action: str  # what came after it, e.g. "group --threshold 0.2" or "name 3 Anna"
    created: float
    persons: int  # persons with at least one face in this state
    faces: int  # faces assigned in this state


def snapshot(db: sqlite3.Connection, encoder_id: int, action: str) -> int:
    """Store the current persons, assignments and rejections of ``encoder_id``."""
    persons = db.execute(
        "SELECT id, name, confirmed, created FROM persons WHERE encoder_id = ? ORDER BY id",
        (encoder_id,),
    ).fetchall()
    rejections = db.execute(
        "SELECT r.face_id, r.person_id FROM rejections r JOIN persons p ON p.id = r.person_id "
        "WHERE p.encoder_id = ? ORDER BY r.face_id, r.person_id",
        (encoder_id,),
    ).fetchall()
    cur = db.execute(
        "INSERT INTO generations (encoder_id, action, created, persons, rejections) "
        "VALUES (?, ?, ?, ?, ?)",
        (encoder_id, action, time.time(), json.dumps(persons), json.dumps(rejections)),
    )
    gid = int(cur.lastrowid or 0)
    db.execute(
        "INSERT INTO generation_assignments SELECT ?, face_id, person_id, manual "
        "FROM assignments WHERE encoder_id = ?",
        (gid, encoder_id),
    )
    db.execute(
        "DELETE FROM generations WHERE encoder_id = ? AND id NOT IN "
        "(SELECT id FROM generations WHERE encoder_id = ? ORDER BY id DESC LIMIT ?)",
        (encoder_id, encoder_id, KEEP),
    )
    return gid


def history(db: sqlite3.Connection, encoder_id: int) -> list[Generation]:
    """The stored generations, newest first."""
    rows = db.execute(
        "SELECT g.id, g.action, g.created, COUNT(DISTINCT a.person_id), COUNT(a.face_id) "
        "FROM generations g LEFT JOIN generation_assignments a ON a.generation_id = g.id "
        "WHERE g.encoder_id = ? GROUP BY g.id ORDER BY g.id DESC",
        (encoder_id,),
    ).fetchall()
    return [Generation(*r) for r in rows]


def restore_latest(db: sqlite3.Connection, encoder_id: int) -> Generation | None:
    """Put back the newest generation of ``encoder_id`` and drop it; None when there is
    none. Faces that left the index since keep nothing; persons made since are removed."""
    found = history(db, encoder_id)
    if not found:
        return None
    gen = found[0]
    persons_json, rejections_json = db.execute(
        "SELECT persons, rejections FROM generations WHERE id = ?", (gen.id,)
    ).fetchone()
    persons = json.loads(persons_json)
    db.execute("DELETE FROM assignments WHERE encoder_id = ?", (encoder_id,))
    db.execute(
        "DELETE FROM rejections WHERE person_id IN (SELECT id FROM persons WHERE encoder_id = ?)",
        (encoder_id,),
    )
    keep = {int(p[0]) for p in persons}
    now = [r[0] for r in db.execute("SELECT id FROM persons WHERE encoder_id = ?", (encoder_id,))]
    db.executemany("DELETE FROM persons WHERE id = ?", [(i,) for i in now if i not in keep])
    db.executemany(
        "INSERT INTO persons (id, encoder_id, name, confirmed, created) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET name = excluded.name, confirmed = excluded.confirmed",
        [(p[0], encoder_id, p[1], p[2], p[3]) for p in persons],
    )
    db.execute(
        "INSERT INTO assignments (face_id, encoder_id, person_id, manual) "
        "SELECT g.face_id, ?, g.person_id, g.manual FROM generation_assignments g "
        "JOIN faces f ON f.id = g.face_id WHERE g.generation_id = ?",
        (encoder_id, gen.id),
    )
    db.executemany(
        "INSERT OR IGNORE INTO rejections SELECT id, ? FROM faces WHERE id = ?",
        [(pid, fid) for fid, pid in json.loads(rejections_json)],
    )
    db.execute("DELETE FROM generations WHERE id = ?", (gen.id,))
    return gen
