"""Does batching photos through MTCNN pay on the CPU? Small photos (48 LFW portraits, 250 x
250) in batches of 16 against one at a time, and camera-size photos (four large photos of
../shared/data/edge shrunk to the 1280 x 960 the scan detects on) together against one at a
time. This decides config.MODEL_CHUNK_PIXELS (docs/performance.md, "Progress per photo").

    uv run python bench/chunks.py [--reps 4]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LARGE = [
    "edge/large/deepface_img40_14MP.jpg",
    "edge/large/deepface_img49_12.6MP.jpg",
    "edge/large/immich_craft-beer_24MP.jpg",
    "edge/multi_face/deepface_couple.jpg",
]


def run(detector, photos: list[np.ndarray], batch: int) -> float:  # type: ignore[no-untyped-def]
    """Seconds to detect ``photos`` in batches of ``batch``."""
    start = time.perf_counter()
    for i in range(0, len(photos), batch):
        detector.detect(photos[i : i + batch])
    return time.perf_counter() - start


def main() -> None:
    from facecluster.detect import Detector

    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=4)
    args = ap.parse_args()
    small = [
        np.asarray(Image.open(p).convert("RGB")) for p in sorted(DATA.glob("dev/*/*.jpg"))[:48]
    ]
    large = [np.asarray(Image.open(DATA / p).convert("RGB").resize((1280, 960))) for p in LARGE]
    detector = Detector("cpu")
    detector.detect(small[:16])  # warm up
    sets = (("48 small, batches of 16", small, 16), ("4 camera-size", large, 4))
    for name, photos, batch in sets:
        together, alone = [], []
        for _ in range(args.reps):
            together.append(run(detector, photos, batch))
            alone.append(run(detector, photos, 1))
        print(
            f"{name:26s} together {min(together):.2f} s, one at a time {min(alone):.2f} s "
            f"(best of {args.reps})"
        )


if __name__ == "__main__":
    main()
