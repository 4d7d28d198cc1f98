"""The YuNet levers of docs/performance.md ("Detection: YuNet and MTCNN", second round),
on the camera-size set (bench/data/camera, bench/make_camera_set.py):

    python bench/yunet_levers.py tiles     # whole 2240 px copy vs tiles vs 1280 px, 1 and 2 threads
    python bench/yunet_levers.py coarse    # each true face's best score on smaller copies
    python bench/yunet_levers.py malloc 0  # decode_pair and YuNet ms per photo, glibc default
    python bench/yunet_levers.py malloc 1  # the same with memory.keep_freed_buffers()

Run timing modes under /work/bench.lock on the shared machine.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
CAMERA = HERE / "data" / "camera"
sys.path.insert(0, str(HERE.parent / "src"))

from scan import iou  # noqa: E402

from facecluster import imageio  # noqa: E402
from facecluster.memory import keep_freed_buffers  # noqa: E402
from facecluster.yunet import YunetDetector, model_path, to_mtcnn_box  # noqa: E402


def bgr(i: int) -> np.ndarray:
    return cv2.imread(str(CAMERA / f"camera_{i:03d}.jpg"))


def tiles() -> None:
    path, nets = str(model_path()), {}
    full = [cv2.resize(bgr(i), (2240, 1680)) for i in range(4)]
    small = [cv2.resize(bgr(i), (1280, 960), interpolation=cv2.INTER_AREA) for i in range(4)]

    def det(img: np.ndarray) -> None:
        key = (img.shape[1], img.shape[0])
        if key not in nets:
            nets[key] = cv2.FaceDetectorYN.create(path, "", key, 0.6, 0.3, 5000)
        nets[key].setInputSize(key)
        nets[key].detect(img)

    def tiled(img: np.ndarray, t: int, ov: int = 96) -> None:
        h, w = img.shape[:2]
        for y in range(0, h - ov, t - ov):
            for x in range(0, w - ov, t - ov):
                det(np.ascontiguousarray(img[y : y + t, x : x + t]))

    fns = {
        "whole2240": lambda i: det(full[i]),
        "coarse1280": lambda i: det(small[i]),
        "tiles640": lambda i: tiled(full[i], 640),
        "tiles1152": lambda i: tiled(full[i], 1152),
    }
    for threads in (1, 2):
        cv2.setNumThreads(threads)
        res: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(4):
            for k, f in fns.items():
                s = time.perf_counter()
                for i in range(4):
                    f(i)
                res[k].append((time.perf_counter() - s) / 4 * 1000)
        print(f"threads {threads}: " + ", ".join(f"{k} {min(v):.0f} ms" for k, v in res.items()))


def coarse(sides: list[int]) -> None:
    cv2.setNumThreads(1)
    truth = json.loads((CAMERA / "boxes.json").read_text())
    net = cv2.FaceDetectorYN.create(str(model_path()), "", (320, 320), 0.05, 0.3, 5000)
    scores: dict[int, list[tuple[float, str]]] = {s: [] for s in sides}
    for name in sorted(truth):
        img, _, _, _, copy, k0 = imageio.decode_pair((CAMERA / name).read_bytes(), 2240)
        copy = cv2.cvtColor(copy, cv2.COLOR_RGB2BGR)
        true = np.asarray([b["box"] for b in truth[name]], np.float32)
        for s in sides:
            f = s / max(copy.shape[:2])
            size = (round(copy.shape[1] * f), round(copy.shape[0] * f))
            small = cv2.resize(copy, size, interpolation=cv2.INTER_AREA)
            net.setInputSize(size)
            rows = net.detect(small)[1]
            rows = np.zeros((0, 15), np.float32) if rows is None else rows
            boxes = np.asarray([to_mtcnn_box(r[:4]) / (f * k0) for r in rows]).reshape(-1, 4)
            for t in true:
                hit = iou(t, boxes) >= 0.3
                scores[s].append((float(rows[hit, 14].max()) if hit.any() else 0.0, name))
    for s in sides:
        low = sorted(scores[s])[:4]
        print(f"{s} px: lowest true-face scores " + ", ".join(f"{v:.2f} ({n})" for v, n in low))


def malloc(tune: bool) -> None:
    if tune:
        keep_freed_buffers()
    det = YunetDetector()
    datas = [(CAMERA / f"camera_{i:03d}.jpg").read_bytes() for i in range(6)]
    pairs = [imageio.decode_pair(d, 2240) for d in datas]
    for label, fn in (
        ("decode_pair", lambda: [imageio.decode_pair(d, 2240) for d in datas]),
        ("yunet", lambda: [det.detect([p[4]]) for p in pairs]),
    ):
        best = min(_seconds(fn) for _ in range(2))
        print(f"mallopt {int(tune)}: {label} {best / len(datas) * 1000:.1f} ms/photo")


def _seconds(fn) -> float:
    s = time.perf_counter()
    fn()
    return time.perf_counter() - s


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "tiles"
    if mode == "tiles":
        tiles()
    elif mode == "coarse":
        coarse([int(v) for v in sys.argv[2:]] or [960, 1280, 1600, 2240])
    else:
        malloc(sys.argv[2:3] == ["1"])
