"""Names that travel, on real photos with the real detector and encoder: scan, group and
name; export-xmp; ExifTool (not facecluster) reads back the same names and boxes within
1 px, rotated photos included; a fresh database scanning the same photos gets the same
names back."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facecluster.cli import app

from .conftest import EDGE, copy_photos, copy_sample_people, sample_edge
from .test_xmp import TRANSPOSE, needs_exiftool

pytestmark = [pytest.mark.model, needs_exiftool]
runner = CliRunner()


def run(db: Path, *args: str) -> str:
    result = runner.invoke(app, [*args, "--db", str(db), "--model", "dlib-resnet"])
    assert result.exit_code == 0, result.output
    return result.stdout


def faces(db: Path) -> list[tuple[str, tuple[float, ...], str]]:
    """(photo, box, name) of every face with a person; an unnamed person is 'Person N',
    as export-xmp --all writes it."""
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT ph.path, f.x1, f.y1, f.x2, f.y2, p.name, p.id FROM faces f "
            "JOIN photos ph ON ph.id = f.photo_id JOIN assignments a ON a.face_id = f.id "
            "JOIN persons p ON p.id = a.person_id ORDER BY ph.path, f.idx"
        ).fetchall()
    return [(r[0], tuple(r[1:5]), r[5] or f"Person {r[6]}") for r in rows]


def nearest(found: list[tuple[str, tuple[float, ...], str]], photo: str, box) -> tuple:
    """The face of ``photo`` whose box is nearest ``box``: (largest corner gap, name)."""
    return min((float(np.abs(np.subtract(b, box)).max()), n) for p, b, n in found if p == photo)


def upright_box(photo: Path, area: dict) -> tuple[int, ...]:
    """An MWG area (normalised, stored image) in pixels of the photo as a viewer shows it,
    by turning a mask with Pillow: no facecluster code involved."""
    with Image.open(photo) as im:
        w, h = im.size
        orientation = im.getexif().get(0x0112, 1)
    mask = Image.new("L", (w, h))
    x1, y1 = (area["X"] - area["W"] / 2) * w, (area["Y"] - area["H"] / 2) * h
    mask.paste(255, (round(x1), round(y1), round(x1 + area["W"] * w), round(y1 + area["H"] * h)))
    if orientation != 1:
        mask = mask.transpose(TRANSPOSE[orientation])
    box = mask.getbbox()
    assert box is not None
    return box


def round_trip(lib: Path, tmp_path: Path, names: dict[str, str]) -> None:
    """``names``: photo file name -> the name to give the person of its largest face."""
    db = tmp_path / "a.db"
    run(db, "scan", str(lib))
    run(db, "group", "--min-cluster-size", "1")
    persons = json.loads(run(db, "people", "--json"))
    for p in persons:
        shown = json.loads(run(db, "people", "show", str(p["id"]), "--json"))
        photos = {Path(f["photo"]).name for f in shown["faces"]}
        for photo, name in names.items():
            if photo in photos and not p["name"]:
                run(db, "people", "name", str(p["id"]), name)
                break
    out = json.loads(run(db, "people", "export-xmp", "--all", "--keywords", "--json"))
    assert out["skipped"] == 0 and out["regions"] == len(faces(db))

    expected = faces(db)
    for photo in sorted({p for p, _, _ in expected}):
        read = subprocess.run(
            ["exiftool", "-j", "-struct", "-n", "-XMP:RegionInfo", "-XMP:RegionInfoMP",
             photo + ".xmp"], capture_output=True, text=True, check=True).stdout
        info = json.loads(read)[0]
        regions = info["RegionInfo"]["RegionList"]
        assert len(regions) == sum(1 for p, _, _ in expected if p == photo)
        for region, mp in zip(regions, info["RegionInfoMP"]["Regions"], strict=True):
            gap, name = nearest(expected, photo, upright_box(Path(photo), region["Area"]))
            assert gap <= 1.0 and region["Name"] == name, (photo, region, gap, name)
            a = region["Area"]
            rect = [float(v) for v in mp["Rectangle"].split(",")]
            assert mp["PersonDisplayName"] == name
            assert np.allclose(rect, [a["X"] - a["W"] / 2, a["Y"] - a["H"] / 2, a["W"], a["H"]],
                               atol=1e-5)

    fresh = tmp_path / "fresh.db"
    run(fresh, "scan", str(lib))
    run(fresh, "group")
    again = faces(fresh)
    for photo, box, name in expected:
        gap, got = nearest(again, photo, box)
        assert gap <= 1.0 and got == name, (photo, box, name, got)


def test_names_travel_through_sidecars_and_back(tmp_path: Path) -> None:
    lib = copy_sample_people(tmp_path / "photos", {"Colin_Powell": 2, "Tony_Blair": 2})
    shutil.copy2(sample_edge("exif_orientation"), lib / "hopper_6.jpg")  # EXIF orientation 6
    shutil.copy2(sample_edge("multi_face"), lib / "group.jpg")
    round_trip(lib, tmp_path, {"Colin_Powell_0001.jpg": "Colin Powell",
                               "Tony_Blair_0011.jpg": "Tony Blair", "hopper_6.jpg": "Grace Hopper"})


@pytest.mark.shared_data
def test_names_travel_on_dev_photos_and_rotated_ones(tmp_path: Path) -> None:
    lib = copy_photos(tmp_path / "photos", {"Bill_Clinton": 3, "Angelina_Jolie": 3,
                                            "Hugo_Chavez": 3})
    for name in ("curie_orientation_6.jpg", "curie_orientation_8.jpg",
                 "hopper_orientation_8.jpg"):
        shutil.copy2(EDGE / "exif_orientation" / name, lib / name)
    first = {f"{who}/{sorted((lib / who).iterdir())[0].name}".split("/")[1]: who.replace("_", " ")
             for who in ("Bill_Clinton", "Angelina_Jolie", "Hugo_Chavez")}
    round_trip(lib, tmp_path, {**first, "curie_orientation_6.jpg": "Marie Curie",
                               "hopper_orientation_8.jpg": "Grace Hopper"})
