"""export.py and html.py on real photos: folders, report (golden JSON), HTML sheet, browser.

Regenerate the golden report with ``UPDATE_GOLDEN=1 pytest tests/test_export.py``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecluster import config, export
from facecluster import html as sheet
from facecluster.errors import FaceclusterError
from facecluster.export import (
    Grouping,
    OutputError,
    ReportFace,
    ReportPerson,
    export_folders,
    report_dict,
    sanitize_name,
    write_html,
    write_report,
)
from facecluster.imageio import decode
from facecluster.scan import OUTPUT_MARKER

from .conftest import DEV

GOLDEN = Path(__file__).resolve().parent / "golden" / "report_v1.json"

# Tests that use the `library` fixture copy photos of ../shared/data/dev.
shared = pytest.mark.shared_data

# Faces in these photos as MTCNN found them (x1, y1, x2, y2 in original pixels, prob).
AJ1 = "Angelina_Jolie/Angelina_Jolie_0001.jpg"  # 250x250
AJ2 = "Angelina_Jolie/Angelina_Jolie_0002.jpg"  # 250x250, a second face in the background
AJ_BIG = "Angelina_Jolie/deepface_img2.jpg"  # 1536x1152
OBAMA = "Barack_Obama/face_recognition_obama.jpg"  # 910x1137
OBAMA_720 = "Barack_Obama/face_recognition_obama-720p.jpg"  # 1280x720
MADONNA_1 = "Madonna/opencv-course_train_1.jpg"  # 214x317
ELTON_1 = "Elton_John/opencv-course_train_1.jpg"  # 300x202, same file name as MADONNA_1
MADONNA_2 = "Madonna/Madonna_0002.jpg"  # 250x250
CLINTON = "Bill_Clinton/Bill_Clinton_0001.jpg"  # 250x250
FACES = {
    AJ1: [(67.1, 61.1, 164.8, 192.3, 1.0)],
    AJ2: [(78.1, 66.7, 167.1, 182.8, 1.0), (183.5, 37.9, 229.2, 107.7, 0.9622)],
    AJ_BIG: [(596.4, 154.0, 968.3, 694.8, 0.9993)],
    OBAMA: [(368.6, 78.6, 614.6, 424.3, 0.9999)],
    OBAMA_720: [(583.6, 54.0, 745.0, 280.5, 0.9999)],
    MADONNA_1: [(58.1, 45.0, 149.5, 162.1, 1.0)],
    ELTON_1: [(108.3, 46.4, 141.8, 90.5, 0.9964)],
    MADONNA_2: [(91.2, 66.1, 178.0, 184.7, 0.9997)],
    CLINTON: [(75.8, 66.2, 166.5, 184.4, 1.0)],
}
ALL_PHOTOS = list(FACES)


def face(root: Path | str, face_id: int, rel: str, k: int = 0, distance=None) -> ReportFace:
    *box, prob = FACES[rel][k]
    return ReportFace(face_id, f"{root}/{rel}", tuple(box), prob, distance)


def make_grouping(root: Path | str) -> Grouping:
    """Four people (two called Madonna, one unnamed) and one unknown face."""

    def f(face_id: int, rel: str, distance: float | None = None, k: int = 0) -> ReportFace:
        return face(root, face_id, rel, k, distance)

    angelina = (f(1, AJ1, np.float32(0.21234)), f(2, AJ2, 0.3), f(3, AJ_BIG, 0.45678))
    obama = (f(4, OBAMA, 0.1), f(5, OBAMA_720, 0.12))
    # ELTON_1 is misclustered here, and has the same file name as MADONNA_1.
    madonna = (f(6, MADONNA_1, 0.2), f(7, MADONNA_2, 0.25), f(8, ELTON_1, 0.91))
    persons = (
        ReportPerson(1, "Angelina Jolie", angelina),
        ReportPerson(7, None, obama),
        ReportPerson(3, "Madonna", madonna),
        ReportPerson(4, "Madonna", (f(9, CLINTON, 0.0),)),
    )
    params = {"method": "agglomerative", "threshold": np.float64(0.8), "linkage": "average"}
    params["min_cluster_size"] = 2
    return Grouping(persons, (f(10, AJ2, k=1),), "facenet-vggface2", params)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A private copy of the photos above, so hard links stay on one file system."""
    lib = tmp_path / "library"
    for rel in ALL_PHOTOS:
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(DEV / rel, lib / rel)
    return lib


def snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_mode)
    return out


def listing(out: Path) -> dict[str, list[str]]:
    return {
        d.name: sorted(e.name for e in d.iterdir() if e.name != OUTPUT_MARKER)
        for d in sorted(out.iterdir())
        if d.is_dir()
    }


def siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


# --- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Anna", "Anna"),
        ("  Anna   Maria ", "Anna Maria"),
        ("a/b", "a_b"),
        ("a\\b", "a_b"),
        ("../../etc", "etc"),
        ("..", "person"),
        ("...", "person"),
        ("", "person"),
        (".hidden", "hidden"),
        ("CON", "CON_"),
        ("con.jpg", "con_.jpg"),
        ("nul", "nul_"),
        ("Zoe\u0308", "Zo\u00eb"),
        ("a\x00b\x1fc", "a_b_c"),
        ("line\nbreak\ttab", "line break tab"),
        ("evil\u202egpj.exe", "evilgpj.exe"),
        ('what?*:"<>|', "what_"),
        ("trailing. ", "trailing"),
        ("IMG_0001.JPG", "IMG_0001.JPG"),
        ("x\udcffy", "x_y"),
    ],
)
def test_sanitize_name(name: str, expected: str) -> None:
    assert sanitize_name(name) == expected


@pytest.mark.parametrize("name", ["../../etc", "a/b", "", "CON", "...", "..\\..\\x", "é" * 300])
def test_sanitize_name_is_one_safe_component(name: str) -> None:
    out = sanitize_name(name)
    assert out and out not in (".", "..") and not out.startswith(".")
    assert "/" not in out and "\\" not in out and ".." not in out
    assert len(out) <= 100 and len(out.encode()) <= 255
    assert Path(out).name == out


def test_sanitize_name_keeps_extension_when_cutting() -> None:
    out = sanitize_name("x" * 300 + ".jpeg")
    assert len(out) == 100 and out.endswith("x.jpeg")


# --- folders ----------------------------------------------------------------------------


@shared
@pytest.mark.parametrize("layout", ["symlink", "hardlink", "copy"])
def test_export_folders(library: Path, tmp_path: Path, layout: str) -> None:
    grouping = make_grouping(library)
    before = snapshot(library)
    out = tmp_path / "people"

    stats = export_folders(grouping, out, layout)

    assert (stats.persons, stats.photos_linked, stats.unknown_photos) == (4, 9, 1)
    assert stats.out_dir == out and stats.missing == ()
    assert listing(out) == {
        "Angelina Jolie": [
            "Angelina_Jolie_0001.jpg",
            "Angelina_Jolie_0002.jpg",
            "deepface_img2.jpg",
        ],
        "Madonna": [
            "Madonna_0002.jpg",
            "opencv-course_train_1 (2).jpg",
            "opencv-course_train_1.jpg",
        ],
        "Madonna (2)": ["Bill_Clinton_0001.jpg"],
        "person_0007": ["face_recognition_obama-720p.jpg", "face_recognition_obama.jpg"],
        "unknown": ["Angelina_Jolie_0002.jpg"],
    }
    for folder in [out, *[d for d in out.iterdir() if d.is_dir()]]:
        assert (folder / OUTPUT_MARKER).is_file()
    marker = json.loads((out / OUTPUT_MARKER).read_text())
    assert marker["tool"] == "facecluster"

    # Each entry is the original: same bytes; a link to (or the inode of) the original.
    madonna = out / "Madonna"
    pairs = {
        madonna / "opencv-course_train_1.jpg": library / MADONNA_1,
        madonna / "opencv-course_train_1 (2).jpg": library / ELTON_1,
        out / "unknown" / "Angelina_Jolie_0002.jpg": library / AJ2,
    }
    for entry, original in pairs.items():
        assert entry.read_bytes() == original.read_bytes()
        if layout == "symlink":
            assert entry.is_symlink()
            assert os.readlink(entry) == str(original) and os.path.isabs(os.readlink(entry))
            assert entry.resolve() == original.resolve()
        elif layout == "hardlink":
            assert os.path.samefile(entry, original)
        else:
            assert not entry.is_symlink() and not os.path.samefile(entry, original)

    # Re-running replaces our entries (which unlinks every link or copy); originals untouched.
    export_folders(grouping, out, layout)
    shutil.rmtree(out)
    assert snapshot(library) == before


