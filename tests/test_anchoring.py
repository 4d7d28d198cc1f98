"""Names and corrections anchored to photos and boxes, named persons as constraints,
generations and undo, file names that are not UTF-8 (store level, no models needed)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from facecluster.cache import STATUS_OK, AddEmbeddings, FaceCache, PhotoWrite, path_range
from facecluster.people import People, PersonError
from facecluster.records import Face, FileEntry

IDENTITY = {"name": "test-encoder", "dim": 4, "weights_sha256": "x", "preprocessing": "none"}


def face(x: float, y: float = 0.0, side: float = 50.0) -> Face:
    box = np.array([x, y, x + side, y + side], np.float32)
    return Face(box, np.zeros((5, 2), np.float32), 0.99)


def write(cache: FaceCache, enc: int, path: str, digest: str, faces: list[Face], mtime=1):
    vecs = np.eye(4, dtype=np.float32)[[i % 4 for i in range(len(faces))]]
    entry = FileEntry(Path(path), 1, mtime)
    cache.apply([PhotoWrite(entry, digest, 500, 500, STATUS_OK, faces, vecs)], enc)


def face_ids(cache: FaceCache, enc: int) -> list[int]:
    return [sf.id for sf in cache.face_vectors(enc)[0]]


@pytest.fixture()
def store(tmp_path):
    cache = FaceCache(tmp_path / "f.db")
    enc = cache.encoder_id(IDENTITY) or 0
    yield cache, enc
    cache.close()


def test_a_photo_read_again_keeps_its_face_ids_and_names(store):
    cache, enc = store
    write(cache, enc, "/p/a.jpg", "d1", [face(0), face(200)])
    ids = face_ids(cache, enc)
    p = People(cache, enc)
    anna = p.regroup(np.array(ids), np.array([0, -1]))[ids[0]]
    p.rename(anna, "Anna")
    # Re-detected (--rescan, a touched file): boxes move a little, a third face appears.
    write(cache, enc, "/p/a.jpg", "d1", [face(203, 2), face(2, 1), face(400)], mtime=2)
    after = face_ids(cache, enc)
    assert after[:2] == ids and len(after) == 3
    assert p.assignments() == {ids[0]: anna}
    # The face that was at (200, 0) is gone from the photo: it goes, the others stay.
    write(cache, enc, "/p/a.jpg", "d2", [face(0)], mtime=3)
    assert face_ids(cache, enc) == [ids[0]]
    assert p.get(anna).faces == 1


def test_a_removed_face_stays_removed_when_the_photo_is_touched(store):
    cache, enc = store
    write(cache, enc, "/p/a.jpg", "d1", [face(0)])
    write(cache, enc, "/p/b.jpg", "d2", [face(0)])
    ids = face_ids(cache, enc)
    p = People(cache, enc)
    labels = np.array([0, 0])
    person = p.regroup(np.array(ids), labels)[ids[0]]
    assert p.remove_faces([ids[1]]) == 1
    write(cache, enc, "/p/b.jpg", "d2", [face(1)], mtime=5)  # touched: read again
    assert face_ids(cache, enc) == ids
    assert ids[1] not in p.regroup(np.array(ids), labels)
    assert p.faces_of(person) == [ids[0]]


def test_a_photo_that_leaves_and_comes_back_gets_its_person_back(store):
    cache, enc = store
    write(cache, enc, "/p/a.jpg", "d1", [face(0)])
    write(cache, enc, "/p/b.jpg", "d2", [face(0)])
    ids = face_ids(cache, enc)
    p = People(cache, enc)
    anna = p.regroup(np.array(ids), np.array([0, 0]))[ids[0]]
    p.rename(anna, "Anna")
    p.remove_faces([ids[1]])  # the user's rejection must come back too
    rows = cache.photo_index()
    cache.remove_photos([rows["/p/a.jpg"].id, rows["/p/b.jpg"].id])
    assert p.get(anna).faces == 0 and p.get(anna).name == "Anna"
    # Restored from a backup, at another path, re-detected with slightly other boxes.
    write(cache, enc, "/backup/a.jpg", "d1", [face(3, 2)])
    write(cache, enc, "/backup/b.jpg", "d2", [face(1, 1)])
    new = face_ids(cache, enc)
    assert p.assignments() == {new[0]: anna}
    assert new[1] not in p.regroup(np.array(new), np.array([0, 0]))
    assert p.get(anna).faces == 1
    # A tombstone is used once: a second copy of the photo starts fresh.
    write(cache, enc, "/copy/a.jpg", "d1", [face(0)])
    assert face_ids(cache, enc)[-1] not in p.assignments()


def test_a_regroup_never_merges_named_persons_or_takes_their_faces(store):
    cache, enc = store
    for i, x in enumerate([0, 0, 0, 0, 0, 0]):
        write(cache, enc, f"/p/{i}.jpg", f"d{i}", [face(x)])
    ids = np.array(face_ids(cache, enc))
    p = People(cache, enc)
    r = p.regroup(ids, np.array([0, 0, 1, 1, 2, -1]))
    a, b, c = r[int(ids[0])], r[int(ids[2])], r[int(ids[4])]
    p.rename(a, "Jennifer")
    p.rename(b, "Angelina")
    # An exploratory, far too loose threshold puts everything in one cluster.
    everything = np.zeros(6, dtype=np.int64)
    planned, changes = p.plan_regroup(ids, everything, cache.face_vectors(enc)[1])
    assert planned[int(ids[0])] == a and planned[int(ids[2])] == b
    assert p.assignments()[int(ids[4])] == c  # a plan writes nothing
    r2 = p.regroup(ids, everything, cache.face_vectors(enc)[1])
    assert r2[int(ids[0])] == r2[int(ids[1])] == a
    assert r2[int(ids[2])] == r2[int(ids[3])] == b
    # The unnamed faces join the named person nearest to them (vectors e0..e3 cycle).
    assert {r2[int(ids[4])], r2[int(ids[5])]} <= {a, b}
    assert not changes.merged or all(o in (a, b) for o, _ in changes.merged)


def test_undo_goes_back_one_step_at_a_time(store):
    cache, enc = store
    for i in range(4):
        write(cache, enc, f"/p/{i}.jpg", f"d{i}", [face(0)])
    ids = np.array(face_ids(cache, enc))
    p = People(cache, enc)
    r = p.regroup(ids, np.array([0, 0, 1, 1]))
    a, b = r[int(ids[0])], r[int(ids[2])]
    p.rename(a, "Anna")
    p.merge(a, [b])
    assert [x.id for x in p.persons()] == [a]
    steps = [g.action for g in p.history()]
    assert steps[:2] == [f"merge {a} {b}", f"name {a} Anna"]
    p.undo()  # the merge
    assert sorted(x.id for x in p.persons()) == [a, b] and p.get(a).name == "Anna"
    p.undo()  # the name
    assert p.get(a).name is None
    p.undo()  # the first grouping
    assert p.persons() == []
    with pytest.raises(PersonError, match="nothing to undo"):
        p.undo()


def test_undo_of_a_split_removes_the_new_person(store):
    cache, enc = store
    for i in range(3):
        write(cache, enc, f"/p/{i}.jpg", f"d{i}", [face(0)])
    ids = np.array(face_ids(cache, enc))
    p = People(cache, enc)
    a = p.regroup(ids, np.array([0, 0, 0]))[int(ids[0])]
    new = p.split(a, [int(ids[2])], name="Bob")
    p.undo()
    with pytest.raises(PersonError):
        p.get(new.id)
    assert p.get(a).faces == 3


def test_file_names_that_are_not_utf8_are_stored_losslessly(store, tmp_path):
    cache, enc = store
    raw = os.fsdecode(b"/p/\xff\xfe" + "\U0010ff85".encode() + b"x.jpg")
    write(cache, enc, raw, "d1", [face(0)])
    write(cache, enc, "/p/plain.jpg", "d2", [face(0)])
    assert raw in cache.photo_index()
    faces, _ = cache.face_vectors(enc, ["/p"])
    assert sorted(f.path for f in faces) == sorted([raw, "/p/plain.jpg"])
    lo, hi = path_range("/p")
    stored = [r[0] for r in cache.db.execute("SELECT path FROM photos")]
    assert all(lo <= s < hi for s in stored)
    write(cache, enc, raw, "d1", [face(1)], mtime=2)  # an update finds the same row
    assert len(cache.photo_index()) == 2


def test_names_and_corrections_carry_over_to_another_encoder(store):
    """The default encoder changed (dlib-resnet -> sface): the new encoder's persons start
    from the user's named and corrected ones, and a group under it keeps them."""
    cache, enc_a = store
    for i in range(4):
        write(cache, enc_a, f"/p/{i}.jpg", f"d{i}", [face(0)])
    ids = np.array(face_ids(cache, enc_a))
    a = People(cache, enc_a)
    r = a.regroup(ids, np.array([0, 0, 1, 1]))
    anna = r[int(ids[0])]
    a.rename(anna, "Anna")
    a.remove_faces([int(ids[1])])
    enc_b = cache.encoder_id({**IDENTITY, "name": "other-encoder"}) or 0
    cache.apply([AddEmbeddings([int(i) for i in ids], np.eye(4, dtype=np.float32))], enc_b)
    b = People(cache, enc_b)
    assert b.carry_over() == ("test-encoder", 1)
    assert b.carry_over() is None  # once: the new encoder has persons now
    (carried,) = b.persons()
    assert carried.name == "Anna" and b.faces_of(carried.id) == [int(ids[0])]
    # A group under the new encoder keeps Anna's face and the rejection.
    r2 = b.regroup(ids, np.array([0, 0, 0, 0]))
    assert r2[int(ids[0])] == carried.id and r2.get(int(ids[1])) != carried.id
    assert {p.name for p in a.persons()} == {"Anna", None}  # the old encoder's are untouched
    b.undo()  # the group
    b.undo()  # the carry-over
    assert b.persons() == []
