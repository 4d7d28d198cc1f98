"""Identification: the indexed photos nearest to a query embedding: exact (vectorised) for
small libraries, through find's index file (findindex.py) for large ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import findindex, vector_log

if TYPE_CHECKING:
    from .cache import FaceCache

PATCH_AT = 2_000  # more faces changed since the index file: find patches it (and saves it)


@dataclass(frozen=True)
class Hit:
    photo: str
    distance: float  # squared L2 between unit vectors
    index: int  # row of the matching face in the searched matrix


def nearest_photos(
    query: np.ndarray,
    vectors: np.ndarray,
    photos: Sequence[str],
    k: int = 10,
    threshold: float = 4.0,
    chunk: int = 262_144,
) -> list[Hit]:
    """The ``k`` photos whose best face is nearest to ``query``, nearest first, within
    ``threshold``. One matrix-vector product per chunk and a partial sort: 0.1 s for a
    million 128-D faces on this 2-core machine (``bench/find.py``); memory is the matrix."""
    if len(vectors) == 0:
        return []
    q = np.asarray(query, np.float32)
    dist = np.empty(len(vectors), np.float32)
    for i in range(0, len(vectors), chunk):
        dist[i : i + chunk] = 2.0 - 2.0 * (vectors[i : i + chunk] @ q)
    np.clip(dist, 0.0, 4.0, out=dist)
    # Sort only the nearest few (a photo can hold several matching faces); fall back to a
    # full sort in the rare case that they hold fewer than k distinct photos.
    m = min(len(dist), max(8 * k, 64))
    while True:
        cand = np.argpartition(dist, m - 1)[:m] if m < len(dist) else np.arange(len(dist))
        hits = _distinct(cand[np.argsort(dist[cand], kind="stable")], dist, photos, k, threshold)
        if len(hits) >= k or m == len(dist) or dist[cand].max() > threshold:
            return hits
        m = len(dist)


def _distinct(
    order: np.ndarray, dist: np.ndarray, photos: Sequence[str], k: int, threshold: float
) -> list[Hit]:
    hits: list[Hit] = []
    seen: set[str] = set()
    for i in order:
        d = float(dist[i])
        if d > threshold or len(hits) >= k:
            break
        if photos[i] in seen:
            continue
        seen.add(photos[i])
        hits.append(Hit(photos[i], d, int(i)))
    return hits


@dataclass(frozen=True)
class FaceHit:
    face_id: int
    photo: str
    distance: float


class FaceSearch:
    """find's search of one encoder's faces in one database: exact below
    ``min_faces`` faces, else through the index file beside it (findindex.py), written
    when missing or unusable and the folder allows. Every answer is ranked on the
    database's vectors as they are now."""

    def __init__(
        self,
        cache: FaceCache,
        encoder_id: int,
        identity: dict[str, object],
        *,
        min_faces: int | None = None,
    ) -> None:
        self.cache = cache
        self.encoder_id = encoder_id
        self.encoder = findindex.identity_key(identity)
        self.min_faces = findindex.MIN_FACES if min_faces is None else min_faces
        self.path = findindex.index_path(cache.path)
        self.index: findindex.VectorIndex | None = None
        self.used = "exact"  # how the last search was made: exact, index, built
        self._all: tuple[np.ndarray, np.ndarray] | None = None  # read by _ready

    def nearest(self, query: np.ndarray, k: int, threshold: float) -> list[FaceHit]:
        """The ``k`` photos nearest to ``query`` (within ``threshold``), nearest first,
        each with its nearest face."""
        q = np.asarray(query, np.float32)
        with vector_log.snapshot(self.cache):
            pending = self._ready()
            if self.index is None or pending is None:
                return self._exact(q, k, threshold)
            m = max(8 * k, 64)
            while True:
                ids, dist = self.index.search(q, m)
                found = ids[ids >= 0]
                cand = np.concatenate([found[~np.isin(found, pending)], pending])
                hits = self._rank(q, cand, k, threshold)
                if len(hits) >= k or len(found) < m or dist[-1] > threshold:
                    return hits
                if m >= 4096:
                    return self._exact(q, k, threshold)
                m *= 4

    def _ready(self) -> np.ndarray | None:
        """Make ``self.index`` current if one is worth having and return the faces changed
        since it (searched exactly); None for an exact search (a small library, or no
        index to be had: a folder that may not be written, a file that is not ours)."""
        enc = self.encoder_id
        dim = vector_log.dim(self.cache, enc)
        tries = [self.index] if self.index is not None else []
        for vi in [*tries, None]:
            vi = vi or findindex.load(self.path, self.encoder, dim)
            pending = _pending(self.cache, enc, vi)
            if vi is not None and pending is not None:
                self.index, self.used = vi, "index"
                if len(pending) > PATCH_AT:  # (no scan since?) patch it once, not per query
                    _patch(self.cache, enc, vi, pending)
                    findindex.save(self.path, vi)
                    return np.empty(0, np.int64)
                return pending
        self.index = None
        mark = vector_log.mark(self.cache, enc)
        if mark is None or not findindex.may_write(self.path):
            return None
        ids, vectors = self.cache.embeddings(enc)
        if len(ids) < self.min_faces:
            self._all = (ids, vectors)
            return None
        self.index = findindex.build(ids, vectors, self.encoder, mark)
        findindex.save(self.path, self.index)
        self.used = "built"
        return np.empty(0, np.int64)

    def _exact(self, q: np.ndarray, k: int, threshold: float) -> list[FaceHit]:
        self.used = "exact"
        ids, vectors = self._all or self.cache.embeddings(self.encoder_id)
        self._all = None
        if len(ids) == 0:
            return []
        dist = 2.0 - 2.0 * (vectors @ q)
        m = min(len(ids), max(8 * k, 64))
        while True:
            part = np.argpartition(dist, m - 1)[:m] if m < len(ids) else np.arange(len(ids))
            hits = self._rank(q, ids[part], k, threshold)
            if len(hits) >= k or m == len(ids) or dist[part].max() > threshold:
                return hits
            m = min(len(ids), 4 * m)

    def _rank(self, q: np.ndarray, cand: np.ndarray, k: int, threshold: float) -> list[FaceHit]:
        ids, photos, vectors = vector_log.faces_with_vectors(self.cache, self.encoder_id, cand)
        return [
            FaceHit(int(ids[h.index]), h.photo, h.distance)
            for h in nearest_photos(q, vectors, photos, k=k, threshold=threshold)
        ]


