"""The people page (html.py, html_page.py, thumbs.py) on real photos: overview, sections,
commands, suggestions, links, thumbnail reuse, one page a person. The browser tests are
in tests/test_page_browser.py."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from PIL import Image

from facecluster import config, thumbs
from facecluster import html as sheet
from facecluster.export import Grouping, ReportFace, ReportPerson, write_html, write_sheet
from facecluster.imageio import decode
from facecluster.scan import OUTPUT_MARKER
from facecluster.suggest import Suggestion

from .test_export import (
    AJ1,
    AJ2,
    AJ_BIG,
    ALL_PHOTOS,
    CLINTON,
    FACES,
    OBAMA,
    face,
    make_grouping,
    snapshot,
)
from .test_export import library as library  # noqa: F401  (the fixture)

shared = pytest.mark.shared_data


VOID = {"img", "meta", "link", "input", "br", "hr", "source"}


class Page(HTMLParser):
    """What the tests check: sections, cards, tiles, images, links, commands, text."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str | None]]] = []
        self.sections: list[str] = []
        self.imgs: list[dict[str, str | None]] = []
        self.links: list[dict[str, str | None]] = []
        self.tiles: list[dict[str, str | None]] = []  # <a class="f">: one face
        self.tile_labels: list[str] = []  # the face id written on each tile
        self.cards: list[str] = []  # the overview's links, in order
        self.codes: list[str] = []  # the commands
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        parent = self.stack[-1] if self.stack else ("", {})
        if tag == "section":
            self.sections.append(a.get("id") or "")
        elif tag == "img":
            self.imgs.append(a)
        elif tag == "a":
            self.links.append(a)
            if a.get("class") == "f":
                self.tiles.append(a)
            if parent[0] == "li" and parent[1].get("class") == "card":
                self.cards.append(a.get("href") or "")
        elif tag == "code":
            self.codes.append("")
        if tag not in VOID:
            self.stack.append((tag, a))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        self.text.append(data)
        if any(t == "code" for t, _ in self.stack):
            self.codes[-1] += data
        if len(self.stack) > 1 and self.stack[-1][0] == "b" and self.stack[-2][1].get(
            "class"
        ) == "f":
            self.tile_labels.append(data)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


def thumbs_of(out: Path) -> list[Path]:
    return sorted((out / "thumbs").glob("*.jpg"))


def thumb_of(out: Path, face_id: int) -> Path:
    (path,) = (out / "thumbs").glob(f"face_{face_id}_*.jpg")
    return path


