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
    parser.addoption(
        "--fault-table",
        metavar="PATH",
        help="write the fault suite's results as a Markdown table into PATH, between the "
        "lines '<!-- fault-table -->' and '<!-- /fault-table -->' (docs/reliability.md)",
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


# --- the fault suite -------------------------------------------------------------------
# A test that tries a fault (a crash, a hostile input, an output pointed at a user's file)
# declares it with the `fault` fixture; `pytest --fault-table docs/reliability.md` writes
# the table of cases tried and their results into the reliability page.

_FAULTS: dict[str, tuple[str, str, str]] = {}
_OUTCOMES: dict[str, str] = {}


@pytest.fixture
def fault(request: pytest.FixtureRequest):
    """``fault(area, what_was_done, what_must_hold)``: mark this test as a fault case."""

    def declare(area: str, case: str, promise: str) -> None:
        _FAULTS[request.node.nodeid] = (area, case, promise)

    return declare


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _OUTCOMES[report.nodeid] = report.outcome
    elif report.when == "teardown" and report.outcome == "failed":
        _OUTCOMES[report.nodeid] = "failed"


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = session.config.getoption("--fault-table")
    if not target or not _FAULTS:
        return
    rows = ["| area | fault tried | what must hold | result |", "|---|---|---|---|"]
    for nodeid, (area, case, promise) in sorted(_FAULTS.items(), key=lambda kv: kv[1]):
        outcome = _OUTCOMES.get(nodeid, "not run")
        result = {"passed": "holds", "failed": "**FAILS**", "skipped": "skipped"}.get(
            outcome, outcome
        )
        cell = lambda t: t.replace("|", "\\|")  # noqa: E731
        rows.append(f"| {cell(area)} | {cell(case)} | {cell(promise)} | {result} |")
    path = Path(target)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    begin, end = "<!-- fault-table -->", "<!-- /fault-table -->"
    table = "\n".join([begin, *rows, end])
    if begin in text and end in text:
        text = text[: text.index(begin)] + table + text[text.index(end) + len(end) :]
    else:
        text = text + ("\n" if text else "") + table + "\n"
    path.write_text(text, encoding="utf-8")
