"""Face detection: the detector registry, its contract, and MTCNN (facenet-pytorch's
networks, batched over photos of equal size).

Adding a detector: a module with a class that follows :class:`FaceDetector` and one
``DETECTORS.register(DetectorSpec(...))`` line below.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from . import config
from .errors import FaceclusterError
from .registry import Ref, Registry, load_ref

if TYPE_CHECKING:  # numpy and records only where used: the CLI imports the registry
    import numpy as np

    from .cache import FaceCache
    from .records import Face, Timings

# YuNet misses faces under about 30 px of its input: the camera-size set's 50 px faces
# (12 MP) need a 2240 px copy (at 1920 one scores 0.4, under MIN_SCORE; at 1280 two are
# missed: docs/performance.md). MTCNN sees 12 px faces in the 1280 px copy.
YUNET_SIDE = 2240
# MTCNN's last stage outputs a face probability; below this we call it a false positive
# (textures, animal faces, drawn heads). Measured on ../shared/data/edge: see docs/design.md.
MIN_PROB = 0.92
# P-net cannot see faces smaller than 12 px in the image it is given.
_MTCNN_MIN_PX = 12


def resolve_device(device: str = "auto") -> str:
    """'auto' picks CUDA, then Apple MPS, then the CPU."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


class FaceDetector(Protocol):
    """What the scan pipeline needs of a face detector. The one place its contract is written.

    ``detect(images, min_sizes, timings)`` takes RGB uint8 arrays (h, w, 3) and returns, for
    each, the faces it is confident of, as :class:`~facecluster.records.Face`:

    * ``box``: (4,) float32 ``x1, y1, x2, y2`` in pixels of the array given (x right, y down),
      MTCNN's box geometry: the encoders crop from it (FaceNet adds a margin; dlib-resnet maps
      it to dlib's own box with ``BOX_MAP``, fitted to MTCNN's boxes, so a detector that
      draws boxes differently needs that map refitted);
    * ``landmarks``: (5, 2) float32 ``(x, y)`` in the same pixels, in this order: left eye,
      right eye, nose tip, left mouth corner, right mouth corner, where left and right are
      as seen in the image (the person's right eye is the image's left one);
    * ``prob``: the detector's confidence in [0, 1]; faces below its own cut are not returned.

    ``min_sizes[i]``: the smallest face side (pixels of image i) to return; ``timings``: a
    dict the detector may add the seconds of its stages to (``scan --profile``). ``name``
    says which detector found the faces. A database is scanned with one detector: its name
    is recorded in the database (``DETECTOR_NOTE``, see :func:`database_detector`).
    An optional ``beside_encoder = True`` says it may run in a thread beside the encoder
    (its own runtime, not torch's): a scan then detects the next photos while it embeds
    (``stages.detected_runs``); one ``detect`` call at a time either way.
    """

    name: str

    def detect(
        self,
        images: Sequence[np.ndarray],
        min_sizes: Sequence[float] | None = None,
        timings: Timings | None = None,
    ) -> list[list[Face]]: ...


@dataclass(frozen=True)
class DetectorSpec:
    """A detector: ``load(device=...) -> FaceDetector`` (a lazy ``"module:attribute"``);
    ``detect_side``: the long side of the copy it is given (made in the decode threads)."""

    name: str
    description: str
    load: Ref
    detect_side: int = config.DETECT_MAX_SIDE


DETECTORS: Registry[DetectorSpec] = Registry("detector")
DETECTORS.register(
    DetectorSpec("mtcnn", "MTCNN (facenet-pytorch's networks)", "facecluster.detect:Detector")
)
DETECTORS.register(
    DetectorSpec(
        "yunet", "YuNet (OpenCV Zoo, int8)", "facecluster.yunet:YunetDetector", YUNET_SIDE
    )
)
# What 'auto' picks for a new database. YuNet finds the same faces 3x faster on camera
# photos, but sface embeddings of its faces group worse on the labelled dev set: pairwise F1
# 0.9855 against MTCNN's 0.9924 at sface's threshold, 0.9910 against 0.9924 each at its best
# threshold, TAR at FAR 1e-3 0.9801 against 0.9837 (docs/performance.md). Right first.
AUTO_DETECTOR = "mtcnn"
# Databases made before the detector was recorded were all scanned with MTCNN.
LEGACY_DETECTOR = "mtcnn"
DETECTOR_NOTE = "detector"  # meta key: the detector that found the database's faces


