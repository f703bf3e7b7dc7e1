"""Bad photos: each writer puts one broken or hostile JPEG into a folder and returns its path.

No binary fixtures exist anywhere: every file is built here from a small clean DJI-style
JPEG (:func:`xunjian.datasets.flightgen.encode_jpeg`), byte for byte reproducible. Which
stage must refuse each one, and with what reason, is in :mod:`xunjian.testing.badinput`.

May import: numpy, Pillow, ``xunjian.datasets.flightgen``, ``xunjian.inspect.decode``.
"""

from __future__ import annotations

import io
import math
import random
import struct
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xunjian.datasets.flightgen import PhotoTags, encode_jpeg, xmp_packet
from xunjian.inspect.decode import DEFAULT_MAX_PIXELS

CST = timezone(timedelta(hours=8))
START = datetime(2024, 5, 1, 10, 0, 0, tzinfo=CST)
GPS_IFD, EXIF_IFD = 0x8825, 0x8769

Writer = Callable[[Path], Path]
"""Writes one case's file into a folder and returns its path."""


def clean_tags(**changes: Any) -> PhotoTags:
    """A plausible DJI nadir photo over Chongqing; ``changes`` override fields."""
    base: dict[str, Any] = {
        "lat": 29.5630147,
        "lon": 106.5515281,
        "abs_alt_m": 320.0,
        "rel_alt_m": 80.0,
        "gimbal_yaw_deg": 30.0,
        "gimbal_pitch_deg": -90.0,
        "gimbal_roll_deg": 0.0,
        "flight_yaw_deg": 31.0,
        "captured_at": START,
    }
    base.update(changes)
    return PhotoTags(**base)


def pixels(width: int = 64, height: int = 48, seed: int = 0) -> NDArray[np.uint8]:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def clean_jpeg(*, seed: int = 0, **changes: Any) -> bytes:
    """A small clean DJI-style JPEG; ``seed`` varies the pixels, ``changes`` the tags."""
    return encode_jpeg(pixels(seed=seed), clean_tags(**changes))


def write_file(folder: Path, name: str, data: bytes) -> Path:
    """Writes ``data`` to ``folder/name`` (folders created) and returns the path."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _with_xmp(packet: bytes) -> bytes:
    return encode_jpeg(pixels(), clean_tags(), xmp=packet)


def _segment(data: bytes, marker: int, signature: bytes = b"") -> tuple[int, int]:
    """(start of the marker, end of the segment) of the first such segment before the scan."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF and data[pos + 1] != 0xDA:
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if data[pos + 1] == marker and data[pos + 4 : pos + 4 + len(signature)] == signature:
            return pos, end
        pos = end
    raise ValueError(f"no FF{marker:02X} segment in the clean JPEG")


def _retagged(exif: dict[int, Any] | None = None, gps: dict[int, Any] | None = None) -> bytes:
    """The clean photo with some EXIF (sub-IFD) or GPS tags replaced, written by Pillow as-is
    (so a rational can have a zero denominator and a tag any value its type allows)."""
    from PIL import Image

    with Image.open(io.BytesIO(clean_jpeg())) as image:
        tags = image.getexif()
    tags.get_ifd(EXIF_IFD).update(exif or {})
    tags.get_ifd(GPS_IFD).update(gps or {})
    out = io.BytesIO()
    Image.fromarray(pixels()).save(out, "JPEG", exif=tags.tobytes(), xmp=xmp_packet(clean_tags()))
    return out.getvalue()


def _rational(numerator: int, denominator: int) -> Any:
    from PIL.TiffImagePlugin import IFDRational

    return IFDRational(numerator, denominator)


# ---- files that are not usable images at all (ingest lists them as failed, with the reason)


def corrupt_header(folder: Path) -> Path:
    """The first segment marker overwritten with zeros."""
    data = bytearray(clean_jpeg())
    data[2:40] = b"\x00" * 38
    return write_file(folder, "corrupt_header.jpg", bytes(data))


