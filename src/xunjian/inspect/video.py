"""Patrol-vehicle video sampled by distance travelled along its GPS track, not by time.

A frame is kept each time the vehicle has moved another ``every_m`` metres (on a regular
grid of distances from the first covered frame), so a vehicle waiting at a light yields no
repeated frames and a fast one is not under-sampled. Frame times are the video's start time
plus ``index / fps`` (constant frame rate). The start time comes from the caller or from the
container (MP4/MOV ``mvhd`` creation time, UTC).

May import: numpy, OpenCV (lazily, inside the function), ``xunjian.errors`` and
``xunjian.inspect.tracks``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from xunjian.errors import InputError
from xunjian.inspect.tracks import Track

__all__ = ["container_creation_time", "sample_video"]

_MP4_EPOCH = datetime(1904, 1, 1, tzinfo=UTC)
_MAX_MOOV_BYTES = 64 * 1024 * 1024


def _boxes(fp: BinaryIO, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload offset, payload size) of the ISO-BMFF boxes from here to ``end``."""
    position = fp.tell()
    while position + 8 <= end:
        fp.seek(position)
        header = fp.read(8)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header)
        offset = position + 8
        if size == 1:
            large = fp.read(8)
            if len(large) < 8:
                return
            (size,) = struct.unpack(">Q", large)
            offset += 8
        elif size == 0:
            size = end - position
        if size < offset - position:
            return
        yield kind, offset, position + size - offset
        position += size


def container_creation_time(path: Path) -> datetime | None:
    """The MP4/MOV creation time (``moov/mvhd``, UTC), or None when absent or zero."""
    with path.open("rb") as fp:
        end = fp.seek(0, 2)
        fp.seek(0)
        for kind, offset, size in _boxes(fp, end):
            if kind != b"moov" or size > _MAX_MOOV_BYTES:
                continue
            fp.seek(offset)
            for inner, inner_offset, _ in _boxes(fp, offset + size):
                if inner != b"mvhd":
                    continue
                fp.seek(inner_offset)
                version = fp.read(4)[:1]
                raw = fp.read(8 if version == b"\x01" else 4)
                seconds = int.from_bytes(raw, "big") if raw else 0
                return _MP4_EPOCH + timedelta(seconds=seconds) if seconds else None
    return None


def sample_video(
    path: Path,
    track: Track,
    *,
    every_m: float = 5.0,
    start_time: datetime | None = None,
) -> Iterator[tuple[datetime, np.ndarray]]:
    """Yields (time, BGR frame) about every ``every_m`` metres of travel along ``track``.

    Frames outside the track's time span are skipped. InputError when the video cannot be
    read, has no usable frame rate or start time, or does not overlap the track at all.
    """
    import cv2

    source = str(path)
    if every_m <= 0:
        raise InputError(f"every_m: expected > 0, got {every_m}", source=source)
    start = start_time if start_time is not None else container_creation_time(path)
    if start is None:
        raise InputError("no creation time in the video container; pass start_time", source=source)
    if start.tzinfo is None or start.utcoffset() is None:
        raise InputError(f"start time {start} has no time zone", source=source)
    capture = cv2.VideoCapture(source)
    try:
        if not capture.isOpened():
            raise InputError("cannot open the video (unknown codec or corrupt file)", source=source)
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        if not 0 < fps <= 1000:
            raise InputError(f"unusable frame rate {fps}", source=source)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        finish = start + timedelta(seconds=max(count - 1, 0) / fps)
        if count > 0 and (finish < track.start or start > track.end):
            raise InputError(
                f"video {start.isoformat()} – {finish.isoformat()} does not overlap the track"
                f" {track.start.isoformat()} – {track.end.isoformat()}",
                source=source,
            )
        yield from _by_distance(capture, track, start, fps, every_m, source)
    finally:
        capture.release()


def _by_distance(
    capture: Any, track: Track, start: datetime, fps: float, every_m: float, source: str
) -> Iterator[tuple[datetime, np.ndarray]]:
    first: float | None = None
    next_mark = 0.0
    index = -1
    while capture.grab():
        index += 1
        moment = start + timedelta(seconds=index / fps)
        if moment < track.start or moment > track.end:
            continue
        distance = track.distance_at(moment)
        if first is None:
            first = distance
        elif distance < next_mark:
            continue
        ok, frame = capture.retrieve()
        if not ok or frame is None:
            raise InputError(f"frame {index} cannot be decoded", source=source)
        next_mark = first + (int((distance - first) / every_m) + 1) * every_m
        yield moment, frame
