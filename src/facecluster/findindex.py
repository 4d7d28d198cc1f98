"""find's persistent vector index: a FAISS inverted-file index beside the database.

``faces.db.find.faiss`` holds one encoder's vectors (8-bit scalar-quantised) in an IVF
index whose ids are face ids, and a header saying what it covers: the encoder (a digest of
its identity), the dimension and the mark of the database's vector-change log (schema step
4, vector_log.py) it was written at. It is an accelerator, never a source of truth:

* before use, the mark must still be in the database (a database restored from a backup,
  or another one, does not have it: the index is rebuilt) and the faces changed since it
  (added, re-embedded, removed) are read from the log: they are searched exactly and left
  out of the index's candidates;
* the index only proposes candidates; their vectors and photos are read from the database
  and ranked exactly, so a removed face or a moved photo cannot come out of it;
* a file that is missing, damaged, truncated, of another encoder or not ours is ignored
  (ours: rebuilt and replaced; not ours: never touched, find searches exactly).

Below MIN_FACES faces no index is written: an exact search is as fast (bench/find.py).
``scan`` brings the index up to date after its commits (FaceIndex.scan).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .vector_log import Mark

SUFFIX = ".find.faiss"
MAGIC = b"facecluster find index\n"
FORMAT = 1
MIN_FACES = 50_000  # fewer faces: exact search, no index file
PROBE_DIVISOR = 3  # nprobe = nlist / 3: recall@10 >= 0.99 on face-like data (bench/find.py)
TRAIN_PER_LIST = 64  # k-means training points per inverted list


def index_path(db: Path) -> Path:
    """The index file of the database ``db``."""
    return db.with_name(db.name + SUFFIX)


def identity_key(identity: dict[str, object]) -> str:
    """A digest naming the encoder's embedding space."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class VectorIndex:
    """An index of one encoder's vectors, as of ``mark`` in the database's change log."""

    index: Any  # faiss.IndexIVFScalarQuantizer, ids = face ids
    encoder: str  # identity_key
    dim: int
    mark: Mark

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    def search(self, query: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        """The ids of the ``m`` faces nearest to ``query`` (-1 pads) and their approximate
        squared distances, nearest first. One thread: a single query gains nothing from
        more and would wait for them."""
        import faiss

        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            sims, ids = self.index.search(np.asarray(query, np.float32).reshape(1, -1), m)
        finally:
            faiss.omp_set_num_threads(threads)
        return ids[0], 2.0 - 2.0 * np.clip(sims[0], -1.0, 1.0)  # pads: -1, distance 4

    def replace(self, removed: np.ndarray, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Drop the faces ``removed`` and add ``vectors`` under ``ids`` (a face re-embedded
        is in both)."""
        if len(removed):
            self.index.remove_ids(np.asarray(removed, dtype=np.int64))
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, np.float32), ids)


def build(ids: np.ndarray, vectors: np.ndarray, encoder: str, mark: Mark) -> VectorIndex:
    """An index of ``vectors`` (unit length) under face ``ids``: about 4 sqrt(n) lists,
    trained on up to TRAIN_PER_LIST points each."""
    import faiss

    n, dim = vectors.shape
    nlist = max(1, min(int(4 * np.sqrt(n)), n // 39))
    index: Any = faiss.index_factory(dim, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = 10
    index.cp.max_points_per_centroid = TRAIN_PER_LIST
    index.cp.min_points_per_centroid = 1  # no warning on stderr for a small library
    sample = vectors
    if n > TRAIN_PER_LIST * nlist:
        pick = np.random.default_rng(0).choice(n, TRAIN_PER_LIST * nlist, replace=False)
        sample = vectors[np.sort(pick)]
    index.train(np.ascontiguousarray(sample, np.float32))
    for i in range(0, n, 200_000):
        index.add_with_ids(
            np.ascontiguousarray(vectors[i : i + 200_000], np.float32),
            np.asarray(ids[i : i + 200_000], np.int64),
        )
    index.nprobe = max(1, nlist // PROBE_DIVISOR)
    return VectorIndex(index, encoder, dim, mark)


def is_ours(path: Path) -> bool:
    """Whether ``path`` is a regular file facecluster wrote as an index (not a link)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def may_write(path: Path) -> bool:
    """Whether an index may be written at ``path``: nothing is there, or an index of ours,
    and the folder is writable."""
    if os.path.lexists(path) and not is_ours(path):
        return False
    return os.access(path.parent, os.W_OK)


def _read(path: Path, body: bool = False) -> tuple[dict[str, Any], bytes] | None:
    """The header of the index of ours at ``path`` and, with ``body``, the serialized index
    after it; None when there is none (missing, not a regular file, not ours, unreadable)."""
    if not is_ours(path):
        return None
    try:
        with open(path, "rb") as f:
            f.read(len(MAGIC))
            head = json.loads(f.readline(4096))
            data = f.read() if body else b""
    except (OSError, ValueError):
        return None
    return (head, data) if isinstance(head, dict) else None


def read_head(path: Path) -> dict[str, Any] | None:
    """The header of the index at ``path`` (what it covers), unchecked; None when there is
    no index of ours there."""
    read = _read(path)
    head = read[0] if read else None
    return head if head is not None and "seq" in head and "tag" in head else None


def load(path: Path, encoder: str, dim: int) -> VectorIndex | None:
    """The index at ``path`` when it is ours, whole and of this encoder; None otherwise
    (missing, damaged, truncated, of another encoder or format, or not ours)."""
    read = _read(path, body=True)
    if read is None:
        return None
    head, data = read
    import faiss
    try:
        if (
            head.get("format") != FORMAT
            or head.get("encoder") != encoder
            or head.get("dim") != dim
            or head.get("bytes") != len(data)
            or head.get("crc32") != zlib.crc32(data)
        ):
            return None
        index: Any = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        mark = (int(head["seq"]), int(head["tag"]))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, MemoryError):
        return None
    if index.d != dim or index.ntotal != head.get("count"):
        return None
    index.nprobe = max(1, int(index.nlist) // PROBE_DIVISOR)
    return VectorIndex(index, encoder, dim, mark)


def save(path: Path, vi: VectorIndex) -> bool:
    """Write ``vi`` at ``path`` atomically (a new temporary file, then a rename); False,
    writing nothing, when a file that is not ours is there or the write fails."""
    import faiss

    if not may_write(path):
        return False
    data = faiss.serialize_index(vi.index).tobytes()
    head = {
        "format": FORMAT,
        "encoder": vi.encoder,
        "dim": vi.dim,
        "seq": vi.mark[0],
        "tag": vi.mark[1],
        "count": vi.count,
        "bytes": len(data),
        "crc32": zlib.crc32(data),
    }
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + json.dumps(head).encode() + b"\n")
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        if not may_write(path):  # a file of the user's appeared meanwhile
            raise OSError("not ours")
        os.replace(tmp, path)
        return True
    except OSError:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        return False
