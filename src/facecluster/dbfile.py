"""Opening the face database safely, and saying plainly what is wrong with it.

* A database that may not be written (read-only file, folder or file system) is opened
  read-only for commands that only read, and refused with the reason for those that write.
* ``PRAGMA quick_check`` looks for damaged pages on open. Its cost grows with the file (the
  whole file is read once: 0.2-0.9 s warm, 3-25 s from a cold disk for 200,000 faces), so
  commands that read every face anyway (scan, group) always run it, and the others (the
  ``people`` commands; ``find``, which reads only a few faces through its index file in a
  large library) only below ``CHECK_ALWAYS_BYTES``; above it they rely on SQLite's own
  checks of each page they read.
* ``explain`` turns any ``sqlite3.Error`` into a one-line CacheError: damaged, disk full,
  read-only, busy, cannot open.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote

from .errors import CacheDamaged, CacheError, CacheLocked, CacheReadOnly, DiskFull

SQLITE_MAGIC = b"SQLite format 3\x00"
# quick_check on every open below this size: about 60 ms warm (80,000 dlib faces).
CHECK_ALWAYS_BYTES = 64 << 20

_last_opened: Path | None = None


def id_chunks(ids: Iterable[int], size: int = 500) -> Iterator[tuple[list[int], str]]:
    """``ids`` in chunks that fit one ``IN (...)`` (SQLite's limit on parameters), each with
    its placeholders: ``for chunk, marks in id_chunks(ids): db.execute(f"... IN ({marks})",
    chunk)``."""
    ids = list(ids)
    for i in range(0, len(ids), size):
        chunk = ids[i : i + size]
        yield chunk, ",".join("?" * len(chunk))


def last_opened() -> Path | None:
    """The database this process opened last (named in errors that reach the CLI's top)."""
    return _last_opened


def opened(path: Path) -> None:
    global _last_opened
    _last_opened = path


def unwritable(path: Path) -> str | None:
    """Why SQLite could not write the database at ``path``, or None when it can."""
    folder = path.parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"the file system holding {folder} is mounted read-only"
    except OSError:
        pass
    if path.exists() and not os.access(path, os.W_OK):
        return f"the file {path} is not writable"
    if not os.access(folder, os.W_OK):
        return (
            f"its folder {folder} is not writable (SQLite keeps {path.name}-wal and "
            f"{path.name}-shm beside it)"
        )
    return None


def connect(path: Path, *, write: bool) -> tuple[sqlite3.Connection, bool]:
    """A connection to ``path`` and whether it is read-only. Raises CacheReadOnly when
    ``write`` is asked of a database that cannot be written."""
    reason = unwritable(path)
    if reason is None:
        return sqlite3.connect(path, timeout=30, isolation_level=None), False
    if write or not path.is_file():
        raise CacheReadOnly(
            f"{path} is read-only: {reason}; this command writes to the database (commands "
            "that only read it, such as 'people', 'people show' and 'find', still work)"
        )
    uri = "file:" + quote(str(path.resolve())) + "?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
    try:
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return db, True
    except sqlite3.OperationalError:
        db.close()  # WAL needs a -shm file beside it, which cannot be created here
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise CacheReadOnly(
            f"{path} is read-only ({reason}) and {wal.name} beside it holds changes SQLite "
            "cannot read without writing; copy both files to a writable folder and pass "
            "--db there"
        )
    # Nothing can change the file (nobody may write here): read it as it is.
    return sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None), True


def check(db: sqlite3.Connection, path: Path, full: bool | None) -> None:
    """Raise CacheDamaged when ``PRAGMA quick_check`` finds damage. ``full=None``: only
    when the file is small enough for the check to be unnoticeable."""
    if full is None:
        try:
            full = path.stat().st_size <= CHECK_ALWAYS_BYTES
        except OSError:
            full = True
    if not full:
        return
    rows = [str(r[0]) for r in db.execute("PRAGMA quick_check").fetchall()]
    if rows != ["ok"]:
        found = [r for r in rows if not r.startswith("***")] or ["quick_check failed"]
        raise damaged(path, f"{found[0]}" + (f", and {len(found) - 1} more" if found[1:] else ""))


def check_ours(db: sqlite3.Connection, path: Path) -> None:
    """Never add facecluster's tables to another program's SQLite file."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and "meta" not in tables:
        raise CacheError(
            f"{path} is not a facecluster database (an SQLite file of another program); "
            "pass another --db"
        )


def check_schema(db: sqlite3.Connection, path: Path, version: int) -> None:
    """A read-only database cannot be migrated: it must have this version's schema."""
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None or str(row[0]) != str(version):
        raise CacheReadOnly(
            f"{path} is read-only and has another schema ({row[0] if row else 'none'}; this "
            f"facecluster reads {version}): copy it to a writable folder and pass --db there"
        )


def damaged(path: Path | str, detail: str) -> CacheDamaged:
    detail = detail.splitlines()[0][:120] if detail else "damaged pages"
    return CacheDamaged(
        f"the face database {path} is damaged (SQLite: {detail}); keep the file, and "
        f"restore it from a backup or salvage it with 'sqlite3 {path} .recover | sqlite3 "
        "NEW.db' and pass --db NEW.db (docs/guide.md, Troubleshooting); a scan into a new "
        "--db rebuilds the faces but loses every name and correction"
    )


def free_space(path: Path) -> int | None:
    """Bytes free on the file system holding ``path`` (or its nearest existing parent)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def human(n: int | None) -> str:
    if n is None:
        return "unknown"
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


def disk_full(path: Path | str, what: str = "") -> DiskFull:
    where = Path(path)
    return DiskFull(
        f"the disk is full: cannot write {where} ({human(free_space(where))} free){what}; "
        "free some space and run the command again"
    )


def has_magic(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def explain(exc: sqlite3.Error, path: Path | None) -> CacheError:
    """One line for any SQLite error on the database at ``path``."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    where = str(path) if path is not None else "the face database"
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text:
        if path is not None and path.is_file() and not has_magic(path):
            return CacheError(
                f"{where} is not a facecluster database (not an SQLite file, or its first "
                "page is destroyed); pass another --db"
            )
        return damaged(where, text)
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return disk_full(path or where)
    if name.startswith("SQLITE_READONLY"):
        reason = unwritable(path) if path is not None else None
        return CacheReadOnly(f"{where} is read-only: {reason or text}")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return CacheLocked(
            f"{where} is busy: another facecluster command is writing to it; run this one "
            "again when it has finished"
        )
    if name == "SQLITE_CONSTRAINT_FOREIGNKEY":
        return CacheError(
            f"{where} changed while this command ran (a scan in progress?); nothing was "
            "saved, run it again"
        )
    if name.startswith("SQLITE_IOERR"):
        free = free_space(path) if path is not None else None
        if free is not None and free < 1 << 20:
            return disk_full(where)
        return CacheError(
            f"cannot read or write {where}: disk I/O error ({name}); the disk may be failing "
            "or was removed"
        )
    if name.startswith("SQLITE_CANTOPEN"):
        return CacheError(f"cannot open {where}: {_cannot_open(path)}")
    return CacheError(f"{where}: database error: {text}")


def _cannot_open(path: Path | None) -> str:
    if path is None:
        return "unable to open database file"
    if path.is_dir():
        return "it is a folder; pass a file to --db"
    if not path.parent.is_dir():
        return f"the folder {path.parent} does not exist"
    reason = unwritable(path)
    if reason:
        return reason
    if path.exists() and not os.access(path, os.R_OK):
        return "the file is not readable"
    return "unable to open database file"


def os_error(exc: OSError, what: str = "") -> CacheError:
    """One line for an OSError met while using the database (lock file, folder)."""
    import errno

    target = exc.filename or what
    if exc.errno == errno.ENOSPC:
        return disk_full(target)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return CacheReadOnly(f"cannot write {target}: {exc.strerror}")
    return CacheError(f"cannot use {target}: {exc.strerror or exc}")
