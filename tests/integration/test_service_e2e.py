"""A test-range flight uploaded through the API with presigned URLs into the S3 test server,
completed, processed by the service's background runner, and read back as GeoJSON."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.service import manifest_of, painted_flight, truth_latlon
from xunjian.core.geo import latlon_to_en
from xunjian.service.processing import ThreadRunner
from xunjian.settings import Settings

pytestmark = pytest.mark.integration


def test_a_flight_through_presigned_s3_uploads_becomes_geojson_issues(
    make_service, s3_settings: Settings, tmp_path: Path
) -> None:
    service = make_service(s3_settings, runner=ThreadRunner(workers=1))
    api = service.as_role("uploader")
    folder = painted_flight(tmp_path / "flight")
    files = manifest_of(folder)

    created = api.post("/api/v1/batches", json={"platform": "drone", "meta": {"pilot": "王"}})
    assert created.status_code == 201, created.text
    batch_id = created.json()["batch_id"]
    wanted = [{"name": f["name"], "size": f["size"]} for f in files]
    wanted[0]["multipart"] = True  # one file the way large files go: parts, then complete
    targets = api.post(f"/api/v1/batches/{batch_id}/uploads", json={"files": wanted}).json()

    with httpx.Client(timeout=30) as s3:  # straight to the object store, no API key
        for target in targets["uploads"]:
            data = (folder / target["name"]).read_bytes()
            if target["multipart"] is None:
                assert "X-Amz-Signature" in target["url"]
                s3.put(target["url"], content=data).raise_for_status()
                continue
            part = target["multipart"]
            assert len(part["parts"]) == 1 and part["part_size"] >= len(data)
            sent = s3.put(part["parts"][0]["url"], content=data)
            sent.raise_for_status()
            done = api.post(
                f"/api/v1/batches/{batch_id}/uploads/complete-multipart",
                json={
                    "name": target["name"],
                    "upload_id": part["upload_id"],
                    "parts": [{"part_number": 1, "etag": sent.headers["etag"]}],
                },
            )
            assert done.status_code == 200, done.text
            assert done.json()["size"] == len(data)

    completed = api.post(f"/api/v1/batches/{batch_id}/complete", json={"files": files})
    assert completed.status_code == 202, completed.text
    assert completed.json()["queued"] is True

    deadline = time.monotonic() + 60
    while True:
        status = api.get(f"/api/v1/batches/{batch_id}").json()
        if status["progress"] and status["progress"]["state"] in ("processed", "failed"):
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status["progress"]["state"] == "processed", status
    assert status["status"] == "processed" and status["frame_count"] == 4
    assert status["meta"]["pilot"] == "王"

    events = api.get(f"/api/v1/batches/{batch_id}/events").text
    done_event = json.loads(events.split("event: done\ndata: ")[1].split("\n")[0])
    assert done_event["summary"]["issues_new"] == 3

    collection = api.get("/api/v1/issues", params={"batch": batch_id}).json()
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 3
    for feature in collection["features"]:
        lon, lat = feature["geometry"]["coordinates"]
        error = min(float(abs(complex(*latlon_to_en(lat, lon, *truth_latlon(n))))) for n in "ABC")
        assert error < 0.5
        one = api.get(f"/api/v1/issues/{feature['id']}").json()["properties"]
        with httpx.Client(timeout=30) as s3:
            image = s3.get(one["evidence_presigned_url"])
        assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
