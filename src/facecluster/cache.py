"""The face index: one versioned SQLite database (WAL) of photos, faces and embeddings.

Faces (boxes, landmarks) do not depend on the encoder; embeddings are stored per encoder
identity, so two encoders' vectors live side by side and are never mixed. Every write
happens in one transaction per batch, so a crash loses at most the batch in flight.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import dbfile, schema
from .cache_writes import AddEmbeddings, CopyPhoto, MovePhoto, Op, PhotoWrite, apply_op, bury_photos
from .errors import CacheError, CacheLocked, EmptyCache
from .pathcodec import from_db, to_db
from .records import Face

__all__ = ["AddEmbeddings", "CopyPhoto", "FaceCache", "MovePhoto", "Op", "PhotoWrite"]

SCHEMA_VERSION = schema.VERSION

STATUS_OK = "ok"  # has faces
STATUS_NO_FACE = "no_face"
STATUS_FAILED = "failed"


@dataclass(frozen=True)
class PhotoRow:
    id: int
    path: str
    size: int
    mtime_ns: int
    status: str
    digest: str | None = None  # of the content (photo_index only)


@dataclass(frozen=True)
class StoredFace:
    id: int
    photo_id: int
    path: str
    face: Face


def _canonical(identity: dict[str, object]) -> str:
    return json.dumps(identity, sort_keys=True, separators=(",", ":"))


def path_range(root: str) -> tuple[str, str]:
    """Bounds such that ``lo <= path < hi`` selects the stored paths under directory
    ``root`` (compare them with stored text, see pathcodec)."""
    root = to_db(root).rstrip(os.sep)
    return root + os.sep, root + chr(ord(os.sep) + 1)


def _landmarks(blob: bytes, path: Path) -> np.ndarray:
    if len(blob) != 40:
        raise dbfile.damaged(path, f"a face's landmarks are {len(blob)} bytes, not 40")
    return np.frombuffer(blob, dtype=np.float32).reshape(5, 2).copy()


class FaceCache:
    """``write=False``: the command only reads, so a database it may not write is opened
    read-only (``self.readonly``) instead of refused. ``check``: run ``PRAGMA
    quick_check`` on open (None: only when the file is small, see dbfile.py)."""

    def __init__(
        self, path: Path, *, create: bool = True, write: bool = True, check: bool | None = None
    ) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None
        if not create and not self.path.is_file():
            raise EmptyCache(f"no face database at {self.path}: run 'facecluster scan PATH' first")
        existed = self.path.exists()
        companions = [Path(f"{self.path}{s}") for s in ("-wal", "-shm")]
        ours = [p for p in companions if not p.exists()]  # what a failed creation removes
        if create:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise dbfile.os_error(exc) from None
        self.db, self.readonly = dbfile.connect(self.path, write=write)
        try:
            self._open(existed, check)
        except BaseException as exc:
            self.db.close()
            if not existed:  # a failed creation leaves nothing behind
                for leftover in (self.path, *ours):
                    leftover.unlink(missing_ok=True)
            if isinstance(exc, sqlite3.Error):
                raise dbfile.explain(exc, self.path) from None
            raise
        dbfile.opened(self.path)

    def _open(self, existed: bool, check: bool | None) -> None:
        if not self.readonly:
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
        if existed:
            dbfile.check(self.db, self.path, check)
            dbfile.check_ours(self.db, self.path)
        if self.readonly:
            dbfile.check_schema(self.db, self.path, SCHEMA_VERSION)
        else:
            self._migrate()

    def close(self) -> None:
        self.unlock()
        self.db.close()

    def __enter__(self) -> FaceCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema (schema.py) ---------------------------------------------------------------
    def _migrate(self) -> None:
        current = schema.version_of(self.db)
        if current > SCHEMA_VERSION:
            raise CacheError(
                f"{self.path} was written by a newer facecluster (schema {current}); upgrade"
            )
        schema.upgrade(self.db, current)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of writes; nested inside another it is a savepoint of it.
        SQLite's errors (disk full, busy, damaged) come out of the outermost one as
        CacheErrors (dbfile.explain), after the rollback."""
        if self.db.in_transaction:
            self.db.execute("SAVEPOINT nested")
            try:
                yield self.db
            except BaseException:
                if self.db.in_transaction:  # SQLite rolls back by itself after some errors
                    self.db.execute("ROLLBACK TO nested")
                    self.db.execute("RELEASE nested")
                raise
            else:
                self.db.execute("RELEASE nested")
            return
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise dbfile.explain(exc, self.path) from exc
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException as exc:
            if self.db.in_transaction:  # SQLite rolls back by itself after some errors
                try:
                    self.db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            if isinstance(exc, sqlite3.Error):
                raise dbfile.explain(exc, self.path) from exc
            raise

    # -- locking: one writer (scan, group) at a time ---------------------------------------
    def lock(self, command: str = "scan") -> None:
        """Take the writer lock (idempotent). Raises CacheLocked when another command
        (``command`` names this one in the lock file) has it."""
        if self._lock_fd is not None:
            return
        try:
            fd = os.open(str(self.path) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise dbfile.os_error(exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").split()  # "PID COMMAND"
            os.close(fd)
            pid = f" (pid {holder[0]})" if holder else ""
            raise CacheLocked(
                f"{self.path} is busy: another facecluster {' '.join(holder[1:2]) or 'scan'}"
                f"{pid} is writing to it; run this command when it has finished"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {command}".encode())
        except OSError:
            pass  # the lock holds without the note (e.g. a full disk)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- notes: the meta table, key -> text (a new key needs no schema step) ------------
    def note(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_note(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- encoders -------------------------------------------------------------------------
    def encoder_id(self, identity: dict[str, object], *, register: bool = True) -> int | None:
        key = _canonical(identity)
        row = self.db.execute("SELECT id FROM encoders WHERE identity = ?", (key,)).fetchone()
        if row is not None:
            return int(row[0])
        if not register:
            return None
        cur = self.db.execute(
            "INSERT INTO encoders (name, identity, dim, created) VALUES (?, ?, ?, ?)",
            (identity["name"], key, identity["dim"], time.time()),
        )
        return int(cur.lastrowid or 0)

    def encoders(self) -> list[tuple[int, str, dict[str, object], int]]:
        """(id, name, identity, number of embeddings), newest first."""
        rows = self.db.execute(
            "SELECT e.id, e.name, e.identity, COUNT(m.face_id) FROM encoders e "
            "LEFT JOIN embeddings m ON m.encoder_id = e.id GROUP BY e.id ORDER BY e.id DESC"
        ).fetchall()
        return [(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    # -- reads ----------------------------------------------------------------------------
    def photo_index(self) -> dict[str, PhotoRow]:
        rows = self.db.execute("SELECT id, path, size, mtime_ns, status, digest FROM photos")
        return {from_db(r[1]): PhotoRow(r[0], from_db(r[1]), *r[2:]) for r in rows}

    def photos_missing_embeddings(self, encoder_id: int) -> set[int]:
        rows = self.db.execute(
            "SELECT DISTINCT f.photo_id FROM faces f LEFT JOIN embeddings m "
            "ON m.face_id = f.id AND m.encoder_id = ? WHERE m.face_id IS NULL",
            (encoder_id,),
        )
        return {r[0] for r in rows}

    def photos_with_digest(self, digest: str) -> list[PhotoRow]:
        rows = self.db.execute(
            "SELECT id, path, size, mtime_ns, status FROM photos WHERE digest = ? AND status != ?",
            (digest, STATUS_FAILED),
        )
        return [PhotoRow(r[0], from_db(r[1]), *r[2:]) for r in rows]

    def has_embeddings(self, photo_id: int, encoder_id: int) -> bool:
        """True when every face of the photo has a vector of this encoder."""
        row = self.db.execute(
            "SELECT 1 FROM faces f LEFT JOIN embeddings m ON m.face_id = f.id "
            "AND m.encoder_id = ? WHERE f.photo_id = ? AND m.face_id IS NULL LIMIT 1",
            (encoder_id, photo_id),
        ).fetchone()
        return row is None

    def faces_of(self, photo_id: int) -> list[StoredFace]:
        return list(self._faces("WHERE f.photo_id = ?", (photo_id,)))

    def _faces(self, where: str, args: tuple[object, ...]) -> Iterator[StoredFace]:
        rows = self.db.execute(
            "SELECT f.id, f.photo_id, p.path, f.x1, f.y1, f.x2, f.y2, f.prob, f.landmarks "
            f"FROM faces f JOIN photos p ON p.id = f.photo_id {where} ORDER BY f.id",
            args,
        )
        for r in rows:
            box = np.array(r[3:7], dtype=np.float32)
            lm = _landmarks(r[8], self.path)
            yield StoredFace(r[0], r[1], from_db(r[2]), Face(box=box, landmarks=lm, prob=r[7]))

    def has_faces(self) -> bool:
        """Whether any photo has a face (whatever the encoder)."""
        return self.db.execute("SELECT 1 FROM faces LIMIT 1").fetchone() is not None

    def count_faces(self, encoder_id: int, roots: Sequence[str] = ()) -> int:
        sql = (
            "SELECT COUNT(*) FROM embeddings m JOIN faces f ON f.id = m.face_id "
            "JOIN photos p ON p.id = f.photo_id WHERE m.encoder_id = ?"
        )
        if not roots:
            return int(self.db.execute(sql, (encoder_id,)).fetchone()[0])
        total = 0
        for root in roots:
            if os.path.isdir(root):
                lo, hi = path_range(root)
                q = sql + " AND p.path >= ? AND p.path < ?"
                total += int(self.db.execute(q, (encoder_id, lo, hi)).fetchone()[0])
            else:
                q = sql + " AND p.path = ?"
                total += int(self.db.execute(q, (encoder_id, to_db(root))).fetchone()[0])
        return total

    def face_vectors(
        self, encoder_id: int, roots: Sequence[str] = ()
    ) -> tuple[list[StoredFace], np.ndarray]:
        """Faces with a vector of this encoder (under ``roots`` when given), in face-id
        order, and their vectors as one (n, dim) float32 array."""
        sql = (
            "SELECT f.id, f.photo_id, p.path, f.x1, f.y1, f.x2, f.y2, f.prob, f.landmarks, "
            "m.vector FROM embeddings m JOIN faces f ON f.id = m.face_id "
            "JOIN photos p ON p.id = f.photo_id WHERE m.encoder_id = ?"
        )
        args: list[object] = [encoder_id]
        if roots:
            clauses = []
            for root in roots:
                lo, hi = path_range(root)
                clauses.append("(p.path >= ? AND p.path < ?)")
                args += [lo, hi]
            sql += " AND (" + " OR ".join(clauses) + ")"
        faces, blobs = [], []
        for r in self.db.execute(sql + " ORDER BY f.id", args):
            box = np.array(r[3:7], dtype=np.float32)
            lm = _landmarks(r[8], self.path)
            face = Face(box=box, landmarks=lm, prob=r[7])
            faces.append(StoredFace(r[0], r[1], from_db(r[2]), face))
            blobs.append(r[9])
        return faces, self.matrix(b"".join(blobs), len(faces), encoder_id)

    def matrix(self, blob: bytes, n: int, encoder_id: int) -> np.ndarray:
        """``n`` vectors of one encoder as an (n, dim) array; CacheDamaged when the stored
        bytes do not fit the encoder's recorded dimension."""
        row = self.db.execute("SELECT dim FROM encoders WHERE id = ?", (encoder_id,)).fetchone()
        dim = int(row[0]) if row else 0
        if len(blob) != n * max(dim, 0) * 4 or (n and dim <= 0):
            raise dbfile.damaged(
                self.path, f"{n} vectors of encoder {encoder_id} do not fit its dim {dim}"
            )
        return np.frombuffer(blob, dtype=np.float32).reshape(n, dim)

    def photo_sizes(self, photo_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """(width, height) of the upright original of each photo."""
        out: dict[int, tuple[int, int]] = {}
        for chunk, marks in dbfile.id_chunks(set(photo_ids)):
            q = f"SELECT id, width, height FROM photos WHERE id IN ({marks})"
            out.update({r[0]: (r[1] or 0, r[2] or 0) for r in self.db.execute(q, chunk)})
        return out

    def embeddings(self, encoder_id: int) -> tuple[np.ndarray, np.ndarray]:
        """All (face ids, vectors) of one encoder, vectors as an (n, dim) float32 array."""
        dim = self.db.execute("SELECT dim FROM encoders WHERE id = ?", (encoder_id,)).fetchone()
        if dim is None:
            raise EmptyCache("no embeddings for this encoder")
        rows = self.db.execute(
            "SELECT face_id, vector FROM embeddings WHERE encoder_id = ? ORDER BY face_id",
            (encoder_id,),
        ).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return ids, self.matrix(b"".join(r[1] for r in rows), len(rows), encoder_id)

    # -- writes ---------------------------------------------------------------------------
    def apply(self, ops: Sequence[Op], encoder_id: int) -> None:
        """Apply one batch of writes atomically (see cache_writes)."""
        with self.transaction() as db:
            for op in ops:
                apply_op(db, op, encoder_id)

    def remove_photos(self, photo_ids: Sequence[int]) -> None:
        """Forget photos; their faces' persons and rejections are kept as tombstones."""
        with self.transaction() as db:
            for chunk, marks in dbfile.id_chunks(photo_ids):
                bury_photos(db, f"id IN ({marks})", tuple(chunk))
