"""Outputs of a grouping: per-person folders (symlink, hardlink or copy), a versioned JSON
report and a static HTML contact sheet.

Every output folder is built beside its destination and swapped in whole, carries the
:data:`~facecluster.scan.OUTPUT_MARKER` file (so ``scan`` never reads it back), and is
only ever replaced or deleted when it carries that marker. Original photos are only read.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import secrets
import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import TypeVar

from . import html as sheet
from .errors import FaceclusterError
from .pathcodec import shown
from .scan import OUTPUT_MARKER

REPORT_SCHEMA = "facecluster-report"
REPORT_SCHEMA_VERSION = 1
LAYOUTS = ("symlink", "hardlink", "copy")
UNKNOWN_FOLDER = "unknown"
MAX_NAME_CHARS = 100
_MAX_NAME_BYTES = 200  # file systems allow 255 bytes a name; keep room for " (12)"
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{p}{i}" for p in ("COM", "LPT") for i in range(10)]
)
_ILLEGAL = re.compile(r'[/\\:*?"<>|]')  # separators, and what Windows/SMB shares refuse
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

Progress = Callable[[int, int], None]
T = TypeVar("T")


class OutputError(FaceclusterError):
    """An output could not be written, or would overwrite something that is not ours."""


@dataclass(frozen=True)
class ReportFace:
    """One face, with its box in the coordinates of the upright original photo."""

    face_id: int
    photo: str
    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    prob: float
    distance: float | None  # squared L2 to the person's centroid; None when not assigned


@dataclass(frozen=True)
class ReportPerson:
    id: int
    name: str | None
    faces: tuple[ReportFace, ...]

    @property
    def folder_name(self) -> str:
        return self.name or f"person_{self.id:04d}"


@dataclass(frozen=True)
class Grouping:
    """What a clustering run produced, in display order."""

    persons: tuple[ReportPerson, ...]
    unknown: tuple[ReportFace, ...]
    model: str
    params: dict[str, object] = field(default_factory=dict)  # method, threshold, linkage...


@dataclass(frozen=True)
class ExportStats:
    persons: int  # person folders written
    photos_linked: int  # entries in person folders (a photo of two people counts twice)
    unknown_photos: int  # entries in unknown/
    out_dir: Path
    missing: tuple[str, ...] = ()  # photos that no longer exist, skipped


# --- names ---------------------------------------------------------------------------


def sanitize_name(name: str) -> str:
    """A safe single path component for ``name`` (a person's name or a file name).

    NFC-normalised; no separators or characters Windows refuses, no control or bidi
    characters, no ``..``, no leading dots or trailing dots/spaces, not a Windows device
    name, at most 100 characters (the extension is kept), never empty ("person")."""
    text = unicodedata.normalize("NFC", str(name))
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in _BIDI:
            continue
        if cat == "Cc" or cat == "Cs" or cat == "Zl" or cat == "Zp":
            out.append(" " if ch in "\t\n\r\x0b\x0c\u2028\u2029" else "_")
        else:
            out.append(ch)
    text = _ILLEGAL.sub("_", "".join(out))
    text = re.sub(r"\.{2,}", ".", text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"_{2,}", "_", text)
    text = text.lstrip(" ._").rstrip(" .")
    stem, dot, ext = text.partition(".")
    if stem.upper().rstrip(" ") in _WINDOWS_RESERVED:
        text = f"{stem}_{dot}{ext}"
    return _fit(text) or "person"


def _fit(name: str, suffix: str = "") -> str:
    """``name`` with ``suffix`` inserted before its extension, cut to the length limits."""
    stem, ext = _split_ext(name)
    if len(ext) > 16:
        stem, ext = name, ""
    while stem and (
        len(stem) + len(suffix) + len(ext) > MAX_NAME_CHARS
        or len((stem + suffix + ext).encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES
    ):
        stem = stem[:-1]
    stem = unicodedata.normalize("NFC", stem).rstrip(" .")
    if not stem and not suffix:
        return ""
    return f"{stem}{suffix}{ext}"


def _split_ext(name: str) -> tuple[str, str]:
    i = name.rfind(".")
    return (name[:i], name[i:]) if i > 0 else (name, "")


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name (2)``, ``name (3)``...: the first not in ``taken`` (compared
    case-insensitively, as on macOS and Windows file systems). Adds it to ``taken``."""
    candidate, n = name, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = _fit(name, f" ({n})")
    taken.add(candidate.casefold())
    return candidate


def folder_names(grouping: Grouping) -> list[str]:
    """The folder of each person, in order: sanitised and unique, never ``unknown``."""
    taken = {UNKNOWN_FOLDER}
    return [_unique(sanitize_name(p.folder_name), taken) for p in grouping.persons]


def _distinct_photos(faces: Iterable[ReportFace]) -> list[str]:
    return list(dict.fromkeys(f.photo for f in faces))


# --- output trees ---------------------------------------------------------------------


def _write_marker(folder: Path, kind: str) -> None:
    info = {"tool": "facecluster", "kind": kind, "created": datetime.now(UTC).isoformat()}
    (folder / OUTPUT_MARKER).write_text(json.dumps(info) + "\n", encoding="utf-8")


def _is_ours(folder: Path) -> bool:
    marker = folder / OUTPUT_MARKER
    return marker.is_file() and not marker.is_symlink()


def _check_target(out_dir: Path, sources: Iterable[str]) -> None:
    if out_dir.is_symlink():
        raise OutputError(f"output folder {out_dir} is a symbolic link; give a real folder")
    if out_dir.exists():
        if not out_dir.is_dir():
            raise OutputError(f"output path {out_dir} exists and is not a folder")
        if any(out_dir.iterdir()) and not _is_ours(out_dir):
            raise OutputError(
                f"output folder {out_dir} is not empty and was not written by facecluster; "
                "choose a new or empty folder"
            )
    real_out = os.path.realpath(out_dir)
    for src in sources:
        real = os.path.realpath(src)
        if os.path.commonpath([real, real_out]) == real_out:
            raise OutputError(f"photo {src} is inside the output folder {out_dir}")


def _new_sibling(out_dir: Path, tag: str) -> Path:
    while True:
        path = out_dir.with_name(f".{out_dir.name}.{tag}-{secrets.token_hex(4)}")
        if not os.path.lexists(path):
            return path


def _remove_tree(folder: Path) -> None:
    """Delete an output tree we wrote. Links inside it are unlinked, never followed."""
    if folder.is_symlink() or not _is_ours(folder):
        raise OutputError(f"refusing to delete {folder}: it has no facecluster marker")
    shutil.rmtree(folder)  # unlinks symlinks rather than following them


def replace_tree(
    out_dir: Path, kind: str, build: Callable[[Path], T], sources: Iterable[str] = ()
) -> T:
    """Build a new output tree with ``build(tmp)`` beside ``out_dir`` and swap it in.

    Refuses (:class:`OutputError`) a destination that is a file, a symlink or a non-empty
    folder without our marker, and one that holds any of ``sources``. On failure the old
    tree is left as it was and the temporary one is removed."""
    out_dir = Path(os.path.abspath(out_dir))
    _check_target(out_dir, sources)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = _new_sibling(out_dir, "tmp")
        tmp.mkdir()
    except OSError as exc:
        raise OutputError(f"cannot create output folder {out_dir}: {_reason(exc)}") from None
    try:
        _write_marker(tmp, kind)
        result = build(tmp)
        _swap_in(tmp, out_dir)
    except BaseException as exc:
        if os.path.lexists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {out_dir}: {_reason(exc)}") from None
        raise
    return result


def _swap_in(tmp: Path, out_dir: Path) -> None:
    try:
        if out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        if not out_dir.exists():
            os.rename(tmp, out_dir)
            return
        if not _is_ours(out_dir):  # checked before building; it may have changed since
            raise OutputError(f"output folder {out_dir} changed while writing; not replaced")
        old = _new_sibling(out_dir, "old")
        os.rename(out_dir, old)
        try:
            os.rename(tmp, out_dir)
        except OSError:
            os.rename(old, out_dir)
            raise
    except OSError as exc:
        raise OutputError(f"cannot replace output folder {out_dir}: {_reason(exc)}") from None
    try:
        _remove_tree(old)
    except OSError as exc:
        raise OutputError(
            f"wrote {out_dir} but could not delete the previous output at {old}: {_reason(exc)}"
        ) from None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


# --- folders --------------------------------------------------------------------------


def export_folders(
    grouping: Grouping, out_dir: Path, layout: str = "symlink", *, progress: Progress | None = None
) -> ExportStats:
    """One folder per person holding every photo of them (one entry a photo), plus
    ``unknown/`` for the photos of unassigned faces.

    ``layout``: ``symlink`` (to the original's absolute path), ``hardlink`` (same file
    system only) or ``copy``. Replaces a previous output at ``out_dir`` atomically; photos
    that no longer exist are skipped and listed in ``ExportStats.missing``."""
    if layout not in LAYOUTS:
        raise OutputError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    plan = [
        (name, _distinct_photos(p.faces))
        for name, p in zip(folder_names(grouping), grouping.persons, strict=True)
    ]
    unknown = _distinct_photos(grouping.unknown)
    if unknown:
        plan.append((UNKNOWN_FOLDER, unknown))
    total = sum(len(photos) for _, photos in plan)
    missing: dict[str, None] = {}

    def build(tmp: Path) -> list[int]:
        done, counts = 0, []
        for name, photos in plan:
            folder = tmp / name
            folder.mkdir()
            _write_marker(folder, "folders")
            taken = {OUTPUT_MARKER.casefold()}
            count = 0
            for photo in photos:
                src = os.path.abspath(photo)
                if not os.path.isfile(src):
                    missing[photo] = None
                else:
                    dst = folder / _unique(sanitize_name(PurePath(photo).name), taken)
                    _place(src, dst, layout, out_dir)
                    count += 1
                done += 1
                if progress is not None:
                    progress(done, total)
            counts.append(count)
        return counts

    photos = {ph for _, phs in plan for ph in phs}
    counts = replace_tree(Path(out_dir), "folders", build, sources=photos)
    n_persons = len(grouping.persons)
    return ExportStats(
        persons=n_persons,
        photos_linked=sum(counts[:n_persons]),
        unknown_photos=sum(counts[n_persons:]),
        out_dir=Path(os.path.abspath(out_dir)),
        missing=tuple(missing),
    )


def _place(src: str, dst: Path, layout: str, out_dir: Path) -> None:
    try:
        if layout == "symlink":
            os.symlink(src, dst)
        elif layout == "hardlink":
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)
    except OSError as exc:
        if layout == "hardlink" and exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            why = "on another file system than" if exc.errno == errno.EXDEV else "not linkable to"
            msg = f"cannot hardlink {src}: {why} {out_dir}; use --layout symlink or copy"
            raise OutputError(msg) from None
        raise OutputError(f"cannot {layout} {src} into {out_dir}: {_reason(exc)}") from None


# --- report ---------------------------------------------------------------------------


def _face_dict(face: ReportFace) -> dict[str, object]:
    d = face.distance
    return {
        "face_id": int(face.face_id),
        "photo": shown(face.photo),  # file names that are not UTF-8 as \xNN
        "box": [round(float(v), 1) for v in face.box],
        "prob": round(float(face.prob), 4),
        "distance": None if d is None or not math.isfinite(d) else round(float(d), 4),
    }


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return _jsonable(value.item())
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return str(value)


def report_dict(grouping: Grouping) -> dict:
    """The grouping as a JSON-ready dict (schema: docs/report-schema.md). Persons and
    faces keep the order given; params are sorted by key."""
    persons = []
    for folder, p in zip(folder_names(grouping), grouping.persons, strict=True):
        persons.append(
            {
                "id": int(p.id),
                "name": p.name,
                "folder": folder,
                "face_count": len(p.faces),
                "photo_count": len(_distinct_photos(p.faces)),
                "faces": [_face_dict(f) for f in p.faces],
            }
        )
    assigned = [f for p in grouping.persons for f in p.faces]
    return {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_SCHEMA_VERSION,
        "model": grouping.model,
        "params": _jsonable(dict(grouping.params)),
        "counts": {
            "persons": len(grouping.persons),
            "faces": len(assigned),
            "unknown_faces": len(grouping.unknown),
            "photos": len(_distinct_photos([*assigned, *grouping.unknown])),
        },
        "persons": persons,
        "unknown": [_face_dict(f) for f in grouping.unknown],
    }


