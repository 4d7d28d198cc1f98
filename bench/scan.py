"""Scan speed: facecluster against the loop a user would write, on the same photos.

    python bench/scan.py                      # small (dev) then camera-size set
    python bench/scan.py --small 300 --camera 20 --peers

For each photo set it times, in this one run:

- naive: the loop from facenet-pytorch's README, one photo at a time, in a fresh process:
  ``Image.open`` -> ``MTCNN(keep_all=True)`` -> ``InceptionResnetV1`` on the faces
  (``mtcnn(img)`` is written as its two halves, ``detect`` + ``extract``, to keep the boxes
  for the recall check; the embedding runs under ``no_grad``).
- facecluster: ``facecluster scan`` in a fresh process into a fresh database, with the
  same network (``--model facenet-vggface2``).
- with ``--peers`` (small set): ``facecluster scan`` with the offline dlib-resnet encoder
  against the face_recognition package's pipeline (dlib HOG upsampled once +
  5-point landmarks + ``compute_face_descriptor``, as ``face_locations`` /
  ``face_encodings`` do) and a MTCNN + dlib-descriptor loop.

FaceNet weights cannot be downloaded here, so both sides load the same randomly
initialised InceptionResnetV1: the compute is identical, the vectors meaningless.

Faces found: on the camera-size set (``bench/make_camera_set.py``) against the true
boxes (IoU >= 0.3); on the small set, facecluster's faces against the naive loop's
faces with probability >= 0.92 (facecluster's own cut-off; the naive loop keeps >= 0.7).
The ``ratio`` lines are facecluster's photos/s over the naive loop's. The ``speedup``
lines are facecluster's photos/s over the same ``facecluster scan`` command of the pipeline
at ``--base`` (default 0d06275, the commit before the YuNet / detection-speed work), run
from a git worktree at that commit (``/tmp/fc-base-<commit>``, made here when missing) in
this same run; ``--base ''`` skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
MIN_PROB = 0.92
BASE = "0d06275"


def small_set(n: int) -> list[Path]:
    """``n`` dev photos spread over all identities (every k-th in sorted order)."""
    files = sorted((SHARED / "dev").glob("*/*.jpg"))
    step = max(1, len(files) // n)
    return files[::step][:n]


def camera_set(directory: Path, n: int) -> tuple[list[Path], dict[str, list[dict]]]:
    boxes = directory / "boxes.json"
    if not boxes.is_file():
        print(f"generating the camera-size set in {directory} (once)", flush=True)
        subprocess.run(
            [sys.executable, str(HERE / "make_camera_set.py"), "--out", str(directory)],
            check=True,
        )
    truth = json.loads(boxes.read_text())
    names = sorted(truth)[:n]
    return [directory / name for name in names], {k: truth[k] for k in names}


def random_weights(path: Path) -> Path:
    import torch
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    torch.save(InceptionResnetV1(pretrained=None).state_dict(), path)
    return path


# -- the contenders ------------------------------------------------------------------------
def naive(files: list[Path], weights: Path, device: str) -> tuple[float, list[np.ndarray]]:
    """facenet-pytorch's README loop, as a user's script: a fresh process, so it pays the
    same interpreter start and imports as ``facecluster scan``. Returns seconds and the
    boxes (with prob) per photo."""
    with tempfile.TemporaryDirectory() as d:
        listing, out = Path(d) / "files", Path(d) / "boxes.npz"
        listing.write_text("\n".join(map(str, files)))
        cmd = [sys.executable, __file__, "--naive-worker", str(listing), str(weights), device]
        start = time.perf_counter()
        subprocess.run([*cmd, str(out)], check=True)
        seconds = time.perf_counter() - start
        found = np.load(out)
        return seconds, [found[str(i)] for i in range(len(files))]


def naive_worker(listing: Path, weights: Path, device: str, out: Path) -> None:
    import torch
    from facenet_pytorch import MTCNN, InceptionResnetV1
    from PIL import Image

    mtcnn = MTCNN(keep_all=True, device=device)
    resnet = InceptionResnetV1(pretrained=None).eval().to(device)
    resnet.load_state_dict(torch.load(weights, weights_only=True))
    found = {}
    for i, path in enumerate(listing.read_text().splitlines()):
        img = Image.open(path).convert("RGB")
        boxes, probs = mtcnn.detect(img)
        if boxes is None:
            found[str(i)] = np.zeros((0, 5), np.float32)
            continue
        faces = mtcnn.extract(img, boxes, None)
        with torch.no_grad():
            resnet(faces.to(device))
        found[str(i)] = np.hstack([boxes, np.asarray(probs)[:, None]]).astype(np.float32)
    np.savez(out, **found)


def base_tree(commit: str) -> Path:
    """A git worktree of this repository at ``commit`` (made once, detached)."""
    tree = Path(tempfile.gettempdir()) / f"fc-base-{commit}"
    if not (tree / "src" / "facecluster").is_dir():
        git = ["git", "-C", str(HERE.parent), "worktree"]
        subprocess.run([*git, "add", "-f", "--detach", str(tree), commit], check=True)
    return tree


def facecluster_scan(
    files: list[Path],
    db: Path,
    model: str,
    weights: Path | None,
    device: str,
    src: Path = HERE.parent / "src",
    extra: tuple[str, ...] = (),
) -> tuple[float, dict, list[np.ndarray]]:
    """``facecluster scan`` in a fresh process, with ``src`` first on PYTHONPATH (this
    tree's by default, another commit's for the speedup lines). Returns seconds, its JSON,
    boxes per photo."""
    listing = db.with_suffix(".files")
    cmd = [sys.executable, "-m", "facecluster", "scan", *map(str, files)]
    cmd += ["--db", str(db), "--model", model, "--device", device, "--json", *extra]
    if weights:
        cmd += ["--weights", str(weights)]
    listing.write_text("\n".join(cmd))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [env.get("PYTHONPATH")])])
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    con = sqlite3.connect(db)
    boxes: dict[str, list[list[float]]] = {}
    for path, x1, y1, x2, y2, p in con.execute(
        "SELECT p.path, x1, y1, x2, y2, prob FROM faces f JOIN photos p ON p.id = f.photo_id"
    ):
        boxes.setdefault(path, []).append([x1, y1, x2, y2, p])
    con.close()
    per_photo = [
        np.asarray(boxes.get(str(f.resolve()), []), np.float32).reshape(-1, 5) for f in files
    ]
    return seconds, json.loads(out.stdout), per_photo


def face_recognition_pipeline(files: list[Path]) -> tuple[float, int]:
    """What face_recognition's load_image_file / face_locations / face_encodings do."""
    import dlib
    from PIL import Image

    from facecluster.encoders.dlib_resnet import DESCRIPTOR_FILE, PREDICTOR_FILE, models_dir

    start = time.perf_counter()
    hog = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(models_dir() / PREDICTOR_FILE))
    net = dlib.face_recognition_model_v1(str(models_dir() / DESCRIPTOR_FILE))
    faces = 0
    for path in files:
        img = np.asarray(Image.open(path).convert("RGB"))
        for rect in hog(img, 1):
            net.compute_face_descriptor(img, sp(img, rect), 1)
            faces += 1
    return time.perf_counter() - start, faces


