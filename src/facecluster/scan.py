"""Walk photo trees: which files are images. Knows no database: comparing what the walk
found with the index is planner.py's job."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

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