def write_report(grouping: Grouping, path: Path) -> None:
    """Write the report as UTF-8 JSON, atomically (temp file + ``os.replace``)."""
    text = json.dumps(report_dict(grouping), indent=2, ensure_ascii=False, allow_nan=False)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write report {path}: {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise OutputError(f"cannot write report {path}: {_reason(exc)}") from None


# --- html -----------------------------------------------------------------------------


def write_html(
    grouping: Grouping,
    out_dir: Path,
    thumb_size: int = 112,
    max_faces_per_person: int = 60,
    *,
    progress: Progress | None = None,
) -> Path:
    """A static contact sheet: ``out_dir/index.html`` and ``out_dir/thumbs/``.

    Each person shows up to ``max_faces_per_person`` faces (the first ones given), and so
    does the unknown section. Photos are decoded once each; one that cannot be decoded
    gets grey placeholders. Replaces a previous sheet at ``out_dir`` atomically."""
    if thumb_size < 16 or max_faces_per_person < 1:
        raise OutputError("thumb_size must be at least 16 and max_faces_per_person at least 1")
    names = folder_names(grouping)

    def build(tmp: Path) -> None:
        thumbs = tmp / "thumbs"
        thumbs.mkdir()
        _write_marker(thumbs, "html")
        shown = [p.faces[:max_faces_per_person] for p in grouping.persons]
        shown.append(grouping.unknown[:max_faces_per_person])
        files = sheet.make_thumbnails(
            [f for fs in shown for f in fs], thumbs, thumb_size, progress=progress
        )
        page = sheet.render_page(
            grouping, names, UNKNOWN_FOLDER, files, thumb_size, max_faces_per_person
        )
        (tmp / "index.html").write_text(page, encoding="utf-8")

    photos = {f.photo for p in grouping.persons for f in p.faces} | {
        f.photo for f in grouping.unknown
    }
    replace_tree(Path(out_dir), "html", build, sources=photos)
    return Path(os.path.abspath(out_dir)) / "index.html"
