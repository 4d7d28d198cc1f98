"""Outputs of a grouping: per-person folders (symlink, hardlink or copy), a versioned JSON
report (report.py) and a static HTML contact sheet (html.py).

Output folders are managed by outputs.py: each carries a manifest of what facecluster
wrote there (the :data:`~facecluster.scan.OUTPUT_MARKER` file, so ``scan`` never reads
the folder back); a re-run replaces only those entries, and keeps and reports anything
else. Original photos are only read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath

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
from .report import (
    REPORT_SCHEMA,
    REPORT_SCHEMA_VERSION,
    check_report_path,
    report_dict,
    write_report,
)
from .scan import OUTPUT_MARKER

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
    "database_files",
    "export_folders",
    "folder_names",
    "report_dict",
    "sanitize_name",
    "write_html",
    "write_report",
    "write_sheet",
]

LAYOUTS = ("symlink", "hardlink", "copy")
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


def database_files(db: Path) -> tuple[Path, ...]:
    """The database and its side files: what no output may overwrite or hold."""
    db = Path(os.path.abspath(db))
    return (db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", "-journal", ".lock")))


def check_output_paths(
    out: Path | None, html: Path | None, report: Path | None, protect: Iterable[Path] = ()
) -> None:
    """Refuse, before any work, outputs that would collide: ``--out`` and ``--html`` in one
    folder, the report inside either, any of them on the database (``protect``)."""
    protect = tuple(protect)
    folders = {flag: Path(p) for flag, p in (("--out", out), ("--html", html)) if p is not None}
    if out is not None and html is not None and inside(out, html) and inside(html, out):
        raise OutputError(f"--out and --html are the same folder {out}; give each its own")
    for folder in folders.values():
        check_folder(Path(os.path.abspath(folder)), (), protect)
    if report is not None:
        check_report_path(report, (), protect)
        for flag, folder in folders.items():
            if inside(report, folder):
                raise OutputError(
                    f"--report {report} is inside the {flag} folder {folder}, which "
                    "facecluster manages; write the report elsewhere"
                )


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
    max_faces_per_person: int = 60,
    *,
    progress: Progress | None = None,
    protect: Iterable[Path] = (),
) -> SheetStats:
    """A static contact sheet: ``out_dir/index.html`` and ``out_dir/thumbs/``.

    Each person shows up to ``max_faces_per_person`` faces (the first ones given), and so
    does the unknown section. Photos are decoded once each; one that cannot be decoded
    gets grey placeholders. Replaces the page and thumbnails of a previous run and keeps
    (and lists in ``SheetStats.kept``) anything else in ``out_dir``."""
    if thumb_size < 16 or max_faces_per_person < 1:
        raise OutputError("thumb_size must be at least 16 and max_faces_per_person at least 1")
    names = folder_names(grouping)

    def build(tree: OutputTree) -> None:
        (tree.root / "thumbs").mkdir()
        tree.mark("thumbs", "html")
        shown = [p.faces[:max_faces_per_person] for p in grouping.persons]
        shown.append(grouping.unknown[:max_faces_per_person])
        files = sheet.make_thumbnails(
            [f for fs in shown for f in fs],
            tree.root / "thumbs",
            thumb_size,
            progress=progress,
            taken=tree.taken("thumbs") | {OUTPUT_MARKER},
        )
        page = sheet.render_page(
            grouping, names, UNKNOWN_FOLDER, files, thumb_size, max_faces_per_person
        )
        (tree.root / "index.html").write_text(page, encoding="utf-8")

    _, kept = write_tree(Path(out_dir), "html", build, sources=grouping.photos(), protect=protect)
    out = Path(os.path.abspath(out_dir))
    return SheetStats(index=out / "index.html", out_dir=out, kept=kept)


def write_html(
    grouping: Grouping,
    out_dir: Path,
    thumb_size: int = 112,
    max_faces_per_person: int = 60,
    *,
    progress: Progress | None = None,
    protect: Iterable[Path] = (),
) -> Path:
    """:func:`write_sheet`, returning the path of ``index.html``."""
    stats = write_sheet(
        grouping, out_dir, thumb_size, max_faces_per_person, progress=progress, protect=protect
    )
    return stats.index
