"""Stable person ids, names and corrections across re-grouping (no models needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facecluster.cache import STATUS_OK, FaceCache, PhotoWrite
from facecluster.people import People, PersonError
from facecluster.records import Face, FileEntry

IDENTITY = {"name": "test-encoder", "dim": 4, "weights_sha256": "x", "preprocessing": "none"}


@pytest.fixture()
def people(tmp_path):
    """A cache with 12 faces (one per photo) and a People view of it."""
    cache = FaceCache(tmp_path / "f.db")
    enc = cache.encoder_id(IDENTITY)
    ops = []
    for i in range(12):
        face = Face(np.array([0, 0, 50, 50], np.float32), np.zeros((5, 2), np.float32), 0.99)
        ops.append(PhotoWrite(FileEntry(Path(f"/p/{i}.jpg"), 1, 1), f"d{i}", 100, 100,
                              STATUS_OK, [face], np.eye(4, dtype=np.float32)[[i % 4]]))
    cache.apply(ops, enc)
    ids = np.array([sf.id for sf in cache.face_vectors(enc)[0]])
    yield People(cache, enc), ids
    cache.close()


def groups(p: People, ids: np.ndarray) -> list[set[int]]:
    """The persons as sets of face positions (0..11)."""
    pos = {int(f): i for i, f in enumerate(ids)}
    out: dict[int, set[int]] = {}
    for f, pid in p.assignments().items():
        out.setdefault(pid, set()).add(pos[f])
    return sorted(out.values(), key=min)


def test_regroup_keeps_ids_of_people_still_there(people):
    p, ids = people
    first = p.regroup(ids, np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, -1, -1, -1]))
    person_of = {i: first[int(ids[i])] for i in (0, 3, 6)}
    # Same clusters, different label numbers, one extra face joins the first person.
    second = p.regroup(ids, np.array([5, 5, 5, 7, 7, 7, 9, 9, 9, 5, -1, -1]))
    assert {i: second[int(ids[i])] for i in (0, 3, 6)} == person_of
    assert second[int(ids[9])] == person_of[0]
    assert int(ids[10]) not in second  # unknown stays unassigned


def test_names_survive_and_new_people_get_new_ids(people):
    p, ids = people
    r = p.regroup(ids, np.array([0, 0, 0, 1, 1, 1, -1, -1, -1, -1, -1, -1]))
    anna = r[int(ids[0])]
    p.rename(anna, "  Anna   Smith ")
    r2 = p.regroup(ids, np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, -1, -1, -1]))
    assert p.get(r2[int(ids[0])]).name == "Anna Smith"
    assert r2[int(ids[6])] not in (r[int(ids[0])], r[int(ids[3])])
    # A named person keeps its faces whatever the clustering says; an unnamed person who
    # vanished from the clustering is gone.
    r3 = p.regroup(ids, np.full(12, -1))
    assert r3 == {int(ids[i]): anna for i in range(3)}
    assert [x.name for x in p.persons(include_empty=True)] == ["Anna Smith"]


def test_merged_people_stay_merged(people):
    p, ids = people
    r = p.regroup(ids, np.array([0, 0, 0, 1, 1, 1, -1, -1, -1, -1, -1, -1]))
    a, b = r[int(ids[0])], r[int(ids[3])]
    merged = p.merge(a, [b])
    assert merged.faces == 6
    with pytest.raises(PersonError):
        p.get(b)
    r2 = p.regroup(ids, np.array([0, 0, 0, 1, 1, 1, -1, -1, -1, -1, -1, -1]))
    assert {r2[int(ids[i])] for i in range(6)} == {a}


def test_an_unconfirmed_person_split_by_the_clustering_becomes_two(people):
    p, ids = people
    r = p.regroup(ids, np.array([0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1]))
    r2 = p.regroup(ids, np.array([0, 0, 0, 0, 1, 1, -1, -1, -1, -1, -1, -1]))
    assert r2[int(ids[0])] == r[int(ids[0])] and r2[int(ids[5])] != r[int(ids[0])]


def test_removed_face_does_not_come_back_and_moved_face_stays(people):
    p, ids = people
    labels = np.array([0, 0, 0, 1, 1, 1, -1, -1, -1, -1, -1, -1])
    r = p.regroup(ids, labels)
    a, b = r[int(ids[0])], r[int(ids[3])]
    assert p.remove_faces([int(ids[1])]) == 1
    p.move_faces([int(ids[2])], b)
    r2 = p.regroup(ids, labels)
    assert int(ids[1]) not in r2
    assert r2[int(ids[2])] == b and r2[int(ids[0])] == a
    assert groups(p, ids) == [{0}, {2, 3, 4, 5}]


def test_split_creates_a_confirmed_person(people):
    p, ids = people
    r = p.regroup(ids, np.array([0] * 6 + [-1] * 6))
    a = r[int(ids[0])]
    new = p.split(a, [int(ids[4]), int(ids[5])], name="Bob")
    assert new.name == "Bob" and new.faces == 2 and p.get(a).faces == 4
    p.regroup(ids, np.array([0] * 6 + [-1] * 6))
    assert groups(p, ids) == [{0, 1, 2, 3}, {4, 5}]
    with pytest.raises(PersonError):
        p.split(a, [int(ids[4])])


def test_bad_ids_are_clear_errors(people):
    p, ids = people
    p.regroup(ids, np.array([0] * 6 + [-1] * 6))
    with pytest.raises(PersonError, match="no person 999"):
        p.rename(999, "x")
    with pytest.raises(PersonError, match="no face"):
        p.remove_faces([10**6])
    with pytest.raises(PersonError, match="empty"):
        p.rename(p.persons()[0].id, "   ")
