"""What a scan that stopped on a storage error says: a full disk names how much of the
scan was saved (the next scan resumes after it); other storage errors are explained."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Callable
from pathlib import Path

from .errors import DiskFull
from .records import ScanProgress


class SavedProgress:
    """Passes the scan's progress on and remembers how much of it was saved, for the
    disk-full message."""

    def __init__(self, then: Callable[[ScanProgress], None] | None) -> None:
        self.last: ScanProgress | None = None
        self.then = then

    def __call__(self, p: ScanProgress) -> None:
        self.last = p
        if self.then is not None:
            self.then(p)

    def note(self) -> str:
        saved, total = (self.last.saved, self.last.total) if self.last else (0, 0)
        return (
            f"; {saved} of the {total} photos this scan had to read were saved, and the next "
            "scan resumes after them"
        )


def disk_full_or(exc: BaseException, db: Path, saved: SavedProgress) -> BaseException:
    """A full disk says how much of the scan was saved; other storage errors are
    explained; anything else is returned as it is."""
    from .dbfile import disk_full, explain

    full = isinstance(exc, DiskFull) or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC)
    if isinstance(exc, sqlite3.Error):
        err = explain(exc, db)
        if not isinstance(err, DiskFull):
            return err
        full = True
    if not full:
        return exc
    return disk_full(getattr(exc, "filename", None) or db, saved.note())
