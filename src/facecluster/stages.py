"""The stages of the scan pipeline for one photo or one batch: read and hash, decode (in
worker threads), detect, cut the aligned face chips; and all of them for one file
(``verify``, ``find``). The indexer (indexer.py) runs them over a whole tree."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import config, imageio
from .detect import FaceDetector, detect_side, scale_face
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
    """Faces of each photo, in the coordinates of its upright original."""
    found = detector.detect(
        [p.small for p in photos], [min_face * p.scale * p.small_scale for p in photos], timings
    )
    return [
        [scale_face(f, 1.0 / (p.scale * p.small_scale)) for f in faces]
        for p, faces in zip(photos, found, strict=True)
    ]


def model_runs(photos: Sequence[DecodedPhoto], cpu: bool) -> list[tuple[int, int]]:
    """(start, end) of runs of ``photos`` that go through the models together: on the CPU
    at most config.MODEL_CHUNK_PIXELS detection pixels each (a camera photo alone, a batch
    of small ones together: batching large photos gains nothing there, and progress moves
    photo by photo); on a GPU the whole batch."""
    if not photos:
        return []
    if not cpu:
        return [(0, len(photos))]
    runs, start, pixels = [], 0, 0
    for i, photo in enumerate(photos):
        size = photo.small.shape[0] * photo.small.shape[1]
        if i > start and pixels + size > config.MODEL_CHUNK_PIXELS:
            runs.append((start, i))
            start, pixels = i, 0
        pixels += size
    return [*runs, (start, len(photos))]


def detected_runs(
    detector: FaceDetector | None,
    photos: Sequence[DecodedPhoto],
    runs: Sequence[tuple[int, int]],
    min_face: float,
    timings: Timings,
) -> Iterator[tuple[int, int, list[list[Face]]]]:
    """``(start, end, faces)`` of each run of ``photos`` (:func:`model_runs`), in order.
    A detector that runs on its own CPU threads beside the encoder (``beside_encoder``:
    YuNet in OpenCV) detects the next run in a thread while the caller embeds this one, so
    that on 2 cores detection and embedding overlap; the time the caller then waits for it
    goes under ``wait for detection``. Other detectors (MTCNN, in torch like the encoder)
    run in the caller's thread. Same faces either way. ``detector`` may be None only when
    there are no runs."""
    if not runs:
        return
    assert detector is not None
    if not getattr(detector, "beside_encoder", False) or len(runs) < 2:
        for a, b in runs:
            yield a, b, detect_photos(detector, photos[a:b], min_face, timings)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="detect") as pool:
        pending = [
            pool.submit(detect_photos, detector, photos[a:b], min_face, timings)
            for a, b in runs[:1]
        ]
        for i, (a, b) in enumerate(runs):
            if i + 1 < len(runs):
                c, d = runs[i + 1]
                pending.append(pool.submit(detect_photos, detector, photos[c:d], min_face, timings))
            started = time.perf_counter()
            found = pending[i].result()
            waited = time.perf_counter() - started
            timings["wait for detection"] = timings.get("wait for detection", 0.0) + waited
            yield a, b, found


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
