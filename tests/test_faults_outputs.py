"""Fault cases for the outputs of `group`: --report, --out and --html aimed at files and
folders that are not facecluster's. Every user file must stay byte for byte; every refusal
is one line with exit code 2.

Most cases use a Grouping of real dev photos (fast); one runs the CLI on a scanned set.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facecluster import outputs
from facecluster.cache import FaceCache
from facecluster.cli import app
from facecluster.export import (
    Grouping,
    OutputError,
    ReportPerson,
    check_output_paths,
    database_files,
    export_folders,
    report_dict,
    write_html,
    write_report,
    write_sheet,
)
from facecluster.scan import OUTPUT_MARKER, walk

from .conftest import copy_photos
from .test_export import AJ1, ALL_PHOTOS, CLINTON, DEV, face, make_grouping

pytestmark = [pytest.mark.shared_data, pytest.mark.fault]


@pytest.fixture
def library(tmp_path: Path) -> Path:
    lib = tmp_path / "library"
    for rel in ALL_PHOTOS:
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(DEV / rel, lib / rel)
    return lib


def state(root: Path) -> dict[str, tuple]:
    """Every entry under root (links not followed): kind, content hash or target, mtime."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if p.is_symlink():
                out[str(p)] = ("link", os.readlink(p))
            elif p.is_dir():
                out[str(p)] = ("dir",)
            else:
                out[str(p)] = ("file", hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mtime_ns)
    return out


