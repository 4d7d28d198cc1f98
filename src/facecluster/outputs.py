"""Output folders facecluster manages next to the user's own files (``group --out``/``--html``).

Only entries listed in the folder's manifest (manifest.py) and still matching are ever
removed; anything else (the user's files and folders, our files edited or replaced) is kept
and reported. The marker's name alone authorises nothing; ``scan`` only reads it to skip
the folder.

A run stages the new tree in a hidden folder inside the output folder, lists it in the
manifest, removes the old matching entries, moves the new ones into place (never over
anything) and writes the final manifest. At every step the manifest lists everything of
ours that may be on disk, so an interrupted run is tidied by the next one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from .errors import OutputError
from .manifest import Entry, Survey, matches, read_manifest, survey_folder, write_manifest
from .scan import OUTPUT_MARKER

_STAGING = ".facecluster-staging-"
T = TypeVar("T")

__all__ = ["OutputError", "OutputTree", "check_folder", "inside", "write_tree"]


def reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def inside(path: str | Path, folder: str | Path) -> bool:
    """Whether the real ``path`` is ``folder`` or lies under it (both resolved)."""
    real, real_folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, real_folder]) == real_folder


def check_folder(out_dir: Path, sources: Iterable[str] = (), protect: Iterable[Path] = ()) -> None:
    """Refuse an output folder that is a symlink or a file, holds the database or a photo."""
    if out_dir.is_symlink():
        raise OutputError(f"output folder {out_dir} is a symbolic link; give a real folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"output path {out_dir} exists and is not a folder")
    for db in protect:
        if os.path.lexists(db) and inside(db, out_dir):
            raise OutputError(
                f"the face database {db} is inside the output folder {out_dir}; "
                "choose another folder"
            )
    for src in sources:
        if inside(src, out_dir):
            raise OutputError(f"photo {src} is inside the output folder {out_dir}")


# --- writing -----------------------------------------------------------------------------


class OutputTree:
    """The new tree being built: write under :attr:`root`, as if it were the output folder."""

    def __init__(self, out_dir: Path, root: Path, survey: Survey) -> None:
        self.out_dir = out_dir
        self.root = root
        self._survey = survey
        self._made: dict[str, tuple[str, str]] = {}  # rel -> (kind, photo)
        self._ours: set[str] | None = None  # our unchanged files of the previous run

    def taken(self, rel_dir: str = "") -> set[str]:
        """Names (casefolded) in ``rel_dir`` that stay from before and cannot be used."""
        return set(self._survey.stays.get(rel_dir, {}))

    def reuse(self, rel: str) -> bool:
        """Carry the file ``rel`` of the previous run into the new tree, when it is one
        facecluster wrote and nobody changed since (a hard link, or a copy where the file
        system has none); False when there is no such file. The old entry is removed as
        usual once the new tree is in place, so the file is never lost on the way."""
        if self._ours is None:
            self._ours = {r for r, e in self._survey.remove if e["kind"] == "file"}
        if rel not in self._ours:
            return False
        src, dst = self.out_dir / rel, self.root / rel
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError:
            try:
                shutil.copy2(src, dst, follow_symlinks=False)
            except OSError:
                return False
        return True

    def mark(self, rel_dir: str, kind: str) -> None:
        """Put a marker into a sub-folder, so ``scan`` skips it even when moved elsewhere."""
        info = f'{{"tool": "facecluster", "kind": "{kind}"}}\n'
        (self.root / rel_dir / OUTPUT_MARKER).write_text(info, "utf-8")

    def place(self, src: str, rel: str, layout: str) -> None:
        """Link or copy the photo ``src`` (absolute) to ``rel``."""
        dst = self.root / rel
        try:
            if layout == "symlink":
                os.symlink(src, dst)
            elif layout == "hardlink":
                os.link(src, dst)
            else:
                shutil.copy2(src, dst)
        except OSError as exc:
            if layout == "hardlink" and exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                cross = exc.errno == errno.EXDEV
                why = "on another file system than" if cross else "not linkable to"
                msg = f"cannot hardlink {src}: {why} {self.out_dir}; use --layout symlink or copy"
                raise OutputError(msg) from None
            msg = f"cannot {layout} {src} into {self.out_dir}: {reason(exc)}"
            raise OutputError(msg) from None
        if layout != "symlink":
            self._made[rel] = (layout, src)

    def entries(self) -> list[Entry]:
        """What was built, each with its identity, parents before children."""
        out: list[Entry] = []
        stack = [""]
        while stack:
            rel_dir = stack.pop()
            with os.scandir(self.root / rel_dir) as it:
                items = sorted(it, key=lambda d: d.name)
            for item in items:
                rel = f"{rel_dir}/{item.name}" if rel_dir else item.name
                st = item.stat(follow_symlinks=False)
                e: Entry = {"path": rel, "ino": st.st_ino}
                if stat.S_ISDIR(st.st_mode):
                    e["kind"] = "dir"
                    stack.append(rel)
                elif stat.S_ISLNK(st.st_mode):
                    e |= {"kind": "symlink", "target": os.readlink(item.path)}
                else:
                    kind, src = self._made.get(rel, ("file", ""))
                    e |= {"kind": kind, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
                    if src:
                        e["source"] = src
                out.append(e)
        return out


def write_tree(
    out_dir: Path,
    kind: str,
    build: Callable[[OutputTree], T],
    *,
    sources: Iterable[str] = (),
    protect: Iterable[Path] = (),
) -> tuple[T, tuple[Path, ...]]:
    """Build a new output of ``kind`` with ``build(tree)`` and put it in ``out_dir`` in
    place of our previous one; returns build's result and the paths kept (not ours).

    Refuses (:class:`OutputError`) a symlink, a file, a folder holding any of ``sources``
    or ``protect``, and a non-empty folder without a matching manifest of ``kind``. When
    building fails nothing of the previous output has changed."""
    out_dir = Path(os.path.abspath(out_dir))
    check_folder(out_dir, sources, protect)
    exists = out_dir.is_dir()
    try:
        manifest = read_manifest(out_dir, kind) if exists else None
        if manifest is None and exists and any(out_dir.iterdir()):
            raise _not_ours(out_dir)  # a marker alone, valid or planted, authorises nothing
        survey = survey_folder(out_dir, manifest) if manifest is not None else Survey()
    except OSError as exc:
        where = exc.filename or out_dir
        raise OutputError(f"cannot read the output folder {where}: {reason(exc)}") from None
    if survey.others and not survey.matched:
        raise _not_ours(out_dir)
    marker = out_dir / OUTPUT_MARKER
    old_text = marker.read_bytes() if manifest is not None else None
    old = [e for es in (manifest or {}).values() for e in es]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = out_dir / f"{_STAGING}{secrets.token_hex(4)}"
        staging.mkdir()
    except OSError as exc:
        raise OutputError(f"cannot create output folder {out_dir}: {reason(exc)}") from None
    stage: Entry = {"path": staging.name, "kind": "staging", "ino": staging.stat().st_ino}
    tree = OutputTree(out_dir, staging / "tree", survey)
    try:
        write_manifest(out_dir, staging, kind, [*old, stage])
        tree.root.mkdir()
        result = build(tree)
        new = tree.entries()
        _check_in_the_way(out_dir, new, survey)
        write_manifest(out_dir, staging, kind, [*old, stage, *new])
    except BaseException as exc:
        _restore(out_dir, staging, old_text, created=not exists)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {out_dir}: {reason(exc)}") from None
        raise
    try:
        _remove_ours(out_dir, survey)
        placed = _move_in(tree.root, out_dir, "", {e["path"] for e in survey.our_dirs_staying})
        final = [e for e in new if _under(e["path"], placed)]
        write_manifest(out_dir, staging, kind, [*survey.our_dirs_staying, *final])
        shutil.rmtree(staging)
    except OSError as exc:
        raise OutputError(
            f"could not finish writing {out_dir}: {reason(exc)}; run the same command again"
        ) from None
    return result, tuple(out_dir / k for k in survey.kept)


def _restore(out_dir: Path, staging: Path, old_text: bytes | None, *, created: bool) -> None:
    """Undo a failed build: the staging folder goes, the previous manifest comes back."""
    marker = out_dir / OUTPUT_MARKER
    with contextlib.suppress(OSError):
        if old_text is not None:
            (staging / ".manifest.old").write_bytes(old_text)
            os.replace(staging / ".manifest.old", marker)
        else:
            marker.unlink(missing_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    if created:
        with contextlib.suppress(OSError):
            out_dir.rmdir()


def _not_ours(out_dir: Path) -> OutputError:
    return OutputError(
        f"output folder {out_dir} is not empty and was not written by facecluster; "
        "choose a new or empty folder"
    )


def _check_in_the_way(out_dir: Path, new: list[Entry], survey: Survey) -> None:
    for e in new:
        parent, _, name = e["path"].rpartition("/")
        there = survey.stays.get(parent, {}).get(name.casefold())
        if there is None or name == OUTPUT_MARKER or (e["kind"] == "dir" and there != "file"):
            continue
        raise OutputError(
            f"{out_dir / e['path']} is in the way: facecluster did not write it, or it was "
            "changed since; move it away or choose another folder"
        )


def _remove_ours(out_dir: Path, survey: Survey) -> None:
    for rel, e in survey.remove:
        path = out_dir / rel
        if not matches(path, e):  # changed in the meantime: it is the user's now
            continue
        if e["kind"] == "staging":
            shutil.rmtree(path)
        else:
            path.unlink()
    for rel in sorted(survey.dirs, key=lambda r: r.count("/"), reverse=True):
        try:
            (out_dir / rel).rmdir()
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise


def _move_in(src_dir: Path, dst_dir: Path, rel_dir: str, ours: set[str]) -> set[str]:
    """Move the staged entries into place, never over anything; returns the paths moved."""
    placed: set[str] = set()
    for name in sorted(os.listdir(src_dir)):
        rel = f"{rel_dir}/{name}" if rel_dir else name
        src, dst = src_dir / name, dst_dir / name
        if name == OUTPUT_MARKER and rel_dir not in ours:
            continue  # no marker of ours in a folder of the user's
        if not os.path.lexists(dst):
            _move(src, dst)
            placed.add(rel)
        elif src.is_dir() and not src.is_symlink() and dst.is_dir() and not dst.is_symlink():
            placed |= _move_in(src, dst, rel, ours)
        elif name == OUTPUT_MARKER:
            continue  # an edited marker of ours stays as it is
        else:
            raise OutputError(f"{dst} appeared while writing; move it away and run again")
    return placed


def _move(src: Path, dst: Path) -> None:
    if src.is_dir() and not src.is_symlink():
        os.rename(src, dst)  # fails on a non-empty folder that appeared meanwhile
        return
    try:
        os.link(src, dst, follow_symlinks=False)  # fails if dst appeared meanwhile
    except FileExistsError:
        raise OutputError(f"{dst} appeared while writing; move it away and run again") from None
    except (OSError, NotImplementedError):
        if os.path.lexists(dst):
            raise
        os.rename(src, dst)
        return
    os.unlink(src)


def _under(rel: str, placed: set[str]) -> bool:
    while rel:
        if rel in placed:
            return True
        rel = rel.rpartition("/")[0]
    return False
