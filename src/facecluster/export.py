"""Outputs of a grouping: per-person folders (symlink, hardlink or copy), a versioned JSON
report (report.py) and the people page (html.py).

Output folders are managed by outputs.py: each carries a manifest of what facecluster
wrote there (the :data:`~facecluster.scan.OUTPUT_MARKER` file, so ``scan`` never reads
the folder back); a re-run replaces only those entries, and keeps and reports anything
else. Original photos are only read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from . import html as sheet
from .errors import OutputError
from .grouping import (
    MAX_NAME_CHARS,
    UNKNOWN_FOLDER,
    Grouping,
    ReportFace,
    ReportPerson,
    distinct_photos,
    folder_names,
    sanitize_name,
    unique_name,
)
from .outputs import OutputTree, check_folder, inside, write_tree
from .registry import load_ref
from .report import (
    REPORT_SCHEMA,
    REPORT_SCHEMA_VERSION,
    report_dict,
    write_report,
)
from .scan import OUTPUT_MARKER
from .writers import LAYOUTS, WriteOptions, WriterSpec

__all__ = [
    "LAYOUTS",
    "MAX_NAME_CHARS",
    "REPORT_SCHEMA",
    "REPORT_SCHEMA_VERSION",
    "UNKNOWN_FOLDER",
    "ExportStats",
    "Grouping",
    "OutputError",
    "ReportFace",
    "ReportPerson",
    "SheetStats",
    "check_output_paths",
    "check_output_targets",
    "database_files",
    "export_folders",
    "folder_names",
    "report_dict",
    "sanitize_name",
    "write_html",
    "write_report",
    "write_sheet",
]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportStats:
    persons: int  # person folders written
    photos_linked: int  # entries in person folders (a photo of two people counts twice)
    unknown_photos: int  # entries in unknown/
    out_dir: Path
    missing: tuple[str, ...] = ()  # photos that no longer exist, skipped
    kept: tuple[Path, ...] = ()  # what was there that facecluster did not write (or changed)


@dataclass(frozen=True)
class SheetStats:
    index: Path  # out_dir/index.html
    out_dir: Path
    kept: tuple[Path, ...] = ()  # what was there that facecluster did not write (or changed)
    per_person: bool = False  # one page a person under people/, besides the overview
    thumbs_made: int = 0  # thumbnails made by this run
    thumbs_reused: int = 0  # thumbnails of the previous run that still showed the same


def database_files(db: Path) -> tuple[Path, ...]:
    """The database and its side files (SQLite's, the lock, find's index file): what no
    output may overwrite or hold."""
    db = Path(os.path.abspath(os.path.expanduser(db)))
    sides = ("-wal", "-shm", "-journal", ".lock", ".find.faiss")
    return (db, *(db.with_name(db.name + s) for s in sides))


def check_output_paths(
    out: Path | None, html: Path | None, report: Path | None, protect: Iterable[Path] = ()
) -> None:
    """Refuse, before any work, outputs that would collide: ``--out`` and ``--html`` in one
    folder, the report inside either, any of them on the database (``protect``)."""
    from .writers import WRITERS

    given = {"folders": out, "html": html, "report": report}
    targets = [(WRITERS.get(n), Path(p)) for n, p in given.items() if p is not None]
    check_output_targets(targets, protect)


def check_output_targets(
    targets: Sequence[tuple[WriterSpec, Path]], protect: Iterable[Path] = ()
) -> None:
    """Refuse, before any work, outputs that would collide: two folders in one, a file
    inside a folder facecluster manages, any of them on the database (``protect``), and
    each target its writer refuses (``WriterSpec.check``)."""
    protect = tuple(protect)
    folders = [(s, p) for s, p in targets if s.kind == "folder"]
    for i, (a, pa) in enumerate(folders):
        for b, pb in folders[i + 1 :]:
            if inside(pa, pb) and inside(pb, pa):
                raise OutputError(
                    f"{a.option} and {b.option} are the same folder {pa}; give each its own"
                )
    for spec, path in folders:
        check = load_ref(spec.check) if spec.check else check_folder
        check(Path(os.path.abspath(path)), (), protect)
    for spec, path in targets:
        if spec.kind == "folder":
            continue
        if spec.check:
            load_ref(spec.check)(path, (), protect)
        else:
            check_new_file(path, protect)
        for folder_spec, folder in folders:
            if inside(path, folder):
                raise OutputError(
                    f"{spec.option} {path} is inside the {folder_spec.option} folder {folder}, "
                    f"which facecluster manages; write the {spec.name} elsewhere"
                )


def check_new_file(path: Path, protect: Iterable[Path] = ()) -> None:
    """A file output without a check of its own: only a new file, never the database."""
    for db in protect:
        if os.path.realpath(path) == os.path.realpath(db):
            raise OutputError(f"{path} is the face database's {Path(db).name}; choose a new file")
    if os.path.lexists(path):
        raise OutputError(f"{path} exists; facecluster writes this output only to a new file")


def export_folders(
    grouping: Grouping,
    out_dir: Path,
    layout: str = "symlink",
    *,
    progress: Progress | None = None,
    protect: Iterable[Path] = (),
) -> ExportStats:
    """One folder per person holding every photo of them (one entry a photo), plus
    ``unknown/`` for the photos of unassigned faces.

    ``layout``: ``symlink`` (to the original's absolute path), ``hardlink`` (same file
    system only) or ``copy``. Replaces the entries of a previous run at ``out_dir`` and
    keeps (and lists in ``ExportStats.kept``) anything else there; photos that no longer
    exist are skipped and listed in ``ExportStats.missing``. ``protect``: paths (the
    database) that must not lie inside ``out_dir``."""
    if layout not in LAYOUTS:
        raise OutputError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    plan = [
        (name, distinct_photos(p.faces))
        for name, p in zip(folder_names(grouping), grouping.persons, strict=True)
    ]
    unknown = distinct_photos(grouping.unknown)
    if unknown:
        plan.append((UNKNOWN_FOLDER, unknown))
    total = sum(len(photos) for _, photos in plan)
    missing: dict[str, None] = {}

    def build(tree: OutputTree) -> list[int]:
        done, counts = 0, []
        for name, photos in plan:
            (tree.root / name).mkdir()
            tree.mark(name, "folders")
            taken = {OUTPUT_MARKER.casefold()} | tree.taken(name)
            count = 0
            for photo in photos:
                src = os.path.abspath(photo)
                if not os.path.isfile(src):
                    missing[photo] = None
                else:
                    entry = unique_name(sanitize_name(PurePath(photo).name), taken)
                    tree.place(src, f"{name}/{entry}", layout)
                    count += 1
                done += 1
                if progress is not None:
                    progress(done, total)
            counts.append(count)
        return counts

    photos = {ph for _, phs in plan for ph in phs}
    counts, kept = write_tree(Path(out_dir), "folders", build, sources=photos, protect=protect)
    n_persons = len(grouping.persons)
    return ExportStats(
        persons=n_persons,
        photos_linked=sum(counts[:n_persons]),
        unknown_photos=sum(counts[n_persons:]),
        out_dir=Path(os.path.abspath(out_dir)),
        missing=tuple(missing),
        kept=kept,
    )


def write_sheet(
    grouping: Grouping,
    out_dir: Path,
    thumb_size: int = 112,
    max_faces_per_person: int | None = None,
    *,
    pages: str = "auto",
    link_base: str | None = None,
    full_paths: bool = False,
    progress: Progress | None = None,
    protect: Iterable[Path] = (),
) -> SheetStats:
    """The people page: ``out_dir/index.html`` (an overview of everyone, the persons that
    may be one, and each person's faces, or past a size one page a person under
    ``people/``), ``style.css``, ``page.js`` and ``thumbs/`` (see html.py).

    ``thumb_size`` is in CSS pixels (thumbnails have twice as many); each person shows up
    to ``max_faces_per_person`` faces (default: 60 on one page, 400 on a page of their
    own), the most typical first and, when cut, the least typical last. Photos are
    decoded once each, and only for thumbnails the previous run did not leave; one that
    cannot be decoded gets grey placeholders. ``pages``: auto, one or per-person;
    ``link_base``, ``full_paths``: html.SheetOptions. Replaces the files of a previous
    run and keeps (and lists in ``SheetStats.kept``) anything else in ``out_dir``."""
    if thumb_size < 16 or (max_faces_per_person is not None and max_faces_per_person < 1):
        raise OutputError("thumb_size must be at least 16 and max_faces_per_person at least 1")
    if pages not in sheet.PAGES:
        raise OutputError(f"pages must be one of {', '.join(sheet.PAGES)}, not {pages!r}")
    options = sheet.SheetOptions(thumb_size, max_faces_per_person, pages, link_base, full_paths)
    names = folder_names(grouping)

    def build(tree: OutputTree) -> sheet.SheetResult:
        return sheet.build_sheet(grouping, tree, names, UNKNOWN_FOLDER, options, progress)

    result, kept = write_tree(
        Path(out_dir), "html", build, sources=grouping.photos(), protect=protect
    )
    out = Path(os.path.abspath(out_dir))
    return SheetStats(
        out / "index.html", out, kept, result.per_person, result.thumbs_made,
        result.thumbs_reused,
    )  # fmt: skip


def write_html(
    grouping: Grouping,
    out_dir: Path,
    thumb_size: int = 112,
    max_faces_per_person: int | None = None,
    *,
    progress: Progress | None = None,
    protect: Iterable[Path] = (),
) -> Path:
    """:func:`write_sheet`, returning the path of ``index.html``."""
    stats = write_sheet(
        grouping, out_dir, thumb_size, max_faces_per_person, progress=progress, protect=protect
    )
    return stats.index


# --- the built-in writers (writers.py registers them) ------------------------------------


def folders_output(grouping: Grouping, target: Path, options: WriteOptions) -> dict[str, Any]:
    """``group --out``."""
    stats = export_folders(grouping, target, options.layout, protect=options.protect)
    return {"path": str(stats.out_dir), "kept": stats.kept}


def report_output(grouping: Grouping, target: Path, options: WriteOptions) -> dict[str, Any]:
    """``group --report``."""
    write_report(grouping, target, protect=options.protect)
    return {"path": str(target)}


def html_output(grouping: Grouping, target: Path, options: WriteOptions) -> dict[str, Any]:
    """``group --html``."""
    page = write_sheet(
        grouping,
        target,
        link_base=options.link_base,
        full_paths=options.full_paths,
        protect=options.protect,
    )
    return {"path": str(page.index), "kept": page.kept}
