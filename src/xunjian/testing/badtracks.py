"""Bad GPS tracks (GPX, NMEA 0183, CSV): each writer puts one file into a folder.

Patrol-vehicle batches carry a track; a track that cannot be read is listed as a failed
file of its batch and the frames take their poses from another track, or from none. The
reason each must give is in :mod:`xunjian.testing.badinput`. :func:`good_gpx` writes a
valid track covering the clean photos' capture time, for batches that mix both.

May import: the standard library and ``xunjian.testing.badimages``.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from functools import reduce
from pathlib import Path

from xunjian.testing.badimages import START, write_file

_GPX_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<gpx version="1.1" creator="xunjian-tests" xmlns="http://www.topografix.com/GPX/1/1">\n'
    "<trk><trkseg>\n"
)
_GPX_TAIL = "</trkseg></trk>\n</gpx>\n"
_GOOD_POINT = '<trkpt lat="29.5630" lon="106.5515"><time>2024-05-01T02:00:0{}Z</time></trkpt>\n'


def _gpx(folder: Path, name: str, body: str) -> Path:
    return write_file(folder, name, (_GPX_HEAD + body + _GPX_TAIL).encode())


def _nmea(body: str, checksum: int | None = None) -> str:
    """``$body*hh`` with the right checksum, or ``checksum`` when given."""
    value = reduce(lambda acc, char: acc ^ char, body.encode(), 0)
    return f"${body}*{value if checksum is None else checksum:02X}\n"


def _rmc(hhmmss: str, lat: str = "2933.7809", lon: str = "10633.0917") -> str:
    return f"GPRMC,{hhmmss},A,{lat},N,{lon},E,0.5,54.7,010524,,,A"


def good_gpx(folder: Path) -> Path:
    """A valid 1 Hz track, 40 s driving north-east, around the clean photos' capture time."""
    start = START.astimezone(UTC) - timedelta(seconds=20)
    body = "".join(
        f'<trkpt lat="{29.5630147 + 0.00005 * i:.7f}" lon="{106.5515281 + 0.00005 * i:.7f}">'
        f"<ele>250.0</ele><time>{(start + timedelta(seconds=i)).isoformat()}</time></trkpt>\n"
        for i in range(41)
    )
    return _gpx(folder, "good_track.gpx", body)


# ---- GPX


def gpx_point_without_time(folder: Path) -> Path:
    """A <trkpt> with no <time>."""
    body = _GOOD_POINT.format(0) + '<trkpt lat="29.5631" lon="106.5516"><ele>3</ele></trkpt>\n'
    return _gpx(folder, "no_time.gpx", body)


def gpx_bad_latitude(folder: Path) -> Path:
    """lat="north"."""
    body = _GOOD_POINT.format(0) + '<trkpt lat="north" lon="106.5"><time>x</time></trkpt>\n'
    return _gpx(folder, "bad_lat.gpx", body)


def gpx_not_xml(folder: Path) -> Path:
    """Unquoted attribute values: not well-formed XML."""
    return _gpx(folder, "broken.gpx", _GOOD_POINT.format(0) + "<trkpt lat=29.5 lon=106.5>\n")


def gpx_hostile(folder: Path) -> Path:
    """An internal DTD entity (any DTD is refused)."""
    text = '<?xml version="1.0"?>\n<!DOCTYPE gpx [<!ENTITY a "aaaa">]>\n<gpx>&a;</gpx>\n'
    return write_file(folder, "hostile.gpx", text.encode())


def gpx_external_entity(folder: Path) -> Path:
    """XXE: an entity that reads file:///etc/passwd into a <time>."""
    text = (
        '<?xml version="1.0"?>\n<!DOCTYPE gpx [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        '<gpx><trk><trkseg><trkpt lat="29.5" lon="106.5"><time>&xxe;</time></trkpt>'
        "</trkseg></trk></gpx>\n"
    )
    return write_file(folder, "xxe.gpx", text.encode())


def gpx_billion_laughs(folder: Path) -> Path:
    """Nested entities that expand to 10⁹ "lol"s."""
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    text = f'<?xml version="1.0"?>\n<!DOCTYPE gpx [{entities}]>\n<gpx>&lol9;</gpx>\n'
    return write_file(folder, "billion_laughs.gpx", text.encode())


def gpx_unknown_encoding(folder: Path) -> Path:
    """An XML declaration naming an encoding that does not exist."""
    text = '<?xml version="1.0" encoding="klingon"?>\n<gpx></gpx>\n'
    return write_file(folder, "klingon.gpx", text.encode())


def gpx_time_backwards(folder: Path) -> Path:
    """The third point is a second older than the second (a spliced or corrupt log)."""
    body = _GOOD_POINT.format(0) + _GOOD_POINT.format(2) + _GOOD_POINT.format(1)
    return _gpx(folder, "backwards.gpx", body)


def gpx_impossible_coordinates(folder: Path) -> Path:
    """Latitude 91°."""
    body = _GOOD_POINT.format(0) + '<trkpt lat="91" lon="106.5"><time>x</time></trkpt>\n'
    return _gpx(folder, "lat_91.gpx", body)