def mtcnn_dlib_loop(files: list[Path]) -> tuple[float, int]:
    """facenet-pytorch MTCNN for boxes, dlib's landmarks and descriptor per face."""
    import dlib
    from facenet_pytorch import MTCNN
    from PIL import Image

    from facecluster.encoders.dlib_resnet import DESCRIPTOR_FILE, PREDICTOR_FILE, models_dir

    start = time.perf_counter()
    mtcnn = MTCNN(keep_all=True)
    sp = dlib.shape_predictor(str(models_dir() / PREDICTOR_FILE))
    net = dlib.face_recognition_model_v1(str(models_dir() / DESCRIPTOR_FILE))
    faces = 0
    for path in files:
        pil = Image.open(path).convert("RGB")
        boxes, _ = mtcnn.detect(pil)
        img = np.asarray(pil)
        for b in boxes if boxes is not None else []:
            rect = dlib.rectangle(*(int(round(v)) for v in b))
            net.compute_face_descriptor(img, sp(img, rect), 1)
            faces += 1
    return time.perf_counter() - start, faces


# -- faces found ---------------------------------------------------------------------------
def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    if not len(boxes):
        return np.zeros(0)
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + areas - inter)


def matched(reference: list[np.ndarray], found: list[np.ndarray], at: float) -> int:
    """How many reference boxes have a found box with IoU >= ``at`` in the same photo."""
    return sum(
        int(iou(r[:4], f).max(initial=0.0) >= at)
        for refs, f in zip(reference, found, strict=True)
        for r in refs
    )


def rate(n: int, seconds: float) -> str:
    return f"{seconds:7.1f} s {n / seconds:7.2f} photos/s"


