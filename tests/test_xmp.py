"""XMP face regions out (people export-xmp) and in (scan, group): geometry, the merge into
an existing sidecar, the naming rules, and the CLI on a library scanned with a fake
detector and encoder (milliseconds; ExifTool reads back every file written). Real photos
and the real models: tests/test_xmp_roundtrip.py."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from typer.testing import CliRunner

from facecluster import xmp_names
from facecluster.api import model_spec
from facecluster.cli import app
from facecluster.encoders import encoder_identity
from facecluster.xmp_regions import read_regions, stored_size, to_stored, to_upright

from .conftest import EDGE, sample_edge
from .test_pipeline_seams import FakeEncoder, Scanner

runner = CliRunner()
needs_exiftool = pytest.mark.skipif(
    shutil.which("exiftool") is None, reason="needs exiftool (apt install libimage-exiftool-perl)"
)
TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
             4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
             6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
             8: Image.Transpose.ROTATE_90}
RED, GREEN, BLUE = (200, 0, 0), (0, 200, 0), (0, 0, 200)


def exif_read(path: Path) -> dict:
    """What ExifTool itself reads of a file (not facecluster's reader)."""
    out = subprocess.run(["exiftool", "-j", "-struct", "-G1", "-n", "-XMP:all", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]


def exif_write(path: Path, values: dict) -> None:
    """Write XMP as another tool would, through ExifTool."""
    data = path.parent / "values.json"
    data.write_text(json.dumps([{"SourceFile": "*", **values}]))
    subprocess.run(["exiftool", "-q", "-overwrite_original", f"-j={data}", str(path)],
                   check=True)
    data.unlink()


def mwg(name: str, x: float, y: float, w: float, h: float, **extra) -> dict:
    return {"Type": "Face", "Name": name,
            "Area": {"X": x, "Y": y, "W": w, "H": h, "Unit": "normalized"}, **extra}


# -- geometry -----------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_box_goes_to_the_stored_image_and_back(orientation: int) -> None:
    size, box = (640, 480), (100.0, 50.0, 300.0, 250.0)
    back = to_upright(to_stored(box, size, orientation), size, orientation)
    assert np.allclose(back, box, atol=1e-6)


def _same_pixels(path: Path, box: tuple[int, int, int, int]) -> None:
    """The region facecluster would write for ``box`` (upright pixels) covers the same
    pixels of the stored image, as a viewer turns it."""
    with Image.open(path) as im:
        stored = im.convert("RGB")
        o = im.getexif().get(0x0112, 1)
    upright = ImageOps.exif_transpose(stored.copy()) if o == 1 else stored.transpose(TRANSPOSE[o])
    assert stored.size == stored_size(upright.size, o)
    x1, y1, x2, y2 = to_stored(box, upright.size, o)
    w, h = stored.size
    crop = stored.crop((round(x1 * w), round(y1 * h), round(x2 * w), round(y2 * h)))
    turned = crop if o == 1 else crop.transpose(TRANSPOSE[o])
    assert np.array_equal(np.asarray(turned), np.asarray(upright.crop(box)))


def test_a_region_of_a_rotated_photo_covers_the_same_pixels() -> None:
    _same_pixels(sample_edge("exif_orientation"), (10, 20, 70, 50))  # orientation 6


@pytest.mark.shared_data
@pytest.mark.parametrize("name", [f"hopper_orientation_{o}.jpg" for o in range(1, 9)]
                         + ["curie_orientation_6.jpg", "curie_orientation_8.jpg"])
def test_regions_of_every_orientation_cover_the_same_pixels(name: str) -> None:
    _same_pixels(EDGE / "exif_orientation" / name, (12, 30, 90, 61))


# -- reading regions ------------------------------------------------------------------------


def test_mwg_regions_are_read_first_and_microsoft_ones_as_fallback() -> None:
    both = {"XMP-mwg-rs:RegionInfo": {"RegionList": [mwg("Anna", 0.5, 0.5, 0.2, 0.2)]},
            "XMP-MP:RegionInfoMP": {"Regions": [{"PersonDisplayName": "Other",
                                                 "Rectangle": "0.1, 0.1, 0.2, 0.2"}]}}
    regions, _ = read_regions(both, (100, 50), 1, "sidecar")
    assert [(r.name, r.box) for r in regions] == [("Anna", (40.0, 20.0, 60.0, 30.0))]
    del both["XMP-mwg-rs:RegionInfo"]
    regions, _ = read_regions(both, (100, 50), 1, "sidecar")
    assert [(r.name, r.source) for r in regions] == [("Other", "sidecar mp")]
    assert np.allclose(regions[0].box, (10, 5, 30, 15))


def test_regions_written_against_the_upright_image_are_read_that_way() -> None:
    """Orientation 6, upright 200 x 100: AppliedToDimensions 100 x 200 is the stored image
    (the MWG rule), 200 x 100 the upright one (what some tools write)."""
    region = mwg("Anna", 0.25, 0.5, 0.1, 0.2)
    stored = {"XMP-mwg-rs:RegionInfo": {"AppliedToDimensions": {"W": 100, "H": 200},
                                        "RegionList": [region]}}
    upright = {"XMP-mwg-rs:RegionInfo": {"AppliedToDimensions": {"W": 200, "H": 100},
                                         "RegionList": [region]}}
    a = read_regions(stored, (200, 100), 6, "sidecar")[0][0].box
    b = read_regions(upright, (200, 100), 6, "sidecar")[0][0].box
    assert np.allclose(b, (40, 40, 60, 60))
    assert np.allclose(a, to_upright((0.2, 0.4, 0.3, 0.6), (200, 100), 6))


@pytest.mark.fault
def test_absurd_regions_are_warnings_not_names(fault) -> None:
    fault("xmp", "face regions with NaN, negative, huge or pixel-unit areas, 10,000 regions",
          "each is one warning; sane regions of the same photo are read")
    bad = [mwg("NaN", float("nan"), 0.5, 0.1, 0.1), mwg("Neg", 0.5, 0.5, -0.1, 0.1),
           mwg("Huge", 5.0, 5.0, 3.0, 3.0),
           {"Type": "Face", "Name": "Px", "Area": {"X": 5, "Y": 5, "W": 2, "H": 2,
                                                    "Unit": "pixel"}},
           {"Type": "Face", "Name": "NoArea"}, "not a region", mwg("", 0.5, 0.5, 0.1, 0.1),
           {**mwg("Rex", 0.5, 0.5, 0.1, 0.1), "Type": "Pet"}, mwg("Good", 0.5, 0.5, 0.2, 0.2)]
    regions, warnings = read_regions({"XMP-mwg-rs:RegionInfo": {"RegionList": bad}},
                                     (100, 100), 1, "sidecar")
    assert [r.name for r in regions] == ["Good"]
    assert len(warnings) == 5 and all("skipped" in w for w in warnings)
    many = [mwg(f"P{i}", 0.5, 0.5, 0.1, 0.1) for i in range(10_000)]
    regions, warnings = read_regions({"XMP-mwg-rs:RegionInfo": {"RegionList": many}},
                                     (100, 100), 1, "embedded")
    assert len(regions) == 500 and "only the first 500" in warnings[0]


# -- naming rules -------------------------------------------------------------------------


def test_a_person_takes_the_name_most_of_its_faces_have() -> None:
    plan = xmp_names.plan([1, 2, 3, 4], {1: 10, 2: 10, 3: 10, 4: 11},
                          {1: "Anna", 2: "Anna", 3: "Bob"}, {10: None, 11: None}, set())
    assert plan.names == {10: "Anna"}
    assert plan.conflicts == [{"kind": "other_name", "person": 10, "name": "Anna",
                               "xmp_name": "Bob", "faces": 1}]


def test_names_never_merge_persons_and_never_replace_the_users() -> None:
    plan = xmp_names.plan([1, 2, 3, 4, 5], {1: 10, 2: 10, 3: 11, 4: 12, 5: 12},
                          {1: "Anna", 2: "Anna", 3: "Anna", 4: "Eve", 5: "Bob"},
                          {10: None, 11: None, 12: "Carol"}, set())
    assert plan.names == {10: "Anna"} and not plan.placed and not plan.new
    kinds = sorted((c["kind"], c["person"]) for c in plan.conflicts)
    assert kinds == [("other_name", 12), ("other_name", 12), ("same_name", 11)]
    tie = xmp_names.plan([1, 2], {1: 10, 2: 10}, {1: "A", 2: "B"}, {10: None}, set())
    assert not tie.names and tie.conflicts[0]["kind"] == "tie"


def test_named_faces_left_unknown_join_their_person_or_a_new_one() -> None:
    imported = {1: "Anna", 2: "Anna", 3: "Gran", 4: "Anna", 9: "Anna"}
    plan = xmp_names.plan([1, 2, 3, 4], {1: 10}, imported, {10: None}, {(4, 10)})
    assert plan.names == {10: "Anna"}
    # 4 was removed from person 10 by the user; 9 is not a face of this grouping.
    assert plan.placed == {2: 10} and plan.new == {"Gran": [3]}


# -- the CLI on a library of generated photos -----------------------------------------------


class Enc128(FakeEncoder):
    """FakeEncoder's colour vector in the 128 dimensions of dlib-resnet, so that the CLI's
    --model dlib-resnet groups these faces without running a network."""

    def embed(self, chips):
        x = super().embed(chips)
        return np.hstack([x, np.zeros((len(x), 125), np.float32)])


def draw(path: Path, rows: tuple[int, ...], colour, orientation: int = 1) -> Path:
    """A 100 x 100 photo (as shown) with a white 20 x 20 face at each row on the left."""
    img = np.zeros((100, 100, 3), np.uint8)
    img[:, 50:] = colour
    for row in rows:
        img[row : row + 20, 0:20] = 255
    im = Image.fromarray(img)
    path.parent.mkdir(parents=True, exist_ok=True)
    if orientation == 1:
        im.save(path)
    else:  # stored turned back, so that a viewer shows the drawing
        inverse = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}[orientation]
        exif = Image.Exif()
        exif[0x0112] = orientation
        im.transpose(inverse).save(path, quality=95, exif=exif)
    return path


def scan(db: Path, root: Path):
    s = Scanner(db, encoder_identity(model_spec("dlib-resnet"), None))
    s.encoder = Enc128(s.identity)
    try:
        return s.scan(root)
    finally:
        s.cache.close()


def cli(db: Path, *args: str):
    return runner.invoke(app, [*args[:1], "--db", str(db), "--model", "dlib-resnet",
                               *args[1:]])


def people(db: Path, *args: str):
    result = runner.invoke(app, ["people", *args[:1], "--db", str(db), "--model",
                                 "dlib-resnet", *args[1:]])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result


@pytest.fixture()
def library(tmp_path: Path) -> tuple[Path, Path]:
    """Photos of Anna (red, 3 faces, one in a photo turned by EXIF orientation 6), Bob
    (green, 2 faces in one photo) and one unnamed person (blue), grouped and named."""
    lib = tmp_path / "lib"
    draw(lib / "anna1.png", (0,), RED)
    draw(lib / "anna2.png", (30,), RED)
    draw(lib / "turned.jpg", (30,), RED, orientation=6)
    draw(lib / "both.png", (0, 60), GREEN)
    draw(lib / "blue1.png", (0,), BLUE)
    db = tmp_path / "f.db"
    scan(db, lib)
    assert cli(db, "group", "--min-cluster-size", "1").exit_code == 0
    for p in people(db, "--json"):
        photos = {Path(f["photo"]).name for f in people(db, "show", str(p["id"]), "--json")
                  ["faces"]}
        if "anna1.png" in photos:
            people(db, "name", str(p["id"]), "Anna")
        elif "both.png" in photos:
            people(db, "name", str(p["id"]), "Bob")
    return lib, db


def regions_of(sidecar: Path) -> list[tuple[str, tuple[float, ...]]]:
    info = exif_read(sidecar).get("XMP-mwg-rs:RegionInfo") or {}
    out = []
    for r in info.get("RegionList", []):
        a = r["Area"]
        out.append((r["Name"], (a["X"] - a["W"] / 2, a["Y"] - a["H"] / 2,
                                a["X"] + a["W"] / 2, a["Y"] + a["H"] / 2)))
    return sorted(out)


def digest(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.iterdir()) if not p.name.endswith(".xmp")}


