"""YuNet through the detector registry, on real photos; the detector each database records.

The in-repo photos (tests/data) for the default run, the edge set for ``shared_data``."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facecluster import FaceIndex
from facecluster.cli import app
from facecluster.detect import (
    AUTO_DETECTOR,
    DETECTOR_NOTE,
    DetectorMismatch,
    choose_detector,
    load_detector,
)
from facecluster.imageio import open_rgb
from facecluster.records import FileEntry
from facecluster.registry import UnknownName
from facecluster.stages import detect_photos, embed_file, load_photo
from facecluster.yunet import to_mtcnn_box

from .conftest import EDGE, SAMPLE, copy_sample_people, sample_edge, sample_people

runner = CliRunner()


@pytest.fixture(scope="module")
def yunet():
    return load_detector("yunet")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return float(w * h / union)


# --- the detector -----------------------------------------------------------------------
@pytest.mark.model
def test_yunet_finds_each_portrait_with_mtcnns_box_and_landmark_order(yunet, detector):
    """Same face, same box geometry (TO_MTCNN) and the protocol's landmark order: the
    image's left eye and mouth corner first, the nose between the eyes and the mouth."""
    for files in sample_people().values():
        img = open_rgb(files[0])
        (faces,) = yunet.detect([img], [20.0])
        (reference,) = detector.detect([img], [20.0])
        assert len(faces) == 1 and len(reference) == 1
        face, ref = faces[0], reference[0]
        assert face.prob >= 0.6 and iou(face.box, ref.box) > 0.8
        lm = face.landmarks
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # left as seen in the image
        assert max(lm[0, 1], lm[1, 1]) < lm[2, 1] < min(lm[3, 1], lm[4, 1])
        side = ref.box[2] - ref.box[0]
        off = np.abs(lm - ref.landmarks)
        assert off[:2].max() < 0.06 * side and off.max() < 0.15 * side  # mouths differ most


@pytest.mark.model
def test_yunet_counts_the_in_repo_group_and_no_face_photo(yunet):
    group = open_rgb(sample_edge("multi_face"))  # 3 faces (dlib's VOC boxes)
    flowers = open_rgb(sample_edge("no_face"))
    found = yunet.detect([group, flowers], [20.0, 20.0])
    assert [len(f) for f in found] == [3, 0]


@pytest.mark.model
def test_min_sizes_drop_smaller_faces_and_timings_are_kept(yunet):
    img = open_rgb(sample_edge("multi_face"))
    timings: dict[str, float] = {}
    (all_faces,) = yunet.detect([img], [1.0], timings)
    sides = sorted(min(f.box[2] - f.box[0], f.box[3] - f.box[1]) for f in all_faces)
    (kept,) = yunet.detect([img], [sides[0] + 1.0])
    assert len(kept) == len(all_faces) - 1
    assert timings["detect.yunet"] > 0


def test_yunet_box_becomes_mtcnns_geometry():
    box = to_mtcnn_box(np.array([100, 200, 50, 60], np.float32))
    assert box[2] - box[0] == pytest.approx(50 * 0.9937, abs=1e-3)
    assert (box[0] + box[2]) / 2 == pytest.approx(125 - 0.0137 * 50, abs=1e-3)


@pytest.mark.model
@pytest.mark.parametrize("model", ["sface", "dlib-resnet"])
def test_landmarks_feed_the_aligners_the_same_face(yunet, detector, model):
    """The embedding of a portrait through YuNet's face is the one through MTCNN's, far
    inside the encoder's same-person threshold (measured: sface 0.16 at most of 1.24,
    dlib-resnet 0.005 of 0.155 on the in-repo portraits)."""
    from facecluster.encoders import encoder_spec, load_encoder

    spec = encoder_spec(model)
    encoder = load_encoder(spec, None, "cpu")
    for files in sample_people().values():
        _, _, by_mtcnn = embed_file(files[0], detector, encoder)
        _, _, by_yunet = embed_file(files[0], yunet, encoder)
        distance = float(((by_mtcnn[0] - by_yunet[0]) ** 2).sum())
        assert distance < 0.25 * spec.default_threshold