def _pending(
    cache: FaceCache, encoder_id: int, vi: findindex.VectorIndex | None
) -> np.ndarray | None:
    """The faces changed since ``vi`` was written; None when it is not of this database's
    history (its mark is gone) or so much changed that rebuilding it pays."""
    if vi is None or not vector_log.has_mark(cache, encoder_id, vi.mark):
        return None
    limit = max(20_000, vi.count // 10)
    return vector_log.changed_since(cache, encoder_id, vi.mark[0], limit)


def _patch(
    cache: FaceCache, encoder_id: int, vi: findindex.VectorIndex, changed: np.ndarray
) -> None:
    """Bring ``vi`` up to the database's newest change: the faces ``changed`` since it
    replaced by their vectors now (none for a removed face)."""
    now = vector_log.mark(cache, encoder_id)
    ids, _, vectors = vector_log.faces_with_vectors(cache, encoder_id, changed)
    vi.replace(changed, ids, vectors)
    if now is not None:
        vi.mark = now


def refresh_index(
    cache: FaceCache,
    encoder_id: int,
    identity: dict[str, object],
    *,
    min_faces: int | None = None,
) -> str:
    """After a scan's commits (writer lock held): bring the index file up to date (add and
    drop the faces changed since it), write it when the library has grown past
    ``min_faces``, and forget the change log it no longer needs. Returns what it did:
    'updated', 'built' or 'none'. An index it cannot write is left to find."""
    enc = encoder_id
    path = findindex.index_path(cache.path)
    key = findindex.identity_key(identity)
    did, kept = "none", None  # kept: the mark of this encoder's index file
    with vector_log.snapshot(cache):
        now = vector_log.mark(cache, enc)
        if now is None:
            return did
        head = findindex.read_head(path)
        if head is not None and head.get("encoder") == key and (head["seq"], head["tag"]) == now:
            kept = now  # up to date: nothing more to read
        else:
            patched = False
            vi = findindex.load(path, key, vector_log.dim(cache, enc))
            if vi is not None and vector_log.has_mark(cache, enc, vi.mark):
                kept = vi.mark
                changed = vector_log.changed_since(cache, enc, vi.mark[0])
                assert changed is not None
                if len(changed) <= max(vi.count // 2, 1000):  # else rebuilding is cheaper
                    _patch(cache, enc, vi, changed)
                    patched = True
                    if findindex.save(path, vi):
                        did, kept = "updated", now
            least = findindex.MIN_FACES if min_faces is None else min_faces
            if not patched and findindex.may_write(path) and vector_log.count(cache, enc) >= least:
                ids, vectors = cache.embeddings(enc)
                if findindex.save(path, findindex.build(ids, vectors, key, now)):
                    did, kept = "built", now
    vector_log.forget_changes(cache, enc, (kept or now)[0])
    return did
