"""scan --engine ray: the same faces and vectors as a local scan, on a local Ray and on a
two-node cluster on this machine; failures, moves and a killed worker. Skipped without the
optional extra 'ray'. One local Ray (2 CPUs) serves the module: start-up is seconds."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facecluster.api import FaceIndex
from facecluster.cli import app

from .conftest import ROOT, copy_sample_people, sample_edge

# As ray_engine.import_ray does, before Ray reads it at import: under `uv run` (as CI runs
# the tests) Ray would otherwise start its workers with `uv run` in a fresh environment.
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
try:
    import ray
except ImportError:
    ray = None

needs_ray = pytest.mark.skipif(
    ray is None, reason="needs Ray: pip install 'facecluster[ray]' (or uv sync --extra ray)"
)
PEOPLE = {"Colin_Powell": 2, "Tony_Blair": 2, "Serena_Williams": 1}


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs, its session files in a temp dir, shut down after."""
    if ray is None:
        pytest.skip("needs Ray: pip install 'facecluster[ray]' (or uv sync --extra ray)")
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's sockets live there
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACECLUSTER_OFFLINE", "1")  # the workers inherit this environment
        pythonpath = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
        mp.setenv("PYTHONPATH", os.pathsep.join(p for p in pythonpath if p))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=temp)
        try:
            yield ray
        finally:
            ray.shutdown()
            shutil.rmtree(temp, ignore_errors=True)


def our_workers(name: str) -> list[int]:
    """The pids of the Ray workers this test process started (the local Ray's raylet is
    our child, its workers its children) whose process title has ``name``."""
    parents: dict[int, int] = {}
    titles: dict[int, bytes] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
                titles[int(proc.name)] = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            parents[int(proc.name)] = int(stat.rpartition(")")[2].split()[1])
    ours = []
    for pid, title in titles.items():
        up = pid
        while up > 1 and up != os.getpid():
            up = parents.get(up, 0)
        if up == os.getpid() and name.encode() in title:
            ours.append(pid)
    return ours


def library(root: Path) -> Path:
    copy_sample_people(root, PEOPLE)
    for kind in ("multi_face", "no_face"):
        shutil.copy2(sample_edge(kind), root / sample_edge(kind).name)
    return root


def faces_by_photo(db: Path) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """path -> [(box, vector)] of each photo's faces, in box order."""
    with FaceIndex(db, write=False) as index:
        faces, vectors = index.cache.face_vectors(index.encoder_id)
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for face, vector in zip(faces, vectors, strict=True):
        out.setdefault(face.path, []).append((face.face.box, vector))
    return {p: sorted(fs, key=lambda f: tuple(f[0])) for p, fs in out.items()}


def assert_same(a: Path, b: Path) -> None:
    fa, fb = faces_by_photo(a), faces_by_photo(b)
    assert sorted(fa) == sorted(fb) and fa
    for path in fa:
        assert len(fa[path]) == len(fb[path]), path
        for (box_a, vec_a), (box_b, vec_b) in zip(fa[path], fb[path], strict=True):
            assert np.abs(box_a - box_b).max() < 1e-3, path
            assert np.abs(vec_a - vec_b).max() < 1e-5, path


@pytest.fixture(scope="module")
def local_scan(tmp_path_factory: pytest.TempPathFactory):
    """The library scanned locally: (photos, database, stats). With one torch thread, as
    each Ray worker has (one CPU each): MTCNN's float32 sums follow the thread count, and
    landmarks that differ by 5e-5 px move the vectors by up to 7e-5, as between two local
    scans on machines with different numbers of cores."""
    import torch

    base = tmp_path_factory.mktemp("local")
    lib = library(base / "photos")
    shutil.copy2(sample_edge("broken"), lib / sample_edge("broken").name)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("FACECLUSTER_OFFLINE", "1")
            with FaceIndex(base / "faces.db") as index:
                stats = index.scan([lib])
    finally:
        torch.set_num_threads(threads)
    return lib, base / "faces.db", stats