@needs_exiftool
def test_export_writes_regions_that_exiftool_reads_on_the_faces(library) -> None:
    lib, db = library
    photos = digest(lib)
    dry = people(db, "export-xmp", "--dry-run", "--json")
    assert (dry["created"], dry["regions"], dry["dry_run"]) == (4, 5, True)
    assert not list(lib.glob("*.xmp"))
    done = people(db, "export-xmp", "--keywords", "--json")
    assert (done["created"], done["updated"], done["regions"]) == (4, 0, 5)
    assert digest(lib) == photos  # the photos themselves are never written
    assert sorted(p.name for p in lib.glob("*.xmp")) == [
        "anna1.png.xmp", "anna2.png.xmp", "both.png.xmp", "turned.jpg.xmp"]
    # Faces are white squares at x 0-20, y = row .. row + 20 of a 100 x 100 photo.
    both = regions_of(lib / "both.png.xmp")
    assert [n for n, _ in both] == ["Bob", "Bob"]
    assert np.allclose([b for _, b in both], [(0, 0, 0.2, 0.2), (0, 0.6, 0.2, 0.8)], atol=0.01)
    got = exif_read(lib / "both.png.xmp")
    assert got["XMP-mwg-rs:RegionInfo"]["AppliedToDimensions"] == {"W": 100, "H": 100,
                                                                  "Unit": "pixel"}
    assert [r["PersonDisplayName"] for r in got["XMP-MP:RegionInfoMP"]["Regions"]] == ["Bob"] * 2
    assert got["XMP-lr:HierarchicalSubject"] == ["People|Bob"]
    assert got["XMP-digiKam:TagsList"] == ["People/Bob"]
    # The turned photo: the region is on the white square of the image as stored.
    (name, (x1, y1, x2, y2)), = regions_of(lib / "turned.jpg.xmp")
    with Image.open(lib / "turned.jpg") as im:
        stored = np.asarray(im.convert("RGB"))
    h, w = stored.shape[:2]
    face = stored[round(y1 * h) + 2 : round(y2 * h) - 2, round(x1 * w) + 2 : round(x2 * w) - 2]
    assert name == "Anna" and face.size and face.mean() > 230


