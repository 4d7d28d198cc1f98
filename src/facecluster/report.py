"""The versioned JSON report of a grouping (docs/report-schema.md), and where it may go.

A report is only ever written to a new file or over a previous facecluster report
(recognised by its content), never over a photo, the database or any other file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Collection, Iterable
from pathlib import Path

from .errors import OutputError
from .grouping import Grouping, ReportFace, distinct_photos, folder_names
from .pathcodec import shown

REPORT_SCHEMA = "facecluster-report"
REPORT_SCHEMA_VERSION = 1
_HEAD = 64 * 1024  # a report names its schema in the first few bytes


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
                "photo_count": len(distinct_photos(p.faces)),
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
            "photos": len(distinct_photos([*assigned, *grouping.unknown])),
        },
        "persons": persons,
        "unknown": [_face_dict(f) for f in grouping.unknown],
    }


def is_report(path: Path) -> bool:
    """Whether the regular file ``path`` is a facecluster report: JSON whose ``schema`` is
    ``facecluster-report``. Other files are rejected from their first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD)
            if not head.lstrip().startswith(b"{") or REPORT_SCHEMA.encode() not in head:
                return False
            data = json.loads(head + f.read())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("schema") == REPORT_SCHEMA


def check_report_path(
    path: Path, photos: Collection[str] = (), protect: Iterable[Path] = ()
) -> Path:
    """``path`` made absolute, if a report may be written there; else :class:`OutputError`.

    Allowed: a new file, or a previous facecluster report. Refused: a symlink, a folder,
    one of ``protect`` (the database and its side files), one of ``photos``, any other file."""
    path = Path(os.path.abspath(path))
    if path.is_symlink():
        raise OutputError(f"report path {path} is a symbolic link; give the real file's path")
    real = os.path.realpath(path)
    for db in protect:
        if real == os.path.realpath(db):
            raise OutputError(
                f"report path {path} is the face database's {Path(db).name}; "
                "write the report to a new file"
            )
    if not os.path.lexists(path):
        return path
    if path.is_dir():
        raise OutputError(f"report path {path} is a folder; give a file name inside it")
    from .imageio import looks_like_image

    if real in photos or str(path) in photos or looks_like_image(path):
        what = "a photo of the index" if real in photos or str(path) in photos else "an image"
        raise OutputError(f"report path {path} is {what}; write the report to a new file")
    if not path.is_file() or not is_report(path):
        raise OutputError(
            f"{path} exists and is not a facecluster report; facecluster replaces only its "
            "own reports: choose a new file name"
        )
    return path


def write_report(grouping: Grouping, path: Path, *, protect: Iterable[Path] = ()) -> None:
    """Write the report as UTF-8 JSON, atomically (temp file + ``os.replace``), to a new file
    or over a previous report; anything else there is refused (:func:`check_report_path`).
    ``protect``: paths never to write, such as the face database and its side files."""
    path = check_report_path(path, grouping.photos(), protect)
    text = json.dumps(report_dict(grouping), indent=2, ensure_ascii=False, allow_nan=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write report {path}: {exc.strerror or exc}") from None
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
        raise OutputError(f"cannot write report {path}: {exc.strerror or exc}") from None