@needs_ray
@pytest.mark.fault
def test_a_ray_scan_equals_the_local_scan_and_records_failures(
    fault, local_ray, local_scan, tmp_path: Path
) -> None:
    fault(
        "ray",
        "scan --engine ray of photos with a broken JPEG among them (read on a Ray worker)",
        "same faces and vectors as a local scan (< 1e-5); the broken photo recorded as failed "
        "with the same reason; a second scan reads nothing",
    )
    lib, local_db, local = local_scan
    db = tmp_path / "ray.db"
    with FaceIndex(db) as index:
        stats = index.scan([lib], engine="ray")
    assert stats.device.startswith("ray: 1 node")
    assert_same(local_db, db)
    assert (stats.photos_new, stats.faces_new, stats.no_face) == (
        local.photos_new,
        local.faces_new,
        local.no_face,
    )
    assert [(f.path, f.error) for f in stats.failures] == [
        (f.path, f.error) for f in local.failures
    ]
    assert len(stats.failures) == 1
    with FaceIndex(db) as index:
        again = index.scan([lib], engine="ray")
    assert again.photos_unchanged == again.photos_total - 1 and again.embeddings_computed == 0
    assert again.photos_failed_unchanged == 1 and again.device == ""  # Ray never started


@needs_ray
def test_moves_and_copies_are_recognised_by_the_workers_digests(local_ray, tmp_path: Path) -> None:
    lib = library(tmp_path / "photos")
    db = tmp_path / "faces.db"
    with FaceIndex(db) as index:
        index.scan([lib], engine="ray")
    before = faces_by_photo(db)
    src = lib / "Tony_Blair"
    moved = lib / "moved"
    src.rename(moved)
    one = sorted(moved.iterdir())[0]
    shutil.copy2(one, lib / "copy.jpg")
    with FaceIndex(db) as index:
        stats = index.scan([lib], engine="ray")
    assert stats.photos_moved == 2 and stats.embeddings_computed == 0
    after = faces_by_photo(db)
    old = str(src / one.name)
    for path in (str(moved / one.name), str(lib / "copy.jpg")):
        assert [b.tolist() for b, _ in after[path]] == [b.tolist() for b, _ in before[old]]


@needs_ray
@pytest.mark.fault
def test_a_worker_killed_mid_scan_is_retried_and_the_scan_completes(
    fault, local_ray, local_scan, tmp_path: Path
) -> None:
    fault(
        "ray",
        "kill -9 of the Ray worker process that embeds, after the first photos came back "
        "(the readers have finished by then on these few photos)",
        "Ray restarts it and retries its batches; every photo indexed as by a local scan",
    )
    lib, local_db, _ = local_scan
    killed: list[int] = []

    def kill_once(p) -> None:
        if not killed and p.done >= 2:
            killed.extend(our_workers("MapBatches(Embed)")[:1])
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

    db = tmp_path / "ray.db"
    with FaceIndex(db) as index:
        stats = index.scan([lib], engine="ray", batch_size=2, progress=kill_once)
    assert killed, "no worker was running to kill"
    assert stats.photos_new + stats.photos_failed == stats.photos_total
    assert_same(local_db, db)


