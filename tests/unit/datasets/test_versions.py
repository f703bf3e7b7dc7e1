"""Dataset versions (datasets/versions.py): publish, list, pull — immutable and content-hashed."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.fixtures.labelled import write_synthetic
from xunjian.cli import app
from xunjian.datasets.build import build_training_set
from xunjian.datasets.versions import (
    list_versions,
    publish_dataset,
    pull_dataset,
    read_version,
    resolve,
)
from xunjian.errors import InputError, ObjectNotFoundError, StorageError
from xunjian.storage.localstore import LocalStore
from xunjian.storage.objectstore import ObjectStore

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class RecordingStore(LocalStore):
    """Remembers the order objects were written in."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.written: list[str] = []

    def put_stream(self, key, stream, **kwargs):  # type: ignore[no-untyped-def]
        self.written.append(key)
        return super().put_stream(key, stream, **kwargs)


@pytest.fixture
def build(tmp_path: Path) -> Path:
    """A spoil_truck build from a tiny synthetic export."""
    synthetic = write_synthetic(tmp_path / "synth")
    build_training_set("spoil_truck", tmp_path / "build", data_root=None, synthetic=[synthetic])
    return tmp_path / "build"


@pytest.fixture
def store(tmp_path: Path) -> RecordingStore:
    return RecordingStore(tmp_path / "store")


def digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in ("data.yaml", "manifest.json")
    }


def test_publish_uploads_every_file_then_the_manifest_and_is_idempotent(
    build: Path, store: RecordingStore
) -> None:
    result = publish_dataset(store, build, clock=lambda: T0)
    assert result.created and result.name == "spoil_truck" and len(result.version) == 16
    assert store.written[-1] == f"datasets/spoil_truck/{result.version}/manifest.json"
    assert len(store.written) == result.uploaded + 1
    assert f"datasets/spoil_truck/{result.version}/data.yaml" in store.written
    stored = yaml.safe_load(store.get_bytes(f"{result.prefix}/data.yaml"))
    assert "path" not in stored  # the builder's folder is not part of the content
    store.written.clear()
    again = publish_dataset(store, build)
    assert (again.version, again.created, again.uploaded) == (result.version, False, 0)
    assert store.written == []
    version = read_version(store, "spoil_truck", result.version)
    assert version.published_at == "2026-03-01T09:00:00+00:00"
    assert version.class_counts == {"spoil_truck": 10, "spoil_truck_uncovered": 3}
    assert version.manifest["splits"]["val"]["groups"] >= 1  # the build's manifest, kept whole
    files = {f["path"] for f in version.manifest["dataset"]["files"]}
    assert files == {
        p.relative_to(build).as_posix()
        for p in build.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    }


def test_the_version_is_the_content_not_the_folder(build: Path, store: RecordingStore) -> None:
    first = publish_dataset(store, build)
    moved = build.parent / "elsewhere"
    shutil.copytree(build, moved)
    (moved / "labels" / "train.cache").write_bytes(b"ultralytics label cache")
    assert publish_dataset(store, moved).version == first.version  # data.yaml path, caches
    label = next((moved / "labels" / "train").glob("*.txt"))
    label.write_text("0 0.5 0.5 0.2 0.2\n", encoding="utf-8")
    second = publish_dataset(store, moved)
    assert second.created and second.version != first.version
    listed = list_versions(store, "spoil_truck")
    assert {v.version for v in listed} == {first.version, second.version}
    assert {v.name for v in list_versions(store)} == {"spoil_truck"}


def test_stored_content_is_never_overwritten(build: Path, store: RecordingStore) -> None:
    result = publish_dataset(store, build)
    store.delete(f"{result.prefix}/manifest.json")  # as if the first publish had crashed
    label = next(iter(store.list(f"{result.prefix}/labels/")))
    store.put_bytes(label.key, b"something else")
    with pytest.raises(StorageError, match="never overwritten"):
        publish_dataset(store, build)
    assert store.get_bytes(label.key) == b"something else"


def test_pull_restores_the_build_and_checks_every_file(
    build: Path, store: RecordingStore, tmp_path: Path
) -> None:
    result = publish_dataset(store, build)
    out = tmp_path / "pulled"
    data_yaml = pull_dataset(store, f"spoil_truck@{result.version[:6]}", out)
    assert yaml.safe_load(data_yaml.read_text("utf-8"))["path"] == str(out.resolve())
    assert digests(out) == digests(build)
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["dataset"]["version"] == result.version
    assert publish_dataset(store, out).created is False  # a pulled copy is the same version
    assert resolve(store, "spoil_truck@latest").version == result.version
    image = next(iter(store.list(f"{result.prefix}/images/")))
    store.put_bytes(image.key, b"bit rot")
    with pytest.raises(StorageError, match="expected sha256"):
        pull_dataset(store, f"spoil_truck@{result.version}", tmp_path / "again")
    for bad, error in (
        ("spoil_truck", InputError),
        ("spoil_truck@zz", InputError),
        ("spoil_truck@0000", ObjectNotFoundError),
        ("Bad Name@latest", InputError),
        ("none@latest", ObjectNotFoundError),
    ):
        with pytest.raises(error):
            resolve(store, bad)


def test_datasets_cli_publish_versions_pull(settings, build: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    published = runner.invoke(app, ["datasets", "publish", str(build), "--name", "trucks"])
    assert published.exit_code == 0, published.output
    ref = published.stdout.strip()
    assert ref.startswith("trucks@")
    again = runner.invoke(app, ["datasets", "publish", str(build), "--name", "trucks"])
    assert again.stdout.strip() == ref and "already published" in again.output
    listed = runner.invoke(app, ["datasets", "versions", "trucks", "--json"])
    assert [v["ref"] for v in json.loads(listed.stdout)] == [ref]
    assert runner.invoke(app, ["datasets", "versions"]).exit_code == 0
    pulled = runner.invoke(app, ["datasets", "pull", ref, str(tmp_path / "p")])
    assert pulled.exit_code == 0, pulled.output
    assert Path(pulled.stdout.strip()) == (tmp_path / "p" / "data.yaml").resolve()
    missing = runner.invoke(app, ["datasets", "publish", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "not a built dataset" in missing.output


@pytest.mark.integration
def test_publish_and_pull_on_the_s3_test_server(
    s3_store: ObjectStore, build: Path, tmp_path: Path
) -> None:
    result = publish_dataset(s3_store, build)
    assert publish_dataset(s3_store, build).created is False
    pull_dataset(s3_store, f"spoil_truck@{result.version}", tmp_path / "pulled")
    assert digests(tmp_path / "pulled") == digests(build)
    assert [v.version for v in list_versions(s3_store)] == [result.version]
