"""``--mode head``: a residual projection trained over a frozen encoder's embeddings.

The inputs are the base encoder's unit vectors of the labelled faces (read from the cache,
so nothing but the tiny head runs: minutes on a CPU). The head starts as the identity
map, and the saved weights are those of the epoch with the best validation verification
accuracy (epoch 0, the base encoder itself, included): early stopping against the small
labelled sets this mode is for.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..cache import AddEmbeddings, FaceCache
from ..errors import CacheLocked, TrainingError
from .loop import ProgressFn, TrainConfig, data_digest, fit
from .result import TrainResult, calibrate, check_threshold, checkpoint_path

if TYPE_CHECKING:
    import torch


class HeadTask:
    def __init__(self, vectors: np.ndarray, hidden: int, device: str, seed: int = 0) -> None:
        import torch

        from ..encoders.trained import HeadNet

        self.device = torch.device(device)
        self.x = torch.from_numpy(np.ascontiguousarray(vectors, np.float32)).to(self.device)
        torch.manual_seed(seed)
        self.net: torch.nn.Module = HeadNet(int(vectors.shape[1]), hidden).to(self.device)

    def trainable(self) -> Iterable[torch.nn.Parameter]:
        return self.net.parameters()

    def embed_train(self, rows: np.ndarray) -> torch.Tensor:
        return self.net(self.x[rows])

    def embed_eval(self, rows: np.ndarray) -> np.ndarray:
        import torch

        self.net.eval()
        with torch.inference_mode():
            out = self.net(self.x[rows]).float().cpu().numpy()
        self.net.train()
        return out


def check_out(out: Path) -> None:
    """Fail before training, not after, when the model file cannot be written."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # A new file of our own (never a name a user's file could have) tells whether the
        # folder takes writes.
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=out.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise TrainingError(f"cannot write --out {out}: {exc.strerror or exc}") from None
    if out.is_dir():
        raise TrainingError(f"--out {out} is a folder; give a file name")


def train_head(
    vectors: np.ndarray,
    labels: np.ndarray,
    identities: list[str],
    cfg: TrainConfig,
    *,
    base: str,
    base_identity: dict[str, object],
    base_threshold: float,
    name: str,
    out: Path,
    resume: bool = False,
    progress: ProgressFn | None = None,
    device: str = "cpu",
    threshold: float | None = None,
) -> TrainResult:
    from ..encoders.trained import ARCH_HEAD, save_model

    start = time.perf_counter()
    check_threshold(threshold)
    check_out(out)
    ckpt = checkpoint_path(out)
    vectors = np.ascontiguousarray(vectors, np.float32)
    labels = np.asarray(labels, np.int64)
    data = data_digest(
        vectors.tobytes(), labels.tobytes(), "\n".join(identities), json.dumps(base_identity)
    )
    import torch

    task = HeadTask(vectors, cfg.hidden, device, cfg.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the head's matrices are tiny: threads only add sync waits
    try:
        result = fit(
            task,
            labels,
            cfg,
            data=data,
            checkpoint=ckpt,
            resume=resume,
            progress=progress,
            device=device,
        )
    finally:
        torch.set_num_threads(threads)
    threshold, note = calibrate(result, base_threshold, threshold)
    meta: dict[str, Any] = {
        "name": name,
        "architecture": ARCH_HEAD,
        "mode": "head",
        "base": base,
        "base_identity": base_identity,
        "dim": int(vectors.shape[1]),
        "hidden": cfg.hidden,
        "threshold": threshold,
        "preprocessing": f"{base} embedding -> residual head",
        "training": {
            **cfg.as_dict(),
            "faces": int(labels.size),
            "identities": len(identities),
            "best_epoch": result.best_epoch,
            "data_digest": data,
        },
        "validation": _val_summary(result.history, result.best_epoch),
    }
    save_model(out, meta, result.state)
    return TrainResult(
        name=name,
        out=out,
        checkpoint=ckpt,
        mode="head",
        base=base,
        device=device,
        config=cfg,
        fit=result,
        threshold=threshold,
        threshold_note=note,
        seconds=time.perf_counter() - start,
    )


def _val_summary(history: list[Any], best: int) -> dict[str, object]:
    h0, hb = history[0], history[best]
    return {
        "accuracy_before": h0.val_accuracy,
        "accuracy_after": hb.val_accuracy,
        "auc_before": h0.val_auc,
        "auc_after": hb.val_auc,
    }


def project_cached(cache: FaceCache, model: Path, chunk: int = 20_000) -> int:
    """Give every cached face that has a base embedding a vector of the trained head, by
    projecting the stored base vectors (exactly what scanning with the head would compute,
    without running the base network). Returns the number of faces; 0 when the database
    is busy with a scan or has no base vectors."""
    import torch

    from ..encoders.base import l2_normalize
    from ..encoders.trained import head_from, read_model

    mf = read_model(model)
    base_id = cache.encoder_id(dict(mf.meta["base_identity"]), register=False)
    if base_id is None:
        return 0
    try:
        cache.lock()
    except CacheLocked:
        return 0
    try:
        ids, vecs = cache.embeddings(base_id)
        if ids.size == 0:
            return 0
        net = head_from(mf)
        enc_id = cache.encoder_id(mf.identity())
        assert enc_id is not None
        for s in range(0, ids.size, chunk):
            with torch.inference_mode():
                out = net(torch.from_numpy(np.array(vecs[s : s + chunk], np.float32)))
            v = l2_normalize(out.float().numpy())
            cache.apply([AddEmbeddings(ids[s : s + chunk].tolist(), v)], enc_id)
        return int(ids.size)
    finally:
        cache.unlock()
