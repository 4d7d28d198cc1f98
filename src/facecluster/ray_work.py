"""What the Ray workers of a scan do (ray_engine.py drives them): read + hash + decode +
detect + align in CPU actors (``Prepare``), embed in actors of their own, one per GPU where
the cluster has GPUs (``Embed``). Photos are read by the workers at the paths the driver
walked (a filesystem shared by every node); each actor loads its models once.

A row is one batch of the scan (``batch_size`` photos, grouped as a local scan groups
them): a pickled list of jobs, then of ``(entry, photo id, result)`` tuples, in one binary
column ("item"); results hold a few face chips or vectors per photo, never a whole image.
Nothing here imports Ray; Ray Data calls these classes."""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import DETECT_MAX_SIDE
from .records import DecodedPhoto, Face, Failure, FileEntry, ReadPhoto
from .stages import decode_photo, detect_photos, face_chips, model_runs, read_photo

Column = dict[str, np.ndarray]
Loader = Callable[[str], tuple]  # device -> (detector, encoder): api.load_models


@dataclass(frozen=True)
class Job:
    """One photo for the workers. ``own``: its indexed digest when the index counts it
    among the known contents (see ``KnownDigests``); ``faces``: its stored faces, when only
    this encoder's vectors are missing (no detection then)."""

    entry: FileEntry
    photo_id: int | None = None
    own: str | None = None
    faces: list[Face] | None = None


@dataclass(frozen=True, eq=False)
class Prepared:
    """A photo decoded, its faces found (or given) and cut out, waiting for the encoder."""

    entry: FileEntry
    digest: str
    width: int
    height: int
    faces: list[Face]
    chips: list[np.ndarray]
    xmp_regions: bool
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class EmbeddedPhoto:
    """A photo done by the workers: its faces and their vectors (rows in ``faces`` order)."""

    entry: FileEntry
    digest: str
    width: int
    height: int
    faces: list[Face]
    vectors: np.ndarray
    xmp_regions: bool
    timings: dict[str, float] = field(default_factory=dict)


class KnownDigests:
    """The contents the index already has with all their vectors (planner.known_digests),
    compactly (a sorted array: a million photos are 32 MB): a worker hashes a file and
    skips decoding it when another indexed file has its content (a move or a copy)."""

    def __init__(self, counts: dict[str, int]) -> None:
        keys = sorted(counts)
        self.digests = np.array([k.encode() for k in keys], dtype="S32")
        self.counts = np.array([counts[k] for k in keys], dtype=np.int32)

    def others(self, digest: str, own: str | None) -> bool:
        """Whether a file other than the one whose indexed digest is ``own`` has it."""
        key = digest.encode()
        i = int(np.searchsorted(self.digests, key))
        n = int(self.counts[i]) if i < len(self.digests) and self.digests[i] == key else 0
        return n - (own == digest) > 0


def pack(items: Iterable[object]) -> Column:
    return {"item": np.array([pickle.dumps(x) for x in items], dtype=object)}


def unpack(batch: Column) -> list:
    return [pickle.loads(b) for b in batch["item"]]  # noqa: S301  (our own workers' rows)


class Prepare:
    """Read, hash, decode, detect and align a batch of jobs (a CPU actor)."""

    def __init__(
        self, load: Loader, known: KnownDigests, min_face: float, side: int = DETECT_MAX_SIDE
    ) -> None:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self.load, self.known, self.min_face = load, known, min_face
        self.side = side  # the long side of the detector's copy (detect.detect_side)
        self._models: tuple | None = None  # loaded once, when a photo needs them

    @property
    def models(self) -> tuple:
        if self._models is None:
            self._models = self.load("cpu")
        return self._models

    def __call__(self, batch: Column) -> Column:
        return pack([self.group(jobs) for jobs in unpack(batch)])

    def group(self, jobs: list[Job]) -> list[object]:
        """One batch of the scan, as the local scan groups them (the same photos detected
        together give the same numbers to the last bit)."""
        out: list[object] = []
        seen: set[str] = set()
        decoded: list[tuple[Job, DecodedPhoto]] = []
        timings: dict[str, float] = {}
        for job in jobs:
            raw = read_photo(job.entry)
            if isinstance(raw, Failure):
                out.append((job.entry, job.photo_id, raw))
                continue
            _add(timings, "read (ray)", raw.read_seconds)
            if job.photo_id is None and (
                raw.digest in seen or self.known.others(raw.digest, job.own)
            ):
                skipped = ReadPhoto(job.entry, raw.digest, b"", raw.read_seconds, raw.xmp_regions)
                out.append((job.entry, None, skipped))
                continue
            photo = decode_photo(raw, self.side)
            if isinstance(photo, Failure):
                out.append((job.entry, job.photo_id, photo))
                continue
            _add(timings, "decode (ray)", photo.decode_seconds)
            seen.add(photo.digest)
            decoded.append((job, photo))
        if not decoded:
            return out
        detector, encoder = self.models
        fresh = [p for job, p in decoded if job.faces is None]
        found: list[list[Face]] = []
        for a, b in model_runs(fresh, getattr(detector, "device", "cpu") == "cpu"):
            found += detect_photos(detector, fresh[a:b], self.min_face, timings)
        started = time.perf_counter()
        detected = iter(found)
        for job, photo in decoded:
            faces = job.faces if job.faces is not None else next(detected)
            chips = face_chips(encoder, photo, faces)
            item = Prepared(
                job.entry, photo.digest, photo.width, photo.height, faces, chips, photo.xmp_regions
            )
            out.append((job.entry, job.photo_id, item))
        _add(timings, "align (ray)", time.perf_counter() - started)
        _attach(out, {f"{k} (ray)" if "(ray)" not in k else k: v for k, v in timings.items()})
        return out


class Embed:
    """Embed the chips of a batch of prepared photos (an actor: one per GPU, or a CPU)."""

    def __init__(self, load: Loader, device: str) -> None:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self.load, self.device = load, device
        self.encoder: Any = None  # loaded once, when a photo needs it

    def __call__(self, batch: Column) -> Column:
        return pack([self.group(items) for items in unpack(batch)])

    def group(self, items: list[Any]) -> list[object]:
        if not any(isinstance(r, Prepared) for _, _, r in items):
            return items
        if self.encoder is None:
            self.encoder = self.load(self.device)[1]
        chips = [c for _, _, r in items if isinstance(r, Prepared) for c in r.chips]
        started = time.perf_counter()
        vectors = self.encoder.embed(chips)
        seconds = time.perf_counter() - started
        out: list[object] = []
        at = 0
        for entry, photo_id, r in items:
            if isinstance(r, Prepared):
                vecs = vectors[at : at + len(r.faces)]
                at += len(r.faces)
                r = EmbeddedPhoto(
                    r.entry, r.digest, r.width, r.height, r.faces, vecs, r.xmp_regions, r.timings
                )
            out.append((entry, photo_id, r))
        _attach(out, {"embed (ray)": seconds})
        return out


def _add(timings: dict[str, float], stage: str, seconds: float) -> None:
    timings[stage] = timings.get(stage, 0.0) + seconds


def _attach(out: list, timings: dict[str, float]) -> None:
    """A batch's stage timings ride on its first photo that has a timings record."""
    for _, _, r in out:
        if isinstance(r, Prepared | EmbeddedPhoto):
            for stage, seconds in timings.items():
                _add(r.timings, stage, seconds)
            return
