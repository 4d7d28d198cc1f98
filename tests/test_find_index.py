"""find's index file (findindex.py, search.FaceSearch): the same answers as an exact search,
whatever happened to the database or the file since it was written."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facecluster import findindex, vector_log
from facecluster.cache import AddEmbeddings, FaceCache, MovePhoto, PhotoWrite
from facecluster.cli import app
from facecluster.records import Face, FileEntry
from facecluster.search import FaceSearch, nearest_photos, refresh_index

from .conftest import db_copy, sample_people

DIM = 16
IDENTITY: dict[str, object] = {"name": "fake", "dim": DIM}
runner = CliRunner()


def clustered(n: int, seed: int = 0, people: int = 60) -> np.ndarray:
    """n unit vectors in tight clusters (faces of ``people`` persons)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((people, DIM))
    x = centres[rng.integers(0, people, n)] + 0.08 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def face(i: int) -> Face:
    box = np.array([10 + 100 * i, 10, 90 + 100 * i, 90], np.float32)
    return Face(box=box, landmarks=np.zeros((5, 2), np.float32), prob=0.99)


def add_photos(cache: FaceCache, enc: int, vectors: np.ndarray, start: int = 0) -> None:
    """Two faces a photo: /photos/<start + i>.jpg."""
    ops = []
    for i in range(0, len(vectors), 2):
        v = vectors[i : i + 2]
        entry = FileEntry(Path(f"/photos/{start + i // 2}.jpg"), 1, 1)
        faces = [face(j) for j in range(len(v))]
        ops.append(PhotoWrite(entry, f"d{start + i // 2}", 500, 100, "ok", faces, v))
    cache.apply(ops, enc)


def make_db(path: Path, n: int = 2000, seed: int = 0) -> tuple[FaceCache, int]:
    cache = FaceCache(path)
    with cache.transaction():
        enc = cache.encoder_id(IDENTITY)
    assert enc is not None
    add_photos(cache, enc, clustered(n, seed))
    return cache, enc


def exact(cache: FaceCache, enc: int, q: np.ndarray, k: int, t: float) -> list[tuple[str, float]]:
    """The reference: every vector read from the database, searched exhaustively."""
    faces, vectors = cache.face_vectors(enc)
    hits = nearest_photos(q, vectors, [f.path for f in faces], k=k, threshold=t)
    return [(h.photo, round(h.distance, 5)) for h in hits]


def answers(search: FaceSearch, q: np.ndarray, k: int, t: float) -> list[tuple[str, float]]:
    return [(h.photo, round(h.distance, 5)) for h in search.nearest(q, k, t)]


def queries(n: int = 40, seed: int = 7) -> np.ndarray:
    q = clustered(n, seed=0)[::1] + 0.03 * np.random.default_rng(seed).standard_normal((n, DIM))
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def check_all(cache: FaceCache, enc: int, search: FaceSearch, k: int = 8, t: float = 0.6) -> None:
    for q in queries():
        assert answers(search, q, k, t) == exact(cache, enc, q, k, t)


@pytest.fixture
def indexed(tmp_path: Path) -> tuple[FaceCache, int, FaceSearch]:
    """2,000 faces, the index written by a first search (cut-over lowered to 100)."""
    cache, enc = make_db(tmp_path / "faces.db")
    search = FaceSearch(cache, enc, IDENTITY, min_faces=100)
    search.nearest(queries()[0], 5, 0.6)
    assert search.used == "built" and findindex.index_path(cache.path).is_file()
    yield cache, enc, search
    cache.close()


def fresh(cache: FaceCache, enc: int) -> FaceSearch:
    """A search as a new find process makes it: the index read from the file."""
    return FaceSearch(cache, enc, IDENTITY, min_faces=100)


# -- the same answers ---------------------------------------------------------------------


def test_the_index_gives_the_exact_answers(indexed):
    cache, enc, search = indexed
    check_all(cache, enc, search)
    again = fresh(cache, enc)
    check_all(cache, enc, again)
    assert again.used == "index"


