"""Safe image decoding: content sniffing, EXIF orientation, mode conversion, size limits,
reduced-size JPEG decode. Every failure becomes an :class:`ImageError` with a short reason."""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from . import config
from .errors import ImageError, ImageTooLarge, UnsupportedImage

_pillow_configured = False


def _configure_pillow() -> None:
    """We enforce our own pixel limit after draft reduction (see decode()), so Pillow's
    open-time bomb check, which would refuse a 200 MP JPEG that decodes fine at 1/8 scale,
    is switched off, and truncated files are errors. Pillow's settings are process-wide:
    this runs when facecluster first decodes, not when it is imported."""
    global _pillow_configured
    if not _pillow_configured:
        Image.MAX_IMAGE_PIXELS = None
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        _pillow_configured = True


IMAGE_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .jfif .png .gif .bmp .dib .tif .tiff .webp .heic .heif .hif .avif "
    ".mpo .jp2 .j2k .jpf .jxl".split()
)
# Files with these extensions are never images: skipped without reading a byte.
NON_IMAGE_EXTENSIONS = frozenset(
    ".mp4 .mov .m4v .avi .mkv .3gp .mts .m2ts .wmv .webm .mp3 .m4a .wav .aac .flac "
    ".txt .md .json .xml .xmp .csv .html .htm .pdf .aae .thm .ini .db .sqlite .zip .gz "
    ".tar .7z .rar .py .sh .exe .dll .so .lock .log .ds_store .doc .docx .xls .xlsx".split()
)

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_heif_registered = False


