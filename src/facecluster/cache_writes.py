"""The scan's writes to the face index, and how they keep the user's work.

A user's names and corrections hang on face rows (assignments, rejections). Face rows are
anchored to what does not change, not to row ids:

* a photo read again (``--rescan``, a touched or edited file, a new detector) keeps its
  row, and each new face that overlaps an old one (IoU >= 0.5) keeps the old face's id,
  so its person, manual placement and rejections stay;
* a photo that leaves the index (deleted, or replaced at its path) leaves a tombstone per
  face: content digest, box and the face's assignments and rejections. When a photo with
  that digest comes back (restored from a backup, a disk mounted again), faces that
  overlap the buried boxes get them back.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .pathcodec import to_db
from .records import Face, FileEntry, NamedRegion

MATCH_IOU = 0.5  # a re-detected face is the same face when its box overlaps this much


@dataclass(frozen=True)
class PhotoWrite:
    """Insert or update the photo at ``entry.path`` with these faces (and vectors)."""

    entry: FileEntry
    digest: str | None
    width: int | None
    height: int | None
    status: str
    faces: Sequence[Face] = ()
    vectors: np.ndarray | None = None
    error: str | None = None


@dataclass(frozen=True)
class MovePhoto:
    """The file of photo ``photo_id`` now lives at ``entry.path``: keep its faces."""

    photo_id: int
    entry: FileEntry


@dataclass(frozen=True)
class CopyPhoto:
    """``entry`` has the same content as photo ``source_id``: copy its faces and vectors."""

    source_id: int
    entry: FileEntry


@dataclass(frozen=True)
class AddEmbeddings:
    face_ids: Sequence[int]
    vectors: np.ndarray


@dataclass(frozen=True)
class XmpRegions:
    """The named regions found in the XMP of the photo at ``path`` replace those stored
    for it, each on the face it overlaps (match_boxes), if any."""

    path: str
    regions: Sequence[NamedRegion]


Op = PhotoWrite | MovePhoto | CopyPhoto | AddEmbeddings | XmpRegions

_FACE_COLS = "idx, x1, y1, x2, y2, prob, landmarks"


def apply_op(db: sqlite3.Connection, op: Op, encoder_id: int) -> None:
    if isinstance(op, PhotoWrite):
        write_photo(db, op, encoder_id)
    elif isinstance(op, MovePhoto):
        path = to_db(op.entry.path)
        bury_photos(db, "path = ? AND id != ?", (path, op.photo_id))
        db.execute(
            "UPDATE photos SET path = ?, size = ?, mtime_ns = ? WHERE id = ?",
            (path, op.entry.size, op.entry.mtime_ns, op.photo_id),
        )
    elif isinstance(op, CopyPhoto):
        copy_photo(db, op)
    elif isinstance(op, XmpRegions):
        write_regions(db, op)
    else:
        db.executemany(
            "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)",
            [
                (fid, encoder_id, v.astype(np.float32).tobytes())
                for fid, v in zip(op.face_ids, op.vectors, strict=True)
            ],
        )


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_boxes(
    new: Sequence[Sequence[float]], old: Sequence[Sequence[float]]
) -> dict[int, int]:
    """Pairs (index in ``new`` -> index in ``old``) of boxes overlapping by at least
    MATCH_IOU, best overlaps first, each box used once."""
    pairs = sorted(
        ((iou(a, b), i, j) for i, a in enumerate(new) for j, b in enumerate(old)),
        reverse=True,
    )
    out: dict[int, int] = {}
    used: set[int] = set()
    for score, i, j in pairs:
        if score < MATCH_IOU:
            break
        if i not in out and j not in used:
            out[i] = j
            used.add(j)
    return out


def _face_values(i: int, face: Face) -> tuple[object, ...]:
    return (
        i,
        *(float(v) for v in face.box),
        float(face.prob),
        np.asarray(face.landmarks, np.float32).tobytes(),
    )


def write_photo(db: sqlite3.Connection, op: PhotoWrite, encoder_id: int) -> None:
    path = to_db(op.entry.path)
    fields = (op.entry.size, op.entry.mtime_ns, op.digest, op.width, op.height, op.status)
    row = db.execute("SELECT id FROM photos WHERE path = ?", (path,)).fetchone()
    if row is None:
        cur = db.execute(
            "INSERT INTO photos (path, size, mtime_ns, digest, width, height, status, error, "
            "scanned) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (path, *fields, op.error, time.time()),
        )
        photo_id = int(cur.lastrowid or 0)
        old: list[tuple[int, tuple[float, ...]]] = []
    else:
        photo_id = int(row[0])
        db.execute(
            "UPDATE photos SET size = ?, mtime_ns = ?, digest = ?, width = ?, height = ?, "
            "status = ?, error = ?, scanned = ? WHERE id = ?",
            (*fields, op.error, time.time(), photo_id),
        )
        old = [
            (r[0], tuple(r[1:5]))
            for r in db.execute(
                "SELECT id, x1, y1, x2, y2 FROM faces WHERE photo_id = ? ORDER BY idx",
                (photo_id,),
            )
        ]
    matched = match_boxes([f.box.tolist() for f in op.faces], [b for _, b in old])
    kept = {old[j][0] for j in matched.values()}
    gone = [fid for fid, _ in old if fid not in kept]
    if gone:
        db.executemany("DELETE FROM faces WHERE id = ?", [(f,) for f in gone])
    fresh = []
    for i, face in enumerate(op.faces):
        values = _face_values(i, face)
        if i in matched:
            face_id, box = old[matched[i]]
            db.execute(
                "UPDATE faces SET idx = ?, x1 = ?, y1 = ?, x2 = ?, y2 = ?, prob = ?, "
                "landmarks = ? WHERE id = ?",
                (*values, face_id),
            )
            if not np.allclose(box, face.box, atol=0.5):  # other encoders' vectors are stale
                db.execute(
                    "DELETE FROM embeddings WHERE face_id = ? AND encoder_id != ?",
                    (face_id, encoder_id),
                )
        else:
            cur = db.execute(
                f"INSERT INTO faces (photo_id, {_FACE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (photo_id, *values),
            )
            face_id = int(cur.lastrowid or 0)
            fresh.append(face_id)
        if op.vectors is not None:
            db.execute(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)",
                (face_id, encoder_id, op.vectors[i].astype(np.float32).tobytes()),
            )
    if fresh and op.digest:
        restore(db, op.digest, fresh)


def write_regions(db: sqlite3.Connection, op: XmpRegions) -> None:
    row = db.execute("SELECT id FROM photos WHERE path = ?", (to_db(op.path),)).fetchone()
    if row is None:
        return
    photo_id = int(row[0])
    db.execute("DELETE FROM xmp_regions WHERE photo_id = ?", (photo_id,))
    faces = db.execute(
        "SELECT id, x1, y1, x2, y2 FROM faces WHERE photo_id = ? ORDER BY idx", (photo_id,)
    ).fetchall()
    matched = match_boxes([r.box for r in op.regions], [f[1:] for f in faces])
    db.executemany(
        "INSERT INTO xmp_regions (photo_id, face_id, name, x1, y1, x2, y2, source) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (photo_id, faces[matched[i]][0] if i in matched else None, r.name, *r.box, r.source)
            for i, r in enumerate(op.regions)
        ],
    )


def copy_photo(db: sqlite3.Connection, op: CopyPhoto) -> None:
    path = to_db(op.entry.path)
    bury_photos(db, "path = ?", (path,))
    cur = db.execute(
        "INSERT INTO photos (path, size, mtime_ns, digest, width, height, status, error, "
        "scanned) SELECT ?, ?, ?, digest, width, height, status, error, ? FROM photos "
        "WHERE id = ?",
        (path, op.entry.size, op.entry.mtime_ns, time.time(), op.source_id),
    )
    new_id = cur.lastrowid
    fresh = []
    for (old_face,) in db.execute(
        "SELECT id FROM faces WHERE photo_id = ? ORDER BY idx", (op.source_id,)
    ).fetchall():
        cur = db.execute(
            f"INSERT INTO faces (photo_id, {_FACE_COLS}) SELECT ?, {_FACE_COLS} FROM faces "
            "WHERE id = ?",
            (new_id, old_face),
        )
        fresh.append(int(cur.lastrowid or 0))
        db.execute(
            "INSERT INTO embeddings SELECT ?, encoder_id, vector FROM embeddings "
            "WHERE face_id = ?",
            (cur.lastrowid, old_face),
        )
    digest = db.execute("SELECT digest FROM photos WHERE id = ?", (new_id,)).fetchone()
    if fresh and digest and digest[0]:
        restore(db, digest[0], fresh)


# -- tombstones -----------------------------------------------------------------------------


def bury_photos(db: sqlite3.Connection, where: str, args: tuple[object, ...]) -> None:
    """Delete the photos matching ``where``, keeping a tombstone of each face that carries
    a person or a rejection."""
    now = time.time()
    db.execute(
        "INSERT INTO tombstones (digest, x1, y1, x2, y2, encoder_id, person_id, manual, "
        "rejected, buried) "
        "SELECT p.digest, f.x1, f.y1, f.x2, f.y2, a.encoder_id, a.person_id, a.manual, 0, ? "
        "FROM photos p JOIN faces f ON f.photo_id = p.id "
        "JOIN assignments a ON a.face_id = f.id WHERE p.digest IS NOT NULL "
        f"AND p.id IN (SELECT id FROM photos WHERE {where})",
        (now, *args),
    )
    db.execute(
        "INSERT INTO tombstones (digest, x1, y1, x2, y2, encoder_id, person_id, manual, "
        "rejected, buried) "
        "SELECT p.digest, f.x1, f.y1, f.x2, f.y2, s.encoder_id, r.person_id, 0, 1, ? "
        "FROM photos p JOIN faces f ON f.photo_id = p.id "
        "JOIN rejections r ON r.face_id = f.id JOIN persons s ON s.id = r.person_id "
        f"WHERE p.digest IS NOT NULL AND p.id IN (SELECT id FROM photos WHERE {where})",
        (now, *args),
    )
    db.execute(f"DELETE FROM photos WHERE {where}", args)


def restore(db: sqlite3.Connection, digest: str, face_ids: Sequence[int]) -> int:
    """Give the faces ``face_ids`` (of a photo with content ``digest``) the persons and
    rejections buried with faces at the same place. Returns how many were restored."""
    graves = db.execute(
        "SELECT rowid, x1, y1, x2, y2, encoder_id, person_id, manual, rejected "
        "FROM tombstones WHERE digest = ?",
        (digest,),
    ).fetchall()
    if not graves:
        return 0
    q = f"SELECT id, x1, y1, x2, y2 FROM faces WHERE id IN ({','.join('?' * len(face_ids))})"
    faces = db.execute(q, list(face_ids)).fetchall()
    restored = 0
    used: set[int] = set()
    for fid, *box in faces:
        for rowid, *grave in graves:
            if rowid in used or iou(box, grave[:4]) < MATCH_IOU:
                continue
            used.add(rowid)
            encoder_id, person_id, manual, rejected = grave[4:]
            if db.execute("SELECT 1 FROM persons WHERE id = ?", (person_id,)).fetchone():
                if rejected:
                    db.execute("INSERT OR IGNORE INTO rejections VALUES (?, ?)", (fid, person_id))
                else:
                    db.execute(
                        "INSERT OR IGNORE INTO assignments (face_id, encoder_id, person_id, "
                        "manual) VALUES (?, ?, ?, ?)",
                        (fid, encoder_id, person_id, manual),
                    )
                restored += 1
            db.execute("DELETE FROM tombstones WHERE rowid = ?", (rowid,))
    return restored
