"""`facecluster scan` end to end: real MTCNN and the offline dlib encoder on real photos,
the in-repo ones (tests/data) by default, the full shared sets where marked."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from typer.testing import CliRunner

from facecluster.cache import FaceCache
from facecluster.cli import app

from .conftest import (
    EDGE,
    SAMPLE,
    copy_photos,
    db_copy,
    edge_manifest,
    sample_edge,
    sample_manifest,
)

pytestmark = pytest.mark.model
runner = CliRunner()


def scan_json(*args: str) -> dict:
    result = runner.invoke(app, ["scan", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def embedding_rows(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]


def db_tables(db: Path) -> dict[str, list[tuple]]:
    """Every row that matters; a photo that failed is tried again with --retry-failed (its
    row is rewritten), so for those only what the row says."""
    with sqlite3.connect(db) as con:
        out = {
            t: con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
            for t in ("faces", "embeddings", "encoders", "persons", "assignments")
        }
        out["photos"] = con.execute(
            "SELECT * FROM photos WHERE status != 'failed' ORDER BY id"
        ).fetchall()
        out["failed"] = con.execute(
            "SELECT path, size, mtime_ns, error FROM photos WHERE status = 'failed' ORDER BY path"
        ).fetchall()
    return out


def snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    return {
        str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns, p.stat().st_mode)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --- the in-repo photos ----------------------------------------------------------------


def test_scan_finds_every_face_and_lists_the_broken_file(scanned_sample):
    out, rows, root = scanned_sample.stats, sample_manifest(), scanned_sample.root
    expected = {r["path"]: r["expected_faces"] for r in rows}
    assert out["photos_total"] == len(rows) == 18 and out["photos_new"] == 17  # + the broken one
    assert out["photos_failed"] == 1 and out["no_face"] == 1
    (failure,) = out["failures"]
    assert failure["path"].endswith(sample_edge("broken").name) and "truncated" in failure["error"]
    assert out["faces"] == out["embeddings_computed"] == sum(int(n or 0) for n in expected.values())
    assert out["model"] == "sface"  # auto, offline
    for key in ("photos_unchanged", "photos_moved", "photos_removed", "seconds", "timings"):
        assert key in out
    with FaceCache(scanned_sample.db) as cache:
        found = {
            Path(p).relative_to(root).as_posix(): (r.status, len(cache.faces_of(r.id)))
            for p, r in cache.photo_index().items()
        }
        ((enc_id, name, identity, count),) = cache.encoders()
        _, vectors = cache.embeddings(enc_id)
    # Every portrait, the sideways-stored EXIF photo (turned upright first) and each face
    # of the group photo; none in the flower; the truncated JPEG failed.
    assert {p: n for p, (_, n) in found.items() if expected[p]} == {
        p: int(n) for p, n in expected.items() if n
    }
    assert found[sample_edge("broken").relative_to(SAMPLE).as_posix()][0] == "failed"
    assert found[sample_edge("no_face").relative_to(SAMPLE).as_posix()] == ("no_face", 0)
    assert name == "sface" and identity["weights_sha256"] and count == out["faces"]
    assert vectors.shape == (out["faces"], 128)
    assert abs(float((vectors**2).sum(axis=1).mean()) - 1.0) < 1e-4


def test_scan_summary_names_the_broken_file_and_strict_exits_1(scanned_sample, tmp_path):
    db = db_copy(scanned_sample, tmp_path / "faces.db")
    broken = scanned_sample.root / sample_edge("broken").relative_to(SAMPLE)
    # Unchanged since the scan that found it broken: counted, not read again.
    again = runner.invoke(app, ["scan", str(scanned_sample.root), "--db", str(db)])
    assert again.exit_code == 0, again.output
    assert re.search(r"failed \(unchanged since last scan\) │ +1 │", again.stdout)
    assert "1 photo that failed before and did not change was not read again" in again.stderr
    assert "--retry-failed" in again.stderr and f"failed: {broken}" not in again.stderr
    result = runner.invoke(
        app, ["scan", str(scanned_sample.root), "--db", str(db), "--retry-failed"]
    )
    assert result.exit_code == 0, result.output
    assert "photos found" in result.stdout and "failed" in result.stdout
    assert f"failed: {broken}: corrupt JPEG image" in result.stderr
    assert "Traceback" not in result.output
    for retry in ([], ["--retry-failed"]):  # a broken photo is a failure either way
        strict = runner.invoke(
            app, ["scan", str(scanned_sample.root), "--db", str(db), "--strict", "-q", *retry]
        )
        assert strict.exit_code == 1 and strict.stdout == ""


def test_unchanged_rescan_touches_nothing(scanned_sample, tmp_path):
    db = db_copy(scanned_sample, tmp_path / "faces.db")
    photos, tables = snapshot(scanned_sample.root), db_tables(db)
    again = scan_json(str(scanned_sample.root), "--db", str(db))
    # Nothing is read: neither the unchanged photos nor the broken file that has not
    # changed since it failed (--retry-failed would try it).
    assert again["photos_unchanged"] == again["photos_total"] - 1 == 17
    assert again["photos_failed"] == 0 and again["photos_failed_unchanged"] == 1
    assert again["photos_new"] == again["photos_changed"] == again["faces_new"] == 0
    assert again["embeddings_computed"] == 0 and again["faces"] == scanned_sample.stats["faces"]
    assert again["seconds"] < max(0.1 * scanned_sample.stats["seconds"], 0.5)
    assert db_tables(db) == tables
    assert snapshot(scanned_sample.root) == photos  # nothing changed or written beside them


def test_rename_and_delete_are_recognised_without_new_embeddings(scanned_sample, tmp_path):
    lib = tmp_path / "photos"
    shutil.copytree(scanned_sample.root, lib)
    db = db_copy(scanned_sample, tmp_path / "faces.db")
    first = scanned_sample.stats
    # The originals are still there, so the copies are duplicates: indexed by content
    # hash, their faces and vectors are copied, no model runs.
    base = scan_json(str(lib), "--db", str(db))
    assert base["photos_new"] == 17 and base["photos_moved"] == 0
    assert base["embeddings_computed"] == 0 and base["faces"] == first["faces"]
    before = embedding_rows(db)

    photos = sorted((lib / "people" / "Serena_Williams").iterdir())
    photos[0].rename(lib / "people" / "Serena_Williams" / "renamed.jpg")
    photos[1].unlink()
    after = scan_json(str(lib), "--db", str(db))
    assert after["photos_moved"] == 1 and after["photos_removed"] == 1
    assert after["photos_new"] == 0 and after["embeddings_computed"] == 0
    assert after["photos_total"] == 17
    assert embedding_rows(db) < before  # the deleted photo's faces are gone


def test_changed_file_is_read_again(scanned_sample, tmp_path):
    lib = tmp_path / "photos"
    shutil.copytree(scanned_sample.root, lib)
    db = db_copy(scanned_sample, tmp_path / "faces.db")
    scan_json(str(lib), "--db", str(db))
    target = sorted((lib / "people" / "Tony_Blair").iterdir())[0]
    with Image.open(target) as im:  # new content, same name: the portrait mirrored
        ImageOps.mirror(im).save(target, quality=95)
    os.utime(target, ns=(time.time_ns(), time.time_ns()))
    out = scan_json(str(lib), "--db", str(db))
    assert out["photos_changed"] == 1 and out["photos_unchanged"] == 16
    assert out["embeddings_computed"] == 1


# --- the full shared sets ---------------------------------------------------------------


@pytest.mark.shared_data
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


@pytest.mark.shared_data
def test_exif_rotated_copies_all_show_the_face(tmp_path):
    out = scan_json(str(EDGE / "exif_orientation"), "--db", str(tmp_path / "f.db"))
    with FaceCache(tmp_path / "f.db") as cache:
        index = cache.photo_index()
    tagged = [p for p in index if "no_tag" not in p]
    assert len(tagged) == 19 and out["photos_failed"] == 0
    missing = [p for p in tagged if index[p].status != "ok"]
    assert missing == []


@pytest.mark.shared_data
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
        result = runner.invoke(
            app, ["scan", str(SAMPLE / "edge" / "no_face"), "--db", str(tmp_path / "f.db")]
        )
    assert result.exit_code == 2 and "another facecluster scan" in result.stderr


def test_not_a_database_is_a_clear_error(tmp_path):
    bogus = tmp_path / "bogus.db"
    bogus.write_text("this is not sqlite" * 100)
    result = runner.invoke(app, ["scan", str(SAMPLE / "edge" / "no_face"), "--db", str(bogus)])
    assert result.exit_code == 2 and "not a facecluster database" in result.stderr


@pytest.mark.shared_data
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
