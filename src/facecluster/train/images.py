"""``--mode finetune|scratch``: InceptionResnetV1 trained on face chips.

Faces: each photo under DIR/<identity>/ is decoded and run through MTCNN; the labelled
face (``labelled.labelled_face``: the central one) is cropped exactly as the facenet
encoders crop it for inference (box + 32 px margin, 160 px). Training batches are
augmented per face: horizontal flip, a random crop of 85-100% of the chip resized back to
160 px, colour jitter (brightness, contrast, saturation 0.2). Validation and the saved
encoder see the chip as is.

``finetune`` starts from facenet weights (``--base facenet-vggface2|facenet-casia``,
``--weights``) and trains only the later blocks (``repeat_3``, ``block8``,
``last_linear``, ``last_bn``; the frozen blocks keep their batch-norm statistics);
``scratch`` trains every layer from a random initialisation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ImageError, TrainingError
from .head import check_out
from .loop import ProgressFn, TrainConfig, data_digest, fit
from .result import (
    TrainResult,
    calibrate,
    check_threshold,
    checkpoint_path,
    model_name,
    out_path,
)

if TYPE_CHECKING:
    import torch

UNFROZEN = ("repeat_3", "block8", "last_linear", "last_bn")
PrepareFn = Callable[[int, int], None]


def labelled_photos(root: Path) -> tuple[list[Path], list[str], np.ndarray]:
    """Image files under root/<identity>/ (sorted), identity names and labels."""
    from ..imageio import looks_like_image

    paths, labels = [], []
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for i, name in enumerate(names):
        for f in sorted((root / name).iterdir()):
            if f.is_file() and looks_like_image(f):
                paths.append(f)
                labels.append(i)
    return paths, names, np.asarray(labels, dtype=np.int64)


def face_chips(
    paths: list[Path], device: str, progress: PrepareFn | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(chips (n, 160, 160, 3) uint8, row of each photo kept): the labelled face of each
    photo, cropped as the facenet encoders crop it. Photos without a face are skipped."""
    from ..detect import Detector
    from ..encoders.facenet import crop_face
    from ..encoders.facenet_paths import IMAGE_SIZE, MARGIN
    from ..labelled import labelled_face
    from ..records import Failure, FileEntry
    from ..stages import detect_photos, load_photo

    detector = Detector(device)
    chips, kept = [], []
    for i, path in enumerate(paths):
        st = path.stat()
        photo = load_photo(FileEntry(path, st.st_size, st.st_mtime_ns))
        if progress is not None:
            progress(i + 1, len(paths))
        if isinstance(photo, Failure):
            continue  # unreadable: skipped, as scan skips it
        faces = detect_photos(detector, [photo], 20)[0]
        pick = labelled_face(faces, photo.width, photo.height)
        if pick is None:
            continue
        box = faces[pick].box * photo.scale
        chips.append(crop_face(photo.image, box, IMAGE_SIZE, MARGIN))
        kept.append(i)
    if not chips:
        raise ImageError("no face found in any photo")
    return np.stack(chips), np.asarray(kept, dtype=np.int64)


class ImageTask:
    def __init__(self, chips: np.ndarray, net: torch.nn.Module, device: str, finetune: bool):
        import torch
        from torchvision.transforms import v2

        self.device = torch.device(device)
        self.chips = torch.from_numpy(chips).permute(0, 3, 1, 2).contiguous()  # uint8 NCHW
        self.net = net.to(self.device)
        self.finetune = finetune
        self.augment = v2.Compose(
            [
                v2.RandomHorizontalFlip(),
                v2.RandomResizedCrop(160, scale=(0.85, 1.0), ratio=(0.95, 1.05), antialias=True),
                v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
            ]
        )
        if finetune:
            for name, module in net.named_children():
                module.requires_grad_(name in UNFROZEN)

    def trainable(self) -> Iterable[torch.nn.Parameter]:
        return [p for p in self.net.parameters() if p.requires_grad]

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        return (x.to(self.device).float() - 127.5) / 128.0

    def embed_train(self, rows: np.ndarray) -> torch.Tensor:
        import torch

        if self.finetune:  # frozen blocks keep their batch-norm statistics
            for name, module in self.net.named_children():
                module.train(name in UNFROZEN)
        x = torch.stack([self.augment(self.chips[int(r)]) for r in rows])
        return self.net(self._norm(x))

    def embed_eval(self, rows: np.ndarray, batch: int = 64) -> np.ndarray:
        import torch

        self.net.eval()
        out = []
        with torch.inference_mode():
            for s in range(0, len(rows), batch):
                out.append(self.net(self._norm(self.chips[rows[s : s + batch]])).float().cpu())
        self.net.train()
        return torch.cat(out).numpy()


