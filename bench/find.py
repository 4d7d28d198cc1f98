"""Time `find`'s search (exact, vectorised) on synthetic unit vectors.

    python bench/find.py [--faces 1000000] [--dim 128]

Prints the search time against a full argsort baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from facecluster.search import nearest_photos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--faces", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("-k", type=int, default=10)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.faces, args.dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    photos = [f"/photos/{i // 2}.jpg" for i in range(args.faces)]  # two faces a photo
    q = x[123]
    t = time.perf_counter()
    base = np.argsort(2 - 2 * (x @ q), kind="stable")[: args.k]
    baseline = time.perf_counter() - t
    t = time.perf_counter()
    hits = nearest_photos(q, x, photos, k=args.k)
    ours = time.perf_counter() - t
    assert hits[0].index == base[0]
    print(f"{args.faces} faces x {args.dim}-D: find {ours:.3f} s, full argsort baseline "
          f"{baseline:.3f} s, ratio {baseline / ours:.1f}x")


if __name__ == "__main__":
    main()
