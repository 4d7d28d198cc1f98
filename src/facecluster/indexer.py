"""The scan pipeline: walk -> read + hash, decode only new content (thread pool: feed.py)
-> detect (batched) -> align + embed -> commit, one transaction per batch. Interrupted at
any point, it loses at most the batch in flight; the next scan resumes where it stopped."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator, Sequence
from pathlib import Path

import numpy as np

from . import config
from .cache import (
    STATUS_FAILED,
    STATUS_NO_FACE,
    STATUS_OK,
    AddEmbeddings,
    CopyPhoto,
    FaceCache,
    MovePhoto,
    Op,
    PhotoRow,
    PhotoWrite,
)
from .detect import FaceDetector
from .encoders import Encoder
from .feed import Job, Loaded, feed
from .memory import keep_freed_buffers
from .planner import Plan, known_digests, plan, prune
from .records import (
    DecodedPhoto,
    Face,
    Failure,
    FileEntry,
    PhotoSize,
    ReadPhoto,
    ScanProgress,
    ScanStats,
)
from .scan import walk
from .stages import decode_photo, detected_runs, face_chips, model_runs
from .xmp_import import XmpReader

ProgressFn = Callable[[ScanProgress], None]
ModelLoader = Callable[[], tuple[FaceDetector, Encoder]]
Item = tuple[FileEntry, int | None, Loaded]


class Indexer:
    """Scans trees into a FaceCache.

    ``identity`` is the encoder's identity (see ``encoders.encoder_identity``);
    ``load_models`` returns (detector, encoder) and is only called when some photo actually
    needs a model, so an unchanged re-scan costs a walk and a few queries.
    """

    def __init__(
        self,
        cache: FaceCache,
        identity: dict[str, object],
        load_models: ModelLoader,
        *,
        batch_size: int = config.DEFAULT_BATCH_SIZE,
        workers: int | None = None,
        min_face: int = config.DEFAULT_MIN_FACE,
        follow_symlinks: bool = False,
        rescan: bool = False,
        retry_failed: bool = False,
        progress: ProgressFn | None = None,
        read_xmp: bool = True,
        detect_side: int = config.DETECT_MAX_SIDE,
    ) -> None:
        self.cache = cache
        self.identity = identity
        self._load_models = load_models
        self._models: tuple[FaceDetector, Encoder] | None = None
        self.batch_size = max(1, batch_size)
        self.workers = workers or config.default_workers()
        self.min_face, self.detect_side = min_face, detect_side
        self.follow_symlinks = follow_symlinks
        self.rescan = rescan
        self.retry_failed = retry_failed
        self.progress = progress
        self.xmp = XmpReader() if read_xmp else None  # names in the photos' XMP
        self.encoder_id = 0
        self.stats = ScanStats(model=str(identity["name"]))
        self._plan = Plan()
        self._moved: set[int] = set()
        self._index: dict[str, PhotoRow] = {}
        self._missing: set[int] = set()
        self._known: dict[str, list[str]] = {}  # digest -> paths: see ``_needs_decode``
        self._done = 0  # photos processed (reported one by one)
        self._saved = 0  # of those, committed

    @property
    def models(self) -> tuple[FaceDetector, Encoder]:
        if self._models is None:
            self._report("loading models")
            self._models = self._load_models()
            self.stats.device = str(getattr(self._models[0], "device", "cpu"))
        return self._models

    def scan(self, roots: Sequence[Path]) -> ScanStats:
        """Index every photo under ``roots``. Holds the database lock for the whole scan."""
        start = time.perf_counter()
        roots = [Path(os.path.abspath(os.path.expanduser(r))) for r in roots]
        self.cache.lock()
        try:
            self.encoder_id = self.cache.encoder_id(self.identity) or 0
            self._index = index = self.cache.photo_index()
            self._missing = missing = self.cache.photos_missing_embeddings(self.encoder_id)
            self._tick("read index", start)
            started = time.perf_counter()
            unavailable: list[Failure] = []
            found = walk(roots, self.follow_symlinks, unavailable)
            self._plan = plan(found, index, missing, self.rescan, self.retry_failed)
            self._tick("walk and compare", started)
            self.stats.photos_total = self._plan.total
            self.stats.photos_unchanged = self._plan.unchanged
            self.stats.photos_failed_unchanged = self._plan.failed_unchanged
            self._run()
            started = time.perf_counter()
            self._prune(roots, index, unavailable)
            self.stats.faces = self.cache.count_faces(self.encoder_id, [str(r) for r in roots])
            self._tick("prune and count", started)
        finally:
            self.cache.unlock()
        self.stats.seconds = time.perf_counter() - start
        return self.stats

    # -- pipeline -------------------------------------------------------------------------
    def _run(self) -> None:
        jobs: list[Job] = [(e, None) for e in self._plan.read]
        jobs += [(e, pid) for e, pid in self._plan.embed]
        if jobs:
            keep_freed_buffers()  # photo after photo in the same pages (memory.py)
        self._report()
        if not jobs:
            return
        self._known = known_digests(self._index, self._missing)
        window = self.workers * 2 + self.batch_size  # bounded: memory stays flat
        batch: list[tuple[FileEntry, int | None, Loaded]] = []
        loaded = self._feed(jobs, window)
        try:
            while True:
                waited = time.perf_counter()
                item = next(loaded, None)
                self._tick("wait for decode", waited)
                if item is None:
                    break
                if isinstance(item[2], DecodedPhoto):
                    self._add("decode (threads)", item[2].decode_seconds)
                batch.append(item)
                if len(batch) >= self.batch_size:
                    self._process(batch)
                    batch = []
            if batch:
                self._process(batch)
        finally:
            loaded.close()  # the threads stop at once, even when interrupted

    def _feed(self, jobs: list[Job], window: int) -> Generator[Item, None, None]:
        """Each job read (and decoded when needed): the seam an engine replaces."""
        return feed(jobs, self.workers, window, self._needs_decode, self.detect_side)

    def _needs_decode(self, photo: ReadPhoto, photo_id: int | None) -> bool:
        """Asked in job order once a file is read: its pixels are needed unless another
        file has its content with all its vectors, in the index or earlier in this scan
        (a wrong guess costs a decode later, in ``_process``, never a wrong result)."""
        self._add("read (threads)", photo.read_seconds)
        path = str(photo.entry.path)
        if photo_id is None and any(p != path for p in self._known.get(photo.digest, ())):
            return False
        self._known.setdefault(photo.digest, []).append(path)
        return True

    def _process(self, batch: list[tuple[FileEntry, int | None, Loaded]]) -> None:
        """One batch: failures, moves and copies need no model and are done at once; the
        others go through the models in chunks (``_chunks``), each photo reported when its
        faces are known; the whole batch is committed in one transaction at the end. A copy
        of a photo decoded in this batch waits for that commit and is copied after it."""
        ops: list[Op] = []
        detect: list[DecodedPhoto] = []
        reembed: list[tuple[DecodedPhoto, int]] = []
        boxes: list[tuple[DecodedPhoto | PhotoSize, list[list[float]]]] = []  # for XMP names
        decoded: set[str] = set()
        held: list[tuple[FileEntry, int | None, Loaded]] = []
        for entry, photo_id, res in batch:
            if isinstance(res, ReadPhoto):
                if res.digest in decoded:
                    held.append((entry, photo_id, res))
                    continue
                reuse = self._reuse(res.entry, res.digest)
                if reuse is None or (isinstance(reuse, MovePhoto) and not self._complete(reuse)):
                    started = time.perf_counter()
                    res = decode_photo(res, self.detect_side)  # needed after all
                    self._tick("decode (main thread)", started)
                else:
                    size = self.cache.photo_sizes([_source(reuse)]).get(_source(reuse), (0, 0))
                    ops.append(self._reused(reuse, entry))
                    boxes.append((PhotoSize(entry, *size, res.xmp_regions), self._boxes(reuse)))
                    self._photo_done()
                    continue
            if isinstance(res, Failure):
                self.stats.photos_failed += 1
                before = self._index.get(str(entry.path))
                if before is not None and before.status != STATUS_FAILED:
                    # It read fine before: keep its faces (and the names on them) and its
                    # old size and time, so the next scan tries it again.
                    res = Failure(res.path, f"{res.error} (kept what the last scan found)")
                else:
                    ops.append(PhotoWrite(entry, None, None, None, STATUS_FAILED, error=res.error))
                self.stats.failures.append(res)
                self._photo_done()
                continue
            decoded.add(res.digest)
            if photo_id is not None:
                reembed.append((res, photo_id))
                continue
            reuse = self._reuse(res.entry, res.digest)
            if reuse is None:
                self._count_read(entry)
                detect.append(res)
                continue
            ops.append(self._reused(reuse, entry))
            if isinstance(reuse, MovePhoto) and not self._complete(reuse):
                reembed.append((res, reuse.photo_id))
            else:
                boxes.append((res, self._boxes(reuse)))
                self._photo_done()
        runs, timings = self._runs(detect), self.stats.timings
        detector = self.models[0] if runs else None  # no model loaded for nothing to detect
        for a, b, found in detected_runs(detector, detect, runs, self.min_face, timings):
            ops += self._embed_found(detect[a:b], found, boxes)
        for a, b in self._runs([photo for photo, _ in reembed]):
            ops += self._reembed(reembed[a:b])
        self._commit(ops + self._names(boxes), len(batch) - len(held))
        if held:
            self._process(held)

    def _runs(self, photos: list[DecodedPhoto]) -> list[tuple[int, int]]:
        """Runs of ``photos`` that go through the models together (stages.model_runs)."""
        if not photos:
            return []
        self.models  # noqa: B018  (loaded now: the device decides)
        return model_runs(photos, self.stats.device == "cpu")

    def _embed_found(
        self,
        photos: list[DecodedPhoto],
        found: list[list[Face]],
        boxes: list[tuple[DecodedPhoto | PhotoSize, list[list[float]]]],
    ) -> list[Op]:
        encoder = self.models[1]
        started = time.perf_counter()
        chips: list[np.ndarray] = []
        for photo, faces in zip(photos, found, strict=True):
            chips += face_chips(encoder, photo, faces)
        self._tick("align", started)
        vectors = self._embed(encoder, chips)
        ops: list[Op] = []
        at = 0
        for photo, faces in zip(photos, found, strict=True):
            vecs = vectors[at : at + len(faces)]
            at += len(faces)
            status = STATUS_OK if faces else STATUS_NO_FACE
            self.stats.faces_new += len(faces)
            self.stats.no_face += 0 if faces else 1
            ops.append(
                PhotoWrite(
                    photo.entry, photo.digest, photo.width, photo.height, status, faces, vecs
                )
            )
            boxes.append((photo, [f.box.tolist() for f in faces]))
            self._photo_done()
        return ops

    def _reembed(self, photos: list[tuple[DecodedPhoto, int]]) -> list[Op]:
        """Known faces (another encoder's, or a moved photo's) embedded by this encoder."""
        _, encoder = self.models
        started = time.perf_counter()
        chips: list[np.ndarray] = []
        stored = []
        for photo, photo_id in photos:
            known = self.cache.faces_of(photo_id)
            chips += face_chips(encoder, photo, [s.face for s in known])
            stored.append(known)
            self.stats.photos_reembedded += 1
        self._tick("align", started)
        vectors = self._embed(encoder, chips)
        ops: list[Op] = []
        at = 0
        for known in stored:
            ops.append(AddEmbeddings([s.id for s in known], vectors[at : at + len(known)]))
            at += len(known)
            self._photo_done()
        return ops

    def _embed(self, encoder: Encoder, chips: list[np.ndarray]) -> np.ndarray:
        started = time.perf_counter()
        vectors = encoder.embed(chips)
        self._tick("embed", started)
        self.stats.embeddings_computed += len(chips)
        return vectors

    def _names(self, photos: list[tuple[DecodedPhoto | PhotoSize, list[list[float]]]]) -> list[Op]:
        """The named face regions in the XMP of the photos read (and their face boxes)."""
        if self.xmp is None or not photos:
            return []
        started = time.perf_counter()
        ops: list[Op] = list(self.xmp.read(photos, self.stats))
        self._tick("xmp names", started)
        return ops

    def _commit(self, ops: list[Op], photos: int) -> None:
        started = time.perf_counter()
        self.cache.apply(ops, self.encoder_id)
        self._tick("database", started)
        self._saved += photos
        self._report()

    def _photo_done(self) -> None:
        self._done += 1
        self._report()

    def _tick(self, stage: str, started: float) -> None:
        self._add(stage, time.perf_counter() - started)

    def _add(self, stage: str, seconds: float) -> None:
        self.stats.timings[stage] = self.stats.timings.get(stage, 0.0) + seconds

    def _count_read(self, entry: FileEntry) -> None:
        if str(entry.path) in self._plan.new:
            self.stats.photos_new += 1
        else:
            self.stats.photos_changed += 1

    def _reuse(self, entry: FileEntry, digest: str) -> MovePhoto | CopyPhoto | None:
        """A photo whose content is already indexed: a move (old file gone) keeps its row
        and faces; a duplicate copies them. Either way no model runs (a moved photo whose
        faces lack this encoder's vectors is embedded: see ``_complete``)."""
        path = str(entry.path)
        rows = [r for r in self.cache.photos_with_digest(digest) if r.path != path]
        for row in rows:
            gone = row.path not in self._plan.seen and not os.path.exists(row.path)
            if gone and row.id not in self._moved:
                return MovePhoto(row.id, entry)
        for row in rows:
            if row.status == STATUS_NO_FACE or self.cache.has_embeddings(row.id, self.encoder_id):
                return CopyPhoto(row.id, entry)
        return None

    def _reused(self, reuse: MovePhoto | CopyPhoto, entry: FileEntry) -> MovePhoto | CopyPhoto:
        """Count a move or a copy ``_reuse`` found, as it is done."""
        if isinstance(reuse, MovePhoto):
            self._moved.add(reuse.photo_id)
            self.stats.photos_moved += 1
        else:
            self._count_read(entry)
        return reuse

    def _complete(self, move: MovePhoto) -> bool:
        return self.cache.has_embeddings(move.photo_id, self.encoder_id)

    def _boxes(self, reuse: MovePhoto | CopyPhoto) -> list[list[float]]:
        return [s.face.box.tolist() for s in self.cache.faces_of(_source(reuse))]

    def _prune(
        self, roots: Sequence[Path], index: dict[str, PhotoRow], unavailable: list[Failure]
    ) -> None:
        """Forget photos under the scanned roots that are no longer there, except under
        folders that could not be read or are empty: those are kept and reported."""
        gone, kept, self.stats.unavailable = prune(
            roots, index, self._plan.seen, self._moved, unavailable
        )
        if gone:
            self.cache.remove_photos(gone)
        self.stats.photos_removed = len(gone)
        self.stats.photos_unavailable = kept

    def _report(self, stage: str = "scanning") -> None:
        if self.progress is not None:
            total = len(self._plan.read) + len(self._plan.embed)
            s = self.stats
            self.progress(
                ScanProgress(self._done, total, s.faces_new, s.photos_failed, self._saved, stage)
            )


def _source(reuse: MovePhoto | CopyPhoto) -> int:
    return reuse.photo_id if isinstance(reuse, MovePhoto) else reuse.source_id
