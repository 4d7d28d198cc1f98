"""First scan of a library of hardlinked copies: decode each content once, or every file.

    python bench/first_scan_copies.py                    # in-repo photos x 10 links
    python bench/first_scan_copies.py --source DIR --repeat 1   # e.g. camera-size photos

Builds a tree of hardlinks to the readable in-repo photos (tests/data, 17 of them), one
folder per round of copies (``copy00/``, ``copy01/``, ...: a camera roll imported several
times), then times ``facecluster scan`` of it into a fresh database, in a fresh process,
with two versions of the code in this one run:

- before: ``src/`` of the git ref ``--baseline`` (default ``main``), extracted with
  ``git archive``: it decodes every new file, then recognises copies by their digest;
- after: this tree's ``src/``: it reads and hashes first and decodes only content the
  index does not have yet.

Each is run ``--repeat`` times, alternating; the best time of each is printed, with the
decodes from ``timings`` and a check that both found the same faces.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SAMPLE = REPO / "tests" / "data"


def sources(folder: Path) -> list[Path]:
    found = sorted(p for p in folder.rglob("*.jpg") if "broken" not in p.parts)
    if not found:
        sys.exit(f"error: no .jpg under {folder}")
    return found


def build_tree(root: Path, photos: list[Path], links: int) -> int:
    n = 0
    for k in range(links):
        folder = root / f"copy{k:02d}"
        folder.mkdir(parents=True)
        for i, src in enumerate(photos):
            path = folder / f"IMG_{i:04d}{src.suffix}"
            try:
                os.link(src, path)
            except OSError:  # another file system: a copy costs disk, not correctness
                path.write_bytes(src.read_bytes())
            n += 1
    return n


def baseline_src(ref: str, dest: Path) -> Path:
    data = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "src"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "src"


def scan(src: Path, root: Path, db: Path) -> tuple[float, dict]:
    db.unlink(missing_ok=True)
    for extra in ("-wal", "-shm"):
        Path(str(db) + extra).unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "facecluster", "scan", str(root), "--db", str(db), "--json"]
    cmd += ["--model", "dlib-resnet"]
    env = {**os.environ, "PYTHONPATH": str(src)}
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return time.perf_counter() - start, json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--links", type=int, default=10, help="copies of each photo (default 10)")
    ap.add_argument("--source", type=Path, default=SAMPLE, help="photos to copy (tests/data)")
    ap.add_argument("--baseline", default="main", help="git ref of 'before' (default main)")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    photos = sources(args.source)
    with tempfile.TemporaryDirectory(prefix="fc-copies-") as d:
        root, db = Path(d) / "photos", Path(d) / "index.db"
        files = build_tree(root, photos, args.links)
        print(f"{files} files: {len(photos)} photos x {args.links} hardlinks, {root}")
        versions = {
            f"before ({args.baseline})": baseline_src(args.baseline, Path(d) / "baseline"),
            "after (this tree)": REPO / "src",
        }
        best: dict[str, tuple[float, dict]] = {}
        for attempt in range(args.repeat):
            for label, src in versions.items():
                seconds, stats = scan(src, root, db)
                print(f"  run {attempt + 1} {label}: {seconds:.2f} s", flush=True)
                if label not in best or seconds < best[label][0]:
                    best[label] = (seconds, stats)
        faces = set()
        for label, (seconds, stats) in best.items():
            t = stats["timings"]
            faces.add(stats["faces"])
            print(
                f"{label}: {seconds:.2f} s, {files / seconds:.1f} files/s; faces "
                f"{stats['faces']} ({stats['faces_new']} detected), decode (threads) "
                f"{t.get('decode (threads)', 0):.2f} s, wait for decode "
                f"{t.get('wait for decode', 0):.2f} s, detection "
                f"{sum(v for k, v in t.items() if k.startswith('detect')):.2f} s, "
                f"embed {t.get('embed', 0):.2f} s"
            )
        (before, _), (after, _) = best.values()
        print(f"speed-up: {before / after:.2f}x; same faces: {len(faces) == 1}")


if __name__ == "__main__":
    main()
