"""Batches through the API on the embedded defaults (local store, SQLite), processed inline."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.fixtures.service import RunningService, manifest_of, painted_flight, truth_latlon
from xunjian.core.geo import latlon_to_en
from xunjian.service.processing import ThreadRunner


def relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def upload_flight(service: RunningService, folder: Path, batch_id: str = "flight-1") -> dict:
    client = service.as_role("uploader")
    created = client.post("/api/v1/batches", json={"platform": "drone", "batch_id": batch_id})
    assert created.status_code == 201, created.text
    files = manifest_of(folder)
    wanted = [{"name": f["name"], "size": f["size"]} for f in files]
    targets = client.post(f"/api/v1/batches/{batch_id}/uploads", json={"files": wanted})
    assert targets.status_code == 200, targets.text
    for target in targets.json()["uploads"]:
        data = (folder / target["name"]).read_bytes()
        put = client.put(relative(target["url"]), content=data, key="")  # the URL is the key
        assert put.status_code == 200, put.text
    done = client.post(f"/api/v1/batches/{batch_id}/complete", json={"files": files})
    assert done.status_code == 202, done.text
    return done.json()


def test_a_flight_uploaded_with_presigned_urls_becomes_issues(
    service: RunningService, tmp_path: Path
) -> None:
    folder = painted_flight(tmp_path / "flight")
    queued = upload_flight(service, folder)
    assert queued["queued"] is True

    retried = service.as_role("uploader").post(
        "/api/v1/batches/flight-1/complete", json={"files": manifest_of(folder)}
    )
    assert retried.status_code == 202 and retried.json()["queued"] is False  # a retry: no-op
    other = service.as_role("uploader").post(
        "/api/v1/batches/flight-1/complete", json={"files": manifest_of(folder)[:2]}
    )
    assert other.status_code == 409 and "complete" in other.json()["detail"]

    status = service.client.get("/api/v1/batches/flight-1").json()
    assert status["status"] == "processed"
    assert status["progress"]["state"] == "processed"
    assert status["progress"]["summary"]["frames"] == 4
    assert status["failures"] == []

    issues = service.client.get("/api/v1/issues", params={"batch": "flight-1"}).json()
    assert issues["type"] == "FeatureCollection"
    assert len(issues["features"]) == 3
    for feature in issues["features"]:
        lon, lat = feature["geometry"]["coordinates"]
        error = min(float(abs(complex(*latlon_to_en(lat, lon, *truth_latlon(n))))) for n in "ABC")
        assert error < 0.5
        assert feature["properties"]["category"] == "road_damage"
        evidence = service.client.get(feature["properties"]["evidence_url"])
        assert evidence.status_code == 200
        assert evidence.headers["content-type"] == "image/jpeg"
        assert evidence.content[:2] == b"\xff\xd8"

    footprints = service.client.get("/api/v1/batches/flight-1/footprints").json()
    assert len(footprints["features"]) == 4
    assert {f["geometry"]["type"] for f in footprints["features"]} == {"Polygon"}

    events = service.client.get("/api/v1/batches/flight-1/events")
    assert events.headers["content-type"].startswith("text/event-stream")
    assert "event: done" in events.text


def test_progress_names_each_stage_as_it_runs(
    service: RunningService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    board = service.state.board
    seen: list[str] = []
    original = board.set

    def record(batch_id: str, **changes: object) -> object:
        state = changes.get("state")
        if isinstance(state, str) and (not seen or seen[-1] != state):
            seen.append(state)
        return original(batch_id, **changes)

    monkeypatch.setattr(board, "set", record)
    upload_flight(service, painted_flight(tmp_path / "flight"))
    assert seen == ["ingesting", "refining", "detecting", "fusing", "processed"]


def test_completing_before_every_file_is_there_is_refused(
    service: RunningService, tmp_path: Path
) -> None:
    folder = painted_flight(tmp_path / "flight")
    client = service.as_role("uploader")
    client.post("/api/v1/batches", json={"batch_id": "half"})
    files = manifest_of(folder)
    first = files[0]
    put = client.put(f"/api/v1/batches/half/files/{first['name']}",
                     content=(folder / first["name"]).read_bytes())  # fmt: skip
    assert put.status_code == 200
    assert put.json()["sha256"] == first["sha256"]
    refused = client.post("/api/v1/batches/half/complete", json={"files": files})
    assert refused.status_code == 409
    assert any("not uploaded" in problem for problem in refused.json()["detail"])
    assert not service.state.services.store.exists("raw/half/manifest.json")
    wrong_size = [{**first, "size": first["size"] + 1}]
    refused = client.post("/api/v1/batches/half/complete", json={"files": wrong_size})
    assert "expected" in refused.json()["detail"][0]


def test_bad_file_names_and_sizes_are_refused_clearly(service: RunningService) -> None:
    client = service.as_role("uploader")
    client.post("/api/v1/batches", json={"batch_id": "names"})
    for name in ("../escape.jpg", "notes.txt", "a//b.jpg", "manifest.json"):
        response = client.post(
            "/api/v1/batches/names/uploads", json={"files": [{"name": name, "size": 1}]}
        )
        assert response.status_code == 422, name
        assert name.split("/")[0] in response.text or "expected" in response.text
    limit = service.state.settings.max_upload_bytes
    local_multipart = client.post(
        "/api/v1/batches/names/uploads",
        json={"files": [{"name": "a.jpg", "size": 10, "multipart": True}]},
    )
    assert local_multipart.status_code == 422 and "no multipart" in local_multipart.text
    big = client.post(
        "/api/v1/batches/names/uploads", json={"files": [{"name": "a.jpg", "size": limit + 1}]}
    )
    assert big.status_code == 413
    assert str(limit) in big.json()["detail"]


def test_request_and_upload_size_limits_answer_413(make_service, settings, tmp_path: Path) -> None:
    small = settings.model_copy(update={"max_request_bytes": 1000, "max_upload_bytes": 5000})
    service = make_service(small)
    client = service.as_role("uploader")
    big_json = {"platform": "drone", "meta": {"note": "x" * 2000}}
    response = client.post("/api/v1/batches", json=big_json)
    assert response.status_code == 413
    assert response.json()["detail"] == "request body too large: expected at most 1000 bytes"
    client.post("/api/v1/batches", json={"batch_id": "lim"})
    ok = client.put("/api/v1/batches/lim/files/a.jpg", content=b"x" * 4000)
    assert ok.status_code == 200  # uploads have their own, larger limit
    too_big = client.put("/api/v1/batches/lim/files/b.jpg", content=b"x" * 6000)
    assert too_big.status_code == 413
    assert "5000" in too_big.json()["detail"]
    assert not service.state.services.store.exists("raw/lim/b.jpg")


def test_a_batch_with_too_many_files_is_refused(make_service, settings) -> None:
    service = make_service(settings.model_copy(update={"max_batch_files": 2}))
    client = service.as_role("uploader")
    client.post("/api/v1/batches", json={"batch_id": "many"})
    files = [{"name": f"{i}.jpg", "size": 1, "sha256": "0" * 64} for i in range(3)]
    response = client.post("/api/v1/batches/many/complete", json={"files": files})
    assert response.status_code == 422
    assert "at most 2 files" in response.json()["detail"]


def test_a_processed_batch_cannot_take_more_uploads(service: RunningService) -> None:
    client = service.as_role("uploader")
    client.post("/api/v1/batches", json={"batch_id": "closed"})
    service.state.services.catalog.set_batch_status("closed", "processed")
    response = client.post(
        "/api/v1/batches/closed/uploads", json={"files": [{"name": "a.jpg", "size": 1}]}
    )
    assert response.status_code == 409
    again = client.post("/api/v1/batches", json={"batch_id": "closed"})
    assert again.status_code == 409


def test_presigned_urls_are_checked(service: RunningService) -> None:
    client = service.as_role("uploader")
    client.post("/api/v1/batches", json={"batch_id": "signed"})
    target = client.post(
        "/api/v1/batches/signed/uploads", json={"files": [{"name": "a.jpg", "size": 3}]}
    ).json()["uploads"][0]
    url = relative(target["url"])
    forged = url.replace("signature=", "signature=0")
    assert client.put(forged, content=b"abc", key="").status_code == 403
    other_key = url.replace("/a.jpg?", "/b.jpg?")
    assert client.put(other_key, content=b"abc", key="").status_code == 403
    assert client.put(url, content=b"abc", key="").status_code == 200
    # a PUT URL does not allow GET
    assert client.get(url, key="").status_code == 403
    get_url = service.state.services.store.presigned_get_url("raw/signed/a.jpg")
    fetched = client.get(relative(get_url), key="")
    assert fetched.status_code == 200 and fetched.content == b"abc"


def test_events_stream_progress_until_done(make_service, tmp_path: Path) -> None:
    class Manual:
        """A runner that leaves processing to the test."""

        def start(self, process):
            self.process = process

        def submit(self, batch_id):
            return True

        def close(self):
            pass

    service = make_service(runner=Manual())
    client = service.as_role("uploader")
    client.post("/api/v1/batches", json={"batch_id": "live"})
    board = service.state.board
    service.state.enqueue("live")

    def work() -> None:
        for done in range(1, 4):
            time.sleep(0.3)
            board.set("live", state="ingesting", ingest_done=done, ingest_total=3)
        time.sleep(0.3)
        board.set("live", state="processed", finished_at=time.time())

    worker = threading.Thread(target=work)
    worker.start()
    response = client.get("/api/v1/batches/live/events")
    worker.join()
    events = [block for block in response.text.split("\n\n") if block.startswith("event:")]
    names = [block.split("\n")[0].removeprefix("event: ") for block in events]
    assert names[-1] == "done"
    states = [json.loads(block.split("data: ", 1)[1])["state"] for block in events]
    assert states[0] == "queued" and states[-1] == "processed"
    done_counts = [
        json.loads(block.split("data: ", 1)[1])["ingest_done"]
        for block in events
        if '"ingesting"' in block
    ]
    assert done_counts == sorted(done_counts) and done_counts[-1] == 3


def test_an_unknown_batch_is_404(service: RunningService) -> None:
    for path in ("", "/events", "/footprints"):
        response = service.client.get(f"/api/v1/batches/nope{path}")
        assert response.status_code == 404, path
        assert "nope" in response.json()["detail"]


def test_a_failing_batch_is_reported_with_its_reason(service: RunningService) -> None:
    client = service.as_role("uploader")
    client.post("/api/v1/batches", json={"batch_id": "broken"})
    body = b"this is not a jpeg"
    client.put("/api/v1/batches/broken/files/DJI_0001.JPG", content=body)
    import hashlib

    files = [
        {"name": "DJI_0001.JPG", "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    ]
    assert client.post("/api/v1/batches/broken/complete", json={"files": files}).status_code == 202
    status = client.get("/api/v1/batches/broken").json()
    assert status["progress"]["state"] == "processed"  # a bad file never stops the batch
    assert len(status["failures"]) == 1
    assert status["failures"][0]["key"] == "raw/broken/DJI_0001.JPG"
    assert status["failures"][0]["reason"]


def test_the_thread_runner_queues_a_batch_once_and_stops(tmp_path: Path) -> None:
    seen: list[str] = []
    gate = threading.Event()

    def process(batch_id: str) -> None:
        gate.wait(5)
        seen.append(batch_id)

    runner = ThreadRunner(workers=1)
    runner.start(process)
    assert runner.submit("a") is True
    assert runner.submit("a") is False  # queued or running already
    assert runner.submit("b") is True
    gate.set()
    runner.close()
    assert seen == ["a", "b"]
    with pytest.raises(RuntimeError):
        runner.submit("c")


def minio_event(bucket: str, *keys: str, name: str = "s3:ObjectCreated:Put") -> dict:
    """What a MinIO webhook target POSTs (keys URL-encoded, as MinIO sends them)."""
    from urllib.parse import quote

    return {
        "EventName": name,
        "Key": f"{bucket}/{keys[0]}" if keys else "",
        "Records": [
            {
                "eventVersion": "2.0",
                "eventSource": "minio:s3",
                "eventName": name.removeprefix("s3:"),
                "s3": {
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": quote(key, safe=""), "size": 10},
                },
            }
            for key in keys
        ],
    }


def test_a_manifest_landing_in_the_bucket_starts_its_batch(
    service: RunningService, tmp_path: Path
) -> None:
    from xunjian.inspect.upload import upload_batch

    store = service.state.services.store
    report = upload_batch(painted_flight(tmp_path / "f"), store, batch_id="by-tool")
    uploader = service.as_role("uploader")
    event = minio_event(
        store.bucket, "raw/by-tool/DJI_0001.JPG", report.manifest_key, "raw/other/x.txt"
    )
    response = uploader.post("/api/v1/store-events", json=event)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": ["by-tool"], "ignored": 2, "errors": []}
    status = uploader.get("/api/v1/batches/by-tool").json()
    assert status["status"] == "processed" and status["frame_count"] == 4
    issues = uploader.get("/api/v1/issues", params={"batch": "by-tool"}).json()
    assert len(issues["features"]) == 3

    again = uploader.post("/api/v1/store-events", json=event).json()
    assert again["accepted"] == [] and again["ignored"] == 3  # processed already
    other_bucket = uploader.post(
        "/api/v1/store-events", json=minio_event("else", report.manifest_key)
    )
    assert other_bucket.json()["accepted"] == []
    removed = uploader.post(
        "/api/v1/store-events",
        json=minio_event(store.bucket, report.manifest_key, name="s3:ObjectRemoved:Delete"),
    )
    assert removed.json()["accepted"] == []


def test_bad_store_events_are_refused(service: RunningService) -> None:
    uploader = service.as_role("uploader")
    for body in (b"not json", b"[]", b'{"Records": [{"eventName": 1}]}'):
        response = uploader.post("/api/v1/store-events", content=body)
        assert response.status_code == 422, body
    missing = minio_event(service.state.services.store.bucket, "raw/ghost/manifest.json")
    response = uploader.post("/api/v1/store-events", json=missing).json()
    assert response["accepted"] == [] and "ghost" in response["errors"][0]


def test_a_body_that_streams_past_the_limit_is_cut_off(make_service, settings) -> None:
    service = make_service(settings.model_copy(update={"max_upload_bytes": 5000}))
    client = service.as_role("uploader")
    client.post("/api/v1/batches", json={"batch_id": "stream"})

    async def chunks():  # no Content-Length: the limit must count what streams in
        for _ in range(2):
            yield b"x" * 3000

    response = client.put("/api/v1/batches/stream/files/a.jpg", content=chunks())
    assert response.status_code == 413
    assert not service.state.services.store.exists("raw/stream/a.jpg")
