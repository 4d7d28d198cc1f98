"""The encoder protocol: face -> aligned chip -> L2-normalised embedding."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

import numpy as np

from ..records import Face


class Encoder(Protocol):
    """An embedding backend.

    ``prepare`` aligns and crops one face (cheap, CPU, any thread); ``embed`` runs the
    network on a batch of chips and returns an (n, dim) float32 array of unit vectors.
    ``identity`` names everything that changes the embedding space (weights hash,
    preprocessing): the cache refuses to mix vectors of two identities.
    """

    name: str
    dim: int

    @property
    def identity(self) -> dict[str, object]: ...

    def prepare(self, image: np.ndarray, face: Face) -> np.ndarray: ...

    def embed(self, chips: list[np.ndarray]) -> np.ndarray: ...


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
