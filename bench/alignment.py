"""Measure alignment choices for the dlib-resnet encoder on a labelled set.

Re-embeds the labelled face of every photo (faces already detected by a scan into DB)
with several alignment variants and reports pairwise/BCubed F1 at each variant's best
threshold, for average and weighted linkage, clustering the labelled faces only.

    python bench/alignment.py ../shared/data/dev --db /tmp/dev.db

The scan must have been done with the dlib-resnet encoder (facecluster scan DIR --db DB).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import dlib
import numpy as np

from facecluster import evaluate as ev
from facecluster.cache import FaceCache
from facecluster.cluster import agglomerative
from facecluster.encoders.base import l2_normalize
from facecluster.encoders.dlib_resnet import DlibResnetEncoder, map_box
from facecluster.imageio import open_rgb
from facecluster.labelled import labelled_face, load_labelled


def best(emb: np.ndarray, labels: np.ndarray, linkage: str) -> tuple[float, dict]:
    rows = ev.sweep(
        np.round(np.arange(0.10, 0.26, 0.0025), 4),
        lambda t: agglomerative(emb, float(t), linkage, min_cluster_size=1),
        labels,
    )
    row = ev.best_by(rows)
    return row["threshold"], row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("root", type=Path)
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=0, help="only the first N photos (smoke run)")
    args = ap.parse_args()
    root = args.root.resolve()
    with FaceCache(args.db) as cache:
        enc_id = next(i for i, name, _, _ in cache.encoders() if name == "dlib-resnet")
        lab = load_labelled(cache, enc_id, root)
    enc = DlibResnetEncoder(flip=False)
    hog = dlib.get_frontal_face_detector()
    faces = lab.faces[: args.limit or None]
    labels = lab.labels[: len(faces)]

    def chip(img: np.ndarray, rect: dlib.rectangle) -> np.ndarray:
        shape = enc._predictor(img, rect)
        return np.asarray(dlib.get_face_chip(img, shape, size=150, padding=0.25))

    variants: dict[str, list[np.ndarray | None]] = {
        "mtcnn box": [], "mtcnn box mapped": [], "dlib hog box": []}
    t0 = time.time()
    for sf in faces:
        img = open_rgb(Path(sf.path))  # dev photos are small: scale 1
        x1, y1, x2, y2 = (round(float(v)) for v in sf.face.box)
        variants["mtcnn box"].append(chip(img, dlib.rectangle(x1, y1, x2, y2)))
        variants["mtcnn box mapped"].append(chip(img, dlib.rectangle(*map_box(sf.face.box))))
        dets = hog(img, 1)
        if len(dets):
            from facecluster.records import Face

            cand = [Face(np.array([d.left(), d.top(), d.right(), d.bottom()], np.float32),
                         np.zeros((5, 2), np.float32), 1.0) for d in dets]
            pick = labelled_face(cand, img.shape[1], img.shape[0])
            variants["dlib hog box"].append(chip(img, dets[pick]))
        else:
            variants["dlib hog box"].append(None)
    print(f"aligned {len(faces)} faces x 3 variants in {time.time() - t0:.0f} s")

    results = []
    for name, chips in variants.items():
        keep = [i for i, c in enumerate(chips) if c is not None]
        vecs = enc.embed([chips[i] for i in keep])
        flipped = l2_normalize(vecs + enc.embed([chips[i][:, ::-1] for i in keep]))
        for flip, emb in (("", vecs), (" + flip", flipped)):
            # Photos whose face the variant missed are scored as unknown (singletons).
            full = np.zeros((len(chips), emb.shape[1]), np.float32)
            full[keep] = emb
            for linkage in ("average", "weighted"):
                t, row = best(full[keep], labels[keep], linkage)
                pred = np.full(len(chips), -1)
                pred[keep] = agglomerative(full[keep], t, linkage, min_cluster_size=1)
                rep = ev.cluster_report(labels, pred).as_dict()
                results.append((name + flip, linkage, t, rep["pairwise_f1"], rep["bcubed_f1"],
                                len(chips) - len(keep)))
    print(f"{'alignment':28s} {'linkage':9s} {'best t':>7s} {'pF1':>6s} {'bF1':>6s} {'missed':>6s}")
    for r in results:
        print(f"{r[0]:28s} {r[1]:9s} {r[2]:7.4f} {r[3]:6.4f} {r[4]:6.4f} {r[5]:6d}")


if __name__ == "__main__":
    main()