def train_images(
    root: Path,
    out: str,
    cfg: TrainConfig,
    *,
    base: str = "auto",
    weights: Path | None = None,
    resume: bool = False,
    device: str = "auto",
    progress: ProgressFn | None = None,
    prepare: PrepareFn | None = None,
    threshold: float | None = None,
) -> TrainResult:
    import torch
    from facenet_pytorch import InceptionResnetV1

    from ..detect import resolve_device
    from ..encoders import ENCODERS
    from ..encoders.facenet import load_state_dict
    from ..encoders.facenet_paths import IMAGE_SIZE, MARGIN, facenet_identity, weights_for
    from ..encoders.trained import ARCH_FACENET, save_model
    from ..registry import or_list

    start = time.perf_counter()
    check_threshold(threshold)
    dev = resolve_device(device)
    finetune = cfg.mode == "finetune"
    base_name, base_identity, base_threshold = "", None, None
    state = None
    if finetune:  # weights first: a missing file is reported before anything slow
        base_name = "facenet-vggface2" if base == "auto" else base
        facenets = [s for s in ENCODERS if s.variant]  # the FaceNet (InceptionResnetV1) sets
        spec = next((s for s in facenets if s.name == base_name), None)
        if spec is None:
            names = or_list(s.name for s in facenets)
            raise TrainingError(f"--mode finetune needs --base {names}")
        path = weights_for(base_name, spec.variant, weights)
        state = load_state_dict(path)
        base_threshold = spec.default_threshold
    torch.manual_seed(cfg.seed)
    net = InceptionResnetV1(pretrained=None, classify=False)
    if finetune and state is not None:
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0][:120]
            raise TrainingError(f"{path} does not fit InceptionResnetV1: {first}") from None
        base_identity = facenet_identity(base_name, path)
    name = model_name(base_name, out)
    target = out_path(out, name)
    check_out(target)
    paths, identities, labels = labelled_photos(root)
    if not paths:
        raise TrainingError(f"no photos under {root}: it should hold one folder per person")
    chips, kept = face_chips(paths, dev, prepare)
    labels = labels[kept]
    data = data_digest(
        "\n".join(str(p.relative_to(root)) for p in np.asarray(paths)[kept]),
        labels.tobytes(),
        json.dumps(base_identity),
    )
    task = ImageTask(chips, net, dev, finetune)
    result = fit(
        task,
        labels,
        cfg,
        data=data,
        checkpoint=checkpoint_path(target),
        resume=resume,
        progress=progress,
        device=dev,
    )
    threshold, note = calibrate(result, base_threshold, threshold)
    meta: dict[str, Any] = {
        "name": name,
        "architecture": ARCH_FACENET,
        "mode": cfg.mode,
        "base": base_name,
        "base_identity": base_identity,
        "dim": 512,
        "threshold": threshold,
        "preprocessing": f"mtcnn box + margin {MARGIN} -> {IMAGE_SIZE}px, (x-127.5)/128",
        "training": {
            **cfg.as_dict(),
            "faces": int(labels.size),
            "identities": len(identities),
            "best_epoch": result.best_epoch,
            "data_digest": data,
            "unfrozen": list(UNFROZEN) if finetune else "all",
        },
    }
    save_model(target, meta, result.state)
    return TrainResult(
        name=name,
        out=target,
        checkpoint=checkpoint_path(target),
        mode=cfg.mode,
        base=base_name,
        device=dev,
        config=cfg,
        fit=result,
        threshold=threshold,
        threshold_note=note,
        seconds=time.perf_counter() - start,
    )
