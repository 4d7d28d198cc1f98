"""The people page (``group --html``): an overview of everyone (one cover face a person),
the "maybe the same person" list, and each person's faces with the commands that correct
them. Static files only (index.html, style.css, page.js, thumbs/, people/), no server and
no network; it works with JavaScript off. :func:`facecluster.export.write_sheet` drives it
inside a folder facecluster manages (outputs.py).

Small groupings are one page; past ONE_PAGE_PERSONS persons or ONE_PAGE_FACES faces each
person gets a page of their own under people/ and index.html holds the overview, so no
file grows with the library. Links to the photos are relative when the page and the
photos share a folder below the file system's root, else absolute ``file://`` URIs, or
made from ``link_base``; tooltips show each photo's path below the photos' common folder
unless ``full_paths``. Thumbnails are reused across runs (thumbs.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote_from_bytes

from . import html_page as page
from .html_assets import JS, css
from .pathcodec import shown
from .scan import OUTPUT_MARKER
from .suggest import SUGGEST_FACTOR, Suggestion
from .thumbs import DENSITY, make_thumbnails

if TYPE_CHECKING:
    from .grouping import Grouping, ReportFace
    from .outputs import OutputTree

__all__ = ["PAGES", "SheetOptions", "SheetResult", "build_sheet"]

PAGES = ("auto", "one", "per-person")
ONE_PAGE_PERSONS = 200  # more persons than this (auto): one page a person
ONE_PAGE_FACES = 3000  # more faces shown than this (auto): one page a person
FACES_ONE_PAGE = 60  # faces shown a person when everyone is on one page
FACES_OWN_PAGE = 400  # faces shown on a person's own page
SUGGESTIONS_SHOWN = 60
# The size budget tests hold the page to: HTML a face shown, and a person (card, heading,
# commands), besides a few kB for the header.
HTML_BYTES_PER_FACE = 600
HTML_BYTES_PER_PERSON = 1500


@dataclass(frozen=True)
class SheetOptions:
    """``thumb_size``: CSS pixels (files have DENSITY times as many); ``max_faces``: faces
    shown a person (None: FACES_ONE_PAGE, or FACES_OWN_PAGE on pages of their own);
    ``pages``: one of PAGES; ``link_base``: None or "auto", "file" (absolute file://
    links), or a URL or path prefix for each photo's path below the photos' common
    folder; ``full_paths``: tooltips show absolute paths."""

    thumb_size: int = 112
    max_faces: int | None = None
    pages: str = "auto"
    link_base: str | None = None
    full_paths: bool = False


@dataclass(frozen=True)
class SheetResult:
    html_files: int
    per_person: bool
    thumbs_made: int
    thumbs_reused: int


class Links:
    """Where a tile's link points and what its tooltip says."""

    def __init__(self, out_dir: Path, photos: Iterable[str], options: SheetOptions) -> None:
        self.out = os.path.abspath(out_dir)
        folders = {os.path.dirname(os.path.abspath(p)) for p in photos}
        self.root = os.path.commonpath(sorted(folders)) if folders else self.out
        self.full = options.full_paths
        mode = options.link_base or "auto"
        if mode == "auto":
            mode = "relative" if _below_root(self.out, self.root) else "file"
        self.mode = mode

    def href(self, photo: str) -> str:
        path = os.path.abspath(photo)
        if self.mode == "file":
            return Path(path).as_uri()
        if self.mode == "relative":
            return _quote(os.path.relpath(path, self.out))
        return self.mode.rstrip("/") + "/" + _quote(os.path.relpath(path, self.root))

    def title(self, face: ReportFace) -> str:
        path = os.path.abspath(face.photo)
        text = shown(path if self.full else os.path.relpath(path, self.root))
        return text if face.distance is None else f"{text} (distance {face.distance:.4f})"


def _below_root(a: str, b: str) -> bool:
    try:
        common = os.path.commonpath([a, b])
    except ValueError:  # two drives
        return False
    return common != os.path.dirname(common) and common != ""


def _quote(rel: str) -> str:
    return quote_from_bytes(os.fsencode(rel.replace(os.sep, "/")), safe="/")


def pick(faces: Sequence[ReportFace], cap: int, tail: bool) -> tuple[list[ReportFace], int]:
    """At most ``cap`` faces: the first ones (the most typical), and with ``tail`` also a
    quarter from the end (the least typical, where mistakes are); and where the cut is."""
    if len(faces) <= cap:
        return list(faces), len(faces)
    n_tail = cap // 4 if tail else 0
    head = cap - n_tail
    return [*faces[:head], *faces[len(faces) - n_tail :]], head


