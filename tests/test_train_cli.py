"""`facecluster train` through the CLI: errors, and head / scratch runs on real photos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facecluster.cli import app

from .conftest import copy_photos, copy_sample

runner = CliRunner()


def test_train_missing_folder(tmp_path: Path) -> None:
    r = runner.invoke(app, ["train", str(tmp_path / "nope"), "--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 2
    assert r.output.strip() == f"error: no such folder: {tmp_path / 'nope'}"


def test_train_unknown_base_and_missing_weights(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    r = runner.invoke(app, ["train", str(tmp_path), "--out", "x", "--base", "nope"])
    assert r.exit_code == 2 and r.output.startswith("error: unknown model 'nope'")
    assert "Traceback" not in r.output
    r = runner.invoke(app, ["train", str(tmp_path), "--out", "x", "--mode", "finetune"])
    assert r.exit_code == 2 and "facenet-vggface2 weights not found" in r.output
    r = runner.invoke(app, ["train", str(tmp_path), "--out", "x", "--mining", "easy"])
    assert r.exit_code == 2


def test_train_help_lists_the_options() -> None:
    r = runner.invoke(app, ["train", "--help"], terminal_width=200)
    assert r.exit_code == 0
    for opt in (
        "--identities-per-batch",
        "--faces-per-identity",
        "--margin",
        "--mining",
        "--epochs",
        "--lr",
        "--val-fraction",
        "--resume",
        "--device",
        "--json",
    ):
        assert opt in r.output


@pytest.mark.model
def test_train_head_then_use_it_by_name(tmp_path: Path) -> None:
    photos = copy_sample(tmp_path / "sample") / "people"  # 14 faces of 4 people
    db = tmp_path / "faces.db"
    args = ["train", str(photos), "--db", str(db), "--out", "mine", "--base", "dlib-resnet"]
    args += ["-P", "3", "-K", "2", "--epochs", "3", "--val-fraction", "0", "--json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["name"] == "dlib-resnet+mine" and doc["train_faces"] == 14
    assert [h["epoch"] for h in doc["history"]] == [0, 1, 2, 3]
    assert doc["faces_projected"] >= 14
    assert Path(doc["out"]).is_file() and doc["out"].endswith("models/dlib-resnet+mine.pt")

    # the new encoder by name: eval reuses the projected vectors, verify runs the base + head
    r = runner.invoke(
        app, ["eval", str(photos), "--db", str(db), "--model", "dlib-resnet+mine", "--json"]
    )
    assert r.exit_code == 0, r.output
    ev = json.loads(r.output)
    assert ev["model"] == "dlib-resnet+mine" and ev["faces_scored"] == 14
    assert ev["settings"]["threshold"] == doc["threshold"]
    a, b = sorted((photos / "Colin_Powell").iterdir())[:2]
    r = runner.invoke(app, ["verify", str(a), str(b), "--model", doc["out"], "--json"])
    assert r.exit_code in (0, 1), r.output
    assert json.loads(r.output)["model"] == "dlib-resnet+mine"
    r = runner.invoke(app, ["models", "--json"])
    assert "dlib-resnet+mine" in [m["name"] for m in json.loads(r.output)]

    # --threshold is stored as the model's default instead of the calibrated one
    r = runner.invoke(app, [*args[:5], "fixed", *args[6:], "--threshold", "0.4"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["threshold"] == 0.4
    r = runner.invoke(app, ["models", "--json"])
    by_name = {m["name"]: m for m in json.loads(r.output)}
    assert by_name["dlib-resnet+fixed"]["default_threshold"] == 0.4

    # too few faces for K: a one-line error, exit 2
    r = runner.invoke(app, args[:-1] + ["-K", "5"])
    assert r.exit_code == 2
    assert r.output.strip().startswith("error: need at least 2 identities with 5")


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.shared_data
def test_train_scratch_loss_falls(tmp_path: Path) -> None:
    people = ["Ariel_Sharon", "Barack_Obama", "Angelina_Jolie", "Bill_Clinton"]
    photos = copy_photos(tmp_path / "people", dict.fromkeys(people, 5))
    out = tmp_path / "scratch.pt"
    args = ["train", str(photos), "--out", str(out), "--mode", "scratch", "-P", "4", "-K", "4"]
    args += [
        "--extra-negatives",
        "0",
        "--epochs",
        "8",
        "--val-fraction",
        "0",
        "--device",
        "cpu",
        "--json",
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    losses = [h["loss"] for h in doc["history"][1:]]
    active = [h["active_fraction"] for h in doc["history"][1:]]
    # measured: loss 0.194 0.177 0.196 0.191 0.218 0.111 0.127 0.131, active 96% -> 56%
    assert sum(losses[-3:]) < 0.8 * sum(losses[:3])
    assert max(active[-3:]) < min(active[:2])
    assert doc["name"] == "scratch+scratch"
    r = runner.invoke(
        app, ["eval", str(photos), "--db", str(tmp_path / "e.db"), "--model", str(out), "--json"]
    )
    assert r.exit_code == 0, r.output


@pytest.mark.model
@pytest.mark.shared_data
def test_train_finetune_from_a_weights_file(tmp_path: Path, fake_facenet_weights: Path) -> None:
    import numpy as np

    from facecluster.encoders import load_encoder, resolve
    from facecluster.encoders.trained import TrainedFacenetEncoder

    photos = copy_photos(tmp_path / "people", {"Ariel_Sharon": 2, "Barack_Obama": 2})
    out = tmp_path / "ft.pt"
    args = ["train", str(photos), "--out", str(out), "--mode", "finetune", "--weights"]
    args += [str(fake_facenet_weights), "-P", "2", "-K", "2", "--extra-negatives", "0"]
    args += ["--epochs", "1", "--val-fraction", "0", "--device", "cpu", "--json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["name"] == "facenet-vggface2+ft" and doc["train_faces"] == 4
    assert doc["history"][1]["triplets"] == 4  # 2 identities x 2 ordered pairs
    assert resolve(str(out)) == "facenet-vggface2+ft"
    enc = load_encoder(str(out))
    assert isinstance(enc, TrainedFacenetEncoder)
    assert enc.identity["base"]["weights_sha256"]  # the facenet weights it started from
    v = enc.embed([np.zeros((160, 160, 3), np.uint8)])
    assert v.shape == (1, 512) and abs(float(np.linalg.norm(v)) - 1) < 1e-5