def test_below_the_cut_over_no_index_is_written(tmp_path):
    cache, enc = make_db(tmp_path / "faces.db", n=200)
    search = FaceSearch(cache, enc, IDENTITY, min_faces=1000)
    check_all(cache, enc, search)
    assert search.used == "exact" and not findindex.index_path(cache.path).exists()
    assert refresh_index(cache, enc, IDENTITY, min_faces=1000) == "none"
    assert not findindex.index_path(cache.path).exists()
    cache.close()


def test_a_large_photo_of_many_matches_still_gives_k_photos(tmp_path):
    """More candidates are asked when the nearest faces fill fewer than k photos."""
    cache, enc = make_db(tmp_path / "faces.db")
    search = FaceSearch(cache, enc, IDENTITY, min_faces=100)
    for q in queries()[:10]:
        got, want = answers(search, q, 60, 4.0), exact(cache, enc, q, 60, 4.0)
        assert len(got) == 60 == len({p for p, _ in got})
        # Within the person's cluster, exact; beyond it the index is approximate (recall).
        assert [h for h in got if h[1] < 0.6] == [h for h in want if h[1] < 0.6]
        assert sum(h in want for h in got) >= 50
    cache.close()


# -- the database changed since the index was written -----------------------------------------


def test_faces_added_since_the_index_are_found(indexed):
    cache, enc, search = indexed
    q = queries()[3]
    add_photos(cache, enc, np.stack([q, q]), start=5000)  # exactly the query, twice
    for s in (search, fresh(cache, enc)):
        hits = s.nearest(q, 3, 0.6)
        assert hits[0].photo == "/photos/5000.jpg" and hits[0].distance < 1e-5
        check_all(cache, enc, s)


def test_deleted_faces_never_come_out(indexed):
    cache, enc, search = indexed
    q = queries()[5]
    gone = [h.photo for h in search.nearest(q, 5, 0.6)]
    rows = cache.photo_index()
    cache.remove_photos([rows[p].id for p in gone])
    for s in (search, fresh(cache, enc)):
        assert not {h.photo for h in s.nearest(q, 20, 4.0)} & set(gone)
        check_all(cache, enc, s)


def test_re_embedded_faces_are_ranked_by_their_new_vector(indexed):
    cache, enc, search = indexed
    q = queries()[9]
    far = next(f for f in cache.face_vectors(enc)[0] if f.path == "/photos/700.jpg")
    cache.apply([AddEmbeddings([far.id], q[None, :])], enc)  # now the query itself
    for s in (search, fresh(cache, enc)):
        hits = s.nearest(q, 3, 0.6)
        assert (hits[0].face_id, hits[0].photo) == (far.id, "/photos/700.jpg")
        check_all(cache, enc, s)


def test_a_moved_photo_comes_out_at_its_new_path(indexed):
    cache, enc, search = indexed
    q = queries()[2]
    top = search.nearest(q, 1, 0.6)[0]
    row = cache.photo_index()[top.photo]
    cache.apply([MovePhoto(row.id, FileEntry(Path("/moved/here.jpg"), 1, 1))], enc)
    for s in (search, fresh(cache, enc)):
        assert s.nearest(q, 1, 0.6)[0].photo == "/moved/here.jpg"


def test_another_encoder_gets_its_own_answers(indexed):
    cache, enc, _ = indexed
    other = {"name": "other", "dim": DIM}
    with cache.transaction():
        enc2 = cache.encoder_id(other)
    assert enc2 is not None
    ids = [f.id for f in cache.face_vectors(enc)[0]]
    vecs = clustered(len(ids), seed=3)
    cache.apply([AddEmbeddings(ids, vecs)], enc2)
    s2 = FaceSearch(cache, enc2, other, min_faces=100)
    used = []
    for q in queries():
        got = [(h.photo, round(h.distance, 5)) for h in s2.nearest(q, 8, 0.6)]
        assert got == exact(cache, enc2, q, 8, 0.6)
        used.append(s2.used)
    assert used[0] == "built"  # the first encoder's file was not used: replaced by this one
    check_all(cache, enc, fresh(cache, enc))  # and the first one rebuilds its own


