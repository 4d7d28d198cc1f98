"""The scan pipeline at its seams, in milliseconds: walk, plan, the indexer and the
storage writes with a fake detector and encoder on small generated images. (The real
detector and encoder run end to end in the CLI tests, on real photos.)"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecluster import imageio
from facecluster.cache import FaceCache
from facecluster.indexer import Indexer
from facecluster.planner import plan
from facecluster.records import Face
from facecluster.scan import walk

IDENTITY_A = {"name": "fake-a", "dim": 3, "weights_sha256": "a", "preprocessing": "none"}
IDENTITY_B = {"name": "fake-b", "dim": 3, "weights_sha256": "b", "preprocessing": "none"}


class FakeDetector:
    """A face is a white 20 x 20 square on the left half of a 100 x 100 image: one for
    each of the rows 0, 30 and 60 where the pixel (5, row + 5) is white."""

    device = "cpu"

    def __init__(self) -> None:
        self.images = 0

    def detect(self, images, min_sizes=None, timings=None):
        self.images += len(images)
        out = []
        for img in images:
            k = img.shape[0] / 100  # the pipeline may shrink or grow the image
            faces = []
            for row in (0, 30, 60):
                if img[int((row + 5) * k), int(5 * k)].mean() > 200:
                    box = np.array([0, row, 20, row + 20], np.float32) * k
                    lm = np.tile(box[:2] + 10 * k, (5, 1)).astype(np.float32)
                    faces.append(Face(box=box, landmarks=lm, prob=0.99))
            out.append(faces)
        return out


class FakeEncoder:
    """The embedding of a face is the colour of the right half of its photo, normalised."""

    def __init__(self, identity: dict[str, object]) -> None:
        self.identity = identity
        self.name, self.dim = str(identity["name"]), 3
        self.chips = 0

    def prepare(self, image: np.ndarray, face: Face) -> np.ndarray:
        return image[:, image.shape[1] * 3 // 4].astype(np.float32).mean(axis=0)

    def embed(self, chips):
        self.chips += len(chips)
        x = np.asarray(chips, np.float32).reshape(len(chips), 3) + 1.0
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def photo(path: Path, faces: int, colour: tuple[int, int, int]) -> Path:
    img = np.zeros((100, 100, 3), np.uint8)
    img[:, 50:] = colour
    for row in (0, 30, 60)[:faces]:
        img[row : row + 20, 0:20] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


class Scanner:
    """An index with fake models that counts how often the models run."""

    def __init__(self, db: Path, identity: dict[str, object] = IDENTITY_A) -> None:
        self.cache = FaceCache(db)
        self.identity = identity
        self.detector = FakeDetector()
        self.encoder = FakeEncoder(identity)
        self.loads = 0

    def models(self):
        self.loads += 1
        return self.detector, self.encoder

    def scan(self, *roots: Path, **options):
        indexer = Indexer(self.cache, self.identity, self.models, batch_size=2, **options)
        return indexer.scan(list(roots))


@pytest.fixture()
def library(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    photo(lib / "a" / "one.png", 1, (200, 0, 0))
    photo(lib / "a" / "two.png", 2, (0, 200, 0))
    photo(lib / "b" / "none.png", 0, (0, 0, 200))
    (lib / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (lib / "b" / "notes.txt").write_text("not a photo")
    return lib


def test_walk_finds_images_by_content_and_skips_hidden_and_output_folders(library: Path):
    (library / ".hidden").mkdir()
    photo(library / ".hidden" / "x.png", 1, (1, 1, 1))
    photo(library / "out" / "y.png", 1, (1, 1, 1))
    (library / "out" / ".facecluster-output").write_text("{}")
    found = sorted(e.path.relative_to(library).as_posix() for e in walk([library]))
    assert found == ["a/one.png", "a/two.png", "b/broken.jpg", "b/none.png"]


def test_plan_sorts_files_into_new_changed_and_unchanged(library: Path, tmp_path: Path):
    s = Scanner(tmp_path / "f.db")
    s.scan(library)
    index = s.cache.photo_index()
    os.utime(library / "a" / "one.png", ns=(1, 1))
    p = plan(walk([library]), index, set())
    assert {e.path.name for e in p.read} == {"one.png"}  # changed
    assert p.unchanged == 2 and p.failed_unchanged == 1 and p.total == 4 and not p.new
    # A file that failed is read again when asked, or when it changed.
    retry = plan(walk([library]), index, set(), retry_failed=True)
    assert {e.path.name for e in retry.read} == {"one.png", "broken.jpg"}
    os.utime(library / "b" / "broken.jpg", ns=(1, 1))
    touched = plan(walk([library]), index, set())
    assert {e.path.name for e in touched.read} == {"one.png", "broken.jpg"}
    assert touched.failed_unchanged == 0


def test_first_scan_then_unchanged_rescan_loads_no_model(library: Path, tmp_path: Path):
    s = Scanner(tmp_path / "f.db")
    first = s.scan(library)
    assert (first.photos_new, first.faces, first.no_face, first.photos_failed) == (3, 3, 1, 1)
    assert first.failures[0].path.endswith("broken.jpg")
    assert s.loads == 1 and s.encoder.chips == 3
    again = Scanner(tmp_path / "f.db").scan(library)
    assert again.photos_unchanged == 3 and again.embeddings_computed == 0
    # The broken file has not changed: it is not tried again, and says so.
    assert again.photos_failed == 0 and again.photos_failed_unchanged == 1
    assert again.as_dict()["photos_failed_unchanged"] == 1
    retried = Scanner(tmp_path / "f.db").scan(library, retry_failed=True)
    assert retried.photos_failed == 1 and retried.photos_failed_unchanged == 0


def test_moved_and_copied_photos_reuse_their_faces_without_a_model(library, tmp_path):
    s = Scanner(tmp_path / "f.db")
    s.scan(library)
    shutil.move(library / "a" / "two.png", library / "b" / "two-moved.png")
    shutil.copy2(library / "a" / "one.png", library / "b" / "one-copy.png")
    (library / "b" / "broken.jpg").unlink()
    t = Scanner(tmp_path / "f.db")
    stats = t.scan(library)
    assert stats.photos_moved == 1 and stats.photos_removed == 1
    assert t.loads == 0 and stats.faces == 4


def test_a_changed_photo_keeps_the_ids_of_faces_still_there(library, tmp_path):
    s = Scanner(tmp_path / "f.db")
    s.scan(library)
    before = {f.id for f in s.cache.faces_of(s.cache.photo_index()[str(library / "a/two.png")].id)}
    photo(library / "a" / "two.png", 3, (0, 200, 0))  # a third face appears
    stats = Scanner(tmp_path / "f.db").scan(library)
    after = s.cache.faces_of(s.cache.photo_index()[str(library / "a/two.png")].id)
    assert stats.photos_changed == 1 and len(after) == 3
    assert before < {f.id for f in after}


def test_a_second_encoder_embeds_cached_faces_without_detecting_again(library, tmp_path):
    Scanner(tmp_path / "f.db").scan(library)
    b = Scanner(tmp_path / "f.db", IDENTITY_B)
    stats = b.scan(library)
    assert stats.photos_reembedded == 2 and b.detector.images == 0 and b.encoder.chips == 3
    enc = b.cache.encoder_id(IDENTITY_B, register=False)
    assert enc is not None and b.cache.count_faces(enc) == 3


def test_a_photo_that_cannot_be_read_any_more_keeps_its_faces(library, tmp_path):
    s = Scanner(tmp_path / "f.db")
    s.scan(library)
    (library / "a" / "one.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    stats = Scanner(tmp_path / "f.db").scan(library)
    # one.png fails now (broken.jpg failed before and is not retried)
    assert stats.photos_failed == 1 and stats.photos_failed_unchanged == 1 and stats.faces == 3
    assert "kept what the last scan found" in stats.failures[0].error


def test_an_empty_folder_hides_nothing_it_held(library, tmp_path):
    s = Scanner(tmp_path / "f.db")
    s.scan(library)
    shutil.rmtree(library / "a")
    (library / "a").mkdir()  # a disk that is not mounted looks like this
    stats = Scanner(tmp_path / "f.db").scan(library)
    assert stats.photos_removed == 0 and stats.photos_unavailable == 2
    assert [u.path for u in stats.unavailable] == [str(library / "a")]
    (library / "a").rmdir()  # the folder itself is gone: its photos are forgotten
    assert Scanner(tmp_path / "f.db").scan(library).photos_removed == 2


def test_an_interrupted_scan_keeps_the_batches_it_committed(library, tmp_path):
    s = Scanner(tmp_path / "f.db")
    batches = 0
    embed = s.encoder.embed

    def stop_at_second_batch(chips):
        nonlocal batches
        batches += 1
        if batches == 2:
            raise KeyboardInterrupt
        return embed(chips)

    s.encoder.embed = stop_at_second_batch  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        s.scan(library)
    saved = len(s.cache.photo_index())
    assert 1 <= saved < 4
    resumed = Scanner(tmp_path / "f.db").scan(library)
    assert resumed.photos_unchanged >= saved - 1 and resumed.faces == 3


@pytest.fixture()
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the files the scan decodes, one entry per decode."""
    seen: list[int] = []
    decode_pair = imageio.decode_pair

    def counting(data, *args, **kwargs):
        seen.append(len(data))
        return decode_pair(data, *args, **kwargs)

    monkeypatch.setattr(imageio, "decode_pair", counting)
    return seen