@needs_exiftool
def test_a_second_export_changes_nothing_and_a_rename_replaces_the_region(library) -> None:
    lib, db = library
    people(db, "export-xmp")
    side = lib / "anna1.png.xmp"
    before = side.stat().st_mtime_ns
    again = people(db, "export-xmp", "--json")
    assert (again["unchanged"], again["created"], again["updated"]) == (4, 0, 0)
    assert side.stat().st_mtime_ns == before
    anna = next(p["id"] for p in people(db, "--json") if p["name"] == "Anna")
    people(db, "name", str(anna), "Anna Smith")
    assert people(db, "export-xmp", "--json")["updated"] == 3
    assert [n for n, _ in regions_of(side)] == ["Anna Smith"]  # replaced, not added
    mp = exif_read(side)["XMP-MP:RegionInfoMP"]["Regions"]
    assert [r["PersonDisplayName"] for r in mp] == ["Anna Smith"]
    # A face that leaves its person takes facecluster's region with it.
    shown = people(db, "show", str(anna), "--json")["faces"]
    face = next(f["face_id"] for f in shown if f["photo"].endswith("anna1.png"))
    people(db, "remove-face", str(face))
    assert people(db, "export-xmp", "--json")["updated"] == 1
    assert "XMP-mwg-rs:RegionInfo" not in exif_read(side)
    assert "XMP-MP:RegionInfoMP" not in exif_read(side)


