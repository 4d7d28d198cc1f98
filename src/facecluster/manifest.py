"""The manifest of an output folder: which entries facecluster wrote there, and whether each
is still exactly what it wrote.

The manifest is the folder's :data:`~facecluster.scan.OUTPUT_MARKER` file, JSON with one
entry a folder, link or file: its path, kind (``dir``, ``symlink``, ``hardlink``, ``copy``,
``file`` for what facecluster generated, ``staging`` for a run's work folder) and identity
(inode; link target; size and mtime in ns; the photo a hardlink or copy stands for). An
entry matches only while all of that holds and removing it loses nothing (a hardlink is
still the photo itself, the original of a copy still exists). See docs/design.md.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import OutputError
from .scan import OUTPUT_MARKER

MANIFEST_SCHEMA = "facecluster-output"
MANIFEST_VERSION = 1
_ENTRY_KINDS = frozenset({"dir", "symlink", "hardlink", "copy", "file", "staging"})
_KIND_WORDS = {"folders": "person folders (--out)", "html": "an HTML sheet (--html)"}

Entry = dict[str, Any]


# --- reading and writing ---------------------------------------------------------------


def read_manifest(out_dir: Path, kind: str) -> dict[str, list[Entry]] | None:
    """The entries of a valid manifest of ``kind`` by path; None when there is none.
    Raises for a manifest of the other kind or of a facecluster that kept no list."""
    path = out_dir / OUTPUT_MARKER
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("schema") != MANIFEST_SCHEMA:
        if data.get("tool") == "facecluster" and "entries" not in data:
            raise OutputError(
                f"output folder {out_dir} has the marker of an older facecluster, which kept "
                "no list of its files, so none can be told from yours; choose a new or "
                "empty folder"
            )
        return None
    entries = data.get("entries")
    version = data.get("version")
    if not isinstance(entries, list) or not isinstance(version, int) or version < 1:
        return None
    if version > MANIFEST_VERSION:
        raise OutputError(f"{out_dir} was written by a newer facecluster; upgrade to replace it")
    if data.get("kind") != kind:
        what = _KIND_WORDS.get(str(data.get("kind")), "another facecluster output")
        raise OutputError(f"{out_dir} holds {what}; choose another folder")
    by_path: dict[str, list[Entry]] = {}
    for e in entries:
        if isinstance(e, dict) and _valid_entry(e):
            by_path.setdefault(e["path"], []).append(e)
    return by_path


def _valid_entry(e: Entry) -> bool:
    path = e.get("path")
    return (
        isinstance(path, str)
        and e.get("kind") in _ENTRY_KINDS
        and isinstance(e.get("ino"), int)
        and not path.startswith("/")
        and all(part not in ("", ".", "..") for part in path.split("/"))
    )


def write_manifest(out_dir: Path, staging: Path, kind: str, entries: Iterable[Entry]) -> None:
    data = {
        "schema": MANIFEST_SCHEMA,
        "version": MANIFEST_VERSION,
        "tool": "facecluster",
        "kind": kind,
        "written": datetime.now(UTC).isoformat(),
        "entries": list(entries),
    }
    tmp = staging / ".manifest.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))  # ASCII: names that are not UTF-8 survive
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out_dir / OUTPUT_MARKER)


def matches(path: Path, e: Entry) -> bool:
    """Whether ``path`` is still exactly the entry we wrote, and removing it loses nothing."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if st.st_ino != e["ino"]:
        return False
    kind = e["kind"]
    if kind in ("dir", "staging"):
        return stat.S_ISDIR(st.st_mode)
    if kind == "symlink":
        return stat.S_ISLNK(st.st_mode) and os.readlink(path) == e.get("target")
    if not stat.S_ISREG(st.st_mode):
        return False
    source = e.get("source")
    if kind == "hardlink":  # still the photo itself: unlinking the link loses nothing
        try:
            src = os.stat(source) if isinstance(source, str) else None
        except OSError:
            src = None
        return src is not None and (src.st_dev, src.st_ino) == (st.st_dev, st.st_ino)
    if (st.st_size, st.st_mtime_ns) != (e.get("size"), e.get("mtime_ns")):
        return False
    if kind == "copy":  # a copy whose original is gone may be the last one: keep it
        return isinstance(source, str) and os.path.isfile(source)
    return True


# --- what is there now -------------------------------------------------------------------


@dataclass
class Survey:
    """The output folder as found: our entries to remove, and what stays."""

    remove: list[tuple[str, Entry]] = field(default_factory=list)  # files, links, staging
    dirs: list[str] = field(default_factory=list)  # our folders, to remove once empty
    kept: list[str] = field(default_factory=list)  # not ours or changed; "dir/" for a folder
    stays: dict[str, dict[str, str]] = field(default_factory=dict)  # parent -> name -> what
    our_dirs_staying: list[Entry] = field(default_factory=list)
    matched: int = 0
    others: int = 0


def survey_folder(out_dir: Path, manifest: dict[str, list[Entry]]) -> Survey:
    s = Survey()
    _survey_dir(out_dir, "", manifest, s)
    return s


def _survey_dir(root: Path, rel_dir: str, manifest: dict[str, list[Entry]], s: Survey) -> bool:
    """Classify what is in ``rel_dir``; returns whether something in it stays."""
    stays = False
    with os.scandir(root / rel_dir) as it:
        items = sorted(it, key=lambda d: d.name)
    for item in items:
        rel = f"{rel_dir}/{item.name}" if rel_dir else item.name
        if rel == OUTPUT_MARKER:
            continue
        path = Path(item.path)
        ours = next((e for e in manifest.get(rel, ()) if matches(path, e)), None)
        if ours is not None:
            s.matched += 1
        else:
            s.others += 1
        is_dir = item.is_dir(follow_symlinks=False)
        what = "file"
        if ours is not None and ours["kind"] == "staging":
            s.remove.append((rel, ours))
            continue
        if is_dir:
            first_kept, matched = len(s.kept), s.matched
            inner = _survey_dir(root, rel, manifest, s)
            if ours is None:
                if s.matched == matched:  # a folder of the user's: report it as one
                    del s.kept[first_kept:]
                    s.kept.append(rel + "/")
                what = "dir"
            elif inner:
                s.our_dirs_staying.append({**ours, "path": rel})
                what = "ourdir"
            else:
                s.dirs.append(rel)
                continue
        elif ours is not None:
            s.remove.append((rel, ours))
            continue
        else:
            s.kept.append(rel)
        s.stays.setdefault(rel_dir, {})[item.name.casefold()] = what
        stays = True
    return stays
