"""Compare what the walk found with the index: what a scan has to do with each file (and,
after it, which photos it forgets)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .cache import STATUS_FAILED, PhotoRow
from .records import Failure, FileEntry


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


def known_digests(index: dict[str, PhotoRow], missing: set[int]) -> dict[str, list[str]]:
    """The paths of each content in the index whose faces all have this encoder's vectors
    (or that has none): a copy of one of them needs no decoding."""
    out: dict[str, list[str]] = {}
    for path, row in index.items():
        if row.digest and row.status != STATUS_FAILED and row.id not in missing:
            out.setdefault(row.digest, []).append(path)
    return out


def prune(
    roots: Sequence[Path],
    index: dict[str, PhotoRow],
    seen: set[str],
    moved: set[int],
    unavailable: list[Failure],
) -> tuple[list[int], int, list[Failure]]:
    """After a scan of ``roots``: the ids of the photos under them that are no longer there
    (neither ``seen`` nor ``moved``) except under folders that could not be read or are
    empty; how many such photos are kept; and the unavailable folders worth reporting."""
    dirs = [str(r) for r in roots if r.is_dir()]
    files = {str(r) for r in roots if not r.is_dir()}
    shelter = {u.path: u for u in unavailable}
    gone, kept = [], 0
    sheltering: set[str] = set()
    for path, row in index.items():
        if path in seen or row.id in moved:
            continue
        if path not in files and not any(_under(path, d) for d in dirs):
            continue
        cover = next((u for u in shelter if path == u or _under(path, u)), None)
        if cover is None:
            gone.append(row.id)
        else:
            kept += 1
            sheltering.add(cover)
    # An empty folder is only news when it hides photos the index knows.
    news = [u for u in unavailable if u.path in sheltering or not u.error.startswith("empty")]
    return gone, kept, news


def _under(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)
