"""The in-repo photos (tests/data) are what their manifest and README say they are."""

from __future__ import annotations

import hashlib

import pytest

from .conftest import DATA, SAMPLE, sample_manifest, sample_people


def test_every_photo_is_listed_intact_and_the_set_stays_small():
    rows = sample_manifest()
    listed = {r["path"] for r in rows}
    present = {
        p.relative_to(SAMPLE).as_posix()
        for sub in ("people", "edge")
        for p in (SAMPLE / sub).rglob("*")
        if p.is_file()
    }
    assert present == listed
    for r in rows:
        data = (SAMPLE / r["path"]).read_bytes()
        assert len(data) == int(r["bytes"]), r["path"]
        assert hashlib.sha256(data).hexdigest() == r["sha256"], r["path"]
    assert sum(int(r["bytes"]) for r in rows) < 3_000_000
    readme = (SAMPLE / "README.md").read_text(encoding="utf-8")
    assert all(f"`{r['path']}`" in readme for r in rows)  # each has its source and licence


def test_the_set_has_what_the_default_tests_need():
    people = sample_people()
    assert len(people) >= 3 and sum(len(v) >= 3 for v in people.values()) >= 2
    categories = {r["category"] for r in sample_manifest()}
    assert {"multi_face", "no_face", "exif_orientation", "broken"} <= categories


@pytest.mark.shared_data
def test_each_photo_is_a_byte_copy_of_its_shared_original():
    for r in sample_manifest():
        assert (SAMPLE / r["path"]).read_bytes() == (DATA / r["shared_path"]).read_bytes()
