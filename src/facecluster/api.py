"""The facecluster library: everything the command line does, as calls that return data.

    from facecluster import FaceIndex

    with FaceIndex("faces.db") as index:
        stats = index.scan(["~/Photos"])          # ScanStats
        result = index.group()                     # GroupResult: persons, changes
        index.people.rename(result.grouping.persons[0].id, "Anna")
        hits = index.find("query.jpg", k=5)        # nearest photos

Nothing here prints or exits: results are records (facecluster.records, group.GroupResult)
and failures are :class:`facecluster.errors.FaceclusterError` subclasses. The CLI is a
thin layer over these calls (docs/api.md).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import config
from .errors import DiskFull, EmptyCache, FaceclusterError, NoFaceError
from .pathcodec import shown
from .records import Face, Match, ScanProgress, ScanStats, Verification

if TYPE_CHECKING:
    from .cache import FaceCache
    from .cluster import GroupSettings
    from .detect import FaceDetector as Detector
    from .encoders import Encoder, EncoderSpec, EncoderStatus
    from .group import GroupResult
    from .labelled import LabelledFaces
    from .people import People
    from .search import FaceSearch

PathLike = str | os.PathLike[str]


def model_spec(model: str | EncoderSpec = "auto", weights: PathLike | None = None) -> EncoderSpec:
    """The encoder ``model`` means here: 'auto' (the best one available offline), a
    built-in name, a trained model (``BASE+NAME`` or a ``.pt`` file), or a spec."""
    from .encoders import encoder_spec

    return encoder_spec(model, _path(weights))


def load_models(
    model: str | EncoderSpec = "auto",
    weights: PathLike | None = None,
    device: str = "auto",
    detector: str = "auto",
) -> tuple[Detector, Encoder]:
    """The face detector ('auto': detect.AUTO_DETECTOR, 'mtcnn', 'yunet') and the
    encoder, on ``device`` ('auto': CUDA, MPS, then CPU)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts: see cli.main
    from .detect import load_detector, resolve_device
    from .encoders import load_encoder

    dev = resolve_device(device)
    _check_device(dev)
    return load_detector(detector, dev), load_encoder(model, _path(weights), dev)


def check_paths(paths: Sequence[PathLike]) -> list[Path]:
    """The paths to scan, expanded; FaceclusterError for the first one that is missing."""
    roots = [Path(p).expanduser() for p in paths]
    for root in roots:
        if not root.exists():
            raise FaceclusterError(f"no such file or directory: {shown(root)}")
    return roots


def embed_photo(
    photo: PathLike, detector: Detector, encoder: Encoder
) -> tuple[list[Face], np.ndarray]:
    """Every face of one photo (largest first) and its embedding. Raises ImageError for a
    file that cannot be read and NoFaceError when it has no face."""
    from .stages import embed_file

    path = Path(photo).expanduser()
    if not path.is_file():
        raise FaceclusterError(f"no such file: {shown(path)}")
    _, faces, vectors = embed_file(path, detector, encoder)
    if not faces:
        raise NoFaceError(f"no face found in {shown(path)}")
    order = sorted(range(len(faces)), key=lambda i: -faces[i].area)
    return [faces[i] for i in order], vectors[order]


def verify(
    photo_a: PathLike,
    photo_b: PathLike,
    *,
    model: str | EncoderSpec = "auto",
    weights: PathLike | None = None,
    device: str = "auto",
    threshold: float | None = None,
    face: int = 1,
    models: tuple[Detector, Encoder] | None = None,
) -> Verification:
    """Are the ``face``-th largest faces (1 = largest) of two photos the same person?
    ``models``: a (detector, encoder) pair already loaded (``load_models``)."""
    spec = model_spec(model, weights)
    t = spec.default_threshold if threshold is None else threshold
    detector, encoder = models or load_models(spec, weights, device)
    picked = []
    for photo in (photo_a, photo_b):
        faces, vectors = embed_photo(photo, detector, encoder)
        if face > len(faces):
            raise NoFaceError(
                f"{shown(photo)} has {len(faces)} face(s); face {face} does not exist"
            )
        picked.append((faces[face - 1], vectors[face - 1]))
    (fa, va), (fb, vb) = picked
    distance = float(max(0.0, 2.0 - 2.0 * float(va @ vb)))
    return Verification(distance <= t, distance, t, spec.name, fa, fb)


