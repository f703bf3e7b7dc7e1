"""Decoding a frame once: header guard, reduced decoding, EXIF orientation, corrupt data."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.fixtures.badinput import FATAL_IMAGES, clean_tags, png_named_jpg
from xunjian.datasets.flightgen import encode_jpeg
from xunjian.errors import InputError
from xunjian.inspect.decode import decode_image, read_image_header, reduction_for_scale


def gradient(width: int, height: int) -> np.ndarray:
    """An image whose every corner differs, so any flip or turn shows."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=-1).astype(np.uint8)


def jpeg(width: int = 320, height: int = 240, params: tuple[int, ...] = ()) -> bytes:
    ok, data = cv2.imencode(".jpg", gradient(width, height), list(params))
    assert ok
    return data.tobytes()


def test_full_decode_gives_bgr_pixels_and_the_original_size() -> None:
    image = decode_image(jpeg(), source="a.jpg")
    assert image.pixels.shape == (240, 320, 3) and image.pixels.dtype == np.uint8
    assert (image.width, image.height, image.format, image.reduction) == (320, 240, "JPEG", 1)
    assert image.scale_to_original == (1.0, 1.0)


@pytest.mark.parametrize(
    ("scale", "reduction", "shape"),
    [(0.5, 2, (120, 160)), (0.25, 4, (60, 80)), (0.125, 8, (30, 40)), (0.3, 2, (72, 96))],
)
def test_reduced_decoding_uses_libjpeg_scaling_then_resizes_the_rest(
    scale: float, reduction: int, shape: tuple[int, int]
) -> None:
    image = decode_image(jpeg(), working_scale=scale)
    assert image.reduction == reduction
    assert image.pixels.shape[:2] == shape
    sx, sy = image.scale_to_original
    assert sx == pytest.approx(1 / scale, rel=0.02) and sy == pytest.approx(1 / scale, rel=0.02)


def test_reduction_for_scale() -> None:
    assert [reduction_for_scale(s) for s in (1.0, 0.9, 0.5, 0.49, 0.25, 0.2, 0.125, 0.01)] == [
        1, 1, 2, 1 * 2, 4, 4, 8, 8,
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"expected a value in \(0, 1\]"):
        reduction_for_scale(0.0)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_opencv(orientation: int) -> None:
    data = encode_jpeg(gradient(64, 48), clean_tags(orientation=orientation))
    header = read_image_header(data, "o.jpg")
    assert header.orientation == orientation
    expected_size = (48, 64) if orientation >= 5 else (64, 48)
    assert (header.width, header.height) == expected_size
    ours = decode_image(data).pixels
    opencv = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # applies EXIF
    assert opencv is not None
    assert ours.shape == opencv.shape == (expected_size[1], expected_size[0], 3)
    assert np.array_equal(ours, opencv)
    half = decode_image(data, working_scale=0.5)
    assert half.pixels.shape[:2] == (expected_size[1] // 2, expected_size[0] // 2)
    assert (half.width, half.height) == expected_size


def test_png_grayscale_and_other_formats_decode() -> None:
    out = io.BytesIO()
    Image.fromarray(gradient(50, 30)[..., 0]).save(out, "PNG")
    image = decode_image(out.getvalue(), source="g.png")
    assert image.format == "PNG" and image.pixels.shape == (30, 50, 3)
    bmp = io.BytesIO()
    Image.fromarray(gradient(20, 10)).save(bmp, "BMP")
    assert decode_image(bmp.getvalue()).pixels.shape == (10, 20, 3)


def test_progressive_restart_and_trailing_preview_jpegs_are_not_called_corrupt() -> None:
    progressive = jpeg(params=(cv2.IMWRITE_JPEG_PROGRESSIVE, 1))
    restarts = jpeg(params=(cv2.IMWRITE_JPEG_RST_INTERVAL, 2))
    with_preview = jpeg() + jpeg(64, 48)  # DJI appends MPF previews after the main image
    for data in (progressive, restarts, with_preview):
        assert decode_image(data).pixels.shape == (240, 320, 3)


@pytest.mark.parametrize("case", [c for c in FATAL_IMAGES if c != "png_named_jpg"])
def test_unusable_files_are_input_errors_naming_the_file(tmp_path: Path, case: str) -> None:
    writer, _ = FATAL_IMAGES[case]
    path = writer(tmp_path)
    with pytest.raises(InputError) as caught:
        decode_image(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert caught.value.source == str(path)
    reasons = {
        "corrupt_header": "expected a marker",
        "corrupt_scan": "corrupt JPEG data: marker FFC0 inside the compressed image",
        "truncated": "truncated",
        "text_named_jpg": "not a readable image: unknown format, found text",
        "empty_file": "empty file",
        "decompression_bomb": "decompression bomb refused: header claims 65535×65535",
    }
    assert reasons[case] in caught.value.reason


def test_a_png_named_jpg_is_decoded_by_its_content(tmp_path: Path) -> None:
    assert decode_image(png_named_jpg(tmp_path)).format == "PNG"


def test_the_pixel_limit_is_checked_before_decoding(tmp_path: Path) -> None:
    data = jpeg(320, 240)
    with pytest.raises(InputError, match=r"320×240 = 76800 pixels, limit 76799"):
        decode_image(data, source="big.jpg", max_pixels=76_799)
    missing = tmp_path / "nope.jpg"
    with pytest.raises(InputError, match=r"nope\.jpg: cannot read file"):
        decode_image(missing)