def refused(call, *match: str) -> str:
    """Run call; it must raise a one-line OutputError (exit code 2) saying each of match."""
    with pytest.raises(OutputError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message and err.value.exit_code == 2
    for m in match:
        assert m in message, message
    return message


def user_files(out: Path) -> dict[str, bytes]:
    """Files a user adds to an output folder, as (path -> bytes)."""
    files = {
        "MY_NOTES.txt": b"who is who\n",
        "MyAlbum/keep.txt": b"keep me\n",
        "MyAlbum/best.jpg": (DEV / CLINTON).read_bytes(),
        "person_0007/my_edit.jpg": (DEV / AJ1).read_bytes()[:5000],
    }
    for rel, data in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    return files


# --- --report --------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["photo_of_grouping", "photo_without_face"])
def test_report_over_a_photo_is_refused(fault, library: Path, target: str) -> None:
    fault("report", f"--report over a photo of the index ({target})", "photo unchanged")
    grouping = make_grouping(library)
    photo = library / AJ1
    if target == "photo_without_face":
        grouping = Grouping(grouping.persons[1:], (), "m", {})  # AJ1 is in no face
    before = state(library)
    why = "is a photo of the index" if target == "photo_of_grouping" else "is an image"
    refused(lambda: write_report(grouping, photo), why, "new file")
    assert state(library) == before


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", ".lock"])
def test_report_over_the_database_is_refused(fault, library: Path, suffix: str) -> None:
    fault("report", f"--report over the database{suffix or ' file'}", "database unchanged")
    db = library.parent / "faces.db"
    cache = FaceCache(db)
    cache.lock()  # an open, locked database: faces.db, -wal, -shm and .lock all exist
    try:
        target = Path(str(db) + suffix)
        assert target.exists()
        before = state(library.parent)
        refused(
            lambda: write_report(make_grouping(library), target, protect=database_files(db)),
            "face database",
        )
        # Without being told where the database is, its content refuses it all the same.
        refused(lambda: write_report(make_grouping(library), target), "not a facecluster report")
        assert state(library.parent) == before
    finally:
        cache.close()


def test_report_over_a_symlink_is_refused(fault, library: Path, tmp_path: Path) -> None:
    fault("report", "--report over a symlink (to a previous report)", "link and target unchanged")
    real = tmp_path / "real.json"
    write_report(make_grouping(library), real)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    before = state(tmp_path)
    refused(lambda: write_report(make_grouping(library), link), "symbolic link")
    assert state(tmp_path) == before


@pytest.mark.parametrize(
    "content",
    [b"my notes, not JSON\n", b'{"schema": "something-else", "x": 1}\n', b"[1, 2]\n", b""],
)
def test_report_over_a_user_file_is_refused(
    fault, library: Path, tmp_path: Path, content: bytes
) -> None:
    fault("report", "--report over a user's file (text, other JSON, empty)", "file unchanged")
    target = tmp_path / "notes.json"
    target.write_bytes(content)
    before = state(tmp_path)
    refused(
        lambda: write_report(make_grouping(library), target),
        "not a facecluster report",
        "choose a new file name",
    )
    assert state(tmp_path) == before


def test_report_over_a_folder_is_refused(fault, library: Path, tmp_path: Path) -> None:
    fault("report", "--report over a folder", "folder unchanged")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.txt").write_text("x")
    before = state(tmp_path)
    refused(lambda: write_report(make_grouping(library), tmp_path / "dir"), "is a folder")
    assert state(tmp_path) == before


def test_report_over_a_previous_report_is_replaced(fault, library: Path, tmp_path: Path) -> None:
    fault("report", "--report over a previous report", "replaced by the new report")
    path = tmp_path / "report.json"
    old = Grouping((ReportPerson(1, "Old", (face(library, 1, CLINTON),)),), (), "m", {})
    write_report(old, path)
    grouping = make_grouping(library)
    write_report(grouping, path)
    assert json.loads(path.read_text(encoding="utf-8")) == report_dict(grouping)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["library", "report.json"]


# --- --out -----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["symlink", "copy"])
def test_out_rerun_keeps_user_files(fault, library: Path, tmp_path: Path, layout: str) -> None:
    fault(
        "out",
        f"--out re-run ({layout}) over user notes, folders, added, edited and replaced files",
        "all kept byte for byte and reported; our entries replaced",
    )
    out = tmp_path / "people"
    export_folders(make_grouping(library), out, layout)
    added = user_files(out)
    edited = out / "Madonna" / "Madonna_0002.jpg"
    replaced = out / "Angelina Jolie" / "Angelina_Jolie_0001.jpg"
    if layout == "copy":
        with open(edited, "ab") as f:  # edited in place: size and mtime change
            f.write(b"edit")
    else:
        edited.unlink()
        edited.write_bytes(b"my own version")
    replaced.unlink()
    replaced.write_bytes(b"replaced by the user")
    keep = {str(out / rel) for rel in added} | {str(edited), str(replaced)}
    before = {p: state(out)[p] for p in keep}
    before_lib = state(library)

    stats = export_folders(make_grouping(library), out, layout)

    assert {p: state(out)[p] for p in keep} == before
    assert {str(p) for p in stats.kept} == {
        str(out / "MY_NOTES.txt"),
        str(out / "MyAlbum"),
        str(out / "person_0007" / "my_edit.jpg"),
        str(edited),
        str(replaced),
    }
    # The new entries that would have taken the kept names got the next free name.
    assert (out / "Madonna" / "Madonna_0002 (2).jpg").read_bytes() == (
        library / "Madonna/Madonna_0002.jpg"
    ).read_bytes()
    assert (out / "Angelina Jolie" / "Angelina_Jolie_0001 (2).jpg").exists()
    assert stats.photos_linked == 9 and state(library) == before_lib
    assert not [p for p in out.iterdir() if p.name.startswith(".facecluster-staging")]
    # And again: the kept files stay kept, our entries are still ours.
    again = export_folders(make_grouping(library), out, layout)
    assert set(again.kept) == set(stats.kept)
    assert {p: state(out)[p] for p in keep} == before


@pytest.mark.parametrize("layout", ["symlink", "copy"])
def test_photo_name_not_utf8(fault, library: Path, tmp_path: Path, layout: str) -> None:
    fault(
        "out",
        f"--out ({layout}) of a photo whose file name is not UTF-8, run twice",
        "written, listed and replaced like any other; the photo unchanged",
    )
    photo = library / os.fsdecode(b"caf\xe9.jpg")
    shutil.copy2(library / CLINTON, photo)
    person = ReportPerson(1, "Bill", (replace(face(library, 1, CLINTON), photo=str(photo)),))
    grouping = Grouping((person,), (), "m", {})
    out = tmp_path / "people"
    before = state(library)
    export_folders(grouping, out, layout)
    (entry,) = [p for p in (out / "Bill").iterdir() if p.name != OUTPUT_MARKER]
    assert entry.read_bytes() == photo.read_bytes()
    assert export_folders(grouping, out, layout).kept == ()
    assert sorted(p.name for p in (out / "Bill").iterdir()) == [OUTPUT_MARKER, entry.name]
    assert state(library) == before


def test_renamed_person_keeps_the_old_folder_only_for_user_files(
    fault, library: Path, tmp_path: Path
) -> None:
    fault(
        "out",
        "persons renamed between --out runs, a user file in an old folder",
        "old folder holds only the user file; the other old folders are gone",
    )
    out = tmp_path / "people"
    export_folders(make_grouping(library), out)
    (out / "Madonna" / "notes.txt").write_text("Madonna's albums")
    renamed = Grouping(
        (ReportPerson(3, "Madonna Ciccone", (face(library, 6, "Madonna/Madonna_0002.jpg"),)),),
        (),
        "m",
        {},
    )
    stats = export_folders(renamed, out)
    assert stats.kept == (out / "Madonna" / "notes.txt",)
    assert sorted(p.name for p in out.iterdir()) == [OUTPUT_MARKER, "Madonna", "Madonna Ciccone"]
    assert [p.name for p in (out / "Madonna").iterdir()] == ["notes.txt"]
    assert (out / "Madonna" / "notes.txt").read_text() == "Madonna's albums"
    # The user empties the old folder: the next run removes it.
    (out / "Madonna" / "notes.txt").unlink()
    assert export_folders(renamed, out).kept == ()
    assert not (out / "Madonna").exists()


@pytest.mark.parametrize(
    "marker",
    [
        "",
        "{}",
        '{"tool": "facecluster", "kind": "folders", "created": "2024-01-01"}',
        '{"schema": "facecluster-output", "version": 1, "kind": "folders", "entries": '
        '[{"path": "MY_NOTES.txt", "kind": "file", "ino": 1, "size": 11, "mtime_ns": 1}]}',
    ],
    ids=["empty", "braces", "old-format", "forged-entries"],
)
def test_planted_marker_authorises_nothing(
    fault, library: Path, tmp_path: Path, marker: str
) -> None:
    fault(
        "out",
        "--out into a folder of the user's holding a planted .facecluster-output",
        "refused; every file unchanged",
    )
    out = tmp_path / "mine"
    out.mkdir()
    user_files(out)
    (out / OUTPUT_MARKER).write_text(marker)
    before = state(out)
    refused(lambda: export_folders(make_grouping(library), out), str(out), "folder")
    refused(lambda: write_html(make_grouping(library), out), str(out))
    assert state(out) == before


def test_unreadable_folder_in_output_is_an_error(
    fault, library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault("out", "--out re-run with a user folder it cannot read", "one-line error; kept")
    out = tmp_path / "people"
    export_folders(make_grouping(library), out)
    (out / "private").mkdir()
    (out / "private" / "a.txt").write_text("secret")
    real_scandir = os.scandir

    def scandir(path=".", *args):  # chmod 000 does not stop root, who runs CI here
        if Path(path).name == "private":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path, *args)

    monkeypatch.setattr(os, "scandir", scandir)
    before = state(out)
    refused(lambda: export_folders(make_grouping(library), out), "cannot read", "private")
    assert state(out) == before
    monkeypatch.undo()
    assert (out / "private" / "a.txt").read_text() == "secret"


def test_marker_alone_in_a_folder_is_not_ours(fault, library: Path, tmp_path: Path) -> None:
    fault("out", "--out into a folder holding only a planted marker", "refused; marker unchanged")
    out = tmp_path / "mine"
    out.mkdir()
    (out / OUTPUT_MARKER).write_text("{}")
    before = state(out)
    refused(lambda: export_folders(make_grouping(library), out), "not empty", "new or empty")
    assert state(out) == before


def test_out_and_html_in_one_folder_are_refused(fault, library: Path, tmp_path: Path) -> None:
    fault(
        "out",
        "--out and --html the same folder; --report inside --out; --html over an --out folder",
        "refused before writing; nothing changed",
    )
    out = tmp_path / "people"
    refused(lambda: check_output_paths(out, out, None), "same folder")
    refused(lambda: check_output_paths(out, tmp_path / "." / "people", None), "same folder")
    refused(lambda: check_output_paths(out, None, out / "report.json"), "inside the --out")
    refused(lambda: check_output_paths(None, out, out / "r.json"), "inside the --html")
    assert not out.exists()
    export_folders(make_grouping(library), out)
    before = state(out)
    refused(lambda: write_html(make_grouping(library), out), "holds person folders")
    assert state(out) == before
    sheet = tmp_path / "sheet"
    write_html(make_grouping(library), sheet)
    before = state(sheet)
    refused(lambda: export_folders(make_grouping(library), sheet), "holds an HTML sheet")
    assert state(sheet) == before


def test_out_holding_photos_or_database_is_refused(fault, library: Path, tmp_path: Path) -> None:
    fault(
        "out",
        "--out/--html at a photo folder, an ancestor of the photos, or the database's folder",
        "refused; photos and database unchanged",
    )
    grouping = make_grouping(library)
    db = tmp_path / "data" / "faces.db"
    FaceCache(db).close()
    protect = database_files(db)
    before = state(tmp_path)
    for folder in (library / "Madonna", library, tmp_path):
        refused(lambda f=folder: export_folders(grouping, f, protect=protect), "inside the output")
        refused(lambda f=folder: write_html(grouping, f, protect=protect), "inside the output")
    refused(lambda: export_folders(grouping, db.parent, protect=protect), "face database")
    refused(lambda: check_output_paths(db.parent, None, None, protect), "face database")
    refused(lambda: check_output_paths(None, None, db, protect), "face database")
    assert state(tmp_path) == before


def test_scan_never_reads_an_output_folder_back(fault, library: Path) -> None:
    fault(
        "out",
        "--out (copies) and --html inside the photo library, then a scan's walk",
        "the walk skips both folders: no copy or thumbnail is taken for a photo",
    )
    before = {e.path for e in walk([library])}
    export_folders(make_grouping(library), library / "People", "copy")
    write_html(make_grouping(library), library / "Sheet")
    assert len(list((library / "People").rglob("*.jpg"))) == 10
    assert {e.path for e in walk([library])} == before


# --- --html ----------------------------------------------------------------------------


def test_html_rerun_keeps_user_files(fault, library: Path, tmp_path: Path) -> None:
    fault(
        "html",
        "--html re-run with user files beside index.html and in thumbs/",
        "kept byte for byte and reported; our page and thumbnails replaced",
    )
    out = tmp_path / "sheet"
    write_html(make_grouping(library), out)
    (out / "notes.txt").write_text("my notes")
    (ours,) = (out / "thumbs").glob("face_1_*.jpg")
    ours.unlink()
    shutil.copy2(DEV / CLINTON, ours)  # the user's own picture, under our thumbnail's name
    keep = [out / "notes.txt", ours]
    before = {str(p): state(out)[str(p)] for p in keep}

    stats = write_sheet(make_grouping(library), out)

    assert {str(p): state(out)[str(p)] for p in keep} == before
    assert set(stats.kept) == set(keep)
    page = stats.index.read_text(encoding="utf-8")
    assert f"thumbs/{ours.stem}_2.jpg" in page and f"thumbs/{ours.name}" not in page
    # An edited page is the user's: refused, not overwritten.
    (out / "index.html").write_text("<p>my page</p>")
    before = state(out)
    refused(lambda: write_html(make_grouping(library), out), "index.html is in the way")
    after = state(out)
    manifest = str(out / OUTPUT_MARKER)  # ours: rewritten with the same bytes (a new mtime)
    assert after.pop(manifest)[:2] == before.pop(manifest)[:2]
    assert after == before


# --- interruptions ---------------------------------------------------------------------


def test_interrupted_swap_is_tidied_by_the_next_run(
    fault, library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault(
        "out",
        "--out re-run fails while moving the new entries into place",
        "user files kept; the next run finishes and leaves nothing behind",
    )
    out = tmp_path / "people"
    export_folders(make_grouping(library), out)
    added = user_files(out)
    calls = []
    real_move = outputs._move

    def failing_move(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        return real_move(src, dst)

    monkeypatch.setattr(outputs, "_move", failing_move)
    refused(lambda: export_folders(make_grouping(library), out), "run the same command again")
    monkeypatch.undo()
    for rel, data in added.items():
        assert (out / rel).read_bytes() == data
    stats = export_folders(make_grouping(library), out)
    for rel, data in added.items():
        assert (out / rel).read_bytes() == data
    assert len(stats.kept) == 3  # MY_NOTES.txt, MyAlbum/, person_0007/my_edit.jpg
    assert not [p for p in out.iterdir() if p.name.startswith(".facecluster-staging")]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [
            OUTPUT_MARKER,
            "Angelina Jolie",
            "Madonna",
            "Madonna (2)",
            "MY_NOTES.txt",
            "MyAlbum",
            "person_0007",
            "unknown",
        ]
    )


# --- the CLI, on a scanned set ---------------------------------------------------------


@pytest.mark.model
def test_cli_refusals_end_to_end(fault, tmp_path: Path) -> None:
    fault(
        "cli",
        "group --report over a photo and over faces.db; --out re-run with user "
        "files; a planted marker; --out equal to --html",
        "one line, exit 2 for refusals; user files and database byte for byte",
    )
    runner = CliRunner()
    lib = copy_photos(tmp_path / "photos", {"Colin_Powell": 3, "Tony_Blair": 3})
    db = tmp_path / "faces.db"
    assert runner.invoke(app, ["scan", str(lib), "--db", str(db), "--quiet"]).exit_code == 0

    def group(*args: str):
        return runner.invoke(app, ["group", "--db", str(db), *args])

    def one_line_error(result, says: str = "") -> None:
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert says in lines[0] and "Traceback" not in result.output

    photo = sorted((lib / "Colin_Powell").iterdir())[0]
    before = state(tmp_path)
    one_line_error(group("--report", str(photo)), "is an image")
    one_line_error(group("--report", str(db)), "face database")
    one_line_error(group("--out", str(tmp_path / "x"), "--html", str(tmp_path / "x")), "same")
    assert state(tmp_path) == before

    out = tmp_path / "people"
    assert group("--out", str(out)).exit_code == 0
    (out / "MY_NOTES.txt").write_text("notes")
    (out / "MyAlbum").mkdir()
    (out / "MyAlbum" / "keep.txt").write_text("keep")
    (out / "person_0001" / "my_edit.jpg").write_bytes(photo.read_bytes()[:1000])
    mine = {p: s for p, s in state(out).items() if "MY" in p or "my_" in p or "MyAlbum" in p}
    result = group("--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert {p: state(out)[p] for p in mine} == mine
    assert "kept 3 files that facecluster did not write" in result.stderr
    assert sorted(json.loads(result.stdout)["kept"]) == sorted(
        str(out / p) for p in ("MY_NOTES.txt", "MyAlbum", "person_0001/my_edit.jpg")
    )

    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / OUTPUT_MARKER).write_text("{}")
    (planted / "MY_NOTES.txt").write_text("notes")
    before = [state(planted), state(out), state(lib)]
    one_line_error(group("--out", str(planted)), "not written by facecluster")
    one_line_error(group("--html", str(out)), "holds person folders")
    one_line_error(group("--out", str(lib)), "inside the output folder")
    assert [state(planted), state(out), state(lib)] == before
