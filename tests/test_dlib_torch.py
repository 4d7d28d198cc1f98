"""dlib's descriptor network read into torch must give dlib's own descriptors."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import SAMPLE, sample_manifest

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def chips(detector, dlib_encoder):
    from facecluster.imageio import open_rgb

    # The in-repo photos with faces: 14 portraits of four people, the EXIF-rotated one
    # and the three faces of the group photo.
    paths = [SAMPLE / r["path"] for r in sample_manifest() if r["expected_faces"] not in ("", "0")]
    out = []
    for path in paths:
        img = open_rgb(path)
        out += [dlib_encoder.prepare(img, f) for f in detector.detect([img], [20.0])[0]]
    assert len(out) >= 12
    return out


def test_torch_port_matches_dlib_descriptors(chips, dlib_encoder):
    import torch

    from facecluster.encoders.dlib_resnet import DESCRIPTOR_FILE, models_dir
    from facecluster.encoders.dlib_torch import load

    net = load(models_dir() / DESCRIPTOR_FILE)
    ref = dlib_encoder._net.compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
    with torch.inference_mode():
        got = net(torch.from_numpy(np.stack(chips))).numpy()
    assert got.shape == (len(chips), 128)
    assert np.abs(got - np.asarray(ref, np.float32)).max() < 1e-4


def test_encoder_embeddings_equal_the_dlib_runtime_with_flip(chips, dlib_encoder):
    from facecluster.encoders.base import l2_normalize

    net = dlib_encoder._net
    plain = np.asarray(net.compute_face_descriptor([np.ascontiguousarray(c) for c in chips]))
    mirror = [np.ascontiguousarray(c[:, ::-1]) for c in chips]
    expected = l2_normalize(plain + np.asarray(net.compute_face_descriptor(mirror)))
    got = dlib_encoder.embed(chips)
    assert dlib_encoder._torch_net is not None
    assert np.abs(got - expected).max() < 1e-5


def test_a_file_that_is_not_dlibs_network_is_refused(tmp_path):
    from facecluster.encoders.dlib_torch import read_layers
    from facecluster.errors import ModelUnavailable

    bogus = tmp_path / "x.dat"
    bogus.write_bytes(b"\x01\x01\x01\x05hello" + bytes(100))
    with pytest.raises(ModelUnavailable):
        read_layers(bogus)
