"""The page's HTML: the overview of everyone, the "maybe the same person" list and one
section a person, from the views html.py prepares. Every user-provided string is escaped;
the page works without JavaScript (page.js only adds a filter, keys and selection)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .suggest import Suggestion

SMALL = 3  # persons with fewer faces are listed after the others in the overview


@dataclass(frozen=True)
class Tile:
    face_id: int
    thumb: str | None  # file name in thumbs/, None: no preview
    href: str  # the photo, relative to the index page (or absolute)
    title: str  # the tooltip: the photo's path as shown, and the distance


@dataclass
class Block:
    """A person (or the unknown faces) as the page shows it."""

    sid: str  # "person-7" or "unknown": the section's id and its page's name
    pid: int | None  # None for the unknown faces
    title: str  # the name, or the folder name of an unnamed person
    named: bool
    folder: str
    faces: int
    photos: int
    tiles: list[Tile]  # the nearest faces to the person's centre first
    cut: int  # where "+N more" goes in tiles; the rest are the least typical faces
    cover: Tile | None = None
    maybe: list[tuple[Suggestion, Block]] = field(default_factory=list)

    @property
    def hidden(self) -> int:
        return self.faces - len(self.tiles)


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def plural(n: int, word: str, many: str = "") -> str:
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def up(href: str, depth: int) -> str:
    """``href`` (relative to the index page) as seen from a page ``depth`` folders down."""
    if depth == 0 or href.startswith(("/", "#")) or ":" in href.split("/", 1)[0]:
        return href
    return "../" * depth + href


def link_to(block: Block, depth: int, split: bool) -> str:
    """Where a person's section is: its own page, or its anchor on this one."""
    if not split:
        return f"#{block.sid}"
    return f"{block.sid}.html" if depth else f"people/{block.sid}.html"


def tile(t: Tile, size: int, depth: int) -> str:
    if t.thumb is None:
        inner = f'<span class="ph" role="img" aria-label="face {t.face_id}">no preview</span>'
    else:
        inner = (
            f'<img src="{up("thumbs/" + e(t.thumb), depth)}" alt="face {t.face_id}" '
            f'width="{size}" height="{size}" loading="lazy" decoding="async">'
        )
    href = e(up(t.href, depth))
    return (
        f'<a class="f" href="{href}" title="{e(t.title)}" data-f="{t.face_id}">'
        f"{inner}<b>{t.face_id}</b></a>"
    )


def _ids(placeholder: str) -> str:
    return f'<span class="ids">{placeholder}</span>'


def commands(b: Block) -> str:
    """The exact commands that correct this person (or these unknown faces)."""
    if b.pid is None:
        lines = [f"facecluster people move-face PERSON_ID {_ids('FACE_ID...')}"]
    else:
        name = "New name" if b.named else "NAME"
        lines = [
            f'facecluster people name {b.pid} "{name}"',
            f"facecluster people merge {b.pid} OTHER_ID...",
            f'facecluster people split {b.pid} {_ids("FACE_ID...")} --name "NAME"',
            f"facecluster people remove-face {_ids('FACE_ID...')}",
        ]
    items = "".join(f"<li><code>{line}</code></li>" for line in lines)
    return f'<ul class="cmds" aria-label="Commands">{items}</ul>'


def maybe_line(b: Block, depth: int, split: bool) -> str:
    if not b.maybe:
        return ""
    items = "".join(
        f'<li><a href="{link_to(o, depth, split)}">{e(o.title)}</a> '
        f"<span>{s.distance:.3f}</span> <code>{e(s.command)}</code></li>"
        for s, o in b.maybe[:3]
    )
    return f'<div class="maybe">Maybe the same person as<ul>{items}</ul></div>'


def section(b: Block, size: int, depth: int = 0, split: bool = False) -> str:
    tiles = [tile(t, size, depth) for t in b.tiles]
    if b.hidden > 0:
        tail = "the least typical" if b.cut < len(b.tiles) else ""
        more = f'<span class="more">+{b.hidden:,} more<small>{tail}</small></span>'
        tiles.insert(b.cut, more)
    if b.pid is None:
        head = f'<h2 tabindex="-1">{e(b.title)}</h2>'
        note = " not assigned to anyone"
    else:
        anon = "" if b.named else ' class="anon"'
        head = f'<h2 tabindex="-1"><span{anon}>{e(b.title)}</span></h2>'
        head += f'<span class="pid">id {b.pid}</span>'
        note = ""
    meta = (
        f"{plural(b.faces, 'face')}{note} · {plural(b.photos, 'photo')}"
        f' · <span class="folder">{e(b.folder)}/</span>'
    )
    cls = "person unknown" if b.pid is None else "person"
    return (
        f'<section class="{cls}" id="{b.sid}" data-name="{e(_key(b))}">'
        f'<div class="head">{head}<p class="meta">{meta}</p></div>'
        f"{commands(b)}{maybe_line(b, depth, split)}"
        f'<div class="grid">{"".join(tiles)}</div></section>\n'
    )


