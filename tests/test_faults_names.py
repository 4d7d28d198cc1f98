"""Fault suite: names and corrections survive re-scans, unreadable folders and
exploratory regroups; odd file names scan like any other (the in-repo photos, real models)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facecluster.cli import app

from .conftest import copy_sample_people

pytestmark = [pytest.mark.model, pytest.mark.fault]
runner = CliRunner()
PEOPLE = {"Colin_Powell": 3, "Tony_Blair": 3, "Serena_Williams": 3}


def run(*args: str, code: int = 0) -> dict | list:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def persons(db: Path) -> dict[int, tuple[str | None, frozenset[str]]]:
    """person id -> (name, the photos of its faces)."""
    out = {}
    for p in run("people", "--db", str(db)):
        shown = run("people", "--db", str(db), "show", str(p["id"]))
        out[p["id"]] = (p["name"], frozenset(f["photo"] for f in shown["faces"]))
    return out


def person_with(db: Path, photo: Path) -> int:
    for pid, (_, photos) in persons(db).items():
        if str(photo) in photos:
            return pid
    raise AssertionError(f"{photo} has no person")


@pytest.fixture()
def library(tmp_path: Path) -> tuple[Path, Path]:
    lib = copy_sample_people(tmp_path / "photos", PEOPLE)
    db = tmp_path / "faces.db"
    run("scan", str(lib), "--db", str(db))
    run("group", "--db", str(db))
    return lib, db


def first(lib: Path, who: str) -> Path:
    return sorted((lib / who).iterdir())[0]


def test_a_name_survives_rescan(library, fault):
    fault("names", "people name, then scan --rescan, then group", "the person keeps its name, "
          "id and every face")
    lib, db = library
    anna = person_with(db, first(lib, "Serena_Williams"))
    run("people", "--db", str(db), "name", str(anna), "Anna")
    before = persons(db)[anna]
    scan = run("scan", str(lib), "--db", str(db), "--rescan")
    assert scan["photos_changed"] == sum(PEOPLE.values())
    run("group", "--db", str(db))
    assert persons(db)[anna] == before


def test_a_removed_face_stays_removed_after_the_photo_is_touched(library, fault):
    fault("names", "people remove-face, touch that photo, scan, group", "the face does not "
          "come back to the person")
    lib, db = library
    photo = first(lib, "Colin_Powell")
    pid = person_with(db, photo)
    face = next(f["face_id"] for f in run("people", "--db", str(db), "show", str(pid))["faces"]
                if f["photo"] == str(photo))
    run("people", "--db", str(db), "remove-face", str(face))
    os.utime(photo)
    assert run("scan", str(lib), "--db", str(db))["photos_changed"] == 1
    run("group", "--db", str(db))
    assert str(photo) not in persons(db)[pid][1]


@pytest.mark.parametrize("how", ["unreadable", "unmounted"])
def test_an_unavailable_folder_is_kept_not_removed(library, fault, how, monkeypatch):
    what = ("a folder that cannot be listed (permissions)" if how == "unreadable"
            else "a folder that is suddenly empty (a disk not mounted)")
    fault("scan", f"{what}, scan, then readable again, scan and group",
          "its photos are kept and reported, rc 0 (1 with --strict), and come back to their "
          "named person")
    lib, db = library
    folder = lib / "Serena_Williams"
    anna = person_with(db, first(lib, "Serena_Williams"))
    run("people", "--db", str(db), "name", str(anna), "Anna")
    before = persons(db)[anna]
    aside = lib.parent / "aside"
    if how == "unmounted":
        shutil.move(str(folder), str(aside))
        folder.mkdir()
    elif os.geteuid() != 0:
        folder.chmod(0)
    else:  # root reads any folder: make listing it fail as it does for a user
        real_scandir = os.scandir

        def scandir(path):
            if Path(path) == folder:
                raise PermissionError(13, "Permission denied", str(path))
            return real_scandir(path)

        monkeypatch.setattr("facecluster.scan.os.scandir", scandir)
    scan = run("scan", str(lib), "--db", str(db))
    assert scan["photos_removed"] == 0 and scan["photos_unavailable"] == 3
    assert [u["path"] for u in scan["unavailable"]] == [str(folder)]
    result = runner.invoke(app, ["scan", str(lib), "--db", str(db), "--strict"])
    assert result.exit_code == 1 and str(folder) in result.stderr
    # Back again.
    if how == "unmounted":
        folder.rmdir()
        shutil.move(str(aside), str(folder))
    elif os.geteuid() != 0:
        folder.chmod(0o755)
    else:
        monkeypatch.undo()
    scan = run("scan", str(lib), "--db", str(db))
    assert scan["photos_removed"] == 0 and scan["unavailable"] == []
    run("group", "--db", str(db))
    assert persons(db)[anna] == before


def test_an_exploratory_loose_threshold_merges_no_named_person_and_undo_restores(
    library, fault
):
    fault("names", "name three persons, group --threshold 1.1 (far too loose), then "
          "people undo", "named persons keep their faces; --dry-run saves nothing; undo "
          "brings back the grouping before")
    lib, db = library
    named = {}
    for who in PEOPLE:
        pid = person_with(db, first(lib, who))
        run("people", "--db", str(db), "name", str(pid), who.replace("_", " "))
        named[pid] = who
    before = persons(db)

    dry = run("group", "--db", str(db), "--threshold", "1.1", "--dry-run")
    assert dry["saved"] is False and persons(db) == before
    loose = run("group", "--db", str(db), "--threshold", "1.1")
    after = persons(db)
    for pid in named:
        assert after[pid][0] == before[pid][0] and after[pid][1] >= before[pid][1]
    assert not any(set(m["absorbed"]) for m in loose["changes"]["merged"]
                   if m["into"]["id"] in named and
                   any(a["id"] in named for a in m["absorbed"]))
    undone = run("people", "--db", str(db), "undo")
    assert undone["undone"].startswith("group --threshold 1.1")
    assert persons(db) == before


def test_a_file_name_that_is_not_utf8_scans_like_any_other(tmp_path, fault):
    fault("scan", "a photo named b'\\xff\\xfe' + 'x.jpg' (not UTF-8) among others",
          "it is scanned and grouped like any other, shown escaped, re-runs are clean")
    lib = copy_sample_people(tmp_path / "photos", {"Colin_Powell": 2})
    src = first(lib, "Colin_Powell")
    odd = Path(os.fsdecode(os.fsencode(lib) + b"/\xff\xfex.jpg"))
    shutil.copy2(src, odd)
    os.utime(src, (1, 1))  # another content-identical copy must not be taken as a move
    db = tmp_path / "faces.db"
    scan = run("scan", str(lib), "--db", str(db))
    assert scan["photos_total"] == 3 and scan["photos_failed"] == 0 and scan["faces"] >= 3
    again = runner.invoke(app, ["scan", str(lib), "--db", str(db)])
    assert again.exit_code == 0, again.output
    grouped = run("group", "--db", str(db), "--report", str(tmp_path / "r.json"))
    assert grouped["faces"] >= 3
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    photos = {f["photo"] for p in report["persons"] for f in p["faces"]}
    assert str(lib / "\\xff\\xfex.jpg") in photos  # shown escaped, as in every output
    listing = runner.invoke(app, ["people", "--db", str(db), "show", "1"])
    assert listing.exit_code == 0 and "Traceback" not in listing.output


def test_names_survive_a_change_of_the_default_encoder(tmp_path, fault):
    fault("names", "name a person under dlib-resnet, then scan and group with the new "
          "default encoder (auto: sface)", "the name and its faces carry over; the old "
          "encoder's persons are untouched")
    lib = copy_sample_people(tmp_path / "photos", PEOPLE)
    db = tmp_path / "faces.db"
    run("scan", str(lib), "--db", str(db), "--model", "dlib-resnet")
    run("group", "--db", str(db), "--model", "dlib-resnet")
    old = {p["id"]: p for p in run("people", "--db", str(db), "--model", "dlib-resnet")}
    serena = next(pid for pid, p in old.items() if any(
        "Serena" in f["photo"]
        for f in run("people", "--db", str(db), "--model", "dlib-resnet", "show",
                     str(pid))["faces"]))
    run("people", "--db", str(db), "--model", "dlib-resnet", "name", str(serena), "Serena")
    scan = run("scan", str(lib), "--db", str(db))  # auto: sface, from the cached faces
    assert scan["model"] != "dlib-resnet" and scan["photos_reembedded"] == 9
    assert (scan["persons_carried"], scan["persons_carried_from"]) == (1, "dlib-resnet")
    run("group", "--db", str(db))
    now = {p["name"]: p for p in run("people", "--db", str(db))}
    assert now["Serena"]["faces"] == old[serena]["faces"]
    before = run("people", "--db", str(db), "--model", "dlib-resnet")
    assert [p["name"] for p in before if p["name"]] == ["Serena"]
