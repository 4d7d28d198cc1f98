"""`facecluster scan` end to end: real MTCNN and the offline dlib encoder on real photos."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facecluster.cache import FaceCache
from facecluster.cli import app

from .conftest import DEV, EDGE, copy_photos, edge_manifest

pytestmark = [pytest.mark.shared_data, pytest.mark.model]
runner = CliRunner()


def scan_json(*args: str) -> dict:
    result = runner.invoke(app, ["scan", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def embedding_rows(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]


@pytest.fixture(scope="module")
def small_library(tmp_path_factory):
    """Eight photos of three dev people, scanned once; tests copy it before changing it."""
    root = copy_photos(
        tmp_path_factory.mktemp("lib") / "photos",
        {"Ariel_Sharon": 3, "Serena_Williams": 3, "Tom_Hanks": 2},
    )
    db = root.parent / "faces.db"
    first = scan_json(str(root), "--db", str(db))
    return root, db, first


def test_first_scan_finds_a_face_in_every_photo(small_library):
    _, db, first = small_library
    assert first["photos_total"] == 8 and first["photos_new"] == 8
    assert first["photos_failed"] == 0 and first["no_face"] == 0
    assert first["faces"] >= 8 and first["embeddings_computed"] == first["faces"]
    assert first["model"] == "dlib-resnet"
    for key in ("photos_unchanged", "photos_moved", "photos_removed", "seconds", "failures"):
        assert key in first
    with FaceCache(db) as cache:
        ((enc_id, name, identity, count),) = cache.encoders()
        ids, vectors = cache.embeddings(enc_id)
    assert name == "dlib-resnet" and identity["weights_sha256"] and count == first["faces"]
    assert vectors.shape == (first["faces"], 128)
    assert abs(float((vectors**2).sum(axis=1).mean()) - 1.0) < 1e-4


def test_second_scan_reads_nothing(small_library):
    root, db, first = small_library
    again = scan_json(str(root), "--db", str(db))
    assert again["photos_unchanged"] == again["photos_total"] == 8
    assert again["embeddings_computed"] == 0 and again["faces"] == first["faces"]
    assert again["seconds"] < max(0.1 * first["seconds"], 0.5)


def test_rename_and_delete_are_recognised_without_new_embeddings(small_library, tmp_path):
    root, db, first = small_library
    lib, copy_db = tmp_path / "photos", tmp_path / "faces.db"
    shutil.copytree(root, lib)
    shutil.copy2(db, copy_db)
    # The originals are still there, so the copies are duplicates: indexed by content
    # hash, their faces and vectors are copied, no model runs.
    base = scan_json(str(lib), "--db", str(copy_db))
    assert base["photos_new"] == 8 and base["photos_moved"] == 0
    assert base["embeddings_computed"] == 0 and base["faces"] == first["faces"]
    before = embedding_rows(copy_db)

    photos = sorted((lib / "Serena_Williams").iterdir())
    photos[0].rename(lib / "Serena_Williams" / "renamed.jpg")
    photos[1].unlink()
    after = scan_json(str(lib), "--db", str(copy_db))
    assert after["photos_moved"] == 1 and after["photos_removed"] == 1
    assert after["photos_new"] == 0 and after["embeddings_computed"] == 0
    assert after["photos_total"] == 7
    assert embedding_rows(copy_db) < before  # the deleted photo's faces are gone


def test_changed_file_is_read_again(small_library, tmp_path):
    root, db, _ = small_library
    lib, copy_db = tmp_path / "photos", tmp_path / "faces.db"
    shutil.copytree(root, lib)
    scan_json(str(lib), "--db", str(copy_db))
    target = sorted((lib / "Tom_Hanks").iterdir())[0]
    shutil.copy2(sorted((DEV / "Ariel_Sharon").iterdir())[5], target)  # new content, same name
    os.utime(target, ns=(time.time_ns(), time.time_ns()))
    out = scan_json(str(lib), "--db", str(copy_db))
    assert out["photos_changed"] == 1 and out["photos_unchanged"] == 7
    assert out["embeddings_computed"] >= 1


def test_broken_files_are_listed_not_fatal(tmp_path):
    broken = [r["path"] for r in edge_manifest() if r["category"] == "broken"]
    db = tmp_path / "faces.db"
    out = scan_json(str(EDGE / "broken"), "--db", str(db))
    failed = {Path(f["path"]).name for f in out["failures"]}
    assert failed == {Path(p).name for p in broken}
    assert out["photos_failed"] == len(broken)
    strict = runner.invoke(
        app, ["scan", str(EDGE / "broken"), "--db", str(db), "--strict", "--quiet"]
    )
    assert strict.exit_code == 1
    assert strict.stdout == ""


def test_exif_rotated_copies_all_show_the_face(tmp_path):
    out = scan_json(str(EDGE / "exif_orientation"), "--db", str(tmp_path / "f.db"))
    with FaceCache(tmp_path / "f.db") as cache:
        index = cache.photo_index()
    tagged = [p for p in index if "no_tag" not in p]
    assert len(tagged) == 19 and out["photos_failed"] == 0
    missing = [p for p in tagged if index[p].status != "ok"]
    assert missing == []


def test_multi_face_photos_yield_every_face(tmp_path):
    """Within max(1, 20%) of the edge manifest's count (the 24-face collage is approximate)."""
    db = tmp_path / "f.db"
    scan_json(str(EDGE / "multi_face"), "--db", str(db))
    with FaceCache(db) as cache:
        counts = {Path(p).name: len(cache.faces_of(r.id)) for p, r in cache.photo_index().items()}
    for row in edge_manifest():
        if row["category"] == "multi_face":
            expected = int(row["expected_faces_or_empty"])
            found = counts[Path(row["path"]).name]
            assert abs(found - expected) <= max(1, round(0.2 * expected)), (row["path"], found)


