"""Our MTCNN stages: pure helpers against references, and real photos."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from facecluster import mtcnn
from facecluster.cli import app
from facecluster.imageio import open_rgb

from .conftest import EDGE, copy_sample, sample_people


def brute_nms_min(boxes: np.ndarray, scores: np.ndarray, inds: np.ndarray, t: float) -> set[int]:
    keep: list[int] = []
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    for i in sorted(range(len(boxes)), key=lambda i: -scores[i]):
        ok = True
        for j in keep:
            if inds[i] != inds[j]:
                continue
            w = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]) + 1
            h = min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]) + 1
            if max(w, 0) * max(h, 0) / min(area[i], area[j]) > t:
                ok = False
                break
        if ok:
            keep.append(i)
    return set(keep)


def test_nms_min_matches_brute_force():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 200, (300, 2))
    boxes = np.hstack([xy, xy + rng.uniform(5, 60, (300, 1))]).astype(np.float32)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    inds = rng.integers(0, 3, 300)
    kept = mtcnn.nms_min(boxes, scores, inds, 0.7)
    assert set(kept.tolist()) == brute_nms_min(boxes, scores, inds, 0.7)
    assert 0 < len(kept) < 300


def test_pyramid_starts_at_the_smallest_face_and_stops_at_12_px():
    scales = mtcnn.pyramid(960, 1280, 12.0)
    assert scales[0] == 1.0
    assert all(
        b == pytest.approx(a * mtcnn.FACTOR) for a, b in zip(scales, scales[1:], strict=False)
    )
    assert 960 * scales[-1] >= 12 > 960 * scales[-1] * mtcnn.FACTOR
    assert mtcnn.pyramid(250, 250, 40.0)[0] == pytest.approx(0.3)


def test_crops_average_the_box_and_read_black_outside():
    import torch

    x = torch.zeros((1, 3, 400, 400))
    x[:, :, 100:300, 100:300] = 255.0  # a white square on black
    boxes = torch.tensor([[100.0, 100.0, 300.0, 300.0], [-100.0, 100.0, 100.0, 300.0]])
    out = mtcnn.crops(x, boxes + torch.tensor([1.0, 1.0, 0.0, 0.0]), torch.zeros(2).long(), 24)
    white, black = 127.5 * 0.0078125, -127.5 * 0.0078125
    assert out[0, :, 2:-2, 2:-2].mean().item() == pytest.approx(white, abs=0.02)
    # the second box lies half outside the photo, on black: all of it reads black
    assert out[1].mean().item() == pytest.approx(black, abs=0.02)


@pytest.mark.model
def test_detect_a_real_portrait_with_landmarks_inside_the_box():
    img = open_rgb(sample_people()["Colin_Powell"][0])
    net = mtcnn.Mtcnn("cpu")
    timings: dict[str, float] = {}
    ((boxes, probs, points),) = net.detect(img[None], 20.0, timings)
    best = int(np.argmax(probs))
    x1, y1, x2, y2 = boxes[best]
    assert probs[best] > 0.99 and (x2 - x1) > 40
    assert np.all((points[best][:, 0] > x1) & (points[best][:, 0] < x2))
    assert np.all((points[best][:, 1] > y1) & (points[best][:, 1] < y2))
    assert set(timings) == {"detect.pnet", "detect.rnet", "detect.onet"}


@pytest.mark.shared_data
@pytest.mark.model
def test_faces_cut_by_the_frame_are_found():
    """The Oscars selfie: 7 faces, 2 cut by the frame. The first version needed the whole
    photo padded by 20% to find 6; per-level padding must find as many."""
    img = open_rgb(EDGE / "multi_face" / "deepface_selfie-many-people.jpg")
    ((boxes, probs, _),) = mtcnn.Mtcnn("cpu").detect(img[None], 20.0)
    kept = boxes[probs >= 0.92]
    assert len(kept) >= 6
    assert (kept[:, 0] < 0).any() or (kept[:, 2] > img.shape[1]).any()  # reaches past an edge


@pytest.mark.model
def test_scan_profile_prints_the_stages(tmp_path):
    root = copy_sample(tmp_path / "photos") / "people" / "Serena_Williams"
    runner = CliRunner()
    mtcnn = ["--detector", "mtcnn"]
    db = str(tmp_path / "f.db")
    res = runner.invoke(app, ["scan", str(root), "--db", db, *mtcnn, "--profile"])
    assert res.exit_code == 0, res.output
    for stage in ("detect.pnet", "embed", "decode (threads)", "where the time went"):
        assert stage in res.stdout
    res = runner.invoke(app, ["scan", str(root), "--db", str(tmp_path / "g.db"), "--json", *mtcnn])
    timings = json.loads(res.stdout)["timings"]
    assert timings["embed"] > 0 and timings["detect.pnet"] > 0


# --- our declarations of the nets and operators against facenet-pytorch and torchvision ---


def test_our_nets_give_facenet_pytorchs_outputs():
    import torch
    from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

    from facecluster.mtcnn_nets import load_nets

    ours = load_nets(torch.device("cpu"), torch.contiguous_format)
    theirs = (PNet().eval(), RNet().eval(), ONet().eval())
    torch.manual_seed(0)
    with torch.inference_mode():
        for a, b, size in zip(ours, theirs, (40, 24, 48), strict=True):
            x = torch.rand(3, 3, size, size) * 2 - 1
            for mine, ref in zip(a(x), b(x), strict=True):
                assert torch.equal(mine, ref)


@pytest.mark.parametrize("n", [50, 2000])  # both of torchvision's strategies (4000 numbers)
def test_batched_nms_and_roi_align_match_torchvision(n):
    import torch
    from torchvision import ops

    from facecluster import mtcnn_nets

    g = torch.Generator().manual_seed(n)
    xy = torch.rand(n, 2, generator=g) * 200
    boxes = torch.cat([xy, xy + 10 + torch.rand(n, 2, generator=g) * 40], dim=1)
    scores, idxs = torch.rand(n, generator=g), torch.randint(0, 3, (n,), generator=g)
    for t in (0.5, 0.7):
        ours = mtcnn_nets.batched_nms(boxes, scores, idxs, t)
        assert torch.equal(ours, ops.batched_nms(boxes, scores, idxs, t))
    image = torch.rand(3, 3, 64, 64, generator=g)
    rois = torch.cat([idxs[:20, None].float(), boxes[:20] / 4], dim=1)
    mine = mtcnn_nets.roi_align(image, rois, 24, 0.5, 1, True)
    assert torch.equal(mine, ops.roi_align(image, rois, (24, 24), 0.5, 1, aligned=True))


def test_detecting_imports_neither_torchvision_nor_facenet_pytorch():
    import subprocess
    import sys

    portrait = sample_people()["Colin_Powell"][0]
    code = (
        "import sys; from pathlib import Path; from facecluster.detect import Detector; "
        "from facecluster.imageio import open_rgb; "
        "faces = Detector('cpu').detect([open_rgb(Path(sys.argv[1]))])[0]; "
        "print(len(faces), sorted(m for m in ('torchvision', 'facenet_pytorch', "
        "'torch._dynamo') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(portrait)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "1 []"  # the face is found, with none of them imported