def counting(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Count the photos the page decodes (by content)."""
    decoded: list[bytes] = []

    def counting_decode(data, *args, **kwargs):
        decoded.append(hashlib.sha256(data).digest())
        return decode(data, *args, **kwargs)

    monkeypatch.setattr(thumbs, "decode", counting_decode)
    return decoded


def target(page_file: Path, href: str) -> Path:
    """The file a relative link on ``page_file`` opens."""
    assert not urlsplit(href).scheme, href
    return Path(os.path.normpath(page_file.parent / unquote(href)))


# --- one page ---------------------------------------------------------------------------


@shared
def test_page(library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded = counting(monkeypatch)
    out = tmp_path / "sheet"
    before = snapshot(library)
    stats = write_sheet(make_grouping(library), out, thumb_size=96)

    assert stats.index == out / "index.html" and not stats.per_person
    assert (out / OUTPUT_MARKER).is_file()
    assert {p.name for p in out.iterdir()} == {
        "index.html", "style.css", "page.js", "thumbs", OUTPUT_MARKER,
    }  # fmt: skip
    assert len(decoded) == len(set(decoded)) == len(ALL_PHOTOS)  # AJ2 (2 faces) read once
    files = thumbs_of(out)
    assert len(files) == 10 == stats.thumbs_made
    for t in files:
        with Image.open(t) as im:  # twice the CSS size, for high-density screens
            assert im.format == "JPEG" and max(im.size) == 192 and min(im.size) >= 120
    text = stats.index.read_text(encoding="utf-8")
    page = parse(text)
    assert page.sections == ["person-1", "person-7", "person-3", "person-4", "unknown"]
    # The overview reaches every section; persons of under 3 faces and the unknown last.
    assert page.cards == ["#person-1", "#person-3", "#person-7", "#person-4", "#unknown"]
    # Each card's cover is the person's face nearest their centre (the first given).
    assert page.imgs[0]["src"] == f"thumbs/{thumb_of(out, 1).name}"
    assert {Path(str(i["src"])).name for i in page.imgs} == {t.name for t in files}
    assert all(i["width"] == "96" for i in page.imgs)
    # Every tile shows its face id; every section its person id and its commands.
    assert [t["data-f"] for t in page.tiles] == [str(i) for i in range(1, 11)]
    assert page.tile_labels == [str(i) for i in range(1, 11)]
    for pid in (1, 7, 3, 4):
        assert f"id {pid}" in page.text
        assert f'facecluster people name {pid} "' in " ".join(page.codes)
        assert f"facecluster people merge {pid} OTHER_ID..." in page.codes
        assert f'facecluster people split {pid} FACE_ID... --name "NAME"' in page.codes
    assert "facecluster people move-face PERSON_ID FACE_ID..." in page.codes  # unknown
    # Links are relative (page and photos share a folder) and open the photo.
    for t in page.tiles:
        assert target(stats.index, str(t["href"])).is_file()
    assert target(stats.index, str(page.tiles[2]["href"])) == library / AJ_BIG
    # No absolute path anywhere: tooltips show the path below the photos' folder.
    assert str(tmp_path) not in text and "file:" not in text
    titles = [t["title"] for t in page.tiles]
    assert f"{AJ1} (distance 0.2123)" in titles
    assert f"{AJ2}" in titles  # the unknown face: no distance
    words = " ".join(page.text)
    assert "Angelina Jolie" in words and "person_0007" in words and "Madonna (2)/" in words
    assert "agglomerative" in words
    assert "http://" not in text and "https://" not in text
    assert {"script", "link"} <= set(page.tags) and "iframe" not in page.tags
    assert snapshot(library) == before


@shared
@pytest.mark.parametrize("variant", ["plain", "draft", "exif_rotated"])
def test_thumbnail_shows_the_face(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: str
) -> None:
    """The thumbnail is the face box grown by ~25%, also when the photo is decoded at
    reduced size or stored sideways with an EXIF orientation (boxes are upright)."""
    photo = library / AJ_BIG
    if variant == "draft":
        monkeypatch.setattr(config, "DECODE_MIN_SIDE", 600)  # decodes at 1/2 size
        assert decode(photo.read_bytes())[3] == 0.5
    elif variant == "exif_rotated":
        photo = tmp_path / "sideways.jpg"  # stored turned left; orientation 6 turns it back
        with Image.open(library / AJ_BIG) as im:
            exif = Image.Exif()
            exif[0x0112] = 6
            im.transpose(Image.Transpose.ROTATE_90).save(photo, quality=95, exif=exif)
    *box, _ = FACES[AJ_BIG][0]
    person = ReportPerson(1, None, (ReportFace(1, str(photo), tuple(box), 1.0, 0.1),))
    write_html(Grouping((person,), (), "m", {}), tmp_path / "s", thumb_size=32)
    with Image.open(thumb_of(tmp_path / "s", 1)) as im:
        thumb = np.asarray(im.convert("RGB"), dtype=np.float32)
    assert thumb.shape == (64, 64, 3)
    with Image.open(library / AJ_BIG) as im:
        x1, y1, x2, y2 = box
        half = max(x2 - x1, y2 - y1) * 1.25 / 2
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        crop = im.convert("RGB").crop((cx - half, cy - half, cx + half, cy + half))
        expected = np.asarray(crop.resize((64, 64)), dtype=np.float32)
        elsewhere = np.asarray(im.convert("RGB").crop((0, 0, 400, 400)).resize((64, 64)))
    assert np.abs(thumb - expected).mean() < 8
    assert np.abs(thumb - elsewhere).mean() > 30


def test_crop_region_clips_to_image() -> None:
    assert thumbs.crop_region((0, 0, 100, 100), 1.0, (80, 60, 3)) == (0, 0, 60, 80)
    assert thumbs.crop_region((100, 100, 200, 200), 0.5, (1000, 1000, 3)) == (43, 43, 107, 107)
    assert thumbs.crop_region((500, 500, 600, 600), 1.0, (100, 100, 3)) is None
    assert thumbs.crop_region((10, 10, 10, 50), 1.0, (100, 100, 3)) is None


@shared
def test_page_escapes_everything(library: Path, tmp_path: Path) -> None:
    weird = library / 'we"ird&<dir>' / 'a"b&c<d>e.jpg'
    weird.parent.mkdir()
    shutil.copy2(library / AJ1, weird)
    name = "<script>alert(1)</script>"
    person = ReportPerson(5, name, (ReportFace(1, str(weird), FACES[AJ1][0][:4], 1.0, 0.5),))
    other = ReportPerson(6, "B", (face(library, 2, AJ1),))  # the photos' folder: library
    grouping = Grouping((person, other), (), "<u>model</u>", {"<em>k": "<i>x</i>"})
    text = write_html(grouping, tmp_path / "sheet").read_text(encoding="utf-8")

    for tag in ("<script>", "<u>", "<em>", "<i>"):
        assert tag not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert '"&<>' not in text and 'we"ird' not in text
    page = parse(text)
    assert page.tags.count("script") == 1  # page.js, and nothing else
    assert not {"u", "em", "i"} & set(page.tags)
    assert " ".join(page.text).count(name) == 2  # card and section, shown as text
    tile = page.tiles[0]
    assert tile["title"] == 'we"ird&<dir>/a"b&c<d>e.jpg (distance 0.5000)'  # round-trips
    assert '"' not in str(tile["href"])
    assert target(tmp_path / "sheet" / "index.html", str(tile["href"])) == weird


@shared
def test_placeholder_for_unreadable_photo(library: Path, tmp_path: Path) -> None:
    broken = library / "broken.jpg"
    broken.write_bytes((library / AJ1).read_bytes()[:300])  # truncated JPEG
    faces = (
        ReportFace(3, str(library / AJ1), FACES[AJ1][0][:4], 1.0, 0.1),
        ReportFace(1, str(broken), (70, 70, 180, 180), 0.99, 0.2),
        ReportFace(2, str(library / "gone.jpg"), (70, 70, 180, 180), 0.99, 0.3),
    )
    index = write_html(Grouping((ReportPerson(1, "A", faces),), (), "m", {}), tmp_path / "s")
    page = parse(index.read_text(encoding="utf-8"))
    assert [t.name for t in thumbs_of(tmp_path / "s")] == [thumb_of(tmp_path / "s", 3).name]
    assert len(page.imgs) == 2  # the cover and its tile
    assert index.read_text().count('class="ph"') == 2
    assert len(page.tiles) == 3


@shared
def test_long_persons_show_the_most_and_the_least_typical(library: Path, tmp_path: Path) -> None:
    rels = [AJ1, AJ2, AJ_BIG, CLINTON, OBAMA, AJ1, AJ2, AJ_BIG]
    faces = tuple(face(library, i, rel) for i, rel in enumerate(rels, 1))
    grouping = Grouping((ReportPerson(1, "A", faces),), faces[:5], "m", {})
    index = write_html(grouping, tmp_path / "s", max_faces_per_person=4)
    text = index.read_text(encoding="utf-8")
    page = parse(text)
    # Three nearest the centre, "+4 more", then the farthest; the unknown faces: no tail.
    assert [t["data-f"] for t in page.tiles] == ["1", "2", "3", "8", "1", "2", "3", "4"]
    assert "+4 more" in text and "the least typical" in text and "+1 more" in text
    assert "8 faces" in text


@shared
def test_rerun_replaces_page(library: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    write_html(make_grouping(library), out)
    person = ReportPerson(1, "Solo", (face(library, 42, CLINTON),))
    write_html(Grouping((person,), (), "m", {}), out)
    assert [t.name for t in thumbs_of(out)] == [thumb_of(out, 42).name]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "index.html", "page.js", "style.css", "thumbs",
    ]  # fmt: skip


# --- thumbnails made once ---------------------------------------------------------------


@shared
def test_rerun_makes_only_new_thumbnails(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "s"
    first = write_sheet(make_grouping(library), out)
    inodes = {p.name: p.stat().st_ino for p in thumbs_of(out)}
    decoded = counting(monkeypatch)

    again = write_sheet(make_grouping(library), out)
    assert (again.thumbs_made, again.thumbs_reused) == (0, first.thumbs_made) == (0, 10)
    assert decoded == []
    assert {p.name: p.stat().st_ino for p in thumbs_of(out)} == inodes  # the same files

    # A photo changed since (rewritten): only its faces are made again, from it alone.
    (library / AJ2).write_bytes((library / AJ2).read_bytes())
    os.utime(library / AJ2, ns=(1, 1))
    grouping = make_grouping(library)
    extra = ReportPerson(9, "New", (face(library, 11, CLINTON),))
    third = write_sheet(replace(grouping, persons=(*grouping.persons, extra)), out)
    assert third.thumbs_made == 3 and third.thumbs_reused == 8  # AJ2's two faces, face 11
    assert len(decoded) == 2  # AJ2 and CLINTON
    names = {p.name for p in thumbs_of(out)}
    assert len(names) == 11 and not list(out.glob(".facecluster-staging-*"))
    assert not {n for n in inodes if n.startswith(("face_2_", "face_10_"))} & names


@shared
@pytest.mark.fault
def test_edited_thumbnail_is_the_users(fault, library: Path, tmp_path: Path) -> None:
    fault(
        "html",
        "--html re-run after the user edited one of our thumbnails",
        "the edited file is kept and reported, never reused; a new one is made beside it",
    )
    out = tmp_path / "s"
    write_sheet(make_grouping(library), out)
    edited = thumb_of(out, 1)
    edited.write_bytes(edited.read_bytes() + b"\0")
    held = edited.read_bytes()

    stats = write_sheet(make_grouping(library), out)

    assert stats.kept == (edited,) and edited.read_bytes() == held
    assert stats.thumbs_made == 1
    fresh = out / "thumbs" / edited.name.replace(".jpg", "_2.jpg")
    assert fresh.is_file() and f"thumbs/{fresh.name}" in stats.index.read_text("utf-8")


# --- one page a person ------------------------------------------------------------------


@shared
def test_one_page_a_person(library: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    grouping = make_grouping(library)
    stats = write_sheet(grouping, out, pages="per-person")
    assert stats.per_person
    index = parse(stats.index.read_text("utf-8"))
    assert index.sections == [] and index.tiles == []
    pages = ["person-1", "person-7", "person-3", "person-4", "unknown"]
    assert sorted(index.cards) == sorted(f"people/{p}.html" for p in pages)
    for i, name in enumerate(pages):
        path = out / "people" / f"{name}.html"
        text = path.read_text("utf-8")
        page = parse(text)
        assert page.sections == [name]
        assert 'href="../style.css"' in text and 'src="../page.js"' in text
        assert 'href="../index.html"' in text
        assert ('rel="prev"' in text) == (i > 0) and ('rel="next"' in text) == (i < 4)
        for img in page.imgs:
            assert target(path, str(img["src"])).is_file()
        for t in page.tiles:
            assert target(path, str(t["href"])).is_file()
        assert str(tmp_path) not in text
    # Back to one page: people/ was ours and goes.
    write_sheet(grouping, out, pages="one")
    assert not (out / "people").exists()


@shared
def test_large_groupings_get_a_page_a_person(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not write_sheet(make_grouping(library), tmp_path / "a").per_person
    monkeypatch.setattr(sheet, "ONE_PAGE_PERSONS", 3)
    assert write_sheet(make_grouping(library), tmp_path / "b").per_person
    monkeypatch.setattr(sheet, "ONE_PAGE_PERSONS", 200)
    monkeypatch.setattr(sheet, "ONE_PAGE_FACES", 9)
    assert write_sheet(make_grouping(library), tmp_path / "c").per_person


@shared
def test_page_size_per_face_stays_under_budget(library: Path, tmp_path: Path) -> None:
    """Each face shown costs at most HTML_BYTES_PER_FACE bytes of HTML, each person's card,
    heading and commands included (HTML_BYTES_PER_PERSON a person on its own)."""
    rels = [AJ1, AJ2, AJ_BIG, CLINTON, OBAMA]
    persons = tuple(
        ReportPerson(
            p, None, tuple(face(library, p * 100 + i, rels[i % 5], 0, 0.1) for i in range(12))
        )
        for p in range(1, 41)
    )
    stats = write_sheet(Grouping(persons, (), "m", {}), tmp_path / "s")
    size = stats.index.stat().st_size
    assert size / 480 <= sheet.HTML_BYTES_PER_FACE, f"{size / 480:.0f} bytes a face"


# --- links ------------------------------------------------------------------------------


def test_links_relative_file_or_from_a_base() -> None:
    photos = ["/home/u/Photos/2020/a b.jpg", "/home/u/Photos/2021/c#1.jpg"]
    f = ReportFace(1, photos[0], (0, 0, 1, 1), 1.0, 0.25)
    auto = sheet.Links(Path("/home/u/page"), photos, sheet.SheetOptions())
    assert auto.href(photos[0]) == "../Photos/2020/a%20b.jpg"
    assert auto.href(photos[1]) == "../Photos/2021/c%231.jpg"
    assert auto.title(f) == "2020/a b.jpg (distance 0.2500)"
    elsewhere = sheet.Links(Path("/srv/page"), photos, sheet.SheetOptions())
    assert elsewhere.href(photos[0]) == "file:///home/u/Photos/2020/a%20b.jpg"
    base = sheet.SheetOptions(link_base="https://nas.local/photos/", full_paths=True)
    nas = sheet.Links(Path("/srv/page"), photos, base)
    assert nas.href(photos[1]) == "https://nas.local/photos/2021/c%231.jpg"
    assert nas.title(f) == "/home/u/Photos/2020/a b.jpg (distance 0.2500)"
    forced = sheet.Links(Path("/home/u/page"), photos, sheet.SheetOptions(link_base="file"))
    assert forced.href(photos[0]).startswith("file:///home/u/Photos/")


# --- suggestions ------------------------------------------------------------------------


@shared
def test_maybe_the_same_person(library: Path, tmp_path: Path) -> None:
    grouping = make_grouping(library)
    maybe = (
        Suggestion(7, 4, 0.12, 4, 9, None, "Madonna", 2, 1),
        Suggestion(3, 99, 0.2, 6, 990),  # a person not on the page: left out
    )
    text = write_html(replace(grouping, suggestions=maybe), tmp_path / "s").read_text("utf-8")
    page = parse(text)
    assert page.sections[0] == "maybe"
    pair = text[text.index('id="maybe"') : text.index("</section>")]
    assert "facecluster people merge 7 4" in pair
    # person 99 has no section, so its pair is left out (thumbnail names carry hex
    # digests, so look for the pair's own marks, not the bare number)
    assert "merge 3 99" not in pair and "person-99" not in pair and "face_990" not in pair
    assert 'href="#person-7"' in pair and 'href="#person-4"' in pair
    covers = re.findall(r'src="thumbs/(face_\d+)_', pair)
    assert covers == ["face_4", "face_9"]  # both cover faces, side by side
    for sid in ("person-7", "person-4"):
        section = text[text.index(f'id="{sid}"') :]
        section = section[: section.index("</section>")]
        assert "Maybe the same person as" in section
        assert "facecluster people merge 7 4" in section
    assert "1</b> suggested merge" in text