def gpx_time_overflow(folder: Path) -> Path:
    """<time>1e300</time>: Unix seconds no calendar holds."""
    body = '<trkpt lat="29.5" lon="106.5"><time>1e300</time></trkpt>\n'
    return _gpx(folder, "time_1e300.gpx", body)


def gpx_nan_elevation(folder: Path) -> Path:
    """<ele>NaN</ele>."""
    body = '<trkpt lat="29.5" lon="106.5"><ele>NaN</ele><time>2024-05-01T02:00:00Z</time></trkpt>\n'
    return _gpx(folder, "ele_nan.gpx", body)


def gpx_empty(folder: Path) -> Path:
    """A well-formed GPX file without a single point."""
    return _gpx(folder, "empty_track.gpx", "")


def gpx_single_point(folder: Path) -> Path:
    """One point: no direction of travel, nothing to interpolate."""
    return _gpx(folder, "one_point.gpx", _GOOD_POINT.format(0))


# ---- NMEA 0183


def nmea_without_fix(folder: Path) -> Path:
    """A void RMC (status V), a line of prose and a garbled GGA."""
    text = "$GPRMC,020000.00,V,,,,,,,010524,,,N*4C\nnot a sentence\n$GPGGA,garbage*00\n"
    return write_file(folder, "void.nmea", text.encode())


def nmea_bad_checksum(folder: Path) -> Path:
    """Two well-formed RMC sentences, both with a wrong checksum."""
    text = _nmea(_rmc("020000.00"), checksum=0) + _nmea(_rmc("020001.00"), checksum=0)
    return write_file(folder, "bad_checksum.nmea", text.encode())


def nmea_impossible_coordinates(folder: Path) -> Path:
    """RMC sentences at latitude 95° (9500.0000,N)."""
    text = _nmea(_rmc("020000.00", lat="9500.0000")) + _nmea(_rmc("020001.00", lat="9500.0000"))
    return write_file(folder, "lat_95.nmea", text.encode())


def nmea_time_overflow(folder: Path) -> Path:
    """Times of day 99:99:99 and 02:00:1e300."""
    text = _nmea(_rmc("999999")) + _nmea(_rmc("02001e300"))
    return write_file(folder, "time_99.nmea", text.encode())


def nmea_time_backwards(folder: Path) -> Path:
    """Each RMC a second older than the one before."""
    text = "".join(_nmea(_rmc(f"02000{s}.00")) for s in (2, 1, 0))
    return write_file(folder, "backwards.nmea", text.encode())


def nmea_empty(folder: Path) -> Path:
    """A .nmea file of zero bytes."""
    return write_file(folder, "empty.nmea", b"")


# ---- CSV and the rest


def csv_bad_number(folder: Path) -> Path:
    """A latitude "29.5x"."""
    text = "time,lat,lon\n2024-05-01T02:00:00Z,29.5,106.5\n2024-05-01T02:00:01Z,29.5x,106.5\n"
    return write_file(folder, "bad_number.csv", text.encode())


def csv_missing_column(folder: Path) -> Path:
    """No longitude column."""
    text = "time,latitude,altitude\n2024-05-01T02:00:00Z,29.5,300\n"
    return write_file(folder, "no_lon.csv", text.encode())


def csv_naive_time(folder: Path) -> Path:
    """Times without a zone."""
    text = "timestamp;lat;lng\n2024-05-01 10:00:00;29.5;106.5\n2024-05-01 10:00:01;29.5;106.5\n"
    return write_file(folder, "naive.csv", text.encode())


def csv_short_row(folder: Path) -> Path:
    """A row with fewer cells than the header."""
    text = "time,lat,lon,ele\n2024-05-01T02:00:00Z,29.5,106.5,3\n2024-05-01T02:00:01Z,29.5\n"
    return write_file(folder, "short.csv", text.encode())


def csv_time_overflow(folder: Path) -> Path:
    """Unix time 1e300."""
    return write_file(folder, "time_1e300.csv", b"time,lat,lon\n1e300,29.5,106.5\n")


def csv_field_too_large(folder: Path) -> Path:
    """A quoted cell of 200 000 characters (over the csv module's field limit)."""
    text = 'time,lat,lon\n"' + "x" * 200_000 + '",29.5,106.5\n'
    return write_file(folder, "huge_field.csv", text.encode())


def csv_time_backwards(folder: Path) -> Path:
    """The second row is an hour older than the first."""
    text = "time,lat,lon\n2024-05-01T02:00:00Z,29.5,106.5\n2024-05-01T01:00:00Z,29.5,106.5\n"
    return write_file(folder, "backwards.csv", text.encode())


def csv_impossible_coordinates(folder: Path) -> Path:
    """Longitude 200°."""
    return write_file(folder, "lon_200.csv", b"time,lat,lon\n2024-05-01T02:00:00Z,29.5,200\n")


def csv_empty(folder: Path) -> Path:
    """A header and no rows."""
    return write_file(folder, "header_only.csv", b"time,lat,lon\n")


def unknown_track_format(folder: Path) -> Path:
    """Binary bytes (not UTF-8) in a .csv file."""
    return write_file(folder, "binary.csv", b"\xff\xfe\x00\x01binary")
