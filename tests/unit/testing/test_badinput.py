"""The bad-input corpus against the parsers: every case gets its documented error, never a crash.

Images go through ``extract_metadata`` (the ingest step) and ``decode_image`` (the detect
step), tracks through ``load_track``, manifests through ``Manifest.from_json_bytes``, keys
through ``validate_key`` and a local object store. The corpus as a whole through the pipeline
is in ``test_badinput_pipeline.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from xunjian.errors import InputError, MetadataError, UnsafeKeyError
from xunjian.inspect.decode import decode_image
from xunjian.inspect.manifest import Manifest
from xunjian.inspect.metadata import extract_metadata
from xunjian.inspect.tracks import load_track
from xunjian.storage.keys import validate_key
from xunjian.storage.localstore import LocalStore
from xunjian.testing.badinput import (
    CORPUS,
    DRONE_BATCH,
    Case,
    Family,
    Stage,
    case,
    cases,
    check_batch,
    write_corpus,
)

IMAGE_FAMILIES = (Family.IMAGE, Family.METADATA, Family.POSE, Family.EXIF_FUZZ)


def _ids(chosen: list[Case]) -> list[str]:
    return [c.name for c in chosen]


def test_every_case_is_named_described_and_has_a_reason_that_compiles() -> None:
    names = [c.name for c in CORPUS]
    assert len(names) == len(set(names))
    for c in CORPUS:
        assert c.description, c.name
        re.compile(c.reason)
        assert (c.reason == "") == (c.stage is Stage.ACCEPTED), c.name
        assert (c.key is not None) == (c.family is Family.KEY), c.name
    assert {c.family for c in CORPUS} == set(Family)
    assert case("truncated").stage is Stage.INGEST
    with pytest.raises(KeyError):
        case("no such case")


@pytest.mark.parametrize("bad", cases(*IMAGE_FAMILIES), ids=_ids(cases(*IMAGE_FAMILIES)))
def test_images_are_refused_or_reported_naming_file_and_reason(tmp_path: Path, bad: Case) -> None:
    path = bad.write(tmp_path)
    try:
        meta = extract_metadata(path)
    except MetadataError as exc:
        assert bad.stage in (Stage.INGEST, Stage.EITHER), f"{bad.name} refused: {exc}"
        assert exc.source == str(path) and str(exc).startswith(f"{path}: ")
        assert bad.matches(exc.reason), exc.reason
        return
    assert bad.stage in (Stage.FRAME, Stage.EITHER, Stage.ACCEPTED), f"{bad.name} was kept"
    if bad.stage is Stage.FRAME:
        assert any(bad.matches(p) for p in meta.problems), meta.problems
    assert all(": " in p for p in meta.problems)  # "field: reason"
    json.dumps(meta.to_json(), allow_nan=False)  # what `xunjian metadata --json` prints


# A PNG is a readable image to the decoder; only ingest, which wants a JPEG, refuses it.
UNDECODABLE = [c for c in cases(*IMAGE_FAMILIES, stage=Stage.INGEST) if c.name != "png_named_jpg"]


@pytest.mark.parametrize("bad", UNDECODABLE, ids=_ids(UNDECODABLE))
def test_refused_images_are_refused_by_the_decoder_too(tmp_path: Path, bad: Case) -> None:
    path = bad.write(tmp_path)
    with pytest.raises(InputError) as caught:
        decode_image(path, working_scale=0.25)
    assert caught.value.source == str(path)


def test_the_huge_image_is_a_valid_jpeg_refused_only_for_its_size(tmp_path: Path) -> None:
    path = case("huge_valid_image").write(tmp_path)
    assert path.stat().st_size < 1_000_000
    image = decode_image(path, working_scale=0.125, max_pixels=200_000_000)
    assert (image.width, image.height) == (10960, 10960)
    assert image.pixels.shape == (1370, 1370, 3)
    assert np.all(image.pixels == 128)  # a flat grey: every DC difference is 0


def test_subsecond_digits_pillow_counts_as_digits_no_longer_refuse_the_photo(
    tmp_path: Path,
) -> None:
    meta = extract_metadata(case("subsec_superscript").write(tmp_path))
    assert meta.pose is not None and meta.problems == ()


@pytest.mark.parametrize("bad", cases(Family.TRACK), ids=_ids(cases(Family.TRACK)))
def test_tracks_raise_input_errors_naming_file_and_reason(tmp_path: Path, bad: Case) -> None:
    path = bad.write(tmp_path)
    with pytest.raises(InputError) as caught:
        load_track(path)
    assert caught.value.source == str(path)
    assert bad.matches(caught.value.reason), caught.value.reason


@pytest.mark.parametrize("bad", cases(Family.MANIFEST), ids=_ids(cases(Family.MANIFEST)))
def test_manifests_raise_input_errors_naming_the_field(tmp_path: Path, bad: Case) -> None:
    data = bad.write(tmp_path).read_bytes()
    with pytest.raises(InputError) as caught:
        Manifest.from_json_bytes(data, source="raw/B/manifest.json")
    assert caught.value.source == "raw/B/manifest.json"
    assert bad.matches(caught.value.reason), caught.value.reason


@pytest.mark.parametrize("bad", cases(Family.KEY), ids=_ids(cases(Family.KEY)))
def test_keys_are_refused_or_stay_inside_the_store(tmp_path: Path, bad: Case) -> None:
    assert bad.key is not None
    written = json.loads(bad.write(tmp_path / "keys").read_text("utf-8"))
    assert written == {"key": bad.key}  # the file holds the key faithfully
    store = LocalStore(tmp_path / "store")
    if bad.stage is Stage.KEY:
        with pytest.raises(UnsafeKeyError) as caught:
            validate_key(bad.key)
        assert bad.matches(caught.value.reason), caught.value.reason
        with pytest.raises(UnsafeKeyError):
            store.put_bytes(bad.key, b"x")
        return
    assert validate_key(bad.key) == bad.key
    store.put_bytes(bad.key, b"x")
    assert store.get_bytes(bad.key) == b"x"
    assert [info.key for info in store.list()] == [bad.key]
    stored = [p for p in (tmp_path / "store" / "objects").rglob("*") if p.is_file()]
    assert len(stored) == 1 and stored[0].resolve().is_relative_to(tmp_path / "store" / "objects")


def test_write_corpus_lays_out_batches_and_an_index(tmp_path: Path) -> None:
    families = (Family.IMAGE, Family.TRACK, Family.NAME, Family.KEY)
    index = write_corpus(tmp_path, families=families)
    assert json.loads((tmp_path / "expected.json").read_text("utf-8")) == index
    assert {e["name"] for e in index} == {c.name for c in cases(*families)}
    for entry in index:
        assert (tmp_path / entry["path"]).is_symlink() or (tmp_path / entry["path"]).is_file()
    clean = sorted(p.name for p in (tmp_path / DRONE_BATCH).glob("clean_*.jpg"))
    assert clean == ["clean_0001.jpg", "clean_0002.jpg", "clean_0003.jpg"]
    assert (tmp_path / "vehicle-batch" / "good_track.gpx").is_file()
    assert load_track(tmp_path / "vehicle-batch" / "good_track.gpx").length_m > 100


def test_the_corpus_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    for c in cases(*IMAGE_FAMILIES, Family.TRACK):
        first, second = c.write(tmp_path / "a"), c.write(tmp_path / "b")
        assert first.read_bytes() == second.read_bytes(), c.name


def test_the_cli_writes_the_corpus_and_refuses_unknown_families(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from xunjian.cli.app import app

    runner = CliRunner()
    done = runner.invoke(app, ["synth", "bad-inputs", str(tmp_path), "--family", "track"])
    assert done.exit_code == 0, done.output
    index = json.loads((tmp_path / "expected.json").read_text("utf-8"))
    assert len(index) == len(cases(Family.TRACK)) and f"{len(index)} bad inputs" in done.output
    refused = runner.invoke(app, ["synth", "bad-inputs", str(tmp_path), "--family", "nope"])
    assert refused.exit_code == 2 and "expected one of image, metadata" in refused.output


def test_check_batch_says_what_went_differently(tmp_path: Path) -> None:
    index = write_corpus(tmp_path, families=(Family.IMAGE, Family.POSE))
    first = index[0]["path"].split("/", 1)[1]  # corrupt_header.jpg
    wrong = check_batch(index, DRONE_BATCH, "b1", {f"raw/b1/{first}": "corrupt JPEG header"}, {})
    assert len(wrong) == len(index) - 1 and all("missing, expected stage" in w for w in wrong)
    mistaken = check_batch(index[:1], DRONE_BATCH, "b1", {f"raw/b1/{first}": "no reason"}, {})
    assert mistaken == [
        "corrupt_header: failed with 'no reason', expected /" + case("corrupt_header").reason + "/"
    ]
    pose = next(e for e in index if e["name"] == "null_island")
    kept = {f"raw/b1/{pose['path'].split('/', 1)[1]}": ["pose: fine"]}
    assert check_batch([pose], DRONE_BATCH, "b1", {"raw/b1/clean.jpg": "x"}, kept) == [
        "null_island: kept with problems ['pose: fine'], none /pose: GPS position is 0, 0/",
        "raw/b1/clean.jpg: unexpected failure 'x'",
    ]


def test_the_documentation_lists_every_case() -> None:
    text = (Path(__file__).resolve().parents[3] / "docs" / "bad-inputs.md").read_text("utf-8")
    missing = [c.name for c in CORPUS if f"| `{c.name}` |" not in text]
    assert missing == [], "add them to the tables of docs/bad-inputs.md"
