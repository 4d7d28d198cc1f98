"""The HTML contact sheet: face thumbnails cropped from the photos, and one static page
with inline CSS (no scripts, no network). :func:`facecluster.export.write_html` drives it."""

from __future__ import annotations

import html
import math
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .errors import ImageError
from .imageio import decode
from .pathcodec import shown

if TYPE_CHECKING:
    from .grouping import Grouping, ReportFace

MARGIN = 0.25  # the crop is the face box grown by this fraction of its longer side
JPEG_QUALITY = 85


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


def _thumbnail(image: np.ndarray, region: tuple[int, int, int, int], size: int) -> Image.Image:
    left, top, right, bottom = region
    im = Image.fromarray(np.ascontiguousarray(image[top:bottom, left:right]))
    k = size / max(im.size)
    target = (max(1, round(im.size[0] * k)), max(1, round(im.size[1] * k)))
    return im.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


def make_thumbnails(
    faces: Sequence[ReportFace],
    folder: Path,
    size: int,
    progress: Callable[[int, int], None] | None = None,
    taken: Iterable[str] = (),
) -> list[str | None]:
    """Write a JPEG thumbnail of each face into ``folder``; returns, for each face, its
    file name, or None when its photo could not be read or the box is not in it.
    Each photo is decoded once, however many of its faces are shown. No name in ``taken``
    (compared case-insensitively) is used."""
    by_photo: dict[str, list[int]] = {}
    for i, face in enumerate(faces):
        by_photo.setdefault(face.photo, []).append(i)
    names: list[str | None] = [None] * len(faces)
    used = {name.casefold() for name in taken}
    for done, (photo, idxs) in enumerate(by_photo.items(), 1):
        try:
            image, _, _, scale = decode(Path(photo).read_bytes())
        except (ImageError, OSError):
            pass  # every face of it gets a placeholder
        else:
            for i in idxs:
                region = crop_region(faces[i].box, scale, image.shape)
                if region is not None:
                    name = _unique_name(f"face_{faces[i].face_id}", used)
                    _thumbnail(image, region, size).save(folder / name, quality=JPEG_QUALITY)
                    names[i] = name
            del image
        if progress is not None:
            progress(done, len(by_photo))
    return names


def _unique_name(stem: str, used: set[str]) -> str:
    name, n = f"{stem}.jpg", 1
    while name.casefold() in used:
        n += 1
        name = f"{stem}_{n}.jpg"
    used.add(name.casefold())
    return name


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _tile(face: ReportFace, thumb: str | None, size: int) -> str:
    path = os.path.abspath(face.photo)
    name = shown(path)
    label = name if face.distance is None else f"{name} (distance {face.distance:.4f})"
    if thumb is None:
        inner = f'<span class="ph" role="img" aria-label="{_e(label)}">no preview</span>'
    else:
        inner = (
            f'<img src="thumbs/{_e(thumb)}" alt="{_e(label)}" width="{size}" '
            f'height="{size}" loading="lazy" decoding="async">'
        )
    return f'<a class="face" href="{_e(Path(path).as_uri())}" title="{_e(label)}">{inner}</a>'


def _section(sid: str, title: str, cls: str, meta: str, tiles: str) -> str:
    return (
        f'<section class="{cls}" id="{sid}"><div class="head"><h2>{title}</h2>'
        f'<p class="meta">{meta}</p></div><div class="grid">{tiles}</div></section>\n'
    )