def _key(b: Block) -> str:
    return f"{b.title} {b.pid if b.pid is not None else ''}".casefold()


def card(b: Block, size: int, split: bool) -> str:
    anon = "" if b.named or b.pid is None else " anon"
    ident = f" · id {b.pid}" if b.named else ""  # an unnamed one's title holds its id
    return (
        f'<li class="card" data-name="{e(_key(b))}"><a href="{link_to(b, 0, split)}">'
        f"{_cover(b, size)}"
        f'<span class="nm{anon}">{e(b.title)}</span>'
        f'<span class="ct">{plural(b.faces, "face")}{ident}</span></a></li>'
    )


def overview(blocks: Sequence[Block], size: int, split: bool) -> str:
    """One card a person, cover face first; small persons and the unknown faces last."""
    big = [b for b in blocks if b.pid is not None and b.faces >= SMALL]
    rest = [b for b in blocks if b not in big]
    parts = [f'<ul class="cards">{"".join(card(b, size, split) for b in big)}</ul>']
    if rest:
        parts.append(
            f'<h3>Small groups and unknown faces</h3><ul class="cards small">'
            f'{"".join(card(b, size, split) for b in rest)}</ul>'
        )
    return (
        '<nav class="overview" id="overview" aria-label="Everyone">'
        '<div class="bar"><h2>Everyone</h2><input type="search" id="filter" '
        'placeholder="Filter by name or id" aria-label="Filter by name or id" hidden></div>'
        f'{"".join(parts)}</nav>\n'
    )


def _cover(b: Block, size: int) -> str:
    c = b.cover
    if c is None or c.thumb is None:
        return '<span class="ph">no preview</span>'
    return (
        f'<img src="thumbs/{e(c.thumb)}" alt="" width="{size}" height="{size}" '
        'loading="lazy" decoding="async">'
    )


def suggestions(
    pairs: Sequence[tuple[Suggestion, Block, Block]],
    within: str,
    split: bool,
    size: int,
    open_first: int = 12,
) -> str:
    """The pairs side by side, each with its merge command; past ``open_first`` folded."""
    if not pairs:
        return ""
    items = []
    for s, a, b in pairs:
        covers = "".join(
            f'<a class="side" href="{link_to(x, 0, split)}" title="{e(x.title)}">'
            f"{_cover(x, size)}</a>"
            for x in (a, b)
        )
        who = " + ".join(
            f'<a href="{link_to(x, 0, split)}">{e(x.title)}</a> ({x.faces:,})' for x in (a, b)
        )
        items.append(
            f'<li class="pair">{covers}<div class="why"><span class="who">{who}</span>'
            f"<span>distance {s.distance:.3f}</span><code>{e(s.command)}</code></div></li>"
        )
    shown = f'<ol class="pairs">{"".join(items[:open_first])}</ol>'
    if len(items) > open_first:
        shown += (
            f"<details><summary>{len(items) - open_first:,} more</summary>"
            f'<ol class="pairs" start="{open_first + 1}">{"".join(items[open_first:])}</ol>'
            "</details>"
        )
    return (
        '<section class="suggest" id="maybe"><div class="head"><h2>Maybe the same person'
        f'</h2><p class="meta">{within}</p></div>{shown}</section>\n'
    )


def header(stats: Sequence[tuple[int, str, str]], params: dict[str, object]) -> str:
    """The counts, each linking to its part of the page where it has one, and settings."""
    chips = "".join(
        f'<li><a href="{href}"><b>{n:,}</b> {label}</a></li>'
        if href
        else f"<li><b>{n:,}</b> {label}</li>"
        for n, label, href in stats
    )
    rows = "".join(f"<div><dt>{e(k)}</dt><dd>{e(v)}</dd></div>" for k, v in params.items())
    return (
        f'<header class="top"><h1>People</h1><ul class="stats">{chips}</ul>'
        f'<dl class="params">{rows}</dl></header>\n'
    )


def crumbs(prev: Block | None, nxt: Block | None) -> str:
    links = ['<a href="../index.html" rel="index">All people</a>']
    if prev is not None:
        links.append(f'<a href="{prev.sid}.html" rel="prev">‹ {e(prev.title)}</a>')
    if nxt is not None:
        links.append(f'<a href="{nxt.sid}.html" rel="next">{e(nxt.title)} ›</a>')
    return f'<nav class="crumbs" aria-label="Pages">{"".join(links)}</nav>\n'


def document(title: str, body: str, depth: int = 0) -> str:
    base = "../" * depth
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="facecluster">\n'
        f"<title>{e(title)}</title>\n"
        f'<link rel="stylesheet" href="{base}style.css">\n'
        f'<script src="{base}page.js" defer></script>\n</head>\n<body>\n{body}'
        f"<footer>Generated by facecluster on {when}. Click a face to open its photo; the "
        "number on it is its face id. Keys: / filter, j k next and previous person, n p next "
        "and previous page.</footer>\n"
        "</body>\n</html>\n"
    )
