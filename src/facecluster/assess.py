"""`eval`: scan a labelled set, group it, and score the result against the folder labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import evaluate as ev
from .cluster import GroupSettings, cluster_faces
from .labelled import LabelledFaces

# Verification uses every pair of labelled faces up to this many pairs (then a sample).
MAX_PAIRS = 5_000_000


def predict(lab: LabelledFaces, settings: GroupSettings) -> np.ndarray:
    """Cluster every face of the set (background faces too, as `group` would) and return
    the labels of the labelled faces."""
    vectors = np.concatenate([lab.vectors, lab.other_vectors])
    labels = cluster_faces(vectors, settings)
    return labels[: len(lab.labels)]


def assess(lab: LabelledFaces, settings: GroupSettings, min_size: int = 3) -> dict[str, object]:
    """Clustering and verification metrics of one labelled set under one setting."""
    pred = predict(lab, settings)
    report = ev.cluster_report(lab.labels, pred, min_size=min_size).as_dict()
    distances, same = ev.pair_distances(lab.vectors, lab.labels, max_pairs=MAX_PAIRS)
    verification = ev.verification_report(distances, same).as_dict()
    return {
        "settings": settings.as_dict(),
        "photos": lab.photos,
        "photos_without_face": lab.photos_without_face,
        "faces_scored": len(lab.labels),
        "faces_not_scored": len(lab.other_faces),
        "identities": len(lab.identities),
        "clustering": report,
        "verification": verification,
    }


def sweep(
    lab: LabelledFaces, settings: GroupSettings, thresholds: Sequence[float], min_size: int = 3
) -> tuple[list[dict[str, object]], dict[str, object]]:
    """Clustering metrics for each threshold, and the best row by pairwise F1."""
    rows = ev.sweep(
        [round(float(t), 6) for t in thresholds],
        lambda t: predict(lab, settings.with_threshold(t)),
        lab.labels,
        min_size=min_size,
    )
    return rows, ev.best_by(rows, "pairwise_f1")


def parse_sweep(text: str) -> list[float]:
    """'START:STOP:STEP' (STOP included) -> thresholds."""
    try:
        start, stop, step = (float(x) for x in text.split(":"))
    except ValueError:
        raise ValueError(f"--sweep wants START:STOP:STEP, got {text!r}") from None
    if step <= 0 or stop < start:
        raise ValueError(f"--sweep {text!r}: need STEP > 0 and STOP >= START")
    n = int(np.floor((stop - start) / step + 1e-9)) + 1
    if n > 1000:
        raise ValueError(f"--sweep {text!r} has {n} steps; at most 1000")
    return [round(start + i * step, 6) for i in range(n)]
