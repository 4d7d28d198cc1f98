"""Time `find`: its index file (findindex.py) against the exact search, on synthetic faces.

    python bench/find.py [--faces 1000000] [--dim 128] [--queries 200]
    python bench/find.py --db 20000,50000,200000      # the cut-over, through SQLite

Faces come from bench/group.py's ``make_faces`` (identities of Pareto sizes, 5% strangers:
clustered like real embeddings, not uniform). Queries are new photos of known people: a
library face plus noise (squared distance ~0.1 to it).

Default mode, in memory: builds the index (build s, file MB, load s), then per query the
index's candidates re-ranked exactly (what find does, with the database's vectors in a
matrix here), median ms over the queries, and recall@10 = the share of the exact 10
nearest faces found. The baseline line is the exact search (search.nearest_photos) timed
in the same run.

``--compare --faces N``: the index types considered (IVF,SQ8 as find; IVF,Flat; HNSW).

``--scan-cost N``: what the index costs a scan of N faces (the change log's triggers,
refresh_index after the scan).

``--db``: a face database of each size, and find's whole search through it
(search.FaceSearch): exact (every vector read from SQLite, per query) against the index
(loaded once, then per query), to place MIN_FACES.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from facecluster import findindex
from facecluster.search import nearest_photos

sys.path.insert(0, str(Path(__file__).parent))
from group import make_faces  # noqa: E402

K = 10


def queries(x: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x), n, replace=False)
    q = x[pick] + 0.25 * rng.standard_normal((n, x.shape[1])).astype(np.float32) / np.sqrt(
        x.shape[1]
    )
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def exact_top(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    out = np.empty((len(q), K), np.int64)
    for i in range(0, len(q), 16):
        sims = q[i : i + 16] @ x.T
        part = np.argpartition(-sims, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(sims, part, 1), axis=1)
        out[i : i + 16] = np.take_along_axis(part, order, 1)
    return out


def in_memory(n: int, dim: int, nq: int, divisor: int) -> None:
    x, _ = make_faces(n, dim)
    ids = np.arange(n, dtype=np.int64)
    photos = [f"/photos/{i // 2}.jpg" for i in range(n)]
    q = queries(x, nq)
    truth = exact_top(x, q)
    t = time.perf_counter()
    vi = findindex.build(ids, x, "bench", (1, 0))
    build = time.perf_counter() - t
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        path = Path(tmp) / "faces.db.find.faiss"
        assert findindex.save(path, vi)
        size = path.stat().st_size
        t = time.perf_counter()
        loaded = findindex.load(path, "bench", dim)
        load = time.perf_counter() - t
    assert loaded is not None
    loaded.index.nprobe = max(1, loaded.index.nlist // divisor)
    times, found = [], 0
    m = max(8 * K, 64)
    for i in range(nq):
        t = time.perf_counter()
        cand, _ = loaded.search(q[i], m)
        cand = cand[cand >= 0]
        d = 2.0 - 2.0 * (x[cand] @ q[i])  # the exact re-rank (find: vectors from SQLite)
        top = cand[np.argsort(d, kind="stable")[:K]]
        times.append(time.perf_counter() - t)
        found += len(set(top.tolist()) & set(truth[i].tolist()))
    ms = 1000 * float(np.median(times))
    print(
        f"{n} faces x {dim}-D, index IVF{loaded.index.nlist},SQ8 nprobe "
        f"{loaded.index.nprobe}: build {build:.1f} s, file {size / 2**20:.0f} MB, load "
        f"{load:.2f} s, {ms:.2f} ms/query (median of {nq}), recall@{K} {found / (K * nq):.4f}"
    )
    base = []
    for i in range(min(nq, 50)):
        t = time.perf_counter()
        hits = nearest_photos(q[i], x, photos, k=K)
        base.append(time.perf_counter() - t)
        assert hits[0].index == truth[i][0]
    print(
        f"baseline exact search (search.nearest_photos, same run): "
        f"{1000 * float(np.median(base)):.1f} ms/query (median of {len(base)}), "
        f"{float(np.median(base)) / (ms / 1000):.0f}x the index"
    )


def through_db(sizes: list[int], dim: int, nq: int) -> None:
    from facecluster.search import FaceSearch

    identity: dict[str, object] = {"name": "bench", "dim": dim}
    for n in sizes:
        x, _ = make_faces(n, dim)
        q = queries(x, nq)
        with tempfile.TemporaryDirectory(dir=".") as tmp:
            cache, enc, _ = synthetic_db(Path(tmp) / "faces.db", x, identity, 20_000)
            times: dict[str, float] = {}
            for name, least in (("exact", n + 1), ("index", 1)):
                search = FaceSearch(cache, enc, identity, min_faces=least)
                search.nearest(q[0], K, 0.6)  # the index: built and saved here
                t = time.perf_counter()
                fresh = FaceSearch(cache, enc, identity, min_faces=least)
                fresh.nearest(q[0], K, 0.6)
                first = time.perf_counter() - t
                t = time.perf_counter()
                for v in q[1:]:
                    fresh.nearest(v, K, 0.6)
                times[name] = first
                times[name + " next"] = (time.perf_counter() - t) / max(1, nq - 1)
                assert fresh.used == name, fresh.used
            cache.close()
        print(
            f"{n} faces x {dim}-D through SQLite: exact {1000 * times['exact']:.0f} ms a "
            f"find (then {1000 * times['exact next']:.0f} ms/query); index "
            f"{1000 * times['index']:.0f} ms a find with its load (then "
            f"{1000 * times['index next']:.1f} ms/query)"
        )


def compare(n: int, dim: int, nq: int) -> None:
    """The index types considered, on the same faces and queries: the one find uses
    (IVF,SQ8), IVF with float vectors, and HNSW (no removal of faces)."""
    import faiss

    x, _ = make_faces(n, dim)
    q = queries(x, nq)
    truth = exact_top(x, q)
    nlist = max(1, min(int(4 * np.sqrt(n)), n // 39))  # as findindex.build
    threads = faiss.omp_get_max_threads()
    for kind in ("IVF,SQ8", "IVF,Flat", "HNSW32"):
        t = time.perf_counter()
        if kind == "HNSW32":
            index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 64
            index.add(x)
            index.hnsw.efSearch = 256
        else:
            vi = findindex.build(np.arange(n), x, "bench", (1, 0))
            index = vi.index
            if kind == "IVF,Flat":
                index = faiss.index_factory(dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
                index.cp.niter, index.cp.max_points_per_centroid = 10, 64
                pick = np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)
                index.train(x[np.sort(pick)])
                index.add(x)
                index.nprobe = nlist // findindex.PROBE_DIVISOR
        build = time.perf_counter() - t
        faiss.omp_set_num_threads(1)
        times, found = [], 0
        for i in range(nq):
            t = time.perf_counter()
            _, ids = index.search(q[i : i + 1], 64)
            cand = ids[0][ids[0] >= 0]
            top = cand[np.argsort(2.0 - 2.0 * (x[cand] @ q[i]), kind="stable")[:K]]
            times.append(time.perf_counter() - t)
            found += len(set(top.tolist()) & set(truth[i].tolist()))
        faiss.omp_set_num_threads(threads)
        probe = "efSearch 256" if kind == "HNSW32" else f"nlist {nlist} nprobe {nlist // 3}"
        print(f"{n} faces x {dim}-D, {kind} ({probe}): build {build:.1f} s, "
              f"{1000 * float(np.median(times)):.2f} ms/query, recall@{K} "
              f"{found / (K * nq):.4f}")


def synthetic_db(path: Path, x: np.ndarray, identity: dict[str, object], batch: int = 64):
    """A face database of the vectors ``x``, two faces a photo, written in scan-sized
    transactions of ``batch`` faces; returns (cache, encoder id, seconds of writing)."""
    from facecluster.cache import FaceCache, PhotoWrite
    from facecluster.records import Face, FileEntry

    cache = FaceCache(path)
    with cache.transaction():
        enc = cache.encoder_id(identity)
    assert enc is not None
    lm = np.zeros((5, 2), np.float32)
    faces = [Face(np.array([0, 0, 50, 50], np.float32), lm, 0.99),
             Face(np.array([100, 0, 150, 50], np.float32), lm, 0.99)]
    t = time.perf_counter()
    for s in range(0, len(x), batch):
        cache.apply([
            PhotoWrite(FileEntry(Path(f"/p/{i // 2}.jpg"), 1, 1), None, 200, 50, "ok", faces,
                       x[i : i + 2])
            for i in range(s, min(s + batch, len(x)), 2)
        ], enc)
    return cache, enc, time.perf_counter() - t


def scan_cost(n: int, dim: int) -> None:
    """What the index costs a scan of a small library: the triggers that log each vector
    (database writes with and without them) and refresh_index after the scan."""
    from facecluster.search import refresh_index

    x, _ = make_faces(n, dim)
    identity: dict[str, object] = {"name": "bench", "dim": dim}
    writes: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(3):
        for logged in (True, False):
            with tempfile.TemporaryDirectory(dir=".") as tmp:
                path = Path(tmp) / "faces.db"
                if not logged:
                    from facecluster.cache import FaceCache

                    with FaceCache(path) as c:
                        for trig in ("vector_inserted", "vector_updated", "vector_deleted"):
                            c.db.execute(f"DROP TRIGGER {trig}")
                cache, enc, secs = synthetic_db(path, x, identity)
                writes[logged].append(secs)
                if logged and len(writes[True]) == 1:
                    t = time.perf_counter()
                    refresh_index(cache, enc, identity)
                    first = time.perf_counter() - t
                    t = time.perf_counter()
                    refresh_index(cache, enc, identity)
                    again = time.perf_counter() - t
                cache.close()
    w = {k: min(v) for k, v in writes.items()}
    print(
        f"{n} faces x {dim}-D written in transactions of 64 faces: {w[True]:.2f} s with the "
        f"change log, {w[False]:.2f} s without (best of 3); refresh_index after the scan "
        f"{1000 * first:.0f} ms (first, drops {n} log rows), {1000 * again:.1f} ms (again)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--faces", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--divisor", type=int, default=findindex.PROBE_DIVISOR, help="nlist/nprobe")
    ap.add_argument("--db", default="", help="sizes (comma-separated): the cut-over mode")
    ap.add_argument("--scan-cost", type=int, default=0, help="faces: what a scan pays")
    ap.add_argument("--compare", action="store_true", help="IVF,SQ8 vs IVF,Flat vs HNSW")
    args = ap.parse_args()
    if args.compare:
        compare(args.faces, args.dim, args.queries)
    elif args.scan_cost:
        scan_cost(args.scan_cost, args.dim)
    elif args.db:
        through_db([int(s) for s in args.db.split(",")], args.dim, min(args.queries, 20))
    else:
        in_memory(args.faces, args.dim, args.queries, args.divisor)


if __name__ == "__main__":
    main()