OTHER_TOOL = """<?xpacket begin='' id='W5M0MpCehiHzreSzNTczkc9d'?>
<x:xmpmeta xmlns:x='adobe:ns:meta/'>
<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>
 <rdf:Description rdf:about=''
  xmlns:xmp='http://ns.adobe.com/xap/1.0/' xmlns:dc='http://purl.org/dc/elements/1.1/'
  xmlns:foo='http://example.com/foo/1.0/'
  xmlns:lr='http://ns.adobe.com/lightroom/1.0/'
  xmlns:mwg-rs='http://www.metadataworkinggroup.com/schemas/regions/'
  xmlns:stArea='http://ns.adobe.com/xmp/sType/Area#'
  xmlns:stDim='http://ns.adobe.com/xap/1.0/sType/Dimensions#'
  xmp:Rating='4' foo:Custom='keep me'>
  <dc:subject><rdf:Bag><rdf:li>holiday</rdf:li><rdf:li>beach</rdf:li></rdf:Bag></dc:subject>
  <lr:hierarchicalSubject><rdf:Bag><rdf:li>Places|Beach</rdf:li></rdf:Bag></lr:hierarchicalSubject>
  <mwg-rs:Regions rdf:parseType='Resource'>
   <mwg-rs:AppliedToDimensions stDim:w='100' stDim:h='100' stDim:unit='pixel'/>
   <mwg-rs:RegionList>
    <rdf:Bag>
     <rdf:li rdf:parseType='Resource'>
      <mwg-rs:Type>Pet</mwg-rs:Type><mwg-rs:Name>Rex</mwg-rs:Name>
      <mwg-rs:Area stArea:x='0.7' stArea:y='0.8' stArea:w='0.1' stArea:h='0.1'
                   stArea:unit='normalized'/>
     </rdf:li>
     <rdf:li rdf:parseType='Resource'>
      <mwg-rs:Type>Face</mwg-rs:Type><mwg-rs:Name>Bob</mwg-rs:Name>
      <mwg-rs:Description>tagged by hand</mwg-rs:Description>
      <mwg-rs:Area stArea:x='0.1' stArea:y='0.1' stArea:w='0.2' stArea:h='0.2'
                   stArea:unit='normalized'/>
     </rdf:li>
     EXTRA
    </rdf:Bag>
   </mwg-rs:RegionList>
  </mwg-rs:Regions>
 </rdf:Description>
</rdf:RDF>
</x:xmpmeta>
<?xpacket end='w'?>
"""