def build_sheet(
    grouping: Grouping,
    tree: OutputTree,
    folders: Sequence[str],
    unknown_folder: str,
    options: SheetOptions,
    progress: Callable[[int, int], None] | None = None,
) -> SheetResult:
    """Write the page of ``grouping`` into ``tree`` (``folders``: each person's folder
    name, as in the other outputs)."""
    size = options.thumb_size
    one_page = sum(min(len(p.faces), FACES_ONE_PAGE) for p in grouping.persons)
    one_page += min(len(grouping.unknown), FACES_ONE_PAGE)
    split = options.pages == "per-person" or (
        options.pages == "auto"
        and (len(grouping.persons) > ONE_PAGE_PERSONS or one_page > ONE_PAGE_FACES)
    )
    cap = options.max_faces or (FACES_OWN_PAGE if split else FACES_ONE_PAGE)
    links = Links(tree.out_dir, grouping.photos(), options)

    chosen: list[tuple[list[ReportFace], int]] = [
        pick(p.faces, cap, tail=True) for p in grouping.persons
    ]
    chosen.append(pick(grouping.unknown, cap, tail=False))
    faces = list({f.face_id: f for fs, _ in chosen for f in fs}.values())
    (tree.root / "thumbs").mkdir()
    tree.mark("thumbs", "html")
    names, made = make_thumbnails(
        faces,
        tree.root / "thumbs",
        size * DENSITY,
        reuse=lambda name: tree.reuse(f"thumbs/{name}"),
        progress=progress,
        taken=tree.taken("thumbs") | {OUTPUT_MARKER.casefold()},
    )
    thumb = {f.face_id: n for f, n in zip(faces, names, strict=True)}

    def tiles(fs: Sequence[ReportFace]) -> list[page.Tile]:
        return [
            page.Tile(f.face_id, thumb[f.face_id], links.href(f.photo), links.title(f))
            for f in fs
        ]

    blocks: list[page.Block] = []
    for person, folder, (fs, cut) in zip(grouping.persons, folders, chosen, strict=False):
        ts = tiles(fs)
        title, photos = person.name or folder, len({f.photo for f in person.faces})
        n = len(person.faces)
        blocks.append(
            page.Block(f"person-{person.id}", person.id, title, bool(person.name), folder, n,
                       photos, ts, cut, ts[0] if ts else None)
        )  # fmt: skip
    if grouping.unknown:
        (fs, cut), ts = chosen[-1], tiles(chosen[-1][0])
        n, photos = len(grouping.unknown), len({f.photo for f in grouping.unknown})
        blocks.append(
            page.Block("unknown", None, "Unknown", False, unknown_folder, n, photos, ts, cut,
                       ts[0] if ts else None)
        )  # fmt: skip
    pairs = _pairs(grouping, blocks)

    pairs = pairs[:SUGGESTIONS_SHOWN]
    params = {"model": grouping.model, **grouping.params}
    head = page.header(_stats(grouping, len(pairs), split), params)
    within = (
        f"Pairs of persons with two faces nearer than {SUGGEST_FACTOR:g} times the model's "
        "threshold, the most likely first. If both are one person, run the command; naming "
        "them differently hides a pair."
    )
    top = head + page.overview(blocks, size, split) + page.suggestions(
        pairs, within, split, size
    )
    n_persons = len(grouping.persons)
    title = f"facecluster · {page.plural(n_persons, 'person', 'people')}"
    if not split:
        body = "".join(page.section(b, size) for b in blocks) or '<p class="empty">No faces.</p>'
        _write(tree.root / "index.html", page.document(title, f"{top}<main>\n{body}</main>\n"))
    else:
        _write(tree.root / "index.html", page.document(title, top))
        (tree.root / "people").mkdir()
        for i, b in enumerate(blocks):
            prev = blocks[i - 1] if i else None
            nxt = blocks[i + 1] if i + 1 < len(blocks) else None
            body = page.crumbs(prev, nxt) + "<main>\n" + page.section(b, size, 1, True)
            doc = page.document(f"{b.title} · facecluster", body + "</main>\n", depth=1)
            _write(tree.root / "people" / f"{b.sid}.html", doc)
    _write(tree.root / "style.css", css(size))
    _write(tree.root / "page.js", JS)
    return SheetResult(
        html_files=1 + (len(blocks) if split else 0),
        per_person=split,
        thumbs_made=made,
        thumbs_reused=sum(1 for n in names if n is not None) - made,
    )


def _pairs(
    grouping: Grouping, blocks: Sequence[page.Block]
) -> list[tuple[Suggestion, page.Block, page.Block]]:
    """The suggestions between persons on the page, each also listed on both persons."""
    by_id = {b.pid: b for b in blocks if b.pid is not None}
    out = []
    for s in grouping.suggestions:
        a, b = by_id.get(s.into), by_id.get(s.other)
        if a is None or b is None:
            continue
        out.append((s, a, b))
        a.maybe.append((s, b))
        b.maybe.append((s, a))
    return out


def _stats(grouping: Grouping, suggested: int, split: bool) -> list[tuple[int, str, str]]:
    """The header's counts, and where each is on the page (none: no link)."""
    n_persons = len(grouping.persons)
    n_faces = sum(len(p.faces) for p in grouping.persons)
    n_unknown, n_photos = len(grouping.unknown), len(grouping.photos())
    unknown = "people/unknown.html" if split else "#unknown"
    out = [
        (n_persons, "person" if n_persons == 1 else "people", "#overview"),
        (n_faces, "face grouped" if n_faces == 1 else "faces grouped", ""),
        (n_unknown, "unknown face" if n_unknown == 1 else "unknown faces", unknown),
        (n_photos, "photo" if n_photos == 1 else "photos", ""),
    ]
    if suggested:
        merges = "suggested merge" if suggested == 1 else "suggested merges"
        out.insert(1, (suggested, merges, "#maybe"))
    return [(n, label, href if n else "") for n, label, href in out]


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