@shared
def test_photo_listed_once_per_person(library: Path, tmp_path: Path) -> None:
    # Two faces of one person in the same photo (one is a reflection, say): one entry.
    person = ReportPerson(2, "Anna", (face(library, 1, AJ2), face(library, 2, AJ2, k=1)))
    grouping = Grouping((person,), (), "m", {})
    stats = export_folders(grouping, tmp_path / "out")
    assert stats.photos_linked == 1
    assert listing(tmp_path / "out") == {"Anna": ["Angelina_Jolie_0002.jpg"]}
    d = report_dict(grouping)["persons"][0]
    assert (d["face_count"], d["photo_count"]) == (2, 1)


@shared
def test_folder_names_sanitised_and_unique(library: Path, tmp_path: Path) -> None:
    names = ["../../etc", "a/b", "", "CON", "...", "Unknown", "anna", "Anna", None]
    persons = tuple(
        ReportPerson(i, name, (face(library, i, CLINTON),)) for i, name in enumerate(names, 1)
    )
    grouping = Grouping(persons, (face(library, 99, AJ2, k=1),), "m", {})
    export_folders(grouping, tmp_path / "out")
    expected = [
        "etc",
        "a_b",
        "person_0003",
        "CON_",
        "person",
        "Unknown (2)",
        "anna",
        "Anna (2)",
        "person_0009",
    ]
    assert export.folder_names(grouping) == expected
    assert sorted(listing(tmp_path / "out")) == sorted([*expected, "unknown"])
    assert [p["folder"] for p in report_dict(grouping)["persons"]] == expected
    assert not (tmp_path / "etc").exists() and not (tmp_path.parent / "etc").exists()


@shared
def test_rerun_replaces_old_entries(library: Path, tmp_path: Path) -> None:
    out = tmp_path / "people"
    export_folders(make_grouping(library), out)
    renamed = Grouping(
        (ReportPerson(1, "Angie", (face(library, 1, AJ1),)),), (), "facenet-vggface2", {}
    )
    stats = export_folders(renamed, out)
    assert stats.photos_linked == 1
    assert listing(out) == {"Angie": ["Angelina_Jolie_0001.jpg"]}
    assert siblings(out) == []  # no .people.tmp-* or .people.old-* left behind
    assert (library / AJ1).is_file() and (library / AJ2).is_file()


