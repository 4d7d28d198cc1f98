"""Unchanged re-scan of a large library: the stat-only path.

    python bench/rescan.py                 # 100,000 files
    python bench/rescan.py --files 20000

Builds a tree of N hardlinks to 50 dev photos (200 per folder, like camera-roll folders),
indexes it (a real scan of the 50, then each other path gets its photo's faces copied in
the database, as a scan does for duplicates, which is not what is measured), then times
``facecluster scan`` on the unchanged tree in a fresh process, twice, and prints the
seconds and the files per second. The target is under 10 s for 100,000 files.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEV = HERE.parent.parent / "shared" / "data" / "dev"


def build_tree(root: Path, db: Path, n: int, per_folder: int = 200, distinct: int = 50) -> None:
    """N hardlinks to ``distinct`` dev photos, indexed: the distinct ones by a real scan,
    the other paths by copying their faces in the database (what a scan does for a
    duplicate, minus reading the file)."""
    from facecluster.cache import CopyPhoto, FaceCache
    from facecluster.records import FileEntry

    sources = sorted(DEV.glob("*/*.jpg"))[:: 1588 // distinct][:distinct]
    paths = []
    for i in range(n):
        folder = root / f"{i // per_folder:04d}"
        if i % per_folder == 0:
            folder.mkdir(parents=True)
        path = folder / f"IMG_{i:06d}.jpg"
        try:
            os.link(sources[i % len(sources)], path)
        except OSError:  # another file system: a copy costs disk, not correctness
            path.write_bytes(sources[i % len(sources)].read_bytes())
        paths.append(path)
    seconds, stats = scan(paths[:distinct], db)
    print(f"first scan of the {distinct} distinct photos: {seconds:.1f} s, {stats['faces']} faces")
    with FaceCache(db) as cache:
        enc = max(i for i, *_ in cache.encoders())
        ids = {r.path: r.id for r in cache.photo_index().values()}
        ops = []
        for i, path in enumerate(paths[distinct:], start=distinct):
            st = path.stat()
            ops.append(
                CopyPhoto(
                    ids[str(paths[i % distinct])], FileEntry(path, st.st_size, st.st_mtime_ns)
                )
            )
        for at in range(0, len(ops), 5000):
            cache.apply(ops[at : at + 5000], enc)


def scan(root: Path | list[Path], db: Path) -> tuple[float, dict]:
    paths = [str(p) for p in root] if isinstance(root, list) else [str(root)]
    cmd = [sys.executable, "-m", "facecluster", "scan", *paths, "--db", str(db), "--json"]
    cmd += ["--model", "dlib-resnet"]
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fc-rescan-", dir=args.dir) as d:
        root, db = Path(d) / "photos", Path(d) / "index.db"
        start = time.perf_counter()
        build_tree(root, db, args.files)
        print(f"tree of {args.files} indexed hardlinks: {time.perf_counter() - start:.1f} s")
        for attempt in (1, 2):
            seconds, stats = scan(root, db)
            assert stats["photos_unchanged"] == args.files, stats
            print(
                f"unchanged re-scan {attempt}: {seconds:.2f} s for {args.files} files "
                f"({args.files / seconds:,.0f} files/s), timings {stats['timings']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