def test_missing_path_and_locked_database_are_one_line_errors(tmp_path):
    result = runner.invoke(app, ["scan", str(tmp_path / "nope"), "--db", str(tmp_path / "f.db")])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "no such file" in result.stderr

    with FaceCache(tmp_path / "f.db") as holder:
        holder.lock()
        result = runner.invoke(app, ["scan", str(EDGE / "no_face"), "--db", str(tmp_path / "f.db")])
    assert result.exit_code == 2 and "another facecluster scan" in result.stderr


def test_not_a_database_is_a_clear_error(tmp_path):
    bogus = tmp_path / "bogus.db"
    bogus.write_text("this is not sqlite" * 100)
    result = runner.invoke(app, ["scan", str(EDGE / "no_face"), "--db", str(bogus)])
    assert result.exit_code == 2 and "not a facecluster database" in result.stderr


def test_kill_9_mid_scan_then_resume_gives_the_same_index(tmp_path):
    lib = copy_photos(tmp_path / "photos", {"Colin_Powell": 16, "Tony_Blair": 16})
    reference = scan_json(str(lib), "--db", str(tmp_path / "ref.db"), "--quiet")

    db = tmp_path / "killed.db"
    cmd = [
        sys.executable,
        "-m",
        "facecluster",
        "scan",
        str(lib),
        "--db",
        str(db),
        "--batch-size",
        "4",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    committed = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
                committed = con.execute("SELECT COUNT(*) FROM photos").fetchone()[0]
        except sqlite3.Error:
            continue
        if committed >= 8:
            break
    assert proc.poll() is None, "scan finished before it could be killed"
    proc.kill()
    proc.wait()
    assert 8 <= committed < 32

    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    resumed = scan_json(str(lib), "--db", str(db))
    assert resumed["photos_unchanged"] >= 8 and resumed["photos_total"] == 32
    assert resumed["faces"] == reference["faces"]
