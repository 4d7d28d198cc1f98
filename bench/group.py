"""Benchmark the clustering core on synthetic face embeddings.

    python bench/group.py [--sizes 10000,100000,200000] [--dim 512] [--quick]

Generates L2-normalised vectors around random identity centres, with identity sizes
drawn from a heavy-tailed (Pareto) distribution like a real photo library (a few people
in thousands of photos, many seen once or twice) plus a share of one-off stranger faces.
Every (size, method) run happens in a fresh spawned process so its peak RSS (VmHWM
read in the child, native allocations included; "input MiB" is the peak right after
loading the embeddings, i.e. interpreter + numpy + data) is its own; a run that exceeds
``--budget`` seconds is terminated and reported as such.

Methods: ``dense`` (scipy on the full condensed matrix; only up to DENSE_LIMIT faces),
``sparse`` (memory-linear: exact threshold components + exact linkage inside each),
``graph`` (the sparse path with the kNN-graph approximation forced on every component,
i.e. the cost and accuracy of the worst case where components are huge) and
``hdbscan`` (exact "generic" up to HDBSCAN_DENSE_LIMIT faces, kNN-MST above).
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

METHODS = ("dense", "sparse", "graph", "hdbscan")


def make_faces(
    n: int, dim: int, seed: int = 0, strangers: float = 0.05, alpha: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """n unit vectors in ``dim`` D and their identity labels (strangers get unique labels).

    Identity sizes ~ 1 + Pareto(alpha), capped at n/20; per-identity spread varies so that
    same-person squared distances are ~0.35-0.75 and different-person ones ~1.7 (centres
    share a common component, as real face embeddings do).
    """
    rng = np.random.default_rng(seed)
    n_known = n - int(round(n * strangers))
    sizes: list[int] = []
    while sum(sizes) < n_known:
        sizes.append(int(min(1 + rng.pareto(alpha), max(2, n // 20))))
    sizes[-1] -= sum(sizes) - n_known
    k = len(sizes)
    common = rng.standard_normal(dim)
    common /= np.linalg.norm(common)
    centres = rng.standard_normal((k, dim)) / np.sqrt(dim) + 0.45 * common
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.concatenate([np.repeat(np.arange(k), sizes), k + np.arange(n - n_known)])
    known = labels < k
    spread = rng.uniform(0.45, 0.8, k)
    sigma = np.where(known, spread[np.minimum(labels, k - 1)], 1.0)  # strangers: anywhere
    x = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, 50_000):
        e = min(s + 50_000, n)
        v = np.where(known[s:e, None], centres[np.minimum(labels[s:e], k - 1)], 0.45 * common)
        v += sigma[s:e, None] * rng.standard_normal((e - s, dim)) / np.sqrt(dim)
        x[s:e] = v / np.linalg.norm(v, axis=1, keepdims=True)
    perm = rng.permutation(n)
    return x[perm], labels[perm]


def pairwise_f1(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """Pairwise precision, recall, F1 from contingency counts; pred -1 = singleton."""
    pred = np.where(pred < 0, pred.max(initial=0) + 1 + np.arange(len(pred)), pred)

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


def _worker(path: str, method: str, threshold: float, out: mp.Queue) -> None:
    import scipy.cluster.hierarchy  # noqa: F401  (import time is not clustering time)
    import scipy.sparse.csgraph  # noqa: F401

    from facecluster import cluster

    if method == "hdbscan":
        import hdbscan  # noqa: F401
    x = np.load(path)
    base = _peak_mib()
    start, cpu = time.perf_counter(), time.process_time()
    if method == "dense":
        labels = cluster.agglomerative(x, threshold, method="dense")
    elif method == "sparse":
        labels = cluster.agglomerative(x, threshold, method="sparse")
    elif method == "graph":
        labels = cluster.agglomerative(x, threshold, method="sparse", max_dense=0)
    else:
        labels = cluster.hdbscan_labels(x, min_cluster_size=2)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    out.put((seconds, cpu, base, _peak_mib(), labels))


def run(path: str, method: str, threshold: float, budget: float) -> dict | None:
    """Run one method in a spawned child; None if it ran past ``budget`` or failed."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(path, method, threshold, out))
    proc.start()
    try:
        seconds, cpu, base, peak, labels = out.get(timeout=budget)
    except Exception:  # queue.Empty on timeout, or the child died
        proc.terminate()
        proc.join()
        return None
    proc.join()
    return {"seconds": seconds, "cpu": cpu, "base_mib": base, "peak_mib": peak, "labels": labels}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,200000")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--threshold", type=float, default=1.0, help="squared L2 (default 1.0)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--budget", type=float, default=900, help="seconds per run before giving up")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="smoke run: sizes 2000,20000")
    args = ap.parse_args(argv)
    sizes = [2000, 20000] if args.quick else [int(s) for s in args.sizes.split(",")]
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        ap.error(f"unknown methods: {', '.join(sorted(unknown))}")
    from facecluster.cluster import DENSE_LIMIT

    print(
        f"# dim={args.dim} threshold={args.threshold} (squared L2) cpus={os.cpu_count()} "
        f"budget={args.budget:.0f}s python={sys.version.split()[0]} numpy={np.__version__}"
    )
    header = (
        f"{'n':>8} {'method':<8} {'seconds':>8} {'cpu s':>7} {'peak MiB':>9} {'input MiB':>9} "
        f"{'clusters':>8} {'unknown':>8} {'precision':>9} {'recall':>7} {'F1':>6} "
        f"{'load':>5}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            x, truth = make_faces(n, args.dim, args.seed)
            path = str(Path(tmp) / f"faces_{n}.npy")
            np.save(path, x)
            del x
            for method in methods:
                if method == "dense" and n > DENSE_LIMIT:
                    print(f"{n:>8} {method:<8} {'skipped: n > DENSE_LIMIT (O(n^2) memory)':>40}")
                    continue
                res = run(path, method, args.threshold, args.budget)
                if res is None:
                    print(
                        f"{n:>8} {method:<8} {'> ' + str(int(args.budget)):>8}  (stopped)",
                        flush=True,
                    )
                    continue
                labels = res["labels"]
                p, r, f1 = pairwise_f1(truth, labels)
                print(
                    f"{n:>8} {method:<8} {res['seconds']:>8.1f} {res['cpu']:>7.0f} "
                    f"{res['peak_mib']:>9.0f} {res['base_mib']:>9.0f} {labels.max() + 1:>8} "
                    f"{(labels < 0).mean():>8.1%} "
                    f"{p:>9.4f} {r:>7.4f} {f1:>6.4f} {os.getloadavg()[0]:>5.1f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