def test_scan_updates_the_index_and_forgets_the_log(indexed):
    cache, enc, _ = indexed
    add_photos(cache, enc, clustered(300, seed=5), start=9000)
    rows = cache.photo_index()
    cache.remove_photos([rows["/photos/10.jpg"].id])
    assert refresh_index(cache, enc, IDENTITY, min_faces=100) == "updated"
    head = findindex.read_head(findindex.index_path(cache.path))
    assert head is not None and (head["seq"], head["tag"]) == vector_log.mark(cache, enc)
    assert head["count"] == vector_log.count(cache, enc)
    logged = cache.db.execute("SELECT COUNT(*) FROM vector_changes").fetchone()[0]
    assert logged == 1  # only the mark the file was written at
    s = fresh(cache, enc)
    check_all(cache, enc, s)
    assert s.used == "index"
    assert refresh_index(cache, enc, IDENTITY, min_faces=100) == "none"  # nothing changed


def test_scan_rebuilds_an_index_most_of_whose_faces_changed(indexed):
    cache, enc, _ = indexed
    faces = cache.face_vectors(enc)[0][:1500]
    cache.apply([AddEmbeddings([f.id for f in faces], clustered(1500, seed=13))], enc)
    assert refresh_index(cache, enc, IDENTITY, min_faces=100) == "built"
    head = findindex.read_head(findindex.index_path(cache.path))
    assert head is not None and (head["seq"], head["tag"]) == vector_log.mark(cache, enc)
    s = fresh(cache, enc)
    check_all(cache, enc, s)
    assert s.used == "index"


def test_find_patches_an_index_that_many_changes_passed_by(indexed, monkeypatch):
    """Faces changed with no scan to update the file (another tool, an old facecluster):
    find patches the index once and saves it, rather than reading them every query."""
    import facecluster.search

    cache, enc, _ = indexed
    monkeypatch.setattr(facecluster.search, "PATCH_AT", 10)
    add_photos(cache, enc, clustered(40, seed=12), start=6000)
    rows = cache.photo_index()
    cache.remove_photos([rows[f"/photos/{i}.jpg"].id for i in range(20, 30)])
    s = fresh(cache, enc)
    check_all(cache, enc, s)
    assert s.used == "index"
    head = findindex.read_head(findindex.index_path(cache.path))
    assert head is not None and (head["seq"], head["tag"]) == vector_log.mark(cache, enc)
    assert head["count"] == vector_log.count(cache, enc)


def test_scan_writes_the_index_when_the_library_grows_past_the_cut_over(tmp_path):
    cache, enc = make_db(tmp_path / "faces.db", n=200)
    assert refresh_index(cache, enc, IDENTITY, min_faces=1000) == "none"
    add_photos(cache, enc, clustered(1000, seed=2), start=1000)
    assert refresh_index(cache, enc, IDENTITY, min_faces=1000) == "built"
    s = FaceSearch(cache, enc, IDENTITY, min_faces=1000)
    check_all(cache, enc, s)
    assert s.used == "index"
    cache.close()


def test_a_schema_3_database_gets_the_log_and_an_anchor_per_encoder(tmp_path):
    cache, enc = make_db(tmp_path / "faces.db", n=20)
    cache.close()
    with sqlite3.connect(tmp_path / "faces.db") as con:  # back to version 3
        for name in ("vector_inserted", "vector_updated", "vector_deleted"):
            con.execute(f"DROP TRIGGER {name}")
        con.execute("DROP TABLE vector_changes")
        con.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with FaceCache(tmp_path / "faces.db") as cache:
        rows = cache.db.execute("SELECT face_id, encoder_id FROM vector_changes").fetchall()
        assert rows == [(max(f.id for f in cache.face_vectors(enc)[0]), enc)]
        search = FaceSearch(cache, enc, IDENTITY, min_faces=10)
        search.nearest(queries()[0], 5, 0.6)
        assert search.used == "built"
        check_all(cache, enc, search)


