"""Labelled photo sets (one folder per identity) for `eval` and `train`: which face a
label means, and the labelled faces' embeddings from the cache."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cache import FaceCache, StoredFace
from .errors import EmptyCache
from .records import Face

# A label names the central face of a photo, usually but not always the largest one (in
# LFW-style news photos a larger background face is sometimes a stranger). Rule: among
# faces at least MIN_AREA_RATIO of the largest, take the one maximising
# area * exp(-(d / CENTRE_SIGMA)^2), d = distance from the box centre to the image centre
# divided by half the image diagonal.
MIN_AREA_RATIO = 0.2
CENTRE_SIGMA = 0.5


def labelled_face(faces: Sequence[Face], width: int, height: int) -> int | None:
    """Index of the face a photo's label refers to, or None when there is no face."""
    if not faces:
        return None
    largest = max(f.area for f in faces)
    half_diag = max(math.hypot(width, height) / 2, 1.0)
    best, best_score = None, -1.0
    for i, f in enumerate(faces):
        if f.area < MIN_AREA_RATIO * largest:
            continue
        cx, cy = (f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2
        d = math.hypot(cx - width / 2, cy - height / 2) / half_diag
        score = f.area * math.exp(-((d / CENTRE_SIGMA) ** 2))
        if score > best_score:
            best, best_score = i, score
    return best


@dataclass(frozen=True)
class LabelledFaces:
    """One labelled face per photo that has a face, plus the set's other faces."""

    identities: list[str]  # label id -> identity (folder) name
    labels: np.ndarray  # (n,) label id of each labelled face
    faces: list[StoredFace]
    vectors: np.ndarray  # (n, dim)
    photos: int  # photos found under the identity folders
    photos_without_face: int
    other_faces: list[StoredFace]  # background faces of labelled photos (not scored)
    other_vectors: np.ndarray


def identity_of(path: str, root: Path) -> str | None:
    parts = Path(path).relative_to(root).parts
    return parts[0] if len(parts) >= 2 else None


def load_labelled(cache: FaceCache, encoder_id: int, root: Path) -> LabelledFaces:
    """Gather the labelled faces under ``root`` (already scanned with this encoder)."""
    root = Path(root)
    faces, vectors = cache.face_vectors(encoder_id, [str(root)])
    by_photo: dict[int, list[int]] = {}
    for i, sf in enumerate(faces):
        by_photo.setdefault(sf.photo_id, []).append(i)
    sizes = cache.photo_sizes(list(by_photo))
    photo_paths = [p for p in cache.photo_index() if p.startswith(str(root).rstrip("/") + "/")]
    labelled_photos = [p for p in photo_paths if identity_of(p, root) is not None]
    names = sorted({n for p in labelled_photos if (n := identity_of(p, root)) is not None})
    index = {n: i for i, n in enumerate(names)}
    keep, others, labels = [], [], []
    for photo_id, idxs in by_photo.items():
        ident = identity_of(faces[idxs[0]].path, root)
        if ident is None:
            continue
        w, h = sizes.get(photo_id, (0, 0))
        pick = labelled_face([faces[i].face for i in idxs], w, h)
        for j, i in enumerate(idxs):
            if j == pick:
                keep.append(i)
                labels.append(index[ident])
            else:
                others.append(i)
    if not keep:
        raise EmptyCache(f"no labelled faces under {root}: it should hold one folder per person")
    return LabelledFaces(
        identities=names,
        labels=np.asarray(labels, dtype=np.int64),
        faces=[faces[i] for i in keep],
        vectors=vectors[keep],
        photos=len(labelled_photos),
        photos_without_face=len(labelled_photos) - len(keep),
        other_faces=[faces[i] for i in others],
        other_vectors=vectors[others] if others else np.zeros((0, vectors.shape[1]), np.float32),
    )
