"""Fault suite: kill -9 at random points of scan, group and people (real photos).

Each command is run once to count its SQL statements, then again from the same database
and killed with SIGKILL just before a statement drawn at random (and before its last
one): the database must pass SQLite's integrity check and hold either the state before
the command or the state after it, never a mix, and the next run must finish the job.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facecluster.cli import app

from .conftest import ROOT, copy_photos

pytestmark = [pytest.mark.shared_data, pytest.mark.model, pytest.mark.fault]
runner = CliRunner()
KILLER = ROOT / "tests" / "killer.py"
POINTS = 3  # random kill points per command, plus the last statement


def cli(*args: str) -> dict | list:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def state(db: Path) -> tuple:
    """Everything the user's work lives in: persons, assignments, rejections, history."""
    with sqlite3.connect(db) as con:
        return tuple(
            tuple(con.execute(q).fetchall())
            for q in (
                "SELECT id, name, confirmed FROM persons ORDER BY id",
                "SELECT face_id, person_id, manual FROM assignments ORDER BY face_id",
                "SELECT face_id, person_id FROM rejections ORDER BY face_id, person_id",
                "SELECT id, action FROM generations ORDER BY id",
            )
        )


def copy_db(src: Path, dst: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            shutil.copy2(f"{src}{suffix}", f"{dst}{suffix}")
    return dst


def run_killed(db: Path, kill_at: int, args: list[str], tmp: Path) -> int:
    count_file = tmp / "count"
    proc = subprocess.run(
        [sys.executable, str(KILLER), str(kill_at), str(count_file), *args, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if kill_at == 0:
        assert proc.returncode == 0, proc.stderr
        return int(count_file.read_text())
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return kill_at


def kill_points(db: Path, args: list[str], tmp: Path, seed: int) -> tuple[list[int], Path]:
    done = copy_db(db, tmp / "complete.db")
    n = run_killed(done, 0, args, tmp)
    assert n > 2
    picks = random.Random(seed).sample(range(1, n), min(POINTS, n - 1))
    return sorted(picks) + [n], done


def assert_sound(db: Path) -> None:
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []


@pytest.fixture(scope="module")
def named_library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A scanned, grouped library with a named person, a merge and a removed face."""
    tmp = tmp_path_factory.mktemp("kill")
    lib = copy_photos(tmp / "photos", {"Colin_Powell": 3, "Tony_Blair": 3, "Tom_Hanks": 2})
    db = tmp / "faces.db"
    cli("scan", str(lib), "--db", str(db))
    cli("group", "--db", str(db))
    ids = [p["id"] for p in cli("people", "--db", str(db))]
    cli("people", "--db", str(db), "name", str(ids[0]), "Anna")
    shown = cli("people", "--db", str(db), "show", str(ids[1]))
    cli("people", "--db", str(db), "remove-face", str(shown["faces"][0]["face_id"]))
    return lib, db


@pytest.mark.parametrize(
    "args",
    [
        ["group", "--threshold", "0.3"],
        ["people", "name", "{p1}", "Bob"],
        ["people", "merge", "{p0}", "{p1}"],
        ["people", "undo"],
    ],
    ids=["group", "people-name", "people-merge", "people-undo"],
)
def test_kill_9_leaves_the_state_before_or_after(named_library, tmp_path, args, fault):
    fault("kill -9", f"SIGKILL at random SQL statements of '{' '.join(args[:2])}'",
          "integrity check passes; persons, names and corrections are exactly as before "
          "or as after the command, never a mix")
    _, db = named_library
    ids = [p["id"] for p in cli("people", "--db", str(db))]
    args = [a.format(p0=ids[0], p1=ids[1]) for a in args]
    before = state(db)
    points, done = kill_points(db, args, tmp_path, seed=len(args[0]))
    after = state(done)
    assert after != before
    for k in points:
        victim = copy_db(db, tmp_path / f"killed-{k}.db")
        run_killed(victim, k, args, tmp_path)
        assert_sound(victim)
        assert state(victim) in (before, after), f"mixed state after a kill at statement {k}"


def test_kill_9_during_rescan_then_resume_keeps_every_name(named_library, tmp_path, fault):
    fault("kill -9", "SIGKILL at random SQL statements of 'scan --rescan', then scan again "
          "and group", "integrity check passes; the resumed scan completes and every "
          "person keeps its name and faces")
    lib, db = named_library
    before = state(db)
    args = ["scan", str(lib), "--rescan", "--batch-size", "2", "--quiet"]
    points, _ = kill_points(db, args, tmp_path, seed=7)
    for k in points:
        victim = copy_db(db, tmp_path / f"killed-{k}.db")
        run_killed(victim, k, args, tmp_path)
        assert_sound(victim)
        resumed = cli("scan", str(lib), "--db", str(victim))
        assert resumed["photos_failed"] == 0
        # A rescan only re-reads: persons, faces, names and corrections are as before.
        assert state(victim)[:3] == before[:3], f"kill at statement {k}"
