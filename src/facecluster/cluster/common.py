"""Helpers every clustering method shares: input checks, label numbering, centroids."""

from __future__ import annotations

import numpy as np


def as_2d(emb: np.ndarray) -> np.ndarray:
    x = np.asarray(emb, dtype=np.float32)
    if x.size == 0:
        return x.reshape(0, x.shape[-1] if x.ndim == 2 else 0)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (n, d), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or infinite values")
    return np.ascontiguousarray(x)


def relabel(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 by decreasing size (ties: smallest member index); -1 stays."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full(labels.shape, -1, dtype=np.int64)
    keep = labels >= 0
    if keep.any():
        _, first, inv, counts = np.unique(
            labels[keep], return_index=True, return_inverse=True, return_counts=True
        )
        rank = np.empty(len(counts), dtype=np.int64)
        rank[np.lexsort((first, -counts))] = np.arange(len(counts))
        out[keep] = rank[inv.ravel()]
    return out


def apply_min_size(labels: np.ndarray, min_cluster_size: int) -> np.ndarray:
    """Return a copy of ``labels`` with members of clusters smaller than the minimum set to -1."""
    labels = np.array(labels, dtype=np.int64)
    keep = labels >= 0
    if min_cluster_size > 1 and keep.any():
        _, inv, counts = np.unique(labels[keep], return_inverse=True, return_counts=True)
        sub = labels[keep]
        sub[counts[inv.ravel()] < min_cluster_size] = -1
        labels[keep] = sub
    return labels


def centroids(emb: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cluster ids (sorted, -1 excluded) and their L2-normalised mean vectors (float32)."""
    x = as_2d(emb)
    labels = np.asarray(labels, dtype=np.int64)
    keep = labels >= 0
    ids, inv = np.unique(labels[keep], return_inverse=True)
    if len(ids) == 0:
        return ids, np.zeros((0, x.shape[1]), dtype=np.float32)
    inv = inv.ravel()
    order = np.argsort(inv, kind="stable")
    starts = np.searchsorted(inv[order], np.arange(len(ids)))
    sums = np.add.reduceat(x[keep][order].astype(np.float64), starts, axis=0)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    unit = np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)
    return ids, unit.astype(np.float32)


def distance_to_centroid(emb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Squared L2 from each face to its cluster's normalised centroid (NaN for -1)."""
    x = as_2d(emb)
    labels = np.asarray(labels, dtype=np.int64)
    ids, cent = centroids(x, labels)
    out = np.full(len(labels), np.nan)
    rows = np.flatnonzero(labels >= 0)
    for s in range(0, len(rows), 1 << 16):
        r = rows[s : s + (1 << 16)]
        diff = x[r].astype(np.float64) - cent[np.searchsorted(ids, labels[r])]
        out[r] = np.einsum("ij,ij->i", diff, diff)
    return out
