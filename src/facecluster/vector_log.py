"""What find's index file needs from the database: the log of vector changes (schema
step 4, kept by triggers on ``embeddings``) and the vectors and photos of a few faces.

A mark ``(seq, tag)`` is the newest log row of one encoder: an index written at that mark
covers the encoder's vectors as they were then; the rows after it are what changed since.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from . import dbfile
from .pathcodec import from_db

if TYPE_CHECKING:
    from .cache import FaceCache

Mark = tuple[int, int]  # (seq, tag) of a row of vector_changes


@contextmanager
def snapshot(cache: FaceCache) -> Iterator[None]:
    """Reads that see one state of the database (a read transaction), even while a scan
    commits; inside a transaction already, that one."""
    if cache.db.in_transaction:
        yield
        return
    try:
        cache.db.execute("BEGIN")
    except sqlite3.Error as exc:
        raise dbfile.explain(exc, cache.path) from exc
    try:
        yield
    finally:
        if cache.db.in_transaction:
            cache.db.execute("COMMIT")


def mark(cache: FaceCache, encoder_id: int) -> Mark | None:
    """The newest change of this encoder's vectors; None when it has none."""
    row = cache.db.execute(
        "SELECT seq, tag FROM vector_changes WHERE encoder_id = ? ORDER BY seq DESC LIMIT 1",
        (encoder_id,),
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def has_mark(cache: FaceCache, encoder_id: int, at: Mark) -> bool:
    """Whether this database holds the change ``at`` (the one an index was written at)."""
    row = cache.db.execute(
        "SELECT 1 FROM vector_changes WHERE seq = ? AND tag = ? AND encoder_id = ?",
        (at[0], at[1], encoder_id),
    ).fetchone()
    return row is not None


def changed_since(
    cache: FaceCache, encoder_id: int, seq: int, limit: int | None = None
) -> np.ndarray | None:
    """The faces whose vector of this encoder was added, replaced or removed after change
    ``seq`` (distinct ids); None when there are more than ``limit`` changes."""
    sql = "SELECT face_id FROM vector_changes WHERE encoder_id = ? AND seq > ?"
    args: tuple[object, ...] = (encoder_id, seq)
    if limit is not None:
        sql += " LIMIT ?"
        args += (limit + 1,)
    ids = [r[0] for r in cache.db.execute(sql, args)]
    if limit is not None and len(ids) > limit:
        return None
    return np.unique(np.asarray(ids, dtype=np.int64))


def forget_changes(cache: FaceCache, encoder_id: int, before: int) -> None:
    """Drop this encoder's log rows older than change ``before`` (which stays: an index
    written at it checks that it is there)."""
    with cache.transaction() as db:
        db.execute(
            "DELETE FROM vector_changes WHERE encoder_id = ? AND seq < ?", (encoder_id, before)
        )


def faces_with_vectors(
    cache: FaceCache, encoder_id: int, face_ids: Iterable[int]
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Of ``face_ids``, those that have a vector of this encoder now: their ids (sorted),
    photo paths and vectors (an (n, dim) float32 array)."""
    ids: list[int] = []
    paths: list[str] = []
    blobs: list[bytes] = []
    for chunk, marks in dbfile.id_chunks(sorted({int(f) for f in face_ids})):
        rows = cache.db.execute(
            "SELECT m.face_id, p.path, m.vector FROM embeddings m "
            "JOIN faces f ON f.id = m.face_id JOIN photos p ON p.id = f.photo_id "
            f"WHERE m.encoder_id = ? AND m.face_id IN ({marks}) "
            "ORDER BY m.face_id",
            (encoder_id, *chunk),
        )
        for fid, path, blob in rows:
            ids.append(int(fid))
            paths.append(from_db(path))
            blobs.append(blob)
    vectors = cache.matrix(b"".join(blobs), len(ids), encoder_id)
    return np.asarray(ids, dtype=np.int64), paths, vectors


def count(cache: FaceCache, encoder_id: int) -> int:
    """How many faces have a vector of this encoder."""
    row = cache.db.execute(
        "SELECT COUNT(*) FROM embeddings WHERE encoder_id = ?", (encoder_id,)
    ).fetchone()
    return int(row[0])


def dim(cache: FaceCache, encoder_id: int) -> int:
    """The encoder's vector dimension (0 when it is unknown)."""
    row = cache.db.execute("SELECT dim FROM encoders WHERE id = ?", (encoder_id,)).fetchone()
    return int(row[0]) if row else 0


def owners(
    cache: FaceCache, encoder_id: int, face_ids: Iterable[int]
) -> dict[int, tuple[int, str | None]]:
    """face id -> (person id, name) of those of ``face_ids`` that have a person."""
    out: dict[int, tuple[int, str | None]] = {}
    for chunk, marks in dbfile.id_chunks(sorted({int(f) for f in face_ids})):
        rows = cache.db.execute(
            "SELECT a.face_id, a.person_id, p.name FROM assignments a "
            "JOIN persons p ON p.id = a.person_id WHERE a.encoder_id = ? "
            f"AND a.face_id IN ({marks})",
            (encoder_id, *chunk),
        )
        out.update({r[0]: (r[1], r[2]) for r in rows})
    return out