@pytest.mark.model
def test_a_camera_size_photo_is_detected_on_yunets_copy_in_photo_pixels(yunet, tmp_path):
    """A 4000 x 3000 JPEG with a portrait pasted at a known place: the decode makes YuNet's
    2240 px copy (detect.YUNET_SIDE), and the face comes back in the photo's pixels."""
    from PIL import Image

    from facecluster.detect import YUNET_SIDE
    from facecluster.encoders import encoder_spec, load_encoder

    portrait = Image.open(sample_people()["Tony_Blair"][0]).convert("RGB")
    canvas = Image.new("RGB", (4000, 3000), (90, 110, 90))
    canvas.paste(portrait.resize((500, 500)), (2500, 1200))
    canvas.save(tmp_path / "big.jpg", quality=90)
    photo, faces, vectors = embed_file(tmp_path / "big.jpg", yunet, load_encoder("sface"))
    assert max(photo.small.shape[:2]) == YUNET_SIDE and (photo.width, photo.height) == (4000, 3000)
    assert len(faces) == 1 and vectors.shape == (1, encoder_spec("sface").dim)
    (x1, y1, x2, y2) = faces[0].box
    assert 2500 < x1 < x2 < 3000 and 1200 < y1 < y2 < 1700 and x2 - x1 > 100


# --- the database's detector -------------------------------------------------------------
def test_choose_detector_keeps_the_databases_and_refuses_another():
    assert choose_detector("auto", None, False) == AUTO_DETECTOR  # a new database
    assert choose_detector("auto", None, True) == "mtcnn"  # made before the record
    assert choose_detector("auto", "yunet", True) == "yunet"
    assert choose_detector("mtcnn", "yunet", False) == "mtcnn"  # no faces: nothing to mix
    assert choose_detector("yunet", "yunet", True) == "yunet"
    with pytest.raises(DetectorMismatch, match="found by mtcnn: --detector yunet"):
        choose_detector("yunet", None, True)
    with pytest.raises(DetectorMismatch) as err:
        choose_detector("mtcnn", "yunet", True)
    assert err.value.exit_code == 2
    with pytest.raises(UnknownName, match="unknown detector 'haar'"):
        choose_detector("haar", None, False)


def note(db: Path) -> str | None:
    con = sqlite3.connect(db)
    row = con.execute("SELECT value FROM meta WHERE key = ?", (DETECTOR_NOTE,)).fetchone()
    con.close()
    return None if row is None else row[0]


def scan(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["scan", *args], env=env)


@pytest.mark.model
def test_a_database_keeps_its_detector_and_refuses_a_mix(tmp_path, fault):
    fault(
        "detector",
        "scan a YuNet database again with --detector mtcnn",
        "refused with one error line (exit 2), the database unchanged; auto keeps YuNet",
    )
    root = copy_sample_people(tmp_path / "photos", {"Colin_Powell": 2})
    db = tmp_path / "f.db"
    first = scan(str(root), "--db", str(db), "--detector", "yunet", "--json")
    assert first.exit_code == 0, first.output
    stats = json.loads(first.stdout)
    assert note(db) == "yunet" and stats["faces_new"] == 2
    assert stats["timings"]["detect.yunet"] > 0
    before = db.read_bytes()
    other = scan(str(root), "--db", str(db), "--detector", "mtcnn", "--rescan")
    assert other.exit_code == 2
    assert other.stderr.splitlines() == [
        "error: this database's faces were found by yunet: --detector mtcnn would mix two "
        "detectors (use --detector yunet or auto, or another --db)"
    ]
    assert db.read_bytes() == before
    again = scan(str(root), "--db", str(db), "--rescan")
    assert again.exit_code == 0 and "detector: yunet" in again.stderr
    from_env = scan(str(root), "--db", str(db), env={"FACECLUSTER_DETECTOR": "mtcnn"})
    assert from_env.exit_code == 2 and "found by yunet" in from_env.stderr


