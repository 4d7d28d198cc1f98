"""Decoding real files: the in-repo photos (tests/data) in the default run, every file of
../shared/data/edge (formats, orientation, broken files) when the shared sets are there."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facecluster import imageio
from facecluster.errors import ImageError, ImageTooLarge, UnsupportedImage

from .conftest import EDGE, edge_params, sample_edge

shared = pytest.mark.shared_data


def _decode(rel: str):
    return imageio.decode((EDGE / rel).read_bytes())


# --- the in-repo photos ----------------------------------------------------------------


def test_exif_orientation_6_is_applied_to_the_pixels():
    """Orientation 6: the stored pixels are the upright photo turned 90 degrees
    anticlockwise, so the decoded image must be the stored one turned back clockwise."""
    path = sample_edge("exif_orientation")
    with Image.open(path) as im:
        assert im.getexif().get(0x0112) == 6
        stored = np.asarray(im.convert("RGB")).astype(int)
    image, width, height, scale = imageio.decode(path.read_bytes())
    assert scale == 1 and (width, height) == (image.shape[1], image.shape[0])
    assert np.abs(image - np.rot90(stored, k=-1)).mean() < 1
    assert np.abs(image - stored).mean() > 30  # the test can tell the two apart


def test_truncated_jpeg_raises_a_short_image_error():
    path = sample_edge("broken")
    assert imageio.sniff(path.read_bytes()[:16]) == "JPEG"  # it does look like a JPEG
    with pytest.raises(ImageError, match="truncated") as info:
        imageio.decode(path.read_bytes())
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


def test_sample_photos_decode_to_upright_rgb():
    for category in ("multi_face", "no_face"):
        image, width, height, scale = imageio.decode(sample_edge(category).read_bytes())
        assert image.dtype == np.uint8 and image.shape == (height, width, 3) and scale == 1


# --- the full edge set (../shared/data/edge) -------------------------------------------


@shared
@pytest.mark.parametrize("row", edge_params(exclude=".jxl"))
def test_every_readable_edge_file_decodes_to_rgb(row):
    image, width, height, scale = _decode(row["path"])
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert 0 < scale <= 1
    assert abs(image.shape[1] - width * scale) <= 2 and abs(image.shape[0] - height * scale) <= 2


@shared
@pytest.mark.parametrize("row", edge_params("broken"))
def test_broken_files_raise_a_short_image_error(row):
    with pytest.raises(ImageError) as info:
        _decode(row["path"])
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


@shared
def test_jpeg_xl_is_reported_as_unsupported():
    with pytest.raises(UnsupportedImage, match="JPEG XL"):
        _decode("formats/jxl_8bit_srgb.jxl")


@shared
def test_webp_named_jpg_is_sniffed_by_content():
    data = (EDGE / "formats/webp_data_with_jpg_extension.jpg").read_bytes()
    assert imageio.sniff(data[:16]) == "WEBP"
    assert imageio.looks_like_image(EDGE / "formats/webp_data_with_jpg_extension.jpg")
    assert not imageio.looks_like_image(EDGE / "broken/generated_text_file.jpg")


@shared
@pytest.mark.parametrize("n", range(2, 9))
@pytest.mark.parametrize("ext", ["jpg", "webp"])
def test_exif_orientation_gives_the_upright_image(n, ext):
    upright, *_ = _decode("exif_orientation/hopper_orientation_1.jpg")
    rotated, w, h, _ = _decode(f"exif_orientation/hopper_orientation_{n}.{ext}")
    assert rotated.shape == upright.shape
    # Lossy re-encodes differ a little; a wrong orientation differs a lot.
    diff = np.abs(rotated.astype(int) - upright.astype(int)).mean()
    assert diff < 12, f"orientation {n} not applied (mean abs diff {diff:.1f})"


@shared
def test_large_jpeg_is_decoded_in_draft_mode_with_original_size_reported():
    image, width, height, scale = _decode("large/immich_craft-beer_24MP.jpg")
    assert (width, height) == (6000, 4000)
    assert scale < 1 and max(image.shape[:2]) >= 2048


@shared
def test_decompression_bomb_jpeg_is_decoded_reduced_and_bombs_in_other_formats_refused():
    image, width, height, scale = _decode("large/sharp_giant_280MP_red.jpg")
    assert (width, height) == (20000, 14000) and scale == pytest.approx(1 / 8)
    big = Image.new("L", (20000, 10000))
    import io

    buf = io.BytesIO()
    big.save(buf, "PNG")
    with pytest.raises(ImageTooLarge):
        imageio.decode(buf.getvalue(), max_pixels=100_000_000)


@shared
def test_sixteen_bit_png_keeps_its_contrast():
    image, *_ = _decode("formats/png16_rgb_flag.png")
    # The Dutch flag: red, white and blue bands must all survive the 16 -> 8 bit mapping.
    top, mid, bottom = image[10, 10], image[image.shape[0] // 2, 10], image[-10, 10]
    assert top[0] > 150 and top[2] < 100
    assert mid.min() > 200
    assert bottom[2] > 100 and bottom[0] < 100


def test_resize_max():
    img = np.zeros((3000, 1500, 3), np.uint8)
    small, s = imageio.resize_max(img, 1000)
    assert small.shape[:2] == (1000, 500) and s == pytest.approx(1 / 3)
    same, s1 = imageio.resize_max(img[:100, :100], 1000)
    assert same.shape[:2] == (100, 100) and s1 == 1.0