# -- faults: the file or the database not as the index left them ----------------------------


def damage(path: Path, how: str) -> None:
    blob = bytearray(path.read_bytes())
    if how == "corrupted":
        mid = len(blob) // 2
        blob[mid : mid + 64] = bytes(64)
    elif how == "truncated":
        blob = blob[: len(blob) * 2 // 3]
    path.write_bytes(bytes(blob))


@pytest.mark.fault
@pytest.mark.parametrize("how", ["corrupted", "truncated", "deleted"])
def test_a_damaged_or_missing_index_file_is_rebuilt(fault, indexed, how):
    fault("find index", f"find's index file beside the database {how}",
          "find answers as an exact search, no error; the file is written again, whole")
    cache, enc, _ = indexed
    path = findindex.index_path(cache.path)
    if how == "deleted":
        path.unlink()
    else:
        damage(path, how)
    s = fresh(cache, enc)
    s.nearest(queries()[0], 5, 0.6)
    assert s.used == "built"
    check_all(cache, enc, s)
    assert findindex.load(path, findindex.identity_key(IDENTITY), DIM) is not None


@pytest.mark.fault
@pytest.mark.parametrize("what", ["a user's file", "an empty file", "a symlink to a user's file"])
def test_a_file_that_is_not_ours_at_the_index_name_is_never_touched(fault, tmp_path, what):
    fault("find index", f"{what} at the index's name (faces.db.find.faiss)",
          "find and scan answer (exact search), no error; the file and its target keep "
          "their bytes; nothing else is written beside the database")
    cache, enc = make_db(tmp_path / "faces.db")
    path = findindex.index_path(cache.path)
    mine = tmp_path / "notes.txt"
    mine.write_text("" if what == "an empty file" else "my own notes\n")
    if what != "a symlink to a user's file":
        shutil.copy2(mine, path)
    else:
        path.symlink_to(mine)
    before = sorted(p.name for p in tmp_path.iterdir())
    s = FaceSearch(cache, enc, IDENTITY, min_faces=100)
    check_all(cache, enc, s)
    assert s.used == "exact"
    add_photos(cache, enc, clustered(10, seed=4), start=7000)
    assert refresh_index(cache, enc, IDENTITY, min_faces=100) == "none"
    assert path.read_text() == mine.read_text() == ("" if what == "an empty file" else
                                                    "my own notes\n")
    assert path.is_symlink() == (what == "a symlink to a user's file")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    cache.close()


@pytest.mark.fault
@pytest.mark.parametrize("how", ["a backup restored", "another database"])
def test_an_index_of_another_history_is_not_used(fault, tmp_path, how):
    fault("find index", f"{how} in place of the database, its index file left newer",
          "the index's mark is not in the database: rebuilt, answers as an exact search")
    cache, enc = make_db(tmp_path / "faces.db")
    backup = tmp_path / "backup.db"
    if how == "a backup restored":
        with sqlite3.connect(backup) as copy:
            cache.db.backup(copy)
        copy.close()
    else:
        make_db(backup, seed=9)[0].close()
    s = FaceSearch(cache, enc, IDENTITY, min_faces=100)
    add_photos(cache, enc, clustered(100, seed=6), start=3000)
    s.nearest(queries()[0], 5, 0.6)  # written after the backup was taken
    cache.close()
    shutil.copy2(backup, tmp_path / "faces.db")
    for side in ("-wal", "-shm"):
        Path(f"{tmp_path / 'faces.db'}{side}").unlink(missing_ok=True)
    with FaceCache(tmp_path / "faces.db") as restored:
        add_photos(restored, enc, clustered(100, seed=8), start=3000)  # a diverging history
        s = fresh(restored, enc)
        s.nearest(queries()[0], 5, 0.6)
        assert s.used == "built"
        check_all(restored, enc, s)


@pytest.mark.fault
def test_a_read_only_folder_searches_exactly_and_writes_nothing(fault, tmp_path):
    from .test_faults_errors import Mounts

    fault("find index", "the database on a read-only file system: no index file, or one "
          "written before faces were added",
          "find answers as an exact search, no error, nothing written")
    ro = tmp_path / "ro"
    mounts = Mounts()
    try:
        if not mounts.tmpfs(ro, "16m"):
            pytest.skip("cannot mount a tmpfs here (needs root)")
        cache, enc = make_db(ro / "faces.db")
        fresh(cache, enc).nearest(queries()[0], 5, 0.6)  # the index, then more faces
        add_photos(cache, enc, clustered(50, seed=11), start=4000)
        cache.close()
        stale = findindex.index_path(ro / "faces.db").read_bytes()
        for with_index in (True, False):
            if not with_index:
                findindex.index_path(ro / "faces.db").unlink()
            mounts.remount(ro, "ro")
            with FaceCache(ro / "faces.db", write=False) as cache:
                assert cache.readonly
                s = fresh(cache, enc)
                check_all(cache, enc, s)
                assert s.used == ("index" if with_index else "exact")
            assert findindex.index_path(ro / "faces.db").exists() == with_index
            mounts.remount(ro, "rw")
        assert not findindex.index_path(ro / "faces.db").exists() and stale
    finally:
        mounts.close()


# -- the command line, real photos ----------------------------------------------------------


@pytest.mark.model
def test_find_gives_the_same_answers_with_and_without_the_index(scanned_sample, tmp_path,
                                                               monkeypatch):
    db = db_copy(scanned_sample, tmp_path / "faces.db")
    path = findindex.index_path(db)

    def find(person: str) -> list[dict]:
        query = sample_people()[person][1]
        r = runner.invoke(app, ["find", str(query), "--db", str(db), "-k", "30", "--json",
                                "--threshold", "4"])
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)["results"]

    people = ["Colin_Powell", "Tony_Blair", "Serena_Williams"]
    exact_answers = [find(p) for p in people]
    assert not path.exists()  # a small library: no index
    monkeypatch.setattr(findindex, "MIN_FACES", 1)
    assert [find(p) for p in people] == exact_answers
    assert findindex.is_ours(path)  # the first find wrote it
    head = findindex.read_head(path)
    with sqlite3.connect(db) as con:
        faces = con.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    con.close()
    assert head is not None and head["count"] == faces > len(exact_answers[0])  # 3 in a photo


