"""The bad-input corpus through the HTTP API: uploads, completion, store events, status.

The corpus's batch folders are uploaded file by file (half through the direct upload route,
half through presigned URLs), completed and processed inline; the batch status must list
every bad file with its reason. Hostile names, keys, manifests and request bodies must be
answered 4xx with the reason, and no request of this file may ever be answered 5xx.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from tests.fixtures.service import ApiClient, RunningService
from xunjian.inspect.manifest import manifest_key
from xunjian.testing.badinput import (
    DRONE_BATCH,
    VEHICLE_BATCH,
    Case,
    Family,
    Stage,
    cases,
    check_batch,
    write_corpus,
)

pytestmark = pytest.mark.slow

PHOTOS = (Family.IMAGE, Family.METADATA, Family.POSE, Family.EXIF_FUZZ)


class Watched:
    """An uploader client that fails the test on any 5xx answer."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.seen: list[tuple[str, str, int]] = []

    def __call__(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, url, **kwargs)
        self.seen.append((method, url[:80], response.status_code))
        assert response.status_code < 500, f"{method} {url[:120]} → {response.text[:300]}"
        return response

    def post_json(self, url: str, body: Any) -> httpx.Response:
        """JSON with \\u escapes: httpx's own encoder cannot send a lone surrogate."""
        data = json.dumps(body).encode()
        return self("POST", url, content=data, headers={"content-type": "application/json"})


@pytest.fixture
def api(service: RunningService) -> Iterator[Watched]:
    yield Watched(service.as_role("uploader"))


def _relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _upload_folder(api: Watched, folder: Path, batch: str, platform: str) -> dict[str, Any]:
    """Half the files through PUT …/files/{name}, half through presigned URLs; then complete."""
    assert api("POST", "/api/v1/batches", json={"batch_id": batch, "platform": platform}).is_success
    files = sorted(p for p in folder.iterdir() if p.is_file())
    listed = []
    for n, path in enumerate(files):
        data = path.read_bytes()
        if n % 2:
            put = api("PUT", f"/api/v1/batches/{batch}/files/{quote(path.name)}", content=data)
        else:
            wanted = {"files": [{"name": path.name, "size": len(data)}]}
            target = api("POST", f"/api/v1/batches/{batch}/uploads", json=wanted).json()
            put = api("PUT", _relative(target["uploads"][0]["url"]), content=data, key="")
        assert put.status_code == 200, put.text
        assert put.json()["sha256"] == hashlib.sha256(data).hexdigest()
        listed.append({"name": path.name, "size": len(data), "sha256": put.json()["sha256"]})
    done = api("POST", f"/api/v1/batches/{batch}/complete", json={"files": listed})
    assert done.status_code == 202, done.text
    status = api("GET", f"/api/v1/batches/{batch}").json()
    assert status["status"] == "processed", status
    return status


def _expect(api: Watched, status: dict[str, Any], index: list[Any], folder: str) -> None:
    """The status lists each bad file with its reason; the footprints give the kept frames'
    problems: together, every case ended as expected.json says and nothing else failed."""
    failures = {f["key"]: f["reason"] for f in status["failures"]}
    assert status["failed_count"] == len(failures)
    frames = api("GET", f"/api/v1/batches/{status['batch_id']}/footprints").json()["features"]
    problems = {f["properties"]["key"]: f["properties"]["problems"] for f in frames}
    assert check_batch(index, folder, status["batch_id"], failures, problems) == []


def test_bad_photos_uploaded_through_the_api_are_listed_with_their_reasons(
    api: Watched, tmp_path: Path
) -> None:
    index = write_corpus(tmp_path, families=PHOTOS)
    status = _upload_folder(api, tmp_path / DRONE_BATCH, "bad-photos", "drone")
    _expect(api, status, index, DRONE_BATCH)
    kept = len(index) + 3 - len(status["failures"])
    assert status["frame_count"] == kept
    assert status["progress"]["summary"]["frames"] == kept


def test_bad_tracks_uploaded_through_the_api_are_listed_with_their_reasons(
    api: Watched, tmp_path: Path
) -> None:
    index = write_corpus(tmp_path, families=(Family.TRACK,))
    status = _upload_folder(api, tmp_path / VEHICLE_BATCH, "bad-tracks", "vehicle")
    _expect(api, status, index, VEHICLE_BATCH)
    assert status["frame_count"] == 2
    footprints = api("GET", "/api/v1/batches/bad-tracks/footprints").json()
    assert all(f["geometry"] is not None for f in footprints["features"])  # posed by the track


HOSTILE = [
    pytest.param(c, id=c.name)
    for c in cases(Family.NAME, Family.KEY)
    if c.stage in (Stage.UPLOAD, Stage.KEY)
    and c.name not in ("name_symlink", "name_undecodable_bytes")
]  # a symlink and undecodable bytes exist only in a folder, not in an API request


def _literal(path: str) -> str:
    """Percent-encoded so that no client folds away '.' or '..' segments before sending; a lone
    surrogate goes as the bytes a careless client would send for it (surrogatepass)."""
    return quote(path.encode("utf-8", "surrogatepass"), safe="").replace(".", "%2E")


