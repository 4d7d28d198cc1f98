"""The stages of the scan pipeline for one photo or one batch: read and hash, decode (in
worker threads), detect, cut the aligned face chips; and all of them for one file
(``verify``, ``find``). The indexer (indexer.py) runs them over a whole tree."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import config, imageio
from .detect import DETECTORS, FaceDetector, detect_side, load_detector, scale_face
from .encoders import Encoder
from .errors import ImageError
from .records import DecodedPhoto, Face, Failure, FileEntry, ReadPhoto, Timings
from .xmp_import import mentions_regions


def read_photo(entry: FileEntry) -> ReadPhoto | Failure:
    """Read and hash one file (runs in a worker thread). Never raises."""
    start = time.perf_counter()
    try:
        data = entry.path.read_bytes()
    except OSError as exc:
        return Failure(str(entry.path), f"cannot read: {exc.strerror or exc}")
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    return ReadPhoto(entry, digest, data, time.perf_counter() - start, mentions_regions(data))


def decode_photo(raw: ReadPhoto, side: int = config.DETECT_MAX_SIDE) -> DecodedPhoto | Failure:
    """Decode a file read, with a detection copy of at most ``side`` (runs in a worker
    thread). Never raises."""
    start = time.perf_counter()
    try:
        image, width, height, scale, small, small_scale = imageio.decode_pair(raw.data, side)
    except ImageError as exc:
        return Failure(str(raw.entry.path), str(exc))
    except Exception as exc:  # a decoder bug must not stop the scan
        return Failure(str(raw.entry.path), f"cannot decode: {type(exc).__name__}: {exc}"[:200])
    return DecodedPhoto(
        raw.entry,
        raw.digest,
        width,
        height,
        image,
        scale,
        small,
        small_scale,
        read_seconds=raw.read_seconds,
        decode_seconds=time.perf_counter() - start,
        xmp_regions=raw.xmp_regions,
    )


def load_photo(entry: FileEntry, side: int = config.DETECT_MAX_SIDE) -> DecodedPhoto | Failure:
    """Read, hash and decode one file. Never raises."""
    raw = read_photo(entry)
    return raw if isinstance(raw, Failure) else decode_photo(raw, side)


def detect_photos(
    detector: FaceDetector,
    photos: Sequence[DecodedPhoto],
    min_face: float,
    timings: Timings | None = None,
) -> list[list[Face]]:
    """Faces of each photo, in the coordinates of its upright original (those found in
    the decode thread are taken as they are)."""
    found = [p.found for p in photos]
    todo = [i for i, faces in enumerate(found) if faces is None]
    if todo:
        more = detector.detect(
            [photos[i].small for i in todo],
            [min_face * photos[i].scale * photos[i].small_scale for i in todo],
            timings,
        )
        for i, faces in zip(todo, more, strict=True):
            found[i] = faces
    return [
        [scale_face(f, 1.0 / (p.scale * p.small_scale)) for f in faces or ()]
        for p, faces in zip(photos, found, strict=True)
    ]


class ThreadDetector:
    """Runs detector ``name`` in the decode threads, after each decode (for detectors whose
    ``DetectorSpec.threads`` says so): one instance per thread; the faces ride in the
    DecodedPhoto to :func:`detect_photos`. A detection that fails there is left to the
    main thread, which reports it as usual."""

    def __init__(self, name: str, min_face: float) -> None:
        self.name, self.min_face = name, min_face
        self._local = threading.local()

    @classmethod
    def wanted(cls, name: str, min_face: float) -> ThreadDetector | None:
        return cls(name, min_face) if name in DETECTORS and DETECTORS.get(name).threads else None

    def __call__(self, photo: DecodedPhoto) -> DecodedPhoto:
        start = time.perf_counter()
        try:
            if getattr(self._local, "detector", None) is None:
                self._local.detector = load_detector(self.name, "cpu")
            size = self.min_face * photo.scale * photo.small_scale
            (faces,) = self._local.detector.detect([photo.small], [size])
        except Exception:  # the main thread detects it again, and reports what fails
            return photo
        return dataclasses.replace(photo, found=faces, detect_seconds=time.perf_counter() - start)


def face_chips(encoder: Encoder, photo: DecodedPhoto, faces: Sequence[Face]) -> list[np.ndarray]:
    """Aligned crops of original-coordinate faces, cut from the decoded image."""
    return [encoder.prepare(photo.image, scale_face(f, photo.scale)) for f in faces]


def embed_file(
    path: Path, detector: FaceDetector, encoder: Encoder, min_face: float = config.DEFAULT_MIN_FACE
) -> tuple[DecodedPhoto, list[Face], np.ndarray]:
    """Detect and embed every face of one photo. Raises ImageError when it cannot be read."""
    st = path.stat()
    res = load_photo(FileEntry(path, st.st_size, st.st_mtime_ns), detect_side(detector.name))
    if isinstance(res, Failure):
        raise ImageError(f"{path}: {res.error}")
    faces = detect_photos(detector, [res], min_face)[0]
    return res, faces, encoder.embed(face_chips(encoder, res, faces))
