"""How fast the one-photo commands start: wall time of a cold `facecluster verify A B`
(a fresh process each time: interpreter, imports, model loading, two photos), of
`facecluster --help`, and of importing the CLI; and where verify's time goes.

    uv run python bench/startup.py [--runs 5] [--src DIR]

--src runs another checkout's sources (e.g. the main branch) for a before/after.
Results in docs/performance.md ("Starting up").
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
A = ROOT / "tests/data/people/Colin_Powell/Colin_Powell_0001.jpg"
B = ROOT / "tests/data/people/Colin_Powell/Colin_Powell_0004.jpg"

STAGES = """
import os, sys, time
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
t = time.perf_counter()
def lap(name):
    global t
    now = time.perf_counter(); print(f"{name}\\t{now - t:.3f}"); t = now
import facecluster.cli; lap("import the CLI")
import torch; lap("import torch")
from facecluster.api import embed_photo, model_spec
from facecluster.detect import load_detector
from facecluster.encoders import load_encoder
detector = load_detector("mtcnn", "cpu"); lap("load MTCNN")
encoder = load_encoder(model_spec("auto"), None, "cpu"); lap("load the encoder")
embed_photo(sys.argv[1], detector, encoder); lap("first photo")
embed_photo(sys.argv[2], detector, encoder); lap("second photo")
print("imported\\t" + " ".join(
    m for m in ("torchvision", "facenet_pytorch", "torch._dynamo") if m in sys.modules))
"""


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=False, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--src", type=Path, default=ROOT / "src")
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(args.src), FACECLUSTER_OFFLINE="1")
    py = [sys.executable]
    wall(py + ["-m", "facecluster", "verify", str(A), str(B)], env)  # warm the page cache
    cases = {
        "facecluster verify A B": py + ["-m", "facecluster", "verify", str(A), str(B)],
        "facecluster --help": py + ["-m", "facecluster", "--help"],
        "python -c 'import facecluster.cli'": py + ["-c", "import facecluster.cli"],
    }
    print(f"sources: {args.src}; median of {args.runs} fresh processes")
    for name, cmd in cases.items():
        times = [wall(cmd, env) for _ in range(args.runs)]
        print(f"{name:40s} {statistics.median(times):6.2f} s  (min {min(times):.2f})")
    out = subprocess.run(
        py + ["-c", STAGES, str(A), str(B)], env=env, capture_output=True, text=True, check=True
    ).stdout
    print("\nverify, stage by stage (one process):")
    for line in out.splitlines():
        name, _, value = line.partition("\t")
        print(f"  {name:20s} {value}{' s' if name != 'imported' else ''}")


if __name__ == "__main__":
    main()