class FaceIndex:
    """One face database (SQLite) seen through one encoder.

    ``model`` is an encoder name ('auto', 'dlib-resnet', a trained model file...);
    ``detector``: 'auto' (the database's own, else detect.AUTO_DETECTOR) or a name, refused
    (DetectorMismatch) when the database's faces were found by another;
    ``create=False`` refuses a database that does not exist yet (EmptyCache);
    ``write=False`` opens it read-only when it cannot be written (reading commands);
    ``check``: run SQLite's quick check on open (None: when the file is small)."""

    def __init__(
        self,
        db: PathLike | None = None,
        *,
        model: str | EncoderSpec = "auto",
        weights: PathLike | None = None,
        device: str = "auto",
        detector: str = "auto",
        create: bool = True,
        write: bool = True,
        check: bool | None = None,
    ) -> None:
        from .cache import FaceCache

        self.path = Path(db).expanduser() if db is not None else config.default_db_path()
        self.weights = _path(weights)
        self.asked = model if isinstance(model, str) else model.name
        self.spec = model_spec(model, self.weights)
        self.model = self.spec.name
        self.device, self.asked_detector = device, detector
        self.cache: FaceCache = FaceCache(self.path, create=create, write=write, check=check)
        self._models: tuple[Detector, Encoder] | None = None
        self._search: FaceSearch | None = None

    def close(self) -> None:
        self.cache.close()

    def __enter__(self) -> FaceIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- models ---------------------------------------------------------------------------
    @property
    def identity(self) -> dict[str, object]:
        """What names the encoder's embedding space (weights hash, preprocessing)."""
        from .encoders import encoder_identity

        return encoder_identity(self.spec, self.weights)

    def fallback_notice(self) -> str | None:
        """Why 'auto' did not pick its first choice, the first time that happens with this
        database; None after that (it is remembered in the database) or when it did."""
        from .encoders import AUTO, ENCODERS
        from .encoders.facenet_paths import missing_message

        if self.asked != "auto" or self.model == AUTO[0] or self.cache.readonly:
            return None
        key = f"notice:auto {AUTO[0]} -> {self.model}"
        if self.cache.note(key) is not None:
            return None
        self.cache.set_note(key, str(int(time.time())))
        return missing_message(AUTO[0], ENCODERS.get(AUTO[0]).variant)

    @property
    def threshold(self) -> float:
        """The encoder's calibrated same/different threshold (squared L2)."""
        return self.spec.default_threshold

    @property
    def detector(self) -> str:
        """The detector this database's faces are (to be) found by."""
        from .detect import database_detector

        return database_detector(self.cache, self.asked_detector)

    def models(self) -> tuple[Detector, Encoder]:
        """Detector and encoder, loaded on first use."""
        if self._models is None:
            self._models = load_models(self.spec, self.weights, self.device, self.detector)
        return self._models

    @property
    def encoder_id(self) -> int:
        """The database's id of this encoder; EmptyCache when it holds none of its faces."""
        enc = self.cache.encoder_id(self.identity, register=False)
        if enc is None:
            others = [name for _, name, _, n in self.cache.encoders() if n]
            hint = (
                f" (it has {', '.join(others)} faces: a scan adds {self.model}'s vectors to "
                "them without detecting again, and the persons and names carry over; or pass "
                f"--model {others[0]})"
                if others
                else ""
            )
            raise EmptyCache(
                f"the database has no {self.model} faces: run 'facecluster scan PATH' first"
                + hint
            )
        return enc

    # -- scan -----------------------------------------------------------------------------
    def scan(
        self,
        paths: Sequence[PathLike],
        *,
        batch_size: int = config.DEFAULT_BATCH_SIZE,
        workers: int | None = None,
        min_face: int = config.DEFAULT_MIN_FACE,
        follow_symlinks: bool = False,
        rescan: bool = False,
        retry_failed: bool = False,
        progress: Callable[[ScanProgress], None] | None = None,
        engine: str = "local",
        ray_address: str | None = None,
    ) -> ScanStats:
        """Detect, align and embed every face under ``paths`` into the database; only new
        or changed photos are read (and photos that failed before only with
        ``retry_failed``). ``progress`` is called once per photo (records.ScanProgress).
        ``engine`` 'ray' reads and runs the models on the Ray cluster at ``ray_address``
        (ray_engine.py). Takes the writer lock (CacheLocked if held)."""
        from .detect import database_detector, detect_side
        from .ray_engine import indexer_for
        from .scan_stop import SavedProgress, disk_full_or
        from .search import refresh_index

        roots = check_paths(paths)
        self.cache.lock()  # before anything slow: a second scan is refused at once
        saved = SavedProgress(progress)
        try:
            detector = database_detector(self.cache, self.asked_detector, record=True)
            kind, extra = indexer_for(engine, self.spec, self.weights, ray_address, detector)
            indexer = kind(
                self.cache,
                self.identity,
                self.models,
                **extra,
                batch_size=batch_size,
                workers=workers,
                min_face=min_face,
                follow_symlinks=follow_symlinks,
                rescan=rescan,
                retry_failed=retry_failed,
                progress=saved,
                detect_side=detect_side(detector),
            )
            stats = indexer.scan(roots)
            # find's index file only speeds find up: nothing fails for it (find rebuilds it)
            with contextlib.suppress(FaceclusterError, OSError, RuntimeError):
                refresh_index(self.cache, self.encoder_id, self.identity)
            carried = self.people.carry_over() if stats.faces else None
            if carried is not None:
                stats.persons_carried_from, stats.persons_carried = carried
            return stats
        except (DiskFull, OSError, sqlite3.Error) as exc:
            raise disk_full_or(exc, self.cache.path, saved) from exc
        finally:
            self.cache.unlock()

    def labelled(
        self, directory: PathLike, progress: Callable[[ScanProgress], None] | None = None
    ) -> LabelledFaces:
        """Scan a labelled folder (one sub-folder per identity; cached like any scan) and
        return the labelled face of each photo with its embedding (``eval``, ``train``)."""
        from .labelled import load_labelled

        root = Path(directory).expanduser()
        if not root.is_dir():
            raise FaceclusterError(f"no such folder: {shown(root)}")
        self.scan([root], progress=progress)
        return load_labelled(self.cache, self.encoder_id, root.resolve())

    # -- persons --------------------------------------------------------------------------
    def settings(self, **changes: Any) -> GroupSettings:
        """Grouping settings with this encoder's calibrated threshold, and ``changes``."""
        from .cluster import GroupSettings

        values: dict[str, Any] = {"threshold": self.threshold}
        values.update({k: v for k, v in changes.items() if v is not None})
        return GroupSettings(**values)

    def group(
        self, settings: GroupSettings | None = None, *, dry_run: bool = False, action: str = ""
    ) -> GroupResult:
        """Cluster the faces into persons, keeping ids, names and corrections; with
        ``dry_run`` only say what would change."""
        from .group import group_faces
        from .suggest import SUGGEST_FACTOR

        settings = settings or self.settings()
        enc = self.encoder_id
        if not dry_run:
            self.people.carry_over()
        if not dry_run:
            # A scan replaces faces under group's feet (a rescan deletes and re-inserts
            # them): hold the writer lock, so that the second to start is refused.
            self.cache.lock("group")
        try:
            return group_faces(
                self.cache,
                enc,
                self.model,
                settings,
                dry_run=dry_run,
                action=action or settings.command(),
                suggest_within=SUGGEST_FACTOR * self.threshold,
            )
        finally:
            self.cache.unlock()

    @property
    def people(self) -> People:
        """The persons: list, name, merge, split, move or remove faces, undo."""
        from .people import People

        return People(self.cache, self.encoder_id, self.threshold)

    # -- search ---------------------------------------------------------------------------
    def find(
        self, photo: PathLike, k: int = 10, threshold: float | None = None
    ) -> list[Match]:
        """The ``k`` photos nearest to the largest face of ``photo`` within ``threshold``
        (default: the encoder's), nearest first; large libraries via findindex.py."""
        from .search import FaceSearch
        from .vector_log import owners

        enc = self.encoder_id
        _, query = embed_photo(photo, *self.models())
        if self._search is None or self._search.encoder_id != enc:
            self._search = FaceSearch(self.cache, enc, self.identity)
        t = self.threshold if threshold is None else threshold
        hits = self._search.nearest(query[0], k, t)
        who = owners(self.cache, enc, [h.face_id for h in hits])
        return [Match(h.photo, h.distance, h.face_id, *who.get(h.face_id, (None, None)))
                for h in hits]


def available_encoders(weights: PathLike | None = None) -> list[EncoderStatus]:
    """Every encoder (built in, and trained ones in the models folder): its spec (name,
    dim, default threshold, description), whether it loads here without a download, and
    whether 'auto' picks it."""
    from .encoders import available_encoders as listing

    return listing(_path(weights))


def load_encoder(
    model: str | EncoderSpec = "auto", weights: PathLike | None = None, device: str = "auto"
) -> Encoder:
    """An encoder by name, model file or spec ('auto': the best one available offline)."""
    from .detect import resolve_device
    from .encoders import load_encoder as load

    dev = resolve_device(device)
    _check_device(dev)
    return load(model_spec(model, weights), _path(weights), dev)


def _path(p: PathLike | None) -> Path | None:
    return Path(p).expanduser() if p is not None else None


def _check_device(dev: str) -> None:
    import torch

    if dev == "cuda" and not torch.cuda.is_available():
        raise FaceclusterError("--device cuda: no CUDA GPU is available")
    if dev == "mps" and not torch.backends.mps.is_available():
        raise FaceclusterError("--device mps: Apple MPS is not available")
