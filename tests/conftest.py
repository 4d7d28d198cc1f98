"""Shared fixtures. Real photos come from ../shared/data beside the repository root."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DEV = DATA / "dev"
EDGE = DATA / "edge"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow", action="store_true", help="also run tests marked slow (minutes each)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--run-slow") and "slow" not in (config.option.markexpr or ""):
        skip_slow = pytest.mark.skip(reason="slow: run with --run-slow or -m slow")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(skip_slow)
    if not DEV.is_dir():
        skip = pytest.mark.skip(reason=f"shared photos not found at {DATA}")
        for item in items:
            if "shared_data" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """No test downloads weights or touches the user's own cache and database."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("FACECLUSTER_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.delenv("FACECLUSTER_DB", raising=False)
    monkeypatch.delenv("FACECLUSTER_WEIGHTS", raising=False)
    # Trained models register themselves in the process-wide encoder table; a CLI process
    # starts with a fresh one, so every test does too (their files live in a tmp dir).
    from facecluster.encoders import ENCODERS

    known = dict(ENCODERS)
    yield
    ENCODERS.clear()
    ENCODERS.update(known)


def edge_manifest() -> list[dict[str, str]]:
    with open(EDGE / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def copy_photos(dest: Path, people: dict[str, int]) -> Path:
    """Copy the first N photos of each named dev identity into dest/<identity>/."""
    for person, n in people.items():
        (dest / person).mkdir(parents=True, exist_ok=True)
        for src in sorted((DEV / person).iterdir())[:n]:
            shutil.copy2(src, dest / person / src.name)
    return dest


@pytest.fixture(scope="session")
def fake_facenet_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A same-shaped InceptionResnetV1 state dict from a random init (716 tensors, logits
    8631x512), since the real file cannot be downloaded here."""
    import torch
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    net = InceptionResnetV1(pretrained=None, classify=True, num_classes=8631)
    path = tmp_path_factory.mktemp("weights") / "20180402-114759-vggface2.pt"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def detector():
    from facecluster.detect import Detector

    return Detector("cpu")


@pytest.fixture(scope="session")
def dlib_encoder():
    from facecluster.encoders.dlib_resnet import DlibResnetEncoder

    return DlibResnetEncoder()
