"""The registries: an encoder, a detector, a clustering method and an output writer added
by one definition and one registration each (this module plays the new module), then used
through the public functions and the CLI, with no other edit (docs/design.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from facecluster.cache import FaceCache, PhotoWrite
from facecluster.cli import app
from facecluster.cluster import METHODS, ClusterMethod, GroupSettings, cluster_faces
from facecluster.detect import DETECTORS, DetectorSpec, load_detector
from facecluster.encoders import (
    ENCODERS,
    EncoderSpec,
    available,
    available_encoders,
    encoder_identity,
    encoder_spec,
    load_encoder,
    resolve,
)
from facecluster.errors import UnknownModel
from facecluster.records import Face, FileEntry
from facecluster.registry import Registry, UnknownName, load_ref, or_list
from facecluster.writers import WRITERS, WriteOptions, WriterSpec

runner = CliRunner()


@contextmanager
def registered(registry: Registry[Any], spec: Any) -> Iterator[Any]:
    registry.register(spec)
    try:
        yield spec
    finally:
        registry.unregister(spec.name)


# --- a new encoder: these four functions and one EncoderSpec ---------------------------


class FakeEncoder:
    """4-D 'embeddings': the mean colour of the chip and a constant, normalised."""

    name, dim = "fake-enc", 4
    identity = {"name": "fake-enc", "dim": 4, "weights_sha256": "f" * 16}

    def prepare(self, image: np.ndarray, face: Face) -> np.ndarray:
        return image

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        x = np.array([[*c.reshape(-1, 3).mean(0), 1.0] for c in chips], np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def fake_load(spec: EncoderSpec, weights: Path | None, device: str) -> FakeEncoder:
    return FakeEncoder()


def fake_identity(spec: EncoderSpec, weights: Path | None) -> dict[str, object]:
    return dict(FakeEncoder.identity)


def fake_available(spec: EncoderSpec, weights: Path | None) -> bool:
    return True


def fake_location(spec: EncoderSpec, weights: Path | None) -> str:
    return "nowhere: computed"


HERE = "tests.test_registries"
FAKE_ENCODER = EncoderSpec(
    "fake-enc",
    4,
    0.5,
    "a test encoder",
    load=f"{HERE}:fake_load",
    identity=f"{HERE}:fake_identity",
    available=f"{HERE}:fake_available",
    location=f"{HERE}:fake_location",
)


# --- a new clustering method and a new output writer -----------------------------------


def by_sign(emb: np.ndarray, settings: GroupSettings) -> np.ndarray:
    """Two persons: faces whose first coordinate is positive, and the others."""
    return (np.asarray(emb)[:, 0] <= 0).astype(np.int64)


BY_SIGN = ClusterMethod("by-sign", "splits on the first coordinate", ("min_cluster_size",), by_sign)


def write_counts(grouping: Any, target: Path, options: WriteOptions) -> dict[str, Any]:
    sizes = [len(p.faces) for p in grouping.persons]
    target.write_text(json.dumps({"faces_per_person": sizes, "layout": options.layout}))
    return {"path": str(target)}


COUNTS = WriterSpec("counts", "faces per person as JSON", write_counts)


@pytest.fixture
def extended() -> Iterator[None]:
    with (
        registered(ENCODERS, FAKE_ENCODER),
        registered(METHODS, BY_SIGN),
        registered(WRITERS, COUNTS),
    ):
        yield


def fake_database(path: Path) -> Path:
    """Six faces of the fake encoder in six photos: three near +x, three near -x."""
    x = np.array([[sign, 0.1 * i, 0.2, 0] for sign in (1, -1) for i in range(3)], np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    face = Face(np.array([0, 0, 10, 10], np.float32), np.zeros((5, 2), np.float32), 1.0)
    with FaceCache(path) as cache:
        enc_id = cache.encoder_id(encoder_identity("fake-enc"))
        assert enc_id is not None
        writes = [
            PhotoWrite(
                FileEntry(path.parent / f"p{i}.jpg", 1, 1),
                f"d{i}",
                10,
                10,
                "ok",
                [face],
                x[i : i + 1],
            )
            for i in range(6)
        ]
        cache.apply(writes, enc_id)
    return path


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


# --- tests ---------------------------------------------------------------------------


def test_registry_refuses_duplicates_and_lists_choices() -> None:
    reg: Registry[DetectorSpec] = Registry("thing")
    reg.register(DetectorSpec("a", "", "x:y"))
    reg.register(DetectorSpec("b", "", "x:y"))
    with pytest.raises(ValueError, match="already registered"):
        reg.register(DetectorSpec("a", "", "x:z"))
    with pytest.raises(UnknownName, match="unknown thing 'c'; choose one of: a, b") as info:
        reg.get("c")
    assert info.value.exit_code == 2
    assert reg.names() == ("a", "b") and "a" in reg and "c" not in reg and len(reg) == 2
    assert [s.name for s in reg] == ["a", "b"] and reg.get("b").name == "b"
    reg.unregister("a")
    assert reg.names() == ("b",)
    assert or_list(["a"]) == "a" and or_list(["a", "b", "c"]) == "a, b or c"
    assert load_ref("facecluster.registry:or_list") is or_list and load_ref(or_list) is or_list


def test_importing_the_cli_and_its_registries_loads_no_numpy() -> None:
    code = (
        "import sys, facecluster.cli, facecluster.cluster, facecluster.writers; "
        "print(sorted(m for m in ('numpy', 'torch', 'scipy', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_registered_encoder_works_through_the_public_functions(extended) -> None:
    assert encoder_spec("fake-enc") is FAKE_ENCODER and resolve("fake-enc") == "fake-enc"
    assert available("fake-enc") and encoder_identity("fake-enc")["weights_sha256"] == "f" * 16
    enc = load_encoder("fake-enc")
    v = enc.embed([np.full((8, 8, 3), 100, np.uint8)])
    assert v.shape == (1, 4) and abs(float(np.linalg.norm(v)) - 1) < 1e-6
    listed = {e.spec.name: e for e in available_encoders()}
    assert listed["fake-enc"].available and listed["fake-enc"].location == "nowhere: computed"
    rows = json.loads(invoke("models", "--json").stdout)
    row = next(r for r in rows if r["name"] == "fake-enc")
    assert row["dim"] == 4 and row["default_threshold"] == 0.5 and not row["auto"]
    r = invoke("verify", "a.jpg", "b.jpg", "--model", "nope")
    assert r.exit_code == 2 and "dlib-resnet, fake-enc, a trained model" in r.stderr


def test_an_unregistered_encoder_is_unknown() -> None:
    with pytest.raises(UnknownModel, match="unknown model 'fake-enc'"):
        encoder_spec("fake-enc")


def test_a_registered_detector_is_loaded_by_name() -> None:
    class Dots:
        name = "dots"

        def __init__(self, device: str = "cpu") -> None:
            self.device = device

        def detect(self, images, min_sizes=None, timings=None):
            box, lm = np.array([1, 1, 5, 5], np.float32), np.zeros((5, 2), np.float32)
            return [[Face(box, lm, 0.99)] for _ in images]

    with registered(DETECTORS, DetectorSpec("dots", "one face everywhere", Dots)):
        det = load_detector("dots", device="cuda")
        assert det.name == "dots" and det.device == "cuda"
        assert [len(f) for f in det.detect([np.zeros((9, 9, 3), np.uint8)] * 2)] == [1, 1]
    with pytest.raises(UnknownName, match="unknown detector 'dots'; choose one of: mtcnn"):
        load_detector("dots")


def test_a_registered_method_is_dispatched_and_reported(extended) -> None:
    emb = np.array([[1, 0], [0.9, 0.1], [-1, 0]], np.float32)
    settings = GroupSettings("by-sign", min_cluster_size=1)
    assert cluster_faces(emb, settings).tolist() == [0, 0, 1]
    assert settings.as_dict() == {"method": "by-sign", "min_cluster_size": 1}
    assert settings.command() == "group --method by-sign"


def test_builtin_methods_keep_their_settings_and_history_wording() -> None:
    agg = GroupSettings("agglomerative", 0.155, "weighted", 2)
    assert list(agg.as_dict()) == ["method", "min_cluster_size", "threshold", "linkage"]
    assert agg.command() == "group --threshold 0.155 --linkage weighted"
    hdb = GroupSettings("hdbscan", min_cluster_size=3)
    assert hdb.as_dict() == {"method": "hdbscan", "min_cluster_size": 3, "min_samples": None}
    assert hdb.command() == "group --method hdbscan --min-cluster-size 3"
    with pytest.raises(ValueError, match="unknown clustering method 'nope'"):
        cluster_faces(np.zeros((2, 2), np.float32), GroupSettings("nope"))


def test_group_runs_a_registered_encoder_method_and_writer(tmp_path: Path, extended) -> None:
    db = fake_database(tmp_path / "faces.db")
    target = tmp_path / "counts.json"
    common = ["group", "--db", str(db), "--model", "fake-enc", "--method", "by-sign"]
    r = invoke(*common, "--write", f"counts={target}", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["persons"] == 2 and out["method"] == "by-sign" and out["model"] == "fake-enc"
    assert out["counts"] == str(target) and "kept" not in out and out["warnings"] == []
    assert json.loads(target.read_text()) == {"faces_per_person": [3, 3], "layout": "symlink"}
    history = json.loads(
        invoke("people", "--db", str(db), "--model", "fake-enc", "history", "--json").stdout
    )
    assert history[0]["step"] == "group --method by-sign"

    # A file writer without a check of its own never writes over an existing file.
    r = invoke(*common, "--write", f"counts={target}")
    assert r.exit_code == 2 and "exists" in r.stderr and "Traceback" not in r.output
    # The built-in writers answer to --write too, under their usual JSON keys.
    r = invoke(*common, "--write", f"folders={tmp_path / 'people'}", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["out"] == str(tmp_path / "people") and out["kept"] == []
    plain = invoke(*common)
    assert plain.exit_code == 0 and "fake-enc, by-sign;" in plain.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--write", "nope=x"],
            "unknown output writer 'nope'; choose one of: folders, report, html, counts",
        ),
        (["--write", "counts"], "--write wants NAME=PATH, got 'counts'"),
        (["--out", "o", "--write", "folders=p"], "output 'folders' is given twice"),
        (["--out", "o", "--write", "counts=o/c.json"], "inside the --out folder"),
        (["--method", "nope"], "--method must be agglomerative, hdbscan or by-sign, not 'nope'"),
        (["--dry-run", "--write", "counts=c"], "drop --out/--report/--html/--write"),
    ],
)
def test_group_refuses_bad_outputs_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extended, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(
        app, ["group", "--db", str(tmp_path / "none.db"), *args], catch_exceptions=False
    )
    assert r.exit_code == 2 and message in r.stderr, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []
