"""Decode a frame once, at the resolution the detectors need, with its orientation settled.

* **Header first.** The frame size is read from the header without decoding any pixels
  (JPEG markers, PNG IHDR, Pillow's lazy open for other formats) and a frame claiming more than
  ``max_pixels`` is refused as a decompression bomb before a decoder sees it.
* **Reduced decoding.** ``working_scale`` s ≤ 1 asks for an image about s × the original size.
  libjpeg decodes at 1/2, 1/4 or 1/8 directly (``IMREAD_REDUCED_COLOR_2/4/8``: the DCT is
  scaled, so a 20 MP frame at 1/2 costs about half the time and a quarter of the memory); the
  largest such reduction not below s is used, and an ``INTER_AREA`` resize covers the rest.
  Pick s from the ground sample distance and the smallest target (see
  :func:`xunjian.inspect.detect.scale_for_targets`).
* **Orientation, explicitly.** The pixels are decoded with ``IMREAD_IGNORE_ORIENTATION`` (as
  stored) and the EXIF orientation read from the header is then applied here, the way OpenCV's
  own ``ExifTransform`` does. The result is the image as displayed — the frame that
  :class:`~xunjian.core.records.Frame` sizes and intrinsics refer to — whatever the OpenCV
  build's default. ``width``/``height`` are the displayed original size.
* **Corruption is an error.** Unreadable, truncated or corrupt data raises
  :class:`~xunjian.errors.InputError` naming the file. libjpeg silently resynchronises over a
  stray marker in the compressed data, so the JPEG scan is walked for markers that cannot be
  there before decoding.

May import: numpy, cv2, Pillow (lazily), ``xunjian.inspect.xmp``, ``xunjian.errors``.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from xunjian.errors import InputError
from xunjian.inspect.xmp import NotAJpegError, read_jpeg_header

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DecodedImage",
    "ImageHeader",
    "decode_image",
    "read_image_header",
    "reduction_for_scale",
]

DEFAULT_MAX_PIXELS = 120_000_000
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PIL_LOCK = threading.Lock()  # warnings.catch_warnings is process-global
# Markers that may sit between the scans of a (progressive) JPEG, each with a length.
_BETWEEN_SCANS = frozenset({0xC4, 0xCC, 0xDA, 0xDB, 0xDD, 0xFE, *range(0xE0, 0xF0)})


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """What the header says: format, displayed size (orientation applied), EXIF orientation."""

    format: str
    width: int
    height: int
    orientation: int = 1
    scan_offset: int | None = None  # JPEG: where the first scan's compressed data starts


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """A decoded frame: ``pixels`` BGR uint8 (h, w, 3), displayed orientation, maybe reduced.

    ``width`` × ``height`` is the original displayed size: multiply decoded pixel coordinates
    by :attr:`scale_to_original` to get original ones.
    """

    source: str
    pixels: NDArray[np.uint8]
    width: int
    height: int
    format: str
    orientation: int = 1
    reduction: int = 1

    @property
    def scale_to_original(self) -> tuple[float, float]:
        h, w = self.pixels.shape[:2]
        return (self.width / w, self.height / h)


def _exif_orientation(app1: list[bytes]) -> int:
    """The IFD0 Orientation tag (1…8) of the EXIF segment; 1 when absent or malformed."""
    for payload in app1:
        if not payload.startswith(b"Exif\x00\x00"):
            continue
        tiff = payload[6:]
        endian = {b"II": "<", b"MM": ">"}.get(tiff[:2])
        if endian is None or len(tiff) < 8:
            return 1
        (ifd,) = struct.unpack(endian + "I", tiff[4:8])
        if ifd + 2 > len(tiff):
            return 1
        (count,) = struct.unpack(endian + "H", tiff[ifd : ifd + 2])
        for k in range(min(count, 1024)):
            entry = ifd + 2 + 12 * k
            if entry + 12 > len(tiff):
                break
            tag, kind, n = struct.unpack(endian + "HHI", tiff[entry : entry + 8])
            if tag == 0x0112 and kind == 3 and n >= 1:
                (value,) = struct.unpack(endian + "H", tiff[entry + 8 : entry + 10])
                return int(value) if 1 <= value <= 8 else 1
        return 1
    return 1


def _pillow_size(data: bytes, source: str) -> tuple[str, int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with _PIL_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we check below
            with Image.open(io.BytesIO(data)) as image:
                return (image.format or "image", image.width, image.height)
    except Image.DecompressionBombError as exc:
        raise InputError(f"decompression bomb refused: {exc}", source=source) from exc
    except UnidentifiedImageError as exc:
        text = all(32 <= b < 127 or b in (9, 10, 13) for b in data[:64])
        found = "text" if text else f"data starting {data[:8].hex()}"
        raise InputError(
            f"not a readable image: unknown format, found {found}", source=source
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"not a readable image: {exc}", source=source) from exc
    except ImportError as exc:
        # Once ultralytics is imported it patches Image.open to import an optional HEIF plugin
        # on unidentified files; without the plugin that is an ImportError, not a bad image.
        raise InputError(f"not a readable image (no decoder for it: {exc})", source=source) from exc


def read_image_header(data: bytes, source: str) -> ImageHeader:
    """The header of JPEG, PNG or any format Pillow knows, without decoding pixels."""
    if not data:
        raise InputError("empty file: expected an image", source=source)
    if data[:2] == b"\xff\xd8":
        fp = io.BytesIO(data)
        try:
            jpeg = read_jpeg_header(fp)
        except NotAJpegError as exc:
            raise InputError(str(exc), source=source) from exc
        orientation = _exif_orientation(jpeg.app1)
        w, h = (jpeg.height, jpeg.width) if orientation >= 5 else (jpeg.width, jpeg.height)
        return ImageHeader("JPEG", w, h, orientation, fp.tell())
    if data.startswith(_PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise InputError("corrupt PNG header: no IHDR chunk", source=source)
        w, h = struct.unpack(">II", data[16:24])
        return ImageHeader("PNG", w, h)
    fmt, w, h = _pillow_size(data, source)
    return ImageHeader(fmt, w, h)


def _jpeg_scan_problem(data: bytes, start: int) -> str | None:
    """A marker inside the compressed data that cannot be there, else None.

    Walks from the first scan to the first end-of-image marker (data after it — DJI's MPF
    preview images — belongs to other images). Between scans only table, restart-interval,
    comment, APPn and further scan headers may appear, each skipped by its length.
    """
    arr = np.frombuffer(data, np.uint8)
    ff = np.flatnonzero(arr[start:-1] == 0xFF) + start
    following = arr[ff + 1]
    plain = (following == 0x00) | (following == 0xFF) | ((following >= 0xD0) & (following <= 0xD7))
    pos = start
    for p in ff[~plain].tolist():
        if p < pos:
            continue  # inside a segment already skipped
        code = data[p + 1]
        if code == 0xD9:
            return None
        if code in _BETWEEN_SCANS and p + 4 <= len(data):
            pos = p + 2 + int.from_bytes(data[p + 2 : p + 4], "big")
            continue
        return f"corrupt JPEG data: marker FF{code:02X} inside the compressed image at byte {p}"
    return None  # no end marker: the decoder decides whether the data is whole


def reduction_for_scale(scale: float) -> int:
    """The largest libjpeg reduction (1, 2, 4, 8) that keeps at least ``scale`` of the size."""
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"working scale: expected a value in (0, 1], got {scale}")
    for factor in (8, 4, 2):
        if 1.0 / factor >= scale * 0.999:
            return factor
    return 1


_REDUCED_FLAGS = {1: "IMREAD_COLOR", 2: "IMREAD_REDUCED_COLOR_2", 4: "IMREAD_REDUCED_COLOR_4"}
_REDUCED_FLAGS[8] = "IMREAD_REDUCED_COLOR_8"


def _apply_orientation(pixels: NDArray[np.uint8], orientation: int) -> NDArray[np.uint8]:
    """EXIF orientation 1…8 applied as OpenCV's ``ExifTransform`` does."""
    import cv2

    if orientation == 1:
        return pixels
    if orientation >= 5:
        pixels = np.asarray(cv2.transpose(pixels), np.uint8)
    flip = {2: 1, 3: -1, 4: 0, 6: 1, 7: -1, 8: 0}.get(orientation)
    return pixels if flip is None else np.asarray(cv2.flip(pixels, flip), np.uint8)


def decode_image(
    image: bytes | Path | str,
    *,
    source: str | None = None,
    working_scale: float = 1.0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    fit_long_side: int | None = None,
) -> DecodedImage:
    """Decodes a frame once (see the module docstring); InputError names the file and reason.

    ``fit_long_side`` (with ``working_scale`` 1): the whole image will be shrunk to that long
    side anyway (e.g. letterboxed into a network input), so it is decoded just that large —
    libjpeg's reduced decoding does most of it.
    """
    import cv2

    if isinstance(image, bytes):
        data, name = image, source or "<bytes>"
    else:
        name = source or str(image)
        try:
            data = Path(image).read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read file: {exc.strerror or exc}", source=name) from exc
    header = read_image_header(data, name)
    if header.width < 1 or header.height < 1:
        raise InputError(
            f"header gives no image size ({header.width}×{header.height})", source=name
        )
    if header.width * header.height > max_pixels:
        raise InputError(
            f"decompression bomb refused: header claims {header.width}×{header.height}"
            f" = {header.width * header.height} pixels, limit {max_pixels}",
            source=name,
        )
    if header.scan_offset is not None:
        problem = _jpeg_scan_problem(data, header.scan_offset)
        if problem:
            raise InputError(problem, source=name)
    if fit_long_side is not None and working_scale == 1.0:
        working_scale = min(1.0, fit_long_side / max(header.width, header.height))
    factor = reduction_for_scale(working_scale)
    flags = getattr(cv2, _REDUCED_FLAGS[factor]) | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        raw = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as exc:
        raise InputError(f"cannot decode {header.format}: {exc}", source=name) from exc
    if raw is None:
        raise InputError(f"corrupt or truncated {header.format}: the decoder gave up", source=name)
    if raw.ndim == 2:
        raw = cv2.cvtColor(raw, cv2.COLOR_GRAY2BGR)
    pixels = _apply_orientation(np.asarray(raw, np.uint8), header.orientation)
    target_w = max(1, round(header.width * working_scale))
    target_h = max(1, round(header.height * working_scale))
    if pixels.shape[1] > target_w * 1.05:
        pixels = np.asarray(
            cv2.resize(pixels, (target_w, target_h), interpolation=cv2.INTER_AREA), np.uint8
        )
    return DecodedImage(
        name, pixels, header.width, header.height, header.format, header.orientation, factor
    )
