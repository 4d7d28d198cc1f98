"""Fault suite, failure handling: damaged, read-only and full databases, malformed model
files, hostile names, concurrent writers, errors nobody handled. Each must end in one line
"error: ..." and exit 2 (never a traceback), and leave the user's data as it was.

Real databases, made by scanning the in-repo photos (tests/data) once per module; the disk
is really full and really read-only (tmpfs mounts) where this machine allows mounting, else
SQLite's own limit (PRAGMA max_page_count) gives the same error."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facecluster import dbfile
from facecluster.cache import FaceCache
from facecluster.cli import app
from facecluster.display import safe

from .conftest import ROOT, copy_sample_people

runner = CliRunner()
REAL_CONNECT = dbfile.connect
HOSTILE_FILE = "Tony\x1b[2J\u202egpj.jpg"


def one_line_error(result, *needles: str) -> str:
    """The command ended with exit 2 and one line "error: ..." (after any progress lines)."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert lines and [ln for ln in lines if ln.startswith("error:")] == lines[-1:], result.output
    assert "Traceback" not in result.output
    err = lines[-1]
    for needle in needles:
        assert needle in err, err
    return err


def cli(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), *sys.path]))
    cmd = [*prefix, sys.executable, "-m", "facecluster", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Six portraits (one with a file name a terminal would obey), scanned and grouped."""
    root = tmp_path_factory.mktemp("errors")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACECLUSTER_OFFLINE", "1")
        mp.setenv("XDG_DATA_HOME", str(root / "data"))
        mp.setenv("TORCH_HOME", str(root / "torch"))
        lib = copy_sample_people(root / "photos", {"Colin_Powell": 3, "Tony_Blair": 3})
        first = sorted((lib / "Tony_Blair").iterdir())[0]
        first.rename(first.with_name(HOSTILE_FILE))
        db = root / "faces.db"
        for args in (["scan", str(lib), "--quiet"], ["group", "--quiet"]):
            r = runner.invoke(app, [*args, "--db", str(db)])  # the default encoder
            assert r.exit_code == 0, r.output
    return lib, db


@pytest.fixture
def db(library, tmp_path) -> Path:
    """A fresh copy of the scanned and grouped database."""
    return Path(shutil.copy2(library[1], tmp_path / "faces.db"))


def query(library) -> Path:
    return sorted((library[0] / "Colin_Powell").iterdir())[0]


class Mounts:
    """tmpfs mounts for real full and read-only file systems; unmounted at teardown."""

    def __init__(self) -> None:
        self.points: list[Path] = []

    def tmpfs(self, path: Path, size: str) -> bool:
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0 or not shutil.which("mount"):
            return False
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                           capture_output=True)
        if r.returncode == 0:
            self.points.append(path)
        return r.returncode == 0

    def remount(self, path: Path, opts: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{opts}", str(path)], check=True)

    def close(self) -> None:
        for p in reversed(self.points):
            subprocess.run(["umount", "-l", str(p)], capture_output=True)


@pytest.fixture
def mounts():
    m = Mounts()
    yield m
    m.close()


def limit_pages(monkeypatch, extra: int) -> None:
    """SQLite's own limit: a database may grow `extra` pages past its size at open."""

    def connect(path: Path, *, write: bool):
        con, ro = REAL_CONNECT(path, write=write)
        pages = con.execute("PRAGMA page_count").fetchone()[0]
        con.execute(f"PRAGMA max_page_count = {max(pages, 1) + extra}")
        return con, ro

    monkeypatch.setattr(dbfile, "connect", connect)


# -- damaged database ----------------------------------------------------------------------
def damage(path: Path, where: str) -> None:
    """Random bytes over 20 KB in the middle of the file, or over the one page of a table
    or index (``where``) that the command would not read."""
    blob = bytearray(path.read_bytes())
    at, size = max(4096, len(blob) // 2 - 10240), 20480
    if where != "middle":
        with sqlite3.connect(path) as con:
            (root,) = con.execute("SELECT rootpage FROM sqlite_master WHERE name = ?",
                                  (where,)).fetchone()
            (size,) = con.execute("PRAGMA page_size").fetchone()
        con.close()
        at = (root - 1) * size
    blob[at : at + size] = random.Random(7).randbytes(size)
    path.write_bytes(bytes(blob))


@pytest.mark.fault
@pytest.mark.parametrize("command", ["scan", "group", "people", "people show", "find"])
@pytest.mark.parametrize("where", ["middle", "unread page"])
@pytest.mark.model
def test_damaged_database_is_reported_never_used(fault, library, db, command, where):
    unread = "embeddings" if command.startswith("people") else "photos_digest"
    what = ("20 KB of random bytes in the middle of the database" if where == "middle" else
            f"random bytes over the page of `{unread}`, which `{command}` does not read")
    fault("database", f"{what}, then `{command}`",
          "one line: damaged, how to salvage, that a new database loses the names; exit 2; "
          "find prints no answer")
    damage(db, "middle" if where == "middle" else unread)
    args = {"scan": ["scan", str(library[0])], "find": ["find", str(query(library))],
            "people show": ["people", "show", "1"]}.get(command, command.split())
    r = runner.invoke(app, [*args, "--db", str(db)])
    one_line_error(r, f"{db} is damaged", ".recover", "loses every name")
    assert r.stdout == ""


# -- read-only database --------------------------------------------------------------------
READERS = [["people"], ["people", "show", "1"], ["people", "history"]]
WRITERS = [["group"], ["people", "name", "1", "Colin"]]


@pytest.mark.fault
@pytest.mark.model
def test_read_only_file_system_readers_work_writers_refused(fault, library, db, mounts):
    fault("database", "the database on a file system mounted read-only",
          "people, people show/history, find and group --dry-run answer as from a writable "
          "copy; group, people name and scan refuse in one line naming the read-only mount; "
          "the file is unchanged")
    expected = {" ".join(a): runner.invoke(app, [*a, "--db", str(db)]).stdout for a in READERS}
    ro = db.parent / "ro"
    if not mounts.tmpfs(ro, "4m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    shutil.copy2(db, ro / "faces.db")
    mounts.remount(ro, "ro")
    before = (ro / "faces.db").read_bytes()
    for args in READERS:
        r = runner.invoke(app, [*args, "--db", str(ro / "faces.db")])
        assert r.exit_code == 0 and r.stdout == expected[" ".join(args)], r.output
    r = runner.invoke(app, ["find", str(query(library)), "--db", str(ro / "faces.db")])
    assert r.exit_code == 0 and str(query(library)) in r.stdout.splitlines()[0], r.output
    r = runner.invoke(app, ["group", "--dry-run", "--db", str(ro / "faces.db")])
    assert r.exit_code == 0 and "dry run: nothing was saved" in r.stdout, r.output
    for args in [*WRITERS, ["scan", str(library[0])]]:
        r = runner.invoke(app, [*args, "--db", str(ro / "faces.db")])
        one_line_error(r, "is read-only", "mounted read-only")
    assert (ro / "faces.db").read_bytes() == before


@pytest.mark.fault
@pytest.mark.model
def test_read_only_file_and_folder_readers_work_writers_refused(fault, db):
    fault("database", "the database file (0444) and its folder (0555) not writable",
          "people, people show and history answer; group and people name refuse in one line "
          "naming the file; nothing is written beside it")
    expected = {" ".join(a): runner.invoke(app, [*a, "--db", str(db)]).stdout for a in READERS}
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:  # root writes anything: drop that power in a user namespace
        prefix = ("unshare", "-U")
        if not shutil.which("unshare") or subprocess.run([*prefix, "true"]).returncode:
            pytest.skip("running as root and cannot unshare -U to drop root's overrides")
    db.chmod(0o444)
    db.parent.chmod(0o555)
    try:
        for args in READERS:
            r = cli(*args, "--db", str(db), prefix=prefix)
            assert r.returncode == 0 and r.stdout == expected[" ".join(args)], r.stderr
        for args in WRITERS:
            r = cli(*args, "--db", str(db), prefix=prefix)
            err = r.stderr.strip()
            assert r.returncode == 2 and err.startswith("error: ") and "\n" not in err, err
            assert f"the file {db} is not writable" in err
        assert sorted(p.name for p in db.parent.iterdir()) == ["faces.db"]
    finally:
        db.parent.chmod(0o755)
        db.chmod(0o644)


# -- full disk -----------------------------------------------------------------------------
@pytest.mark.fault
@pytest.mark.parametrize("how", ["tmpfs", "page limit"])
@pytest.mark.model
def test_disk_full_when_creating_the_database(fault, library, tmp_path, mounts, monkeypatch,
                                              how):
    fault("database", f"a new database on a full disk ({how})",
          "one line 'the disk is full', exit 2; no empty database file left behind")
    where = tmp_path / "disk"
    if how == "tmpfs":
        if not mounts.tmpfs(where, "64k"):
            pytest.skip("cannot mount a tmpfs here (needs root)")
        (where / "filler").write_bytes(b"\0" * 60_000)
    else:
        limit_pages(monkeypatch, 0)
    db = where / "new" / "faces.db"
    r = runner.invoke(app, ["scan", str(library[0]), "--db", str(db)])
    one_line_error(r, "the disk is full", str(db), "free some space")
    assert not db.exists()


@pytest.mark.fault
@pytest.mark.parametrize("how", ["tmpfs", "page limit"])
@pytest.mark.model
def test_disk_full_mid_scan_says_what_was_saved_and_resumes(fault, tmp_path, mounts,
                                                            monkeypatch, how):
    fault("scan", f"the disk fills up in the middle of a scan ({how})",
          "one line: disk full, how many photos were saved, the next scan resumes; after "
          "freeing space the same scan reads only the photos that were not saved")
    lib = copy_sample_people(tmp_path / "photos", {"Colin_Powell": 4, "Serena_Williams": 4,
                                            "Tony_Blair": 3, "Junichiro_Koizumi": 1})
    where = tmp_path / "disk"
    if how == "tmpfs" and not mounts.tmpfs(where, "1m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    where.mkdir(exist_ok=True)
    (tmp_path / "empty").mkdir()
    r = runner.invoke(app, ["scan", str(tmp_path / "empty"), "--db", str(where / "faces.db")])
    assert r.exit_code == 0, r.output  # the database exists, with no photos yet
    scan = ["scan", str(lib), "--db", str(where / "faces.db"), "--batch-size", "2"]
    for step in range(12):  # from no room at all, until the disk fills after some batches
        if how == "tmpfs":  # the -shm file takes 32 KB, each commit about 28 KB of WAL
            used = sum(f.stat().st_size for f in where.iterdir()) // 1024
            mounts.remount(where, f"size={used + 36 + 16 * step}k")
        else:
            limit_pages(monkeypatch, step)
        r = runner.invoke(app, scan)
        assert r.exit_code == 2, f"the scan fitted, the disk never filled up: {r.output}"
        saved = re.search(r"(\d+) of the (\d+) photos this scan had to read were saved", r.stderr)
        if saved and int(saved[1]) > 0:
            break
    else:
        pytest.fail("the disk never filled up in the middle of the scan")
    one_line_error(r, "the disk is full", "the next scan resumes")
    done, total = int(saved[1]), int(saved[2])
    assert total == 12 and 0 < done < 12
    if how == "tmpfs":
        mounts.remount(where, "size=8m")
    else:
        monkeypatch.setattr(dbfile, "connect", REAL_CONNECT)
    r = runner.invoke(app, [*scan, "--json"])
    assert r.exit_code == 0, r.output
    resumed = json.loads(r.stdout)
    assert resumed["photos_unchanged"] == done and resumed["photos_new"] == 12 - done


# -- model files and the encoder table -----------------------------------------------------
def write_model(path: Path, case: str) -> Path:
    import torch

    from facecluster.encoders import encoder_identity
    from facecluster.encoders.trained import ARCH_HEAD, FORMAT, HeadNet

    meta = {"name": "dlib-resnet+probe", "architecture": ARCH_HEAD, "mode": "head",
            "base": "dlib-resnet", "base_identity": encoder_identity("dlib-resnet"),
            "dim": 128, "hidden": 0, "threshold": 0.2, "preprocessing": "head"}
    blob = {"format": FORMAT, "version": 1, "state_dict": HeadNet(128).state_dict()}
    if case == "wrong types":
        meta |= {"dim": "128", "threshold": "low"}
    elif case == "huge dim":
        meta["dim"] = 10**9
    elif case == "state of another shape":
        blob["state_dict"] = HeadNet(128, hidden=16).state_dict()
    blob["meta"] = json.dumps(meta)
    if case == "bad JSON":
        blob["meta"] = blob["meta"][:40]
    elif case == "no state_dict":
        del blob["state_dict"]
    torch.save(blob, path)
    return path


@pytest.mark.fault
@pytest.mark.parametrize(
    "case", ["bad JSON", "wrong types", "no state_dict", "huge dim", "state of another shape"]
)
@pytest.mark.model
def test_malformed_model_file_is_one_line(fault, library, tmp_path, case):
    fault("model file", f"--model FILE.pt with {case}",
          "one line naming the file and what is wrong, exit 2 (the intact file works)")
    a, b = sorted((library[0] / "Colin_Powell").iterdir())[:2]
    good = write_model(tmp_path / "good.pt", "intact")
    r = runner.invoke(app, ["verify", str(a), str(b), "--model", str(good), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["model"] == "dlib-resnet+probe", r.output
    bad = write_model(tmp_path / "bad.pt", case)
    r = runner.invoke(app, ["verify", str(a), str(b), "--model", str(bad)])
    wrong = "does not fit its head" if case == "state of another shape" else "not a usable"
    one_line_error(r, str(bad), wrong)


@pytest.mark.fault
@pytest.mark.parametrize("command", ["group", "find"])
@pytest.mark.model
def test_tampered_encoder_dim_is_one_line(fault, library, db, command):
    fault("database", f"encoders.dim changed to 100 by hand, then `{command}`",
          "one line: the vectors do not fit the recorded dim (damaged), exit 2")
    with sqlite3.connect(db) as con:
        con.execute("UPDATE encoders SET dim = 100")
    con.close()
    args = ["find", str(query(library))] if command == "find" else [command]
    one_line_error(runner.invoke(app, [*args, "--db", str(db)]), "is damaged", "dim 100")


# -- hostile names and paths ---------------------------------------------------------------
@pytest.mark.fault
@pytest.mark.model
def test_hostile_names_and_paths_are_printed_escaped(fault, library, db):
    fault("display", "person names with ESC sequences, a newline and a bidi override; a "
          "photo file name with ESC and RLO",
          "people, show, name, split, merge and find print them escaped on one line; the "
          "name is stored as typed (--json gives it back exactly)")
    evil = "\x1b[31mEvil\x1b[0m \u202eRLO"
    base = ["people", "--db", str(db)]
    outputs = [runner.invoke(app, [*base, "name", "1", evil]).stdout]
    assert runner.invoke(app, [*base, "--json"]).stdout.count(json.dumps(evil)[1:-1]) == 1
    face = json.loads(runner.invoke(app, [*base, "show", "2", "--json"]).stdout)["faces"][0]
    outputs.append(runner.invoke(app, [*base, "split", "2", str(face["face_id"]),
                                       "--name", "two\nlines"]).stdout)
    outputs += [runner.invoke(app, [*base, *args]).stdout
                for args in (["show", "1"], ["show", "2"], [])]
    outputs.append(runner.invoke(app, [*base, "merge", "1", "3"]).stdout)
    outputs.append(runner.invoke(app, ["find", str(library[0] / "Tony_Blair" / HOSTILE_FILE),
                                       "--db", str(db)]).stdout)
    text = "".join(outputs)
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\x1b[31mEvil\\x1b[0m \\u202eRLO" in text and "two\\nlines" in text
    assert safe(str(library[0] / "Tony_Blair" / HOSTILE_FILE)) in text
    assert not any(line.startswith("lines") for line in text.splitlines())


def test_safe_escapes_only_what_drives_a_terminal():
    assert safe("Zoë 😀‍👩 O'Brien C:\\x") == "Zoë 😀‍👩 O'Brien C:\\x"
    assert safe("a\x1b[2Jb\x07\x9b") == "a\\x1b[2Jb\\x07\\x9b"
    assert safe("l\u202eR\u2066\u2028\n\t") == "l\\u202eR\\u2066\\u2028\\n\\t"
    assert safe("bad\udcff\udcfe.jpg") == "bad\\xff\\xfe.jpg"  # as pathcodec.shown


# -- concurrent writers --------------------------------------------------------------------
@pytest.mark.fault
@pytest.mark.model
def test_group_during_rescan_is_refused_then_works(fault, library, db):
    fault("database", "`group` while `scan --rescan` re-writes every face (another process)",
          "group refuses in one line naming the scan and its pid, nothing half-written; "
          "after the scan, group works; a scan during group is refused the same way")
    proc = subprocess.Popen(
        [sys.executable, "-m", "facecluster", "scan", str(library[0]), "--db", str(db),
         "--rescan", "--batch-size", "1", "--quiet"],
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), *sys.path])),
        stderr=subprocess.PIPE, text=True,
    )
    try:
        lock = Path(f"{db}.lock")
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if lock.exists() and lock.read_text().split()[:1] == [str(proc.pid)]:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the scan ended before group could run"
        r = runner.invoke(app, ["group", "--db", str(db)])
        one_line_error(r, "is busy", f"another facecluster scan (pid {proc.pid})")
    finally:
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    r = runner.invoke(app, ["group", "--db", str(db), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["faces"] == 6, r.output
    with FaceCache(db) as holder:
        holder.lock("group")
        r = runner.invoke(app, ["scan", str(library[0]), "--db", str(db)])
    one_line_error(r, "another facecluster group")


# -- errors nobody handled -----------------------------------------------------------------
@pytest.mark.fault
@pytest.mark.model
def test_unhandled_errors_become_one_line(fault, db, monkeypatch):
    fault("cli", "a SQLite error, an OSError and a bug reach the top of a command",
          "one line each, exit 2, the database named; FACECLUSTER_DEBUG=1 adds the traceback")
    from facecluster.people import People

    for exc, needle in [
        (sqlite3.OperationalError("disk I/O error"), f"{db}: database error: disk I/O error"),
        (PermissionError(13, "Permission denied", "/some/file"), "Permission denied: /some/file"),
        (TypeError("unsupported operand"), "internal error: TypeError: unsupported operand"),
    ]:
        def boom(*_a, exc=exc, **_k):
            raise exc

        monkeypatch.setattr(People, "persons", boom)
        one_line_error(runner.invoke(app, ["people", "--db", str(db)]), needle)
    monkeypatch.setenv("FACECLUSTER_DEBUG", "1")
    r = runner.invoke(app, ["people", "--db", str(db)])
    assert r.exit_code == 2 and "Traceback" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: internal error: TypeError")
