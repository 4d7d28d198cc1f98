"""Defaults and paths: XDG directories, environment variables, tunables."""

from __future__ import annotations

import os
from pathlib import Path

ENV_DB = "FACECLUSTER_DB"
ENV_WEIGHTS = "FACECLUSTER_WEIGHTS"
ENV_OFFLINE = "FACECLUSTER_OFFLINE"  # "1": never try to download model weights
ENV_DEBUG = "FACECLUSTER_DEBUG"  # "1": print the traceback behind an error line

DEFAULT_BATCH_SIZE = 16
DEFAULT_MIN_FACE = 20  # pixels, in the photo's own resolution
# Detection runs on a copy whose long side is at most this many pixels; faces are
# cropped from the full-resolution decode, so the encoder still sees sharp pixels.
DETECT_MAX_SIDE = 1280
# On the CPU, photos go through the models in runs of at most this many detection pixels:
# 16 LFW-size photos (250 x 250) together, where batching saves 25%, but a camera photo
# (1280 x 960 after the shrink above) alone, which is no slower than batching it (1.1 s
# vs 1.5 s for four: docs/performance.md) and lets the progress bar move per photo.
MODEL_CHUNK_PIXELS = 1_000_000
# JPEGs are decoded at a reduced scale (draft mode) but never below this long side,
# so a face that fills 1/10 of the frame still has >= 150 px for the encoder.
DECODE_MIN_SIDE = 2048
# Other formats (HEIC, PNG, ...) decode at full size; larger results are shrunk to this
# long side so that photos in flight stay bounded in memory (at most 50 MB each). With
# draft factors of 1/2 to 1/8 a JPEG of any size lands between 2048 and 4096 px without
# a resize: a 12 MP photo costs 0.16 s to decode instead of 0.35 s (docs/performance.md).
DECODE_MAX_SIDE = 4096
# Refuse to decode more than this many pixels (after draft reduction): a guard
# against decompression bombs that still accepts 100+ MP panoramas as JPEG.
MAX_DECODE_PIXELS = 180_000_000


def default_workers() -> int:
    return max(2, min(8, os.cpu_count() or 2))


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "facecluster"


def default_db_path() -> Path:
    env = os.environ.get(ENV_DB)
    return Path(env).expanduser() if env else data_dir() / "faces.db"


def torch_home() -> Path:
    """Where facenet-pytorch (and torch) cache downloaded weights."""
    env = os.environ.get("TORCH_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(xdg) / "torch"


def offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "") not in ("", "0", "false", "no")


def debug() -> bool:
    return os.environ.get(ENV_DEBUG, "") not in ("", "0", "false", "no")
