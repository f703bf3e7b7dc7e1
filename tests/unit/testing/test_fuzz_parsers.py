"""Bounded fuzzing of every parser of user input: parse, or raise the documented error.

Arbitrary bytes and structured mutations of valid inputs go through the EXIF reader (via
``extract_metadata`` and ``capture_time``), the JPEG header walk, the XMP parser, the GPX /
NMEA / CSV track parsers and ``Track`` itself, the manifest parser, file names on disk
through ``upload_batch``, and the object-key gate.
The only exceptions allowed are the ones ``xunjian.errors`` documents for them (InputError,
MetadataError, UnsafeKeyError); anything else — IndexError, KeyError, struct.error,
UnicodeDecodeError, RecursionError, OverflowError — is a bug.

Bounded for CI: each test runs at most ``EXAMPLES`` examples (the whole file takes well
under a minute); ``XUNJIAN_FUZZ_EXAMPLES=5000`` runs a longer campaign by hand.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import posixpath
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xunjian.datasets.flightgen import xmp_packet
from xunjian.errors import InputError, MetadataError, UnsafeKeyError
from xunjian.inspect.manifest import Manifest
from xunjian.inspect.metadata import extract_metadata
from xunjian.inspect.trackformats import Fix, parse_csv, parse_gpx, parse_nmea
from xunjian.inspect.tracks import Track, VehicleMount
from xunjian.inspect.upload import capture_time, upload_batch
from xunjian.inspect.xmp import NotAJpegError, find_xmp_packet, parse_xmp, read_jpeg_header
from xunjian.storage.keys import validate_key
from xunjian.storage.localstore import LocalStore
from xunjian.testing.badimages import clean_jpeg, clean_tags

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("XUNJIAN_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CLEAN = clean_jpeg()
DJI_XMP = xmp_packet(clean_tags())


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="xunjian-fuzz-") as folder:
        yield Path(folder)


def _exif_span(data: bytes) -> tuple[int, int]:
    """Start and end of the TIFF payload of the clean photo's EXIF segment."""
    at = data.find(b"Exif\x00\x00")
    length = int.from_bytes(data[at - 2 : at], "big")
    return at + 6, at - 2 + length


def _with_exif_payload(payload: bytes) -> bytes:
    start, end = _exif_span(CLEAN)
    segment = b"Exif\x00\x00" + payload
    return (
        CLEAN[: start - 10]
        + b"\xff\xe1"
        + (len(segment) + 2).to_bytes(2, "big")
        + segment
        + CLEAN[end:]
    )


def _metadata_or_error(path: Path) -> None:
    try:
        meta = extract_metadata(path)
    except MetadataError as exc:
        assert exc.source == str(path) and exc.reason
        return
    json.dumps(meta.to_json(), allow_nan=False)
    assert all(": " in p for p in meta.problems)
    if meta.pose is not None:
        assert -90 <= meta.pose.lat <= 90 and -180 <= meta.pose.lon <= 180


mutations = st.lists(
    st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=16
)


def _mutate(
    data: bytes, changes: list[tuple[int, int]], start: int = 0, end: int | None = None
) -> bytes:
    out = bytearray(data)
    span = (end or len(out)) - start
    for offset, value in changes:
        out[start + offset % span] = value
    return bytes(out)


# ---- EXIF and the JPEG header


@FUZZ
@given(payload=st.binary(max_size=2000))
def test_exif_reader_survives_arbitrary_exif_payloads(scratch: Path, payload: bytes) -> None:
    path = scratch / "payload.jpg"
    path.write_bytes(_with_exif_payload(payload))
    _metadata_or_error(path)
    capture_time(path)  # best effort: a string or None, never an exception


@FUZZ
@given(changes=mutations, cut=st.integers(0, 600))
def test_exif_reader_survives_mutated_and_cut_exif(
    scratch: Path, changes: list[tuple[int, int]], cut: int
) -> None:
    start, end = _exif_span(CLEAN)
    mutated = _mutate(CLEAN[start:end], changes)
    path = scratch / "mutated.jpg"
    path.write_bytes(_with_exif_payload(mutated[: max(cut, 8)]))
    _metadata_or_error(path)
    capture_time(path)


@FUZZ
@given(changes=mutations)
def test_metadata_survives_mutations_anywhere_before_the_scan(
    scratch: Path, changes: list[tuple[int, int]]
) -> None:
    path = scratch / "header.jpg"
    path.write_bytes(_mutate(CLEAN, changes, 2, CLEAN.find(b"\xff\xda") + 16))
    _metadata_or_error(path)


@FUZZ
@given(data=st.binary(max_size=3000))
def test_jpeg_header_walk_raises_only_not_a_jpeg(data: bytes) -> None:
    for candidate in (data, b"\xff\xd8" + data):
        try:
            header = read_jpeg_header(io.BytesIO(candidate))
        except NotAJpegError:
            continue
        assert 0 <= header.width < 65536 and 0 <= header.height < 65536


# ---- XMP

xml_names = st.sampled_from(
    ["rdf:Description", "rdf:Seq", "rdf:li", "drone-dji:X", "a", "x:xmpmeta", "rdf:RDF", "b:c"]
)
xml_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)


def _element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(
        lambda name, attr, value, inner: f'<{name} {attr}="{value}">{inner}</{name}>',
        xml_names,
        st.sampled_from(["drone-dji:RelativeAltitude", "rdf:about", "rdf:resource", "k"]),
        st.sampled_from(["nan", "1e999", "-0", "80", "&amp;", "", "x" * 50]),
        st.lists(children, max_size=4).map("".join),
    )


xml_trees = st.recursive(
    xml_text.map(lambda t: t.replace("<", "").replace("&", "")), _element, max_leaves=30
)


@FUZZ
@given(packet=st.binary(max_size=4000))
def test_xmp_parser_never_raises_on_bytes(packet: bytes) -> None:
    fields, reason = parse_xmp(packet)
    assert reason is None or (fields == {} and reason.startswith("xmp: "))
    find_xmp_packet([packet, b"http://ns.adobe.com/xap/1.0/\x00" + packet])


@FUZZ
@given(tree=xml_trees, depth=st.integers(0, 200))
def test_xmp_parser_never_raises_on_structured_packets(tree: str, depth: int) -> None:
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"'
        ' xmlns:b="urn:b" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:RDF>'
        + "<rdf:Description>" * depth
        + tree
        + "</rdf:Description>" * depth
        + "</rdf:RDF></x:xmpmeta>"
    ).encode()
    fields, reason = parse_xmp(packet)
    json.dumps(fields)  # only strings, lists and dicts
    assert reason is None or reason.startswith("xmp: ")


@FUZZ
@given(changes=mutations)
def test_xmp_parser_never_raises_on_a_mutated_dji_packet(changes: list[tuple[int, int]]) -> None:
    _, reason = parse_xmp(_mutate(DJI_XMP, changes))
    assert reason is None or reason.startswith("xmp: ")


# ---- tracks


def _parsed_fixes_are_sane(fixes: list[Fix]) -> None:
    for fix in fixes:
        assert fix.time.tzinfo is not None
        assert -90 <= fix.lat <= 90 and -180 <= fix.lon <= 180
        assert fix.ele is None or math.isfinite(fix.ele)


@FUZZ
@given(data=st.binary(max_size=3000))
def test_track_parsers_raise_only_input_errors_on_bytes(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    for parse in (
        lambda: parse_gpx(data, "t.gpx"),
        lambda: parse_gpx(b'<?xml version="1.0"?><gpx>' + data + b"</gpx>", "t.gpx"),
        lambda: parse_nmea(text, "t.nmea"),
        lambda: parse_csv(text, "t.csv"),
        lambda: parse_csv("time,lat,lon,ele\n" + text, "t.csv", UTC),
    ):
        try:
            fixes, _, _ = parse()
        except InputError:
            continue
        _parsed_fixes_are_sane(fixes)


zones = st.builds(  # fixed offsets up to ±23:59, as ISO 8601 times may carry
    timezone,
    st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
    ),
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e300", "-1e15", "nan", "inf", "", " ", "0x10", "1_0", "٣"]),
    st.integers(-(10**20), 10**20).map(str),
)
times = st.one_of(
    st.datetimes(timezones=st.one_of(st.none(), zones)).map(lambda t: t.isoformat()),
    numbers,
    xml_text,
)


@FUZZ
@given(points=st.lists(st.tuples(numbers, numbers, times, numbers), max_size=6))
def test_gpx_with_arbitrary_values_raises_only_input_errors(
    points: list[tuple[str, str, str, str]],
) -> None:
    def esc(value: str) -> str:
        return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")

    body = "".join(
        f'<trkpt lat="{esc(lat)}" lon="{esc(lon)}">'
        f"<ele>{esc(ele)}</ele><time>{esc(t)}</time></trkpt>"
        for lat, lon, t, ele in points
    )
    data = f'<?xml version="1.0"?><gpx><trk><trkseg>{body}</trkseg></trk></gpx>'.encode(
        "utf-8", "replace"
    )
    try:
        fixes, _, _ = parse_gpx(data, "t.gpx", naive_tz=UTC)
    except InputError:
        return
    _parsed_fixes_are_sane(fixes)
    assert [f.time for f in fixes] == sorted(f.time for f in fixes)


nmea_fields = st.lists(
    st.text(st.characters(codec="ascii", exclude_characters="*$\r\n"), max_size=12),
    min_size=1,
    max_size=14,
)


@FUZZ
@given(
    sentences=st.lists(
        st.tuples(st.sampled_from(["GPRMC", "GNGGA", "GPGGA", "GPVTG"]), nmea_fields), max_size=8
    )
)
def test_nmea_with_valid_checksums_raises_only_input_errors(
    sentences: list[tuple[str, list[str]]],
) -> None:
    lines = []
    for kind, fields in sentences:
        body = ",".join([kind, *fields])
        checksum = 0
        for char in body.encode():
            checksum ^= char
        lines.append(f"${body}*{checksum:02X}")
    try:
        fixes, skipped, problems = parse_nmea("\n".join(lines), "t.nmea")
    except InputError:
        return
    _parsed_fixes_are_sane(fixes)
    assert skipped >= 0 and len(problems) <= 20


@FUZZ
@given(
    rows=st.lists(st.tuples(times, numbers, numbers, numbers), max_size=6),
    delimiter=st.sampled_from(",;\t"),
)
def test_csv_with_arbitrary_cells_raises_only_input_errors(
    rows: list[tuple[str, str, str, str]], delimiter: str
) -> None:
    text = delimiter.join(["time", "lat", "lon", "ele"]) + "\n"
    text += "".join(delimiter.join(row) + "\n" for row in rows)
    try:
        fixes, _, _ = parse_csv(text, "t.csv", UTC)
    except InputError:
        return
    _parsed_fixes_are_sane(fixes)


fixes_strategy = st.lists(
    st.builds(
        Fix,
        st.datetimes(
            min_value=datetime(2000, 1, 1),
            max_value=datetime(2000, 1, 1, 0, 10),
            timezones=zones,
        ),
        st.floats(-89.9, 89.9),
        st.floats(-179.9, 179.9),
        st.one_of(st.none(), st.floats(-500, 9000)),
    ),
    max_size=8,
)


@FUZZ
@given(fixes=fixes_strategy, at=st.floats(-2.0, 700.0))
def test_track_answers_or_raises_input_errors_for_any_valid_fixes(
    fixes: list[Fix], at: float
) -> None:
    try:
        track = Track(fixes)
    except InputError:
        assert len({f.time for f in fixes}) < 2
        return
    moment = track.start + timedelta(seconds=at)
    for ask in (
        lambda: track.position_at(moment),
        lambda: (track.course_at(moment),),
        lambda: (track.distance_at(moment),),
        lambda: (
            track.pose_at(moment, VehicleMount()).lat,
            track.pose_at(moment, VehicleMount()).yaw_deg,
        ),
    ):
        try:
            values = ask()
        except InputError:
            continue
        assert all(math.isfinite(v) for v in values), values


# ---- manifests and keys

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), xml_text),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(xml_text, children, max_size=4)
    ),
    max_leaves=12,
)
_VALID = json.loads(Manifest("B1", "drone", (), (), {}).to_json_bytes())
_ENTRY = {
    "name": "a.jpg",
    "kind": "image",
    "size": 3,
    "sha256": "0" * 64,
    "key": "raw/B1/a.jpg",
    "captured_at": None,
    "duplicate_of": None,
}


@FUZZ
@given(data=st.binary(max_size=2000))
def test_manifest_parser_raises_only_input_errors_on_bytes(data: bytes) -> None:
    with contextlib.suppress(InputError):
        Manifest.from_json_bytes(data)


@FUZZ
@given(
    top=st.dictionaries(
        st.sampled_from(["version", "batch_id", "platform", "meta", "files", "rejected"]),
        json_values,
        max_size=3,
    ),
    entry=st.dictionaries(st.sampled_from(sorted(_ENTRY)), json_values, max_size=3),
)
def test_manifest_with_wrong_types_raises_only_input_errors(
    top: dict[str, Any], entry: dict[str, Any]
) -> None:
    doc = {**_VALID, "files": [{**_ENTRY, **entry}], **top}
    try:
        manifest = Manifest.from_json_bytes(json.dumps(doc).encode())
    except InputError:
        return
    for f in manifest.files:  # what ingest relies on, once a manifest is accepted
        assert isinstance(f.name, str) and isinstance(f.key, str) and isinstance(f.sha256, str)
        assert isinstance(f.size, int) and f.size >= 0
        assert f.key == f"raw/{manifest.batch_id}/{f.name}"
    assert Manifest.from_json_bytes(manifest.to_json_bytes()) == manifest


file_names = st.binary(min_size=1, max_size=40).filter(
    lambda n: b"/" not in n and b"\x00" not in n and n not in (b".", b"..")
)


@FUZZ
@given(
    names=st.lists(
        st.tuples(file_names, st.sampled_from([b".jpg", b".gpx", b".txt", b""])),
        min_size=1,
        max_size=5,
    )
)
def test_any_file_names_are_uploaded_or_listed_as_rejected(
    names: list[tuple[bytes, bytes]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(os.fsencode(tmp), b"batch")
        os.mkdir(folder)
        for n, (stem, suffix) in enumerate(names):
            with open(os.path.join(folder, stem + suffix), "wb") as handle:
                handle.write(CLEAN if suffix == b".jpg" else b"x%d" % n)
        try:
            report = upload_batch(Path(os.fsdecode(folder)), LocalStore(Path(tmp) / "store"))
        except InputError as exc:
            assert "no image, video or track files" in str(exc)
            return
        accounted = len(report.stored) + len(report.duplicates) + len(report.already_there)
        hidden = sum(1 for name in os.listdir(folder) if name.startswith(b"."))  # by design
        assert accounted + len(report.rejected) + hidden == len(os.listdir(folder))
        Manifest.from_json_bytes(LocalStore(Path(tmp) / "store").get_bytes(report.manifest_key))


key_text = st.one_of(
    st.text(max_size=40),
    st.lists(
        st.sampled_from(
            ["raw", "B1", "..", ".", "", "a.jpg", "\\", "\x00", "．．", "%2e", "\ud800", "é"]
        ),
        max_size=6,
    ).map("/".join),
)


@FUZZ
@given(key=key_text)
def test_object_keys_are_refused_or_cannot_leave_their_root(key: str) -> None:
    try:
        assert validate_key(key) == key
    except UnsafeKeyError as exc:
        assert exc.reason.startswith("unsafe object key: ")
        return
    root = "/store/objects"
    joined = posixpath.normpath(posixpath.join(root, key))
    assert joined.startswith(root + "/")
    assert posixpath.relpath(joined, root) == key  # nothing folded away: no '.', '..', '//'
    assert "\\" not in key and all(ord(c) >= 0x20 and not 0x7F <= ord(c) < 0xA0 for c in key)
