"""Persons that may be one (suggest.py, People.suggest, 'people suggest'): on synthetic
vectors for the rules, and end to end on the in-repo photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facecluster.cli import app
from facecluster.suggest import nearest_between, suggest_merges

from .conftest import copy_sample

runner = CliRunner()
DIM = 32


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def library() -> tuple[np.ndarray, np.ndarray]:
    """Face vectors as encoders make them: a part all faces share, and one a person.
    Persons 1 and 2: one identity cut in two; 3, 5 and 6: three others; 4: blurred faces
    with little of anyone (a hub, near everyone); -1: unknown faces."""
    rng = np.random.default_rng(7)
    shared, a, b, c, half1, half2, d = np.linalg.qr(rng.normal(size=(DIM, DIM)))[0][:7]

    def faces(own: np.ndarray, n: int, noise: float = 0.08) -> np.ndarray:
        return unit(2 * shared + own + rng.normal(scale=noise, size=(n, DIM)))

    parts = [
        (1, faces(unit(a + 1.1 * half1), 8)),
        (2, faces(unit(a + 1.1 * half2), 3)),
        (3, faces(b, 6)),
        (4, faces(0 * a, 4, noise=0.05)),
        (5, faces(c, 5)),
        (6, faces(d, 5)),
        (-1, faces(b, 2)),
    ]
    vectors = np.concatenate([v for _, v in parts])
    owners = np.concatenate([np.full(len(v), p) for p, v in parts])
    return vectors, owners


PERSONS = {1: (None, 8), 2: (None, 3), 3: (None, 6), 4: (None, 4), 5: (None, 5), 6: (None, 5)}


def test_nearest_between_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    vectors = unit(rng.normal(size=(60, 16)))
    owners = rng.integers(-1, 6, 60)
    got = nearest_between(vectors, owners, 2.0, chunk=7)  # blocks of 7 rows
    d = np.clip(2 - 2 * vectors @ vectors.T, 0, 4)
    want = {}
    for i in range(60):
        for j in range(60):
            a, b = owners[i], owners[j]
            if a < 0 or b < 0 or a >= b or d[i, j] > 2.0:
                continue
            if (a, b) not in want or d[i, j] < want[a, b][0]:
                want[int(a), int(b)] = (d[i, j], i, j)
    assert got.keys() == want.keys()
    for key, (dist, i, j) in want.items():
        assert got[key][0] == pytest.approx(dist, abs=1e-5)
        assert (got[key][1], got[key][2]) == (i, j)


def test_the_split_person_comes_first_and_hubs_last() -> None:
    vectors, owners = library()
    ids = np.arange(100, 100 + len(owners))
    # By distance alone the hub's pairs come first...
    raw = sorted(nearest_between(vectors, owners, 2.0).items(), key=lambda kv: kv[1][0])
    assert 4 in raw[0][0] and raw[0][0] != (1, 2)
    # ...but a pair near each other rather than near everyone is the likelier one.
    found = suggest_merges(vectors, owners, ids, PERSONS, 2.0)
    first = found[0]
    assert (first.into, first.other) == (1, 2)  # the larger one is kept
    assert all(4 in (s.into, s.other) for s in found[1:6])
    assert owners[first.face_into - 100] == 1 and owners[first.face_other - 100] == 2
    d = 2 - 2 * float(vectors[first.face_into - 100] @ vectors[first.face_other - 100])
    assert first.distance == pytest.approx(d, abs=1e-5)
    assert first.command == "facecluster people merge 1 2"
    assert all(-1 not in (s.into, s.other) for s in found)
    # Nothing beyond max_distance; limit cuts the list.
    assert max(s.distance for s in found) <= 2.0
    tight = suggest_merges(vectors, owners, ids, PERSONS, raw[0][1][0])
    assert [(s.into, s.other) for s in tight] == [(3, 4)]
    assert len(suggest_merges(vectors, owners, ids, PERSONS, 2.0, limit=2)) == 2


def test_names_decide() -> None:
    vectors, owners = library()
    ids = np.arange(len(owners))
    named = {**PERSONS, 1: ("Anna", 8), 2: ("Bea", 3)}
    pairs = {(s.into, s.other) for s in suggest_merges(vectors, owners, ids, named, 2.0)}
    assert not {(1, 2), (2, 1)} & pairs  # named differently: the user said two people
    same = {**PERSONS, 1: ("Anna", 8), 2: ("anna", 3), 5: ("Cy", 5)}
    found = suggest_merges(vectors, owners, ids, same, 2.0)
    assert (found[0].into, found[0].other) == (1, 2)  # one name twice: very much suggested
    assert (found[0].name_into, found[0].name_other) == ("Anna", "anna")
    # A named person is the one kept, even when smaller.
    small = {**PERSONS, 2: ("Anna", 3)}
    s = suggest_merges(vectors, owners, ids, small, 2.0)[0]
    assert (s.into, s.other, s.faces_into, s.faces_other) == (2, 1, 3, 8)


def test_nothing_to_suggest() -> None:
    vectors, owners = library()
    none = np.full(len(owners), -1)
    assert suggest_merges(vectors, none, np.arange(len(owners)), {}, 2.0) == []
    assert suggest_merges(vectors[:0], owners[:0], owners[:0], {}, 2.0) == []


# --- end to end -------------------------------------------------------------------------


def cli(*args: str) -> dict | list:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def serena(db: Path) -> list[int]:
    """The persons holding Serena Williams's faces."""
    out = []
    for p in cli("people", "--db", str(db)):
        faces = cli("people", "show", str(p["id"]), "--db", str(db))["faces"]
        if any("Serena_Williams" in f["photo"] for f in faces):
            out.append(p["id"])
    return sorted(out)


