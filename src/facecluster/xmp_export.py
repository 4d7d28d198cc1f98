"""``people export-xmp``: the persons' names as XMP face regions in sidecars, for digiKam,
Lightroom, immich, ExifToolGui and anything that reads MWG or Microsoft regions.

For every photo with a face of a named person (``all_persons``: of any person, unnamed
ones as "Person N"), the sidecar gets an MWG region and a Microsoft region per face
(xmp_regions.py), and with ``keywords`` the names as People|Name and People/Name keywords.
A sidecar that exists is updated (xmp_sidecar.py): only facecluster's earlier regions are
replaced. Photos whose sidecar holds regions of facecluster but no named face any more
lose those regions.

Safety: the photos are never written; a sidecar that is a symbolic link, not a regular
file, not XMP, malformed, or changed while the export ran is left alone and reported.
ExifTool writes into a private copy; the copy is read back and compared (every property
facecluster does not own must be unchanged) before it replaces the sidecar atomically.
"""

from __future__ import annotations

import os
import stat
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import exiftool, imageio
from .pathcodec import shown
from .records import Failure
from .xmp_regions import dimensions, is_ours, mwg_region, stored_size
from .xmp_sidecar import DELETE, MWG_TAG, Merge, merge, verify

if TYPE_CHECKING:
    from .people import People

SIDECAR_MAX_BYTES = 8 * 2**20
CHUNK = 200  # photos per ExifTool run
READ_TAGS = ("-XMP:all", "-File:FileType", "-ExifTool:Warning", "-ExifTool:Error")


@dataclass(frozen=True)
class ExportOptions:
    all_persons: bool = False  # unnamed persons too, as "Person N"
    keywords: bool = False  # People|Name (Lightroom) and People/Name (digiKam) keywords
    stem: bool = False  # photo.xmp (Lightroom) instead of photo.jpg.xmp
    dry_run: bool = False


@dataclass
class Sidecar:
    """One sidecar export-xmp writes (or would)."""

    photo: str
    path: Path
    action: str  # "create", "update", "unchanged"
    names: list[str]  # facecluster's regions in it
    kept: int  # regions of other tools kept
    notes: list[str] = field(default_factory=list)


@dataclass
class ExportResult:
    sidecars: list[Sidecar] = field(default_factory=list)
    skipped: list[Failure] = field(default_factory=list)  # photo or sidecar, and why
    dry_run: bool = False

    def counts(self) -> dict[str, int]:
        by: dict[str, int] = defaultdict(int)
        for s in self.sidecars:
            by[s.action] += 1
        return {
            "photos": len(self.sidecars) + len(self.skipped),
            "created": by["create"],
            "updated": by["update"],
            "unchanged": by["unchanged"],
            "skipped": len(self.skipped),
            "regions": sum(len(s.names) for s in self.sidecars),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.counts(),
            "dry_run": self.dry_run,
            "sidecars": [
                {"photo": shown(s.photo), "sidecar": shown(s.path), "action": s.action,
                 "names": s.names, "kept_regions": s.kept, "notes": s.notes}
                for s in self.sidecars
            ],
            "skipped_photos": [{"path": shown(f.path), "reason": f.error} for f in self.skipped],
        }


@dataclass
class _Job:
    photo: str
    sidecar: Path
    faces: list[tuple[str, tuple[float, ...]]]  # (name, upright box)
    size: tuple[int, int]  # upright, as scanned
    snapshot: tuple[int, int] | None = None  # the sidecar's (size, mtime_ns) when read
    data: bytes | None = None
    merge: Merge | None = None


def sidecar_of(photo: Path, stem: bool) -> Path:
    if stem and photo.suffix:
        return photo.with_suffix(".xmp")
    return photo.with_name(photo.name + ".xmp")