@needs_exiftool
@pytest.mark.fault
def test_export_keeps_everything_another_tool_wrote(fault, library) -> None:
    fault("xmp", "export-xmp into a sidecar with a rating, keywords, a custom property and "
          "another tool's regions (a pet; the same face named by hand)",
          "all kept; facecluster adds only the face nobody had named")
    lib, db = library
    side = lib / "both.png.xmp"
    side.write_text(OTHER_TOOL.replace("EXTRA", ""))
    before = exif_read(side)
    out = people(db, "export-xmp", "--keywords", "--json")
    assert out["updated"] == 1
    after = exif_read(side)
    for tag in ("XMP-xmp:Rating", "XMP-foo:Custom", "XMP-dc:Subject"):
        assert after[tag] == before[tag]
    assert after["XMP-lr:HierarchicalSubject"] == ["Places|Beach", "People|Bob"]
    names = [(r["Name"], r.get("Type"), r.get("Description")) for r in
             after["XMP-mwg-rs:RegionInfo"]["RegionList"]]
    # The hand-tagged Bob at the top face stays; facecluster adds the face at row 60.
    assert names == [("Rex", "Pet", None), ("Bob", "Face", "tagged by hand"),
                     ("Bob", "Face", None)]
    sidecar = next(s for s in out["sidecars"] if s["photo"].endswith("both.png"))
    assert sidecar["kept_regions"] == 2 and "already named so" in sidecar["notes"][0]


