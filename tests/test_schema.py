"""Schema versions: step-by-step upgrades, tested on a database written by the release
before (tests/data/db), and an interrupted upgrade leaves the old version."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facecluster import schema
from facecluster.cache import FaceCache
from facecluster.cli import app
from facecluster.errors import CacheError

from .conftest import SAMPLE

RELEASE_DB = SAMPLE / "db" / "schema1-release-6dd1a9a.db"
runner = CliRunner()


def tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as con:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_a_new_database_runs_every_step(tmp_path: Path) -> None:
    FaceCache(tmp_path / "new.db").close()
    with sqlite3.connect(tmp_path / "new.db") as con:
        assert schema.version_of(con) == schema.VERSION
    expected = {"photos", "faces", "persons", "tombstones", "generations"}
    assert expected <= tables(tmp_path / "new.db")


def test_the_previous_release_database_is_upgraded_and_keeps_its_names(tmp_path: Path) -> None:
    db = tmp_path / "faces.db"
    shutil.copy2(RELEASE_DB, db)
    with sqlite3.connect(db) as con:
        assert schema.version_of(con) == 1
    assert "generations" not in tables(db)
    listed = runner.invoke(app, ["people", "--db", str(db), "--model", "dlib-resnet", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(p["name"], p["faces"]) for p in json.loads(listed.stdout)] == [("Colin Powell", 2)]
    with sqlite3.connect(db) as con:
        assert schema.version_of(con) == schema.VERSION
    assert {"tombstones", "generations", "generation_assignments", "xmp_regions"} <= tables(db)


def test_a_version_2_database_gets_the_xmp_regions_table_and_keeps_its_names(
    tmp_path: Path,
) -> None:
    """Step 3 on a database of the version before it: names and photos untouched, the
    table of names read from XMP added (empty), its foreign keys live."""
    db = tmp_path / "faces.db"
    with FaceCache(db) as cache, cache.transaction() as con:
        con.execute("INSERT INTO encoders VALUES (1, 'e', '{}', 3, 0)")
        con.execute("INSERT INTO photos VALUES (1, '/p/a.jpg', 1, 1, 'd', 10, 10, 'ok', NULL, 0)")
        con.execute("INSERT INTO persons VALUES (1, 1, 'Anna', 1, 0)")
    with sqlite3.connect(db, isolation_level=None) as con:  # as version 2 left it
        con.execute("DROP TABLE xmp_regions")
        con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    FaceCache(db).close()
    with sqlite3.connect(db) as con:
        assert schema.version_of(con) == schema.VERSION
        assert con.execute("SELECT id, name FROM persons").fetchall() == [(1, "Anna")]
        assert con.execute("SELECT COUNT(*) FROM xmp_regions").fetchone() == (0,)
        con.execute("PRAGMA foreign_keys = ON")
        con.execute(
            "INSERT INTO xmp_regions (photo_id, face_id, name, x1, y1, x2, y2, source) "
            "VALUES (1, NULL, 'Anna', 0, 0, 1, 1, 'sidecar mwg')"
        )
        con.execute("DELETE FROM photos WHERE id = 1")
        assert con.execute("SELECT COUNT(*) FROM xmp_regions").fetchone() == (0,)


def test_a_version_3_database_gets_the_vector_log_with_an_anchor_per_encoder(
    tmp_path: Path,
) -> None:
    """Step 4: the log of vector changes (find's index file reads it), one anchor row per
    encoder for the vectors already there, and triggers that log every later change."""
    db = tmp_path / "faces.db"
    with FaceCache(db) as cache, cache.transaction() as con:
        con.execute("INSERT INTO encoders VALUES (1, 'e', '{}', 1, 0)")
        con.execute("INSERT INTO photos VALUES (1, '/p/a.jpg', 1, 1, 'd', 10, 10, 'ok', NULL, 0)")
        for face in (1, 2):
            con.execute("INSERT INTO faces VALUES (?, 1, ?, 0, 0, 1, 1, 1, zeroblob(40))",
                        (face, face))
            con.execute("INSERT INTO embeddings VALUES (?, 1, zeroblob(4))", (face,))
    with sqlite3.connect(db, isolation_level=None) as con:  # as version 3 left it
        for trigger in ("vector_inserted", "vector_updated", "vector_deleted"):
            con.execute(f"DROP TRIGGER {trigger}")
        con.execute("DROP TABLE vector_changes")
        con.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with FaceCache(db) as cache:
        log = "SELECT face_id, encoder_id FROM vector_changes ORDER BY seq"
        assert cache.db.execute(log).fetchall() == [(2, 1)]
        with cache.transaction() as con:
            con.execute("INSERT OR REPLACE INTO embeddings VALUES (1, 1, zeroblob(4))")
            con.execute("DELETE FROM faces WHERE id = 2")  # its vector goes with it
        assert cache.db.execute(log).fetchall() == [(2, 1), (1, 1), (2, 1)]


@pytest.mark.model
def test_photos_of_the_previous_release_moved_keep_their_name(tmp_path: Path) -> None:
    """The old database's photos now live elsewhere: a scan recognises them by content."""
    db = tmp_path / "faces.db"
    shutil.copy2(RELEASE_DB, db)
    photos = tmp_path / "moved"
    photos.mkdir()
    for rel in ("Colin_Powell/Colin_Powell_0001.jpg", "Colin_Powell/Colin_Powell_0004.jpg",
                "Tony_Blair/Tony_Blair_0011.jpg"):
        shutil.copy2(SAMPLE / "people" / rel, photos)
    scan = runner.invoke(app, ["scan", str(photos), "--db", str(db), "--model", "dlib-resnet",
                               "--json"])
    assert scan.exit_code == 0, scan.output
    assert json.loads(scan.stdout)["photos_moved"] == 3
    runner.invoke(app, ["group", "--db", str(db), "--model", "dlib-resnet"])
    shown = runner.invoke(app, ["people", "--db", str(db), "--model", "dlib-resnet", "show", "1",
                                "--json"])
    faces = json.loads(shown.stdout)
    assert faces["name"] == "Colin Powell"
    assert sorted(Path(f["photo"]).name for f in faces["faces"]) == [
        "Colin_Powell_0001.jpg", "Colin_Powell_0004.jpg"]


def test_an_interrupted_upgrade_leaves_the_old_version(tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "faces.db"
    shutil.copy2(RELEASE_DB, db)
    monkeypatch.setitem(schema.STEPS, 2, schema.STEPS[2] + ";\nCREATE TABLE broken (")
    with pytest.raises(CacheError):
        FaceCache(db)
    with sqlite3.connect(db) as con:
        assert schema.version_of(con) == 1
    assert "tombstones" not in tables(db)