def test_without_ray_installed_the_scan_says_how_to_get_it(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    lib = copy_sample_people(tmp_path / "photos", {"Colin_Powell": 1})
    result = CliRunner().invoke(
        app, ["scan", str(lib), "--db", str(tmp_path / "f.db"), "--engine", "ray"]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "error: --engine ray needs Ray: pip install 'facecluster[ray]' (or: uv sync --extra ray)"
    )


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def agent_ports() -> list[str]:
    a, b, c, d = free_ports(4)
    return [
        f"--dashboard-agent-listen-port={a}",
        f"--dashboard-agent-grpc-port={b}",
        f"--metrics-export-port={c}",
        f"--runtime-env-agent-port={d}",
    ]


@pytest.fixture
def two_nodes(tmp_path: Path):
    """A head and a second node on the loopback (1 CPU each), their session files in a
    temp dir; both stopped by killing the process groups this fixture started."""
    if ray is None:
        pytest.skip("needs Ray: pip install 'facecluster[ray]' (or uv sync --extra ray)")
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    (port,) = free_ports(1)
    cli = str(Path(sys.executable).parent / "ray")
    env = {**os.environ, "FACECLUSTER_OFFLINE": "1", "RAY_BACKEND_LOG_LEVEL": "error"}
    env["RAY_AUTH_MODE"] = "disabled"  # a throwaway cluster on the loopback
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p
    )
    head = [cli, "start", "--head", "--block", f"--port={port}", "--num-cpus=1"]
    head += ["--node-ip-address=127.0.0.1"]
    head += ["--include-dashboard=false", f"--temp-dir={temp}", *agent_ports()]
    second = [cli, "start", "--block", f"--address=127.0.0.1:{port}", "--num-cpus=1"]
    second += ["--node-ip-address=127.0.0.1", *agent_ports()]
    procs: list[subprocess.Popen] = []
    try:
        for cmd in (head, second):
            procs.append(
                subprocess.Popen(
                    cmd,
                    env=env,
                    start_new_session=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            time.sleep(3)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status = subprocess.run(
                [cli, "status", f"--address=127.0.0.1:{port}"],
                env=env,
                capture_output=True,
                text=True,
            )
            if status.stdout.count(" node_") >= 2:
                break
            assert all(p.poll() is None for p in procs), "a Ray node did not start"
            time.sleep(2)
        else:
            pytest.fail(f"the two-node Ray cluster did not come up: {status.stdout[-500:]}")
        yield f"127.0.0.1:{port}", env
    finally:
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


@needs_ray
def test_a_scan_on_a_two_node_cluster_equals_the_local_scan(
    two_nodes, local_scan, tmp_path: Path
) -> None:
    address, env = two_nodes
    lib, local_db, local = local_scan
    db = tmp_path / "ray.db"
    cmd = [sys.executable, "-m", "facecluster", "scan", str(lib), "--db", str(db), "--json"]
    run = subprocess.run(
        [*cmd, "--engine", "ray", "--ray-address", address],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    stats = json.loads(run.stdout)
    assert stats["device"].startswith("ray: 2 nodes, 2 CPUs")
    assert (stats["photos_new"], stats["faces_new"]) == (local.photos_new, local.faces_new)
    assert_same(local_db, db)


@pytest.mark.fault
def test_workers_that_cannot_see_the_photos_stop_the_scan_with_one_line(
    fault, tmp_path: Path
) -> None:
    fault(
        "ray",
        "the first results from the workers all say 'cannot read' for files the driver "
        "reads (no shared filesystem)",
        "the scan stops with one line naming the shared-filesystem requirement",
    )
    from facecluster.ray_engine import cannot_read
    from facecluster.records import Failure, FileEntry

    here = copy_sample_people(tmp_path, {"Colin_Powell": 2})
    files = sorted(here.rglob("*.jpg"))
    gone = [
        (FileEntry(f, 1, 1), None, Failure(str(f), "cannot read: No such file or directory"))
        for f in files
    ]
    assert cannot_read(gone) is gone[0][2]
    assert cannot_read([*gone[:1], (gone[1][0], None, Failure(str(files[1]), "corrupt"))]) is None
    missing = tmp_path / "nowhere.jpg"  # the driver cannot read it either: a real failure
    lost = (FileEntry(missing, 1, 1), None, Failure(str(missing), "cannot read: gone"))
    assert cannot_read([lost]) is None


def test_the_cluster_is_shared_between_readers_and_embedders() -> None:
    from facecluster.ray_engine import actors

    assert actors(2, 0) == (1, 1, "cpu")
    assert actors(16, 0) == (12, 4, "cpu")
    assert actors(64, 4) == (60, 4, "cuda")