@needs_exiftool
@pytest.mark.fault
def test_export_leaves_alone_what_it_cannot_update_safely(fault, library, tmp_path) -> None:
    fault("xmp", "export-xmp where the sidecar is a symlink, a JPEG, malformed XML, a folder, "
          "or holds a region field ExifTool cannot write back",
          "each left byte for byte; the photo skipped with its reason; the others written")
    lib, db = library
    target = tmp_path / "elsewhere.xmp"
    target.write_text(OTHER_TOOL.replace("EXTRA", ""))
    (lib / "anna1.png.xmp").symlink_to(target)
    shutil.copy2(lib / "anna2.png", lib / "anna2.png.xmp")  # a photo under a sidecar's name
    (lib / "turned.jpg.xmp").write_text("<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF")
    unknown = "<rdf:li rdf:parseType='Resource'><mwg-rs:Name>Kim</mwg-rs:Name>" \
        "<foo:Score>0.93</foo:Score></rdf:li>"
    (lib / "both.png.xmp").write_text(OTHER_TOOL.replace("EXTRA", unknown))
    kept = {p.name: p.read_bytes() for p in [target, *lib.glob("*.xmp")]}
    out = people(db, "export-xmp", "--json")
    assert {p.name: p.read_bytes() for p in [target, *lib.glob("*.xmp")]} == kept
    reasons = {Path(s["path"]).name: s["reason"] for s in out["skipped_photos"]}
    assert "symbolic link" in reasons["anna1.png"]
    assert "not an XMP sidecar" in reasons["anna2.png"]
    assert "malformed" in reasons["turned.jpg"] or "not an XMP" in reasons["turned.jpg"]
    assert "would not be kept" in reasons["both.png"] or "would lose" in reasons["both.png"]
    (lib / "both.png.xmp").unlink()
    (lib / "both.png.xmp").mkdir()
    out = people(db, "export-xmp", "--json")
    assert "not a regular file" in {Path(s["path"]).name: s["reason"]
                                    for s in out["skipped_photos"]}["both.png"]


@needs_exiftool
def test_stem_sidecars_shared_by_two_photos_are_refused(library) -> None:
    lib, db = library
    out = people(db, "export-xmp", "--stem-sidecar", "--json")
    assert out["created"] == 4 and (lib / "anna1.xmp").exists()
    shutil.copy2(lib / "anna1.png", lib / "anna1.jpg")
    scan(db, lib)
    assert cli(db, "group", "--min-cluster-size", "1").exit_code == 0
    out = people(db, "export-xmp", "--stem-sidecar", "--json")
    assert {Path(s["path"]).name for s in out["skipped_photos"]} == {"anna1.png", "anna1.jpg"}