def corrupt_scan(folder: Path) -> Path:
    """A stray frame header in the middle of the compressed data: libjpeg must give up.

    (Random bytes there are often decoded into garbled pixels without any error: libjpeg
    resynchronises, and no reader can tell such a file from a strange photo.)
    """
    data = bytearray(encode_jpeg(pixels(640, 480), clean_tags()))
    middle = len(data) * 3 // 4
    data[middle : middle + 4] = b"\xff\xc0\x00\x11"
    return write_file(folder, "corrupt_scan.jpg", bytes(data))


def truncated(folder: Path) -> Path:
    """The first 60 % of a 640×480 photo (an interrupted copy)."""
    data = encode_jpeg(pixels(640, 480), clean_tags())
    return write_file(folder, "truncated.jpg", data[: len(data) * 6 // 10])


def png_named_jpg(folder: Path) -> Path:
    """A PNG with a .jpg name."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels()).save(out, "PNG")
    return write_file(folder, "really_a_png.jpg", out.getvalue())


def text_named_jpg(folder: Path) -> Path:
    """A line of text with a .jpg name."""
    return write_file(folder, "notes.jpg", b"this is not a photo\n")


def empty_file(folder: Path) -> Path:
    """Zero bytes."""
    return write_file(folder, "empty.jpg", b"")


def decompression_bomb(folder: Path) -> Path:
    """A small JPEG whose frame header claims 65535 × 65535 (JPEG's largest; 4.3 Gpx)."""
    data = bytearray(clean_jpeg())
    sof, _ = _segment(bytes(data), 0xC0)
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65535, 65535)
    return write_file(folder, "bomb.jpg", bytes(data))


def huge_valid_image(folder: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Path:
    """A genuinely valid flat-grey JPEG just over ``max_pixels`` (10960² for the default).

    Written without encoding any pixels: one-symbol Huffman tables make every 8×8 block
    two bits (DC difference 0, end of block), so 120 Mpx take 470 kB.
    """
    side = (math.isqrt(max_pixels) // 8 + 1) * 8
    blocks = (side // 8) ** 2
    bits = 2 * blocks
    scan = bytes(bits // 8) + (bytes([0xFF >> (bits % 8)]) if bits % 8 else b"")
    one_symbol = bytes([1] + [0] * 15) + b"\x00"  # one code of length 1 for symbol 0
    data = (
        b"\xff\xd8"
        + b"\xff\xdb\x00\x43\x00"
        + bytes([1] * 64)  # quantisation table 0
        + b"\xff\xc0\x00\x0b\x08"
        + struct.pack(">HH", side, side)
        + b"\x01\x01\x11\x00"  # one component: id 1, 1×1 sampling, table 0
        + b"\xff\xc4\x00\x14\x00"
        + one_symbol  # DC table 0
        + b"\xff\xc4\x00\x14\x10"
        + one_symbol  # AC table 0
        + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
        + scan
        + b"\xff\xd9"
    )
    return write_file(folder, "huge_valid.jpg", data)


def unsupported_precision(folder: Path) -> Path:
    """A frame header declaring 12-bit samples, which the EXIF reader (Pillow) cannot open."""
    data = bytearray(clean_jpeg())
    sof, _ = _segment(bytes(data), 0xC0)
    data[sof + 4] = 12
    return write_file(folder, "12bit.jpg", bytes(data))


def no_frame_header(folder: Path) -> Path:
    """The frame header (SOF) removed: compressed data with no image size."""
    data = clean_jpeg()
    start, end = _segment(data, 0xC0)
    return write_file(folder, "no_sof.jpg", data[:start] + data[end:])


def zero_width(folder: Path) -> Path:
    """A frame header saying the image is 0 pixels wide."""
    data = bytearray(clean_jpeg())
    sof, _ = _segment(bytes(data), 0xC0)
    data[sof + 7 : sof + 9] = b"\x00\x00"
    return write_file(folder, "zero_width.jpg", bytes(data))


def exif_length_overrun(folder: Path) -> Path:
    """The EXIF segment's length field says 65535 bytes, far past the end of the file."""
    data = bytearray(clean_jpeg())
    app1, _ = _segment(bytes(data), 0xE1, b"Exif")
    data[app1 + 2 : app1 + 4] = b"\xff\xff"
    return write_file(folder, "exif_overrun.jpg", bytes(data))


# ---- files whose metadata is missing, malformed or absurd (kept as frames, with a problem)


def no_exif(folder: Path) -> Path:
    """A bare JPEG: no EXIF, no XMP."""
    return write_file(folder, "no_exif.jpg", encode_jpeg(pixels(), None))


def gps_without_altitude(folder: Path) -> Path:
    """A phone-like photo: EXIF latitude/longitude only, no altitude, no XMP."""
    tags = clean_tags(abs_alt_m=None, rel_alt_m=None, make="Apple", model="iPhone 8")
    return write_file(folder, "phone_gps.jpg", encode_jpeg(pixels(), tags, xmp=False))


def exif_truncated(folder: Path) -> Path:
    """The EXIF block cut after 40 bytes (segment length kept consistent)."""
    data = clean_jpeg()
    start, end = _segment(data, 0xE1, b"Exif")
    keep = 6 + 40
    segment = b"\xff\xe1" + (keep + 2).to_bytes(2, "big") + data[start + 4 : start + 4 + keep]
    return write_file(folder, "exif_truncated.jpg", data[:start] + segment + data[end:])


def exif_fuzzed(seed: int) -> Writer:
    """A writer of the clean photo with 1–12 seeded random bytes of its EXIF block changed."""

    def write(folder: Path) -> Path:
        data = bytearray(clean_jpeg())
        start, end = _segment(bytes(data), 0xE1, b"Exif")
        rng = random.Random(seed)
        for _ in range(rng.randint(1, 12)):
            at = rng.randrange(start + 10, end)  # after the "Exif\0\0" signature
            data[at] = (
                rng.randrange(256) if rng.random() < 0.7 else data[at] ^ (1 << rng.randrange(8))
            )
        return write_file(folder, f"exif_fuzz_{seed:02d}.jpg", bytes(data))

    write.__doc__ = f"Seeded ({seed}) random bytes changed inside the EXIF block."
    return write


def gps_zero_denominator(folder: Path) -> Path:
    """GPSLatitude minutes 0/0 and seconds 1/0: rationals that are NaN and infinity."""
    lat = (_rational(29, 1), _rational(0, 0), _rational(1, 0))
    return write_file(folder, "gps_zero_denominator.jpg", _retagged(gps={0x02: lat}))


def gps_altitude_divide_by_zero(folder: Path) -> Path:
    """GPSAltitude 1/0: ignored with a problem; the pose comes from the XMP."""
    data = _retagged(gps={0x06: _rational(1, 0)})
    return write_file(folder, "gps_alt_divide_by_zero.jpg", data)


def gps_latitude_huge(folder: Path) -> Path:
    """GPSLatitude 4294967295/1 degrees: the largest value the rational type holds."""
    lat = (_rational(2**32 - 1, 1), _rational(0, 1), _rational(0, 1))
    return write_file(folder, "gps_lat_huge.jpg", _retagged(gps={0x02: lat}))


def datetime_garbage(folder: Path) -> Path:
    """DateTimeOriginal "9999:99:99 99:99:99"."""
    data = _retagged(exif={0x9003: "9999:99:99 99:99:99"})
    return write_file(folder, "datetime_garbage.jpg", data)


def orientation_9(folder: Path) -> Path:
    """EXIF Orientation 9 (valid values are 1…8)."""
    return write_file(folder, "orientation_9.jpg", encode_jpeg(pixels(), clean_tags(orientation=9)))


def subsec_superscript(folder: Path) -> Path:
    """SubSecTimeOriginal "²³": characters ``str.isdigit`` accepts and ``int`` refuses."""
    data = _retagged(exif={0x9291: "@@"})
    at = data.find(b"@@\x00")
    return write_file(folder, "subsec_superscript.jpg", data[:at] + b"\xb2\xb3" + data[at + 2 :])


def malformed_xmp(folder: Path) -> Path:
    """An XMP packet that is not well-formed XML."""
    packet = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><unclosed></x:xmpmeta>'
    return write_file(folder, "malformed_xmp.jpg", _with_xmp(packet))


_RDF_OPEN = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
)


def billion_laughs_xmp(folder: Path) -> Path:
    """Ten nested entities of ten references each: 10⁹ "lol"s if a parser expands them."""
    entities = b'<!ENTITY lol0 "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10)
    )
    packet = (
        b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        b"<!DOCTYPE x:xmpmeta [" + entities + b"]>" + _RDF_OPEN + b"<rdf:Description"
        b' xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"'
        b' drone-dji:RelativeAltitude="&lol9;"/></rdf:RDF></x:xmpmeta>'
    )
    return write_file(folder, "billion_laughs.jpg", _with_xmp(packet))


def external_entity_xmp(folder: Path) -> Path:
    """An XMP packet whose DOCTYPE pulls in file:///etc/passwd (XXE)."""
    packet = (
        b'<!DOCTYPE x:xmpmeta [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        + _RDF_OPEN
        + b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:format="&xxe;"/>'
        b"</rdf:RDF></x:xmpmeta>"
    )
    return write_file(folder, "xxe.jpg", _with_xmp(packet))


def deeply_nested_xmp(folder: Path) -> Path:
    """1500 nested rdf:Description elements (a recursive reader overflows its stack)."""
    packet = (
        _RDF_OPEN + b"<rdf:Description>" * 1500 + b"</rdf:Description>" * 1500
    ) + b"</rdf:RDF></x:xmpmeta>"
    return write_file(folder, "deep_xmp.jpg", _with_xmp(packet))


def unknown_encoding_xmp(folder: Path) -> Path:
    """An XMP packet declaring encoding="klingon"."""
    packet = b'<?xml version="1.0" encoding="klingon"?>' + _RDF_OPEN + b"</rdf:RDF></x:xmpmeta>"
    return write_file(folder, "klingon_xmp.jpg", _with_xmp(packet))


def altitude_minus_500(folder: Path) -> Path:
    """RelativeAltitude −500 m (underground)."""
    return write_file(folder, "alt_minus_500.jpg", clean_jpeg(rel_alt_m=-500.0, abs_alt_m=-180.0))


def altitude_nan(folder: Path) -> Path:
    """RelativeAltitude "+nan"."""
    return write_file(folder, "alt_nan.jpg", clean_jpeg(rel_alt_m=math.nan))


def yaw_infinite(folder: Path) -> Path:
    """GimbalYawDegree "+inf"."""
    return write_file(folder, "yaw_inf.jpg", clean_jpeg(gimbal_yaw_deg=math.inf))


def pitch_400(folder: Path) -> Path:
    """GimbalPitchDegree 400°."""
    return write_file(folder, "pitch_400.jpg", clean_jpeg(gimbal_pitch_deg=400.0))


def null_island(folder: Path) -> Path:
    """GPS 0, 0: a receiver without a fix."""
    return write_file(folder, "null_island.jpg", clean_jpeg(lat=0.0, lon=0.0))


def latitude_95(folder: Path) -> Path:
    """Latitude 95°."""
    return write_file(folder, "lat_95.jpg", clean_jpeg(lat=95.0))


def roll_120(folder: Path) -> Path:
    """GimbalRollDegree 120°."""
    return write_file(folder, "roll_120.jpg", clean_jpeg(gimbal_roll_deg=120.0))