def export_xmp(
    people: People, paths: Sequence[Path] = (), options: ExportOptions | None = None
) -> ExportResult:
    """Write (or with ``dry_run`` plan) the sidecars of the photos under ``paths`` (all
    photos when empty). Raises ExiftoolMissing when ExifTool is not installed."""
    opts = options or ExportOptions()
    exiftool.require()
    result = ExportResult(dry_run=opts.dry_run)
    jobs = _jobs(people, [Path(os.path.abspath(p)) for p in paths], opts, result)
    for start in range(0, len(jobs), CHUNK):
        _run(jobs[start : start + CHUNK], opts, result)
    result.sidecars.sort(key=lambda s: s.photo)
    return result


def _under(path: str, roots: Sequence[Path]) -> bool:
    return not roots or any(path == str(r) or path.startswith(str(r).rstrip(os.sep) + os.sep)
                            for r in roots)


def _jobs(people: People, roots: list[Path], opts: ExportOptions, result: ExportResult) -> list:
    faces: dict[str, list[tuple[str, tuple[float, ...]]]] = defaultdict(list)
    sizes: dict[str, tuple[int, int]] = {}
    for f in people.store.assigned_faces():
        name = f.name or (f"Person {f.person_id}" if opts.all_persons else None)
        if name and _under(f.photo, roots):
            faces[f.photo].append((name, f.box))
            sizes[f.photo] = f.size
    # Photos without a named face now may hold facecluster's regions of before.
    others = [p for p in people.store.photo_paths() if p not in faces and _under(p, roots)]
    stale = [p for p in others if sidecar_of(Path(p), opts.stem).exists()]
    jobs = [_Job(p, sidecar_of(Path(p), opts.stem), faces.get(p, []), sizes.get(p, (0, 0)))
            for p in sorted([*faces, *stale])]
    owners: dict[Path, list[_Job]] = defaultdict(list)
    for job in jobs:
        owners[job.sidecar].append(job)
    out = []
    for job in jobs:
        if len(owners[job.sidecar]) > 1:
            names = ", ".join(Path(j.photo).name for j in owners[job.sidecar])
            why = f"{job.sidecar.name} would be the sidecar of {names}: drop --stem-sidecar"
            result.skipped.append(Failure(job.photo, why))
        else:
            out.append(job)
    return out


def _snapshot(job: _Job) -> str:
    """Read the existing sidecar into the job; why it may not be touched ('' when fine)."""
    try:
        st = os.lstat(job.sidecar)
    except FileNotFoundError:
        return ""
    except OSError as exc:
        return f"sidecar {shown(job.sidecar)} cannot be read: {exc.strerror}"
    if stat.S_ISLNK(st.st_mode):
        return f"sidecar {shown(job.sidecar)} is a symbolic link: left alone"
    if not stat.S_ISREG(st.st_mode):
        return f"{shown(job.sidecar)} is not a regular file: left alone"
    if st.st_size > SIDECAR_MAX_BYTES:
        return f"sidecar {shown(job.sidecar)} is larger than {SIDECAR_MAX_BYTES >> 20} MB"
    try:
        job.data = job.sidecar.read_bytes()
    except OSError as exc:
        return f"sidecar {shown(job.sidecar)} cannot be read: {exc.strerror}"
    job.snapshot = (st.st_size, st.st_mtime_ns)
    return ""


def _regions(job: _Job) -> tuple[list[dict[str, Any]], dict[str, Any]] | str:
    """facecluster's regions for the job's photo, and AppliedToDimensions; or why not."""
    if not job.faces:
        return [], {}
    if not os.path.isfile(job.photo):
        return "the photo is not there any more: run 'facecluster scan'"
    orientation, stored = imageio.header(Path(job.photo))
    if stored != stored_size(job.size, orientation):
        return "the photo changed since it was scanned: run 'facecluster scan'"
    regions = [mwg_region(n, box, job.size, orientation) for n, box in job.faces]  # type: ignore[arg-type]
    return regions, dimensions(job.size, orientation)


