"""Head mode on synthetic embeddings (fast): loss, checkpoints, --resume, model files, and
the trained encoder in the registry and the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facecluster.cache import FaceCache, PhotoWrite
from facecluster.encoders import ENCODERS, encoder_identity, encoder_spec, load_encoder, resolve
from facecluster.encoders.trained import HeadEncoder, head_from, read_model
from facecluster.errors import TrainingError, UnknownModel
from facecluster.records import Face, FileEntry
from facecluster.train.head import project_cached, train_head
from facecluster.train.loop import TrainConfig

BASE_ID = {"name": "fake-base", "dim": 16, "weights_sha256": "0" * 16}


def clustered(n_ids: int = 12, per: int = 8, dim: int = 16, noise: float = 0.9, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids, dim))
    labels = np.repeat(np.arange(n_ids), per)
    x = centres[labels] + noise * rng.normal(size=(labels.size, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels


def run(tmp: Path, cfg: TrainConfig, resume: bool = False, out: str = "head.pt", **kw):
    x, y = clustered(**kw)
    return train_head(
        x,
        y,
        [f"id{i}" for i in range(y.max() + 1)],
        cfg,
        base="fake-base",
        base_identity=BASE_ID,
        base_threshold=0.5,
        name="fake-base+head",
        out=tmp / out,
        resume=resume,
    )


def test_head_training_lowers_the_loss_and_saves_a_model(tmp_path: Path) -> None:
    cfg = TrainConfig(epochs=12, identities_per_batch=6, margin=0.3, lr=1e-2)
    res = run(tmp_path, cfg, noise=0.6)
    losses = [h.loss for h in res.history[1:]]
    active = [h.active_fraction for h in res.history[1:]]
    assert max(losses[-3:]) < 0.5 * losses[0]
    assert max(active[-3:]) < 0.5 * active[0]
    assert res.history[0].loss is None and res.history[0].val_accuracy is not None
    assert res.fit.val_faces > 0 and res.fit.train_faces + res.fit.val_faces == 96
    mf = read_model(tmp_path / "head.pt")  # torch.load(weights_only=True) inside
    assert mf.name == "fake-base+head" and mf.dim == 16 and mf.base == "fake-base"
    assert mf.meta["training"]["margin"] == 0.3 and mf.meta["base_identity"] == BASE_ID
    assert mf.threshold == res.threshold > 0
    blob = torch.load(tmp_path / "head.pt", weights_only=True)
    assert set(blob) == {"format", "version", "meta", "state_dict"}
    assert (tmp_path / "head.pt.ckpt").is_file()
    d = res.as_dict()
    assert d["best_epoch"] == res.fit.best_epoch and len(d["history"]) == 13


def test_untrained_head_is_the_identity() -> None:
    from facecluster.encoders.trained import HeadNet

    x = torch.nn.functional.normalize(torch.randn(5, 16), dim=1)
    for hidden in (0, 32):
        assert torch.allclose(HeadNet(16, hidden)(x), x, atol=1e-6)


def test_resume_continues_exactly(tmp_path: Path) -> None:
    cfg = TrainConfig(epochs=4, identities_per_batch=6, faces_per_identity=4, hidden=8)
    straight = run(tmp_path / "a", cfg)
    run(tmp_path / "b", TrainConfig(**{**cfg.as_dict(), "epochs": 2}))
    resumed = run(tmp_path / "b", cfg, resume=True)
    assert resumed.fit.resumed_from == 2
    assert [h.loss for h in resumed.history] == [h.loss for h in straight.history]
    for k, v in straight.fit.state.items():
        assert torch.equal(v, resumed.fit.state[k]), k
    ck = torch.load(tmp_path / "b" / "head.pt.ckpt", weights_only=True)
    assert ck["epoch"] == 4


def test_resume_refuses_another_runs_checkpoint(tmp_path: Path) -> None:
    run(tmp_path, TrainConfig(epochs=1, identities_per_batch=6))
    with pytest.raises(TrainingError, match="belongs to another run"):
        run(tmp_path, TrainConfig(epochs=2, identities_per_batch=6, margin=0.5), resume=True)
    with pytest.raises(TrainingError, match="belongs to another run"):
        run(tmp_path, TrainConfig(epochs=2, identities_per_batch=6), resume=True, seed=1)


def test_too_few_identities(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="at least 2 identities"):
        run(tmp_path, TrainConfig(epochs=1, faces_per_identity=4), n_ids=3, per=3)


def test_bad_out_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrainingError, match="cannot write --out"):
        run(tmp_path, TrainConfig(epochs=1), out="file/head.pt")


def test_trained_encoder_by_file_and_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    res = run(tmp_path, TrainConfig(epochs=2, identities_per_batch=6))
    path = tmp_path / "head.pt"
    assert resolve(str(path)) == "fake-base+head"
    info = encoder_spec(str(path))
    assert info.dim == 16 and info.default_threshold == res.threshold
    assert info.path == str(path.resolve()) and encoder_spec(str(path)) is info  # cached
    assert "fake-base+head" not in ENCODERS  # no process-wide table is changed
    res2 = run(tmp_path, TrainConfig(epochs=1, identities_per_batch=6), out="head.pt")
    again = encoder_spec(str(path))  # the file was rewritten: read again
    assert again is not info and again.default_threshold == res2.threshold
    models = Path(os.environ["XDG_DATA_HOME"]) / "facecluster" / "models"
    models.mkdir(parents=True)
    (models / "fake-base+other.pt").write_bytes(path.read_bytes())
    with pytest.raises(UnknownModel, match="no trained model 'fake-base\\+nope'"):
        resolve("fake-base+nope")
    with pytest.raises(UnknownModel, match="unknown model 'nope'"):
        resolve("nope")
    bad = tmp_path / "bad.pt"
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(Exception, match="not a facecluster model file"):
        resolve(str(bad))
    # by name: the file's own name is what it registers as
    assert resolve("fake-base+other") == "fake-base+head"


def test_head_over_dlib_projects_cached_vectors(tmp_path: Path, dlib_encoder) -> None:
    """A head over dlib-resnet: scanning with it (base embed + project) and projecting the
    cached base vectors give the same vectors."""
    base_identity = encoder_identity("dlib-resnet")
    x, y = clustered(dim=128, noise=0.5)
    train_head(
        x,
        y,
        [f"id{i}" for i in range(12)],
        TrainConfig(epochs=2, identities_per_batch=6),
        base="dlib-resnet",
        base_identity=base_identity,
        base_threshold=0.155,
        name="dlib-resnet+t",
        out=tmp_path / "t.pt",
    )
    name = str(tmp_path / "t.pt")
    assert resolve(name) == "dlib-resnet+t"
    enc = load_encoder(name)
    assert isinstance(enc, HeadEncoder) and enc.dim == 128
    assert encoder_identity(name)["base"] == base_identity
    head = head_from(read_model(tmp_path / "t.pt"))
    with torch.no_grad():
        expected = head(torch.from_numpy(x[:5])).numpy()
    assert np.allclose(enc.project(x[:5]), expected, atol=1e-6)
    chip = np.random.default_rng(0).integers(0, 255, (150, 150, 3), dtype=np.uint8)
    assert np.allclose(enc.embed([chip]), enc.project(dlib_encoder.embed([chip])), atol=1e-6)

    with FaceCache(tmp_path / "db.sqlite") as cache:
        base_id = cache.encoder_id(base_identity)
        assert base_id is not None
        faces = [Face(np.array([0, 0, 10, 10], np.float32), np.zeros((5, 2), np.float32), 1.0)]
        entry = FileEntry(tmp_path / "p.jpg", 1, 1)
        cache.apply([PhotoWrite(entry, "d", 10, 10, "ok", faces, x[:1])], base_id)
        assert project_cached(cache, tmp_path / "t.pt") == 1
        head_id = cache.encoder_id(encoder_identity(name), register=False)
        assert head_id is not None
        _, vecs = cache.embeddings(head_id)
    assert np.allclose(vecs, enc.project(x[:1]), atol=1e-6)


def test_threshold_is_calibrated_on_grouping_the_validation_faces(tmp_path: Path) -> None:
    # 12 people x 8 faces, 2 of each held out: 12 people with 2+ validation faces, 12
    # same-person pairs -- too few pairs (50 needed): the verification ratio is used.
    small = run(tmp_path, TrainConfig(epochs=2, identities_per_batch=6, val_fraction=0.25))
    assert "too few validation faces" in small.threshold_note
    # 30 people x 12 faces, 3 held out each: 90 same-person pairs -> grouping calibration.
    cfg = TrainConfig(epochs=2, identities_per_batch=6, val_fraction=0.25)
    res = run(tmp_path, cfg, out="big.pt", n_ids=30, per=12, noise=0.5)
    assert "validation faces gives a pairwise F1" in res.threshold_note
    v, y = res.fit.val_vectors, res.fit.val_labels
    assert v is not None and y is not None and len(v) == res.fit.val_faces == 90
    from facecluster.cluster import GroupSettings, cluster_faces
    from facecluster.evaluate import cluster_report

    def f1(t: float) -> float:
        return cluster_report(y, cluster_faces(v, GroupSettings(threshold=t))).pairwise.f1

    # Grouping the validation faces at the chosen threshold is near the best any threshold
    # gives, and clearly better than half or twice it.
    best = max(f1(t) for t in np.linspace(0.05, 2.0, 40))
    assert f1(res.threshold) >= best - 0.02 and best > 0.85
    assert f1(res.threshold / 2) < best - 0.05 and f1(res.threshold * 2) < best - 0.05
    assert read_model(tmp_path / "big.pt").threshold == res.threshold


def test_train_threshold_overrides_the_calibration(tmp_path: Path) -> None:
    cfg = TrainConfig(epochs=1, identities_per_batch=6)
    x, y = clustered()
    res = train_head(x, y, [f"id{i}" for i in range(12)], cfg, base="fake-base",
                     base_identity=BASE_ID, base_threshold=0.5, name="fake-base+t",
                     out=tmp_path / "t.pt", threshold=0.77)
    assert res.threshold == 0.77 and res.threshold_note == "set by --threshold"
    assert read_model(tmp_path / "t.pt").threshold == 0.77
    with pytest.raises(TrainingError, match="--threshold must be between 0 and 4"):
        train_head(x, y, ["a"] * 12, cfg, base="fake-base", base_identity=BASE_ID,
                   base_threshold=0.5, name="fake-base+u", out=tmp_path / "u.pt", threshold=4.5)
    assert not (tmp_path / "u.pt").exists()  # refused before training