def run_set(
    label: str, files: list[Path], truth: dict | None, args: argparse.Namespace, tmp: Path
) -> None:
    n = len(files)
    print(f"\n== {label}: {n} photos", flush=True)
    fc_s, stats, fc_boxes = facecluster_scan(
        files,
        tmp / f"{label}.db",
        "facenet-vggface2",
        args.weights,
        args.device,
        extra=("--detector", args.detector),
    )
    base = None
    if args.base:
        base = facecluster_scan(
            files,
            tmp / f"{label}-base.db",
            "facenet-vggface2",
            args.weights,
            args.device,
            src=base_tree(args.base) / "src",
        )
    if args.no_naive:  # only the speedup against --base
        nv_s, nv_boxes = float("nan"), [np.zeros((0, 5), np.float32) for _ in files]
    else:
        nv_s, nv_boxes = naive(files, args.weights, args.device)
    nv_conf = [b[b[:, 4] >= MIN_PROB] for b in nv_boxes]
    fc_n = sum(len(b) for b in fc_boxes)
    nv_n = sum(len(b) for b in nv_boxes)
    print(f"naive loop (facenet-pytorch README)  {rate(n, nv_s)}  faces {nv_n}")
    print(f"facecluster scan (same network)      {rate(n, fc_s)}  faces {fc_n}")
    contenders = [("naive", nv_boxes), ("facecluster", fc_boxes)]
    if base is not None:
        base_n = sum(len(b) for b in base[2])
        print(f"facecluster scan at {args.base:16s} {rate(n, base[0])}  faces {base_n}")
        contenders.append((args.base, base[2]))
    if truth is not None:
        ref = [np.asarray([t["box"] for t in truth[f.name]], np.float32) for f in files]
        total = sum(len(r) for r in ref)
        for name, found in contenders:
            hit = matched(ref, found, 0.3)
            extra = sum(len(f) for f in found) - matched(found, ref, 0.3)
            print(
                f"  {name:12s} true faces found {hit}/{total} ({hit / total:.1%}), "
                f"other detections {extra}"
            )
    else:
        conf = sum(len(b) for b in nv_conf)
        hit = matched(nv_conf, fc_boxes, 0.5)
        print(
            f"  naive faces with p >= {MIN_PROB}: {conf}; facecluster finds {hit} of them "
            f"({hit / max(conf, 1):.1%}), and {fc_n - matched(fc_boxes, nv_conf, 0.5)} others"
        )
    for name, run in (("facecluster", stats), (args.base, base[1] if base else {})):
        timings = run.get("timings", {})
        if timings:
            parts = ", ".join(
                f"{k} {v / n * 1000:.0f}"
                for k, v in sorted(timings.items(), key=lambda kv: -kv[1])
            )
            print(f"  {name} ms per photo: {parts}")
    if args.peers and truth is None:
        dl_s, dl_stats, _ = facecluster_scan(
            files, tmp / f"{label}-dlib.db", "dlib-resnet", None, args.device
        )
        fr_s, fr_n = face_recognition_pipeline(files)
        md_s, md_n = mtcnn_dlib_loop(files)
        print(f"face_recognition pipeline (HOG+dlib)  {rate(n, fr_s)}  faces {fr_n}")
        print(f"MTCNN + dlib descriptor loop         {rate(n, md_s)}  faces {md_n}")
        print(
            f"facecluster scan (dlib-resnet)       {rate(n, dl_s)}  faces {dl_stats['faces_new']}"
        )
        print(
            f"ratio {label} dlib-resnet: {fr_s / dl_s:.2f}x face_recognition, "
            f"{md_s / dl_s:.2f}x MTCNN+dlib loop"
        )
    print(
        f"ratio {label}: {nv_s / fc_s:.2f}x  (facecluster {n / fc_s:.2f} vs naive "
        f"{n / nv_s:.2f} photos/s, faces {fc_n} vs {nv_n})",
        flush=True,
    )
    if base is not None:
        print(
            f"speedup {label}: {base[0] / fc_s:.2f}x  (facecluster --detector {args.detector} "
            f"{n / fc_s:.2f} vs "
            f"{args.base} {n / base[0]:.2f} photos/s)",
            flush=True,
        )


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__}"


def main() -> None:
    if sys.argv[1:2] == ["--naive-worker"]:
        naive_worker(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], Path(sys.argv[5]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--small", type=int, default=200, help="dev photos in the small set (0: skip)")
    ap.add_argument("--camera", type=int, default=30, help="camera-size photos (0: skip)")
    ap.add_argument("--camera-dir", type=Path, default=HERE / "data" / "camera")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or mps (both sides)")
    ap.add_argument("--peers", action="store_true", help="also dlib-resnet vs face_recognition")
    ap.add_argument(
        "--detector",
        default="yunet",
        help="this tree's detector (default yunet, the fast one; auto gives MTCNN for a new "
        "database)",
    )
    ap.add_argument("--no-naive", action="store_true", help="skip the naive loop (no ratio)")
    ap.add_argument("--base", default=BASE, help="commit for the speedup lines ('': skip)")
    args = ap.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory(prefix="fc-bench-") as d:
        tmp = Path(d)
        args.weights = random_weights(tmp / "random-facenet.pt")
        # Both pipelines' bytecode compiled before timing (PYTHONDONTWRITEBYTECODE may be set).
        trees = [HERE.parent / "src"] + ([base_tree(args.base) / "src"] if args.base else [])
        subprocess.run([sys.executable, "-m", "compileall", "-q", *map(str, trees)], check=True)
        if args.small:
            run_set("small", small_set(args.small), None, args, tmp)
        if args.camera:
            files, truth = camera_set(args.camera_dir, args.camera)
            run_set("camera", files, truth, args, tmp)


if __name__ == "__main__":
    main()