def faces_by_path(cache: FaceCache, identity: dict[str, object]) -> dict[str, list]:
    """Each photo's status, boxes and vectors of ``identity``, by path."""
    enc = cache.encoder_id(identity, register=False)
    ids, vectors = cache.embeddings(enc or 0)
    vector = {int(i): v.tolist() for i, v in zip(ids, vectors, strict=True)}
    return {
        path: [row.status] + [(f.face.box.tolist(), vector[f.id]) for f in cache.faces_of(row.id)]
        for path, row in cache.photo_index().items()
    }


def test_copies_are_decoded_once_and_get_the_faces_of_a_scan_of_each_alone(
    library, tmp_path, decodes
):
    for name in ("a/one.png", "a/two.png", "b/none.png"):  # each content three times
        for n in (1, 2):
            copy = library / f"copy{n}" / name
            copy.parent.mkdir(parents=True, exist_ok=True)
            (os.link if n == 1 else shutil.copy2)(library / name, copy)
    s = Scanner(tmp_path / "f.db")
    stats = s.scan(library, workers=4)  # batches of 2: copies in the same batch and later
    assert len(decodes) == 4  # one, two, none and broken.jpg (which fails), once each
    assert (stats.photos_new, stats.photos_failed, stats.faces) == (9, 1, 9)
    assert s.detector.images == 3 and s.encoder.chips == 3
    # The same faces and vectors as a scan of each file alone, into a database of its own.
    together = faces_by_path(s.cache, IDENTITY_A)
    for i, path in enumerate(sorted(together)):
        alone = Scanner(tmp_path / f"alone{i}.db")
        alone.scan(Path(path))
        assert together[path] == faces_by_path(alone.cache, IDENTITY_A)[path], path
    # A move needs no decoding: every photo moves to another folder.
    decodes.clear()
    shutil.move(library, tmp_path / "moved")
    t = Scanner(tmp_path / "f.db")
    moved = t.scan(tmp_path / "moved")
    assert moved.photos_moved == 9 and t.loads == 0
    assert len(decodes) == 1  # broken.jpg, whose content is not in the index, is tried again
    after = faces_by_path(t.cache, IDENTITY_A)
    assert {p.replace(str(tmp_path / "moved"), str(library)): f for p, f in after.items()} == {
        p: f for p, f in together.items() if not p.endswith("broken.jpg")
    } | {str(library / "b/broken.jpg"): ["failed"]}