@pytest.mark.model
def test_a_database_from_before_the_record_stays_with_mtcnn(tmp_path):
    """tests/data/db holds a database made by an older release (MTCNN, no detector
    record): 'auto' goes on with MTCNN, an explicit YuNet is refused."""
    db = tmp_path / "old.db"
    shutil.copy2(SAMPLE / "db" / "schema1-release-6dd1a9a.db", db)
    with FaceIndex(db, model="dlib-resnet") as index:
        assert index.detector == "mtcnn"
    with FaceIndex(db, model="dlib-resnet", detector="yunet") as index:
        with pytest.raises(DetectorMismatch):
            index.detector  # noqa: B018
    root = copy_sample_people(tmp_path / "photos", {"Tony_Blair": 1})
    res = scan(str(root), "--db", str(db), "--model", "dlib-resnet")
    assert res.exit_code == 0, res.output
    assert "detector: mtcnn" in res.stderr and note(db) == "mtcnn"


# --- the edge set (../shared/data) --------------------------------------------------------
@pytest.mark.shared_data
@pytest.mark.model
def test_yunet_multi_face_counts_of_the_edge_set(yunet):
    """Measured by bench/detectors.py: YuNet gives the manifest's count for every group
    photo but the Oscars selfie (6 of 7: a face mostly outside the frame, which MTCNN
    finds) and the collage of about 24 faces."""
    import csv

    rows = list(csv.DictReader((EDGE / "manifest.csv").open()))
    misses = []
    for row in rows:
        if row["category"] != "multi_face":
            continue
        path = EDGE / row["path"]
        st = path.stat()
        photo = load_photo(FileEntry(path, st.st_size, st.st_mtime_ns))
        (faces,) = detect_photos(yunet, [photo], 20)  # as a scan: on the detection copy
        if len(faces) != int(row["expected_faces_or_empty"]):
            misses.append(Path(row["path"]).stem)
    assert set(misses) <= {"deepface_selfie-many-people", "dlib_bald_guys_collage"}


# --- detection beside the encoder ---------------------------------------------------------
@pytest.mark.model
def test_detection_in_a_thread_beside_the_encoder_finds_the_same_faces(yunet, detector):
    """stages.detected_runs: YuNet (beside_encoder) detects run i+1 in a thread while the
    caller holds run i; the faces, their order and the runs are those of detecting each run
    in the caller's thread. MTCNN (torch, like the encoder) stays in the caller's thread."""
    import threading

    from facecluster.stages import detected_runs

    files = [fs[0] for fs in sample_people().values()]
    files += [sample_edge("multi_face"), sample_edge("no_face")]
    photos = []
    for f in files:
        st = f.stat()
        photos.append(load_photo(FileEntry(f, st.st_size, st.st_mtime_ns), 1280))
    runs = [(0, 2), (2, 3), (3, 5), (5, 6)]
    assert yunet.beside_encoder and not getattr(detector, "beside_encoder", False)
    timings: dict[str, float] = {}
    got = list(detected_runs(yunet, photos, runs, 20, timings))
    assert [(a, b) for a, b, _ in got] == runs
    for a, b, found in got:
        alone = detect_photos(yunet, photos[a:b], 20)
        assert [len(f) for f in found] == [len(f) for f in alone]
        for mine, ref in zip(sum(found, []), sum(alone, []), strict=True):
            np.testing.assert_array_equal(mine.box, ref.box)
            np.testing.assert_array_equal(mine.landmarks, ref.landmarks)
    assert [len(sum(f, [])) for *_, f in got] == [2, 1, 4, 0]  # 2 portraits, 1, group 3 + 1
    assert "wait for detection" in timings and timings["detect.yunet"] > 0

    threads: list[str] = []

    class Recording:
        name = "mtcnn"

        def detect(self, images, min_sizes=None, timings=None):
            threads.append(threading.current_thread().name)
            return detector.detect(images, min_sizes, timings)

    list(detected_runs(Recording(), photos, runs, 20, {}))
    assert threads == [threading.current_thread().name] * len(runs)
