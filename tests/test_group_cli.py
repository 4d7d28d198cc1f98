"""group and people end to end: real photos, rescans, names and merges that survive."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facecluster.cli import app

from .conftest import DEV, copy_photos, db_copy, sample_people

pytestmark = pytest.mark.model
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


def persons_by_photo(report: dict) -> dict[str, int]:
    return {Path(f["photo"]).name: p["id"] for p in report["persons"] for f in p["faces"]}


# --- the in-repo photos ----------------------------------------------------------------


def test_group_puts_each_person_together_and_different_people_apart(scanned_sample, tmp_path):
    db = db_copy(scanned_sample, tmp_path / "faces.db")
    out = run("group", "--db", str(db), "--report", str(tmp_path / "report.json"))
    people = sample_people()
    # The four people with several portraits each; the strangers of the group photo and
    # the one EXIF portrait have a single face each and stay unknown.
    assert out["persons"] == len(people) == 4 and out["warnings"] == []
    assert out["faces_assigned"] == sum(len(v) for v in people.values())
    where = persons_by_photo(json.loads((tmp_path / "report.json").read_text()))
    ids = {name: {where.get(p.name) for p in photos} for name, photos in people.items()}
    assert all(len(v) == 1 and None not in v for v in ids.values()), ids  # together
    assert len({next(iter(v)) for v in ids.values()}) == len(people)  # and apart


def test_a_name_survives_new_photos_a_deletion_and_a_regroup(tmp_path):
    people = sample_people()
    lib, db = tmp_path / "photos", tmp_path / "faces.db"
    held_back = people["Junichiro_Koizumi"][-1]
    for name, photos in people.items():
        (lib / name).mkdir(parents=True)
        for src in photos:
            if src != held_back:
                shutil.copy2(src, lib / name / src.name)
    run("scan", str(lib), "--db", str(db))
    run("group", "--db", str(db))
    powell = person_of(db, people["Colin_Powell"][0].name)
    koizumi = person_of(db, people["Junichiro_Koizumi"][0].name)
    run("people", "--db", str(db), "name", str(powell), "Colin Powell")
    run("people", "--db", str(db), "name", str(koizumi), "Junichiro Koizumi")

    shutil.copy2(held_back, lib / "Junichiro_Koizumi" / held_back.name)
    (lib / "Colin_Powell" / people["Colin_Powell"][-1].name).unlink()
    scan = run("scan", str(lib), "--db", str(db))
    assert scan["photos_new"] == 1 and scan["photos_removed"] == 1
    run("group", "--db", str(db))

    listed = {p["id"]: p for p in run("people", "--db", str(db))}
    assert listed[powell]["name"] == "Colin Powell"
    assert listed[powell]["photos"] == len(people["Colin_Powell"]) - 1
    assert listed[koizumi]["name"] == "Junichiro Koizumi"
    assert person_of(db, held_back.name) == koizumi
    assert listed[koizumi]["photos"] == len(people["Junichiro_Koizumi"])


def test_group_outputs_and_threshold_warning(scanned_sample, tmp_path):
    db, root = db_copy(scanned_sample, tmp_path / "faces.db"), scanned_sample.root
    out = run("group", "--db", str(db), "--out", str(tmp_path / "people"),
              "--report", str(tmp_path / "report.json"), "--html", str(tmp_path / "html"))
    assert out["persons"] == 4 and out["warnings"] == []
    folders = sorted(p.name for p in (tmp_path / "people").iterdir() if not p.name.startswith("."))
    # Faces of no one (the strangers of the group photo) go to unknown/, never to a person.
    assert folders == ["person_0001", "person_0002", "person_0003", "person_0004", "unknown"]
    links = [p for p in (tmp_path / "people" / "person_0001").iterdir()
             if not p.name.startswith(".")]
    assert links and all(p.is_symlink() and p.resolve().is_relative_to(root) for p in links)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["schema_version"] == 1 and report["counts"]["persons"] == 4
    assert (tmp_path / "html" / "index.html").is_file()

    # dlib-resnet's 0.155 would split everyone with this encoder: a warning says so.
    result = runner.invoke(app, ["group", "--db", str(db), "--threshold", "0.155"])
    assert result.exit_code == 0 and "far from sface's calibrated 1.24" in result.stderr
    assert "expect people split" in result.stderr


def test_group_on_an_empty_or_missing_database_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["group", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2 and "no face database" in result.stderr
    result = runner.invoke(app, ["people", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2


# --- the full shared sets ---------------------------------------------------------------


@pytest.mark.shared_data
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
    # His 9 photos and Tony_Blair_0026.jpg, where he sits behind Blair (sface finds him).
    assert people[powell]["name"] == "Colin Powell" and people[powell]["photos"] == 10
    assert person_of(db, sorted((lib / "Tony_Blair").iterdir())[0].name) == blair
    assert person_of(db, sorted((lib / "Tom_Hanks").iterdir())[0].name) == blair
    assert hanks not in people