def sniff(header: bytes) -> str | None:
    """The image format named by a file's first bytes, or None when it is not an image
    we know. ``"JXL"`` is recognised so that it can be reported as unsupported."""
    if header[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if header[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if header[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if header[:2] == b"BM":
        return "BMP"
    if header[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if header[:4] == b"RIFF" and header[8:12] == b"WEBP":
        return "WEBP"
    if header[4:8] == b"ftyp":
        brand = header[8:12]
        if brand in _AVIF_BRANDS:
            return "AVIF"
        if brand in _HEIF_BRANDS:
            return "HEIF"
    if header[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or header[:4] == b"\xff\x4f\xff\x51":
        return "JPEG2000"
    if header[:2] == b"\xff\x0a" or header[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n":
        return "JXL"
    return None


def looks_like_image(path: Path) -> bool:
    """For a file whose extension says nothing: does its content say it is an image?"""
    try:
        with open(path, "rb") as f:
            return sniff(f.read(16)) is not None
    except OSError:
        return False


def _register_heif() -> None:
    global _heif_registered
    if not _heif_registered:
        from pillow_heif import register_heif_opener

        register_heif_opener()
        _heif_registered = True


def _draft_size(width: int, height: int) -> tuple[int, int] | None:
    """The size to request from JPEG draft mode, or None to decode at full size."""
    long_side = max(width, height)
    if long_side <= config.DECODE_MIN_SIDE:
        return None
    s = config.DECODE_MIN_SIDE / long_side
    return max(1, math.ceil(width * s)), max(1, math.ceil(height * s))


def _to_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im
    if mode.startswith("I;16") or mode in ("I", "F"):
        # 16-bit or 32-bit greyscale: scale to 8 bits instead of clipping at 255.
        arr = np.asarray(im, dtype=np.float32)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        grey = np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
        # Composite transparent images on white rather than letting alpha drop to black.
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "LAB":
        from PIL import ImageCms

        converted = ImageCms.applyTransform(
            im,
            ImageCms.buildTransform(
                ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"
            ),
        )
        return converted if converted is not None else im.convert("RGB")
    return im.convert("RGB")


def decode(data: bytes, max_pixels: int | None = None) -> tuple[np.ndarray, int, int, float]:
    """Decode image bytes to an upright RGB uint8 array.

    Returns ``(image, width, height, scale)``: ``width`` x ``height`` is the size of the
    upright original and ``scale`` the ratio of ``image`` to it (below 1 when a large JPEG
    was decoded in draft mode). Raises :class:`ImageError` with a short reason.
    """
    rgb, width, height, scale = _decode(data, max_pixels)
    return np.asarray(rgb, dtype=np.uint8), width, height, scale


def decode_pair(
    data: bytes, small_side: int, max_pixels: int | None = None
) -> tuple[np.ndarray, int, int, float, np.ndarray, float]:
    """:func:`decode` plus a copy shrunk to at most ``small_side`` for detection:
    ``(image, width, height, scale, small, small_scale)``, ``small_scale`` being pixels
    of ``small`` per pixel of ``image``. Cheaper than :func:`resize_max` on the array:
    the copy is made from the decoded image with a box reduction first."""
    rgb, width, height, scale = _decode(data, max_pixels)
    image = np.asarray(rgb, dtype=np.uint8)
    if small_side < max(rgb.size) < 2 * small_side:
        # A shrink by less than 2 (YuNet's 2240 px copy): plain bilinear sampling on the
        # array is 10x cheaper than Pillow's antialiased filter and aliases little.
        import cv2

        f = small_side / max(rgb.size)
        size = (max(1, round(rgb.width * f)), max(1, round(rgb.height * f)))
        small_array = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        return image, width, height, scale, small_array, size[0] / rgb.width
    small = _shrink(rgb, small_side, reducing_gap=1.0)
    if small is rgb:
        return image, width, height, scale, image, 1.0
    return image, width, height, scale, np.asarray(small, dtype=np.uint8), small.width / rgb.width


def _decode(data: bytes, max_pixels: int | None) -> tuple[Image.Image, int, int, float]:
    """The upright RGB image, the original's size and the decode scale."""
    if not data:
        raise ImageError("empty file (0 bytes)")
    kind = sniff(data[:16])
    if kind is None:
        raise UnsupportedImage("not an image (unrecognised content)")
    if kind == "JXL":
        raise UnsupportedImage("unsupported image format: JPEG XL")
    if kind == "HEIF":
        _register_heif()
    limit = max_pixels or config.MAX_DECODE_PIXELS
    _configure_pillow()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(data))
            full_w, full_h = im.size
            if im.format in ("JPEG", "MPO"):
                target = _draft_size(full_w, full_h)
                if target is not None:
                    im.draft("RGB", target)
            if im.size[0] * im.size[1] > limit:
                raise ImageTooLarge(
                    f"image too large: {full_w}x{full_h} "
                    f"({full_w * full_h / 1e6:.0f} MP, limit {limit / 1e6:.0f} MP)"
                )
            im.load()
            orientation = im.getexif().get(0x0112, 1)
            upright: Image.Image = ImageOps.exif_transpose(im) or im
            upright = _shrink(upright, config.DECODE_MAX_SIDE, reducing_gap=2.0)
            scale = max(upright.size) / max(full_w, full_h)
            rgb = _to_rgb(upright)
            rgb.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise UnsupportedImage(f"cannot decode {kind} image") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError) as exc:
        raise ImageError(f"corrupt {kind} image: {_short(exc)}") from None
    except MemoryError:
        raise ImageTooLarge("image too large to decode in memory") from None
    # Orientations 5-8 swap the axes of the upright image.
    width, height = (full_h, full_w) if orientation in (5, 6, 7, 8) else (full_w, full_h)
    return rgb, width, height, scale


def exif_orientation(path: Path) -> int:
    """The EXIF orientation (1-8) :func:`decode` applies to the file, read from its header
    only; 1 when it has none or cannot be read."""
    return header(path)[0]


def header(path: Path) -> tuple[int, tuple[int, int]]:
    """The EXIF orientation :func:`decode` applies to the file and the size of the image
    as stored (before orientation), from its header only; (1, (0, 0)) when unreadable."""
    _configure_pillow()
    try:
        with open(path, "rb") as f:
            if sniff(f.read(16)) == "HEIF":
                _register_heif()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                value, size = im.getexif().get(0x0112, 1), im.size
    except Exception:  # an unreadable header: no orientation, never a failed scan
        return 1, (0, 0)
    return (value if isinstance(value, int) and 1 <= value <= 8 else 1), size


def open_rgb(path: Path) -> np.ndarray:
    """Read and decode a file at full (or draft-reduced) resolution. Raises ImageError."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return decode(data)[0]


def resize_max(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Shrink so the long side is at most ``max_side``; returns (image, scale)."""
    if max(image.shape[:2]) <= max_side:
        return image, 1.0
    small = _shrink(Image.fromarray(image), max_side, reducing_gap=2.0)
    return np.asarray(small), small.width / image.shape[1]


def _shrink(im: Image.Image, max_side: int, reducing_gap: float) -> Image.Image:
    """``im`` itself when its long side is at most ``max_side``, else a bilinear copy
    that fits (``reducing_gap``: Pillow's box pre-reduction, smaller is faster)."""
    if max(im.size) <= max_side:
        return im
    f = max_side / max(im.size)
    size = (max(1, round(im.size[0] * f)), max(1, round(im.size[1] * f)))
    return im.resize(size, Image.Resampling.BILINEAR, reducing_gap=reducing_gap)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
