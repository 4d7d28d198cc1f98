"""The training loop shared by every mode: P x K batches, mining, AdamW, validation after
each epoch, a checkpoint after each epoch and an exact ``--resume``.

Exactness: epoch e draws its batches from ``default_rng([seed, e])`` and reseeds torch with
``(seed, e)`` (augmentation, dropout), so an epoch depends only on the state at its start,
which the checkpoint holds (network, optimizer, history, best epoch so far).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .. import evaluate as ev
from ..errors import TrainingError
from .losses import MINING, batch_loss
from .sampler import PKSampler, split

if TYPE_CHECKING:
    import torch

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes a run (``epochs`` aside, all must match to resume)."""

    mode: str = "head"
    margin: float = 0.2
    mining: str = "semi-hard"
    identities_per_batch: int = 16
    faces_per_identity: int = 4
    extra_negatives: int = 16
    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.2
    val_by: str = "photo"
    seed: int = 0
    hidden: int = 0  # head mode: hidden units of the residual projection (0: linear)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        if self.mining not in MINING:
            raise TrainingError(f"--mining must be one of {', '.join(MINING)}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise TrainingError("--val-fraction must be in [0, 1)")
        if self.val_by not in ("photo", "identity"):
            raise TrainingError("--val-by must be photo or identity")
        if self.margin <= 0 or self.lr <= 0 or self.epochs < 1:
            raise TrainingError("--margin and --lr must be positive, --epochs at least 1")


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 0: before training
    loss: float | None
    active_fraction: float | None  # active triplets / mined triplets
    triplets: int
    val_accuracy: float | None  # best-threshold verification accuracy on validation pairs
    val_auc: float | None
    val_threshold: float | None
    seconds: float


@dataclass(frozen=True)
class TrainProgress:
    epoch: int
    epochs: int
    batch: int
    batches: int
    loss: float  # running mean over the epoch so far
    active_fraction: float
    val_accuracy: float | None  # of the last finished epoch


@dataclass(frozen=True)
class FitResult:
    history: list[EpochStats]
    best_epoch: int  # the epoch whose weights are returned
    state: dict[str, Any] = field(repr=False)
    train_faces: int
    val_faces: int
    identities: int  # identities that can be among the P of a batch
    batches_per_epoch: int
    resumed_from: int  # 0 unless --resume
    # The validation faces embedded by the returned weights, and their labels (None without
    # validation): what the threshold is calibrated on (result.calibrate).
    val_vectors: np.ndarray | None = field(default=None, repr=False)
    val_labels: np.ndarray | None = field(default=None, repr=False)


class Task(Protocol):
    """What the loop trains: a network over rows of a labelled set."""

    net: torch.nn.Module

    def trainable(self) -> Iterable[torch.nn.Parameter]: ...

    def embed_train(self, rows: np.ndarray) -> torch.Tensor: ...

    def embed_eval(self, rows: np.ndarray) -> np.ndarray: ...


ProgressFn = Callable[[TrainProgress], None]


def fingerprint(cfg: TrainConfig, data: str) -> str:
    d = cfg.as_dict()
    d.pop("epochs")
    return json.dumps({"config": d, "data": data}, sort_keys=True)


def data_digest(*parts: bytes | str) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
    return h.hexdigest()


def _validate(task: Task, rows: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """(accuracy, ROC AUC, threshold) of verification over all validation pairs."""
    emb = task.embed_eval(rows)
    d, same = ev.pair_distances(emb, labels)
    r = ev.verification_report(d, same)
    return r.best_accuracy, r.roc_auc, r.best_threshold


def fit(
    task: Task,
    labels: np.ndarray,
    cfg: TrainConfig,
    *,
    data: str,
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
    device: str = "cpu",
) -> FitResult:
    """Train ``task`` on faces with these labels. ``data`` identifies the training set (a
    digest), so that ``resume`` refuses a checkpoint of another run."""
    import torch

    cfg.check()
    labels = np.asarray(labels, dtype=np.int64)
    val = split(labels, cfg.val_fraction, cfg.val_by, cfg.seed)
    train_rows, val_rows = np.flatnonzero(~val), np.flatnonzero(val)
    sampler = PKSampler(
        labels[train_rows],
        cfg.identities_per_batch,
        cfg.faces_per_identity,
        cfg.extra_negatives,
        cfg.seed,
    )
    val_labels = labels[val_rows]
    can_validate = val_rows.size >= 2 and 0 < np.unique(val_labels).size < val_rows.size
    labels_t = torch.from_numpy(labels).to(device)
    opt = torch.optim.AdamW(task.trainable(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    fp = fingerprint(cfg, data)

    history: list[EpochStats] = []
    best_key: tuple[float, float] | None = None
    best_epoch, best_state = 0, _copy_state(task.net)
    start = 0
    if resume and checkpoint is not None and checkpoint.is_file():
        ck = _load_checkpoint(checkpoint)
        if ck["fingerprint"] != fp:
            raise TrainingError(
                f"{checkpoint} belongs to another run (other data or settings); "
                "drop --resume or use the same settings"
            )
        task.net.load_state_dict(ck["net"])
        opt.load_state_dict(ck["optimizer"])
        history = [EpochStats(**h) for h in json.loads(ck["history"])]
        best_epoch, best_state = int(ck["best_epoch"]), ck["best_state"]
        best_key = _key(history[best_epoch]) if can_validate else None
        start = int(ck["epoch"])
    resumed_from = start

    def record(epoch: int, loss: float | None, act: float | None, n: int, t0: float) -> None:
        nonlocal best_key, best_epoch, best_state
        acc = auc = thr = None
        if can_validate:
            acc, auc, thr = _validate(task, val_rows, val_labels)
        stats = EpochStats(epoch, loss, act, n, acc, auc, thr, time.perf_counter() - t0)
        history.append(stats)
        key = _key(stats) if can_validate else None
        if epoch == 0 or key is None or best_key is None or key > best_key:
            best_key, best_epoch, best_state = key, epoch, _copy_state(task.net)

    if start == 0:
        record(0, None, None, 0, time.perf_counter())
    for epoch in range(start + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        torch.manual_seed(int(np.random.default_rng([cfg.seed, epoch, 7]).integers(2**62)))
        task.net.train()
        loss_sum, mined, active, batches = 0.0, 0, 0, 0
        for b in sampler.epoch(epoch):
            rows = train_rows[b.index]
            emb = task.embed_train(rows)
            out = batch_loss(emb, labels_t[rows], cfg.margin, cfg.mining, b.anchors)
            opt.zero_grad(set_to_none=True)
            if out.triplets:
                out.loss.backward()
                opt.step()
            loss_sum += float(out.loss.detach())
            mined += out.triplets
            active += out.active
            batches += 1
            if progress is not None:
                last = history[-1].val_accuracy if history else None
                progress(
                    TrainProgress(
                        epoch,
                        cfg.epochs,
                        batches,
                        sampler.batches_per_epoch,
                        loss_sum / batches,
                        active / max(mined, 1),
                        last,
                    )
                )
        record(epoch, loss_sum / max(batches, 1), active / max(mined, 1), mined, t0)
        if checkpoint is not None:
            _save_checkpoint(
                checkpoint,
                {
                    "version": CHECKPOINT_VERSION,
                    "fingerprint": fp,
                    "epoch": epoch,
                    "net": _copy_state(task.net),
                    "optimizer": opt.state_dict(),
                    "history": json.dumps([asdict(h) for h in history]),
                    "best_epoch": best_epoch,
                    "best_state": best_state,
                },
            )
    val_vectors = None
    if can_validate:
        task.net.load_state_dict(best_state)
        val_vectors = np.asarray(task.embed_eval(val_rows), np.float32)
    return FitResult(
        history=history,
        best_epoch=best_epoch,
        state=best_state,
        train_faces=int(train_rows.size),
        val_faces=int(val_rows.size),
        identities=int(sampler.eligible.size),
        batches_per_epoch=sampler.batches_per_epoch,
        resumed_from=resumed_from,
        val_vectors=val_vectors,
        val_labels=val_labels if can_validate else None,
    )


def _key(s: EpochStats) -> tuple[float, float]:
    return (s.val_accuracy or 0.0, s.val_auc or 0.0)


def _copy_state(net: torch.nn.Module) -> dict[str, Any]:
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def _save_checkpoint(path: Path, blob: dict[str, Any]) -> None:
    import torch

    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(blob, name)
        os.replace(name, path)
    except BaseException:
        os.unlink(name)
        raise


def _load_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise TrainingError(f"cannot read checkpoint {path}: {first}") from None
    if not isinstance(ck, dict) or ck.get("version") != CHECKPOINT_VERSION:
        raise TrainingError(f"{path} is not a facecluster training checkpoint")
    return ck
