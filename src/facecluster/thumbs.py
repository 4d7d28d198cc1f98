"""Face thumbnails for the page (html.py): square crops around each face box, at twice the
size they are shown at, for sharp display on high-density screens.

Each file is named after what it shows: the face id, its box, the photo's path, size and
modification time, the size and this module's crop settings, hashed. A re-run finds the
thumbnails of the previous run that still show the same thing (``reuse``) and makes only
the new ones, decoding only the photos they come from.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .errors import ImageError
from .imageio import decode

if TYPE_CHECKING:
    from .grouping import ReportFace

MARGIN = 0.25  # the crop is the face box grown by this fraction of its longer side
JPEG_QUALITY = 82
DENSITY = 2  # thumbnail pixels per CSS pixel of the page
_VERSION = 1  # bump when the crop or encoding changes: every thumbnail is made again


def crop_region(
    box: Sequence[float], scale: float, shape: tuple[int, ...]
) -> tuple[int, int, int, int] | None:
    """The square around ``box`` (original pixels) grown by MARGIN, in the pixels of an
    image decoded at ``scale``, clipped to it; None when nothing of it is in the image."""
    x1, y1, x2, y2 = (float(v) * scale for v in box)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 <= x1 or y2 <= y1:
        return None
    half = max(x2 - x1, y2 - y1) * (1 + MARGIN) / 2
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    h, w = shape[:2]
    left, top = max(0, math.floor(cx - half)), max(0, math.floor(cy - half))
    right, bottom = min(w, math.ceil(cx + half)), min(h, math.ceil(cy + half))
    if right - left < 1 or bottom - top < 1:
        return None
    return left, top, right, bottom


def thumbnail(image: np.ndarray, region: tuple[int, int, int, int], size: int) -> Image.Image:
    """The region of ``image`` scaled so that its longer side is ``size`` pixels."""
    left, top, right, bottom = region
    im = Image.fromarray(np.ascontiguousarray(image[top:bottom, left:right]))
    k = size / max(im.size)
    target = (max(1, round(im.size[0] * k)), max(1, round(im.size[1] * k)))
    return im.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


def thumb_name(face: ReportFace, size: int) -> str | None:
    """The file name of ``face``'s thumbnail of ``size`` pixels; None when its photo is
    gone. It changes whenever the thumbnail would."""
    try:
        st = os.stat(face.photo)
    except (OSError, ValueError):
        return None
    box = ",".join(f"{float(v):.2f}" for v in face.box)
    key = f"{_VERSION}|{face.face_id}|{box}|{face.photo}|{st.st_size}|{st.st_mtime_ns}|{size}"
    key += f"|{MARGIN}|{JPEG_QUALITY}"
    digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=5).hexdigest()
    return f"face_{face.face_id}_{digest}.jpg"


def make_thumbnails(
    faces: Sequence[ReportFace],
    folder: Path,
    size: int,
    *,
    reuse: Callable[[str], bool] = lambda name: False,
    progress: Callable[[int, int], None] | None = None,
    taken: Iterable[str] = (),
) -> tuple[list[str | None], int]:
    """Put a JPEG thumbnail of each face (``size`` pixels square at most) into ``folder``.
    ``reuse(name)`` puts the previous run's file of that name there and says whether it
    could. Returns, for each face, its file name or None (its photo is gone or cannot be
    read, or the box is not in it), and how many thumbnails were made anew. Each photo is
    decoded once, and only for faces without a thumbnail to reuse. No name in ``taken``
    (the user's files, compared case-insensitively) is used."""
    names: list[str | None] = [None] * len(faces)
    used = {name.casefold() for name in taken}
    todo: dict[str, list[tuple[int, str]]] = {}
    for i, face in enumerate(faces):
        name = thumb_name(face, size)
        if name is None:
            continue
        if name.casefold() in used:  # a file of the user's has that name
            name = _unique_name(name, used)
        elif reuse(name):
            used.add(name.casefold())
            names[i] = name
            continue
        used.add(name.casefold())
        todo.setdefault(face.photo, []).append((i, name))
    made = 0
    for done, (photo, items) in enumerate(todo.items(), 1):
        try:
            image, _, _, scale = decode(Path(photo).read_bytes())
        except (ImageError, OSError):
            pass  # every face of it gets a placeholder
        else:
            for i, name in items:
                region = crop_region(faces[i].box, scale, image.shape)
                if region is not None:
                    thumbnail(image, region, size).save(folder / name, quality=JPEG_QUALITY)
                    names[i] = name
                    made += 1
            del image
        if progress is not None:
            progress(done, len(todo))
    return names, made


def _unique_name(name: str, used: set[str]) -> str:
    stem, n = name.removesuffix(".jpg"), 2
    while f"{stem}_{n}.jpg".casefold() in used:
        n += 1
    return f"{stem}_{n}.jpg"
