"""The whole bad-input corpus through upload → ingest → detect → georef → fuse, in process.

Each batch folder of the corpus is run as one batch: every bad file must end as a failure of
the batch whose reason matches its case (or as a frame with a matching problem), the clean
photos beside them must be processed, and nothing may raise.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xunjian.errors import InputError
from xunjian.inspect.manifest import manifest_key
from xunjian.inspect.pipeline import BatchResult, Services, process_batch, run_folder
from xunjian.models.detector import DetectorSet
from xunjian.settings import Settings
from xunjian.testing.badinput import (
    DRONE_BATCH,
    NAMES_BATCH,
    VEHICLE_BATCH,
    Family,
    Stage,
    case,
    cases,
    check_batch,
    write_corpus,
)

pytestmark = pytest.mark.slow

PHOTOS = (Family.IMAGE, Family.METADATA, Family.POSE, Family.EXIF_FUZZ)


def _run(settings: Settings, folder: Path, detectors: DetectorSet, out: Path) -> BatchResult:
    services = Services.open(settings)
    try:
        upload, result = run_folder(services, folder, detectors=detectors, out_dir=out)
        assert upload.rejected == []
        recorded = {f.key: f.reason for f in services.catalog.failures(upload.batch_id)}
        assert recorded == dict(result.ingest.failures)  # what the API's status will show
    finally:
        services.close()
    return result


def test_every_bad_photo_fails_alone_with_its_reason_and_the_clean_ones_are_processed(
    tmp_path: Path, settings: Settings, blob_set: DetectorSet
) -> None:
    index = write_corpus(tmp_path / "corpus", families=PHOTOS)
    result = _run(settings, tmp_path / "corpus" / DRONE_BATCH, blob_set, tmp_path / "out")

    failures = dict(result.ingest.failures)
    frames = {f.key: f for f in result.ingest.frames}
    assert len(failures) + len(frames) == len(index) + 3  # nothing lost, nothing twice
    problems = {key: frame.problems for key, frame in frames.items()}
    assert check_batch(index, DRONE_BATCH, result.batch_id, failures, problems) == []

    clean = [f for key, f in frames.items() if key.rsplit("/", 1)[-1].startswith("clean_")]
    assert len(clean) == 3 and all(f.georeferenceable for f in clean)
    errors = dict(result.frame_errors)
    assert not any(f.key in errors for f in clean)
    assert result.frames_detected + len(errors) == len(frames)  # every kept frame was tried
    assert all("JPEG" in reason for reason in errors.values()), errors


def test_every_bad_track_fails_alone_and_the_good_one_gives_the_poses(
    tmp_path: Path, settings: Settings, blob_set: DetectorSet
) -> None:
    index = write_corpus(tmp_path / "corpus", families=(Family.TRACK,))
    result = _run(settings, tmp_path / "corpus" / VEHICLE_BATCH, blob_set, tmp_path / "out")

    assert result.ingest.platform == "vehicle"
    failures = dict(result.ingest.failures)
    assert len(failures) == len(index)
    problems = {f.key: f.problems for f in result.ingest.frames}
    assert check_batch(index, VEHICLE_BATCH, result.batch_id, failures, problems) == []
    assert len(result.ingest.frames) == 2
    for frame in result.ingest.frames:
        assert frame.pose is not None and frame.pose.source == "track", frame.problems
    assert result.frame_errors == [] and result.frames_detected == 2


def test_hostile_file_names_are_refused_at_upload_and_odd_ones_kept_as_they_are(
    tmp_path: Path, settings: Settings, blob_set: DetectorSet
) -> None:
    index = write_corpus(tmp_path / "corpus", families=(Family.NAME,))
    services = Services.open(settings)
    try:
        upload, result = run_folder(
            services, tmp_path / "corpus" / NAMES_BATCH, detectors=blob_set, out_dir=tmp_path / "o"
        )
        stored = sorted(info.key for info in services.store.list("raw/"))
    finally:
        services.close()

    rejected = {r.name: r.reason for r in upload.rejected}
    for entry in index:
        bad = case(entry["name"])
        if bad.stage is Stage.UPLOAD:  # undecodable bytes are listed with \x escapes
            name = entry["path"].removeprefix(NAMES_BATCH + "/")
            shown = os.fsencode(name).decode("utf-8", "backslashreplace")
            assert bad.matches(rejected.pop(shown)), bad.name
    assert rejected == {}
    failures = dict(result.ingest.failures)
    problems = {f.key: f.problems for f in result.ingest.frames}
    assert check_batch(index, NAMES_BATCH, upload.batch_id, failures, problems) == []
    assert len(problems) == len(cases(Family.NAME, stage=Stage.ACCEPTED)) + 1  # + clean.jpg
    assert result.frame_errors == []
    assert all(key.startswith(f"raw/{upload.batch_id}/") for key in stored)


def test_bad_manifests_refuse_their_batch_naming_the_manifest(
    tmp_path: Path, settings: Settings, blob_set: DetectorSet
) -> None:
    services = Services.open(settings)
    try:
        for n, bad in enumerate(cases(Family.MANIFEST)):
            batch = f"bad-manifest-{n}"
            services.store.put_bytes(manifest_key(batch), bad.write(tmp_path).read_bytes())
            with pytest.raises(InputError) as caught:
                process_batch(services, batch, detectors=blob_set, out_dir=tmp_path / "o")
            assert caught.value.source == manifest_key(batch), bad.name
            assert bad.matches(caught.value.reason), caught.value.reason
            assert services.catalog.frames(batch) == []
    finally:
        services.close()


def test_the_cli_lists_every_hostile_name_without_choking_on_it(
    tmp_path: Path, settings: Settings
) -> None:
    from typer.testing import CliRunner

    from xunjian.cli.app import app

    write_corpus(tmp_path, families=(Family.NAME,))
    done = CliRunner().invoke(app, ["run", str(tmp_path / NAMES_BATCH)])
    assert done.exit_code == 0, done.output
    assert "\x1b" not in done.output  # a name's escape sequence must not reach the terminal
    text = " ".join(done.output.split())  # the console wraps long lines
    assert "[/bold]notes.jpg" in text and "expected a JPEG" in text
