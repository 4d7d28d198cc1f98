"""group and people end to end: real photos, rescans, names and merges that survive."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from facecluster.cli import app

from .conftest import DEV, copy_photos

pytestmark = [pytest.mark.shared_data, pytest.mark.model]
runner = CliRunner()


def run(*args: str) -> dict | list:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def person_of(db, photo_name: str) -> int:
    for p in run("people", "--db", str(db)):
        shown = run("people", "--db", str(db), "show", str(p["id"]))
        if any(f["photo"].endswith(photo_name) for f in shown["faces"]):
            return p["id"]
    raise AssertionError(f"{photo_name} not assigned")


def test_names_and_merges_survive_rescan_and_regroup(tmp_path):
    lib = copy_photos(tmp_path / "photos", {"Colin_Powell": 6, "Tony_Blair": 6,
                                            "Serena_Williams": 4, "Tom_Hanks": 3})
    db = tmp_path / "faces.db"
    run("scan", str(lib), "--db", str(db))
    first = run("group", "--db", str(db))
    assert first["persons"] >= 4 and first["unknown"] <= first["faces"] - 19

    powell = person_of(db, sorted((lib / "Colin_Powell").iterdir())[0].name)
    blair = person_of(db, sorted((lib / "Tony_Blair").iterdir())[0].name)
    hanks = person_of(db, sorted((lib / "Tom_Hanks").iterdir())[0].name)
    run("people", "--db", str(db), "name", str(powell), "Colin Powell")
    run("people", "--db", str(db), "merge", str(blair), str(hanks))  # a wrong merge, on purpose

    # New photos arrive, one is deleted; rescan and regroup.
    for src in sorted((DEV / "Colin_Powell").iterdir())[6:9]:
        shutil.copy2(src, lib / "Colin_Powell" / src.name)
    sorted((lib / "Tony_Blair").iterdir())[0].unlink()
    scan = run("scan", str(lib), "--db", str(db))
    assert scan["photos_new"] == 3 and scan["photos_removed"] == 1
    run("group", "--db", str(db))

    people = {p["id"]: p for p in run("people", "--db", str(db))}
    assert people[powell]["name"] == "Colin Powell" and people[powell]["photos"] == 9
    assert person_of(db, sorted((lib / "Tony_Blair").iterdir())[0].name) == blair
    assert person_of(db, sorted((lib / "Tom_Hanks").iterdir())[0].name) == blair
    assert hanks not in people


def test_group_outputs_and_threshold_warning(tmp_path):
    lib = copy_photos(tmp_path / "photos", {"Colin_Powell": 4, "Tony_Blair": 4})
    db = tmp_path / "faces.db"
    run("scan", str(lib), "--db", str(db))
    out = run("group", "--db", str(db), "--out", str(tmp_path / "people"),
              "--report", str(tmp_path / "report.json"), "--html", str(tmp_path / "html"))
    assert out["persons"] == 2 and out["warnings"] == []
    folders = sorted(p.name for p in (tmp_path / "people").iterdir() if not p.name.startswith("."))
    # Background faces (a stranger behind Powell) go to unknown/, never to a person.
    assert folders[:2] == ["person_0001", "person_0002"] and set(folders[2:]) <= {"unknown"}
    links = list((tmp_path / "people" / "person_0001").iterdir())
    assert all(p.is_symlink() and p.resolve().parent.parent == lib for p in links
               if not p.name.startswith("."))
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["schema_version"] == 1 and report["counts"]["persons"] == 2
    assert (tmp_path / "html" / "index.html").is_file()

    # The FaceNet paper's 1.1 would merge everyone with this encoder: a warning says so.
    result = runner.invoke(app, ["group", "--db", str(db), "--threshold", "1.1"])
    assert result.exit_code == 0 and "far from dlib-resnet's calibrated 0.155" in result.stderr


def test_group_on_an_empty_or_missing_database_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["group", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2 and "no face database" in result.stderr
    result = runner.invoke(app, ["people", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2