def _run(jobs: list[_Job], opts: ExportOptions, result: ExportResult) -> None:
    ready: list[tuple[_Job, list[dict[str, Any]], dict[str, Any]]] = []
    for job in jobs:
        why = _snapshot(job)
        planned = _regions(job) if not why else why
        if isinstance(planned, str):
            if job.faces:  # a sidecar only checked for old regions is no news
                result.skipped.append(Failure(job.photo, planned))
        else:
            ready.append((job, *planned))
    with exiftool.workdir() as tmp:
        copies = [tmp / f"f{i:06d}.xmp" for i in range(len(ready))]
        for (job, _, _), copy in zip(ready, copies, strict=True):
            if job.data is not None:
                copy.write_bytes(job.data)
        olds = exiftool.read([c for c in copies if c.exists()], READ_TAGS)
        old_of = dict(zip([c for c in copies if c.exists()], olds, strict=True))
        todo: list[tuple[_Job, Path]] = []
        for (job, regions, dims), copy in zip(ready, copies, strict=True):
            old = old_of.get(copy)
            why = _not_xmp(job, old)
            if not regions and (why or not any(is_ours(r) for r in _ours_in(old))):
                continue  # a sidecar without facecluster's regions, and none to add
            m = merge(old, regions, dims, opts.keywords) if not why else None
            why = why or (m.refused if m else "")
            if why or m is None:
                result.skipped.append(Failure(job.photo, why))
                continue
            job.merge = m
            action = "unchanged" if not m.changed else "update" if job.data else "create"
            result.sidecars.append(Sidecar(job.photo, job.sidecar, action, m.written, m.kept,
                                           m.notes))
            if m.changed and not opts.dry_run:
                todo.append((job, copy))
        if todo:
            _write(todo, old_of, result)


def _ours_in(old: dict[str, Any] | None) -> list[Any]:
    info = (old or {}).get(MWG_TAG)
    regions = info.get("RegionList") if isinstance(info, dict) else None
    return regions if isinstance(regions, list) else [regions] if regions else []


def _not_xmp(job: _Job, old: dict[str, Any] | None) -> str:
    if job.data is None:
        return ""
    if old is None or old.get("File:FileType") != "XMP" or old.get("ExifTool:Error"):
        return f"{shown(job.sidecar)} is not an XMP sidecar: left alone"
    if "XMP" in str(old.get("ExifTool:Warning") or ""):
        return f"sidecar {shown(job.sidecar)} is malformed ({old['ExifTool:Warning']}): left alone"
    return ""


def _write(todo: list[tuple[_Job, Path]], old_of: dict, result: ExportResult) -> None:
    files = [copy for _, copy in todo]
    try:
        exiftool.write(files, [job.merge.values if job.merge else {} for job, _ in todo], DELETE)
        written = exiftool.read(files, READ_TAGS)
    except exiftool.ExiftoolFailed as exc:
        written = [None] * len(todo)
        failed = str(exc)
    else:
        failed = ""
    for (job, copy), after in zip(todo, written, strict=True):
        assert job.merge is not None
        why = failed or verify(old_of.get(copy), after, job.merge)
        if not why:
            why = _install(copy.read_bytes(), job)
        if why:
            result.sidecars = [s for s in result.sidecars if s.photo != job.photo]
            result.skipped.append(Failure(job.photo, why))


def _install(data: bytes, job: _Job) -> str:
    """Replace (or create) the sidecar with ``data`` atomically, unless it changed since
    it was read. Returns why not ('' when done)."""
    target = job.sidecar
    try:
        st = os.lstat(target)
        now: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
        mode = stat.S_IMODE(st.st_mode)
    except FileNotFoundError:
        now, mode = None, 0o666
    if now != job.snapshot:
        return f"sidecar {shown(target)} changed while exporting: left alone, export again"
    tmp = target.with_name(f".{target.name}.facecluster-{os.getpid()}.tmp")
    created = False
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        created = True  # ours from here on: never remove a file that was there before
        with os.fdopen(fd, "wb") as f:
            if now is not None:
                os.fchmod(f.fileno(), mode)  # as the sidecar was, whatever the umask
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        if created:
            tmp.unlink(missing_ok=True)
        return f"sidecar {shown(target)} cannot be written: {exc.strerror or exc}"
    return ""
