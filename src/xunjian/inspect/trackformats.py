"""GPS track file formats: GPX 1.0/1.1, NMEA 0183 (RMC + GGA) and CSV, parsed into fixes.

Malformed GPX and CSV raise :class:`InputError` naming the file, the line and the reason.
NMEA receivers routinely emit garbled sentences: those with a bad checksum or unreadable
fields are skipped and counted (with the first few reasons kept); only a file without any
usable fix is an error. GPX is parsed with defusedxml (no DTDs, no entities).

May import: defusedxml, ``xunjian.errors`` and the standard library.
"""

from __future__ import annotations

import csv
import io
import math
import xml.sax
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

import defusedxml
import defusedxml.sax

from xunjian.errors import InputError

if TYPE_CHECKING:
    from _csv import Reader as _CsvReader

__all__ = ["Fix", "parse_csv", "parse_gpx", "parse_nmea", "parse_track_file"]

MAX_TRACK_BYTES = 200 * 1024 * 1024
_KEPT_PROBLEMS = 20


@dataclass(frozen=True)
class Fix:
    """One GPS fix: tz-aware time, WGS84 degrees, height in metres when known."""

    time: datetime
    lat: float
    lon: float
    ele: float | None = None


Parsed = tuple[list[Fix], int, list[str]]  # fixes, skipped count, problems


def _check_position(lat: float, lon: float) -> str | None:
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return "latitude/longitude is not a number"
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return f"latitude/longitude {lat}, {lon} out of range"
    return None


def _elevation(text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"elevation {text.strip()!r} is not a finite number")
    return value


def _check_order(moment: datetime, previous: datetime | None) -> None:
    """GPX and CSV logs are written in time order: a step back means a corrupt or spliced
    file, and sorting it would silently draw a zig-zag route."""
    if previous is not None and moment < previous:
        raise ValueError(
            f"time {moment.isoformat()} goes backwards (previous fix {previous.isoformat()})"
        )


def _parse_time(text: str, naive_tz: tzinfo | None) -> datetime:
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:  # Unix seconds (or milliseconds, from phone loggers)
        try:
            return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"time {text!r}: expected Unix seconds of a real date") from None
    moment = datetime.fromisoformat(text.replace(" ", "T", 1))
    if moment.tzinfo is None:
        if naive_tz is None:
            raise ValueError(f"time {text!r} has no time zone (pass naive_tz to assume one)")
        moment = moment.replace(tzinfo=naive_tz)
    return moment


# ---- GPX


class _GpxHandler(xml.sax.handler.ContentHandler):
    def __init__(self, source: str, naive_tz: tzinfo | None) -> None:
        super().__init__()
        self.source, self.naive_tz = source, naive_tz
        self.fixes: list[Fix] = []
        self._point: dict[str, str] | None = None
        self._point_line = 0
        self._field: str | None = None
        self._text: list[str] = []
        self._locator: xml.sax.xmlreader.Locator | None = None

    def setDocumentLocator(self, locator: xml.sax.xmlreader.Locator) -> None:  # noqa: N802
        self._locator = locator

    def _line(self) -> int:
        line = self._locator.getLineNumber() if self._locator else None
        return line or 0

    def startElement(self, name: str, attrs: xml.sax.xmlreader.AttributesImpl) -> None:  # noqa: N802
        local = name.rpartition(":")[2]
        if local in ("trkpt", "rtept"):
            self._point = {k: attrs[k] for k in ("lat", "lon") if k in attrs}
            self._point_line = self._line()
        elif self._point is not None and local in ("time", "ele"):
            self._field, self._text = local, []

    def characters(self, content: str) -> None:
        if self._field is not None:
            self._text.append(content)

    def endElement(self, name: str) -> None:  # noqa: N802
        local = name.rpartition(":")[2]
        if self._point is not None and local == self._field:
            self._point[local] = "".join(self._text)
            self._field = None
        elif self._point is not None and local in ("trkpt", "rtept"):
            self.fixes.append(self._fix(local, self._point))
            self._point = None

    def _fix(self, kind: str, point: dict[str, str]) -> Fix:
        where = f"line {self._point_line}: <{kind}>"
        try:
            lat, lon = float(point["lat"]), float(point["lon"])
        except (KeyError, ValueError):
            raise InputError(f"{where} without a numeric lat/lon", source=self.source) from None
        if (reason := _check_position(lat, lon)) is not None:
            raise InputError(f"{where} {reason}", source=self.source)
        if "time" not in point:
            raise InputError(f"{where} has no <time>", source=self.source)
        try:
            moment = _parse_time(point["time"], self.naive_tz)
            ele = _elevation(point.get("ele"))
            _check_order(moment, self.fixes[-1].time if self.fixes else None)
        except ValueError as exc:
            raise InputError(f"{where} {exc}", source=self.source) from None
        return Fix(moment, lat, lon, ele)


def parse_gpx(data: bytes, source: str, naive_tz: tzinfo | None = None) -> Parsed:
    handler = _GpxHandler(source, naive_tz)
    try:
        defusedxml.sax.parse(io.BytesIO(data), handler, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        raise InputError(f"hostile GPX refused ({type(exc).__name__})", source=source) from None
    except xml.sax.SAXParseException as exc:
        raise InputError(
            f"line {exc.getLineNumber()}: malformed GPX ({exc.getMessage()})", source=source
        ) from None
    except InputError:
        raise
    except (LookupError, ValueError) as exc:  # an encoding expat does not know
        raise InputError(f"malformed GPX ({exc})", source=source) from None
    return handler.fixes, 0, []


# ---- NMEA 0183


def _nmea_angle(value: str, hemisphere: str, degree_digits: int) -> float:
    degrees = float(value[:degree_digits]) + float(value[degree_digits:]) / 60.0
    if hemisphere not in ("N", "S", "E", "W"):
        raise ValueError(f"hemisphere {hemisphere!r}")
    return -degrees if hemisphere in ("S", "W") else degrees


def _nmea_position(fields: list[str]) -> tuple[float, float]:
    """(lat, lon) from ``ddmm.mmmm,N,dddmm.mmmm,E``; ValueError when it is no place on Earth."""
    lat, lon = _nmea_angle(fields[0], fields[1], 2), _nmea_angle(fields[2], fields[3], 3)
    if (reason := _check_position(lat, lon)) is not None:
        raise ValueError(reason)
    return lat, lon


def _nmea_tod(value: str) -> timedelta:
    hours, minutes, seconds = int(value[0:2]), int(value[2:4]), float(value[4:] or "0")
    if not (0 <= hours < 24 and 0 <= minutes < 60 and 0 <= seconds < 61):  # nan fails too
        raise ValueError(f"time of day {value[:16]!r}: expected hhmmss.ss")
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _nmea_fields(line: str) -> list[str]:
    """The fields of a checksum-verified sentence; ValueError says what is wrong."""
    star = line.rfind("*")
    if not line.startswith("$") or star < 0:
        raise ValueError("no $…*checksum framing")
    body, given = line[1:star], line[star + 1 : star + 3]
    computed = 0
    for char in body.encode("ascii", "replace"):
        computed ^= char
    if given.upper() != f"{computed:02X}":
        raise ValueError(f"bad checksum {given!r}, computed {computed:02X}")
    return body.split(",")


def parse_nmea(text: str, source: str) -> Parsed:
    rmc: dict[datetime, tuple[float, float]] = {}
    gga: list[tuple[int, timedelta, float, float, float | None]] = []  # order, tod, lat, lon, alt
    days: list[tuple[int, datetime]] = []  # order, RMC datetime (date source for GGA)
    skipped, problems = 0, list[str]()
    latest: datetime | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            fields = _nmea_fields(line)
            kind = fields[0][-3:]
            if kind == "RMC" and len(fields) >= 10:
                if fields[2] != "A":
                    raise ValueError("RMC without a valid fix (status V)")
                day = datetime.strptime(fields[9], "%d%m%y").replace(tzinfo=UTC)
                moment = day + _nmea_tod(fields[1])
                if latest is not None and moment < latest:
                    raise ValueError(f"time {moment.isoformat()} goes backwards")
                latest = moment
                rmc[moment] = _nmea_position(fields[3:7])
                days.append((number, moment))
            elif kind == "GGA" and len(fields) >= 10:
                if fields[6] in ("", "0"):
                    raise ValueError("GGA without a fix (quality 0)")
                lat, lon = _nmea_position(fields[2:6])
                alt = _elevation(fields[9])
                gga.append((number, _nmea_tod(fields[1]), lat, lon, alt))
            elif kind in ("RMC", "GGA"):
                raise ValueError(f"{kind} with {len(fields)} fields")
        except (ValueError, IndexError, OverflowError) as exc:
            skipped += 1
            if len(problems) < _KEPT_PROBLEMS:
                problems.append(f"line {number}: {exc}; skipped")
    fixes = {m: Fix(m, lat, lon) for m, (lat, lon) in rmc.items()}
    for number, tod, lat, lon, alt in gga:
        when = _gga_time(number, tod, days)
        if when is None:
            skipped += 1
            continue
        fixes[when] = Fix(when, lat, lon, alt)  # GGA carries the height: prefer it
    if not fixes:
        first = f": {problems[0]}" if problems else ""
        raise InputError(f"no usable NMEA fix ({skipped} sentences skipped){first}", source=source)
    return sorted(fixes.values(), key=lambda f: f.time), skipped, problems


def _gga_time(number: int, tod: timedelta, days: list[tuple[int, datetime]]) -> datetime | None:
    """GGA has no date: take the nearest RMC's, allowing for midnight between them."""
    if not days:
        return None
    nearest = min(days, key=lambda d: abs(d[0] - number))[1]
    midnight = datetime.combine(nearest.date(), datetime.min.time(), tzinfo=UTC)
    moment = midnight + tod
    if moment - nearest > timedelta(hours=12):
        moment -= timedelta(days=1)
    elif nearest - moment > timedelta(hours=12):
        moment += timedelta(days=1)
    return moment


# ---- CSV

_COLUMNS = {
    "time": ("time", "timestamp", "datetime", "date_time", "utc", "gps_time"),
    "lat": ("lat", "latitude"),
    "lon": ("lon", "lng", "long", "longitude"),
    "ele": ("ele", "alt", "altitude", "elevation", "height"),
}


def parse_csv(text: str, source: str, naive_tz: tzinfo | None = None) -> Parsed:
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in next(_rows(reader, source), [])]
    index: dict[str, int] = {}
    for key, names in _COLUMNS.items():
        found = [header.index(n) for n in names if n in header]
        if found:
            index[key] = found[0]
        elif key != "ele":
            raise InputError(
                f"line 1: CSV header needs a {key} column (one of {', '.join(names)}),"
                f" got {header}",
                source=source,
            )
    fixes: list[Fix] = []
    for row in _rows(reader, source):
        if not any(cell.strip() for cell in row):
            continue
        where = f"line {reader.line_num}"
        try:
            cells = {k: row[i].strip() for k, i in index.items()}
            lat, lon = float(cells["lat"]), float(cells["lon"])
            ele = _elevation(cells.get("ele"))
            moment = _parse_time(cells["time"], naive_tz)
        except IndexError:
            raise InputError(
                f"{where}: {len(row)} columns, header has {len(header)}", source=source
            ) from None
        except ValueError as exc:
            raise InputError(f"{where}: {exc}", source=source) from None
        if (reason := _check_position(lat, lon)) is not None:
            raise InputError(f"{where}: {reason}", source=source)
        try:
            _check_order(moment, fixes[-1].time if fixes else None)
        except ValueError as exc:
            raise InputError(f"{where}: {exc}", source=source) from None
        fixes.append(Fix(moment, lat, lon, ele))
    return fixes, 0, []


def _rows(reader: _CsvReader, source: str) -> Iterator[list[str]]:
    """The reader's rows; csv.Error (a field over the size limit, a stray quote) as InputError."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(
                f"line {reader.line_num}: malformed CSV ({exc})", source=source
            ) from None
        yield row


def parse_track_file(path: Path, naive_tz: tzinfo | None = None) -> Parsed:
    """Fixes of a track file, by extension (.gpx, .nmea/.nma/.log, .csv) or else content."""
    source = str(path)
    try:
        data = path.read_bytes() if path.stat().st_size <= MAX_TRACK_BYTES else None
    except OSError as exc:
        raise InputError(f"cannot read track: {exc}", source=source) from exc
    if data is None:
        raise InputError(f"track larger than {MAX_TRACK_BYTES} bytes", source=source)
    suffix = path.suffix.lower()
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if suffix == ".gpx" or head.startswith((b"<?xml", b"<gpx")):
        return parse_gpx(data, source, naive_tz)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"track is neither GPX nor UTF-8 text ({exc})", source=source) from None
    if suffix in (".nmea", ".nma", ".log") or head.startswith(b"$"):
        return parse_nmea(text, source)
    if suffix in (".csv", ".txt", ".tsv") or "," in text.split("\n", 1)[0]:
        return parse_csv(text, source, naive_tz)
    raise InputError("unknown track format (expected GPX, NMEA 0183 or CSV)", source=source)
