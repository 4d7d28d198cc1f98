"""The Python API used directly (not through the CLI), and docs/api.md's example run as
written, on the in-repo photos with the real detector and encoder."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import facecluster
from facecluster import FaceIndex
from facecluster.errors import CacheLocked, EmptyCache, NoFaceError

from .conftest import ROOT, copy_sample_people, sample_edge

pytestmark = pytest.mark.model


def test_docs_api_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    home = tmp_path / "home"
    copy_sample_people(home / "Photos", {"Colin_Powell": 3, "Serena_Williams": 3})
    monkeypatch.setenv("HOME", str(home))
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "6 photos, 6 faces"
    assert "same person" in done.stdout and "sface" in lines[-1]
    assert (home / "faces.db").is_file()


def test_scan_group_people_find_through_the_api(tmp_path: Path) -> None:
    lib = copy_sample_people(tmp_path / "photos", {"Colin_Powell": 3, "Tony_Blair": 3})
    with FaceIndex(tmp_path / "f.db", model="dlib-resnet") as index:
        stats = index.scan([lib])
        assert (stats.photos_total, stats.faces, stats.photos_failed) == (6, 6, 0)
        seen = []
        again = index.scan([lib], progress=seen.append)
        assert again.photos_unchanged == 6 and again.embeddings_computed == 0
        dry = index.group(dry_run=True)
        assert not dry.saved and index.people.persons() == []
        result = index.group()
        assert len(result.grouping.persons) == 2 and result.unknown == 0
        powell = next(p for p in result.grouping.persons if "Colin" in p.faces[0].photo)
        index.people.rename(powell.id, "Colin")
        matches = index.find(lib / "Colin_Powell" / sorted(
            p.name for p in (lib / "Colin_Powell").iterdir())[0], k=5)
        assert {m.person_name for m in matches} == {"Colin"} and len(matches) == 3
        assert matches[0].distance < 1e-4
        with pytest.raises(CacheLocked):
            with FaceIndex(tmp_path / "f.db", model="dlib-resnet") as other:
                other.cache.lock()
                index.scan([lib])


def test_verify_and_typed_errors(tmp_path: Path) -> None:
    people = copy_sample_people(tmp_path / "p", {"Colin_Powell": 2, "Tony_Blair": 1})
    a, b = sorted((people / "Colin_Powell").iterdir())
    (c,) = (people / "Tony_Blair").iterdir()
    detector, encoder = facecluster.load_models("dlib-resnet", device="cpu")
    same = facecluster.verify(a, b, model="dlib-resnet", models=(detector, encoder))
    other = facecluster.verify(a, c, model="dlib-resnet", models=(detector, encoder))
    assert same.same and not other.same and same.distance < other.distance
    with pytest.raises(NoFaceError):
        facecluster.verify(a, sample_edge("no_face"), model="dlib-resnet",
                           models=(detector, encoder))
    with pytest.raises(EmptyCache):
        FaceIndex(tmp_path / "missing.db", create=False)
    with FaceIndex(tmp_path / "empty.db", model="dlib-resnet") as empty, pytest.raises(EmptyCache):
        empty.group()


def test_importing_the_package_loads_no_heavy_module() -> None:
    heavy = "('torch', 'sklearn', 'scipy', 'hdbscan')"
    code = ("import sys, facecluster; facecluster.FaceIndex; "
            f"print(sorted(m for m in {heavy} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
