"""The facenet loading path, with a same-shaped weights file made from a random init."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facecluster.cache import FaceCache
from facecluster.cli import app
from facecluster.encoders import load_encoder, resolve
from facecluster.errors import ModelUnavailable

from .conftest import sample_people

pytestmark = [pytest.mark.model]
runner = CliRunner()


def test_explicit_weights_file_loads_and_embeds_unit_vectors(fake_facenet_weights):
    enc = load_encoder("facenet-vggface2", weights=fake_facenet_weights)
    assert enc.dim == 512 and enc.identity["weights_sha256"]
    chips = [np.random.default_rng(i).integers(0, 255, (160, 160, 3), np.uint8) for i in range(3)]
    vecs = enc.embed(chips)
    assert vecs.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_env_variable_and_torch_cache_are_found(fake_facenet_weights, monkeypatch, tmp_path):
    assert resolve("auto") == "sface"  # no FaceNet weights anywhere yet: the best offline
    monkeypatch.setenv("FACECLUSTER_WEIGHTS", str(fake_facenet_weights))
    assert resolve("auto") == "facenet-vggface2"
    monkeypatch.delenv("FACECLUSTER_WEIGHTS")
    torch_home = tmp_path / "torch"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    (torch_home / "checkpoints").mkdir(parents=True)
    shutil.copy(fake_facenet_weights, torch_home / "checkpoints" / fake_facenet_weights.name)
    assert resolve("auto") == "facenet-vggface2"
    assert load_encoder("auto").name == "facenet-vggface2"
    listing = json.loads(runner.invoke(app, ["models", "--json"]).stdout)
    by_name = {m["name"]: m for m in listing}
    assert by_name["facenet-vggface2"]["available"] and by_name["facenet-vggface2"]["auto"]
    assert not by_name["facenet-casia"]["available"]


def test_missing_weights_say_which_file_to_put_where(tmp_path):
    with pytest.raises(ModelUnavailable) as info:
        load_encoder("facenet-vggface2")
    msg = str(info.value)
    assert "20180402-114759-vggface2.pt" in msg and "checkpoints" in msg
    result = runner.invoke(
        app, ["scan", str(tmp_path), "--model", "facenet-casia", "--db", str(tmp_path / "f.db")]
    )
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and "20180408-102900-casia-webface.pt" in line
    assert "checkpoints" in line and "--weights" in line


def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ModelUnavailable, match="cannot load weights"):
        load_encoder("facenet-vggface2", weights=bad)
    import torch

    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "wrong.pt")
    with pytest.raises(ModelUnavailable, match="does not fit InceptionResnetV1"):
        load_encoder("facenet-vggface2", weights=tmp_path / "wrong.pt")


def test_two_encoders_keep_separate_embedding_sets(fake_facenet_weights, tmp_path):
    lib = tmp_path / "photos"
    lib.mkdir()
    people = sample_people()
    for src in [*people["Colin_Powell"][:2], people["Serena_Williams"][0]]:
        shutil.copy2(src, lib / src.name)
    db = tmp_path / "f.db"
    first = json.loads(
        runner.invoke(
            app, ["scan", str(lib), "--db", str(db), "--json", "--model", "dlib-resnet"]
        ).stdout
    )
    result = runner.invoke(
        app, ["scan", str(lib), "--db", str(db), "--json", "--weights", str(fake_facenet_weights)]
    )
    assert result.exit_code == 0, result.output
    second = json.loads(result.stdout)
    assert second["model"] == "facenet-vggface2"
    assert second["photos_reembedded"] == 3 and second["faces_new"] == 0
    assert second["faces"] == first["faces"]
    with FaceCache(db) as cache:
        sets = {name: (count, identity["dim"]) for _, name, identity, count in cache.encoders()}
    assert sets == {"dlib-resnet": (first["faces"], 128), "facenet-vggface2": (first["faces"], 512)}


def test_help_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, facecluster.cli as c; "
        "assert not {'torch', 'dlib', 'sklearn', 'facenet_pytorch'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    out = subprocess.run(
        [sys.executable, "-m", "facecluster", "--help"], capture_output=True, text=True, check=True
    )
    assert "scan" in out.stdout and "models" in out.stdout


def test_weights_path_of_facenet_pytorch_cache(monkeypatch, tmp_path):
    from facecluster.encoders.facenet_paths import cache_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert cache_path("vggface2") == tmp_path / "th" / "checkpoints" / "20180402-114759-vggface2.pt"
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_path("casia-webface") == (
        tmp_path / "xdg" / "torch" / "checkpoints" / "20180408-102900-casia-webface.pt"
    )
    assert isinstance(cache_path("vggface2"), Path)


def test_our_inception_resnet_gives_facenet_pytorchs_embeddings(fake_facenet_weights):
    import torch
    from facenet_pytorch import InceptionResnetV1 as Theirs

    from facecluster.encoders.facenet import load_state_dict
    from facecluster.encoders.facenet_net import InceptionResnetV1 as Ours

    state = load_state_dict(fake_facenet_weights)  # the same trained-shaped file, no logits
    theirs, ours = Theirs(pretrained=None, classify=False).eval(), Ours().eval()
    theirs.load_state_dict(state, strict=True)
    ours.load_state_dict(state, strict=True)  # every key and shape of facenet-pytorch's
    x = torch.from_numpy(np.random.default_rng(0).normal(0, 1, (3, 3, 160, 160)).astype("f4"))
    with torch.inference_mode():
        assert torch.equal(ours(x), theirs(x))


def test_loading_facenet_imports_neither_torchvision_nor_facenet_pytorch(fake_facenet_weights):
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from pathlib import Path; "
        "from facecluster.encoders import load_encoder; "
        "enc = load_encoder('facenet-vggface2', weights=Path(sys.argv[1])); "
        "v = enc.embed([np.zeros((160, 160, 3), np.uint8)]); "
        "print(v.shape, sorted(m for m in ('torchvision', 'facenet_pytorch', 'torch._dynamo') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(fake_facenet_weights)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "(1, 512) []"
