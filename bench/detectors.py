"""Which faces each registered detector finds, as a scan would (same decode, detection copy
and --min-face), on the three photo sets that decide the default detector:

    python bench/detectors.py                       # every detector, default sizes
    python bench/detectors.py --dev 100 --camera 10 --detectors yunet

- dev: labelled portraits of ../shared/data/dev (every k-th): a photo counts as found when
  a face box covers its centre (the labelled face); faces elsewhere are counted apart.
- edge: ../shared/data/edge/manifest.csv: for each category, photos whose face count
  equals the expected count, faces on the no-face photos, and the multi-face and
  small-face counts photo by photo (nonphoto: the counts only, no expectation).
- camera: bench/data/camera (bench/make_camera_set.py): true boxes with a found box at
  IoU >= 0.3, and detections matching no true box; with the detection ms per photo.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
sys.path.insert(0, str(HERE.parent / "src"))

from scan import iou  # noqa: E402

from facecluster.detect import DETECTORS, detect_side, load_detector  # noqa: E402
from facecluster.records import FileEntry  # noqa: E402
from facecluster.stages import detect_photos, load_photo  # noqa: E402


def faces_of(detector, path: Path, timings: dict) -> list[np.ndarray] | None:
    st = path.stat()
    photo = load_photo(FileEntry(path, st.st_size, st.st_mtime_ns), detect_side(detector.name))
    if not hasattr(photo, "image"):
        return None  # broken or unsupported: a scan reports it, no detector sees it
    start = time.perf_counter()
    faces = detect_photos(detector, [photo], 20)[0]
    timings["detect"] = timings.get("detect", 0.0) + time.perf_counter() - start
    timings["n"] = timings.get("n", 0) + 1
    return [f.box for f in faces], (photo.width, photo.height)


def dev(detector, n: int) -> str:
    files = sorted((SHARED / "dev").glob("*/*.jpg"))
    files = files[:: max(1, len(files) // n)][:n]
    t: dict = {}
    found = others = 0
    for f in files:
        boxes, (w, h) = faces_of(detector, f, t)
        central = [b for b in boxes if b[0] < w / 2 < b[2] and b[1] < h / 2 < b[3]]
        found += bool(central)
        others += len(boxes) - min(1, len(central))
    return f"dev: labelled face found in {found}/{len(files)} photos, other faces {others}"


def edge(detector) -> list[str]:
    rows = list(csv.DictReader((SHARED / "edge" / "manifest.csv").open()))
    t: dict = {}
    per: dict[str, list] = {}
    for row in rows:
        got = faces_of(detector, SHARED / "edge" / row["path"], t)
        if got is None:
            continue
        want = row["expected_faces_or_empty"]
        per.setdefault(row["category"], []).append((row["path"], len(got[0]), want))
    lines = []
    for cat, items in sorted(per.items()):
        exact = sum(1 for _, n, want in items if want != "" and n == int(want))
        scored = sum(1 for *_, want in items if want != "")
        line = f"edge {cat}: {exact}/{scored} photos with the expected count"
        if cat == "no_face":
            line += f", faces on no-face photos {sum(n for _, n, _ in items)}"
        lines.append(line)
        if cat in ("multi_face", "small_faces", "nonphoto"):
            lines.append("    " + ", ".join(f"{Path(p).stem} {n}/{w or '?'}" for p, n, w in items))
    return lines


def camera(detector, n: int) -> str:
    directory = HERE / "data" / "camera"
    truth = json.loads((directory / "boxes.json").read_text())
    t: dict = {}
    hit = total = extra = 0
    for name in sorted(truth)[:n]:
        boxes, _ = faces_of(detector, directory / name, t)
        found = np.asarray(boxes, np.float32).reshape(-1, 4)
        true = np.asarray([b["box"] for b in truth[name]], np.float32).reshape(-1, 4)
        total += len(true)
        hit += sum(int(iou(b, found).max(initial=0.0) >= 0.3) for b in true)
        extra += sum(int(iou(b, true).max(initial=0.0) < 0.3) for b in found)
    ms = t["detect"] / t["n"] * 1000
    return (
        f"camera: true faces found {hit}/{total}, other detections {extra}, "
        f"detect {ms:.0f} ms/photo"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dev", type=int, default=200, help="dev photos (0: skip)")
    ap.add_argument("--camera", type=int, default=40, help="camera-size photos (0: skip)")
    ap.add_argument("--no-edge", action="store_true")
    ap.add_argument("--detectors", nargs="*", default=list(DETECTORS.names()))
    args = ap.parse_args()
    for name in args.detectors:
        detector = load_detector(name, "cpu")
        print(f"== {name}", flush=True)
        if args.dev:
            print(dev(detector, args.dev), flush=True)
        if not args.no_edge:
            print("\n".join(edge(detector)), flush=True)
        if args.camera:
            print(camera(detector, args.camera), flush=True)


if __name__ == "__main__":
    main()
