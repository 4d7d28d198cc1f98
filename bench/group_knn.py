"""Compare FAISS indexes for the all-faces kNN search of large groupings.

    python bench/group_knn.py N DIM NLIST KINDS      e.g. 100000 512 1024 flat,sq8,hnsw

On N dlib-calibrated synthetic faces (bench/group.py ``make_faces``), builds each index
(``flat`` = IVF-Flat, ``sq8`` = IVF with 8-bit codes, both with NLIST cells; ``hnsw`` =
HNSW-Flat, M 32, efConstruction 40), then searches 1,000 faces for their 41 nearest and
prints the build time, the search time extrapolated to all N faces and the recall of the
exact 41 (from a flat exact search), for several nprobe / efSearch values; "thr-recall"
is the recall of the true neighbours within the dlib threshold 0.155.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from group import make_faces  # noqa: E402


def main() -> None:
    n, dim, nlist, kinds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    x, _ = make_faces(n, dim, 0)
    k = 41
    rng = np.random.default_rng(0)
    qi = rng.choice(n, 1000, replace=False)
    t = time.time()
    exact = faiss.IndexFlatL2(dim)
    exact.add(x)
    d0, i0 = exact.search(x[qi], k)
    print("exact search of 1000 faces", round(time.time() - t, 2), "s", flush=True)

    def recall(found: np.ndarray) -> tuple[float, float]:
        near = d0 <= 0.155
        every = np.mean([len(set(found[i]) & set(i0[i])) / k for i in range(1000)])
        within = np.mean(
            [len(set(found[i]) & set(i0[i][near[i]])) / max(1, near[i].sum()) for i in range(1000)]
        )
        return round(float(every), 4), round(float(within), 4)

    for kind in kinds.split(","):
        t = time.time()
        if kind == "hnsw":
            idx = faiss.IndexHNSWFlat(dim, 32)
            idx.hnsw.efConstruction = 40
            idx.add(x)
            built = time.time() - t
            for ef in (64, 128):
                idx.hnsw.efSearch = ef
                t1 = time.time()
                _, found = idx.search(x[qi], k)
                est = (time.time() - t1) * n / 1000
                print(
                    kind,
                    "ef",
                    ef,
                    "build",
                    round(built, 1),
                    "search est",
                    round(est, 1),
                    "recall, thr-recall",
                    recall(found),
                    flush=True,
                )
            continue
        q = faiss.IndexFlatL2(dim)
        if kind == "flat":
            idx = faiss.IndexIVFFlat(q, dim, nlist)
        else:
            idx = faiss.IndexIVFScalarQuantizer(q, dim, nlist, faiss.ScalarQuantizer.QT_8bit)
        idx.cp.max_points_per_centroid = 64
        idx.train(x[rng.choice(n, min(n, nlist * 64), replace=False)])
        trained = time.time() - t
        idx.add(x)
        built = time.time() - t
        for nprobe in (4, 8, 16, 32):
            idx.nprobe = nprobe
            t1 = time.time()
            _, found = idx.search(x[qi], k)
            est = (time.time() - t1) * n / 1000
            print(
                kind,
                nlist,
                "nprobe",
                nprobe,
                "train",
                round(trained, 1),
                "build",
                round(built, 1),
                "search est",
                round(est, 1),
                "recall, thr-recall",
                recall(found),
                flush=True,
            )


if __name__ == "__main__":
    main()
