"""export.py on real photos: folders and report (golden JSON); the page is tests/test_page.py.

Regenerate the golden report with ``UPDATE_GOLDEN=1 pytest tests/test_export.py``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from facecluster import export
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


