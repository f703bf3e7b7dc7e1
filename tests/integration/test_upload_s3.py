"""The same folder uploaded to the local store and to the S3 test server: same manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.flights import make_flight
from xunjian.inspect.upload import upload_batch
from xunjian.settings import Settings
from xunjian.storage.localstore import LocalStore
from xunjian.storage.objectstore import open_store

pytestmark = pytest.mark.integration


def test_local_and_s3_uploads_give_the_same_manifest(tmp_path: Path, s3_settings: Settings) -> None:
    folder = make_flight(tmp_path / "flight", n=5)
    local = LocalStore(tmp_path / "local")
    s3 = open_store(s3_settings)

    local_report = upload_batch(folder, local)
    s3_report = upload_batch(folder, s3)

    assert s3_report.batch_id == local_report.batch_id
    assert s3.get_bytes(s3_report.manifest_key) == local.get_bytes(local_report.manifest_key)
    keys = sorted(o.key for o in s3.list(f"raw/{s3_report.batch_id}/"))
    assert keys == sorted(o.key for o in local.list(f"raw/{local_report.batch_id}/"))
    for key in keys:
        assert s3.stat(key).sha256 == local.stat(key).sha256

    again = upload_batch(folder, s3)
    assert again.stored == []
    assert again.manifest_stored is False
    assert sorted(o.key for o in s3.list(f"raw/{s3_report.batch_id}/")) == keys
