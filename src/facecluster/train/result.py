"""What a training run returns and writes: the summary record, the model's name and the
calibrated threshold."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import config
from ..errors import TrainingError
from .loop import EpochStats, FitResult, TrainConfig


@dataclass(frozen=True)
class TrainResult:
    name: str  # the new encoder's name, <base>+<name>
    out: Path
    checkpoint: Path
    mode: str
    base: str
    device: str
    config: TrainConfig
    fit: FitResult = field(repr=False)
    threshold: float
    threshold_note: str
    seconds: float
    projected: int = 0  # cached faces given vectors of the new encoder (head mode)

    @property
    def history(self) -> list[EpochStats]:
        return self.fit.history

    def as_dict(self) -> dict[str, Any]:
        f = self.fit
        return {
            "name": self.name,
            "out": str(self.out),
            "checkpoint": str(self.checkpoint),
            "mode": self.mode,
            "base": self.base,
            "device": self.device,
            "settings": self.config.as_dict(),
            "train_faces": f.train_faces,
            "val_faces": f.val_faces,
            "identities": f.identities,
            "batches_per_epoch": f.batches_per_epoch,
            "resumed_from_epoch": f.resumed_from,
            "best_epoch": f.best_epoch,
            "threshold": self.threshold,
            "threshold_note": self.threshold_note,
            "faces_projected": self.projected,
            "seconds": round(self.seconds, 2),
            "history": [
                {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(h).items()}
                for h in f.history
            ],
        }


def model_name(base: str, out: str) -> str:
    """``--out friends`` -> 'dlib-resnet+friends'; ``--out dir/friends.pt`` -> the same."""
    stem = Path(out).name
    stem = stem[: -len(".pt")] if stem.endswith(".pt") else stem
    return f"{base or 'scratch'}+{stem}"


def out_path(out: str, name: str) -> Path:
    """A bare name (no folder, no suffix) goes to the models folder, usable by name."""
    if "/" not in out and "." not in out:
        return config.data_dir() / "models" / f"{name}.pt"
    return Path(out).expanduser()


def checkpoint_path(out: Path) -> Path:
    return out.with_name(out.name + ".ckpt")


def check_threshold(threshold: float | None) -> None:
    """A ``train --threshold`` must be a squared L2 distance between unit vectors."""
    if threshold is not None and not 0.0 < threshold < 4.0:
        raise TrainingError(f"--threshold must be between 0 and 4 (squared L2), not {threshold:g}")


# Calibrating on grouping needs validation faces of several people seen more than once.
MIN_CALIBRATION_PEOPLE = 5  # identities with 2+ validation faces
MIN_CALIBRATION_PAIRS = 50  # same-identity validation pairs
F1_TOLERANCE = 0.02  # below the best pairwise F1: within what one merge or split moves it


def calibrate(
    fit: FitResult, base_threshold: float | None, threshold: float | None = None
) -> tuple[float, str]:
    """The new encoder's default threshold for grouping and verification.

    ``threshold`` (``train --threshold``) wins. Otherwise the validation faces, embedded
    by the chosen weights, are grouped as ``group`` does over a range of thresholds and the
    middle of the plateau of best pairwise F1 wins, when they hold at least
    MIN_CALIBRATION_PEOPLE people with 2+ faces and MIN_CALIBRATION_PAIRS same-person
    pairs. With fewer: the best-accuracy verification threshold on the validation pairs,
    scaled by the ratio the base encoder's own calibrated threshold bears to its
    best-accuracy threshold on the same pairs (epoch 0 of a head or a fine-tune is the base
    encoder itself). Without validation pairs the base's threshold is kept.
    """
    if threshold is not None:
        check_threshold(threshold)
        return float(threshold), "set by --threshold"
    first, chosen = fit.history[0], fit.history[fit.best_epoch]
    if chosen.val_threshold is None:
        t = base_threshold if base_threshold is not None else 1.1
        return t, "no validation pairs: the base encoder's threshold"
    grouped = _grouping_threshold(fit, chosen.val_threshold)
    if grouped is not None:
        return grouped
    ratio, how = 1.0, "validation best-accuracy threshold"
    if base_threshold is not None and first.val_threshold:
        ratio = base_threshold / first.val_threshold
        how += f" x {ratio:.3f} (the base's calibrated / best-accuracy ratio)"
    t = min(max(chosen.val_threshold * ratio, 0.01), 3.99)
    return round(t, 4), how + " (too few validation faces to calibrate on grouping)"


def _grouping_threshold(fit: FitResult, verify_t: float) -> tuple[float, str] | None:
    """The middle of the thresholds whose pairwise F1, grouping the validation faces as
    ``group`` does, is within F1_TOLERANCE of the best (the contiguous run around the best),
    searched from 0.3x to 2.5x the best-accuracy verification threshold. The middle of the
    plateau, not its best point: on a few hundred faces one merge or split moves the best
    point by 20%, the plateau barely."""
    import numpy as np

    from .. import evaluate as ev
    from ..cluster import GroupSettings, cluster_faces

    vecs, labels = fit.val_vectors, fit.val_labels
    if vecs is None or labels is None:
        return None
    counts = np.unique(labels, return_counts=True)[1]
    people, pairs = int((counts >= 2).sum()), int((counts * (counts - 1) // 2).sum())
    if people < MIN_CALIBRATION_PEOPLE or pairs < MIN_CALIBRATION_PAIRS:
        return None
    settings = GroupSettings()
    grid = np.clip(np.arange(0.3, 2.5 + 1e-9, 0.02) * verify_t, 1e-3, 3.99)
    rows = ev.sweep(
        [float(t) for t in grid],
        lambda t: cluster_faces(vecs, settings.with_threshold(t)),
        labels,
    )
    f1 = np.array([float(r["pairwise_f1"]) for r in rows])
    top = int(np.argmax(f1))
    good = f1 >= f1[top] - F1_TOLERANCE
    lo = hi = top
    while lo > 0 and good[lo - 1]:
        lo -= 1
    while hi < len(grid) - 1 and good[hi + 1]:
        hi += 1
    t = float((grid[lo] + grid[hi]) / 2)
    note = (
        f"middle of {grid[lo]:.3g}-{grid[hi]:.3g}, where grouping the {len(labels)} "
        f"validation faces gives a pairwise F1 within {F1_TOLERANCE} of its best {f1[top]:.3f}"
    )
    return round(min(max(t, 0.01), 3.99), 4), note
