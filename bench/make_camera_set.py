"""Generate the camera-size benchmark set: dev faces pasted into large photos.

Users' photos are 12-50 MP camera JPEGs, where decoding and detection dominate; the dev
set is mostly 250 px crops. This script makes a reproducible stand-in: each output is a
12 MP JPEG (4000x3000 or 3000x4000, quality 90, 4:2:0 like a phone camera) whose
background is one of the large no-face photos of ../shared/data/edge, with 1-4 faces of
../shared/data/dev pasted at random positions and sizes (face box side log-uniform in
MIN..MAX px) with a feathered edge. The true face boxes go to ``boxes.json`` so that a
benchmark can check recall as well as speed.

    python bench/make_camera_set.py                 # bench/data/camera, 40 photos
    python bench/make_camera_set.py --count 100 --out /tmp/camera

The face box of each source photo is its labelled (central) face as found by MTCNN on the
source at full size; only that region (twice the box) is pasted, so background faces of
the source do not come along.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
# The large photos of the edge set without any face (>= 6 MP).
BACKGROUNDS = [
    "no_face/immich_book-beside-flowers.jpg",
    "no_face/immich_handwritten-notes.jpg",
    "no_face/immich_cat_16MP.jpg",
    "no_face/sharp_circular_saw_hands.jpg",
    "formats/heic_iphone_12MP.heic",
]
LONG, SHORT = 4000, 3000
MIN_FACE, MAX_FACE = 50, 500
CONTEXT = 2.0  # pasted region = face box scaled by this about its centre


def background(path: Path, portrait: bool) -> Image.Image:
    from facecluster.imageio import open_rgb

    im = Image.fromarray(open_rgb(path))
    w, h = (SHORT, LONG) if portrait else (LONG, SHORT)
    s = max(w / im.width, h / im.height)
    im = im.resize((math.ceil(im.width * s), math.ceil(im.height * s)), Image.Resampling.LANCZOS)
    left, top = (im.width - w) // 2, (im.height - h) // 2
    return im.crop((left, top, left + w, top + h))


def source_faces(dev: Path, rng: random.Random, n: int) -> list[tuple[Path, np.ndarray]]:
    """``n`` random dev photos with the box of their labelled face."""
    from facecluster.detect import Detector
    from facecluster.imageio import open_rgb
    from facecluster.labelled import labelled_face

    photos = sorted(p for p in dev.glob("*/*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    rng.shuffle(photos)
    det = Detector("cpu")
    out: list[tuple[Path, np.ndarray]] = []
    for p in photos:
        img = open_rgb(p)
        faces = det.detect([img], [40.0])[0]
        i = labelled_face(faces, img.shape[1], img.shape[0])
        if i is not None:
            out.append((p, faces[i].box))
        if len(out) == n:
            break
    return out


def paste(
    canvas: Image.Image, src: Path, box: np.ndarray, side: float, at: tuple[float, float]
) -> list[float]:
    """Paste the region around ``box`` of ``src`` so the face box side becomes ``side`` and
    its centre lands at ``at``; returns the face box in canvas pixels."""
    from facecluster.imageio import open_rgb

    img = Image.fromarray(open_rgb(src))
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy, bw, bh = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    rw, rh = bw * CONTEXT, bh * CONTEXT
    region = (max(0, cx - rw / 2), max(0, cy - rh / 2))
    region += (min(img.width, cx + rw / 2), min(img.height, cy + rh / 2))
    crop = img.crop(tuple(round(v) for v in region))
    s = side / max(bw, bh)
    size = (max(1, round(crop.width * s)), max(1, round(crop.height * s)))
    crop = crop.resize(size, Image.Resampling.LANCZOS)
    # Feathered elliptical mask: no hard rectangle edge for the detector to latch onto.
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    d = ((xx - size[0] / 2) / (size[0] / 2)) ** 2 + ((yy - size[1] / 2) / (size[1] / 2)) ** 2
    mask = Image.fromarray((np.clip((1.0 - d) * 4.0, 0, 1) * 255).astype(np.uint8))
    mask = mask.filter(ImageFilter.GaussianBlur(max(1.0, side / 40)))
    # Where the face centre goes, relative to the crop's top-left corner.
    fx, fy = (cx - region[0]) * s, (cy - region[1]) * s
    left, top = round(at[0] - fx), round(at[1] - fy)
    canvas.paste(crop, (left, top), mask)
    half_w, half_h = bw * s / 2, bh * s / 2
    return [at[0] - half_w, at[1] - half_h, at[0] + half_w, at[1] + half_h]


def overlaps(a: list[float], others: list[list[float]], gap: float) -> bool:
    return any(
        a[0] - gap < b[2] and b[0] - gap < a[2] and a[1] - gap < b[3] and b[1] - gap < a[3]
        for b in others
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE / "data" / "camera")
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    faces_per_photo = [rng.randint(1, 4) for _ in range(args.count)]
    sources = source_faces(args.shared / "dev", rng, sum(faces_per_photo))
    args.out.mkdir(parents=True, exist_ok=True)
    bgs = [args.shared / "edge" / b for b in BACKGROUNDS]
    truth: dict[str, list[dict[str, object]]] = {}
    at = 0
    for i, n in enumerate(faces_per_photo):
        canvas = background(bgs[i % len(bgs)], portrait=(i // len(bgs)) % 2 == 1)
        boxes: list[dict[str, object]] = []
        for src, box in sources[at : at + n]:
            side = math.exp(rng.uniform(math.log(MIN_FACE), math.log(MAX_FACE)))
            for _ in range(100):
                margin = side * CONTEXT / 2
                centre = (
                    rng.uniform(margin, canvas.width - margin),
                    rng.uniform(margin, canvas.height - margin),
                )
                half = side * CONTEXT / 2
                cand = [centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half]
                if not overlaps(cand, [b["region"] for b in boxes], 0):  # type: ignore[misc]
                    break
            face = paste(canvas, src, box, side, centre)
            boxes.append(
                {
                    "identity": src.parent.name,
                    "source": f"{src.parent.name}/{src.name}",
                    "box": [round(v, 1) for v in face],
                    "region": cand,
                }
            )
        at += n
        name = f"camera_{i:03d}.jpg"
        canvas.save(args.out / name, quality=90, subsampling=2)
        truth[name] = [{k: v for k, v in b.items() if k != "region"} for b in boxes]
    (args.out / "boxes.json").write_text(json.dumps(truth, indent=1) + "\n")
    faces = sum(len(v) for v in truth.values())
    print(f"{len(truth)} photos, {faces} faces -> {args.out}")


if __name__ == "__main__":
    main()
