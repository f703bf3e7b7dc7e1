"""Vehicle tracks: generated drives written as GPX / NMEA / CSV must load back to the truth."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pymap3d
import pytest

from tests.fixtures.badinput import MALFORMED_TRACKS
from xunjian.errors import InputError
from xunjian.inspect.trackformats import Fix
from xunjian.inspect.tracks import Track, VehicleMount, load_track

ORIGIN = (29.5630147, 106.5515281)
T0 = datetime(2024, 5, 1, 2, 0, 0, tzinfo=UTC)

Drive = Callable[[float], tuple[float, float, float]]  # seconds → east, north, course


def straight(speed: float = 8.0, heading: float = 30.0) -> Drive:
    h = math.radians(heading)
    return lambda s: (speed * s * math.sin(h), speed * s * math.cos(h), heading)


def circle(speed: float = 8.0, radius: float = 60.0) -> Drive:
    """Clockwise seen from above, starting northwards at the origin."""

    def at(s: float) -> tuple[float, float, float]:
        angle = speed * s / radius
        east = radius - radius * math.cos(angle)
        north = radius * math.sin(angle)
        return east, north, math.degrees(angle) % 360

    return at


def truth(drive: Drive, s: float) -> tuple[float, float]:
    east, north, _ = drive(s)
    lat, lon, _ = pymap3d.enu2geodetic(east, north, 0.0, *ORIGIN, 0.0)
    return float(lat), float(lon)


def fixes(drive: Drive, seconds: int = 30, hz: float = 1.0) -> list[Fix]:
    out = []
    for i in range(int(seconds * hz) + 1):
        s = i / hz
        lat, lon = truth(drive, s)
        out.append(Fix(T0 + timedelta(seconds=s), lat, lon, 250.0 + 0.1 * s))
    return out


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_gpx(path: Path, points: list[Fix], version: str = "1.1") -> Path:
    body = "".join(
        f'  <trkpt lat="{f.lat:.9f}" lon="{f.lon:.9f}"><ele>{f.ele:.2f}</ele>'
        f"<time>{_iso(f.time)}</time></trkpt>\n"
        for f in points
    )
    ns = f"http://www.topografix.com/GPX/{version.replace('.', '/')}"
    path.write_text(
        f'<?xml version="1.0"?>\n<gpx version="{version}" xmlns="{ns}">\n'
        f"<trk><trkseg>\n{body}</trkseg></trk></gpx>\n"
    )
    return path


def _nmea(body: str) -> str:
    checksum = 0
    for char in body.encode():
        checksum ^= char
    return f"${body}*{checksum:02X}\n"


def _ddmm(value: float, digits: int) -> tuple[str, int]:
    degrees = int(abs(value))
    minutes = (abs(value) - degrees) * 60
    return f"{degrees:0{digits}d}{minutes:09.6f}", (1 if value >= 0 else -1)


def write_nmea(path: Path, points: list[Fix], *, garbage: bool = False) -> Path:
    lines = []
    for i, f in enumerate(points):
        lat, lat_sign = _ddmm(f.lat, 2)
        lon, lon_sign = _ddmm(f.lon, 3)
        ns, ew = ("N" if lat_sign > 0 else "S"), ("E" if lon_sign > 0 else "W")
        tod = f.time.strftime("%H%M%S") + f".{f.time.microsecond // 10000:02d}"
        day = f.time.strftime("%d%m%y")
        lines.append(_nmea(f"GNRMC,{tod},A,{lat},{ns},{lon},{ew},15.5,30.0,{day},,,A"))
        lines.append(_nmea(f"GPGGA,{tod},{lat},{ns},{lon},{ew},1,09,0.9,{f.ele:.1f},M,0.0,M,,"))
        if garbage and i % 5 == 2:
            lines.append("$GPRMC,020000.00,A,2933.78,N,10633.09,E,0,0,010524,,,A*00\n")
            lines.append("$GPGSV,3,1,11,03,03,111,00*FF\n")
    path.write_text("".join(lines))
    return path


def write_csv(path: Path, points: list[Fix]) -> Path:
    rows = [f"{_iso(f.time)},{f.lat:.9f},{f.lon:.9f},{f.ele:.2f}" for f in points]
    path.write_text("timestamp,latitude,longitude,altitude\n" + "\n".join(rows) + "\n")
    return path


WRITERS = {
    "gpx11": lambda p, pts: write_gpx(p / "t.gpx", pts),
    "gpx10": lambda p, pts: write_gpx(p / "t10.gpx", pts, "1.0"),
    "nmea": lambda p, pts: write_nmea(p / "t.nmea", pts),
    "csv": lambda p, pts: write_csv(p / "t.csv", pts),
}


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    east, north, _ = pymap3d.geodetic2enu(a[0], a[1], 0.0, b[0], b[1], 0.0)
    return math.hypot(east, north)


def _angle_diff(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("name", ["straight", "circle"])
def test_interpolation_matches_truth(tmp_path: Path, fmt: str, name: str) -> None:
    drive = straight() if name == "straight" else circle()
    track = load_track(WRITERS[fmt](tmp_path, fixes(drive)))
    assert track.start == T0 and track.end == T0 + timedelta(seconds=30)
    for s in np.arange(0.0, 30.0, 0.37):
        t = T0 + timedelta(seconds=float(s))
        assert _metres(track.position_at(t), truth(drive, s)) < 0.03, (fmt, s)
        if 1.0 <= s <= 29.0:
            assert _angle_diff(track.course_at(t), drive(s)[2]) < 1.0, (fmt, s)
    assert track.length_m == pytest.approx(240.0, abs=0.1)
    assert track.distance_at(T0 + timedelta(seconds=12.5)) == pytest.approx(100.0, abs=0.1)
    assert track.elevation_at(T0 + timedelta(seconds=10)) == pytest.approx(251.0, abs=0.05)


def test_nmea_bad_sentences_skipped_and_counted(tmp_path: Path) -> None:
    points = fixes(straight(), seconds=10)
    track = load_track(write_nmea(tmp_path / "g.nmea", points, garbage=True))
    assert len(track.fixes) == 11
    assert track.skipped == 4  # two bad sentences at i = 2 and i = 7
    assert any("bad checksum" in p for p in track.problems)
    assert all(re.match(r"line \d+: ", p) for p in track.problems)


def test_gga_before_first_rmc_and_across_midnight(tmp_path: Path) -> None:
    late = datetime(2024, 5, 1, 23, 59, 59, tzinfo=UTC)
    text = (
        _nmea("GPGGA,235958.00,2933.780000,N,10633.090000,E,1,09,0.9,250.0,M,0.0,M,,")
        + _nmea("GPRMC,235959.00,A,2933.780100,N,10633.090000,E,1.0,0.0,010524,,,A")
        + _nmea("GPGGA,000000.00,2933.780200,N,10633.090000,E,1,09,0.9,250.0,M,0.0,M,,")
    )
    track = load_track(_write(tmp_path / "m.nmea", text))
    assert [f.time for f in track.fixes] == [
        late - timedelta(seconds=1),
        late,
        late + timedelta(seconds=1),
    ]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_pose_from_mount_and_course(tmp_path: Path) -> None:
    track = Track(fixes(straight(heading=300.0)), source="mem")
    t = T0 + timedelta(seconds=10.5)
    mount = VehicleMount(height_m=2.1, pitch_deg=-12.0, yaw_offset_deg=90.0, roll_deg=1.0)
    pose = track.pose_at(t, mount, sigma_xy_m=1.5)
    assert (pose.lat, pose.lon) == pytest.approx(truth(straight(heading=300.0), 10.5), abs=1e-8)
    assert pose.yaw_deg == pytest.approx(30.0, abs=0.5)  # 300° + 90° right-looking camera
    assert (pose.height_m, pose.pitch_deg, pose.roll_deg, pose.sigma_xy_m) == (2.1, -12, 1, 1.5)
    assert pose.abs_alt_m == pytest.approx(250.0 + 1.05 + 2.1)
    assert pose.source == "track"


def test_time_outside_track_or_in_gap_refused() -> None:
    points = fixes(straight(), seconds=20)
    del points[5:15]  # a 10 s gap between t = 4 s and t = 15 s
    track = Track(points, source="drive.gpx", max_gap_s=5.0)
    with pytest.raises(InputError, match=r"outside the track .* \(drive\.gpx\)"):
        track.pose_at(T0 + timedelta(seconds=21), VehicleMount())
    with pytest.raises(InputError, match="outside the track"):
        track.position_at(T0 - timedelta(seconds=3))
    with pytest.raises(InputError, match=r"falls in a 11 s gap"):
        track.pose_at(T0 + timedelta(seconds=9), VehicleMount())
    track.pose_at(T0 + timedelta(seconds=20.3), VehicleMount())  # within the tolerance
    with pytest.raises(InputError, match="no time zone"):
        track.position_at(datetime(2024, 5, 1, 2, 0, 5))


def test_stationary_jitter_is_not_distance() -> None:
    rng = np.random.default_rng(3)
    points = []
    for i in range(60):  # 20 s parked with ±0.5 m jitter, 20 s driving 10 m/s, 20 s parked
        s = float(i)
        along = 0.0 if s < 20 else min(s - 20, 20.0) * 10.0
        east, north = np.array([0.0, along]) + rng.normal(0, 0.3, 2)
        lat, lon, _ = pymap3d.enu2geodetic(east, north, 0.0, *ORIGIN, 0.0)
        points.append(Fix(T0 + timedelta(seconds=s), float(lat), float(lon)))
    track = Track(points)
    assert track.distance_at(T0 + timedelta(seconds=19)) == 0.0
    assert track.length_m == pytest.approx(200.0, abs=2.0)
    parked = [track.distance_at(T0 + timedelta(seconds=s)) for s in (45, 50, 59)]
    assert parked[0] == parked[1] == parked[2]
    assert _angle_diff(track.course_at(T0 + timedelta(seconds=55)), 0.0) < 5.0  # kept


def test_too_few_fixes_and_naive_fixes_refused() -> None:
    with pytest.raises(InputError, match="at least 2 fixes"):
        Track([Fix(T0, *ORIGIN)])
    with pytest.raises(InputError, match="no time zone"):
        Track([Fix(datetime(2024, 5, 1), *ORIGIN), Fix(T0, *ORIGIN)])


@pytest.mark.parametrize("case", sorted(MALFORMED_TRACKS))
def test_malformed_tracks_name_file_line_and_reason(tmp_path: Path, case: str) -> None:
    path, reason = MALFORMED_TRACKS[case](tmp_path)
    with pytest.raises(InputError, match=reason) as caught:
        load_track(path)
    assert caught.value.source == str(path)
