"""The scan on a Ray cluster (``scan --engine ray``): the driver walks, plans against the
index and is the only writer of the database, as in a local scan (indexer.py); the photos
to read go to the cluster as a Ray Data pipeline (ray_work.py: read + hash + decode +
detect + align in CPU actors, embed in actors, one per GPU) and come back as faces and
vectors, committed in batches as they arrive. Ray is imported only here, only when asked."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import sys
import time
from collections.abc import Generator, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cache import STATUS_NO_FACE, STATUS_OK, AddEmbeddings, MovePhoto, Op, PhotoWrite
from .errors import FaceclusterError
from .feed import Job
from .indexer import Indexer, Item
from .ray_work import Embed, EmbeddedPhoto, KnownDigests, Loader, Prepare, unpack
from .ray_work import Job as RayJob
from .records import DecodedPhoto, Failure, PhotoSize, ReadPhoto
from .stages import read_photo

if TYPE_CHECKING:
    from .encoders import EncoderSpec

INSTALL = "pip install 'facecluster[ray]' (or: uv sync --extra ray)"
FIRST = 8  # results looked at to tell a worker that cannot see the photos


class RayUnavailable(FaceclusterError):
    """Ray is not installed, or the cluster cannot be reached or fails (exit 2)."""


def import_ray() -> Any:
    """The ray module, with its logs kept out of facecluster's output."""
    # Under `uv run` (the README's way to start facecluster) Ray would start its workers
    # with `uv run` in a copy of the working folder: a fresh environment without Ray, torch
    # or facecluster, so no worker ever starts. The workers of a local Ray must use this
    # interpreter; a cluster's nodes use their own installs. Read by Ray at import.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # its C++ notes on stderr
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    try:
        import ray
        import ray.data
    except ImportError:
        raise RayUnavailable(f"--engine ray needs Ray: {INSTALL}") from None
    for name in ("ray", "ray.data", "ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.verbose_stats_logs = False
    return ray


def indexer_for(
    engine: str,
    spec: EncoderSpec,
    weights: Path | None,
    address: str | None,
    detector: str = "mtcnn",
) -> tuple[type[Indexer], dict[str, Any]]:
    """The indexer of ``engine`` ('local' or 'ray') and what it needs besides the local
    one's arguments; the workers load ``detector``, the database's. Without Ray installed,
    'ray' is one line that says how to get it."""
    from .api import load_models

    if engine == "local":
        return Indexer, {}
    if engine != "ray":
        raise FaceclusterError(f"--engine must be local or ray, not {engine!r}")
    import_ray()  # before anything is read
    load = partial(load_models, spec, weights, detector=detector)
    return RayIndexer, {"remote_models": load, "address": address}


def connect(address: str | None) -> bool:
    """Join the cluster at ``address`` ('auto', 'ray://host:10001', host:port), or start a
    local Ray when None; True when this call started (and must shut down) Ray."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    try:
        with _stderr_to_devnull():  # Ray's C++ core notes its log level there, once
            ray.init(
                address=address or None,
                log_to_driver=False,
                logging_level=logging.ERROR,
                include_dashboard=False,
            )
    except Exception as exc:
        where = f"at {address}" if address else "on this machine"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RayUnavailable(f"cannot start or reach a Ray cluster {where}: {first}") from None
    return True


@contextlib.contextmanager
def _stderr_to_devnull() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def actors(cpus: int, gpus: int) -> tuple[int, int, str]:
    """How many prepare (CPU) and embed actors, and the embed device: one embed actor per
    GPU and the CPUs for the rest; without GPUs one CPU in four embeds (at least one)."""
    if gpus:
        return max(1, cpus - gpus), gpus, "cuda"
    embed = max(1, cpus // 4)
    return max(1, cpus - embed), embed, "cpu"


def cannot_read(results: list[Item]) -> Failure | None:
    """The first failure when every one of the first results is a file the worker could
    not read though the driver can: the nodes do not see the photos (no shared disk)."""
    if not results or any(
        not (isinstance(r, Failure) and r.error.startswith("cannot read")) for _, _, r in results
    ):
        return None
    first = results[0][2]
    assert isinstance(first, Failure)
    return first if os.access(first.path, os.R_OK) else None


class RayIndexer(Indexer):
    """An Indexer whose photos are read and go through the models on a Ray cluster.
    ``remote_models(device)`` loads (detector, encoder) in a worker (api.load_models)."""

    def __init__(
        self, *args: Any, remote_models: Loader, address: str | None = None, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.remote_models = remote_models
        self.address = address

    def _feed(self, jobs: list[Job], window: int) -> Generator[Item, None, None]:
        self._report("starting ray")
        started = time.perf_counter()
        shutdown = connect(self.address)
        import ray

        try:
            resources = ray.cluster_resources()
            cpus, gpus = int(resources.get("CPU", 1)), int(resources.get("GPU", 0))
            n_prep, n_embed, device = actors(cpus, gpus)
            nodes = len([n for n in ray.nodes() if n.get("Alive")])
            self.stats.device = f"ray: {nodes} node{'s' * (nodes != 1)}, {cpus} CPUs, {gpus} GPUs"
            self._tick("ray start-up", started)
            yield from self._stream(ray, jobs, n_prep, n_embed, device)
        finally:
            if shutdown:
                ray.shutdown()

    def _stream(
        self, ray: Any, jobs: list[Job], n_prep: int, n_embed: int, device: str
    ) -> Generator[Item, None, None]:
        known = self._known  # planner.known_digests, as the local feed uses it
        counts = KnownDigests({d: len(paths) for d, paths in known.items()})
        todo = []
        for entry, photo_id in jobs:
            path = str(entry.path)
            row = self._index.get(path)
            mine = row is not None and path in known.get(row.digest or "", ())
            own = row.digest if mine and row is not None else None
            faces = None if photo_id is None else [s.face for s in self.cache.faces_of(photo_id)]
            todo.append(RayJob(entry, photo_id, own, faces))
        size = self.batch_size
        groups = [todo[i : i + size] for i in range(0, len(todo), size)]
        ds = ray.data.from_items([{"item": pickle.dumps(g)} for g in groups])
        ds = ds.map_batches(
            Prepare,
            fn_constructor_kwargs={
                "load": self.remote_models,
                "known": counts,
                "min_face": self.min_face,
                "side": self.detect_side,
            },
            batch_size=1,
            concurrency=n_prep,
            num_cpus=1,
            batch_format="numpy",
        )
        ds = ds.map_batches(
            Embed,
            fn_constructor_kwargs={"load": self.remote_models, "device": device},
            batch_size=1,
            concurrency=n_embed,
            num_cpus=1 if device == "cpu" else 0,
            num_gpus=1 if device != "cpu" else 0,
            batch_format="numpy",
        )
        first: list[Item] = []
        limit = min(FIRST, len(jobs))
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                for item in (i for group in unpack(batch) for i in group):
                    res = item[2]
                    if isinstance(res, EmbeddedPhoto):
                        for stage, seconds in res.timings.items():
                            self._add(stage, seconds)
                    if len(first) == limit:
                        yield item
                        continue
                    first.append(item)  # held back until they are checked
                    if len(first) == limit:
                        if bad := cannot_read(first):
                            raise RayUnavailable(
                                f"the Ray workers cannot read the photos ({bad.path}: "
                                f"{bad.error}): every node must see them at the same paths "
                                "(a shared filesystem)"
                            )
                        yield from first
        except (FaceclusterError, KeyboardInterrupt, GeneratorExit):
            raise
        except Exception as exc:
            if isinstance(exc, ray.exceptions.RayError):
                line = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
                raise RayUnavailable(
                    f"the Ray scan failed: {type(exc).__name__}: {line}"[:300]
                ) from None
            raise

    # -- the driver: what came back ------------------------------------------------------
    def _process(self, batch: list[Any]) -> None:
        """Photos the workers did are committed at once (one transaction); the rest (moves
        and copies, failures; rarely, a photo to decode here) as in a local scan."""
        ops: list[Op] = []
        boxes: list[tuple[DecodedPhoto | PhotoSize, list[list[float]]]] = []
        rest: list[Item] = []
        done = 0
        for entry, photo_id, res in batch:
            if isinstance(res, EmbeddedPhoto):
                reuse = None if photo_id is not None else self._reuse(entry, res.digest)
                if isinstance(reuse, MovePhoto) and not self._complete(reuse):
                    # A move whose faces lack this encoder's vectors: its stored faces are
                    # embedded here, as locally (rare: a move and a new model at once).
                    rest.append((entry, None, read_photo(entry)))
                    continue
                ops += self._embedded(res, photo_id, boxes)
                done += 1
            else:
                rest.append((entry, photo_id, res))
        if done:
            self._commit(ops + self._names(boxes), done)
        # Not decoded by the worker, its content being indexed (now): a move or a copy; if
        # it has no source after all, it is read and decoded here.
        rest = [
            (e, i, read_photo(e))
            if isinstance(r, ReadPhoto) and not self._reuse(e, r.digest)
            else (e, i, r)
            for e, i, r in rest
        ]
        if rest:
            super()._process(rest)

    def _embedded(
        self,
        res: EmbeddedPhoto,
        photo_id: int | None,
        boxes: list[tuple[DecodedPhoto | PhotoSize, list[list[float]]]],
    ) -> list[Op]:
        entry = res.entry
        if photo_id is not None:  # its stored faces, embedded by this encoder
            ids = [s.id for s in self.cache.faces_of(photo_id)]
            self.stats.photos_reembedded += 1
            self.stats.embeddings_computed += len(ids)
            self._photo_done()
            return [AddEmbeddings(ids, res.vectors)]
        size = PhotoSize(entry, res.width, res.height, res.xmp_regions)
        reuse = self._reuse(entry, res.digest)
        if reuse is not None:  # content indexed already (a copy found by both workers...)
            op = self._reused(reuse, entry)
            boxes.append((size, self._boxes(reuse)))
            self._photo_done()
            return [op]
        self._count_read(entry)
        self.stats.faces_new += len(res.faces)
        self.stats.no_face += 0 if res.faces else 1
        self.stats.embeddings_computed += len(res.faces)
        boxes.append((size, [f.box.tolist() for f in res.faces]))
        self._photo_done()
        status = STATUS_OK if res.faces else STATUS_NO_FACE
        return [
            PhotoWrite(entry, res.digest, res.width, res.height, status, res.faces, res.vectors)
        ]