def test_a_moved_photo_without_this_encoders_vectors_is_decoded_and_embedded(
    library, tmp_path, decodes
):
    Scanner(tmp_path / "f.db").scan(library)
    shutil.move(library / "a" / "two.png", library / "b" / "two-moved.png")
    decodes.clear()
    b = Scanner(tmp_path / "f.db", IDENTITY_B)
    stats = b.scan(library)
    # one.png (unchanged, no vectors of B) and the moved two.png need their pixels.
    assert len(decodes) == 2 and stats.photos_moved == 1 and stats.photos_reembedded == 2
    assert b.detector.images == 0 and b.encoder.chips == 3
    enc = b.cache.encoder_id(IDENTITY_B, register=False)
    assert enc is not None and b.cache.count_faces(enc) == 3


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="needs exiftool")
def test_copies_not_decoded_still_get_the_names_in_their_xmp(tmp_path, decodes):
    lib = tmp_path / "lib"
    original = photo(lib / "a" / "anna.jpg", 1, (200, 0, 0))  # one face, at (0, 0, 20, 20)
    regions = [("Anna", 0.0, 0.0), ("Ghost", 0.6, 0.6)]  # on the face, and on no face
    packet = {"RegionInfo": {"AppliedToDimensions": {"W": 100, "H": 100, "Unit": "pixel"},
              "RegionList": [{"Type": "Face", "Name": n, "Area": {"X": x + 0.1, "Y": y + 0.1,
                              "W": 0.2, "H": 0.2, "Unit": "normalized"}} for n, x, y in regions]}}
    values = tmp_path / "values.json"
    values.write_text(json.dumps([{"SourceFile": "*", **packet}]))
    subprocess.run(["exiftool", "-q", "-overwrite_original", f"-j={values}", str(original)],
                   check=True)
    for folder in ("b", "c"):
        (lib / folder).mkdir()
        os.link(original, lib / folder / "anna.jpg")
    sidecar = {"RegionInfo": {"RegionList": [{"Type": "Face", "Name": "Bob", "Area": {
        "X": 0.1, "Y": 0.1, "W": 0.2, "H": 0.2, "Unit": "normalized"}}]}}
    values.write_text(json.dumps([{"SourceFile": "*", **sidecar}]))
    subprocess.run(["exiftool", "-q", f"-j={values}", str(lib / "c" / "anna.jpg.xmp")],
                   check=True)  # a new sidecar, as another tool writes it
    s = Scanner(tmp_path / "f.db")
    stats = s.scan(lib)
    assert len(decodes) == 1 and stats.faces == 3 and stats.xmp_warnings == []
    # a/ and b/ read their embedded names; c/ its sidecar, which is read first.
    assert (stats.xmp_faces_named, stats.xmp_regions_alone) == (3, 2)
    with sqlite3.connect(tmp_path / "f.db") as db:
        rows = db.execute(
            "SELECT p.path, r.name, r.face_id IS NOT NULL FROM xmp_regions r "
            "JOIN photos p ON p.id = r.photo_id ORDER BY p.path, r.name"
        ).fetchall()
    assert [(Path(p).parent.name, n, on_face) for p, n, on_face in rows] == [
        ("a", "Anna", 1), ("a", "Ghost", 0), ("b", "Anna", 1), ("b", "Ghost", 0), ("c", "Bob", 1)
    ]
