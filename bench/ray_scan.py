"""Scan speed on a Ray cluster against a local scan, on the same photos, in one run.

    flock /work/bench.lock python bench/ray_scan.py               # 200 dev photos
    python bench/ray_scan.py --photos 100 --address auto          # a cluster already up

``--photos`` dev photos (spread over all identities) are copied to a temp folder and
scanned twice, each time by ``facecluster scan --json`` in a fresh process into a fresh
database: locally, then with ``--engine ray`` against a Ray cluster. Without
``--address`` the script uses the cluster running on this machine (``ray status
--address auto``) or, when there is none, starts one (``ray start --head --block`` in a
process group of its own), reports its start-up time apart, and stops it at the end.

Both photos/s figures count the whole scan (model loading included, once per process
locally and once per actor on Ray), with the cluster already up. The ``ratio`` line is
Ray's photos/s over the local one's. The stage timings of both (scan --profile) follow.
"""

from __future__ import annotations

import argparse
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

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
RAY = str(Path(sys.executable).parent / "ray")


def photos(n: int) -> list[Path]:
    """``n`` dev photos spread over all identities (every k-th in sorted order)."""
    files = sorted((SHARED / "dev").glob("*/*.jpg"))
    step = max(1, len(files) // n)
    return files[::step][:n]


def env() -> dict[str, str]:
    src = str(HERE.parent / "src")
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    out = {**os.environ, "PYTHONPATH": path, "FACECLUSTER_OFFLINE": "1"}
    out.setdefault("RAY_AUTH_MODE", "disabled")  # the loopback cluster it may start
    return out


def scan(folder: Path, db: Path, model: str, *extra: str) -> dict:
    cmd = [sys.executable, "-m", "facecluster", "scan", str(folder), "--db", str(db)]
    run = subprocess.run(
        [*cmd, "--model", model, "--json", *extra], env=env(), capture_output=True, text=True
    )
    if run.returncode != 0:
        sys.exit(f"scan failed ({run.returncode}): {run.stderr.strip()[-800:]}")
    return json.loads(run.stdout)


def nodes(address: str) -> int:
    run = subprocess.run(
        [RAY, "status", f"--address={address}"], env=env(), capture_output=True, text=True
    )
    return run.stdout.count(" node_") if run.returncode == 0 else 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def cluster(address: str | None):
    """(address, start-up seconds or None when one was running already)."""
    if address or nodes("auto"):
        yield address or "auto", None
        return
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    port = free_port()
    cmd = [RAY, "start", "--head", "--block", f"--port={port}", "--include-dashboard=false"]
    cmd += ["--node-ip-address=127.0.0.1", f"--temp-dir={temp}"]
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while not nodes(f"127.0.0.1:{port}"):
            if proc.poll() is not None:
                sys.exit("ray start failed")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}", time.perf_counter() - started
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def stages(name: str, stats: dict) -> None:
    n = max(1, stats["photos_new"])
    timings = sorted(stats["timings"].items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{k} {v / n * 1000:.0f}" for k, v in timings if v / n >= 0.0005)
    print(f"  {name} stages (ms/photo): {shown}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=200, help="dev photos to scan")
    ap.add_argument("--address", help="a running cluster (auto, HOST:PORT, ray://...)")
    ap.add_argument("--model", default="auto", help="encoder (default: auto)")
    args = ap.parse_args()
    files = photos(args.photos)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "photos"
        for f in files:
            (root / f.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, root / f.parent.name / f.name)
        print(f"{len(files)} dev photos, model {args.model}, {os.cpu_count()} cores", flush=True)
        local = scan(root, Path(tmp) / "local.db", args.model)
        local_rate = local["photos_new"] / local["seconds"]
        print(f"local: {local_rate:.2f} photos/s ({local['seconds']:.1f} s)", flush=True)
        with cluster(args.address) as (address, startup):
            if startup is None:
                print(f"ray cluster: already running at {address}")
            else:
                print(f"ray cluster start-up: {startup:.1f} s (ray start --head, 1 node)")
            remote = scan(
                root, Path(tmp) / "ray.db", args.model, "--engine", "ray", "--ray-address", address
            )
        rate = remote["photos_new"] / remote["seconds"]
        print(f"ray: {rate:.2f} photos/s ({remote['seconds']:.1f} s, {remote['device']})")
        same = (local["faces_new"], local["photos_failed"]) == (
            remote["faces_new"],
            remote["photos_failed"],
        )
        print(
            f"faces: local {local['faces_new']}, ray {remote['faces_new']} "
            f"({'same' if same else 'DIFFERENT'})"
        )
        print(f"ratio (ray over local): {rate / local_rate:.2f}")
        stages("local", local)
        stages("ray", remote)


if __name__ == "__main__":
    main()