@pytest.mark.model
def test_scan_keeps_the_index_current_and_find_never_returns_a_removed_photo(
    sample_library, tmp_path, monkeypatch
):
    monkeypatch.setattr(findindex, "MIN_FACES", 1)
    db = tmp_path / "faces.db"
    path = findindex.index_path(db)
    people = sample_library / "people"
    r = runner.invoke(app, ["scan", str(people), "--db", str(db), "--json"])
    assert r.exit_code == 0, r.output
    first = findindex.read_head(path)
    assert first is not None  # written by the scan
    query = sample_people()["Colin_Powell"][0]
    args = ["find", str(query), "--db", str(db), "-k", "30", "--json"]
    before = json.loads(runner.invoke(app, args).stdout)["results"]
    removed = Path(before[0]["photo"])
    removed.unlink()
    r = runner.invoke(app, ["scan", str(people), "--db", str(db), "--json"])
    assert r.exit_code == 0, r.output
    second = findindex.read_head(path)
    assert second is not None and second["count"] == first["count"] - 1
    after = json.loads(runner.invoke(app, args).stdout)["results"]
    assert after == [h for h in before if h["photo"] != str(removed)]
    path.unlink()
    monkeypatch.setattr(findindex, "MIN_FACES", 10**9)
    assert json.loads(runner.invoke(app, args).stdout)["results"] == after
    assert not path.exists()
