"""The bad-input corpus: every hostile or broken input, the stage that must refuse it, and why.

The rule it checks (DESIGN.md): bad input gets a clear error naming the file and the reason,
and never stops a batch. Each :class:`Case` has a name, a writer (which puts the input into a
folder), the :class:`Stage` that must deal with it and ``reason``, a regular expression the
error or problem must match. The writers live in ``badimages``, ``badtracks`` and
``badbatches``; :func:`write_corpus` lays the whole corpus out as batch folders, manifests
and keys with an ``expected.json`` index, for ``xunjian synth bad-inputs OUT_DIR`` and for
throwing at a deployment (docs/bad-inputs.md).

May import: ``xunjian.testing`` and the standard library.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from xunjian.testing import badbatches, badimages, badtracks
from xunjian.testing.badimages import Writer

__all__ = [
    "CORPUS",
    "DRONE_BATCH",
    "KEYS_DIR",
    "MANIFESTS_DIR",
    "NAMES_BATCH",
    "VEHICLE_BATCH",
    "Case",
    "Family",
    "Stage",
    "case",
    "cases",
    "check_batch",
    "write_corpus",
]

DRONE_BATCH, VEHICLE_BATCH, NAMES_BATCH = "drone-batch", "vehicle-batch", "names-batch"
MANIFESTS_DIR, KEYS_DIR = "manifests", "keys"
CLEAN_FRAMES = 3


class Stage(StrEnum):
    """Where an input must be dealt with, and how."""

    UPLOAD = "upload"  # refused before it is stored: the upload's rejected files, or a 4xx
    KEY = "key"  # refused as an object key (UnsafeKeyError) wherever keys enter
    MANIFEST = "manifest"  # the manifest is refused (InputError naming it); no file is read
    INGEST = "ingest"  # stored, then listed as a failed file of its batch, with the reason
    FRAME = "frame"  # kept as a frame; one of its problems ("field: reason") matches
    EITHER = "ingest-or-frame"  # fuzz: failed with a matching reason, or kept as a frame
    ACCEPTED = "accepted"  # odd but valid: processed like any other input


class Family(StrEnum):
    IMAGE = "image"  # not a usable JPEG
    METADATA = "metadata"  # EXIF / XMP missing, malformed or hostile
    POSE = "pose"  # a position or attitude no camera can have
    EXIF_FUZZ = "exif-fuzz"  # seeded random bytes in the EXIF block
    TRACK = "track"  # GPX, NMEA, CSV
    MANIFEST = "manifest"
    NAME = "name"  # file names in a batch folder
    KEY = "key"  # object keys


@dataclass(frozen=True)
class Case:
    name: str
    family: Family
    stage: Stage
    reason: str  # regex; "" for ACCEPTED
    write: Writer
    key: str | None = None  # the key itself, for KEY cases

    @property
    def description(self) -> str:
        return (self.write.__doc__ or "").strip().split("\n")[0]

    def matches(self, message: str) -> bool:
        return re.search(self.reason, message) is not None


def _table(family: Family, rows: list[tuple[Writer, Stage, str]]) -> list[Case]:
    return [Case(w.__name__, family, stage, reason, w) for w, stage, reason in rows]


_I, _F, _A = Stage.INGEST, Stage.FRAME, Stage.ACCEPTED
_b, _t = badimages, badtracks

_IMAGES = _table(
    Family.IMAGE,
    [
        (_b.corrupt_header, _I, "corrupt JPEG header|expected a marker"),
        (_b.corrupt_scan, _I, "corrupt or truncated JPEG"),
        (_b.truncated, _I, "truncated"),
        (_b.png_named_jpg, _I, "expected a JPEG.*found PNG"),
        (_b.text_named_jpg, _I, "expected a JPEG.*found text"),
        (_b.empty_file, _I, "expected a JPEG"),
        (_b.decompression_bomb, _I, "decompression bomb.*65535×65535"),
        (_b.huge_valid_image, _I, "decompression bomb refused: header claims 10960×10960"),
        (_b.unsupported_precision, _I, "corrupt or unsupported JPEG"),
        (_b.no_frame_header, _I, "image data before any frame header"),
        (_b.zero_width, _I, "JPEG frame header gives no image size"),
        (_b.exif_length_overrun, _I, "truncated JPEG header"),
    ],
)
_METADATA = _table(
    Family.METADATA,
    [
        (_b.no_exif, _F, "exif: the file has no EXIF"),
        (_b.gps_without_altitude, _F, "pose: no drone-dji:RelativeAltitude"),
        (_b.exif_truncated, _F, "gps: no EXIF GPS"),
        (_b.datetime_garbage, _F, "captured_at: unreadable DateTimeOriginal '9999:99:99"),
        (_b.orientation_9, _F, "orientation: expected 1…8, got 9"),
        (_b.subsec_superscript, _A, ""),
        (_b.malformed_xmp, _F, "xmp: malformed XML"),
        (_b.billion_laughs_xmp, _F, "xmp: hostile XML refused"),
        (_b.external_entity_xmp, _F, "xmp: hostile XML refused"),
        (_b.deeply_nested_xmp, _F, "xmp: elements nested deeper than"),
        (_b.unknown_encoding_xmp, _F, r"xmp: malformed XML \(unknown encoding"),
    ],
)
_POSES = _table(
    Family.POSE,
    [
        (_b.altitude_minus_500, _F, r"pose: relative altitude -500.0 m outside"),
        (_b.altitude_nan, _F, "pose: unreadable drone-dji:RelativeAltitude '[+]nan'"),
        (_b.yaw_infinite, _F, "pose: unreadable drone-dji:GimbalYawDegree '[+]inf'"),
        (_b.pitch_400, _F, "pose: gimbal pitch 400.0° outside"),
        (_b.null_island, _F, "pose: GPS position is 0, 0"),
        (_b.latitude_95, _F, "pose: GPS position 95.0.* out of range"),
        (_b.roll_120, _F, "pose: gimbal roll 120.0° beyond"),
        (_b.gps_zero_denominator, _F, "gps: malformed GPSLatitude/GPSLongitude"),
        (_b.gps_altitude_divide_by_zero, _F, "gps: unreadable GPSAltitude 1/0"),
        (_b.gps_latitude_huge, _F, "pose: GPS position 4294967295.0, .* out of range"),
    ],
)
EXIF_FUZZ_SEEDS = range(8)
_EXIF_FUZZ = [
    Case(f"exif_fuzz_{seed:02d}", Family.EXIF_FUZZ, Stage.EITHER, "JPEG", _b.exif_fuzzed(seed))
    for seed in EXIF_FUZZ_SEEDS
]
_TRACKS = _table(
    Family.TRACK,
    [
        (_t.gpx_point_without_time, _I, r"line 5: <trkpt> has no <time>"),
        (_t.gpx_bad_latitude, _I, r"line 5: <trkpt> without a numeric lat/lon"),
        (_t.gpx_not_xml, _I, r"line 5: malformed GPX"),
        (_t.gpx_hostile, _I, "hostile GPX refused"),
        (_t.gpx_external_entity, _I, "hostile GPX refused"),
        (_t.gpx_billion_laughs, _I, "hostile GPX refused"),
        (_t.gpx_unknown_encoding, _I, r"malformed GPX \(unknown encoding"),
        (_t.gpx_time_backwards, _I, r"line 6: <trkpt> time .* goes backwards"),
        (_t.gpx_impossible_coordinates, _I, r"line 5: <trkpt> latitude/longitude 91.0, .* range"),
        (_t.gpx_time_overflow, _I, r"<trkpt> time '1e300': expected Unix seconds"),
        (_t.gpx_nan_elevation, _I, r"<trkpt> elevation 'NaN' is not a finite number"),
        (_t.gpx_empty, _I, r"expected at least 2 fixes, got 0"),
        (_t.gpx_single_point, _I, r"expected at least 2 fixes, got 1"),
        (_t.nmea_without_fix, _I, r"no usable NMEA fix \(3 sentences skipped\)"),
        (
            _t.nmea_bad_checksum,
            _I,
            r"no usable NMEA fix \(2 sentences skipped\): line 1: bad checksum",
        ),
        (
            _t.nmea_impossible_coordinates,
            _I,
            r"NMEA fix .*latitude/longitude 95.0, .* out of range",
        ),
        (_t.nmea_time_overflow, _I, r"no usable NMEA fix .*time of day '999999'"),
        (_t.nmea_time_backwards, _I, r"got 1 \(2 skipped, first line 2: time .* goes backwards"),
        (_t.nmea_empty, _I, r"no usable NMEA fix \(0 sentences skipped\)"),
        (_t.csv_bad_number, _I, r"line 3: could not convert"),
        (_t.csv_missing_column, _I, r"line 1: CSV header needs a lon column"),
        (_t.csv_naive_time, _I, r"line 2: time .* has no time zone"),
        (_t.csv_short_row, _I, r"line 3: 2 columns, header has 4"),
        (_t.csv_time_overflow, _I, r"line 2: time '1e300': expected Unix seconds"),
        (_t.csv_field_too_large, _I, r"line 2: malformed CSV \(field larger than field limit"),
        (_t.csv_time_backwards, _I, r"line 3: time .* goes backwards"),
        (_t.csv_impossible_coordinates, _I, r"line 2: latitude/longitude 29.5, 200.0 out of range"),
        (_t.csv_empty, _I, r"expected at least 2 fixes, got 0"),
        (_t.unknown_track_format, _I, "neither GPX nor UTF-8"),
    ],
)
_MANIFEST_REASONS = {
    "manifest_not_json": "not valid JSON",
    "manifest_not_utf8": "not valid JSON",
    "manifest_empty": "not valid JSON",
    "manifest_top_level_array": "expected a JSON object, got list",
    "manifest_wrong_version": "expected manifest version 1, got 2",
    "manifest_huge_number": r"not valid JSON \(Exceeds the limit",
    "manifest_deeply_nested": r"not valid JSON \(nested too deeply\)",
    "manifest_files_not_a_list": "files: expected a list, got str",
    "manifest_entry_not_an_object": r"files\[0\]: expected an object, got str",
    "manifest_entry_missing_fields": r"files\[0\] has no kind, sha256, key, size",
    "manifest_size_not_a_number": r"files\[0\]\.size: expected a byte count, got 'big'",
    "manifest_negative_size": r"files\[0\]\.size: expected a byte count, got -1",
    "manifest_name_not_text": r"files\[0\]\.name: expected a string, got int",
    "manifest_meta_wrong_type": "meta: expected an object, got list",
    "manifest_platform_wrong_type": "expected platform drone or vehicle, got",
    "manifest_batch_id_wrong_type": "batch_id: expected a string, got dict",
    "manifest_key_escapes": "unsafe object key: '..' segment",
    "manifest_key_outside_batch": "is outside 'raw/B20240501-bad/'",
    "manifest_key_name_mismatch": r"is not 'raw/B20240501-bad/' \+ its name",
    "manifest_100k_entries": "files: expected at most 50000 entries, got 100000",
    "manifest_50mb": "expected at most 33554432 bytes, got 52428800",
}
_MANIFESTS = [
    Case(name, Family.MANIFEST, Stage.MANIFEST, _MANIFEST_REASONS[name], writer)
    for name, writer in badbatches.MANIFESTS.items()
]
_NAME_REASONS = {
    "name_backslash": "unsafe object key: backslash",
    "name_newline": r"unsafe object key: control character U\+000A",
    "name_escape_sequence": r"unsafe object key: control character U\+001B",
    "name_c1_control": r"unsafe object key: control character U\+0085",
    "name_key_too_long": "unsafe object key: expected at most 1024 bytes of UTF-8",
    "name_undecodable_bytes": "file name is not valid UTF-8 text",
    "name_symlink": "symbolic links are not followed",
    "name_not_a_batch_file": "not an image, video or GPS track",
}
_NAME_FAILURES = {"name_markup_closing_tag": "expected a JPEG.*found text"}
_NAMES = [
    Case(
        name,
        Family.NAME,
        Stage.UPLOAD if name in _NAME_REASONS else _I if name in _NAME_FAILURES else _A,
        _NAME_REASONS.get(name) or _NAME_FAILURES.get(name, ""),
        writer,
    )
    for name, writer in badbatches.NAMES.items()
]
_KEY_REASONS = {
    "key_parent_escape": "unsafe object key: '..' segment",
    "key_parent_inside": "unsafe object key: '..' segment",
    "key_absolute": r"unsafe object key: absolute key \(leading '/'\)",
    "key_backslash": "unsafe object key: backslash",
    "key_nul": r"unsafe object key: control character U\+0000",
    "key_newline": r"unsafe object key: control character U\+000A",
    "key_delete_char": r"unsafe object key: control character U\+007F",
    "key_empty": "unsafe object key: empty key",
    "key_double_slash": "unsafe object key: empty segment",
    "key_trailing_slash": "unsafe object key: empty segment",
    "key_dot_segment": "unsafe object key: '.' segment",
    "key_too_long": r"unsafe object key: expected at most 1024 bytes of UTF-8, got \d+",
    "key_lone_surrogate": r"unsafe object key: not valid Unicode text \(lone surrogate\)",
}
_KEYS = [
    Case(
        name,
        Family.KEY,
        Stage.KEY if name in _KEY_REASONS else _A,
        _KEY_REASONS.get(name, ""),
        badbatches.key_writer(name, key),
        key=key,
    )
    for name, key in badbatches.KEYS.items()
]

CORPUS: tuple[Case, ...] = (
    *_IMAGES,
    *_METADATA,
    *_POSES,
    *_EXIF_FUZZ,
    *_TRACKS,
    *_MANIFESTS,
    *_NAMES,
    *_KEYS,
)


def cases(*families: Family, stage: Stage | None = None) -> list[Case]:
    """The corpus cases of these families (all when none is named), optionally one stage."""
    return [
        c
        for c in CORPUS
        if (not families or c.family in families) and (stage is None or c.stage is stage)
    ]


def case(name: str) -> Case:
    for c in CORPUS:
        if c.name == name:
            return c
    raise KeyError(f"no bad-input case named {name!r}")


_FOLDER = {
    Family.IMAGE: DRONE_BATCH,
    Family.METADATA: DRONE_BATCH,
    Family.POSE: DRONE_BATCH,
    Family.EXIF_FUZZ: DRONE_BATCH,
    Family.TRACK: VEHICLE_BATCH,
    Family.NAME: NAMES_BATCH,
    Family.MANIFEST: MANIFESTS_DIR,
    Family.KEY: KEYS_DIR,
}


def write_corpus(out: Path, *, families: tuple[Family, ...] = ()) -> list[dict[str, Any]]:
    """Writes the corpus under ``out`` and returns (and writes) its ``expected.json`` index.

    ``drone-batch/`` (every bad photo and three clean ones), ``vehicle-batch/`` (every bad
    track, a good GPX track and two clean photos it covers) and ``names-batch/`` (hostile and
    odd file names, one clean photo) are each one batch to upload; ``manifests/`` holds
    documents to store as a batch's ``manifest.json``; ``keys/`` holds ``{"key": …}`` files.
    """
    chosen = cases(*families)
    wanted = {_FOLDER[c.family] for c in chosen}
    for n in range(CLEAN_FRAMES):
        if DRONE_BATCH in wanted:
            badimages.write_file(
                out / DRONE_BATCH, f"clean_{n + 1:04d}.jpg", badimages.clean_jpeg(seed=100 + n)
            )
        if n < 2 and VEHICLE_BATCH in wanted:
            moment = badimages.START.replace(second=2 * n)
            data = badimages.clean_jpeg(seed=110 + n, captured_at=moment)
            badimages.write_file(out / VEHICLE_BATCH, f"vehicle_{n + 1:04d}.jpg", data)
        if n < 1 and NAMES_BATCH in wanted:
            badimages.write_file(out / NAMES_BATCH, "clean.jpg", badimages.clean_jpeg(seed=120))
    if VEHICLE_BATCH in wanted:
        badtracks.good_gpx(out / VEHICLE_BATCH)
    index: list[dict[str, Any]] = []
    for c in chosen:
        path = c.write(out / _FOLDER[c.family])
        entry: dict[str, Any] = {
            "name": c.name,
            "family": str(c.family),
            "stage": str(c.stage),
            "reason": c.reason,
            "description": c.description,
            "path": path.relative_to(out).as_posix(),
        }
        if c.key is not None:
            entry["key"] = c.key
        index.append(entry)
    (out / "expected.json").write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    return index


def check_batch(
    index: Sequence[Mapping[str, Any]],
    folder: str,
    batch_id: str,
    failures: Mapping[str, str],
    problems: Mapping[str, Sequence[str]],
) -> list[str]:
    """What went differently from ``expected.json`` for one processed batch folder.

    ``failures`` maps each failed key of batch ``batch_id`` to its reason, ``problems`` each
    kept frame's key to its problems (``GET /api/v1/batches/{id}`` and ``…/footprints`` give
    both; so do ``BatchResult.ingest``). Empty when every case of ``folder`` ended as its
    stage says and nothing else failed (the clean files beside them).
    """
    prefix, wrong = f"raw/{batch_id}/", []
    unexplained = dict(failures)
    for entry in index:
        if not str(entry["path"]).startswith(folder + "/"):
            continue
        bad = case(str(entry["name"]))
        key = prefix + str(entry["path"]).removeprefix(folder + "/")
        reason, kept = unexplained.pop(key, None), problems.get(key)
        if reason is not None and bad.stage in (Stage.INGEST, Stage.EITHER):
            if not bad.matches(reason):
                wrong.append(f"{bad.name}: failed with {reason!r}, expected /{bad.reason}/")
        elif kept is not None and bad.stage in (Stage.FRAME, Stage.EITHER, Stage.ACCEPTED):
            if bad.stage is Stage.FRAME and not any(bad.matches(p) for p in kept):
                wrong.append(f"{bad.name}: kept with problems {list(kept)}, none /{bad.reason}/")
        elif bad.stage is Stage.UPLOAD:
            if reason is not None or kept is not None:
                wrong.append(f"{bad.name}: reached the batch; it must be refused at upload")
        else:
            found = "missing" if kept is None else "kept"
            found = f"failed ({reason})" if reason is not None else found
            wrong.append(f"{bad.name}: {found}, expected stage {bad.stage}")
    wrong += [f"{key}: unexpected failure {reason!r}" for key, reason in unexplained.items()]
    return wrong
