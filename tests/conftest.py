"""Shared fixtures.

Two sets of real photos: the small one inside the repository (tests/data, see its README),
which the default run uses, and the full sets in ../shared/data beside the repository root
(or $FACECLUSTER_TEST_DATA), which tests marked ``shared_data`` need and skip without.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

# As the command-line entry point does (cli.main): OpenMP threads must not busy-wait
# beside the decode threads, or model tests run twice as long on two cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACECLUSTER_TEST_DATA") or ROOT.parent / "shared" / "data")
DEV = DATA / "dev"
EDGE = DATA / "edge"
SAMPLE = ROOT / "tests" / "data"


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
        skip = pytest.mark.skip(
            reason=f"needs the full photo sets: {DATA} not found (put shared/data beside the "
            "repository or set FACECLUSTER_TEST_DATA)"
        )
        for item in items:
            if "shared_data" in item.keywords:
                item.add_marker(skip)


def _isolate(mp: pytest.MonkeyPatch, home: Path) -> None:
    mp.setenv("FACECLUSTER_OFFLINE", "1")
    mp.setenv("TORCH_HOME", str(home / "torch"))
    mp.setenv("XDG_DATA_HOME", str(home / "data"))
    mp.delenv("FACECLUSTER_DB", raising=False)
    mp.delenv("FACECLUSTER_WEIGHTS", raising=False)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """No test downloads weights or touches the user's own cache and database."""
    _isolate(monkeypatch, tmp_path_factory.mktemp("home"))


# --- the in-repo photos (tests/data) ---------------------------------------------------


def sample_manifest() -> list[dict[str, str]]:
    """tests/data/manifest.csv: path, category, identity, expected_faces, bytes, sha256."""
    with open(SAMPLE / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def sample_people() -> dict[str, list[Path]]:
    """Identity -> its in-repo portraits (one face each), sorted."""
    out: dict[str, list[Path]] = {}
    for row in sample_manifest():
        if row["category"] == "person":
            out.setdefault(row["identity"], []).append(SAMPLE / row["path"])
    return {k: sorted(v) for k, v in sorted(out.items())}


def sample_edge(category: str) -> Path:
    """The one in-repo photo of an edge category: multi_face, no_face, exif_orientation,
    broken."""
    (row,) = [r for r in sample_manifest() if r["category"] == category]
    return SAMPLE / row["path"]


def copy_sample_people(dest: Path, people: dict[str, int]) -> Path:
    """Copy the first N in-repo portraits of each named identity into dest/<identity>/."""
    portraits = sample_people()
    for person, n in people.items():
        (dest / person).mkdir(parents=True, exist_ok=True)
        for src in portraits[person][:n]:
            shutil.copy2(src, dest / person / src.name)
    return dest


def copy_sample(dest: Path) -> Path:
    """Copy the in-repo photos (people/ and edge/, not the manifest) into dest."""
    for sub in ("people", "edge"):
        shutil.copytree(SAMPLE / sub, dest / sub)
    return dest


@pytest.fixture
def sample_library(tmp_path: Path) -> Path:
    """A private copy of the in-repo photos at tmp_path/photos, free to change."""
    return copy_sample(tmp_path / "photos")


@dataclass(frozen=True)
class Scanned:
    root: Path  # the photos
    db: Path  # their face database
    stats: dict  # what 'scan --json' printed


@pytest.fixture(scope="session")
def scanned_sample(tmp_path_factory: pytest.TempPathFactory) -> Scanned:
    """The in-repo photos scanned once by the CLI (real MTCNN, sface), shared by the
    whole session: do not change them; copy the database (``db_copy``) to group or name."""
    from typer.testing import CliRunner

    from facecluster.cli import app

    base = tmp_path_factory.mktemp("sample")
    root, db = copy_sample(base / "photos"), base / "faces.db"
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, base / "home")
        result = CliRunner().invoke(app, ["scan", str(root), "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    return Scanned(root, db, json.loads(result.stdout))


def db_copy(scanned: Scanned, dest: Path) -> Path:
    """A copy of the scanned sample's database, to change (its photo paths stay valid)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(scanned.db, dest)
    return dest


# --- the full sets (../shared/data) ----------------------------------------------------


def edge_manifest() -> list[dict[str, str]]:
    """../shared/data/edge/manifest.csv, or [] without the shared sets."""
    if not (EDGE / "manifest.csv").is_file():
        return []
    with open(EDGE / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def edge_params(category: str | None = None, exclude: str = "") -> list:
    """Edge manifest rows as parameters (id = path), of one category, or every readable one
    when category is None. Without the shared sets: one placeholder, which the module's
    ``shared_data`` mark skips, so collection never reads files that are not there."""
    rows = [
        r
        for r in edge_manifest()
        if (r["category"] == category if category else r["category"] != "broken")
        and not (exclude and r["path"].endswith(exclude))
    ]
    if not rows:
        return [pytest.param(None, id="no-shared-data")]
    return [pytest.param(r, id=r["path"]) for r in rows]


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
# declares it with the `fault` fixture; `pytest --fault-table=docs/reliability.md` writes
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