class DetectorMismatch(FaceclusterError):
    """An explicit --detector other than the one that found the database's faces."""


def detect_side(name: str) -> int:
    """The long side of the detection copy detector ``name`` wants."""
    return DETECTORS.get(name).detect_side if name in DETECTORS else config.DETECT_MAX_SIDE


def load_detector(name: str = "mtcnn", device: str = "cpu") -> FaceDetector:
    """The detector registered as ``name`` ('auto': ``AUTO_DETECTOR``), on ``device``."""
    name = AUTO_DETECTOR if name == "auto" else name
    detector: FaceDetector = load_ref(DETECTORS.get(name).load)(device=device)
    return detector


def choose_detector(asked: str, recorded: str | None, has_faces: bool) -> str:
    """The detector for a database: ``asked`` ('auto' or a name), the one ``recorded``
    in it, and whether it holds faces. 'auto' keeps the database's detector (MTCNN for a
    database with faces but no record: it predates the record). A different explicit
    detector is refused while the database holds faces: two detectors' boxes would mix,
    and faces (and their names) are matched across re-reads by box overlap."""
    if asked != "auto":
        DETECTORS.get(asked)  # UnknownName, with the choices
    kept = recorded or (LEGACY_DETECTOR if has_faces else None)
    if asked == "auto":
        return kept or AUTO_DETECTOR
    if has_faces and kept is not None and kept != asked:
        raise DetectorMismatch(
            f"this database's faces were found by {kept}: --detector {asked} would mix two "
            f"detectors (use --detector {kept} or auto, or another --db)"
        )
    return asked


def database_detector(cache: FaceCache, asked: str = "auto", record: bool = False) -> str:
    """:func:`choose_detector` for the database ``cache``; with ``record`` (a scan), the
    choice is written into it."""
    name = choose_detector(asked, cache.note(DETECTOR_NOTE), cache.has_faces())
    if record and cache.note(DETECTOR_NOTE) != name:
        cache.set_note(DETECTOR_NOTE, name)
    return name


class Detector:
    """MTCNN over batches of RGB uint8 arrays. Faces come back in the array's coordinates.

    Faces cut by the frame are found: see ``mtcnn.LEVEL_PAD`` (docs/design.md)."""

    name = "mtcnn"

    def __init__(self, device: str = "cpu", min_prob: float = MIN_PROB) -> None:
        from .mtcnn import Mtcnn

        self.device = device
        self.min_prob = min_prob
        self._mtcnn = Mtcnn(device)

    def detect(
        self,
        images: Sequence[np.ndarray],
        min_sizes: Sequence[float] | None = None,
        timings: Timings | None = None,
    ) -> list[list[Face]]:
        """Detect faces in each image; images of equal size go through MTCNN as one batch.

        ``min_sizes[i]`` is the smallest face side to keep in image i, in its pixels
        (MTCNN itself cannot see faces under 12 px). ``timings`` accumulates the seconds
        of each MTCNN stage."""
        import numpy as np
        sizes = list(min_sizes) if min_sizes is not None else [20.0] * len(images)
        out: list[list[Face]] = [[] for _ in images]
        groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, img in enumerate(images):
            groups[img.shape].append(i)
        for idxs in groups.values():
            smallest = max(_MTCNN_MIN_PX, min(sizes[i] for i in idxs))
            batch = np.stack([images[i] for i in idxs])
            found = self._mtcnn.detect(batch, smallest, timings)
            for i, (boxes, probs, points) in zip(idxs, found, strict=True):
                out[i] = self._faces(boxes, probs, points, sizes[i])
        return out

    def _faces(
        self, boxes: np.ndarray, probs: np.ndarray, points: np.ndarray, min_size: float
    ) -> list[Face]:
        import numpy as np

        from .records import Face

        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        probs = np.asarray(probs, dtype=np.float32).reshape(-1)
        points = np.asarray(points, dtype=np.float32).reshape(-1, 5, 2)
        faces = []
        for box, prob, lm in zip(boxes, probs, points, strict=True):
            side = min(box[2] - box[0], box[3] - box[1])
            if prob >= self.min_prob and side >= min_size:
                faces.append(Face(box=box, landmarks=lm, prob=float(prob)))
        return faces


def scale_face(face: Face, factor: float) -> Face:
    """The same face in an image ``factor`` times the size."""
    from .records import Face

    return Face(box=face.box * factor, landmarks=face.landmarks * factor, prob=face.prob)
