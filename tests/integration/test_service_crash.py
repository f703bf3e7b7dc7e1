"""The service SIGKILLed in the middle of a batch: started again, it finishes the batch.

A real ``xunjian serve`` process (uvicorn) processes a batch that a store event started; it is
killed once two frames are detected and started again. The batch — left ``processing`` — is
resumed at start and ends with exactly the issues and boxes of an undisturbed run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.workers import count_rows, issue_rows, squares_set
from tests.unit.inspect.test_pipeline import SQUARES_EN, fly
from tests.unit.service.test_batches import minio_event
from xunjian.inspect.pipeline import Services, run_folder
from xunjian.inspect.upload import upload_batch
from xunjian.settings import Settings
from xunjian.storage.apikeys import KeyStore
from xunjian.storage.detection_tables import DETECTIONS, FRAME_DETECTIONS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "xunjian", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"the service did not start:\n{log.read_text()[-3000:]}")


def test_a_killed_service_resumes_its_batch(tmp_path: Path) -> None:
    folder = fly(tmp_path / "flight", SQUARES_EN, datetime(2026, 11, 24, 2, tzinfo=UTC))
    reference = Services.open(Settings(data_dir=tmp_path / "reference"))
    try:
        _, done = run_folder(reference, folder, detectors=squares_set(), out_dir=tmp_path / "r")
        expected, detections = issue_rows(reference), done.detections
    finally:
        reference.close()

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("XUNJIAN_")},
        "XUNJIAN_DATA_DIR": str(tmp_path / "data"),
        "XUNJIAN_WORKER_DETECTORS": "tests.fixtures.workers:slow_squares_set",
        "PYTHONPATH": str(REPO),
    }
    settings = Settings(data_dir=tmp_path / "data")
    services = Services.open(settings)
    keys = KeyStore(settings.db_url, migrate=False, engine=services.catalog.engine)
    _, key = keys.create("ops", "admin")
    headers = {"Authorization": f"Bearer {key}"}
    port = _free_port()
    log = tmp_path / "service.log"
    server = _serve(env, port, log)
    try:
        report = upload_batch(folder, services.store)
        event = minio_event(services.store.bucket, report.manifest_key)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/store-events", json=event, headers=headers
        )
        assert answer.json()["accepted"] == [report.batch_id], answer.text
        deadline = time.monotonic() + 60
        while count_rows(services, FRAME_DETECTIONS) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        info = services.catalog.batch(report.batch_id)
        assert info is not None and info.status == "processing"
        assert count_rows(services, FRAME_DETECTIONS) < len(list(folder.glob("*.JPG")))

        server = _serve(env, port, log)  # it resumes the batch by itself
        deadline = time.monotonic() + 90
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/batches/{report.batch_id}", headers=headers
            ).json()
            if status["status"] != "processing":
                break
            time.sleep(0.2)
        assert status["status"] == "processed", status
        assert issue_rows(services) == expected
        assert count_rows(services, DETECTIONS) == detections
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        services.close()
