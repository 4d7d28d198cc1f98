"""Compare what the walk found with the index: what a scan has to do with each file."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .cache import STATUS_FAILED, PhotoRow
from .records import FileEntry


@dataclass
class Plan:
    """What a scan has to do with each file found."""

    read: list[FileEntry] = field(default_factory=list)  # new or changed: decode + detect
    new: set[str] = field(default_factory=set)
    embed: list[tuple[FileEntry, int]] = field(default_factory=list)  # known faces, no vectors
    unchanged: int = 0
    failed_unchanged: int = 0  # failed at an earlier scan, same size and time: not retried
    total: int = 0
    seen: set[str] = field(default_factory=set)


def plan(
    entries: Iterable[FileEntry],
    index: dict[str, PhotoRow],
    missing_embeddings: set[int],
    rescan: bool = False,
    retry_failed: bool = False,
) -> Plan:
    """A file is read again when it is new, when its size or mtime changed, or with
    ``rescan``; a file that failed before is read again only when it changed or with
    ``retry_failed`` (or ``rescan``): a broken file stays broken until someone touches it."""
    p = Plan()
    for entry in entries:
        key = str(entry.path)
        if key in p.seen:
            continue
        p.seen.add(key)
        p.total += 1
        row = index.get(key)
        same = row is not None and row.size == entry.size and row.mtime_ns == entry.mtime_ns
        if row is not None and same and not rescan:
            if row.status == STATUS_FAILED:
                if not retry_failed:
                    p.failed_unchanged += 1
                    continue
                p.read.append(entry)
            elif row.id in missing_embeddings:
                p.embed.append((entry, row.id))
            else:
                p.unchanged += 1
        else:
            p.read.append(entry)
            if row is None:
                p.new.add(key)
    return p