@pytest.mark.fault
def test_export_without_exiftool_is_one_line(fault, library, monkeypatch) -> None:
    fault("xmp", "export-xmp where ExifTool is not installed", "one error line, exit 2")
    lib, db = library
    monkeypatch.setenv("FACECLUSTER_EXIFTOOL", str(lib / "no-such-program"))
    result = runner.invoke(app, ["people", "export-xmp", "--db", str(db), "--model",
                                 "dlib-resnet"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "exiftool was not found" in result.stderr and not list(lib.glob("*.xmp"))


# -- import ---------------------------------------------------------------------------------


@needs_exiftool
def test_a_fresh_database_gets_the_names_back(library, tmp_path) -> None:
    lib, db = library
    people(db, "export-xmp")
    fresh = tmp_path / "fresh.db"
    stats = scan(fresh, lib)
    assert (stats.xmp_faces_named, stats.xmp_regions_alone, stats.xmp_warnings) == (5, 0, [])
    grouped = cli(fresh, "group", "--json")
    assert grouped.exit_code == 0, grouped.output
    summary = json.loads(grouped.stdout)["xmp_names"]
    assert sorted(p["name"] for p in summary["persons_named"]) == ["Anna", "Bob"]
    listed = {p["name"]: p["faces"] for p in people(fresh, "--json")}
    assert listed["Anna"] == 3 and listed["Bob"] == 2
    # The names are the user's: another grouping keeps them, and undo takes them back.
    assert cli(fresh, "group", "--threshold", "3.9").exit_code == 0
    assert {"Anna", "Bob"} <= {p["name"] for p in people(fresh, "--json")}


@needs_exiftool
def test_a_name_other_faces_contradict_is_reported_and_nothing_moves(library, tmp_path) -> None:
    lib, db = library
    people(db, "export-xmp")
    side = lib / "anna2.png.xmp"
    side.unlink()  # another tool named this face otherwise
    exif_write(side, {"RegionInfo": {"RegionList": [mwg("Annie", 0.1, 0.4, 0.2, 0.2)]}})
    fresh = tmp_path / "fresh.db"
    scan(fresh, lib)
    grouped = cli(fresh, "group")
    assert grouped.exit_code == 0, grouped.output
    assert "named from XMP: Anna (" in grouped.stdout
    assert "XMP name conflict: 1 face(s) of Anna (person " in grouped.stdout
    assert "are named Annie in XMP" in grouped.stdout
    assert {p["name"]: p["faces"] for p in people(fresh, "--json")}["Anna"] == 3


@needs_exiftool
def test_named_regions_without_a_face_are_kept_and_listed(tmp_path) -> None:
    lib = tmp_path / "lib"
    photo = draw(lib / "one.jpg", (0,), RED)
    exif_write(photo, {"RegionInfo": {  # embedded, as a camera app or Lightroom writes it
        "AppliedToDimensions": {"W": 100, "H": 100, "Unit": "pixel"},
        "RegionList": [mwg("Anna", 0.1, 0.1, 0.2, 0.2), mwg("Ghost", 0.75, 0.5, 0.2, 0.2)]}})
    db = tmp_path / "f.db"
    stats = scan(db, lib)
    assert (stats.xmp_faces_named, stats.xmp_regions_alone) == (1, 1)
    assert cli(db, "group", "--min-cluster-size", "1").exit_code == 0
    assert [p["name"] for p in people(db, "--json")] == ["Anna"]
    listed = people(db, "regions", "--json")
    assert [(Path(r["photo"]).name, r["name"]) for r in listed] == [("one.jpg", "Ghost")]
    assert np.allclose(listed[0]["box"], (65, 40, 85, 60))


@needs_exiftool
@pytest.mark.fault
def test_broken_xmp_is_a_warning_never_a_failed_scan(fault, tmp_path) -> None:
    fault("xmp", "scan photos whose sidecars are malformed, not XMP, 9 MB, or name absurd "
          "areas", "scan succeeds; one warning per photo; faces indexed")
    lib = tmp_path / "lib"
    for name in ("bad", "jpeg", "huge", "absurd"):
        draw(lib / f"{name}.png", (0,), RED)
    (lib / "bad.png.xmp").write_text("<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF")
    shutil.copy2(sample_edge("exif_orientation"), lib / "jpeg.png.xmp")
    with open(lib / "huge.png.xmp", "wb") as f:
        f.truncate(9 * 2**20)
    exif_write(lib / "absurd.png.xmp", {"RegionInfo": {"RegionList": [
        mwg("Nobody", 40.0, -3.0, 7.0, 0.1)]}})
    stats = scan(tmp_path / "f.db", lib)
    assert stats.faces == 4 and stats.photos_failed == 0 and stats.xmp_faces_named == 0
    warned = {Path(w.path).name for w in stats.xmp_warnings}
    assert warned == {"bad.png.xmp", "jpeg.png.xmp", "huge.png.xmp", "absurd.png.xmp"}


def test_a_scan_without_exiftool_says_so_once(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FACECLUSTER_EXIFTOOL", str(tmp_path / "none"))
    lib = tmp_path / "lib"
    for i in range(3):
        draw(lib / f"p{i}.png", (0,), RED)
        (lib / f"p{i}.png.xmp").write_text("<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
    stats = scan(tmp_path / "f.db", lib)
    assert stats.faces == 3 and len(stats.xmp_warnings) == 1
    assert "exiftool is missing" in stats.xmp_warnings[0].error
