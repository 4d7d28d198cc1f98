"""Benchmark the clustering core on synthetic face embeddings.

    python bench/group.py [--sizes 10000,100000,200000] [--dim 512] [--data dlib] [--quick]

Generates L2-normalised vectors around random identity centres, with identity sizes
drawn from a heavy-tailed (Pareto) distribution like a real photo library (a few people
in thousands of photos, many seen once or twice) plus a share of one-off stranger faces.
``--data dlib`` (default): identities that overlap like the dlib descriptor's on the dev
set, grouped at dlib's threshold 0.155; ``--data blobs``: well separated ones at 1.0.
Every (size, method) run happens in a fresh spawned process so its peak RSS (VmHWM
read in the child, native allocations included; "input MiB" is the peak right after
loading the embeddings, i.e. interpreter + numpy + data) is its own; a run that exceeds
``--budget`` seconds is terminated and reported as such.

Methods: ``dense`` (scipy on the full condensed matrix; only up to DENSE_LIMIT faces),
``sparse`` (memory-linear: exact threshold components + exact linkage inside each; the
exact all-pairs pass is skipped above EXACT_MAX faces, where it takes hours),
``approx`` (the same with components and neighbours from the FAISS index, which `group`
uses above APPROX_LIMIT faces; "vs exact" is its pairwise F1 against ``sparse``),
``graph`` (the sparse path with the kNN-graph approximation forced on every component,
i.e. the cost and accuracy of the worst case where components are huge; exact pass, so
skipped above EXACT_MAX too) and ``hdbscan`` (exact "generic" up to HDBSCAN_DENSE_LIMIT
faces, kNN-MST above, on the FAISS graph above APPROX_LIMIT; left out of the default
methods above EXACT_MAX faces). ``--linkage`` average by
default: weighted (`group`'s default) on the kNN graph of one huge component depends on
the merge order, so two runs that differ only in k disagree (docs/scale.md).
Quality is pairwise precision / recall / F1 against the true identities, where
unlabelled (-1) faces count as singletons. "cpu s" is the child's CPU time (all threads)
and "load" the 1-minute load average when the run ended: wall-clock seconds are only
comparable on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

METHODS = ("dense", "sparse", "approx", "graph", "hdbscan")
EXACT_MAX = 200_000  # the exact all-pairs pass grows with n^2: ~3 hours at 1M here


# Fitted to dlib-resnet descriptors of the 1,587 labelled dev faces (115 people): squared
# L2 between unit vectors, same person 1/5/25/50/75/95/99th percentiles
# 0.027/0.043/0.068/0.086/0.107/0.150/0.233, different people 0.183/0.219/0.279/0.327/0.375/
# 0.444/0.490, 0.24% of different-person pairs within dlib's threshold 0.155 (docs/scale.md).
DLIB_FIT = {"common": 1.0, "between": 0.37, "within2": (0.02, 0.08), "decay": 32, "tail": 0.2}


def make_faces(
    n: int,
    dim: int,
    seed: int = 0,
    strangers: float = 0.05,
    alpha: float = 1.0,
    data: str = "dlib",
) -> tuple[np.ndarray, np.ndarray]:
    """n unit vectors in ``dim`` D and their identity labels (strangers get unique labels).

    Identity sizes ~ 1 + Pareto(alpha), capped at n/20. ``data="dlib"``: faces whose
    same-person and different-person distance distributions match the dlib descriptor's on
    the dev set (:data:`DLIB_FIT`: a shared component, identity offsets and per-identity
    spread on a decaying spectrum, i.e. ~40 effective dimensions, and per-face outliers), so
    identities overlap as real ones do (use threshold 0.155). ``data="blobs"``: well
    separated identities, same-person d2 ~0.35-0.75 and different-person ~1.7 (threshold 1).
    """
    if data not in ("dlib", "blobs"):
        raise ValueError(f"unknown data {data!r}")
    rng = np.random.default_rng(seed)
    n_known = n - int(round(n * strangers))
    sizes: list[int] = []
    while sum(sizes) < n_known:
        sizes.append(int(min(1 + rng.pareto(alpha), max(2, n // 20))))
    sizes[-1] -= sum(sizes) - n_known
    k = len(sizes)
    common = rng.standard_normal(dim)
    common /= np.linalg.norm(common)
    labels = np.concatenate([np.repeat(np.arange(k), sizes), k + np.arange(n - n_known)])
    if data == "dlib":
        fit = DLIB_FIT
        w = np.exp(-np.arange(dim) / fit["decay"])
        w *= np.sqrt(dim / (w**2).sum()) / np.sqrt(dim)
        offsets = fit["between"] * rng.standard_normal((k + n - n_known, dim)) * w
        spread = np.sqrt(rng.uniform(*fit["within2"], k + n - n_known))
    else:
        w = np.full(dim, 1 / np.sqrt(dim))
        centres = rng.standard_normal((k, dim)) / np.sqrt(dim) + 0.45 * common
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        spread = rng.uniform(0.45, 0.8, k)
    known = labels < k
    x = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, 50_000):
        e = min(s + 50_000, n)
        lab = labels[s:e]
        noise = rng.standard_normal((e - s, dim)) * w
        if data == "dlib":  # strangers: one-face identities of their own
            scale = spread[lab] * np.exp(fit["tail"] * rng.standard_normal(e - s))
            v = fit["common"] * common + offsets[lab] + scale[:, None] * noise
        else:  # strangers: anywhere around the shared component
            sigma = np.where(known[s:e], spread[np.minimum(lab, k - 1)], 1.0)
            v = np.where(known[s:e, None], centres[np.minimum(lab, k - 1)], 0.45 * common)
            v += sigma[:, None] * noise
        x[s:e] = v / np.linalg.norm(v, axis=1, keepdims=True)
    perm = rng.permutation(n)
    return x[perm], labels[perm]


def singletons(labels: np.ndarray) -> np.ndarray:
    """``labels`` with each -1 (unknown) made a group of its own."""
    return np.where(labels < 0, labels.max(initial=0) + 1 + np.arange(len(labels)), labels)


def pairwise_f1(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """Pairwise precision, recall, F1 from contingency counts; -1 = singleton (both sides)."""
    truth, pred = singletons(truth), singletons(pred)

    def pairs(counts: np.ndarray) -> float:
        c = counts.astype(np.float64)
        return float((c * (c - 1) / 2).sum())

    _, tp_counts = np.unique(np.stack([truth, pred]), axis=1, return_counts=True)
    tp = pairs(tp_counts)
    pp = pairs(np.unique(pred, return_counts=True)[1])
    tt = pairs(np.unique(truth, return_counts=True)[1])
    precision = tp / pp if pp else 1.0
    recall = tp / tt if tt else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _peak_mib() -> float:
    """Peak RSS of this process in MiB: VmHWM (Linux), else ru_maxrss.

    VmHWM belongs to the process's own address space; ru_maxrss on Linux also carries the
    parent's high-water mark across fork+exec, which would charge the data generator's
    memory to every child.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 if sys.platform != "darwin" else rss / 2**20


