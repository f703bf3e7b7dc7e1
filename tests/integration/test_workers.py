"""Two Celery workers on the real broker (RabbitMQ) and PostgreSQL, one SIGKILLed mid-batch.

The batch must end with exactly the issues of the in-process run: the killed worker's task is
re-delivered to the other worker, frames it had finished are in the detection ledger, and
nothing is detected into the database twice.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.workers import (
    REPO,
    count_rows,
    issue_rows,
    require_broker,
    slow_squares_set,
    squares_set,
    worker_env,
)
from tests.unit.inspect.test_pipeline import SQUARES_EN, fly
from xunjian.errors import DetectorError
from xunjian.inspect.pipeline import Services, process_batch, run_folder
from xunjian.inspect.upload import upload_batch
from xunjian.inspect.workers import CeleryDetectRunner, celery_app
from xunjian.settings import Settings
from xunjian.storage.detection_tables import DETECTIONS, FRAME_DETECTIONS

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_killed_worker_changes_nothing_in_the_result(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_broker()
    folder = fly(tmp_path / "flight", SQUARES_EN, datetime(2026, 11, 24, 2, tzinfo=UTC))

    # the reference: in-process, SQLite
    local = Services.open(Settings(data_dir=tmp_path / "local"))
    try:
        _, reference = run_folder(local, folder, detectors=squares_set(), out_dir=tmp_path / "o1")
        expected = issue_rows(local)
    finally:
        local.close()
    assert len(expected) == len(SQUARES_EN)

    queue = f"xunjian-test-{secrets.token_hex(4)}"
    env = worker_env(
        tmp_path / "shared", postgres_url, queue, "tests.fixtures.workers:slow_squares_set"
    )
    for name, value in env.items():
        if name.startswith("XUNJIAN_"):
            monkeypatch.setenv(name, value)
    settings = Settings()
    services = Services.open(settings)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "xunjian", "worker", "--loglevel", "warning"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / f"worker-{n}.log", "w"),  # noqa: SIM115
            start_new_session=True,
        )
        for n in range(2)
    ]
    try:
        batch = upload_batch(folder, services.store).batch_id
        runner = CeleryDetectRunner(celery_app(settings), chunk_size=1, timeout_s=90)
        outcome: dict[str, Any] = {}

        def process() -> None:
            try:
                outcome["result"] = process_batch(
                    services,
                    batch,
                    detectors=slow_squares_set(),
                    detect_runner=runner,
                    out_dir=tmp_path / "o2",
                )
            except BaseException as exc:  # handed to the test thread below
                outcome["error"] = exc

        thread = threading.Thread(target=process)
        thread.start()
        deadline = time.monotonic() + 60
        while count_rows(services, FRAME_DETECTIONS) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert count_rows(services, FRAME_DETECTIONS) >= 2, "the workers never started"
        victim = workers[0]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        thread.join(timeout=120)
        logs = "\n".join((tmp_path / f"worker-{n}.log").read_text()[-3000:] for n in range(2))
        assert not thread.is_alive(), f"the batch did not finish after a worker was killed:\n{logs}"
        if "error" in outcome:
            done = count_rows(services, FRAME_DETECTIONS)
            raise AssertionError(f"{done} frames in the ledger; workers said:\n{logs}") from (
                outcome["error"]
            )
        result = outcome["result"]
        frames = len(result.ingest.frames)
        assert result.frames_reused == frames and result.frames_detected == 0
        assert result.runner["frames"] == frames
        assert issue_rows(services) == expected
        assert count_rows(services, FRAME_DETECTIONS) == frames  # one ledger row per frame
        assert count_rows(services, DETECTIONS) == reference.detections  # no box twice
    finally:
        for w in workers:
            if w.poll() is None:
                os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)
        services.close()


def test_a_batch_with_no_worker_listening_fails_clearly(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_broker()
    folder = fly(tmp_path / "flight", SQUARES_EN, datetime(2026, 11, 24, 2, tzinfo=UTC))
    queue = f"xunjian-nobody-{secrets.token_hex(4)}"
    env = worker_env(tmp_path / "shared", postgres_url, queue, "tests.fixtures.workers:squares_set")
    for name, value in env.items():
        if name.startswith("XUNJIAN_"):
            monkeypatch.setenv(name, value)
    settings = Settings()
    services = Services.open(settings)
    try:
        batch = upload_batch(folder, services.store).batch_id
        runner = CeleryDetectRunner(celery_app(settings), stall_s=3, poll_s=0.5)
        started = time.monotonic()
        with pytest.raises(DetectorError, match=f"no frame detected.*queue '{queue}'") as caught:
            process_batch(services, batch, detectors=squares_set(), detect_runner=runner)
        assert time.monotonic() - started < 60  # not the hour-long timeout
        assert ":guest@" not in str(caught.value)  # the broker password is masked
        info = services.catalog.batch(batch)
        assert info is not None and info.status == "processing"  # nothing marked done
    finally:
        services.close()