@shared
def test_failure_while_building_keeps_old_tree(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "people"
    export_folders(make_grouping(library), out)
    before = listing(out)
    calls = []

    def flaky_symlink(src, dst, *args, **kwargs):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_symlink(src, dst, *args, **kwargs)

    real_symlink = os.symlink
    monkeypatch.setattr(os, "symlink", flaky_symlink)
    with pytest.raises(OutputError, match="No space left on device"):
        export_folders(make_grouping(library), out)
    assert listing(out) == before
    assert siblings(out) == []


@shared
def test_hardlink_across_devices_is_a_clear_error(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cross_device(src, dst, *args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    out = tmp_path / "people"
    with pytest.raises(OutputError) as err:
        export_folders(make_grouping(library), out, "hardlink")
    message = str(err.value)
    assert "\n" not in message
    assert "another file system" in message and "symlink or copy" in message
    assert isinstance(err.value, FaceclusterError) and err.value.exit_code == 2
    assert not out.exists() and siblings(out) == []


@shared
def test_refuses_foreign_folder(library: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not empty and was not written by facecluster"):
        export_folders(make_grouping(library), out)
    with pytest.raises(OutputError, match="not empty and was not written by facecluster"):
        write_html(make_grouping(library), out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert siblings(out) == []

    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        export_folders(make_grouping(library), a_file)

    link = tmp_path / "link"
    link.symlink_to(out)
    with pytest.raises(OutputError, match="symbolic link"):
        export_folders(make_grouping(library), link)


@shared
def test_empty_existing_folder_is_used(library: Path, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    export_folders(make_grouping(library), out)
    assert (out / OUTPUT_MARKER).is_file() and (out / "Madonna").is_dir()


@shared
def test_refuses_output_folder_holding_the_photos(library: Path) -> None:
    # Even with a marker in it, a folder that holds originals is never replaced.
    (library / OUTPUT_MARKER).write_text("{}")
    before = snapshot(library)
    with pytest.raises(OutputError, match="inside the output folder"):
        export_folders(make_grouping(library), library)
    with pytest.raises(OutputError, match="inside the output folder"):
        write_html(make_grouping(library), library)
    assert snapshot(library) == before


@shared
def test_missing_photo_is_skipped(library: Path, tmp_path: Path) -> None:
    (library / CLINTON).unlink()
    stats = export_folders(make_grouping(library), tmp_path / "out", "copy")
    assert stats.missing == (f"{library}/{CLINTON}",)
    assert listing(tmp_path / "out")["Madonna (2)"] == []


@shared
def test_unknown_layout(library: Path, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="unknown layout 'move'"):
        export_folders(make_grouping(library), tmp_path / "out", "move")


# --- report -----------------------------------------------------------------------------


def test_report_matches_golden() -> None:
    report = report_dict(make_grouping("photos"))
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert report == json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert json.dumps(report, indent=2, ensure_ascii=False) + "\n" == text  # JSON-ready


def test_schema_doc_example_matches_the_format() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "report-schema.md").read_text()
    example = json.loads(doc.split("```json\n", 1)[1].split("```", 1)[0])
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))

    def shape(value):
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items()}
        if isinstance(value, list):
            return shape(value[0]) if value and isinstance(value[0], dict) else "list"
        return "value"

    assert shape(example) == shape(golden)
    assert example["schema_version"] == export.REPORT_SCHEMA_VERSION


def test_write_report_is_atomic_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "report.json"
    grouping = make_grouping("photos")
    previous = Grouping(grouping.persons[:1], (), "dlib-resnet", {})
    write_report(previous, path)  # a new file, parents made
    assert json.loads(path.read_text(encoding="utf-8")) == report_dict(previous)
    write_report(grouping, path)  # over a previous report: replaced
    assert json.loads(path.read_text(encoding="utf-8")) == report_dict(grouping)
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]


def test_write_report_failure_leaves_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "report.json"
    write_report(Grouping((), (), "old-model", {}), path)
    old = path.read_bytes()

    def fail(*args):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OutputError, match="cannot write report"):
        write_report(make_grouping("photos"), path)
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


# --- html -------------------------------------------------------------------------------


class Page(HTMLParser):
    """Collects what the tests check: sections, images, links, titles, text."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.imgs: list[dict[str, str | None]] = []
        self.links: list[dict[str, str | None]] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.sections.append(a.get("id") or "")
        elif tag == "img":
            self.imgs.append(a)
        elif tag == "a":
            self.links.append(a)

    def handle_data(self, data):
        self.text.append(data)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


def thumbs_of(out: Path) -> list[Path]:
    return sorted((out / "thumbs").glob("*.jpg"))


@shared
def test_html_sheet(library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[bytes] = []
    real_decode = sheet.decode

    def counting_decode(data, *args, **kwargs):
        decoded.append(hashlib.sha256(data).digest())
        return real_decode(data, *args, **kwargs)

    monkeypatch.setattr(sheet, "decode", counting_decode)
    out = tmp_path / "sheet"
    before = snapshot(library)
    index = write_html(make_grouping(library), out, thumb_size=96)

    assert index == out / "index.html"
    assert (out / OUTPUT_MARKER).is_file()
    assert len(decoded) == len(set(decoded)) == len(ALL_PHOTOS)  # AJ2 (2 faces) read once
    thumbs = thumbs_of(out)
    assert len(thumbs) == 10
    for t in thumbs:
        with Image.open(t) as im:
            assert im.format == "JPEG" and max(im.size) == 96 and min(im.size) >= 60
    page = parse(index.read_text(encoding="utf-8"))
    assert page.sections == ["person-1", "person-7", "person-3", "person-4", "unknown"]
    assert sorted(Path(i["src"]).name for i in page.imgs) == [t.name for t in thumbs]
    assert not {"script", "link", "iframe"} & set(page.tags)
    hrefs = [a["href"] for a in page.links]
    assert (library / AJ_BIG).as_uri() in hrefs
    assert all(h.startswith("file:///") for h in hrefs)
    titles = [a["title"] for a in page.links]
    assert f"{library / AJ1} (distance 0.2123)" in titles
    assert str(library / AJ2) in titles  # the unknown face: no distance
    text = " ".join(page.text)
    assert "Angelina Jolie" in text and "person_0007" in text and "Madonna (2)/" in text
    assert "agglomerative" in text
    assert "http://" not in index.read_text() and "https://" not in index.read_text()
    assert snapshot(library) == before


@shared
@pytest.mark.parametrize("variant", ["plain", "draft", "exif_rotated"])
def test_html_thumbnail_shows_the_face(
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
    write_html(Grouping((person,), (), "m", {}), tmp_path / "s", thumb_size=64)
    with Image.open(tmp_path / "s" / "thumbs" / "face_1.jpg") as im:
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
    assert sheet.crop_region((0, 0, 100, 100), 1.0, (80, 60, 3)) == (0, 0, 60, 80)
    assert sheet.crop_region((100, 100, 200, 200), 0.5, (1000, 1000, 3)) == (43, 43, 107, 107)
    assert sheet.crop_region((500, 500, 600, 600), 1.0, (100, 100, 3)) is None
    assert sheet.crop_region((10, 10, 10, 50), 1.0, (100, 100, 3)) is None


@shared
def test_html_escapes_everything(library: Path, tmp_path: Path) -> None:
    weird = library / 'we"ird&<dir>' / 'a"b&c<d>e.jpg'
    weird.parent.mkdir()
    shutil.copy2(library / AJ1, weird)
    name = "<script>alert(1)</script>"
    person = ReportPerson(5, name, (ReportFace(1, str(weird), FACES[AJ1][0][:4], 1.0, 0.5),))
    grouping = Grouping((person,), (), "<u>model</u>", {"<em>k": "<i>x</i>"})
    text = write_html(grouping, tmp_path / "sheet").read_text(encoding="utf-8")

    for tag in ("<script", "<u>", "<em>", "<i>"):
        assert tag not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert '"&<>' not in text and 'we"ird' not in text
    assert "we&quot;ird&amp;&lt;dir&gt;" in text
    page = parse(text)
    assert not {"script", "u", "em", "i"} & set(page.tags)
    assert name in " ".join(page.text)  # shown as text, literally
    (link,) = page.links
    assert link["title"] == f"{weird} (distance 0.5000)"  # attribute round-trips
    assert link["href"] == weird.as_uri() and '"' not in link["href"]
    assert page.imgs[0]["alt"] == link["title"]


@shared
def test_html_placeholder_for_unreadable_photo(library: Path, tmp_path: Path) -> None:
    broken = library / "broken.jpg"
    broken.write_bytes((library / AJ1).read_bytes()[:300])  # truncated JPEG
    faces = (
        ReportFace(1, str(broken), (70, 70, 180, 180), 0.99, 0.2),
        ReportFace(2, str(library / "gone.jpg"), (70, 70, 180, 180), 0.99, 0.3),
        ReportFace(3, str(library / AJ1), FACES[AJ1][0][:4], 1.0, 0.1),
    )
    index = write_html(Grouping((ReportPerson(1, "A", faces),), (), "m", {}), tmp_path / "s")
    page = parse(index.read_text(encoding="utf-8"))
    assert len(page.imgs) == 1 and [t.name for t in thumbs_of(tmp_path / "s")] == ["face_3.jpg"]
    assert index.read_text().count('class="ph"') == 2
    assert len(page.links) == 3


@shared
def test_html_caps_faces_per_person(library: Path, tmp_path: Path) -> None:
    faces = tuple(face(library, i, rel) for i, rel in enumerate([AJ1, AJ2, AJ_BIG, CLINTON]))
    grouping = Grouping((ReportPerson(1, "A", faces),), faces[:3], "m", {})
    index = write_html(grouping, tmp_path / "s", max_faces_per_person=2)
    text = index.read_text(encoding="utf-8")
    assert len(parse(text).imgs) == 4 and len(thumbs_of(tmp_path / "s")) == 4
    assert "+2 more" in text and "+1 more" in text
    assert "4 faces" in text


@shared
def test_html_rerun_replaces_sheet(library: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    write_html(make_grouping(library), out)
    person = ReportPerson(1, "Solo", (face(library, 42, CLINTON),))
    write_html(Grouping((person,), (), "m", {}), out)
    assert [t.name for t in thumbs_of(out)] == ["face_42.jpg"]
    assert siblings(out) == []


# --- browser ----------------------------------------------------------------------------


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def run_chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        "--force-color-profile=srgb",
        "--virtual-time-budget=10000",
        f"--user-data-dir={profile}",
        *args,
    ]
    env = {**os.environ, "HOME": str(profile)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)


@shared
@pytest.mark.browser
def test_html_renders_in_headless_chromium(library: Path, tmp_path: Path) -> None:
    browser = find_chromium()
    if browser is None:
        pytest.skip("headless browser test needs Chromium: apt-get install chromium")
    weird = library / 'we"ird&<dir>' / "<img src=x onerror=alert(1)>.jpg"
    weird.parent.mkdir()
    shutil.copy2(library / CLINTON, weird)
    evil_face = replace(face(library, 11, CLINTON, distance=0.3), photo=str(weird))
    evil = ReportPerson(5, "<script>alert(1)</script>", (evil_face,))
    base = make_grouping(library)
    grouping = replace(base, persons=(*base.persons, evil))
    index = write_html(grouping, tmp_path / "sheet")
    n_thumbs = len(thumbs_of(tmp_path / "sheet"))
    shot = Path(os.environ.get("FACECLUSTER_SCREENSHOT", tmp_path / "shot.png"))
    shot.parent.mkdir(parents=True, exist_ok=True)
    shot.unlink(missing_ok=True)

    run = run_chromium(
        browser,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1200,900",
        index.as_uri(),
    )
    assert shot.is_file(), f"no screenshot; chromium said:\n{run.stderr[-2000:]}"
    with Image.open(shot) as im:
        rgb = np.asarray(im.convert("RGB")).astype(np.int16)
    assert rgb.shape[:2] == (900, 1200)
    colours = np.unique(rgb.reshape(-1, 3), axis=0)
    # Text and the grey palette give ~1,500 colours; the visible thumbnails ~60,000.
    assert len(colours) > 10_000, f"page looks blank or has no photos ({len(colours)} colours)"
    # The page's own palette is greys; photo pixels (skin, hair, backgrounds) are not.
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    coloured = int((chroma > 30).sum())
    assert coloured > 3 * 112 * 112, f"thumbnails did not render ({coloured} colourful px)"

    dom = run_chromium(browser, tmp_path / "profile", "--dump-dom", index.as_uri())
    page = parse(dom.stdout)
    sections = ["person-1", "person-7", "person-3", "person-4", "person-5", "unknown"]
    assert page.sections == sections, dom.stderr[-2000:]
    assert len(page.imgs) == n_thumbs == 11
    assert all(i["src"].startswith("thumbs/face_") for i in page.imgs)
    assert not {"script", "iframe"} & set(page.tags)
    assert "<script>alert(1)</script>" in " ".join(page.text)  # rendered as text
