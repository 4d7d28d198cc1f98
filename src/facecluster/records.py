"""Frozen records that flow between the stages: files -> photos -> faces -> embeddings."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .pathcodec import shown

# Seconds per pipeline stage, accumulated by the detector and the indexer.
Timings = MutableMapping[str, float]


@dataclass(frozen=True)
class FileEntry:
    """A file found by the walk, with the stat fields that decide whether to re-read it."""

    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True, eq=False)
class ReadPhoto:
    """A file read and hashed, not decoded (yet): a scan decodes only content it does not
    know (stages.decode_photo)."""

    entry: FileEntry
    digest: str  # BLAKE2b-128 of ``data``
    data: bytes
    read_seconds: float = 0.0  # reading and hashing the file (in a worker thread)
    xmp_regions: bool = False  # its bytes name a face-region XMP schema (xmp_import.py)


@dataclass(frozen=True)
class PhotoSize:
    """What the XMP reader needs of a photo it did not decode (a move or a copy): its file,
    the size of its upright original, and whether its bytes name a face-region schema."""

    entry: FileEntry
    width: int
    height: int
    xmp_regions: bool = False


@dataclass(frozen=True, eq=False)
class DecodedPhoto:
    """A photo decoded for the pipeline.

    ``image`` is RGB uint8 (H, W, 3), upright (EXIF orientation applied), possibly decoded
    at reduced size: ``scale`` is image pixels per pixel of the upright original, whose
    size is ``width`` x ``height``.
    """

    entry: FileEntry
    digest: str
    width: int
    height: int
    image: np.ndarray
    scale: float
    small: np.ndarray  # ``image`` shrunk for detection
    small_scale: float  # pixels of ``small`` per pixel of ``image``
    read_seconds: float = 0.0  # reading and hashing the file (in a worker thread)
    decode_seconds: float = 0.0  # decoding and shrinking (in a worker thread)
    xmp_regions: bool = False  # its bytes name a face-region XMP schema (xmp_import.py)


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face, in the coordinates of the upright original photo."""

    box: np.ndarray  # (4,) float32: x1, y1, x2, y2
    # (5, 2) float32: left eye, right eye, nose, mouth left, mouth right (in the image);
    # the contract every detector follows: detect.FaceDetector
    landmarks: np.ndarray
    prob: float

    @property
    def size(self) -> float:
        """The shorter side of the box, in original pixels."""
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    @property
    def area(self) -> float:
        return float((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))


@dataclass(frozen=True)
class Failure:
    path: str
    error: str


@dataclass(frozen=True)
class NamedRegion:
    """A named face region read from a photo's XMP, in the coordinates of the upright
    original (like Face.box). ``source``: where it was read, e.g. "sidecar mwg"."""

    name: str
    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    source: str


@dataclass
class ScanStats:
    """What one scan did. Mutable while the scan runs; returned to the caller at the end."""

    photos_total: int = 0
    photos_new: int = 0
    photos_changed: int = 0
    photos_unchanged: int = 0
    photos_moved: int = 0
    photos_removed: int = 0
    photos_unavailable: int = 0  # indexed photos under folders that could not be read: kept
    photos_failed: int = 0
    photos_failed_unchanged: int = 0  # failed at an earlier scan and unchanged: not retried
    photos_reembedded: int = 0
    faces: int = 0  # faces in the index for the scanned trees, after the scan
    faces_new: int = 0  # faces detected by this scan
    embeddings_computed: int = 0
    no_face: int = 0
    model: str = ""
    device: str = ""
    # Named or corrected persons copied from another encoder of the database (People.carry_over).
    persons_carried: int = 0
    persons_carried_from: str = ""
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    # Folders and files that could not be read (or empty folders hiding indexed photos).
    unavailable: list[Failure] = field(default_factory=list)
    # Seconds per pipeline stage (see ``Indexer``); worker-thread stages overlap the others.
    timings: dict[str, float] = field(default_factory=dict)
    # Names read from face regions in the photos' XMP (xmp_import.py).
    xmp_faces_named: int = 0  # detected faces given a name
    xmp_regions_alone: int = 0  # named regions with no detected face: kept with the photo
    xmp_warnings: list[Failure] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "photos_total": self.photos_total,
            "photos_new": self.photos_new,
            "photos_changed": self.photos_changed,
            "photos_unchanged": self.photos_unchanged,
            "photos_moved": self.photos_moved,
            "photos_removed": self.photos_removed,
            "photos_unavailable": self.photos_unavailable,
            "photos_failed": self.photos_failed,
            "photos_failed_unchanged": self.photos_failed_unchanged,
            "photos_reembedded": self.photos_reembedded,
            "faces": self.faces,
            "faces_new": self.faces_new,
            "embeddings_computed": self.embeddings_computed,
            "no_face": self.no_face,
            "model": self.model,
            "device": self.device,
            "persons_carried": self.persons_carried,
            "persons_carried_from": self.persons_carried_from,
            "seconds": round(self.seconds, 3),
            "failures": [{"path": shown(f.path), "error": f.error} for f in self.failures],
            "unavailable": [{"path": shown(u.path), "error": u.error} for u in self.unavailable],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "xmp": {
                "faces_named": self.xmp_faces_named,
                "regions_without_face": self.xmp_regions_alone,
                "warnings": [
                    {"path": shown(w.path), "warning": w.error} for w in self.xmp_warnings
                ],
            },
        }


@dataclass(frozen=True)
class ScanProgress:
    """Sent to the progress callback: once when the photos to read are known, once before
    the models load (``stage`` "loading models"), then after each photo is processed
    (``done`` counts them one by one; ``saved`` only moves when a batch is committed)."""

    done: int  # photos processed by this scan (faces found, reused, or failed)
    total: int  # photos this scan has to read
    faces: int  # faces found so far
    failed: int  # photos that failed so far
    saved: int = 0  # of ``done``, those committed to the database
    stage: str = "scanning"  # or "loading models"


@dataclass(frozen=True)
class Match:
    """A photo of the index near a query face (``find``)."""

    photo: str
    distance: float  # squared L2 between unit vectors
    face_id: int
    person_id: int | None
    person_name: str | None


@dataclass(frozen=True)
class Verification:
    """Whether two faces are the same person (``verify``)."""

    same: bool
    distance: float
    threshold: float
    model: str
    face_a: Face
    face_b: Face
