"""Video sampled by distance: frames every ~N metres while driving, none while parked."""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pymap3d
import pytest

from xunjian.errors import InputError
from xunjian.inspect.trackformats import Fix
from xunjian.inspect.tracks import Track
from xunjian.inspect.video import container_creation_time, sample_video

ORIGIN = (29.5630147, 106.5515281)
T0 = datetime(2024, 5, 1, 2, 0, 0, tzinfo=UTC)
FPS = 10.0


def _level(index: int) -> int:
    return (index * 5) % 256


def write_video(path: Path, seconds: float = 20.0, codec: str = "MJPG") -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*codec), FPS, (64, 48))
    assert writer.isOpened(), f"{codec} writer unavailable"
    for index in range(int(seconds * FPS)):
        writer.write(np.full((48, 64, 3), _level(index), dtype=np.uint8))
    writer.release()
    return path


def stop_go_stop() -> Track:
    """Parked 5 s (with GPS jitter), 10 m/s north for 10 s, parked 5 s."""
    rng = np.random.default_rng(7)
    fixes = []
    for s in range(21):
        along = min(max(s - 5, 0), 10) * 10.0
        east, north = np.array([0.0, along]) + rng.normal(0, 0.3, 2)
        lat, lon, _ = pymap3d.enu2geodetic(east, north, 0.0, *ORIGIN, 0.0)
        fixes.append(Fix(T0 + timedelta(seconds=s), float(lat), float(lon)))
    return Track(fixes, source="drive.gpx")


def test_frames_every_five_metres_and_none_while_parked(tmp_path: Path) -> None:
    track = stop_go_stop()
    video = write_video(tmp_path / "drive.avi")
    samples = list(sample_video(video, track, every_m=5.0, start_time=T0))
    times = [t for t, _ in samples]
    assert times[0] == T0  # the first covered frame
    moving = times[1:]
    assert all(T0 + timedelta(seconds=5) < t <= T0 + timedelta(seconds=15.1) for t in moving)
    assert 19 <= len(moving) <= 21  # 100 m / 5 m
    distances = [track.distance_at(t) for t in times]
    gaps = np.diff(distances)
    assert gaps[1:] == pytest.approx(np.full(len(gaps) - 1, 5.0), abs=1.0)  # 1 m per frame
    assert len(set(times)) == len(times)
    for moment, frame in samples:
        index = round((moment - T0).total_seconds() * FPS)
        assert frame.shape == (48, 64, 3)
        assert abs(int(frame.mean()) - _level(index)) <= 3  # the frame of that time


def test_video_starting_before_the_track_skips_uncovered_frames(tmp_path: Path) -> None:
    track = stop_go_stop()
    video = write_video(tmp_path / "early.avi", seconds=10.0)
    start = T0 - timedelta(seconds=4)
    times = [t for t, _ in sample_video(video, track, every_m=5.0, start_time=start)]
    assert times[0] == T0  # frames before the track's first fix are skipped
    assert len(times) == 2  # parked until 5 s, then 5 m by 5.5 s; the video ends at 5.9 s


def test_creation_time_from_mp4_container(tmp_path: Path) -> None:
    path = tmp_path / "drive.mp4"
    try:
        write_video(path, seconds=2.0, codec="mp4v")
    except AssertionError:
        pytest.skip("this OpenCV build has no MP4 writer")
    data = bytearray(path.read_bytes())
    at = data.find(b"mvhd")
    assert at > 0
    seconds = int((T0 - datetime(1904, 1, 1, tzinfo=UTC)).total_seconds())
    version = data[at + 4]
    if version == 1:
        data[at + 8 : at + 16] = struct.pack(">Q", seconds)
    else:
        data[at + 8 : at + 12] = struct.pack(">I", seconds)
    path.write_bytes(bytes(data))
    assert container_creation_time(path) == T0
    times = [t for t, _ in sample_video(path, stop_go_stop(), every_m=5.0)]
    assert times == [T0]  # two seconds, parked


def test_missing_start_time_refused(tmp_path: Path) -> None:
    video = write_video(tmp_path / "nodate.avi", seconds=1.0)
    assert container_creation_time(video) is None
    with pytest.raises(InputError, match=r"no creation time.*pass start_time"):
        next(sample_video(video, stop_go_stop()))
    with pytest.raises(InputError, match="no time zone"):
        next(sample_video(video, stop_go_stop(), start_time=datetime(2024, 5, 1)))


def test_video_outside_the_track_refused(tmp_path: Path) -> None:
    video = write_video(tmp_path / "late.avi", seconds=1.0)
    with pytest.raises(InputError, match="does not overlap the track") as caught:
        next(sample_video(video, stop_go_stop(), start_time=T0 + timedelta(hours=1)))
    assert caught.value.source == str(video)


def test_not_a_video_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("not a video")
    with pytest.raises(InputError, match="cannot open the video"):
        next(sample_video(path, stop_go_stop(), start_time=T0))
    with pytest.raises(InputError, match="every_m"):
        next(sample_video(path, stop_go_stop(), every_m=0.0, start_time=T0))
    assert math.isfinite(stop_go_stop().length_m)