def _name(bad: Case, tmp_path: Path) -> str:
    """The batch-file name the case stands for: its key inside a batch, or its file's path."""
    if bad.key is not None:
        return bad.key.removeprefix("raw/B20240501-bad/")
    folder = tmp_path / "names"
    return bad.write(folder).relative_to(folder).as_posix()


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_names_and_keys_are_refused_and_nothing_is_stored(
    api: Watched, service: RunningService, bad: Case, tmp_path: Path
) -> None:
    api("POST", "/api/v1/batches", json={"batch_id": "names"})
    name = _name(bad, tmp_path)
    answer = api.post_json("/api/v1/batches/names/uploads", {"files": [{"name": name, "size": 1}]})
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    if isinstance(detail, str):  # else pydantic's own field check (empty, over 900 characters)
        assert detail.startswith(f"{name}: "), detail
        if bad.family is Family.NAME and bad.reason.startswith("unsafe object key"):
            assert bad.matches(detail), detail  # the same gate as `xunjian upload`
    direct = api("PUT", f"/api/v1/batches/names/files/{_literal(name)}", content=b"x")
    assert 400 <= direct.status_code < 500
    forged = api(
        "PUT", f"/api/v1/objects/{_literal(bad.key or name)}?expires=1&signature=0", key=""
    )
    assert forged.status_code in (403, 404, 422)
    assert list(service.state.services.store.list()) == []


ODD = cases(Family.NAME, Family.KEY, stage=Stage.ACCEPTED)


@pytest.mark.parametrize("bad", ODD, ids=[c.name for c in ODD])
def test_odd_but_harmless_names_are_stored_under_exactly_that_name(
    api: Watched, bad: Case, tmp_path: Path
) -> None:
    api("POST", "/api/v1/batches", json={"batch_id": "odd"})
    name = _name(bad, tmp_path)
    answer = api.post_json("/api/v1/batches/odd/uploads", {"files": [{"name": name, "size": 1}]})
    assert answer.status_code == 200, answer.text
    target = answer.json()["uploads"][0]
    assert target["key"] == f"raw/odd/{name}"
    put = api("PUT", _relative(target["url"]), content=b"x", key="")
    assert put.status_code == 200 and put.json()["key"] == f"raw/odd/{name}"


@pytest.mark.parametrize(
    "bad", cases(Family.MANIFEST), ids=[c.name for c in cases(Family.MANIFEST)]
)
def test_a_bad_manifest_landing_in_the_bucket_is_refused_with_its_reason(
    api: Watched, service: RunningService, bad: Case, tmp_path: Path
) -> None:
    store = service.state.services.store
    store.put_bytes(manifest_key("landed"), bad.write(tmp_path).read_bytes())
    record = {
        "eventName": "s3:ObjectCreated:Put",
        "s3": {"bucket": {"name": store.bucket}, "object": {"key": manifest_key("landed")}},
    }
    answer = api("POST", "/api/v1/store-events", json={"Records": [record]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["accepted"] == [] and len(body["errors"]) == 1
    assert body["errors"][0].startswith(manifest_key("landed") + ": ")
    assert bad.matches(body["errors"][0]), body["errors"][0]


DEEP = b"[" * 100_000 + b"]" * 100_000
BIG_NUMBER = b'{"Records": ' + b"9" * 5000 + b"}"
JSON = {"content-type": "application/json"}
BODIES = [
    pytest.param("/api/v1/batches/x/complete", DEEP, (400, 404, 422), id="complete_deep_json"),
    pytest.param(
        "/api/v1/batches/x/complete", b"\xff\xfe{}", (400, 404, 422), id="complete_not_utf8"
    ),
    pytest.param("/api/v1/batches/x/complete", b" " * (50 * 2**20), (413,), id="complete_50mb"),
    pytest.param(
        "/api/v1/batches/x/complete",
        json.dumps({"files": [{"name": 5, "size": "big", "sha256": None}]}).encode(),
        (404, 422),
        id="complete_wrong_types",
    ),
    pytest.param("/api/v1/batches", DEEP, (400, 422), id="create_deep_json"),
    pytest.param("/api/v1/batches", b'{"batch_id": "../x"}', (422,), id="create_bad_batch_id"),
    pytest.param(
        "/api/v1/store-events",
        DEEP,
        (400, 422),
        id="events_deep_json",
    ),
    pytest.param(
        "/api/v1/store-events",
        BIG_NUMBER,
        (400, 422),
        id="events_huge_number",
    ),
    pytest.param(
        "/api/v1/store-events", b'{"Records": [1, "x", null]}', (422,), id="events_wrong_types"
    ),
]


@pytest.mark.parametrize(("url", "body", "allowed"), BODIES)
def test_hostile_request_bodies_get_a_4xx_never_a_5xx(
    api: Watched, url: str, body: bytes, allowed: tuple[int, ...]
) -> None:
    answer = api("POST", url, content=body, headers=JSON)
    assert answer.status_code in allowed, answer.text[:300]
    assert answer.json()["detail"]
