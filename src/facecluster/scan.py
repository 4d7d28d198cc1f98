"""Walk photo trees: which files are images, and which of them changed since the last scan."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .cache import STATUS_FAILED, PhotoRow
from .errors import FaceclusterError
from .imageio import IMAGE_EXTENSIONS, NON_IMAGE_EXTENSIONS, looks_like_image
from .records import Failure, FileEntry

# Folders that hold thumbnails or trash, never originals (Synology, QNAP, Windows, macOS).
SKIP_DIRS = frozenset(
    {"@eaDir", "#recycle", "#snapshot", "$RECYCLE.BIN", "System Volume Information", "lost+found"}
)
# A folder written by `facecluster group --out` carries this marker; it is never rescanned.
OUTPUT_MARKER = ".facecluster-output"


def _is_candidate(path: Path) -> bool:
    ext = path.suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return True
    if ext in NON_IMAGE_EXTENSIONS:
        return False
    return looks_like_image(path)


def walk(
    roots: Iterable[Path],
    follow_symlinks: bool = False,
    unavailable: list[Failure] | None = None,
) -> Iterator[FileEntry]:
    """Yield the image files under ``roots`` (files may be given directly).

    Hidden files and folders are skipped, and so are thumbnail/trash folders and folders
    written by ``group --out``. Symbolic links are not followed unless asked; when they
    are, each real folder is visited once. Folders and files that cannot be read, and
    folders that are completely empty (a disk that is not mounted looks like that), are
    added to ``unavailable``: what the index holds under them must not be taken as deleted.
    """
    missing = unavailable if unavailable is not None else []
    for root in roots:
        if not root.exists():
            raise FaceclusterError(f"no such file or directory: {root}")
        if root.is_file():
            st = root.stat()
            yield FileEntry(root, st.st_size, st.st_mtime_ns)
            continue
        seen: set[tuple[int, int]] = set()
        stack = [root]
        while stack:
            folder = stack.pop()
            try:
                st = folder.stat()
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                missing.append(Failure(str(folder), f"cannot read: {exc.strerror or exc}"))
                continue
            if not entries:
                missing.append(Failure(str(folder), "empty folder (a disk not mounted?)"))
                continue
            if any(e.name == OUTPUT_MARKER for e in entries):
                continue
            subdirs = []
            for e in entries:
                if e.name.startswith("."):
                    continue
                try:
                    if e.is_symlink() and not follow_symlinks:
                        continue
                    if e.is_dir():
                        if e.name not in SKIP_DIRS:
                            subdirs.append(Path(e.path))
                        continue
                    if not e.is_file():
                        continue
                    path = Path(e.path)
                    if _is_candidate(path):
                        st = e.stat()
                        yield FileEntry(path, st.st_size, st.st_mtime_ns)
                except OSError as exc:
                    missing.append(Failure(e.path, f"cannot read: {exc.strerror or exc}"))
            stack.extend(reversed(subdirs))


@dataclass
class Plan:
    """What a scan has to do with each file found."""

    read: list[FileEntry] = field(default_factory=list)  # new or changed: decode + detect
    new: set[str] = field(default_factory=set)
    embed: list[tuple[FileEntry, int]] = field(default_factory=list)  # known faces, no vectors
    unchanged: int = 0
    total: int = 0
    seen: set[str] = field(default_factory=set)


def plan(
    entries: Iterable[FileEntry],
    index: dict[str, PhotoRow],
    missing_embeddings: set[int],
    rescan: bool = False,
) -> Plan:
    p = Plan()
    for entry in entries:
        key = str(entry.path)
        if key in p.seen:
            continue
        p.seen.add(key)
        p.total += 1
        row = index.get(key)
        same = (
            row is not None
            and row.size == entry.size
            and row.mtime_ns == entry.mtime_ns
            and row.status != STATUS_FAILED
        )
        if row is not None and same and not rescan:
            if row.id in missing_embeddings:
                p.embed.append((entry, row.id))
            else:
                p.unchanged += 1
        else:
            p.read.append(entry)
            if row is None:
                p.new.add(key)
    return p