def _worker(path: str, method: str, threshold: float, linkage: str, out: mp.Queue) -> None:
    import scipy.cluster.hierarchy  # noqa: F401  (import time is not clustering time)
    import scipy.sparse.csgraph  # noqa: F401

    from facecluster import cluster

    if method == "hdbscan":
        import hdbscan  # noqa: F401
    if method in ("approx", "hdbscan"):
        import faiss  # noqa: F401
    x = np.load(path)
    stages = _time_stages()
    base = _peak_mib()
    start, cpu = time.perf_counter(), time.process_time()
    if method in ("dense", "sparse", "approx"):
        labels = cluster.agglomerative(x, threshold, linkage, method=method)
    elif method == "graph":
        labels = cluster.agglomerative(x, threshold, linkage, method="sparse", max_dense=0)
    else:
        labels = cluster.hdbscan_labels(x, min_cluster_size=2)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    out.put((seconds, cpu, base, _peak_mib(), labels, stages))


def _time_stages() -> dict[str, float]:
    """Wall seconds spent in the neighbour search and the kNN-graph linkage (this process)."""
    from facecluster.cluster import hierarchical

    spent: dict[str, float] = {}

    def timed(name: str, fn):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t

        return wrapper

    hierarchical.neighbours = timed("neighbours", hierarchical.neighbours)
    hierarchical._graph = timed("graph linkage", hierarchical._graph)
    return spent


