"""What a training run returns and writes: the summary record, the model's name and the
calibrated threshold."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import config
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


def calibrate(fit: FitResult, base_threshold: float | None) -> tuple[float, str]:
    """The new encoder's default threshold for grouping and verification.

    The best-accuracy verification threshold on the validation pairs, scaled by the ratio
    the base encoder's own calibrated threshold bears to its best-accuracy threshold on
    the same pairs (epoch 0 of a head or a fine-tune is the base encoder itself). Without
    validation pairs the base's threshold is kept.
    """
    first, chosen = fit.history[0], fit.history[fit.best_epoch]
    if chosen.val_threshold is None:
        t = base_threshold if base_threshold is not None else 1.1
        return t, "no validation pairs: the base encoder's threshold"
    ratio, how = 1.0, "validation best-accuracy threshold"
    if base_threshold is not None and first.val_threshold:
        ratio = base_threshold / first.val_threshold
        how += f" x {ratio:.3f} (the base's calibrated / best-accuracy ratio)"
    t = min(max(chosen.val_threshold * ratio, 0.01), 3.99)
    return round(t, 4), how
