"""``train_encoder``: one call for every training mode (the library behind ``facecluster
train``): head over a frozen encoder's cached embeddings, or InceptionResnetV1 finetuned
or trained from scratch on face chips."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import FaceclusterError, TrainingError
from .loop import ProgressFn, TrainConfig
from .result import TrainResult

# Per-mode defaults of the options left unset.
DEFAULTS: dict[str, dict[str, float]] = {
    "head": {"epochs": 30, "lr": 1e-3},
    "finetune": {"epochs": 10, "lr": 1e-4},
    "scratch": {"epochs": 20, "lr": 1e-3},
}


def train_encoder(
    directory: Path,
    out: str,
    cfg: TrainConfig,
    *,
    base: str = "auto",
    db: Path | None = None,
    weights: Path | None = None,
    resume: bool = False,
    threshold: float | None = None,
    device: str = "auto",
    progress: ProgressFn | None = None,
    prepare: Callable[[int, int], None] | None = None,
    scan_progress: Callable[[Any], None] | None = None,
) -> TrainResult:
    """Train an encoder on DIR/<identity>/ photos and save it as ``out`` (a model file, or
    a bare name saved in the models folder). ``cfg.mode`` picks head, finetune or scratch;
    ``threshold`` is stored as the model's default (else calibrated on validation faces)."""
    if not Path(directory).is_dir():
        raise FaceclusterError(f"no such folder: {directory}")
    if cfg.mode != "head":
        from .images import train_images

        return train_images(
            directory,
            out,
            cfg,
            base=base,
            weights=weights,
            resume=resume,
            threshold=threshold,
            device=device,
            progress=progress,
            prepare=prepare,
        )
    from ..api import FaceIndex
    from ..detect import resolve_device
    from .head import project_cached, train_head
    from .result import model_name, out_path

    with FaceIndex(db, model=base, weights=weights, device=device) as index:
        spec = index.spec
        if spec.path:
            raise TrainingError(f"--base {spec.name} is itself trained; use a built-in encoder")
        name = model_name(spec.name, out)
        target = out_path(out, name)
        lab = index.labelled(directory, scan_progress)
        result = train_head(
            lab.vectors,
            lab.labels,
            lab.identities,
            cfg,
            base=spec.name,
            base_identity=index.identity,
            base_threshold=spec.default_threshold,
            name=name,
            out=target,
            resume=resume,
            threshold=threshold,
            progress=progress,
            device=resolve_device(device),
        )
        projected = project_cached(index.cache, target)
    return replace(result, projected=projected)