def run(path: str, method: str, threshold: float, linkage: str, budget: float) -> dict | None:
    """Run one method in a spawned child; None if it ran past ``budget`` or failed."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(path, method, threshold, linkage, out))
    proc.start()
    try:
        seconds, cpu, base, peak, labels, stages = out.get(timeout=budget)
    except Exception:  # queue.Empty on timeout, or the child died
        proc.terminate()
        proc.join()
        return None
    proc.join()
    return {
        "seconds": seconds,
        "cpu": cpu,
        "base_mib": base,
        "peak_mib": peak,
        "labels": labels,
        "stages": stages,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,200000")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--data", choices=("dlib", "blobs"), default="dlib")
    ap.add_argument("--threshold", type=float, help="squared L2 (default: 0.155 dlib, 1 blobs)")
    ap.add_argument("--linkage", default="average", help="average (default), weighted, ...")
    ap.add_argument(
        "--methods",
        help=f"comma-separated (default: all; hdbscan only up to {EXACT_MAX} faces unless named)",
    )
    ap.add_argument("--budget", type=float, default=900, help="seconds per run before giving up")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="smoke run: sizes 2000,20000")
    args = ap.parse_args(argv)
    sizes = [2000, 20000] if args.quick else [int(s) for s in args.sizes.split(",")]
    methods = [m for m in (args.methods or ",".join(METHODS)).split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        ap.error(f"unknown methods: {', '.join(sorted(unknown))}")
    from facecluster.cluster import DENSE_LIMIT

    if args.threshold is None:
        args.threshold = 0.155 if args.data == "dlib" else 1.0
    linkage = args.linkage
    print(
        f"# data={args.data} dim={args.dim} threshold={args.threshold} (squared L2) "
        f"linkage={linkage} cpus={os.cpu_count()} "
        f"budget={args.budget:.0f}s python={sys.version.split()[0]} numpy={np.__version__}"
    )
    header = (
        f"{'n':>8} {'method':<8} {'seconds':>8} {'cpu s':>7} {'peak MiB':>9} {'input MiB':>9} "
        f"{'clusters':>8} {'unknown':>8} {'precision':>9} {'recall':>7} {'F1':>6} "
        f"{'load':>5} {'vs exact':>8}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            x, truth = make_faces(n, args.dim, args.seed, data=args.data)
            path = str(Path(tmp) / f"faces_{n}.npy")
            np.save(path, x)
            del x
            exact = None
            for method in methods:
                if method == "dense" and n > DENSE_LIMIT:
                    print(f"{n:>8} {method:<8} {'skipped: n > DENSE_LIMIT (O(n^2) memory)':>40}")
                    continue
                if method == "hdbscan" and n > EXACT_MAX and args.methods is None:
                    why = f"skipped: n > {EXACT_MAX} (--methods hdbscan runs it)"
                    print(f"{n:>8} {method:<8} {why}")
                    continue
                if method in ("sparse", "graph") and n > EXACT_MAX:
                    print(f"{n:>8} {method:<8} skipped: n > {EXACT_MAX} (exact n^2 pass, hours)")
                    continue
                res = run(path, method, args.threshold, linkage, args.budget)
                if res is None:
                    print(
                        f"{n:>8} {method:<8} {'> ' + str(int(args.budget)):>8}  (stopped)",
                        flush=True,
                    )
                    continue
                labels = res["labels"]
                if method == "sparse":
                    exact = labels
                agree = "-" if exact is None else f"{pairwise_f1(exact, labels)[2]:.4f}"
                p, r, f1 = pairwise_f1(truth, labels)
                print(
                    f"{n:>8} {method:<8} {res['seconds']:>8.1f} {res['cpu']:>7.0f} "
                    f"{res['peak_mib']:>9.0f} {res['base_mib']:>9.0f} {labels.max() + 1:>8} "
                    f"{(labels < 0).mean():>8.1%} "
                    f"{p:>9.4f} {r:>7.4f} {f1:>6.4f} {os.getloadavg()[0]:>5.1f} {agree:>8}",
                    flush=True,
                )
                if res["stages"]:
                    split = ", ".join(f"{k} {v:.1f} s" for k, v in res["stages"].items())
                    print(f"{'':>8} {'':<8} of which: {split}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
