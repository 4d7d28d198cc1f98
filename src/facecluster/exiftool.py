"""ExifTool, the reference reader and writer of XMP, run as a subprocess.

facecluster reads and writes XMP face regions through ExifTool (Debian/Ubuntu:
``apt install libimage-exiftool-perl``; macOS: ``brew install exiftool``) rather than
building XML itself: it knows every schema involved (mwg-rs, MP, lr, digiKam), writes
structures from JSON and keeps the properties it does not touch.

ExifTool only ever sees file names facecluster chose: each file is reached through a
symbolic link (reads) or copied (writes) into a private temporary folder, so names with
newlines, non-UTF-8 bytes or a leading dash cannot confuse it. One process serves a whole
batch of files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import FaceclusterError

ENV_EXIFTOOL = "FACECLUSTER_EXIFTOOL"
INSTALL = (
    "install ExifTool (Debian/Ubuntu: apt install libimage-exiftool-perl; macOS: brew "
    "install exiftool; Windows: exiftool.org)"
)
# Seconds a batch may take: a start, then a little per file.
TIMEOUT_BASE, TIMEOUT_PER_FILE = 60.0, 2.0
_SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")


class ExiftoolMissing(FaceclusterError):
    """ExifTool is not installed (or $FACECLUSTER_EXIFTOOL names no program)."""


class ExiftoolFailed(FaceclusterError):
    """ExifTool ran but did not do what it was asked (timeout, unreadable output)."""


def find() -> str | None:
    """The exiftool program: $FACECLUSTER_EXIFTOOL, else the one on PATH; None if absent."""
    given = os.environ.get(ENV_EXIFTOOL)
    if given:
        return given if os.access(given, os.X_OK) and os.path.isfile(given) else None
    return shutil.which("exiftool")


def require() -> str:
    program = find()
    if program is None:
        raise ExiftoolMissing(f"exiftool was not found: {INSTALL}")
    return program


@contextmanager
def workdir() -> Iterator[Path]:
    """A private temporary folder, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="facecluster-xmp-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def clean_name(i: int, path: Path) -> str:
    """A name ExifTool cannot misread, keeping the extension it may need."""
    suffix = path.suffix if _SAFE_SUFFIX.fullmatch(path.suffix) else ""
    return f"f{i:06d}{suffix.lower()}"


def run(args: Sequence[str], files: int, cwd: Path) -> str:
    """Run exiftool with ``args`` (UTF-8 everywhere) and return its standard output."""
    program = require()
    try:
        done = subprocess.run(
            [program, "-charset", "filename=utf8", "-charset", "utf8", *args],
            cwd=cwd,
            capture_output=True,
            timeout=TIMEOUT_BASE + TIMEOUT_PER_FILE * files,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ExiftoolFailed(f"exiftool took too long on {files} file(s)") from None
    except OSError as exc:
        why = exc.strerror or exc
        raise ExiftoolMissing(f"exiftool could not be started ({why}): {INSTALL}") from None
    # 0: done; 1: some file could not be read (each says so in its own entry).
    if done.returncode not in (0, 1):
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ExiftoolFailed(f"exiftool failed: {err[0][:200] if err else done.returncode}")
    return done.stdout.decode("utf-8", "replace")


def read(paths: Sequence[Path], tags: Sequence[str]) -> list[dict[str, Any] | None]:
    """``tags`` of each file (exiftool -j -struct -G1 -n: structures as dicts, numbers as
    numbers, keys as "GROUP:Tag"), in the order of ``paths``; None for a file ExifTool could
    not open. Reads stop at the image data (-fast)."""
    if not paths:
        return []
    with workdir() as tmp:
        names = []
        for i, path in enumerate(paths):
            name = clean_name(i, path)
            os.symlink(os.path.abspath(path), tmp / name)
            names.append(name)
        found = parse(run(["-j", "-struct", "-G1", "-n", "-fast", *tags, *names],
                          len(names), tmp))
    return [found.get(name) for name in names]


def parse(stdout: str) -> dict[str, dict[str, Any]]:
    """exiftool -j output: SourceFile -> its tags."""
    if not stdout.strip():
        return {}
    try:
        entries = json.loads(stdout)
    except ValueError:
        raise ExiftoolFailed("exiftool printed something that is not JSON") from None
    if not isinstance(entries, list):
        raise ExiftoolFailed("exiftool printed JSON of an unexpected shape")
    return {
        str(e["SourceFile"]): e for e in entries if isinstance(e, dict) and "SourceFile" in e
    }


def write(files: Sequence[Path], values: Sequence[dict[str, Any]], delete: Sequence[str]) -> None:
    """Write ``values[i]`` (tag -> value, structures as dicts) into ``files[i]``, XMP files
    inside a :func:`workdir` (one that does not exist is created). ``delete``: tags
    removed first from every file that exists. Raises ExiftoolFailed."""
    if not files:
        return
    cwd = files[0].parent
    existing = [f.name for f in files if f.exists()]
    if existing and delete:
        run(["-overwrite_original", "-m", *(f"-{tag}=" for tag in delete), *existing],
            len(existing), cwd)
    data = [{"SourceFile": f.name, **v} for f, v in zip(files, values, strict=True)]
    (cwd / "values.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    run(["-overwrite_original", "-m", "-j=values.json", *(f.name for f in files)],
        len(files), cwd)