@pytest.mark.model
def test_people_suggest_finds_a_split_person(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dlib-resnet, whose distances these numbers are in, for every command below.
    monkeypatch.setenv("FACECLUSTER_MODEL", "dlib-resnet")
    db = tmp_path / "faces.db"
    cli("scan", str(copy_sample(tmp_path / "photos")), "--db", str(db))
    # A tight threshold cuts Serena Williams's four portraits in two persons.
    cli("group", "--db", str(db), "--threshold", "0.08", "--html", str(tmp_path / "page"))
    halves = serena(db)
    assert len(halves) == 2
    found = cli("people", "suggest", "--db", str(db))
    first = found[0]
    assert sorted([first["into"]["id"], first["other"]["id"]]) == halves
    assert first["command"] == f"facecluster people merge {first['into']['id']} " + str(
        first["other"]["id"]
    )
    assert 0 < first["distance"] <= 1.5 * 0.155
    assert first["into"]["faces"] == first["other"]["faces"] == 2
    page = (tmp_path / "page" / "index.html").read_text("utf-8")
    assert first["command"] in page  # the page lists the same pair
    text = runner.invoke(app, ["people", "suggest", "--db", str(db), "--limit", "1"])
    assert text.exit_code == 0 and text.stdout.count("facecluster people merge") == 1
    assert first["command"] in text.stdout

    # Named differently: never suggested again; the same name: suggested again.
    a, b = halves
    cli("people", "name", str(a), "Serena", "--db", str(db))
    cli("people", "name", str(b), "Venus", "--db", str(db))
    pairs = [{s["into"]["id"], s["other"]["id"]} for s in cli("people", "suggest", "--db", str(db))]
    assert {a, b} not in pairs
    cli("people", "name", str(b), "serena", "--db", str(db))
    assert {a, b} == set(serena(db)) and cli("people", "suggest", "--db", str(db))[0]["into"][
        "id"
    ] in (a, b)

    # Nothing within a tiny distance: an empty list, a note on stderr, exit 0.
    result = runner.invoke(app, ["people", "suggest", "--db", str(db), "--max-distance", "0"])
    assert result.exit_code == 0 and result.stdout == "" and "no suggestions" in result.stderr