def render_page(
    grouping: Grouping,
    folders: Sequence[str],
    unknown_folder: str,
    thumbs: Sequence[str | None],
    size: int,
    max_faces: int,
) -> str:
    """The whole page; ``folders`` are the persons' export folder names. ``thumbs`` lists
    the thumbnail of each face shown, persons first then unknown, each cut to
    ``max_faces``. Every user-provided string is escaped."""
    blocks = []
    for person, folder in zip(grouping.persons, folders, strict=True):
        title = _e(person.name) if person.name else f'<span class="anon">{_e(folder)}</span>'
        blocks.append((f"person-{person.id}", title, "person", "", folder, person.faces))
    if grouping.unknown:
        note = " not assigned to anyone"
        blocks.append(
            ("unknown", "Unknown", "person unknown", note, unknown_folder, grouping.unknown)
        )
    it = iter(thumbs)
    sections, photos = [], set()
    for sid, title, cls, note, folder, faces in blocks:
        shown = faces[:max_faces]
        tiles = "".join(_tile(f, next(it), size) for f in shown)
        if len(faces) > len(shown):
            tiles += f'<span class="more">+{len(faces) - len(shown):,} more</span>'
        distinct = {f.photo for f in faces}
        photos |= distinct
        meta = (
            f"{_plural(len(faces), 'face')}{note} · {_plural(len(distinct), 'photo')}"
            f' · <span class="folder">{_e(folder)}/</span>'
        )
        sections.append(_section(sid, title, cls, meta, tiles))
    n_faces = sum(len(p.faces) for p in grouping.persons)
    n_persons, n_unknown = len(grouping.persons), len(grouping.unknown)
    people = f"{n_persons:,} {'person' if n_persons == 1 else 'people'}"
    stats = "".join(
        f"<li><b>{n:,}</b> {label}</li>"
        for n, label in (
            (n_persons, "person" if n_persons == 1 else "people"),
            (n_faces, "face grouped" if n_faces == 1 else "faces grouped"),
            (n_unknown, "unknown face" if n_unknown == 1 else "unknown faces"),
            (len(photos), "photo" if len(photos) == 1 else "photos"),
        )
    )
    params = "".join(
        f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>"
        for k, v in [("model", grouping.model), *grouping.params.items()]
    )
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(sections) or '<p class="empty">No faces.</p>'
    return _PAGE.format(
        css=_CSS.replace("THUMB", str(size)),
        stats=stats,
        params=params,
        body=body,
        when=when,
        title=people,
    )


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="facecluster">
<title>facecluster · {title}</title>
<style>{css}</style>
</head>
<body>
<header class="top">
<h1>People</h1>
<ul class="stats">{stats}</ul>
<dl class="params">{params}</dl>
</header>
<main>
{body}</main>
<footer>Generated by facecluster on {when}. Click a face to open its photo.</footer>
</body>
</html>
"""

_CSS = """
:root{--bg:#f4f5f7;--card:#fff;--ink:#1d2129;--muted:#6b7280;--line:#e4e7ec;
--chip:#eef1f5;--accent:#3b5bdb;--ph:#c9ced6;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#14161a;--card:#1d2026;--ink:#e8eaee;
--muted:#9aa3af;--line:#2c3038;--chip:#262a31;--accent:#8da2fb;--ph:#3a3f48}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);line-height:1.45;
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.top{padding:28px 32px 20px;background:var(--card);border-bottom:1px solid var(--line)}
h1{margin:0 0 12px;font-size:26px;font-weight:650;letter-spacing:-.01em}
.stats{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 14px;padding:0;list-style:none}
.stats li{background:var(--chip);border-radius:999px;padding:4px 12px;font-size:14px;
color:var(--muted)}
.stats b{color:var(--ink);font-weight:650}
.params{display:flex;flex-wrap:wrap;gap:4px 18px;margin:0;font-size:13px;color:var(--muted)}
.params div{display:flex;gap:6px}
.params dt::after{content:":"}
.params dd{margin:0;color:var(--ink);font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
main{padding:24px 32px;display:flex;flex-direction:column;gap:18px}
.person{background:var(--card);border:1px solid var(--line);border-radius:14px;
padding:16px 18px 18px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
.head{display:flex;align-items:baseline;flex-wrap:wrap;gap:4px 14px;margin-bottom:12px}
h2{margin:0;font-size:18px;font-weight:620;overflow-wrap:anywhere}
.anon{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-weight:500;
color:var(--muted)}
.meta{margin:0;font-size:13px;color:var(--muted)}
.folder{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;overflow-wrap:anywhere}
.grid{display:flex;flex-wrap:wrap;gap:8px}
.face{display:block;width:THUMBpx;height:THUMBpx;border-radius:10px;overflow:hidden;
background:var(--ph);outline-offset:2px;transition:transform .12s ease,box-shadow .12s ease;
color:var(--muted);font-size:11px;text-decoration:none;overflow-wrap:anywhere}
.face:hover,.face:focus-visible{transform:translateY(-2px);
box-shadow:0 6px 16px rgba(16,24,40,.18)}
.face:focus-visible{outline:2px solid var(--accent)}
.face img{display:block;width:100%;height:100%;object-fit:cover}
.ph{display:flex;width:100%;height:100%;align-items:center;justify-content:center;
font-size:12px;color:#fff;background:var(--ph)}
.more{display:flex;width:THUMBpx;height:THUMBpx;align-items:center;justify-content:center;
border:1px dashed var(--line);border-radius:10px;color:var(--muted);font-size:14px}
.unknown{background:transparent;border-style:dashed}
.empty{color:var(--muted)}
footer{padding:0 32px 28px;font-size:12px;color:var(--muted)}
"""
