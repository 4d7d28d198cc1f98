"""verify, find and eval on real photos with the offline encoder: the in-repo ones by
default, the full dev set where marked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facecluster.cli import app

from .conftest import DEV, copy_photos, sample_edge, sample_people

pytestmark = pytest.mark.model
runner = CliRunner()


def photo(person: str, i: int) -> str:
    return str(sorted((DEV / person).iterdir())[i])


# --- the in-repo photos ----------------------------------------------------------------

PEOPLE = sample_people()


def test_verify_two_photos_of_one_person_exits_0():
    a, b = PEOPLE["Colin_Powell"][0], PEOPLE["Colin_Powell"][-1]
    result = runner.invoke(app, ["verify", str(a), str(b), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["same"] and out["distance"] <= out["threshold"] == 1.24
    assert out["model"] == "sface"


def test_verify_two_people_exits_1():
    # Powell and Blair: two people (with sface no two photos of different people among the
    # four are nearer than 1.42, docs in tests/data/README.md), apart.
    a, b = PEOPLE["Colin_Powell"][0], PEOPLE["Tony_Blair"][0]
    result = runner.invoke(app, ["verify", str(a), str(b)])
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("different people: distance")


def test_verify_no_face_or_unreadable_exits_2_with_one_line():
    portrait = str(PEOPLE["Colin_Powell"][0])
    result = runner.invoke(app, ["verify", str(sample_edge("no_face")), portrait])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no face found in") and result.stderr.count("\n") == 1
    broken = runner.invoke(app, ["verify", str(sample_edge("broken")), portrait])
    assert broken.exit_code == 2 and broken.stderr.startswith("error: ")
    assert "truncated" in broken.stderr and broken.stderr.count("\n") == 1


@pytest.mark.parametrize("person", ["Colin_Powell", "Serena_Williams"])
def test_find_returns_every_photo_of_the_person_and_no_one_else(scanned_sample, person):
    query = PEOPLE[person][1]  # the same file sits in the library, under another path
    result = runner.invoke(
        app, ["find", str(query), "--db", str(scanned_sample.db), "-k", "10", "--json"]
    )
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["results"]
    assert hits[0]["photo"].endswith(f"{person}/{query.name}") and hits[0]["distance"] < 1e-3
    assert [h["distance"] for h in hits] == sorted(h["distance"] for h in hits)
    assert sorted(Path(h["photo"]).name for h in hits) == [p.name for p in PEOPLE[person]]


def test_find_errors(tmp_path):
    query = str(PEOPLE["Colin_Powell"][0])
    missing = runner.invoke(app, ["find", query, "--db", str(tmp_path / "x.db")])
    assert missing.exit_code == 2 and "no face database" in missing.stderr


# --- the full dev set -------------------------------------------------------------------

SAME = [("Colin_Powell", 0, 5), ("Serena_Williams", 1, 4), ("Tony_Blair", 2, 7)]
DIFFERENT = [(("Colin_Powell", 0), ("Tony_Blair", 0)),
             (("Serena_Williams", 0), ("Angelina_Jolie", 0)),
             (("Tom_Hanks", 0), ("Rita_Wilson", 0))]


@pytest.mark.shared_data
@pytest.mark.parametrize("person,a,b", SAME)
def test_verify_same_person_exits_0(person, a, b):
    result = runner.invoke(app, ["verify", photo(person, a), photo(person, b), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["same"] and out["distance"] <= out["threshold"] and out["model"] == "sface"


@pytest.mark.shared_data
@pytest.mark.parametrize("a,b", DIFFERENT)
def test_verify_different_people_exits_1(a, b):
    result = runner.invoke(app, ["verify", photo(*a), photo(*b)])
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("different people: distance")


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    # No siblings here: Serena and Venus Williams sit close (sface: a median 1.24 between
    # them, 0.69 within each), so in a small set they can merge (docs/models.md).
    people = {"Colin_Powell": 10, "Tony_Blair": 10, "Serena_Williams": 8, "Angelina_Jolie": 8,
              "Tom_Hanks": 6, "Rita_Wilson": 3}
    root = copy_photos(tmp_path_factory.mktemp("lib") / "photos", people)
    db = root.parent / "faces.db"
    result = runner.invoke(app, ["scan", str(root), "--db", str(db), "--quiet"])
    assert result.exit_code == 0, result.output
    return root, db, people


@pytest.mark.shared_data
def test_find_returns_the_query_person_first(library):
    root, db, people = library
    precisions = []
    for person, n in people.items():
        query = photo(person, n)  # a photo that is not in the library
        result = runner.invoke(app, ["find", query, "--db", str(db), "-k", "5", "--json"])
        assert result.exit_code == 0, result.output
        hits = json.loads(result.stdout)["results"]
        assert hits and all(h["distance"] <= 1.24 for h in hits)
        assert [h["distance"] for h in hits] == sorted(h["distance"] for h in hits)
        # precision@5, out of min(5, photos of the person in the library)
        right = sum(Path(h["photo"]).parent.name == person for h in hits[:5])
        precisions.append(right / min(5, n))
    p_at_5 = sum(precisions) / len(precisions)
    print(f"\nfind precision@5 over {len(people)} dev people: {p_at_5:.3f}")
    assert p_at_5 >= 0.9 and min(precisions) >= 0.6


@pytest.mark.shared_data
def test_eval_reports_clustering_and_verification(library):
    root, db, people = library  # already scanned: eval reuses the cache
    result = runner.invoke(app, ["eval", str(root), "--db", str(db), "--json",
                                 "--sweep", "0.13:0.17:0.02"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    c, v = out["clustering"], out["verification"]
    assert out["photos"] == sum(people.values()) and out["identities"] == len(people)
    for key in ("pairwise_precision", "pairwise_recall", "pairwise_f1", "bcubed_precision",
                "bcubed_recall", "bcubed_f1", "nmi", "n_clusters", "unknown_rate"):
        assert key in c
    assert c["pairwise_f1"] >= 0.9 and c["bcubed_f1"] >= 0.9
    assert v["best_accuracy"] >= 0.95 and 0 < v["tar"] <= 1 and "tar_threshold" in v
    assert [r["threshold"] for r in out["sweep"]] == [0.13, 0.15, 0.17]
    assert out["best"]["pairwise_f1"] == max(r["pairwise_f1"] for r in out["sweep"])


@pytest.mark.shared_data
def test_eval_rejects_a_bad_sweep(library, tmp_path):
    root, _, _ = library
    result = runner.invoke(app, ["eval", str(root), "--db", str(tmp_path / "e.db"),
                                 "--sweep", "0.2:0.1:0.01"])
    assert result.exit_code == 2 and "--sweep" in result.stderr
